import Fluent
import Foundation
import TrialDomain
import TrialStandards
import TrialStore
import Vapor

extension LabResult: Content {}
extension AdverseEvent: Content {}
extension EndpointArm: Content {}
extension CTCAETerm: Content {}

struct LabBody: StrictBody {
    static let fields: Set<String> = ["visit", "test", "value", "unit", "collectedAt"]
    var visit: String
    var test: String
    var value: Double
    var unit: String
    var collectedAt: String
}

struct AdverseEventBody: StrictBody {
    static let fields: Set<String> = [
        "meddra", "grade", "onsetAt", "resolvedAt", "seriousness", "attribution", "expected", "actionTaken", "outcome", "awareAt",
    ]
    var meddra: String
    var grade: Int
    var onsetAt: String
    var resolvedAt: String?
    var seriousness: [String]?
    var attribution: String
    var expected: Bool
    var actionTaken: String
    var outcome: String
    var awareAt: String?
}

struct ReportBody: StrictBody {
    static let fields: Set<String> = ["reportedAt"]
    var reportedAt: String
}

struct SAEDTO: Content {
    var id: UUID
    var participantId: UUID
    var term: String
    var grade: Int
    var awareAt: String
    var dueAt: String
    var reportedAt: String?
    var overdue: Bool
    var hoursLeft: Double
}

struct VisitScoresDTO: Content {
    var visit: String
    var scores: [String: Double]
    var inputs: [String: Double]
}

extension Request {
    var safety: FluentSafetyRepository {
        get throws { FluentSafetyRepository(store: store, tables: try GradingTables.builtIn()) }
    }
}

/// Labs, adverse events, the SAE clocks, the primary endpoint and scores, under /api/v1.
enum SafetyAPI {
    static func register(_ api: any RoutesBuilder) {
        api.get("participants", ":id", "labs", use: labs)
        api.post("participants", ":id", "labs", use: recordLab)
        api.get("participants", ":id", "scores", use: scores)
        api.get("participants", ":id", "adverse-events", use: adverseEvents)
        api.post("participants", ":id", "adverse-events", use: recordAdverseEvent)
        api.post("adverse-events", ":id", "report", use: report)
        api.get("serious-adverse-events", use: seriousEvents)
        api.get("ctcae", "terms", use: terms)
        api.get("primary-endpoint", use: primaryEndpoint)
    }

    static func labs(req: Request) async throws -> [LabResult] {
        let user = try req.user
        try user.require(.readParticipants)
        return try await req.safety.labs(participantID: try APIController.participantID(req), scope: user.scope)
    }

