import FluentKit
import FluentSQL
import Foundation
import TrialDomain

public struct LabResult: Codable, Equatable, Sendable {
    public var id: UUID
    public var visit: String
    public var test: String
    public var collectedAt: Date
    public var value: Double
    public var unit: String
    public var enteredValue: Double
    public var enteredUnit: String
    public var uln: Double?
    public var lln: Double?
    public var baseline: Double?
    public var gradeV4: Int?
    public var gradeV5: Int?
    public var basisV4: String?
    public var basisV5: String?
    public var baselineGrade: Int?
    public var treatmentEmergent: Bool

    /// "1 → 3": the shift from the baseline grade (v4.03), when both are known.
    public var shift: String? {
        guard let baselineGrade, let gradeV4 else { return nil }
        return "\(baselineGrade) → \(gradeV4)"
    }
}

public struct AdverseEventInput: Codable, Equatable, Sendable {
    public var meddra: String
    public var grade: Int
    public var onsetAt: Date
    public var resolvedAt: Date?
    public var seriousness: [Seriousness]
    public var attribution: Attribution
    public var expected: Bool
    public var actionTaken: String
    public var outcome: String
    public var awareAt: Date?

    public init(
        meddra: String, grade: Int, onsetAt: Date, resolvedAt: Date? = nil, seriousness: [Seriousness] = [], attribution: Attribution,
        expected: Bool, actionTaken: String, outcome: String, awareAt: Date? = nil
    ) {
        self.meddra = meddra
        self.grade = grade
        self.onsetAt = onsetAt
        self.resolvedAt = resolvedAt
        self.seriousness = seriousness
        self.attribution = attribution
        self.expected = expected
        self.actionTaken = actionTaken
        self.outcome = outcome
        self.awareAt = awareAt
    }
}

public struct AdverseEvent: Codable, Equatable, Sendable {
    public var id: UUID
    public var participantID: UUID
    public var term: String
    public var meddra: String
    public var version: String
    public var grade: Int
    public var gradeDefinition: String
    public var onsetAt: Date
    public var resolvedAt: Date?
    public var seriousness: [Seriousness]
    public var attribution: Attribution
    public var expected: Bool
    public var actionTaken: String
    public var outcome: String
    public var clock: ReportingClock?

    public var serious: Bool { !seriousness.isEmpty }
}

public struct EDISHPoint: Codable, Equatable, Sendable {
    public var screeningNumber: String
    public var arm: String?
    public var peakALTxULN: Double
    public var peakBilirubinxULN: Double
}

public struct FluentSafetyRepository: Sendable {
    let store: Store
    let tables: [GradingTable]
    public init(store: Store, tables: [GradingTable]) {
        self.store = store
        self.tables = tables
    }

    // MARK: Terminology

    /// Replaces a version's catalogue in one transaction.
    public func importTerms(_ terms: [CTCAETerm], version: String, actor: String, now: Date) async throws -> Int {
        try await store.write { tx in
            try await CTCAETermModel.query(on: tx).filter(\.$version == version).delete()
            for term in terms {
                let model = CTCAETermModel()
                model.id = UUID.timeOrdered()
                model.version = version
                model.meddra = term.meddra
                model.soc = term.soc
                model.term = term.term
                model.grades = String(decoding: try JSONEncoder().encode(term.grades), as: UTF8.self)
                model.definition = term.definition
                try await model.create(on: tx)
            }
            try await AuditChain.append(
                on: tx, actor: actor, action: .update, entity: "terminology", entityID: "CTCAE \(version)", siteID: nil,
                reason: "catalogue imported", changes: [.init(field: "terms", old: nil, new: String(terms.count))], now: now)
            return terms.count
        }
    }

    public func seedTermsIfEmpty(_ terms: [CTCAETerm], version: String, now: Date) async throws {
        if try await CTCAETermModel.query(on: store.database).filter(\.$version == version).count() > 0 { return }
        _ = try await importTerms(terms, version: version, actor: "system", now: now)
    }

