import FluentKit
import FluentSQL
import Foundation
import TrialDomain

/// One value of a participant's casebook as a monitor verifies it.
public struct VerificationItem: Codable, Equatable, Sendable {
    public var visit: String
    /// `form.field`, or `lab.TEST`.
    public var item: String
    public var value: String
    public var required: Bool
    public var state: VerificationState
    public var verifiedValue: String?
    public var verifiedBy: String?
    public var verifiedAt: Date?
}

public struct VerificationSummary: Codable, Equatable, Sendable {
    public var site: String
    public var required: Int
    public var verified: Int
    /// Verified once, changed since.
    public var changed: Int
    public var remaining: Int { required - verified }
}

/// Source data verification, per value: critical values for everyone, the rest for the study's sample of participants.
/// A verification keeps the value it saw, so a later change shows as "changed since verified" until verified again.
public struct FluentVerificationRepository: Sendable {
    let store: Store
    public init(store: Store) { self.store = store }

    public func items(participantID: UUID, scope: AccessScope) async throws -> [VerificationItem] {
        let file = try await FluentScreeningRepository.cachedFile(participantID: participantID, scope: scope, on: store.database)
        let sql = store.database as! any SQLDatabase
        let values = try await Self.values(participantID: participantID, on: sql)
        var latest: [String: (value: String, by: String, at: Date)] = [:]
        for row in try await sql.raw("""
            SELECT visit_code, item, verified_value, verified_by, verified_at FROM verifications WHERE participant_id = \(bind: participantID) ORDER BY verified_at
            """).all() {
            latest["\(try row.decode(column: "visit_code", as: String.self))/\(try row.decode(column: "item", as: String.self))"] = (
                try row.decode(column: "verified_value", as: String.self), try row.decode(column: "verified_by", as: String.self),
                try row.decode(column: "verified_at", as: Date.self))
        }
        let settings = file.study.dataManagement?.verification
        return values.map { v in
            let required = SourceVerification.required(item: v.item, participantID: participantID, settings: settings)
            let done = latest["\(v.visit)/\(v.item)"]
            return VerificationItem(
                visit: v.visit, item: v.item, value: v.value, required: required,
                state: SourceVerification.state(required: required, current: v.value, verified: done?.value), verifiedValue: done?.value,
                verifiedBy: done?.by, verifiedAt: done?.at)
        }
    }

    /// The monitor verifies one value as it now stands.
    public func verify(participantID: UUID, visit: String, item: String, scope: AccessScope, now: Date) async throws -> VerificationItem {
        guard scope.role == .monitor else {
            throw StoreError.forbidden(rule: "only a monitor verifies data against source (your role: \(scope.role?.rawValue ?? "none"))")
        }
        return try await store.write { tx in
            let sql = tx as! any SQLDatabase
            let file = try await FluentScreeningRepository.file(participantID: participantID, scope: scope, on: tx)
            let form = item.hasPrefix("lab.") ? nil : item.split(separator: ".").first.map(String.init)
            try await LockCheck.require(
                WriteTarget(siteID: file.participant.siteID, participantID: participantID, visit: visit, form: form), kind: .review, actor: scope.actor,
                attempted: "verification of \(item) at \(visit)", on: tx)
            guard let current = try await Self.values(participantID: participantID, on: sql).first(where: { $0.visit == visit && $0.item == item }) else {
                throw StoreError.notFound(entity: "value", id: "\(item) at \(visit)")
            }
            let id = UUID.timeOrdered()
            try await sql.raw("""
                INSERT INTO verifications (id, participant_id, site_id, visit_code, item, verified_value, verified_by, verified_at)
                VALUES (\(bind: id), \(bind: participantID), \(bind: file.participant.siteID), \(bind: visit), \(bind: item), \(bind: current.value),
                \(bind: scope.actor), \(bind: now))
                """).run()
            try await AuditChain.append(
                on: tx, actor: scope.actor, action: .create, entity: "verification", entityID: id.uuidString, siteID: file.participant.siteID.uuidString,
                reason: nil,
                changes: [
                    .init(field: "participant", old: nil, new: participantID.uuidString), .init(field: "item", old: nil, new: "\(visit)/\(item)"),
                    .init(field: "value", old: nil, new: current.value),
                ], now: now)
            let required = SourceVerification.required(item: item, participantID: participantID, settings: file.study.dataManagement?.verification)
            return VerificationItem(
                visit: visit, item: item, value: current.value, required: required, state: .verified, verifiedValue: current.value, verifiedBy: scope.actor,
                verifiedAt: now)
        }
    }

