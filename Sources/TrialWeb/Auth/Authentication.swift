import Foundation
import TrialDomain
import TrialStore
import Vapor

/// The signed-in user of one request, and how they proved it.
struct CurrentUser: Authenticatable {
    enum Credential: Sendable {
        case session(token: String)
        case apiToken
    }
    var account: Account
    var credential: Credential

    var scope: AccessScope { AccessScope(actor: account.username, siteIDs: account.siteIDs, role: account.role) }

    func require(_ permission: Permission) throws {
        guard AccessPolicy.allows(account.role, permission) else {
            throw Abort(.forbidden, reason: "your role (\(account.role.rawValue)) does not allow \(permission.rawValue)")
        }
    }

    /// The session's CSRF token, for page forms.
    var csrf: String {
        if case .session(let token) = credential { return Secrets.csrfToken(forSession: token) }
        return ""
    }
}

enum Cookies {
    static let session = "casebook_session"
    static let loginCSRF = "casebook_login_csrf"

    static func make(_ value: String, config: AppConfig, maxAge: Int?) -> HTTPCookies.Value {
        HTTPCookies.Value(
            string: value, expires: nil, maxAge: maxAge, domain: nil, path: "/", isSecure: config.secureCookies,
            isHTTPOnly: true, sameSite: .strict)
    }
}

/// Marks a request whose session cookie named a session that has since expired.
struct SessionExpiredKey: StorageKey {
    typealias Value = Bool
}

/// Reads the session cookie; slides the expiry forward on each use.
struct SessionAuthenticator: AsyncMiddleware {
    func respond(to request: Request, chainingTo next: any AsyncResponder) async throws -> Response {
        if let token = request.cookies[Cookies.session]?.string, !token.isEmpty {
            let hash = Secrets.sha256(token)
            let now = Date()
            if let session = try await request.accounts.session(tokenHash: hash) {
                if session.expiresAt <= now {
                    try await request.accounts.deleteSession(tokenHash: hash)
                    request.storage[SessionExpiredKey.self] = true
                } else if let account = try await request.accounts.account(id: session.userID), account.isActive {
                    request.auth.login(CurrentUser(account: account, credential: .session(token: token)))
                    // Sliding the expiry is a write; once a minute is precise enough for an idle timeout of minutes.
                    let renewed = now.addingTimeInterval(request.config.sessionLifetime)
                    if renewed.timeIntervalSince(session.expiresAt) >= 60 {
                        try await request.accounts.extendSession(tokenHash: hash, expiresAt: renewed)
                    }
                }
            } else {
                request.storage[SessionExpiredKey.self] = true
            }
        }
        return try await next.respond(to: request)
    }
}

// The middlewares below that need no database are written against futures, not as `AsyncMiddleware`: Vapor runs
// each of those in a task of its own and awaits the rest of the chain, two more trips through the event loop's
// queue for every request.

/// Sends a visitor without a session to the login page, saying why when the session expired.
struct PageGuard: Middleware {
    func respond(to request: Request, chainingTo next: any Responder) -> EventLoopFuture<Response> {
        guard request.auth.has(CurrentUser.self) else {
            if request.method != .GET {
                let why = request.storage[SessionExpiredKey.self] == true ? "your session has expired" : "you are not signed in"
                return request.eventLoop.makeFailedFuture(Abort(.unauthorized, reason: "\(why); sign in again"))
            }
            let expired = request.storage[SessionExpiredKey.self] == true
            return request.eventLoop.makeSucceededFuture(request.redirect(to: expired ? "/login?expired=1" : "/login"))
        }
        return next.respond(to: request)
    }
}

/// Every state-changing page request must carry the form's CSRF token.
struct CSRFGuard: Middleware {
    func respond(to request: Request, chainingTo next: any Responder) -> EventLoopFuture<Response> {
        guard request.method != .GET, request.method != .HEAD else { return next.respond(to: request) }
        // A form longer than one network read arrives as a stream: gather it before the token is read from it.
        guard request.body.data == nil else { return check(request, next) }
        return request.body.collect(max: request.config.maxBodyBytes).flatMap { _ in check(request, next) }
    }

    func check(_ request: Request, _ next: any Responder) -> EventLoopFuture<Response> {
        let sent = (try? request.content.get(String.self, at: "csrf")) ?? ""
        let expected: String?
        if let user = request.auth.get(CurrentUser.self), case .session = user.credential {
            expected = user.csrf
        } else {
            expected = request.cookies[Cookies.loginCSRF]?.string
        }
        guard !sent.isEmpty else {
            return request.eventLoop.makeFailedFuture(Abort(.forbidden, reason: "csrf: the form's CSRF token is missing; reload the page and try again"))
        }
        guard let expected, Secrets.constantTimeEquals(sent, expected) else {
            return request.eventLoop.makeFailedFuture(
                Abort(.forbidden, reason: "csrf: the form's CSRF token does not match this session; reload the page and try again"))
        }
        return next.respond(to: request)
    }
}

/// `Authorization: Bearer TOKEN` for the JSON API. Cookies are ignored there, so the API needs no CSRF token.
struct BearerAuthenticator: Middleware {
    func respond(to request: Request, chainingTo next: any Responder) -> EventLoopFuture<Response> {
        guard let bearer = request.headers.bearerAuthorization else {
            return request.eventLoop.makeFailedFuture(Abort(.unauthorized, reason: "Authorization: send 'Bearer TOKEN' with an API token"))
        }
        let hash = Secrets.sha256(bearer.token)
        let now = Date()
        // A client's token was nearly always looked up moments ago: then no task and no wait for the database.
        if let account = request.accounts.cachedAccount(forTokenHash: hash, now: now) {
            return Self.signIn(account, request, next)
        }
        return request.eventLoop.makeFutureWithTask { try await request.accounts.account(forTokenHash: hash, now: now) }
            .flatMap { account in
                guard let account else {
                    return request.eventLoop.makeFailedFuture(Abort(.unauthorized, reason: "Authorization: the API token is unknown or revoked"))
                }
                return Self.signIn(account, request, next)
            }
    }

