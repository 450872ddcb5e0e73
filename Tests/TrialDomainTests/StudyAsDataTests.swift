import Foundation
import Testing
@testable import TrialDomain

private func at(_ text: String) -> Date { DateParsing.instant(text)! }

private func event(_ onset: String, grade: Int, attribution: Attribution = .possible, serious: Bool = false, meddra: String = "10002198") -> AdverseEventEntry {
    AdverseEventEntry(meddra: meddra, grade: grade, onsetAt: at(onset), serious: serious, attribution: attribution)
}

/// The mini study with one dose plan, so that doses are time points.
private func dosedStudy() -> StudyDefinition {
    var s = miniStudy()
    s.arms[0].doses = [
        PlannedDose(code: "d1", product: "drug", amount: 1, unit: "mg", anchor: "transplant", target: Offset(1, .days)),
        PlannedDose(code: "d2", product: "drug", amount: 1, unit: "mg", anchor: "d1", target: Offset(7, .days)),
    ]
    return s
}

private func count(_ source: String, _ history: ClinicalHistory?, study s: StudyDefinition = dosedStudy()) throws -> EvaluatedValue {
    let scope = ExpressionScope(study: s)
    return try Evaluator(study: s, site: "S1", values: [:], scope: scope, history: history).evaluate(try scope.checkCondition(source))
}

@Suite struct AdverseEventConditionTests {
    /// Doses on 2026-03-02 and 2026-03-09; events before, between and after them.
    let history = ClinicalHistory(
        adverseEvents: [
            event("2026-03-01T10:00:00Z", grade: 4),  // before the first dose
            event("2026-03-03T10:00:00Z", grade: 3),  // related, after the first dose
            event("2026-03-04T10:00:00Z", grade: 3, attribution: .unrelated),
            event("2026-03-05T10:00:00Z", grade: 2),
            event("2026-03-10T10:00:00Z", grade: 3, serious: true),  // after the second dose
        ],
        anchors: ["transplant": at("2026-03-01T00:00:00Z"), "d1": at("2026-03-02T08:00:00Z"), "d2": at("2026-03-09T08:00:00Z")],
        doses: [at("2026-03-02T08:00:00Z"), at("2026-03-09T08:00:00Z")], asOf: at("2026-03-09T07:00:00Z"))

    /// Before the second dose: since the first, one related event of grade 3 or more (the unrelated one does not count).
    @Test func relatedGradeThreeSinceThePreviousDose() throws {
        #expect(try count("adverse_events(min_grade: 3, related: yes, since: previous_dose) = 1", history) == .boolean(true))
        #expect(try count("adverse_events(min_grade: 3, since: previous_dose) = 2", history) == .boolean(true))
        #expect(try count("adverse_events(since: previous_dose) = 3", history) == .boolean(true))
    }

    /// Events after the moment evaluated do not count; the serious one lies after the second dose.
    @Test func onlyEventsUpToTheMomentCount() throws {
        var later = history
        later.asOf = at("2026-03-11T00:00:00Z")
        #expect(try count("adverse_events(serious: yes) = 0", history) == .boolean(true))
        #expect(try count("adverse_events(serious: yes, since: previous_dose) = 1", later) == .boolean(true))
        #expect(try count("adverse_events(min_grade: 3) = 4", later) == .boolean(true))
    }

    /// A window after a named time point: within 24 h of the first dose only the 2026-03-03 event (26 h later) is out.
    @Test func withinASpanAfterAnAnchor() throws {
        #expect(try count("adverse_events(since: d1, within: 24h) = 0", history) == .boolean(true))
        #expect(try count("adverse_events(since: d1, within: 2d) = 1", history) == .boolean(true))
    }

    /// Before any dose there is no previous dose, so nothing since it: a first dose's check passes.
    @Test func beforeTheFirstDoseNothingCounts() throws {
        var first = history
        first.asOf = at("2026-03-02T07:00:00Z")
        #expect(try count("adverse_events(min_grade: 3, related: yes, since: previous_dose) = 0", first) == .boolean(true))
    }

