import Foundation
import TrialDomain
import TrialStore
import Vapor

struct QueryTargetBody: Decodable, Sendable {
    var visit: String?
    var form: String?
    var lab: String?
    var field: String?
}

struct RaiseQueryBody: StrictBody {
    static let fields: Set<String> = ["participantId", "kind", "target", "text", "assignee", "dueAt"]
    var participantId: UUID
    var kind: String?
    var target: QueryTargetBody?
    var text: String
    var assignee: String?
    var dueAt: String?
}

struct TransitionBody: StrictBody {
    static let fields: Set<String> = ["action", "text"]
    var action: String
    var text: String?
}

struct LockBody: StrictBody {
    static let fields: Set<String> = ["kind", "level", "site", "participantId", "visit", "form", "reason"]
    var kind: String
    var level: String
    var site: String?
    var participantId: UUID?
    var visit: String?
    var form: String?
    var reason: String
}

struct UnlockBody: StrictBody {
    static let fields: Set<String> = ["reason"]
    var reason: String
}

struct LabCorrectionBody: StrictBody {
    static let fields: Set<String> = ["value", "unit", "collectedAt", "reason"]
    var value: Double
    var unit: String
    var collectedAt: String
    var reason: String
}

struct SignBody: StrictBody {
    static let fields: Set<String> = ["meaning", "username", "password", "visit", "form"]
    var meaning: String?
    var username: String?
    var password: String
    var visit: String?
    var form: String?
}

struct SignatureDTO: Content {
    var id: UUID
    var covers: String
    var visit: String?
    var form: String?
    var meaning: String
    var statement: String
    var signer: String
    var signedAt: String
    /// The same instant in the site's time zone, with the zone named.
    var signedAtSite: String
    var contentSha256: String
    var auditSequence: Int64
    var chainHead: String
    var valid: Bool
    var invalidatedAt: String?
    var invalidatedBy: String?
    var changed: [String]

    init(_ s: Signature, zone: TimeZone) {
        id = s.id
        covers = s.covers
        visit = s.visit
        form = s.form
        meaning = s.meaning.rawValue
        statement = s.statement
        signer = s.signer
        signedAt = iso(s.signedAt)
        signedAtSite = SiteTime.text(s.signedAt, zone: zone)
        contentSha256 = s.contentSHA256
        auditSequence = s.auditSequence
        chainHead = s.chainHead
        valid = s.valid
        invalidatedAt = s.invalidatedAt.map(iso)
        invalidatedBy = s.invalidatedBy
        changed = s.changed
    }
}

/// A time as the site reads it: its own clock, with the zone named.
enum SiteTime {
    static func text(_ date: Date, zone: TimeZone) -> String {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = zone
        formatter.dateFormat = "yyyy-MM-dd HH:mm"
        return "\(formatter.string(from: date)) \(zone.identifier)"
    }
}

struct VerifyBody: StrictBody {
    static let fields: Set<String> = ["visit", "item"]
    var visit: String
    var item: String
}

struct VerificationItemDTO: Content {
    var visit: String
    var item: String
    var value: String
    var required: Bool
    var state: String
    var verifiedValue: String?
    var verifiedBy: String?
    var verifiedAt: String?

    init(_ v: VerificationItem) {
        visit = v.visit
        item = v.item
        value = v.value
        required = v.required
        state = v.state.rawValue
        verifiedValue = v.verifiedValue
        verifiedBy = v.verifiedBy
        verifiedAt = v.verifiedAt.map(iso)
    }
}

struct VerificationSummaryDTO: Content {
    var site: String
    var required: Int
    var verified: Int
    var changed: Int
    var remaining: Int
}

struct QueryMessageDTO: Content {
    var action: String
    var status: String
    var text: String
    var actor: String
    var at: String
}

struct QueryDTO: Content {
    var id: UUID
    var participantId: UUID
    var screeningNumber: String
    var site: String
    var kind: String
    var status: String
    var target: QueryTarget
    var text: String
    var assignee: String
    var dueAt: String?
    var overdue: Bool
    var ageDays: Int
    var raisedBy: String
    var raisedAt: String
    var answeredBy: String?
    var updatedAt: String
    var editCheck: String?
    var messages: [QueryMessageDTO]?

    init(_ q: DataQuery, now: Date) {
        id = q.id
        participantId = q.participantID
        screeningNumber = q.screeningNumber
        site = q.siteCode
        kind = q.kind.rawValue
        status = q.status.rawValue
        target = q.target
        text = q.text
        assignee = q.assignee.rawValue
        dueAt = q.dueAt.map(iso)
        overdue = q.isOverdue(now: now)
        ageDays = q.ageInDays(now: now)
        raisedBy = q.raisedBy
        raisedAt = iso(q.raisedAt)
        answeredBy = q.answeredBy
        updatedAt = iso(q.updatedAt)
        editCheck = q.checkCode
        messages = q.messages?.map { QueryMessageDTO(action: $0.action, status: $0.status.rawValue, text: $0.text, actor: $0.actor, at: iso($0.at)) }
    }
}

