import Foundation
import Testing
import TrialDomain

private func close(_ a: Double, _ b: Double, within tolerance: Double) -> Bool { abs(a - b) <= tolerance }

/// Stop counts for n = 1, 2, ...; a count above n cannot stop the trial and is left out, as the rule's list does.
private func boundaries(counts: [Int]) -> [StoppingBoundary] {
    counts.enumerated().map { StoppingBoundary(n: $0.offset + 1, stopIfAtLeast: $0.element) }.filter { $0.stopIfAtLeast <= $0.n }
}

/// Bayesian rule (Geller et al. 2003) against the stoppingrule R package's README example (Martens, Lian & Logan; v0.6):
/// calc.rule.bin(ns = 1:30, p0 = 0.20, alpha = 0.10, type = "BB", param = c(0.6, 2.4)) and OC.rule.bin(ps = seq(0.2, 0.4, 0.05)).
@Suite struct StoppingRulePackageExampleTests {
    let rule: ToxicityStoppingRule

    init() throws { rule = try ToxicityStoppingRule(method: .bayes(prior: try BetaPrior(a: 0.6, b: 2.4)), p0: 0.2, maxSampleSize: 30) }

    /// README: "$cval [1] 0.9630823". The package bisects the certainty with uniroot's default tolerance (~1e-4 in x)
    /// inside, so its value sits a few 1e-7 off the exact switch point; both agree to 6 decimals.
    @Test func calibratedCertaintyMatchesThePackage() throws {
        let design = try rule.calibrate(alpha: 0.10)
        #expect(close(design.certainty, 0.9630823, within: 1e-6))
        #expect(design.nominalLevel == nil)
    }

    /// README's "Reject bdry" column for n = 1...30; n = 1 and 2 (boundaries 2 and 3) cannot stop and are left out.
    @Test func boundariesMatchThePackage() throws {
        let published = [2, 3, 3, 3, 4, 4, 5, 5, 5, 5, 6, 6, 6, 7, 7, 7, 7, 8, 8, 8, 9, 9, 9, 9, 10, 10, 10, 10, 11, 11]
        let design = try rule.calibrate(alpha: 0.10)
        #expect(design.boundaries == boundaries(counts: published))
        #expect(design.boundaries.first == StoppingBoundary(n: 3, stopIfAtLeast: 3))
    }

    /// README's OC.rule.bin table: "Reject Prob" (8 decimals) and "E(events)" (6 decimals) at p = 0.20 ... 0.40.
    @Test func operatingCharacteristicsMatchThePackage() throws {
        let design = try rule.calibrate(alpha: 0.10)
        let published: [(p: Double, reject: Double, events: Double)] = [
            (0.20, 0.09957367, 5.651197), (0.25, 0.23832301, 6.536293), (0.30, 0.43615256, 6.926712),
            (0.35, 0.64555222, 6.819377), (0.40, 0.81491087, 6.355803),
        ]
        for row in published {
            let oc = try design.operatingCharacteristics(at: row.p)
            #expect(close(oc.probabilityOfStopping, row.reject, within: 1e-8), "p = \(row.p)")
            #expect(close(oc.expectedToxicities, row.events, within: 1e-6), "p = \(row.p)")
        }
        #expect(try design.operatingCharacteristics(at: 0.2).probabilityOfStopping <= 0.10)
    }

    /// All toxic: the first look that can stop (n = 3, 3 toxicities) stops every trial. None toxic: every trial runs to 30.
    @Test func certainRatesFollowTheFirstStoppingLook() throws {
        let design = try rule.calibrate(alpha: 0.10)
        let always = try design.operatingCharacteristics(at: 1)
        #expect(always.probabilityOfStopping == 1 && always.expectedSampleSize == 3 && always.expectedToxicities == 3)
        let never = try design.operatingCharacteristics(at: 0)
        #expect(never.probabilityOfStopping == 0 && never.expectedSampleSize == 30 && never.expectedToxicities == 0)
    }

    /// The reported certainty is the smallest giving these boundaries: re-deriving at it gives them back, and
    /// any certainty below it stops once more and breaks the 10 % limit.
    @Test func calibratedCertaintyIsTheSwitchPoint() throws {
        let design = try rule.calibrate(alpha: 0.10)
        #expect(try rule.boundaries(certainty: design.certainty).boundaries == design.boundaries)
        let below = try rule.boundaries(certainty: design.certainty.nextDown)
        #expect(below.boundaries != design.boundaries)
        #expect(try below.operatingCharacteristics(at: 0.2).probabilityOfStopping > 0.10)
    }
}