    /// Without the participant's events (a screening form) the condition cannot tell rather than passing.
    @Test func withoutTheEventsItCannotTell() throws {
        #expect(try count("adverse_events(min_grade: 3) = 0", nil) == .unknown(["adverse_events"]))
    }

    @Test func badInputsAreNamed() {
        let scope = ExpressionScope(study: dosedStudy())
        func message(_ source: String) -> String? {
            do { _ = try scope.checkCondition(source); return nil } catch { return "\(error)" }
        }
        #expect(message("adverse_events(min_grade: 6) = 0")?.contains("min_grade: needs a CTCAE grade from 1 to 5") == true)
        #expect(message("adverse_events(since: breakfast) = 0")?.contains("since: needs an anchor, a dose or previous_dose") == true)
        #expect(message("adverse_events(within: 1d) = 0")?.contains("counts from since:") == true)
        #expect(message("adverse_events(severity: 3) = 0")?.contains("has no input 'severity'") == true)
        #expect(message("adverse_events(term: \"liver\") = 0")?.contains("MedDRA code") == true)
        #expect(message("adverse_events(within: 5 mg/dL, since: d1) = 0")?.contains("span of time") == true)
    }
}

@Suite struct DerivedFieldTests {
    /// The bilirubin to ULN ratio, named once and used in a criterion: 200 / 20 (site S1's ULN) = 10.
    @Test func aDerivedFieldIsUsableByName() throws {
        var s = miniStudy()
        s.derived = [
            DerivedField(code: "bili_ratio", label: "Bilirubin / ULN", expression: "labs.total_bilirubin / bilirubin_uln"),
            DerivedField(code: "jaundiced", label: "Jaundice", expression: "bili_ratio >= 10"),
        ]
        s.eligibility.inclusion[0].expression = "jaundiced"
        #expect(StudyValidator.problems(in: s) == [])
        let scope = ExpressionScope(study: s)
        let evaluator = Evaluator(study: s, site: "S1", values: ["labs.total_bilirubin": "200"], scope: scope)
        #expect(try evaluator.evaluate(try scope.checkCondition("jaundiced")) == .boolean(true))
        #expect(try evaluator.evaluate(try scope.checkCondition("bili_ratio < 10.1")) == .boolean(true))
        let low = Evaluator(study: s, site: "S1", values: ["labs.total_bilirubin": "199"], scope: scope)
        #expect(try low.evaluate(try scope.checkCondition("jaundiced")) == .boolean(false))
        // The evidence names what was entered, not the derived name.
        #expect(evaluator.evidence(for: try scope.checkCondition("jaundiced")).map(\.name) == ["labs.total_bilirubin", "bilirubin_uln"])
    }

    /// A derived field may use only those before it: a loop, a name taken and a broken expression are each named.
    @Test func problemsAreNamedByCode() {
        var s = miniStudy()
        s.derived = [
            DerivedField(code: "a", label: "A", expression: "b + 1"),
            DerivedField(code: "b", label: "B", expression: "a + 1"),
            DerivedField(code: "bilirubin_uln", label: "Taken", expression: "1"),
            DerivedField(code: "c", label: "C", expression: "labs.total_bilirubin >"),
        ]
        let problems = StudyValidator.problems(in: s)
        #expect(problems.contains(StudyProblem("derived[a].expression", "unknown field 'b'")))
        #expect(problems.contains(StudyProblem("derived[bilirubin_uln].code", "'bilirubin_uln' is already a field or parameter")))
        #expect(problems.contains { $0.path == "derived[c].expression" })
    }
}

@Suite struct StudyLabTests {
    /// A lab the catalogue lacks, added by the study with its unit and a conversion its protocol states.
    func withCeruloplasmin() -> StudyDefinition {
        var s = miniStudy()
        s.labs = [StudyLab(code: "CERULO", conversions: [LabConversion(unit: "mg/dL", factor: 10)], name: "Ceruloplasmin", unit: "mg/L", plausible: NumberRange(min: 0, max: 2000))]
        s.forms[0].fields.append(Field(code: "cerulo", label: "Ceruloplasmin", type: .number, unit: "mg/dL", lab: "CERULO"))
        s.sites[0].referenceRanges = [ReferenceRange(test: "CERULO", low: 200, high: 600)]
        return s
    }

