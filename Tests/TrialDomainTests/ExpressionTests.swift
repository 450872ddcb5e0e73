import Foundation
import Testing
@testable import TrialDomain

/// The mini study with lab-linked fields, the second study's 17.1 µmol/L per mg/dL, and clinical findings for scores.
private func study(bilirubinFactor: Double? = 17.1) -> StudyDefinition {
    var s = miniStudy()
    s.forms[0].fields += [
        Field(code: "bili", label: "Total bilirubin", type: .number, unit: "umol/L", lab: "BILI"),
        Field(code: "albumin", label: "Albumin", type: .number, unit: "g/L", lab: "ALB"),
        Field(code: "inr_linked", label: "INR", type: .number, unit: "ratio", lab: "INR"),
        Field(code: "ascites", label: "Ascites", type: .choice, choices: [Choice(code: "none", label: "None"), Choice(code: "mild", label: "Mild"), Choice(code: "moderate-severe", label: "Moderate to severe")]),
        Field(code: "he", label: "HE grade", type: .integer, unit: "1"),
    ]
    if let bilirubinFactor {
        s.labs = [StudyLab(code: "BILI", conversions: [LabConversion(unit: "mg/dL", factor: bilirubinFactor, source: "SECOND-STUDY.md: 1 mg/dL = 17.1 µmol/L")])]
    }
    return s
}

private func evaluate(_ source: String, _ values: [String: String], study s: StudyDefinition = study()) throws -> EvaluatedValue {
    let scope = ExpressionScope(study: s)
    return try Evaluator(study: s, site: "S1", values: values, scope: scope).evaluate(try scope.checkCondition(source))
}

@Suite struct UnitExpressionTests {
    /// 18 ≤ age ≤ 60 reads as both comparisons. On 2026-03-01, born 1965-03-01 is 61, 1965-03-02 is 60, 2008-03-01 is 18, 2008-03-02 is 17.
    @Test(arguments: [("1965-03-01", false), ("1965-03-02", true), ("2008-03-01", true), ("2008-03-02", false)])
    func chainedComparisons(born: String, inside: Bool) throws {
        let source = "18 <= age_years(labs.drawn, labs.seen) <= 60"
        #expect(try evaluate(source, ["labs.drawn": born, "labs.seen": "2026-03-01"]) == .boolean(inside))
    }

    /// The second study's jaundice criterion in mg/dL against a site that reports µmol/L: 5 mg/dL × 17.1 = 85.5 µmol/L.
    @Test(arguments: [(85.5, true), (85.4, false), (100.0, true)])
    func aMgPerDLThresholdReadsAMicromolarValue(value: Double, met: Bool) throws {
        #expect(try evaluate("labs.bili >= 5 mg/dL", ["labs.bili": String(value)]) == .boolean(met))
    }

    /// Without the study's factor the catalogue's (from the molar mass, 17.104) applies: 85.5 µmol/L is just under 5 mg/dL.
    @Test func theCatalogueFactorAppliesWhereTheStudyStatesNone() throws {
        #expect(try evaluate("labs.bili >= 5 mg/dL", ["labs.bili": "85.5"], study: study(bilirubinFactor: nil)) == .boolean(false))
        #expect(try evaluate("labs.bili >= 5 mg/dL", ["labs.bili": "85.53"], study: study(bilirubinFactor: nil)) == .boolean(true))
    }

    @Test func aUnitThatDoesNotConvertIsRefusedByName() {
        let scope = ExpressionScope(study: study())
        #expect(throws: ExpressionError.self) { try scope.checkCondition("labs.inr_linked >= 5 mg/dL") }
        do {
            _ = try scope.checkCondition("labs.inr >= 5 mg/dL")
        } catch let error as ExpressionError {
            #expect(error.message == "cannot compare labs.inr in ratio with 5 mg/dL")
        } catch { Issue.record("\(error)") }
    }

    /// Within 4 weeks before screening: 0 to 28 days before, the same day included.
    @Test(arguments: [("2026-03-01", true), ("2026-02-01", true), ("2026-01-31", false), ("2026-03-02", false)])
    func withinWeeksBefore(seen: String, inside: Bool) throws {
        #expect(try evaluate("labs.seen within 4w before labs.drawn", ["labs.seen": seen, "labs.drawn": "2026-03-01"]) == .boolean(inside))
    }

