import Foundation
import TrialDomain
import TrialStandards
import TrialStore

/// A DSMB report's session: the open one pools the arms (anyone on the committee, the trial statistician), the closed
/// one shows them (only those who may see allocations).
public enum ReportSession: String, Sendable, CaseIterable {
    case open, closed
}

/// Everything a data monitoring committee reads, computed from one set-wise read of the cohort.
public struct DSMBReport: Sendable {
    public struct EnrolmentRow: Sendable, Equatable {
        public var site: String
        public var screened: Int
        public var randomized: Int
        public var firstRandomized: Date?
        public var lastRandomized: Date?
    }

    public struct CompletenessRow: Sendable, Equatable {
        public var visit: String
        public var name: String
        /// Allocated participants whose visit's window has closed.
        public var due: Int
        /// Of those, participants with a form or a lab at the visit.
        public var withData: Int
    }

    public var session: ReportSession
    public var generatedAt: Date
    public var consort: ConsortFlow
    public var enrolment: [EnrolmentRow]
    public var completeness: [CompletenessRow]
    public var baseline: [BaselineGroup]
    public var adverseEvents: AdverseEventTable
    public var shifts: [ShiftTable]
    public var labs: [LabVisitTable]
    public var endpoints: [EndpointResult]
    public var stopping: [StoppingRuleStatus]
}

public enum Reports {
    /// Who may read which session. The closed session only for the independent statistician and the DSMB (in an
    /// open-label study the trial statistician too); the open one for them and the data manager.
    public static func mayRead(_ session: ReportSession, role: Role, study: StudyDefinition) -> Bool {
        switch session {
        case .closed:
            return [.independentStatistician, .dsmbViewer].contains(role) || (role == .statistician && !Blinding.isMasked(study))
        case .open:
            return [.independentStatistician, .dsmbViewer, .statistician, .dataManager].contains(role)
        }
    }

    /// What the stopping rules read: their forms, anchors and adverse events as for an endpoint, and their labs graded.
    static func monitoringNeeds(_ study: StudyDefinition) -> CohortNeeds {
        let rules = study.monitoring?.stoppingRules ?? []
        var needs = CohortNeeds.endpoints(
            rules.map { Endpoint(code: $0.code, kind: .other, measure: $0.name, timeFrame: "", analysis: $0.eventAnalysis) }, study: study)
        for test in rules.flatMap({ $0.labs?.tests ?? [] }) { needs.labs[test.uppercased()] = .some(nil) }
        needs.labGrades = needs.labGrades || !needs.labs.isEmpty
        return needs
    }

    /// What the report's analyses read, together: the safety tables, the endpoints, the rules, sex and birth date.
    static func needs(_ study: StudyDefinition) -> CohortNeeds {
        var needs = CohortNeeds.safety(study)
        for name in [study.participant?.sex, study.participant?.birthDate].compactMap({ $0 }) {
            if let form = study.field(named: name)?.form.code { needs.forms.insert(form) }
        }
        for other in [CohortNeeds.endpoints(study.endpoints, study: study), monitoringNeeds(study)] {
            needs.forms.formUnion(other.forms)
            needs.anchors.formUnion(other.anchors)
            needs.lastObservation = needs.lastObservation || other.lastObservation
            // The safety needs read every collected lab at every visit; a rule's lab beyond them is added.
            for (test, _) in other.labs where needs.labs[test] == nil { needs.labs[test] = .some(nil) }
        }
        return needs
    }

    /// The rules' statuses from records already read; masked for a viewer who must not see arms.
    public static func stopping(study: StudyDefinition, records: [ParticipantRecord], seesArms: Bool) throws -> [StoppingRuleStatus] {
        let statuses = try SafetyMonitor.evaluateAll(study: study, records: records) { $0.grade }
        return seesArms ? statuses : statuses.map { $0.masked() }
    }

