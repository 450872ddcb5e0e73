import ArgumentParser
import Foundation
import TrialDomain

/// `casebook stopping-rule`: toxicity stopping boundaries for continuous monitoring, and how they behave.
struct StoppingRuleCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stopping-rule",
        abstract: "Toxicity stopping boundaries checked after every participant, Bayesian or Pocock-type, with operating characteristics.",
        discussion: """
            bayes (Geller et al. 2003): stop at n when P(p > p0 | x toxicities of n) > certainty, under the Beta(a,b) prior. \
            --prior is required, as in the stoppingrule R package: the prior shapes the rule, so it is stated, not assumed \
            (a weak prior centred on p0, e.g. a = 3·p0, b = 3·(1 − p0), is a common choice).
            pocock (Ivanova, Qaqish & Schell 2005): stop at n when P(X_n ≥ x | p0) ≤ the nominal level, the same at every n; \
            its certainty is 1 − the nominal level.
            With --alpha the threshold is calibrated: the boundaries stopping most often while the overall chance of stopping \
            when the true rate is p0 stays at or below alpha.
            """)

    @Option(help: "bayes or pocock.") var method: String
    @Option(help: "Beta prior a,b on the toxicity rate (bayes only), e.g. 0.6,2.4.") var prior: String?
    @Option(help: "The unacceptable toxicity rate.") var p0: Double
    @Option(help: "Posterior certainty to stop at (bayes), or 1 − the nominal level (pocock).") var certainty: Double?
    @Option(help: "Overall false-stop rate at p0 to calibrate the certainty to.") var alpha: Double?
    @Option(name: .customLong("max"), help: "Maximum sample size (1 to \(ToxicityStoppingRule.sampleSizeLimit)).") var maxSampleSize: Int
    @Option(help: "True toxicity rates for the operating characteristics, e.g. 0.2,0.3,0.4 (default: p0).") var oc: String?
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        let design: StoppingDesign
        let rates: [Double]
        let rule: ToxicityStoppingRule
        let characteristics: [OperatingCharacteristics]
        do {
            let method = try ToxicityStoppingRule.Method(name: method, prior: try prior.map { try BetaPrior(parsing: $0) })
            let threshold = try ToxicityStoppingRule.Threshold(certainty: certainty, alpha: alpha)
            rule = try ToxicityStoppingRule(method: method, p0: p0, maxSampleSize: maxSampleSize)
            rates = try oc.map(Self.rates) ?? [p0]
            design = try rule.design(threshold)
            characteristics = try rates.map { try design.operatingCharacteristics(at: $0) }
        } catch let error as StoppingRuleError {
            throw inputError(error.description)
        }
        if json {
            var object: [String: Any] = [
                "boundaries": design.boundaries.map { ["n": $0.n, "stopIfAtLeast": $0.stopIfAtLeast] },
                "certainty": design.certainty,
                "operatingCharacteristics": characteristics.map {
                    [
                        "p": $0.p, "probabilityOfStopping": $0.probabilityOfStopping, "expectedSampleSize": $0.expectedSampleSize,
                        "expectedToxicities": $0.expectedToxicities,
                    ]
                },
            ]
            if let level = design.nominalLevel { object["nominalLevel"] = level }
            try printJSON(object)
        } else {
            print(Self.table(rule: rule, design: design, alpha: alpha, characteristics: characteristics))
        }
    }

    /// The --oc list; each rate's range is checked where the characteristics are worked out.
    static func rates(_ text: String) throws -> [Double] {
        try text.split(separator: ",", omittingEmptySubsequences: false).map { part in
            guard let p = Double(part.trimmingCharacters(in: .whitespaces)) else { throw StoppingRuleError.trueRateFormat(text) }
            return p
        }
    }

    /// Runs of n sharing a boundary on one line each, as in stoppingrule's table.rule.bin.
    static func table(rule: ToxicityStoppingRule, design: StoppingDesign, alpha: Double?, characteristics: [OperatingCharacteristics]) -> String {
        var lines: [String] = []
        switch rule.method {
        case .bayes(let prior):
            lines.append("Bayesian toxicity stopping rule: prior Beta(\(prior.a), \(prior.b)), p0 = \(rule.p0), N = \(rule.maxSampleSize)")
            lines.append("Stop when P(p > p0 | data) > \(fixed(design.certainty, 6))" + (alpha.map { " (calibrated to a false-stop rate ≤ \($0))" } ?? ""))
        case .pocock:
            lines.append("Pocock-type toxicity stopping rule: p0 = \(rule.p0), N = \(rule.maxSampleSize)")
            lines.append(
                "Stop when P(X_n ≥ x | p0) ≤ \(fixed(design.nominalLevel ?? 0, 6)) (certainty \(fixed(design.certainty, 6)))"
                    + (alpha.map { ", calibrated to a false-stop rate ≤ \($0)" } ?? ""))
        }
        lines.append("")
        if design.boundaries.isEmpty {
            lines.append("No number of toxicities stops the trial.")
        } else {
            lines.append(pad("participants", 14) + pad("stop if toxicities ≥", 22))
            var start = 0
            for i in design.boundaries.indices {
                let last = i + 1 == design.boundaries.count
                if last || design.boundaries[i + 1].stopIfAtLeast != design.boundaries[i].stopIfAtLeast
                    || design.boundaries[i + 1].n != design.boundaries[i].n + 1
                {
                    let from = design.boundaries[start].n, to = design.boundaries[i].n
                    lines.append(pad(from == to ? "\(from)" : "\(from)-\(to)", 14) + pad("\(design.boundaries[i].stopIfAtLeast)", 22))
                    start = i + 1
                }
            }
        }
        lines.append("")
        lines.append(pad("true p", 10) + pad("P(stop)", 12) + pad("E[N]", 12) + pad("E[toxicities]", 15))
        for c in characteristics {
            lines.append(
                pad("\(c.p)", 10) + pad(fixed(c.probabilityOfStopping, 4), 12) + pad(fixed(c.expectedSampleSize, 2), 12)
                    + pad(fixed(c.expectedToxicities, 2), 15))
        }
        return lines.joined(separator: "\n")
    }

    private static func fixed(_ value: Double, _ digits: Int) -> String { String(format: "%.\(digits)f", value) }
    private static func pad(_ text: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - text.count)) + text }
}
