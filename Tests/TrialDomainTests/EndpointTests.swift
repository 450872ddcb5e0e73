import Foundation
import Testing
@testable import TrialDomain

private let t0 = Date(timeIntervalSince1970: 1_773_000_000)
private func hours(_ h: Double) -> Date { t0.addingTimeInterval(h * 3600) }

/// A small study built here: two arms, a 24-hour assessment form and an anchor taken from the allocation.
private func study() -> StudyDefinition {
    StudyDefinition(
        schemaVersion: 1, code: "ENDPOINT-TEST", version: 1,
        identity: StudyIdentity(
            title: "Endpoint test", shortTitle: "ET", registryIds: [], sponsor: "S", products: [], conditions: [], phase: "PHASE1",
            studyType: "INTERVENTIONAL", allocation: "RANDOMIZED", interventionModel: "PARALLEL", masking: "NONE", purpose: "TREATMENT"),
        lifecycle: Lifecycle(history: [StatusChange(status: .recruiting, date: "2026-01-01")], enrollment: Enrollment(), dates: StudyDates()),
        sites: [SiteDefinition(code: "S1", name: "Site 1")], parameters: [],
        arms: [Arm(code: "a", name: "A", type: "EXPERIMENTAL", ratio: 1, interventions: []), Arm(code: "b", name: "B", type: "PLACEBO_COMPARATOR", ratio: 1, interventions: [])],
        interventions: [], anchors: [Anchor(code: "zero", label: "Time zero", source: "allocation")],
        visits: [
            Visit(code: "screening", name: "Screening", anchor: "zero", target: Offset(-7, .days)),
            Visit(code: "base", name: "Baseline", defines: "zero"),
            Visit(code: "check", name: "24 h", anchor: "zero", target: Offset(24, .hours)),
            Visit(code: "w4", name: "Week 4", anchor: "zero", target: Offset(4, .weeks)),
        ],
        forms: [
            Form(code: "tox", name: "Toxicity", visits: ["check"], fields: [
                Field(code: "any", label: "Any", type: .yesno, required: true),
                Field(code: "grade", label: "Grade", type: .integer, unit: "1"),
            ])
        ],
        eligibility: Eligibility(inclusion: [], exclusion: [], visit: "screening"),
        endpoints: [
            Endpoint(
                code: "tox", kind: .primary, measure: "Toxicity", timeFrame: "24 h",
                analysis: EndpointAnalysis(
                    method: .proportion, anchor: "zero", window: Offset(24, .hours), forms: [FormEventRule(form: "tox", event: "tox.any = yes or tox.grade >= 1")],
                    adverseEvents: AdverseEventRule(terms: ["10051792"]))),
            Endpoint(code: "alt", kind: .secondary, measure: "ALT", timeFrame: "week 4", analysis: EndpointAnalysis(method: .valueAtVisit, lab: "ALT", visit: "w4")),
            Endpoint(code: "alt_change", kind: .secondary, measure: "ALT change", timeFrame: "week 4", analysis: EndpointAnalysis(method: .changeFromBaseline, lab: "ALT", visit: "w4")),
            Endpoint(code: "aes", kind: .secondary, measure: "AEs", timeFrame: "1 week", analysis: EndpointAnalysis(method: .adverseEvents, anchor: "zero", window: Offset(7, .days))),
        ],
        randomization: RandomizationSettings(method: "permuted_blocks", blockSizes: [2], stratifyBySite: false, factors: []),
        consent: ConsentSettings(current: "1", versions: [ConsentVersion(version: "1", date: "2026-01-01")]),
        safety: SafetySettings(ctcaeVersion: "5.0", saeReportingHours: 24, gradeAgainstBaseline: true))
}

private func record(_ n: Int, arm: String?, tox: [String: String]? = nil, events: [AdverseEventEntry] = [], labs: [LabValue] = []) -> ParticipantRecord {
    ParticipantRecord(
        id: UUID(), screeningNumber: "P-\(n)", site: "S1", arm: arm, allocatedAt: arm == nil ? nil : t0, anchors: arm == nil ? [:] : ["zero": t0],
        forms: tox.map { [FormEntry(visit: "check", form: "tox", values: $0, recordedAt: hours(24))] } ?? [], labs: labs, adverseEvents: events)
}

private func event(_ meddra: String, at: Date, grade: Int = 1, attribution: Attribution = .possible) -> AdverseEventEntry {
    AdverseEventEntry(meddra: meddra, grade: grade, onsetAt: at, serious: false, attribution: attribution)
}

@Suite struct EndpointTests {
    @Test func theDefinitionValidates() {
        #expect(StudyValidator.problems(in: study()) == [])
    }

