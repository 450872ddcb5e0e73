import FluentKit
import FluentSQL
import Foundation
import TrialDomain

public enum WithdrawalScope: String, Codable, Sendable, CaseIterable {
    case noFurtherData = "no_further_data"
    case noFurtherContact = "no_further_contact"
}

public struct ConsentRecord: Codable, Equatable, Sendable {
    public var id: UUID
    public var formVersion: String
    public var signedAt: Date
    public var takenBy: String
    public var withdrawnAt: Date?
    public var withdrawalScope: WithdrawalScope?
}

public struct Allocation: Codable, Equatable, Sendable {
    public var participantID: UUID
    public var arm: String
    public var stratum: String
    public var position: Int
    public var allocatedAt: Date
    public var allocatedBy: String
}

/// A dose given outside its window, with the reason recorded.
/// A protocol deviation: a dose out of its window (`kind` dose), or eligibility contradicted after allocation.
public struct ProtocolDeviation: Codable, Equatable, Sendable {
    /// `dose:ID` for a dose out of its window, else the deviation's own id.
    public var key: String = ""
    public var participantID: UUID
    public var screeningNumber: String
    public var kind: String
    /// The dose, for a dose deviation.
    public var dose: String?
    /// When the dose started, or when the deviation was raised.
    public var startedAt: Date
    public var reason: String
    public var recordedBy: String
    public var visit: String? = nil
    public var classification: DeviationClass? = nil
    public var reviewedBy: String? = nil
    public var reviewedAt: Date? = nil
    public var reviewNote: String? = nil
}

public struct ScreeningLog: Codable, Equatable, Sendable {
    public struct Failure: Codable, Equatable, Sendable {
        public var screeningNumber: String
        public var criteria: [String]
    }
    public var screened: Int
    public var eligible: Int
    public var screenFailed: Int
    public var consented: Int
    public var randomized: Int
    public var randomizedByArm: [String: Int]
    public var failures: [Failure]
    /// Screening records withdrawn from the lists as entered in error (never allocated); not among `screened`.
    public var enteredInError: Int = 0
}

/// Everything known about one participant's path from screening to infusion.
public struct ParticipantFile: Sendable {
    public var participant: Participant
    public var siteCode: String
    /// The version in force: eligibility, consent and forms follow it.
    public var study: StudyDefinition
    /// The version whose visits, doses and later randomizations this participant follows: the one in force, unless an
    /// amendment since their enrolment applies to new participants only.
    public var schedule: StudyDefinition
    /// All form values, `form.field`, the eligibility visit's taking precedence.
    public var values: [String: String]
    public var eligibilityValues: [String: String]
    public var consents: [ConsentRecord]
    public var lastDecision: String?
    /// The allocation at enrolment.
    public var allocation: Allocation?
    /// Draws in later randomizations, in the order they happened.
    public var stages: [StageAllocation]
    /// Doses given or skipped, in the order recorded.
    public var doses: [DoseRecord]
    public var visitDates: [String: Date]
    /// Each visit's form values, `form.field`, for rules that read one visit first (a dose's pre-dose check).
    public var visitValues: [String: [String: String]]
    /// Eligibility-visit fields whose form value and lab result disagree, and where lab-filled values came from.
    public var eligibilityConflicts: [String: String] = [:]
    public var eligibilitySources: [String: String] = [:]
    /// The assessment once worked out, shared by the copies of this file: a write that finds the file unchanged since
    /// it was read before the write reuses it rather than working it out again while the write is held.
    let assessed = AssessmentMemo()

    /// Every criterion on the data as they are now: forms and lab results alike.
    public func assessment() throws -> EligibilityAssessment {
        if let known = assessed.value { return known }
        let assessment = try EligibilityAssessment.assess(
            study: study, site: siteCode, values: eligibilityValues, conflicts: eligibilityConflicts, sources: eligibilitySources)
        assessed.value = assessment
        return assessment
    }

    public var validConsent: ConsentRecord? {
        consents.last { $0.withdrawnAt == nil && $0.formVersion == study.consent.current }
    }

    /// Allocated, still consenting, but not yet to the consent form version in force: an amendment asks for re-consent.
    public var needsReconsent: Bool {
        allocation != nil && validConsent == nil && consents.contains { $0.withdrawnAt == nil }
    }

    /// The arm the participant is in now: where their last stage draw led, else their arm at enrolment.
    public var arm: String? { stages.last?.armAfter ?? allocation?.arm }

    /// The participant's dose plan: their arm's, empty before allocation.
    public var dosePlan: [PlannedDose] { DoseRules.plan(study: schedule, arm: arm) }

    public var armHasDoses: Bool? { allocation.map { _ in !dosePlan.isEmpty } }

    /// When each dose was given, by dose code.
    public var doseTimes: [String: Date] {
        Dictionary(doses.compactMap { d in d.startedAt.map { (d.dose, $0) } }, uniquingKeysWith: { a, _ in a })
    }

    public var anchors: [String: Date] {
        AnchorTimes.resolve(
            study: schedule, values: values, allocatedAt: allocation?.allocatedAt, doses: doseTimes, armHasDoses: armHasDoses, zone: calendar.zone)
    }

    /// The participant's site's calendar, for windows in days and for "today".
    public var calendar: SiteCalendar { SiteCalendar(study: study, site: siteCode) }

    /// Values with one visit's own taking precedence.
    public func values(atVisit visit: String?) -> [String: String] {
        guard let visit, let own = visitValues[visit] else { return values }
        return values.merging(own) { _, new in new }
    }
}

/// A file's assessment, kept with it; a file is never changed once read (a change makes a new file), so what is kept
/// stays true.
final class AssessmentMemo: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: EligibilityAssessment?
    var value: EligibilityAssessment? {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}

public struct FluentScreeningRepository: Sendable {
    let store: Store
    public init(store: Store) { self.store = store }

    // MARK: Reading a participant's file

    public func file(participantID: UUID, scope: AccessScope) async throws -> ParticipantFile {
        try await Self.cachedFile(participantID: participantID, scope: scope, on: store.database)
    }

    /// The file as committed, from the cache when nothing changed since it was read. Never inside a transaction:
    /// what a transaction reads before its commit must not be kept.
    static func cachedFile(participantID: UUID, scope: AccessScope, on db: any Database) async throws -> ParticipantFile {
        try await cachedFileState(participantID: participantID, scope: scope, on: db).file
    }

    /// The participant's file inside a write that changes it, its revision raised: the one read before the write
    /// when nothing changed since (same revision, same current study version), else read again here.
    static func claimFile(
        participantID: UUID, scope: AccessScope, before: (file: ParticipantFile, revision: Int64)?, attempted: String?, on tx: any Database
    ) async throws -> ParticipantFile {
        let (_, revision, studyHash) = try await ParticipantRevision.claim(participantID, scope: scope, attempted: attempted, on: tx)
        if let study = try await FluentStudyRepository.current(on: tx, hash: studyHash),
            let file = ParticipantRevision.stillCurrent(before, revision: revision, study: study)
        {
            return file
        }
        return try await file(participantID: participantID, scope: scope, on: tx)
    }

    /// The file with the revision it is at least as new as.
    static func cachedFileAndRevision(participantID: UUID, scope: AccessScope, on db: any Database) async throws -> (file: ParticipantFile, revision: Int64) {
        let state = try await cachedFileState(participantID: participantID, scope: scope, on: db)
        return (state.file, state.revision)
    }

