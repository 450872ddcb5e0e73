import Foundation

/// One position in a stratum's concealed sequence.
public struct AllocationSlot: Equatable, Sendable, Codable {
    public var stratum: String
    public var position: Int
    public var block: Int
    public var blockSize: Int
    public var arm: String
}

public enum RandomizationError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalidSettings(String)
    case missingStratumValue(field: String)
    case listExhausted(stratum: String)

    public var description: String {
        switch self {
        case .invalidSettings(let why): "randomization: \(why)"
        case .missingStratumValue(let field): "\(field): needed to choose the stratum, and it has no value"
        case .listExhausted(let stratum): "stratum \(stratum): every position of the allocation list is used"
        }
    }
}

/// Permuted blocks of randomly varying size, one sequence per stratum.
public enum AllocationList {
    /// Draws a uniformly random integer in 0..<n without modulo bias.
    static func uniform(_ n: Int, using rng: inout some RandomNumberGenerator) -> Int {
        Int(rng.next(upperBound: UInt64(n)))
    }

    /// Each block holds every arm `blockSize / ratioTotal × ratio` times, in random order.
    public static func generate(
        arms: [(code: String, ratio: Int)], blockSizes: [Int], strata: [String], perStratum: Int, using rng: inout some RandomNumberGenerator
    ) throws -> [AllocationSlot] {
        let total = arms.map(\.ratio).reduce(0, +)
        guard total > 0, !blockSizes.isEmpty else { throw RandomizationError.invalidSettings("arms and block sizes are required") }
        for size in blockSizes where size <= 0 || size % total != 0 {
            throw RandomizationError.invalidSettings("block size \(size) is not a multiple of the ratio total \(total)")
        }
        var slots: [AllocationSlot] = []
        for stratum in strata {
            var position = 0
            var block = 0
            while position < perStratum {
                block += 1
                let size = blockSizes[uniform(blockSizes.count, using: &rng)]
                var content = arms.flatMap { arm in Array(repeating: arm.code, count: size / total * arm.ratio) }
                // Fisher–Yates shuffle (Knuth, TAOCP vol. 2, Algorithm P).
                for i in stride(from: content.count - 1, to: 0, by: -1) {
                    content.swapAt(i, uniform(i + 1, using: &rng))
                }
                for arm in content {
                    position += 1
                    slots.append(AllocationSlot(stratum: stratum, position: position, block: block, blockSize: size, arm: arm))
                }
            }
        }
        return slots
    }

    /// All strata of a study: site codes crossed with each factor's levels.
    public static func strata(study: StudyDefinition) -> [String] {
        let sites = study.randomization.stratifyBySite ? study.sites.map(\.code) : ["all"]
        var result = sites
        for factor in study.randomization.factors {
            result = result.flatMap { prefix in levels(factor).map { "\(prefix)|\(factor.code)\($0)" } }
        }
        return result
    }

    /// "<30", "≥30" for cut-offs [30].
    public static func levels(_ factor: StratificationFactor) -> [String] {
        guard let first = factor.cutoffs.first else { return [""] }
        var labels = ["<\(FormValidator.format(first))"]
        for (i, cut) in factor.cutoffs.enumerated() {
            let next = i + 1 < factor.cutoffs.count ? "<\(FormValidator.format(factor.cutoffs[i + 1]))" : ""
            labels.append("≥\(FormValidator.format(cut))" + (next.isEmpty ? "" : "," + next))
        }
        return labels
    }

    /// The stratum a participant falls in: their site and the level of each factor.
    public static func stratum(study: StudyDefinition, site: String, values: [String: String]) throws -> String {
        var stratum = study.randomization.stratifyBySite ? site : "all"
        let scope = ExpressionScope(study: study)
        let evaluator = Evaluator(study: study, site: site, values: values, scope: scope)
        for factor in study.randomization.factors {
            let value = try evaluator.evaluate(try scope.checkNumber(factor.expression))
            guard case .number(let number) = value else {
                throw RandomizationError.missingStratumValue(field: factor.expression)
            }
            let level = factor.cutoffs.filter { number >= $0 }.count
            stratum += "|\(factor.code)\(levels(factor)[level])"
        }
        return stratum
    }
}

/// Pocock–Simon minimization (Pocock & Simon, Biometrics 1975;31:103–115), range measure of imbalance:
/// the arm that least increases the summed imbalance over factors is chosen with probability `p`.
public enum Minimization {
    /// `counts[factorLevel][arm]`: participants already allocated with this participant's level of each factor.
    public static func choose(
        arms: [(code: String, ratio: Int)], counts: [[String: Int]], probability p: Double, using rng: inout some RandomNumberGenerator
    ) -> String {
        var imbalance: [String: Double] = [:]
        for candidate in arms {
            var total = 0.0
            for level in counts {
                // Counts scaled by the ratio, so 2:1 is balance for a 2:1 study.
                let scaled = arms.map { arm in Double(level[arm.code, default: 0] + (arm.code == candidate.code ? 1 : 0)) / Double(arm.ratio) }
                total += (scaled.max() ?? 0) - (scaled.min() ?? 0)
            }
            imbalance[candidate.code] = total
        }
        let best = imbalance.values.min() ?? 0
        let preferred = arms.filter { imbalance[$0.code] == best }.map(\.code)
        let others = arms.map(\.code).filter { !preferred.contains($0) }
        let draw = Double(rng.next() >> 11) / Double(1 << 53)
        if others.isEmpty || draw < p {
            return preferred[AllocationList.uniform(preferred.count, using: &rng)]
        }
        return others[AllocationList.uniform(others.count, using: &rng)]
    }
}
