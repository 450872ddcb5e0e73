import FluentKit
import FluentSQL
import Foundation
import TrialDomain

/// Runs the study's edit checks inside a write that changed a participant's data, after the change: a failed hard
/// check refuses the write; a failed soft check raises a failed-check query (or reopens the one it raised before),
/// and a check that passes again closes its query. Every write path that saves forms or lab results calls it.
enum EditCheckRunner {
    static func apply(participantID: UUID, scope: AccessScope, now: Date, on tx: any Database) async throws {
        let file = try await FluentScreeningRepository.file(participantID: participantID, scope: scope, on: tx)
        try await apply(file: file, scope: scope, now: now, on: tx)
    }

    static func apply(file: ParticipantFile, scope: AccessScope, now: Date, on tx: any Database) async throws {
        guard !(file.study.dataManagement?.editChecks ?? []).isEmpty else { return }
        let findings = EditChecks.run(study: file.study, site: file.siteCode, values: file.values, visitValues: file.visitValues)
        if let hard = findings.first(where: { $0.outcome == .failed && $0.check.severity == .hard }) {
            throw StoreError.invalid(field: hard.check.fields.first ?? hard.check.code, rule: "\(hard.check.message) (edit check \(hard.check.code))")
        }
        let participantID = file.participant.id
        let sql = tx as! any SQLDatabase
        var raised: [String: (id: UUID, status: QueryStatus)] = [:]
        for row in try await sql.raw("""
            SELECT id, check_code, visit_code, status FROM queries WHERE participant_id = \(bind: participantID) AND kind = 'failed-check'
            ORDER BY raised_at
            """).all() {
            let key = "\(try row.decode(column: "check_code", as: String.self))@\(try row.decode(column: "visit_code", as: String?.self) ?? "")"
            raised[key] = (try row.decode(column: "id", as: UUID.self), QueryStatus(rawValue: try row.decode(column: "status", as: String.self)) ?? .open)
        }
        let system = QueryRules.systemActor
        for finding in findings where finding.check.severity == .soft {
            let key = "\(finding.check.code)@\(finding.visit)"
            switch (finding.outcome, raised[key]) {
            case (.failed, nil):
                let parts = finding.check.fields[0].split(separator: ".", maxSplits: 1).map(String.init)
                let query = DataQuery(
                    id: UUID.timeOrdered(), participantID: participantID, screeningNumber: file.participant.screeningNumber, siteCode: file.siteCode,
                    kind: .failedCheck, status: .open, target: QueryTarget(visit: finding.visit, form: parts.first, field: parts.dropFirst().first),
                    text: finding.check.message, assignee: .coordinator,
                    dueAt: file.study.dataManagement?.queryDueDays.map { now.addingTimeInterval(Double($0) * 86_400) },
                    raisedBy: system, raisedAt: now, answeredBy: nil, updatedAt: now, checkCode: finding.check.code, messages: nil)
                try await FluentQueryRepository.insert(query, siteID: file.participant.siteID, on: tx)
            case (.failed, let existing?) where existing.status == .closed:
                var query = try await FluentQueryRepository.find(existing.id, scope: scope, on: tx)
                try await FluentQueryRepository.move(
                    &query, to: .open, action: QueryAction.reopen.rawValue, text: "the check fails again: \(finding.check.message)", actor: system, now: now, on: tx)
            case (.passed, let existing?) where existing.status.isActive:
                var query = try await FluentQueryRepository.find(existing.id, scope: scope, on: tx)
                try await FluentQueryRepository.move(
                    &query, to: .closed, action: QueryAction.close.rawValue, text: "the data now pass the check", actor: system, now: now, on: tx)
            default:
                break
            }
        }
    }
}
