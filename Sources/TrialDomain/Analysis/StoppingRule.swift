import Foundation

// Toxicity stopping rules for a single-arm trial monitored participant by participant.
// Bayesian: Geller NL et al. 2003, "Design of early trials in stem cell transplantation" (Advances in Clinical Trial
// Biostatistics), as in the stoppingrule R package (Martens & Logan 2024, Clinical Trials 21:152).
// Pocock-type: Ivanova A, Qaqish BF, Schell MJ 2005, "Continuous toxicity monitoring in phase II trials in oncology",
// Biometrics 61:540-545, as in clinfun's toxbdry.

/// A Beta(a, b) prior on the toxicity rate.
public struct BetaPrior: Sendable, Equatable {
    public let a: Double
    public let b: Double

    public init(a: Double, b: Double) throws {
        guard a.isFinite, b.isFinite, a > 0, b > 0 else { throw StoppingRuleError.priorShape(a: a, b: b) }
        self.a = a
        self.b = b
    }

    /// "a,b" as written on the command line, e.g. "0.6,2.4".
    public init(parsing text: String) throws {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard parts.count == 2, let a = Double(parts[0]), let b = Double(parts[1]) else { throw StoppingRuleError.priorFormat(text) }
        try self.init(a: a, b: b)
    }
}

/// A bad input, named by the command-line option it came from.
public enum StoppingRuleError: Error, Equatable, Sendable, CustomStringConvertible {
    case unknownMethod(String)
    case priorFormat(String)
    case priorShape(a: Double, b: Double)
    case priorMissing
    case priorWithPocock
    case p0(Double)
    case certainty(Double)
    case alpha(Double)
    case nominalLevel(Double)
    case nominalLevelNeedsPocock
    case certaintyAndAlpha
    case neitherCertaintyNorAlpha
    case maxSampleSize(Int)
    case looks(String)
    case trueRate(Double)
    case trueRateFormat(String)
    case boundaries(String)

    public var option: String {
        switch self {
        case .unknownMethod, .nominalLevelNeedsPocock: "--method"
        case .priorFormat, .priorShape, .priorMissing, .priorWithPocock: "--prior"
        case .p0: "--p0"
        case .certainty, .nominalLevel: "--certainty"
        case .alpha: "--alpha"
        case .certaintyAndAlpha, .neitherCertaintyNorAlpha: "--certainty/--alpha"
        case .maxSampleSize: "--max"
        case .looks: "looks"
        case .trueRate, .trueRateFormat: "--oc"
        case .boundaries: "boundaries"
        }
    }

    public var description: String {
        let problem: String
        switch self {
        case .unknownMethod(let name): problem = "must be bayes or pocock, got '\(name)'"
        case .priorFormat(let text): problem = "expected two numbers a,b such as 0.6,2.4, got '\(text)'"
        case .priorShape(let a, let b): problem = "both Beta shapes must be above 0, got a = \(a), b = \(b)"
        case .priorMissing:
            problem = "required with --method bayes: the Beta(a,b) prior on the toxicity rate, e.g. 0.6,2.4 (mean 0.2, weight of 3 participants)"
        case .priorWithPocock: problem = "applies to --method bayes only; the Pocock-type rule has no prior"
        case .p0(let v): problem = "must be between 0 and 1 (exclusive), got \(v)"
        case .certainty(let v): problem = "must be between 0 and 1 (exclusive), got \(v)"
        case .alpha(let v): problem = "must be between 0 and 1 (exclusive), got \(v)"
        case .nominalLevel(let v): problem = "the nominal level (1 − certainty) must be between 0 and 1 (exclusive), got \(v)"
        case .nominalLevelNeedsPocock: problem = "a nominal level applies to pocock only"
        case .certaintyAndAlpha: problem = "give one of them, not both"
        case .neitherCertaintyNorAlpha:
            problem = "give one: the certainty to stop at, or the overall false-stop rate to calibrate it to"
        case .maxSampleSize(let n): problem = "must be from 1 to \(ToxicityStoppingRule.sampleSizeLimit), got \(n)"
        case .looks(let why): problem = why
        case .trueRate(let p): problem = "each true toxicity rate must be from 0 to 1, got \(p)"
        case .trueRateFormat(let text): problem = "expected rates separated by commas such as 0.2,0.3,0.4, got '\(text)'"
        case .boundaries(let why): problem = why
        }
        return "\(option): \(problem)"
    }
}

