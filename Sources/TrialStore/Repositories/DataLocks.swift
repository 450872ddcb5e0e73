import Crypto
import FluentKit
import FluentSQL
import Foundation
import TrialDomain

/// A write refused by a freeze or lock. Thrown inside the write, so nothing of it is kept; `Store.write` then
/// records the attempt in the audit trail on its own.
public struct LockRefusal: Error, Equatable, Sendable, CustomStringConvertible {
    public var lock: DataLock
    public var target: WriteTarget
    public var actor: String
    /// What was attempted, as the audit event names it.
    public var attempted: String

    public var description: String { "lock: \(WriteGuard.rule(for: lock))" }
}

/// Reads the locks a write may fall under and applies TrialDomain's `WriteGuard`. Every write path calls it inside
/// its transaction, so a lock taken by another process before the commit is seen.
enum LockCheck {
    static func require(_ target: WriteTarget, kind: WriteKind, actor: String, attempted: String, on db: any Database) async throws {
        let locks = try await candidates(target, on: db)
        guard !locks.isEmpty else { return }
        if let lock = WriteGuard.refusing(target, kind: kind, locks: locks) {
            throw LockRefusal(lock: lock, target: target, actor: actor, attempted: attempted)
        }
    }

    /// The locks of the whole study, the target's site and its participant: every lock that could cover it.
    static func candidates(_ target: WriteTarget, on db: any Database) async throws -> [DataLock] {
        try await (db as! any SQLDatabase).raw("""
            SELECT id, kind, level, site_id, participant_id, visit_code, form_code, reason, locked_by, locked_at, dataset_hash FROM data_locks
            WHERE level = 'study' OR site_id = \(bind: target.siteID) OR participant_id = \(bind: target.participantID)
            ORDER BY locked_at
            """).all().map(lock)
    }

    static func lock(_ row: any SQLRow) throws -> DataLock {
        let kind = try row.decode(column: "kind", as: String.self), level = try row.decode(column: "level", as: String.self)
        guard let k = LockKind(rawValue: kind), let l = LockLevel(rawValue: level) else {
            throw StoreError.invalid(field: "lock", rule: "unknown kind '\(kind)' or level '\(level)'")
        }
        return DataLock(
            id: try row.decode(column: "id", as: UUID.self), kind: k, level: l, siteID: try row.decode(column: "site_id", as: UUID?.self),
            participantID: try row.decode(column: "participant_id", as: UUID?.self), visit: try row.decode(column: "visit_code", as: String?.self),
            form: try row.decode(column: "form_code", as: String?.self), reason: try row.decode(column: "reason", as: String.self),
            lockedBy: try row.decode(column: "locked_by", as: String.self), lockedAt: try row.decode(column: "locked_at", as: Date.self),
            datasetHash: try row.decode(column: "dataset_hash", as: String?.self))
    }
}

extension Store {
    /// Writes the refused attempt into the audit trail, in a write of its own (the refused one was rolled back).
    func auditRefusal(_ refusal: LockRefusal) async {
        let now = Date()
        let body: @Sendable (any Database) async throws -> Bool = { tx in
            try await AuditChain.append(
                on: tx, actor: refusal.actor, action: .update, entity: "write_refused", entityID: refusal.lock.id.uuidString,
                siteID: refusal.target.siteID?.uuidString, reason: WriteGuard.rule(for: refusal.lock),
                changes: [
                    .init(field: "attempted", old: nil, new: refusal.attempted),
                    .init(field: "participant", old: nil, new: refusal.target.participantID?.uuidString),
                    .init(field: "visit", old: nil, new: refusal.target.visit), .init(field: "form", old: nil, new: refusal.target.form),
                ], now: now)
            return true
        }
        _ = await writeInOrderUnaudited([body])
    }
}

public struct LockInput: Sendable {
    public var kind: LockKind
    public var level: LockLevel
    public var siteCode: String?
    public var participantID: UUID?
    public var visit: String?
    public var form: String?
    public var reason: String

    public init(kind: LockKind, level: LockLevel, siteCode: String? = nil, participantID: UUID? = nil, visit: String? = nil, form: String? = nil, reason: String) {
        self.kind = kind
        self.level = level
        self.siteCode = siteCode
        self.participantID = participantID
        self.visit = visit
        self.form = form
        self.reason = reason
    }
}

/// Freezes and locks, taken and lifted by a data manager with a reason. A study lock records the SHA-256 of the
/// locked dataset in the audit chain, so any later change to it is provable.
public struct FluentLockRepository: Sendable {
    let store: Store
    public init(store: Store) { self.store = store }

