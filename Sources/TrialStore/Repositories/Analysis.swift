import FluentKit
import FluentSQL
import Foundation
import TrialDomain

extension CohortNeeds {
    /// What the safety tables read: every lab the forms collect, at every visit, with its grade; every adverse event;
    /// the anchors that place doses and allocation.
    public static func safety(_ study: StudyDefinition) -> CohortNeeds {
        var needs = CohortNeeds(adverseEvents: true)
        for test in Set(study.forms.flatMap { $0.fields.compactMap { $0.lab?.uppercased() } }) { needs.labs[test] = .some(nil) }
        needs.labGrades = true
        return needs
    }
}

/// How each participant's follow-up ended, from the definition's end-of-study field, and who withdrew consent.
public struct ParticipantEnding: Sendable, Equatable {
    /// The choice recorded in the end-of-study field, when the study names one.
    public var choice: String?
    public var consentWithdrawn: Bool
}

/// The set-wise reads behind CONSORT and the safety tables: a few grouped queries, whatever the cohort's size.
public struct FluentAnalysisRepository: Sendable {
    let store: Store
    public init(store: Store) { self.store = store }

    /// Term and system organ class of each MedDRA code the scope's adverse events use, from the imported CTCAE
    /// catalogue of the event's version, else the study's own terms, else the term as recorded.
    public func adverseEventTerms(scope: AccessScope, study: StudyDefinition) async throws -> [String: (term: String, soc: String?)] {
        guard !scope.siteIDs.isEmpty else { return [:] }
        let sql = store.database as! any SQLDatabase
        var terms: [String: (term: String, soc: String?)] = [:]
        for row in try await sql.raw("""
            SELECT a.meddra, MIN(a.term) AS term, MIN(t.soc) AS soc FROM adverse_events a
            LEFT JOIN ctcae_terms t ON t.meddra = a.meddra AND t.version = a.ctcae_version
            WHERE a.site_id IN (\(binds: scope.siteBinds)) GROUP BY a.meddra
            """).all()
        {
            let meddra = try row.decode(column: "meddra", as: String.self)
            let own = study.adverseEventTerms?.first { $0.meddra == meddra }
            terms[meddra] = (try row.decode(column: "term", as: String.self), try row.decode(column: "soc", as: String?.self) ?? own?.soc)
        }
        return terms
    }

    /// Each allocated participant's ending: the end-of-study choice and a consent withdrawal.
    public func endings(scope: AccessScope, study: StudyDefinition) async throws -> [UUID: ParticipantEnding] {
        guard !scope.siteIDs.isEmpty else { return [:] }
        let sql = store.database as! any SQLDatabase
        var endings: [UUID: ParticipantEnding] = [:]
        for row in try await sql.raw("""
            SELECT DISTINCT c.participant_id FROM consents c JOIN participants p ON p.id = c.participant_id
            WHERE c.withdrawn_at IS NOT NULL AND p.deleted_at IS NULL AND p.site_id IN (\(binds: scope.siteBinds))
            """).all()
        {
            endings[try row.decode(column: "participant_id", as: UUID.self)] = ParticipantEnding(choice: nil, consentWithdrawn: true)
        }
        if let rule = study.participant?.endOfStudy, let named = study.field(named: rule.field) {
            let field = named.field.code
            for row in try await sql.raw("""
                SELECT participant_id, data FROM form_records WHERE form_code = \(bind: named.form.code) AND site_id IN (\(binds: scope.siteBinds))
                ORDER BY updated_at
                """).all()
            {
                let id = try row.decode(column: "participant_id", as: UUID.self)
                guard let choice = FluentFormRecordRepository.values(try row.decode(column: "data", as: String.self))[field], !choice.isEmpty else { continue }
                endings[id, default: ParticipantEnding(choice: nil, consentWithdrawn: false)].choice = choice
            }
        }
        return endings
    }

