import Fluent
import Foundation
import TrialDomain
import TrialStore
import Vapor

/// ISO 8601 UTC with milliseconds, the one date format the API speaks.
func iso(_ date: Date) -> String { AuditEntry.timestamp(date) }

struct ParticipantPageDTO: Content {
    var items: [ParticipantDTO]
    /// Pass as `after` for the next page; absent on the last.
    var next: String?
}

struct ParticipantDTO: Content {
    var id: UUID
    var siteId: UUID
    var screeningNumber: String
    var status: String
    var createdAt: String
    var updatedAt: String

    init(_ p: Participant) {
        id = p.id
        siteId = p.siteID
        screeningNumber = p.screeningNumber
        status = p.status.rawValue
        createdAt = iso(p.createdAt)
        updatedAt = iso(p.updatedAt)
    }
}

struct SiteDTO: Content {
    var id: UUID
    var code: String
    var name: String
    init(_ s: Site) {
        id = s.id
        code = s.code
        name = s.name
    }
}

struct MeDTO: Content {
    var username: String
    var role: String
    var permissions: [String]
    var sites: [SiteDTO]
}

struct AuditEventDTO: Content {
    struct Change: Content {
        var field: String
        var old: String?
        var new: String?
    }
    var sequence: Int64
    var occurredAt: String
    var actor: String
    var action: String
    var entity: String
    var entityId: String
    var reason: String?
    var changes: [Change]

    init(_ e: AuditEntry) {
        sequence = e.sequence
        occurredAt = e.occurredAt
        actor = e.actor
        action = e.action.rawValue
        entity = e.entity
        entityId = e.entityID
        reason = e.reason
        changes = e.changes.map { Change(field: $0.field, old: $0.old, new: $0.new) }
    }
}

struct TokenDTO: Content {
    var id: UUID
    var name: String
    var prefix: String
    var createdAt: String
    var revokedAt: String?
    /// Only in the answer that creates the token; never shown again.
    var token: String?

    init(_ t: APIToken, token: String? = nil) {
        id = t.id
        name = t.name
        prefix = t.prefix
        createdAt = iso(t.createdAt)
        revokedAt = t.revokedAt.map(iso)
        self.token = token
    }
}

struct VerifyDTO: Content {
    var intact: Bool
    var checked: Int
    var brokenSequence: Int64?
    var problem: String?
}

struct CreateParticipantBody: StrictBody {
    static let fields: Set<String> = ["siteCode", "screeningNumber"]
    var siteCode: String
    var screeningNumber: String
}

struct UpdateParticipantBody: StrictBody {
    static let fields: Set<String> = ["status", "reason"]
    var status: String
    var reason: String?
}

struct ReasonBody: StrictBody {
    static let fields: Set<String> = ["reason"]
    var reason: String
}

struct CreateSiteBody: StrictBody {
    static let fields: Set<String> = ["code", "name"]
    var code: String
    var name: String
}

struct CreateTokenBody: StrictBody {
    static let fields: Set<String> = ["name"]
    var name: String
}

/// The JSON API under /api/v1. Each handler is a static function; the OpenAPI document lists the same routes.
enum APIController {
    static func register(_ api: any RoutesBuilder) {
        api.get("me", use: me)
        api.get("sites", use: sites)
        api.post("sites", use: createSite)
        api.get("participants", use: listParticipants)
        api.post("participants", use: createParticipant)
        api.get("participants", ":id", use: participant)
        api.patch("participants", ":id", use: updateParticipant)
        api.delete("participants", ":id", use: deleteParticipant)
        api.get("participants", ":id", "history", use: participantHistory)
        api.get("tokens", use: tokens)
        api.post("tokens", use: createToken)
        api.delete("tokens", ":id", use: revokeToken)
        api.get("audit", "verify", use: verifyAudit)
    }

    static func me(req: Request) async throws -> MeDTO {
        let user = try req.user
        let sites = try await req.accounts.sites().filter { user.account.siteIDs.contains($0.id) }
        return MeDTO(
            username: user.account.username, role: user.account.role.rawValue,
            permissions: AccessPolicy.permissions(for: user.account.role).map(\.rawValue).sorted(), sites: sites.map(SiteDTO.init))
    }

    /// Everyone sees the sites they belong to; an admin sees all.
    static func sites(req: Request) async throws -> [SiteDTO] {
        let user = try req.user
        let all = try await req.accounts.sites()
        let visible = user.account.role == .admin ? all : all.filter { user.account.siteIDs.contains($0.id) }
        return visible.map(SiteDTO.init)
    }

