import Fluent
import Foundation
import TrialDomain
import TrialStore
import Vapor

extension EligibilityAssessment: Content {}
extension ScreeningLog: Content {}

struct OutcomeDTO: Content {
    var outcome: String
    var assessment: EligibilityAssessment
}

struct ConsentBody: StrictBody {
    static let fields: Set<String> = ["formVersion", "signedAt"]
    var formVersion: String
    var signedAt: String
}

struct WithdrawalBody: StrictBody {
    static let fields: Set<String> = ["withdrawnAt", "scope", "reason"]
    var withdrawnAt: String
    var scope: String
    var reason: String?
}

struct InterruptionBody: Decodable, Sendable {
    var at: String
    var minutes: Double
    var reason: String
}

struct InfusionBody: StrictBody {
    static let fields: Set<String> = ["productLot", "particles", "volumeML", "startedAt", "stoppedAt", "rateMLPerHour", "interruptions"]
    var productLot: String
    var particles: Double
    var volumeML: Double
    var startedAt: String
    var stoppedAt: String
    var rateMLPerHour: Double
    var interruptions: [InterruptionBody]?
}

struct GenerateListBody: StrictBody {
    static let fields: Set<String> = ["seed"]
    var seed: String?
}

struct ConsentDTO: Content {
    var id: UUID
    var formVersion: String
    var signedAt: String
    var takenBy: String
    var withdrawnAt: String?
    var withdrawalScope: String?
    init(_ c: ConsentRecord) {
        id = c.id
        formVersion = c.formVersion
        signedAt = iso(c.signedAt)
        takenBy = c.takenBy
        withdrawnAt = c.withdrawnAt.map(iso)
        withdrawalScope = c.withdrawalScope?.rawValue
    }
}

/// What a site sees of an allocation: the arm, once allocated. Strata and positions stay with the statistician.
struct AllocationDTO: Content {
    var arm: String
    var allocatedAt: String
    var allocatedBy: String
    init(_ a: Allocation) {
        arm = a.arm
        allocatedAt = iso(a.allocatedAt)
        allocatedBy = a.allocatedBy
    }
}

struct InfusionDTO: Content {
    struct Stop: Content {
        var at: String
        var minutes: Double
        var reason: String
    }
    var productLot: String
    var particles: Double
    var volumeML: Double
    var startedAt: String
    var stoppedAt: String
    var rateMLPerHour: Double
    var interruptions: [Stop]
    init(_ i: InfusionInput) {
        productLot = i.productLot
        particles = i.particles
        volumeML = i.volumeML
        startedAt = iso(i.startedAt)
        stoppedAt = iso(i.stoppedAt)
        rateMLPerHour = i.rateMLPerHour
        interruptions = i.interruptions.map { Stop(at: iso($0.at), minutes: $0.minutes, reason: $0.reason) }
    }
}

struct ScheduledVisitDTO: Content {
    var visit: String
    var name: String
    var target: String?
    var windowStart: String?
    var windowEnd: String?
    var doneAt: String?
    var state: String
    init(_ v: ScheduledVisit) {
        visit = v.visit
        name = v.name
        target = v.target.map(iso)
        windowStart = v.windowStart.map(iso)
        windowEnd = v.windowEnd.map(iso)
        doneAt = v.doneAt.map(iso)
        state = v.state.rawValue
    }
}

struct ListDTO: Content {
    struct Slot: Content {
        var stratum: String
        var position: Int
        var block: Int
        var blockSize: Int
        var arm: String
        var participantId: UUID?
        var allocatedAt: String?
    }
    var method: String
    var seed: String
    var generatedAt: String
    var slots: [Slot]
}

struct GeneratedDTO: Content {
    var seed: String
    var positions: Int
}

extension Request {
    var screening: FluentScreeningRepository { FluentScreeningRepository(store: store) }
}

/// A date and time in a body: "2026-03-10T12:00", with optional seconds and offset (UTC when none).
func instant(_ text: String, field: String) throws -> Date {
    guard let date = DateParsing.instant(text) else {
        throw StoreError.invalid(field: field, rule: "must be a date and time as yyyy-MM-ddTHH:mm (UTC) or with an offset")
    }
    return date
}

/// Screening, eligibility, consent, allocation, infusion and schedule, under /api/v1.
enum ScreeningAPI {
    static func register(_ api: any RoutesBuilder) {
        api.get("participants", ":id", "eligibility", use: eligibility)
        api.post("participants", ":id", "eligibility", "decision", use: decide)
        api.get("participants", ":id", "consents", use: consents)
        api.post("participants", ":id", "consents", use: consent)
        api.post("participants", ":id", "consents", "withdrawal", use: withdraw)
        api.get("participants", ":id", "allocation", use: allocation)
        api.post("participants", ":id", "allocation", use: allocate)
        api.get("participants", ":id", "infusion", use: infusion)
        api.post("participants", ":id", "infusion", use: recordInfusion)
        api.get("participants", ":id", "schedule", use: schedule)
        api.get("screening-log", use: screeningLog)
        api.get("randomization", "list", use: list)
        api.post("randomization", "list", use: generate)
    }

