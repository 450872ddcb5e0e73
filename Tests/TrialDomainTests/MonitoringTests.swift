import Foundation
import Testing
@testable import TrialDomain

private let t0 = Date(timeIntervalSince1970: 1_773_000_000)
private func hours(_ h: Double) -> Date { t0.addingTimeInterval(h * 3600) }

/// A small study built here: two arms that give a product (`cells` twice, a week apart; `cells2` once) and a control
/// arm without doses; time zero is the first dose, and a 24-hour form records the worst grade.
private func study(monitoring: [StoppingRuleDefinition] = []) -> StudyDefinition {
    func dose(_ code: String, anchor: String, target: Offset) -> PlannedDose {
        PlannedDose(code: code, product: "prod", amount: 1, unit: "vial", anchor: anchor, target: target)
    }
    return StudyDefinition(
        schemaVersion: 1, code: "MONITORING-TEST", version: 1,
        identity: StudyIdentity(
            title: "Monitoring test", shortTitle: "MT", registryIds: [], sponsor: "S", products: [], conditions: [], phase: "PHASE1",
            studyType: "INTERVENTIONAL", allocation: "RANDOMIZED", interventionModel: "PARALLEL", masking: "DOUBLE", purpose: "TREATMENT"),
        lifecycle: Lifecycle(history: [StatusChange(status: .recruiting, date: "2026-01-01")], enrollment: Enrollment(), dates: StudyDates()),
        sites: [SiteDefinition(code: "S1", name: "Site 1")], parameters: [],
        arms: [
            Arm(code: "cells", name: "Cells", type: "EXPERIMENTAL", ratio: 1, interventions: ["prod"],
                doses: [dose("d1", anchor: "allocation", target: Offset(0, .days)), dose("d2", anchor: "d1", target: Offset(7, .days))]),
            Arm(code: "cells2", name: "Cells once", type: "EXPERIMENTAL", ratio: 1, interventions: ["prod"],
                doses: [dose("d1", anchor: "allocation", target: Offset(0, .days))]),
            Arm(code: "control", name: "Control", type: "NO_INTERVENTION", ratio: 1, interventions: []),
        ],
        interventions: [Intervention(code: "prod", name: "Product", type: "BIOLOGICAL")],
        anchors: [Anchor(code: "allocation", label: "Allocation", source: "allocation"), Anchor(code: "zero", label: "Time zero", source: "first_dose")],
        visits: [
            Visit(code: "screening", name: "Screening", anchor: "allocation", target: Offset(-7, .days)),
            Visit(code: "w0", name: "Week 0", defines: "zero"),
            Visit(code: "check", name: "24 h", anchor: "zero", target: Offset(24, .hours)),
        ],
        forms: [
            Form(code: "tox", name: "Toxicity", visits: ["check"], fields: [
                Field(code: "worst_grade", label: "Worst grade", type: .integer, unit: "1", range: NumberRange(min: 0, max: 5)),
                Field(code: "note", label: "Note", type: .text),
            ])
        ],
        eligibility: Eligibility(inclusion: [], exclusion: [], visit: "screening"),
        endpoints: [Endpoint(code: "tox", kind: .primary, measure: "Toxicity", timeFrame: "24 h")],
        randomization: RandomizationSettings(method: "permuted_blocks", blockSizes: [3], stratifyBySite: false, factors: []),
        consent: ConsentSettings(current: "1", versions: [ConsentVersion(version: "1", date: "2026-01-01")]),
        safety: SafetySettings(ctcaeVersion: "5.0", saeReportingHours: 24, gradeAgainstBaseline: true),
        monitoring: monitoring.isEmpty ? nil : MonitoringSettings(stoppingRules: monitoring))
}

