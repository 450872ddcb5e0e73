import FluentKit
import FluentSQL
import Foundation
import TrialDomain

/// What of each participant an analysis needs; less read is less time at 10,000 participants.
public struct CohortNeeds: Sendable, Equatable {
    /// Form codes whose records are read.
    public var forms: Set<String>
    /// Anchors whose times are needed (their source forms are read too).
    public var anchors: Set<String>
    /// Lab codes whose results are read, each at the visits given (nil: every visit).
    public var labs: [String: Set<String>?]
    public var adverseEvents: Bool
    /// Each participant's latest lab sample.
    public var lastObservation: Bool = false
    /// Each lab result's stored CTCAE grade, in the study's version.
    public var labGrades: Bool = false

    public init(forms: Set<String> = [], anchors: Set<String> = [], labs: [String: Set<String>?] = [:], adverseEvents: Bool = false) {
        self.forms = forms
        self.anchors = anchors
        self.labs = labs
        self.adverseEvents = adverseEvents
    }

    /// What computing these endpoints reads.
    public static func endpoints(_ endpoints: [Endpoint], study: StudyDefinition) -> CohortNeeds {
        var needs = CohortNeeds()
        let scope = ExpressionScope(study: study)
        for analysis in endpoints.compactMap(\.analysis) {
            needs.forms.formUnion((analysis.forms ?? []).map(\.form))
            needs.forms.formUnion((analysis.events ?? []).map(\.form))
            // What the endpoint's expressions read (derived fields put in): the form part of each name, and the
            // adverse events and anchor times a condition over events counts.
            let sources = [analysis.expression].compactMap { $0 } + (analysis.forms ?? []).map(\.event) + (analysis.events ?? []).map(\.event)
            for source in sources {
                guard let checked = try? scope.check(try ExpressionParser.parse(source)).expression else { continue }
                needs.forms.formUnion(checked.references.compactMap { $0.split(separator: ".").first.map(String.init) })
                let points = CohortNeeds.eventPoints(checked)
                if !points.isEmpty {
                    needs.adverseEvents = true
                    needs.anchors.formUnion(points.filter { $0 != AdverseEventCount.previousDose && !$0.isEmpty })
                }
            }
            // Censoring reads the last observation: the latest lab sample, dose or adverse event.
            if analysis.method == .timeToEvent {
                needs.adverseEvents = true
                needs.lastObservation = true
            }
            if let anchor = analysis.anchor { needs.anchors.insert(anchor) }
            if let lab = analysis.lab?.uppercased() {
                var visits: Set<String>? = analysis.visit.map { [$0] }
                if analysis.method == .changeFromBaseline { visits?.formUnion(Baseline.visits(of: study)) }
                if let existing = needs.labs[lab] {
                    needs.labs[lab] = existing.flatMap { e in visits.map { e.union($0) } }
                } else {
                    needs.labs[lab] = visits
                }
            }
            if analysis.adverseEvents != nil || analysis.method == .adverseEvents { needs.adverseEvents = true }
        }
        return needs
    }

    /// For each condition over adverse events: the time it counts from ("" when from the start).
    static func eventPoints(_ e: TrialDomain.Expression) -> Set<String> {
        switch e {
        case .score(AdverseEventCount.function, let args):
            let since = args.first { $0.label == "since" }.flatMap { a -> String? in if case .text(let t) = a.value { t } else { nil } }
            return [since ?? ""]
        case .call(_, let args): return args.reduce(into: Set<String>()) { $0.formUnion(eventPoints($1)) }
        case .score(_, let args): return args.reduce(into: Set<String>()) { $0.formUnion(eventPoints($1.value)) }
        case .negate(let x), .not(let x), .convert(let x, _, _, _): return eventPoints(x)
        case .binary(_, let l, let r): return eventPoints(l).union(eventPoints(r))
        case .within(let a, let b, _, let c): return eventPoints(a).union(eventPoints(b)).union(eventPoints(c))
        default: return []
        }
    }