    public func locks(scope: AccessScope) async throws -> [DataLock] {
        let all = try await (store.database as! any SQLDatabase).raw("""
            SELECT id, kind, level, site_id, participant_id, visit_code, form_code, reason, locked_by, locked_at, dataset_hash
            FROM data_locks ORDER BY locked_at
            """).all().map(LockCheck.lock)
        // A site's staff see the study's locks and those of their sites; participants' locks carry their site below.
        var siteOfParticipant: [UUID: UUID] = [:]
        let ids = Set(all.compactMap(\.participantID))
        if !ids.isEmpty {
            for row in try await (store.database as! any SQLDatabase).raw("SELECT id, site_id FROM participants WHERE id IN (\(binds: Array(ids)))").all() {
                siteOfParticipant[try row.decode(column: "id", as: UUID.self)] = try row.decode(column: "site_id", as: UUID.self)
            }
        }
        return all.filter { lock in
            switch lock.level {
            case .study: true
            case .site: lock.siteID.map(scope.siteIDs.contains) ?? false
            default: lock.participantID.flatMap { siteOfParticipant[$0] }.map(scope.siteIDs.contains) ?? false
            }
        }
    }

    public func lock(_ input: LockInput, scope: AccessScope, now: Date) async throws -> DataLock {
        guard scope.role == .dataManager else {
            throw StoreError.forbidden(rule: "only a data manager freezes or locks data (your role: \(scope.role?.rawValue ?? "none"))")
        }
        let reason = input.reason.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !reason.isEmpty else { throw StoreError.reasonRequired(field: "reason") }
        guard reason.count <= 2_000 else { throw StoreError.invalid(field: "reason", rule: "must be at most 2000 characters") }
        return try await store.write { tx in
            let sql = tx as! any SQLDatabase
            var siteID: UUID?
            if let code = input.siteCode {
                guard let row = try await sql.raw("SELECT id FROM sites WHERE code = \(bind: code)").first() else { throw StoreError.notFound(entity: "site", id: code) }
                siteID = try row.decode(column: "id", as: UUID.self)
                guard scope.siteIDs.contains(siteID!) else { throw StoreError.notFound(entity: "site", id: code) }
            }
            var participantSite: UUID?
            if let participantID = input.participantID {
                let file = try await FluentScreeningRepository.file(participantID: participantID, scope: scope, on: tx)
                participantSite = file.participant.siteID
                if let visit = input.visit, file.study.visit(visit) == nil { throw StoreError.invalid(field: "visit", rule: "names unknown visit '\(visit)'") }
                if let form = input.form {
                    guard let definition = file.study.form(form) else { throw StoreError.invalid(field: "form", rule: "names unknown form '\(form)'") }
                    if let visit = input.visit, !definition.visits.contains(visit) {
                        throw StoreError.invalid(field: "form", rule: "form '\(form)' is not collected at visit '\(visit)'")
                    }
                }
            }
            var lock = DataLock(
                id: UUID.timeOrdered(), kind: input.kind, level: input.level, siteID: input.level == .site ? siteID : nil,
                participantID: input.participantID, visit: input.visit, form: input.form, reason: reason, lockedBy: scope.actor, lockedAt: now)
            do { try lock.checkShape() } catch let error as QueryTargetError { throw StoreError.invalid(field: error.field, rule: error.rule) }
            // The same place locked twice would need two unlocks; the stronger one stays.
            let existing = try await LockCheck.candidates(WriteTarget(siteID: lock.siteID ?? participantSite, participantID: lock.participantID), on: tx)
            if let same = existing.first(where: { $0.level == lock.level && $0.siteID == lock.siteID && $0.participantID == lock.participantID && $0.visit == lock.visit && $0.form == lock.form }) {
                throw StoreError.conflict(field: "lock", rule: "\(same.title) is already \(same.kind == .lock ? "locked" : "frozen") (id \(same.id))")
            }
            if lock.level == .study, lock.kind == .lock { lock.datasetHash = try await Self.datasetHash(on: sql) }
            try await sql.raw("""
                INSERT INTO data_locks (id, kind, level, site_id, participant_id, visit_code, form_code, reason, locked_by, locked_at, dataset_hash)
                VALUES (\(bind: lock.id), \(bind: lock.kind.rawValue), \(bind: lock.level.rawValue), \(bind: lock.siteID), \(bind: lock.participantID),
                \(bind: lock.visit), \(bind: lock.form), \(bind: reason), \(bind: scope.actor), \(bind: now), \(bind: lock.datasetHash))
                """).run()
            try await AuditChain.append(
                on: tx, actor: scope.actor, action: .create, entity: "data_lock", entityID: lock.id.uuidString,
                siteID: (lock.siteID ?? participantSite)?.uuidString, reason: reason,
                changes: [
                    .init(field: "kind", old: nil, new: lock.kind.rawValue), .init(field: "level", old: nil, new: lock.level.rawValue),
                    .init(field: "participant", old: nil, new: lock.participantID?.uuidString), .init(field: "visit", old: nil, new: lock.visit),
                    .init(field: "form", old: nil, new: lock.form), .init(field: "dataset_sha256", old: nil, new: lock.datasetHash),
                ], now: now)
            return lock
        }
    }

