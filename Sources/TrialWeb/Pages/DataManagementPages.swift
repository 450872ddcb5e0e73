import Foundation
import Plot
import TrialDomain
import TrialStore
import Vapor

struct RaiseQueryForm: Content {
    /// `visit/item`, as the review table lists values; empty for the participant as a whole.
    var target: String?
    var text: String
    var kind: String?
}

struct TransitionForm: Content {
    var action: String
    var text: String?
    var back: String?
}

struct VerifyForm: Content {
    var visit: String
    var item: String
}

struct SignForm: Content {
    var username: String?
    var password: String
    var meaning: String?
}

struct CorrectLabForm: Content {
    var value: String
    var unit: String
    var collectedAt: String
    var reason: String?
}

struct LockForm: Content {
    var kind: String
    var level: String
    var site: String?
    var participant: String?
    var visit: String?
    var form: String?
    var reason: String
}

/// A participant's data review (values with their verification, queries and history; signatures), the query inbox,
/// the monitor's day, lab corrections and locks.
enum DataManagementPages {
    static func register(_ routes: any RoutesBuilder) {
        routes.get("participants", ":id", "review", use: review)
        routes.post("participants", ":id", "queries", use: raise)
        routes.post("participants", ":id", "verifications", use: verify)
        routes.post("participants", ":id", "signatures", use: sign)
        routes.get("participants", ":id", "labs", ":visit", ":test", "correct", use: correctForm)
        routes.post("participants", ":id", "labs", ":visit", ":test", "correct", use: correct)
        routes.get("participants", ":id", "values", ":visit", ":item", "history", use: valueHistory)
        routes.get("participants", ":id", "casebook", use: casebook)
        routes.get("queries", use: inbox)
        routes.post("queries", ":id", "transitions", use: transition)
        routes.get("monitoring", use: monitoring)
        routes.get("locks", use: locks)
        routes.post("locks", use: lock)
        routes.post("locks", ":id", "unlock", use: unlock)
    }

    static func stateText(_ state: VerificationState) -> String {
        switch state {
        case .verified: "verified"
        case .changed: "changed since verified: verify again"
        case .pending: "to verify"
        case .notRequired: "not required"
        }
    }

    static func targetText(_ target: QueryTarget) -> String {
        guard let visit = target.visit else { return "the participant" }
        if let lab = target.lab { return "\(visit) · lab \(lab)" }
        if let form = target.form { return "\(visit) · \(form)\(target.field.map { ".\($0)" } ?? "")" }
        return visit
    }

    /// The value a query points at, as it stands now, for showing the field in context.
    static func context(_ query: DataQuery, values: [VerificationItem]) -> String {
        guard let visit = query.target.visit else { return "" }
        let item = query.target.lab.map { "lab.\($0)" } ?? query.target.form.map { form in query.target.field.map { "\(form).\($0)" } ?? form } ?? ""
        return values.first { $0.visit == visit && $0.item == item }?.value ?? "—"
    }