/// The published example of the stoppingrule R package (as in StoppingRuleTests): Beta(0.6, 2.4), p0 0.20, α 0.10, N 30.
private func bayesRule(
    arms: [String]? = ["cells"], population: StoppingRuleDefinition.Population? = nil, anchor: String? = "zero", window: Offset? = Offset(24, .hours),
    perDose: Bool? = nil, forms: [FormEventRule]? = [FormEventRule(form: "tox", event: "tox.worst_grade >= 3")],
    adverseEvents: AdverseEventRule? = AdverseEventRule(minGrade: 3, related: true), labs: LabEventRule? = nil
) -> StoppingRuleDefinition {
    StoppingRuleDefinition(
        code: "grade3", name: "Grade 3 toxicity", arms: arms, population: population, anchor: anchor, window: window, perDose: perDose, forms: forms,
        adverseEvents: adverseEvents, labs: labs, method: .bayes, prior: StoppingRulePrior(a: 0.6, b: 2.4), p0: 0.2, alpha: 0.1, maxSampleSize: 30)
}

/// A participant as the store would hand it over: allocated at t0 + `entry` hours, dosed then (arms with doses), time
/// zero the first dose (the allocation for an arm without doses).
private func record(
    _ n: Int, arm: String?, entry: Double = 0, doses: [String: Double]? = nil, worstGrade: Int? = nil, events: [AdverseEventEntry] = [],
    labs: [LabValue] = []
) -> ParticipantRecord {
    let given = (doses ?? (arm == nil || arm == "control" ? [:] : ["d1": 0])).mapValues { hours(entry + $0) }
    var anchors: [String: Date] = [:]
    if arm != nil {
        anchors["allocation"] = hours(entry)
        anchors["zero"] = given.values.min() ?? hours(entry)
    }
    return ParticipantRecord(
        id: UUID(), screeningNumber: String(format: "P-%03d", n), site: "S1", arm: arm, allocatedAt: arm == nil ? nil : hours(entry), anchors: anchors,
        doses: given, forms: worstGrade.map { [FormEntry(visit: "check", form: "tox", values: ["worst_grade": String($0)], recordedAt: hours(entry + 24))] } ?? [],
        labs: labs, adverseEvents: events)
}

private func ae(at: Date, grade: Int = 3, attribution: Attribution = .probable) -> AdverseEventEntry {
    AdverseEventEntry(meddra: "10051792", grade: grade, onsetAt: at, serious: false, attribution: attribution)
}

/// Participants entering one hour apart, the toxic ones at the positions given (1-based).
private func cohort(_ size: Int, toxicAt: Set<Int>) -> [ParticipantRecord] {
    (1...size).map { k in record(k, arm: "cells", entry: Double(k), worstGrade: toxicAt.contains(k) ? 3 : 0) }
}

private func noGrades(_: LabValue) -> Int? { nil }

@Suite struct MonitoringCountTests {
    @Test func theTestStudyWithItsRuleValidates() {
        #expect(StudyValidator.problems(in: study(monitoring: [bayesRule()])) == [])
    }

    /// Dosed: the named arms' participants with a dose given. Allocated: all of theirs. No arms: every allocated participant.
    @Test func armsAndPopulationDecideWhoIsCounted() throws {
        let s = study()
        let records = [
            record(1, arm: "cells", worstGrade: 3),  // counted, toxic
            record(2, arm: "cells", worstGrade: 0),  // counted
            record(3, arm: "cells", doses: [:], worstGrade: 4),  // allocated, never dosed: counted only as allocated
            record(4, arm: "cells2", worstGrade: 3),  // another arm
            record(5, arm: "control", worstGrade: 3),  // no doses
            record(6, arm: nil, doses: ["d1": 0], worstGrade: 3),  // never allocated: never counted
        ]
        let dosed = try SafetyMonitor.evaluate(bayesRule(), study: s, records: records, labGrade: noGrades)
        #expect(dosed.n == 2 && dosed.events == 1)
        #expect(!dosed.pooledArms)
        let allocated = try SafetyMonitor.evaluate(bayesRule(population: .allocated), study: s, records: records, labGrade: noGrades)
        #expect(allocated.n == 3 && allocated.events == 2)
        let twoArms = try SafetyMonitor.evaluate(bayesRule(arms: ["cells", "cells2"]), study: s, records: records, labGrade: noGrades)
        #expect(twoArms.n == 3 && twoArms.events == 2)
        let everyoneDosed = try SafetyMonitor.evaluate(bayesRule(arms: nil), study: s, records: records, labGrade: noGrades)
        #expect(everyoneDosed.n == 3 && everyoneDosed.events == 2 && everyoneDosed.pooledArms)
        let everyone = try SafetyMonitor.evaluate(bayesRule(arms: nil, population: .allocated), study: s, records: records, labGrade: noGrades)
        #expect(everyone.n == 5 && everyone.events == 4)
        // Naming every arm is pooled too.
        let allNamed = try SafetyMonitor.evaluate(bayesRule(arms: ["cells", "cells2", "control"], population: .allocated), study: s, records: records, labGrade: noGrades)
        #expect(allNamed.pooledArms && allNamed.n == 5)
    }

