import Foundation

// Safety tables computed from participants' records. Everything particular to a study (which events are
// treatment-emergent, how a term maps to its organ class, how a lab value is graded, which visits give the baseline)
// comes in as arguments, so the same code serves every study.

/// Participants with at least one event of a row, among the group's participants, with an exact 95 % interval.
public struct AdverseEventTally: Codable, Equatable, Sendable {
    public var participants: Int
    /// Events counted; nil when only participants are known (discontinuation given as participant ids).
    public var events: Int?
    /// `participants` ÷ the group's n; nil (with the bounds) when the group is empty.
    public var proportion: Double?
    public var lower: Double?
    public var upper: Double?
    /// Participants by the worst grade of their events in the row: index 0 is grade 1 … index 4 is grade 5.
    /// Grades outside 1…5 count in `participants` and `events` but in no column. nil with `events`.
    public var worstGrades: [Int]?

    public init(participants: Int, events: Int?, proportion: Double?, lower: Double?, upper: Double?, worstGrades: [Int]?) {
        self.participants = participants
        self.events = events
        self.proportion = proportion
        self.lower = lower
        self.upper = upper
        self.worstGrades = worstGrades
    }

    /// Participants whose worst grade in the row is `grade` (1…5); 0 outside that range or when unknown.
    public func participants(withWorstGrade grade: Int) -> Int {
        guard let worstGrades, (1...5).contains(grade) else { return 0 }
        return worstGrades[grade - 1]
    }
}

public struct AdverseEventTermRow: Codable, Equatable, Sendable {
    public var meddra: String
    /// The catalogue's term; the MedDRA code itself when the catalogue does not know it.
    public var term: String
    public var count: AdverseEventTally
}

public struct AdverseEventOrganClassRow: Codable, Equatable, Sendable {
    public var soc: String
    public var count: AdverseEventTally
    /// By descending participants, then term, then code.
    public var terms: [AdverseEventTermRow]
}

/// One group's adverse-event table: an arm, or everyone (arm nil).
public struct AdverseEventGroup: Codable, Equatable, Sendable {
    public var arm: String?
    /// The denominator: participants in the group, with or without events.
    public var n: Int
    public var any: AdverseEventTally
    public var serious: AdverseEventTally
    /// Attribution possible, probable or definite.
    public var related: AdverseEventTally
    public var gradeAtLeast3: AdverseEventTally
    /// Grade 5.
    public var fatal: AdverseEventTally
    /// nil when the caller gave no discontinuation rule.
    public var leadingToDiscontinuation: AdverseEventTally?
    /// By descending participants, then organ class.
    public var organClasses: [AdverseEventOrganClassRow]
}

public struct AdverseEventTable: Codable, Equatable, Sendable {
    /// Everyone first, then each arm.
    public var groups: [AdverseEventGroup]
}

/// Which adverse events led to discontinuation of treatment: the study's records say, not the event itself.
public enum DiscontinuationRule {
    /// The events that led to discontinuation (participants, events and worst grades are counted).
    case events((ParticipantRecord, AdverseEventEntry) -> Bool)
    /// Participants who discontinued because of an adverse event: only participants are counted, those with at
    /// least one treatment-emergent event, since the whole table is of treatment-emergent events.
    case participants(Set<UUID>)
}

/// Baseline grade → worst post-baseline grade for one group. Index 0…4 are grades, `ShiftGroup.missing` is "missing".
public struct ShiftGroup: Codable, Equatable, Sendable {
    public static let missing = 5
    public var arm: String?
    public var n: Int
    /// counts[baseline][worst], 6 × 6; every participant of the group is in exactly one cell.
    public var counts: [[Int]]
    /// Participants with a worst post-baseline grade for whom `worsenedIf` holds.
    public var worsened: Int
    /// Participants with a graded post-baseline value: the denominator of `worsened`.
    public var assessed: Int
    public var proportion: Double?
    public var lower: Double?
    public var upper: Double?

    /// The cell for a baseline and worst grade, nil standing for missing.
    public func count(baseline: Int?, worst: Int?) -> Int {
        counts[ShiftGroup.index(baseline)][ShiftGroup.index(worst)]
    }

    static func index(_ grade: Int?) -> Int {
        guard let grade, (0...4).contains(grade) else { return missing }
        return grade
    }
}

public struct ShiftTable: Codable, Equatable, Sendable {
    public var test: String
    /// Everyone first, then each arm.
    public var groups: [ShiftGroup]
}

public struct LabVisitRow: Codable, Equatable, Sendable {
    public var visit: String
    /// Participants with a value at the visit.
    public var n: Int
    public var value: Summary?
    /// Value at the visit minus the participant's baseline, for those with both.
    public var change: Summary?
}