    @Test func aStudyAddsALab() throws {
        let s = withCeruloplasmin()
        #expect(StudyValidator.problems(in: s) == [])
        #expect(s.labTest("cerulo")?.unit == "mg/L")
        #expect(s.labTests.map(\.code).contains("CERULO"))
        // 15 mg/dL is 150 mg/L by the study's factor: below 20 mg/dL (200 mg/L) whichever unit the threshold uses.
        let scope = ExpressionScope(study: s)
        let evaluator = Evaluator(study: s, site: "S1", values: ["labs.cerulo": "15"], scope: scope)
        #expect(try evaluator.evaluate(try scope.checkCondition("labs.cerulo < 200 mg/L")) == .boolean(true))
        #expect(try evaluator.evaluate(try scope.checkCondition("labs.cerulo > 149 mg/L")) == .boolean(true))
        let evaluation = try LabEvaluator.evaluate(
            test: s.labTest("CERULO")!, value: 15, unit: "mg/dL", collectedAt: at("2026-03-01T00:00:00Z"), study: s, site: "S1", sex: nil, birthDate: nil,
            baseline: nil, tables: [])
        #expect(evaluation.canonical == 150)
        #expect(evaluation.range?.low == 200)
        #expect(throws: LabEvaluationError.self) {
            try LabEvaluator.evaluate(
                test: s.labTest("CERULO")!, value: 15, unit: "g/L", collectedAt: at("2026-03-01T00:00:00Z"), study: s, site: "S1", sex: nil, birthDate: nil,
                baseline: nil, tables: [])
        }
    }

    @Test func anAddedLabNeedsItsNameAndUnitAndACatalogueLabKeepsItsOwn() {
        var s = miniStudy()
        s.labs = [StudyLab(code: "CERULO"), StudyLab(code: "BILI", unit: "mg/dL"), StudyLab(code: "NEWLAB", name: "N", unit: "U/L", ctcae: "XYZ")]
        let problems = StudyValidator.problems(in: s)
        #expect(problems.contains(StudyProblem("labs[CERULO].name", "a lab the catalogue lacks needs its name")))
        #expect(problems.contains(StudyProblem("labs[CERULO].unit", "a lab the catalogue lacks needs its canonical unit")))
        #expect(problems.contains(StudyProblem("labs[BILI].unit", "BILI is a lab of the catalogue: a study may only add its conversions")))
        #expect(problems.contains { $0.path == "labs[NEWLAB].ctcae" })
    }
}

@Suite struct VisitCompletionTests {
    /// The mini study's day-7 form requires the bilirubin: a form with only the INR does not complete the visit.
    @Test func aVisitIsDoneWhenItsRequiredDataExist() {
        let s = miniStudy()
        let first = at("2026-03-08T09:00:00Z")
        let partial = VisitCompletion.Entered(values: ["labs.inr": "1.2"], labs: [], firstAt: first)
        #expect(VisitCompletion.missing(visit: "day_7", study: s, entered: partial) == ["labs.total_bilirubin"])
        #expect(VisitCompletion.dates(study: s, entered: ["day_7": partial]) == [:])
        let complete = VisitCompletion.Entered(values: ["labs.inr": "1.2", "labs.total_bilirubin": "30"], labs: [], firstAt: first)
        #expect(VisitCompletion.dates(study: s, entered: ["day_7": complete]) == ["day_7": first])
    }

    /// A required field linked to a lab is satisfied by a lab result of that test at the visit, however entered.
    @Test func aLabResultFillsALinkedField() {
        var s = miniStudy()
        s.forms[0].fields[0].lab = "BILI"
        let first = at("2026-03-08T09:00:00Z")
        let byAPI = VisitCompletion.Entered(values: [:], labs: ["BILI"], firstAt: first)
        #expect(VisitCompletion.dates(study: s, entered: ["day_7": byAPI]) == ["day_7": first])
    }
}

