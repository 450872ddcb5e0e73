import Foundation
import Testing
@testable import TrialDomain

/// A small, valid study built in code, so each test can break exactly one rule.
func miniStudy() -> StudyDefinition {
    StudyDefinition(
        schemaVersion: 1, code: "MINI", version: 1,
        identity: StudyIdentity(
            title: "Mini", shortTitle: "Mini", acronym: nil, registryIds: [], sponsor: "S", products: [], conditions: [],
            phase: "PHASE1", studyType: "INTERVENTIONAL", allocation: "RANDOMIZED", interventionModel: "PARALLEL", masking: "NONE",
            purpose: "TREATMENT", description: nil),
        lifecycle: Lifecycle(
            history: [StatusChange(status: .recruiting, date: "2025-01-01", reason: nil)], enrollment: Enrollment(target: 20, actual: nil),
            dates: StudyDates(start: "2025-01-01", primaryCompletion: nil, completion: nil, recordUpdated: nil)),
        sites: [SiteDefinition(code: "S1", name: "Site 1", parameters: ["bilirubin_uln": 20])],
        parameters: [Parameter(code: "bilirubin_uln", label: "ULN bilirubin", value: 17.1, unit: "umol/L")],
        arms: [
            Arm(code: "a", name: "A", type: "EXPERIMENTAL", ratio: 1, interventions: ["drug"], description: nil),
            Arm(code: "b", name: "B", type: "NO_INTERVENTION", ratio: 1, interventions: [], description: nil),
        ],
        interventions: [Intervention(code: "drug", name: "Drug", type: "DRUG", dose: Dose(amount: 1, unit: "mg"), route: nil, frequency: nil, description: nil)],
        anchors: [Anchor(code: "transplant", label: "Transplant", description: nil)],
        visits: [
            Visit(code: "tx", name: "Transplant", anchor: nil, target: nil, window: nil, defines: "transplant"),
            Visit(code: "day_7", name: "Day 7", anchor: "transplant", target: Offset(7, .days), window: VisitWindow(before: Offset(1, .days), after: Offset(1, .days)), defines: nil),
        ],
        forms: [
            Form(code: "labs", name: "Labs", visits: ["day_7"], fields: [
                Field(code: "total_bilirubin", label: "Bilirubin", type: .number, unit: "umol/L", range: NumberRange(min: 0, max: 1500), required: true, choices: nil, loinc: nil),
                Field(code: "inr", label: "INR", type: .number, unit: "ratio", range: nil, required: nil, choices: nil, loinc: nil),
                Field(code: "sex", label: "Sex", type: .choice, unit: nil, range: nil, required: nil, choices: [Choice(code: "F", label: "Female")], loinc: nil),
                Field(code: "drawn", label: "Drawn", type: .date, unit: nil, range: nil, required: nil, choices: nil, loinc: nil),
                Field(code: "seen", label: "Seen", type: .date, unit: nil, range: nil, required: nil, choices: nil, loinc: nil),
            ])
        ],
        eligibility: Eligibility(
            inclusion: [Criterion(code: "jaundice", text: "TBil ≥ 10 × ULN", expression: "labs.total_bilirubin ≥ 10 × bilirubin_uln")],
            exclusion: []),
        endpoints: [Endpoint(code: "tox", kind: .primary, measure: "Toxicity", timeFrame: "24 h", description: nil)],
        randomization: RandomizationSettings(method: "permuted_blocks", blockSizes: [2, 4], stratifyBySite: true, factors: [], window: nil),
        consent: ConsentSettings(current: "1", versions: [ConsentVersion(version: "1", date: "2025-01-01")]),
        safety: SafetySettings(ctcaeVersion: "4.0", saeReportingHours: 24, gradeAgainstBaseline: true, primaryEndpointWindowHours: 24))
}

@Suite struct StudyValidationTests {
    @Test func theMiniStudyIsValid() {
        #expect(StudyValidator.problems(in: miniStudy()) == [])
    }

    @Test func aWindowOnAnUnknownAnchorIsNamed() {
        var study = miniStudy()
        study.visits[1].anchor = "time_zero"
        #expect(StudyValidator.problems(in: study) == [StudyProblem("visits[day_7].anchor", "names unknown anchor 'time_zero'")])
    }