    /// Assessed: the form recorded, or a counted event in the window. An event: the form says so, or a counted term in the window.
    @Test func proportionCountsFormsAndEventsInTheWindow() throws {
        let s = study()
        let records = [
            record(1, arm: "a", tox: ["any": "no", "grade": "0"]),
            record(2, arm: "a", tox: ["any": "yes"]),
            record(3, arm: "a", tox: ["any": "no", "grade": "2"]),  // a graded reaction is toxicity though "any" says no
            record(4, arm: "a", events: [event("10051792", at: hours(24))]),  // the window's last instant counts
            record(5, arm: "b", events: [event("10051792", at: hours(24).addingTimeInterval(1))]),  // one second late: not assessed
            record(6, arm: "b", events: [event("10051792", at: hours(-1))]),  // before time zero
            record(7, arm: "b", tox: ["any": "no"], events: [event("10016558", at: hours(2))]),  // another term does not count
            record(8, arm: nil, tox: ["any": "yes"]),  // never allocated: outside the analysis
        ]
        let result = try EndpointCalculator.compute(s.endpoints[0], study: s, records: records, byArm: true)
        #expect(result.groups.map(\.arm) == [nil, "a", "b"])
        #expect(result.groups.map(\.n) == [5, 4, 1])
        #expect(result.groups.map(\.events) == [3, 3, 0])
        // Arm b: 0 of 1; the exact upper bound is 1 − 0.025^(1/1) = 0.975 (Clopper–Pearson with x = 0).
        let b = result.groups[2]
        #expect(b.lower == 0)
        #expect(abs((b.upper ?? 0) - 0.975) < 1e-9)
        // Arm a: 3 of 4.
        #expect(result.groups[1].proportion == 0.75)
    }

    /// Clopper–Pearson with x = 0 of n = 10: upper 1 − 0.025^(1/10) = 0.30850 (closed form for x = 0).
    @Test func noEventsInTenGiveTheClosedFormUpperBound() throws {
        let s = study()
        let records = (1...10).map { record($0, arm: "a", tox: ["any": "no"]) }
        let all = try EndpointCalculator.compute(s.endpoints[0], study: s, records: records, byArm: false)
        #expect(all.groups.count == 1)
        #expect(all.groups[0].n == 10)
        #expect(abs((all.groups[0].upper ?? 0) - 0.308_50) < 5e-6)
    }

    /// Values 30, 50, 70, 90 U/L: mean 60, sample SD √(2000/3) = 25.82, median 60. Change from the last baseline value before the visit.
    @Test func valuesAtAVisitAndChangeFromBaseline() throws {
        let s = study()
        let values = [30.0, 50, 70, 90]
        let records = values.enumerated().map { i, v in
            record(i, arm: i % 2 == 0 ? "a" : "b", labs: [
                LabValue(test: "ALT", visit: "screening", collectedAt: hours(-100), value: 500),
                LabValue(test: "ALT", visit: "base", collectedAt: hours(-1), value: 20),  // the later baseline value wins
                LabValue(test: "ALT", visit: "w4", collectedAt: hours(24 * 28), value: v),
            ])
        }
        let at = try EndpointCalculator.compute(s.endpoints[1], study: s, records: records, byArm: true)
        let summary = try #require(at.groups[0].summary)
        #expect(summary.n == 4)
        #expect(summary.mean == 60)
        #expect(abs((summary.sd ?? 0) - 25.819_889) < 1e-6)
        #expect(summary.median == 60)
        #expect((summary.min, summary.max) == (30, 90))
        #expect(at.unit == "U/L")
        #expect(at.groups[1].summary?.mean == 50)  // arm a: 30 and 70
        let change = try EndpointCalculator.compute(s.endpoints[2], study: s, records: records, byArm: false)
        #expect(change.groups[0].summary?.mean == 40)
    }

    /// Every allocated participant is followed for adverse events; worst grade per participant within the window.
    @Test func adverseEventsByWorstGrade() throws {
        let s = study()
        let records = [
            record(1, arm: "a", events: [event("10016558", at: hours(1), grade: 1), event("10001718", at: hours(30), grade: 3)]),
            record(2, arm: "a"),
            record(3, arm: "b", events: [event("10016558", at: hours(24 * 8), grade: 2)]),  // after the 7-day window
        ]
        let result = try EndpointCalculator.compute(s.endpoints[3], study: s, records: records, byArm: false)
        #expect(result.groups[0].n == 3)
        #expect(result.groups[0].events == 1)
        #expect(result.groups[0].worstGrades == ["3": 1])
    }

