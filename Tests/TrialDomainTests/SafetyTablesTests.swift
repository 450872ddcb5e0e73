import Foundation
import XCTest
@testable import TrialDomain

// Hand-built cohorts; every expected figure is worked in a comment. Clopper–Pearson bounds are the published
// exact-binomial table values to 4 decimals (x of n: lower–upper).

private let t0 = Date(timeIntervalSince1970: 1_773_000_000)
private func days(_ d: Double) -> Date { t0.addingTimeInterval(d * 86_400) }

private func participant(_ name: String, arm: String?, events: [AdverseEventEntry] = [], labs: [LabValue] = []) -> ParticipantRecord {
    ParticipantRecord(id: UUID(), screeningNumber: name, site: "S1", arm: arm, labs: labs, adverseEvents: events)
}

private func ae(_ code: String, grade: Int, day: Double = 1, serious: Bool = false, _ attribution: Attribution = .unrelated) -> AdverseEventEntry {
    AdverseEventEntry(meddra: code, grade: grade, onsetAt: days(day), serious: serious, attribution: attribution)
}

private func lab(_ test: String, _ visit: String, _ day: Double, _ value: Double) -> LabValue {
    LabValue(test: test, visit: visit, collectedAt: days(day), value: value)
}

/// A value of the test the lab tables are asked about.
private func lab(_ visit: String, _ day: Double, _ value: Double) -> LabValue { lab("L1", visit, day, value) }

private func assertRate(
    _ count: AdverseEventTally?, participants: Int, events: Int?, of n: Int, lower: Double, upper: Double, grades: [Int]?,
    file: StaticString = #filePath, line: UInt = #line
) {
    guard let count else { return XCTFail("no row", file: file, line: line) }
    XCTAssertEqual(count.participants, participants, "participants", file: file, line: line)
    XCTAssertEqual(count.events, events, "events", file: file, line: line)
    XCTAssertEqual(count.worstGrades, grades, "worst grades", file: file, line: line)
    XCTAssertEqual(count.proportion ?? -1, Double(participants) / Double(n), accuracy: 1e-12, "proportion", file: file, line: line)
    XCTAssertEqual(count.lower ?? -1, lower, accuracy: 1e-4, "lower", file: file, line: line)
    XCTAssertEqual(count.upper ?? -1, upper, accuracy: 1e-4, "upper", file: file, line: line)
}

// MARK: Adverse events

private let nausea = "10000001", vomiting = "10000002", headache = "10000003", rash = "10000004", unlisted = "99999999"
private let gi = "Gastrointestinal disorders", nervous = "Nervous system disorders", skin = "Skin and subcutaneous tissue disorders"
private let unknownLabel = "Unknown SOC"
private let catalogue: [String: (term: String, soc: String)] = [
    nausea: ("Nausea", gi), vomiting: ("Vomiting", gi), headache: ("Headache", nervous), rash: ("Rash", skin),
]

/// Arm A: a1 nausea g1, nausea g2 (possible), headache g3; a2 nausea g1; a3 vomiting g5 serious (definite);
/// a4 only a headache g2 before treatment (day −2, not treatment-emergent); a5 nothing.
/// Arm B: b1 headache g1 (probable); b2 an unlisted code g2 serious; b3 rash g1; b4, b5 nothing.
private struct AECohort {
    let a1 = participant("a1", arm: "A", events: [ae(nausea, grade: 1), ae(nausea, grade: 2, .possible), ae(headache, grade: 3, .unlikely)])
    let a2 = participant("a2", arm: "A", events: [ae(nausea, grade: 1)])
    let a3 = participant("a3", arm: "A", events: [ae(vomiting, grade: 5, serious: true, .definite)])
    let a4 = participant("a4", arm: "A", events: [ae(headache, grade: 2, day: -2)])
    let a5 = participant("a5", arm: "A")
    let b1 = participant("b1", arm: "B", events: [ae(headache, grade: 1, .probable)])
    let b2 = participant("b2", arm: "B", events: [ae(unlisted, grade: 2, serious: true)])
    let b3 = participant("b3", arm: "B", events: [ae(rash, grade: 1)])
    let b4 = participant("b4", arm: "B")
    let b5 = participant("b5", arm: "B")
    var all: [ParticipantRecord] { [a1, a2, a3, a4, a5, b1, b2, b3, b4, b5] }