    /// The file with the revision and study version hash it was read at, which a later write compares with its own.
    static func cachedFileState(
        participantID: UUID, scope: AccessScope, on db: any Database
    ) async throws -> ParticipantFileCache.State {
        let sql = db as! any SQLDatabase
        guard let row = try await sql.raw("""
            SELECT site_id, revision, (SELECT definition_hash FROM study_versions ORDER BY version DESC LIMIT 1) AS study_hash
            FROM participants WHERE id = \(bind: participantID) AND deleted_at IS NULL
            """).first(), scope.siteIDs.contains(try row.decode(column: "site_id", as: UUID.self))
        else {
            throw StoreError.notFound(entity: "participant", id: participantID.uuidString)
        }
        let revision = try row.decode(column: "revision", as: Int64.self)
        guard let studyHash = try row.decode(column: "study_hash", as: String?.self) else {
            return (try await file(participantID: participantID, scope: scope, on: db), revision, nil)
        }
        if let file = ParticipantFileCache.shared.get(participantID, revision: revision, studyHash: studyHash) { return (file, revision, studyHash) }
        // Read after the revision, so the file is at least as new as the revision it is kept under. The site was
        // checked against the scope above; the shared read needs only that site.
        let siteScope = AccessScope(actor: scope.actor, siteIDs: [try row.decode(column: "site_id", as: UUID.self)])
        let file = try await ParticipantFileCache.shared.file(participantID, revision: revision, studyHash: studyHash) {
            try await Self.file(participantID: participantID, scope: siteScope, on: db, studyHash: studyHash)
        }
        return (file, revision, studyHash)
    }

    /// Three plain queries (the participant with its site, decision, slot and infusion; its form records; its
    /// consents): a file is read on every change to it, so it skips the model layer's per-row reflection.
    static func file(participantID: UUID, scope: AccessScope, on db: any Database, studyHash: String? = nil) async throws -> ParticipantFile {
        let sql = db as! any SQLDatabase
        var current = studyHash.flatMap { DefinitionCache.shared.get($0) }
        if current == nil { current = try await FluentStudyRepository.current(on: db)?.study }
        guard let study = current else { throw StoreError.notFound(entity: "study", id: "current") }
        let eligibilityVisitCode = study.eligibilityVisit ?? ""
        guard let row = try await sql.raw("""
            SELECT p.site_id, p.screening_number, p.status, p.created_at, p.updated_at, p.study_version, s.code AS site_code,
              (SELECT outcome FROM eligibility_reviews WHERE participant_id = p.id ORDER BY decided_at DESC LIMIT 1) AS decision,
              sl.arm, sl.stratum, sl.position, sl.allocated_at, sl.allocated_by,
              (SELECT COUNT(*) FROM lab_results l WHERE l.participant_id = p.id AND l.visit_code = \(bind: eligibilityVisitCode)) AS eligibility_labs
            FROM participants p JOIN sites s ON s.id = p.site_id
            LEFT JOIN randomization_slots sl ON sl.participant_id = p.id
            WHERE p.id = \(bind: participantID) AND p.deleted_at IS NULL
            """).first(), scope.siteIDs.contains(try row.decode(column: "site_id", as: UUID.self))
        else { throw StoreError.notFound(entity: "participant", id: participantID.uuidString) }
        let statusText = try row.decode(column: "status", as: String.self)
        guard let status = ParticipantStatus(rawValue: statusText) else { throw StoreError.invalid(field: "status", rule: "unknown status '\(statusText)'") }
        let participant = Participant(
            id: participantID, siteID: try row.decode(column: "site_id", as: UUID.self), screeningNumber: try row.decode(column: "screening_number", as: String.self),
            status: status, createdAt: try row.decode(column: "created_at", as: Date.self), updatedAt: try row.decode(column: "updated_at", as: Date.self))
        let studies = FluentStudyRepository(store: Store(database: db))
        let eligibilityVisit = study.eligibilityVisit
        var values: [String: String] = [:], eligibilityValues: [String: String] = [:], visitDates: [String: Date] = [:]
        var visitValues: [String: [String: String]] = [:]
        var versions: [Int: StudyDefinition] = [study.version: study]
        let records = try await sql.raw("""
            SELECT visit_code, form_code, study_version, data, created_at FROM form_records WHERE participant_id = \(bind: participantID) ORDER BY created_at
            """).all()
        for record in records {
            let visitCode = try record.decode(column: "visit_code", as: String.self), formCode = try record.decode(column: "form_code", as: String.self)
            let studyVersion = try record.decode(column: "study_version", as: Int.self)
            let data = FluentFormRecordRepository.values(try record.decode(column: "data", as: String.self))
            if versions[studyVersion] == nil { versions[studyVersion] = try? await studies.definition(version: studyVersion) }
            let form = versions[studyVersion]?.form(formCode)
            for (key, value) in data {
                let name = "\(formCode).\(key)"
                visitValues[visitCode, default: [:]][name] = value
                if visitCode == eligibilityVisit { eligibilityValues[name] = value; values[name] = value }
                else if values[name] == nil || eligibilityValues[name] == nil { values[name] = value }
            }
            // A visit happened on the first date it recorded, else when it was entered.
            let firstDate = form?.fields.first { $0.type == .date || $0.type == .datetime }.flatMap { data[$0.code] }
            let when = try firstDate.flatMap { DateParsing.instant($0) ?? DateParsing.day($0) } ?? record.decode(column: "created_at", as: Date.self)
            if let existing = visitDates[visitCode] { visitDates[visitCode] = min(existing, when) } else { visitDates[visitCode] = when }
        }
        // The screening visit happened on the date that dates the screening, not on an earlier date it records (a
        // finding's onset).
        if let eligibilityVisit, let field = study.eligibility.date, let text = eligibilityValues[field], let day = DateParsing.day(String(text.prefix(10))) {
            visitDates[eligibilityVisit] = day
        }
        let consents = try await sql.raw("""
            SELECT id, form_version, signed_at, taken_by, withdrawn_at, withdrawal_scope FROM consents WHERE participant_id = \(bind: participantID) ORDER BY signed_at
            """).all().map {
            ConsentRecord(
                id: try $0.decode(column: "id", as: UUID.self), formVersion: try $0.decode(column: "form_version", as: String.self),
                signedAt: try $0.decode(column: "signed_at", as: Date.self), takenBy: try $0.decode(column: "taken_by", as: String.self),
                withdrawnAt: try $0.decode(column: "withdrawn_at", as: Date?.self),
                withdrawalScope: try $0.decode(column: "withdrawal_scope", as: String?.self).flatMap(WithdrawalScope.init(rawValue:)))
        }
        // The consent criterion reads the consent record (TrialDomain's `ConsentRule`).
        var consentSource: String?
        if let consented = ConsentRule.value(records: consents.map { ($0.formVersion, $0.withdrawnAt != nil) }, current: study.consent.current) {
            eligibilityValues[ConsentRule.name] = consented
            values[ConsentRule.name] = consented
            consentSource = consents.last.map { c in
                "consent record: version \(c.formVersion), signed \(VisitLabValues.minute(c.signedAt)) by \(c.takenBy)"
                    + (c.withdrawnAt.map { ", withdrawn \(VisitLabValues.minute($0))" } ?? "")
            }
        }
        // Lab results entered through the lab API at the eligibility visit are read like the form fields linked to them.
        var merged: VisitLabValues.Merged?
        if let eligibilityVisit {
            // Most files have no lab result at the eligibility visit: the count in the first read spares the query.
            let results = try row.decode(column: "eligibility_labs", as: Int.self) == 0 ? [] : try await sql.raw("""
                SELECT test_code, value, collected_at, entered_value, entered_unit FROM lab_results
                WHERE participant_id = \(bind: participantID) AND visit_code = \(bind: eligibilityVisit)
                """).all().map {
                StoredLabResult(
                    test: try $0.decode(column: "test_code", as: String.self), canonical: try $0.decode(column: "value", as: Double.self),
                    collectedAt: try $0.decode(column: "collected_at", as: Date.self), enteredValue: try $0.decode(column: "entered_value", as: Double.self),
                    enteredUnit: try $0.decode(column: "entered_unit", as: String.self))
            }
            if !results.isEmpty || study.eligibility.date != nil {
                let zone = SiteCalendar(study: study, site: try row.decode(column: "site_code", as: String.self)).zone
                let m = VisitLabValues.merge(study: study, visit: eligibilityVisit, values: eligibilityValues, results: results, zone: zone)
                for name in Set(m.values.keys).union(eligibilityValues.keys) where m.values[name] != eligibilityValues[name] { values[name] = m.values[name] }
                eligibilityValues = m.values
                merged = m
            }
        }
        let allocation = try Self.allocation(row, participantID: participantID)
        let doses = try await sql.raw("""
            SELECT dose_code, given, started_at, ended_at, lot, expiry, weight_kg, amount, unit, deviation_reason, deviation, skip_reason, recorded_by, created_at
            FROM doses WHERE participant_id = \(bind: participantID) ORDER BY created_at
            """).all().map(Self.dose)
        let stages = allocation == nil ? [] : try await Self.stages(participantID, on: sql)
        var file = ParticipantFile(
            participant: participant, siteCode: try row.decode(column: "site_code", as: String.self), study: study, schedule: study, values: values,
            eligibilityValues: eligibilityValues, consents: consents, lastDecision: try row.decode(column: "decision", as: String?.self),
            allocation: allocation, stages: stages, doses: doses, visitDates: visitDates, visitValues: visitValues)
        file.eligibilityConflicts = merged?.conflicts ?? [:]
        file.eligibilitySources = merged?.sources ?? [:]
        if let consentSource { file.eligibilitySources[ConsentRule.name] = consentSource }
        // The schedule followed: the version at enrolment, then each amendment since as it applies (TrialDomain's
        // `AmendedSchedule`: not at all, whole, or from its date).
        if let enrolled = try row.decode(column: "study_version", as: Int?.self), enrolled < study.version {
            func definition(_ version: Int) async throws -> StudyDefinition {
                if let known = versions[version] { return known }
                return try await studies.definition(version: version)
            }
            file.schedule = try await definition(enrolled)
            for version in (enrolled + 1)...study.version {
                let definition = try await definition(version)
                file.schedule = AmendedSchedule.follow(file.schedule, then: definition, anchors: file.anchors, calendar: file.calendar)
            }
        }
        return file
    }

