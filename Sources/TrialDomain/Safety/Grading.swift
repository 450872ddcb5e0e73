import Foundation

/// One comparison in a CTCAE grade definition: the value against a multiple of ULN, LLN or baseline, or an absolute value.
public struct GradeCondition: Codable, Equatable, Sendable {
    public enum Reference: String, Codable, Sendable { case uln, lln, baseline, value }
    public var of: Reference
    /// Lower bound; exclusive unless `minInclusive` (CTCAE writes ">3.0 - 5.0", lower exclusive, upper inclusive).
    public var min: Double?
    public var minInclusive: Bool?
    public var max: Double?
    /// Upper bound; inclusive unless `maxInclusive` is false ("<LLN - 75": below LLN, exclusive).
    public var maxInclusive: Bool?

    public init(of: Reference, min: Double? = nil, minInclusive: Bool? = nil, max: Double? = nil, maxInclusive: Bool? = nil) {
        self.of = of
        self.min = min
        self.minInclusive = minInclusive
        self.max = max
        self.maxInclusive = maxInclusive
    }
}

/// When a set of conditions applies, for tables (CTCAE v5.0) that grade against baseline when baseline was abnormal.
public enum BaselineApplicability: String, Codable, Sendable {
    case any
    /// Baseline normal, or none known.
    case normal
    /// Baseline above ULN.
    case abnormal
}

public struct GradeRule: Codable, Equatable, Sendable {
    public var grade: Int
    /// The grade's definition as the CTCAE document words it.
    public var text: String
    /// Alternatives (any may hold); each alternative is conditions that must all hold.
    public var when: [[GradeCondition]]
    public var baseline: BaselineApplicability?
}

public struct GradedTerm: Codable, Equatable, Sendable {
    /// SDTM LBTESTCD: ALT, AST, BILI, GGT, INR, CREAT, PLAT, WBC.
    public var code: String
    public var term: String
    public var meddra: String
    public var unit: String
    public var rules: [GradeRule]
}

/// A CTCAE version's laboratory grading rules: data, so a new CTCAE version is a new table.
public struct GradingTable: Codable, Equatable, Sendable {
    public var version: String
    public var source: String
    public var terms: [GradedTerm]

    public func term(_ name: String) -> GradedTerm? {
        let key = name.lowercased()
        return terms.first { $0.code.lowercased() == key || $0.term.lowercased() == key }
    }
}

public struct LabGrade: Codable, Equatable, Sendable {
    public var term: String
    public var code: String
    public var version: String
    public var grade: Int
    public var basis: String
    /// Whether the baseline-relative rules were used (an abnormal baseline under a table that has them).
    public var againstBaseline: Bool
}

public enum GradingError: Error, Equatable, Sendable, CustomStringConvertible {
    case unknownTerm(String, known: [String])
    case missing(String)
    case invalid(String)

    public var description: String {
        switch self {
        case .unknownTerm(let t, let known): "term: '\(t)' is not graded in this table (known: \(known.joined(separator: ", ")))"
        case .missing(let what): "\(what): is required to grade this term"
        case .invalid(let why): why
        }
    }
}

public enum LabGrader {
    /// The highest grade whose definition holds; 0 when none does.
    public static func grade(
        table: GradingTable, term name: String, value: Double, uln: Double?, lln: Double?, baseline: Double?
    ) throws -> LabGrade {
        guard let term = table.term(name) else { throw GradingError.unknownTerm(name, known: table.terms.map(\.code)) }
        guard value.isFinite, value >= 0 else { throw GradingError.invalid("value: must be a number of at least 0") }
        // A baseline above ULN is an abnormal baseline.
        let abnormalBaseline = baseline.map { b in uln.map { b > $0 } ?? false } ?? false
        var best: (rule: GradeRule, alternative: [GradeCondition])?
        var usedBaseline = false
        for rule in term.rules {
            switch rule.baseline ?? .any {
            case .normal where abnormalBaseline: continue
            case .abnormal where !abnormalBaseline: continue
            default: break
            }
            for alternative in rule.when {
                let needs = Set(alternative.map(\.of))
                if needs.contains(.uln) && uln == nil { throw GradingError.missing("uln") }
                if needs.contains(.lln) && lln == nil { throw GradingError.missing("lln") }
                // A baseline-relative alternative simply does not apply when no baseline is known.
                if needs.contains(.baseline) && baseline == nil { continue }
                let holds = alternative.allSatisfy { condition in
                    let reference: Double? =
                        switch condition.of {
                        case .uln: uln
                        case .lln: lln
                        case .baseline: baseline
                        case .value: 1
                        }
                    guard let reference, reference > 0 else { return false }
                    return within(value / reference, condition)
                }
                if holds, rule.grade > (best?.rule.grade ?? 0) {
                    best = (rule, alternative)
                    usedBaseline = alternative.contains { $0.of == .baseline }
                }
            }
        }
        var basis = "CTCAE v\(table.version) \(term.term) (MedDRA \(term.meddra))"
        if let best {
            basis += ", grade \(best.rule.grade): \(best.rule.text)"
        } else {
            basis += ", grade 0: within no grade's definition"
        }
        var used: [String] = []
        if let uln { used.append("ULN \(FormValidator.format(uln)) \(term.unit)") }
        if let lln { used.append("LLN \(FormValidator.format(lln)) \(term.unit)") }
        if let baseline { used.append("baseline \(FormValidator.format(baseline)) \(term.unit) (\(abnormalBaseline ? "abnormal" : "normal"))") }
        basis += "; value \(FormValidator.format(value)) \(term.unit)" + (used.isEmpty ? "" : "; " + used.joined(separator: ", "))
        return LabGrade(term: term.term, code: term.code, version: table.version, grade: best?.rule.grade ?? 0, basis: basis, againstBaseline: usedBaseline)
    }

    static func within(_ x: Double, _ c: GradeCondition) -> Bool {
        // Decimal thresholds: a ratio within 1e-9 of a bound sits on it.
        func equal(_ a: Double, _ b: Double) -> Bool { abs(a - b) <= 1e-9 * max(1, abs(a), abs(b)) }
        if let min = c.min {
            let inclusive = c.minInclusive ?? false
            if inclusive ? (x < min && !equal(x, min)) : (x < min || equal(x, min)) { return false }
        }
        if let max = c.max {
            let inclusive = c.maxInclusive ?? true
            if inclusive ? (x > max && !equal(x, max)) : (x > max || equal(x, max)) { return false }
        }
        return true
    }
}