    @Test func weeksAreSevenDays() throws {
        #expect(Offset(text: "12w")?.seconds == 7_257_600.0)  // 12 × 7 × 86,400 s
        #expect(Offset(text: "12w")?.isCalendar == true)
        #expect(Offset(text: "24h")?.isCalendar == false)
    }

    @Test func badAnalysesAreNamedByCode() {
        var s = study()
        s.endpoints[1].analysis?.lab = "NOPE"
        s.endpoints[0].analysis?.anchor = "elsewhere"
        s.endpoints[0].analysis?.forms = [FormEventRule(form: "tox", event: "tox.grade")]
        s.safety.ctcaeVersion = "banana"
        let paths = Set(StudyValidator.problems(in: s).map(\.path))
        #expect(paths.isSuperset(of: [
            "endpoints[alt].analysis.lab", "endpoints[tox].analysis.anchor", "endpoints[tox].analysis.forms[0].event", "safety.ctcaeVersion",
        ]))
    }

    @Test func operatingStatusIsTheSponsorsNotTheRegistrys() {
        var s = study()
        #expect(s.lifecycle.operatingStatus == .planning)
        s.lifecycle.history.append(StatusChange(status: .withdrawn, date: "2026-02-01", reason: "registry"))
        s.lifecycle.operating = [OperatingChange(status: .recruiting, date: "2026-01-01")]
        #expect(s.lifecycle.operatingStatus == .recruiting)
        s.lifecycle.operating?.append(OperatingChange(status: .suspended, date: "2026-03-01"))
        #expect(StudyValidator.problems(in: s).map(\.path).contains("lifecycle.operating[1].reason"))
    }
}

@Suite struct SurvivalAndPerDoseTests {
    /// Worked by hand from Kaplan & Meier (1958) and Greenwood (1926): events at days 3, 5, 5, 8, censored at 4 and 10.
    /// S(3) = 5/6; S(5) = 5/6 × (1 − 2/4) = 0.41667; S(8) = 0.41667 × (1 − 1/2) = 0.20833, read at day 9.
    /// Greenwood: S² × (1/(6·5) + 2/(4·2) + 1/(2·1)) = 0.0434028 × 0.783333, SE 0.184388.
    @Test func kaplanMeierAgainstAHandWorkedExample() {
        let times: [(days: Double, event: Bool)] = [(3, true), (4, false), (5, true), (5, true), (8, true), (10, false)]
        let s = KaplanMeier.estimate(times, at: 9)
        #expect(abs(s.estimate - 0.208_333) < 1e-6)
        #expect(abs((s.standardError ?? 0) - 0.184_388) < 1e-6)
        #expect((s.events, s.censored, s.atRisk) == (4, 1, 1))
        // Before the first event nothing has happened.
        #expect(KaplanMeier.estimate(times, at: 2).estimate == 1)
        // A tie of an event and a censoring: the event counts first (n = 2 at day 5, then S = 1/2).
        #expect(KaplanMeier.estimate([(5, true), (5, false)], at: 6).estimate == 0.5)
    }

    /// Death or transplantation ends the time; others are censored at their last observation.
    @Test func timeToEventFromForms() throws {
        var s = study()
        s.forms.append(Form(code: "outcome", name: "Outcome", visits: ["w4"], fields: [
            Field(code: "died", label: "Died", type: .yesno), Field(code: "transplanted", label: "Transplanted", type: .yesno),
            Field(code: "on", label: "Date", type: .date),
        ]))
        s.endpoints.append(Endpoint(
            code: "tfs", kind: .primary, measure: "Transplant-free survival", timeFrame: "week 12",
            analysis: EndpointAnalysis(
                method: .timeToEvent, anchor: "zero", events: [TimedEventRule(form: "outcome", event: "outcome.died = yes or outcome.transplanted = yes", date: "outcome.on")],
                horizon: Offset(12, .weeks))))
        #expect(StudyValidator.problems(in: s) == [])
        func outcome(_ values: [String: String]) -> [FormEntry] { [FormEntry(visit: "w4", form: "outcome", values: values, recordedAt: t0)] }
        let day = { (n: Double) in t0.addingTimeInterval(n * 86_400) }
        // t0 falls on 2026-03-08: the event dates are 3 to 4 and 5 to 6 days after it.
        var records = [
            ParticipantRecord(id: UUID(), screeningNumber: "1", site: "S1", arm: "a", anchors: ["zero": t0], forms: outcome(["died": "yes", "on": "2026-03-12"])),
            ParticipantRecord(id: UUID(), screeningNumber: "2", site: "S1", arm: "a", anchors: ["zero": t0], forms: outcome(["transplanted": "yes", "died": "no", "on": "2026-03-14"])),
            ParticipantRecord(id: UUID(), screeningNumber: "3", site: "S1", arm: "b", anchors: ["zero": t0], forms: outcome(["died": "no", "on": "2026-03-20"])),
        ]
        records[2].lastObservation = day(60)
        let result = try EndpointCalculator.compute(s.endpoints.last!, study: s, records: records, byArm: false)
        let survival = try #require(result.groups[0].survival)
        // Two events among three before day 84, the third censored at day 60: S = 2/3 × 1/2 = 1/3.
        #expect(abs(survival.estimate - 1.0 / 3) < 1e-9)
        #expect((survival.events, survival.censored) == (2, 1))
    }