struct QueryPageDTO: Content {
    var items: [QueryDTO]
    var next: String?
}

struct LockDTO: Content {
    var id: UUID
    var kind: String
    var level: String
    var siteId: UUID?
    var participantId: UUID?
    var visit: String?
    var form: String?
    var reason: String
    var lockedBy: String
    var lockedAt: String
    var datasetSha256: String?

    init(_ l: DataLock) {
        id = l.id
        kind = l.kind.rawValue
        level = l.level.rawValue
        siteId = l.siteID
        participantId = l.participantID
        visit = l.visit
        form = l.form
        reason = l.reason
        lockedBy = l.lockedBy
        lockedAt = iso(l.lockedAt)
        datasetSha256 = l.datasetHash
    }
}

extension Request {
    var queries: FluentQueryRepository { FluentQueryRepository(store: store) }
    var locks: FluentLockRepository { FluentLockRepository(store: store) }
}

/// Queries, freezes and locks, and lab corrections, under /api/v1.
enum DataManagementAPI {
    static func register(_ api: any RoutesBuilder) {
        api.get("queries", use: listQueries)
        api.post("queries", use: raiseQuery)
        api.get("queries", ":id", use: query)
        api.post("queries", ":id", "transitions", use: transition)
        api.get("locks", use: locks)
        api.post("locks", use: lock)
        api.post("locks", ":id", "unlock", use: unlock)
        api.put("participants", ":id", "labs", ":visit", ":test", use: correctLab)
        api.get("participants", ":id", "verifications", use: verifications)
        api.post("participants", ":id", "verifications", use: verify)
        api.get("verifications", "summary", use: verificationSummary)
        api.get("participants", ":id", "signatures", use: signatures)
        api.post("participants", ":id", "signatures", use: sign)
    }

    static func verifications(req: Request) async throws -> [VerificationItemDTO] {
        let user = try req.user
        try user.require(.readParticipants)
        return try await FluentVerificationRepository(store: req.store).items(participantID: try APIController.participantID(req), scope: user.scope)
            .map(VerificationItemDTO.init)
    }

