import Foundation

// The counts of a CONSORT flow diagram: enrollment, allocation, follow-up and analysis, per arm.
// Boxes and wording follow the CONSORT 2010 Statement (Schulz KF, Altman DG, Moher D. BMJ 2010;340:c332), figure 1.

/// A reason and how many participants it accounts for, e.g. "Declined to participate", 5.
public struct ConsortReason: Codable, Equatable, Hashable, Sendable {
    public var label: String
    public var n: Int

    public init(label: String, n: Int) {
        self.label = label
        self.n = n
    }
}

/// One arm's column. Reasons are expected to split their count, one reason per participant.
public struct ConsortArm: Codable, Equatable, Sendable {
    public var code: String
    public var name: String
    public var allocated: Int
    public var received: Int
    public var notReceived: Int
    public var notReceivedReasons: [ConsortReason]
    public var lostToFollowUp: Int
    public var lostToFollowUpReasons: [ConsortReason]
    public var discontinued: Int
    public var discontinuedReasons: [ConsortReason]
    public var analysed: Int
    public var excludedFromAnalysis: Int
    public var excludedFromAnalysisReasons: [ConsortReason]

    public init(
        code: String, name: String, allocated: Int, received: Int, notReceived: Int = 0, notReceivedReasons: [ConsortReason] = [],
        lostToFollowUp: Int = 0, lostToFollowUpReasons: [ConsortReason] = [], discontinued: Int = 0, discontinuedReasons: [ConsortReason] = [],
        analysed: Int, excludedFromAnalysis: Int = 0, excludedFromAnalysisReasons: [ConsortReason] = []
    ) {
        self.code = code
        self.name = name
        self.allocated = allocated
        self.received = received
        self.notReceived = notReceived
        self.notReceivedReasons = notReceivedReasons
        self.lostToFollowUp = lostToFollowUp
        self.lostToFollowUpReasons = lostToFollowUpReasons
        self.discontinued = discontinued
        self.discontinuedReasons = discontinuedReasons
        self.analysed = analysed
        self.excludedFromAnalysis = excludedFromAnalysis
        self.excludedFromAnalysisReasons = excludedFromAnalysisReasons
    }
}

/// One randomization and the arms it allocated to.
public struct ConsortStage: Codable, Equatable, Sendable {
    /// Shown only when there are several stages, e.g. "Second randomization (responders)".
    public var label: String
    public var randomized: Int
    public var arms: [ConsortArm]

    public init(label: String, randomized: Int, arms: [ConsortArm]) {
        self.label = label
        self.randomized = randomized
        self.arms = arms
    }
}

/// The whole diagram's counts.
public struct ConsortFlow: Codable, Equatable, Sendable {
    public var assessed: Int
    public var excluded: Int
    /// E.g. "Not meeting inclusion criteria", "Declined to participate", "Other reasons".
    public var excludedReasons: [ConsortReason]
    /// The first is the main randomization; a later one (e.g. re-randomizing some of stage one) is drawn below it.
    public var stages: [ConsortStage]
    /// True for a blinded viewer: one column for everyone randomized, no arms.
    public var pooled: Bool

    public init(assessed: Int, excluded: Int, excludedReasons: [ConsortReason] = [], stages: [ConsortStage], pooled: Bool = false) {
        self.assessed = assessed
        self.excluded = excluded
        self.excludedReasons = excludedReasons
        self.stages = stages
        self.pooled = pooled
    }

    /// A trial randomized once.
    public init(
        assessed: Int, excluded: Int, excludedReasons: [ConsortReason] = [], randomized: Int, arms: [ConsortArm], pooled: Bool = false
    ) {
        self.init(
            assessed: assessed, excluded: excluded, excludedReasons: excludedReasons,
            stages: [ConsortStage(label: "Randomization", randomized: randomized, arms: arms)], pooled: pooled)
    }

    /// The first stage's count; setting it on a flow without stages adds one.
    public var randomized: Int {
        get { stages.first?.randomized ?? 0 }
        set {
            if stages.isEmpty { stages = [ConsortStage(label: "Randomization", randomized: newValue, arms: [])] } else { stages[0].randomized = newValue }
        }
    }

    /// The first stage's arms.
    public var arms: [ConsortArm] {
        get { stages.first?.arms ?? [] }
        set {
            if stages.isEmpty { stages = [ConsortStage(label: "Randomization", randomized: 0, arms: newValue)] } else { stages[0].arms = newValue }
        }
    }

