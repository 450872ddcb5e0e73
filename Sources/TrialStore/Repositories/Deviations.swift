import FluentKit
import FluentSQL
import Foundation
import TrialDomain

extension FluentScreeningRepository {
    /// A deviation raised by hand (site staff, monitor, data manager), audited.
    public func raiseDeviation(
        participantID: UUID, kind: DeviationKind, visit: String?, detail: String, scope: AccessScope, now: Date
    ) async throws -> ProtocolDeviation {
        guard let role = scope.role, DeviationRules.raisers.contains(role) else {
            throw StoreError.forbidden(rule: "only site staff, monitors and data managers raise a deviation (your role: \(scope.role?.rawValue ?? "none"))")
        }
        guard DeviationKind.byHand.contains(kind) else {
            throw StoreError.invalid(field: "kind", rule: "must be one of \(DeviationKind.byHand.map(\.rawValue).joined(separator: ", ")) (the others are raised as data arrive)")
        }
        let text = detail.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !text.isEmpty else { throw StoreError.invalid(field: "detail", rule: "is required") }
        guard text.count <= 4_000 else { throw StoreError.invalid(field: "detail", rule: "must be at most 4000 characters") }
        return try await store.write { tx in
            let file = try await Self.file(participantID: participantID, scope: scope, on: tx)
            if let visit, file.study.visit(visit) == nil { throw StoreError.invalid(field: "visit", rule: "names unknown visit '\(visit)'") }
            try await LockCheck.require(
                WriteTarget(siteID: file.participant.siteID, participantID: participantID), kind: .review, actor: scope.actor, attempted: "deviation", on: tx)
            let id = try await Self.insertDeviation(
                participantID: participantID, siteID: file.participant.siteID, kind: kind, visit: visit, detail: text, actor: scope.actor, now: now, on: tx)
            var deviation = ProtocolDeviation(
                participantID: participantID, screeningNumber: file.participant.screeningNumber, kind: kind.rawValue, dose: nil, startedAt: now, reason: text,
                recordedBy: scope.actor)
            deviation.key = id.uuidString
            deviation.visit = visit
            return deviation
        }
    }

    /// The review that classifies a deviation as important or not (investigator, monitor, data manager); a later
    /// review replaces the earlier, both in the audit trail.
    public func reviewDeviation(key: String, classification: DeviationClass, note: String?, scope: AccessScope, now: Date) async throws {
        guard let role = scope.role, DeviationRules.reviewers.contains(role) else {
            throw StoreError.forbidden(rule: "only an investigator, monitor or data manager reviews a deviation (your role: \(scope.role?.rawValue ?? "none"))")
        }
        let text = note?.trimmingCharacters(in: .whitespacesAndNewlines)
        if let text, text.count > 4_000 { throw StoreError.invalid(field: "note", rule: "must be at most 4000 characters") }
        try await store.write { tx in
            let sql = tx as! any SQLDatabase
            let site: UUID?
            if key.hasPrefix("dose:") {
                guard let id = UUID(uuidString: String(key.dropFirst(5))) else { throw StoreError.notFound(entity: "deviation", id: key) }
                site = try await sql.raw("SELECT site_id FROM doses WHERE id = \(bind: id) AND deviation = \(bind: true)").first()?.decode(column: "site_id", as: UUID.self)
            } else {
                guard let id = UUID(uuidString: key) else { throw StoreError.notFound(entity: "deviation", id: key) }
                site = try await sql.raw("SELECT site_id FROM protocol_deviations WHERE id = \(bind: id)").first()?.decode(column: "site_id", as: UUID.self)
            }
            guard let site, scope.siteIDs.contains(site) else { throw StoreError.notFound(entity: "deviation", id: key) }
            let old = try await sql.raw("SELECT classification FROM deviation_reviews WHERE deviation_key = \(bind: key)").first()?.decode(column: "classification", as: String.self)
            if old == nil {
                try await sql.raw("""
                    INSERT INTO deviation_reviews (deviation_key, classification, note, reviewed_by, reviewed_at)
                    VALUES (\(bind: key), \(bind: classification.rawValue), \(bind: text), \(bind: scope.actor), \(bind: now))
                    """).run()
            } else {
                try await sql.raw("""
                    UPDATE deviation_reviews SET classification = \(bind: classification.rawValue), note = \(bind: text), reviewed_by = \(bind: scope.actor),
                    reviewed_at = \(bind: now) WHERE deviation_key = \(bind: key)
                    """).run()
            }
            try await AuditChain.append(
                on: tx, actor: scope.actor, action: old == nil ? .create : .update, entity: "deviation_review", entityID: key, siteID: site.uuidString,
                reason: text?.isEmpty == false ? text : "deviation reviewed", changes: [.init(field: "classification", old: old, new: classification.rawValue)], now: now)
        }
    }

    static func insertDeviation(
        participantID: UUID, siteID: UUID, kind: DeviationKind, visit: String?, detail: String, actor: String, now: Date, on tx: any Database
    ) async throws -> UUID {
        let id = UUID.timeOrdered()
        try await (tx as! any SQLDatabase).raw("""
            INSERT INTO protocol_deviations (id, participant_id, site_id, kind, detail, raised_by, raised_at, visit_code)
            VALUES (\(bind: id), \(bind: participantID), \(bind: siteID), \(bind: kind.rawValue), \(bind: detail), \(bind: actor), \(bind: now), \(bind: visit))
            """).run()
        try await AuditChain.append(
            on: tx, actor: actor, action: .create, entity: "protocol_deviation", entityID: id.uuidString, siteID: siteID.uuidString, reason: nil,
            changes: [.init(field: "kind", old: nil, new: kind.rawValue), .init(field: "visit", old: nil, new: visit), .init(field: "detail", old: nil, new: detail)],
            now: now)
        return id
    }

    /// Raises, inside a write that just entered a visit's first data, the deviations the participant's schedule now
    /// shows (TrialDomain's `DeviationRules.fromSchedule`), each once per participant, kind and visit.
    static func raiseScheduleDeviations(participantID: UUID, scope: AccessScope, now: Date, on tx: any Database) async throws {
        try await raiseScheduleDeviations(file: try await file(participantID: participantID, scope: scope, on: tx), scope: scope, now: now, on: tx)
    }

    /// The same with the file as the write left it, read by the caller.
    static func raiseScheduleDeviations(file: ParticipantFile, scope: AccessScope, now: Date, on tx: any Database) async throws {
        let participantID = file.participant.id
        let sql = tx as! any SQLDatabase
        let entered = try await visitEntries(file, on: tx)
        let schedule = ParticipantSchedule.build(
            study: file.schedule, anchors: file.anchors, done: VisitCompletion.dates(study: file.schedule, entered: entered), now: now, arm: file.arm,
            calendar: file.calendar)
        let found = DeviationRules.fromSchedule(schedule, entered: Set(entered.keys), calendar: file.calendar)
        guard !found.isEmpty else { return }
        var raised: Set<String> = []
        for row in try await sql.raw("SELECT kind, visit_code FROM protocol_deviations WHERE participant_id = \(bind: participantID)").all() {
            raised.insert("\(try row.decode(column: "kind", as: String.self))@\(try row.decode(column: "visit_code", as: String?.self) ?? "")")
        }
        for deviation in found where !raised.contains("\(deviation.kind.rawValue)@\(deviation.visit)") {
            _ = try await insertDeviation(
                participantID: participantID, siteID: file.participant.siteID, kind: deviation.kind, visit: deviation.visit, detail: deviation.detail,
                actor: scope.actor, now: now, on: tx)
        }
    }
}
