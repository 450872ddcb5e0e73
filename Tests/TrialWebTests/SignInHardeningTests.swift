import FluentKit
import Foundation
import TestSupport
import Testing
import TrialDomain
import TrialStore
@testable import TrialWeb
import Vapor
import VaporTesting

/// The text of the login page's message, the one thing a refused sign-in tells.
private func loginMessage(_ response: TestingHTTPResponse) -> String? {
    let html = response.body.string
    guard let start = html.range(of: #"id="message">"#) else { return nil }
    return String(html[start.upperBound...].prefix { $0 != "<" })
}

@Suite struct SignInRefusalTests {
    /// A wrong password, an unknown user and a locked account (with a wrong password or the right one) look alike:
    /// one status, one message; the lock holds and is audited all the same.
    @Test(arguments: TestDatabase.available)
    func everyRefusalGetsTheSameAnswer(database: TestDatabase) async throws {
        try await TestApp.run(database, environment: ["CASEBOOK_LOCKOUT_ATTEMPTS": "3"]) { t in
            try await t.user("root", role: .admin, sites: [])
            let browser = PageBrowser(t)
            let wrong = try await browser.signIn("root", password: "not the password")
            let unknown = try await browser.signIn("nobody", password: "not the password")
            _ = try await browser.signIn("root", password: "not the password")
            let locking = try await browser.signIn("root", password: "not the password")
            let account = try #require(try await t.accounts.account(username: "root"))
            let until = try #require(account.lockedUntil)
            #expect(until > Date())
            let lockedWrong = try await browser.signIn("root", password: "not the password")
            let lockedRight = try await browser.signIn("root")
            for (name, response) in [("wrong", wrong), ("unknown", unknown), ("locking", locking), ("locked, wrong", lockedWrong), ("locked, right", lockedRight)] {
                #expect(response.status == .unauthorized, "\(name)")
                #expect(loginMessage(response) == LoginService.refusal, "\(name)")
                // The lock's end is never told.
                #expect(!response.body.string.contains(AuditEntry.timestamp(until)), "\(name)")
            }
            // The right password did not open the locked account.
            #expect(browser.cookies[Cookies.session] == nil)
            #expect(try await SessionModel.query(on: t.store.database).count() == 0)
            // The lock is audited as before.
            let audited = try await AuditEventModel.query(on: t.store.database).filter(\.$entity == "user").filter(\.$entityID == account.id.uuidString).all()
            #expect(audited.contains { $0.reason == "locked after 3 failed logins" })
        }
    }

    /// Every refusal spends one bcrypt check: an unknown user's against a dummy hash of the configured cost, a locked
    /// account's against its own. Timed against bcrypt itself, with a wide margin, so that only a missing check fails.
    @Test func everyRefusalTakesABcryptCheck() async throws {
        try await TestApp.run(.sqlite, environment: ["CASEBOOK_LOCKOUT_ATTEMPTS": "1"]) { t in
            let dummy = LoginService.dummyHash(cost: 10)
            #expect(dummy.hasPrefix("$2") && dummy.contains("$10$"))
            #expect(!Passwords.verify("anything", hash: dummy))
            let bcrypt = try (0..<3).map { _ in
                let start = ContinuousClock.now
                _ = Passwords.verify(TestApp.password, hash: try Passwords.hash(TestApp.password, cost: 10))
                return ContinuousClock.now - start
            }.min()!
            let hashOnly = try (0..<3).map { _ in
                let start = ContinuousClock.now
                _ = try Passwords.hash(TestApp.password, cost: 10)
                return ContinuousClock.now - start
            }.min()!
            let oneCheck = bcrypt - hashOnly
            try await t.user("root", role: .admin, sites: [])
            let browser = PageBrowser(t)
            _ = try await browser.signIn("root", password: "not the password")  // locks it
            for (username, password) in [("nobody", "not the password"), ("root", TestApp.password), ("root", "not the password")] {
                let page = try await browser.request(.GET, "login")
                let form = ["username": username, "password": password, "csrf": PageBrowser.csrf(in: page.body.string) ?? ""]
                let start = ContinuousClock.now
                let refused = try await browser.request(.POST, "login", form: form)
                let took = ContinuousClock.now - start
                #expect(refused.status == .unauthorized)
                #expect(took >= oneCheck / 2, "\(username): \(took) against one bcrypt check's \(oneCheck)")
            }
        }
    }
}

@Suite struct SignInThrottleTests {
    static let trusting = ["CASEBOOK_LOGIN_ATTEMPTS_PER_ADDRESS": "3", "CASEBOOK_TRUST_FORWARDED_FOR": "true", "CASEBOOK_LOCKOUT_ATTEMPTS": "100"]

    private func browser(_ t: TestApp, from address: String) -> PageBrowser {
        let browser = PageBrowser(t)
        browser.extraHeaders.add(name: .xForwardedFor, value: address)
        return browser
    }

    /// One address may fail so often, then is answered 429 with Retry-After, even for the right password; another
    /// address is not affected.
    @Test func oneAddressIsThrottledAndAnotherIsNot() async throws {
        try await TestApp.run(.sqlite, environment: Self.trusting) { t in
            try await t.user("root", role: .admin, sites: [])
            try await t.user("ana", role: .admin, sites: [])
            // The client writes the first entries; the proxy appends the address it saw, the one that counts.
            let attacker = browser(t, from: "198.51.100.1, 203.0.113.7")
            for username in ["root", "ana", "nobody"] {
                #expect(try await attacker.signIn(username, password: "not the password").status == .unauthorized)
            }
            attacker.extraHeaders.replaceOrAdd(name: .xForwardedFor, value: "192.0.2.200, 203.0.113.7")
            let throttled = try await attacker.signIn("root")
            #expect(throttled.status == .tooManyRequests)
            let retry = try #require(throttled.headers.first(name: .retryAfter).flatMap(Int.init))
            #expect((1...900).contains(retry))
            #expect(loginMessage(throttled)?.contains("Too many failed sign-ins") == true)
            #expect(attacker.cookies[Cookies.session] == nil)
            // Answered before the password was checked: the right one would have signed in and cleared root's count.
            #expect(try await t.accounts.account(username: "root")?.failedLogins == 1)

            let other = browser(t, from: "203.0.113.8")
            #expect(try await other.signIn("ana", password: "not the password").status == .unauthorized)
            #expect(try await other.signIn("root").status == .seeOther)
            #expect(other.cookies[Cookies.session] != nil)
        }
    }

    /// Successful sign-ins are not failures; the per-account lockout works as before beside the throttle.
    @Test func successesDoNotCountAndTheAccountLockStays() async throws {
        try await TestApp.run(.sqlite, environment: Self.trusting.merging(["CASEBOOK_LOCKOUT_ATTEMPTS": "2"]) { $1 }) { t in
            try await t.user("root", role: .admin, sites: [])
            let user = browser(t, from: "203.0.113.9")
            for _ in 0..<5 {
                #expect(try await user.signIn("root").status == .seeOther)
                user.cookies = [:]
            }
            #expect(try await user.signIn("root", password: "not the password").status == .unauthorized)
            #expect(try await user.signIn("root", password: "not the password").status == .unauthorized)
            #expect(try await t.accounts.account(username: "root")?.lockedUntil != nil)
            // The lock, not the throttle (two failures of three), refuses the right password now.
            #expect(try await user.signIn("root").status == .unauthorized)
        }
    }

    /// Without trust, X-Forwarded-For is the client's to write: ignored, so changing it does not escape the throttle.
    @Test func anUntrustedForwardedForIsIgnored() async throws {
        try await TestApp.run(.sqlite, environment: ["CASEBOOK_LOGIN_ATTEMPTS_PER_ADDRESS": "2"]) { t in
            try await t.user("root", role: .admin, sites: [])
            let statuses = try await (1...3).asyncMap { i in
                try await browser(t, from: "203.0.113.\(i)").signIn("root", password: "not the password").status
            }
            #expect(statuses == [.unauthorized, .unauthorized, .tooManyRequests])
        }
    }

    @Test func theThrottleSlidesItsWindow() async {
        let throttle = LoginThrottle(limit: 2, window: 60)
        let t0 = Date(timeIntervalSince1970: 1_000_000)
        #expect(await throttle.admit("a", now: t0) == nil)
        #expect(await throttle.admit("a", now: t0.addingTimeInterval(10)) == nil)
        #expect(await throttle.admit("a", now: t0.addingTimeInterval(20)) == t0.addingTimeInterval(60))
        #expect(await throttle.admit("b", now: t0.addingTimeInterval(20)) == nil)
        // The first attempt has left the window: one more is allowed, then none until the second leaves.
        #expect(await throttle.admit("a", now: t0.addingTimeInterval(61)) == nil)
        #expect(await throttle.admit("a", now: t0.addingTimeInterval(62)) == t0.addingTimeInterval(70))
        // A success takes its own attempt back.
        let t1 = t0.addingTimeInterval(200)
        #expect(await throttle.admit("c", now: t1) == nil)
        await throttle.succeeded("c", at: t1)
        #expect(await throttle.admit("c", now: t1.addingTimeInterval(1)) == nil)
        #expect(await throttle.admit("c", now: t1.addingTimeInterval(2)) == nil)
        #expect(await throttle.admit("c", now: t1.addingTimeInterval(3)) != nil)
    }

    @Test func theLimitIsReadFromTheEnvironment() throws {
        let config = try AppConfig.from(environment: ["CASEBOOK_LOGIN_ATTEMPTS_PER_ADDRESS": "7"])
        #expect(config.loginAttemptsPerAddress == 7)
        #expect(try AppConfig.from(environment: [:]).loginAttemptsPerAddress == 20)
        #expect(throws: ConfigurationError.self) { try AppConfig.from(environment: ["CASEBOOK_LOGIN_ATTEMPTS_PER_ADDRESS": "0"]) }
        #expect(throws: ConfigurationError.self) { try AppConfig.from(environment: ["CASEBOOK_TRUST_FORWARDED_FOR": "maybe"]) }
        #expect(AppConfig.variables.contains { $0.name == "CASEBOOK_LOGIN_ATTEMPTS_PER_ADDRESS" })
        #expect(AppConfig.variables.contains { $0.name == "CASEBOOK_TRUST_FORWARDED_FOR" })
    }
}

extension Sequence {
    fileprivate func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var out: [T] = []
        for element in self { out.append(try await transform(element)) }
        return out
    }
}

