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
    public var evidence: [Evidence]
    public var missing: [String]
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

    /// Every inclusion and exclusion criterion of the study, evaluated on one participant's data.
    public static func assess(study: StudyDefinition, site: String?, values: [String: String]) throws -> EligibilityAssessment {
        let evaluator = Evaluator(study: study, site: site, values: values)
        var results: [CriterionAssessment] = []
        for (kind, criteria) in [("inclusion", study.eligibility.inclusion), ("exclusion", study.eligibility.exclusion)] {
            for criterion in criteria {
                let expression = try ExpressionParser.parse(criterion.expression)
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
                results.append(
                    CriterionAssessment(
                        code: criterion.code, kind: kind, text: criterion.text, expression: criterion.expression, result: result,
                        evidence: evaluator.evidence(for: expression), missing: missing))
            }
        }
        return EligibilityAssessment(studyVersion: study.version, criteria: results)
    }
}
