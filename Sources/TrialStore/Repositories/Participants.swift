import FluentKit
import FluentSQL
import Foundation
import TrialDomain

public struct Participant: Sendable, Equatable, Codable {
    public var id: UUID
    public var siteID: UUID
    public var screeningNumber: String
    public var status: ParticipantStatus
    public var createdAt: Date
    public var updatedAt: Date
}

/// Who is asking and which sites they may reach. Every participant query goes through one.
public struct AccessScope: Sendable, Equatable {
    public var actor: String
    public var siteIDs: Set<UUID>
    /// The actor's role, for rules that depend on it (who answers or closes a query); nil for the system's own writes.
    public var role: Role?
    public init(actor: String, siteIDs: Set<UUID>, role: Role? = nil) {
        self.actor = actor
        self.siteIDs = siteIDs
        self.role = role
    }

    /// The sites as SQL binds for `IN (...)`, in a stable order.
    var siteBinds: [any Encodable & Sendable] { siteIDs.sorted { $0.uuidString < $1.uuidString } }
}

public struct ParticipantPage: Sendable, Equatable {
    public var items: [Participant]
    /// The cursor of the next page; nil on the last.
    public var next: String?
}

/// A page boundary: the last row's screening number and id, base64url so that clients treat it as opaque.
enum ParticipantCursor {
    static func encode(number: String, id: UUID) -> String { Cursor.encode("\(id.uuidString)|\(number)") }

    static func decode(_ text: String) throws -> (number: String, id: UUID) {
        let plain = try Cursor.decode(text)
        guard let bar = plain.firstIndex(of: "|"), let id = UUID(uuidString: String(plain[..<bar])) else { throw Cursor.invalid }
        return (String(plain[plain.index(after: bar)...]), id)
    }
}

/// Page cursors as base64url text, so clients treat them as opaque.
enum Cursor {
    static let invalid = StoreError.invalid(field: "after", rule: "is not a cursor this list gave")

    static func encode(_ plain: String) -> String {
        Data(plain.utf8).base64EncodedString()
            .replacingOccurrences(of: "+", with: "-").replacingOccurrences(of: "/", with: "_").replacingOccurrences(of: "=", with: "")
    }

    static func decode(_ text: String) throws -> String {
        var base64 = text.replacingOccurrences(of: "-", with: "+").replacingOccurrences(of: "_", with: "/")
        base64 += String(repeating: "=", count: (4 - base64.count % 4) % 4)
        guard let data = Data(base64Encoded: base64), let plain = String(data: data, encoding: .utf8) else { throw invalid }
        return plain
    }
}

/// Participants, always seen through an `AccessScope`: a participant of another site is "not found".
public protocol ParticipantRepository: Sendable {
    func create(siteID: UUID, screeningNumber: String, scope: AccessScope, now: Date) async throws -> Participant
    func list(scope: AccessScope) async throws -> [Participant]
    func find(id: UUID, scope: AccessScope) async throws -> Participant
    func updateStatus(id: UUID, status: ParticipantStatus, reason: String?, scope: AccessScope, now: Date) async throws -> Participant
    func delete(id: UUID, reason: String?, scope: AccessScope, now: Date) async throws
    func history(id: UUID, scope: AccessScope) async throws -> [AuditEntry]
}

public struct FluentParticipantRepository: ParticipantRepository {
    let store: Store
    public init(store: Store) { self.store = store }

