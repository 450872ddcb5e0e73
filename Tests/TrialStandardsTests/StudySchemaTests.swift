import Foundation
import Testing
@testable import TrialDomain
@testable import TrialStandards

/// Every definition that ships or that tests publish: the built-in study and those under studies/.
private func exampleDefinitions() throws -> [(name: String, text: String)] {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    var examples = [("built-in", try String(contentsOf: root.appendingPathComponent("Sources/TrialStandards/Studies/msc-ev-aclf-lt.yaml"), encoding: .utf8))]
    let studies = root.appendingPathComponent("studies")
    for name in ((try? FileManager.default.contentsOfDirectory(atPath: studies.path)) ?? []).sorted() where name.hasSuffix(".yaml") {
        examples.append((name, try String(contentsOf: studies.appendingPathComponent(name), encoding: .utf8)))
    }
    return examples
}

/// The definition as a JSON tree, the way the API receives it.
private func tree(_ study: StudyDefinition) throws -> [String: Any] {
    try JSONSerialization.jsonObject(with: try JSONEncoder().encode(study)) as! [String: Any]
}

private func text(_ tree: Any) throws -> String {
    String(decoding: try JSONSerialization.data(withJSONObject: tree, options: [.sortedKeys]), as: UTF8.self)
}

/// Every mapping in the tree with its path (lists of coded items addressed by code), the first item of each list only.
private func mappings(_ value: Any, path: [Any] = []) -> [[Any]] {
    if let object = value as? [String: Any] {
        return [path] + object.keys.sorted().flatMap { mappings(object[$0]!, path: path + [$0]) }
    }
    if let list = value as? [Any], let first = list.first { return mappings(first, path: path + [0]) }
    return []
}

private func update(_ value: Any, at path: ArraySlice<Any>, _ change: (inout [String: Any]) -> Void) -> Any {
    guard let step = path.first else {
        var object = value as! [String: Any]
        change(&object)
        return object
    }
    if let key = step as? String {
        var object = value as! [String: Any]
        object[key] = update(object[key]!, at: path.dropFirst(), change)
        return object
    }
    var list = value as! [Any]
    list[0] = update(list[0], at: path.dropFirst(), change)
    return list
}

@Suite struct StudySchemaTests {
    @Test func everyExampleDefinitionValidatesAgainstTheSchemaAndTheRules() throws {
        for (name, source) in try exampleDefinitions() {
            let raw = try StudyFile.parse(source).tree
            #expect(try StudySchema.problems(in: raw) == [], "\(name)")
            let study = try StudyFile.read(source)
            #expect(StudyValidator.problems(in: study) == [], "\(name)")
        }
    }

    /// An unknown key anywhere is refused by the schema and by the decoder alike; a key the schema requires is required
    /// by the decoder, and one it leaves optional the decoder does without.
    @Test func decoderAndSchemaAgree() throws {
        let base = try tree(try StudyFile.builtIn())
        var checked = 0
        for path in mappings(base) {
            let extra = update(base, at: path[...]) { $0["zz_not_a_setting"] = "x" }
            #expect(try !StudySchema.problems(in: extra).isEmpty, "schema at \(path)")
            #expect(throws: StudyFile.ReadError.self, "decoder at \(path)") {
                try StudyFile.decodeChecked(try text(extra), tree: extra as! [String: Any], isJSON: true)
            }
            let node = path.reduce(base as Any) { value, step in
                if let key = step as? String { return (value as! [String: Any])[key]! }
                return (value as! [Any])[0]
            } as! [String: Any]
            for key in node.keys.sorted() {
                let without = update(base, at: path[...]) { $0[key] = nil }
                let schemaRefuses = try !StudySchema.problems(in: without).isEmpty
                let decoderRefuses = (try? StudyFile.decodeChecked(try text(without), tree: without as! [String: Any], isJSON: true)) == nil
                #expect(schemaRefuses == decoderRefuses, "without \(path).\(key): schema \(schemaRefuses), decoder \(decoderRefuses)")
                checked += 1
            }
        }
        #expect(checked > 150)
    }

    /// Unrelated mistakes come back together, each addressed by codes: first those of form, then (once the form is
    /// right) those of the rules.
    @Test func everyProblemAtOnceByCode() throws {
        let original = try exampleDefinitions()[0].text
        var source = original.replacingOccurrences(
            of: "{code: day_28, name: Day 28, anchor: transplant, target: 28d, window: {before: 3d, after: 3d}}",
            with: "{code: day_28, name: Day 28, anchor: transplant, target: 28d, window: {before: 3x, after: 3d}}")
        source = source.replacingOccurrences(of: "  - code: transplant\n    name: Transplantation\n", with: "  - code: transplant\n    name: Transplantation\n    colour: blue\n")
        source = source.replacingOccurrences(of: "saeReportingHours: 24", with: "saeReportingHours: soon")
        do {
            _ = try StudyFile.read(source)
            Issue.record("a broken definition was read")
        } catch let error as StudyFile.ReadError {
            #expect(Set(error.problems.map(\.path)) == ["visits[day_28].window.before", "forms[transplant].colour", "safety.saeReportingHours"])
            #expect(error.problems.contains { $0.path == "safety.saeReportingHours" && $0.rule == "must be a whole number" })
        }
        let rules = original.replacingOccurrences(of: "  ctcaeVersion: \"4.0\"", with: "  ctcaeVersion: banana")
            .replacingOccurrences(of: "{code: day_7, name: Day 7, anchor: transplant,", with: "{code: day_7, name: Day 7, anchor: transplnt,")
        do {
            _ = try StudyFile.read(rules)
            Issue.record("a definition breaking two rules was read")
        } catch let error as StudyFile.ReadError {
            #expect(error.problems.contains { $0.path == "safety.ctcaeVersion" && $0.rule == "must be one of 4.0, 4.03, 5.0" })
            #expect(error.problems.contains { $0.path == "visits[day_7].anchor" })
        }
    }

    @Test func theSchemaIsAJSONSchemaDocument() throws {
        let schema = try #require(try JSONSerialization.jsonObject(with: try StudySchema.text()) as? [String: Any])
        #expect(schema["$schema"] as? String == "https://json-schema.org/draft/2020-12/schema")
        #expect((schema["$defs"] as? [String: Any])?["PlannedDose"] != nil)
    }
}

