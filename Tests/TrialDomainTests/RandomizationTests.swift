import Foundation
import Testing
@testable import TrialDomain

@Suite struct ChaCha20Tests {
    /// RFC 8439 §2.3.2: key 00..1f, counter 1, nonce 00:00:00:09:00:00:00:4a:00:00:00:00.
    @Test func theRFC8439BlockVector() {
        var generator = ChaCha20Generator(key: Array(0...31), counter: 1, nonce: [0x0900_0000, 0x4a00_0000, 0])
        let expected: [UInt32] = [
            0xe4e7_f110, 0x1559_3bd1, 0x1fdd_0f50, 0xc471_20a3, 0xc7f4_d1c7, 0x0368_c033, 0x9aaa_2204, 0x4e6c_d4c3,
            0x4664_82d2, 0x09aa_9f07, 0x05d7_c214, 0xa202_8bd9, 0xd19c_12b5, 0xb94e_16de, 0xe883_d0cb, 0x4e3c_50a2,
        ]
        #expect(generator.block() == expected)
    }

    @Test func seedsAreReadFromHex() {
        #expect(ChaCha20Generator.seed(hex: String(repeating: "0f", count: 32)) == Array(repeating: 15, count: 32))
        #expect(ChaCha20Generator.seed(hex: "abc") == nil)
        #expect(ChaCha20Generator.seed(hex: String(repeating: "zz", count: 32)) == nil)
    }
}

@Suite struct PermutedBlockTests {
    static let arms = [(code: "msc_ev", ratio: 1), (code: "control", ratio: 1)]

    func list(seed: UInt8, strata: [String] = ["S1|meld_na<30", "S1|meld_na≥30"], perStratum: Int = 60) throws -> [AllocationSlot] {
        var rng = ChaCha20Generator(seed: Array(repeating: seed, count: 32))
        return try AllocationList.generate(arms: Self.arms, blockSizes: [2, 4], strata: strata, perStratum: perStratum, using: &rng)
    }

    @Test func theSameSeedGivesTheSameList() throws {
        #expect(try list(seed: 7) == list(seed: 7))
        #expect(try list(seed: 7) != list(seed: 8))
    }

    /// Every completed block of every stratum is exactly balanced 1:1, over many seeds.
    @Test(arguments: 0..<50)
    func everyBlockIsBalanced(seed: Int) throws {
        let slots = try list(seed: UInt8(seed))
        let blocks = Dictionary(grouping: slots) { "\($0.stratum)#\($0.block)" }
        for (_, block) in blocks {
            #expect([2, 4].contains(block[0].blockSize))
            guard block.count == block[0].blockSize else { continue }
            #expect(block.filter { $0.arm == "msc_ev" }.count == block.count / 2)
        }
        for stratum in Set(slots.map(\.stratum)) {
            let positions = slots.filter { $0.stratum == stratum }.map(\.position)
            #expect(positions == Array(1...positions.count))
        }
    }

    @Test func bothBlockSizesAreUsed() throws {
        let sizes = Set(try list(seed: 3, perStratum: 400).map(\.blockSize))
        #expect(sizes == [2, 4])
    }

    @Test func aRatioOfTwoToOneFillsBlocksTwoToOne() throws {
        var rng = ChaCha20Generator(seed: Array(repeating: 1, count: 32))
        let slots = try AllocationList.generate(arms: [("a", 2), ("b", 1)], blockSizes: [3, 6], strata: ["x"], perStratum: 30, using: &rng)
        for (_, block) in Dictionary(grouping: slots, by: \.block) where block.count == block[0].blockSize {
            #expect(block.filter { $0.arm == "a" }.count == block.count * 2 / 3)
        }
    }

    @Test func aBlockSizeThatCannotHoldTheRatioIsRefused() {
        var rng = ChaCha20Generator(seed: Array(repeating: 1, count: 32))
        #expect(throws: RandomizationError.invalidSettings("block size 3 is not a multiple of the ratio total 2")) {
            try AllocationList.generate(arms: Self.arms, blockSizes: [3], strata: ["x"], perStratum: 4, using: &rng)
        }
    }
}

@Suite struct MinimizationTests {
    static let arms = [(code: "a", ratio: 1), (code: "b", ratio: 1)]

    /// Pocock & Simon's range method, worked by hand: with a:3, b:1 at the first factor level and a:1, b:1 at the second,
    /// choosing a gives ranges 3 + 1 = 4, choosing b gives 1 + 1 = 2, so b is preferred.
    @Test func theArmThatLeastIncreasesImbalanceIsPreferred() {
        var rng = ChaCha20Generator(seed: Array(repeating: 9, count: 32))
        let counts = [["a": 3, "b": 1], ["a": 1, "b": 1]]
        #expect(Minimization.choose(arms: Self.arms, counts: counts, probability: 1, using: &rng) == "b")
        #expect(Minimization.choose(arms: Self.arms, counts: counts, probability: 0, using: &rng) == "a")
    }

    @Test func minimizationKeepsMarginalTotalsClose() {
        var rng = ChaCha20Generator(seed: Array(repeating: 4, count: 32))
        var byLevel: [String: [String: Int]] = [:]
        var totals: [String: Int] = [:]
        for i in 0..<200 {
            let levels = ["site\(i % 3)", "meld\(i % 2)"]
            let arm = Minimization.choose(arms: Self.arms, counts: levels.map { byLevel[$0, default: [:]] }, probability: 0.8, using: &rng)
            for level in levels { byLevel[level, default: [:]][arm, default: 0] += 1 }
            totals[arm, default: 0] += 1
        }
        #expect(abs(totals["a", default: 0] - totals["b", default: 0]) <= 4)
        for (_, counts) in byLevel { #expect(abs(counts["a", default: 0] - counts["b", default: 0]) <= 4) }
    }
}

@Suite struct ParticipantScheduleTests {
    static func day(_ text: String) -> Date { DateParsing.day(text)! }

    @Test func windowsStatesAndAnchors() {
        let study = miniStudy()
        let now = DateParsing.instant("2026-01-20T12:00")!
        let schedule = ParticipantSchedule.build(
            study: study, anchors: ["transplant": Self.day("2026-01-10")], done: [:], now: now)
        let day7 = schedule[1]
        // Day 7 ±1 d after a transplant on 10 January: 16 January to the end of 18 January; now is the 20th.
        #expect(day7.target == Self.day("2026-01-17"))
        #expect(day7.windowStart == Self.day("2026-01-16"))
        #expect(day7.state == .overdue)
        let inWindow = ParticipantSchedule.build(
            study: study, anchors: ["transplant": Self.day("2026-01-10")], done: ["day_7": DateParsing.instant("2026-01-18T23:00")!], now: now)
        #expect(inWindow[1].state == .done)
        let late = ParticipantSchedule.build(
            study: study, anchors: ["transplant": Self.day("2026-01-10")], done: ["day_7": Self.day("2026-01-19")], now: now)
        #expect(late[1].state == .outOfWindow)
        let due = ParticipantSchedule.build(study: study, anchors: ["transplant": Self.day("2026-01-10")], done: [:], now: Self.day("2026-01-16"))
        #expect(due[1].state == .due)
        let unplaced = ParticipantSchedule.build(study: study, anchors: [:], done: [:], now: now)
        #expect(unplaced.map(\.state) == [.notScheduled, .notScheduled])
    }
}
