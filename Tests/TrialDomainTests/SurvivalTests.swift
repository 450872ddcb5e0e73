import Foundation
import XCTest
@testable import TrialDomain

/// Expected values come from the literature or are worked by hand in the comments, never from this code's output.
final class SurvivalTests: XCTestCase {
    /// Freireich EJ et al. Blood 1963;21:699-716, as tabulated by Gehan EA. Biometrika 1965;52:203-223
    /// (weeks of remission; false = censored, "+" in the papers).
    static let sixMP: [(days: Double, event: Bool)] = [
        (6, true), (6, true), (6, true), (6, false), (7, true), (9, false), (10, true), (10, false), (11, false), (13, true),
        (16, true), (17, false), (19, false), (20, false), (22, true), (23, true), (25, false), (32, false), (32, false),
        (34, false), (35, false),
    ]
    static let placebo: [(days: Double, event: Bool)] =
        [1, 1, 2, 2, 3, 4, 4, 5, 5, 8, 8, 8, 8, 11, 11, 12, 12, 15, 17, 22, 23].map { (Double($0), true) }

    private func assertClose(_ value: Double?, _ expected: Double, _ accuracy: Double, _ what: String, line: UInt = #line) {
        guard let value else { return XCTFail("\(what): nil, expected \(expected)", line: line) }
        XCTAssertEqual(value, expected, accuracy: accuracy, what, line: line)
    }

    // MARK: Kaplan–Meier

    /// Product-limit S(t) = Π (1 − d/n) and Greenwood SE = S √Σ d/(n(n − d)), worked by hand for the 6-MP group:
    ///   t  n  d   S                          Σ d/(n(n−d))                       SE
    ///   6  21 3   18/21          = 0.8571    3/(21·18) = 0.007937              0.8571·√0.007937 = 0.0764
    ///   7  17 1   0.8571·16/17   = 0.8067    + 1/(17·16) = 0.011613            0.8067·√0.011613 = 0.0869
    ///  10  15 1   0.8067·14/15   = 0.7529    + 1/(15·14) = 0.016375            0.7529·√0.016375 = 0.0963
    ///  13  12 1   0.7529·11/12   = 0.6902    + 1/(12·11) = 0.023951            0.6902·√0.023951 = 0.1068
    ///  16  11 1   0.6902·10/11   = 0.6275    + 1/(11·10) = 0.033042            0.6275·√0.033042 = 0.1141
    ///  22   7 1   0.6275·6/7     = 0.5378    + 1/(7·6)   = 0.056852            0.5378·√0.056852 = 0.1282
    ///  23   6 1   0.5378·5/6     = 0.4482    + 1/(6·5)   = 0.090185            0.4482·√0.090185 = 0.1346
    /// Estimates as in Kleinbaum DG, Klein M. Survival Analysis, 3rd ed. 2012, ch. 2 (0.857 … 0.448). The log(−log)
    /// intervals are S^exp(∓1.959964·√Σ/log S), worked as in testLogLogIntervalWorkedByHand; Stata's `sts list`, whose
    /// default interval is this transform, prints the same four decimals for this data set.
    func testSixMPKaplanMeierAtEachEventTime() {
        let curve = SurvivalCurve.kaplanMeier(Self.sixMP)
        let expected: [(days: Double, atRisk: Int, events: Int, s: Double, se: Double, lower: Double, upper: Double)] = [
            (6, 21, 3, 0.857, 0.0764, 0.6197, 0.9516),
            (7, 17, 1, 0.807, 0.0869, 0.5631, 0.9228),
            (10, 15, 1, 0.753, 0.0963, 0.5032, 0.8894),
            (13, 12, 1, 0.690, 0.1068, 0.4316, 0.8491),
            (16, 11, 1, 0.627, 0.1141, 0.3675, 0.8049),
            (22, 7, 1, 0.538, 0.1282, 0.2678, 0.7468),
            (23, 6, 1, 0.448, 0.1346, 0.1881, 0.6801),
        ]
        let eventSteps = curve.steps.filter { $0.events > 0 }
        XCTAssertEqual(eventSteps.map(\.days), expected.map(\.days))
        for (step, e) in zip(eventSteps, expected) {
            XCTAssertEqual(step.atRisk, e.atRisk, "at risk at \(e.days)")
            XCTAssertEqual(step.events, e.events, "events at \(e.days)")
            assertClose(step.estimate, e.s, 0.0005, "S(\(e.days))")
            assertClose(step.standardError, e.se, 0.00005, "SE(\(e.days))")
            assertClose(step.lower, e.lower, 0.00005, "lower(\(e.days))")
            assertClose(step.upper, e.upper, 0.00005, "upper(\(e.days))")
        }
    }