    /// An adverse event counts from the anchor's instant through the window's last instant, graded ≥ 3 and related.
    @Test func adverseEventsCountWithinTheWindowOnly() throws {
        let s = study()
        let records = [
            record(1, arm: "cells", events: [ae(at: hours(0))]),  // at the anchor: counts
            record(2, arm: "cells", events: [ae(at: hours(24))]),  // the window's last instant: counts
            record(3, arm: "cells", events: [ae(at: hours(24).addingTimeInterval(1))]),  // one second late
            record(4, arm: "cells", events: [ae(at: hours(0).addingTimeInterval(-1))]),  // one second early
            record(5, arm: "cells", events: [ae(at: hours(2), grade: 2)]),  // grade 2
            record(6, arm: "cells", events: [ae(at: hours(2), attribution: .unlikely)]),  // not related
            record(7, arm: "cells", worstGrade: 2),  // the form below the grade
            record(8, arm: "cells", worstGrade: 3),  // the form at it
        ]
        let status = try SafetyMonitor.evaluate(bayesRule(), study: s, records: records, labGrade: noGrades)
        #expect(status.n == 8)
        #expect(status.events == 3)
        // Without a window, anything from the anchor on counts: the late event too, the early one still not.
        let open = try SafetyMonitor.evaluate(bayesRule(window: nil), study: s, records: records, labGrade: noGrades)
        #expect(open.events == 4)
    }

    /// A dose code is an anchor of its own; with perDose every dose given opens its window.
    @Test func doseAnchorsAndPerDoseWindows() throws {
        let s = study()
        let twoDoses = ["d1": 0.0, "d2": 168]
        let records = [
            record(1, arm: "cells", doses: twoDoses, events: [ae(at: hours(168 + 10))]),  // 10 h after the second dose
            record(2, arm: "cells", doses: twoDoses, events: [ae(at: hours(30))]),  // 30 h after the first, before the second
            record(3, arm: "cells", doses: twoDoses, events: [ae(at: hours(5))]),  // 5 h after the first
            record(4, arm: "cells", doses: ["d1": 0], events: [ae(at: hours(168 + 10))]),  // no second dose: no second window
        ]
        let noForms = bayesRule(anchor: "d2", forms: nil)
        #expect(try SafetyMonitor.evaluate(noForms, study: s, records: records, labGrade: noGrades).events == 1)
        let fromZero = bayesRule(anchor: "zero", forms: nil)
        #expect(try SafetyMonitor.evaluate(fromZero, study: s, records: records, labGrade: noGrades).events == 1)
        let perDose = bayesRule(anchor: nil, perDose: true, forms: nil)
        #expect(try SafetyMonitor.evaluate(perDose, study: s, records: records, labGrade: noGrades).events == 2)
    }

