import Foundation

/// Where a toxicity stopping rule stands: participants counted, toxicities among them, and the design's boundary.
public struct StoppingRuleStatus: Codable, Equatable, Sendable {
    public var code: String
    public var name: String
    public var method: StoppingRuleDefinition.Method
    public var p0: Double
    /// The overall false-stop rate the certainty was calibrated to, when the rule gives one.
    public var alpha: Double?
    /// The certainty the boundaries stop at (calibrated when the rule gives `alpha`).
    public var certainty: Double
    /// Pocock only: the nominal level of each look (1 − certainty).
    public var nominalLevel: Double?
    public var maxSampleSize: Int
    /// Participants counted; nil when masked.
    public var n: Int?
    /// Participants with the toxicity among them; nil when masked.
    public var events: Int?
    /// The boundary at n (at the maximum sample size once n exceeds it); nil when no stop is possible there, or masked.
    public var stopIfAtLeast: Int?
    /// The rule's stopping condition has been met: among the first k participants (in the order they entered the
    /// population: first dose, or allocation) at least the boundary at k had the toxicity, for some k up to n; this
    /// holds whenever `events >= stopIfAtLeast`, and stays true when later participants without it bring the count back
    /// under a higher boundary (the rule stops at the first crossing; Geller et al. 2003, Ivanova et al. 2005).
    public var crossed: Bool
    /// The first such k; nil when not crossed, or masked.
    public var crossedAt: Int?
    /// Toxicities among those first k, and the boundary at k; nil when not crossed, or masked.
    public var crossedEvents: Int?
    public var crossedBoundary: Int?
    public var boundaries: [StoppingBoundary]
    /// Counted over every arm (no arms named, or all of them), so the counts reveal no allocation.
    public var pooledArms: Bool
    /// The counts are blanked for a viewer who must not see arms (see `masked()`).
    public var isMasked: Bool

    public init(
        code: String, name: String, method: StoppingRuleDefinition.Method, p0: Double, alpha: Double?, certainty: Double, nominalLevel: Double?,
        maxSampleSize: Int, n: Int?, events: Int?, stopIfAtLeast: Int?, crossed: Bool, crossedAt: Int?, boundaries: [StoppingBoundary],
        pooledArms: Bool, isMasked: Bool = false
    ) {
        self.code = code
        self.name = name
        self.method = method
        self.p0 = p0
        self.alpha = alpha
        self.certainty = certainty
        self.nominalLevel = nominalLevel
        self.maxSampleSize = maxSampleSize
        self.n = n
        self.events = events
        self.stopIfAtLeast = stopIfAtLeast
        self.crossed = crossed
        self.crossedAt = crossedAt
        self.boundaries = boundaries
        self.pooledArms = pooledArms
        self.isMasked = isMasked
    }

    /// What a viewer who must not see arms may be shown: for a rule over named arms, whether it crossed and the design,
    /// without the counts (participants in an arm, and toxicities in it, would tell allocations). A pooled rule is unchanged.
    public func masked() -> StoppingRuleStatus {
        guard !pooledArms else { return self }
        var status = self
        status.n = nil
        status.events = nil
        status.stopIfAtLeast = nil
        status.crossedAt = nil
        status.crossedEvents = nil
        status.crossedBoundary = nil
        status.isMasked = true
        return status
    }
}

extension StoppingRuleDefinition {
    /// Forms and adverse events are judged as a proportion endpoint's event is (its labs apart): the same analysis
    /// says what the rule reads.
    public var eventAnalysis: EndpointAnalysis {
        EndpointAnalysis(method: .proportion, anchor: anchor, window: window, forms: forms, adverseEvents: adverseEvents, perDose: perDose)
    }
}

/// Holds the participants' records against a definition's toxicity stopping rules.
public enum SafetyMonitor {
    /// The rule's design: its boundaries and the certainty that gives them.
    public static func design(for rule: StoppingRuleDefinition) throws -> StoppingDesign {
        let prior = try rule.prior.map { try BetaPrior(a: $0.a, b: $0.b) }
        let method = try ToxicityStoppingRule.Method(name: rule.method.rawValue, prior: prior)
        let threshold = try ToxicityStoppingRule.Threshold(certainty: rule.certainty, alpha: rule.alpha)
        return try ToxicityStoppingRule(method: method, p0: rule.p0, maxSampleSize: rule.maxSampleSize).design(threshold)
    }

