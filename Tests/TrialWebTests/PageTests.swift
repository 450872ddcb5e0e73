import FluentKit
import Foundation
import TestSupport
import Testing
import TrialDomain
import TrialStore
@testable import TrialWeb
import Vapor
import VaporTesting

/// A browser's view of the pages: it keeps cookies and reads the CSRF token out of each form.
final class PageBrowser: @unchecked Sendable {
    let t: TestApp
    var cookies: [String: String] = [:]
    /// Sent with every request, as a proxy in front would add them (X-Forwarded-For, say).
    var extraHeaders: HTTPHeaders = [:]

    init(_ t: TestApp) { self.t = t }

    func request(_ method: HTTPMethod, _ path: String, form: [String: String]? = nil) async throws -> TestingHTTPResponse {
        var headers = extraHeaders
        headers.add(name: .accept, value: "text/html")
        if !cookies.isEmpty {
            headers.add(name: .cookie, value: cookies.map { "\($0.key)=\($0.value)" }.joined(separator: "; "))
        }
        var body: ByteBuffer?
        if let form {
            headers.contentType = .urlEncodedForm
            var components = URLComponents()
            components.queryItems = form.map { URLQueryItem(name: $0.key, value: $0.value) }
            body = ByteBuffer(string: components.percentEncodedQuery ?? "")
        }
        let response = try await t.send(method, path, headers: headers, body: body)
        for (name, value) in response.headers.setCookie?.all ?? [:] {
            if value.string.isEmpty || value.maxAge == 0 { cookies[name] = nil } else { cookies[name] = value.string }
        }
        return response
    }

    /// The value of the first hidden `csrf` field on a page.
    static func csrf(in html: String) -> String? {
        guard let range = html.range(of: #"name="csrf" value=""#) else { return nil }
        return String(html[range.upperBound...].prefix { $0 != "\"" })
    }

    func signIn(_ username: String, password: String = TestApp.password) async throws -> TestingHTTPResponse {
        let page = try await request(.GET, "login")
        return try await request(.POST, "login", form: ["username": username, "password": password, "csrf": Self.csrf(in: page.body.string) ?? ""])
    }
}

@Suite struct LoginTests {
    @Test(arguments: TestDatabase.available)
    func signInSeeTheDashboardAndSignOut(database: TestDatabase) async throws {
        try await TestApp.run(database) { t in
            try await t.site("A")
            try await t.user("ana", role: .investigator, sites: ["A"])
            let browser = PageBrowser(t)
            #expect(try await browser.request(.GET, "").headers.first(name: .location) == "/login")
            let signedIn = try await browser.signIn("ana")
            #expect(signedIn.status == .seeOther)
            let cookie = try #require(signedIn.headers.setCookie?[Cookies.session])
            #expect(cookie.isHTTPOnly)
            #expect(cookie.sameSite == .strict)
            // The database keeps only the hash of the session token.
            let sessions = try await SessionModel.query(on: t.store.database).all()
            #expect(sessions.map(\.tokenHash) == [Secrets.sha256(cookie.string)])
            let dashboard = try await browser.request(.GET, "")
            #expect(dashboard.status == .ok)
            #expect(dashboard.body.string.contains("Signed in as ana"))
            let csrf = try #require(PageBrowser.csrf(in: dashboard.body.string))
            let out = try await browser.request(.POST, "logout", form: ["csrf": csrf])
            #expect(out.headers.first(name: .location) == "/login")
            #expect(try await SessionModel.query(on: t.store.database).count() == 0)
            #expect(try await browser.request(.GET, "").headers.first(name: .location) == "/login")
        }
    }

    @Test(arguments: TestDatabase.available)
    func aWrongPasswordIsRefusedAndRepeatedOnesLockTheAccount(database: TestDatabase) async throws {
        try await TestApp.run(database, environment: ["CASEBOOK_LOCKOUT_ATTEMPTS": "3"]) { t in
            try await t.user("root", role: .admin, sites: [])
            let browser = PageBrowser(t)
            let wrong = try await browser.signIn("root", password: "not the password")
            #expect(wrong.status == .unauthorized)
            #expect(wrong.body.string.contains(LoginService.refusal))
            _ = try await browser.signIn("root", password: "not the password")
            let locked = try await browser.signIn("root", password: "not the password")
            // The lock is kept and audited, but the answer is the one any refusal gets.
            #expect(locked.status == .unauthorized)
            #expect(locked.body.string.contains(LoginService.refusal))
            #expect(try await t.accounts.account(username: "root")?.lockedUntil != nil)
            // Even the right password is refused while the lock holds.
            let right = try await browser.signIn("root")
            #expect(right.status == .unauthorized)
            #expect(right.body.string.contains(LoginService.refusal))
            #expect(browser.cookies[Cookies.session] == nil)
        }
    }