/// Pocock-type rule (Ivanova, Qaqish & Schell 2005) against the examples printed in clinfun's toxbdry reference page
/// (Seshan; pkgdown, v1.1.x). toxbdry's "high boundary" is the one whose crossing probability is just below cP0, i.e.
/// the largest nominal level keeping P(stop | pLo) ≤ cP0; it prints the largest acceptable count r (stop when x > r).
/// Its pcross is our probability of stopping (last look included) and ess our expected sample size.
@Suite struct StoppingRuleToxbdryTests {
    private func check(_ design: StoppingDesign, rates: [Double], pcross: [Double], ess: [Double]) throws {
        for (i, p) in rates.enumerated() {
            let oc = try design.operatingCharacteristics(at: p)
            #expect(close(oc.probabilityOfStopping, pcross[i], within: 0.0005), "p = \(p)")  // printed to 3 decimals
            #expect(close(oc.expectedSampleSize, ess[i], within: 0.05), "p = \(p)")  // printed to 1 decimal
        }
    }

    /// toxbdry(0.2, 0.35, c(20, 40, 60, 75)): high boundary 7/20 12/40 17/60 21/75; low 20/75 crosses with 0.101.
    @Test func fourLooksAtTenPercent() throws {
        let rule = try ToxicityStoppingRule(method: .pocock, p0: 0.2, maxSampleSize: 75, looks: [20, 40, 60, 75])
        let design = try rule.calibrate(alpha: 0.10)
        #expect(design.boundaries.map(\.stopIfAtLeast) == [7, 12, 17, 21].map { $0 + 1 })
        #expect(close(design.certainty, 1 - (design.nominalLevel ?? .nan), within: 1e-15))
        try check(
            design, rates: [0.20, 0.23, 0.26, 0.29, 0.32, 0.35], pcross: [0.088, 0.214, 0.406, 0.619, 0.797, 0.911],
            ess: [72.0, 68.1, 62.1, 54.7, 47.0, 39.9])
        let low = zip([20, 40, 60, 75], [8, 13, 18, 21]).map { StoppingBoundary(n: $0, stopIfAtLeast: $1) }
        let lowOC = try OperatingCharacteristics(boundaries: low, maxSampleSize: 75, trueRate: 0.2)
        #expect(close(lowOC.probabilityOfStopping, 0.101, within: 0.0005))
    }

    /// toxbdry(0.2, 0.3, c(20, 40, 60, 75), cP0 = 0.15, cP1 = 0.8): high boundary 7/20 12/40 16/60 20/75.
    @Test func fourLooksAtFifteenPercent() throws {
        let rule = try ToxicityStoppingRule(method: .pocock, p0: 0.2, maxSampleSize: 75, looks: [20, 40, 60, 75])
        let design = try rule.calibrate(alpha: 0.15)
        #expect(design.boundaries.map(\.stopIfAtLeast) == [7, 12, 16, 20].map { $0 + 1 })
        try check(
            design, rates: [0.20, 0.22, 0.24, 0.26, 0.28, 0.30], pcross: [0.117, 0.213, 0.341, 0.487, 0.632, 0.758],
            ess: [71.6, 69.0, 65.4, 61.0, 56.1, 51.0])
    }

    /// toxbdry(0.1, 0.3, 2:30), continuous monitoring: high boundary 1/3 2/8 3/13 4/19 5/26 6/30 (r held up to that n).
    /// toxbdry starts at n = 2; our look at n = 1 cannot stop (P(X_1 ≥ 1) = 0.1 is above any level that keeps α = 0.1).
    @Test func continuousMonitoring() throws {
        let rule = try ToxicityStoppingRule(method: .pocock, p0: 0.1, maxSampleSize: 30)
        let design = try rule.calibrate(alpha: 0.10)
        let heldUpTo = [(3, 1), (8, 2), (13, 3), (19, 4), (26, 5), (30, 6)]
        let expected = (2...30).map { n in StoppingBoundary(n: n, stopIfAtLeast: heldUpTo.first { n <= $0.0 }!.1 + 1) }
        #expect(design.boundaries == expected)
        try check(
            design, rates: [0.10, 0.14, 0.18, 0.22, 0.26, 0.30], pcross: [0.097, 0.245, 0.441, 0.638, 0.795, 0.898],
            ess: [28.1, 25.8, 22.5, 19.0, 15.6, 12.7])
    }

