import FluentKit
import FluentSQL
import Foundation
import TrialDomain

/// Values of one form at one visit for one participant, attributed to the study version it was collected under.
public struct FormRecord: Sendable, Equatable, Codable {
    public var id: UUID
    public var participantID: UUID
    public var visit: String
    public var form: String
    public var studyVersion: Int
    public var values: [String: String]
    public var createdAt: Date
    public var updatedAt: Date
}

public protocol FormRecordRepository: Sendable {
    /// Creates or updates the record; an update keeps the version the record was first collected under.
    func save(
        participantID: UUID, visit: String, form: String, values: [String: String], reason: String?, scope: AccessScope, now: Date
    ) async throws -> FormRecord
    func records(participantID: UUID, scope: AccessScope) async throws -> [FormRecord]
}

public struct FluentFormRecordRepository: FormRecordRepository {
    let store: Store
    public init(store: Store) { self.store = store }

    public func save(
        participantID: UUID, visit: String, form formCode: String, values: [String: String], reason: String?, scope: AccessScope, now: Date
    ) async throws -> FormRecord {
        try await save(participantID: participantID, visit: visit, forms: [(formCode, values)], reason: reason, scope: scope, now: now)[0]
    }

    /// Several forms of one visit, as a site enters a visit's pages together: all are saved or none, in one write
    /// with one audit event per record. The dates of all of them are checked against each other and against the
    /// participant's anchors as one set; a problem names the field as `form.field`.
    public func save(
        participantID: UUID, visit: String, forms entries: [(form: String, values: [String: String])], reason: String?, scope: AccessScope, now: Date
    ) async throws -> [FormRecord] {
        guard !entries.isEmpty else { throw StoreError.invalid(field: "forms", rule: "must name at least one form") }
        if let twice = Dictionary(grouping: entries.map(\.form), by: { $0 }).first(where: { $0.value.count > 1 })?.key {
            throw StoreError.invalid(field: "forms", rule: "form '\(twice)' is given more than once")
        }
        // The participant's file is read before the write; inside it, an unchanged revision shows nothing changed in
        // between, so the checks need not read the file again while the write is held.
        let before = try? await FluentScreeningRepository.cachedFileAndRevision(participantID: participantID, scope: scope, on: store.database)
        return try await store.write { tx in
            try await Self.save(participantID: participantID, visit: visit, forms: entries, reason: reason, scope: scope, now: now, before: before, on: tx)
        }
    }