    public func searchTerms(_ query: String, version: String = "4.03", limit: Int = 20) async throws -> [CTCAETerm] {
        let all = try await CTCAETermModel.query(on: store.database).filter(\.$version == version).sort(\.$term).all().map(Self.term)
        let q = query.lowercased().trimmingCharacters(in: .whitespaces)
        return Array((q.isEmpty ? all : all.filter { $0.term.lowercased().contains(q) || $0.meddra == q }).prefix(limit))
    }

    static func term(_ m: CTCAETermModel) -> CTCAETerm {
        CTCAETerm(
            version: m.version, meddra: m.meddra, soc: m.soc, term: m.term,
            grades: (try? JSONDecoder().decode([String?].self, from: Data(m.grades.utf8))) ?? [], definition: m.definition)
    }

    // MARK: Labs

    /// Records one result: converted to the canonical unit, checked for plausibility, graded by CTCAE v4.03 and v5.0 against
    /// the site's range and the participant's baseline, all in one audited write.
    public func recordLab(
        participantID: UUID, visit: String, test code: String, value: Double, unit: String, collectedAt: Date, scope: AccessScope, now: Date
    ) async throws -> LabResult {
        if collectedAt > now.addingTimeInterval(300) { throw StoreError.invalid(field: "collectedAt", rule: "must not be in the future") }
        // The checks that need the participant's file run inside the write, against the file kept for the revision
        // the write reads there (with the baseline, in one statement shared by the batch), so they hold at the commit.
        // A file kept from before is tried first; should the participant have changed since, it is read again.
        let database = store.database
        var known: ParticipantFileCache.State? = try await ParticipantFileCache.shared.latest(participantID) {
            try await FluentScreeningRepository.cachedFileState(participantID: participantID, scope: scope, on: database)
        }
        for _ in 0..<3 {
            let state: ParticipantFileCache.State
            if let known { state = known } else { state = try await FluentScreeningRepository.cachedFileState(participantID: participantID, scope: scope, on: database) }
            // The catalogue's labs and those the study adds.
            guard let test = state.file.study.labTest(code) else {
                throw StoreError.invalid(field: "test", rule: "must be one of \(state.file.study.labTests.map(\.code).joined(separator: ", "))")
            }
            let checked = Self.labsReadByChecks(state.file.study, hash: state.studyHash)
            do {
                let saved = try await store.insert(
                    probe: Self.labProbe(participantID, test: test.code, visits: Baseline.visits(of: state.file.study), before: collectedAt),
                    duplicate: .duplicate(field: "test", value: "\(test.code) at \(visit)")
                ) { row in
                    guard let row, scope.siteIDs.contains(try row.decode(column: "site_id", as: UUID.self)) else {
                        throw StoreError.notFound(entity: "participant", id: participantID.uuidString)
                    }
                    guard try row.decode(column: "revision", as: Int64.self) == state.revision,
                        try row.decode(column: "study_hash", as: String?.self) == state.studyHash
                    else { throw StaleFile() }
                    // Some lock might cover it, an edit check reads it or a signature covers the casebook: the save goes
                    // the way that weighs each lock, runs the checks and invalidates signatures in its write (below).
                    if try row.decode(column: "locks", as: Int.self) + row.decode(column: "signed", as: Int.self) > 0 || checked.contains(test.code) {
                        throw LocksToWeigh()
                    }
                    return try labRows(
                        participantID: participantID, file: state.file, visit: visit, test: test, value: value, unit: unit,
                        collectedAt: collectedAt, baseline: try row.decode(column: "baseline", as: Double?.self), scope: scope, now: now)
                }
                // A screening result a criterion reads changes what eligibility sees. The file kept here is dropped;
                // after an "eligible" decision the revision is raised too (so every process and the allocation's own
                // write read it anew) and a decision it no longer supports goes back for review. Raising it for every
                // such result would send concurrent saves for the participant round their retries for nothing.
                if visit == state.file.study.eligibilityVisit, Self.readByEligibility(state.file.study, hash: state.studyHash).contains(test.code) {
                    ParticipantFileCache.shared.forget(participantID)
                    if state.file.lastDecision == "eligible" {
                        try await store.write { tx in
                            try await ParticipantRevision.bump(participantID, on: tx)
                            try await FluentScreeningRepository.recheckEligibility(participantID: participantID, scope: scope, now: now, on: tx)
                        }
                    }
                }
                return saved
            } catch is StaleFile {
                known = nil
            } catch is LocksToWeigh {
                // Rare: a freeze or lock on the study, site or participant. A visit save weighs each in its write.
                return try await saveVisit(
                    participantID: participantID, visit: visit, forms: [], labs: [VisitLab(test: code, value: value, unit: unit, collectedAt: collectedAt)],
                    reason: nil, scope: scope, now: now
                ).labs[0]
            }
        }
        throw StoreError.invalid(field: "participant", rule: "changed by other writes while this result was saved; save it again")
    }