    static func dose(_ row: any SQLRow) throws -> DoseRecord {
        DoseRecord(
            dose: try row.decode(column: "dose_code", as: String.self), given: try row.decode(column: "given", as: Bool.self),
            startedAt: try row.decode(column: "started_at", as: Date?.self), endedAt: try row.decode(column: "ended_at", as: Date?.self),
            lot: try row.decode(column: "lot", as: String?.self), expiry: try row.decode(column: "expiry", as: String?.self),
            weightKg: try row.decode(column: "weight_kg", as: Double?.self), amount: try row.decode(column: "amount", as: Double?.self),
            unit: try row.decode(column: "unit", as: String?.self), deviationReason: try row.decode(column: "deviation_reason", as: String?.self),
            deviation: try row.decode(column: "deviation", as: Bool.self), skipReason: try row.decode(column: "skip_reason", as: String?.self),
            recordedBy: try row.decode(column: "recorded_by", as: String.self), recordedAt: try row.decode(column: "created_at", as: Date.self))
    }

    /// A slot's allocation from a row with its `arm`, `stratum`, `position`, `allocated_at` and `allocated_by`; nil if
    /// the slot is not allocated.
    static func allocation(_ row: any SQLRow, participantID: UUID) throws -> Allocation? {
        guard let arm = try row.decode(column: "arm", as: String?.self), let at = try row.decode(column: "allocated_at", as: Date?.self) else { return nil }
        return Allocation(
            participantID: participantID, arm: arm, stratum: try row.decode(column: "stratum", as: String.self), position: try row.decode(column: "position", as: Int.self),
            allocatedAt: at, allocatedBy: try row.decode(column: "allocated_by", as: String?.self) ?? "")
    }

    // MARK: Eligibility

    public func assess(participantID: UUID, scope: AccessScope) async throws -> EligibilityAssessment {
        let file = try await file(participantID: participantID, scope: scope)
        return try file.assessment()
    }

    /// Records the investigator's decision: eligible, or a screen failure with the criteria that failed.
    /// Refused while any criterion cannot be told.
    public func decideEligibility(participantID: UUID, scope: AccessScope, now: Date) async throws -> EligibilityAssessment {
        let before = try? await Self.cachedFileAndRevision(participantID: participantID, scope: scope, on: store.database)
        _ = try? before?.file.assessment()
        return try await store.write { tx in
            let file = try await Self.claimFile(participantID: participantID, scope: scope, before: before, attempted: "eligibility decision", on: tx)
            guard [.screening, .eligible, .needsReview, .consented].contains(file.participant.status) else {
                throw StoreError.invalid(field: "status", rule: "eligibility is decided during screening; the participant is \(file.participant.status.rawValue)")
            }
            let assessment = try file.assessment()
            if assessment.outcome == .cannotTell {
                let open = assessment.criteria.filter { $0.result == .cannotTell }
                let missing = Set(open.flatMap(\.missing)).sorted()
                throw StoreError.invalid(
                    field: "eligibility",
                    rule: "cannot be confirmed while \(open.count) criteria cannot be told (\(open.map(\.code).joined(separator: ", "))); missing: \(missing.joined(separator: ", "))")
            }
            let reviewID = UUID.timeOrdered()
            let outcome = assessment.outcome == .met ? "eligible" : "screen_failed"
            let failedCriteria = assessment.failed.map(\.code).joined(separator: ",")
            let assessmentText = String(decoding: try JSONEncoder.iso.encode(assessment), as: UTF8.self)
            try await (tx as! any SQLDatabase).raw("""
                INSERT INTO eligibility_reviews (id, participant_id, outcome, failed_criteria, assessment, study_version, decided_by, decided_at)
                VALUES (\(bind: reviewID), \(bind: participantID), \(bind: outcome), \(bind: failedCriteria), \(bind: assessmentText),
                \(bind: assessment.studyVersion), \(bind: scope.actor), \(bind: now))
                """).run()
            let newStatus: ParticipantStatus =
                assessment.outcome == .met ? (file.validConsent == nil ? .eligible : .consented) : .screenFailed
            try await AuditChain.append(
                on: tx, actor: scope.actor, action: .create, entity: "eligibility_review", entityID: reviewID.uuidString,
                siteID: file.participant.siteID.uuidString, reason: nil,
                changes: [
                    .init(field: "outcome", old: nil, new: outcome),
                    .init(field: "failed_criteria", old: nil, new: failedCriteria.isEmpty ? nil : failedCriteria),
                ], now: now)
            try await Self.setStatus(file.participant, to: newStatus, reason: "eligibility decided: \(outcome)", actor: scope.actor, now: now, on: tx)
            return assessment
        }
    }

