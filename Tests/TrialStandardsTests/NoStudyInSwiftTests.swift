import Foundation
import Testing
@testable import TrialDomain
@testable import TrialStandards

/// The protocol is data: no Swift file under Sources/ names a code of either study (study, sites, arms, doses, forms,
/// fields, visits, anchors, interventions, criteria, endpoints). A second study cannot run on code that knows the first.
@Suite struct NoStudyInSwiftTests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Words Casebook itself defines that some study also uses as a code: the lab catalogue's analytes and the liver
    /// scores' inputs and functions, the anchor sources of the format, and the names of its own routes, tables and columns.
    static let ownVocabulary: Set<String> = [
        "bilirubin", "creatinine", "albumin", "sodium", "lactate", "afp", "inr", "wbc", "alt", "map", "age", "sex", "ascites", "encephalopathy",
        "dialysis", "vasopressors", "pao2_fio2", "meld_na",
        "allocation", "first_dose", "infusion",
        "labs", "history", "consent", "baseline", "outcome", "adverse_events", "collected_at", "signed_at", "form_version", "screening",
    ]

    static func codes(_ study: StudyDefinition) -> Set<String> {
        var codes: Set<String> = [study.code]
        codes.formUnion(study.sites.map(\.code))
        codes.formUnion(study.arms.map(\.code))
        codes.formUnion(study.arms.flatMap { ($0.doses ?? []).map(\.code) })
        codes.formUnion(study.visits.map(\.code))
        codes.formUnion(study.anchors.map(\.code))
        codes.formUnion(study.interventions.map(\.code))
        codes.formUnion(study.endpoints.map(\.code))
        codes.formUnion((study.eligibility.inclusion + study.eligibility.exclusion).map(\.code))
        codes.formUnion((study.derived ?? []).map(\.code))
        for form in study.forms {
            codes.insert(form.code)
            for field in form.fields { codes.formUnion([field.code, "\(form.code).\(field.code)"]) }
        }
        return codes
    }

    @Test func noSwiftNamesAStudysCodes() throws {
        let second = try StudyFile.read(try String(contentsOf: Self.root.appendingPathComponent("studies/ucmsc-aclf.yaml"), encoding: .utf8))
        let codes = Self.codes(try StudyFile.builtIn()).union(Self.codes(second)).subtracting(Self.ownVocabulary)
        #expect(codes.contains("toxicity_24h") && codes.contains("SYSU3") && codes.contains("demographics.birth_date"))
        let literal = try NSRegularExpression(pattern: #""((?:[^"\\]|\\.)*)""#)
        var found: [String] = []
        let sources = Self.root.appendingPathComponent("Sources")
        let files = FileManager.default.enumerator(at: sources, includingPropertiesForKeys: nil)!.compactMap { $0 as? URL }.filter { $0.pathExtension == "swift" }
        #expect(files.count > 50)
        for file in files {
            let text = try String(contentsOf: file, encoding: .utf8)
            for (number, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
                let line = String(line)
                for match in literal.matches(in: line, range: NSRange(line.startIndex..., in: line)) {
                    guard let range = Range(match.range(at: 1), in: line) else { continue }
                    let value = String(line[range])
                    if codes.contains(value) { found.append("\(file.lastPathComponent):\(number + 1) \"\(value)\"") }
                }
            }
        }
        #expect(found.isEmpty, "study codes in Swift: \(found.joined(separator: "; "))")
    }
}