/// One look's rule: stop when `stopIfAtLeast` of the first `n` participants have had the toxicity.
public struct StoppingBoundary: Sendable, Equatable, Codable {
    public let n: Int
    public let stopIfAtLeast: Int

    public init(n: Int, stopIfAtLeast: Int) {
        self.n = n
        self.stopIfAtLeast = stopIfAtLeast
    }
}

/// A toxicity stopping rule's design: the unacceptable rate p0, the maximum sample size and when the data are looked at.
public struct ToxicityStoppingRule: Sendable, Equatable {
    public enum Method: Sendable, Equatable {
        /// Stop when P(p > p0 | x of n) > certainty under a Beta prior (Geller et al. 2003).
        case bayes(prior: BetaPrior)
        /// Stop when the exact one-sided binomial test of p0 has P(X_n ≥ x | p0) ≤ the nominal level, the same
        /// level at every look (Ivanova, Qaqish & Schell 2005). Its certainty is 1 − that level.
        case pocock

        /// From the command line's --method and --prior.
        public init(name: String, prior: BetaPrior?) throws {
            switch name.lowercased() {
            case "bayes":
                guard let prior else { throw StoppingRuleError.priorMissing }
                self = .bayes(prior: prior)
            case "pocock":
                guard prior == nil else { throw StoppingRuleError.priorWithPocock }
                self = .pocock
            default: throw StoppingRuleError.unknownMethod(name)
            }
        }
    }

    /// What fixes the boundaries: a certainty, or an overall false-stop rate at p0 that the certainty is calibrated to.
    public enum Threshold: Sendable, Equatable {
        case certainty(Double)
        case alpha(Double)

        /// Exactly one of the two, as given on the command line.
        public init(certainty: Double?, alpha: Double?) throws {
            switch (certainty, alpha) {
            case (let c?, nil): self = .certainty(c)
            case (nil, let a?): self = .alpha(a)
            case (.some, .some): throw StoppingRuleError.certaintyAndAlpha
            case (nil, nil): throw StoppingRuleError.neitherCertaintyNorAlpha
            }
        }
    }

    public static let sampleSizeLimit = 10_000

    public let method: Method
    public let p0: Double
    public let maxSampleSize: Int
    /// Participant counts at which the rule is checked; every count from 1 to `maxSampleSize` unless given.
    public let looks: [Int]

    public init(method: Method, p0: Double, maxSampleSize: Int, looks: [Int]? = nil) throws {
        guard p0 > 0, p0 < 1 else { throw StoppingRuleError.p0(p0) }
        guard (1...Self.sampleSizeLimit).contains(maxSampleSize) else { throw StoppingRuleError.maxSampleSize(maxSampleSize) }
        if let looks {
            guard !looks.isEmpty else { throw StoppingRuleError.looks("at least one look is needed") }
            guard zip(looks, looks.dropFirst()).allSatisfy({ $0 < $1 }), let first = looks.first, let last = looks.last,
                first >= 1, last <= maxSampleSize
            else { throw StoppingRuleError.looks("must increase strictly, from 1 up to the maximum sample size \(maxSampleSize)") }
        }
        self.method = method
        self.p0 = p0
        self.maxSampleSize = maxSampleSize
        self.looks = looks ?? Array(1...maxSampleSize)
    }

    public func design(_ threshold: Threshold) throws -> StoppingDesign {
        switch threshold {
        case .certainty(let c): try boundaries(certainty: c)
        case .alpha(let a): try calibrate(alpha: a)
        }
    }

    /// The boundaries at a fixed certainty: the posterior probability to exceed (bayes), or 1 − the nominal level (pocock).
    public func boundaries(certainty: Double) throws -> StoppingDesign {
        guard certainty > 0, certainty < 1 else { throw StoppingRuleError.certainty(certainty) }
        switch method {
        case .bayes: return makeDesign(counts(at: certainty), certainty: certainty, nominalLevel: nil)
        case .pocock: return makeDesign(counts(at: 1 - certainty), certainty: certainty, nominalLevel: 1 - certainty)
        }
    }

