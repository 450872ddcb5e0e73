import Foundation

/// The clock of a serious adverse event's follow-up: each follow-up report may set when the next is due (as the
/// sponsor asks, or the site commits to); the latest report's due time is the one that runs.
public struct FollowUpClock: Equatable, Sendable {
    public var lastSubmittedAt: Date?
    public var nextDueAt: Date?

    public init(lastSubmittedAt: Date?, nextDueAt: Date?) {
        self.lastSubmittedAt = lastSubmittedAt
        self.nextDueAt = nextDueAt
    }

    public func isOverdue(now: Date) -> Bool { nextDueAt.map { now > $0 } ?? false }
}
