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
        svg.chart{max-width:100%;height:auto}
        @media print{header,form{display:none}main{max-width:none}.card{border:none;break-inside:avoid-page}}
        """

    /// Served, not inlined: the pages' policy allows no inline style. The address names the text's fingerprint, so
    /// a browser may keep it long and still fetch a new release's at once.
    static let stylesheet = "/assets/casebook.css?v=" + Secrets.sha256(css).prefix(12)

    static func stylesheetAsset(req: Request) -> Response { asset(css, type: "text/css; charset=utf-8") }

    /// A static file: no participant data, the same for everyone, so shared caches may keep it a day.
    static func asset(_ text: String, type: String) -> Response {
        Response(status: .ok, headers: ["Content-Type": type, "Cache-Control": "public, max-age=86400"], body: .init(string: text))
    }

    static func page(title: String, user: CurrentUser?, _ content: Node<HTML.BodyContext>...) -> Response {
        var nav: [Node<HTML.BodyContext>] = [.strong(.text("Casebook"))]
        if let user {
            nav += [
                .a(.href("/"), .text("Dashboard")),
                .a(.href("/participants"), .text("Participants")),
                .a(.href("/study"), .text("Study")),
                .a(.href("/screening-log"), .text("Screening log")),
                .a(.href("/safety"), .text("Safety")),
                .if([.statistician, .independentStatistician, .dsmbViewer, .dataManager].contains(user.account.role), .a(.href("/reports"), .text("Reports"))),
                .if(AccessPolicy.allows(user.account.role, .readParticipants), .a(.href("/queries"), .text("Queries"))),
                .if([.monitor, .dataManager].contains(user.account.role), .a(.href("/monitoring"), .text("Monitoring"))),
                .if([.monitor, .dataManager].contains(user.account.role), .a(.href("/locks"), .text("Locks"))),
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
                // Plot's `.title` adds social-media meta tags whose content it does not escape: the element alone.
                .element(named: "title", text: "\(title) · Casebook"), .stylesheet(stylesheet)),
            .body(.header(.group(nav)), .main(.h1(.text(title)), .group(content)))
        )
        return Response(
            status: .ok, headers: ["Content-Type": "text/html; charset=utf-8", "Cache-Control": "no-store"],
            body: .init(string: html.render()))
    }

    static func errorPage(status: HTTPResponseStatus, message: String) -> String {
        HTML(
            .lang(.english),
            .head(.meta(.charset(.utf8)), .element(named: "title", text: "\(status.code) · Casebook"), .stylesheet(stylesheet)),
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
        return .group(.label(.for(escape(id)), .text(label)), .raw("<select id=\"\(escape(id))\" name=\"\(escape(id))\">\(items)</select>"))
    }

    /// Text made safe for HTML, in element content and in attribute values alike: Plot writes attribute values as given.
    static func escape(_ text: String) -> String {
        // Most text holds none of the five: one pass over its bytes finds that, and it is used as it is.
        guard text.utf8.contains(where: { $0 == 0x26 || $0 == 0x3C || $0 == 0x3E || $0 == 0x22 || $0 == 0x27 }) else { return text }
        var out = ""
        out.reserveCapacity(text.utf8.count + 16)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }

    /// A path segment of a link built from a code (a visit's, a form's): percent-encoded, then escaped for the attribute.
    static func pathSegment(_ code: String) -> String {
        var allowed = CharacterSet.urlPathAllowed
        allowed.remove("/")
        return escape(code.addingPercentEncoding(withAllowedCharacters: allowed) ?? code)
    }

    static func field(_ label: String, id: String, type: HTMLInputType = .text, required: Bool = true, value: String = "") -> Node<HTML.FormContext> {
        .group(
            .label(.for(escape(id)), .text(label)),
            .input(.type(type), .id(escape(id)), .name(escape(id)), .required(required), .value(escape(value))))
    }
}

extension Node {
    /// Escaped text, as Plot's own `.text` (which this one shadows in the pages) but in one pass: Plot's builds a
    /// string per character, a tenth of a casebook page's time. Every `&` is escaped, so text shows as it was typed.
    static func text(_ text: String) -> Node { .raw(Layout.escape(text)) }
}
