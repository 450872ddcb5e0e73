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

struct DoseForm: Content {
    var dose: String
    var startedAt: String?
    var endedAt: String?
    var lot: String?
    var expiry: String?
    var weightKg: String?
    var deviationReason: String?
    var skipReason: String?
}

/// The steps from screening to the doses on a participant's page, and the trial-level screening log and list.
enum ScreeningPages {
    /// Panels for the participant page: eligibility, consent, allocation, doses and schedule.
    static func panels(req: Request, user: CurrentUser, file: ParticipantFile) async throws -> Node<HTML.BodyContext> {
        let participant = file.participant
        let assessment = try file.assessment()
        let schedule = ParticipantSchedule.build(study: file.schedule, anchors: file.anchors, done: try await req.screening.visitDates(file), now: req.now, arm: file.arm, calendar: file.calendar)
        let canWrite = AccessPolicy.allows(user.account.role, .writeParticipants)
        let base = "/participants/\(participant.id.uuidString)"
        let blind = try await ScreeningAPI.isBlind(req, user: user, study: file.study, participantID: participant.id)
        return .group(
            .div(.class("card"), .id("eligibility"),
                .h2(.text("Eligibility")),
                .p(.id("eligibility-outcome"), .text("Outcome: \(assessment.verdict)" + (file.lastDecision.map { "; decision recorded: \($0)" } ?? ""))),
                .if(file.participant.status == .needsReview,
                    .p(.class("error"), .id("needs-review"), .text("Needs review: data changed after the eligible decision and no longer support it; an investigator decides again before allocation."))),
                .unwrap(file.study.eligibilityVisit) { visit in
                    .p(.a(.id("enter-screening"), .href("\(base)/visits/\(Layout.pathSegment(visit))"), .text("Enter the whole \(file.study.visit(visit)?.name ?? visit) visit on one page")))
                },
                .table(
                    .thead(.tr(.th(.text("Criterion")), .th(.text("Result")), .th(.text("Evidence")))),
                    .tbody(.forEach(assessment.criteria) { c in
                        .tr(
                            .td(.text("\(c.kind == "inclusion" ? "Include" : "Exclude"): \(c.text)")), .td(.class(c.result.rawValue), .text(c.verdict)),
                            .td(.text(c.evidence.map { e in "\(e.label): " + (e.value.map { v in v + (e.unit.map { " \($0)" } ?? "") } ?? "missing") + (e.note.map { " (\($0))" } ?? "") }.joined(separator: "; "))))
                    })),
                .if(user.account.role == .investigator && (file.lastDecision == nil || file.participant.status == .needsReview) && assessment.outcome != .cannotTell,
                    .form(.method(.post), .action("\(base)/eligibility/decision"), Layout.csrfField(user),
                        .button(.type(.submit), .id("decide-eligibility"), .text(assessment.outcome == .met ? "Confirm eligibility" : "Record screen failure"))))),
            .div(.class("card"), .id("consent"),
                .h2(.text("Consent")),
                .if(file.needsReconsent, .p(.class("error"), .id("reconsent"), .text("Re-consent needed: the consent form in force is version \(file.study.consent.current)."))),
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
                .unwrap(file.allocation, { a in
                    .group(
                        .p(.id("allocated-arm"), .text(
                            (!blind ? "Allocated to \(armName(file.study, file.arm ?? a.arm))" : "Allocated (blinded)")
                                + " on \(iso(a.allocatedAt)) by \(a.allocatedBy).")),
                        .forEach(file.schedule.randomizations ?? []) { stage in
                            .unwrap(file.stages.first { $0.randomization == stage.code }, { done in
                                .p(.id("stage-\(Layout.escape(stage.code))"), .text("\(stage.name ?? stage.code): randomized on \(iso(done.allocatedAt)) by \(done.allocatedBy)."))
                            }, else: .if(canWrite,
                                .form(.method(.post), .action("\(base)/allocation"), Layout.csrfField(user),
                                    .input(.type(.hidden), .name("randomization"), .value(Layout.escape(stage.code))),
                                    .button(.type(.submit), .id("randomize-\(Layout.escape(stage.code))"), .text("Randomize: \(stage.name ?? stage.code) (at \(file.study.visit(stage.visit)?.name ?? stage.visit))")))))
                        })
                },
                    else: .group(
                        .p(.text("Not allocated. Allocation needs a confirmed eligibility and consent to version \(file.study.consent.current).")),
                        .if(canWrite,
                            .form(.method(.post), .action("\(base)/allocation"), Layout.csrfField(user),
                                .button(.type(.submit), .id("allocate"), .text("Allocate")))))))
            ,
            .if(file.allocation != nil, dosePanel(file: file, user: user, blind: blind, canRecord: AccessPolicy.allows(user.account.role, .recordDoses), base: base, now: req.now)),
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

    /// The participant's doses: each with its window and state, and a form to record one given or skipped.
    static func dosePanel(file: ParticipantFile, user: CurrentUser, blind: Bool, canRecord: Bool, base: String, now: Date) -> Node<HTML.BodyContext> {
        let doses = DoseRules.schedule(study: file.schedule, arm: file.arm, anchors: file.anchors, records: file.doses, now: now, calendar: file.calendar)
        let open = doses.filter { $0.record == nil }
        func describe(_ d: ScheduledDose) -> String {
            guard let r = d.record else { return d.state.rawValue.replacingOccurrences(of: "_", with: " ") }
            if !r.given { return "skipped: \(r.skipReason ?? "")" }
            var text = "given \(r.startedAt.map(iso) ?? "")" + (r.lot.map { ", lot \($0)" } ?? "") + (r.expiry.map { ", expiry \($0)" } ?? "")
            if !blind, let amount = r.amount { text += ", \(Dose.number(amount)) \(r.unit ?? "")" }
            if r.deviation { text += "; out of window: \(r.deviationReason ?? "")" }
            return text
        }
        return .div(.class("card"), .id("doses"),
            .h2(.text("Doses")),
            .if(doses.isEmpty, .p(.id("no-doses"), .text("This participant's plan has no doses; time zero is the allocation."))),
            .if(!doses.isEmpty,
                .table(.id("dose-table"),
                    .thead(.tr(.th(.text("Dose")), .th(.text("Target")), .th(.text("Window")), .th(.text("State")))),
                    .tbody(.forEach(doses) { d in
                        .tr(.id("dose-\(Layout.escape(d.dose.code))"),
                            .td(.text(d.dose.name ?? d.dose.code)), .td(.text(d.target.map(iso) ?? "")),
                            .td(.text([d.windowStart, d.windowEnd].compactMap { $0.map(iso) }.joined(separator: " – "))),
                            .td(.class(d.state.rawValue), .text(describe(d))))
                    }))),
            .if(canRecord && !open.isEmpty,
                .form(.method(.post), .action("\(base)/doses"), .id("dose-form"), Layout.csrfField(user),
                    Layout.select("Dose", id: "dose", options: open.map { ($0.dose.code, $0.dose.name ?? $0.dose.code, false) }),
                    Layout.field("Started at (yyyy-MM-ddTHH:mm, UTC)", id: "startedAt", required: false),
                    Layout.field("Ended at (UTC)", id: "endedAt", required: false),
                    Layout.field("Product lot", id: "lot", required: false),
                    Layout.field("Expiry (yyyy-MM-dd)", id: "expiry", required: false),
                    Layout.field("Weight (kg), for a dose per kg", id: "weightKg", required: false),
                    Layout.field("Reason for giving it outside its window", id: "deviationReason", required: false),
                    Layout.field("Not given: why (leave the times empty)", id: "skipReason", required: false),
                    .button(.type(.submit), .id("record-dose"), .text("Record dose")))))
    }

    static func armName(_ study: StudyDefinition, _ code: String) -> String { study.arms.first { $0.code == code }?.name ?? code }

    static func back(_ req: Request, _ id: UUID) -> Response { req.redirect(to: "/participants/\(id.uuidString)", redirectType: .normal) }

    static func decide(req: Request) async throws -> Response {
        let user = try req.user
        guard user.account.role == .investigator else { throw Abort(.forbidden, reason: "only an investigator may confirm eligibility") }
        let id = try APIController.participantID(req)
        _ = try await req.screening.decideEligibility(participantID: id, scope: user.scope, now: req.now)
        return back(req, id)
    }

    static func consent(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.writeParticipants)
        let id = try APIController.participantID(req)
        let form = try req.content.decode(ConsentForm.self)
        _ = try await req.screening.recordConsent(
            participantID: id, formVersion: form.formVersion, signedAt: try instant(form.signedAt, field: "signedAt"), scope: user.scope, now: req.now)
        return back(req, id)
    }

    static func allocate(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.writeParticipants)
        let id = try APIController.participantID(req)
        if let code = try? req.content.get(String.self, at: "randomization"), !code.isEmpty {
            _ = try await req.screening.allocateStage(participantID: id, randomization: code, scope: user.scope, now: req.now)
        } else {
            _ = try await req.screening.allocate(participantID: id, scope: user.scope, now: req.now)
        }
        return back(req, id)
    }