    /// The forms of one visit inside a write the caller holds. Every form's problems are reported together; nothing is
    /// written unless all pass. `recheck`: re-check eligibility after a change to the eligibility visit.
    static func save(
        participantID: UUID, visit: String, forms entries: [(form: String, values: [String: String])], reason: String?, scope: AccessScope, now: Date,
        before: (file: ParticipantFile, revision: Int64)?, recheck: Bool = true, qualify: Bool? = nil, runChecks: Bool = true, on tx: any Database
    ) async throws -> [FormRecord] {
        let qualified = qualify ?? (entries.count > 1)
        let (siteID, revision, studyHash) = try await ParticipantRevision.claim(
            participantID, scope: scope, visit: visit, forms: entries.map(\.form), attempted: "form save at \(visit)", on: tx)
        let sql = tx as! any SQLDatabase
        var existing: [String: FormRecord] = [:]
        for row in try await sql.raw("""
            SELECT id, form_code, study_version, data, created_at, updated_at FROM form_records
            WHERE participant_id = \(bind: participantID) AND visit_code = \(bind: visit)
            """).all() {
            let formCode = try row.decode(column: "form_code", as: String.self)
            existing[formCode] = FormRecord(
                id: try row.decode(column: "id", as: UUID.self), participantID: participantID, visit: visit, form: formCode,
                studyVersion: try row.decode(column: "study_version", as: Int.self), values: Self.values(try row.decode(column: "data", as: String.self)),
                createdAt: try row.decode(column: "created_at", as: Date.self), updatedAt: try row.decode(column: "updated_at", as: Date.self))
        }
        var prepared: [(form: Form, study: StudyDefinition, clean: [String: String], existing: FormRecord?)] = []
        var problems: [(field: String, rule: String)] = []
        for (formCode, values) in entries {
            let found = existing[formCode]
            let study: StudyDefinition
            if let found {
                study = try await FluentStudyRepository(store: Store(database: tx)).definition(version: found.studyVersion)
            } else {
                guard let current = try await FluentStudyRepository.current(on: tx, hash: studyHash) else { throw StoreError.notFound(entity: "study", id: "current") }
                study = current
            }
            guard let form = study.form(formCode) else {
                throw StoreError.notFound(entity: "form", id: "'\(formCode)' in study version \(study.version)")
            }
            guard study.visit(visit) != nil, form.visits.contains(visit) else {
                throw StoreError.invalid(field: "visit", rule: "form '\(formCode)' is not collected at visit '\(visit)' (it is at \(form.visits.joined(separator: ", ")))")
            }
            do {
                // The site never changes, so the file read before the write names it; else one small read.
                let zone = before?.file.participant.siteID == siteID
                    ? SiteCalendar(study: study, site: before?.file.siteCode).zone : try await Self.zone(siteID, study: study, on: tx)
                prepared.append((form, study, try FormValidator.validate(values, form: form, now: now, zone: zone), found))
            } catch let error as FormValidationError {
                problems += error.problems.map { (qualified ? "\(formCode).\($0.field)" : $0.field, $0.rule) }
            }
        }
        if let first = problems.first {
            let more = problems.dropFirst().map { "\($0.field): \($0.rule)" }
            throw StoreError.invalid(field: first.field, rule: ([first.rule] + more).joined(separator: "; "))
        }
        let unchanged = prepared.dropFirst().allSatisfy { $0.study.version == prepared[0].study.version }
            ? ParticipantRevision.stillCurrent(before, revision: revision, study: prepared[0].study) : nil
        try await Self.checkSequence(
            participantID: participantID, visit: visit, forms: prepared.map { ($0.form, $0.clean) }, scope: scope, file: unchanged, on: tx)
        var saved: [FormRecord] = []
        var changedFields: Set<String> = []
        var written: [String] = []
        var created = false
        for (form, study, clean, existing) in prepared {
            let formCode = form.code
            let old = existing?.values ?? [:]
            let changes = Set(old.keys).union(clean.keys).sorted().compactMap { key -> FieldChange? in
                old[key] == clean[key] ? nil : FieldChange(field: "\(formCode).\(key)", old: old[key], new: clean[key])
            }
            if let existing, changes.isEmpty {
                saved.append(existing)
                continue
            }
            if existing != nil { changedFields.formUnion(changes.map(\.field)) }
            written.append(formCode)
            if existing == nil { created = true }
            let record = FormRecord(
                id: existing?.id ?? UUID.timeOrdered(), participantID: participantID, visit: visit, form: formCode,
                studyVersion: existing?.studyVersion ?? study.version, values: clean, createdAt: existing?.createdAt ?? now, updatedAt: now)
            let data = try Self.encode(clean)
            try await AuditChain.append(
                on: tx, actor: scope.actor, action: existing == nil ? .create : .update, entity: "form_record",
                entityID: record.id.uuidString, siteID: siteID.uuidString, reason: reason, changes: changes, now: now)
            if existing == nil {
                try await sql.raw("""
                    INSERT INTO form_records (id, participant_id, site_id, visit_code, form_code, study_version, data, created_at, updated_at)
                    VALUES (\(bind: record.id), \(bind: participantID), \(bind: siteID), \(bind: visit), \(bind: formCode), \(bind: record.studyVersion),
                    \(bind: data), \(bind: now), \(bind: now))
                    """).run()
            } else {
                try await sql.raw("UPDATE form_records SET data = \(bind: data), updated_at = \(bind: now) WHERE id = \(bind: record.id)").run()
            }
            saved.append(record)
        }
        if !written.isEmpty {
            try await FluentSignatureRepository.invalidate(participantID: participantID, visit: visit, forms: written, actor: scope.actor, now: now, on: tx)
        }
        // A change with a reason answers the open queries on the fields it changed.
        try await FluentQueryRepository.answer(participantID: participantID, fields: changedFields, visit: visit, reason: reason, scope: scope, now: now, on: tx)
        // The study's checks, when the save touched a form one of them reads; and a visit's first data may show it
        // late, or an earlier visit skipped. Both read the file as saved, once.
        let check = runChecks && !written.isEmpty && EditChecks.concern(study: prepared[0].study, forms: Set(written))
        let schedule = runChecks && created && Self.isScheduled(visit, in: prepared[0].study)
        if check || schedule {
            let file = try await FluentScreeningRepository.file(participantID: participantID, scope: scope, on: tx)
            if check { try await EditCheckRunner.apply(file: file, scope: scope, now: now, on: tx) }
            if schedule { try await FluentScreeningRepository.raiseScheduleDeviations(file: file, scope: scope, now: now, on: tx) }
        }
        // A file unchanged since before the write with no "eligible" decision has nothing to re-check.
        if recheck, visit == prepared[0].study.eligibilityVisit, unchanged.map({ $0.lastDecision == "eligible" }) ?? true {
            try await FluentScreeningRepository.recheckEligibility(participantID: participantID, scope: scope, now: now, on: tx)
        }
        return saved
    }