    func table(discontinuation: DiscontinuationRule? = nil, byArm: Bool = true, arms: [String] = ["A", "B"]) -> AdverseEventTable {
        SafetyTables.adverseEvents(
            all, lookup: { catalogue[$0] }, unknownOrganClass: unknownLabel, treatmentEmergent: { _, event in event.onsetAt >= t0 },
            discontinuation: discontinuation, byArm: byArm, arms: arms)
    }
}

final class AdverseEventTableTests: XCTestCase {
    /// Everyone, n = 10.
    /// Any: a1 a2 a3 b1 b2 b3 = 6 of 10 (0.2624–0.8784); events 3+1+1+1+1+1 = 8 (a4's is before treatment);
    ///   worst a1 3, a2 1, a3 5, b1 1, b2 2, b3 1 → grades 1…5: [3, 1, 1, 0, 1].
    /// Serious: a3 (g5), b2 (g2) = 2 of 10 (0.0252–0.5561), 2 events, [0, 1, 0, 0, 1].
    /// Related (possible/probable/definite): a1 nausea g2, a3 vomiting g5, b1 headache g1 = 3 of 10 (0.0667–0.6525),
    ///   3 events, [1, 1, 0, 0, 1]; a1's unlikely headache does not count.
    /// Grade ≥ 3: a1 headache g3, a3 vomiting g5 = 2 of 10, 2 events, [0, 0, 1, 0, 1].
    /// Fatal: a3 = 1 of 10 (0.0025–0.4450), 1 event, [0, 0, 0, 0, 1].
    /// Discontinuation by ids {a1, a4}: a4 has no treatment-emergent event, so 1 of 10, events unknown.
    func testEveryoneSummaryRows() throws {
        let c = AECohort()
        let everyone = try XCTUnwrap(c.table(discontinuation: .participants([c.a1.id, c.a4.id])).groups.first)
        XCTAssertNil(everyone.arm)
        XCTAssertEqual(everyone.n, 10)
        assertRate(everyone.any, participants: 6, events: 8, of: 10, lower: 0.2624, upper: 0.8784, grades: [3, 1, 1, 0, 1])
        assertRate(everyone.serious, participants: 2, events: 2, of: 10, lower: 0.0252, upper: 0.5561, grades: [0, 1, 0, 0, 1])
        assertRate(everyone.related, participants: 3, events: 3, of: 10, lower: 0.0667, upper: 0.6525, grades: [1, 1, 0, 0, 1])
        assertRate(everyone.gradeAtLeast3, participants: 2, events: 2, of: 10, lower: 0.0252, upper: 0.5561, grades: [0, 0, 1, 0, 1])
        assertRate(everyone.fatal, participants: 1, events: 1, of: 10, lower: 0.0025, upper: 0.4450, grades: [0, 0, 0, 0, 1])
        assertRate(everyone.leadingToDiscontinuation, participants: 1, events: nil, of: 10, lower: 0.0025, upper: 0.4450, grades: nil)
        XCTAssertEqual(everyone.any.participants(withWorstGrade: 1), 3)
        XCTAssertEqual(everyone.any.participants(withWorstGrade: 5), 1)
        XCTAssertEqual(everyone.any.participants(withWorstGrade: 6), 0)
    }

