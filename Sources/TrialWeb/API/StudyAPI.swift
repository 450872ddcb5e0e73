import Fluent
import Foundation
import TrialDomain
import TrialStandards
import TrialStore
import Vapor

struct StudyVersionDTO: Content {
    var version: Int
    var publishedAt: String
    var publishedBy: String
    var reason: String?
    init(_ v: StudyVersionInfo) {
        version = v.version
        publishedAt = iso(v.publishedAt)
        publishedBy = v.publishedBy
        reason = v.reason
    }
}

struct StudyChangeDTO: Content {
    var kind: String
    var path: String
    var old: String?
    var new: String?
}

struct FormRecordDTO: Content {
    var id: UUID
    var visit: String
    var form: String
    var studyVersion: Int
    var values: [String: String]
    var createdAt: String
    var updatedAt: String
    init(_ r: FormRecord) {
        id = r.id
        visit = r.visit
        form = r.form
        studyVersion = r.studyVersion
        values = r.values
        createdAt = iso(r.createdAt)
        updatedAt = iso(r.updatedAt)
    }
}

/// A form value as JSON may send it: text, number or true/false; kept as the text a user would type.
struct FormValue: Decodable, Sendable {
    var text: String
    init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        if let s = try? container.decode(String.self) {
            text = s
        } else if let b = try? container.decode(Bool.self) {
            text = b ? "yes" : "no"
        } else if let n = try? container.decode(Double.self) {
            text = FormValidator.format(n)
        } else {
            throw DecodingError.typeMismatch(String.self, .init(codingPath: decoder.codingPath, debugDescription: "a text, number or true/false"))
        }
    }
}

struct SaveFormBody: StrictBody {
    static let fields: Set<String> = ["values", "reason"]
    var values: [String: FormValue]
    var reason: String?
}

struct PublishBody: StrictBody {
    static let fields: Set<String> = ["definition", "reason"]
    var reason: String?
}

extension Request {
    var studies: any StudyRepository { FluentStudyRepository(store: store) }
    var formRecords: any FormRecordRepository { FluentFormRecordRepository(store: store) }

    func currentStudy() async throws -> StudyDefinition {
        guard let study = try await studies.current() else { throw StoreError.notFound(entity: "study", id: "current") }
        return study
    }
}

/// The study definition, its versions and amendments, and form data, under /api/v1.
enum StudyAPI {
    static func register(_ api: any RoutesBuilder) {
        api.get("study", use: study)
        api.get("study", "schedule", use: schedule)
        api.get("study", "schema", use: schema)
        api.get("study", "versions", use: versions)
        api.post("study", "versions", use: publish)
        api.get("study", "versions", ":version", use: version)
        api.get("study", "diff", use: diff)
        api.get("participants", ":id", "forms", use: forms)
        api.put("participants", ":id", "forms", ":visit", ":form", use: saveForm)
    }

    static func json(_ study: StudyDefinition) throws -> Response {
        Response(status: .ok, headers: ["Content-Type": "application/json"], body: .init(string: try StudyFile.json(study)))
    }

    static func study(req: Request) async throws -> Response {
        _ = try req.user
        return try json(try await req.currentStudy())
    }

    static func schedule(req: Request) async throws -> ScheduleGrid {
        _ = try req.user
        return ScheduleGrid(study: try await req.currentStudy())
    }

    static func versions(req: Request) async throws -> [StudyVersionDTO] {
        _ = try req.user
        return try await req.studies.versions().map(StudyVersionDTO.init)
    }

    static func version(req: Request) async throws -> Response {
        _ = try req.user
        guard let number = req.parameters.get("version", as: Int.self) else {
            throw StoreError.invalid(field: "version", rule: "must be a whole number")
        }
        return try json(try await req.studies.definition(version: number))
    }

    static func diff(req: Request) async throws -> [StudyChangeDTO] {
        _ = try req.user
        let (from, to) = try versionPair(req)
        let changes = StudyDiff.changes(from: try await req.studies.definition(version: from), to: try await req.studies.definition(version: to))
        return changes.map { StudyChangeDTO(kind: $0.kind.rawValue, path: $0.path, old: $0.old, new: $0.new) }
    }

    static func versionPair(_ req: Request) throws -> (Int, Int) {
        guard let from = try? req.query.get(Int.self, at: "from") else { throw StoreError.invalid(field: "from", rule: "a version number is required") }
        guard let to = try? req.query.get(Int.self, at: "to") else { throw StoreError.invalid(field: "to", rule: "a version number is required") }
        return (from, to)
    }

    /// Publishes the next version. The definition is read as a study file is, so unknown settings are refused too.
    /// The JSON Schema of the definition format; needs no sign-in beyond the API's, and names no study.
    static func schema(req: Request) async throws -> Response {
        _ = try req.user
        return Response(status: .ok, headers: ["Content-Type": "application/json"], body: .init(data: try StudySchema.text()))
    }

    static func publish(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.manageStudy)
        let body = try req.strictBody(PublishBody.self)
        guard let object = (try? JSONSerialization.jsonObject(with: Data(req.body.data?.readableBytesView ?? .init()))) as? [String: Any],
            let definition = object["definition"] as? [String: Any]
        else { throw BodyError(status: .unprocessableEntity, message: "definition: is required and must be an object") }
        let study: StudyDefinition
        do {
            study = try StudyFile.read(String(decoding: try JSONSerialization.data(withJSONObject: definition), as: UTF8.self))
        } catch let error as StudyFile.ReadError {
            throw BodyError(status: .unprocessableEntity, message: error.problems.map { "definition.\($0.path): \($0.rule)" }.joined(separator: "; "))
        }
        let info = try await req.studies.publish(study, actor: user.account.username, reason: body.reason, now: req.now)
        return try await StudyVersionDTO(info).encodeResponse(status: .created, for: req)
    }

    static func forms(req: Request) async throws -> [FormRecordDTO] {
        let user = try req.user
        try user.require(.readParticipants)
        return try await req.formRecords.records(participantID: try APIController.participantID(req), scope: user.scope).map(FormRecordDTO.init)
    }

    static func saveForm(req: Request) async throws -> FormRecordDTO {
        let user = try req.user
        try user.require(.writeParticipants)
        let id = try APIController.participantID(req)
        let body = try req.strictBody(SaveFormBody.self)
        let record = try await req.formRecords.save(
            participantID: id, visit: req.parameters.get("visit") ?? "", form: req.parameters.get("form") ?? "",
            values: body.values.mapValues(\.text), reason: body.reason, scope: user.scope, now: req.now)
        return FormRecordDTO(record)
    }
}