    @Test func theLoginFormNeedsItsCSRFToken() async throws {
        try await TestApp.run(.sqlite) { t in
            try await t.user("root", role: .admin, sites: [])
            let browser = PageBrowser(t)
            _ = try await browser.request(.GET, "login")
            let missing = try await browser.request(.POST, "login", form: ["username": "root", "password": TestApp.password])
            #expect(missing.status == .forbidden)
            #expect(missing.body.string.contains("CSRF token is missing"))
            let forged = try await browser.request(.POST, "login", form: ["username": "root", "password": TestApp.password, "csrf": "forged"])
            #expect(forged.status == .forbidden)
            #expect(browser.cookies[Cookies.session] == nil)
        }
    }

    @Test func anExpiredSessionIsToldSo() async throws {
        try await TestApp.run(.sqlite) { t in
            try await t.site("A")
            try await t.user("ana", role: .investigator, sites: ["A"])
            let browser = PageBrowser(t)
            _ = try await browser.signIn("ana")
            let csrf = try #require(PageBrowser.csrf(in: try await browser.request(.GET, "participants").body.string))
            let token = try #require(browser.cookies[Cookies.session])
            try await t.accounts.extendSession(tokenHash: Secrets.sha256(token), expiresAt: Date(timeIntervalSinceNow: -1))
            let post = try await browser.request(.POST, "participants", form: ["siteCode": "A", "screeningNumber": "A-001", "csrf": csrf])
            #expect(post.status == .unauthorized)
            #expect(post.body.string.contains("session has expired"))
            #expect(try await ParticipantModel.query(on: t.store.database).count() == 0)
            #expect(try await browser.request(.GET, "participants").headers.first(name: .location) == "/login?expired=1")
        }
    }
}

@Suite struct ParticipantPageTests {
    @Test(arguments: TestDatabase.available)
    func registerChangeAndReadTheHistoryThroughPages(database: TestDatabase) async throws {
        try await TestApp.run(database) { t in
            try await t.site("A")
            try await t.site("B")
            try await t.user("ana", role: .investigator, sites: ["A"])
            try await t.user("bob", role: .investigator, sites: ["B"])
            let ana = PageBrowser(t)
            _ = try await ana.signIn("ana")
            let list = try await ana.request(.GET, "participants")
            let csrf = try #require(PageBrowser.csrf(in: list.body.string))

            let noToken = try await ana.request(.POST, "participants", form: ["siteCode": "A", "screeningNumber": "A-001"])
            #expect(noToken.status == .forbidden)
            #expect(try await ParticipantModel.query(on: t.store.database).count() == 0)

            let created = try await ana.request(.POST, "participants", form: ["siteCode": "A", "screeningNumber": "A-001", "csrf": csrf])
            #expect(created.status == .seeOther)
            let detailPath = try #require(created.headers.first(name: .location))
            let id = String(detailPath.split(separator: "/").last ?? "")

            let noReason = try await ana.request(.POST, "participants/\(id)/status", form: ["status": "eligible", "reason": "", "csrf": csrf])
            #expect(noReason.status == .unprocessableEntity)
            #expect(noReason.body.string.contains("a reason is required"))
            let changed = try await ana.request(.POST, "participants/\(id)/status", form: ["status": "eligible", "reason": "criteria met", "csrf": csrf])
            #expect(changed.status == .seeOther)

            let history = try await ana.request(.GET, "history/participant/\(id)")
            #expect(history.status == .ok)
            #expect(history.body.string.contains("criteria met"))
            #expect(history.body.string.contains("status: screening → eligible"))

            let bob = PageBrowser(t)
            _ = try await bob.signIn("bob")
            #expect(try await bob.request(.GET, "participants/\(id)").status == .notFound)
            #expect(try await bob.request(.GET, "history/participant/\(id)").status == .notFound)
            #expect(!(try await bob.request(.GET, "participants").body.string.contains("A-001")))
            #expect(try await bob.request(.GET, "history/user/\(id)").status == .forbidden)
        }
    }

    @Test func pageTextIsEscaped() {
        #expect(Layout.escape(#"<script>"x"&'y'</script>"#) == "&lt;script&gt;&quot;x&quot;&amp;&#39;y&#39;&lt;/script&gt;")
        #expect(Layout.escape("Großhadern 2 µmol/L") == "Großhadern 2 µmol/L")
        #expect(Layout.escape("é&ü") == "é&amp;ü")
        // Text in a page, through the pages' `.text`: an entity typed as text shows as typed, not as its character.
        // (Plot's own would leave "&lt;" as the entity and the quotes as they are.)
        let html = Layout.errorPage(status: .badRequest, message: "a < b & &lt; \"c\"")
        #expect(html.contains(#"<p class="error" id="error">a &lt; b &amp; &amp;lt; &quot;c&quot;</p>"#))
        // A page's title (study names and codes go into it) appears once, escaped, in no attribute.
        let page = Layout.page(title: #"Form "x" <y>"#, user: nil).body.string ?? ""
        #expect(page.contains(#"<title>Form "x" &lt;y&gt; · Casebook</title>"#))
        #expect(!page.contains(#"content="Form"#))
        // Links built from codes: percent-encoded, and nothing that could end the attribute.
        #expect(Layout.pathSegment(#"d1" onclick="x"#) == "d1%22%20onclick=%22x")
        #expect(Layout.pathSegment("a/b") == "a%2Fb")
    }
}
