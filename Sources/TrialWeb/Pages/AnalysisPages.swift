import Foundation
import Plot
import TrialDomain
import TrialStore
import Vapor

extension ConsortFlow: Content {}
extension StoppingRuleStatus: Content {}
extension MonitoringAlert: Content {}

/// CONSORT, the DSMB reports and the stopping rules: pages for the committee and the statisticians, and their API.
enum AnalysisPages {
    static func register(pages: any RoutesBuilder, api: any RoutesBuilder) {
        pages.get("consort", use: consort)
        pages.get("reports", use: reports)
        pages.get("reports", "dsmb", use: dsmb)
        api.get("consort", use: consortJSON)
        api.get("monitoring", "stopping-rules", use: stoppingRules)
        api.get("monitoring", "alerts", use: alerts)
    }

    /// Who is told when a stopping boundary is crossed.
    static let alerted: Set<Role> = [.statistician, .independentStatistician, .dsmbViewer]

    static func flow(_ req: Request, user: CurrentUser) async throws -> (ConsortFlow, StudyDefinition) {
        try user.require(.readParticipants)
        let study = try await req.currentStudy()
        let flow = try await FluentAnalysisRepository(store: req.store).consort(scope: user.scope, study: study, byArm: SafetyAPI.seesArms(user, study: study))
        return (flow, study)
    }

    static func consort(req: Request) async throws -> Response {
        let user = try req.user
        let (flow, _) = try await flow(req, user: user)
        return Layout.page(
            title: "Participant flow (CONSORT)", user: user,
            .p(.text(flow.pooled ? "Arms are pooled: your role does not see allocations." : "By arm, from the data as they stand.")),
            .div(.id("consort"), .raw(ConsortDiagram.svg(flow, title: "CONSORT flow diagram"))))
    }

    static func consortJSON(req: Request) async throws -> ConsortFlow {
        try await flow(req, user: try req.user).0
    }

    static func session(_ req: Request) throws -> ReportSession {
        let text = req.query[String.self, at: "session"] ?? "open"
        guard let session = ReportSession(rawValue: text) else { throw StoreError.invalid(field: "session", rule: "must be open or closed") }
        return session
    }

    static func reports(req: Request) async throws -> Response {
        let user = try req.user
        let study = try await req.currentStudy()
        let sessions = ReportSession.allCases.filter { Reports.mayRead($0, role: user.account.role, study: study) }
        guard !sessions.isEmpty || alerted.contains(user.account.role) else {
            throw Abort(.forbidden, reason: "your role (\(user.account.role.rawValue)) reads no DSMB report")
        }
        let alerts = alerted.contains(user.account.role) ? try await FluentAnalysisRepository(store: req.store).alerts() : []
        let seesArms = SafetyAPI.seesArms(user, study: study)
        return Layout.page(
            title: "Reports", user: user,
            .if(!alerts.isEmpty,
                .div(.id("alerts"), .attribute(named: "role", value: "alert"), .class("error"),
                    .forEach(alerts) { a in
                        .p(.text(seesArms
                            ? "Stopping rule \(a.rule): \(a.events) of \(a.evaluated) reached the boundary of \(a.stopIfAtLeast) (raised \(ReportHTML.utc(a.raisedAt)))."
                            : "Stopping rule \(a.rule): its boundary was crossed (raised \(ReportHTML.utc(a.raisedAt))). The counts are for the closed session."))
                    })),
            .h2(.text("Data monitoring committee")),
            .ul(.forEach(sessions) { s in
                .li(.a(.href("/reports/dsmb?session=\(s.rawValue)"), .text(s == .open ? "Open session report (arms pooled)" : "Closed session report (by arm)")))
            }),
            .p(.a(.href("/consort"), .text("Participant flow (CONSORT)"))))
    }

    static func dsmb(req: Request) async throws -> Response {
        let user = try req.user
        let study = try await req.currentStudy()
        let session = try session(req)
        guard Reports.mayRead(session, role: user.account.role, study: study) else {
            throw Abort(.forbidden, reason: "the \(session.rawValue) session's report is not for your role (\(user.account.role.rawValue))")
        }
        let now = Date()
        let report = try await Reports.dsmb(store: req.store, study: study, scope: user.scope, session: session, now: now)
        try await FluentAnalysisRepository(store: req.store).recordReport("dsmb", session: session.rawValue, scope: user.scope, now: now)
        return Response(
            status: .ok,
            headers: [
                "Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store",
                "Content-Security-Policy": ReportHTML.contentSecurityPolicy,
            ],
            body: .init(string: ReportHTML.document(report, study: study)))
    }