    /// The CONSORT 2010 flow of the scope's participants: assessed, excluded with reasons, allocated per arm and stage,
    /// dosed or not with reasons, lost, discontinued, analysed. Everyone allocated is analysed (intention to treat).
    /// `byArm` false pools the arms, for those who must not see allocations.
    public func consort(scope: AccessScope, study: StudyDefinition, byArm: Bool) async throws -> ConsortFlow {
        guard !scope.siteIDs.isEmpty else { return ConsortFlow(assessed: 0, excluded: 0, stages: [ConsortStage(label: "Randomized", randomized: 0, arms: [])]) }
        let sql = store.database as! any SQLDatabase
        let sites = scope.siteBinds
        struct Person {
            var status: String
            var arm: String?
            var allocatedAt: Date?
            var failed: [String] = []
            var given: [Date] = []
            var skipped: [(dose: String, reason: String?)] = []
            var stages: [(stage: String, arm: String, at: Date)] = []
        }
        var people: [UUID: Person] = [:]
        for row in try await sql.raw("""
            SELECT p.id, p.status, sl.arm, sl.allocated_at FROM participants p LEFT JOIN randomization_slots sl ON sl.participant_id = p.id
            WHERE p.deleted_at IS NULL AND p.site_id IN (\(binds: sites))
            """).all()
        {
            people[try row.decode(column: "id", as: UUID.self)] = Person(
                status: try row.decode(column: "status", as: String.self), arm: try row.decode(column: "arm", as: String?.self),
                allocatedAt: try row.decode(column: "allocated_at", as: Date?.self))
        }
        for row in try await sql.raw("""
            SELECT r.participant_id, r.failed_criteria FROM eligibility_reviews r JOIN participants p ON p.id = r.participant_id
            WHERE p.deleted_at IS NULL AND p.site_id IN (\(binds: sites)) AND r.outcome = 'screen_failed'
              AND r.decided_at = (SELECT MAX(r2.decided_at) FROM eligibility_reviews r2 WHERE r2.participant_id = r.participant_id)
            """).all()
        {
            let id = try row.decode(column: "participant_id", as: UUID.self)
            people[id]?.failed = try row.decode(column: "failed_criteria", as: String.self).split(separator: ",").map(String.init)
        }
        for row in try await sql.raw("""
            SELECT participant_id, dose_code, given, started_at, skip_reason FROM doses WHERE site_id IN (\(binds: sites))
            """).all()
        {
            let id = try row.decode(column: "participant_id", as: UUID.self)
            if try row.decode(column: "given", as: Bool.self), let at = try row.decode(column: "started_at", as: Date?.self) {
                people[id]?.given.append(at)
            } else {
                people[id]?.skipped.append((try row.decode(column: "dose_code", as: String.self), try row.decode(column: "skip_reason", as: String?.self)))
            }
        }
        if !(study.randomizations ?? []).isEmpty {
            for row in try await sql.raw("""
                SELECT ss.participant_id, l.randomization, ss.arm_after, ss.allocated_at FROM stage_slots ss JOIN stage_lists l ON l.id = ss.list_id
                JOIN participants p ON p.id = ss.participant_id
                WHERE p.site_id IN (\(binds: sites)) AND ss.arm_after IS NOT NULL AND ss.allocated_at IS NOT NULL
                """).all()
            {
                let id = try row.decode(column: "participant_id", as: UUID.self)
                people[id]?.stages.append((
                    try row.decode(column: "randomization", as: String.self), try row.decode(column: "arm_after", as: String.self),
                    try row.decode(column: "allocated_at", as: Date.self)))
            }
        }
        let endings = try await endings(scope: scope, study: study)

        // Enrolment: everyone assessed; those never allocated excluded, each under one reason.
        let criteria = study.eligibility.inclusion + study.eligibility.exclusion
        var excludedReasons: [String: Int] = [:]
        for person in people.values where person.arm == nil {
            let reason: String
            if person.status == ParticipantStatus.screenFailed.rawValue {
                // The first criterion in the definition's order that failed names the reason.
                let first = criteria.first { person.failed.contains($0.code) }
                reason = "Not eligible: " + (first?.text ?? person.failed.first ?? "criterion not recorded")
            } else if person.status == ParticipantStatus.withdrawn.rawValue {
                reason = "Withdrew before randomization"
            } else {
                reason = "Screening not complete"
            }
            excludedReasons[reason, default: 0] += 1
        }
        let allocated = people.filter { $0.value.arm != nil }

        func ending(_ id: UUID) -> (lost: String?, discontinued: String?) {
            let e = endings[id]
            if let choice = e?.choice, let rule = study.participant?.endOfStudy {
                switch rule.ending(of: choice) {
                case .lost: return (rule.label(of: choice, in: study), nil)
                case .completed: return (nil, e?.consentWithdrawn == true ? "Withdrew consent" : nil)
                case .discontinued: return (nil, rule.label(of: choice, in: study))
                }
            }
            return (nil, e?.consentWithdrawn == true ? "Withdrew consent" : nil)
        }
        func arm(_ code: String, _ members: [(UUID, Person)], since: ((Person) -> Date?)? = nil) -> ConsortArm {
            let plans = !DoseRules.plan(study: study, arm: code).isEmpty
            var notReceived: [String: Int] = [:], lost: [String: Int] = [:], discontinued: [String: Int] = [:]
            var received = 0
            for (id, person) in members {
                let start = since?(person)
                let given = person.given.filter { at in start.map { at >= $0 } ?? true }
                if !plans || !given.isEmpty {
                    received += 1
                } else {
                    let reason = person.skipped.compactMap(\.reason).first.map { "Dose not given: \($0)" } ?? "No dose recorded yet"
                    notReceived[reason, default: 0] += 1
                }
                let end = ending(id)
                if let l = end.lost { lost[l, default: 0] += 1 }
                if let d = end.discontinued { discontinued[d, default: 0] += 1 }
            }
            func reasons(_ counts: [String: Int]) -> [ConsortReason] {
                counts.map { ConsortReason(label: $0.key, n: $0.value) }.sorted { ($1.n, $0.label) < ($0.n, $1.label) }
            }
            return ConsortArm(
                code: code, name: study.arms.first { $0.code == code }?.name ?? code, allocated: members.count, received: received,
                notReceived: members.count - received, notReceivedReasons: reasons(notReceived),
                lostToFollowUp: lost.values.reduce(0, +), lostToFollowUpReasons: reasons(lost),
                discontinued: discontinued.values.reduce(0, +), discontinuedReasons: reasons(discontinued),
                analysed: members.count, excludedFromAnalysis: 0, excludedFromAnalysisReasons: [])
        }
        // Stage one: the arms of the enrolment randomization, in the definition's order, those with nobody left out.
        let firstArms = study.arms.map(\.code).filter { code in allocated.values.contains { $0.arm == code } }
        var stages = [ConsortStage(
            label: "Randomized", randomized: allocated.count,
            arms: firstArms.map { code in arm(code, allocated.filter { $0.value.arm == code }.map { ($0.key, $0.value) }) })]
        for randomization in study.randomizations ?? [] {
            let members = allocated.compactMap { id, p -> (UUID, Person, String)? in
                guard let s = p.stages.first(where: { $0.stage == randomization.code }) else { return nil }
                return (id, p, s.arm)
            }
            let codes = study.arms.map(\.code).filter { code in members.contains { $0.2 == code } }
            stages.append(ConsortStage(
                label: randomization.name ?? randomization.code, randomized: members.count,
                arms: codes.map { code in
                    arm(code, members.filter { $0.2 == code }.map { ($0.0, $0.1) }) { p in p.stages.first { $0.stage == randomization.code }?.at }
                }))
        }
        let flow = ConsortFlow(
            assessed: people.count, excluded: people.count - allocated.count,
            excludedReasons: excludedReasons.map { ConsortReason(label: $0.key, n: $0.value) }.sorted { ($1.n, $0.label) < ($0.n, $1.label) },
            stages: stages)
        return byArm ? flow : flow.pooled(label: "All randomized")
    }
}