    /// TrialDomain's `VisitLabValues.readByEligibility`, worked out once per published definition (by its hash).
    static func readByEligibility(_ study: StudyDefinition, hash: String?) -> Set<String> {
        labSets("eligibility", hash: hash) { VisitLabValues.readByEligibility(study: study) }
    }

    /// TrialDomain's `EditChecks.labsRead`, once per published definition.
    static func labsReadByChecks(_ study: StudyDefinition, hash: String?) -> Set<String> {
        guard study.dataManagement?.editChecks?.isEmpty == false else { return [] }
        return labSets("checks", hash: hash) { EditChecks.labsRead(study: study) }
    }

    /// A set of lab codes worked out from a definition, kept by what it is and the definition's hash.
    static func labSets(_ kind: String, hash: String?, _ work: () -> Set<String>) -> Set<String> {
        guard let hash else { return work() }
        let key = "\(kind)|\(hash)"
        if let known = labSetsLock.withLock({ labSetsKept[key] }) { return known }
        let labs = work()
        labSetsLock.withLock { labSetsKept[key] = labs }
        return labs
    }
    nonisolated(unsafe) static var labSetsKept: [String: Set<String>] = [:]
    static let labSetsLock = NSLock()

    /// The participant changed after its file was read.
    struct StaleFile: Error {}
    /// A lock may cover the participant, or the result feeds an edit check.
    struct LocksToWeigh: Error {}

    /// What the write reads for a lab result: the participant's site and revision, the current study's hash, and the
    /// baseline (the last result of the test from the baseline visits, of which a study has at most two).
    static func labProbe(_ participantID: UUID, test: String, visits: [String], before: Date) -> Probe {
        Probe(
            select: """
                SELECT probe.probe_index, p.site_id, p.revision,
                  (SELECT definition_hash FROM study_versions ORDER BY version DESC LIMIT 1) AS study_hash,
                  (SELECT l.value FROM lab_results l WHERE l.participant_id = probe.participant_id AND l.test_code = probe.test_code
                    AND l.visit_code IN (probe.visit_a, probe.visit_b) AND l.collected_at < probe.collected_before
                    ORDER BY l.collected_at DESC LIMIT 1) AS baseline,
                  (SELECT COUNT(*) FROM data_locks k WHERE k.level = 'study' OR k.site_id = p.site_id OR k.participant_id = p.id) AS locks,
                  (SELECT COUNT(*) FROM signatures g WHERE g.participant_id = p.id AND g.invalidated_at IS NULL) AS signed
                FROM probe JOIN participants p ON p.id = probe.participant_id AND p.deleted_at IS NULL
                """,
            columns: ["participant_id", "test_code", "visit_a", "visit_b", "collected_before"],
            values: [participantID, test, visits.first ?? "", visits.dropFirst().first ?? "", before])
    }