    /// After data of the eligibility visit change: an "eligible" decision the criteria no longer support sends a
    /// participant not yet allocated back to the investigator ("needs review"); once allocated, the participant
    /// stays in their arm (intention to treat) and a protocol deviation is raised, once per distinct finding.
    static func recheckEligibility(participantID: UUID, scope: AccessScope, now: Date, on tx: any Database) async throws {
        // Most saves come before any decision: one small read settles those.
        let decision = try await (tx as! any SQLDatabase).raw("""
            SELECT outcome FROM eligibility_reviews WHERE participant_id = \(bind: participantID) ORDER BY decided_at DESC LIMIT 1
            """).first()?.decode(column: "outcome", as: String.self)
        guard decision == "eligible" else { return }
        let file = try await Self.file(participantID: participantID, scope: scope, on: tx)
        let current = try file.assessment()
        guard let unsupported = EligibilityStanding.unsupported(decision: file.lastDecision, current: current) else { return }
        let finding = EligibilityStanding.describe(unsupported)
        if file.allocation == nil {
            guard [.eligible, .consented].contains(file.participant.status) else { return }
            try await Self.setStatus(
                file.participant, to: .needsReview, reason: "the eligible decision no longer holds: \(finding)", actor: scope.actor, now: now, on: tx)
            return
        }
        let sql = tx as! any SQLDatabase
        let detail = "eligibility after allocation: \(finding)"
        if try await sql.raw("""
            SELECT id FROM protocol_deviations WHERE participant_id = \(bind: participantID) AND kind = 'eligibility' AND detail = \(bind: detail)
            """).first() != nil { return }
        let id = UUID.timeOrdered()
        try await sql.raw("""
            INSERT INTO protocol_deviations (id, participant_id, site_id, kind, detail, raised_by, raised_at)
            VALUES (\(bind: id), \(bind: participantID), \(bind: file.participant.siteID), 'eligibility', \(bind: detail), \(bind: scope.actor), \(bind: now))
            """).run()
        try await AuditChain.append(
            on: tx, actor: scope.actor, action: .create, entity: "protocol_deviation", entityID: id.uuidString, siteID: file.participant.siteID.uuidString,
            reason: nil, changes: [.init(field: "kind", old: nil, new: "eligibility"), .init(field: "detail", old: nil, new: detail)], now: now)
    }

    static func setStatus(_ participant: Participant, to status: ParticipantStatus, reason: String, actor: String, now: Date, on tx: any Database) async throws {
        guard participant.status != status else { return }
        let sql = tx as! any SQLDatabase
        // The status the caller read is normally still the stored one; the update says so, else it is read here.
        var old = participant.status.rawValue
        if try await sql.raw("""
            UPDATE participants SET status = \(bind: status.rawValue), updated_at = \(bind: now), revision = revision + 1
            WHERE id = \(bind: participant.id) AND status = \(bind: old) RETURNING id
            """).first() == nil
        {
            guard let row = try await sql.raw("SELECT status FROM participants WHERE id = \(bind: participant.id)").first() else { return }
            old = try row.decode(column: "status", as: String.self)
            guard old != status.rawValue else { return }
            try await sql.raw("""
                UPDATE participants SET status = \(bind: status.rawValue), updated_at = \(bind: now), revision = revision + 1 WHERE id = \(bind: participant.id)
                """).run()
        }
        try await AuditChain.append(
            on: tx, actor: actor, action: .update, entity: "participant", entityID: participant.id.uuidString, siteID: participant.siteID.uuidString,
            reason: reason, changes: [.init(field: "status", old: old, new: status.rawValue)], now: now)
    }

    // MARK: Consent

    public func recordConsent(participantID: UUID, formVersion: String, signedAt: Date, scope: AccessScope, now: Date) async throws -> ConsentRecord {
        let before = try? await Self.cachedFileAndRevision(participantID: participantID, scope: scope, on: store.database)
        return try await store.write { tx in
            let file = try await Self.claimFile(participantID: participantID, scope: scope, before: before, attempted: "consent", on: tx)
            guard file.study.consent.versions.contains(where: { $0.version == formVersion }) else {
                throw StoreError.invalid(
                    field: "formVersion", rule: "must be one of the study's consent versions (\(file.study.consent.versions.map(\.version).joined(separator: ", ")))")
            }
            if signedAt > now.addingTimeInterval(300) { throw StoreError.invalid(field: "signedAt", rule: "must not be in the future") }
            // After allocation only a re-consent to a new current version (an amendment's) may be dated later.
            let reconsent = formVersion == file.study.consent.current && file.needsReconsent
            if let allocation = file.allocation, signedAt > allocation.allocatedAt, !reconsent {
                throw StoreError.invalid(field: "signedAt", rule: "consent cannot be dated after the allocation (\(AuditEntry.timestamp(allocation.allocatedAt)))")
            }
            if let screening = file.anchors[file.study.anchors.first?.code ?? ""], file.calendar.day(signedAt) < file.calendar.day(screening) - 28 {
                throw StoreError.invalid(field: "signedAt", rule: "is more than 28 days before screening (\(file.calendar.dayText(screening)))")
            }
            let consentID = UUID.timeOrdered()
            try await (tx as! any SQLDatabase).raw("""
                INSERT INTO consents (id, participant_id, form_version, signed_at, taken_by, created_at)
                VALUES (\(bind: consentID), \(bind: participantID), \(bind: formVersion), \(bind: signedAt), \(bind: scope.actor), \(bind: now))
                """).run()
            try await AuditChain.append(
                on: tx, actor: scope.actor, action: .create, entity: "consent", entityID: consentID.uuidString, siteID: file.participant.siteID.uuidString,
                reason: nil,
                changes: [.init(field: "form_version", old: nil, new: formVersion), .init(field: "signed_at", old: nil, new: AuditEntry.timestamp(signedAt))],
                now: now)
            if file.participant.status == .eligible, formVersion == file.study.consent.current {
                try await Self.setStatus(file.participant, to: .consented, reason: "consent recorded", actor: scope.actor, now: now, on: tx)
            }
            return ConsentRecord(id: consentID, formVersion: formVersion, signedAt: signedAt, takenBy: scope.actor, withdrawnAt: nil, withdrawalScope: nil)
        }
    }