    /// The nominal level is a binomial tail value at a stop point and the largest that keeps α: the next larger tail
    /// value among the points that do not stop adds a stop and breaks the limit.
    @Test func nominalLevelIsTheLargestThatKeepsAlpha() throws {
        let rule = try ToxicityStoppingRule(method: .pocock, p0: 0.1, maxSampleSize: 30)
        let design = try rule.calibrate(alpha: 0.10)
        let level = try #require(design.nominalLevel)
        #expect(design.boundaries.contains { rule.statistic(n: $0.n, toxicities: $0.stopIfAtLeast) == level })
        #expect(try rule.boundaries(nominalLevel: level).boundaries == design.boundaries)
        let byLook = Dictionary(uniqueKeysWithValues: design.boundaries.map { ($0.n, $0.stopIfAtLeast) })
        let nextLevel = (1...30).compactMap { n -> Double? in
            let firstNonStop = (byLook[n] ?? n + 1) - 1
            return firstNonStop >= 1 ? rule.statistic(n: n, toxicities: firstNonStop) : nil
        }.min()!
        #expect(nextLevel > level)
        let looser = try rule.boundaries(nominalLevel: nextLevel)
        #expect(try looser.operatingCharacteristics(at: 0.1).probabilityOfStopping > 0.10)
    }
}

@Suite struct StoppingRuleRecursionTests {
    /// Qaqish B, "Exact Boundary Crossing Probability" cp3 v1.1 (2003), sample output _bndry_.out: upper boundary hits at
    /// 3/3, 4/5, 4/6, 5/8, 5/9, 6/11, 6/12, 7/14, 7/15, 8/17, 8/18, 9/20 (one more stop count every 3 participants),
    /// P(event) = 0.2, n = 20: P(upper) = 0.0484005, E[#subjects] = 19.4662, E[#events] = 3.89324.
    @Test func matchesQaqishCrossingProgram() throws {
        // 3 at n = 3, 4 at n = 4...6, 5 at 7...9, ..., 9 at 19...20 (the counts at n = 4, 7, ... cannot be reached).
        let boundaries = (3...20).map { StoppingBoundary(n: $0, stopIfAtLeast: ($0 - 1) / 3 + 3) }
        #expect(boundaries.first == StoppingBoundary(n: 3, stopIfAtLeast: 3) && boundaries.last == StoppingBoundary(n: 20, stopIfAtLeast: 9))
        let oc = try OperatingCharacteristics(boundaries: boundaries, maxSampleSize: 20, trueRate: 0.2)
        #expect(close(oc.probabilityOfStopping, 0.0484005, within: 5e-8))
        #expect(close(oc.expectedSampleSize, 19.4662, within: 5e-5))
        #expect(close(oc.expectedToxicities, 3.89324, within: 5e-6))
    }

    /// By hand, N = 3, stop at n = 2 or 3 once 2 toxicities, p = 1/2: stop at 2 with TT (1/4); at 3 with one of the
    /// first two toxic then a toxicity (2·1/4·1/2 = 1/4): P(stop) = 1/2. E[N] = 2·1/4 + 3·3/4 = 2.75.
    /// E[toxicities] = 2·1/4 + 2·1/4 + (NNT 1/8: 1) + (TN N or NT N, 1/4: 1) = 1.375.
    @Test func handWorkedThreeParticipants() throws {
        let rule = [StoppingBoundary(n: 2, stopIfAtLeast: 2), StoppingBoundary(n: 3, stopIfAtLeast: 2)]
        let oc = try OperatingCharacteristics(boundaries: rule, maxSampleSize: 3, trueRate: 0.5)
        #expect(close(oc.probabilityOfStopping, 0.5, within: 1e-15))
        #expect(close(oc.expectedSampleSize, 2.75, within: 1e-15))
        #expect(close(oc.expectedToxicities, 1.375, within: 1e-15))
    }

