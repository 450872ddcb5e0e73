import Foundation

public enum VisitState: String, Codable, Sendable {
    /// Data entered within the window.
    case done
    /// Data entered outside the window.
    case outOfWindow = "out_of_window"
    /// The window is open now.
    case due
    /// The window has closed with no data.
    case overdue
    case upcoming
    /// Its anchor has not happened yet, so it cannot be placed.
    case notScheduled = "not_scheduled"
}

public struct ScheduledVisit: Codable, Equatable, Sendable {
    public var visit: String
    public var name: String
    public var target: Date?
    public var windowStart: Date?
    public var windowEnd: Date?
    public var doneAt: Date?
    public var state: VisitState
}

/// One participant's expected visits, from their anchor times and the visits they have data for.
public enum ParticipantSchedule {
    /// `arm`: the participant's arm; visits limited to other arms are left out (none are before allocation).
    public static func build(
        study: StudyDefinition, anchors: [String: Date], done: [String: Date], now: Date, arm: String? = nil, calendar: SiteCalendar = SiteCalendar(zone: SiteCalendar.utc)
    ) -> [ScheduledVisit] {
        study.visits.filter { v in v.arms.map { arms in arm.map(arms.contains) ?? false } ?? true }.map { visit in
            var target: Date?, start: Date?, end: Date?
            // A visit that defines its anchor happens when it happens: it has no window to miss.
            var definesItself = false
            if let anchor = visit.anchor, let offset = visit.target, let base = anchors[anchor] {
                target = base.addingTimeInterval(offset.seconds)
                // Day-based windows cover whole days: a day-7 visit ±1 d runs from the start of day 6 to the end of day 8.
                let dayBased = offset.isCalendar
                let before = visit.window?.before.seconds ?? 0, after = visit.window?.after.seconds ?? 0
                start = target!.addingTimeInterval(-before)
                end = target!.addingTimeInterval(after)
                if dayBased {
                    start = calendar.startOfDay(start!)
                    end = calendar.endOfDay(end!)
                }
            } else if let defined = visit.defines, let time = anchors[defined] {
                target = time
                start = time
                end = time
                definesItself = true
            }
            let doneAt = done[visit.code]
            let state: VisitState
            if let doneAt {
                if !definesItself, let start, let end, doneAt < start || doneAt > end {
                    state = .outOfWindow
                } else {
                    state = .done
                }
            } else if let start, let end {
                state = now < start ? .upcoming : (now > end ? .overdue : .due)
            } else {
                state = .notScheduled
            }
            return ScheduledVisit(visit: visit.code, name: visit.name, target: target, windowStart: start, windowEnd: end, doneAt: doneAt, state: state)
        }
    }
}

/// When a visit counts as done: once every required field of its forms has a value, however it was entered
/// (a form, the API, the CLI, or a lab result for a field linked to a lab, which also dates its form's sample).
/// A visit whose forms require nothing
/// is done at its first entry; a visit with no forms is placed by its anchor instead.
public enum VisitCompletion {
    /// What one visit holds: `form.field` values, the lab tests sampled at it, and when it first happened.
    public struct Entered: Sendable {
        public var values: [String: String]
        public var labs: Set<String>
        public var firstAt: Date
        public init(values: [String: String], labs: Set<String>, firstAt: Date) {
            self.values = values
            self.labs = labs
            self.firstAt = firstAt
        }
    }

    /// The required fields of a visit's forms still without a value, as `form.field`.
    public static func missing(visit: String, study: StudyDefinition, entered: Entered?) -> [String] {
        study.forms.filter { $0.visits.contains(visit) }.flatMap { form in
            // A lab result carries its own sample time, so it stands for the form's sample date too.
            let sampled = form.fields.contains { f in f.lab.map { entered?.labs.contains($0.uppercased()) == true } ?? false }
            return form.fields.filter { $0.required == true }.compactMap { field -> String? in
                let name = "\(form.code).\(field.code)"
                if let value = entered?.values[name], !value.trimmingCharacters(in: .whitespaces).isEmpty { return nil }
                if let lab = field.lab, entered?.labs.contains(lab.uppercased()) == true { return nil }
                if sampled && (field.type == .date || field.type == .datetime) && field.planned != true { return nil }
                return name
            }
        }
    }

    /// Each visit's done date: when it first happened, for visits whose required data all exist.
    public static func dates(study: StudyDefinition, entered: [String: Entered]) -> [String: Date] {
        var done: [String: Date] = [:]
        for (visit, data) in entered where missing(visit: visit, study: study, entered: data).isEmpty {
            done[visit] = data.firstAt
        }
        return done
    }
}