    static func dose(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.recordDoses)
        let id = try APIController.participantID(req)
        let form = try req.content.decode(DoseForm.self)
        func text(_ value: String?) -> String? {
            let t = value?.trimmingCharacters(in: .whitespaces) ?? ""
            return t.isEmpty ? nil : t
        }
        var weight: Double?
        if let w = text(form.weightKg) {
            guard let value = Double(w) else { throw StoreError.invalid(field: "weightKg", rule: "must be a number") }
            weight = value
        }
        let skipped = text(form.skipReason) != nil && text(form.startedAt) == nil
        let body = DoseBody(
            dose: form.dose, startedAt: text(form.startedAt), endedAt: text(form.endedAt), lot: text(form.lot), expiry: text(form.expiry), weightKg: weight,
            deviationReason: text(form.deviationReason), skipped: skipped ? true : nil, reason: skipped ? text(form.skipReason) : nil)
        _ = try await req.screening.recordDose(participantID: id, record: try ScreeningAPI.doseRecord(body), scope: user.scope, now: req.now)
        return back(req, id)
    }

    static func screeningLog(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.readParticipants)
        let log = try await ScreeningAPI.screeningLog(req: req)
        return Layout.page(
            title: "Screening log", user: user,
            .table(.id("screening-log"),
                .tbody(
                    StudyPages.row("Screened", "\(log.screened)"), StudyPages.row("Eligible", "\(log.eligible)"),
                    StudyPages.row("Screen failures", "\(log.screenFailed)"), StudyPages.row("Consented", "\(log.consented)"),
                    StudyPages.row("Randomized", "\(log.randomized)"),
                    StudyPages.row("Withdrawn as entered in error", "\(log.enteredInError)"),
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
        _ = try await req.screening.generateList(seedHex: nil, actor: user.account.username, now: req.now)
        return req.redirect(to: "/randomization", redirectType: .normal)
    }
}