    static func recordLab(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.writeParticipants)
        let body = try req.strictBody(LabBody.self)
        let lab = try await req.safety.recordLab(
            participantID: try APIController.participantID(req), visit: body.visit, test: body.test, value: body.value, unit: body.unit,
            collectedAt: try instant(body.collectedAt, field: "collectedAt"), scope: user.scope, now: Date())
        return try await lab.encodeResponse(status: .created, for: req)
    }

    /// MELD, MELD-Na and MELD 3.0 at every visit with the labs they need.
    static func visitScores(labs: [LabResult], female: Bool?) -> [VisitScoresDTO] {
        let visits = labs.reduce(into: [String]()) { if !$0.contains($1.visit) { $0.append($1.visit) } }
        return visits.compactMap { visit in
            let at = Dictionary(labs.filter { $0.visit == visit }.map { ($0.test, $0.value) }, uniquingKeysWith: { a, _ in a })
            var x = ScoreInputs()
            x.bilirubin = at["BILI"].flatMap { try? Units.convert($0, analyte: "bilirubin", from: "umol/L", to: "mg/dL") }
            x.creatinine = at["CREAT"].flatMap { try? Units.convert($0, analyte: "creatinine", from: "umol/L", to: "mg/dL") }
            x.albumin = at["ALB"].map { $0 / 10 }
            x.inr = at["INR"]
            x.sodium = at["SODIUM"]
            x.female = female
            var scores: [String: Double] = [:], inputs: [String: Double] = [:]
            for name in ["meld", "meld-na", "meld-3.0"] {
                if let r = try? LiverScores.compute(name, x) {
                    scores[name] = r.score
                    inputs.merge(r.inputs) { a, _ in a }
                }
            }
            return scores.isEmpty ? nil : VisitScoresDTO(visit: visit, scores: scores, inputs: inputs)
        }
    }

    static func scores(req: Request) async throws -> [VisitScoresDTO] {
        let user = try req.user
        try user.require(.readParticipants)
        let id = try APIController.participantID(req)
        let labs = try await req.safety.labs(participantID: id, scope: user.scope)
        let sex = try await req.screening.file(participantID: id, scope: user.scope).values["demographics.sex"]
        return visitScores(labs: labs, female: sex.map { $0 == "F" })
    }

    static func adverseEvents(req: Request) async throws -> [AdverseEvent] {
        let user = try req.user
        try user.require(.readParticipants)
        return try await req.safety.adverseEvents(participantID: try APIController.participantID(req), scope: user.scope)
    }

    static func adverseEventInput(_ body: AdverseEventBody) throws -> AdverseEventInput {
        guard let attribution = Attribution(rawValue: body.attribution) else {
            throw StoreError.invalid(field: "attribution", rule: "must be one of \(Attribution.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let seriousness = try (body.seriousness ?? []).map { text -> Seriousness in
            guard let s = Seriousness(rawValue: text) else {
                throw StoreError.invalid(field: "seriousness", rule: "'\(text)' is not one of \(Seriousness.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            return s
        }
        return AdverseEventInput(
            meddra: body.meddra, grade: body.grade, onsetAt: try instant(body.onsetAt, field: "onsetAt"),
            resolvedAt: try body.resolvedAt.map { try instant($0, field: "resolvedAt") }, seriousness: seriousness, attribution: attribution,
            expected: body.expected, actionTaken: body.actionTaken, outcome: body.outcome, awareAt: try body.awareAt.map { try instant($0, field: "awareAt") })
    }

    static func recordAdverseEvent(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.writeParticipants)
        let input = try adverseEventInput(try req.strictBody(AdverseEventBody.self))
        let event = try await req.safety.recordAdverseEvent(participantID: try APIController.participantID(req), input: input, scope: user.scope, now: Date())
        return try await event.encodeResponse(status: .created, for: req)
    }

    static func report(req: Request) async throws -> AdverseEvent {
        let user = try req.user
        try user.require(.writeParticipants)
        guard let id = req.parameters.get("id", as: UUID.self) else { throw StoreError.invalid(field: "id", rule: "must be an adverse-event UUID") }
        let body = try req.strictBody(ReportBody.self)
        return try await req.safety.reportToSponsor(eventID: id, reportedAt: try instant(body.reportedAt, field: "reportedAt"), scope: user.scope, now: Date())
    }

    static func seriousList(_ req: Request, user: CurrentUser) async throws -> [SAEDTO] {
        let now = Date()
        return try await req.safety.adverseEvents(participantID: nil, scope: user.scope).compactMap { e in
            guard let clock = e.clock else { return nil }
            return SAEDTO(
                id: e.id, participantId: e.participantID, term: e.term, grade: e.grade, awareAt: iso(clock.awareAt), dueAt: iso(clock.dueAt),
                reportedAt: clock.reportedAt.map(iso), overdue: clock.isOverdue(now: now), hoursLeft: clock.remaining(now: now) / 3600)
        }
    }

    static func seriousEvents(req: Request) async throws -> [SAEDTO] {
        let user = try req.user
        try user.require(.readParticipants)
        return try await seriousList(req, user: user)
    }

    static func terms(req: Request) async throws -> [CTCAETerm] {
        _ = try req.user
        return try await req.safety.searchTerms((try? req.query.get(String.self, at: "q")) ?? "", version: (try? req.query.get(String.self, at: "version")) ?? "4.03")
    }

    static func primaryEndpoint(req: Request) async throws -> [EndpointArm] {
        let user = try req.user
        try user.require(.readParticipants)
        return try await req.safety.primaryEndpoint(scope: user.scope)
    }
}
