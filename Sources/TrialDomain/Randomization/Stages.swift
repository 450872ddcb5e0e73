import Foundation

/// A randomization after enrolment, at a named visit: each taking part draws an option, and their current arm and the
/// option drawn give their next arm (`assigns`). A double-dummy design runs it for every arm, some options leading back
/// to the same arm, so that site staff see one schedule and one step for everyone.
public struct StageRandomization: Codable, Equatable, Sendable {
    public var code: String
    public var name: String?
    /// The visit at which it happens; it is refused outside that visit's window.
    public var visit: String
    /// Who takes part, beyond being allocated to an arm that `assigns` names: a yes/no condition over their data.
    public var eligible: String?
    public var options: [RandomizationOption]
    /// Current arm → option → next arm.
    public var assigns: [String: [String: String]]
    /// Permuted blocks, each a multiple of the options' ratio total.
    public var blockSizes: [Int]
    public var stratifyBySite: Bool
    /// Further strata: numbers cut at points, read at the stage's visit (its forms first).
    public var factors: [StratificationFactor]?
    /// Positions generated per stratum (default 100).
    public var listLengthPerStratum: Int?

    public init(
        code: String, name: String? = nil, visit: String, eligible: String? = nil, options: [RandomizationOption], assigns: [String: [String: String]],
        blockSizes: [Int], stratifyBySite: Bool, factors: [StratificationFactor]? = nil, listLengthPerStratum: Int? = nil
    ) {
        self.factors = factors
        self.code = code
        self.name = name
        self.visit = visit
        self.eligible = eligible
        self.options = options
        self.assigns = assigns
        self.blockSizes = blockSizes
        self.stratifyBySite = stratifyBySite
        self.listLengthPerStratum = listLengthPerStratum
    }

    /// Strata: each current arm taking part (so each arm's draws stay balanced), crossed with the site when stratified
    /// and with each factor's levels.
    public func strata(study: StudyDefinition) -> [String] {
        var result = assigns.keys.sorted()
        if stratifyBySite { result = result.flatMap { arm in study.sites.map { "\(arm)|\($0.code)" } } }
        for factor in factors ?? [] {
            result = result.flatMap { prefix in AllocationList.levels(factor).map { "\(prefix)|\(factor.code)\($0)" } }
        }
        return result
    }

    /// The participant's stratum: their arm, site, and the level of each factor on their data at the stage's visit.
    public func stratum(arm: String, site: String, study: StudyDefinition, values: [String: String]) throws -> String {
        var stratum = stratifyBySite ? "\(arm)|\(site)" : arm
        let scope = ExpressionScope(study: study)
        let evaluator = Evaluator(study: study, site: site, values: values, scope: scope)
        for factor in factors ?? [] {
            guard case .number(let number) = try evaluator.evaluate(try scope.checkNumber(factor.expression)) else {
                throw RandomizationError.missingStratumValue(field: factor.expression)
            }
            stratum += "|\(factor.code)\(AllocationList.levels(factor)[factor.cutoffs.filter { number >= $0 }.count])"
        }
        return stratum
    }
}

public struct RandomizationOption: Codable, Equatable, Sendable {
    public var code: String
    public var ratio: Int

    public init(code: String, ratio: Int) {
        self.code = code
        self.ratio = ratio
    }
}

public enum StageRules {
    /// The problems of a definition's stage randomizations, by code.
    public static func problems(in study: StudyDefinition) -> [StudyProblem] {
        var problems: [StudyProblem] = []
        var seen: Set<String> = []
        let arms = Set(study.arms.map(\.code))
        for stage in study.randomizations ?? [] {
            let path = "randomizations[\(stage.code)]"
            if !seen.insert(stage.code).inserted { problems.append(StudyProblem(path, "duplicate code '\(stage.code)'")) }
            if study.visit(stage.visit) == nil { problems.append(StudyProblem("\(path).visit", "names unknown visit '\(stage.visit)'")) }
            if stage.options.isEmpty { problems.append(StudyProblem("\(path).options", "needs at least one option")) }
            for option in stage.options where option.ratio < 1 { problems.append(StudyProblem("\(path).options[\(option.code)].ratio", "must be 1 or more")) }
            let total = stage.options.map(\.ratio).reduce(0, +)
            if stage.blockSizes.isEmpty { problems.append(StudyProblem("\(path).blockSizes", "permuted blocks need at least one block size")) }
            for size in stage.blockSizes where total > 0 && (size <= 0 || size % total != 0) {
                problems.append(StudyProblem("\(path).blockSizes", "block size \(size) is not a multiple of the options' ratio total \(total)"))
            }
            if stage.assigns.isEmpty { problems.append(StudyProblem("\(path).assigns", "must say which arms take part and where each option leads")) }
            for (from, next) in stage.assigns.sorted(by: { $0.key < $1.key }) {
                if !arms.contains(from) { problems.append(StudyProblem("\(path).assigns.\(from)", "names unknown arm '\(from)'")) }
                for option in stage.options where next[option.code] == nil {
                    problems.append(StudyProblem("\(path).assigns.\(from)", "says nothing of option '\(option.code)'"))
                }
                for (option, to) in next.sorted(by: { $0.key < $1.key }) {
                    if !stage.options.contains(where: { $0.code == option }) { problems.append(StudyProblem("\(path).assigns.\(from).\(option)", "names unknown option '\(option)'")) }
                    if !arms.contains(to) { problems.append(StudyProblem("\(path).assigns.\(from).\(option)", "leads to unknown arm '\(to)'")) }
                }
            }
            if let eligible = stage.eligible {
                do { _ = try ExpressionScope(study: study).checkCondition(eligible) } catch { problems.append(StudyProblem("\(path).eligible", "\(error)")) }
            }
            for factor in stage.factors ?? [] {
                let at = "\(path).factors[\(factor.code)]"
                if factor.cutoffs.isEmpty || factor.cutoffs != factor.cutoffs.sorted() { problems.append(StudyProblem("\(at).cutoffs", "must be one or more cut points in ascending order")) }
                do { _ = try ExpressionScope(study: study).checkNumber(factor.expression) } catch { problems.append(StudyProblem("\(at).expression", "\(error)")) }
            }
        }
        return problems
    }
}