@Suite struct AmendedScheduleTests {
    /// Version 2 moves the day-7 visit to day 10 and adds a day-28 visit, for everyone from 2026-03-20.
    func versions() -> (StudyDefinition, StudyDefinition) {
        let v1 = miniStudy()
        var v2 = v1
        v2.version = 2
        v2.visits[1].target = Offset(10, .days)
        v2.visits.append(Visit(code: "day_28", name: "Day 28", anchor: "transplant", target: Offset(28, .days), window: VisitWindow(before: Offset(2, .days), after: Offset(2, .days))))
        v2.forms[0].visits = ["day_28"]
        v2.amendment = AmendmentSettings(appliesTo: .everyone, from: "2026-03-20")
        return (v1, v2)
    }

    /// Transplanted 2026-03-01: day 7 (2026-03-08) fell before the amendment's date and stays; day 28 (2026-03-29) is added.
    @Test func visitsDueBeforeTheDateKeepTheirVersion() {
        let (v1, v2) = versions()
        let merged = AmendedSchedule.follow(v1, then: v2, anchors: ["transplant": at("2026-03-01T00:00:00Z")], calendar: SiteCalendar(zone: SiteCalendar.utc))
        #expect(merged.visits.map(\.code) == ["tx", "day_7", "day_28"])
        #expect(merged.visits[1].target == Offset(7, .days))
        // The day-7 form stays collectable at the visit kept from version 1.
        #expect(merged.forms[0].visits.contains("day_7"))
    }

    /// Transplanted 2026-03-15: day 7 (2026-03-22) falls after the date, so the amended day 10 applies.
    @Test func visitsDueFromTheDateFollowTheAmendment() {
        let (v1, v2) = versions()
        let merged = AmendedSchedule.follow(v1, then: v2, anchors: ["transplant": at("2026-03-15T00:00:00Z")], calendar: SiteCalendar(zone: SiteCalendar.utc))
        #expect(merged.visits.map(\.code) == ["tx", "day_7", "day_28"])
        #expect(merged.visits[1].target == Offset(10, .days))
    }

    @Test func newParticipantsOnlyAndAllAtOnce() {
        var (v1, v2) = versions()
        let anchors = ["transplant": at("2026-03-01T00:00:00Z")]
        v2.amendment = AmendmentSettings(appliesTo: .newParticipants)
        #expect(AmendedSchedule.follow(v1, then: v2, anchors: anchors, calendar: SiteCalendar(zone: SiteCalendar.utc)) == v1)
        v2.amendment = AmendmentSettings(appliesTo: .everyone)
        #expect(AmendedSchedule.follow(v1, then: v2, anchors: anchors, calendar: SiteCalendar(zone: SiteCalendar.utc)) == v2)
        v2.amendment = AmendmentSettings(appliesTo: .newParticipants, from: "2026-13-01")
        #expect(StudyValidator.problems(in: v2).map(\.path) == ["amendment.from", "amendment.from"])
    }
}

@Suite struct LabSampleDateTests {
    /// A form with a required sample time and lab-linked values: a result through the lab API stands for both.
    @Test func aLabResultDatesItsFormsSample() {
        var s = miniStudy()
        s.forms[0].fields[0].required = nil
        s.forms[0].fields[0].lab = "BILI"
        s.forms[0].fields[3].required = true  // labs.drawn, a date
        let first = at("2026-03-08T09:00:00Z")
        #expect(VisitCompletion.missing(visit: "day_7", study: s, entered: VisitCompletion.Entered(values: [:], labs: [], firstAt: first)) == ["labs.drawn"])
        #expect(VisitCompletion.missing(visit: "day_7", study: s, entered: VisitCompletion.Entered(values: [:], labs: ["BILI"], firstAt: first)) == [])
    }
}

