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

/// A dose given (`startedAt` …) or skipped (`skipped: true` with its `reason`).
struct DoseBody: StrictBody {
    static let fields: Set<String> = ["dose", "startedAt", "endedAt", "lot", "expiry", "weightKg", "deviationReason", "skipped", "reason"]
    var dose: String
    var startedAt: String?
    var endedAt: String?
    var lot: String?
    var expiry: String?
    var weightKg: Double?
    var deviationReason: String?
    var skipped: Bool?
    var reason: String?
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
/// An allocation. The arm only for those who may see arms: in a masked study a blinded user learns that, when and by
/// whom, never to what.
struct AllocationDTO: Content {
    /// Absent for the randomization at enrolment.
    var randomization: String?
    var arm: String?
    var allocatedAt: String
    var allocatedBy: String
    init(_ a: Allocation, blind: Bool) {
        arm = blind ? nil : a.arm
        allocatedAt = iso(a.allocatedAt)
        allocatedBy = a.allocatedBy
    }
    init(_ s: StageAllocation, blind: Bool) {
        randomization = s.randomization
        arm = blind ? nil : s.armAfter
        allocatedAt = iso(s.allocatedAt)
        allocatedBy = s.allocatedBy
    }
}

struct ProtocolDeviationDTO: Content {
    /// What a review names the deviation by: `dose:ID`, or the deviation's id.
    var key: String
    var participantId: UUID
    var screeningNumber: String
    /// `dose` (given out of its window) or `eligibility` (contradicted after allocation).
    var kind: String
    var dose: String?
    /// The dose's start, or when the deviation was raised.
    var startedAt: String
    var reason: String
    var recordedBy: String
    var visit: String?
    var classification: String?
    var reviewedBy: String?
    var reviewedAt: String?
    var reviewNote: String?
    init(_ d: ProtocolDeviation) {
        key = d.key
        visit = d.visit
        classification = d.classification?.rawValue
        reviewedBy = d.reviewedBy
        reviewedAt = d.reviewedAt.map(iso)
        reviewNote = d.reviewNote
        participantId = d.participantID
        screeningNumber = d.screeningNumber
        kind = d.kind
        dose = d.dose
        startedAt = iso(d.startedAt)
        reason = d.reason
        recordedBy = d.recordedBy
    }
}

struct NewDeviationBody: StrictBody {
    static let fields: Set<String> = ["participantId", "kind", "visit", "detail"]
    var participantId: UUID
    var kind: String
    var visit: String?
    var detail: String
}

struct DeviationReviewBody: StrictBody {
    static let fields: Set<String> = ["classification", "note"]
    var classification: String
    var note: String?
}

struct UnblindingBody: StrictBody {
    static let fields: Set<String> = ["reason"]
    var reason: String
}

struct UnblindingDTO: Content {
    var arm: String
    var unblindedFor: String
}

struct AllocationBody: StrictBody {
    static let fields: Set<String> = ["randomization"]
    var randomization: String?
}

/// A dose as recorded. Product and amount only for those who may see arms.
struct DoseRecordDTO: Content {
    var dose: String
    var given: Bool
    var startedAt: String?
    var endedAt: String?
    var lot: String?
    var expiry: String?
    var weightKg: Double?
    var amount: Double?
    var unit: String?
    var deviation: Bool
    var deviationReason: String?
    var skipReason: String?
    var recordedBy: String
    var recordedAt: String

    init(_ r: DoseRecord, blind: Bool) {
        dose = r.dose
        given = r.given
        startedAt = r.startedAt.map(iso)
        endedAt = r.endedAt.map(iso)
        lot = r.lot
        expiry = r.expiry
        weightKg = r.weightKg
        amount = blind ? nil : r.amount
        unit = blind ? nil : r.unit
        deviation = r.deviation
        deviationReason = r.deviationReason
        skipReason = r.skipReason
        recordedBy = r.recordedBy
        recordedAt = iso(r.recordedAt)
    }
}

/// One dose of the participant's plan: when it is due and its state. In a masked study a blinded user sees the
/// dose's code, name, timing and state, never the product, amount or whether it is a placebo.
struct ScheduledDoseDTO: Content {
    var dose: String
    var name: String?
    var product: String?
    var amount: Double?
    var unit: String?
    var perKg: Bool?
    var placebo: Bool?
    var route: String?
    var target: String?
    var windowStart: String?
    var windowEnd: String?
    var state: String
    var record: DoseRecordDTO?

