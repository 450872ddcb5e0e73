import Foundation
import Testing
import TrialDomain

/// A consistent two-arm trial; the counts are invented.
private func twoArms() -> ConsortFlow {
    ConsortFlow(
        assessed: 120, excluded: 20,
        excludedReasons: [
            ConsortReason(label: "Not meeting inclusion criteria", n: 12), ConsortReason(label: "Declined to participate", n: 5),
            ConsortReason(label: "Other reasons", n: 3),
        ],
        randomized: 100,
        arms: [
            ConsortArm(
                code: "A", name: "Arm A", allocated: 50, received: 48, notReceived: 2, notReceivedReasons: [ConsortReason(label: "Withdrew consent", n: 2)],
                lostToFollowUp: 1, lostToFollowUpReasons: [ConsortReason(label: "Moved away", n: 1)],
                discontinued: 3, discontinuedReasons: [ConsortReason(label: "Adverse event", n: 3)],
                analysed: 49, excludedFromAnalysis: 1, excludedFromAnalysisReasons: [ConsortReason(label: "No baseline data", n: 1)]),
            ConsortArm(
                code: "B", name: "Arm B", allocated: 50, received: 50,
                lostToFollowUp: 2, lostToFollowUpReasons: [ConsortReason(label: "Moved away", n: 2)],
                discontinued: 1, discontinuedReasons: [ConsortReason(label: "Withdrew consent", n: 1)], analysed: 50),
        ])
}

@Suite struct ConsortFlowTests {
    @Test func consistentFlowHasNoInconsistencies() {
        #expect(twoArms().inconsistencies() == [])
    }

    @Test func randomizedAndArmsAreTheFirstStage() {
        var flow = twoArms()
        #expect(flow.stages.count == 1)
        #expect(flow.randomized == 100)
        #expect(flow.arms.map(\.code) == ["A", "B"])
        flow.stages.append(ConsortStage(label: "Second randomization", randomized: 30, arms: []))
        flow.randomized = 90
        #expect(flow.stages[0].randomized == 90)
        #expect(flow.stages[1].randomized == 30)

        var empty = ConsortFlow(assessed: 0, excluded: 0, stages: [])
        #expect(empty.randomized == 0)
        #expect(empty.arms.isEmpty)
        empty.randomized = 4
        #expect(empty.stages.count == 1)
        #expect(empty.randomized == 4)
    }

    @Test func receivedPlusNotReceivedMustMakeAllocated() {
        var flow = twoArms()
        flow.arms[0].received = 47
        let found = flow.inconsistencies()
        #expect(found.count == 1)
        #expect(found[0].contains("Arm A") && found[0].contains("received (47)") && found[0].contains("allocated is 50"))
    }

    @Test func eachKindOfMismatchIsReported() {
        var flow = twoArms()
        flow.excludedReasons[0].n = 11  // reasons 19, excluded 20
        flow.arms[1].allocated = 51  // arms 101, randomized 100; and B's received/analysed no longer add up
        flow.arms[0].lostToFollowUpReasons = [ConsortReason(label: "Moved away", n: 2)]
        flow.arms[0].discontinued = -1
        flow.arms[0].discontinuedReasons = []
        flow.arms[1].code = "A"
        let found = flow.inconsistencies()
        #expect(found.contains("Excluded: reasons add up to 19, but the count is 20."))
        #expect(found.contains("Arms' allocated add up to 101, but randomized is 100."))
        #expect(found.contains("Arm B: received (50) plus did not receive (0) is 50, but allocated is 51."))
        #expect(found.contains("Arm B: analysed (50) plus excluded from analysis (0) is 50, but allocated is 51."))
        #expect(found.contains("Arm A: lost to follow-up: reasons add up to 2, but the count is 1."))
        #expect(found.contains("Arm A: discontinued intervention is negative (-1)."))
        #expect(found.contains("Arm code \"A\" appears more than once."))
    }

    @Test func enrollmentMustLeadToRandomized() {
        var flow = twoArms()
        flow.assessed = 130
        #expect(flow.inconsistencies() == ["Assessed for eligibility (130) minus excluded (20) is 110, but randomized is 100."])
    }

    @Test func laterStagesAreNamedAndCannotExceedTheStageBefore() {
        var flow = twoArms()
        flow.stages[0].label = "First randomization"
        flow.stages.append(
            ConsortStage(
                label: "Second randomization", randomized: 120,
                arms: [ConsortArm(code: "C", name: "Arm C", allocated: 120, received: 120, analysed: 119)]))
        let found = flow.inconsistencies()
        #expect(found.contains("Second randomization: randomized (120) is more than the stage before (100)."))
        #expect(found.contains("Second randomization: Arm C: analysed (119) plus excluded from analysis (0) is 119, but allocated is 120."))
    }

    @Test func pooledSumsArmsAndDropsTheirIdentity() throws {
        let pooled = twoArms().pooled(label: "All randomized")
        #expect(pooled.pooled)
        #expect(pooled.randomized == 100)
        #expect(pooled.arms.count == 1)
        let all = pooled.arms[0]
        #expect(all.name == "All randomized")
        let counts: [Int] = [all.allocated, all.received, all.notReceived, all.lostToFollowUp, all.discontinued, all.analysed, all.excludedFromAnalysis]
        #expect(counts == [100, 98, 2, 3, 4, 99, 1])
        #expect(all.lostToFollowUpReasons == [ConsortReason(label: "Moved away", n: 3)])
        // By count, then label: not in the arms' order.
        #expect(all.discontinuedReasons == [ConsortReason(label: "Adverse event", n: 3), ConsortReason(label: "Withdrew consent", n: 1)])
        #expect(pooled.inconsistencies() == [])
        #expect(pooled.pooled(label: "All randomized") == pooled)

        let json = String(decoding: try JSONEncoder().encode(pooled), as: UTF8.self)
        #expect(!json.contains("Arm A") && !json.contains("Arm B"))
    }

    @Test func pooledFlagWithArmsStillThereIsReported() {
        var flow = twoArms()
        flow.pooled = true
        #expect(flow.inconsistencies() == ["Marked pooled, but a stage still holds several arms; use pooled(label:)."])
    }

    @Test func poolingKeepsEachStageApart() {
        var flow = twoArms()
        flow.stages.append(
            ConsortStage(
                label: "Second randomization", randomized: 40,
                arms: [
                    ConsortArm(code: "C", name: "Arm C", allocated: 20, received: 20, analysed: 20),
                    ConsortArm(code: "D", name: "Arm D", allocated: 20, received: 19, notReceived: 1, analysed: 20),
                ]))
        let pooled = flow.pooled(label: "All")
        #expect(pooled.stages.map(\.arms.count) == [1, 1])
        #expect(pooled.stages[1].arms[0].allocated == 40)
        #expect(pooled.stages[1].arms[0].received == 39)
        #expect(pooled.stages[1].label == "Second randomization")
    }

    @Test func roundTripsThroughJSON() throws {
        var flow = twoArms()
        flow.stages.append(ConsortStage(label: "Second randomization", randomized: 0, arms: []))
        let decoded = try JSONDecoder().decode(ConsortFlow.self, from: try JSONEncoder().encode(flow))
        #expect(decoded == flow)
    }
}