@Suite struct ResponseHeaderTests {
    static let policy = "default-src 'self'; style-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'"

    /// A page, the login page, an API answer, an API error and an HTML error page, as one signed-in investigator sees them.
    private func answers(_ t: TestApp, extra: HTTPHeaders = [:]) async throws -> [(String, TestingHTTPResponse)] {
        if try await t.accounts.account(username: "ana") == nil {
            try await t.site("A")
            try await t.user("ana", role: .investigator, sites: ["A"])
        }
        let browser = PageBrowser(t)
        browser.extraHeaders = extra
        let login = try await browser.request(.GET, "login")
        _ = try await browser.signIn("ana")
        let page = try await browser.request(.GET, "participants")
        let missing = try await browser.request(.GET, "no-such-page")
        var headers = bearer(try await t.token("ana"))
        headers.add(contentsOf: extra)
        let api = try await t.send(.GET, "api/v1/me", headers: headers)
        let apiError = try await t.send(.GET, "api/v1/participants/\(UUID())", headers: headers)
        return [("login", login), ("page", page), ("HTML error", missing), ("API", api), ("API error", apiError)]
    }

    @Test func everyAnswerCarriesTheHeaders() async throws {
        try await TestApp.run(.sqlite) { t in
            let plain = try await answers(t)
            #expect(plain[2].1.status == .notFound && plain[2].1.headers.contentType?.subType == "html")
            #expect(plain[3].1.status == .ok)
            #expect(plain[4].1.status == .notFound)
            for (name, r) in plain {
                #expect(r.headers.first(name: "Referrer-Policy") == "no-referrer", "\(name)")
                #expect(r.headers.first(name: "Content-Security-Policy") == Self.policy, "\(name)")
                #expect(r.headers["Content-Security-Policy"].allSatisfy { !$0.contains("unsafe-inline") }, "\(name)")
                #expect(r.headers[.cacheControl] == ["no-store"], "\(name)")
                #expect(r.headers.first(name: "X-Content-Type-Options") == "nosniff", "\(name)")
                #expect(r.headers.first(name: "X-Frame-Options") == "DENY", "\(name)")
                // Plain HTTP, no Secure cookies: no HSTS.
                #expect(r.headers.first(name: "Strict-Transport-Security") == nil, "\(name)")
            }
            // A client cannot claim HTTPS unless a proxy is trusted (and then it would be the proxy's word).
            for (name, r) in try await answers(t, extra: ["X-Forwarded-Proto": "https"]) {
                #expect(r.headers.first(name: "Strict-Transport-Security") == nil, "\(name)")
            }
        }
    }

