import FluentKit
import FluentSQL
import Foundation
import TrialDomain

/// A participant as an export reads it.
public struct ExportParticipant: Sendable, Equatable {
    public var id: UUID
    public var siteCode: String
    public var screeningNumber: String
    public var status: ParticipantStatus
    public var createdAt: Date
    /// The values of the fields the study names for sex and birth date (`participant:`), as entered.
    public var sex: String?
    public var birthDate: String?
    public var arm: String?
    public var allocatedAt: Date?
    /// Later randomization stages, in the order they happened.
    public var stages: [ExportStageAllocation] = []

    /// The arm now, after every stage.
    public var currentArm: String? { stages.last?.arm ?? arm }
}

public struct ExportStageAllocation: Sendable, Equatable {
    /// The stage's randomization code.
    public var stage: String
    public var arm: String
    public var at: Date
}

public struct ExportDose: Sendable, Equatable {
    public var id: UUID
    public var participantID: UUID
    public var dose: String
    public var given: Bool
    public var startedAt: Date?
    public var endedAt: Date?
    public var amount: Double?
    public var unit: String?
    public var skipReason: String?
    public var recordedAt: Date
}

public struct ExportForm: Sendable, Equatable {
    public var id: UUID
    public var participantID: UUID
    public var visit: String
    public var form: String
    public var values: [String: String]
}

/// One page of participants with what the exports read of them: at most one page is held at a time.
public struct ExportPage: Sendable {
    public var participants: [ExportParticipant]
    public var labs: [LabResult]
    /// The participant of each lab result.
    public var labParticipants: [UUID: UUID]
    public var adverseEvents: [AdverseEvent]
    public var doses: [ExportDose]
    /// With `records`: every form record, and the audit events of forms and labs by the record's id.
    public var forms: [ExportForm] = []
    public var audit: [String: [AuditEntry]] = [:]
    /// With `records`: each participant's signatures, as `Signature` reads them.
    public var signatures: [Signature] = []
    /// With `records`: each participant's latest eligibility decision, and first consent.
    public var decisions: [UUID: (eligible: Bool, failed: [String], at: Date)] = [:]
    public var consents: [UUID: Date] = [:]
}

/// Reads the scope's participants a page at a time, each page with its labs, adverse events and doses in a few set
/// queries, for exports written as they are read.
public struct FluentExportRepository: Sendable {
    let store: Store
    public init(store: Store) { self.store = store }

