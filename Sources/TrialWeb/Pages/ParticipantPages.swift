import Fluent
import Foundation
import Plot
import TrialDomain
import TrialStore
import Vapor

struct NewParticipantForm: Content {
    var siteCode: String
    var screeningNumber: String
}

struct StatusForm: Content {
    var status: String
    var reason: String?
}

struct ReasonForm: Content {
    var reason: String?
}

/// Dashboard, participant list and detail, and the history of any record.
enum ParticipantPages {
    static func dashboard(req: Request) async throws -> Response {
        let user = try req.user
        let sites = try await req.accounts.sites().filter { user.account.siteIDs.contains($0.id) || user.account.role == .admin }
        let counts = AccessPolicy.allows(user.account.role, .readParticipants) ? try await FluentParticipantRepository(store: req.store).counts(scope: user.scope) : [:]
        let overdue = AccessPolicy.allows(user.account.role, .readParticipants) ? try await SafetyAPI.seriousList(req, user: user).filter { $0.overdue && $0.reportedAt == nil } : []
        return Layout.page(
            title: "Dashboard", user: user,
            .p(.id("welcome"), .text("Signed in as \(user.account.username), \(user.account.role.title).")),
            .if(!overdue.isEmpty,
                .p(.class("error"), .id("overdue-saes"),
                    .a(.href("/safety"), .text("\(overdue.count) serious adverse event\(overdue.count == 1 ? "" : "s") not reported within the clock")))),
            .table(
                .caption(.text("Your sites")),
                .thead(.tr(.th(.text("Site")), .th(.text("Name")), .th(.text("Participants")))),
                .tbody(.forEach(sites) { site in
                    .tr(.td(.text(site.code)), .td(.text(site.name)), .td(.text("\(counts[site.id] ?? 0)")))
                })))
    }

    static func list(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.readParticipants)
        let page = try await FluentParticipantRepository(store: req.store).page(scope: user.scope, limit: 50, after: req.query[String.self, at: "after"])
        let participants = page.items
        let sites = try await req.accounts.sites().filter { user.account.siteIDs.contains($0.id) }
        let siteCode = Dictionary(uniqueKeysWithValues: sites.map { ($0.id, $0.code) })
        let canWrite = AccessPolicy.allows(user.account.role, .writeParticipants)
        return Layout.page(
            title: "Participants", user: user,
            .table(
                .id("participants"),
                .thead(.tr(.th(.text("Screening number")), .th(.text("Site")), .th(.text("Status")))),
                .tbody(.forEach(participants) { p in
                    .tr(
                        .td(.a(.href("/participants/\(p.id.uuidString)"), .text(p.screeningNumber))),
                        .td(.text(siteCode[p.siteID] ?? "")), .td(.text(p.status.rawValue)))
                })),
            .unwrap(page.next) { next in .p(.a(.id("next-page"), .href("/participants?after=\(next)"), .text("Next 50 participants"))) },
            .if(canWrite,
                .div(.class("card"),
                    .form(
                        .method(.post), .action("/participants"), Layout.csrfField(user),
                        Layout.select("Site", id: "siteCode", options: sites.map { ($0.code, "\($0.code) · \($0.name)", false) }),
                        Layout.field("Screening number", id: "screeningNumber"),
                        .button(.type(.submit), .text("Register participant"))))))
    }

    static func create(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.writeParticipants)
        let form = try req.content.decode(NewParticipantForm.self)
        guard let site = try await req.accounts.site(code: form.siteCode), user.account.siteIDs.contains(site.id) else {
            throw StoreError.notFound(entity: "siteCode", id: "'\(form.siteCode)' among your sites")
        }
        let p = try await req.participants.create(siteID: site.id, screeningNumber: form.screeningNumber, scope: user.scope, now: req.now)
        return req.redirect(to: "/participants/\(p.id.uuidString)", redirectType: .normal)
    }

    static func detail(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.readParticipants)
        // One read of the participant's file serves every panel of the page.
        let file = try await req.screening.file(participantID: try APIController.participantID(req), scope: user.scope)
        let p = file.participant
        let canWrite = AccessPolicy.allows(user.account.role, .writeParticipants)
        let study = file.study
        let records = try await req.formRecords.records(participantID: p.id, scope: user.scope)
        let slots = study.visits.flatMap { visit in study.forms.filter { $0.visits.contains(visit.code) }.map { (visit, $0) } }
        return Layout.page(
            title: "Participant \(p.screeningNumber)", user: user,
            .p(.id("current-status"), .text("Status: \(p.status.rawValue). Registered \(iso(p.createdAt)); last changed \(iso(p.updatedAt)).")),
            .p(.a(.href("/history/participant/\(p.id.uuidString)"), .text("History of this record")), .text(" · "),
                .a(.id("review-link"), .href("/participants/\(p.id.uuidString)/review"), .text("Data review: queries, source verification, signatures")),
                .text(" · "), .a(.id("casebook-link"), .href("/participants/\(p.id.uuidString)/casebook"), .text("Printable casebook with its audit trail"))),
            try await ScreeningPages.panels(req: req, user: user, file: file),
            try await SafetyPages.panels(req: req, user: user, file: file, records: records),
            .table(
                .id("forms"), .caption(.text("Forms")),
                .thead(.tr(.th(.text("Visit")), .th(.text("Form")), .th(.text("State")))),
                .tbody(.forEach(slots) { visit, form in
                    let record = records.first { $0.visit == visit.code && $0.form == form.code }
                    return .tr(
                        .td(.text(visit.name)),
                        .td(.a(.href("/participants/\(p.id.uuidString)/forms/\(Layout.pathSegment(visit.code))/\(Layout.pathSegment(form.code))"), .text(form.name))),
                        .td(.text(record.map { "entered (study version \($0.studyVersion))" } ?? "not entered")))
                })),
            .if(canWrite,
                .div(.class("card"),
                    .form(
                        .method(.post), .action("/participants/\(p.id.uuidString)/status"), Layout.csrfField(user),
                        Layout.select("New status", id: "status", options: ParticipantStatus.allCases.map { ($0.rawValue, $0.rawValue, $0 == p.status) }),
                        Layout.field("Reason for change", id: "reason"),
                        .button(.type(.submit), .text("Save status"))))))
    }

    static func changeStatus(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.writeParticipants)
        let id = try APIController.participantID(req)
        let form = try req.content.decode(StatusForm.self)
        guard let status = ParticipantStatus(rawValue: form.status) else {
            throw StoreError.invalid(field: "status", rule: "must be one of \(ParticipantStatus.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        _ = try await req.participants.updateStatus(id: id, status: status, reason: form.reason, scope: user.scope, now: req.now)
        return req.redirect(to: "/participants/\(id.uuidString)", redirectType: .normal)
    }

    /// Participants' histories are open to anyone who may see the participant; other records' to auditors.
    static func history(req: Request) async throws -> Response {
        let user = try req.user
        guard let entity = req.parameters.get("entity"), let id = req.parameters.get("id") else {
            throw Abort(.badRequest, reason: "entity and id are required")
        }
        let events: [AuditEntry]
        if entity == "participant" {
            guard let uuid = UUID(uuidString: id) else { throw StoreError.invalid(field: "id", rule: "must be a participant UUID") }
            try user.require(.readParticipants)
            events = try await req.participants.history(id: uuid, scope: user.scope)
        } else {
            guard user.account.role == .admin else {
                throw Abort(.forbidden, reason: "only an administrator may read the history of \(entity) records")
            }
            events = try await AuditChain.history(on: req.db, entity: entity, entityID: id)
        }
        return Layout.page(
            title: "History of \(entity) \(id)", user: user,
            .table(
                .id("history"),
                .thead(.tr(.th(.text("#")), .th(.text("When (UTC)")), .th(.text("Who")), .th(.text("What")), .th(.text("Changes")), .th(.text("Why")))),
                .tbody(.forEach(events) { e in
                    .tr(
                        .td(.text("\(e.sequence)")), .td(.text(e.occurredAt)), .td(.text(e.actor)), .td(.text(e.action.rawValue)),
                        .td(.ul(.forEach(e.changes) { c in .li(.text("\(c.field): \(c.old ?? "—") → \(c.new ?? "—")")) })),
                        .td(.text(e.reason ?? "")))
                })))
    }
}