    static func createSite(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.manageSites)
        let body = try req.strictBody(CreateSiteBody.self)
        let site = try await req.accounts.createSite(code: body.code, name: body.name, actor: user.account.username, now: req.now)
        return try await SiteDTO(site).encodeResponse(status: .created, for: req)
    }

    /// A page of participants: `?limit=` (1–500, default 50) and `?after=` (the `next` cursor of the page before).
    static func listParticipants(req: Request) async throws -> ParticipantPageDTO {
        let user = try req.user
        try user.require(.readParticipants)
        let limit = try pageLimit(req)
        let page = try await FluentParticipantRepository(store: req.store).page(scope: user.scope, limit: limit, after: req.query[String.self, at: "after"])
        return ParticipantPageDTO(items: page.items.map(ParticipantDTO.init), next: page.next)
    }

    static func pageLimit(_ req: Request, default value: Int = 50) throws -> Int {
        guard let text = req.query[String.self, at: "limit"] else { return value }
        guard let limit = Int(text), (1...500).contains(limit) else { throw StoreError.invalid(field: "limit", rule: "must be a whole number from 1 to 500") }
        return limit
    }

    static func createParticipant(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.writeParticipants)
        let body = try req.strictBody(CreateParticipantBody.self)
        guard let site = try await req.accounts.site(code: body.siteCode), user.account.siteIDs.contains(site.id) else {
            throw StoreError.notFound(entity: "siteCode", id: "'\(body.siteCode)' among your sites")
        }
        let participant = try await req.participants.create(
            siteID: site.id, screeningNumber: body.screeningNumber, scope: user.scope, now: req.now)
        return try await ParticipantDTO(participant).encodeResponse(status: .created, for: req)
    }

    static func participant(req: Request) async throws -> ParticipantDTO {
        let user = try req.user
        try user.require(.readParticipants)
        return ParticipantDTO(try await req.participants.find(id: try participantID(req), scope: user.scope))
    }

    static func updateParticipant(req: Request) async throws -> ParticipantDTO {
        let user = try req.user
        try user.require(.writeParticipants)
        let id = try participantID(req)
        let body = try req.strictBody(UpdateParticipantBody.self)
        guard let status = ParticipantStatus(rawValue: body.status) else {
            throw StoreError.invalid(
                field: "status", rule: "must be one of \(ParticipantStatus.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        return ParticipantDTO(
            try await req.participants.updateStatus(id: id, status: status, reason: body.reason, scope: user.scope, now: req.now))
    }

    static func deleteParticipant(req: Request) async throws -> HTTPStatus {
        let user = try req.user
        try user.require(.writeParticipants)
        let id = try participantID(req)
        let body = try req.strictBody(ReasonBody.self)
        try await req.participants.delete(id: id, reason: body.reason, scope: user.scope, now: req.now)
        return .noContent
    }

    static func participantHistory(req: Request) async throws -> [AuditEventDTO] {
        let user = try req.user
        try user.require(.readParticipants)
        return try await req.participants.history(id: try participantID(req), scope: user.scope).map(AuditEventDTO.init)
    }

    static func tokens(req: Request) async throws -> [TokenDTO] {
        try await req.accounts.tokens(userID: try req.user.account.id).map { TokenDTO($0) }
    }

    static func createToken(req: Request) async throws -> Response {
        let user = try req.user
        let body = try req.strictBody(CreateTokenBody.self)
        let issued = try await TokenIssuer.issue(for: user.account, name: body.name, accounts: req.accounts, now: req.now)
        return try await TokenDTO(issued.record, token: issued.token).encodeResponse(status: .created, for: req)
    }

    static func revokeToken(req: Request) async throws -> HTTPStatus {
        let user = try req.user
        guard let id = req.parameters.get("id", as: UUID.self) else {
            throw StoreError.invalid(field: "id", rule: "must be a UUID")
        }
        try await req.accounts.revokeToken(id: id, userID: user.account.id, actor: user.account.username, now: req.now)
        return .noContent
    }

    static func verifyAudit(req: Request) async throws -> VerifyDTO {
        try req.user.require(.readAudit)
        let result = try await AuditChain.verify(on: req.db)
        return VerifyDTO(intact: result.isIntact, checked: result.checked, brokenSequence: result.broken?.sequence, problem: result.broken?.problem)
    }

    static func participantID(_ req: Request) throws -> UUID {
        guard let id = req.parameters.get("id", as: UUID.self) else {
            throw StoreError.invalid(field: "id", rule: "must be a participant UUID")
        }
        return id
    }
}