    /// Pocock-type boundaries at a nominal level given directly (no round trip through 1 − certainty).
    public func boundaries(nominalLevel: Double) throws -> StoppingDesign {
        guard case .pocock = method else { throw StoppingRuleError.nominalLevelNeedsPocock }
        guard nominalLevel > 0, nominalLevel < 1 else { throw StoppingRuleError.nominalLevel(nominalLevel) }
        return makeDesign(counts(at: nominalLevel), certainty: 1 - nominalLevel, nominalLevel: nominalLevel)
    }

    /// The boundaries that stop most often while the overall probability of stopping when p = p0 stays ≤ alpha.
    /// Bayes reports the smallest certainty giving them; Pocock the largest binomial tail value (nominal level).
    public func calibrate(alpha: Double) throws -> StoppingDesign {
        guard alpha > 0, alpha < 1 else { throw StoppingRuleError.alpha(alpha) }
        let chosen = calibratedCounts(alpha: alpha)
        switch method {
        case .bayes:
            // {x : P(p > p0 | x, n) > C} gives these boundaries for every C from the largest posterior value among the
            // points that do not stop (inclusive) up to the smallest among those that do.
            var certainty = 0.0
            for (k, n) in looks.enumerated() where chosen[k] >= 1 {
                certainty = Swift.max(certainty, statistic(n: n, toxicities: chosen[k] - 1))
            }
            return makeDesign(chosen, certainty: certainty, nominalLevel: nil)
        case .pocock:
            // {x : P(X_n ≥ x | p0) ≤ L} gives these boundaries for every L from the largest tail value among the stops
            // up to (not including) the smallest among the rest; 0 when none can stop.
            var level = 0.0
            for (k, n) in looks.enumerated() where chosen[k] <= n {
                level = Swift.max(level, statistic(n: n, toxicities: chosen[k]))
            }
            return makeDesign(chosen, certainty: 1 - level, nominalLevel: level)
        }
    }

    /// What the rule compares at x toxicities of n: P(p > p0 | x, n) under the posterior Beta(a + x, b + n − x) for bayes,
    /// P(X_n ≥ x | p0) for pocock.
    public func statistic(n: Int, toxicities x: Int) -> Double {
        switch method {
        case .bayes(let prior):
            // P(p > p0) for p ~ Beta(α, β) is I_{1−p0}(β, α) (Geller et al. 2003; incomplete beta per Numerical Recipes §6.4).
            return Beta.regularized(1 - p0, a: prior.b + Double(n - x), b: prior.a + Double(x))
        case .pocock:
            // P(X_n ≥ x) = I_{p0}(x, n − x + 1) for 1 ≤ x ≤ n (Abramowitz & Stegun 26.5.24).
            return x <= 0 ? 1 : Beta.regularized(p0, a: Double(x), b: Double(n - x + 1))
        }
    }

    // MARK: - Boundary search

    /// Bayes thresholds a certainty C (stop when the statistic > C): a larger C stops less.
    /// Pocock thresholds a nominal level L (stop when the statistic ≤ L): a larger L stops more.
    private var largerThresholdStopsMore: Bool {
        if case .pocock = method { return true }
        return false
    }

    private func stops(_ statistic: Double, at threshold: Double) -> Bool {
        largerThresholdStopsMore ? statistic <= threshold : statistic > threshold
    }

    /// The smallest stopping count at each look, n + 1 where none can stop, found by counting up from the last look's:
    /// a further participant without toxicity only weakens the evidence, so the count never falls, and one with
    /// toxicity strengthens it beyond the previous look's, so between consecutive looks it rises by at most one.
    /// `floor`/`ceiling` are counts known to bracket the answer (from thresholds either side).
    private func counts(at threshold: Double, floor: [Int]? = nil, ceiling: [Int]? = nil) -> [Int] {
        var result: [Int] = []
        result.reserveCapacity(looks.count)
        var previous = 0
        for (k, n) in looks.enumerated() {
            var x = Swift.max(previous, floor?[k] ?? 0)
            let limit = Swift.min(n + 1, ceiling?[k] ?? n + 1)
            while x < limit, !stops(statistic(n: n, toxicities: x), at: threshold) { x += 1 }
            result.append(x)
            previous = x
        }
        return result
    }

