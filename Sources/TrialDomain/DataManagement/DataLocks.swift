import Foundation

/// How much a lock covers, from the whole study down to one form at one visit.
public enum LockLevel: String, Codable, Sendable, CaseIterable {
    case study, site, participant, visit, form
}

/// A freeze stops data entry but lets review go on (queries, verification, signatures); a lock stops both.
public enum LockKind: String, Codable, Sendable, CaseIterable {
    case freeze, lock
}

/// What a write changes: clinical data, or its review (queries, verification, signatures).
public enum WriteKind: Sendable {
    case data, review
}

public struct DataLock: Codable, Equatable, Sendable {
    public var id: UUID
    public var kind: LockKind
    public var level: LockLevel
    public var siteID: UUID?
    public var participantID: UUID?
    public var visit: String?
    public var form: String?
    public var reason: String
    public var lockedBy: String
    public var lockedAt: Date
    /// For a study lock: the SHA-256 of the locked dataset, also written into the audit chain.
    public var datasetHash: String?

    public init(
        id: UUID, kind: LockKind, level: LockLevel, siteID: UUID? = nil, participantID: UUID? = nil, visit: String? = nil, form: String? = nil,
        reason: String, lockedBy: String, lockedAt: Date, datasetHash: String? = nil
    ) {
        self.id = id
        self.kind = kind
        self.level = level
        self.siteID = siteID
        self.participantID = participantID
        self.visit = visit
        self.form = form
        self.reason = reason
        self.lockedBy = lockedBy
        self.lockedAt = lockedAt
        self.datasetHash = datasetHash
    }

    /// Whether the lock's level has exactly the parts it needs.
    public func checkShape() throws {
        func need(_ present: Bool, _ field: String, _ rule: String) throws {
            guard present else { throw QueryTargetError(field, rule) }
        }
        switch level {
        case .study:
            try need(siteID == nil && participantID == nil && visit == nil && form == nil, "level", "a study lock names no site, participant, visit or form")
        case .site:
            try need(siteID != nil, "site", "is required for a site lock")
            try need(participantID == nil && visit == nil && form == nil, "level", "a site lock names no participant, visit or form")
        case .participant:
            try need(participantID != nil, "participant", "is required for a participant lock")
            try need(visit == nil && form == nil, "level", "a participant lock names no visit or form")
        case .visit:
            try need(participantID != nil && visit != nil, "visit", "a visit lock needs a participant and a visit")
            try need(form == nil, "level", "a visit lock names no form")
        case .form:
            try need(participantID != nil && visit != nil && form != nil, "form", "a form lock needs a participant, a visit and a form")
        }
    }

    /// Whether this lock covers a write to that place.
    public func covers(_ target: WriteTarget) -> Bool {
        switch level {
        case .study: true
        case .site: target.siteID == siteID
        case .participant: target.participantID == participantID
        case .visit: target.participantID == participantID && target.visit == visit
        case .form: target.participantID == participantID && target.visit == visit && target.form == form
        }
    }

    public var title: String {
        switch level {
        case .study: "the study"
        case .site: "the site"
        case .participant: "the participant"
        case .visit: "visit \(visit ?? "")"
        case .form: "form \(form ?? "") at visit \(visit ?? "")"
        }
    }
}

/// Where a write goes. A write of several forms names each; a lab result names its visit and no form.
public struct WriteTarget: Equatable, Sendable {
    public var siteID: UUID?
    public var participantID: UUID?
    public var visit: String?
    public var form: String?

    public init(siteID: UUID?, participantID: UUID? = nil, visit: String? = nil, form: String? = nil) {
        self.siteID = siteID
        self.participantID = participantID
        self.visit = visit
        self.form = form
    }
}

/// The one check every write path makes before it changes anything (21 CFR 11.10(d), (f): limiting changes to locked
/// records, and enforcing the permitted sequence of steps).
public enum WriteGuard {
    /// The lock that refuses this write, if any: a lock refuses every write it covers, a freeze only data writes.
    public static func refusing(_ target: WriteTarget, kind: WriteKind, locks: [DataLock]) -> DataLock? {
        locks.first { lock in
            (lock.kind == .lock || kind == .data) && lock.covers(target)
        }
    }

    public static func rule(for lock: DataLock) -> String {
        "\(lock.title) is \(lock.kind == .lock ? "locked" : "frozen") (by \(lock.lockedBy): \(lock.reason)); a data manager must unlock it first"
    }
}
