import Foundation
import Testing

@testable import TrialDomain

@Suite struct BaselineCharacteristicsTests {
    static func day(_ text: String) -> Date { DateParsing.day(text)! }

    /// The mini study with a screening visit for eligibility and a baseline visit that defines allocation: the baseline
    /// visits are then screening and baseline.
    static func study() -> StudyDefinition {
        var study = miniStudy()
        study.anchors.append(Anchor(code: "allocation", label: "Allocation", description: nil, source: "allocation"))
        study.visits += [
            Visit(code: "screening", name: "Screening", anchor: "transplant", target: Offset(-7, .days), window: VisitWindow(before: Offset(7, .days), after: Offset(0, .days))),
            Visit(code: "baseline", name: "Baseline", anchor: "transplant", target: Offset(1, .days), window: VisitWindow(before: Offset(0, .days), after: Offset(2, .days)), defines: "allocation"),
        ]
        study.forms.append(Form(code: "demographics", name: "Demographics", visits: ["screening"], fields: [
            Field(code: "birth_date", label: "Born", type: .date),
            Field(code: "sex", label: "Sex", type: .choice, choices: [Choice(code: "F", label: "Female"), Choice(code: "M", label: "Male")]),
        ]))
        study.eligibility.visit = "screening"
        study.participant = ParticipantFields(sex: "demographics.sex", female: "F", birthDate: "demographics.birth_date")
        return study
    }

    /// Two arms, three participants; every figure below is worked by hand.
    @Test func ageSexAndBaselineLabsPerArm() {
        let study = Self.study()
        let allocated = Self.day("2026-03-10")
        func record(_ n: String, arm: String?, born: String, sex: String, bili: [(String, String, Double)]) -> ParticipantRecord {
            var r = ParticipantRecord(
                id: UUID(), screeningNumber: n, site: "S1", arm: arm, allocatedAt: arm == nil ? nil : allocated,
                forms: [FormEntry(visit: "screening", form: "demographics", values: ["birth_date": born, "sex": sex], recordedAt: allocated)])
            r.labs = bili.map { LabValue(test: "BILI", visit: $0.0, collectedAt: Self.day($0.1), value: $0.2) }
            return r
        }
        let records = [
            // 41 on 2026-03-10 (born 1985-03-10: 2026 − 1985, the birthday falls that day); baseline BILI: the later of the two before allocation, 200.
            record("1", arm: "a", born: "1985-03-10", sex: "M", bili: [("screening", "2026-03-01", 180), ("baseline", "2026-03-09", 200), ("day_7", "2026-03-17", 90)]),
            // 39 (2026 − 1986 = 40, but the birthday, 03-11, is a day after allocation); baseline BILI 300.
            record("2", arm: "a", born: "1986-03-11", sex: "F", bili: [("screening", "2026-03-02", 300)]),
            // 60; no lab.
            record("3", arm: "b", born: "1966-01-01", sex: "F", bili: []),
            // Never allocated: in no group.
            record("4", arm: nil, born: "1990-01-01", sex: "M", bili: [("screening", "2026-03-01", 50)]),
        ]
        let groups = BaselineCharacteristics.compute(records, study: study, tests: ["BILI"], reference: { $0.allocatedAt }, byArm: true)
        #expect(groups.map(\.arm) == [nil, "a", "b"])
        #expect(groups.map(\.n) == [3, 2, 1])
        // Everyone: ages 41, 39, 60 → mean 140/3 = 46.667, median 41; arm a: (41 + 39)/2 = 40.
        #expect(abs(groups[0].age!.mean - 140.0 / 3) < 1e-12)
        #expect(groups[0].age!.median == 41)
        #expect(groups[1].age!.mean == 40)
        #expect(groups[0].sex == ["M": 1, "F": 2])
        #expect(groups[2].sex == ["F": 1])
        // Arm a: baseline BILI 200 and 300: mean 250, SD √((50² + 50²)/1) = 70.7107.
        #expect(groups[1].labs["BILI"]?.mean == 250)
        #expect(abs(groups[1].labs["BILI"]!.sd! - 70.710678) < 1e-6)
        #expect(groups[2].labs["BILI"] == nil)
    }

    @Test func noAllocatedParticipantGivesEmptyGroups() {
        let study = Self.study()
        let groups = BaselineCharacteristics.compute([], study: study, tests: ["BILI"], reference: { $0.allocatedAt }, byArm: false)
        #expect(groups.count == 1)
        #expect(groups[0].n == 0)
        #expect(groups[0].age == nil)
        #expect(groups[0].labs.isEmpty)
    }
}
