import Foundation

/// One distinct time on a Kaplan–Meier curve: who was at risk and what happened there, and the curve just after it.
public struct SurvivalStep: Codable, Equatable, Sendable {
    public var days: Double
    /// At risk just before `days`: everyone whose time is `days` or later.
    public var atRisk: Int
    public var events: Int
    public var censored: Int
    public var estimate: Double
    /// Greenwood's standard error; nil once the estimate is zero, where it is undefined.
    public var standardError: Double?
    /// Pointwise interval on the log(−log) scale; nil when the estimate is zero.
    public var lower: Double?
    public var upper: Double?
}

/// The whole Kaplan–Meier product-limit curve (Kaplan EL, Meier P. J Am Stat Assoc 1958;53:457-481), one step per
/// distinct time with an event or a censoring; at a tie events count before censorings.
public struct SurvivalCurve: Codable, Equatable, Sendable {
    public var steps: [SurvivalStep]
    public var n: Int
    public var events: Int
    public var censored: Int
    /// Smallest time at which the estimate is ≤ 0.5; nil when the curve never gets there.
    public var median: Double?
    public var confidence: Double

    public static func kaplanMeier(_ times: [(days: Double, event: Bool)], confidence: Double = 0.95) -> SurvivalCurve {
        // A time that is not a number cannot be placed on the curve.
        let sorted = times.filter { !$0.days.isNaN }.sorted { ($0.days, $0.event ? 0 : 1) < ($1.days, $1.event ? 0 : 1) }
        let z = confidence > 0 && confidence < 1 ? StandardNormal.quantile((1 + confidence) / 2) : nil
        var steps: [SurvivalStep] = []
        var survival = 1.0, greenwood = 0.0, atRisk = sorted.count, i = 0
        while i < sorted.count {
            let t = sorted[i].days
            var d = 0, c = 0
            while i < sorted.count, sorted[i].days == t {
                if sorted[i].event { d += 1 } else { c += 1 }
                i += 1
            }
            if d > 0 {
                // Product-limit: S(t) = Π (1 − d_i / n_i) (Kaplan & Meier 1958).
                survival *= 1 - Double(d) / Double(atRisk)
                // Greenwood: Var S = S² Σ d_i / (n_i (n_i − d_i)) (Greenwood 1926); the term is infinite when all die, where S = 0.
                if atRisk > d { greenwood += Double(d) / Double(atRisk * (atRisk - d)) }
            }
            let interval = logLogInterval(survival, greenwood: greenwood, z: z)
            steps.append(SurvivalStep(
                days: t, atRisk: atRisk, events: d, censored: c, estimate: survival,
                standardError: survival > 0 ? survival * greenwood.squareRoot() : nil, lower: interval?.lower, upper: interval?.upper))
            atRisk -= d + c
        }
        let events = steps.reduce(0) { $0 + $1.events }
        // The tolerance keeps a product that is exactly one half, like (3/4)(2/3), from missing by a rounding error.
        let median = steps.first { $0.estimate <= 0.5 + 1e-12 }?.days
        return SurvivalCurve(steps: steps, n: sorted.count, events: events, censored: sorted.count - events, median: median, confidence: confidence)
    }

    /// The curve read at `days`: the estimate with its Greenwood error, and who was at risk, had the event or was censored by then.
    public func estimate(at days: Double) -> SurvivalEstimate {
        let reached = step(at: days)
        var events = 0, censored = 0
        for s in steps {
            guard s.days <= days else { break }
            events += s.events
            censored += s.censored
        }
        return SurvivalEstimate(
            at: days, estimate: reached?.estimate ?? 1, standardError: n == 0 ? nil : (reached == nil ? 0 : reached?.standardError),
            atRisk: n - events - censored, events: events, censored: censored)
    }

    /// The step in force at `days` (the last one at or before it), with its interval; nil before the first step.
    public func step(at days: Double) -> SurvivalStep? {
        steps.last { $0.days <= days }
    }

