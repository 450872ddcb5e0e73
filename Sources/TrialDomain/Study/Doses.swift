import Foundation

/// One dose of an arm's plan: what is given, how much, and when. Each dose is an anchor of its own under its code,
/// so its safety window and its visits count from the time it was given.
public struct PlannedDose: Codable, Equatable, Sendable {
    public var code: String
    public var name: String?
    /// The intervention given (its code).
    public var product: String
    public var amount: Double
    public var unit: String
    /// The amount is per kilogram of body weight: the dose record then needs the weight.
    public var perKg: Bool?
    public var volume: Double?
    public var volumeUnit: String?
    public var route: String?
    public var placebo: Bool?
    /// When: `target` after `anchor` (an anchor code or another dose's code), within `window`.
    public var anchor: String
    public var target: Offset
    public var window: VisitWindow?
    /// The visit at which it is given; the pre-dose check reads that visit's forms first.
    public var visit: String?
    /// A yes/no condition over the participant's data that must hold before the dose is given.
    public var check: String?

    public init(
        code: String, name: String? = nil, product: String, amount: Double, unit: String, perKg: Bool? = nil, volume: Double? = nil,
        volumeUnit: String? = nil, route: String? = nil, placebo: Bool? = nil, anchor: String, target: Offset, window: VisitWindow? = nil,
        visit: String? = nil, check: String? = nil
    ) {
        self.code = code
        self.name = name
        self.product = product
        self.amount = amount
        self.unit = unit
        self.perKg = perKg
        self.volume = volume
        self.volumeUnit = volumeUnit
        self.route = route
        self.placebo = placebo
        self.anchor = anchor
        self.target = target
        self.window = window
        self.visit = visit
        self.check = check
    }
}

/// A dose as recorded: given (with its times, lot and the amount worked out) or skipped with a reason.
public struct DoseRecord: Codable, Equatable, Sendable {
    public var dose: String
    public var given: Bool
    public var startedAt: Date?
    public var endedAt: Date?
    public var lot: String?
    /// yyyy-MM-dd.
    public var expiry: String?
    public var weightKg: Double?
    public var amount: Double?
    public var unit: String?
    /// Why a dose out of its window was still given.
    public var deviationReason: String?
    /// Given outside its window: a protocol deviation.
    public var deviation: Bool
    public var skipReason: String?
    public var recordedBy: String
    public var recordedAt: Date

    public init(
        dose: String, given: Bool, startedAt: Date? = nil, endedAt: Date? = nil, lot: String? = nil, expiry: String? = nil, weightKg: Double? = nil,
        amount: Double? = nil, unit: String? = nil, deviationReason: String? = nil, deviation: Bool = false, skipReason: String? = nil,
        recordedBy: String, recordedAt: Date
    ) {
        self.dose = dose
        self.given = given
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.lot = lot
        self.expiry = expiry
        self.weightKg = weightKg
        self.amount = amount
        self.unit = unit
        self.deviationReason = deviationReason
        self.deviation = deviation
        self.skipReason = skipReason
        self.recordedBy = recordedBy
        self.recordedAt = recordedAt
    }
}

public enum DoseState: String, Codable, Sendable {
    case given, skipped, due, overdue, upcoming
    /// Its anchor has not happened yet.
    case notScheduled = "not_scheduled"
}

/// A dose of the participant's plan with when it is due and what became of it.
public struct ScheduledDose: Codable, Equatable, Sendable {
    public var dose: PlannedDose
    public var target: Date?
    public var windowStart: Date?
    public var windowEnd: Date?
    public var state: DoseState
    public var record: DoseRecord?
}

/// What a dose entry must satisfy before it is kept; each problem names the field and the rule.
public enum DoseRules {
    public enum Problem: Error, Equatable, Sendable {
        /// The participant's plan has no such dose; worded so as not to reveal the arm.
        case noSuchDose
        case invalid(field: String, rule: String)
        case alreadyRecorded(String)
    }

    /// The arm's plan (empty for an arm with no doses).
    public static func plan(study: StudyDefinition, arm: String?) -> [PlannedDose] {
        arm.flatMap { a in study.arms.first { $0.code == a }?.doses } ?? []
    }

    /// Every dose code of the study, whichever arm has it: each is an anchor.
    public static func codes(of study: StudyDefinition) -> [String] {
        study.arms.flatMap { $0.doses ?? [] }.map(\.code).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
    }

    /// When a planned dose is due, from the anchor times known so far (day-based windows cover whole UTC days).
    public static func window(
        of dose: PlannedDose, anchors: [String: Date], calendar: SiteCalendar = SiteCalendar(zone: SiteCalendar.utc)
    ) -> (target: Date, start: Date, end: Date)? {
        guard let base = anchors[dose.anchor] else { return nil }
        let target = base.addingTimeInterval(dose.target.seconds)
        let before = dose.window?.before.seconds ?? 0, after = dose.window?.after.seconds ?? 0
        var start = target.addingTimeInterval(-before), end = target.addingTimeInterval(after)
        if dose.target.isCalendar {
            start = calendar.startOfDay(start)
            end = calendar.endOfDay(end)
        }
        return (target, start, end)
    }

