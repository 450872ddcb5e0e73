import Foundation
import Testing
import TrialDomain
import TrialStandards

/// The built-in study's edit checks on hand-made 24-hour toxicity forms: each expected outcome follows from the check's
/// own condition as the definition states it.
@Suite struct EditCheckTests {
    let study: StudyDefinition
    init() throws { study = try StudyFile.builtIn() }

    func outcome(_ code: String, _ toxicity: [String: String]) -> EditCheckOutcome? {
        let own = Dictionary(uniqueKeysWithValues: toxicity.map { ("toxicity_24h.\($0.key)", $0.value) })
        return EditChecks.run(study: study, site: "SYSU3", values: own, visitValues: ["safety_24h": own])
            .first { $0.check.code == code && $0.visit == "safety_24h" }?.outcome
    }

    @Test func noToxicityWithAGradeAboveZeroFails() {
        #expect(outcome("toxicity_grade_without_toxicity", ["any_toxicity": "no", "worst_grade": "2"]) == .failed)
        #expect(outcome("toxicity_grade_without_toxicity", ["any_toxicity": "no", "worst_grade": "0"]) == .passed)
        #expect(outcome("toxicity_grade_without_toxicity", ["any_toxicity": "yes", "worst_grade": "2"]) == .passed)
        // No worst grade yet: nothing to say.
        #expect(outcome("toxicity_grade_without_toxicity", ["any_toxicity": "no"]) == .cannotTell)
    }

    @Test func aWorstGradeBelowAReactionsGradeFails() {
        let clean = ["worst_grade": "3", "infusion_reaction_grade": "3", "allergic_reaction_grade": "0", "anaphylaxis_grade": "0", "fever_grade": "1", "crs_grade": "0"]
        #expect(outcome("worst_grade_below_a_reaction", clean) == .passed)
        #expect(outcome("worst_grade_below_a_reaction", clean.merging(["fever_grade": "4"]) { $1 }) == .failed)
    }

    /// A check across visits: a day-7 sample dated before the baseline sample fails; after it passes; without a
    /// baseline sample there is nothing to say.
    @Test func aCheckComparesAValueWithTheSameFieldAtAnotherVisit() {
        func outcome(day7: String, baseline: String?) -> EditCheckOutcome? {
            var visits = ["day_7": ["labs.collected_at": day7]]
            if let baseline { visits["baseline"] = ["labs.collected_at": baseline] }
            return EditChecks.run(study: study, site: "SYSU3", values: [:], visitValues: visits)
                .first { $0.check.code == "sample_before_baseline" && $0.visit == "day_7" }?.outcome
        }
        #expect(outcome(day7: "2026-03-09T08:00", baseline: "2026-03-10T08:00") == .failed)
        #expect(outcome(day7: "2026-03-11T08:00", baseline: "2026-03-10T08:00") == .passed)
        #expect(outcome(day7: "2026-03-11T08:00", baseline: nil) == .cannotTell)
    }

    /// A save runs the checks only when it touched a form some check names or reads.
    @Test func aSaveConcernsTheChecksOnlyThroughTheFormsTheyRead() {
        #expect(EditChecks.concern(study: study, forms: ["toxicity_24h"]))
        // The ascites check reads the screening date on demographics.
        #expect(EditChecks.concern(study: study, forms: ["demographics"]))
        #expect(!EditChecks.concern(study: study, forms: ["history", "clinical"]))
    }

    @Test func aVisitWithNoneOfTheFieldsIsNotJudged() {
        let findings = EditChecks.run(study: study, site: "SYSU3", values: [:], visitValues: [:])
        #expect(findings.isEmpty)
    }

    @Test func checksThatDoNotFitTheStudyAreNamedByCode() throws {
        var broken = study
        broken.dataManagement = DataManagementSettings(
            queryDueDays: 0,
            editChecks: [
                EditCheck(code: "a", message: "m", expression: "labs.alt > 5", severity: .soft, fields: ["labs.nope"]),
                EditCheck(code: "a", message: "", expression: "labs.alt +", severity: .hard, fields: ["labs.alt"], visits: ["week_99"]),
            ],
            verification: VerificationSettings(critical: ["lab.NOPE"], sampleRate: 1.5))
        let paths = EditChecks.problems(in: broken).map(\.path)
        #expect(paths.contains("dataManagement.queryDueDays"))
        #expect(paths.contains("dataManagement.editChecks[a].fields"))
        #expect(paths.contains("dataManagement.editChecks[a].code"))
        #expect(paths.contains("dataManagement.editChecks[a].message"))
        #expect(paths.contains("dataManagement.editChecks[a].visits"))
        #expect(paths.contains("dataManagement.editChecks[a].expression"))
        #expect(paths.contains("dataManagement.verification.sampleRate"))
        #expect(paths.contains("dataManagement.verification.critical"))
        #expect(throws: StudyValidationError.self) { try StudyValidator.validate(broken) }
    }

    @Test func labsAreReadByAChecksFieldsOnlyThroughTheirLinkedFields() {
        #expect(EditChecks.labsRead(study: study).isEmpty)
        var reading = study
        reading.dataManagement?.editChecks?.append(
            EditCheck(code: "ast_alt", message: "m", expression: "labs.ast >= 0", severity: .soft, fields: ["labs.alt"]))
        #expect(EditChecks.labsRead(study: reading) == ["AST", "ALT"])
    }
}