    /// A lab counts when it is one of the tests, in the window, and graded at or above minGrade by the caller.
    @Test func labsCountAtTheirGrade() throws {
        let s = study()
        func lab(_ test: String, at h: Double, value: Double) -> LabValue { LabValue(test: test, visit: "check", collectedAt: hours(h), value: value) }
        // The caller's grading, here by value: 300 → 3, 200 → 2, 400 → 4, 999 → ungraded.
        let grade: (LabValue) -> Int? = { lab in lab.value == 999 ? nil : Int(lab.value / 100) }
        let records = [
            record(1, arm: "cells", labs: [lab("ALT", at: 12, value: 300)]),  // grade 3 in the window
            record(2, arm: "cells", labs: [lab("ALT", at: 12, value: 200)]),  // grade 2
            record(3, arm: "cells", labs: [lab("PLAT", at: 12, value: 400)]),  // not a monitored test
            record(4, arm: "cells", labs: [lab("ALT", at: 12, value: 999)]),  // not graded
            record(5, arm: "cells", labs: [lab("ALT", at: 25, value: 400)]),  // after the window
            record(6, arm: "cells", labs: [lab("AST", at: 24, value: 300)]),  // the other test, at the window's end
            record(7, arm: "cells", labs: [lab("AST", at: 0, value: 300)]),  // at the anchor's instant
            record(8, arm: "cells", labs: [lab("AST", at: -0.001, value: 500)]),  // just before it (a baseline sample)
        ]
        let rule = bayesRule(forms: nil, adverseEvents: nil, labs: LabEventRule(tests: ["ALT", "AST"], minGrade: 3))
        #expect(StudyValidator.problems(in: study(monitoring: [rule])) == [])
        let status = try SafetyMonitor.evaluate(rule, study: s, records: records, labGrade: grade)
        #expect(status.n == 8 && status.events == 3)
        let grade2 = bayesRule(forms: nil, adverseEvents: nil, labs: LabEventRule(tests: ["ALT", "AST"], minGrade: 2))
        #expect(try SafetyMonitor.evaluate(grade2, study: s, records: records, labGrade: grade).events == 4)
    }
}

@Suite struct MonitoringBoundaryTests {
    /// The stoppingrule package's README example (StoppingRuleTests): stop counts for n = 1...30 are
    /// 2 3 3 3 4 4 5 5 5 5 6 6 6 7 7 7 7 8 8 8 9 9 9 9 10 10 10 10 11 11; n = 1 and 2 cannot stop; certainty 0.9630823.
    static let published = [2, 3, 3, 3, 4, 4, 5, 5, 5, 5, 6, 6, 6, 7, 7, 7, 7, 8, 8, 8, 9, 9, 9, 9, 10, 10, 10, 10, 11, 11]

    @Test func theDesignIsTheStoppingRules() throws {
        let status = try SafetyMonitor.evaluate(bayesRule(), study: study(), records: [], labGrade: noGrades)
        let expected = Self.published.enumerated().map { StoppingBoundary(n: $0.offset + 1, stopIfAtLeast: $0.element) }.filter { $0.stopIfAtLeast <= $0.n }
        #expect(status.boundaries == expected)
        let direct = try ToxicityStoppingRule(method: .bayes(prior: try BetaPrior(a: 0.6, b: 2.4)), p0: 0.2, maxSampleSize: 30).calibrate(alpha: 0.1)
        #expect(status.boundaries == direct.boundaries && status.certainty == direct.certainty)
        #expect(abs(status.certainty - 0.9630823) < 1e-6)
        #expect(status.alpha == 0.1 && status.nominalLevel == nil && status.method == .bayes && status.maxSampleSize == 30)
        // No one yet: no boundary, nothing crossed.
        #expect(status.n == 0 && status.events == 0 && status.stopIfAtLeast == nil && !status.crossed)
    }

    /// n = 2 cannot stop even with 2 of 2; n = 3 stops at 3 of 3 but not at 2 of 3.
    @Test func crossingAtTheFirstLooks() throws {
        let s = study()
        let two = try SafetyMonitor.evaluate(bayesRule(), study: s, records: cohort(2, toxicAt: [1, 2]), labGrade: noGrades)
        #expect(two.events == 2 && two.stopIfAtLeast == nil && !two.crossed)
        let threeOfThree = try SafetyMonitor.evaluate(bayesRule(), study: s, records: cohort(3, toxicAt: [1, 2, 3]), labGrade: noGrades)
        #expect(threeOfThree.stopIfAtLeast == 3 && threeOfThree.crossed && threeOfThree.crossedAt == 3)
        let twoOfThree = try SafetyMonitor.evaluate(bayesRule(), study: s, records: cohort(3, toxicAt: [1, 3]), labGrade: noGrades)
        #expect(twoOfThree.stopIfAtLeast == 3 && !twoOfThree.crossed && twoOfThree.crossedAt == nil)
    }

