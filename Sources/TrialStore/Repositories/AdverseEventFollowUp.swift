import FluentKit
import FluentSQL
import Foundation
import TrialDomain

public struct FollowUpReport: Codable, Equatable, Sendable {
    public var id: UUID
    public var eventID: UUID
    public var submittedAt: Date
    public var text: String
    public var nextDueAt: Date?
    public var createdBy: String
    public var createdAt: Date
}

extension FluentSafetyRepository {
    /// Follows an adverse event up: its grade, outcome and resolution change with a reason, audited old to new;
    /// signatures over the casebook are invalidated as by any change.
    public func updateAdverseEvent(
        eventID: UUID, grade: Int?, outcome: String?, resolvedAt: Date?, reason: String?, scope: AccessScope, now: Date
    ) async throws -> AdverseEvent {
        guard grade != nil || outcome != nil || resolvedAt != nil else {
            throw StoreError.invalid(field: "body", rule: "give at least one of grade, outcome, resolvedAt")
        }
        if let outcome, outcome.trimmingCharacters(in: .whitespaces).isEmpty || outcome.count > 200 {
            throw StoreError.invalid(field: "outcome", rule: "must be 1 to 200 characters")
        }
        if let resolvedAt, resolvedAt > now.addingTimeInterval(300) { throw StoreError.invalid(field: "resolvedAt", rule: "must not be in the future") }
        return try await store.write { tx in
            guard let model = try await AdverseEventModel.find(eventID, on: tx), scope.siteIDs.contains(model.siteID) else {
                throw StoreError.notFound(entity: "adverse event", id: eventID.uuidString)
            }
            try await LockCheck.require(
                WriteTarget(siteID: model.siteID, participantID: model.participantID), kind: .data, actor: scope.actor, attempted: "adverse event follow-up", on: tx)
            let term = try await CTCAETermModel.query(on: tx).filter(\.$version == model.ctcaeVersion).filter(\.$meddra == model.meddra).first().map(Self.term)
            var changes: [FieldChange] = []
            if let grade, grade != model.grade {
                guard (1...5).contains(grade), let term, grade <= term.grades.count, term.grades[grade - 1] != nil else {
                    throw StoreError.invalid(field: "grade", rule: "is not a grade of \(model.term) in CTCAE v\(model.ctcaeVersion)")
                }
                if grade == 5 && !model.seriousness.contains(Seriousness.death.rawValue) {
                    throw StoreError.invalid(field: "grade", rule: "a grade 5 event is fatal: record it as serious with the criterion death")
                }
                changes.append(.init(field: "grade", old: String(model.grade), new: String(grade)))
                model.grade = grade
            }
            if let outcome, outcome != model.outcome {
                changes.append(.init(field: "outcome", old: model.outcome, new: outcome))
                model.outcome = outcome
            }
            if let resolvedAt, resolvedAt != model.resolvedAt {
                guard resolvedAt >= model.onsetAt else { throw StoreError.invalid(field: "resolvedAt", rule: "must not be before the onset") }
                changes.append(.init(field: "resolved_at", old: model.resolvedAt.map(AuditEntry.timestamp), new: AuditEntry.timestamp(resolvedAt)))
                model.resolvedAt = resolvedAt
            }
            let hours = try await FluentStudyRepository(store: Store(database: tx)).current()?.safety.saeReportingHours ?? 24
            guard !changes.isEmpty else { return Self.event(model, term: term, hours: hours) }
            try await AuditChain.append(
                on: tx, actor: scope.actor, action: .update, entity: "adverse_event", entityID: eventID.uuidString, siteID: model.siteID.uuidString,
                reason: reason, changes: changes, now: now)
            try await model.save(on: tx)
            try await ParticipantRevision.bump(model.participantID, on: tx)
            try await FluentSignatureRepository.invalidate(participantID: model.participantID, visit: nil, forms: [], actor: scope.actor, now: now, on: tx)
            return Self.event(model, term: term, hours: hours)
        }
    }