    /// The checks that need the file, the grades, and the rows of one result.
    func labRows(
        participantID: UUID, file: ParticipantFile, visit: String, test: LabTest, value: Double, unit: String,
        collectedAt: Date, baseline: Double?, scope: AccessScope, now: Date
    ) throws -> CheckedRows<LabResult> {
        guard file.study.visit(visit) != nil else { throw StoreError.invalid(field: "visit", rule: "names unknown visit '\(visit)'") }
        let calendar = file.calendar
        if let born = file.study.birthDate(in: file.values), calendar.day(collectedAt) < calendar.day(born) {
            throw StoreError.invalid(field: "collectedAt", rule: "cannot be before the participant's birth (\(calendar.dayText(born)))")
        }
        if let first = file.study.anchors.first, let start = file.anchors[first.code], calendar.day(collectedAt) < calendar.day(start) {
            throw StoreError.invalid(field: "collectedAt", rule: "cannot be before \(first.label) (\(calendar.dayText(start)))")
        }
        let evaluation: LabEvaluation
        do {
            evaluation = try LabEvaluator.evaluate(
                test: test, value: value, unit: unit, collectedAt: collectedAt, study: file.study, site: file.siteCode, sex: file.study.sex(in: file.values),
                birthDate: file.study.birthDate(in: file.values), baseline: baseline, tables: tables)
        } catch let error as LabEvaluationError {
            switch error {
            case .unit(let rule): throw StoreError.invalid(field: "unit", rule: rule)
            case .implausible(let rule): throw StoreError.invalid(field: "value", rule: rule)
            }
        }
        let range = evaluation.range, gradeV4 = evaluation.gradeV4, gradeV5 = evaluation.gradeV5
        let record = LabResult(
            id: UUID.timeOrdered(), visit: visit, test: test.code, collectedAt: collectedAt, value: evaluation.canonical, unit: test.unit,
            enteredValue: value, enteredUnit: unit, uln: range?.high, lln: range?.low, baseline: baseline,
            gradeV4: gradeV4?.grade, gradeV5: gradeV5?.grade, basisV4: evaluation.basisV4, basisV5: evaluation.basisV5,
            baselineGrade: evaluation.baselineGrade, treatmentEmergent: evaluation.treatmentEmergent)
        let changes: [FieldChange] = [
            .init(field: "test", old: nil, new: test.code), .init(field: "visit", old: nil, new: visit),
            .init(field: "value", old: nil, new: "\(FormValidator.format(value)) \(unit)"),
            .init(field: "grade_v4", old: nil, new: gradeV4.map { String($0.grade) }),
            .init(field: "grade_v5", old: nil, new: gradeV5.map { String($0.grade) }),
        ]
        let siteID = file.participant.siteID
        return CheckedRows(
            rows: [
                RowInsert(
                    table: LabResultModel.schema,
                    columns: [
                        "id", "participant_id", "site_id", "visit_code", "test_code", "collected_at", "value", "unit", "entered_value",
                        "entered_unit", "uln", "lln", "baseline", "grade_v4", "grade_v5", "basis_v4", "basis_v5", "baseline_grade",
                        "treatment_emergent", "created_by", "created_at",
                    ],
                    values: [
                        record.id, participantID, siteID, visit, record.test, collectedAt, record.value, record.unit, value, unit, record.uln,
                        record.lln, record.baseline, record.gradeV4, record.gradeV5, record.basisV4, record.basisV5, record.baselineGrade,
                        record.treatmentEmergent, scope.actor, now,
                    ])
            ],
            audit: AuditDraft(
                actor: scope.actor, action: .create, entity: "lab_result", entityID: record.id.text, siteID: siteID.text,
                reason: nil, changes: changes, now: now),
            answer: record)
    }

    public func labs(participantID: UUID, scope: AccessScope) async throws -> [LabResult] {
        try await FluentParticipantRepository.requireVisible(id: participantID, scope: scope, on: store.database)
        // Plain rows: the model layer's per-row reflection cost more than the query on a casebook page.
        return try await (store.database as! any SQLDatabase).raw("""
            SELECT id, visit_code, test_code, collected_at, value, unit, entered_value, entered_unit, uln, lln, baseline,
              grade_v4, grade_v5, basis_v4, basis_v5, baseline_grade, treatment_emergent
            FROM lab_results WHERE participant_id = \(bind: participantID) ORDER BY collected_at
            """).all().map(Self.lab)
    }

