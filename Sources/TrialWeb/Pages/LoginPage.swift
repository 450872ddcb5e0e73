import Foundation
import Plot
import TrialDomain
import TrialStore
import Vapor

struct LoginForm: Content {
    var username: String
    var password: String
}

/// Sign in and sign out. The login form's CSRF token lives in a short-lived cookie, since there is no session yet.
enum LoginPage {
    static func show(req: Request) async throws -> Response {
        if req.auth.has(CurrentUser.self) { return req.redirect(to: "/") }
        let message: Node<HTML.BodyContext> =
            (try? req.query.get(String.self, at: "expired")) != nil
            ? .p(.class("notice"), .id("message"), .text("Your session has expired; please sign in again."))
            : .empty
        return render(req: req, message: message, status: .ok)
    }

    static func render(req: Request, message: Node<HTML.BodyContext>, status: HTTPResponseStatus) -> Response {
        let csrf = Secrets.randomToken(bytes: 16)
        let response = Layout.page(
            title: "Sign in", user: nil, message,
            .form(
                .method(.post), .action("/login"),
                .input(.type(.hidden), .name("csrf"), .value(csrf)),
                Layout.field("Username", id: "username"),
                Layout.field("Password", id: "password", type: .password),
                .button(.type(.submit), .id("sign-in"), .text("Sign in"))))
        response.status = status
        response.cookies[Cookies.loginCSRF] = Cookies.make(csrf, config: req.config, maxAge: 3600)
        return response
    }

    static func submit(req: Request) async throws -> Response {
        let form = try req.content.decode(LoginForm.self)
        let now = Date()
        let throttle = req.application.loginThrottle
        let address = req.clientAddress
        if let retry = await throttle.admit(address, now: now) {
            // Refused before any password is checked: the answer costs nothing and says nothing about the account.
            let seconds = max(1, Int(retry.timeIntervalSince(now).rounded(.up)))
            let minutes = (seconds + 59) / 60
            req.logger.notice("sign-in throttled", metadata: ["address": "\(address)", "retry-after": "\(seconds)"])
            let response = render(
                req: req,
                message: .p(
                    .class("error"), .id("message"),
                    .text("Too many failed sign-ins from your address. Try again in \(minutes == 1 ? "a minute" : "\(minutes) minutes").")),
                status: .tooManyRequests)
            response.headers.replaceOrAdd(name: .retryAfter, value: String(seconds))
            return response
        }
        switch try await LoginService.attempt(username: form.username, password: form.password, request: req, now: now) {
        case .success(let account):
            await throttle.succeeded(address, at: now)
            let token = Secrets.randomToken()
            try await req.accounts.createSession(
                userID: account.id, tokenHash: Secrets.sha256(token), expiresAt: now.addingTimeInterval(req.config.sessionLifetime), now: now)
            let response = req.redirect(to: "/", redirectType: .normal)
            response.cookies[Cookies.session] = Cookies.make(token, config: req.config, maxAge: nil)
            response.cookies[Cookies.loginCSRF] = HTTPCookies.Value(string: "", maxAge: 0, path: "/", isHTTPOnly: true, sameSite: .strict)
            return response
        case .wrongCredentials, .locked:
            // One status and one message for all three: the lock is audited, never told.
            return render(req: req, message: .p(.class("error"), .id("message"), .text(LoginService.refusal)), status: .unauthorized)
        }
    }

    static func logout(req: Request) async throws -> Response {
        if let user = req.auth.get(CurrentUser.self), case .session(let token) = user.credential {
            try await req.accounts.deleteSession(tokenHash: Secrets.sha256(token))
        }
        req.auth.logout(CurrentUser.self)
        let response = req.redirect(to: "/login", redirectType: .normal)
        response.cookies[Cookies.session] = HTTPCookies.Value(string: "", maxAge: 0, path: "/", isHTTPOnly: true, sameSite: .strict)
        return response
    }
}
