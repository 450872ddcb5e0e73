import Foundation
import TrialDomain
import TrialStore
import Vapor

/// The body of every JSON error: what went wrong, in words that name the field and the rule.
struct APIError: Content {
    var error: String
    var status: Int
    var requestId: String?
}

/// Turns every error into a clear answer: JSON under /api, a short page elsewhere. Written against futures, as the
/// middlewares in Authentication.swift are, so that a request passes through without a task of its own.
struct CasebookErrorMiddleware: Middleware {
    func respond(to request: Request, chainingTo next: any Responder) -> EventLoopFuture<Response> {
        next.respond(to: request).flatMapErrorThrowing { error in
            let (status, message) = Self.describe(error, request: request)
            if status.code >= 500 {
                request.logger.report(error: error)
            } else {
                request.logger.info("request refused", metadata: Self.refusalMetadata(error, status: status, message: message, request: request))
            }
            let requestID = request.headers.first(name: "X-Request-Id")
            if request.url.path.hasPrefix("/api/") || request.url.path == "/openapi.json" || !Self.wantsHTML(request) {
                let response = Response(status: status)
                try response.content.encode(APIError(error: message, status: Int(status.code), requestId: requestID))
                return response
            }
            let html = Layout.errorPage(status: status, message: message)
            return Response(status: status, headers: ["Content-Type": "text/html; charset=utf-8"], body: .init(string: html))
        }
    }

    /// What a refusal leaves in the log. Its message may quote what was sent (a value of a participant's record, an
    /// unknown enum value), so a request that sent anything is logged by the field, the kind of error and the body's
    /// size only; the message is kept when nothing was sent, as it can then quote only the path, logged anyway.
    static func refusalMetadata(_ error: any Error, status: HTTPResponseStatus, message: String, request: Request) -> Logger.Metadata {
        var metadata: Logger.Metadata = ["status": "\(status.code)", "error": "\(kind(of: error))"]
        // A body left unread (too large, say) still counts as sent.
        let bodyBytes = request.body.data?.readableBytes ?? request.headers.first(name: .contentLength).flatMap(Int.init) ?? 0
        if bodyBytes == 0, request.url.query == nil {
            metadata["reason"] = "\(message)"
            return metadata
        }
        metadata["body-bytes"] = "\(bodyBytes)"
        if let field = field(of: error, message: message) { metadata["field"] = "\(field)" }
        return metadata
    }

    /// The name of the field a refusal is about, never its value.
    static func field(of error: any Error, message: String) -> String? {
        switch error {
        case let error as StoreError:
            switch error {
            case .notFound(let entity, _): return entity
            case .duplicate(let field, _), .invalid(let field, _), .conflict(let field, _), .reasonRequired(let field): return field
            case .forbidden: break
            }
        case let error as DecodingError:
            let context: DecodingError.Context? =
                switch error {
                case .typeMismatch(_, let c), .valueNotFound(_, let c), .dataCorrupted(let c): c
                case .keyNotFound(let key, let c): DecodingError.Context(codingPath: c.codingPath + [key], debugDescription: "")
                @unknown default: nil
                }
            if let path = context?.codingPath, !path.isEmpty { return path.map(\.stringValue).joined(separator: ".") }
        default: break
        }
        // Otherwise the message's lead up to its first colon, when that reads as a name ("csrf", "body", "Content-Type").
        guard let colon = message.firstIndex(of: ":") else { return nil }
        let lead = message[..<colon]
        return !lead.isEmpty && lead.count <= 64 && !lead.contains(" ") ? String(lead) : nil
    }

    /// The error's type and case, never its text.
    static func kind(of error: any Error) -> String {
        switch error {
        case let error as StoreError:
            switch error {
            case .notFound: "store.not-found"
            case .duplicate: "store.duplicate"
            case .invalid: "store.invalid"
            case .reasonRequired: "store.reason-required"
            case .conflict: "store.conflict"
            case .forbidden: "store.forbidden"
            }
        case is LockRefusal: "lock"
        case is RuleError: "rule"
        case is BodyError: "body"
        case let error as DecodingError: "decoding.\(error.identifier)"
        case is any AbortError: "abort"
        default: "\(type(of: error))"
        }
    }

    static func wantsHTML(_ request: Request) -> Bool {
        request.headers.accept.contains { $0.mediaType == .html } || request.headers.contentType == .urlEncodedForm
    }

    static func describe(_ error: any Error, request: Request) -> (HTTPResponseStatus, String) {
        switch error {
        case let error as StoreError:
            switch error {
            case .notFound: return (.notFound, error.description)
            case .duplicate, .conflict: return (.conflict, error.description)
            case .invalid, .reasonRequired: return (.unprocessableEntity, error.description)
            case .forbidden: return (.forbidden, error.description)
            }
        case let error as LockRefusal:
            return (.conflict, error.description)
        case let error as RuleError:
            switch error {
            case .forbidden: return (.forbidden, error.description)
            case .illegal: return (.conflict, error.description)
            }
        case let error as BodyError:
            return (error.status, error.message)
        case let error as any AbortError:
            if error.status == .payloadTooLarge {
                return (.payloadTooLarge, "body: the request body is larger than the limit of \(request.config.maxBodyBytes / 1024) KiB")
            }
            return (error.status, error.reason)
        case let error as DecodingError:
            return (.unprocessableEntity, BodyError.describe(error))
        default:
            return (.internalServerError, "internal error; the request id in the logs tells what happened")
        }
    }
}

