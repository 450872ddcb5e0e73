import Fluent
import Foundation
import TrialStandards
import TrialStore
import Vapor

/// Builds the whole application: tests call exactly this, so they exercise what production runs.
public func configure(_ app: Application, config: AppConfig) async throws {
    app.casebookConfig = config
    app.logger.logLevel = config.logLevel
    app.http.server.configuration.hostname = config.hostname
    app.http.server.configuration.port = config.port
    app.routes.defaultMaxBodySize = ByteCount(value: config.maxBodyBytes)

    try config.database.register(in: app.databases)
    try await prepareDatabase(app.store)
    app.logger.info("database ready", metadata: ["database": "\(config.database.redacted)"])

    // Made now, not at the first unknown user's sign-in, which would otherwise take twice as long as any other.
    _ = LoginService.dummyHash(cost: config.bcryptCost)
    app.loginThrottle = LoginThrottle(limit: config.loginAttemptsPerAddress, window: config.loginThrottleWindow)

    app.middleware = Middlewares()
    app.middleware.use(ResponseHeadersMiddleware(config: config, serverTLS: app.http.server.configuration.tlsConfiguration != nil))
    app.middleware.use(RouteLoggingMiddleware(logLevel: .info))
    app.middleware.use(CasebookErrorMiddleware())
    routes(app)
    SafetyMonitorService.start(app, every: config.monitorSeconds)
}

/// Brings the schema up to date and loads the built-in study on first start; every command runs this.
public func prepareDatabase(_ store: Store) async throws {
    try await store.migrate()
    _ = try await FluentStudyRepository(store: store).seedIfEmpty(try StudyFile.builtIn(), now: Date())
    try await FluentSafetyRepository(store: store, tables: try GradingTables.builtIn()).seedTermsIfEmpty(try GradingTables.protocolTerms(), version: "4.03", now: Date())
}

func routes(_ app: Application) {
    app.get("health") { _ in ["status": "ok"] }
    app.get("ready") { req async throws -> Response in
        do {
            try await req.store.ping()
            return try await ["status": "ready"].encodeResponse(for: req)
        } catch {
            req.logger.error("database unreachable", metadata: ["error": "\(String(reflecting: error))"])
            throw Abort(.serviceUnavailable, reason: "database: not reachable")
        }
    }
    app.get("openapi.json", use: OpenAPIDocument.serve)
    app.get("assets", "casebook.js", use: SafetyPages.asset)
    app.get("assets", "casebook.css", use: Layout.stylesheetAsset)

    let pages = app.grouped(SessionAuthenticator())
    let login = pages.grouped(CSRFGuard())
    login.get("login", use: LoginPage.show)
    login.post("login", use: LoginPage.submit)

    let signedIn = pages.grouped(PageGuard(), CSRFGuard())
    signedIn.post("logout", use: LoginPage.logout)
    signedIn.get(use: ParticipantPages.dashboard)
    signedIn.get("participants", use: ParticipantPages.list)
    signedIn.post("participants", use: ParticipantPages.create)
    signedIn.get("participants", ":id", use: ParticipantPages.detail)
    signedIn.post("participants", ":id", "status", use: ParticipantPages.changeStatus)
    signedIn.get("history", ":entity", ":id", use: ParticipantPages.history)
    signedIn.get("account", "tokens", use: TokenPages.show)
    signedIn.post("account", "tokens", use: TokenPages.create)
    signedIn.post("account", "tokens", ":id", "revoke", use: TokenPages.revoke)

    signedIn.get("study", use: StudyPages.overview)
    signedIn.get("study", "schedule", use: StudyPages.schedule)
    signedIn.get("study", "diff", use: StudyPages.diff)
    signedIn.post("participants", ":id", "eligibility", "decision", use: ScreeningPages.decide)
    signedIn.post("participants", ":id", "consents", use: ScreeningPages.consent)
    signedIn.post("participants", ":id", "allocation", use: ScreeningPages.allocate)
    signedIn.post("participants", ":id", "doses", use: ScreeningPages.dose)
    signedIn.get("screening-log", use: ScreeningPages.screeningLog)
    signedIn.post("participants", ":id", "labs", use: SafetyPages.recordLab)
    signedIn.post("participants", ":id", "adverse-events", use: SafetyPages.recordAdverseEvent)
    signedIn.get("labs", "grade-preview", use: SafetyPages.gradePreview)
    signedIn.get("ctcae", "terms", use: SafetyPages.terms)
    signedIn.get("safety", use: SafetyPages.safety)
    signedIn.get("randomization", use: ScreeningPages.list)
    signedIn.post("randomization", use: ScreeningPages.generate)
    signedIn.get("participants", ":id", "visits", ":visit", use: VisitPages.show)
    signedIn.post("participants", ":id", "visits", ":visit", use: VisitPages.save)
    signedIn.get("participants", ":id", "forms", ":visit", ":form", use: FormPages.show)
    signedIn.post("participants", ":id", "forms", ":visit", ":form", use: FormPages.save)
    DataManagementPages.register(signedIn)
    AnalysisPages.register(pages: signedIn, api: app.grouped("api", "v1").grouped(BearerAuthenticator()))

    let api = app.grouped("api", "v1").grouped(BearerAuthenticator())
    APIController.register(api)
    StudyAPI.register(api)
    ScreeningAPI.register(api)
    SafetyAPI.register(api)
    DataManagementAPI.register(api)
    ExportAPI.register(api)
}