    static func verify(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.readParticipants)
        let body = try req.strictBody(VerifyBody.self)
        let item = try await FluentVerificationRepository(store: req.store).verify(
            participantID: try APIController.participantID(req), visit: body.visit, item: body.item, scope: user.scope, now: req.now)
        return try await VerificationItemDTO(item).encodeResponse(status: .created, for: req)
    }

    static func verificationSummary(req: Request) async throws -> [VerificationSummaryDTO] {
        let user = try req.user
        try user.require(.readParticipants)
        return try await FluentVerificationRepository(store: req.store).summary(scope: user.scope).map {
            VerificationSummaryDTO(site: $0.site, required: $0.required, verified: $0.verified, changed: $0.changed, remaining: $0.remaining)
        }
    }

    static func signatures(req: Request) async throws -> [SignatureDTO] {
        let user = try req.user
        try user.require(.readParticipants)
        let id = try APIController.participantID(req)
        let file = try await req.screening.file(participantID: id, scope: user.scope)
        let zone = SiteCalendar(study: file.study, site: file.siteCode).zone
        return try await FluentSignatureRepository(store: req.store).signatures(participantID: id, scope: user.scope).map { SignatureDTO($0, zone: zone) }
    }

    /// The investigator signs the casebook, or one form with `visit` and `form`: user ID and password each time
    /// through the API (a token is not an interactive session).
    static func sign(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.readParticipants)
        let body = try req.strictBody(SignBody.self)
        var meaning = SignatureMeaning.approve
        if let text = body.meaning {
            guard let parsed = SignatureMeaning(rawValue: text) else {
                throw StoreError.invalid(field: "meaning", rule: "must be one of \(SignatureMeaning.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            meaning = parsed
        }
        if case .apiToken = user.credential, (body.username ?? "").isEmpty {
            throw StoreError.invalid(field: "username", rule: "signing through the API needs your user ID as well as your password")
        }
        let id = try APIController.participantID(req)
        let signature = try await SigningService.sign(
            req, user: user, participantID: id, visit: body.visit, form: body.form, meaning: meaning, username: body.username, password: body.password)
        let file = try await req.screening.file(participantID: id, scope: user.scope)
        return try await SignatureDTO(signature, zone: SiteCalendar(study: file.study, site: file.siteCode).zone).encodeResponse(status: .created, for: req)
    }

    /// A page of queries, oldest first: `status`, `site` (code), `participant` (id), `assignee` (role), `overdue=true`,
    /// `limit` (1–500) and `after` (the `next` cursor of the page before).
    static func listQueries(req: Request) async throws -> QueryPageDTO {
        let user = try req.user
        try user.require(.readParticipants)
        var filter = QueryFilter(limit: try APIController.pageLimit(req), after: req.query[String.self, at: "after"])
        if let text = req.query[String.self, at: "status"] {
            guard let status = QueryStatus(rawValue: text) else {
                throw StoreError.invalid(field: "status", rule: "must be one of \(QueryStatus.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            filter.status = status
        }
        filter.siteCode = req.query[String.self, at: "site"]
        if let text = req.query[String.self, at: "participant"] {
            guard let id = UUID(uuidString: text) else { throw StoreError.invalid(field: "participant", rule: "must be a participant UUID") }
            filter.participantID = id
        }
        if let text = req.query[String.self, at: "assignee"] {
            guard let role = Role(parsing: text) else { throw StoreError.invalid(field: "assignee", rule: "must be a role") }
            filter.assignee = role
        }
        if let text = req.query[String.self, at: "overdue"] {
            guard text == "true" || text == "false" else { throw StoreError.invalid(field: "overdue", rule: "must be true or false") }
            filter.overdue = text == "true"
        }
        let now = req.now
        let page = try await req.queries.list(filter, scope: user.scope, now: now)
        return QueryPageDTO(items: page.items.map { QueryDTO($0, now: now) }, next: page.next)
    }

    static func raiseQuery(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.readParticipants)
        let body = try req.strictBody(RaiseQueryBody.self)
        var kind = QueryKind.query
        if let text = body.kind {
            guard let parsed = QueryKind(rawValue: text) else {
                throw StoreError.invalid(field: "kind", rule: "must be one of \(QueryKind.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            kind = parsed
        }
        var assignee: Role?
        if let text = body.assignee {
            guard let role = Role(parsing: text) else { throw StoreError.invalid(field: "assignee", rule: "must be a role") }
            assignee = role
        }
        let target = body.target.map { QueryTarget(visit: $0.visit, form: $0.form, lab: $0.lab?.uppercased(), field: $0.field) } ?? QueryTarget()
        let query = try await req.queries.raise(
            QueryInput(
                participantID: body.participantId, kind: kind, target: target, text: body.text, assignee: assignee,
                dueAt: try body.dueAt.map { try instant($0, field: "dueAt") }),
            scope: user.scope, now: req.now)
        return try await QueryDTO(query, now: req.now).encodeResponse(status: .created, for: req)
    }

    static func query(req: Request) async throws -> QueryDTO {
        let user = try req.user
        try user.require(.readParticipants)
        return QueryDTO(try await req.queries.query(id: try queryID(req), scope: user.scope), now: req.now)
    }

    static func transition(req: Request) async throws -> QueryDTO {
        let user = try req.user
        try user.require(.readParticipants)
        let body = try req.strictBody(TransitionBody.self)
        guard let action = QueryAction(rawValue: body.action) else {
            throw StoreError.invalid(field: "action", rule: "must be one of \(QueryAction.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let query = try await req.queries.transition(id: try queryID(req), action: action, text: body.text, scope: user.scope, now: req.now)
        return QueryDTO(query, now: req.now)
    }

    static func queryID(_ req: Request) throws -> UUID {
        guard let id = req.parameters.get("id", as: UUID.self) else { throw StoreError.invalid(field: "id", rule: "must be a query UUID") }
        return id
    }

    static func locks(req: Request) async throws -> [LockDTO] {
        let user = try req.user
        try user.require(.readParticipants)
        return try await req.locks.locks(scope: user.scope).map(LockDTO.init)
    }

    static func lock(req: Request) async throws -> Response {
        let user = try req.user
        let body = try req.strictBody(LockBody.self)
        guard let kind = LockKind(rawValue: body.kind) else { throw StoreError.invalid(field: "kind", rule: "must be freeze or lock") }
        guard let level = LockLevel(rawValue: body.level) else {
            throw StoreError.invalid(field: "level", rule: "must be one of \(LockLevel.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let lock = try await req.locks.lock(
            LockInput(kind: kind, level: level, siteCode: body.site, participantID: body.participantId, visit: body.visit, form: body.form, reason: body.reason),
            scope: user.scope, now: req.now)
        return try await LockDTO(lock).encodeResponse(status: .created, for: req)
    }

    static func unlock(req: Request) async throws -> HTTPStatus {
        let user = try req.user
        let body = try req.strictBody(UnlockBody.self)
        guard let id = req.parameters.get("id", as: UUID.self) else { throw StoreError.invalid(field: "id", rule: "must be a lock UUID") }
        try await req.locks.unlock(id: id, reason: body.reason, scope: user.scope, now: req.now)
        return .noContent
    }

    /// Corrects a saved lab result; the reason is required and answers open queries on it.
    static func correctLab(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.writeParticipants)
        let body = try req.strictBody(LabCorrectionBody.self)
        let lab = try await req.safety.correctLab(
            participantID: try APIController.participantID(req), visit: req.parameters.get("visit") ?? "", test: (req.parameters.get("test") ?? "").uppercased(),
            value: body.value, unit: body.unit, collectedAt: try instant(body.collectedAt, field: "collectedAt"), reason: body.reason, scope: user.scope, now: req.now)
        return try await LabJSON.created(lab, for: req).status(.ok)
    }
}

private extension Response {
    func status(_ status: HTTPResponseStatus) -> Response {
        self.status = status
        return self
    }
}
