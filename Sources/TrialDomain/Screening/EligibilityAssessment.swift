import Foundation

/// How one criterion stands for one participant.
public enum CriterionResult: String, Codable, Sendable {
    /// Inclusion holds, or the exclusion does not apply.
    case met
    /// Inclusion fails, or the exclusion applies.
    case notMet = "not_met"
    /// Data missing: nobody may confirm eligibility yet.
    case cannotTell = "cannot_tell"
}

public struct CriterionAssessment: Codable, Equatable, Sendable {
    public var code: String
    public var kind: String
    public var text: String
    public var expression: String
    public var result: CriterionResult
    /// The result in words a clinician reads without a key: "met" / "not met" for an inclusion,
    /// "applies" / "does not apply" for an exclusion, "cannot tell: … missing" for the unknown.
    public var verdict: String
    public var evidence: [Evidence]
    public var missing: [String]

    /// `disagreeing`: fields present but not usable, each with why ("Bilirubin: values disagree").
    static func verdict(kind: String, result: CriterionResult, missing: [String], disagreeing: [String] = []) -> String {
        switch (result, kind) {
        case (.met, "exclusion"): "does not apply"
        case (.notMet, "exclusion"): "applies"
        case (.met, _): "met"
        case (.notMet, _): "not met"
        case (.cannotTell, _):
            if missing.isEmpty && disagreeing.isEmpty { "cannot tell" } else {
                "cannot tell: " + [
                    missing.isEmpty ? nil : "\(EligibilityAssessment.list(missing)) missing",
                    disagreeing.isEmpty ? nil : EligibilityAssessment.list(disagreeing),
                ].compactMap { $0 }.joined(separator: "; ")
            }
        }
    }
}

public struct EligibilityAssessment: Codable, Equatable, Sendable {
    public var studyVersion: Int
    public var criteria: [CriterionAssessment]

    public var outcome: CriterionResult {
        if criteria.contains(where: { $0.result == .notMet }) { return .notMet }
        if criteria.contains(where: { $0.result == .cannotTell }) { return .cannotTell }
        return .met
    }

    public var failed: [CriterionAssessment] { criteria.filter { $0.result == .notMet } }

    /// The outcome in words: eligible, not eligible (naming how many criteria), or cannot tell yet.
    public var verdict: String {
        switch outcome {
        case .met: return "eligible"
        case .notMet:
            let n = failed.count
            return "not eligible: \(n) \(n == 1 ? "criterion excludes" : "criteria exclude")"
        case .cannotTell:
            let n = criteria.filter { $0.result == .cannotTell }.count
            return "cannot tell yet: \(n) \(n == 1 ? "criterion needs" : "criteria need") data"
        }
    }

    /// "A", "A and B", "A, B and C".
    static func list(_ items: [String]) -> String {
        guard items.count > 1 else { return items.first ?? "" }
        return items.dropLast().joined(separator: ", ") + " and " + items.last!
    }

    /// Every inclusion and exclusion criterion of the study, evaluated on one participant's data.
    /// `conflicts` and `sources` (from `VisitLabValues`): fields whose entries disagree, and where lab-filled values
    /// came from, shown in the evidence.
    public static func assess(
        study: StudyDefinition, site: String?, values: [String: String], conflicts: [String: String] = [:], sources: [String: String] = [:]
    ) throws -> EligibilityAssessment {
        let scope = ExpressionScope(study: study)
        let evaluator = Evaluator(study: study, site: site, values: values, scope: scope)
        var results: [CriterionAssessment] = []
        for (kind, criteria) in [("inclusion", study.eligibility.inclusion), ("exclusion", study.eligibility.exclusion)] {
            for criterion in criteria {
                let expression = try scope.checkCondition(criterion.expression)
                let value = try evaluator.evaluate(expression)
                let result: CriterionResult
                var missing: [String] = []
                switch value {
                case .boolean(let holds):
                    result = (kind == "inclusion") == holds ? .met : .notMet
                case .unknown(let names):
                    result = .cannotTell
                    missing = names.sorted()
                default:
                    throw ExpressionError("criterion \(criterion.code) does not give yes or no")
                }
                var evidence = evaluator.evidence(for: expression)
                for i in evidence.indices {
                    if let note = conflicts[evidence[i].name] ?? sources[evidence[i].name] { evidence[i].note = note }
                }
                func label(_ name: String) -> String { evidence.first { $0.name == name }?.label ?? name }
                let verdict = CriterionAssessment.verdict(
                    kind: kind, result: result, missing: missing.filter { conflicts[$0] == nil }.map(label),
                    // The reason is the note's head: "values disagree", "sampled outside the window".
                    disagreeing: missing.compactMap { name in conflicts[name].map { "\(label(name)): \($0.split(separator: ":").first ?? "")" } })
                results.append(
                    CriterionAssessment(
                        code: criterion.code, kind: kind, text: criterion.text, expression: criterion.expression, result: result,
                        verdict: verdict, evidence: evidence, missing: missing))
            }
        }
        return EligibilityAssessment(studyVersion: study.version, criteria: results)
    }
}

/// Whether an investigator's "eligible" decision still stands on the data as they are now: eligibility stays live
/// until allocation (ICH E6(R2) 4.5.1: the investigator conducts the trial in compliance with the protocol).
public enum EligibilityStanding {
    /// The criteria that no longer support an "eligible" decision; nil while it stands (or no such decision was made).
    public static func unsupported(decision: String?, current: EligibilityAssessment) -> [CriterionAssessment]? {
        guard decision == "eligible", current.outcome != .met else { return nil }
        return current.criteria.filter { $0.result != .met }
    }

    /// "exclusion malignancy applies; inclusion age cannot tell: Birth date missing".
    public static func describe(_ criteria: [CriterionAssessment]) -> String {
        criteria.map { "\($0.kind) \($0.code) \($0.verdict)" }.joined(separator: "; ")
    }
}

/// The consent criterion reads the consent record itself (ICH E6(R2) 4.8.8: consent is documented by the signed and
/// dated form), not a question on a form: `consented` is yes while a consent to the form version in force stands,
/// no once it is withdrawn or superseded, and cannot tell before any consent is recorded.
public enum ConsentRule {
    public static let name = "consented"
    public static let label = "Informed consent on record, to the form version in force"

    /// `records`: each consent's form version and whether it was withdrawn.
    public static func value(records: [(formVersion: String, withdrawn: Bool)], current: String) -> String? {
        guard !records.isEmpty else { return nil }
        return records.contains { $0.formVersion == current && !$0.withdrawn } ? "yes" : "no"
    }
}