/// Tags every response with its request id (also in every log line) and the usual hardening headers.
struct ResponseHeadersMiddleware: Middleware {
    /// Scripts and styles from this origin only, no inline ones: an injected tag or attribute does nothing.
    static let contentSecurityPolicy = policy(styleSource: "'self'")

    static func policy(styleSource: String) -> String {
        "default-src 'self'; style-src \(styleSource); frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"
    }

    /// HSTS only where Casebook is served over HTTPS: Secure cookies say so (the proxy in front ends TLS, so Casebook
    /// itself sees plain HTTP), as do the server's own TLS and a trusted proxy's X-Forwarded-Proto. A plain-HTTP
    /// deployment must not ask browsers for a year of HTTPS it cannot give.
    let alwaysHSTS: Bool
    let trustForwardedFor: Bool

    init(config: AppConfig, serverTLS: Bool) {
        alwaysHSTS = config.secureCookies || serverTLS
        trustForwardedFor = config.trustForwardedFor
    }

    func respond(to request: Request, chainingTo next: any Responder) -> EventLoopFuture<Response> {
        request.headers.replaceOrAdd(name: "X-Request-Id", value: request.id)
        return next.respond(to: request).map { response in
            response.headers.replaceOrAdd(name: "X-Request-Id", value: request.id)
            response.headers.replaceOrAdd(name: "X-Content-Type-Options", value: "nosniff")
            response.headers.replaceOrAdd(name: "X-Frame-Options", value: "DENY")
            response.headers.replaceOrAdd(name: "Referrer-Policy", value: "no-referrer")
            // A handler may widen the policy for its own answer: the DSMB report allows its style block by hash.
            if !response.headers.contains(name: "Content-Security-Policy") {
                response.headers.add(name: "Content-Security-Policy", value: Self.contentSecurityPolicy)
            }
            // Pages and the API carry participant data: no cache may keep them, unless the handler said otherwise
            // (the static assets).
            if !response.headers.contains(name: .cacheControl) {
                response.headers.add(name: .cacheControl, value: "no-store")
            }
            if alwaysHSTS || overTLS(request) {
                response.headers.replaceOrAdd(name: "Strict-Transport-Security", value: "max-age=31536000")
            }
            return response
        }
    }

    /// Whether this request reached Casebook over HTTPS, itself or (when trusted) at the proxy in front.
    func overTLS(_ request: Request) -> Bool {
        if request.url.scheme?.lowercased() == "https" { return true }
        guard trustForwardedFor, let proto = request.headers.first(name: "X-Forwarded-Proto") else { return false }
        return proto.split(separator: ",").last?.trimmingCharacters(in: .whitespaces).lowercased() == "https"
    }
}