    @Test func anExpressionNamingAnUnknownFieldIsNamed() {
        var study = miniStudy()
        study.eligibility.inclusion[0].expression = "labs.bilirubin >= 10 * bilirubin_uln"
        #expect(StudyValidator.problems(in: study) == [StudyProblem("eligibility.inclusion[jaundice].expression", "unknown field 'labs.bilirubin'")])
    }

    @Test func comparingABilirubinWithAnINRIsRefused() {
        var study = miniStudy()
        study.eligibility.inclusion[0].expression = "labs.total_bilirubin >= labs.inr"
        #expect(StudyValidator.problems(in: study) == [
            StudyProblem("eligibility.inclusion[jaundice].expression", "cannot compare labs.total_bilirubin in umol/L with labs.inr in ratio")
        ])
    }

    @Test func aDuplicateCodeIsNamed() {
        var study = miniStudy()
        study.arms[1].code = "a"
        #expect(StudyValidator.problems(in: study).contains(StudyProblem("arms[a]", "duplicate code 'a'")))
    }

    @Test func aChoiceListWithNoChoicesIsRefused() {
        var study = miniStudy()
        study.forms[0].fields[2].choices = []
        #expect(StudyValidator.problems(in: study) == [StudyProblem("forms[labs].fields[sex].choices", "a choice list needs at least one choice")])
    }

    @Test func aTypicalRangeMustLieWithinTheFieldsRange() {
        var study = miniStudy()
        study.forms[0].fields[0].typical = NumberRange(min: 5, max: 30)
        #expect(StudyValidator.problems(in: study) == [])
        study.forms[0].fields[0].typical = NumberRange(min: 5, max: 2000)
        #expect(StudyValidator.problems(in: study) == [StudyProblem("forms[labs].fields[total_bilirubin].typical", "max 2000.0 lies above the field's range (1500.0)")])
        study.forms[0].fields[0].typical = NumberRange(min: 5)
        #expect(StudyValidator.problems(in: study) == [StudyProblem("forms[labs].fields[total_bilirubin].typical", "needs a min and a max, min not above max")])
        study.forms[0].fields[0].typical = nil
        study.forms[0].fields[3].typical = NumberRange(min: 1, max: 2)
        #expect(StudyValidator.problems(in: study) == [StudyProblem("forms[labs].fields[drawn].typical", "only a number has a typical range")])
    }

    @Test func everyProblemIsReportedAtOnce() {
        var study = miniStudy()
        study.visits[1].anchor = "nowhere"
        study.forms[0].visits = ["week_52"]
        study.arms[0].interventions = ["placebo"]
        study.consent.current = "2"
        study.randomization.blockSizes = [3]
        study.lifecycle.history.append(StatusChange(status: .suspended, date: "2025-02-01", reason: nil))
        let paths = StudyValidator.problems(in: study).map(\.path)
        #expect(paths == [
            "lifecycle.history[1].reason", "arms[a].interventions", "visits[day_7].anchor", "forms[labs].visits",
            "randomization.blockSizes", "consent.current",
        ])
    }

    @Test func aSiteMayOnlyOverrideAKnownParameter() {
        var study = miniStudy()
        study.sites[0].parameters = ["alt_uln": 40]
        #expect(StudyValidator.problems(in: study) == [StudyProblem("sites[S1].parameters.alt_uln", "names unknown parameter 'alt_uln'")])
        #expect(miniStudy().parameterValue("bilirubin_uln", site: "S1") == 20)
        #expect(miniStudy().parameterValue("bilirubin_uln", site: "S9") == 17.1)
    }
}

@Suite struct ExpressionTests {
    let scope = ExpressionScope(study: miniStudy())

    @Test(arguments: [
        "labs.total_bilirubin >= 10 × bilirubin_uln",
        "labs.inr ≥ 1.5 or labs.inr < 40 %",
        "labs.sex = 'F'",
        "days_between(labs.drawn, labs.seen) <= 28",
        "not (labs.total_bilirubin < 5)",
    ])
    func conditionsThatTypeCheck(source: String) throws {
        _ = try scope.checkCondition(source)
    }