    /// What is left to verify, per site: one pass over the stored values and verifications, never a participant at a time.
    public func summary(scope: AccessScope) async throws -> [VerificationSummary] {
        guard !scope.siteIDs.isEmpty else { return [] }
        guard let study = try await FluentStudyRepository(store: store).current(), let settings = study.dataManagement?.verification else { return [] }
        let sql = store.database as! any SQLDatabase
        var latest: [String: String] = [:]
        for row in try await sql.raw("""
            SELECT participant_id, visit_code, item, verified_value FROM verifications WHERE site_id IN (\(binds: scope.siteBinds)) ORDER BY verified_at
            """).all() {
            latest["\(try row.decode(column: "participant_id", as: UUID.self))/\(try row.decode(column: "visit_code", as: String.self))/\(try row.decode(column: "item", as: String.self))"] =
                try row.decode(column: "verified_value", as: String.self)
        }
        var sites: [String: VerificationSummary] = [:]
        func count(site: String, participant: UUID, visit: String, item: String, value: String) {
            guard SourceVerification.required(item: item, participantID: participant, settings: settings) else { return }
            var summary = sites[site] ?? VerificationSummary(site: site, required: 0, verified: 0, changed: 0)
            summary.required += 1
            switch SourceVerification.state(required: true, current: value, verified: latest["\(participant)/\(visit)/\(item)"]) {
            case .verified: summary.verified += 1
            case .changed: summary.changed += 1
            default: break
            }
            sites[site] = summary
        }
        for row in try await sql.raw("""
            SELECT f.participant_id, s.code, f.visit_code, f.form_code, f.data FROM form_records f JOIN sites s ON s.id = f.site_id
            JOIN participants p ON p.id = f.participant_id AND p.deleted_at IS NULL
            WHERE f.site_id IN (\(binds: scope.siteBinds))
            """).all() {
            let participant = try row.decode(column: "participant_id", as: UUID.self), site = try row.decode(column: "code", as: String.self)
            let visit = try row.decode(column: "visit_code", as: String.self), form = try row.decode(column: "form_code", as: String.self)
            for (field, value) in FluentFormRecordRepository.values(try row.decode(column: "data", as: String.self)) {
                count(site: site, participant: participant, visit: visit, item: "\(form).\(field)", value: value)
            }
        }
        for row in try await sql.raw("""
            SELECT l.participant_id, s.code, l.visit_code, l.test_code, l.entered_value, l.entered_unit FROM lab_results l JOIN sites s ON s.id = l.site_id
            JOIN participants p ON p.id = l.participant_id AND p.deleted_at IS NULL
            WHERE l.site_id IN (\(binds: scope.siteBinds))
            """).all() {
            count(
                site: try row.decode(column: "code", as: String.self), participant: try row.decode(column: "participant_id", as: UUID.self),
                visit: try row.decode(column: "visit_code", as: String.self), item: "lab.\(try row.decode(column: "test_code", as: String.self))",
                value: Self.labText(try row.decode(column: "entered_value", as: Double.self), try row.decode(column: "entered_unit", as: String.self)))
        }
        return sites.values.sorted { $0.site < $1.site }
    }

    /// Every stored value of the participant, as a monitor compares it with source: form fields, and lab results as entered.
    static func values(participantID: UUID, on sql: any SQLDatabase) async throws -> [(visit: String, item: String, value: String)] {
        var values: [(String, String, String)] = []
        for row in try await sql.raw("SELECT visit_code, form_code, data FROM form_records WHERE participant_id = \(bind: participantID) ORDER BY created_at").all() {
            let visit = try row.decode(column: "visit_code", as: String.self), form = try row.decode(column: "form_code", as: String.self)
            for (field, value) in FluentFormRecordRepository.values(try row.decode(column: "data", as: String.self)).sorted(by: { $0.key < $1.key }) {
                values.append((visit, "\(form).\(field)", value))
            }
        }
        for row in try await sql.raw("""
            SELECT visit_code, test_code, entered_value, entered_unit FROM lab_results WHERE participant_id = \(bind: participantID) ORDER BY collected_at, test_code
            """).all() {
            values.append((
                try row.decode(column: "visit_code", as: String.self), "lab.\(try row.decode(column: "test_code", as: String.self))",
                labText(try row.decode(column: "entered_value", as: Double.self), try row.decode(column: "entered_unit", as: String.self))))
        }
        return values
    }

    static func labText(_ value: Double, _ unit: String) -> String { "\(FormValidator.format(value)) \(unit)" }
}

extension FluentVerificationRepository {
    /// One value's history from the audit trail: each change with who made it, when and why.
    public func history(participantID: UUID, visit: String, item: String, scope: AccessScope) async throws -> [AuditEntry] {
        try await FluentParticipantRepository.requireVisible(id: participantID, scope: scope, on: store.database)
        let sql = store.database as! any SQLDatabase
        if item.hasPrefix("lab.") {
            let test = String(item.dropFirst(4))
            guard let id = try await sql.raw("""
                SELECT id FROM lab_results WHERE participant_id = \(bind: participantID) AND visit_code = \(bind: visit) AND test_code = \(bind: test)
                """).first()?.decode(column: "id", as: UUID.self) else { return [] }
            return try await AuditChain.history(on: store.database, entity: "lab_result", entityID: id.uuidString)
        }
        let form = String(item.split(separator: ".").first ?? "")
        guard let id = try await sql.raw("""
            SELECT id FROM form_records WHERE participant_id = \(bind: participantID) AND visit_code = \(bind: visit) AND form_code = \(bind: form)
            """).first()?.decode(column: "id", as: UUID.self) else { return [] }
        return try await AuditChain.history(on: store.database, entity: "form_record", entityID: id.uuidString).compactMap { event in
            var event = event
            event.changes = event.changes.filter { $0.field == item }
            return event.changes.isEmpty ? nil : event
        }
    }
}