    public static func dsmb(store: Store, study: StudyDefinition, scope: AccessScope, session: ReportSession, now: Date) async throws -> DSMBReport {
        let byArm = session == .closed
        let cohort = FluentCohortRepository(store: store)
        let analysis = FluentAnalysisRepository(store: store)
        let records = try await cohort.records(scope: scope, study: study, needs: needs(study))
        let consort = try await analysis.consort(scope: scope, study: study, byArm: byArm)
        let terms = try await analysis.adverseEventTerms(scope: scope, study: study)
        let withData = try await analysis.visitsWithData(scope: scope)
        let allocated = records.filter { $0.arm != nil }
        let arms = study.arms.map(\.code)

        // Enrolment by site.
        var sites: [String: DSMBReport.EnrolmentRow] = [:]
        for record in records {
            var row = sites[record.site] ?? DSMBReport.EnrolmentRow(site: record.site, screened: 0, randomized: 0)
            row.screened += 1
            if let at = record.allocatedAt {
                row.randomized += 1
                row.firstRandomized = min(row.firstRandomized ?? at, at)
                row.lastRandomized = max(row.lastRandomized ?? at, at)
            }
            sites[record.site] = row
        }
        let enrolment = study.sites.compactMap { sites[$0.code] } + sites.values.filter { s in !study.sites.contains { $0.code == s.site } }

        // Completeness: of the allocated participants whose visit window has closed, those with data at the visit.
        var completeness: [DSMBReport.CompletenessRow] = []
        for visit in study.visits where visit.code != study.eligibilityVisit {
            guard let anchor = visit.anchor, let target = visit.target else { continue }
            let close = target.seconds + (visit.window?.after.seconds ?? 0)
            var due = 0, entered = 0
            for record in allocated {
                if let only = visit.arms, let arm = record.arm, !only.contains(arm) { continue }
                guard let start = record.anchors[anchor] ?? record.doses[anchor], start.addingTimeInterval(close) < now else { continue }
                due += 1
                if withData[record.id]?.contains(visit.code) == true { entered += 1 }
            }
            completeness.append(DSMBReport.CompletenessRow(visit: visit.code, name: visit.name, due: due, withData: entered))
        }

        let safetyPopulation = allocated
        let aeTable = SafetyTables.adverseEvents(
            safetyPopulation, lookup: { meddra in terms[meddra].map { ($0.term, $0.soc ?? "") } }, unknownOrganClass: "Organ class not in the catalogue",
            treatmentEmergent: { record, event in TreatmentEmergence.adverseEvent(event, of: record, study: study) },
            // Leading to discontinuation: the treatment withdrawn because of the event (CDISC AEACN "DRUG WITHDRAWN").
            discontinuation: .events { _, event in event.actionTaken.flatMap(SDTMAction.init(parsing:)) == .drugWithdrawn }, byArm: byArm, arms: arms)
        let baselineVisits = Baseline.visits(of: study)
        let tests = Array(Set(study.forms.flatMap { $0.fields.compactMap { $0.lab?.uppercased() } })).sorted()
        let reference: (ParticipantRecord) -> Date? = { TreatmentEmergence.start(of: $0, study: study) }
        let shifts = tests.map { test in
            SafetyTables.shift(
                test: test, safetyPopulation, grade: { $0.grade }, baselineVisits: baselineVisits, referenceTime: reference, byArm: byArm, arms: arms)
        }
        let labVisits = study.visits.map(\.code)
        let labs = tests.map { test in
            SafetyTables.labsByVisit(
                test: test, safetyPopulation, visits: labVisits, baselineVisits: baselineVisits, referenceTime: reference, byArm: byArm, arms: arms)
        }
        let baseline = BaselineCharacteristics.compute(allocated, study: study, tests: tests, reference: reference, byArm: byArm)
        let endpoints = try study.endpoints.map { try EndpointCalculator.compute($0, study: study, records: records, byArm: byArm) }
        let stopping = try stopping(study: study, records: records, seesArms: byArm)
        return DSMBReport(
            session: session, generatedAt: now, consort: consort, enrolment: enrolment, completeness: completeness, baseline: baseline,
            adverseEvents: aeTable, shifts: shifts, labs: labs, endpoints: endpoints, stopping: stopping)
    }
}
