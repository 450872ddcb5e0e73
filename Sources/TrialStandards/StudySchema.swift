import Foundation
import TrialDomain

/// The JSON Schema of the study-definition format (`Schema/study-definition.schema.json`, linked from docs/), and a
/// checker for the part of JSON Schema 2020-12 it uses ($ref, anyOf, type, enum, const, pattern, properties, required,
/// additionalProperties, items). A definition is checked against it before it is decoded, so that every structural
/// problem is reported at once, each addressed by codes (`visits[day_28].window`) rather than list positions.
public enum StudySchema {
    /// The schema's text, as served at `GET /api/v1/study/schema`.
    public static func text() throws -> Data {
        guard let url = Bundle.module.url(forResource: "study-definition.schema", withExtension: "json", subdirectory: "Schema") else {
            throw StudyFile.ReadError(problems: [StudyProblem("(schema)", "the definition schema is missing from the installation")])
        }
        return try Data(contentsOf: url)
    }

    /// Read once; never changed after, so sharing it across threads is safe.
    nonisolated(unsafe) static let loaded: Result<[String: Any], any Error> = Result {
        guard let schema = try JSONSerialization.jsonObject(with: try text()) as? [String: Any] else {
            throw StudyFile.ReadError(problems: [StudyProblem("(schema)", "the definition schema is not a JSON object")])
        }
        return schema
    }

    /// Every place where `tree` (a parsed YAML or JSON definition) breaks the schema.
    public static func problems(in tree: Any) throws -> [StudyProblem] {
        let schema = try loaded.get()
        var problems: [StudyProblem] = []
        Checker(root: schema).check(tree, against: schema, path: "", into: &problems)
        return problems
    }

    struct Checker {
        let root: [String: Any]

        func resolve(_ schema: [String: Any]) -> [String: Any] {
            guard let ref = schema["$ref"] as? String, ref.hasPrefix("#/$defs/"),
                let defs = root["$defs"] as? [String: Any], let target = defs[String(ref.dropFirst(8))] as? [String: Any]
            else { return schema }
            return target
        }

        func check(_ value: Any, against raw: [String: Any], path: String, into problems: inout [StudyProblem]) {
            let schema = resolve(raw)
            let at = path.isEmpty ? "(file)" : path
            if let options = schema["anyOf"] as? [[String: Any]] {
                var best: [StudyProblem]?
                for option in options {
                    var found: [StudyProblem] = []
                    check(value, against: option, path: path, into: &found)
                    if found.isEmpty { return }
                    if best == nil || (Kind.of(value) != .null && Kind.of(value) == expectedKind(option)) { best = found }
                }
                problems += best ?? []
                return
            }
            if let types = (schema["type"] as? [String]) ?? (schema["type"] as? String).map({ [$0] }) {
                guard types.contains(where: { Kind.of(value).fits($0) }) else {
                    problems.append(StudyProblem(at, "must be \(types.filter { $0 != "null" }.map(Kind.describe).joined(separator: " or "))"))
                    return
                }
            }
            if let allowed = schema["enum"] as? [Any] {
                let text = "\(value)"
                if !allowed.contains(where: { "\($0)" == text }) || Kind.of(value) != .string {
                    problems.append(StudyProblem(at, "must be one of \(allowed.map { "\($0)" }.joined(separator: ", "))"))
                    return
                }
            }
            if let constant = schema["const"], "\(constant)" != "\(value)" {
                problems.append(StudyProblem(at, "must be \(constant)"))
            }
            if let pattern = schema["pattern"] as? String, let text = value as? String,
                text.range(of: pattern, options: .regularExpression) == nil
            {
                problems.append(StudyProblem(at, "'\(text)' is not \((schema["description"] as? String).map { $0.prefix(1).lowercased() + $0.dropFirst() } ?? "in the expected form")"))
            }
            if let object = value as? [String: Any] {
                let properties = schema["properties"] as? [String: Any] ?? [:]
                for key in (schema["required"] as? [String] ?? []) where object[key] == nil {
                    problems.append(StudyProblem(join(path, key), "is required"))
                }
                for key in object.keys.sorted() {
                    let sub = join(path, key)
                    if let property = properties[key] as? [String: Any] {
                        check(object[key]!, against: property, path: sub, into: &problems)
                    } else if let extra = schema["additionalProperties"] as? [String: Any] {
                        check(object[key]!, against: extra, path: sub, into: &problems)
                    } else if schema["additionalProperties"] as? Bool == false {
                        problems.append(StudyProblem(sub, "unknown setting '\(key)'"))
                    }
                }
            }
            if let list = value as? [Any], let items = schema["items"] as? [String: Any] {
                for (i, item) in list.enumerated() {
                    let code = ((item as? [String: Any])?["code"] as? String).map { "[\($0)]" } ?? "[\(i)]"
                    check(item, against: items, path: (path.isEmpty ? "(file)" : path) + code, into: &problems)
                }
            }
        }

        func expectedKind(_ raw: [String: Any]) -> Kind? {
            let schema = resolve(raw)
            if let type = schema["type"] as? String { return Kind(schemaType: type) }
            if schema["properties"] != nil { return .object }
            return nil
        }

        func join(_ path: String, _ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }
    }

    /// What a parsed YAML or JSON value is; YAML gives Swift values, JSONSerialization gives NSNumber for numbers and booleans.
    enum Kind: Equatable {
        case object, array, string, integer, number, boolean, null

        init?(schemaType: String) {
            switch schemaType {
            case "object": self = .object
            case "array": self = .array
            case "string": self = .string
            case "integer": self = .integer
            case "number": self = .number
            case "boolean": self = .boolean
            case "null": self = .null
            default: return nil
            }
        }

        static func of(_ value: Any) -> Kind {
            switch value {
            case is [String: Any]: return .object
            case is [Any]: return .array
            case is String: return .string
            case is NSNull: return .null
            default: break
            }
            if type(of: value) == Bool.self { return .boolean }
            if let number = value as? NSNumber, type(of: value) != Int.self, type(of: value) != Double.self {
                if String(cString: number.objCType) == "c" { return .boolean }
                return number.doubleValue.rounded() == number.doubleValue && !"\(number)".contains(".") ? .integer : .number
            }
            if value is Int { return .integer }
            if value is Double { return .number }
            return StudyFile.isYAMLNull(value) ? .null : .string
        }

        func fits(_ schemaType: String) -> Bool {
            switch (self, schemaType) {
            case (.integer, "number"): return true
            default: return Kind(schemaType: schemaType) == self
            }
        }

        static func describe(_ schemaType: String) -> String {
            switch schemaType {
            case "string": "text"
            case "integer": "a whole number"
            case "number": "a number"
            case "boolean": "true or false"
            case "array": "a list"
            case "object": "a mapping"
            default: schemaType
            }
        }
    }
}