    public func records(participantID: UUID, scope: AccessScope) async throws -> [FormRecord] {
        try await FluentParticipantRepository.requireVisible(id: participantID, scope: scope, on: store.database)
        // Plain rows, as for a participant's file: the model layer's per-row reflection costs more than the query.
        return try await (store.database as! any SQLDatabase).raw("""
            SELECT id, visit_code, form_code, study_version, data, created_at, updated_at
            FROM form_records WHERE participant_id = \(bind: participantID) ORDER BY created_at
            """).all().map { row in
                FormRecord(
                    id: try row.decode(column: "id", as: UUID.self), participantID: participantID,
                    visit: try row.decode(column: "visit_code", as: String.self), form: try row.decode(column: "form_code", as: String.self),
                    studyVersion: try row.decode(column: "study_version", as: Int.self), values: Self.values(try row.decode(column: "data", as: String.self)),
                    createdAt: try row.decode(column: "created_at", as: Date.self), updatedAt: try row.decode(column: "updated_at", as: Date.self))
            }
    }

    /// Anchors must happen in their listed order, and no visit after screening may carry a date before the first anchor.
    /// `forms` are the forms being saved together, their values taken as already in the file. `file` is the
    /// participant's file when the caller knows it current; otherwise it is read here. With several forms a field is
    /// named `form.field`.
    static func checkSequence(
        participantID: UUID, visit: String, forms: [(form: Form, clean: [String: String])], scope: AccessScope, file known: ParticipantFile?,
        on tx: any Database
    ) async throws {
        let file: ParticipantFile
        if let known { file = known } else { file = try await FluentScreeningRepository.file(participantID: participantID, scope: scope, on: tx) }
        let qualified = forms.count > 1
        var values = file.values
        for (form, clean) in forms {
            for (key, value) in clean { values["\(form.code).\(key)"] = value }
        }
        let anchors = AnchorTimes.resolve(
            study: file.schedule, values: values, allocatedAt: file.allocation?.allocatedAt, doses: file.doseTimes, armHasDoses: file.armHasDoses,
            zone: file.calendar.zone)
        let calendar = file.calendar
        if let problem = AnchorTimes.firstOutOfOrder(study: file.schedule, times: anchors, calendar: calendar) {
            let sources = [problem.later.source, problem.earlier.source].compactMap { $0 }
            let field = forms.lazy.compactMap { form in
                sources.first { $0.hasPrefix("\(form.form.code).") }.map { qualified ? $0 : String($0.dropFirst(form.form.code.count + 1)) }
            }.first ?? forms[0].form.code
            throw StoreError.invalid(field: field, rule: "\(problem.later.label) cannot be before \(problem.earlier.label) (\(calendar.dayText(problem.date)))")
        }
        guard visit != file.study.eligibilityVisit, let first = file.study.anchors.first, let start = anchors[first.code] else { return }
        for (form, clean) in forms {
            for field in form.fields where field.type == .date || field.type == .datetime {
                guard let raw = clean[field.code], "\(form.code).\(field.code)" != first.source,
                    let date = DateParsing.instant(raw) ?? DateParsing.day(raw, in: calendar.zone), calendar.day(date) < calendar.day(start)
                else { continue }
                throw StoreError.invalid(
                    field: qualified ? "\(form.code).\(field.code)" : field.code, rule: "a \(visit) date cannot be before \(first.label) (\(calendar.dayText(start)))")
            }
        }
    }


    /// A visit placed by a window around an anchor, other than the eligibility visit: the ones a schedule can show late or missed.
    static func isScheduled(_ visit: String, in study: StudyDefinition) -> Bool {
        guard visit != study.eligibilityVisit, let definition = study.visit(visit) else { return false }
        return definition.anchor != nil && definition.target != nil
    }

    static func values(_ text: String) -> [String: String] {
        (try? JSONDecoder().decode([String: String].self, from: Data(text.utf8))) ?? [:]
    }

    /// The site's time zone, for "today"; one small read, and only when the study gives any site a zone.
    static func zone(_ siteID: UUID, study: StudyDefinition, on db: any Database) async throws -> TimeZone {
        guard study.sites.contains(where: { $0.timeZone != nil }) else { return SiteCalendar.utc }
        let code = try await (db as! any SQLDatabase).raw("SELECT code FROM sites WHERE id = \(bind: siteID)").first()?.decode(column: "code", as: String.self)
        return SiteCalendar(study: study, site: code).zone
    }

    static func encode(_ values: [String: String]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return String(decoding: try encoder.encode(values), as: UTF8.self)
    }
}