    public func create(siteID: UUID, screeningNumber: String, scope: AccessScope, now: Date) async throws -> Participant {
        let number = screeningNumber.trimmingCharacters(in: .whitespaces)
        if let problem = ScreeningNumber.validate(number) { throw StoreError.invalid(field: "screeningNumber", rule: problem) }
        guard scope.siteIDs.contains(siteID) else { throw StoreError.notFound(entity: "site", id: siteID.uuidString) }
        return try await store.write { tx in
            let sql = tx as! any SQLDatabase
            try await LockCheck.require(WriteTarget(siteID: siteID), kind: .data, actor: scope.actor, attempted: "participant registration", on: tx)
            let study = try await FluentStudyRepository.current(on: tx)?.study
            if let study { try FluentStudyRepository.requireRecruiting(study, to: "participants are enrolled") }
            if try await sql.raw("SELECT id FROM participants WHERE site_id = \(bind: siteID) AND screening_number = \(bind: number)").first() != nil {
                throw StoreError.duplicate(field: "screeningNumber", value: number)
            }
            let participant = Participant(id: UUID.timeOrdered(), siteID: siteID, screeningNumber: number, status: .screening, createdAt: now, updatedAt: now)
            try await sql.raw("""
                INSERT INTO participants (id, site_id, screening_number, status, created_at, updated_at, study_version)
                VALUES (\(bind: participant.id), \(bind: siteID), \(bind: number), \(bind: participant.status.rawValue), \(bind: now), \(bind: now), \(bind: study?.version))
                """).run()
            try await AuditChain.append(
                on: tx, actor: scope.actor, action: .create, entity: "participant", entityID: participant.id.uuidString,
                siteID: siteID.uuidString, reason: nil,
                changes: [
                    .init(field: "screeningNumber", old: nil, new: number),
                    .init(field: "status", old: nil, new: participant.status.rawValue),
                ], now: now)
            return participant
        }
    }

    public func list(scope: AccessScope) async throws -> [Participant] {
        guard !scope.siteIDs.isEmpty else { return [] }
        return try await ParticipantModel.query(on: store.database)
            .filter(\.$siteID ~~ Array(scope.siteIDs)).filter(\.$deletedAt == nil)
            .sort(\.$screeningNumber).all().map(Self.participant)
    }

    /// One page of the list in screening-number order. `after` is the cursor the previous page gave; the answer's
    /// `next` is nil on the last page. Each page is one indexed query, however long the list.
    public func page(scope: AccessScope, limit: Int, after: String?) async throws -> ParticipantPage {
        guard !scope.siteIDs.isEmpty else { return ParticipantPage(items: [], next: nil) }
        let position = try after.map(ParticipantCursor.decode)
        let sites = scope.siteBinds
        let sql = store.database as! any SQLDatabase
        var query: SQLQueryString = """
            SELECT id, site_id, screening_number, status, created_at, updated_at FROM participants
            WHERE deleted_at IS NULL AND site_id IN (\(binds: sites))
            """
        if let position {
            query.appendInterpolation(unsafeRaw: " AND (screening_number > ")
            query.appendInterpolation(bind: position.number)
            query.appendInterpolation(unsafeRaw: " OR (screening_number = ")
            query.appendInterpolation(bind: position.number)
            query.appendInterpolation(unsafeRaw: " AND id > ")
            query.appendInterpolation(bind: position.id)
            query.appendInterpolation(unsafeRaw: "))")
        }
        query.appendInterpolation(unsafeRaw: " ORDER BY screening_number, id LIMIT \(limit + 1)")
        let rows = try await sql.raw(query).all()
        var items: [Participant] = []
        for row in rows.prefix(limit) {
            let statusText = try row.decode(column: "status", as: String.self)
            guard let status = ParticipantStatus(rawValue: statusText) else { throw StoreError.invalid(field: "status", rule: "unknown status '\(statusText)'") }
            items.append(
                Participant(
                    id: try row.decode(column: "id", as: UUID.self), siteID: try row.decode(column: "site_id", as: UUID.self),
                    screeningNumber: try row.decode(column: "screening_number", as: String.self), status: status,
                    createdAt: try row.decode(column: "created_at", as: Date.self), updatedAt: try row.decode(column: "updated_at", as: Date.self)))
        }
        let next = rows.count > limit ? items.last.map { ParticipantCursor.encode(number: $0.screeningNumber, id: $0.id) } : nil
        return ParticipantPage(items: items, next: next)
    }

    /// Participants per site, for the scope's sites, in one grouped query.
    public func counts(scope: AccessScope) async throws -> [UUID: Int] {
        guard !scope.siteIDs.isEmpty else { return [:] }
        let sites = scope.siteBinds
        var counts: [UUID: Int] = [:]
        for row in try await (store.database as! any SQLDatabase).raw("""
            SELECT site_id, COUNT(*) AS n FROM participants WHERE deleted_at IS NULL AND site_id IN (\(binds: sites)) GROUP BY site_id
            """).all()
        {
            counts[try row.decode(column: "site_id", as: UUID.self)] = try row.decode(column: "n", as: Int.self)
        }
        return counts
    }