    static func review(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.readParticipants)
        let id = try APIController.participantID(req)
        let file = try await req.screening.file(participantID: id, scope: user.scope)
        let values = try await FluentVerificationRepository(store: req.store).items(participantID: id, scope: user.scope)
        let queries = try await req.queries.list(QueryFilter(participantID: id, limit: 500), scope: user.scope, now: req.now).items
        let signatures = try await FluentSignatureRepository(store: req.store).signatures(participantID: id, scope: user.scope)
        let zone = SiteCalendar(study: file.study, site: file.siteCode).zone
        let role = user.account.role
        let base = "/participants/\(id.uuidString)"
        var firstSigning = true
        if case .session(let token) = user.credential { firstSigning = !(try await FluentSignatureRepository(store: req.store).hasSigned(sessionHash: Secrets.sha256(token))) }
        let active = queries.filter { $0.status.isActive }
        return Layout.page(
            title: "Data review · \(file.participant.screeningNumber)", user: user,
            .p(.a(.href(base), .text("Back to the participant"))),
            .div(.class("card"), .id("signatures"),
                .h2(.text("Signatures")),
                .if(signatures.isEmpty, .p(.text("Not signed."))),
                .ul(.forEach(signatures) { s in
                    .li(.class(s.valid ? "signature-valid" : "signature-invalid"),
                        .text("\(s.covers) signed by \(s.signer) at \(iso(s.signedAt)) UTC (\(SiteTime.text(s.signedAt, zone: zone))): “\(s.statement)”. "),
                        s.valid
                            ? .strong(.text("Valid"))
                            : .strong(.class("error"), .text("Invalid: data changed after signing\(s.changed.isEmpty ? "" : " (\(s.changed.joined(separator: ", ")))")")))
                }),
                .if(role == .investigator,
                    .form(.method(.post), .action("\(base)/signatures"), .id("sign-form"), Layout.csrfField(user),
                        .p(.text(firstSigning ? "First signing in this session: enter your user ID and password." : "Enter your password to sign.")),
                        .if(firstSigning, Layout.field("User ID", id: "username")),
                        Layout.field("Password", id: "password", type: .password),
                        Layout.select("Meaning", id: "meaning", options: SignatureMeaning.allCases.map { ($0.rawValue, $0.statement, $0 == .approve) }),
                        .button(.type(.submit), .id("sign"), .text("Sign the casebook"))))),
            .div(.class("card"), .id("participant-queries"),
                .h2(.text("Queries")),
                queryTable(active + queries.filter { !$0.status.isActive }, values: values, user: user, back: "\(base)/review"),
                .if(QueryRules.reviewers.contains(role) || QueryRules.siteStaff.contains(role),
                    .form(.method(.post), .action("\(base)/queries"), .id("query-form"), Layout.csrfField(user),
                        Layout.select("About", id: "target", options: [("", "The participant as a whole", false)] + values.map { ("\($0.visit)/\($0.item)", "\($0.visit) · \($0.item) = \($0.value)", false) }),
                        Layout.select("Kind", id: "kind", options: (QueryRules.reviewers.contains(role) ? [("query", "Query (asks the site)", true)] : []) + [("annotation", "Annotation (asks nothing)", false)]),
                        Layout.field("Text", id: "text"),
                        .button(.type(.submit), .id("raise-query"), .text("Add"))))),
            .div(.class("card"), .id("values"),
                .h2(.text("Values and source verification")),
                .table(.id("review-table"),
                    .thead(.tr(.th(.text("Visit")), .th(.text("Item")), .th(.text("Value")), .th(.text("Verification")), .th(.text("Open queries")), .th(.text("")))),
                    .tbody(.forEach(values) { v in
                        let open = active.filter { q in q.target.visit == v.visit && (q.target.lab.map { "lab.\($0)" } ?? q.target.fieldPath) == v.item }.count
                        let rowID = "value-\(Layout.escape(v.visit))-\(Layout.escape(v.item.replacingOccurrences(of: ".", with: "-")))"
                        return .tr(.id(rowID),
                            .td(.text(v.visit)), .td(.text(v.item)), .td(.text(v.value)),
                            .td(.class("sdv-\(v.state.rawValue)"), .text(stateText(v.state) + (v.verifiedBy.map { v.state == .verified ? " by \($0)" : " (was \(v.verifiedValue ?? "") when \($0) verified it)" } ?? ""))),
                            .td(.text(open == 0 ? "" : "\(open)")),
                            .td(
                                .a(.href("\(base)/values/\(Layout.pathSegment(v.visit))/\(Layout.pathSegment(v.item))/history"), .text("History")),
                                .if(role == .monitor && v.state != .verified,
                                    .form(.method(.post), .action("\(base)/verifications"), .class("verify"), Layout.csrfField(user),
                                        .input(.type(.hidden), .name("visit"), .value(Layout.escape(v.visit))),
                                        .input(.type(.hidden), .name("item"), .value(Layout.escape(v.item))),
                                        .button(.type(.submit), .text("Verify")))),
                                .if(QueryRules.siteStaff.contains(role) && v.item.hasPrefix("lab."),
                                    .a(.class("correct"), .href("\(base)/labs/\(Layout.pathSegment(v.visit))/\(Layout.pathSegment(String(v.item.dropFirst(4))))/correct"), .text(" Correct")))))
                    }))))
    }

    static func queryTable(_ queries: [DataQuery], values: [VerificationItem]?, user: CurrentUser, back: String) -> Node<HTML.BodyContext> {
        let role = user.account.role
        let now = Date()
        return .table(.class("queries"),
            .thead(.tr(.th(.text("Participant")), .th(.text("About")), .th(.text("Value now")), .th(.text("Query")), .th(.text("Status")), .th(.text("Age")),
                       .th(.text("Due")), .th(.text("")))),
            .tbody(.forEach(queries) { q in
                .tr(.id("query-\(q.id.uuidString)"), .class("query-\(q.status.rawValue)"),
                    .td(.a(.href("/participants/\(q.participantID.uuidString)/review"), .text("\(q.screeningNumber) (\(q.siteCode))"))),
                    .td(.text(targetText(q.target))),
                    .td(.text(values.map { context(q, values: $0) } ?? "")),
                    .td(.text("\(q.kind.rawValue): \(q.text)"),
                        .ul(.forEach((q.messages ?? []).dropFirst()) { m in .li(.small(.text("\(m.action) by \(m.actor): \(m.text)"))) })),
                    .td(.text(q.status.rawValue + (q.answeredBy.map { " (answered by \($0))" } ?? ""))),
                    .td(.text("\(q.ageInDays(now: now)) d")),
                    .td(.class(q.isOverdue(now: now) ? "error" : ""), .text(q.dueAt.map { iso($0) + (q.isOverdue(now: now) ? " overdue" : "") } ?? "")),
                    .td(.forEach(QueryAction.allCases.filter { action in
                        (try? QueryRules.transition(from: q.status, kind: q.kind, action: action, role: role, actor: user.account.username, answeredBy: q.answeredBy)) != nil
                    }) { action in
                        .form(.method(.post), .action("/queries/\(q.id.uuidString)/transitions"), .class("transition"), Layout.csrfField(user),
                            .input(.type(.hidden), .name("action"), .value(action.rawValue)),
                            .input(.type(.hidden), .name("back"), .value(Layout.escape(back))),
                            .if(action == .answer || action == .reopen,
                                .group(.label(.for("text-\(action.rawValue)-\(q.id.uuidString)"), .text(action == .answer ? "Answer" : "Why reopen")),
                                    .input(.type(.text), .id("text-\(action.rawValue)-\(q.id.uuidString)"), .name("text"), .required(true)))),
                            .button(.type(.submit), .text(action.rawValue.capitalized)))
                    }))
            }))
    }

    /// The whole casebook on one printable page, with its audit trail, for the site's archive. Arms and what reveals
    /// them stay masked for roles that may not see them.
    static func casebook(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.readParticipants)
        let id = try APIController.participantID(req)
        let file = try await req.screening.file(participantID: id, scope: user.scope)
        let study = file.study
        let seesArms = Blinding.seesArms(user.account.role, study: study)
        let zone = SiteCalendar(study: study, site: file.siteCode).zone
        let records = try await req.formRecords.records(participantID: id, scope: user.scope)
        let labs = try await req.safety.labs(participantID: id, scope: user.scope)
        let events = try await req.safety.adverseEvents(participantID: id, scope: user.scope)
        let signatures = try await FluentSignatureRepository(store: req.store).signatures(participantID: id, scope: user.scope)
        let deviations = try await req.screening.deviations(scope: user.scope).filter { $0.participantID == id }
        let queries = try await req.queries.list(QueryFilter(participantID: id, limit: 500), scope: user.scope, now: req.now).items
        let trail = try await AuditChain.participantTrail(on: req.store.database, participantID: id).map { event -> AuditEntry in
            guard !seesArms, event.entity == "allocation" else { return event }
            var masked = event
            masked.changes = event.changes.map { c in ["arm", "position", "stratum"].contains(c.field) ? FieldChange(field: c.field, old: c.old.map { _ in "(masked)" }, new: c.new.map { _ in "(masked)" }) : c }
            return masked
        }
        let p = file.participant
        let now = req.now
        return Layout.page(
            title: "Casebook · \(p.screeningNumber)", user: user,
            .p(.id("casebook-header"),
                .text("Study \(study.code), definition version \(study.version). Site \(file.siteCode). Participant \(p.screeningNumber) (\(p.id.uuidString)), status \(p.status.rawValue)"
                    + (seesArms ? (file.arm.map { ", arm \($0)" } ?? "") : "") + ". Printed \(iso(now)) UTC (\(SiteTime.text(now, zone: zone))) by \(user.account.username).")),
            .forEach(study.visits.filter { v in records.contains { $0.visit == v.code } }) { visit in
                .div(.class("card"),
                    .h2(.text(visit.name)),
                    .forEach(records.filter { $0.visit == visit.code }) { record in
                        let form = study.form(record.form)
                        return .table(.class("casebook-form"),
                            .caption(.text(form?.name ?? record.form)),
                            .tbody(.forEach((form?.fields ?? []).filter { record.values[$0.code] != nil }) { field in
                                .tr(.th(.text(field.label)), .td(.text(Self.valueText(record.values[field.code] ?? "", unit: field.unit))))
                            }))
                    })
            },
            .div(.class("card"), .h2(.text("Laboratory results")),
                .table(.id("casebook-labs"),
                    .thead(.tr(.th(.text("Visit")), .th(.text("Test")), .th(.text("Collected (UTC)")), .th(.text("As entered")), .th(.text("Standard")), .th(.text("CTCAE v4.03")))),
                    .tbody(.forEach(labs) { l in
                        .tr(.td(.text(l.visit)), .td(.text(l.test)), .td(.text(iso(l.collectedAt))), .td(.text("\(FormValidator.format(l.enteredValue)) \(l.enteredUnit)")),
                            .td(.text("\(FormValidator.format(l.value)) \(l.unit)")), .td(.text(l.gradeV4.map { "grade \($0)" } ?? "")))
                    }))),
            .div(.class("card"), .h2(.text("Adverse events")),
                .table(.id("casebook-aes"),
                    .thead(.tr(.th(.text("Term")), .th(.text("Grade")), .th(.text("Onset (UTC)")), .th(.text("Resolved")), .th(.text("Serious")), .th(.text("Attribution")), .th(.text("Outcome")))),
                    .tbody(.forEach(events) { e in
                        .tr(.td(.text(e.term)), .td(.text("\(e.grade)")), .td(.text(iso(e.onsetAt))), .td(.text(e.resolvedAt.map(iso) ?? "")),
                            .td(.text(e.serious ? e.seriousness.map(\.rawValue).joined(separator: ", ") : "no")), .td(.text(e.attribution.rawValue)), .td(.text(e.outcome)))
                    }))),
            .div(.class("card"), .h2(.text("Signatures")),
                .ul(.forEach(signatures) { s in
                    .li(.text("\(s.covers) signed by \(s.signer) at \(iso(s.signedAt)) UTC (\(SiteTime.text(s.signedAt, zone: zone))): “\(s.statement)”; SHA-256 \(s.contentSHA256); \(s.valid ? "valid" : "invalid: data changed after signing")"))
                })),
            .div(.class("card"), .h2(.text("Protocol deviations")),
                .ul(.forEach(deviations) { d in
                    .li(.text("\(d.kind)\(d.visit.map { " at \($0)" } ?? ""): \(d.reason) (\(d.recordedBy), \(iso(d.startedAt)))\(d.classification.map { "; reviewed \($0.rawValue) by \(d.reviewedBy ?? "")" } ?? "")"))
                })),
            .div(.class("card"), .h2(.text("Queries")), queryTable(queries, values: nil, user: user, back: "/participants/\(id.uuidString)/casebook")),
            .div(.class("card"), .h2(.text("Audit trail")),
                .table(.id("casebook-trail"),
                    .thead(.tr(.th(.text("#")), .th(.text("When (UTC)")), .th(.text("Who")), .th(.text("What")), .th(.text("Changes")), .th(.text("Why")))),
                    .tbody(.forEach(trail) { e in
                        .tr(.td(.text("\(e.sequence)")), .td(.text(e.occurredAt)), .td(.text(e.actor)), .td(.text("\(e.action.rawValue) \(e.entity)")),
                            .td(.ul(.forEach(e.changes) { c in .li(.text("\(c.field): \(c.old ?? "—") → \(c.new ?? "—")")) })), .td(.text(e.reason ?? "")))
                    }))))
    }

    static func valueText(_ value: String, unit: String?) -> String { unit.map { "\(value) \($0)" } ?? value }

    static func raise(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.readParticipants)
        let id = try APIController.participantID(req)
        let form = try req.content.decode(RaiseQueryForm.self)
        var target = QueryTarget()
        if let text = form.target, !text.isEmpty {
            let parts = text.split(separator: "/", maxSplits: 1).map(String.init)
            guard parts.count == 2 else { throw StoreError.invalid(field: "target", rule: "must be visit/item") }
            if parts[1].hasPrefix("lab.") {
                target = QueryTarget(visit: parts[0], lab: String(parts[1].dropFirst(4)), field: "value")
            } else {
                let item = parts[1].split(separator: ".", maxSplits: 1).map(String.init)
                target = QueryTarget(visit: parts[0], form: item.first, field: item.count > 1 ? item[1] : nil)
            }
        }
        let kind = QueryKind(rawValue: form.kind ?? "query") ?? .query
        _ = try await req.queries.raise(QueryInput(participantID: id, kind: kind, target: target, text: form.text), scope: user.scope, now: req.now)
        return req.redirect(to: "/participants/\(id.uuidString)/review", redirectType: .normal)
    }

    static func transition(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.readParticipants)
        let form = try req.content.decode(TransitionForm.self)
        guard let action = QueryAction(rawValue: form.action) else { throw StoreError.invalid(field: "action", rule: "must be answer, close, reopen or cancel") }
        let query = try await req.queries.transition(id: try DataManagementAPI.queryID(req), action: action, text: form.text, scope: user.scope, now: req.now)
        // Back to where the form was, only ever a page of this site.
        let back = form.back.flatMap { $0.hasPrefix("/") && !$0.hasPrefix("//") ? $0 : nil } ?? "/participants/\(query.participantID.uuidString)/review"
        return req.redirect(to: back, redirectType: .normal)
    }

    static func verify(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.readParticipants)
        let id = try APIController.participantID(req)
        let form = try req.content.decode(VerifyForm.self)
        _ = try await FluentVerificationRepository(store: req.store).verify(participantID: id, visit: form.visit, item: form.item, scope: user.scope, now: req.now)
        return req.redirect(to: "/participants/\(id.uuidString)/review", redirectType: .normal)
    }

    static func sign(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.readParticipants)
        let id = try APIController.participantID(req)
        let form = try req.content.decode(SignForm.self)
        _ = try await SigningService.sign(
            req, user: user, participantID: id, visit: nil, form: nil, meaning: SignatureMeaning(rawValue: form.meaning ?? "") ?? .approve,
            username: form.username, password: form.password)
        return req.redirect(to: "/participants/\(id.uuidString)/review", redirectType: .normal)
    }

    static func correctForm(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.writeParticipants)
        let id = try APIController.participantID(req)
        let visit = req.parameters.get("visit") ?? "", test = (req.parameters.get("test") ?? "").uppercased()
        guard let lab = try await req.safety.labs(participantID: id, scope: user.scope).first(where: { $0.visit == visit && $0.test == test }) else {
            throw StoreError.notFound(entity: "lab result", id: "\(test) at \(visit)")
        }
        let open = try await req.queries.list(QueryFilter(status: .open, participantID: id, limit: 500), scope: user.scope, now: req.now).items
            .filter { $0.target.visit == visit && $0.target.lab == test }
        return Layout.page(
            title: "Correct \(test) at \(visit)", user: user,
            .forEach(open) { q in .p(.class("notice"), .text("Open query from \(q.raisedBy): \(q.text). Your reason below answers it.")) },
            .div(.class("card"),
                .form(.method(.post), .action("/participants/\(id.uuidString)/labs/\(Layout.pathSegment(visit))/\(Layout.pathSegment(test))/correct"), .id("correct-form"),
                    Layout.csrfField(user),
                    Layout.field("Value", id: "value", value: FormValidator.format(lab.enteredValue)),
                    Layout.field("Unit", id: "unit", value: lab.enteredUnit),
                    Layout.field("Collected at (yyyy-MM-ddTHH:mm, UTC)", id: "collectedAt", value: String(iso(lab.collectedAt).prefix(16))),
                    Layout.field("Reason for change", id: "reason"),
                    .button(.type(.submit), .id("save-correction"), .text("Save correction")))))
    }

    static func correct(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.writeParticipants)
        let id = try APIController.participantID(req)
        let form = try req.content.decode(CorrectLabForm.self)
        guard let value = Double(form.value.trimmingCharacters(in: .whitespaces)) else { throw StoreError.invalid(field: "value", rule: "must be a number") }
        _ = try await req.safety.correctLab(
            participantID: id, visit: req.parameters.get("visit") ?? "", test: (req.parameters.get("test") ?? "").uppercased(), value: value, unit: form.unit,
            collectedAt: try instant(form.collectedAt, field: "collectedAt"), reason: form.reason, scope: user.scope, now: req.now)
        return req.redirect(to: "/participants/\(id.uuidString)/review", redirectType: .normal)
    }

    static func valueHistory(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.readParticipants)
        let id = try APIController.participantID(req)
        let visit = req.parameters.get("visit") ?? "", item = req.parameters.get("item") ?? ""
        let events = try await FluentVerificationRepository(store: req.store).history(participantID: id, visit: visit, item: item, scope: user.scope)
        return Layout.page(
            title: "History of \(item) at \(visit)", user: user,
            .p(.a(.href("/participants/\(id.uuidString)/review"), .text("Back to the data review"))),
            .table(.id("value-history"),
                .thead(.tr(.th(.text("When (UTC)")), .th(.text("Who")), .th(.text("Values")), .th(.text("Why")))),
                .tbody(.forEach(events) { e in
                    .tr(.td(.text(e.occurredAt)), .td(.text(e.actor)),
                        .td(.ul(.forEach(e.changes) { c in .li(.text("\(c.field): \(c.old ?? "—") → \(c.new ?? "—")")) })),
                        .td(.text(e.reason ?? "")))
                })))
    }

    /// The query inbox: site staff see what waits for their role; monitors and data managers what waits for them
    /// (answered, to close) and what is open. Paged, filtered in the query.
    static func inbox(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.readParticipants)
        let role = user.account.role
        var filter = QueryFilter(limit: 50, after: req.query[String.self, at: "after"])
        let status = req.query[String.self, at: "status"].flatMap(QueryStatus.init(rawValue:))
        filter.status = status ?? (QueryRules.reviewers.contains(role) ? .answered : .open)
        if QueryRules.siteStaff.contains(role) { filter.assignee = role }
        filter.overdue = req.query[String.self, at: "overdue"] == "true"
        let page = try await req.queries.list(filter, scope: user.scope, now: req.now)
        // The value each query is about, read per participant on the page (at most 50).
        var values: [UUID: [VerificationItem]] = [:]
        for id in Set(page.items.map(\.participantID)) {
            values[id] = try await FluentVerificationRepository(store: req.store).items(participantID: id, scope: user.scope)
        }
        let contextual = page.items.map { q in (q, values[q.participantID] ?? []) }
        let here = "/queries?status=\(filter.status?.rawValue ?? "")"
        return Layout.page(
            title: "Queries", user: user,
            .p(.forEach(QueryStatus.allCases) { s in
                .group(.a(.href("/queries?status=\(s.rawValue)"), .text(s == filter.status ? "[\(s.rawValue)]" : s.rawValue)), .text(" "))
            }, .a(.href("/queries?status=open&overdue=true"), .text("overdue"))),
            .if(page.items.isEmpty, .p(.id("no-queries"), .text("No \(filter.status?.rawValue ?? "") queries\(filter.assignee.map { " for \($0.title.lowercased())s" } ?? "")."))),
            .forEach(contextual) { q, v in queryTable([q], values: v, user: user, back: here) },
            .unwrap(page.next) { next in .p(.a(.id("next-page"), .href("\(here)&after=\(next)"), .text("Next 50 queries"))) })
    }

    /// The monitor's day: queries by site and age, what is left to verify, casebooks waiting for a signature.
    static func monitoring(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.readParticipants)
        let counts = try await req.queries.counts(scope: user.scope, now: req.now)
        let oldest = try await req.queries.list(QueryFilter(status: .open, limit: 20), scope: user.scope, now: req.now).items
        let verification = try await FluentVerificationRepository(store: req.store).summary(scope: user.scope)
        let unsigned = try await FluentSignatureRepository(store: req.store).unsigned(scope: user.scope, limit: 50)
        return Layout.page(
            title: "Monitoring", user: user,
            .div(.class("card"), .h2(.text("Queries by site")),
                .table(.id("query-counts"),
                    .thead(.tr(.th(.text("Site")), .th(.text("Open")), .th(.text("Answered, to close")), .th(.text("Overdue")))),
                    .tbody(.forEach(counts) { c in .tr(.td(.text(c.site)), .td(.text("\(c.open)")), .td(.text("\(c.answered)")), .td(.text("\(c.overdue)"))) })),
                .h3(.text("Oldest open queries")),
                queryTable(oldest, values: nil, user: user, back: "/monitoring")),
            .div(.class("card"), .h2(.text("Left to verify")),
                .table(.id("verification-summary"),
                    .thead(.tr(.th(.text("Site")), .th(.text("Required")), .th(.text("Verified")), .th(.text("Changed since verified")), .th(.text("Remaining")))),
                    .tbody(.forEach(verification) { s in
                        .tr(.td(.text(s.site)), .td(.text("\(s.required)")), .td(.text("\(s.verified)")), .td(.text("\(s.changed)")), .td(.text("\(s.remaining)")))
                    }))),
            .div(.class("card"), .h2(.text("Casebooks waiting for the investigator's signature")),
                .ul(.id("unsigned"), .forEach(unsigned) { p in
                    .li(.a(.href("/participants/\(p.id.uuidString)/review"), .text("\(p.screeningNumber) (\(p.site))\(p.invalidated ? ": signature invalidated by a change" : "")")))
                })))
    }

    static func locks(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.readParticipants)
        let locks = try await req.locks.locks(scope: user.scope)
        return Layout.page(
            title: "Freezes and locks", user: user,
            .table(.id("locks"),
                .thead(.tr(.th(.text("What")), .th(.text("Kind")), .th(.text("By")), .th(.text("When (UTC)")), .th(.text("Why")), .th(.text("")))),
                .tbody(.forEach(locks) { l in
                    .tr(.td(.text(l.level.rawValue + (l.participantID.map { " \($0.uuidString)" } ?? "") + (l.visit.map { " \($0)" } ?? "") + (l.form.map { " \($0)" } ?? ""))),
                        .td(.text(l.kind.rawValue)), .td(.text(l.lockedBy)), .td(.text(iso(l.lockedAt))),
                        .td(.text(l.reason + (l.datasetHash.map { " (dataset SHA-256 \($0))" } ?? ""))),
                        .td(.if(user.account.role == .dataManager,
                            .form(.method(.post), .action("/locks/\(l.id.uuidString)/unlock"), Layout.csrfField(user),
                                Layout.field("Reason to unlock", id: "reason-\(l.id.uuidString)"),
                                .button(.type(.submit), .text("Unlock"))))))
                })),
            .if(user.account.role == .dataManager,
                .div(.class("card"),
                    .form(.method(.post), .action("/locks"), .id("lock-form"), Layout.csrfField(user),
                        Layout.select("Kind", id: "kind", options: [("lock", "Lock (everything stops)", true), ("freeze", "Freeze (data entry stops, review goes on)", false)]),
                        Layout.select("Level", id: "level", options: LockLevel.allCases.map { ($0.rawValue, $0.rawValue, $0 == .study) }),
                        Layout.field("Site code (site level)", id: "site", required: false),
                        Layout.field("Participant id (participant, visit, form)", id: "participant", required: false),
                        Layout.field("Visit (visit, form)", id: "visit", required: false),
                        Layout.field("Form (form)", id: "form", required: false),
                        Layout.field("Reason", id: "reason"),
                        .button(.type(.submit), .id("lock"), .text("Apply"))))))
    }

    static func lock(req: Request) async throws -> Response {
        let user = try req.user
        let form = try req.content.decode(LockForm.self)
        guard let kind = LockKind(rawValue: form.kind), let level = LockLevel(rawValue: form.level) else {
            throw StoreError.invalid(field: "level", rule: "must be one of \(LockLevel.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        func blank(_ s: String?) -> String? { s.flatMap { $0.trimmingCharacters(in: .whitespaces).isEmpty ? nil : $0 } }
        var participant: UUID?
        if let text = blank(form.participant) {
            guard let id = UUID(uuidString: text) else { throw StoreError.invalid(field: "participant", rule: "must be a participant id") }
            participant = id
        }
        _ = try await req.locks.lock(
            LockInput(kind: kind, level: level, siteCode: blank(form.site), participantID: participant, visit: blank(form.visit), form: blank(form.form), reason: form.reason),
            scope: user.scope, now: req.now)
        return req.redirect(to: "/locks", redirectType: .normal)
    }

    static func unlock(req: Request) async throws -> Response {
        let user = try req.user
        guard let id = req.parameters.get("id", as: UUID.self) else { throw StoreError.invalid(field: "id", rule: "must be a lock UUID") }
        let reason = (try? req.content.get(String.self, at: "reason-\(id.uuidString)")) ?? ""
        try await req.locks.unlock(id: id, reason: reason, scope: user.scope, now: req.now)
        return req.redirect(to: "/locks", redirectType: .normal)
    }
}