    @Test func aDaySpanComparesWithWeeks() throws {
        #expect(try evaluate("days_between(labs.seen, labs.drawn) <= 4w", ["labs.seen": "2026-02-01", "labs.drawn": "2026-03-01"]) == .boolean(true))
    }

    @Test func arithmeticFunctions() throws {
        // ln(2.0) = 0.6931; rounded to 2 places, 0.69.
        #expect(try evaluate("round(ln(labs.inr), 2) = 0.69", ["labs.inr": "2.0"]) == .boolean(true))
        #expect(try evaluate("log10(labs.inr) = 1", ["labs.inr": "10"]) == .boolean(true))
        #expect(try evaluate("abs(0 - labs.inr) = 2", ["labs.inr": "2"]) == .boolean(true))
        #expect(try evaluate("max(labs.bili, 2 mg/dL) = 34.2", ["labs.bili": "20"]) == .boolean(true))
        #expect(try evaluate("min(labs.inr, 1.5) < 1.6", [:]) == .unknown(["labs.inr"]))
        #expect(try evaluate("exp(0) = 1", [:]) == .boolean(true))
    }

    /// Child–Pugh (Pugh 1973, INR for prothrombin time): bilirubin 200 µmol/L = 11.7 mg/dL (> 3: 3 points), albumin 25 g/L = 2.5 g/dL
    /// (< 2.8: 3), INR 2.0 (1.7–2.3: 2), mild ascites (2), encephalopathy grade 1 (2): 12, over the second study's limit of 9.
    @Test func aScoreByNameInACriterion() throws {
        let source = "child_pugh(bilirubin: labs.bili, albumin: labs.albumin, inr: labs.inr_linked, ascites: labs.ascites, encephalopathy: labs.he) > 9"
        let values = ["labs.bili": "200", "labs.albumin": "25", "labs.inr_linked": "2.0", "labs.ascites": "mild", "labs.he": "1"]
        #expect(try evaluate(source, values) == .boolean(true))
        // Bilirubin 30 µmol/L = 1.75 mg/dL (1), albumin 40 g/L (1), INR 1.2 (1), no ascites (1), no encephalopathy (1): 5.
        let mild = ["labs.bili": "30", "labs.albumin": "40", "labs.inr_linked": "1.2", "labs.ascites": "none", "labs.he": "0"]
        #expect(try evaluate("child_pugh(bilirubin: labs.bili, albumin: labs.albumin, inr: labs.inr_linked, ascites: labs.ascites, encephalopathy: labs.he) = 5", mild) == .boolean(true))
        var partial = values
        partial["labs.albumin"] = nil
        #expect(try evaluate(source, partial) == .unknown(["labs.albumin"]))
        #expect(throws: ExpressionError.self) { try ExpressionScope(study: study()).checkCondition("child_pugh(bilirubin: labs.bili, colour: 3) > 9") }
    }

    @Test func renderedBackForMessages() throws {
        #expect(render(try ExpressionParser.parse("labs.bili >= 5 mg/dL")) == "labs.bili >= 5 mg/dL")
        #expect(render(try ExpressionParser.parse("labs.seen within 4w before labs.drawn")) == "labs.seen within 4w before labs.drawn")
    }
}

@Suite struct CriterionWordingTests {
    /// An exclusion that holds "applies"; one that does not "does not apply"; inclusions are met or not met.
    @Test func exclusionsApplyInclusionsAreMet() throws {
        var s = study()
        s.eligibility.exclusion = [Criterion(code: "high_inr", text: "INR above 3", expression: "labs.inr > 3")]
        let excluded = try EligibilityAssessment.assess(study: s, site: "S1", values: ["labs.total_bilirubin": "300", "labs.inr": "4"])
        #expect(excluded.criteria.map(\.verdict) == ["met", "applies"])
        #expect(excluded.verdict == "not eligible: 1 criterion excludes")
        let fine = try EligibilityAssessment.assess(study: s, site: "S1", values: ["labs.total_bilirubin": "300", "labs.inr": "1"])
        #expect(fine.criteria.map(\.verdict) == ["met", "does not apply"])
        #expect(fine.verdict == "eligible")
        let unknown = try EligibilityAssessment.assess(study: s, site: "S1", values: [:])
        #expect(unknown.criteria.map(\.verdict) == ["cannot tell: Bilirubin missing", "cannot tell: INR missing"])
        #expect(unknown.verdict == "cannot tell yet: 2 criteria need data")
    }
}