    static func lab(_ row: any SQLRow) throws -> LabResult {
        LabResult(
            id: try row.decode(column: "id", as: UUID.self), visit: try row.decode(column: "visit_code", as: String.self),
            test: try row.decode(column: "test_code", as: String.self), collectedAt: try row.decode(column: "collected_at", as: Date.self),
            value: try row.decode(column: "value", as: Double.self), unit: try row.decode(column: "unit", as: String.self),
            enteredValue: try row.decode(column: "entered_value", as: Double.self), enteredUnit: try row.decode(column: "entered_unit", as: String.self),
            uln: try row.decode(column: "uln", as: Double?.self), lln: try row.decode(column: "lln", as: Double?.self),
            baseline: try row.decode(column: "baseline", as: Double?.self), gradeV4: try row.decode(column: "grade_v4", as: Int?.self),
            gradeV5: try row.decode(column: "grade_v5", as: Int?.self), basisV4: try row.decode(column: "basis_v4", as: String?.self),
            basisV5: try row.decode(column: "basis_v5", as: String?.self), baselineGrade: try row.decode(column: "baseline_grade", as: Int?.self),
            treatmentEmergent: try row.decode(column: "treatment_emergent", as: Bool.self))
    }

    /// Hy's law at each visit with ALT or AST and bilirubin, by ULN and by baseline, with the study's multiples.
    public func hysLaw(participantID: UUID, scope: AccessScope) async throws -> [(visit: String, check: HysLawCheck)] {
        let labs = try await labs(participantID: participantID, scope: scope)
        return Self.hysLaw(labs: labs, settings: try await FluentStudyRepository(store: store).current()?.safety.hysLaw)
    }

    public static func hysLaw(labs: [LabResult], settings: HysLawSettings?) -> [(visit: String, check: HysLawCheck)] {
        var result: [(String, HysLawCheck)] = []
        for visit in labs.reduce(into: [String](), { if !$0.contains($1.visit) { $0.append($1.visit) } }) {
            let at = Dictionary(labs.filter { $0.visit == visit }.map { ($0.test, $0) }, uniquingKeysWith: { a, _ in a })
            if let check = HysLawCheck.evaluate(
                alt: at["ALT"]?.value, ast: at["AST"]?.value, bilirubin: at["BILI"]?.value, altULN: at["ALT"]?.uln, astULN: at["AST"]?.uln,
                bilirubinULN: at["BILI"]?.uln, altBaseline: at["ALT"]?.baseline, astBaseline: at["AST"]?.baseline, bilirubinBaseline: at["BILI"]?.baseline,
                transaminaseMultiple: settings?.transaminaseMultiple ?? 3, bilirubinMultiple: settings?.bilirubinMultiple ?? 2)
            {
                result.append((visit, check))
            }
        }
        return result
    }

    // MARK: Adverse events

