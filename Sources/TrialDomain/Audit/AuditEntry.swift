import Foundation

/// One changed field inside an audit event. Values are text so the hash input is exact.
public struct FieldChange: Codable, Equatable, Sendable {
    public var field: String
    public var old: String?
    public var new: String?

    public init(field: String, old: String?, new: String?) {
        self.field = field
        self.old = old
        self.new = new
    }
}

public enum AuditAction: String, Codable, Sendable, CaseIterable {
    case create, update, delete
}

/// The content of one audit event, as hashed into the chain.
public struct AuditEntry: Codable, Equatable, Sendable {
    public var sequence: Int64
    public var occurredAt: String
    public var actor: String
    public var action: AuditAction
    public var entity: String
    public var entityID: String
    public var siteID: String?
    public var reason: String?
    public var changes: [FieldChange]
    public var previousHash: String

    public init(
        sequence: Int64, occurredAt: String, actor: String, action: AuditAction, entity: String,
        entityID: String, siteID: String?, reason: String?, changes: [FieldChange], previousHash: String
    ) {
        self.sequence = sequence
        self.occurredAt = occurredAt
        self.actor = actor
        self.action = action
        self.entity = entity
        self.entityID = entityID
        self.siteID = siteID
        self.reason = reason
        self.changes = changes
        self.previousHash = previousHash
    }

    /// The hash of the first event's predecessor.
    public static let genesisHash = String(repeating: "0", count: 64)

    /// Deterministic bytes for hashing: sorted-key JSON with every optional written out.
    public func canonicalBytes() -> Data {
        var object: [String: Any] = [
            "sequence": sequence, "occurredAt": occurredAt, "actor": actor, "action": action.rawValue,
            "entity": entity, "entityID": entityID, "siteID": siteID ?? NSNull(), "reason": reason ?? NSNull(),
            "previousHash": previousHash,
        ]
        object["changes"] = changes.map { ["field": $0.field, "old": $0.old ?? NSNull(), "new": $0.new ?? NSNull()] as [String: Any] }
        // JSONSerialization with sortedKeys is stable for strings, integers and null.
        return (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
    }

    /// UTC, millisecond precision, fixed width: the form stored and hashed.
    public static func timestamp(_ date: Date) -> String {
        let millis = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        let seconds = Date(timeIntervalSince1970: TimeInterval(millis / 1000))
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: seconds)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", c.year!, c.month!, c.day!, c.hour!, c.minute!, c.second!,
            Int(millis % 1000))
    }
}

/// Why a change cannot be audited as asked.
public enum AuditRuleError: Error, Equatable, Sendable {
    /// Any change after a record's first save needs a reason.
    case reasonRequired(entity: String, field: String)
}

public enum AuditRules {
    /// A reason is required for every update or delete; creates may omit it.
    public static func checkReason(_ reason: String?, action: AuditAction, entity: String, changes: [FieldChange]) throws {
        guard action != .create else { return }
        if (reason ?? "").trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            throw AuditRuleError.reasonRequired(entity: entity, field: changes.first?.field ?? "reason")
        }
    }
}