    /// Everyone, by organ class (n = 10):
    /// GI: a1 (nausea ×2), a2 (nausea), a3 (vomiting) = 3 of 10 (0.0667–0.6525), 4 events, worst a1 2, a2 1, a3 5.
    ///   Nausea: a1, a2 = 2 of 10, 3 events, [1, 1, 0, 0, 0]; vomiting: a3 = 1 of 10, 1 event, [0, 0, 0, 0, 1].
    /// Nervous: a1 headache g3, b1 headache g1 = 2 of 10, 2 events, [1, 0, 1, 0, 0] (a4's headache is not emergent).
    /// Skin: b3 rash = 1 of 10; unknown: b2 under its code = 1 of 10, [0, 1, 0, 0, 0].
    /// Order: GI (3), nervous (2), then the 1–1 tie by name: "Skin…" before "Unknown SOC", though b2 comes before b3.
    func testOrganClassesAndTerms() {
        let everyone = AECohort().table().groups[0]
        XCTAssertEqual(everyone.organClasses.map(\.soc), [gi, nervous, skin, unknownLabel])
        let giRow = everyone.organClasses[0]
        assertRate(giRow.count, participants: 3, events: 4, of: 10, lower: 0.0667, upper: 0.6525, grades: [1, 1, 0, 0, 1])
        XCTAssertEqual(giRow.terms.map(\.term), ["Nausea", "Vomiting"])
        assertRate(giRow.terms[0].count, participants: 2, events: 3, of: 10, lower: 0.0252, upper: 0.5561, grades: [1, 1, 0, 0, 0])
        assertRate(giRow.terms[1].count, participants: 1, events: 1, of: 10, lower: 0.0025, upper: 0.4450, grades: [0, 0, 0, 0, 1])
        assertRate(everyone.organClasses[1].count, participants: 2, events: 2, of: 10, lower: 0.0252, upper: 0.5561, grades: [1, 0, 1, 0, 0])
        let unknown = everyone.organClasses[3]
        XCTAssertEqual(unknown.terms.map(\.term), [unlisted])
        XCTAssertEqual(unknown.terms.map(\.meddra), [unlisted])
        assertRate(unknown.count, participants: 1, events: 1, of: 10, lower: 0.0025, upper: 0.4450, grades: [0, 1, 0, 0, 0])
    }

    /// Arm A, n = 5: any a1 a2 a3 = 3 of 5 (0.1466–0.9473), 5 events, worst a1 3, a2 1, a3 5 → [1, 0, 1, 0, 1]; fatal a3 = 1 of 5 (0.0051–0.7164); GI 3, nervous 1
    ///   (a1; a4's is not emergent), no skin or unknown rows.
    /// Arm B, n = 5: any b1 b2 b3 = 3 of 5, 3 events, [2, 1, 0, 0, 0]; fatal 0 of 5 (0–0.5218), grades all 0;
    ///   related b1 = 1 of 5; nervous, skin, unknown 1 each, by name.
    /// Discontinuation by events: grade ≥ 3 and not fatal → a1's headache only: A 1 of 5, 1 event, [0, 0, 1, 0, 0]; B 0 of 5.
    func testByArm() {
        let c = AECohort()
        let table = c.table(discontinuation: .events { _, event in event.grade >= 3 && event.grade < 5 })
        XCTAssertEqual(table.groups.map(\.arm), [nil, "A", "B"])
        let a = table.groups[1], b = table.groups[2]
        XCTAssertEqual(a.n, 5)
        assertRate(a.any, participants: 3, events: 5, of: 5, lower: 0.1466, upper: 0.9473, grades: [1, 0, 1, 0, 1])
        assertRate(a.fatal, participants: 1, events: 1, of: 5, lower: 0.0051, upper: 0.7164, grades: [0, 0, 0, 0, 1])
        assertRate(a.leadingToDiscontinuation, participants: 1, events: 1, of: 5, lower: 0.0051, upper: 0.7164, grades: [0, 0, 1, 0, 0])
        XCTAssertEqual(a.organClasses.map(\.soc), [gi, nervous])
        XCTAssertEqual(a.organClasses.map(\.count.participants), [3, 1])
        XCTAssertEqual(b.n, 5)
        assertRate(b.any, participants: 3, events: 3, of: 5, lower: 0.1466, upper: 0.9473, grades: [2, 1, 0, 0, 0])
        assertRate(b.fatal, participants: 0, events: 0, of: 5, lower: 0, upper: 0.5218, grades: [0, 0, 0, 0, 0])
        assertRate(b.related, participants: 1, events: 1, of: 5, lower: 0.0051, upper: 0.7164, grades: [1, 0, 0, 0, 0])
        assertRate(b.leadingToDiscontinuation, participants: 0, events: 0, of: 5, lower: 0, upper: 0.5218, grades: [0, 0, 0, 0, 0])
        XCTAssertEqual(b.organClasses.map(\.soc), [nervous, skin, unknownLabel])
    }