    /// Counts the rule's population and toxicities. `labGrade` gives a lab result's CTCAE grade (nil when ungraded).
    public static func evaluate(
        _ rule: StoppingRuleDefinition, study: StudyDefinition, records: [ParticipantRecord], labGrade: (LabValue) -> Int?
    ) throws -> StoppingRuleStatus {
        let design = try design(for: rule)
        let outcome = try EndpointCalculator.eventOutcome(rule.eventAnalysis, study: study)
        let window = rule.window?.seconds
        let tests = Set((rule.labs?.tests ?? []).map { $0.uppercased() })

        func starts(of record: ParticipantRecord) -> [Date] {
            if rule.perDose == true { return record.doses.values.sorted() }
            guard let anchor = rule.anchor else { return [] }
            return [record.anchors[anchor] ?? record.doses[anchor]].compactMap { $0 }
        }
        func within(_ date: Date, after start: Date) -> Bool {
            date >= start && (window.map { date <= start.addingTimeInterval($0) } ?? true)
        }
        func hasToxicity(_ record: ParticipantRecord) -> Bool {
            // A dose code is an anchor of its own.
            var timed = record
            timed.anchors.merge(record.doses) { anchor, _ in anchor }
            if outcome(timed)?.event == true { return true }
            guard let labRule = rule.labs else { return false }
            let windows = starts(of: timed)
            let unanchored = rule.anchor == nil && rule.perDose != true
            return record.labs.contains { lab in
                guard tests.contains(lab.test.uppercased()), let grade = labGrade(lab), grade >= labRule.minGrade else { return false }
                return unanchored || windows.contains { within(lab.collectedAt, after: $0) }
            }
        }

        let armCodes = rule.arms.map(Set.init)
        let population = rule.countedPopulation
        // In the order participants entered the population, so that the k-th counted is the k-th participant of the design.
        let counted = records.compactMap { record -> (entry: Date, record: ParticipantRecord)? in
            guard let arm = record.arm, armCodes?.contains(arm) ?? true else { return nil }
            let firstDose = record.doses.values.min()
            switch population {
            case .dosed:
                guard let firstDose else { return nil }
                return (firstDose, record)
            case .allocated:
                return (record.allocatedAt ?? firstDose ?? .distantFuture, record)
            }
        }.sorted { ($0.entry, $0.record.screeningNumber) < ($1.entry, $1.record.screeningNumber) }

        var byLook: [Int: Int] = [:]
        for boundary in design.boundaries { byLook[boundary.n] = boundary.stopIfAtLeast }
        // Beyond the maximum the last look's boundary holds.
        func boundary(at k: Int) -> Int? { k < 1 ? nil : byLook[min(k, rule.maxSampleSize)] }

        var events = 0
        var crossedAt: Int?, crossedEvents: Int?, crossedBoundary: Int?
        for (i, entry) in counted.enumerated() {
            if hasToxicity(entry.record) { events += 1 }
            if crossedAt == nil, let bound = boundary(at: i + 1), events >= bound {
                crossedAt = i + 1
                crossedEvents = events
                crossedBoundary = bound
            }
        }
        let stopIfAtLeast = boundary(at: counted.count)
        let allArms = Set(study.arms.map(\.code))
        var status = StoppingRuleStatus(
            code: rule.code, name: rule.name, method: rule.method, p0: rule.p0, alpha: rule.alpha, certainty: design.certainty,
            nominalLevel: design.nominalLevel, maxSampleSize: rule.maxSampleSize, n: counted.count, events: events, stopIfAtLeast: stopIfAtLeast,
            crossed: crossedAt != nil, crossedAt: crossedAt, boundaries: design.boundaries, pooledArms: armCodes.map { allArms.isSubset(of: $0) } ?? true)
        status.crossedEvents = crossedEvents
        status.crossedBoundary = crossedBoundary
        return status
    }

    /// Every rule of the definition, in its order.
    public static func evaluateAll(study: StudyDefinition, records: [ParticipantRecord], labGrade: (LabValue) -> Int?) throws -> [StoppingRuleStatus] {
        try (study.monitoring?.stoppingRules ?? []).map { try evaluate($0, study: study, records: records, labGrade: labGrade) }
    }
}