    @Test(arguments: [
        ("labs.total_bilirubin >= labs.inr", "cannot compare labs.total_bilirubin in umol/L with labs.inr in ratio"),
        ("labs.sex = 'X'", "'X' is not one of the choices (F)"),
        ("labs.total_bilirubin", "must be a yes/no condition, but gives a number in umol/L"),
        ("labs.total_bilirubin >= 10 ×", "a value was expected, found the end"),
        ("labs.inr >= 1.5 or labs.inr", "'or' joins yes/no conditions; labs.inr is a number in ratio"),
        ("bilirubin_uln * labs.total_bilirubin > 1", "cannot multiply bilirubin_uln by labs.total_bilirubin: both carry units"),
        ("weeks_between(labs.drawn, labs.seen) < 4", "unknown function 'weeks_between' (known: aarc, abs, age_years, child_pugh, clif_c_aclf, clif_c_of, days_between, exp, ln, log10, max, meld, meld_3, meld_na, min, round)"),
        ("labs.drawn < 3", "cannot compare labs.drawn (a date) with 3 (a number)"),
    ])
    func conditionsThatAreRefused(source: String, message: String) {
        #expect(throws: ExpressionError(message)) { try scope.checkCondition(source) }
    }

    @Test func precedenceIsAndBeforeOr() throws {
        let parsed = try ExpressionParser.parse("a = yes or b = yes and c = yes")
        guard case .binary(.or, _, .binary(.and, _, _)) = parsed else {
            Issue.record("parsed as \(render(parsed))")
            return
        }
    }
}

@Suite struct StudyDiffTests {
    @Test func changesAreListedByPathWithCodedItemsMatchedByCode() {
        let old = miniStudy()
        var new = old
        new.version = 2
        new.visits[1].window = VisitWindow(before: Offset(2, .days), after: Offset(2, .days))
        new.forms[0].fields.remove(at: 1)
        new.endpoints.append(Endpoint(code: "ae", kind: .secondary, measure: "Adverse events", timeFrame: "6 months", description: nil))
        new.identity.title = "Mini II"
        let lines = StudyDiff.changes(from: old, to: new).map(\.description)
        #expect(lines == [
            "added endpoints[ae]: ae (Adverse events)",
            "removed forms[labs].fields[inr]: inr (INR)",
            "changed identity.title: Mini → Mini II",
            "changed version: 1 → 2",
            "changed visits[day_7].window.after: 1d → 2d",
            "changed visits[day_7].window.before: 1d → 2d",
        ])
    }

    @Test func identicalDefinitionsHaveNoChanges() {
        #expect(StudyDiff.changes(from: miniStudy(), to: miniStudy()).isEmpty)
    }
}

@Suite struct ScheduleTests {
    @Test func theGridPlacesEachFormAtItsVisits() {
        let grid = ScheduleGrid(study: miniStudy())
        #expect(grid.rows.map(\.visit) == ["tx", "day_7"])
        #expect(grid.rows[1].forms == ["labs"])
        #expect(grid.rows[1].timing == "transplant +7d ±1d")
        #expect(grid.rows[0].timing == "defines transplant")
    }

    @Test(arguments: [("24h", Offset(24, .hours)), ("-28d", Offset(-28, .days)), ("0d", Offset(0, .days)), ("12w", Offset(12, .weeks))])
    func offsetsReadFromText(text: String, offset: Offset) {
        #expect(Offset(text: text) == offset)
    }

    @Test(arguments: ["24", "7m", "d", "", "1.5d"])
    func badOffsetsAreRefused(text: String) {
        #expect(Offset(text: text) == nil)
    }
}

@Suite struct FormValidatorTests {
    let form = miniStudy().forms[0]

    @Test(arguments: [("171", "171"), ("171 umol/L", "171"), ("171 µmol/L", "171"), ("0171.50", "171.5")])
    func numbersInTheFieldsUnit(raw: String, stored: String) throws {
        #expect(try FormValidator.validate(["total_bilirubin": raw], form: form)["total_bilirubin"] == stored)
    }

