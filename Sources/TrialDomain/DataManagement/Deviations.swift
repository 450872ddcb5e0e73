import Foundation

public enum DeviationKind: String, Codable, Sendable, CaseIterable {
    /// A dose given outside its window (raised with the dose).
    case dose
    /// Data entered after allocation that contradict eligibility.
    case eligibility
    /// A visit done outside its window.
    case visitWindow = "visit-window"
    /// A visit with no data whose window has closed while a later visit has data.
    case missedAssessment = "missed-assessment"
    case consent
    case procedure
    case other

    /// The kinds a person may raise by hand; the rest are raised by Casebook as the data arrive.
    public static let byHand: [DeviationKind] = [.visitWindow, .missedAssessment, .consent, .procedure, .other]
}

/// ICH E3 Questions & Answers (R1), 2012: important protocol deviations are those that may significantly affect the
/// completeness, accuracy or reliability of the data, or a participant's rights, safety or well-being.
public enum DeviationClass: String, Codable, Sendable, CaseIterable {
    case important
    case notImportant = "not-important"
}

public struct ScheduleDeviation: Equatable, Sendable {
    public var kind: DeviationKind
    public var visit: String
    public var detail: String
}

public enum DeviationRules {
    /// Who raises a deviation by hand, and who reviews and classifies one.
    public static let raisers: Set<Role> = [.investigator, .coordinator, .monitor, .dataManager]
    public static let reviewers: Set<Role> = [.investigator, .monitor, .dataManager]

    /// Deviations a participant's schedule shows: visits done outside their window, and visits missed (their window
    /// closed with no data at all while a later visit has data, so the visit was skipped rather than late).
    /// `entered`: the visits with any data; one begun but incomplete is not missed.
    public static func fromSchedule(_ visits: [ScheduledVisit], entered: Set<String>, calendar: SiteCalendar) -> [ScheduleDeviation] {
        var found: [ScheduleDeviation] = []
        for (index, visit) in visits.enumerated() {
            switch visit.state {
            case .outOfWindow:
                guard let done = visit.doneAt, let start = visit.windowStart, let end = visit.windowEnd else { continue }
                found.append(ScheduleDeviation(
                    kind: .visitWindow, visit: visit.visit,
                    detail: "\(visit.name) done \(calendar.dayText(done)), outside its window \(calendar.dayText(start)) to \(calendar.dayText(end))"))
            case .overdue:
                guard !entered.contains(visit.visit), visits[(index + 1)...].contains(where: { $0.doneAt != nil }), let end = visit.windowEnd else { continue }
                found.append(ScheduleDeviation(
                    kind: .missedAssessment, visit: visit.visit,
                    detail: "\(visit.name) missed: its window closed \(calendar.dayText(end)) with no data, and a later visit has data"))
            default:
                continue
            }
        }
        return found
    }
}