    /// The log(−log) interval at t = 6 step by step: S = 18/21, log S = −0.154151, σ = √(3/(21·18)) = 0.089087,
    /// z = 1.959964, w = zσ/log S = −1.132706; lower = S^exp(−w) = S^3.104046 = 0.619718, upper = S^exp(w) = S^0.322160 = 0.951552.
    func testLogLogIntervalWorkedByHand() {
        let step = SurvivalCurve.kaplanMeier(Self.sixMP).steps[0]
        XCTAssertEqual(step.days, 6)
        XCTAssertEqual(step.estimate, 18.0 / 21.0, accuracy: 1e-12)
        assertClose(step.lower, 0.619718, 1e-6, "lower")
        assertClose(step.upper, 0.951552, 1e-6, "upper")
        // z for 95 %: the normal 0.975 quantile, 1.959964 in every table.
        XCTAssertEqual(StandardNormal.quantile(0.975), 1.959964, accuracy: 1e-6)
        XCTAssertEqual(StandardNormal.quantile(0.95), 1.644854, accuracy: 1e-6)
    }

    /// One step per distinct time: the 6-MP times 6 6 6 6+ 7 9+ 10 10+ 11+ 13 16 17+ 19+ 20+ 22 23 25+ 32+ 32+ 34+ 35+ give 16;
    /// at 6 three events and one censoring share a step (events first, so the censored one is at risk at 6);
    /// a censoring-only step keeps the estimate (9+: still 16/17·18/21 = 0.8067).
    func testSixMPStepStructure() {
        let curve = SurvivalCurve.kaplanMeier(Self.sixMP)
        XCTAssertEqual(curve.steps.map(\.days), [6, 7, 9, 10, 11, 13, 16, 17, 19, 20, 22, 23, 25, 32, 34, 35])
        XCTAssertEqual(curve.steps.map(\.atRisk), [21, 17, 16, 15, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 2, 1])
        XCTAssertEqual(curve.steps[0].events, 3)
        XCTAssertEqual(curve.steps[0].censored, 1)
        XCTAssertEqual(curve.steps[2].estimate, 16.0 / 17.0 * 18.0 / 21.0, accuracy: 1e-12)
        XCTAssertEqual(curve.steps[2].standardError, curve.steps[1].standardError)
        XCTAssertEqual(curve.n, 21)
        XCTAssertEqual(curve.events, 9)
        XCTAssertEqual(curve.censored, 12)
        XCTAssertEqual(curve.confidence, 0.95)
    }

    /// 6-MP: S(22) = 0.538 > 0.5, S(23) = 0.448 ≤ 0.5, so the median is 23 (Kleinbaum & Klein ch. 2).
    /// Placebo, all events: S(1) = 19/21, S(2) = 17/21, S(3) = 16/21, S(4) = 14/21, S(5) = 12/21 = 0.571,
    /// S(8) = 8/21 = 0.381 ≤ 0.5, so the median is 8.
    func testMedians() {
        XCTAssertEqual(SurvivalCurve.kaplanMeier(Self.sixMP).median, 23)
        let placebo = SurvivalCurve.kaplanMeier(Self.placebo)
        XCTAssertEqual(placebo.median, 8)
        XCTAssertEqual(placebo.step(at: 5)?.estimate ?? 0, 12.0 / 21.0, accuracy: 1e-12)
        XCTAssertEqual(placebo.step(at: 8)?.estimate ?? 0, 8.0 / 21.0, accuracy: 1e-12)
    }