    /// The rule is about the first k participants: 3 of the first 3 stopped the trial, though 3 of 5 lies under n = 5's
    /// boundary of 4. The same 3 toxicities among the last 3 of 5 never reach a boundary (1/3, 2/4, 3/5).
    @Test func aCrossingStaysCrossedInTheOrderOfEntry() throws {
        let s = study()
        let early = try SafetyMonitor.evaluate(bayesRule(), study: s, records: Array(cohort(5, toxicAt: [1, 2, 3]).reversed()), labGrade: noGrades)
        #expect(early.n == 5 && early.events == 3 && early.stopIfAtLeast == 4)
        #expect(early.crossed && early.crossedAt == 3)
        // The crossing itself, as the alert names it: 3 toxicities among the first 3, whose boundary is 3.
        #expect(early.crossedEvents == 3 && early.crossedBoundary == 3)
        #expect(early.masked().crossedEvents == nil || early.pooledArms)
        let late = try SafetyMonitor.evaluate(bayesRule(), study: s, records: cohort(5, toxicAt: [3, 4, 5]), labGrade: noGrades)
        #expect(late.events == 3 && late.stopIfAtLeast == 4 && !late.crossed)
    }

    /// Beyond the maximum of 30 the boundary at 30 (11) holds: 10 toxicities among the last 10 of 32 do not cross it,
    /// 11 among the last 11 cross at participant 32 (at 30 only 9 of them had entered, against 11).
    @Test func beyondTheMaximumTheLastBoundaryHolds() throws {
        let s = study()
        let ten = try SafetyMonitor.evaluate(bayesRule(), study: s, records: cohort(32, toxicAt: Set(23...32)), labGrade: noGrades)
        #expect(ten.n == 32 && ten.events == 10 && ten.stopIfAtLeast == 11 && !ten.crossed)
        let eleven = try SafetyMonitor.evaluate(bayesRule(), study: s, records: cohort(32, toxicAt: Set(22...32)), labGrade: noGrades)
        #expect(eleven.events == 11 && eleven.stopIfAtLeast == 11 && eleven.crossed && eleven.crossedAt == 32)
    }

    /// clinfun's toxbdry(0.1, 0.3, 2:30) (StoppingRuleTests): acceptable counts 1 up to n = 3, 2 up to 8, ..., so the stop
    /// counts are 2 at n = 2–3, 3 at 4–8, 4 at 9–13, 5 at 14–19, 6 at 20–26, 7 at 27–30.
    @Test func aPocockRule() throws {
        let rule = StoppingRuleDefinition(
            code: "pocock", name: "Pocock", arms: ["cells"], anchor: "zero", window: Offset(24, .hours), forms: [FormEventRule(form: "tox", event: "tox.worst_grade >= 3")],
            method: .pocock, p0: 0.1, alpha: 0.1, maxSampleSize: 30)
        let s = study(monitoring: [rule])
        #expect(StudyValidator.problems(in: s) == [])
        let held = [(3, 1), (8, 2), (13, 3), (19, 4), (26, 5), (30, 6)]
        let expected = (2...30).map { n in StoppingBoundary(n: n, stopIfAtLeast: held.first { n <= $0.0 }!.1 + 1) }
        let status = try SafetyMonitor.evaluate(rule, study: s, records: cohort(8, toxicAt: [2, 8]), labGrade: noGrades)
        #expect(status.boundaries == expected && status.method == .pocock)
        #expect(status.nominalLevel != nil && abs(status.certainty - (1 - status.nominalLevel!)) < 1e-15)
        #expect(status.n == 8 && status.events == 2 && status.stopIfAtLeast == 3 && !status.crossed)
        let crossed = try SafetyMonitor.evaluate(rule, study: s, records: cohort(8, toxicAt: [1, 2]), labGrade: noGrades)
        #expect(crossed.crossed && crossed.crossedAt == 2 && crossed.stopIfAtLeast == 3)
    }

    /// A certainty given directly is used as is.
    @Test func aCertaintyInsteadOfAlpha() throws {
        var rule = bayesRule()
        rule.alpha = nil
        rule.certainty = 0.9
        let status = try SafetyMonitor.evaluate(rule, study: study(), records: [], labGrade: noGrades)
        let direct = try ToxicityStoppingRule(method: .bayes(prior: try BetaPrior(a: 0.6, b: 2.4)), p0: 0.2, maxSampleSize: 30).boundaries(certainty: 0.9)
        #expect(status.certainty == 0.9 && status.alpha == nil && status.boundaries == direct.boundaries)
        #expect(status.boundaries != MonitoringBoundaryTests.published.enumerated().map { StoppingBoundary(n: $0.offset + 1, stopIfAtLeast: $0.element) }.filter { $0.stopIfAtLeast <= $0.n })
    }