    public func withdrawConsent(
        participantID: UUID, withdrawnAt: Date, withdrawal: WithdrawalScope, reason: String?, scope: AccessScope, now: Date
    ) async throws {
        let before = try? await Self.cachedFileAndRevision(participantID: participantID, scope: scope, on: store.database)
        try await store.write { tx in
            let file = try await Self.claimFile(participantID: participantID, scope: scope, before: before, attempted: "consent withdrawal", on: tx)
            guard let consent = file.consents.last(where: { $0.withdrawnAt == nil }), let model = try await ConsentModel.find(consent.id, on: tx) else {
                throw StoreError.invalid(field: "consent", rule: "there is no consent in force to withdraw")
            }
            guard withdrawnAt >= consent.signedAt else { throw StoreError.invalid(field: "withdrawnAt", rule: "must not be before the consent was signed") }
            try await AuditChain.append(
                on: tx, actor: scope.actor, action: .update, entity: "consent", entityID: consent.id.uuidString, siteID: file.participant.siteID.uuidString,
                reason: reason,
                changes: [
                    .init(field: "withdrawn_at", old: nil, new: AuditEntry.timestamp(withdrawnAt)),
                    .init(field: "withdrawal_scope", old: nil, new: withdrawal.rawValue),
                ], now: now)
            model.withdrawnAt = withdrawnAt
            model.withdrawalScope = withdrawal.rawValue
            try await model.save(on: tx)
            try await Self.setStatus(file.participant, to: .withdrawn, reason: reason ?? "consent withdrawn", actor: scope.actor, now: now, on: tx)
        }
    }

    // MARK: Randomization

    /// Generates the concealed list once, when the study goes live. Without a seed, one is drawn from the system's generator.
    /// `length` overrides the positions per stratum (the study's setting, else its enrolment target, at least 100).
    public func generateList(seedHex: String?, actor: String, now: Date, length: Int? = nil) async throws -> (seed: String, slots: Int) {
        try await store.write { tx in
            try await LockCheck.require(WriteTarget(siteID: nil), kind: .data, actor: actor, attempted: "list generation", on: tx)
            guard let study = try await FluentStudyRepository(store: Store(database: tx)).current() else {
                throw StoreError.notFound(entity: "study", id: "current")
            }
            if try await RandomizationListModel.query(on: tx).filter(\.$studyCode == study.code).first() != nil {
                throw StoreError.duplicate(field: "randomization list", value: study.code)
            }
            let seed: String
            if let seedHex {
                guard ChaCha20Generator.seed(hex: seedHex) != nil else { throw StoreError.invalid(field: "seed", rule: "must be 64 hexadecimal digits") }
                seed = seedHex.lowercased()
            } else {
                var system = SystemRandomNumberGenerator()
                seed = AuditChain.hex((0..<32).map { _ in UInt8.random(in: 0...255, using: &system) })
            }
            let list = RandomizationListModel()
            list.id = UUID.timeOrdered()
            list.studyCode = study.code
            list.studyVersion = study.version
            list.method = study.randomization.method
            list.seed = seed
            list.generatedBy = actor
            list.generatedAt = now
            try await list.create(on: tx)
            var count = 0
            if study.randomization.method == "permuted_blocks" {
                var rng = ChaCha20Generator(seed: ChaCha20Generator.seed(hex: seed)!)
                let length = length ?? study.randomization.listLengthPerStratum ?? max(study.lifecycle.enrollment.target ?? 0, 100)
                let slots: [AllocationSlot]
                do {
                    slots = try AllocationList.generate(
                        arms: study.arms.filter { $0.ratio > 0 }.map { ($0.code, $0.ratio) }, blockSizes: study.randomization.blockSizes, strata: AllocationList.strata(study: study),
                        perStratum: length, using: &rng)
                } catch let error as RandomizationError {
                    throw StoreError.invalid(field: "randomization", rule: error.description)
                }
                let sql = tx as! any SQLDatabase
                for chunk in stride(from: 0, to: slots.count, by: 200) {
                    var insert = sql.insert(into: RandomizationSlotModel.schema).columns("id", "list_id", "stratum", "position", "block", "block_size", "arm")
                    for slot in slots[chunk..<min(chunk + 200, slots.count)] {
                        insert = insert.values(
                            SQLBind(UUID.timeOrdered()), SQLBind(list.id!), SQLBind(slot.stratum), SQLBind(slot.position), SQLBind(slot.block),
                            SQLBind(slot.blockSize), SQLBind(slot.arm))
                    }
                    try await insert.run()
                }
                count = slots.count
            }
            // The seed stays out of the audit trail's readable fields: it is the statistician's to see.
            try await AuditChain.append(
                on: tx, actor: actor, action: .create, entity: "randomization_list", entityID: list.id!.uuidString, siteID: nil, reason: nil,
                changes: [
                    .init(field: "method", old: nil, new: list.method), .init(field: "positions", old: nil, new: String(count)),
                    .init(field: "seed_sha256_prefix", old: nil, new: String(AuditChain.sha256Hex(seed).prefix(16))),
                ], now: now)
            return (seed, count)
        }
    }

    public func listSlots() async throws -> (method: String, seed: String, generatedAt: Date, slots: [RandomizationSlotModel])? {
        guard let list = try await RandomizationListModel.query(on: store.database).first() else { return nil }
        let slots = try await RandomizationSlotModel.query(on: store.database).filter(\.$listID == list.id!).sort(\.$stratum).sort(\.$position).all()
        return (list.method, list.seed, list.generatedAt, slots)
    }

    /// Allocates an eligible, consented participant. A repeated request returns the same allocation.
    public func allocate(participantID: UUID, scope: AccessScope, now: Date) async throws -> Allocation {
        if let existing = try await existingAllocation(participantID, scope: scope) { return existing }
        let before = try? await Self.cachedFileAndRevision(participantID: participantID, scope: scope, on: store.database)
        // Worked out before the write; the write reuses it if nothing changed in between.
        _ = try? before?.file.assessment()
        do {
            return try await store.write { tx in try await Self.allocate(participantID: participantID, scope: scope, now: now, before: before, on: tx) }
        } catch let refused as EligibilityNoLongerHolds {
            // Nothing is allocated; the attempt itself is kept in the audit trail.
            _ = try await store.write { tx in
                try await AuditChain.append(
                    on: tx, actor: scope.actor, action: .create, entity: "allocation_refused", entityID: participantID.uuidString,
                    siteID: refused.siteID.uuidString, reason: nil, changes: [.init(field: "eligibility", old: nil, new: refused.finding)], now: now)
            }
            throw StoreError.conflict(field: "eligibility", rule: "the eligible decision no longer holds: \(refused.finding); an investigator must review it")
        } catch {
            // A concurrent request for the same participant won: answer with its allocation.
            if let existing = try await existingAllocation(participantID, scope: scope) { return existing }
            throw error
        }
    }