    /// Without byArm only everyone; without a rule no discontinuation row; an arm listed but empty says n 0.
    func testGroupsAndEmptyArm() {
        let c = AECohort()
        XCTAssertEqual(c.table(byArm: false).groups.map(\.arm), [nil])
        XCTAssertNil(c.table().groups[0].leadingToDiscontinuation)
        let table = c.table(arms: ["B", "C"])
        // Listed arms first, in their order, then unlisted arms found in the records.
        XCTAssertEqual(table.groups.map(\.arm), [nil, "B", "C", "A"])
        let empty = table.groups[2]
        XCTAssertEqual(empty.n, 0)
        XCTAssertEqual(empty.any.participants, 0)
        XCTAssertNil(empty.any.proportion)
        XCTAssertNil(empty.any.lower)
        XCTAssertNil(empty.any.upper)
        XCTAssertEqual(empty.organClasses, [])
    }

    func testEmptyInput() {
        let table = SafetyTables.adverseEvents(
            [], lookup: { _ in nil }, unknownOrganClass: unknownLabel, treatmentEmergent: { _, _ in true }, discontinuation: .participants([]),
            byArm: true)
        XCTAssertEqual(table.groups.count, 1)
        let g = table.groups[0]
        XCTAssertEqual(g.n, 0)
        XCTAssertEqual(g.any, AdverseEventTally(participants: 0, events: 0, proportion: nil, lower: nil, upper: nil, worstGrades: [0, 0, 0, 0, 0]))
        XCTAssertEqual(g.leadingToDiscontinuation?.participants, 0)
        XCTAssertNil(g.leadingToDiscontinuation?.proportion)
        XCTAssertEqual(g.organClasses, [])
    }
}

// MARK: Lab shift

/// Grades by value: < 0 ungradeable, < 10 → 0, < 20 → 1, < 30 → 2, < 40 → 3, else 4.
private func grade(_ lab: LabValue) -> Int? {
    lab.value < 0 ? nil : min(4, Int(lab.value / 10))
}

/// Reference time t0 (dose) for everyone but p7 (never dosed). Baseline visits "scr", "base".
/// p1 (A): base 5 (g0); w1 15 (g1), w2 25 (g2) → 0 → 2. Its L2 value 45 is another test.
/// p2 (A): scr 25 (g2, day −7), base 12 (g1, day −0.1): baseline is the later, g1; w1 8 (g0) → 1 → 0.
/// p3 (A): base 35 (g3); w1 35 (g3) → 3 → 3. Its "scr" value 5 on day 3 is after the reference time: not baseline
///   (which stays g3), though post-baseline (g0, below the worst).
/// p4 (B): no baseline; w1 22 (g2) → missing → 2.
/// p5 (B): base 5 (g0); no post-baseline value → 0 → missing.
/// p6 (B): base 15 (g1); w1 45 (g4), w2 −1 (ungradeable, passed over) → 1 → 4.
/// p7 (B): base 5 (g0); a w1 value 45 but no reference time, so no post-baseline → 0 → missing.
private struct LabCohort {
    let p1 = participant("p1", arm: "A", labs: [lab("base", -0.1, 5), lab("w1", 7, 15), lab("w2", 14, 25), lab("L2", "w1", 7, 45)])
    let p2 = participant("p2", arm: "A", labs: [lab("scr", -7, 25), lab("base", -0.1, 12), lab("w1", 7, 8)])
    let p3 = participant("p3", arm: "A", labs: [lab("base", -0.1, 35), lab("w1", 7, 35), lab("scr", 3, 5)])
    let p4 = participant("p4", arm: "B", labs: [lab("w1", 7, 22)])
    let p5 = participant("p5", arm: "B", labs: [lab("base", -0.1, 5)])
    let p6 = participant("p6", arm: "B", labs: [lab("base", -0.1, 15), lab("w1", 7, 45), lab("w2", 14, -1)])
    let p7 = participant("p7", arm: "B", labs: [lab("base", -0.1, 5), lab("w1", 7, 45)])
    var all: [ParticipantRecord] { [p1, p2, p3, p4, p5, p6, p7] }

