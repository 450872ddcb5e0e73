import Foundation
import Plot
import TrialDomain
import TrialStore
import Vapor

struct ConsentForm: Content {
    var formVersion: String
    var signedAt: String
}

struct WithdrawalForm: Content {
    var withdrawnAt: String
    var scope: String
    var reason: String?
}

struct InfusionForm: Content {
    var productLot: String
    var particles: String
    var volumeML: String
    var startedAt: String
    var stoppedAt: String
    var rateMLPerHour: String
    var interruptionAt: String?
    var interruptionMinutes: String?
    var interruptionReason: String?
}

/// The steps from screening to infusion on a participant's page, and the trial-level screening log and list.
enum ScreeningPages {
    /// Panels for the participant page: eligibility, consent, allocation, infusion and schedule.
    static func panels(req: Request, user: CurrentUser, file: ParticipantFile) async throws -> Node<HTML.BodyContext> {
        let participant = file.participant
        let assessment = try EligibilityAssessment.assess(study: file.study, site: file.siteCode, values: file.eligibilityValues)
        let schedule = ParticipantSchedule.build(study: file.study, anchors: file.anchors, done: file.visitDates, now: Date())
        let canWrite = AccessPolicy.allows(user.account.role, .writeParticipants)
        let base = "/participants/\(participant.id.uuidString)"
        return .group(
            .div(.class("card"), .id("eligibility"),
                .h2(.text("Eligibility")),
                .p(.id("eligibility-outcome"), .text("Outcome: \(assessment.verdict)" + (file.lastDecision.map { "; decision recorded: \($0)" } ?? ""))),
                .table(
                    .thead(.tr(.th(.text("Criterion")), .th(.text("Result")), .th(.text("Evidence")))),
                    .tbody(.forEach(assessment.criteria) { c in
                        .tr(
                            .td(.text("\(c.kind == "inclusion" ? "Include" : "Exclude"): \(c.text)")), .td(.class(c.result.rawValue), .text(c.verdict)),
                            .td(.text(c.evidence.map { e in "\(e.label): " + (e.value.map { v in v + (e.unit.map { " \($0)" } ?? "") } ?? "missing") + (e.note.map { " (\($0))" } ?? "") }.joined(separator: "; "))))
                    })),
                .if(user.account.role == .investigator && file.lastDecision == nil && assessment.outcome != .cannotTell,
                    .form(.method(.post), .action("\(base)/eligibility/decision"), Layout.csrfField(user),
                        .button(.type(.submit), .id("decide-eligibility"), .text(assessment.outcome == .met ? "Confirm eligibility" : "Record screen failure"))))),
            .div(.class("card"), .id("consent"),
                .h2(.text("Consent")),
                .ul(.forEach(file.consents) { c in
                    .li(.text("Version \(c.formVersion), signed \(iso(c.signedAt)), taken by \(c.takenBy)" + (c.withdrawnAt.map { "; withdrawn \(iso($0)) (\(c.withdrawalScope?.rawValue ?? ""))" } ?? "")))
                }),
                .if(canWrite && file.validConsent == nil,
                    .form(.method(.post), .action("\(base)/consents"), Layout.csrfField(user),
                        Layout.select("Consent form version", id: "formVersion", options: file.study.consent.versions.map { ($0.version, "\($0.version) (\($0.date))", $0.version == file.study.consent.current) }),
                        Layout.field("Signed at (yyyy-MM-ddTHH:mm, UTC)", id: "signedAt"),
                        .button(.type(.submit), .id("record-consent"), .text("Record consent"))))),
            .div(.class("card"), .id("allocation"),
                .h2(.text("Allocation")),
                .unwrap(file.allocation, { a in .p(.id("allocated-arm"), .text("Allocated to \(armName(file.study, a.arm)) on \(iso(a.allocatedAt)) by \(a.allocatedBy).")) },
                    else: .group(
                        .p(.text("Not allocated. Allocation needs a confirmed eligibility and consent to version \(file.study.consent.current).")),
                        .if(canWrite,
                            .form(.method(.post), .action("\(base)/allocation"), Layout.csrfField(user),
                                .button(.type(.submit), .id("allocate"), .text("Allocate")))))))
            ,
            .if(file.allocation != nil,
                .div(.class("card"), .id("infusion"),
                    .h2(.text("Infusion")),
                    .unwrap(file.infusion, { i in
                        .p(.id("infusion-record"), .text("Lot \(i.productLot): \(Dose(amount: i.particles, unit: "particles", volume: i.volumeML, volumeUnit: "mL").summary), \(iso(i.startedAt)) to \(iso(i.stoppedAt)) at \(FormValidator.format(i.rateMLPerHour)) mL/h; \(i.interruptions.count) interruptions."))
                    }, else: .if(file.armHasIntervention == true && canWrite,
                        .form(.method(.post), .action("\(base)/infusion"), Layout.csrfField(user),
                            Layout.field("Product lot", id: "productLot"), Layout.field("Particles", id: "particles"), Layout.field("Volume (mL)", id: "volumeML"),
                            Layout.field("Started at (UTC)", id: "startedAt"), Layout.field("Stopped at (UTC)", id: "stoppedAt"),
                            Layout.field("Rate (mL/h)", id: "rateMLPerHour"),
                            Layout.field("Interruption at (optional)", id: "interruptionAt", required: false),
                            Layout.field("Interruption minutes", id: "interruptionMinutes", required: false),
                            Layout.field("Interruption reason", id: "interruptionReason", required: false),
                            .button(.type(.submit), .id("record-infusion"), .text("Record infusion"))),
                        else: .p(.id("no-infusion"), .text(file.armHasIntervention == false ? "The \(armName(file.study, file.allocation?.arm ?? "")) arm receives no infusion; time zero is the allocation." : "")))))),
            .div(.class("card"),
                .h2(.text("Visit schedule")),
                .table(.id("visit-schedule"),
                    .thead(.tr(.th(.text("Visit")), .th(.text("Target")), .th(.text("Window")), .th(.text("Done")), .th(.text("State")))),
                    .tbody(.forEach(schedule) { v in
                        .tr(
                            .td(.text(v.name)), .td(.text(v.target.map(iso) ?? "")),
                            .td(.text([v.windowStart, v.windowEnd].compactMap { $0.map(iso) }.joined(separator: " – "))),
                            .td(.text(v.doneAt.map(iso) ?? "")), .td(.class(v.state.rawValue), .text(v.state.rawValue.replacingOccurrences(of: "_", with: " "))))
                    }))))
    }