    @Test func hstsWithSecureCookies() async throws {
        try await TestApp.run(.sqlite, environment: ["CASEBOOK_SECURE_COOKIES": "true"]) { t in
            for (name, r) in try await answers(t) {
                #expect(r.headers.first(name: "Strict-Transport-Security") == "max-age=31536000", "\(name)")
            }
        }
    }

    @Test func hstsWhenATrustedProxySaysHTTPS() async throws {
        try await TestApp.run(.sqlite, environment: ["CASEBOOK_TRUST_FORWARDED_FOR": "true"]) { t in
            for (name, r) in try await answers(t, extra: ["X-Forwarded-Proto": "https"]) {
                #expect(r.headers.first(name: "Strict-Transport-Security") == "max-age=31536000", "\(name)")
            }
            for (name, r) in try await answers(t) {
                #expect(r.headers.first(name: "Strict-Transport-Security") == nil, "\(name)")
            }
        }
    }

    /// The stylesheet the pages link is served, cached; the pages carry no inline style or script for the policy to block.
    @Test func stylesAndScriptsAreServedNotInlined() async throws {
        try await TestApp.run(.sqlite) { t in
            try await t.site("A")
            try await t.user("ana", role: .investigator, sites: ["A"])
            let browser = PageBrowser(t)
            _ = try await browser.signIn("ana")
            let created = try await t.send(
                .POST, "api/v1/participants", headers: bearer(try await t.token("ana")), body: json(#"{"siteCode":"A","screeningNumber":"A-001"}"#))
            let id = try created.content.get(String.self, at: "id")
            var pages: [String: String] = [:]
            for path in ["", "participants", "participants/\(id)", "study", "screening-log", "safety", "consort", "account/tokens", "no-such-page"] {
                pages[path] = try await browser.request(.GET, path).body.string
            }
            pages["login"] = try await PageBrowser(t).request(.GET, "login").body.string
            for (path, html) in pages {
                #expect(!html.contains("<style"), "\(path)")
                #expect(!html.contains("style="), "\(path)")
                #expect(html.contains(#"<link rel="stylesheet" href="\#(Layout.stylesheet)""#), "\(path)")
                // Every script names its source.
                #expect(html.components(separatedBy: "<script").dropFirst().allSatisfy { $0.hasPrefix(" src=\"/assets/") }, "\(path)")
            }
            #expect(pages["participants/\(id)"]?.contains(SafetyPages.scriptPath) == true)
            #expect(pages["consort"]?.contains(#"<svg "#) == true)

            let css = try await t.send(.GET, String(Layout.stylesheet.dropFirst()))
            #expect(css.status == .ok)
            #expect(css.headers.contentType?.subType == "css")
            #expect(css.body.string == Layout.css)
            #expect(css.body.string.contains("svg.chart"))
            #expect(css.headers[.cacheControl] == ["public, max-age=86400"])
            let js = try await t.send(.GET, String(SafetyPages.scriptPath.dropFirst()))
            #expect(js.status == .ok)
            #expect(js.body.string == SafetyPages.script)
            #expect(js.headers[.cacheControl] == ["public, max-age=86400"])
        }
    }

    /// The DSMB report keeps its one style block (it is the same document the CLI writes), allowed by its hash on
    /// that answer alone.
    @Test func theDSMBReportAllowsItsStyleBlockByHash() async throws {
        try await TestApp.run(.sqlite) { t in
            try await t.site("A")
            try await t.user("dana", role: .dsmbViewer, sites: ["A"])
            let browser = PageBrowser(t)
            _ = try await browser.signIn("dana")
            let report = try await browser.request(.GET, "reports/dsmb?session=open")
            #expect(report.status == .ok)
            let html = report.body.string
            let open = try #require(html.range(of: "<style>")), close = try #require(html.range(of: "</style>"))
            let block = String(html[open.upperBound..<close.lowerBound])
            #expect(html.components(separatedBy: "<style").count == 2)
            #expect(!html.contains("style=\""))
            // The digest of the block as served, from its hex form (the test target has no Crypto of its own).
            let hex = Array(Secrets.sha256(block))
            let hash = Data(stride(from: 0, to: hex.count, by: 2).map { UInt8(String(hex[$0...$0 + 1]), radix: 16)! }).base64EncodedString()
            let policy = try #require(report.headers.first(name: "Content-Security-Policy"))
            #expect(policy == Self.policy.replacingOccurrences(of: "style-src 'self'", with: "style-src 'self' 'sha256-\(hash)'"))
            #expect(!policy.contains("unsafe-inline"))
            #expect(report.headers[.cacheControl] == ["no-store"])
            #expect(report.headers.first(name: "Referrer-Policy") == "no-referrer")
            // Other pages keep the strict policy.
            #expect(try await browser.request(.GET, "reports").headers.first(name: "Content-Security-Policy") == Self.policy)
        }
    }
}

/// Collects log lines, message and metadata, for a test to read.
final class LogLines: @unchecked Sendable {
    private let lock = NSLock()
    private var lines: [String] = []
    func append(_ line: String) { lock.withLock { lines.append(line) } }
    var all: [String] { lock.withLock { lines } }
}

struct CollectingLogHandler: LogHandler {
    let lines: LogLines
    var metadata: Logger.Metadata = [:]
    var metadataProvider: Logger.MetadataProvider?
    var logLevel: Logger.Level = .trace

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    func log(event: LogEvent) {
        let all = metadata.merging(event.metadata ?? [:]) { $1 }
        lines.append("\(event.message) " + all.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " "))
    }
}

@Suite struct RefusalLoggingTests {
    /// A refused body is logged by its field, kind and size: never the values it carried, though the answer to the
    /// client may quote them.
    @Test func aRejectedBodyIsNotLoggedVerbatim() async throws {
        try await TestApp.run(.sqlite) { t in
            try await t.site("A")
            try await t.user("ana", role: .investigator, sites: ["A"])
            let token = try await t.token("ana")
            let lines = LogLines()
            t.app.logger = Logger(label: "test") { _ in CollectingLogHandler(lines: lines) }
            let secret = "Marker-Jane-Doe-1961"
            let bodies = [
                #"{"siteCode":"\#(secret)","screeningNumber":"A-001"}"#,  // an unknown site, quoted in the answer
                #"{"siteCode":"A","screeningNumber":"A-002","\#(secret)":1}"#.replacingOccurrences(of: secret, with: "note"),
                #"{"siteCode":"A","screeningNumber":["\#(secret)"]}"#,
                #"{"siteCode":"A", "screeningNumber": "\#(secret)"#,
            ]
            for body in bodies {
                let refused = try await t.send(.POST, "api/v1/participants", headers: bearer(token), body: json(body))
                #expect(refused.status.code >= 400 && refused.status.code < 500, "\(body)")
            }
            let refusals = lines.all.filter { $0.hasPrefix("request refused") }
            #expect(refusals.count == bodies.count)
            for line in lines.all { #expect(!line.contains(secret), "\(line)") }
            #expect(refusals.allSatisfy { $0.contains("body-bytes=") && !$0.contains("reason=") })
            #expect(refusals.first?.contains("field=siteCode") == true)
            #expect(refusals.first?.contains("error=store.not-found") == true)
            // A refusal that sent nothing keeps its words: they can quote only the path.
            _ = try await t.send(.GET, "api/v1/me")
            #expect(lines.all.last { $0.hasPrefix("request refused") }?.contains("reason=Authorization") == true)
        }
    }
}
