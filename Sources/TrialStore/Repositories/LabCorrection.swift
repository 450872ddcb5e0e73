import FluentKit
import FluentSQL
import Foundation
import TrialDomain

extension FluentSafetyRepository {
    /// Corrects a saved lab result with a reason: converted, checked and graded again as a new one would be, the old
    /// and new values in one audit event. Results graded against it as their baseline are graded again; open queries
    /// on it are answered by the reason; the study's edit checks run on the corrected data.
    public func correctLab(
        participantID: UUID, visit: String, test code: String, value: Double, unit: String, collectedAt: Date, reason: String?, scope: AccessScope, now: Date
    ) async throws -> LabResult {
        let why = reason?.trimmingCharacters(in: .whitespacesAndNewlines) ?? ""
        guard !why.isEmpty else { throw StoreError.reasonRequired(field: "reason") }
        guard why.count <= 2_000 else { throw StoreError.invalid(field: "reason", rule: "must be at most 2000 characters") }
        if collectedAt > now.addingTimeInterval(300) { throw StoreError.invalid(field: "collectedAt", rule: "must not be in the future") }
        return try await store.write { tx in
            let sql = tx as! any SQLDatabase
            let file = try await FluentScreeningRepository.file(participantID: participantID, scope: scope, on: tx)
            guard let test = file.study.labTest(code) else {
                throw StoreError.invalid(field: "test", rule: "must be one of \(file.study.labTests.map(\.code).joined(separator: ", "))")
            }
            try await LockCheck.require(
                WriteTarget(siteID: file.participant.siteID, participantID: participantID, visit: visit), kind: .data, actor: scope.actor,
                attempted: "lab correction \(test.code) at \(visit)", on: tx)
            guard let row = try await sql.raw("""
                SELECT id, visit_code, test_code, collected_at, value, unit, entered_value, entered_unit, uln, lln, baseline,
                  grade_v4, grade_v5, basis_v4, basis_v5, baseline_grade, treatment_emergent
                FROM lab_results WHERE participant_id = \(bind: participantID) AND visit_code = \(bind: visit) AND test_code = \(bind: test.code)
                """).first() else { throw StoreError.notFound(entity: "lab result", id: "\(test.code) at \(visit)") }
            let old = try Self.lab(row)
            let corrected = try await Self.regrade(
                self, id: old.id, participantID: participantID, file: file, visit: visit, test: test, value: value, unit: unit, collectedAt: collectedAt,
                scope: scope, now: now, on: sql)
            var changes: [FieldChange] = []
            func note(_ field: String, _ before: String?, _ after: String?) { if before != after { changes.append(.init(field: field, old: before, new: after)) } }
            note("value", "\(FormValidator.format(old.enteredValue)) \(old.enteredUnit)", "\(FormValidator.format(value)) \(unit)")
            note("collected_at", AuditEntry.timestamp(old.collectedAt), AuditEntry.timestamp(collectedAt))
            note("grade_v4", old.gradeV4.map(String.init), corrected.gradeV4.map(String.init))
            note("grade_v5", old.gradeV5.map(String.init), corrected.gradeV5.map(String.init))
            guard !changes.isEmpty else { return old }
            try await AuditChain.append(
                on: tx, actor: scope.actor, action: .update, entity: "lab_result", entityID: old.id.uuidString, siteID: file.participant.siteID.uuidString,
                reason: why, changes: changes, now: now)
            // Later results of the test that took this one as their baseline.
            if Baseline.visits(of: file.study).contains(visit) {
                for later in try await sql.raw("""
                    SELECT id, visit_code, entered_value, entered_unit, collected_at FROM lab_results
                    WHERE participant_id = \(bind: participantID) AND test_code = \(bind: test.code) AND collected_at > \(bind: collectedAt) AND id <> \(bind: old.id)
                    """).all() {
                    _ = try await Self.regrade(
                        self, id: try later.decode(column: "id", as: UUID.self), participantID: participantID, file: file,
                        visit: try later.decode(column: "visit_code", as: String.self), test: test,
                        value: try later.decode(column: "entered_value", as: Double.self), unit: try later.decode(column: "entered_unit", as: String.self),
                        collectedAt: try later.decode(column: "collected_at", as: Date.self), scope: scope, now: now, on: sql)
                }
            }
            try await ParticipantRevision.bump(participantID, on: tx)
            try await FluentSignatureRepository.invalidate(participantID: participantID, visit: visit, forms: [], actor: scope.actor, now: now, on: tx)
            try await FluentQueryRepository.answer(
                participantID: participantID, fields: ["lab.\(test.code).value"], visit: visit, reason: why, scope: scope, now: now, on: tx)
            try await EditCheckRunner.apply(participantID: participantID, scope: scope, now: now, on: tx)
            if visit == file.study.eligibilityVisit {
                try await FluentScreeningRepository.recheckEligibility(participantID: participantID, scope: scope, now: now, on: tx)
            }
            ParticipantFileCache.shared.forget(participantID)
            return corrected
        }
    }

    /// Grades one result again from its entered value, against the baseline as it now stands, and stores the outcome.
    static func regrade(
        _ repository: FluentSafetyRepository, id: UUID, participantID: UUID, file: ParticipantFile, visit: String, test: LabTest, value: Double, unit: String,
        collectedAt: Date, scope: AccessScope, now: Date, on sql: any SQLDatabase
    ) async throws -> LabResult {
        let baseline = try await sql.raw("""
            SELECT value FROM lab_results WHERE participant_id = \(bind: participantID) AND test_code = \(bind: test.code)
            AND visit_code IN (\(binds: Baseline.visits(of: file.study))) AND collected_at < \(bind: collectedAt) AND id <> \(bind: id)
            ORDER BY collected_at DESC LIMIT 1
            """).first()?.decode(column: "value", as: Double.self)
        let built = try repository.labRows(
            participantID: participantID, file: file, visit: visit, test: test, value: value, unit: unit, collectedAt: collectedAt, baseline: baseline,
            scope: scope, now: now)
        var result = built.answer
        result.id = id
        let kept: Set<String> = ["id", "participant_id", "site_id", "visit_code", "test_code", "created_by", "created_at"]
        guard let insert = built.rows.first else { return result }
        var update = sql.update(LabResultModel.schema)
        for (column, value) in zip(insert.columns, insert.values) where !kept.contains(column) { update = update.set(SQLIdentifier(column), to: SQLBind(value)) }
        try await update.where(SQLIdentifier("id"), .equal, SQLBind(id)).run()
        return result
    }
}
