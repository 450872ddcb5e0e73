import Foundation
import Plot
import TrialDomain
import TrialStore
import Vapor

/// The frame every page shares: a header with the user and a sign-out form, then the content.
enum Layout {
    static let css = """
        body{font-family:system-ui,sans-serif;margin:0;color:#1b1f24;background:#f6f7f9}
        header{background:#12355b;color:#fff;padding:.6rem 1.2rem;display:flex;gap:1.2rem;align-items:center}
        header a{color:#fff}header form{margin-left:auto}main{padding:1.2rem;max-width:64rem}
        table{border-collapse:collapse;background:#fff}th,td{border:1px solid #ccd;padding:.3rem .6rem;text-align:left}
        label{display:block;margin:.5rem 0 .2rem}input,select{padding:.3rem}button{padding:.35rem .8rem;margin-top:.5rem}
        .error{color:#a00;font-weight:600}.notice{color:#064}.card{background:#fff;padding:1rem;margin:1rem 0;border:1px solid #ccd}
        """

    static func page(title: String, user: CurrentUser?, _ content: Node<HTML.BodyContext>...) -> Response {
        var nav: [Node<HTML.BodyContext>] = [.strong(.text("Casebook"))]
        if let user {
            nav += [
                .a(.href("/"), .text("Dashboard")),
                .a(.href("/participants"), .text("Participants")),
                .a(.href("/study"), .text("Study")),
                .a(.href("/screening-log"), .text("Screening log")),
                .a(.href("/safety"), .text("Safety")),
                .a(.href("/account/tokens"), .text("API tokens")),
                .if(user.account.role == .statistician, .a(.href("/randomization"), .text("Randomization list"))),
                .span(.id("signed-in-as"), .text("\(user.account.username) · \(user.account.role.title)")),
                .form(
                    .method(.post), .action("/logout"), csrfField(user),
                    .button(.type(.submit), .id("logout"), .text("Sign out"))),
            ]
        }
        let html = HTML(
            .lang(.english),
            .head(
                .meta(.charset(.utf8)), .meta(.name("viewport"), .content("width=device-width, initial-scale=1")),
                .title("\(title) · Casebook"), .element(named: "style", text: css)),
            .body(.header(.group(nav)), .main(.h1(.text(title)), .group(content)))
        )
        return Response(
            status: .ok, headers: ["Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"],
            body: .init(string: html.render()))
    }

    static func errorPage(status: HTTPResponseStatus, message: String) -> String {
        HTML(
            .lang(.english),
            .head(.meta(.charset(.utf8)), .title("\(status.code) · Casebook"), .element(named: "style", text: css)),
            .body(
                .main(
                    .h1(.text("\(status.code) \(status.reasonPhrase)")), .p(.class("error"), .id("error"), .text(message)),
                    .p(.a(.href("/"), .text("Back to Casebook")))))
        ).render()
    }

    static func csrfField(_ user: CurrentUser) -> Node<HTML.FormContext> {
        .input(.type(.hidden), .name("csrf"), .value(user.csrf))
    }

    /// Plot's `<select>` has no name attribute nor option text, so this one is written by hand, escaped.
    static func select(_ label: String, id: String, options: [(value: String, text: String, selected: Bool)]) -> Node<HTML.FormContext> {
        let items = options.map { o in
            "<option value=\"\(escape(o.value))\"\(o.selected ? " selected" : "")>\(escape(o.text))</option>"
        }.joined()
        return .group(.label(.for(id), .text(label)), .raw("<select id=\"\(escape(id))\" name=\"\(escape(id))\">\(items)</select>"))
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
            .replacingOccurrences(of: "'", with: "&#39;")
    }

    static func field(_ label: String, id: String, type: HTMLInputType = .text, required: Bool = true, value: String = "") -> Node<HTML.FormContext> {
        .group(
            .label(.for(id), .text(label)),
            .input(.type(type), .id(id), .name(id), .required(required), .value(value)))
    }
}