@Suite struct RatioTests {
    /// A value over another of the same measure is a plain number, converted first: 5 mg/dL over 17.1 µmol/L
    /// is 85.5 / 17.1 = 5 with the second study's factor.
    @Test func aRatioOfOneMeasureIsAPlainNumber() throws {
        var s = miniStudy()
        s.forms[0].fields[0].lab = "BILI"
        s.labs = [StudyLab(code: "BILI", conversions: [LabConversion(unit: "mg/dL", factor: 17.1)])]
        let scope = ExpressionScope(study: s)
        #expect(try scope.typeOf(try ExpressionParser.parse("labs.total_bilirubin / bilirubin_uln")) == .number(unit: "1"))
        let evaluator = Evaluator(study: s, site: "S1", values: ["labs.total_bilirubin": "85.5"], scope: scope)
        #expect(try evaluator.evaluate(try scope.checkCondition("labs.total_bilirubin / 1 mg/dL = 5")) == .boolean(true))
        #expect(throws: ExpressionError.self) { try scope.checkCondition("labs.total_bilirubin / labs.inr > 1") }
    }
}

@Suite struct EligibilityLabTests {
    /// The mini study's bilirubin field (µmol/L) linked to BILI, with the protocols' 17.1 µmol/L per mg/dL.
    func study() -> StudyDefinition {
        var s = miniStudy()
        s.forms[0].visits = ["day_7"]
        s.forms[0].fields[0].lab = "BILI"
        s.labs = [StudyLab(code: "BILI", conversions: [LabConversion(unit: "mg/dL", factor: 17.1)])]
        return s
    }

    /// A result entered through the lab API in mg/dL fills the form's µmol/L field: 12 mg/dL × 17.1 = 205.2 µmol/L,
    /// at least 10 × the site's ULN of 20, so the inclusion is met without typing the value twice.
    @Test func aLabResultFillsTheFieldItIsLinkedTo() throws {
        let s = study()
        let result = StoredLabResult(test: "BILI", canonical: 205.2, collectedAt: at("2026-03-01T08:00:00Z"), enteredValue: 12, enteredUnit: "mg/dL")
        let merged = VisitLabValues.merge(study: s, visit: "day_7", values: [:], results: [result])
        #expect(merged.values["labs.total_bilirubin"] == "205.2")
        #expect(merged.sources["labs.total_bilirubin"] == "lab result 12 mg/dL, sampled 2026-03-01 08:00 UTC")
        let assessment = try EligibilityAssessment.assess(study: s, site: "S1", values: merged.values, sources: merged.sources)
        #expect(assessment.criteria[0].result == .met)
        #expect(assessment.criteria[0].evidence.first?.note == "lab result 12 mg/dL, sampled 2026-03-01 08:00 UTC")
    }

    /// The finding: form 150 µmol/L and lab result 200 µmol/L for the same sample; the form won silently. Now
    /// neither is used and the criterion cannot tell, naming both.
    @Test func valuesThatDisagreeAreNotUsed() throws {
        let s = study()
        let result = StoredLabResult(test: "BILI", canonical: 200, collectedAt: at("2026-03-01T08:00:00Z"), enteredValue: 200, enteredUnit: "umol/L")
        let merged = VisitLabValues.merge(study: s, visit: "day_7", values: ["labs.total_bilirubin": "150"], results: [result])
        #expect(merged.values["labs.total_bilirubin"] == nil)
        #expect(merged.conflicts["labs.total_bilirubin"] == "values disagree: form 150 umol/L, lab result 200 umol/L, sampled 2026-03-01 08:00 UTC")
        let assessment = try EligibilityAssessment.assess(study: s, site: "S1", values: merged.values, conflicts: merged.conflicts)
        #expect(assessment.criteria[0].result == .cannotTell)
        #expect(assessment.criteria[0].verdict == "cannot tell: Bilirubin: values disagree")
        // The same value entered both ways (11.7 mg/dL is 200.07 µmol/L, within rounding of 200) is one value.
        let same = StoredLabResult(test: "BILI", canonical: 200.07, collectedAt: at("2026-03-01T08:00:00Z"), enteredValue: 11.7, enteredUnit: "mg/dL")
        #expect(VisitLabValues.merge(study: s, visit: "day_7", values: ["labs.total_bilirubin": "200"], results: [same]).conflicts == [:])
    }