    /// By hand, Pocock with p0 = 1/2, N = 3. Tail values P(X_n ≥ x): 1/1: .5; 1/2: .75, 2/2: .25; 1/3: .875, 2/3: .5, 3/3: .125.
    /// Level .125 stops only at 3/3: P = 1/8. Level .25 adds 2/2 (3/3 then unreachable): P = 1/4. Level .5 adds 1/1 and 2/3:
    /// P = 1/2 + (N then TT) 1/8 = 5/8. Level .75 adds 1/2: P = 1/2 + 1/4 = 3/4.
    @Test func handWorkedPocockCalibration() throws {
        let rule = try ToxicityStoppingRule(method: .pocock, p0: 0.5, maxSampleSize: 3)
        // (alpha, nominal level, stop counts at n = 1, 2, 3, P(stop | p = 1/2))
        let cases: [(alpha: Double, level: Double, counts: [Int], stop: Double)] = [
            (0.2, 0.125, [2, 3, 3], 0.125),
            (0.3, 0.25, [2, 2, 3], 0.25),
            (0.7, 0.5, [1, 2, 2], 0.625),
        ]
        for c in cases {
            let design = try rule.calibrate(alpha: c.alpha)
            #expect(close(try #require(design.nominalLevel), c.level, within: 1e-12), "alpha \(c.alpha)")
            #expect(close(design.certainty, 1 - c.level, within: 1e-12))
            #expect(design.boundaries == boundaries(counts: c.counts), "alpha \(c.alpha)")
            #expect(close(try design.operatingCharacteristics(at: 0.5).probabilityOfStopping, c.stop, within: 1e-12))
        }
        // Certainty 0.8 is nominal level 0.2: only 3/3 has a tail (.125) at or below it.
        #expect(try rule.boundaries(certainty: 0.8).boundaries == [StoppingBoundary(n: 3, stopIfAtLeast: 3)])
    }

    /// By hand, Beta(1, 1) prior, p0 = 1/2, N = 2. P(p > 1/2) under Beta(1+x, 1+n−x): 1/1 → Beta(2,1): 1 − 1/4 = .75;
    /// 0/1: .25; 2/2 → Beta(3,1): 1 − 1/8 = .875; 1/2: .5; 0/2: .125. Certainty .75 stops only at 2/2 (P = 1/4);
    /// anything below .75 adds 1/1 (P = 1/2). So α = 0.3 calibrates to exactly .75.
    @Test func handWorkedBayesCalibration() throws {
        let rule = try ToxicityStoppingRule(method: .bayes(prior: try BetaPrior(a: 1, b: 1)), p0: 0.5, maxSampleSize: 2)
        #expect(close(rule.statistic(n: 1, toxicities: 1), 0.75, within: 1e-14))
        #expect(close(rule.statistic(n: 2, toxicities: 2), 0.875, within: 1e-14))
        let design = try rule.calibrate(alpha: 0.3)
        #expect(close(design.certainty, 0.75, within: 1e-12))
        #expect(design.boundaries == [StoppingBoundary(n: 2, stopIfAtLeast: 2)])
        #expect(close(try design.operatingCharacteristics(at: 0.5).probabilityOfStopping, 0.25, within: 1e-14))
        let looser = try rule.boundaries(certainty: 0.7)
        #expect(looser.boundaries == [StoppingBoundary(n: 1, stopIfAtLeast: 1), StoppingBoundary(n: 2, stopIfAtLeast: 2)])
        #expect(close(try looser.operatingCharacteristics(at: 0.5).probabilityOfStopping, 0.5, within: 1e-14))
    }

    /// N = 1,000 calibrates both ways and keeps α; the boundary never falls and rises by at most one per participant.
    @Test func largeTrialCalibrates() throws {
        for method in [ToxicityStoppingRule.Method.bayes(prior: try BetaPrior(a: 0.6, b: 2.4)), .pocock] {
            let rule = try ToxicityStoppingRule(method: method, p0: 0.2, maxSampleSize: 1000)
            let design = try rule.calibrate(alpha: 0.1)
            let atP0 = try design.operatingCharacteristics(at: 0.2)
            #expect(atP0.probabilityOfStopping <= 0.1 && atP0.probabilityOfStopping > 0.099)
            #expect(try design.operatingCharacteristics(at: 0.3).probabilityOfStopping > 0.99)
            let counts = design.boundaries.map(\.stopIfAtLeast)
            #expect(zip(counts, counts.dropFirst()).allSatisfy { $1 == $0 || $1 == $0 + 1 })
            #expect(design.boundaries.last?.n == 1000)
        }
    }
}

@Suite struct StoppingRuleInputTests {
    private func message(_ body: () throws -> Void) -> String? {
        do { try body() } catch let error as StoppingRuleError { return error.description } catch { return "\(error)" }
        return nil
    }

    private func starts(_ prefix: String, _ body: () throws -> Void) -> Bool { message(body)?.hasPrefix(prefix) == true }