    private func feasible(_ counts: [Int], alpha: Double) -> Bool {
        ExactPaths(looks: looks, counts: counts, maxSampleSize: maxSampleSize, p: p0).probabilityOfStopping <= alpha
    }

    /// The boundary set is a step function of the threshold, so the answer is one of finitely many sets. Bisect the
    /// threshold until few (n, x) lie between a feasible set and an infeasible one, then search those points directly.
    private func calibratedCounts(alpha: Double) -> [Int] {
        let (neverStop, alwaysStop): (Double, Double) = largerThresholdStopsMore ? (0, 1) : (1, 0)
        var safe = (threshold: neverStop, counts: counts(at: neverStop))
        var unsafe = (threshold: alwaysStop, counts: counts(at: alwaysStop))
        if feasible(unsafe.counts, alpha: alpha) { return unsafe.counts }
        while true {
            let between = zip(safe.counts, unsafe.counts).reduce(0) { $0 + ($1.0 - $1.1) }
            let middle = (safe.threshold + unsafe.threshold) / 2
            if between <= 256 || middle == safe.threshold || middle == unsafe.threshold { break }
            let candidate = counts(at: middle, floor: unsafe.counts, ceiling: safe.counts)
            if feasible(candidate, alpha: alpha) { safe = (middle, candidate) } else { unsafe = (middle, candidate) }
        }
        return searchBetween(safe: safe.counts, unsafe: unsafe.counts, alpha: alpha)
    }

    /// Each (n, x) stopping under `unsafe` but not `safe` joins the stop set as the threshold moves; in that order
    /// (ties together) the sets are nested, so a binary search finds the last one that is still feasible.
    private func searchBetween(safe: [Int], unsafe: [Int], alpha: Double) -> [Int] {
        var points: [(look: Int, statistic: Double)] = []
        for (k, n) in looks.enumerated() where unsafe[k] < safe[k] {
            for x in unsafe[k]..<safe[k] { points.append((k, statistic(n: n, toxicities: x))) }
        }
        points.sort { largerThresholdStopsMore ? $0.statistic < $1.statistic : $0.statistic > $1.statistic }
        // Group ends: a set takes whole groups of equal statistics, as a threshold would.
        var ends: [Int] = [0]
        for i in points.indices where i + 1 == points.count || points[i + 1].statistic != points[i].statistic { ends.append(i + 1) }
        func set(taking count: Int) -> [Int] {
            var counts = safe
            for point in points[0..<count] { counts[point.look] -= 1 }
            return counts
        }
        var good = 0, bad = ends.count - 1  // ends[good] is feasible (safe itself), ends[bad] is not (all points: unsafe)
        while bad - good > 1 {
            let middle = (good + bad) / 2
            if feasible(set(taking: ends[middle]), alpha: alpha) { good = middle } else { bad = middle }
        }
        return set(taking: ends[good])
    }

    private func makeDesign(_ counts: [Int], certainty: Double, nominalLevel: Double?) -> StoppingDesign {
        // A look where the count exceeds n cannot stop the trial and is left out.
        let boundaries = zip(looks, counts).filter { $0.1 <= $0.0 }.map { StoppingBoundary(n: $0.0, stopIfAtLeast: $0.1) }
        return StoppingDesign(certainty: certainty, nominalLevel: nominalLevel, maxSampleSize: maxSampleSize, boundaries: boundaries)
    }
}

/// Boundaries and the threshold that gave them.
public struct StoppingDesign: Sendable, Equatable {
    /// Bayes: the posterior probability that p > p0 must exceed this to stop. Pocock: 1 − `nominalLevel`.
    public let certainty: Double
    /// Pocock only: each look stops when P(X_n ≥ x | p0) ≤ this.
    public let nominalLevel: Double?
    public let maxSampleSize: Int
    public let boundaries: [StoppingBoundary]