    public func find(id: UUID, scope: AccessScope) async throws -> Participant {
        try Self.participant(try await Self.model(id: id, scope: scope, on: store.database))
    }

    public func updateStatus(
        id: UUID, status: ParticipantStatus, reason: String?, scope: AccessScope, now: Date
    ) async throws -> Participant {
        try await store.write { tx in
            let model = try await Self.model(id: id, scope: scope, on: tx)
            try await LockCheck.require(WriteTarget(siteID: model.siteID, participantID: id), kind: .data, actor: scope.actor, attempted: "status change", on: tx)
            let old = model.status
            guard old != status.rawValue else { return try Self.participant(model) }
            model.status = status.rawValue
            model.updatedAt = now
            // The audit append checks the reason before anything is saved.
            try await AuditChain.append(
                on: tx, actor: scope.actor, action: .update, entity: "participant", entityID: id.uuidString,
                siteID: model.siteID.uuidString, reason: reason, changes: [.init(field: "status", old: old, new: status.rawValue)],
                now: now)
            try await model.save(on: tx)
            try await ParticipantRevision.bump(id, on: tx)
            return try Self.participant(model)
        }
    }

    /// Clinical records are never erased: a delete marks the row and the audit trail keeps why.
    public func delete(id: UUID, reason: String?, scope: AccessScope, now: Date) async throws {
        try await store.write { tx in
            let model = try await Self.model(id: id, scope: scope, on: tx)
            let allocated = try await (tx as! any SQLDatabase).raw("SELECT id FROM randomization_slots WHERE participant_id = \(bind: id)").first() != nil
            try ParticipantRemoval.check(role: scope.role ?? .coordinator, allocated: allocated)
            try await LockCheck.require(WriteTarget(siteID: model.siteID, participantID: id), kind: .data, actor: scope.actor, attempted: "participant removal", on: tx)
            try await AuditChain.append(
                on: tx, actor: scope.actor, action: .delete, entity: "participant", entityID: id.uuidString,
                siteID: model.siteID.uuidString, reason: reason,
                changes: [.init(field: "screeningNumber", old: model.screeningNumber, new: nil)], now: now)
            model.deletedAt = now
            model.updatedAt = now
            try await model.save(on: tx)
        }
    }

    public func history(id: UUID, scope: AccessScope) async throws -> [AuditEntry] {
        // The record must be visible to the scope, deleted or not, before its history is.
        guard let model = try await ParticipantModel.find(id, on: store.database), scope.siteIDs.contains(model.siteID) else {
            throw StoreError.notFound(entity: "participant", id: id.uuidString)
        }
        return try await AuditChain.history(on: store.database, entity: "participant", entityID: id.uuidString)
    }

    /// Fails as `model` does, with one plain query: for reads that need only to know the participant is visible.
    static func requireVisible(id: UUID, scope: AccessScope, on db: any Database) async throws {
        guard let row = try await (db as! any SQLDatabase).raw("SELECT site_id FROM participants WHERE id = \(bind: id) AND deleted_at IS NULL").first(),
            scope.siteIDs.contains(try row.decode(column: "site_id", as: UUID.self))
        else { throw StoreError.notFound(entity: "participant", id: id.uuidString) }
    }

    static func model(id: UUID, scope: AccessScope, on db: any Database) async throws -> ParticipantModel {
        guard let model = try await ParticipantModel.find(id, on: db), model.deletedAt == nil, scope.siteIDs.contains(model.siteID)
        else { throw StoreError.notFound(entity: "participant", id: id.uuidString) }
        return model
    }

    static func participant(_ model: ParticipantModel) throws -> Participant {
        guard let status = ParticipantStatus(rawValue: model.status) else {
            throw StoreError.invalid(field: "status", rule: "unknown status '\(model.status)'")
        }
        return Participant(
            id: model.id!, siteID: model.siteID, screeningNumber: model.screeningNumber, status: status,
            createdAt: model.createdAt, updatedAt: model.updatedAt)
    }
}