public struct LabVisitGroup: Codable, Equatable, Sendable {
    public var arm: String?
    public var n: Int
    /// In the order the visits were asked for.
    public var visits: [LabVisitRow]
}

public struct LabVisitTable: Codable, Equatable, Sendable {
    public var test: String
    public var groups: [LabVisitGroup]
}

public enum SafetyTables {
    // MARK: Adverse events

    /// Treatment-emergent adverse events by system organ class and term, for everyone and (with `byArm`) each arm.
    /// - Parameters:
    ///   - records: the population the table is of (such as the safety population); each group's denominator.
    ///   - lookup: a MedDRA code's term and organ class from the study's catalogue; nil when unknown.
    ///   - unknownOrganClass: the label under which unknown codes are listed (each under its own code).
    ///   - treatmentEmergent: the study's rule for which events count at all.
    ///   - discontinuation: which events led to discontinuation; its row is nil without it.
    ///   - arms: arm codes in the order wanted; arms found in the records but not listed follow, sorted.
    public static func adverseEvents(
        _ records: [ParticipantRecord], lookup: (_ meddra: String) -> (term: String, soc: String)?, unknownOrganClass: String,
        treatmentEmergent: (ParticipantRecord, AdverseEventEntry) -> Bool, discontinuation: DiscontinuationRule? = nil, byArm: Bool,
        arms: [String] = []
    ) -> AdverseEventTable {
        // Each code is looked up once; the catalogue may be large.
        var names: [String: (term: String, soc: String)] = [:]
        func name(_ code: String) -> (term: String, soc: String) {
            if let known = names[code] { return known }
            let found = lookup(code) ?? (code, unknownOrganClass)
            names[code] = found
            return found
        }
        let groups = grouped(records, byArm: byArm, arms: arms).map { arm, members -> AdverseEventGroup in
            let n = members.count
            let emergent = members.map { record in (record, record.adverseEvents.filter { treatmentEmergent(record, $0) }) }
            func count(_ include: (ParticipantRecord, AdverseEventEntry) -> Bool) -> AdverseEventTally {
                tally(emergent.map { record, events in events.filter { include(record, $0) } }, n: n)
            }
            var discontinued: AdverseEventTally?
            switch discontinuation {
            case .events(let led): discontinued = count(led)
            case .participants(let ids):
                let x = emergent.filter { record, events in ids.contains(record.id) && !events.isEmpty }.count
                discontinued = rate(x, n: n, events: nil, worstGrades: nil)
            case nil: break
            }
            var organClasses: [AdverseEventOrganClassRow] = []
            let socs = Set(emergent.flatMap { $0.1.map { name($0.meddra).soc } })
            for soc in socs {
                let inClass = emergent.map { _, events in events.filter { name($0.meddra).soc == soc } }
                let codes = Set(inClass.flatMap { $0.map(\.meddra) })
                let terms = codes.map { code in
                    AdverseEventTermRow(meddra: code, term: name(code).term, count: tally(inClass.map { $0.filter { $0.meddra == code } }, n: n))
                }
                .sorted { ($1.count.participants, $0.term, $0.meddra) < ($0.count.participants, $1.term, $1.meddra) }
                organClasses.append(AdverseEventOrganClassRow(soc: soc, count: tally(inClass, n: n), terms: terms))
            }
            organClasses.sort { ($1.count.participants, $0.soc) < ($0.count.participants, $1.soc) }
            return AdverseEventGroup(
                arm: arm, n: n, any: count { _, _ in true }, serious: count { $1.serious }, related: count { $1.related },
                gradeAtLeast3: count { $1.grade >= 3 }, fatal: count { $1.grade == 5 }, leadingToDiscontinuation: discontinued,
                organClasses: organClasses)
        }
        return AdverseEventTable(groups: groups)
    }

    /// One row from each participant's events in it (an empty list for a participant without any).
    static func tally(_ perParticipant: [[AdverseEventEntry]], n: Int) -> AdverseEventTally {
        var participants = 0, events = 0
        var worst = [Int](repeating: 0, count: 5)
        for list in perParticipant where !list.isEmpty {
            participants += 1
            events += list.count
            if let grade = list.map(\.grade).max(), (1...5).contains(grade) { worst[grade - 1] += 1 }
        }
        return rate(participants, n: n, events: events, worstGrades: worst)
    }

    static func rate(_ x: Int, n: Int, events: Int?, worstGrades: [Int]?) -> AdverseEventTally {
        let ci = ClopperPearson.interval(successes: x, trials: n)
        return AdverseEventTally(
            participants: x, events: events, proportion: n > 0 ? Double(x) / Double(n) : nil, lower: ci?.lower, upper: ci?.upper, worstGrades: worstGrades)
    }