    /// `records`: read the form records, their audit events and the signatures too (ODM).
    public func pages(
        study: StudyDefinition, scope: AccessScope, size: Int = 500, records: Bool = false, _ body: (ExportPage) async throws -> Void
    ) async throws {
        guard !scope.siteIDs.isEmpty else { return }
        let sql = store.database as! any SQLDatabase
        let sexField = study.participant?.sex, birthField = study.participant?.birthDate
        let forms = Set([sexField, birthField].compactMap { $0?.split(separator: ".").first.map(String.init) })
        var after: UUID?
        while true {
            var query: SQLQueryString = """
                SELECT p.id, p.screening_number, p.status, p.created_at, s.code AS site_code, sl.arm, sl.allocated_at
                FROM participants p JOIN sites s ON s.id = p.site_id LEFT JOIN randomization_slots sl ON sl.participant_id = p.id
                WHERE p.deleted_at IS NULL AND p.site_id IN (\(binds: scope.siteBinds))
                """
            if let after { query = query + " AND p.id > \(bind: after)" }
            query = query + " ORDER BY p.id LIMIT \(bind: size)"
            let rows = try await sql.raw(query).all()
            guard !rows.isEmpty else { return }
            var participants: [ExportParticipant] = []
            for row in rows {
                let status = try row.decode(column: "status", as: String.self)
                participants.append(ExportParticipant(
                    id: try row.decode(column: "id", as: UUID.self), siteCode: try row.decode(column: "site_code", as: String.self),
                    screeningNumber: try row.decode(column: "screening_number", as: String.self), status: ParticipantStatus(rawValue: status) ?? .screening,
                    createdAt: try row.decode(column: "created_at", as: Date.self), sex: nil, birthDate: nil,
                    arm: try row.decode(column: "arm", as: String?.self), allocatedAt: try row.decode(column: "allocated_at", as: Date?.self)))
            }
            let ids = participants.map(\.id)
            let binds: [any Encodable & Sendable] = ids
            if !forms.isEmpty, let visit = study.eligibilityVisit {
                var index: [UUID: Int] = [:]
                for (i, p) in participants.enumerated() { index[p.id] = i }
                for row in try await sql.raw("""
                    SELECT participant_id, form_code, data FROM form_records
                    WHERE participant_id IN (\(binds: binds)) AND visit_code = \(bind: visit) AND form_code IN (\(binds: Array(forms)))
                    """).all() {
                    guard let i = index[try row.decode(column: "participant_id", as: UUID.self)] else { continue }
                    let form = try row.decode(column: "form_code", as: String.self)
                    let values = FluentFormRecordRepository.values(try row.decode(column: "data", as: String.self))
                    for (key, value) in values {
                        if "\(form).\(key)" == sexField { participants[i].sex = value }
                        if "\(form).\(key)" == birthField { participants[i].birthDate = value }
                    }
                }
            }
            if !(study.randomizations ?? []).isEmpty {
                var index: [UUID: Int] = [:]
                for (i, p) in participants.enumerated() { index[p.id] = i }
                for row in try await sql.raw("""
                    SELECT ss.participant_id, l.randomization, ss.arm_after, ss.allocated_at FROM stage_slots ss JOIN stage_lists l ON l.id = ss.list_id
                    WHERE ss.participant_id IN (\(binds: binds)) AND ss.arm_after IS NOT NULL AND ss.allocated_at IS NOT NULL
                    ORDER BY ss.allocated_at
                    """).all() {
                    guard let i = index[try row.decode(column: "participant_id", as: UUID.self)] else { continue }
                    participants[i].stages.append(ExportStageAllocation(
                        stage: try row.decode(column: "randomization", as: String.self), arm: try row.decode(column: "arm_after", as: String.self),
                        at: try row.decode(column: "allocated_at", as: Date.self)))
                }
            }
            var labs: [LabResult] = [], labParticipants: [UUID: UUID] = [:]
            for row in try await sql.raw("""
                SELECT id, participant_id, visit_code, test_code, collected_at, value, unit, entered_value, entered_unit, uln, lln, baseline,
                  grade_v4, grade_v5, basis_v4, basis_v5, baseline_grade, treatment_emergent
                FROM lab_results WHERE participant_id IN (\(binds: binds)) ORDER BY participant_id, collected_at
                """).all() {
                let lab = try FluentSafetyRepository.lab(row)
                labs.append(lab)
                labParticipants[lab.id] = try row.decode(column: "participant_id", as: UUID.self)
            }
            let hours = study.safety.saeReportingHours
            let events = try await AdverseEventModel.query(on: store.database).filter(\.$participantID ~~ ids).sort(\.$onsetAt).all()
                .map { FluentSafetyRepository.event($0, term: nil, hours: hours) }
            let doses = try await sql.raw("""
                SELECT id, participant_id, dose_code, given, started_at, ended_at, amount, unit, skip_reason, created_at
                FROM doses WHERE participant_id IN (\(binds: binds)) ORDER BY participant_id, created_at
                """).all().map {
                ExportDose(
                    id: try $0.decode(column: "id", as: UUID.self), participantID: try $0.decode(column: "participant_id", as: UUID.self),
                    dose: try $0.decode(column: "dose_code", as: String.self), given: try $0.decode(column: "given", as: Bool.self),
                    startedAt: try $0.decode(column: "started_at", as: Date?.self), endedAt: try $0.decode(column: "ended_at", as: Date?.self),
                    amount: try $0.decode(column: "amount", as: Double?.self), unit: try $0.decode(column: "unit", as: String?.self),
                    skipReason: try $0.decode(column: "skip_reason", as: String?.self), recordedAt: try $0.decode(column: "created_at", as: Date.self))
            }
            var page = ExportPage(participants: participants, labs: labs, labParticipants: labParticipants, adverseEvents: events, doses: doses)
            if records {
                page.forms = try await sql.raw("""
                    SELECT id, participant_id, visit_code, form_code, data FROM form_records WHERE participant_id IN (\(binds: binds)) ORDER BY participant_id, created_at
                    """).all().map {
                    ExportForm(
                        id: try $0.decode(column: "id", as: UUID.self), participantID: try $0.decode(column: "participant_id", as: UUID.self),
                        visit: try $0.decode(column: "visit_code", as: String.self), form: try $0.decode(column: "form_code", as: String.self),
                        values: FluentFormRecordRepository.values(try $0.decode(column: "data", as: String.self)))
                }
                let recordIDs = page.forms.map(\.id.uuidString) + labs.map(\.id.uuidString)
                for start in stride(from: 0, to: recordIDs.count, by: 500) {
                    let chunk = Array(recordIDs[start..<min(recordIDs.count, start + 500)])
                    for entry in try await sql.raw("""
                        SELECT sequence, occurred_at, actor, action, entity, entity_id, site_id, reason, changes, previous_hash
                        FROM audit_events WHERE entity IN ('form_record', 'lab_result') AND entity_id IN (\(binds: chunk)) ORDER BY sequence
                        """).all().map(AuditChain.decodeEntry) {
                        page.audit[entry.entityID, default: []].append(entry)
                    }
                }
                for row in try await sql.raw("""
                    SELECT participant_id, outcome, failed_criteria, decided_at FROM eligibility_reviews WHERE participant_id IN (\(binds: binds)) ORDER BY decided_at
                    """).all() {
                    let failed = try row.decode(column: "failed_criteria", as: String?.self) ?? ""
                    page.decisions[try row.decode(column: "participant_id", as: UUID.self)] = (
                        try row.decode(column: "outcome", as: String.self) == "eligible", failed.split(separator: ",").map(String.init),
                        try row.decode(column: "decided_at", as: Date.self))
                }
                for row in try await sql.raw("""
                    SELECT participant_id, MIN(signed_at) AS first FROM consents WHERE participant_id IN (\(binds: binds)) GROUP BY participant_id
                    """).all() {
                    if let first = try row.decode(column: "first", as: Date?.self) { page.consents[try row.decode(column: "participant_id", as: UUID.self)] = first }
                }
                let signatures = FluentSignatureRepository(store: store)
                for participant in participants {
                    page.signatures += try await signatures.signatures(participantID: participant.id, scope: scope)
                }
            }
            try await body(page)
            guard rows.count == size else { return }
            after = participants.last?.id
        }
    }
}