    /// Reading the step function: 1 before the first event, right-continuous at event times, flat after the last
    /// (0.4482 at any time past 23), with the counts up to the time read.
    func testEstimateAtReadsTheStepFunction() {
        let curve = SurvivalCurve.kaplanMeier(Self.sixMP)
        let before = curve.estimate(at: 5.9)
        XCTAssertEqual(before.estimate, 1)
        XCTAssertEqual(before.standardError, 0)
        XCTAssertEqual(before.atRisk, 21)
        XCTAssertNil(curve.step(at: 5.9))
        XCTAssertEqual(curve.estimate(at: 6).estimate, 18.0 / 21.0, accuracy: 1e-12)
        XCTAssertEqual(curve.estimate(at: 8).estimate, 0.8067, accuracy: 0.00005)
        let late = curve.estimate(at: 100)
        XCTAssertEqual(late.estimate, 0.4482, accuracy: 0.00005)
        XCTAssertEqual(late.atRisk, 0)
        XCTAssertEqual(late.events, 9)
        XCTAssertEqual(late.censored, 12)
        // At 23, the last event: 9 events (6, 6, 6, 7, 10, 13, 16, 22, 23), 7 censored by then (6+, 9+, 10+, 11+, 17+, 19+,
        // 20+), and 21 − 9 − 7 = 5 still followed (25+, 32+, 32+, 34+, 35+).
        let at23 = curve.estimate(at: 23)
        XCTAssertEqual(at23.events, 9)
        XCTAssertEqual(at23.censored, 7)
        XCTAssertEqual(at23.atRisk, 5)
    }

    /// Two participants, both events: S(1) = 1/2 (SE = ½√(1/(2·1)) = 0.353553; median 1, as 0.5 ≤ 0.5), S(2) = 0,
    /// where Greenwood and the log(−log) interval are undefined. At S = 1/2: w = 1.959964·0.707107/log ½ = −1.999437,
    /// lower = ½^e^1.999437 = ½^7.384894 = 0.005983, upper = ½^e^−1.999437 = 0.910410.
    func testCurveReachingZero() {
        let curve = SurvivalCurve.kaplanMeier([(1, true), (2, true)])
        XCTAssertEqual(curve.steps.map(\.estimate), [0.5, 0])
        assertClose(curve.steps[0].standardError, 0.353553, 1e-6, "SE")
        assertClose(curve.steps[0].lower, 0.005983, 1e-6, "lower")
        assertClose(curve.steps[0].upper, 0.910410, 1e-6, "upper")
        XCTAssertNil(curve.steps[1].standardError)
        XCTAssertNil(curve.steps[1].lower)
        XCTAssertNil(curve.steps[1].upper)
        XCTAssertEqual(curve.median, 1)
    }

    func testEmptyInput() {
        let curve = SurvivalCurve.kaplanMeier([])
        XCTAssertEqual(curve.steps, [])
        XCTAssertEqual(curve.n, 0)
        XCTAssertEqual(curve.events, 0)
        XCTAssertNil(curve.median)
        let read = curve.estimate(at: 30)
        XCTAssertEqual(read.estimate, 1)
        XCTAssertNil(read.standardError)
        XCTAssertEqual(read.atRisk, 0)
        XCTAssertEqual(read.events, 0)
        XCTAssertNil(LogRankTest.logRank([:]))
        XCTAssertNil(LogRankTest.logRank(["A": [], "B": []]))
    }

    /// No events: the estimate stays 1 with zero Greenwood variance, the interval collapses to 1–1, no median.
    func testAllCensored() {
        let times: [(days: Double, event: Bool)] = [(3, false), (5, false), (5, false), (9, false)]
        let curve = SurvivalCurve.kaplanMeier(times)
        XCTAssertEqual(curve.steps.count, 3)
        for step in curve.steps {
            XCTAssertEqual(step.estimate, 1)
            XCTAssertEqual(step.standardError, 0)
            XCTAssertEqual(step.lower, 1)
            XCTAssertEqual(step.upper, 1)
        }
        XCTAssertEqual(curve.censored, 4)
        XCTAssertNil(curve.median)
        XCTAssertNil(LogRankTest.logRank(["A": times, "B": [(4, false), (8, false)]]))
    }

    func testNoIntervalOutsideAProperConfidence() {
        let curve = SurvivalCurve.kaplanMeier(Self.sixMP, confidence: 1)
        XCTAssertNil(curve.steps[0].lower)
        XCTAssertNil(curve.steps[0].upper)
        XCTAssertEqual(curve.steps[0].estimate, 18.0 / 21.0, accuracy: 1e-12)
    }