    public func recordAdverseEvent(participantID: UUID, input: AdverseEventInput, scope: AccessScope, now: Date) async throws -> AdverseEvent {
        try await store.write { tx in
            let file = try await FluentScreeningRepository.file(participantID: participantID, scope: scope, on: tx)
            try await LockCheck.require(
                WriteTarget(siteID: file.participant.siteID, participantID: participantID), kind: .data, actor: scope.actor, attempted: "adverse event", on: tx)
            let version = file.study.safety.ctcaeVersion.hasPrefix("4") ? "4.03" : file.study.safety.ctcaeVersion
            guard let termModel = try await CTCAETermModel.query(on: tx).filter(\.$version == version).filter(\.$meddra == input.meddra).first() else {
                throw StoreError.invalid(field: "meddra", rule: "\(input.meddra) is not a CTCAE v\(version) term in the catalogue")
            }
            let term = Self.term(termModel)
            guard (1...5).contains(input.grade), input.grade <= term.grades.count, term.grades[input.grade - 1] != nil else {
                let defined = term.grades.enumerated().compactMap { $0.element == nil ? nil : String($0.offset + 1) }
                throw StoreError.invalid(field: "grade", rule: "\(term.term) has grades \(defined.joined(separator: ", ")) in CTCAE v\(version)")
            }
            if input.onsetAt > now.addingTimeInterval(300) { throw StoreError.invalid(field: "onsetAt", rule: "must not be in the future") }
            if let resolved = input.resolvedAt, resolved < input.onsetAt { throw StoreError.invalid(field: "resolvedAt", rule: "must not be before onsetAt") }
            if input.grade == 5 && !input.seriousness.contains(.death) {
                throw StoreError.invalid(field: "seriousness", rule: "a grade 5 event is fatal, so it is serious with the criterion death")
            }
            if !input.seriousness.isEmpty {
                guard let aware = input.awareAt else { throw StoreError.invalid(field: "awareAt", rule: "a serious event needs the time the site learned of it") }
                if aware < input.onsetAt { throw StoreError.invalid(field: "awareAt", rule: "the site cannot learn of an event before its onset") }
            }
            for (field, text) in [("actionTaken", input.actionTaken), ("outcome", input.outcome)] where text.trimmingCharacters(in: .whitespaces).isEmpty {
                throw StoreError.invalid(field: field, rule: "is required")
            }
            let model = AdverseEventModel()
            model.id = UUID.timeOrdered()
            model.participantID = participantID
            model.siteID = file.participant.siteID
            model.ctcaeVersion = version
            model.meddra = term.meddra
            model.term = term.term
            model.grade = input.grade
            model.onsetAt = input.onsetAt
            model.resolvedAt = input.resolvedAt
            model.serious = !input.seriousness.isEmpty
            model.seriousness = input.seriousness.map(\.rawValue).joined(separator: ",")
            model.attribution = input.attribution.rawValue
            model.expected = input.expected
            model.actionTaken = input.actionTaken
            model.outcome = input.outcome
            model.awareAt = input.awareAt
            model.createdBy = scope.actor
            model.createdAt = now
            try await model.create(on: tx)
            try await FluentSignatureRepository.invalidate(participantID: participantID, visit: nil, forms: [], actor: scope.actor, now: now, on: tx)
            try await AuditChain.append(
                on: tx, actor: scope.actor, action: .create, entity: "adverse_event", entityID: model.id!.uuidString, siteID: file.participant.siteID.uuidString,
                reason: nil,
                changes: [
                    .init(field: "term", old: nil, new: term.term), .init(field: "grade", old: nil, new: String(input.grade)),
                    .init(field: "serious", old: nil, new: model.seriousness.isEmpty ? "no" : model.seriousness),
                    .init(field: "attribution", old: nil, new: model.attribution),
                ], now: now)
            return Self.event(model, term: term, hours: file.study.safety.saeReportingHours)
        }
    }

    /// Marks a serious event as reported to the sponsor; the clock stops.
    public func reportToSponsor(eventID: UUID, reportedAt: Date, scope: AccessScope, now: Date) async throws -> AdverseEvent {
        try await store.write { tx in
            guard let model = try await AdverseEventModel.find(eventID, on: tx), scope.siteIDs.contains(model.siteID) else {
                throw StoreError.notFound(entity: "adverse event", id: eventID.uuidString)
            }
            try await LockCheck.require(
                WriteTarget(siteID: model.siteID, participantID: model.participantID), kind: .data, actor: scope.actor, attempted: "SAE report", on: tx)
            guard model.serious, let aware = model.awareAt else { throw StoreError.invalid(field: "serious", rule: "only a serious event is reported on the clock") }
            guard model.reportedAt == nil else { throw StoreError.invalid(field: "reportedAt", rule: "the event was already reported") }
            guard reportedAt >= aware else { throw StoreError.invalid(field: "reportedAt", rule: "cannot be before the site learned of the event") }
            try await AuditChain.append(
                on: tx, actor: scope.actor, action: .update, entity: "adverse_event", entityID: eventID.uuidString, siteID: model.siteID.uuidString,
                reason: "reported to the sponsor", changes: [.init(field: "reported_at", old: nil, new: AuditEntry.timestamp(reportedAt))], now: now)
            model.reportedAt = reportedAt
            try await model.save(on: tx)
            let study = try await FluentStudyRepository(store: Store(database: tx)).current()
            let term = try await CTCAETermModel.query(on: tx).filter(\.$version == model.ctcaeVersion).filter(\.$meddra == model.meddra).first().map(Self.term)
            return Self.event(model, term: term, hours: study?.safety.saeReportingHours ?? 24)
        }
    }