    /// Allocates participants in the order given, as separate requests arriving one after another would be, but
    /// sharing commits: the list hands out its slots in arrival order, so the order is the one that matters.
    public func allocateInOrder(_ requests: [(participantID: UUID, now: Date)], scope: AccessScope) async throws -> [Result<Allocation, any Error>] {
        // The files are read many at once, each used inside its write only if nothing changed since; a part's files
        // are read while the part before it is written, and each part is written only once the one before is, so
        // the order holds.
        let database = store.database
        @Sendable func read(_ range: Range<Int>) async -> [(file: ParticipantFile, revision: Int64)?] {
            await withTaskGroup(of: (Int, (file: ParticipantFile, revision: Int64)?).self) { group in
                var befores = [(file: ParticipantFile, revision: Int64)?](repeating: nil, count: range.count)
                for index in range {
                    let id = requests[index].participantID
                    group.addTask {
                        let before = try? await Self.cachedFileAndRevision(participantID: id, scope: scope, on: database)
                        _ = try? before?.file.assessment()
                        return (index - range.lowerBound, before)
                    }
                }
                for await (offset, before) in group { befores[offset] = before }
                return befores
            }
        }
        let part = 256
        var results: [Result<Allocation, any Error>] = []
        var befores = await read(0..<min(part, requests.count))
        for start in stride(from: 0, to: requests.count, by: part) {
            let range = start..<min(start + part, requests.count)
            let following = range.upperBound
            async let next = read(following..<min(following + part, requests.count))
            let bodies = zip(requests[range], befores).map { request, before in
                { @Sendable (tx: any Database) async throws -> Allocation in
                    try await Self.allocate(participantID: request.participantID, scope: scope, now: request.now, before: before, on: tx)
                }
            }
            results += await store.writeInOrder(bodies)
            befores = await next
        }
        return results
    }

    func existingAllocation(_ participantID: UUID, scope: AccessScope) async throws -> Allocation? {
        try await FluentParticipantRepository.requireVisible(id: participantID, scope: scope, on: store.database)
        let row = try await (store.database as! any SQLDatabase).raw(
            "SELECT arm, stratum, position, allocated_at, allocated_by FROM randomization_slots WHERE participant_id = \(bind: participantID)"
        ).first()
        return try row.flatMap { try Self.allocation($0, participantID: participantID) }
    }

    static func allocate(
        participantID: UUID, scope: AccessScope, now: Date, before: (file: ParticipantFile, revision: Int64)? = nil, on tx: any Database
    ) async throws -> Allocation {
        let file = try await Self.claimFile(participantID: participantID, scope: scope, before: before, attempted: "allocation", on: tx)
        if let existing = file.allocation { return existing }
        let study = file.study
        try FluentStudyRepository.requireRecruiting(study, to: "participants are allocated")
        let sql = tx as! any SQLDatabase
        guard let listRow = try await sql.raw("SELECT id, method, seed FROM randomization_lists WHERE study_code = \(bind: study.code)").first() else {
            throw StoreError.invalid(field: "randomization", rule: "the allocation list has not been generated; the statistician generates it when the study goes live")
        }
        let listID = try listRow.decode(column: "id", as: UUID.self), method = try listRow.decode(column: "method", as: String.self)
        guard file.lastDecision == "eligible" else {
            throw StoreError.invalid(field: "eligibility", rule: "an investigator must confirm eligibility before allocation")
        }
        // The decision must still hold on the data as they are now, read in this same write.
        let current = try file.assessment()
        if let unsupported = EligibilityStanding.unsupported(decision: file.lastDecision, current: current) {
            throw EligibilityNoLongerHolds(siteID: file.participant.siteID, finding: EligibilityStanding.describe(unsupported))
        }
        if file.participant.status == .needsReview {
            throw EligibilityNoLongerHolds(siteID: file.participant.siteID, finding: "data changed after the decision; an investigator must decide again")
        }
        guard file.validConsent != nil else {
            throw StoreError.invalid(field: "consent", rule: "no consent in force to the current form version \(study.consent.current)")
        }
        if let window = study.randomization.window {
            guard let anchor = file.anchors[window.anchor] else {
                throw StoreError.invalid(field: window.anchor, rule: "its date is needed to check the allocation window")
            }
            // Days and weeks are the site's calendar days: from the start of the first to the end of the last.
            var earliest = anchor.addingTimeInterval(window.earliest.seconds), latest = anchor.addingTimeInterval(window.latest.seconds)
            if window.earliest.isCalendar { earliest = file.calendar.startOfDay(earliest) }
            if window.latest.isCalendar { latest = file.calendar.endOfDay(latest) }
            guard now >= earliest, now <= latest else {
                throw StoreError.invalid(
                    field: "allocation", rule: "must happen from \(window.anchor) \(window.earliest) to \(window.latest) (\(file.calendar.dayText(earliest)) to \(file.calendar.dayText(latest)))")
            }
        }
        let stratum: String
        do {
            stratum = try AllocationList.stratum(study: study, site: file.siteCode, values: file.eligibilityValues)
        } catch let error as RandomizationError {
            throw StoreError.invalid(field: "stratum", rule: error.description)
        }
        let isPostgres = sql.dialect.name != "sqlite"
        let slotID: UUID
        if method == "minimization" {
            // One allocation at a time per list, so the counts it reads are the counts it changes.
            if isPostgres { try await sql.raw("SELECT id FROM randomization_lists WHERE id = \(bind: listID) FOR UPDATE").run() }
            let taken = try await RandomizationSlotModel.query(on: tx).filter(\.$listID == listID).all()
            let levels = stratum.split(separator: "|").map(String.init)
            let counts = levels.map { level in
                Dictionary(grouping: taken.filter { $0.stratum.split(separator: "|").map(String.init).contains(level) }, by: \.arm).mapValues(\.count)
            }
            var rng = ChaCha20Generator(seed: ChaCha20Generator.seed(hex: try listRow.decode(column: "seed", as: String.self))!, stream: UInt64(taken.count))
            let arm = Minimization.choose(
                arms: study.arms.filter { $0.ratio > 0 }.map { ($0.code, $0.ratio) }, counts: counts, probability: study.randomization.minimizationProbability ?? 0.8, using: &rng)
            let slot = RandomizationSlotModel()
            slot.id = UUID.timeOrdered()
            slot.listID = listID
            slot.stratum = stratum
            slot.position = taken.filter { $0.stratum == stratum }.count + 1
            slot.block = 0
            slot.blockSize = 0
            slot.arm = arm
            try await slot.create(on: tx)
            slotID = slot.id!
        } else {
            guard let row = try await sql.raw(Self.nextFreeSlot(list: listID, stratum: stratum, postgres: isPostgres)).first()
            else { throw StoreError.invalid(field: "randomization", rule: RandomizationError.listExhausted(stratum: stratum).description) }
            slotID = try row.decode(column: "id", as: UUID.self)
        }
        guard let row = try await sql.raw("""
                UPDATE randomization_slots SET participant_id = \(bind: participantID), allocated_at = \(bind: now), allocated_by = \(bind: scope.actor)
                WHERE id = \(bind: slotID) RETURNING arm, stratum, position, allocated_at, allocated_by
                """).first(),
            let allocation = try Self.allocation(row, participantID: participantID)
        else { throw StoreError.notFound(entity: "allocation", id: participantID.uuidString) }
        try await AuditChain.append(
            on: tx, actor: scope.actor, action: .create, entity: "allocation", entityID: participantID.uuidString, siteID: file.participant.siteID.uuidString,
            reason: nil,
            changes: [
                .init(field: "arm", old: nil, new: allocation.arm), .init(field: "stratum", old: nil, new: allocation.stratum),
                .init(field: "position", old: nil, new: String(allocation.position)),
            ],
            now: now)
        // The participant's history is read by blinded users too: the arm stays in the allocation's own event.
        try await Self.setStatus(file.participant, to: .randomized, reason: "allocated", actor: scope.actor, now: now, on: tx)
        return allocation
    }

