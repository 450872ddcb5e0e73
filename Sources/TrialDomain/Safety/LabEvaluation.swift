import Foundation

/// What a lab entry becomes once evaluated: its value in the canonical unit, the site's range in force for the
/// participant, its grades in both CTCAE versions, its baseline grade and whether it is treatment-emergent.
public struct LabEvaluation: Equatable, Sendable {
    public var test: LabTest
    public var canonical: Double
    public var range: ReferenceRange?
    public var gradeV4: LabGrade?
    public var gradeV5: LabGrade?
    /// Why a version gave no grade, when it gave none.
    public var basisV4: String?
    public var basisV5: String?
    public var baselineGrade: Int?
    /// Worse than baseline (CTCAE v4.03 grade above the baseline's grade).
    public var treatmentEmergent: Bool
}

public enum LabEvaluationError: Error, Equatable, Sendable, CustomStringConvertible {
    case unit(String)
    case implausible(String)
    public var description: String {
        switch self {
        case .unit(let m): "unit: \(m)"
        case .implausible(let m): "value: \(m)"
        }
    }
}

/// The one home of lab evaluation: the API save, the page preview and the demo all come through here.
public enum LabEvaluator {
    /// `sex` is the participant's sex code and `birthDate` their date of birth, read through the study's `participant`
    /// setting; `baseline` is the last baseline value before this sample (see `Baseline`), in the canonical unit.
    public static func evaluate(
        test: LabTest, value: Double, unit: String, collectedAt: Date, study: StudyDefinition, site: String, sex: String?, birthDate: Date?,
        baseline: Double?, tables: [GradingTable]
    ) throws -> LabEvaluation {
        // The study's own conversion factor where its definition states one, else the catalogue's.
        guard let factor = UnitConversions(study: study).toCanonical(analyte: test.analyte, unit: unit) else {
            throw LabEvaluationError.unit("unit '\(unit)' does not fit \(test.analyte) (canonical \(test.unit))")
        }
        let canonical = value * factor
        guard test.plausible.contains(canonical) else {
            throw LabEvaluationError.implausible(
                "\(FormValidator.format(canonical)) \(test.unit) is not a plausible \(test.name) (\(FormValidator.format(test.plausible.lowerBound))–\(FormValidator.format(test.plausible.upperBound)) \(test.unit))")
        }
        let age = birthDate.map { Double(Evaluator.completedYears(born: $0, on: collectedAt)) }
        let ranges = study.sites.first { $0.code == site }?.referenceRanges ?? []
        let range = ReferenceRange.pick(ranges, test: test.code, sex: sex, age: age, on: collectedAt)
        var result = LabEvaluation(test: test, canonical: canonical, range: range, treatmentEmergent: false)
        guard let term = test.ctcae else { return result }
        guard let range, range.high != nil || range.low != nil else {
            let missing = "not graded: no reference range for \(test.code) at site \(site); add it to the site's definition"
            result.basisV4 = missing
            result.basisV5 = missing
            return result
        }
        for table in tables {
            var grade: LabGrade?, why: String?
            do {
                grade = try LabGrader.grade(table: table, term: term, value: canonical, uln: range.high, lln: range.low, baseline: baseline)
            } catch GradingError.missing(let limit) {
                // A range with only one limit cannot grade a term that needs the other: said, not hidden.
                why = "not graded: the site's \(test.code) range has no \(limit.uppercased()), which CTCAE v\(table.version) needs"
            } catch GradingError.unknownTerm {
                continue
            }
            if table.version.hasPrefix("4") {
                result.gradeV4 = grade
                result.basisV4 = grade?.basis ?? why
            } else {
                result.gradeV5 = grade
                result.basisV5 = grade?.basis ?? why
            }
        }
        if let baseline, let v4 = tables.first(where: { $0.version.hasPrefix("4") }) {
            do {
                result.baselineGrade = try LabGrader.grade(table: v4, term: term, value: baseline, uln: range.high, lln: range.low, baseline: nil).grade
            } catch GradingError.missing {
                // As above: the range cannot grade this term, so the baseline has no grade either.
                result.baselineGrade = nil
            }
        }
        // Treatment-emergent: worse than baseline (PROTOCOL.md, "Safety facts"; shift in CTCAE v4.03 grade).
        if let grade = result.gradeV4?.grade, let baselineGrade = result.baselineGrade { result.treatmentEmergent = grade > baselineGrade }
        return result
    }
}