    // MARK: Labs

    /// Baseline grade → worst post-baseline grade of one lab test.
    /// Baseline is `Baseline.value`: the last value from `baselineVisits` collected before the participant's reference
    /// time. Post-baseline values are those collected at or after the reference time (from `postBaselineVisits` only,
    /// when given); without a reference time a participant has none. Grades outside 0…4, or nil from `grade`, are
    /// ungraded: an ungraded baseline is missing, and ungraded post-baseline values are passed over.
    ///
    /// `worsenedIf` is the study's convention for a treatment-emergent abnormality, supplied by the caller; the default,
    /// worst > (baseline ?? 0), counts any rise in grade and treats a missing baseline as grade 0.
    public static func shift(
        test: String, _ records: [ParticipantRecord], grade: (LabValue) -> Int?, baselineVisits: [String],
        referenceTime: (ParticipantRecord) -> Date?, postBaselineVisits: [String]? = nil,
        worsenedIf: (_ baseline: Int?, _ worst: Int) -> Bool = { baseline, worst in worst > (baseline ?? 0) }, byArm: Bool, arms: [String] = []
    ) -> ShiftTable {
        func graded(_ lab: LabValue) -> Int? { grade(lab).flatMap { (0...4).contains($0) ? $0 : nil } }
        let groups = grouped(records, byArm: byArm, arms: arms).map { arm, members -> ShiftGroup in
            var counts = [[Int]](repeating: [Int](repeating: 0, count: 6), count: 6)
            var worsened = 0, assessed = 0
            for record in members {
                let reference = referenceTime(record)
                let baseline = Baseline.value(of: test, in: record.labs, visits: baselineVisits, before: reference).flatMap(graded)
                let worst = reference.flatMap { start in
                    record.labs.filter { lab in
                        lab.test == test && lab.collectedAt >= start && (postBaselineVisits.map { $0.contains(lab.visit) } ?? true)
                    }
                    .compactMap(graded).max()
                }
                counts[ShiftGroup.index(baseline)][ShiftGroup.index(worst)] += 1
                if let worst {
                    assessed += 1
                    if worsenedIf(baseline, worst) { worsened += 1 }
                }
            }
            let ci = ClopperPearson.interval(successes: worsened, trials: assessed)
            return ShiftGroup(
                arm: arm, n: members.count, counts: counts, worsened: worsened, assessed: assessed,
                proportion: assessed > 0 ? Double(worsened) / Double(assessed) : nil, lower: ci?.lower, upper: ci?.upper)
        }
        return ShiftTable(test: test, groups: groups)
    }

    /// One lab test's values and change from baseline at each visit, visits in the order given. A participant's value at
    /// a visit is their latest sample there (as the endpoints read it); baseline is as in `shift`.
    public static func labsByVisit(
        test: String, _ records: [ParticipantRecord], visits: [String], baselineVisits: [String], referenceTime: (ParticipantRecord) -> Date?,
        byArm: Bool, arms: [String] = []
    ) -> LabVisitTable {
        let groups = grouped(records, byArm: byArm, arms: arms).map { arm, members -> LabVisitGroup in
            let baselines = members.map { record in
                Baseline.value(of: test, in: record.labs, visits: baselineVisits, before: referenceTime(record))?.value
            }
            let rows = visits.map { visit -> LabVisitRow in
                var values: [Double] = [], changes: [Double] = []
                for (record, baseline) in zip(members, baselines) {
                    guard let at = record.labs.filter({ $0.test == test && $0.visit == visit }).max(by: { $0.collectedAt < $1.collectedAt }) else { continue }
                    values.append(at.value)
                    if let baseline { changes.append(at.value - baseline) }
                }
                return LabVisitRow(visit: visit, n: values.count, value: Summary(values), change: Summary(changes))
            }
            return LabVisitGroup(arm: arm, n: members.count, visits: rows)
        }
        return LabVisitTable(test: test, groups: groups)
    }

    // MARK: Groups

    /// Everyone, then (with `byArm`) each arm: the listed arms in order, even when empty, then unlisted arms found in the
    /// records, sorted. Participants without an arm are in the everyone group only.
    static func grouped(_ records: [ParticipantRecord], byArm: Bool, arms: [String]) -> [(arm: String?, records: [ParticipantRecord])] {
        guard byArm else { return [(nil, records)] }
        let extra = Set(records.compactMap(\.arm)).subtracting(arms).sorted()
        return [(nil, records)] + (arms.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } } + extra).map { arm in
            (arm, records.filter { $0.arm == arm })
        }
    }
}