    /// The forms an anchor's time is read from.
    func anchorForms(_ study: StudyDefinition) -> Set<String> {
        Set(study.anchors.filter { anchors.contains($0.code) }.compactMap { anchor in
            anchor.source.flatMap { $0.contains(".") && !$0.hasPrefix("dose:") ? $0.split(separator: ".").first.map(String.init) : nil }
        })
    }
}

/// Every visible participant's record, read set-wise: one query per table for the whole cohort, never a file per participant.
public struct FluentCohortRepository: Sendable {
    /// An adverse event from a row with its meddra, grade, onset_at, serious and attribution.
    static func adverseEvent(_ row: any SQLRow) throws -> AdverseEventEntry {
        AdverseEventEntry(
            meddra: try row.decode(column: "meddra", as: String.self), grade: try row.decode(column: "grade", as: Int.self),
            onsetAt: try row.decode(column: "onset_at", as: Date.self), serious: try row.decode(column: "serious", as: Bool.self),
            attribution: Attribution(rawValue: try row.decode(column: "attribution", as: String.self)) ?? .unrelated,
            actionTaken: row.contains(column: "action_taken") ? try row.decode(column: "action_taken", as: String?.self) : nil)
    }

    let store: Store
    public init(store: Store) { self.store = store }

    public func records(scope: AccessScope, study: StudyDefinition, needs: CohortNeeds) async throws -> [ParticipantRecord] {
        guard !scope.siteIDs.isEmpty else { return [] }
        let sql = store.database as! any SQLDatabase
        let sites = scope.siteBinds
        var records: [UUID: ParticipantRecord] = [:]
        var order: [UUID] = []
        var doseTimes: [UUID: [String: Date]] = [:]
        for row in try await sql.raw("""
            SELECT p.id, p.screening_number, s.code AS site_code, \(unsafeRaw: CurrentArm.column(slot: "sl", participant: "p.id")) AS arm, sl.allocated_at
            FROM participants p JOIN sites s ON s.id = p.site_id
            LEFT JOIN randomization_slots sl ON sl.participant_id = p.id
            WHERE p.deleted_at IS NULL AND p.site_id IN (\(binds: sites))
            ORDER BY p.screening_number
            """).all()
        {
            let id = try row.decode(column: "id", as: UUID.self)
            let record = ParticipantRecord(
                id: id, screeningNumber: try row.decode(column: "screening_number", as: String.self), site: try row.decode(column: "site_code", as: String.self),
                arm: try row.decode(column: "arm", as: String?.self), allocatedAt: try row.decode(column: "allocated_at", as: Date?.self))
            records[id] = record
            order.append(id)
        }
        guard !records.isEmpty else { return [] }
        for row in try await sql.raw("""
            SELECT participant_id, dose_code, started_at FROM doses WHERE site_id IN (\(binds: sites)) AND given = \(bind: true)
            """).all()
        {
            guard let started = try row.decode(column: "started_at", as: Date?.self) else { continue }
            doseTimes[try row.decode(column: "participant_id", as: UUID.self), default: [:]][try row.decode(column: "dose_code", as: String.self)] = started
        }

        let forms = needs.forms.union(needs.anchorForms(study))
        if !forms.isEmpty {
            let codes: [any Encodable & Sendable] = forms.sorted()
            for row in try await sql.raw("""
                SELECT participant_id, visit_code, form_code, data, created_at FROM form_records
                WHERE site_id IN (\(binds: sites)) AND form_code IN (\(binds: codes))
                """).all()
            {
                let id = try row.decode(column: "participant_id", as: UUID.self)
                guard records[id] != nil else { continue }
                records[id]!.forms.append(
                    FormEntry(
                        visit: try row.decode(column: "visit_code", as: String.self), form: try row.decode(column: "form_code", as: String.self),
                        values: FluentFormRecordRepository.values(try row.decode(column: "data", as: String.self)),
                        recordedAt: try row.decode(column: "created_at", as: Date.self)))
            }
        }
        // The version the study grades by: "4.0" is read as its corrected release 4.03, stored as v4.
        let gradeColumn = needs.labGrades ? (study.safety.ctcaeVersion.hasPrefix("5") ? "grade_v5" : "grade_v4") : "NULL"
        for (test, visits) in needs.labs.sorted(by: { $0.key < $1.key }) {
            var query: SQLQueryString = """
                SELECT participant_id, test_code, visit_code, collected_at, value, \(unsafeRaw: gradeColumn) AS grade FROM lab_results
                WHERE site_id IN (\(binds: sites)) AND test_code = \(bind: test)
                """
            if let visits {
                let codes: [any Encodable & Sendable] = visits.sorted()
                query.appendInterpolation(unsafeRaw: " AND visit_code IN (")
                query.appendInterpolation(binds: codes)
                query.appendInterpolation(unsafeRaw: ")")
            }
            for row in try await sql.raw(query).all() {
                let id = try row.decode(column: "participant_id", as: UUID.self)
                guard records[id] != nil else { continue }
                records[id]!.labs.append(
                    LabValue(
                        test: try row.decode(column: "test_code", as: String.self), visit: try row.decode(column: "visit_code", as: String.self),
                        collectedAt: try row.decode(column: "collected_at", as: Date.self), value: try row.decode(column: "value", as: Double.self),
                        grade: needs.labGrades ? try row.decode(column: "grade", as: Int?.self) : nil))
            }
        }
        if needs.lastObservation {
            for row in try await sql.raw("""
                SELECT participant_id, MAX(collected_at) AS last FROM lab_results WHERE site_id IN (\(binds: sites)) GROUP BY participant_id
                """).all()
            {
                let id = try row.decode(column: "participant_id", as: UUID.self)
                if records[id] != nil { records[id]!.lastObservation = try row.decode(column: "last", as: Date?.self) }
            }
        }
        if needs.adverseEvents {
            for row in try await sql.raw("""
                SELECT participant_id, meddra, grade, onset_at, serious, attribution, action_taken FROM adverse_events WHERE site_id IN (\(binds: sites))
                """).all()
            {
                let id = try row.decode(column: "participant_id", as: UUID.self)
                guard records[id] != nil else { continue }
                records[id]!.adverseEvents.append(try Self.adverseEvent(row))
            }
        }

        let eligibilityVisit = study.eligibilityVisit
        return order.map { id in
            var record = records[id]!
            // The eligibility visit's values take precedence, as in a participant's file.
            var values: [String: String] = [:]
            for entry in record.forms.sorted(by: { ($0.visit == eligibilityVisit ? 1 : 0, $0.recordedAt) < ($1.visit == eligibilityVisit ? 1 : 0, $1.recordedAt) }) {
                for (key, value) in entry.values { values["\(entry.form).\(key)"] = value }
            }
            let armHasDoses = record.arm.map { !DoseRules.plan(study: study, arm: $0).isEmpty }
            record.doses = doseTimes[id] ?? [:]
            record.anchors = AnchorTimes.resolve(
                study: study, values: values, allocatedAt: record.allocatedAt, doses: doseTimes[id] ?? [:], armHasDoses: armHasDoses,
                zone: SiteCalendar(study: study, site: record.site).zone)
            return record
        }
    }
}

extension FluentCohortRepository {
    /// Every endpoint of the study, computed from one set-wise read.
    public func endpoints(scope: AccessScope, study: StudyDefinition, byArm: Bool, only code: String? = nil) async throws -> [EndpointResult] {
        let chosen = study.endpoints.filter { code == nil || $0.code == code }
        if let code, chosen.isEmpty { throw StoreError.notFound(entity: "endpoint", id: code) }
        let records = try await records(scope: scope, study: study, needs: .endpoints(chosen, study: study))
        do {
            return try chosen.map { try EndpointCalculator.compute($0, study: study, records: records, byArm: byArm) }
        } catch let error as EndpointError {
            throw StoreError.invalid(field: "endpoint", rule: error.description)
        } catch let error as ExpressionError {
            throw StoreError.invalid(field: "endpoint", rule: error.message)
        }
    }
}