    static func stoppingRules(req: Request) async throws -> [StoppingRuleStatus] {
        let user = try req.user
        try user.require(.readParticipants)
        let study = try await req.currentStudy()
        return try await SafetyMonitorService.statuses(store: req.store, study: study, scope: user.scope, seesArms: SafetyAPI.seesArms(user, study: study))
    }

    static func alerts(req: Request) async throws -> [MonitoringAlert] {
        let user = try req.user
        guard alerted.contains(user.account.role) else {
            throw Abort(.forbidden, reason: "stopping-rule alerts go to the statisticians and the DSMB, not to your role (\(user.account.role.rawValue))")
        }
        let study = try await req.currentStudy()
        let alerts = try await FluentAnalysisRepository(store: req.store).alerts()
        guard !SafetyAPI.seesArms(user, study: study) else { return alerts }
        // A blinded reader learns that a boundary was crossed, not the counts in an arm.
        return alerts.map { a in
            var masked = a
            masked.evaluated = 0
            masked.events = 0
            masked.stopIfAtLeast = 0
            return masked
        }
    }
}

/// Holds the study's stopping rules against the data as they arrive: every few seconds, when something was written
/// since the last look, it evaluates them set-wise and raises an alert for each boundary crossed.
public enum SafetyMonitorService {
    /// Every site: the rules count the whole trial, whoever looks.
    static func everywhere(_ store: Store) async throws -> AccessScope {
        let sites = try await FluentAccountRepository(store: store).sites()
        return AccessScope(actor: "system", siteIDs: Set(sites.map(\.id)))
    }

    public static func statuses(store: Store, study: StudyDefinition, scope: AccessScope, seesArms: Bool) async throws -> [StoppingRuleStatus] {
        guard !(study.monitoring?.stoppingRules ?? []).isEmpty else { return [] }
        // Only what the rules read: the monitor runs this whenever data changed.
        let records = try await FluentCohortRepository(store: store).records(scope: scope, study: study, needs: Reports.monitoringNeeds(study))
        return try Reports.stopping(study: study, records: records, seesArms: seesArms)
    }

    /// Evaluates every rule over all sites and raises the alerts of those crossed; returns the rules newly alerted.
    @discardableResult
    public static func evaluate(store: Store, study: StudyDefinition, now: Date) async throws -> [String] {
        let statuses = try await statuses(store: store, study: study, scope: try await everywhere(store), seesArms: true)
        var raised: [String] = []
        let analysis = FluentAnalysisRepository(store: store)
        for status in statuses where status.crossed {
            // The alert names the crossing itself: the k-th participant counted, the toxicities among the first k.
            guard let k = status.crossedAt, let events = status.crossedEvents, let boundary = status.crossedBoundary else { continue }
            if try await analysis.raiseAlert(rule: status.code, studyVersion: study.version, evaluated: k, events: events, stopIfAtLeast: boundary, now: now) {
                raised.append(status.code)
            }
        }
        return raised
    }

    /// Starts the loop; it ends with the application.
    static func start(_ app: Application, every seconds: Double) {
        guard seconds > 0 else { return }
        let store = app.store
        let logger = app.logger
        let task = Task.detached {
            var seen: Int64 = -1
            while !Task.isCancelled {
                try? await Task.sleep(nanoseconds: UInt64(seconds * 1_000_000_000))
                do {
                    let head = try await FluentAnalysisRepository(store: store).auditHead()
                    guard head != seen else { continue }
                    seen = head
                    guard let study = try await FluentStudyRepository(store: store).current(), !(study.monitoring?.stoppingRules ?? []).isEmpty else { continue }
                    for rule in try await evaluate(store: store, study: study, now: Date()) {
                        logger.warning("stopping rule boundary crossed", metadata: ["rule": "\(rule)"])
                    }
                    // The alert's own audit event moved the head: that is not new data.
                    seen = try await FluentAnalysisRepository(store: store).auditHead()
                } catch {
                    logger.error("safety monitor", metadata: ["error": "\(String(reflecting: error))"])
                }
            }
        }
        app.lifecycle.use(MonitorStopper(task: task))
    }

    struct MonitorStopper: LifecycleHandler {
        let task: Task<Void, Never>
        func shutdown(_ application: Application) { task.cancel() }
    }
}