    public init(certainty: Double, nominalLevel: Double?, maxSampleSize: Int, boundaries: [StoppingBoundary]) {
        self.certainty = certainty
        self.nominalLevel = nominalLevel
        self.maxSampleSize = maxSampleSize
        self.boundaries = boundaries
    }

    public func operatingCharacteristics(at p: Double) throws -> OperatingCharacteristics {
        try OperatingCharacteristics(boundaries: boundaries, maxSampleSize: maxSampleSize, trueRate: p)
    }
}

/// How a rule behaves when the true toxicity rate is p, by exact recursion over the binomial paths.
public struct OperatingCharacteristics: Sendable, Equatable, Codable {
    public let p: Double
    /// Probability the trial stops at some look, the last included.
    public let probabilityOfStopping: Double
    /// Participants enrolled: the stopping n, or the maximum when the trial runs to the end.
    public let expectedSampleSize: Double
    /// Toxicities seen by the time the trial stops or ends (stoppingrule's "E(events)").
    public let expectedToxicities: Double

    /// Any boundaries: looks strictly increasing within 1...maxSampleSize, counts of at least 0.
    public init(boundaries: [StoppingBoundary], maxSampleSize: Int, trueRate p: Double) throws {
        guard p >= 0, p <= 1 else { throw StoppingRuleError.trueRate(p) }
        guard (1...ToxicityStoppingRule.sampleSizeLimit).contains(maxSampleSize) else { throw StoppingRuleError.maxSampleSize(maxSampleSize) }
        let looks = boundaries.map(\.n)
        guard zip(looks, looks.dropFirst()).allSatisfy({ $0 < $1 }), looks.allSatisfy({ (1...maxSampleSize).contains($0) }) else {
            throw StoppingRuleError.boundaries("looks must increase strictly, from 1 up to the maximum sample size \(maxSampleSize)")
        }
        guard boundaries.allSatisfy({ $0.stopIfAtLeast >= 0 }) else { throw StoppingRuleError.boundaries("a stopping count must be at least 0") }
        let paths = ExactPaths(looks: looks, counts: boundaries.map(\.stopIfAtLeast), maxSampleSize: maxSampleSize, p: p)
        self.p = p
        probabilityOfStopping = paths.probabilityOfStopping
        expectedSampleSize = paths.expectedSampleSize
        expectedToxicities = paths.expectedToxicities
    }
}

/// Goldman 1987 (Controlled Clinical Trials 8:327) / Jennison & Turnbull 2000 ch. 12: the distribution of the toxicity count
/// among trials still running is carried forward one participant at a time, and the mass at or above a look's
/// boundary is taken off as stopped there.
struct ExactPaths {
    var probabilityOfStopping = 0.0
    var expectedSampleSize = 0.0
    var expectedToxicities = 0.0

    init(looks: [Int], counts: [Int], maxSampleSize: Int, p: Double) {
        let q = 1 - p
        var mass = [Double](repeating: 0, count: maxSampleSize + 2)
        mass[0] = 1
        var top = 0  // highest count that still has mass (−1 when every trial has stopped)
        var next = 0
        for n in 1...maxSampleSize {
            guard top >= 0 else { break }
            // One more participant: x stays with probability q, moves to x + 1 with probability p.
            top += 1
            var x = top
            while x > 0 {
                mass[x] = mass[x] * q + mass[x - 1] * p
                x -= 1
            }
            mass[0] *= q
            guard next < looks.count, looks[next] == n else { continue }
            let bound = counts[next]
            next += 1
            guard bound <= top else { continue }
            var stopped = 0.0
            for x in bound...top {
                stopped += mass[x]
                expectedToxicities += Double(x) * mass[x]
                mass[x] = 0
            }
            probabilityOfStopping += stopped
            expectedSampleSize += Double(n) * stopped
            top = bound - 1
        }
        if top >= 0 {
            var running = 0.0
            for x in 0...top {
                running += mass[x]
                expectedToxicities += Double(x) * mass[x]
            }
            expectedSampleSize += Double(maxSampleSize) * running
        }
    }
}
