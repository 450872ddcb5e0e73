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
    public init(actor: String, siteIDs: Set<UUID>) {
        self.actor = actor
        self.siteIDs = siteIDs
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
            if try await sql.raw("SELECT id FROM participants WHERE site_id = \(bind: siteID) AND screening_number = \(bind: number)").first() != nil {
                throw StoreError.duplicate(field: "screeningNumber", value: number)
            }
            let participant = Participant(id: UUID.timeOrdered(), siteID: siteID, screeningNumber: number, status: .screening, createdAt: now, updatedAt: now)
            try await sql.raw("""
                INSERT INTO participants (id, site_id, screening_number, status, created_at, updated_at)
                VALUES (\(bind: participant.id), \(bind: siteID), \(bind: number), \(bind: participant.status.rawValue), \(bind: now), \(bind: now))
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

    public func find(id: UUID, scope: AccessScope) async throws -> Participant {
        try Self.participant(try await Self.model(id: id, scope: scope, on: store.database))
    }

    public func updateStatus(
        id: UUID, status: ParticipantStatus, reason: String?, scope: AccessScope, now: Date
    ) async throws -> Participant {
        try await store.write { tx in
            let model = try await Self.model(id: id, scope: scope, on: tx)
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