    /// The flow with each stage's arms summed into one arm named `label`, for a viewer who must not see arms.
    /// Arm codes and names are dropped; merged reasons are sorted by count, then label, so their order cannot tell
    /// which arm a reason came from.
    public func pooled(label: String) -> ConsortFlow {
        var flow = self
        flow.pooled = true
        flow.stages = stages.map { stage in
            guard !stage.arms.isEmpty else { return stage }
            let arms = stage.arms
            func sum(_ count: (ConsortArm) -> Int) -> Int { arms.reduce(0) { $0 + count($1) } }
            func merge(_ reasons: (ConsortArm) -> [ConsortReason]) -> [ConsortReason] {
                var totals: [String: Int] = [:]
                for reason in arms.flatMap(reasons) { totals[reason.label, default: 0] += reason.n }
                return totals.map { ConsortReason(label: $0.key, n: $0.value) }
                    .sorted { $0.n != $1.n ? $0.n > $1.n : $0.label < $1.label }
            }
            let all = ConsortArm(
                code: "all", name: label, allocated: sum(\.allocated), received: sum(\.received),
                notReceived: sum(\.notReceived), notReceivedReasons: merge(\.notReceivedReasons),
                lostToFollowUp: sum(\.lostToFollowUp), lostToFollowUpReasons: merge(\.lostToFollowUpReasons),
                discontinued: sum(\.discontinued), discontinuedReasons: merge(\.discontinuedReasons),
                analysed: sum(\.analysed), excludedFromAnalysis: sum(\.excludedFromAnalysis),
                excludedFromAnalysisReasons: merge(\.excludedFromAnalysisReasons))
            return ConsortStage(label: stage.label, randomized: stage.randomized, arms: [all])
        }
        return flow
    }

    /// Counts that do not add up, one message each; empty when the diagram is consistent.
    /// A running trial is expected to show some (e.g. participants still being assessed), so these are reported, not thrown.
    public func inconsistencies() -> [String] {
        var found: [String] = []
        func count(_ what: String, _ n: Int) {
            if n < 0 { found.append("\(what) is negative (\(n)).") }
        }
        func reasons(_ what: String, _ n: Int, _ list: [ConsortReason]) {
            for reason in list where reason.n < 0 { found.append("\(what): reason \"\(reason.label)\" is negative (\(reason.n)).") }
            let total = list.reduce(0) { $0 + $1.n }
            if !list.isEmpty, total != n { found.append("\(what): reasons add up to \(total), but the count is \(n).") }
        }

        count("Assessed for eligibility", assessed)
        count("Excluded", excluded)
        reasons("Excluded", excluded, excludedReasons)
        if excluded > assessed { found.append("Excluded (\(excluded)) is more than assessed for eligibility (\(assessed)).") }
        if assessed - excluded != randomized {
            found.append("Assessed for eligibility (\(assessed)) minus excluded (\(excluded)) is \(assessed - excluded), but randomized is \(randomized).")
        }
        if pooled, stages.contains(where: { $0.arms.count > 1 }) {
            found.append("Marked pooled, but a stage still holds several arms; use pooled(label:).")
        }

        for (index, stage) in stages.enumerated() {
            // Name the stage only when there is more than one, as the diagram does.
            let prefix = stages.count > 1 ? "\(stage.label): " : ""
            func said(_ text: String) -> String { prefix.isEmpty ? text.prefix(1).uppercased() + text.dropFirst() : prefix + text }
            count(said("randomized"), stage.randomized)
            if index > 0, stage.randomized > stages[index - 1].randomized {
                found.append(said("randomized (\(stage.randomized)) is more than the stage before (\(stages[index - 1].randomized))."))
            }
            let allocated = stage.arms.reduce(0) { $0 + $1.allocated }
            if !stage.arms.isEmpty, allocated != stage.randomized {
                found.append(said("arms' allocated add up to \(allocated), but randomized is \(stage.randomized)."))
            }
            var codes: Set<String> = []
            for arm in stage.arms where !codes.insert(arm.code).inserted {
                found.append(said("arm code \"\(arm.code)\" appears more than once."))
            }
            for arm in stage.arms {
                let name = "\(prefix)\(arm.name)"
                count("\(name): allocated", arm.allocated)
                count("\(name): received allocated intervention", arm.received)
                count("\(name): did not receive allocated intervention", arm.notReceived)
                count("\(name): lost to follow-up", arm.lostToFollowUp)
                count("\(name): discontinued intervention", arm.discontinued)
                count("\(name): analysed", arm.analysed)
                count("\(name): excluded from analysis", arm.excludedFromAnalysis)
                reasons("\(name): did not receive allocated intervention", arm.notReceived, arm.notReceivedReasons)
                reasons("\(name): lost to follow-up", arm.lostToFollowUp, arm.lostToFollowUpReasons)
                reasons("\(name): discontinued intervention", arm.discontinued, arm.discontinuedReasons)
                reasons("\(name): excluded from analysis", arm.excludedFromAnalysis, arm.excludedFromAnalysisReasons)
                if arm.received + arm.notReceived != arm.allocated {
                    found.append(
                        "\(name): received (\(arm.received)) plus did not receive (\(arm.notReceived)) is \(arm.received + arm.notReceived),"
                            + " but allocated is \(arm.allocated).")
                }
                // CONSORT counts the analysis against those allocated: analysed plus excluded from analysis.
                if arm.analysed + arm.excludedFromAnalysis != arm.allocated {
                    found.append(
                        "\(name): analysed (\(arm.analysed)) plus excluded from analysis (\(arm.excludedFromAnalysis))"
                            + " is \(arm.analysed + arm.excludedFromAnalysis), but allocated is \(arm.allocated).")
                }
                if arm.lostToFollowUp > arm.allocated {
                    found.append("\(name): lost to follow-up (\(arm.lostToFollowUp)) is more than allocated (\(arm.allocated)).")
                }
                if arm.discontinued > arm.allocated { found.append("\(name): discontinued (\(arm.discontinued)) is more than allocated (\(arm.allocated)).") }
            }
        }
        return found
    }
}