    func shift(worsenedIf: ((Int?, Int) -> Bool)? = nil) -> ShiftTable {
        let never = p7.id
        let reference: (ParticipantRecord) -> Date? = { $0.id == never ? nil : t0 }
        if let worsenedIf {
            return SafetyTables.shift(
                test: "L1", all, grade: grade, baselineVisits: ["scr", "base"], referenceTime: reference, worsenedIf: worsenedIf, byArm: true, arms: ["A", "B"])
        }
        return SafetyTables.shift(test: "L1", all, grade: grade, baselineVisits: ["scr", "base"], referenceTime: reference, byArm: true, arms: ["A", "B"])
    }
}

final class ShiftTableTests: XCTestCase {
    /// Everyone (n 7): cells [0][2] p1, [1][0] p2, [3][3] p3, [missing][2] p4, [0][missing] p5 p7, [1][4] p6; the rest 0.
    /// Worsened (default worst > (baseline ?? 0)): p1 2 > 0, p4 2 > 0, p6 4 > 1 = 3 of the 5 with a post-baseline grade
    /// (p1 p2 p3 p4 p6): 0.6, 0.1466–0.9473.
    func testEveryone() throws {
        let everyone = try XCTUnwrap(LabCohort().shift().groups.first)
        XCTAssertEqual(everyone.n, 7)
        let m = ShiftGroup.missing
        var expected = [[Int]](repeating: [Int](repeating: 0, count: 6), count: 6)
        expected[0][2] = 1
        expected[1][0] = 1
        expected[3][3] = 1
        expected[m][2] = 1
        expected[0][m] = 2
        expected[1][4] = 1
        XCTAssertEqual(everyone.counts, expected)
        XCTAssertEqual(everyone.count(baseline: nil, worst: 2), 1)
        XCTAssertEqual(everyone.count(baseline: 0, worst: nil), 2)
        XCTAssertEqual(everyone.worsened, 3)
        XCTAssertEqual(everyone.assessed, 5)
        XCTAssertEqual(everyone.proportion ?? -1, 0.6, accuracy: 1e-12)
        XCTAssertEqual(everyone.lower ?? -1, 0.1466, accuracy: 1e-4)
        XCTAssertEqual(everyone.upper ?? -1, 0.9473, accuracy: 1e-4)
    }

    /// A (n 3): [0][2], [1][0], [3][3]; worsened p1 = 1 of 3 (0.0084–0.9057).
    /// B (n 4): [missing][2], [0][missing] ×2, [1][4]; worsened p4 p6 = 2 of 2 (0.1581–1).
    func testByArm() {
        let table = LabCohort().shift()
        XCTAssertEqual(table.test, "L1")
        XCTAssertEqual(table.groups.map(\.arm), [nil, "A", "B"])
        let a = table.groups[1], b = table.groups[2]
        XCTAssertEqual(a.n, 3)
        XCTAssertEqual([a.count(baseline: 0, worst: 2), a.count(baseline: 1, worst: 0), a.count(baseline: 3, worst: 3)], [1, 1, 1])
        XCTAssertEqual(a.counts.joined().reduce(0, +), 3)
        XCTAssertEqual(a.worsened, 1)
        XCTAssertEqual(a.assessed, 3)
        XCTAssertEqual(a.lower ?? -1, 0.0084, accuracy: 1e-4)
        XCTAssertEqual(a.upper ?? -1, 0.9057, accuracy: 1e-4)
        XCTAssertEqual(b.n, 4)
        XCTAssertEqual([b.count(baseline: nil, worst: 2), b.count(baseline: 0, worst: nil), b.count(baseline: 1, worst: 4)], [1, 2, 1])
        XCTAssertEqual(b.counts.joined().reduce(0, +), 4)
        XCTAssertEqual(b.worsened, 2)
        XCTAssertEqual(b.assessed, 2)
        XCTAssertEqual(b.lower ?? -1, 0.1581, accuracy: 1e-4)
        XCTAssertEqual(b.upper, 1)
    }