    func testCodableRoundTrip() throws {
        let curve = SurvivalCurve.kaplanMeier(Self.sixMP)
        XCTAssertEqual(try JSONDecoder().decode(SurvivalCurve.self, from: JSONEncoder().encode(curve)), curve)
    }

    // MARK: Log-rank

    /// 6-MP against placebo: O = 9 and 21, E = 19.25 and 10.75, Var(O − E) = 6.257, χ² = 16.79 on 1 df, p = 4.17e-5
    /// (Kleinbaum DG, Klein M. Survival Analysis, 3rd ed. 2012, ch. 2; Collett D. Modelling Survival Data in Medical
    /// Research, 3rd ed. 2015, ch. 2).
    func testLogRankSixMPAgainstPlacebo() throws {
        let test = try XCTUnwrap(LogRankTest.logRank(["6-MP": Self.sixMP, "placebo": Self.placebo]))
        XCTAssertEqual(test.groups, ["6-MP", "placebo"])
        XCTAssertEqual(test.observed, [9, 21])
        XCTAssertEqual(test.expected[0], 19.25, accuracy: 0.005)
        XCTAssertEqual(test.expected[1], 10.75, accuracy: 0.005)
        XCTAssertEqual(test.chiSquare, 16.79, accuracy: 0.005)
        XCTAssertEqual(test.degreesOfFreedom, 1)
        XCTAssertEqual(test.pValue, 4.17e-5, accuracy: 0.005e-5)
    }

    /// A group nobody in which is at risk at any event time adds no information: its O = E = 0, its variance row is
    /// zero and the test is the two-group one above (χ² 16.79 on 1 df, not 2).
    func testGroupNeverAtRiskAtAnEventDropsOut() throws {
        let test = try XCTUnwrap(LogRankTest.logRank(["6-MP": Self.sixMP, "placebo": Self.placebo, "zz-early": [(0.5, false)]]))
        XCTAssertEqual(test.groups, ["6-MP", "placebo", "zz-early"])
        XCTAssertEqual(test.observed[2], 0)
        XCTAssertEqual(test.expected[2], 0)
        XCTAssertEqual(test.degreesOfFreedom, 1)
        XCTAssertEqual(test.chiSquare, 16.79, accuracy: 0.005)
    }