/// A stopping rule's boundary crossed, as raised to the statistician and the DSMB.
public struct MonitoringAlert: Sendable, Equatable, Codable {
    public var id: UUID
    public var rule: String
    public var studyVersion: Int
    public var evaluated: Int
    public var events: Int
    public var stopIfAtLeast: Int
    public var raisedAt: Date
}

extension FluentAnalysisRepository {
    /// Records that a report was produced, by whom and which session: the closed session's figures reveal arms.
    public func recordReport(_ kind: String, session: String, scope: AccessScope, now: Date) async throws {
        try await store.write { tx in
            try await AuditChain.append(
                on: tx, actor: scope.actor, action: .create, entity: "report", entityID: "\(kind)-\(session)", siteID: nil, reason: nil,
                changes: [FieldChange(field: "session", old: nil, new: session), FieldChange(field: "kind", old: nil, new: kind)], now: now)
        }
    }

    /// Raises the alert of a rule whose boundary is crossed, once per rule and definition version, with its audit
    /// event in the same transaction. True when it was raised now.
    public func raiseAlert(rule: String, studyVersion: Int, evaluated: Int, events: Int, stopIfAtLeast: Int, now: Date) async throws -> Bool {
        let sql = store.database as! any SQLDatabase
        if try await sql.raw("SELECT id FROM monitoring_alerts WHERE rule_code = \(bind: rule) AND study_version = \(bind: studyVersion)").first() != nil {
            return false
        }
        return try await store.write { tx in
            let sql = tx as! any SQLDatabase
            // Two servers may see the crossing at once: the unique key lets one of them raise it.
            if try await sql.raw("SELECT id FROM monitoring_alerts WHERE rule_code = \(bind: rule) AND study_version = \(bind: studyVersion)").first() != nil {
                return false
            }
            let id = UUID()
            try await sql.insert(into: "monitoring_alerts")
                .columns("id", "rule_code", "study_version", "evaluated", "events", "stop_if_at_least", "raised_at")
                .values(SQLBind(id), SQLBind(rule), SQLBind(studyVersion), SQLBind(evaluated), SQLBind(events), SQLBind(stopIfAtLeast), SQLBind(now))
                .run()
            try await AuditChain.append(
                on: tx, actor: "system", action: .create, entity: "monitoring_alert", entityID: id.uuidString, siteID: nil,
                reason: "stopping rule \(rule): \(events) of \(evaluated) reach the boundary of \(stopIfAtLeast)",
                changes: [
                    FieldChange(field: "rule", old: nil, new: rule), FieldChange(field: "evaluated", old: nil, new: "\(evaluated)"),
                    FieldChange(field: "events", old: nil, new: "\(events)"), FieldChange(field: "stop_if_at_least", old: nil, new: "\(stopIfAtLeast)"),
                ], now: now)
            return true
        }
    }

