import Crypto
import FluentKit
import FluentSQL
import Foundation
import TrialDomain

/// The tamper-evident audit trail: each event's SHA-256 covers its content and the previous hash.
public enum AuditChain {
    public static let genesis = AuditEntry.genesisHash

    public static func sha256Hex(_ text: String) -> String { hex(SHA256.hash(data: Data(text.utf8))) }

    public static func hash(_ entry: AuditEntry) -> String { hex(SHA256.hash(data: entry.canonicalBytes())) }

    /// Lower-case hex without `String(format:)`, which costs more than the hash itself on Linux.
    public static func hex(_ digest: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(64)
        for byte in digest {
            bytes.append(digits[Int(byte >> 4)])
            bytes.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends one event. Call inside the transaction that makes the change.
    @discardableResult
    public static func append(
        on database: any Database, actor: String, action: AuditAction, entity: String, entityID: String,
        siteID: String?, reason: String?, changes: [FieldChange], now: Date
    ) async throws -> AuditEntry {
        do {
            try AuditRules.checkReason(reason, action: action, entity: entity, changes: changes)
        } catch AuditRuleError.reasonRequired(_, let field) {
            throw StoreError.reasonRequired(field: field)
        }
        let sql = database as! any SQLDatabase
        // Taking the head row first serialises appends: a row lock on PostgreSQL, the write lock on SQLite.
        try await sql.raw("UPDATE audit_head SET sequence = sequence + 1 WHERE id = 1").run()
        guard let head = try await sql.raw("SELECT sequence, hash FROM audit_head WHERE id = 1").first() else {
            throw StoreError.notFound(entity: "audit_head", id: "1")
        }
        let entry = AuditEntry(
            sequence: try head.decode(column: "sequence", as: Int64.self),
            occurredAt: AuditEntry.timestamp(now), actor: actor, action: action, entity: entity, entityID: entityID,
            siteID: siteID, reason: reason?.trimmingCharacters(in: .whitespacesAndNewlines), changes: changes,
            previousHash: try head.decode(column: "hash", as: String.self))
        let digest = hash(entry)
        let changesJSON = String(decoding: try JSONEncoder.sorted.encode(entry.changes), as: UTF8.self)
        try await sql.insert(into: AuditEventModel.schema)
            .columns(
                "sequence", "occurred_at", "actor", "action", "entity", "entity_id", "site_id", "reason", "changes",
                "previous_hash", "hash"
            )
            .values(
                SQLBind(entry.sequence), SQLBind(entry.occurredAt), SQLBind(entry.actor), SQLBind(entry.action.rawValue),
                SQLBind(entry.entity), SQLBind(entry.entityID), SQLBind(entry.siteID), SQLBind(entry.reason),
                SQLBind(changesJSON), SQLBind(entry.previousHash), SQLBind(digest)
            )
            .run()
        try await sql.raw("UPDATE audit_head SET hash = \(bind: digest) WHERE id = 1").run()
        return entry
    }

    /// Recomputes the chain from the first event. Stops at the first event that does not hold.
    public static func verify(on database: any Database, pageSize: Int = 10_000) async throws -> AuditVerification {
        let sql = database as! any SQLDatabase
        var expectedSequence: Int64 = 1
        var previous = genesis
        var checked = 0
        while true {
            let rows = try await sql.raw(
                """
                SELECT sequence, occurred_at, actor, action, entity, entity_id, site_id, reason, changes, previous_hash, hash
                FROM audit_events WHERE sequence >= \(bind: expectedSequence) ORDER BY sequence LIMIT \(unsafeRaw: String(pageSize))
                """
            ).all()
            if rows.isEmpty { break }
            for row in rows {
                let sequence = try row.decode(column: "sequence", as: Int64.self)
                if sequence != expectedSequence {
                    return .init(checked: checked, broken: .init(sequence: expectedSequence, problem: "event is missing"))
                }
                guard let entry = try? decodeEntry(row), let stored = try? row.decode(column: "hash", as: String.self) else {
                    return .init(checked: checked, broken: .init(sequence: sequence, problem: "event cannot be read"))
                }
                if entry.previousHash != previous {
                    return .init(checked: checked, broken: .init(sequence: sequence, problem: "previous hash does not match event \(sequence - 1)"))
                }
                if hash(entry) != stored {
                    return .init(checked: checked, broken: .init(sequence: sequence, problem: "content does not match its hash"))
                }
                previous = stored
                expectedSequence += 1
                checked += 1
            }
        }
        guard let head = try await sql.raw("SELECT sequence, hash FROM audit_head WHERE id = 1").first() else {
            return .init(checked: checked, broken: .init(sequence: 0, problem: "chain head is missing"))
        }
        let headSequence = try head.decode(column: "sequence", as: Int64.self)
        let headHash = try head.decode(column: "hash", as: String.self)
        if headSequence != expectedSequence - 1 || headHash != previous {
            return .init(checked: checked, broken: .init(sequence: expectedSequence, problem: "events after \(expectedSequence - 1) are missing (chain head is at \(headSequence))"))
        }
        return .init(checked: checked, broken: nil)
    }

    /// The events about one record, oldest first.
    public static func history(on database: any Database, entity: String, entityID: String) async throws -> [AuditEntry] {
        let sql = database as! any SQLDatabase
        return try await sql.raw(
            """
            SELECT sequence, occurred_at, actor, action, entity, entity_id, site_id, reason, changes, previous_hash
            FROM audit_events WHERE entity = \(bind: entity) AND entity_id = \(bind: entityID) ORDER BY sequence
            """
        ).all().map(decodeEntry)
    }

    static func decodeEntry(_ row: any SQLRow) throws -> AuditEntry {
        let changes = try JSONDecoder().decode([FieldChange].self, from: Data(try row.decode(column: "changes", as: String.self).utf8))
        guard let action = AuditAction(rawValue: try row.decode(column: "action", as: String.self)) else {
            throw StoreError.invalid(field: "action", rule: "unknown audit action")
        }
        return AuditEntry(
            sequence: try row.decode(column: "sequence", as: Int64.self),
            occurredAt: try row.decode(column: "occurred_at", as: String.self),
            actor: try row.decode(column: "actor", as: String.self), action: action,
            entity: try row.decode(column: "entity", as: String.self),
            entityID: try row.decode(column: "entity_id", as: String.self),
            siteID: try row.decode(column: "site_id", as: String?.self),
            reason: try row.decode(column: "reason", as: String?.self), changes: changes,
            previousHash: try row.decode(column: "previous_hash", as: String.self))
    }
}

public struct AuditVerification: Sendable, Equatable {
    public struct Broken: Sendable, Equatable {
        public var sequence: Int64
        public var problem: String
    }
    public var checked: Int
    public var broken: Broken?
    public var isIntact: Bool { broken == nil }
}

extension JSONEncoder {
    static var sorted: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return encoder
    }
}