    @Test func badNumbersNameTheirOption() throws {
        let bayes = ToxicityStoppingRule.Method.bayes(prior: try BetaPrior(a: 1, b: 1))
        #expect(
            message { _ = try ToxicityStoppingRule(method: bayes, p0: 1.5, maxSampleSize: 10) }
                == "--p0: must be between 0 and 1 (exclusive), got 1.5")
        for p0 in [0, 1, -0.2, .nan] {
            #expect(starts("--p0: must be between 0 and 1 (exclusive)") { _ = try ToxicityStoppingRule(method: .pocock, p0: p0, maxSampleSize: 10) })
        }
        for n in [0, -3, 10_001] {
            #expect(throws: StoppingRuleError.maxSampleSize(n)) { try ToxicityStoppingRule(method: .pocock, p0: 0.2, maxSampleSize: n) }
        }
        #expect(StoppingRuleError.maxSampleSize(0).description == "--max: must be from 1 to 10000, got 0")
        #expect(throws: Never.self) { _ = try ToxicityStoppingRule(method: .pocock, p0: 0.2, maxSampleSize: 10_000) }
        let rule = try ToxicityStoppingRule(method: bayes, p0: 0.2, maxSampleSize: 10)
        for c in [0.0, 1.0, 1.2] {
            #expect(starts("--certainty: must be between 0 and 1 (exclusive)") { _ = try rule.boundaries(certainty: c) })
        }
        for a in [0.0, 1.0, -0.1] {
            #expect(starts("--alpha: must be between 0 and 1 (exclusive)") { _ = try rule.calibrate(alpha: a) })
        }
        #expect(throws: StoppingRuleError.trueRate(1.5)) { try rule.boundaries(certainty: 0.9).operatingCharacteristics(at: 1.5) }
        #expect(throws: StoppingRuleError.nominalLevelNeedsPocock) { try rule.boundaries(nominalLevel: 0.05) }
    }

    @Test func priorsAreCheckedAndParsed() throws {
        #expect(try BetaPrior(parsing: "0.6, 2.4") == BetaPrior(a: 0.6, b: 2.4))
        #expect(throws: StoppingRuleError.priorShape(a: 0, b: 1)) { try BetaPrior(a: 0, b: 1) }
        #expect(throws: StoppingRuleError.priorShape(a: 1, b: -2)) { try BetaPrior(parsing: "1,-2") }
        for text in ["0.6", "0.6,2.4,1", "a,b", ""] {
            #expect(throws: StoppingRuleError.priorFormat(text)) { try BetaPrior(parsing: text) }
        }
        #expect(StoppingRuleError.priorShape(a: 0, b: 1).description.hasPrefix("--prior: "))
    }

    @Test func methodAndThresholdCombinations() throws {
        typealias Rule = ToxicityStoppingRule
        let prior = try BetaPrior(a: 1, b: 1)
        #expect(try Rule.Method(name: "bayes", prior: prior) == .bayes(prior: prior))
        #expect(try Rule.Method(name: "pocock", prior: nil) == .pocock)
        #expect(throws: StoppingRuleError.priorWithPocock) { try Rule.Method(name: "pocock", prior: prior) }
        #expect(throws: StoppingRuleError.priorMissing) { try Rule.Method(name: "bayes", prior: nil) }
        #expect(throws: StoppingRuleError.unknownMethod("simon")) { try Rule.Method(name: "simon", prior: nil) }
        #expect(try Rule.Threshold(certainty: 0.9, alpha: nil) == .certainty(0.9))
        #expect(try Rule.Threshold(certainty: nil, alpha: 0.1) == .alpha(0.1))
        #expect(throws: StoppingRuleError.certaintyAndAlpha) { try Rule.Threshold(certainty: 0.9, alpha: 0.1) }
        #expect(throws: StoppingRuleError.neitherCertaintyNorAlpha) { try Rule.Threshold(certainty: nil, alpha: nil) }
        #expect(StoppingRuleError.priorWithPocock.description.hasPrefix("--prior: "))
        let both = StoppingRuleError.certaintyAndAlpha.description
        #expect(both.contains("--certainty") && both.contains("--alpha"))
    }

    @Test func looksAndBoundariesAreChecked() throws {
        for looks in [[], [5, 5], [0, 3], [3, 11], [4, 2]] {
            #expect(starts("looks: ") { _ = try ToxicityStoppingRule(method: .pocock, p0: 0.2, maxSampleSize: 10, looks: looks) }, "\(looks)")
        }
        for bad in [StoppingBoundary(n: 11, stopIfAtLeast: 2), StoppingBoundary(n: 4, stopIfAtLeast: -1)] {
            #expect(starts("boundaries: ") { _ = try OperatingCharacteristics(boundaries: [bad], maxSampleSize: 10, trueRate: 0.2) })
        }
    }
}