    static func armName(_ study: StudyDefinition, _ code: String) -> String { study.arms.first { $0.code == code }?.name ?? code }

    static func back(_ req: Request, _ id: UUID) -> Response { req.redirect(to: "/participants/\(id.uuidString)", redirectType: .normal) }

    static func decide(req: Request) async throws -> Response {
        let user = try req.user
        guard user.account.role == .investigator else { throw Abort(.forbidden, reason: "only an investigator may confirm eligibility") }
        let id = try APIController.participantID(req)
        _ = try await req.screening.decideEligibility(participantID: id, scope: user.scope, now: Date())
        return back(req, id)
    }

    static func consent(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.writeParticipants)
        let id = try APIController.participantID(req)
        let form = try req.content.decode(ConsentForm.self)
        _ = try await req.screening.recordConsent(
            participantID: id, formVersion: form.formVersion, signedAt: try instant(form.signedAt, field: "signedAt"), scope: user.scope, now: Date())
        return back(req, id)
    }

    static func allocate(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.writeParticipants)
        let id = try APIController.participantID(req)
        _ = try await req.screening.allocate(participantID: id, scope: user.scope, now: Date())
        return back(req, id)
    }

    static func infusion(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.writeParticipants)
        let id = try APIController.participantID(req)
        let form = try req.content.decode(InfusionForm.self)
        func number(_ text: String, _ field: String) throws -> Double {
            guard let value = Double(text.trimmingCharacters(in: .whitespaces)) else { throw StoreError.invalid(field: field, rule: "must be a number") }
            return value
        }
        var interruptions: [Interruption] = []
        if let at = form.interruptionAt, !at.trimmingCharacters(in: .whitespaces).isEmpty {
            interruptions.append(
                Interruption(
                    at: try instant(at, field: "interruptionAt"), minutes: try number(form.interruptionMinutes ?? "", "interruptionMinutes"),
                    reason: form.interruptionReason ?? ""))
        }
        let input = InfusionInput(
            productLot: form.productLot, particles: try number(form.particles, "particles"), volumeML: try number(form.volumeML, "volumeML"),
            startedAt: try instant(form.startedAt, field: "startedAt"), stoppedAt: try instant(form.stoppedAt, field: "stoppedAt"),
            rateMLPerHour: try number(form.rateMLPerHour, "rateMLPerHour"), interruptions: interruptions)
        _ = try await req.screening.recordInfusion(participantID: id, input: input, scope: user.scope, now: Date())
        return back(req, id)
    }

    static func screeningLog(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.readParticipants)
        let log = try await req.screening.screeningLog(scope: user.scope)
        return Layout.page(
            title: "Screening log", user: user,
            .table(.id("screening-log"),
                .tbody(
                    StudyPages.row("Screened", "\(log.screened)"), StudyPages.row("Eligible", "\(log.eligible)"),
                    StudyPages.row("Screen failures", "\(log.screenFailed)"), StudyPages.row("Consented", "\(log.consented)"),
                    StudyPages.row("Randomized", "\(log.randomized)"),
                    .forEach(log.randomizedByArm.sorted { $0.key < $1.key }) { StudyPages.row("Randomized to \($0.key)", "\($0.value)") })),
            .h2(.text("Screen failures")),
            .ul(.forEach(log.failures) { .li(.text("\($0.screeningNumber): \($0.criteria.joined(separator: ", "))")) }))
    }

    /// The concealed list: the statistician's page only.
    static func list(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.viewRandomizationList)
        let list = try await req.screening.listSlots()
        return Layout.page(
            title: "Randomization list", user: user,
            .unwrap(list, { l in
                .group(
                    .p(.id("list-seed"), .text("Method \(l.method); seed \(l.seed); generated \(iso(l.generatedAt)).")),
                    .table(.id("randomization-list"),
                        .thead(.tr(.th(.text("Stratum")), .th(.text("Position")), .th(.text("Block")), .th(.text("Arm")), .th(.text("Allocated")))),
                        .tbody(.forEach(l.slots) { s in
                            .tr(.td(.text(s.stratum)), .td(.text("\(s.position)")), .td(.text("\(s.block) (size \(s.blockSize))")), .td(.text(s.arm)),
                                .td(.text(s.allocatedAt.map(iso) ?? "")))
                        })))
            }, else: .form(.method(.post), .action("/randomization"), Layout.csrfField(user),
                .p(.text("No list yet. Generating it fixes the allocation sequence for the whole study.")),
                .button(.type(.submit), .id("generate-list"), .text("Generate the list")))))
    }

    static func generate(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.viewRandomizationList)
        _ = try await req.screening.generateList(seedHex: nil, actor: user.account.username, now: Date())
        return req.redirect(to: "/randomization", redirectType: .normal)
    }
}