    static func eligibility(req: Request) async throws -> EligibilityAssessment {
        let user = try req.user
        try user.require(.readParticipants)
        return try await req.screening.assess(participantID: try APIController.participantID(req), scope: user.scope)
    }

    /// Only an investigator decides eligibility.
    static func decide(req: Request) async throws -> OutcomeDTO {
        let user = try req.user
        guard user.account.role == .investigator else {
            throw Abort(.forbidden, reason: "only an investigator may confirm eligibility; your role is \(user.account.role.rawValue)")
        }
        let assessment = try await req.screening.decideEligibility(participantID: try APIController.participantID(req), scope: user.scope, now: Date())
        return OutcomeDTO(outcome: assessment.outcome == .met ? "eligible" : "screen_failed", assessment: assessment)
    }

    static func consents(req: Request) async throws -> [ConsentDTO] {
        let user = try req.user
        try user.require(.readParticipants)
        return try await req.screening.file(participantID: try APIController.participantID(req), scope: user.scope).consents.map(ConsentDTO.init)
    }

    static func consent(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.writeParticipants)
        let body = try req.strictBody(ConsentBody.self)
        let record = try await req.screening.recordConsent(
            participantID: try APIController.participantID(req), formVersion: body.formVersion, signedAt: try instant(body.signedAt, field: "signedAt"),
            scope: user.scope, now: Date())
        return try await ConsentDTO(record).encodeResponse(status: .created, for: req)
    }

    static func withdraw(req: Request) async throws -> HTTPStatus {
        let user = try req.user
        try user.require(.writeParticipants)
        let body = try req.strictBody(WithdrawalBody.self)
        guard let scope = WithdrawalScope(rawValue: body.scope) else {
            throw StoreError.invalid(field: "scope", rule: "must be one of \(WithdrawalScope.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        try await req.screening.withdrawConsent(
            participantID: try APIController.participantID(req), withdrawnAt: try instant(body.withdrawnAt, field: "withdrawnAt"), withdrawal: scope,
            reason: body.reason, scope: user.scope, now: Date())
        return .noContent
    }

    static func allocation(req: Request) async throws -> AllocationDTO {
        let user = try req.user
        try user.require(.readParticipants)
        guard let allocation = try await req.screening.file(participantID: try APIController.participantID(req), scope: user.scope).allocation else {
            throw StoreError.notFound(entity: "allocation", id: "of this participant")
        }
        return AllocationDTO(allocation)
    }

    static func allocate(req: Request) async throws -> AllocationDTO {
        let user = try req.user
        try user.require(.writeParticipants)
        return AllocationDTO(try await req.screening.allocate(participantID: try APIController.participantID(req), scope: user.scope, now: Date()))
    }

    static func infusion(req: Request) async throws -> InfusionDTO {
        let user = try req.user
        try user.require(.readParticipants)
        guard let infusion = try await req.screening.file(participantID: try APIController.participantID(req), scope: user.scope).infusion else {
            throw StoreError.notFound(entity: "infusion", id: "of this participant")
        }
        return InfusionDTO(infusion)
    }

    static func recordInfusion(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.writeParticipants)
        let body = try req.strictBody(InfusionBody.self)
        let input = InfusionInput(
            productLot: body.productLot, particles: body.particles, volumeML: body.volumeML, startedAt: try instant(body.startedAt, field: "startedAt"),
            stoppedAt: try instant(body.stoppedAt, field: "stoppedAt"), rateMLPerHour: body.rateMLPerHour,
            interruptions: try (body.interruptions ?? []).enumerated().map { i, stop in
                Interruption(at: try instant(stop.at, field: "interruptions[\(i)].at"), minutes: stop.minutes, reason: stop.reason)
            })
        let saved = try await req.screening.recordInfusion(participantID: try APIController.participantID(req), input: input, scope: user.scope, now: Date())
        return try await InfusionDTO(saved).encodeResponse(status: .created, for: req)
    }

    static func schedule(req: Request) async throws -> [ScheduledVisitDTO] {
        let user = try req.user
        try user.require(.readParticipants)
        return try await req.screening.schedule(participantID: try APIController.participantID(req), scope: user.scope, now: Date()).map(ScheduledVisitDTO.init)
    }

    static func screeningLog(req: Request) async throws -> ScreeningLog {
        let user = try req.user
        try user.require(.readParticipants)
        return try await req.screening.screeningLog(scope: user.scope)
    }

    static func list(req: Request) async throws -> ListDTO {
        try req.user.require(.viewRandomizationList)
        guard let list = try await req.screening.listSlots() else { throw StoreError.notFound(entity: "randomization list", id: "of this study") }
        return ListDTO(
            method: list.method, seed: list.seed, generatedAt: iso(list.generatedAt),
            slots: list.slots.map {
                .init(stratum: $0.stratum, position: $0.position, block: $0.block, blockSize: $0.blockSize, arm: $0.arm, participantId: $0.participantID, allocatedAt: $0.allocatedAt.map(iso))
            })
    }

    static func generate(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.viewRandomizationList)
        let body = try req.strictBody(GenerateListBody.self)
        let generated = try await req.screening.generateList(seedHex: body.seed, actor: user.account.username, now: Date())
        return try await GeneratedDTO(seed: generated.seed, positions: generated.slots).encodeResponse(status: .created, for: req)
    }
}