    /// Three groups worked by hand. A: 1, 2, 4+   B: 2, 3, 5+   C: 3+, 6, 7.
    /// At each event time, E_j = d n_j/n, V_jj = d (n−d)/(n−1) · p_j(1 − p_j), V_jl = −d (n−d)/(n−1) · p_j p_l, p_j = n_j/n:
    ///   t=1: n = (3,3,3) 9, d = 1 (A). E = (1/3, 1/3, 1/3); factor 8/8 = 1. V_AA = 2/9, V_BB = 2/9, V_AB = −1/9.
    ///   t=2: n = (2,3,3) 8, d = 2 (A, B). E = (1/2, 3/4, 3/4); factor 6/7. V_AA = 2·(2/8)(6/8)·6/7 = 9/28,
    ///        V_BB = 2·(3/8)(5/8)·6/7 = 45/112, V_AB = −2·(2/8)(3/8)·6/7 = −9/56.
    ///   t=3: n = (1,2,3) 6 (C's 3+ still at risk: events first), d = 1 (B). E = (1/6, 1/3, 1/2); factor 1.
    ///        V_AA = (1/6)(5/6) = 5/36, V_BB = (1/3)(2/3) = 2/9, V_AB = −(1/6)(1/3) = −1/18.
    ///   t=6: n = (0,0,2), d = 1 (C). E_C = 1; A and B not at risk, no variance for them.
    ///   t=7: n = (0,0,1), d = 1 (C). E_C = 1; n = 1 so the tie factor is 0.
    /// O = (2, 2, 2); E_A = 1/3 + 1/2 + 1/6 = 1, E_B = 1/3 + 3/4 + 1/3 = 17/12, E_C = 1/3 + 3/4 + 1/2 + 1 + 1 = 43/12 (Σ 6).
    /// x = O − E for A, B = (1, 7/12). V_AA = 2/9 + 9/28 + 5/36 = 43/63, V_BB = 2/9 + 45/112 + 2/9 = 853/1008,
    /// V_AB = −1/9 − 9/56 − 1/18 = −55/168. det = (43/63)(853/1008) − (55/168)² = 119491/254016.
    /// χ² = (V_BB x_A² − 2 V_AB x_A x_B + V_AA x_B²)/det = (853/1008 + 770/2016 + 2107/9072)/det
    ///    = (13249/9072)·(254016/119491) = 370972/119491 = 3.104602 on 2 df; p = e^(−χ²/2) = 0.211760.
    func testLogRankThreeGroupsWorkedByHand() throws {
        let a: [(days: Double, event: Bool)] = [(1, true), (2, true), (4, false)]
        let b: [(days: Double, event: Bool)] = [(2, true), (3, true), (5, false)]
        let c: [(days: Double, event: Bool)] = [(3, false), (6, true), (7, true)]
        let test = try XCTUnwrap(LogRankTest.logRank(["A": a, "B": b, "C": c]))
        XCTAssertEqual(test.groups, ["A", "B", "C"])
        XCTAssertEqual(test.observed, [2, 2, 2])
        XCTAssertEqual(test.expected[0], 1, accuracy: 1e-12)
        XCTAssertEqual(test.expected[1], 17.0 / 12.0, accuracy: 1e-12)
        XCTAssertEqual(test.expected[2], 43.0 / 12.0, accuracy: 1e-12)
        XCTAssertEqual(test.degreesOfFreedom, 2)
        XCTAssertEqual(test.chiSquare, 370972.0 / 119491.0, accuracy: 1e-10)
        XCTAssertEqual(test.pValue, 0.211760, accuracy: 1e-6)
        // Whichever group comes last (and is left out of the k − 1), the statistic is the same.
        let relabelled = try XCTUnwrap(LogRankTest.logRank(["Z": a, "B": b, "C": c]))
        XCTAssertEqual(relabelled.groups, ["B", "C", "Z"])
        XCTAssertEqual(relabelled.chiSquare, 370972.0 / 119491.0, accuracy: 1e-10)
        XCTAssertEqual(relabelled.pValue, 0.211760, accuracy: 1e-6)
    }

    func testLogRankNeedsTwoGroupsWithParticipants() {
        XCTAssertNil(LogRankTest.logRank(["6-MP": Self.sixMP]))
        XCTAssertNil(LogRankTest.logRank(["6-MP": Self.sixMP, "empty": []]))
    }

    // MARK: Chi-square tail

    /// 5 % critical values from any chi-square table (e.g. NIST/SEMATECH e-Handbook §1.3.6.7.4): 3.841 (1 df),
    /// 5.991 (2), 7.815 (3), 9.488 (4), 18.307 (10), 43.773 (30); 1 % and 0.1 % on 1 df: 6.635, 10.828; and closed forms
    /// Q(½, x/2) = erfc(√(x/2)) for 1 df and Q(1, x/2) = e^(−x/2) for 2 df (small x takes the series, large x the fraction).
    func testChiSquareUpperTail() {
        for (x, df) in [(3.841, 1), (5.991, 2), (7.815, 3), (9.488, 4), (18.307, 10), (43.773, 30)] {
            XCTAssertEqual(ChiSquare.upperTail(x, degreesOfFreedom: df), 0.05, accuracy: 0.00005, "\(x) on \(df) df")
        }
        XCTAssertEqual(ChiSquare.upperTail(6.635, degreesOfFreedom: 1), 0.01, accuracy: 0.000005)
        XCTAssertEqual(ChiSquare.upperTail(10.828, degreesOfFreedom: 1), 0.001, accuracy: 0.0000005)
        for x in [0.01, 0.5, 1, 2, 5, 20, 60] {
            XCTAssertEqual(ChiSquare.upperTail(x, degreesOfFreedom: 1), erfc((x / 2).squareRoot()), accuracy: 1e-12, "1 df at \(x)")
            XCTAssertEqual(ChiSquare.upperTail(x, degreesOfFreedom: 2), exp(-x / 2), accuracy: 1e-12, "2 df at \(x)")
        }
        XCTAssertEqual(ChiSquare.upperTail(0, degreesOfFreedom: 3), 1)
        XCTAssertEqual(ChiSquare.upperTail(.infinity, degreesOfFreedom: 3), 0)
    }
}