    // Log(−log) interval, S^exp(±z σ / log S) with σ² the Greenwood sum (Kalbfleisch JD, Prentice RL. The Statistical
    // Analysis of Failure Time Data. Wiley 1980; R survival conf.type = "log-log", Stata sts default): it stays inside (0, 1).
    static func logLogInterval(_ s: Double, greenwood: Double, z: Double?) -> (lower: Double, upper: Double)? {
        guard let z, s > 0 else { return nil }
        // Before the first event there is nothing to transform; R survival reports 1 to 1 there too.
        if s >= 1 { return (1, 1) }
        let w = z * greenwood.squareRoot() / log(s)
        return (pow(s, exp(-w)), pow(s, exp(w)))
    }
}

/// k-group log-rank test (Mantel N. Cancer Chemother Rep 1966;50:163-170; Peto R, Peto J. J R Stat Soc A 1972;135:185-207).
public struct LogRankTest: Codable, Equatable, Sendable {
    /// Groups with participants, by name; `observed` and `expected` follow this order.
    public var groups: [String]
    public var observed: [Double]
    public var expected: [Double]
    public var chiSquare: Double
    public var degreesOfFreedom: Int
    public var pValue: Double

    /// Nil when fewer than two groups have participants, when there are no events, or when no two groups are ever at
    /// risk together at an event (the variance is then zero and there is nothing to compare).
    public static func logRank(_ groups: [String: [(days: Double, event: Bool)]]) -> LogRankTest? {
        let valid = groups.mapValues { $0.filter { !$0.days.isNaN } }.filter { !$0.value.isEmpty }
        let names = valid.keys.sorted()
        let k = names.count
        guard k >= 2 else { return nil }
        let all = names.enumerated()
            .flatMap { j, name in valid[name, default: []].map { (days: $0.days, event: $0.event, group: j) } }
            .sorted { $0.days < $1.days }
        var atRisk = names.map { valid[$0, default: []].count }
        var observed = [Double](repeating: 0, count: k), expected = observed
        var variance = [[Double]](repeating: [Double](repeating: 0, count: k), count: k)
        var i = 0
        while i < all.count {
            let t = all[i].days
            var deaths = [Int](repeating: 0, count: k), leaving = deaths
            while i < all.count, all[i].days == t {
                if all[i].event { deaths[all[i].group] += 1 }
                leaving[all[i].group] += 1
                i += 1
            }
            let d = deaths.reduce(0, +), n = atRisk.reduce(0, +)
            if d > 0 {
                // Hypergeometric moments at each event time (Mantel 1966): E_j = d n_j / n,
                // Cov_jl = d (n − d)/(n − 1) · (n_j/n)(δ_jl − n_l/n); the (n − d)/(n − 1) factor corrects for ties, 0 when n = 1.
                let tie = n > 1 ? Double(d) * Double(n - d) / Double(n - 1) : 0
                for j in 0..<k {
                    let pj = Double(atRisk[j]) / Double(n)
                    observed[j] += Double(deaths[j])
                    expected[j] += Double(d) * pj
                    for l in 0..<k {
                        variance[j][l] += tie * pj * ((j == l ? 1 : 0) - Double(atRisk[l]) / Double(n))
                    }
                }
            }
            for j in 0..<k { atRisk[j] -= leaving[j] }
        }
        guard observed.reduce(0, +) > 0 else { return nil }
        // Σ (O − E) = 0, so the last group is redundant: χ² = (O − E)ᵀ V⁻¹ (O − E) over the first k − 1 (Peto & Peto 1972).
        let difference = (0..<(k - 1)).map { observed[$0] - expected[$0] }
        let sub = (0..<(k - 1)).map { Array(variance[$0][0..<(k - 1)]) }
        let (chiSquare, rank) = quadraticForm(sub, difference)
        guard rank > 0 else { return nil }
        return LogRankTest(
            groups: names, observed: observed, expected: expected, chiSquare: chiSquare, degreesOfFreedom: rank,
            pValue: ChiSquare.upperTail(chiSquare, degreesOfFreedom: rank))
    }

