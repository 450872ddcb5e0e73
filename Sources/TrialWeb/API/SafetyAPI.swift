import Fluent
import Foundation
import TrialDomain
import TrialStandards
import TrialStore
import Vapor

extension LabResult: Content {}
extension AdverseEvent: Content {}
extension EndpointResult: Content {}
extension CTCAETerm: Content {}

struct LabBody: StrictBody {
    static let fields: Set<String> = ["visit", "test", "value", "unit", "collectedAt"]
    var visit: String
    var test: String
    var value: Double
    var unit: String
    var collectedAt: String
}

/// `PUT /api/v1/participants/{id}/visits/{visit}`: all of a visit's forms and lab results at once.
struct VisitBody: StrictBody {
    static let fields: Set<String> = ["forms", "labs", "reason"]
    var forms: [String: [String: FormValue]]?
    var labs: [VisitLabBody]?
    var reason: String?
}

struct VisitLabBody: Decodable, Sendable {
    var test: String
    var value: Double
    var unit: String
    var collectedAt: String
}

struct SavedVisitDTO: Content {
    var forms: [FormRecordDTO]
    var labs: [LabResult]
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

struct AdverseEventUpdateBody: StrictBody {
    static let fields: Set<String> = ["grade", "outcome", "resolvedAt", "reason"]
    var grade: Int?
    var outcome: String?
    var resolvedAt: String?
    var reason: String?
}

struct FollowUpBody: StrictBody {
    static let fields: Set<String> = ["submittedAt", "text", "nextDueAt"]
    var submittedAt: String
    var text: String
    var nextDueAt: String?
}

struct FollowUpDTO: Content {
    var id: UUID
    var submittedAt: String
    var text: String
    var nextDueAt: String?
    var createdBy: String
    init(_ f: FollowUpReport) {
        id = f.id
        submittedAt = iso(f.submittedAt)
        text = f.text
        nextDueAt = f.nextDueAt.map(iso)
        createdBy = f.createdBy
    }
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
    /// When the next follow-up report is due, as the latest one set it.
    var nextFollowUpDueAt: String? = nil
    var followUpOverdue: Bool = false
}

struct HysLawDTO: Content {
    var visit: String
    var byULN: Bool
    var byBaseline: Bool
    var transaminaseMultipleOfULN: Double
    var bilirubinMultipleOfULN: Double
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
        api.put("participants", ":id", "visits", ":visit", use: saveVisit)
        api.get("participants", ":id", "scores", use: scores)
        api.get("participants", ":id", "hys-law", use: hysLaw)
        api.get("participants", ":id", "adverse-events", use: adverseEvents)
        api.post("participants", ":id", "adverse-events", use: recordAdverseEvent)
        api.post("adverse-events", ":id", "report", use: report)
        api.patch("adverse-events", ":id", use: updateAdverseEvent)
        api.get("adverse-events", ":id", "follow-ups", use: followUps)
        api.post("adverse-events", ":id", "follow-ups", use: addFollowUp)
        api.get("serious-adverse-events", use: seriousEvents)
        api.get("ctcae", "terms", use: terms)
        api.get("primary-endpoint", use: primaryEndpoint)
        api.get("endpoints", use: endpoints)
        api.get("endpoints", ":code", use: endpoint)
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
            collectedAt: try instant(body.collectedAt, field: "collectedAt"), scope: user.scope, now: req.now)
        return try await LabJSON.created(lab, for: req)
    }

    /// A whole visit in one transaction: every form and lab result checked together, every problem reported.
    static func saveVisit(req: Request) async throws -> SavedVisitDTO {
        let user = try req.user
        try user.require(.writeParticipants)
        let body = try req.strictBody(VisitBody.self)
        var labs: [VisitLab] = []
        for lab in body.labs ?? [] {
            labs.append(VisitLab(test: lab.test, value: lab.value, unit: lab.unit, collectedAt: try instant(lab.collectedAt, field: "labs[\(lab.test)].collectedAt")))
        }
        let forms = (body.forms ?? [:]).sorted { $0.key < $1.key }.map { (form: $0.key, values: $0.value.mapValues(\.text)) }
        let saved = try await req.safety.saveVisit(
            participantID: try APIController.participantID(req), visit: req.parameters.get("visit") ?? "", forms: forms, labs: labs, reason: body.reason,
            scope: user.scope, now: req.now)
        return SavedVisitDTO(forms: saved.forms.map(FormRecordDTO.init), labs: saved.labs)
    }

    /// Every liver score whose inputs a visit has: labs from the lab results, findings from the visit's fields tagged with
    /// a score input. The mapping to the formulas is TrialDomain's (`VisitScores`).
    static func visitScores(
        labs: [LabResult], female: Bool?, age: Double? = nil, findings: [String: [String: String]] = [:], conversions: UnitConversions
    ) -> [VisitScoresDTO] {
        let visits = labs.reduce(into: [String]()) { if !$0.contains($1.visit) { $0.append($1.visit) } }
        return visits.compactMap { visit in
            let at = Dictionary(labs.filter { $0.visit == visit }.map { ($0.test, $0.value) }, uniquingKeysWith: { a, _ in a })
            let x = VisitScores.inputs(labs: at, findings: findings[visit] ?? [:], female: female, age: age, conversions: conversions)
            var scores: [String: Double] = [:], inputs: [String: Double] = [:]
            for name in LiverScores.names {
                do {
                    let r = try LiverScores.compute(name, x)
                    scores[name] = r.score
                    inputs.merge(r.inputs) { a, _ in a }
                } catch {
                    // A score whose inputs this visit lacks, or holds out of the formula's reach (ScoreError), is not shown.
                    continue
                }
            }
            return scores.isEmpty ? nil : VisitScoresDTO(visit: visit, scores: scores, inputs: inputs)
        }
    }

    static func scores(req: Request) async throws -> [VisitScoresDTO] {
        let user = try req.user
        try user.require(.readParticipants)
        let id = try APIController.participantID(req)
        return try await scoresFor(req, participantID: id, scope: user.scope)
    }

    static func scoresFor(_ req: Request, participantID id: UUID, scope: AccessScope) async throws -> [VisitScoresDTO] {
        try await scoresFor(
            req, file: try await req.screening.file(participantID: id, scope: scope), labs: try await req.safety.labs(participantID: id, scope: scope),
            scope: scope)
    }

    /// `records`: the participant's form records when the caller has read them already.
    static func scoresFor(_ req: Request, file: ParticipantFile, labs: [LabResult], records known: [FormRecord]? = nil, scope: AccessScope) async throws -> [VisitScoresDTO] {
        let id = file.participant.id
        var records: [FormRecord]
        if let known { records = known } else { records = try await req.formRecords.records(participantID: id, scope: scope) }
        // Each visit's findings for the score inputs, by the fields tagged with one.
        var findings: [String: [String: String]] = [:]
        for record in records {
            guard let form = file.study.form(record.form) else { continue }
            for field in form.fields {
                if let input = field.score, let value = record.values[field.code] { findings[record.visit, default: [:]][input] = value }
            }
        }
        let age = file.study.birthDate(in: file.values).map { Double(Evaluator.completedYears(born: $0, on: req.now)) }
        return visitScores(
            labs: labs, female: file.study.isFemale(in: file.values), age: age, findings: findings, conversions: UnitConversions(study: file.study))
    }

    static func hysLaw(req: Request) async throws -> [HysLawDTO] {
        let user = try req.user
        try user.require(.readParticipants)
        return try await req.safety.hysLaw(participantID: try APIController.participantID(req), scope: user.scope).map {
            HysLawDTO(
                visit: $0.visit, byULN: $0.check.byULN, byBaseline: $0.check.byBaseline, transaminaseMultipleOfULN: $0.check.transaminaseMultipleOfULN,
                bilirubinMultipleOfULN: $0.check.bilirubinMultipleOfULN)
        }
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
        let event = try await req.safety.recordAdverseEvent(participantID: try APIController.participantID(req), input: input, scope: user.scope, now: req.now)
        return try await event.encodeResponse(status: .created, for: req)
    }

    static func report(req: Request) async throws -> AdverseEvent {
        let user = try req.user
        try user.require(.writeParticipants)
        guard let id = req.parameters.get("id", as: UUID.self) else { throw StoreError.invalid(field: "id", rule: "must be an adverse-event UUID") }
        let body = try req.strictBody(ReportBody.self)
        return try await req.safety.reportToSponsor(eventID: id, reportedAt: try instant(body.reportedAt, field: "reportedAt"), scope: user.scope, now: req.now)
    }

    static func seriousList(_ req: Request, user: CurrentUser) async throws -> [SAEDTO] {
        let now = req.now
        let followUps = try await req.safety.followUpClocks(scope: user.scope)
        return try await req.safety.adverseEvents(participantID: nil, scope: user.scope, seriousOnly: true).compactMap { e in
            guard let clock = e.clock else { return nil }
            return SAEDTO(
                id: e.id, participantId: e.participantID, term: e.term, grade: e.grade, awareAt: iso(clock.awareAt), dueAt: iso(clock.dueAt),
                reportedAt: clock.reportedAt.map(iso), overdue: clock.isOverdue(now: now), hoursLeft: clock.remaining(now: now) / 3600,
                nextFollowUpDueAt: followUps[e.id]?.nextDueAt.map(iso), followUpOverdue: followUps[e.id]?.isOverdue(now: now) ?? false)
        }
    }

    static func eventID(_ req: Request) throws -> UUID {
        guard let id = req.parameters.get("id", as: UUID.self) else { throw StoreError.invalid(field: "id", rule: "must be an adverse-event UUID") }
        return id
    }

    static func updateAdverseEvent(req: Request) async throws -> AdverseEvent {
        let user = try req.user
        try user.require(.writeParticipants)
        let body = try req.strictBody(AdverseEventUpdateBody.self)
        return try await req.safety.updateAdverseEvent(
            eventID: try eventID(req), grade: body.grade, outcome: body.outcome, resolvedAt: try body.resolvedAt.map { try instant($0, field: "resolvedAt") },
            reason: body.reason, scope: user.scope, now: req.now)
    }

    static func followUps(req: Request) async throws -> [FollowUpDTO] {
        let user = try req.user
        try user.require(.readParticipants)
        return try await req.safety.followUps(eventID: try eventID(req), scope: user.scope).map(FollowUpDTO.init)
    }

    static func addFollowUp(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.writeParticipants)
        let body = try req.strictBody(FollowUpBody.self)
        let report = try await req.safety.addFollowUp(
            eventID: try eventID(req), submittedAt: try instant(body.submittedAt, field: "submittedAt"), text: body.text,
            nextDueAt: try body.nextDueAt.map { try instant($0, field: "nextDueAt") }, scope: user.scope, now: req.now)
        return try await FollowUpDTO(report).encodeResponse(status: .created, for: req)
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

    /// Whether this user may see figures by arm: everyone in an open-label study, only unblinded roles in a masked one.
    static func seesArms(_ user: CurrentUser, study: StudyDefinition) -> Bool {
        Blinding.seesArms(user.account.role, study: study)
    }

    static func endpoints(req: Request) async throws -> [EndpointResult] {
        let user = try req.user
        try user.require(.readParticipants)
        let study = try await req.currentStudy()
        return try await FluentCohortRepository(store: req.store).endpoints(scope: user.scope, study: study, byArm: seesArms(user, study: study))
    }

    static func endpoint(req: Request) async throws -> EndpointResult {
        let user = try req.user
        try user.require(.readParticipants)
        let study = try await req.currentStudy()
        let code = req.parameters.get("code") ?? ""
        guard let result = try await FluentCohortRepository(store: req.store).endpoints(scope: user.scope, study: study, byArm: seesArms(user, study: study), only: code).first
        else { throw StoreError.notFound(entity: "endpoint", id: code) }
        return result
    }

    /// The study's (first) primary endpoint, as `GET /api/v1/endpoints/{code}` gives it.
    static func primaryEndpoint(req: Request) async throws -> EndpointResult {
        let user = try req.user
        try user.require(.readParticipants)
        let study = try await req.currentStudy()
        guard let primary = study.endpoints.first(where: { $0.kind == .primary }) else { throw StoreError.notFound(entity: "endpoint", id: "primary") }
        guard let result = try await FluentCohortRepository(store: req.store).endpoints(scope: user.scope, study: study, byArm: seesArms(user, study: study), only: primary.code).first
        else { throw StoreError.notFound(entity: "endpoint", id: primary.code) }
        return result
    }
}