    @Test func aBadDesignThrowsItsError() {
        var rule = bayesRule()
        rule.prior = nil
        #expect(throws: StoppingRuleError.priorMissing) { try SafetyMonitor.evaluate(rule, study: study(), records: [], labGrade: noGrades) }
        rule = bayesRule()
        rule.certainty = 0.9
        #expect(throws: StoppingRuleError.certaintyAndAlpha) { try SafetyMonitor.design(for: rule) }
    }

    /// A blinded viewer of a rule over named arms sees whether it crossed, never the counts; a pooled rule shows them.
    @Test func maskingHidesTheCountsOfNamedArms() throws {
        let s = study()
        let status = try SafetyMonitor.evaluate(bayesRule(), study: s, records: cohort(5, toxicAt: [1, 2, 3]), labGrade: noGrades)
        let masked = status.masked()
        #expect(masked.crossed && masked.isMasked)
        #expect(masked.n == nil && masked.events == nil && masked.stopIfAtLeast == nil && masked.crossedAt == nil)
        #expect(masked.boundaries == status.boundaries && masked.certainty == status.certainty)
        let pooled = try SafetyMonitor.evaluate(bayesRule(arms: nil), study: s, records: cohort(5, toxicAt: [1]), labGrade: noGrades)
        #expect(pooled.masked() == pooled && !pooled.isMasked && pooled.n == 5)
    }

    @Test func everyRuleOfTheDefinition() throws {
        var second = bayesRule(arms: nil)
        second.code = "pooled"
        let s = study(monitoring: [bayesRule(), second])
        let all = try SafetyMonitor.evaluateAll(study: s, records: cohort(3, toxicAt: [1]), labGrade: noGrades)
        #expect(all.map(\.code) == ["grade3", "pooled"])
        #expect(try SafetyMonitor.evaluateAll(study: study(), records: [], labGrade: noGrades).isEmpty)
    }
}

@Suite struct MonitoringValidationTests {
    private func problems(_ change: (inout StoppingRuleDefinition) -> Void) -> [StudyProblem] {
        var rule = bayesRule()
        change(&rule)
        return StudyValidator.problems(in: study(monitoring: [rule]))
    }

    private let path = "monitoring.stoppingRules[grade3]"