    private static func signIn(_ account: Account, _ request: Request, _ next: any Responder) -> EventLoopFuture<Response> {
        request.auth.login(CurrentUser(account: account, credential: .apiToken))
        return next.respond(to: request)
    }
}

extension Request {
    var user: CurrentUser {
        get throws {
            guard let user = auth.get(CurrentUser.self) else { throw Abort(.unauthorized, reason: "sign in first") }
            return user
        }
    }
}

/// Login with lockout; shared by the page form and the tests. Every refusal looks the same to the client: a wrong
/// password, an unknown user and a locked account all cost one bcrypt check and get one answer.
enum LoginService {
    enum Outcome: Equatable {
        case success(Account)
        case wrongCredentials
        case locked(until: Date)
    }

    /// The one answer to every refused sign-in: it does not say whether the user exists or is locked.
    static let refusal = "Sign-in failed: wrong user ID or password, or the account is locked. Try again later or ask an administrator."

    /// A hash per bcrypt cost for the unknown user's check, made once a process: its check must cost what a real one
    /// costs at the configured work factor.
    private static let dummyHashes = DummyHashes()

    private final class DummyHashes: @unchecked Sendable {
        private let lock = NSLock()
        private var byCost: [Int: String] = [:]

        func hash(cost: Int) -> String {
            if let hash = lock.withLock({ byCost[cost] }) { return hash }
            let hash = (try? Bcrypt.hash("no account has this password", cost: cost)) ?? ""
            lock.withLock { byCost[cost] = hash }
            return hash
        }
    }

    static func dummyHash(cost: Int) -> String { dummyHashes.hash(cost: cost) }

    /// Bcrypt takes a quarter of a second by design: it runs on the application's thread pool, never on the event
    /// loop threads that also run request handlers. A nil hash checks against the dummy one of the configured cost.
    static func verify(_ password: String, hash: String?, request: Request) async -> Bool {
        let cost = request.config.bcryptCost
        return (try? await request.application.threadPool.runIfActive { Passwords.verify(password, hash: hash ?? dummyHash(cost: cost)) }) ?? false
    }

    static func attempt(username: String, password: String, request: Request, now: Date) async throws -> Outcome {
        guard let account = try await request.accounts.account(username: username), account.isActive else {
            // Spend the same effort as a real check so timing does not reveal which usernames exist.
            _ = await verify(password, hash: nil, request: request)
            return .wrongCredentials
        }
        let matches = await verify(password, hash: account.passwordHash, request: request)
        // Checked after the password, not before: a locked account answers as slowly as any other refusal, and even the
        // right password does not open it.
        if let until = account.lockedUntil, until > now { return .locked(until: until) }
        guard matches else {
            let config = request.config
            if let until = try await request.accounts.recordFailedLogin(
                userID: account.id, threshold: config.lockoutThreshold, lockFor: config.lockoutDuration, now: now)
            {
                return .locked(until: until)
            }
            return .wrongCredentials
        }
        try await request.accounts.recordSuccessfulLogin(userID: account.id)
        return .success(account)
    }
}

/// Signing with the credentials 21 CFR 11.200 asks for: the signer's own user ID and password at the first signing
/// of a session, the password alone after; five wrong in a row lock signing for 15 minutes. Every refusal is audited.
enum SigningService {
    static func sign(
        _ request: Request, user: CurrentUser, participantID: UUID, visit: String?, form: String?, meaning: SignatureMeaning, username: String?, password: String
    ) async throws -> Signature {
        let repository = FluentSignatureRepository(store: request.store)
        let now = request.now
        try SignatureRules.checkSigner(user.account.role)
        if let until = try await repository.lockedUntil(username: user.account.username, now: now) {
            throw StoreError.conflict(field: "signature", rule: "signing is locked after 5 wrong passwords until \(AuditEntry.timestamp(until))")
        }
        var sessionHash: String?
        if case .session(let token) = user.credential { sessionHash = Secrets.sha256(token) }
        var first = true
        if let sessionHash { first = !(try await repository.hasSigned(sessionHash: sessionHash)) }
        if SignatureRules.credentials(firstInSession: first) == .usernameAndPassword, (username ?? "").isEmpty {
            throw StoreError.invalid(field: "username", rule: "the first signing of a session needs your user ID as well as your password")
        }
        let sameUser = username.map { $0.isEmpty || $0 == user.account.username } ?? true
        let passwordMatches = await LoginService.verify(password, hash: user.account.passwordHash, request: request)
        guard sameUser, passwordMatches else {
            if let until = try await repository.recordFailure(username: user.account.username, participantID: participantID, now: now) {
                throw StoreError.conflict(field: "signature", rule: "signing is locked after 5 wrong passwords until \(AuditEntry.timestamp(until))")
            }
            throw StoreError.forbidden(rule: "signature: the user ID or password is wrong (you sign as yourself)")
        }
        return try await repository.sign(
            participantID: participantID, visit: visit, form: form, meaning: meaning, sessionHash: sessionHash, scope: user.scope, now: now)
    }
}