    init(_ d: ScheduledDose, blind: Bool) {
        dose = d.dose.code
        name = d.dose.name
        product = blind ? nil : d.dose.product
        amount = blind ? nil : d.dose.amount
        unit = blind ? nil : d.dose.unit
        perKg = blind ? nil : d.dose.perKg
        placebo = blind ? nil : d.dose.placebo
        route = d.dose.route
        target = d.target.map(iso)
        windowStart = d.windowStart.map(iso)
        windowEnd = d.windowEnd.map(iso)
        state = d.state.rawValue
        record = d.record.map { DoseRecordDTO($0, blind: blind) }
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
        api.post("participants", ":id", "unblinding", use: unblind)
        api.get("participants", ":id", "doses", use: doses)
        api.post("participants", ":id", "doses", use: recordDose)
        api.get("participants", ":id", "schedule", use: schedule)
        api.get("screening-log", use: screeningLog)
        api.get("deviations", use: deviations)
        api.post("deviations", use: raiseDeviation)
        api.post("deviations", ":key", "review", use: reviewDeviation)
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
        let assessment = try await req.screening.decideEligibility(participantID: try APIController.participantID(req), scope: user.scope, now: req.now)
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
            scope: user.scope, now: req.now)
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
            reason: body.reason, scope: user.scope, now: req.now)
        return .noContent
    }

    /// Whether this user must not see this participant's arm: a blinded role in a masked study, unless they broke the
    /// blind for this participant.
    static func isBlind(_ req: Request, user: CurrentUser, study: StudyDefinition, participantID: UUID) async throws -> Bool {
        if Blinding.seesArms(user.account.role, study: study) { return false }
        return try await !req.screening.isUnblinded(participantID: participantID, actor: user.account.username)
    }

    /// Emergency unblinding: an investigator, with a reason, sees one participant's arm; audited.
    static func unblind(req: Request) async throws -> UnblindingDTO {
        let user = try req.user
        guard user.account.role == .investigator else { throw Abort(.forbidden, reason: "only an investigator may break the blind for a participant") }
        let body = try req.strictBody(UnblindingBody.self)
        let arm = try await req.screening.unblind(participantID: try APIController.participantID(req), reason: body.reason, scope: user.scope, now: req.now)
        return UnblindingDTO(arm: arm, unblindedFor: user.account.username)
    }

    /// The allocation at enrolment, with the arm the participant is in now (for those who may see it).
    static func allocation(req: Request) async throws -> AllocationDTO {
        let user = try req.user
        try user.require(.readParticipants)
        let id = try APIController.participantID(req)
        let file = try await req.screening.file(participantID: id, scope: user.scope)
        guard let allocation = file.allocation else { throw StoreError.notFound(entity: "allocation", id: "of this participant") }
        var dto = AllocationDTO(allocation, blind: try await isBlind(req, user: user, study: file.study, participantID: id))
        if dto.arm != nil { dto.arm = file.arm }
        return dto
    }

    /// The randomization at enrolment, or with `{"randomization": CODE}` a later one at its visit.
    static func allocate(req: Request) async throws -> AllocationDTO {
        let user = try req.user
        try user.require(.writeParticipants)
        let id = try APIController.participantID(req)
        let body: AllocationBody? = (req.body.data?.readableBytes ?? 0) > 0 ? try req.strictBody(AllocationBody.self) : nil
        let blind = !Blinding.seesArms(user.account.role, study: try await req.currentStudy())
        if let code = body?.randomization {
            return AllocationDTO(try await req.screening.allocateStage(participantID: id, randomization: code, scope: user.scope, now: req.now), blind: blind)
        }
        return AllocationDTO(try await req.screening.allocate(participantID: id, scope: user.scope, now: req.now), blind: blind)
    }

    static func doses(req: Request) async throws -> [ScheduledDoseDTO] {
        let user = try req.user
        try user.require(.readParticipants)
        let id = try APIController.participantID(req)
        let blind = try await isBlind(req, user: user, study: try await req.currentStudy(), participantID: id)
        return try await req.screening.doses(participantID: id, scope: user.scope, now: req.now).map { ScheduledDoseDTO($0, blind: blind) }
    }

    static func doseRecord(_ body: DoseBody) throws -> DoseRecord {
        if body.skipped == true {
            for (field, value) in [("startedAt", body.startedAt), ("endedAt", body.endedAt), ("lot", body.lot), ("expiry", body.expiry)] where value != nil {
                throw StoreError.invalid(field: field, rule: "a skipped dose has no \(field); give only dose, skipped and reason")
            }
            return DoseRecord(dose: body.dose, given: false, skipReason: body.reason, recordedBy: "", recordedAt: Date())
        }
        if body.reason != nil { throw StoreError.invalid(field: "reason", rule: "only a skipped dose has a reason; a dose outside its window takes deviationReason") }
        guard let started = body.startedAt else { throw StoreError.invalid(field: "startedAt", rule: "is required for a dose given (or send skipped: true with a reason)") }
        return DoseRecord(
            dose: body.dose, given: true, startedAt: try instant(started, field: "startedAt"), endedAt: try body.endedAt.map { try instant($0, field: "endedAt") },
            lot: body.lot, expiry: body.expiry, weightKg: body.weightKg, deviationReason: body.deviationReason, recordedBy: "", recordedAt: Date())
    }

    static func recordDose(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.recordDoses)
        let record = try doseRecord(try req.strictBody(DoseBody.self))
        let saved = try await req.screening.recordDose(participantID: try APIController.participantID(req), record: record, scope: user.scope, now: req.now)
        let blind = !Blinding.seesArms(user.account.role, study: try await req.currentStudy())
        return try await DoseRecordDTO(saved, blind: blind).encodeResponse(status: .created, for: req)
    }

    static func schedule(req: Request) async throws -> [ScheduledVisitDTO] {
        let user = try req.user
        try user.require(.readParticipants)
        return try await req.screening.schedule(participantID: try APIController.participantID(req), scope: user.scope, now: req.now).map(ScheduledVisitDTO.init)
    }

    /// Protocol deviations: doses given outside their window, with their reasons.
    static func deviations(req: Request) async throws -> [ProtocolDeviationDTO] {
        let user = try req.user
        try user.require(.readParticipants)
        return try await req.screening.deviations(scope: user.scope).map(ProtocolDeviationDTO.init)
    }

    static func raiseDeviation(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.readParticipants)
        let body = try req.strictBody(NewDeviationBody.self)
        guard let kind = DeviationKind(rawValue: body.kind) else {
            throw StoreError.invalid(field: "kind", rule: "must be one of \(DeviationKind.byHand.map(\.rawValue).joined(separator: ", "))")
        }
        let deviation = try await req.screening.raiseDeviation(
            participantID: body.participantId, kind: kind, visit: body.visit, detail: body.detail, scope: user.scope, now: req.now)
        return try await ProtocolDeviationDTO(deviation).encodeResponse(status: .created, for: req)
    }

    static func reviewDeviation(req: Request) async throws -> HTTPStatus {
        let user = try req.user
        try user.require(.readParticipants)
        let body = try req.strictBody(DeviationReviewBody.self)
        guard let classification = DeviationClass(rawValue: body.classification) else {
            throw StoreError.invalid(field: "classification", rule: "must be important or not-important")
        }
        try await req.screening.reviewDeviation(key: req.parameters.get("key") ?? "", classification: classification, note: body.note, scope: user.scope, now: req.now)
        return .noContent
    }

    /// The CONSORT counts; by arm only for those who may see arms.
    static func screeningLog(req: Request) async throws -> ScreeningLog {
        let user = try req.user
        try user.require(.readParticipants)
        var log = try await req.screening.screeningLog(scope: user.scope)
        if !Blinding.seesArms(user.account.role, study: try await req.currentStudy()) { log.randomizedByArm = [:] }
        return log
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
        let generated = try await req.screening.generateList(seedHex: body.seed, actor: user.account.username, now: req.now)
        return try await GeneratedDTO(seed: generated.seed, positions: generated.slots).encodeResponse(status: .created, for: req)
    }
}