    /// `seriousOnly`: the serious events alone, as the sponsor-clock list needs (a filter in the query, not after it).
    public func adverseEvents(participantID: UUID?, scope: AccessScope, seriousOnly: Bool = false) async throws -> [AdverseEvent] {
        guard !scope.siteIDs.isEmpty else { return [] }
        var query = AdverseEventModel.query(on: store.database).filter(\.$siteID ~~ Array(scope.siteIDs))
        if seriousOnly { query = query.filter(\.$serious == true) }
        if let participantID {
            try await FluentParticipantRepository.requireVisible(id: participantID, scope: scope, on: store.database)
            query = query.filter(\.$participantID == participantID)
        }
        let models = try await query.sort(\.$onsetAt).all()
        let hours = try await FluentStudyRepository(store: store).current()?.safety.saeReportingHours ?? 24
        let terms = Dictionary(
            try await CTCAETermModel.query(on: store.database).filter(\.$meddra ~~ Array(Set(models.map(\.meddra)))).all().map { ("\($0.version)|\($0.meddra)", Self.term($0)) },
            uniquingKeysWith: { a, _ in a })
        return models.map { Self.event($0, term: terms["\($0.ctcaeVersion)|\($0.meddra)"], hours: hours) }
    }

    static func event(_ m: AdverseEventModel, term: CTCAETerm?, hours: Int) -> AdverseEvent {
        AdverseEvent(
            id: m.id!, participantID: m.participantID, term: m.term, meddra: m.meddra, version: m.ctcaeVersion, grade: m.grade,
            gradeDefinition: term.flatMap { $0.grades.indices.contains(m.grade - 1) ? $0.grades[m.grade - 1] : nil } ?? "",
            onsetAt: m.onsetAt, resolvedAt: m.resolvedAt, seriousness: m.seriousness.split(separator: ",").compactMap { Seriousness(rawValue: String($0)) },
            attribution: Attribution(rawValue: m.attribution) ?? .unrelated, expected: m.expected, actionTaken: m.actionTaken, outcome: m.outcome,
            clock: m.awareAt.map { ReportingClock(awareAt: $0, hours: hours, reportedAt: m.reportedAt) })
    }

    // MARK: eDISH

    /// Peak ALT and peak total bilirubin, each as a multiple of the ULN it was graded against, one point per participant
    /// with both; one grouped query for the whole cohort. `withArms`: false for those who must not see allocations.
    public func edish(scope: AccessScope, withArms: Bool) async throws -> [EDISHPoint] {
        guard !scope.siteIDs.isEmpty else { return [] }
        let sites = scope.siteBinds
        return try await (store.database as! any SQLDatabase).raw("""
            SELECT p.screening_number, \(unsafeRaw: CurrentArm.column(slot: "sl", participant: "p.id")) AS arm,
              MAX(CASE WHEN l.test_code = 'ALT' THEN l.value / l.uln END) AS alt,
              MAX(CASE WHEN l.test_code = 'BILI' THEN l.value / l.uln END) AS bili
            FROM lab_results l JOIN participants p ON p.id = l.participant_id AND p.deleted_at IS NULL
            LEFT JOIN randomization_slots sl ON sl.participant_id = p.id
            WHERE l.site_id IN (\(binds: sites)) AND l.test_code IN ('ALT', 'BILI') AND l.uln > 0
            GROUP BY p.id, p.screening_number, sl.arm
            ORDER BY p.screening_number
            """).all().compactMap { row in
            guard let alt = try row.decode(column: "alt", as: Double?.self), let bili = try row.decode(column: "bili", as: Double?.self) else { return nil }
            return EDISHPoint(
                screeningNumber: try row.decode(column: "screening_number", as: String.self),
                arm: withArms ? try row.decode(column: "arm", as: String?.self) : nil, peakALTxULN: alt, peakBilirubinxULN: bili)
        }
    }
}