struct NewTokenForm: Content {
    var name: String
}

/// A user's API tokens: create (the secret is shown once) and revoke.
enum TokenPages {
    static func list(req: Request, newToken: String? = nil) async throws -> Response {
        let user = try req.user
        let tokens = try await req.accounts.tokens(userID: user.account.id)
        return Layout.page(
            title: "API tokens", user: user,
            .unwrap(newToken) { token in
                .div(.class("card"), .p(.text("Your new token (copy it now; it is not shown again):")), .p(.code(.id("new-token"), .text(token))))
            },
            .table(
                .id("tokens"),
                .thead(.tr(.th(.text("Name")), .th(.text("Prefix")), .th(.text("Created")), .th(.text("State")), .th(.text("")))),
                .tbody(.forEach(tokens) { t in
                    .tr(
                        .td(.text(t.name)), .td(.code(.text(t.prefix + "…"))), .td(.text(iso(t.createdAt))),
                        .td(.text(t.revokedAt.map { "revoked \(iso($0))" } ?? "active")),
                        .td(.if(t.revokedAt == nil,
                            .form(.method(.post), .action("/account/tokens/\(t.id.uuidString)/revoke"), Layout.csrfField(user),
                                .button(.type(.submit), .text("Revoke"))))))
                })),
            .div(.class("card"),
                .form(
                    .method(.post), .action("/account/tokens"), Layout.csrfField(user),
                    Layout.field("Token name", id: "name"), .button(.type(.submit), .text("Create token")))))
    }

    static func show(req: Request) async throws -> Response { try await list(req: req) }

    static func create(req: Request) async throws -> Response {
        let user = try req.user
        let form = try req.content.decode(NewTokenForm.self)
        let issued = try await TokenIssuer.issue(for: user.account, name: form.name, accounts: req.accounts, now: req.now)
        return try await list(req: req, newToken: issued.token)
    }

    static func revoke(req: Request) async throws -> Response {
        let user = try req.user
        guard let id = req.parameters.get("id", as: UUID.self) else { throw StoreError.invalid(field: "id", rule: "must be a UUID") }
        try await req.accounts.revokeToken(id: id, userID: user.account.id, actor: user.account.username, now: req.now)
        return req.redirect(to: "/account/tokens", redirectType: .normal)
    }
}
