import Foundation
import Testing
import TrialDomain
import TrialStandards

/// The built-in study's criteria at every boundary, worked by hand from PROTOCOL.md:
/// TBil ≥ 10 × ULN (SYSU3's ULN 17.1 µmol/L, so 171), INR ≥ 1.5 or PT activity < 40 %, age 18–60,
/// ascites or encephalopathy within 28 days before screening, and each exclusion alone.
@Suite struct EligibilityBoundaryTests {
    let study: StudyDefinition

    init() throws { study = try StudyFile.builtIn() }

    /// A participant who meets every criterion; each test changes one thing.
    static let eligible: [String: String] = [
        "demographics.screening_date": "2026-01-10", "demographics.birth_date": "1980-05-01", "demographics.sex": "F",
        "aclf.chronic_liver_disease": "yes", "aclf.ascites": "yes", "aclf.ascites_date": "2026-01-01", "aclf.encephalopathy": "no",
        "aclf.needs_transplant": "yes",
        "history.malignancy": "no", "history.active_infection": "no", "history.combined_transplant": "no", "history.retransplant": "no",
        "history.ebv": "positive", "history.hiv": "negative", "history.hcv": "negative",
        "consented": "yes",
        "labs.total_bilirubin": "200", "labs.inr": "1.8", "labs.pt_activity": "30",
    ]

    func assess(_ changes: [String: String?]) throws -> EligibilityAssessment {
        var values = Self.eligible
        for (key, value) in changes { values[key] = value }
        return try EligibilityAssessment.assess(study: study, site: "SYSU3", values: values)
    }

    func result(_ code: String, _ changes: [String: String?]) throws -> CriterionResult {
        try #require(try assess(changes).criteria.first { $0.code == code }).result
    }

    @Test func theReferenceParticipantIsEligible() throws {
        let assessment = try assess([:])
        #expect(assessment.outcome == .met)
        #expect(assessment.criteria.count == 13)
    }

    @Test(arguments: [("171", CriterionResult.met), ("170.9", .notMet), ("171.1", .met)])
    func bilirubinAtTenTimesTheSiteULN(value: String, expected: CriterionResult) throws {
        #expect(try result("jaundice", ["labs.total_bilirubin": value]) == expected)
    }