    public func unlock(id: UUID, reason: String, scope: AccessScope, now: Date) async throws {
        guard scope.role == .dataManager else {
            throw StoreError.forbidden(rule: "only a data manager lifts a freeze or lock (your role: \(scope.role?.rawValue ?? "none"))")
        }
        let reason = reason.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !reason.isEmpty else { throw StoreError.reasonRequired(field: "reason") }
        guard reason.count <= 2_000 else { throw StoreError.invalid(field: "reason", rule: "must be at most 2000 characters") }
        try await store.write { tx in
            let sql = tx as! any SQLDatabase
            guard let row = try await sql.raw("""
                SELECT id, kind, level, site_id, participant_id, visit_code, form_code, reason, locked_by, locked_at, dataset_hash FROM data_locks WHERE id = \(bind: id)
                """).first() else { throw StoreError.notFound(entity: "lock", id: id.uuidString) }
            let lock = try LockCheck.lock(row)
            var site = lock.siteID
            if let participantID = lock.participantID {
                site = try await sql.raw("SELECT site_id FROM participants WHERE id = \(bind: participantID)").first()?.decode(column: "site_id", as: UUID.self)
            }
            if let site, !scope.siteIDs.contains(site) { throw StoreError.notFound(entity: "lock", id: id.uuidString) }
            try await sql.raw("DELETE FROM data_locks WHERE id = \(bind: id)").run()
            try await AuditChain.append(
                on: tx, actor: scope.actor, action: .delete, entity: "data_lock", entityID: id.uuidString, siteID: site?.uuidString, reason: reason,
                changes: [.init(field: "kind", old: lock.kind.rawValue, new: nil), .init(field: "level", old: lock.level.rawValue, new: nil)], now: now)
        }
    }

    /// SHA-256 over the clinical rows in a fixed order: participants, forms, labs, adverse events, consents, doses and
    /// allocations, each row's columns as text. Recomputed later, a different hash proves a change after the lock.
    public func datasetHash() async throws -> String {
        try await Self.datasetHash(on: store.database as! any SQLDatabase)
    }

    static let hashedTables: [(table: String, order: String)] = [
        ("participants", "id"), ("form_records", "id"), ("lab_results", "id"), ("adverse_events", "id"), ("consents", "id"), ("doses", "id"),
        ("randomization_slots", "id"),
    ]

    static func datasetHash(on sql: any SQLDatabase) async throws -> String {
        var hasher = SHA256()
        for (table, order) in hashedTables {
            hasher.update(data: Data("\u{1}\(table)".utf8))
            let rows = try await sql.raw("SELECT * FROM \(ident: table) ORDER BY \(ident: order)").all()
            for row in rows {
                hasher.update(data: Data("\u{2}".utf8))
                for column in row.allColumns.sorted() where column != "revision" {
                    let text = Self.text(row, column)
                    hasher.update(data: Data("\u{3}\(column)=\(text)".utf8))
                }
            }
        }
        return hasher.finalize().map { String(format: "%02x", $0) }.joined()
    }

    /// A column's value as text, whatever its type; NULL as the empty marker.
    static func text(_ row: any SQLRow, _ column: String) -> String {
        if (try? row.decodeNil(column: column)) == true { return "\u{0}" }
        if let value = try? row.decode(column: column, as: String.self) { return value }
        if let value = try? row.decode(column: column, as: Int64.self) { return String(value) }
        if let value = try? row.decode(column: column, as: Double.self) { return String(value) }
        if let value = try? row.decode(column: column, as: Bool.self) { return String(value) }
        if let value = try? row.decode(column: column, as: UUID.self) { return value.uuidString }
        if let value = try? row.decode(column: column, as: Date.self) { return String(value.timeIntervalSince1970) }
        return "?"
    }
}