    /// A missing value shows no unit; "1 criterion", not "1 criteria".
    @Test func wordsWithoutAKey() throws {
        let assessment = try EligibilityAssessment.assess(study: study(), site: "S1", values: [:])
        #expect(assessment.criteria[0].evidence.first { $0.name == "labs.total_bilirubin" }?.unit == nil)
        #expect(assessment.verdict == "cannot tell yet: 1 criterion needs data")
        #expect(assessment.criteria[0].verdict == "cannot tell: Bilirubin missing")
    }
}

@Suite struct EligibilityLabsReadTests {
    /// The mini study's only criterion reads the bilirubin; once it is linked to BILI, only BILI at the eligibility
    /// visit can change eligibility.
    @Test func onlyTheLabsACriterionReads() {
        var s = miniStudy()
        s.forms[0].fields[0].lab = "BILI"
        s.forms[0].fields[1].lab = "INR"
        s.eligibility.visit = "day_7"
        #expect(VisitLabValues.readByEligibility(study: s) == ["BILI"])
    }
}

@Suite struct SampleWindowTests {
    /// Screening dated by labs.drawn (2026-03-20); samples may be up to 14 days older. A result sampled the day after
    /// is not used, nor one 15 days before (2026-03-05); one 14 days before (2026-03-06) is.
    func study() -> StudyDefinition {
        var s = miniStudy()
        s.forms[0].fields[0].lab = "BILI"
        s.eligibility.visit = "day_7"
        s.eligibility.date = "labs.drawn"
        s.eligibility.samplesWithin = Offset(14, .days)
        return s
    }

    @Test(arguments: [("2026-03-21T08:00:00Z", false), ("2026-03-05T08:00:00Z", false), ("2026-03-06T08:00:00Z", true), ("2026-03-20T23:00:00Z", true)])
    func aSampleOutsideTheWindowIsNotUsed(sampled: String, used: Bool) throws {
        let s = study()
        #expect(StudyValidator.problems(in: s) == [])
        let result = StoredLabResult(test: "BILI", canonical: 250, collectedAt: at(sampled), enteredValue: 250, enteredUnit: "umol/L")
        let merged = VisitLabValues.merge(study: s, visit: "day_7", values: ["labs.drawn": "2026-03-20"], results: [result])
        #expect((merged.values["labs.total_bilirubin"] != nil) == used)
        let assessment = try EligibilityAssessment.assess(study: s, site: "S1", values: merged.values, conflicts: merged.conflicts, sources: merged.sources)
        if used {
            #expect(assessment.criteria[0].result == .met)
        } else {
            #expect(assessment.criteria[0].result == .cannotTell)
            #expect(assessment.criteria[0].verdict == "cannot tell: Bilirubin: sampled outside the window")
            #expect(assessment.criteria[0].evidence.first { $0.name == "labs.total_bilirubin" }?.note?.contains("screening date 2026-03-20") == true)
        }
    }

    /// A form's own values are dated by its first date field: drawn the day after the screening date (labs.seen
    /// here), its bilirubin is not used.
    @Test func aFormSampledAfterScreeningIsNotUsed() throws {
        var s = study()
        s.eligibility.date = "labs.seen"
        let merged = VisitLabValues.merge(
            study: s, visit: "day_7", values: ["labs.seen": "2026-03-20", "labs.drawn": "2026-03-21", "labs.total_bilirubin": "250"], results: [])
        #expect(merged.values["labs.total_bilirubin"] == nil)
        #expect(merged.conflicts["labs.total_bilirubin"]?.hasPrefix("sampled outside the window: 2026-03-21 00:00 UTC, after the screening date 2026-03-20") == true)
        let same = VisitLabValues.merge(
            study: s, visit: "day_7", values: ["labs.seen": "2026-03-20", "labs.drawn": "2026-03-20", "labs.total_bilirubin": "250"], results: [])
        #expect(same.values["labs.total_bilirubin"] == "250")
    }

    @Test func theDateMustBeADateFieldOfTheEligibilityVisit() {
        var s = study()
        s.eligibility.date = "labs.inr"
        #expect(StudyValidator.problems(in: s).contains(StudyProblem("eligibility.date", "'labs.inr' must name a date field (form.field)")))
    }
}