    /// A study convention of "a rise of two grades from a known baseline": p1 0 → 2 and p6 1 → 4 only (p4 has no baseline).
    func testCallerSuppliedWorsening() {
        let everyone = LabCohort().shift { baseline, worst in baseline.map { worst >= $0 + 2 } ?? false }.groups[0]
        XCTAssertEqual(everyone.worsened, 2)
        XCTAssertEqual(everyone.assessed, 5)
    }

    /// A grading that answers 9 for 99 (outside 0…4) is ungraded there: base 5 (g0), w1 15 (g1), w2 99 passed over →
    /// worst 1, cell [0][1], assessed and worsened 1.
    func testGradesOutsideTheScaleAreUngraded() {
        let record = participant("r1", arm: nil, labs: [lab("base", -0.1, 5), lab("w1", 7, 15), lab("w2", 14, 99)])
        let g = SafetyTables.shift(
            test: "L1", [record], grade: { $0.value == 99 ? 9 : grade($0) }, baselineVisits: ["base"], referenceTime: { _ in t0 }, byArm: false
        ).groups[0]
        XCTAssertEqual(g.count(baseline: 0, worst: 1), 1)
        XCTAssertEqual(g.counts.joined().reduce(0, +), 1)
        XCTAssertEqual(g.assessed, 1)
        XCTAssertEqual(g.worsened, 1)
    }

    func testEmptyInput() {
        let table = SafetyTables.shift(test: "L1", [], grade: grade, baselineVisits: ["base"], referenceTime: { _ in t0 }, byArm: true, arms: ["A"])
        XCTAssertEqual(table.groups.map(\.arm), [nil, "A"])
        for g in table.groups {
            XCTAssertEqual(g.n, 0)
            XCTAssertEqual(g.counts, [[Int]](repeating: [Int](repeating: 0, count: 6), count: 6))
            XCTAssertEqual(g.worsened, 0)
            XCTAssertEqual(g.assessed, 0)
            XCTAssertNil(g.proportion)
            XCTAssertNil(g.lower)
            XCTAssertNil(g.upper)
        }
    }
}

// MARK: Lab values by visit

/// Reference t0, baseline visits "scr" and "base".
/// q1 (A): base 10, w1 14, w2 20. q2 (A): base 20, w1 22, and a "scr" 100 on day 1: after the reference time, so not
/// its baseline (which stays 20). q3 (A): base 30, w1 30 (day 7) then 36 (day 8): the latest, 36.
/// q4 (B): no baseline, w1 50.
private let visitCohort = [
    participant("q1", arm: "A", labs: [lab("base", -0.1, 10), lab("w1", 7, 14), lab("w2", 14, 20)]),
    participant("q2", arm: "A", labs: [lab("base", -0.1, 20), lab("w1", 7, 22), lab("scr", 1, 100)]),
    participant("q3", arm: "A", labs: [lab("base", -0.1, 30), lab("w1", 7, 30), lab("w1", 8, 36)]),
    participant("q4", arm: "B", labs: [lab("w1", 7, 50)]),
]

private func byVisit(_ records: [ParticipantRecord], arms: [String] = ["A", "B", "C"]) -> LabVisitTable {
    SafetyTables.labsByVisit(
        test: "L1", records, visits: ["base", "w1", "w2"], baselineVisits: ["scr", "base"], referenceTime: { _ in t0 }, byArm: true, arms: arms)
}