    /// xᵀ V⁻¹ x by symmetric Gaussian elimination (V = L D Lᵀ, so xᵀV⁻¹x = Σ (L⁻¹x)ᵢ² / Dᵢ), and the rank of V.
    /// A group never at risk beside another at an event time leaves a zero pivot; it is skipped (a generalized inverse,
    /// as R's survdiff drops groups with no expected events) and the degrees of freedom fall by one.
    static func quadraticForm(_ matrix: [[Double]], _ vector: [Double]) -> (Double, Int) {
        var a = matrix, x = vector
        let m = x.count
        let scale = (0..<m).map { a[$0][$0] }.max() ?? 0
        guard scale > 0 else { return (0, 0) }
        var total = 0.0, rank = 0
        for p in 0..<m {
            let pivot = a[p][p]
            guard pivot > 1e-9 * scale else { continue }
            rank += 1
            total += x[p] * x[p] / pivot
            for r in (p + 1)..<m {
                let factor = a[r][p] / pivot
                for c in p..<m { a[r][c] -= factor * a[p][c] }
                x[r] -= factor * x[p]
            }
        }
        return (max(total, 0), rank)
    }
}

/// Upper tail of the chi-square distribution: P(X > x) = Q(df/2, x/2).
enum ChiSquare {
    static func upperTail(_ x: Double, degreesOfFreedom df: Int) -> Double {
        guard df > 0 else { return .nan }
        return IncompleteGamma.upper(Double(df) / 2, x / 2)
    }
}

/// Regularized upper incomplete gamma Q(a, x) = Γ(a, x)/Γ(a) (Numerical Recipes 3rd ed., §6.2: series for x < a + 1,
/// Lentz's continued fraction otherwise, each where it converges fast).
enum IncompleteGamma {
    static func upper(_ a: Double, _ x: Double) -> Double {
        guard a > 0, !x.isNaN else { return .nan }
        if x <= 0 { return 1 }
        if x.isInfinite { return 0 }
        return x < a + 1 ? 1 - series(a, x) : continuedFraction(a, x)
    }

    /// P(a, x) = e^(−x) x^a / Γ(a) · Σ x^n / (a (a+1) … (a+n)) (NR3 §6.2).
    static func series(_ a: Double, _ x: Double) -> Double {
        var ap = a, term = 1 / a, sum = term
        for _ in 0..<1000 {
            ap += 1
            term *= x / ap
            sum += term
            if abs(term) < abs(sum) * 1e-16 { break }
        }
        return sum * exp(-x + a * log(x) - lgamma(a))
    }

    /// Q(a, x) = e^(−x) x^a / Γ(a) · 1/(x + 1 − a − 1·(1 − a)/(x + 3 − a − …)) by modified Lentz (NR3 §6.2, §5.2).
    static func continuedFraction(_ a: Double, _ x: Double) -> Double {
        let tiny = 1e-300
        var b = x + 1 - a, c = 1 / tiny, d = 1 / b, h = d
        for i in 1...1000 {
            let an = -Double(i) * (Double(i) - a)
            b += 2
            d = an * d + b; if abs(d) < tiny { d = tiny }
            c = b + an / c; if abs(c) < tiny { c = tiny }
            d = 1 / d
            let delta = d * c
            h *= delta
            if abs(delta - 1) < 1e-16 { break }
        }
        return exp(-x + a * log(x) - lgamma(a)) * h
    }
}

/// Standard normal quantile by bisection on Φ(z) = ½ erfc(−z/√2) (Abramowitz M, Stegun IA. Handbook of Mathematical Functions 1964, §26.2 with §7.1):
/// Φ is monotone, and 200 halvings of [−40, 40] reach double precision.
enum StandardNormal {
    static func quantile(_ p: Double) -> Double {
        var lo = -40.0, hi = 40.0
        for _ in 0..<200 {
            let mid = (lo + hi) / 2
            if 0.5 * erfc(-mid / 2.0.squareRoot()) < p { lo = mid } else { hi = mid }
        }
        return (lo + hi) / 2
    }
}