    @Test(arguments: [
        ("10 mg/dL", "total_bilirubin: unit 'mg/dL' does not fit this field, which is in umol/L"),
        ("-1", "total_bilirubin: must be at least 0 umol/L"),
        ("1501", "total_bilirubin: must be at most 1500 umol/L"),
        ("high", "total_bilirubin: must be a number in umol/L"),
    ])
    func badNumbersAreNamed(raw: String, message: String) {
        #expect(throws: FormValidationError(problems: [FieldProblem("total_bilirubin", String(message.dropFirst("total_bilirubin: ".count)))])) {
            try FormValidator.validate(["total_bilirubin": raw], form: form)
        }
    }

    @Test func requiredUnknownDateAndChoiceProblemsComeTogether() {
        #expect(throws: FormValidationError(problems: [
            FieldProblem("colour", "is not a field of form 'labs'"), FieldProblem("total_bilirubin", "is required"),
            FieldProblem("sex", "must be one of F"), FieldProblem("drawn", "must be a date as yyyy-MM-dd"),
        ])) {
            try FormValidator.validate(["colour": "red", "sex": "X", "drawn": "2026-02-30"], form: form)
        }
    }

    @Test(arguments: [("2026-01-02T03:04", 1_767_323_040.0), ("2026-01-02T03:04:05Z", 1_767_323_045.0), ("2026-01-02T05:04+02:00", 1_767_323_040.0)])
    func instantsAreUTCUnlessAnOffsetIsGiven(text: String, seconds: Double) {
        // 2026-01-02T00:00Z is 1 767 312 000 s after the epoch (20 455 days × 86 400 s).
        #expect(DateParsing.instant(text)?.timeIntervalSince1970 == seconds)
    }
}

@Suite struct SiteCalendarTests {
    let newYork = TimeZone(identifier: "America/New_York")!

    /// New York changed from EST (UTC−5) to EDT (UTC−4) at 02:00 on Sunday 2026-03-08 (tz database). A transplant on
    /// 2026-03-08 is that day's local midnight, 05:00 UTC; day 7 ±1 d then runs from local midnight on 2026-03-14
    /// (04:00 UTC, daylight time) to the end of 2026-03-16 (03:59:59.999 UTC on the 17th).
    @Test func windowsAreTheSitesCalendarDaysAcrossDaylightSaving() throws {
        let transplant = try #require(DateParsing.day("2026-03-08", in: newYork))
        #expect(transplant == DateParsing.instant("2026-03-08T05:00Z"))
        let visits = ParticipantSchedule.build(
            study: miniStudy(), anchors: ["transplant": transplant], done: [:], now: DateParsing.instant("2026-03-14T03:30Z")!,
            calendar: SiteCalendar(zone: newYork))
        let day7 = try #require(visits.first { $0.visit == "day_7" })
        #expect(day7.windowStart == DateParsing.instant("2026-03-14T04:00Z"))
        #expect(day7.windowEnd == DateParsing.instant("2026-03-17T03:59:59.999Z"))
        // 23:30 on 2026-03-13 in New York is before the window, though it is already the 14th in UTC.
        #expect(day7.state == .upcoming)
    }

    /// At 17:00 UTC on 2026-03-10 it is already 2026-03-11 in Shanghai (UTC+8): a date of the 11th is today there, not the future.
    @Test func todayIsTheSitesToday() throws {
        let form = Form(code: "f", name: "F", visits: [], fields: [Field(code: "seen", label: "Seen", type: .date)])
        let now = DateParsing.instant("2026-03-10T17:00Z")!
        #expect(try FormValidator.validate(["seen": "2026-03-11"], form: form, now: now, zone: TimeZone(identifier: "Asia/Shanghai")!) == ["seen": "2026-03-11"])
        #expect(throws: FormValidationError.self) { try FormValidator.validate(["seen": "2026-03-11"], form: form, now: now) }
    }

    @Test func anUnknownZoneIsNamed() {
        var study = miniStudy()
        study.sites[0].timeZone = "Mars/Olympus_Mons"
        #expect(StudyValidator.problems(in: study).map(\.path).contains("sites[S1].timeZone"))
        study.sites[0].timeZone = "Asia/Shanghai"
        #expect(StudyValidator.problems(in: study) == [])
    }
}
