import Foundation
import Testing
import TrialDomain
import TrialStandards

/// The second study's criteria at every boundary, worked by hand from ../shared/protocol/SECOND-STUDY.md:
/// age 18–70; total bilirubin ≥ 5 mg/dL (85.5 µmol/L at the protocol's 17.1); INR ≥ 1.5 or prothrombin activity
/// < 40 %; ascites or encephalopathy within 4 weeks; before onset, platelets < 50 × 10^9/L or Child–Pugh > 9;
/// immunosuppressants within 1 month (30 days).
@Suite struct SecondStudyEligibilityTests {
    let study: StudyDefinition

    init() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        study = try StudyFile.read(try String(contentsOf: root.appendingPathComponent("studies/ucmsc-aclf.yaml"), encoding: .utf8))
    }

    /// Screened on 2026-01-05, meeting every criterion; each test changes one thing.
    static let eligible: [String: String] = [
        "demographics.screening_date": "2026-01-05", "demographics.birth_date": "1976-01-01", "demographics.sex": "M",
        "aclf.acute_liver_injury": "yes", "aclf.chronic_liver_disease": "yes", "aclf.ascites": "yes", "aclf.ascites_date": "2025-12-20",
        "aclf.encephalopathy": "no",
        "history.aki": "no", "history.ugi_bleeding": "no", "history.he_grade_2plus": "no", "history.uncontrolled_infection": "no",
        "history.platelets_before": "120", "history.bilirubin_before": "30", "history.albumin_before": "40", "history.inr_before": "1.1",
        "history.ascites_before": "none", "history.he_before": "0",
        "history.malignancy": "no", "history.transplant": "no", "history.extrahepatic": "no", "history.thrombosis": "no", "history.pregnancy": "no",
        "history.allergy": "no", "history.drug_abuse": "no", "history.alcohol_withdrawal": "no", "history.mental_disorder": "no",
        "history.other_trial": "no",
        "conmeds.immunomodulator": "no",
        "consented": "yes",
        "labs.total_bilirubin": "120", "labs.inr": "1.8", "labs.pt_activity": "35",
    ]

    func result(_ code: String, _ changes: [String: String?]) throws -> CriterionResult {
        var values = Self.eligible
        for (key, value) in changes { values[key] = value }
        let assessment = try EligibilityAssessment.assess(study: study, site: study.sites[0].code, values: values)
        return try #require(assessment.criteria.first { $0.code == code }).result
    }

    @Test func theReferenceParticipantIsEligible() throws {
        let assessment = try EligibilityAssessment.assess(study: study, site: study.sites[0].code, values: Self.eligible)
        #expect(assessment.outcome == .met, "\(assessment.criteria.filter { $0.result != .met }.map(\.verdict))")
    }

    /// 18 on the screening day is in, 17 out; 70 (71st birthday the next day) is in, 71 out.
    @Test(arguments: [("2008-01-05", CriterionResult.met), ("2008-01-06", .notMet), ("1955-01-06", .met), ("1955-01-05", .notMet)])
    func ageFrom18To70(birth: String, expected: CriterionResult) throws {
        #expect(try result("age", ["demographics.birth_date": birth]) == expected)
    }

    /// 5 mg/dL × 17.1 = 85.5 µmol/L.
    @Test(arguments: [("85.5", CriterionResult.met), ("85.4", .notMet)])
    func jaundiceAtFiveMilligramsPerDecilitre(value: String, expected: CriterionResult) throws {
        #expect(try result("jaundice", ["labs.total_bilirubin": value]) == expected)
    }

    @Test(arguments: [("1.5", "50", CriterionResult.met), ("1.49", "40", .notMet), ("1.49", "39.9", .met)])
    func coagulopathyINROrProthrombinActivity(inr: String, pt: String, expected: CriterionResult) throws {
        #expect(try result("coagulopathy", ["labs.inr": inr, "labs.pt_activity": pt]) == expected)
    }

    /// 28 days before 2026-01-05 is 2025-12-08 (in); 2025-12-07 is 29 days (out); a date after screening is out.
    @Test(arguments: [("2025-12-08", CriterionResult.met), ("2025-12-07", .notMet), ("2026-01-06", .notMet)])
    func ascitesWithinFourWeeks(date: String, expected: CriterionResult) throws {
        #expect(try result("ascites_or_encephalopathy", ["aclf.ascites_date": date]) == expected)
    }

    /// Platelets before onset: 49.9 excludes, 50 does not.
    @Test(arguments: [("49.9", CriterionResult.notMet), ("50", .met)])
    func plateletsBeforeOnset(value: String, expected: CriterionResult) throws {
        #expect(try result("before_onset", ["history.platelets_before": value]) == expected)
    }

    /// Child–Pugh (Pugh et al., Br J Surg 1973): bilirubin 60 µmol/L (3.5 mg/dL, > 3: 3 points), albumin 25 g/L
    /// (2.5 g/dL, < 2.8: 3), no ascites (1), no encephalopathy (1), with INR 1.1 (< 1.7: 1) scores 9, which does not
    /// exclude; INR 2.0 (1.7–2.3: 2) scores 10, which does.
    @Test(arguments: [("1.1", CriterionResult.met), ("2.0", .notMet)])
    func childPughAboveNineBeforeOnset(inr: String, expected: CriterionResult) throws {
        #expect(try result("before_onset", ["history.bilirubin_before": "60", "history.albumin_before": "25", "history.inr_before": inr]) == expected)
    }

    /// An immunosuppressant last taken 30 days before screening (2025-12-06) excludes; 31 days (2025-12-05) does not;
    /// one taken with no date cannot be told.
    @Test(arguments: [(String?("2025-12-06"), CriterionResult.notMet), (String?("2025-12-05"), .met), (String?.none, .cannotTell)])
    func immunosuppressantWithinAMonth(last: String?, expected: CriterionResult) throws {
        #expect(try result("immunomodulators", ["conmeds.immunomodulator": "yes", "conmeds.immunomodulator_last": last]) == expected)
    }
}