final class LabVisitTableTests: XCTestCase {
    /// Everyone (n 4):
    /// base: 10, 20, 30 → mean 20, SD √((100 + 0 + 100) / 2) = 10, median 20; change 0, 0, 0 → mean 0, SD 0.
    /// w1: 14, 22, 36, 50 → mean 122 / 4 = 30.5; squared deviations 272.25 + 72.25 + 30.25 + 380.25 = 755, SD √(755 / 3)
    ///   = 15.8640; median (22 + 36) / 2 = 29; change (q4 has no baseline) 4, 2, 6 → mean 4, SD √((0 + 4 + 4) / 2) = 2.
    /// w2: 20 alone → SD nil; change 10.
    func testEveryone() throws {
        let table = byVisit(visitCohort)
        XCTAssertEqual(table.test, "L1")
        let everyone = try XCTUnwrap(table.groups.first)
        XCTAssertEqual(everyone.n, 4)
        XCTAssertEqual(everyone.visits.map(\.visit), ["base", "w1", "w2"])
        XCTAssertEqual(everyone.visits.map(\.n), [3, 4, 1])
        let base = everyone.visits[0], w1 = everyone.visits[1], w2 = everyone.visits[2]
        XCTAssertEqual(base.value?.mean, 20)
        XCTAssertEqual(base.value?.sd ?? -1, 10, accuracy: 1e-12)
        XCTAssertEqual(base.value?.median, 20)
        XCTAssertEqual(base.change?.n, 3)
        XCTAssertEqual(base.change?.mean, 0)
        XCTAssertEqual(base.change?.sd, 0)
        XCTAssertEqual(w1.value?.n, 4)
        XCTAssertEqual(w1.value?.mean, 30.5)
        XCTAssertEqual(w1.value?.sd ?? -1, 15.8640, accuracy: 1e-4)
        XCTAssertEqual(w1.value?.median, 29)
        XCTAssertEqual(w1.value?.min, 14)
        XCTAssertEqual(w1.value?.max, 50)
        XCTAssertEqual(w1.change?.n, 3)
        XCTAssertEqual(w1.change?.mean ?? -1, 4, accuracy: 1e-12)
        XCTAssertEqual(w1.change?.sd ?? -1, 2, accuracy: 1e-12)
        XCTAssertEqual(w2.value?.mean, 20)
        XCTAssertNil(w2.value?.sd)
        XCTAssertEqual(w2.change?.mean, 10)
    }

    /// A (n 3): w1 14, 22, 36 → mean 24, SD √((100 + 4 + 144) / 2) = √124 = 11.1355; change 4, 2, 6 as above.
    /// B (n 1): only w1 50 with no baseline → change nil; base and w2 nil. C: listed, nobody → n 0, all nil.
    func testByArmAndEmptyArm() {
        let table = byVisit(visitCohort)
        XCTAssertEqual(table.groups.map(\.arm), [nil, "A", "B", "C"])
        let a = table.groups[1], b = table.groups[2], c = table.groups[3]
        XCTAssertEqual(a.n, 3)
        XCTAssertEqual(a.visits[1].value?.mean ?? -1, 24, accuracy: 1e-12)
        XCTAssertEqual(a.visits[1].value?.sd ?? -1, 11.1355, accuracy: 1e-4)
        XCTAssertEqual(a.visits[1].change?.mean ?? -1, 4, accuracy: 1e-12)
        XCTAssertEqual(b.n, 1)
        XCTAssertEqual(b.visits.map(\.n), [0, 1, 0])
        XCTAssertNil(b.visits[0].value)
        XCTAssertEqual(b.visits[1].value?.mean, 50)
        XCTAssertNil(b.visits[1].change)
        XCTAssertEqual(c.n, 0)
        XCTAssertEqual(c.visits.map(\.n), [0, 0, 0])
        XCTAssertTrue(c.visits.allSatisfy { $0.value == nil && $0.change == nil })
    }

    func testEmptyInput() {
        let table = byVisit([], arms: [])
        XCTAssertEqual(table.groups.count, 1)
        XCTAssertEqual(table.groups[0].n, 0)
        XCTAssertTrue(table.groups[0].visits.allSatisfy { $0.n == 0 && $0.value == nil && $0.change == nil })
    }
}