    @Test func unknownCodesAreNamed() {
        #expect(problems { $0.arms = ["cells", "cellz"] } == [StudyProblem("\(path).arms", "names unknown arm 'cellz'")])
        #expect(problems { $0.anchor = "time_one" } == [StudyProblem("\(path).anchor", "names unknown anchor 'time_one'")])
        #expect(problems { $0.anchor = "d2" } == [])  // a dose code is an anchor
        #expect(problems { $0.forms = [FormEventRule(form: "toxx", event: "toxx.worst_grade >= 3")] } == [StudyProblem("\(path).forms[0].form", "names unknown form 'toxx'")])
        let lab = problems { $0.labs = LabEventRule(tests: ["ALT", "NOPE"], minGrade: 3) }
        #expect(lab.count == 1 && lab[0].path == "\(path).labs.tests" && lab[0].rule.hasPrefix("names unknown lab 'NOPE'"))
        #expect(problems { $0.arms = [] }.map(\.path) == ["\(path).arms"])
        #expect(problems { $0.arms = ["control"] } == [
            StudyProblem("\(path).population", "arm 'control' plans no dose, so with population dosed none of its participants is counted")
        ])
        #expect(problems { $0.arms = ["control"]; $0.population = .allocated } == [])
    }

    @Test func conditionsMustTypeCheck() {
        let found = problems { $0.forms = [FormEventRule(form: "tox", event: "tox.worst_grade >= 'high'")] }
        #expect(found.map(\.path) == ["\(path).forms[0].event"])
        #expect(problems { $0.forms = [FormEventRule(form: "tox", event: "tox.nothing = yes")] }.map(\.path) == ["\(path).forms[0].event"])
        #expect(problems { $0.forms = [FormEventRule(form: "tox", event: "tox.worst_grade + 1")] }.map(\.path) == ["\(path).forms[0].event"])
        // Conditions may read adverse events, as endpoints' and doses' do.
        #expect(problems { $0.forms = [FormEventRule(form: "tox", event: "adverse_events(min_grade: 3, related: yes) >= 1")] } == [])
    }

    @Test func theEventAndItsWindowAreChecked() {
        #expect(problems { $0.forms = nil; $0.adverseEvents = nil } == [StudyProblem(path, "needs forms, adverseEvents or labs that say what the toxicity is")])
        #expect(problems { $0.window = Offset(-1, .hours) } == [StudyProblem("\(path).window", "must not be negative")])
        #expect(problems { $0.anchor = nil }.map(\.path).sorted() == ["\(path).anchor", "\(path).window"])
        #expect(problems { $0.anchor = nil; $0.window = nil; $0.adverseEvents = nil } == [])  // forms alone need no anchor
        #expect(problems { $0.perDose = true }.map(\.path) == ["\(path).perDose"])
        #expect(problems { $0.perDose = true; $0.anchor = nil } == [])
        #expect(problems { $0.perDose = true; $0.anchor = nil; $0.window = nil }.map(\.path) == ["\(path).window"])
        #expect(problems { $0.adverseEvents = AdverseEventRule(terms: ["1005"], minGrade: 6) }.map(\.path).sorted() == ["\(path).adverseEvents.minGrade", "\(path).adverseEvents.terms"])
        #expect(problems { $0.labs = LabEventRule(tests: [], minGrade: 0) }.map(\.path).sorted() == ["\(path).labs.minGrade", "\(path).labs.tests"])
        var duplicate = bayesRule()
        duplicate.name = " "
        #expect(StudyValidator.problems(in: study(monitoring: [bayesRule(), duplicate])).map(\.path).sorted() == ["\(path)", "\(path).name"])
    }

    /// Each bad option of the design, worded as `casebook stopping-rule` words it and named by its key.
    @Test func badDesignOptionsAreNamed() {
        #expect(problems { $0.method = .pocock } == [StudyProblem("\(path).prior", "applies to method bayes only; the Pocock-type rule has no prior")])
        #expect(problems { $0.prior = nil }.map(\.path) == ["\(path).prior"])
        #expect(problems { $0.prior = StoppingRulePrior(a: 0, b: 2.4) } == [StudyProblem("\(path).prior", "both Beta shapes must be above 0, got a = 0.0, b = 2.4")])
        #expect(problems { $0.prior = StoppingRulePrior(a: 0.6, b: -1) }.map(\.path) == ["\(path).prior"])
        for p0 in [0, 1, 1.5, -0.1] {
            #expect(problems { $0.p0 = p0 } == [StudyProblem("\(path).p0", "must be between 0 and 1 (exclusive), got \(p0)")])
        }
        for alpha in [0.0, 1.0, 2.0] {
            #expect(problems { $0.alpha = alpha } == [StudyProblem("\(path).alpha", "must be between 0 and 1 (exclusive), got \(alpha)")])
        }
        for certainty in [0.0, 1.0, -3.0] {
            #expect(problems { $0.alpha = nil; $0.certainty = certainty } == [StudyProblem("\(path).certainty", "must be between 0 and 1 (exclusive), got \(certainty)")])
        }
        #expect(problems { $0.certainty = 0.9 } == [StudyProblem(path, "certainty/alpha: give one of them, not both")])
        let neither = problems { $0.alpha = nil }
        #expect(neither.count == 1 && neither[0].path == path && neither[0].rule.hasPrefix("certainty/alpha: give one"))
        for n in [0, -1, ToxicityStoppingRule.sampleSizeLimit + 1] {
            #expect(problems { $0.maxSampleSize = n } == [StudyProblem("\(path).maxSampleSize", "must be from 1 to \(ToxicityStoppingRule.sampleSizeLimit), got \(n)")])
        }
        #expect(problems { $0.maxSampleSize = ToxicityStoppingRule.sampleSizeLimit } == [])
    }
}