    /// A follow-up report of a serious event, with when the next is due; audited.
    public func addFollowUp(eventID: UUID, submittedAt: Date, text: String, nextDueAt: Date?, scope: AccessScope, now: Date) async throws -> FollowUpReport {
        let words = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !words.isEmpty else { throw StoreError.invalid(field: "text", rule: "is required") }
        guard words.count <= 4_000 else { throw StoreError.invalid(field: "text", rule: "must be at most 4000 characters") }
        if submittedAt > now.addingTimeInterval(300) { throw StoreError.invalid(field: "submittedAt", rule: "must not be in the future") }
        if let nextDueAt, nextDueAt <= submittedAt { throw StoreError.invalid(field: "nextDueAt", rule: "must be after submittedAt") }
        return try await store.write { tx in
            guard let model = try await AdverseEventModel.find(eventID, on: tx), scope.siteIDs.contains(model.siteID) else {
                throw StoreError.notFound(entity: "adverse event", id: eventID.uuidString)
            }
            guard model.serious else { throw StoreError.invalid(field: "event", rule: "follow-up reports are for serious events") }
            guard let reported = model.reportedAt, submittedAt >= reported else {
                throw StoreError.invalid(field: "submittedAt", rule: "a follow-up comes after the initial report to the sponsor")
            }
            try await LockCheck.require(
                WriteTarget(siteID: model.siteID, participantID: model.participantID), kind: .data, actor: scope.actor, attempted: "SAE follow-up", on: tx)
            let report = FollowUpReport(
                id: UUID.timeOrdered(), eventID: eventID, submittedAt: submittedAt, text: words, nextDueAt: nextDueAt, createdBy: scope.actor, createdAt: now)
            try await (tx as! any SQLDatabase).raw("""
                INSERT INTO ae_follow_ups (id, event_id, site_id, submitted_at, text, next_due_at, created_by, created_at)
                VALUES (\(bind: report.id), \(bind: eventID), \(bind: model.siteID), \(bind: submittedAt), \(bind: words), \(bind: nextDueAt),
                \(bind: scope.actor), \(bind: now))
                """).run()
            try await AuditChain.append(
                on: tx, actor: scope.actor, action: .create, entity: "ae_follow_up", entityID: report.id.uuidString, siteID: model.siteID.uuidString,
                reason: nil,
                changes: [
                    .init(field: "event", old: nil, new: eventID.uuidString), .init(field: "submitted_at", old: nil, new: AuditEntry.timestamp(submittedAt)),
                    .init(field: "next_due_at", old: nil, new: nextDueAt.map(AuditEntry.timestamp)), .init(field: "text", old: nil, new: words),
                ], now: now)
            return report
        }
    }

    public func followUps(eventID: UUID, scope: AccessScope) async throws -> [FollowUpReport] {
        let sql = store.database as! any SQLDatabase
        guard let site = try await sql.raw("SELECT site_id FROM adverse_events WHERE id = \(bind: eventID)").first()?.decode(column: "site_id", as: UUID.self),
            scope.siteIDs.contains(site)
        else { throw StoreError.notFound(entity: "adverse event", id: eventID.uuidString) }
        return try await sql.raw("""
            SELECT id, submitted_at, text, next_due_at, created_by, created_at FROM ae_follow_ups WHERE event_id = \(bind: eventID) ORDER BY submitted_at
            """).all().map {
            FollowUpReport(
                id: try $0.decode(column: "id", as: UUID.self), eventID: eventID, submittedAt: try $0.decode(column: "submitted_at", as: Date.self),
                text: try $0.decode(column: "text", as: String.self), nextDueAt: try $0.decode(column: "next_due_at", as: Date?.self),
                createdBy: try $0.decode(column: "created_by", as: String.self), createdAt: try $0.decode(column: "created_at", as: Date.self))
        }
    }

    /// Each serious event's follow-up clock (its latest report), in one query for the scope's sites.
    public func followUpClocks(scope: AccessScope) async throws -> [UUID: FollowUpClock] {
        guard !scope.siteIDs.isEmpty else { return [:] }
        var clocks: [UUID: FollowUpClock] = [:]
        for row in try await (store.database as! any SQLDatabase).raw("""
            SELECT event_id, submitted_at, next_due_at FROM ae_follow_ups WHERE site_id IN (\(binds: scope.siteBinds)) ORDER BY submitted_at
            """).all() {
            clocks[try row.decode(column: "event_id", as: UUID.self)] = FollowUpClock(
                lastSubmittedAt: try row.decode(column: "submitted_at", as: Date.self), nextDueAt: try row.decode(column: "next_due_at", as: Date?.self))
        }
        return clocks
    }
}