    public func alerts() async throws -> [MonitoringAlert] {
        let sql = store.database as! any SQLDatabase
        return try await sql.raw("""
            SELECT id, rule_code, study_version, evaluated, events, stop_if_at_least, raised_at
            FROM monitoring_alerts ORDER BY raised_at DESC
            """).all().map { row in
            MonitoringAlert(
                id: try row.decode(column: "id", as: UUID.self), rule: try row.decode(column: "rule_code", as: String.self),
                studyVersion: try row.decode(column: "study_version", as: Int.self), evaluated: try row.decode(column: "evaluated", as: Int.self),
                events: try row.decode(column: "events", as: Int.self), stopIfAtLeast: try row.decode(column: "stop_if_at_least", as: Int.self),
                raisedAt: try row.decode(column: "raised_at", as: Date.self))
        }
    }

    /// The audit sequence now: the monitor evaluates again only when something was written since.
    public func auditHead() async throws -> Int64 {
        let sql = store.database as! any SQLDatabase
        return try await sql.raw("SELECT sequence FROM audit_head WHERE id = 1").first()?.decode(column: "sequence", as: Int64.self) ?? 0
    }
}

extension FluentAnalysisRepository {
    /// The visits at which each participant has a form or a lab result: two grouped queries.
    public func visitsWithData(scope: AccessScope) async throws -> [UUID: Set<String>] {
        guard !scope.siteIDs.isEmpty else { return [:] }
        let sql = store.database as! any SQLDatabase
        var visits: [UUID: Set<String>] = [:]
        for table in ["form_records", "lab_results"] {
            for row in try await sql.raw("""
                SELECT participant_id, visit_code FROM \(ident: table) WHERE site_id IN (\(binds: scope.siteBinds)) GROUP BY participant_id, visit_code
                """).all()
            {
                visits[try row.decode(column: "participant_id", as: UUID.self), default: []].insert(try row.decode(column: "visit_code", as: String.self))
            }
        }
        return visits
    }
}