    /// Per dose: each dose given opens its own 24-hour window.
    @Test func eventsAfterEachDose() throws {
        var s = study()
        s.endpoints[0].analysis = EndpointAnalysis(method: .proportion, window: Offset(24, .hours), adverseEvents: AdverseEventRule(related: true), perDose: true)
        #expect(StudyValidator.problems(in: s) == [])
        let d1 = t0, d2 = hours(24 * 7)
        let records = [
            // A related event 23 h after the second dose: one of two doses.
            ParticipantRecord(id: UUID(), screeningNumber: "1", site: "S1", arm: "a", doses: ["d1": d1, "d2": d2], adverseEvents: [event("10016558", at: d2.addingTimeInterval(23 * 3600))]),
            // An unrelated event does not count; nor does a related one 2 days after a dose.
            ParticipantRecord(id: UUID(), screeningNumber: "2", site: "S1", arm: "a", doses: ["d1": d1, "d2": d2], adverseEvents: [
                event("10016558", at: d1.addingTimeInterval(3600), attribution: .unrelated), event("10016558", at: d1.addingTimeInterval(48 * 3600)),
            ]),
            // No dose given: not followed per dose.
            ParticipantRecord(id: UUID(), screeningNumber: "3", site: "S1", arm: "b"),
        ]
        let result = try EndpointCalculator.compute(s.endpoints[0], study: s, records: records, byArm: false)
        #expect(result.groups[0].n == 2)
        #expect(result.groups[0].events == 1)
        #expect(result.groups[0].doses == 4)
        #expect(result.groups[0].doseEvents == 1)
    }
}

@Suite struct ScoreEndpointTests {
    /// MELD (Kamath 2001 with the UNOS bounds) from each visit's labs: at baseline bilirubin 5 mg/dL, INR 2.0, creatinine 1.0
    /// gives 10 × (0.957 ln 1 + 0.378 ln 5 + 1.120 ln 2 + 0.643) = 20.27; at week 4 bilirubin 2, INR 1.5, creatinine 1.0 gives
    /// 10 × (0.378 ln 2 + 1.120 ln 1.5 + 0.643) = 13.59: a change of −6.68.
    @Test func changeFromBaselineOfAScore() throws {
        var s = study()
        s.forms.append(Form(code: "lab", name: "Labs", visits: ["screening", "w4"], fields: [
            Field(code: "bili", label: "Bilirubin", type: .number, unit: "mg/dL", lab: "BILI"),
            Field(code: "inr", label: "INR", type: .number, unit: "ratio", lab: "INR"),
            Field(code: "creat", label: "Creatinine", type: .number, unit: "mg/dL", lab: "CREAT"),
        ]))
        s.endpoints.append(Endpoint(
            code: "meld", kind: .secondary, measure: "MELD change", timeFrame: "week 4",
            analysis: EndpointAnalysis(method: .changeFromBaseline, expression: "meld(bilirubin: lab.bili, inr: lab.inr, creatinine: lab.creat)", visit: "w4")))
        #expect(StudyValidator.problems(in: s) == [])
        let record = ParticipantRecord(id: UUID(), screeningNumber: "1", site: "S1", arm: "a", anchors: ["zero": t0], forms: [
            FormEntry(visit: "screening", form: "lab", values: ["bili": "5", "inr": "2.0", "creat": "1.0"], recordedAt: t0),
            FormEntry(visit: "w4", form: "lab", values: ["bili": "2", "inr": "1.5", "creat": "1.0"], recordedAt: t0.addingTimeInterval(28 * 86_400)),
        ])
        let result = try EndpointCalculator.compute(s.endpoints.last!, study: s, records: [record], byArm: false)
        let change = try #require(result.groups[0].summary?.mean)
        #expect(abs(change - (-6.68)) < 0.01)
    }
}