    public static func schedule(
        study: StudyDefinition, arm: String?, anchors: [String: Date], records: [DoseRecord], now: Date, calendar: SiteCalendar = SiteCalendar(zone: SiteCalendar.utc)
    ) -> [ScheduledDose] {
        plan(study: study, arm: arm).map { dose in
            let record = records.first { $0.dose == dose.code }
            let window = window(of: dose, anchors: anchors, calendar: calendar)
            let state: DoseState =
                if let record { record.given ? .given : .skipped } else if let window {
                    now < window.start ? .upcoming : (now > window.end ? .overdue : .due)
                } else { .notScheduled }
            return ScheduledDose(dose: dose, target: window?.target, windowStart: window?.start, windowEnd: window?.end, state: state, record: record)
        }
    }

    /// Checks a given dose against the plan, its window, the times and the product record; returns the amount given.
    public static func checkGiven(
        _ record: DoseRecord, plan: [PlannedDose], anchors: [String: Date], existing: [DoseRecord], allocatedAt: Date, now: Date,
        calendar: SiteCalendar = SiteCalendar(zone: SiteCalendar.utc)
    ) throws -> (dose: PlannedDose, amount: Double, deviation: Bool) {
        guard let dose = plan.first(where: { $0.code == record.dose }) else { throw Problem.noSuchDose }
        if existing.contains(where: { $0.dose == record.dose }) { throw Problem.alreadyRecorded(record.dose) }
        guard let started = record.startedAt else { throw Problem.invalid(field: "startedAt", rule: "is required for a dose given") }
        // Observed times never lie in the future (five minutes for clocks that differ).
        if started > now.addingTimeInterval(300) { throw Problem.invalid(field: "startedAt", rule: "must not be in the future") }
        if let ended = record.endedAt {
            if ended < started { throw Problem.invalid(field: "endedAt", rule: "must not be before startedAt") }
            if ended > now.addingTimeInterval(300) { throw Problem.invalid(field: "endedAt", rule: "must not be in the future") }
        }
        if started < allocatedAt { throw Problem.invalid(field: "startedAt", rule: "a dose cannot start before the allocation (\(AuditEntry.timestamp(allocatedAt)))") }
        if let lot = record.lot, lot.trimmingCharacters(in: .whitespaces).isEmpty || lot.count > 64 {
            throw Problem.invalid(field: "lot", rule: "1–64 characters")
        }
        if let expiry = record.expiry {
            guard let day = DateParsing.day(expiry) else { throw Problem.invalid(field: "expiry", rule: "must be a date as yyyy-MM-dd") }
            if AnchorTimes.day(day) < AnchorTimes.day(started) { throw Problem.invalid(field: "expiry", rule: "the product had expired when the dose started") }
        }
        var amount = dose.amount
        if dose.perKg == true {
            guard let weight = record.weightKg else { throw Problem.invalid(field: "weightKg", rule: "the dose is per kilogram: the weight is required") }
            guard weight > 0 && weight <= 400 else { throw Problem.invalid(field: "weightKg", rule: "must be more than 0 and at most 400 kg") }
            amount = dose.amount * weight
        } else if let weight = record.weightKg, !(weight > 0 && weight <= 400) {
            throw Problem.invalid(field: "weightKg", rule: "must be more than 0 and at most 400 kg")
        }
        let reason = record.deviationReason?.trimmingCharacters(in: .whitespaces) ?? ""
        guard let window = window(of: dose, anchors: anchors, calendar: calendar) else {
            throw Problem.invalid(field: "dose", rule: "\(dose.code) is timed from \(dose.anchor), which has not happened yet")
        }
        let outside = started < window.start || started > window.end
        if outside && reason.isEmpty {
            throw Problem.invalid(
                field: "deviationReason",
                rule: "\(dose.code) is due from \(AuditEntry.timestamp(window.start)) to \(AuditEntry.timestamp(window.end)); a dose outside its window needs the reason for the deviation")
        }
        return (dose, amount, outside)
    }

    /// The dose's pre-dose check over the participant's data (the dose visit's forms first): it must hold.
    /// `history`: the participant's adverse events and doses as of this dose, for a check that counts events.
    public static func checkBefore(_ dose: PlannedDose, study: StudyDefinition, site: String?, values: [String: String], history: ClinicalHistory? = nil) throws {
        guard let check = dose.check else { return }
        let scope = ExpressionScope(study: study)
        let condition: Expression
        do { condition = try scope.checkCondition(check) } catch { throw Problem.invalid(field: "dose", rule: "the pre-dose check cannot be read: \(error)") }
        switch try Evaluator(study: study, site: site, values: values, scope: scope, history: history).evaluate(condition) {
        case .boolean(true): return
        case .unknown(let missing):
            throw Problem.invalid(field: "dose", rule: "the pre-dose check (\(check)) cannot tell: \(missing.sorted().joined(separator: ", ")) missing")
        default:
            throw Problem.invalid(field: "dose", rule: "the pre-dose check does not hold: \(check)")
        }
    }

    public static func checkSkipped(_ record: DoseRecord, plan: [PlannedDose], existing: [DoseRecord]) throws -> PlannedDose {
        guard let dose = plan.first(where: { $0.code == record.dose }) else { throw Problem.noSuchDose }
        if existing.contains(where: { $0.dose == record.dose }) { throw Problem.alreadyRecorded(record.dose) }
        if (record.skipReason ?? "").trimmingCharacters(in: .whitespaces).isEmpty {
            throw Problem.invalid(field: "reason", rule: "a dose not given is recorded with the reason")
        }
        return dose
    }

}