    /// The stratum's first unallocated position, locked on PostgreSQL so concurrent allocations take different ones.
    static func nextFreeSlot(list: UUID, stratum: String, postgres: Bool) -> SQLQueryString {
        // SQLite would otherwise look up the NULLs through the participant index and sort every free slot.
        let index = postgres ? "" : " INDEXED BY randomization_slots_unallocated"
        let lock = postgres ? " FOR UPDATE SKIP LOCKED" : ""
        return """
            SELECT id FROM randomization_slots\(unsafeRaw: index) WHERE list_id = \(bind: list) AND stratum = \(bind: stratum) AND participant_id IS NULL
            ORDER BY position LIMIT 1\(unsafeRaw: lock)
            """
    }

    /// An allocation refused because eligibility, re-checked in its write, no longer holds.
    struct EligibilityNoLongerHolds: Error {
        var siteID: UUID
        var finding: String
    }

    // MARK: Doses

    /// Whether a condition counts adverse events, itself or through a derived field it names.
    static func countsEvents(_ source: String, study: StudyDefinition) -> Bool {
        ([source] + (study.derived ?? []).map(\.expression)).contains { $0.contains(AdverseEventCount.function) }
    }

    /// Records a dose of the participant's plan as given or skipped, in one audited write. A dose the plan does not
    /// hold is refused without naming the arm; one outside its window needs the deviation's reason.
    public func recordDose(participantID: UUID, record input: DoseRecord, scope: AccessScope, now: Date) async throws -> DoseRecord {
        let before = try? await Self.cachedFileAndRevision(participantID: participantID, scope: scope, on: store.database)
        return try await store.write { tx in
            let file = try await Self.claimFile(participantID: participantID, scope: scope, before: before, attempted: "dose record", on: tx)
            guard let allocation = file.allocation else { throw StoreError.invalid(field: "allocation", rule: "the participant has not been allocated") }
            var record = input
            record.recordedBy = scope.actor
            record.recordedAt = now
            do {
                if record.given {
                    let checked = try DoseRules.checkGiven(
                        record, plan: file.dosePlan, anchors: file.anchors, existing: file.doses, allocatedAt: allocation.allocatedAt, now: now, calendar: file.calendar)
                    // A check that counts adverse events reads them as of this dose's start.
                    var history: ClinicalHistory?
                    if let check = checked.dose.check, let started = record.startedAt, Self.countsEvents(check, study: file.schedule) {
                        let events = try await (tx as! any SQLDatabase).raw("""
                            SELECT meddra, grade, onset_at, serious, attribution FROM adverse_events WHERE participant_id = \(bind: participantID)
                            """).all().map(FluentCohortRepository.adverseEvent)
                        history = ClinicalHistory(
                            adverseEvents: events, anchors: file.anchors, doses: file.doses.compactMap { $0.given ? $0.startedAt : nil }, asOf: started)
                    }
                    try DoseRules.checkBefore(
                        checked.dose, study: file.schedule, site: file.siteCode, values: file.values(atVisit: checked.dose.visit), history: history)
                    record.amount = checked.amount
                    record.unit = checked.dose.unit
                    record.deviation = checked.deviation
                    var anchors = file.anchors
                    anchors[checked.dose.code] = record.startedAt
                    for anchor in file.schedule.anchors where anchor.source == "first_dose" || anchor.source == "infusion" || anchor.source == "dose:\(checked.dose.code)" {
                        if anchors[anchor.code] == nil { anchors[anchor.code] = record.startedAt }
                    }
                    if let problem = AnchorTimes.firstOutOfOrder(study: file.schedule, times: anchors, calendar: file.calendar) {
                        throw StoreError.invalid(field: "startedAt", rule: "\(problem.later.label) cannot be before \(problem.earlier.label) (\(file.calendar.dayText(problem.date)))")
                    }
                } else {
                    _ = try DoseRules.checkSkipped(record, plan: file.dosePlan, existing: file.doses)
                }
            } catch let problem as DoseRules.Problem {
                switch problem {
                case .noSuchDose: throw StoreError.invalid(field: "dose", rule: "no such dose for this participant: '\(record.dose)'")
                case .alreadyRecorded(let code): throw StoreError.duplicate(field: "dose", value: code)
                case .invalid(let field, let rule): throw StoreError.invalid(field: field, rule: rule)
                }
            }
            let id = UUID.timeOrdered()
            try await (tx as! any SQLDatabase).raw("""
                INSERT INTO doses (id, participant_id, site_id, dose_code, given, started_at, ended_at, lot, expiry, weight_kg, amount, unit,
                  deviation_reason, deviation, skip_reason, recorded_by, created_at)
                VALUES (\(bind: id), \(bind: participantID), \(bind: file.participant.siteID), \(bind: record.dose), \(bind: record.given),
                  \(bind: record.startedAt), \(bind: record.endedAt), \(bind: record.lot), \(bind: record.expiry), \(bind: record.weightKg),
                  \(bind: record.amount), \(bind: record.unit), \(bind: record.deviationReason), \(bind: record.deviation), \(bind: record.skipReason),
                  \(bind: scope.actor), \(bind: now))
                """).run()
            // The audit trail names the dose and what happened, not the product or amount, which a blinded reader must not see.
            var changes: [FieldChange] = [.init(field: "dose", old: nil, new: record.dose), .init(field: "given", old: nil, new: record.given ? "yes" : "no")]
            if let started = record.startedAt { changes.append(.init(field: "started_at", old: nil, new: AuditEntry.timestamp(started))) }
            if let lot = record.lot { changes.append(.init(field: "lot", old: nil, new: lot)) }
            if record.deviation { changes.append(.init(field: "deviation", old: nil, new: record.deviationReason)) }
            if let reason = record.skipReason { changes.append(.init(field: "skip_reason", old: nil, new: reason)) }
            try await AuditChain.append(
                on: tx, actor: scope.actor, action: .create, entity: "dose", entityID: id.uuidString, siteID: file.participant.siteID.uuidString,
                reason: nil, changes: changes, now: now)
            return record
        }
    }

