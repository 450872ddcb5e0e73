import Foundation
import TrialDomain
import Yams

/// Reads and writes study-definition files (YAML, or JSON when the text starts with '{').
public enum StudyFile {
    public struct ReadError: Error, Equatable, Sendable, CustomStringConvertible {
        public var problems: [StudyProblem]
        public var description: String { problems.map(\.description).joined(separator: "\n") }
    }

    /// Decodes and validates: every problem (unknown keys, wrong types, broken rules) with its path.
    public static func read(_ text: String) throws -> StudyDefinition {
        let study = try decode(text)
        let problems = StudyValidator.problems(in: study)
        if !problems.isEmpty { throw ReadError(problems: problems) }
        return study
    }

    /// Decodes without the semantic checks, refusing keys the format does not know.
    public static func decode(_ text: String) throws -> StudyDefinition {
        let (tree, isJSON) = try parse(text)
        // The schema first: every structural problem at once, addressed by codes, before the decoder stops at its first.
        let structural = try StudySchema.problems(in: tree)
        if !structural.isEmpty { throw ReadError(problems: structural) }
        return try decodeChecked(text, tree: tree, isJSON: isJSON)
    }

    /// The file's tree of settings, read as YAML, or JSON when the text starts with '{'.
    static func parse(_ text: String) throws -> (tree: [String: Any], isJSON: Bool) {
        let isJSON = text.drop { $0.isWhitespace }.first == "{"
        let raw: Any?
        do {
            raw = isJSON ? try JSONSerialization.jsonObject(with: Data(text.utf8)) : try Yams.load(yaml: text)
        } catch let error as YamlError {
            throw ReadError(problems: [StudyProblem("(file)", "not valid YAML: \(yamlMessage(error))")])
        } catch {
            throw ReadError(problems: [StudyProblem("(file)", "not valid JSON: \(error.localizedDescription)")])
        }
        guard let tree = raw as? [String: Any] else {
            throw ReadError(problems: [StudyProblem("(file)", "must be a mapping of study settings")])
        }
        return (tree, isJSON)
    }

    /// The decoder's own checks without the schema: types as Codable reads them and unknown keys. The schema test holds
    /// the two in agreement.
    static func decodeChecked(_ text: String, tree: [String: Any], isJSON: Bool) throws -> StudyDefinition {
        let study: StudyDefinition
        do {
            study = try isJSON ? JSONDecoder().decode(StudyDefinition.self, from: Data(text.utf8)) : YAMLDecoder().decode(StudyDefinition.self, from: text)
        } catch let error as DecodingError {
            throw ReadError(problems: [describe(error)])
        }
        // Codable ignores keys it does not know; a misspelt setting must not vanish silently.
        let known = try JSONSerialization.jsonObject(with: try JSONEncoder().encode(study))
        var unknown: [StudyProblem] = []
        findUnknownKeys(tree, known, path: "", into: &unknown)
        if !unknown.isEmpty { throw ReadError(problems: unknown) }
        return study
    }

    public static func yaml(_ study: StudyDefinition) throws -> String {
        try YAMLEncoder().encode(study)
    }

    public static func json(_ study: StudyDefinition) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(study), as: UTF8.self)
    }

    /// The MSC-EV ACLF-LT study shipped with Casebook.
    public static func builtIn() throws -> StudyDefinition {
        guard let url = Bundle.module.url(forResource: "msc-ev-aclf-lt", withExtension: "yaml", subdirectory: "Studies") else {
            throw ReadError(problems: [StudyProblem("(built-in)", "the built-in study file is missing from the installation")])
        }
        return try read(String(contentsOf: url, encoding: .utf8))
    }

    static func findUnknownKeys(_ raw: Any, _ known: Any, path: String, into problems: inout [StudyProblem]) {
        if let raw = raw as? [String: Any] {
            let known = known as? [String: Any] ?? [:]
            for key in raw.keys.sorted() {
                let sub = path.isEmpty ? key : "\(path).\(key)"
                if let value = known[key] {
                    findUnknownKeys(raw[key]!, value, path: sub, into: &problems)
                } else if !(raw[key] is NSNull) && !isYAMLNull(raw[key]!) {
                    problems.append(StudyProblem(sub, "unknown setting '\(key)'"))
                }
            }
        } else if let raw = raw as? [Any], let known = known as? [Any] {
            for (i, item) in raw.enumerated() where i < known.count {
                let code = ((item as? [String: Any])?["code"] as? String).map { "[\($0)]" } ?? "[\(i)]"
                findUnknownKeys(item, known[i], path: path + code, into: &problems)
            }
        }
    }

    /// `key: null` in YAML is an explicit "not set", which the encoder leaves out.
    static func isYAMLNull(_ value: Any) -> Bool {
        if value is NSNull { return true }
        return String(describing: value) == "<null>"
    }

    static func describe(_ error: DecodingError) -> StudyProblem {
        func path(_ keys: [any CodingKey]) -> String {
            keys.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined().trimmingCharacters(in: CharacterSet(charactersIn: "."))
                .replacingOccurrences(of: ".[", with: "[")
        }
        switch error {
        case .keyNotFound(let key, let context):
            return StudyProblem(path(context.codingPath + [key]), "is required")
        case .typeMismatch(let type, let context):
            return StudyProblem(path(context.codingPath), "must be \(typeName(type))")
        case .valueNotFound(let type, let context):
            return StudyProblem(path(context.codingPath), "must be \(typeName(type)), not empty")
        case .dataCorrupted(let context):
            return StudyProblem(path(context.codingPath), context.debugDescription)
        @unknown default:
            return StudyProblem("(file)", "cannot be read")
        }
    }

    static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "text"
        case is Int.Type: "a whole number"
        case is Double.Type: "a number"
        case is Bool.Type: "true or false"
        default: "\(type)".hasPrefix("Array") ? "a list" : "a mapping"
        }
    }

    static func yamlMessage(_ error: YamlError) -> String {
        "\(error)".replacingOccurrences(of: "\n", with: " ")
    }
}
