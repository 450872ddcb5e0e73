import Foundation

/// Exact binomial confidence interval (Clopper CJ, Pearson ES. Biometrika 1934;26:404-413):
/// the bounds are quantiles of Beta(x, n − x + 1) and Beta(x + 1, n − x).
public enum ClopperPearson {
    public static func interval(successes x: Int, trials n: Int, confidence: Double = 0.95) -> (lower: Double, upper: Double)? {
        guard n > 0, x >= 0, x <= n else { return nil }
        let alpha = 1 - confidence
        let lower = x == 0 ? 0 : Beta.quantile(alpha / 2, a: Double(x), b: Double(n - x + 1))
        let upper = x == n ? 1 : Beta.quantile(1 - alpha / 2, a: Double(x + 1), b: Double(n - x))
        return (lower, upper)
    }
}

/// The regularized incomplete beta function and its inverse (continued fraction of Numerical Recipes, 3rd ed., §6.4).
enum Beta {
    static func logBeta(_ a: Double, _ b: Double) -> Double { lgamma(a) + lgamma(b) - lgamma(a + b) }

    static func regularized(_ x: Double, a: Double, b: Double) -> Double {
        if x <= 0 { return 0 }
        if x >= 1 { return 1 }
        let front = exp(a * log(x) + b * log(1 - x) - logBeta(a, b))
        if x < (a + 1) / (a + b + 2) { return front * continuedFraction(x, a, b) / a }
        return 1 - front * continuedFraction(1 - x, b, a) / b
    }

    static func continuedFraction(_ x: Double, _ a: Double, _ b: Double) -> Double {
        let tiny = 1e-300
        var c = 1.0, d = 1 - (a + b) * x / (a + 1)
        if abs(d) < tiny { d = tiny }
        d = 1 / d
        var h = d
        for m in 1...300 {
            let m = Double(m)
            var aa = m * (b - m) * x / ((a + 2 * m - 1) * (a + 2 * m))
            d = 1 + aa * d; if abs(d) < tiny { d = tiny }
            c = 1 + aa / c; if abs(c) < tiny { c = tiny }
            d = 1 / d; h *= d * c
            aa = -(a + m) * (a + b + m) * x / ((a + 2 * m) * (a + 2 * m + 1))
            d = 1 + aa * d; if abs(d) < tiny { d = tiny }
            c = 1 + aa / c; if abs(c) < tiny { c = tiny }
            d = 1 / d
            let delta = d * c
            h *= delta
            if abs(delta - 1) < 1e-15 { break }
        }
        return h
    }

    /// Bisection: the regularized function is monotone in x, and 200 halvings reach double precision.
    static func quantile(_ p: Double, a: Double, b: Double) -> Double {
        var lo = 0.0, hi = 1.0
        for _ in 0..<200 {
            let mid = (lo + hi) / 2
            if regularized(mid, a: a, b: b) < p { lo = mid } else { hi = mid }
        }
        return (lo + hi) / 2
    }
}

/// Potential drug-induced liver injury by Hy's law (FDA Guidance for Industry, Drug-Induced Liver Injury:
/// Premarketing Clinical Evaluation, 2009): ALT or AST > 3 × ULN with total bilirubin > 2 × ULN.
/// These participants start abnormal, so the same multiples of baseline are checked too; the multiples are study settings.
public struct HysLawCheck: Codable, Equatable, Sendable {
    public var byULN: Bool
    public var byBaseline: Bool
    public var transaminaseMultipleOfULN: Double
    public var bilirubinMultipleOfULN: Double

    public static func evaluate(
        alt: Double?, ast: Double?, bilirubin: Double?, altULN: Double?, astULN: Double?, bilirubinULN: Double?,
        altBaseline: Double?, astBaseline: Double?, bilirubinBaseline: Double?, transaminaseMultiple: Double = 3, bilirubinMultiple: Double = 2
    ) -> HysLawCheck? {
        guard let bilirubin, let bilirubinULN, bilirubinULN > 0 else { return nil }
        func ratio(_ v: Double?, _ r: Double?) -> Double? { guard let v, let r, r > 0 else { return nil }; return v / r }
        let transaminaseULN = [ratio(alt, altULN), ratio(ast, astULN)].compactMap { $0 }.max()
        guard let transaminaseULN else { return nil }
        let byULN = transaminaseULN > transaminaseMultiple && bilirubin / bilirubinULN > bilirubinMultiple
        let transaminaseBaseline = [ratio(alt, altBaseline), ratio(ast, astBaseline)].compactMap { $0 }.max()
        let bilirubinBaselineRatio = ratio(bilirubin, bilirubinBaseline)
        let byBaseline = (transaminaseBaseline ?? 0) > transaminaseMultiple && (bilirubinBaselineRatio ?? 0) > bilirubinMultiple
        return HysLawCheck(byULN: byULN, byBaseline: byBaseline, transaminaseMultipleOfULN: transaminaseULN, bilirubinMultipleOfULN: bilirubin / bilirubinULN)
    }
}