    /// Protocol deviations for the scope's sites, oldest first: doses given outside their window, and data entered
    /// after allocation that contradict eligibility.
    public func deviations(scope: AccessScope) async throws -> [ProtocolDeviation] {
        guard !scope.siteIDs.isEmpty else { return [] }
        let sites = scope.siteBinds
        let sql = store.database as! any SQLDatabase
        // Reviews are few beside the rows they review: read once, matched by key.
        var reviews: [String: (DeviationClass?, String?, String, Date)] = [:]
        for row in try await sql.raw("SELECT deviation_key, classification, note, reviewed_by, reviewed_at FROM deviation_reviews").all() {
            reviews[try row.decode(column: "deviation_key", as: String.self)] = (
                DeviationClass(rawValue: try row.decode(column: "classification", as: String.self)), try row.decode(column: "note", as: String?.self),
                try row.decode(column: "reviewed_by", as: String.self), try row.decode(column: "reviewed_at", as: Date.self))
        }
        func review(_ deviation: inout ProtocolDeviation) {
            guard let found = reviews[deviation.key] else { return }
            (deviation.classification, deviation.reviewNote, deviation.reviewedBy, deviation.reviewedAt) = (found.0, found.1, found.2, found.3)
        }
        let doses = try await sql.raw("""
            SELECT p.id, p.screening_number, d.id AS dose_id, d.dose_code, d.started_at, d.deviation_reason, d.recorded_by
            FROM doses d JOIN participants p ON p.id = d.participant_id AND p.deleted_at IS NULL
            WHERE d.deviation = \(bind: true) AND d.site_id IN (\(binds: sites)) ORDER BY d.started_at
            """).all().map {
            var deviation = ProtocolDeviation(
                participantID: try $0.decode(column: "id", as: UUID.self), screeningNumber: try $0.decode(column: "screening_number", as: String.self),
                kind: "dose", dose: try $0.decode(column: "dose_code", as: String.self), startedAt: try $0.decode(column: "started_at", as: Date.self),
                reason: try $0.decode(column: "deviation_reason", as: String?.self) ?? "", recordedBy: try $0.decode(column: "recorded_by", as: String.self))
            deviation.key = "dose:\(try $0.decode(column: "dose_id", as: UUID.self).uuidString)"
            review(&deviation)
            return deviation
        }
        let others = try await sql.raw("""
            SELECT p.id, p.screening_number, v.id AS deviation_id, v.kind, v.detail, v.raised_by, v.raised_at, v.visit_code
            FROM protocol_deviations v JOIN participants p ON p.id = v.participant_id AND p.deleted_at IS NULL
            WHERE v.site_id IN (\(binds: sites)) ORDER BY v.raised_at
            """).all().map {
            var deviation = ProtocolDeviation(
                participantID: try $0.decode(column: "id", as: UUID.self), screeningNumber: try $0.decode(column: "screening_number", as: String.self),
                kind: try $0.decode(column: "kind", as: String.self), dose: nil, startedAt: try $0.decode(column: "raised_at", as: Date.self),
                reason: try $0.decode(column: "detail", as: String.self), recordedBy: try $0.decode(column: "raised_by", as: String.self))
            deviation.key = try $0.decode(column: "deviation_id", as: UUID.self).uuidString
            deviation.visit = try $0.decode(column: "visit_code", as: String?.self)
            review(&deviation)
            return deviation
        }
        return (doses + others).sorted { $0.startedAt < $1.startedAt }
    }

    /// The participant's dose plan with each dose's state.
    public func doses(participantID: UUID, scope: AccessScope, now: Date) async throws -> [ScheduledDose] {
        let file = try await file(participantID: participantID, scope: scope)
        return DoseRules.schedule(study: file.schedule, arm: file.arm, anchors: file.anchors, records: file.doses, now: now, calendar: file.calendar)
    }

    // MARK: Schedule and screening log

    public func schedule(participantID: UUID, scope: AccessScope, now: Date) async throws -> [ScheduledVisit] {
        let file = try await file(participantID: participantID, scope: scope)
        return ParticipantSchedule.build(
            study: file.schedule, anchors: file.anchors, done: try await visitDates(file), now: now, arm: file.arm, calendar: file.calendar)
    }

    /// When each visit was done (TrialDomain's `VisitCompletion`): its first date, once its required data exist,
    /// whether entered on forms or as lab results.
    public func visitDates(_ file: ParticipantFile) async throws -> [String: Date] {
        VisitCompletion.dates(study: file.schedule, entered: try await Self.visitEntries(file, on: store.database))
    }

    /// What each visit holds, from the file's forms and the participant's lab results.
    static func visitEntries(_ file: ParticipantFile, on db: any Database) async throws -> [String: VisitCompletion.Entered] {
        var entered: [String: VisitCompletion.Entered] = [:]
        for (visit, first) in file.visitDates {
            entered[visit] = VisitCompletion.Entered(values: file.visitValues[visit] ?? [:], labs: [], firstAt: first)
        }
        for row in try await (db as! any SQLDatabase).raw("""
            SELECT visit_code, test_code, MIN(collected_at) AS first FROM lab_results WHERE participant_id = \(bind: file.participant.id)
            GROUP BY visit_code, test_code
            """).all()
        {
            guard let first = try row.decode(column: "first", as: Date?.self) else { continue }
            let visit = try row.decode(column: "visit_code", as: String.self)
            var data = entered[visit] ?? VisitCompletion.Entered(values: [:], labs: [], firstAt: first)
            data.labs.insert(try row.decode(column: "test_code", as: String.self).uppercased())
            data.firstAt = min(data.firstAt, first)
            entered[visit] = data
        }
        return entered
    }

    /// The numbers a CONSORT diagram starts from, for the scope's sites: a few grouped queries, whatever the cohort's size.
    public func screeningLog(scope: AccessScope) async throws -> ScreeningLog {
        guard !scope.siteIDs.isEmpty else { return ScreeningLog(screened: 0, eligible: 0, screenFailed: 0, consented: 0, randomized: 0, randomizedByArm: [:], failures: []) }
        let sql = store.database as! any SQLDatabase
        let sites = scope.siteBinds
        func count(_ query: SQLQueryString) async throws -> Int { try await sql.raw(query).first()?.decode(column: "n", as: Int.self) ?? 0 }
        let screened = try await count("SELECT COUNT(*) AS n FROM participants WHERE deleted_at IS NULL AND site_id IN (\(binds: sites))")
        let consented = try await count("""
            SELECT COUNT(DISTINCT c.participant_id) AS n FROM consents c JOIN participants p ON p.id = c.participant_id
            WHERE p.deleted_at IS NULL AND p.site_id IN (\(binds: sites))
            """)
        var byArm: [String: Int] = [:]
        for row in try await sql.raw("""
            SELECT sl.arm, COUNT(*) AS n FROM randomization_slots sl JOIN participants p ON p.id = sl.participant_id
            WHERE p.deleted_at IS NULL AND p.site_id IN (\(binds: sites)) GROUP BY sl.arm
            """).all()
        {
            byArm[try row.decode(column: "arm", as: String.self)] = try row.decode(column: "n", as: Int.self)
        }
        // Each participant's latest decision.
        var eligible = 0
        var failures: [ScreeningLog.Failure] = []
        for row in try await sql.raw("""
            SELECT p.screening_number, r.outcome, r.failed_criteria FROM eligibility_reviews r JOIN participants p ON p.id = r.participant_id
            WHERE p.deleted_at IS NULL AND p.site_id IN (\(binds: sites))
              AND r.decided_at = (SELECT MAX(r2.decided_at) FROM eligibility_reviews r2 WHERE r2.participant_id = r.participant_id)
            ORDER BY p.screening_number
            """).all()
        {
            switch try row.decode(column: "outcome", as: String.self) {
            case "eligible": eligible += 1
            case "screen_failed":
                failures.append(
                    ScreeningLog.Failure(
                        screeningNumber: try row.decode(column: "screening_number", as: String.self),
                        criteria: try row.decode(column: "failed_criteria", as: String.self).split(separator: ",").map(String.init)))
            default: break
            }
        }
        var log = ScreeningLog(
            screened: screened, eligible: eligible, screenFailed: failures.count, consented: consented, randomized: byArm.values.reduce(0, +),
            randomizedByArm: byArm, failures: failures)
        log.enteredInError = try await count("SELECT COUNT(*) AS n FROM participants WHERE deleted_at IS NOT NULL AND site_id IN (\(binds: sites))")
        return log
    }
}

extension JSONEncoder {
    static var iso: JSONEncoder {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = .sortedKeys
        return encoder
    }
}

extension JSONDecoder {
    static var iso: JSONDecoder {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }
}