/// A request body that cannot be taken as it is.
struct BodyError: Error {
    var status: HTTPResponseStatus
    var message: String

    static func describe(_ error: DecodingError) -> String {
        func path(_ context: DecodingError.Context, _ extra: (any CodingKey)? = nil) -> String {
            let keys = context.codingPath + (extra.map { [$0] } ?? [])
            return keys.map(\.stringValue).joined(separator: ".")
        }
        switch error {
        case .typeMismatch(let type, let context):
            return "\(path(context)): must be \(typeName(type))"
        case .valueNotFound(let type, let context):
            return "\(path(context)): is required and must be \(typeName(type)), not null"
        case .keyNotFound(let key, let context):
            return "\(path(context, key)): is required"
        case .dataCorrupted(let context):
            let field = path(context)
            return field.isEmpty ? "body: malformed JSON" : "\(field): \(context.debugDescription)"
        @unknown default:
            return "body: cannot be read"
        }
    }

    static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: "a string"
        case is Int.Type, is Int64.Type: "a whole number"
        case is Double.Type: "a number"
        case is Bool.Type: "true or false"
        default: "a \(type)".replacingOccurrences(of: "Optional<", with: "").replacingOccurrences(of: ">", with: "")
        }
    }
}

/// A JSON body whose fields are listed, so that an unknown field is refused rather than ignored.
protocol StrictBody: Decodable, Sendable {
    static var fields: Set<String> { get }
}

extension Request {
    /// Decodes a JSON object, refusing malformed JSON, unknown fields and wrong types with a message naming the field.
    func strictBody<T: StrictBody>(_ type: T.Type) throws -> T {
        guard Self.isJSON(contentType: headers.first(name: .contentType)) else {
            throw BodyError(status: .unsupportedMediaType, message: "Content-Type: must be application/json")
        }
        guard let buffer = body.data, buffer.readableBytes > 0 else {
            throw BodyError(status: .badRequest, message: "body: a JSON object is required")
        }
        let data = Data(buffer.readableBytesView)
        // One parse: the object's member names are checked before its values are decoded from the same parse.
        do {
            return try JSONDecoder().decode(Strict<T>.self, from: data).value
        } catch let error as UnknownFields {
            throw BodyError(
                status: .unprocessableEntity,
                message: error.names.map { "\($0): unknown field" }.joined(separator: "; ")
                    + " (allowed: \(T.fields.sorted().joined(separator: ", ")))")
        } catch let error as FieldProblem {
            throw BodyError(status: .unprocessableEntity, message: BodyError.describe(error.error))
        } catch DecodingError.typeMismatch, DecodingError.valueNotFound {
            throw BodyError(status: .badRequest, message: "body: must be a JSON object")
        } catch {
            throw BodyError(status: .badRequest, message: "body: malformed JSON")
        }
    }
}

extension Request {
    /// Whether a Content-Type header names JSON: `application/json` in any case, with any parameters. Read from the
    /// header text itself, as Vapor's parsed media type costs as much as decoding a small body.
    static func isJSON(contentType: String?) -> Bool {
        guard let contentType else { return false }
        let expected = Array("application/json".utf8)
        var media = ArraySlice(contentType.utf8.prefix { $0 != UInt8(ascii: ";") })
        let blank: (UInt8) -> Bool = { $0 == UInt8(ascii: " ") || $0 == UInt8(ascii: "\t") }
        while let first = media.first, blank(first) { media.removeFirst() }
        while let last = media.last, blank(last) { media.removeLast() }
        guard media.count == expected.count else { return false }
        return zip(media, expected).allSatisfy { byte, want in
            (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte | 0x20 == want : byte == want
        }
    }
}

/// A body whose member names are all among `T.fields`, decoded as `T`.
private struct Strict<T: StrictBody>: Decodable {
    let value: T

    private struct Name: CodingKey {
        let stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    init(from decoder: any Decoder) throws {
        // A closure, not a key path: in this generic type a key path is built again on every call.
        let unknown = Set(try decoder.container(keyedBy: Name.self).allKeys.map { $0.stringValue }).subtracting(T.fields).sorted()
        if !unknown.isEmpty { throw UnknownFields(names: unknown) }
        do {
            value = try T(from: decoder)
        } catch let error as DecodingError {
            throw FieldProblem(error: error)
        }
    }
}

private struct UnknownFields: Error {
    let names: [String]
}

/// A member of the right object with a value of the wrong kind.
private struct FieldProblem: Error {
    let error: DecodingError
}