    @Test func bilirubinUsesTheSitesULNAndSaysSo() throws {
        let criterion = try #require(try assess([:]).criteria.first { $0.code == "jaundice" })
        #expect(criterion.evidence.contains(Evidence(
            name: "bilirubin_uln", label: "Upper limit of normal, serum total bilirubin (the site's reference range)", value: "17.1", unit: "umol/L",
            note: "site SYSU3's BILI reference range, high limit")))
        #expect(criterion.evidence.contains { $0.name == "labs.total_bilirubin" && $0.value == "200" && $0.unit == "umol/L" })
    }

    @Test(arguments: [
        ("1.5", "50", CriterionResult.met), ("1.49", "50", .notMet), ("1.2", "40", .notMet), ("1.2", "39.9", .met),
    ])
    func coagulopathyINROrProthrombinActivity(inr: String, pt: String, expected: CriterionResult) throws {
        #expect(try result("coagulopathy", ["labs.inr": inr, "labs.pt_activity": pt]) == expected)
    }

    @Test(arguments: [
        ("2008-01-10", CriterionResult.met),  // 18th birthday on the screening day
        ("2008-01-11", .notMet),  // a day before the 18th birthday
        ("1966-01-10", .met),  // 60th birthday
        ("1965-01-11", .met),  // the day before the 61st birthday: still 60
        ("1965-01-10", .notMet),  // 61st birthday
        ("1965-01-09", .notMet),  // a day after the 61st birthday
    ])
    func ageFrom18To60(birth: String, expected: CriterionResult) throws {
        #expect(try result("age", ["demographics.birth_date": birth]) == expected)
    }

    @Test(arguments: [("2025-12-13", CriterionResult.met), ("2025-12-12", .notMet), ("2026-01-11", .notMet)])
    func ascitesWithin28DaysBeforeScreening(date: String, expected: CriterionResult) throws {
        // 13 Dec 2025 is 28 days before 10 Jan 2026; 12 Dec is 29; 11 Jan is after screening.
        #expect(try result("ascites_or_encephalopathy", ["aclf.ascites_date": date]) == expected)
    }

    @Test func encephalopathyAloneSuffices() throws {
        #expect(try result("ascites_or_encephalopathy", ["aclf.ascites": "no", "aclf.encephalopathy": "yes", "aclf.encephalopathy_date": "2025-12-20"]) == .met)
    }

    @Test(arguments: [
        ("malignancy", "history.malignancy", "yes"), ("infection", "history.active_infection", "yes"),
        ("combined_transplant", "history.combined_transplant", "yes"), ("ebv_negative", "history.ebv", "negative"),
        ("hiv_or_hcv", "history.hiv", "positive"), ("hiv_or_hcv", "history.hcv", "positive"), ("retransplant", "history.retransplant", "yes"),
    ])
    func eachExclusionAloneExcludes(code: String, field: String, value: String) throws {
        let assessment = try assess([field: value])
        #expect(assessment.outcome == .notMet)
        #expect(assessment.failed.map(\.code) == [code])
    }

    @Test func missingDataIsCannotTellNotFailure() throws {
        let assessment = try assess(["labs.inr": nil, "labs.pt_activity": nil])
        #expect(assessment.outcome == .cannotTell)
        let coagulopathy = try #require(assessment.criteria.first { $0.code == "coagulopathy" })
        #expect(coagulopathy.result == .cannotTell)
        #expect(coagulopathy.missing == ["labs.inr", "labs.pt_activity"])
        // One side of an "or" is enough when it holds.
        #expect(try result("coagulopathy", ["labs.inr": nil, "labs.pt_activity": "30"]) == .met)
        // A failed criterion outweighs missing data elsewhere.
        #expect(try assess(["labs.inr": nil, "labs.pt_activity": nil, "history.malignancy": "yes"]).outcome == .notMet)
    }

    @Test func theMELDNaStratumFollowsTheCutOff() throws {
        #expect(try AllocationList.stratum(study: study, site: "SYSU3", values: ["labs.meld_na": "29.9"]) == "SYSU3|meld_na<30")
        #expect(try AllocationList.stratum(study: study, site: "SYSU3", values: ["labs.meld_na": "30"]) == "SYSU3|meld_na≥30")
        #expect(throws: RandomizationError.missingStratumValue(field: "labs.meld_na")) {
            try AllocationList.stratum(study: study, site: "SYSU3", values: [:])
        }
        #expect(AllocationList.strata(study: study) == ["SYSU3|meld_na<30", "SYSU3|meld_na≥30"])
    }

    /// The finding: a site whose laboratory range says 21 µmol/L was graded against 21 but screened against 17.1.
    /// The ULN now comes from the range alone: 10 × 21 = 210, so 209.9 is not jaundice enough and 210 is.
    @Test(arguments: [("209.9", CriterionResult.notMet), ("210", .met)])
    func theULNIsTheSitesReferenceRange(value: String, expected: CriterionResult) throws {
        var changed = study
        changed.sites[0].referenceRanges = [ReferenceRange(test: "BILI", high: 21)]
        let assessment = try EligibilityAssessment.assess(study: changed, site: "SYSU3", values: Self.eligible.merging(["labs.total_bilirubin": value]) { $1 })
        #expect(assessment.criteria.first { $0.code == "jaundice" }?.result == expected)
        // A site override of a parameter read from ranges is refused, so there is one source.
        changed.sites[0].parameters = ["bilirubin_uln": 17.1]
        #expect(StudyValidator.problems(in: changed).contains(StudyProblem("sites[SYSU3].parameters.bilirubin_uln", "'bilirubin_uln' is read from the site's reference ranges; set it there")))
    }

    /// The consent criterion reads the consent record: in force is met, withdrawn or superseded is not, none yet
    /// cannot be told (so no screen failure is recorded before consent).
    @Test(arguments: [(String?("yes"), CriterionResult.met), (String?("no"), .notMet), (String?.none, .cannotTell)])
    func consentFromTheRecord(consented: String?, expected: CriterionResult) throws {
        #expect(try result("consent", ["consented": consented]) == expected)
        #expect(ConsentRule.value(records: [], current: "2") == nil)
        #expect(ConsentRule.value(records: [("1", false)], current: "2") == "no")
        #expect(ConsentRule.value(records: [("2", true)], current: "2") == "no")
        #expect(ConsentRule.value(records: [("1", false), ("2", false)], current: "2") == "yes")
    }
}
