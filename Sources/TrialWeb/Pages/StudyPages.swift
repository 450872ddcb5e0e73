import Foundation
import Plot
import TrialDomain
import TrialStandards
import TrialStore
import Vapor

extension ScheduleGrid: Content {}

/// The study in force: overview, schedule of assessments, and the differences between versions.
enum StudyPages {
    static func overview(req: Request) async throws -> Response {
        let user = try req.user
        let study = try await req.currentStudy()
        let versions = try await req.studies.versions()
        let id = study.identity
        return Layout.page(
            title: id.shortTitle, user: user,
            .p(.id("study-title"), .text(id.title)),
            .p(.id("study-version"), .text("Study \(study.code), definition version \(study.version). Status: \(study.lifecycle.status?.title ?? "none").")),
            .table(.caption(.text("Design")), .tbody(
                row("Sponsor", id.sponsor), row("Phase", id.phase), row("Type", id.studyType), row("Allocation", id.allocation),
                row("Model", id.interventionModel), row("Masking", id.masking), row("Purpose", id.purpose),
                row("Conditions", id.conditions.joined(separator: "; ")),
                row("Enrollment", "target \(study.lifecycle.enrollment.target.map(String.init) ?? "not set"), actual \(study.lifecycle.enrollment.actual.map(String.init) ?? "—")"))),
            .table(.id("arms"), .caption(.text("Arms")),
                .thead(.tr(.th(.text("Arm")), .th(.text("Type")), .th(.text("Ratio")), .th(.text("Interventions")))),
                .tbody(.forEach(study.arms) { arm in
                    .tr(.td(.text(arm.name)), .td(.text(arm.type)), .td(.text("\(arm.ratio)")), .td(.text(arm.interventions.joined(separator: ", "))))
                })),
            .table(.id("interventions"), .caption(.text("Interventions")),
                .thead(.tr(.th(.text("Intervention")), .th(.text("Dose")), .th(.text("Route")), .th(.text("Frequency")))),
                .tbody(.forEach(study.interventions) { i in
                    .tr(.td(.text(i.name)), .td(.text(i.dose?.summary ?? "")), .td(.text(i.route ?? "")), .td(.text(i.frequency ?? "")))
                })),
            .table(.id("endpoints"), .caption(.text("Endpoints")),
                .thead(.tr(.th(.text("Kind")), .th(.text("Measure")), .th(.text("Time frame")))),
                .tbody(.forEach(study.endpoints) { e in .tr(.td(.text(e.kind.rawValue)), .td(.text(e.measure)), .td(.text(e.timeFrame))) })),
            .table(.id("eligibility"), .caption(.text("Eligibility")),
                .thead(.tr(.th(.text("Criterion")), .th(.text("As the protocol says")), .th(.text("As Casebook checks it")))),
                .tbody(
                    .forEach(study.eligibility.inclusion) { c in .tr(.td(.text("Inclusion: \(c.code)")), .td(.text(c.text)), .td(.code(.text(c.expression)))) },
                    .forEach(study.eligibility.exclusion) { c in .tr(.td(.text("Exclusion: \(c.code)")), .td(.text(c.text)), .td(.code(.text(c.expression)))) })),
            .table(.id("status-history"), .caption(.text("Status history")),
                .thead(.tr(.th(.text("Date")), .th(.text("Status")), .th(.text("Reason")))),
                .tbody(.forEach(study.lifecycle.history) { h in .tr(.td(.text(h.date)), .td(.text(h.status.title)), .td(.text(h.reason ?? ""))) })),
            .table(.id("versions"), .caption(.text("Definition versions")),
                .thead(.tr(.th(.text("Version")), .th(.text("Published")), .th(.text("By")), .th(.text("Reason")), .th(.text("Changes")))),
                .tbody(.forEach(versions) { v in
                    .tr(
                        .td(.text("\(v.version)")), .td(.text(iso(v.publishedAt))), .td(.text(v.publishedBy)), .td(.text(v.reason ?? "")),
                        .td(.if(v.version > 1, .a(.href("/study/diff?from=\(v.version - 1)&to=\(v.version)"), .text("what changed")))))
                })),
            .p(.a(.href("/study/schedule"), .text("Schedule of assessments"))))
    }

    static func row(_ label: String, _ value: String) -> Node<HTML.TableContext> {
        .tr(.th(.text(label)), .td(.text(value)))
    }

    static func schedule(req: Request) async throws -> Response {
        let user = try req.user
        let study = try await req.currentStudy()
        let grid = ScheduleGrid(study: study)
        return Layout.page(
            title: "Schedule of assessments", user: user,
            .p(.text("Study \(study.code), version \(study.version). ✓ marks a form collected at the visit.")),
            .table(.id("schedule"),
                .thead(.tr(.th(.text("Visit")), .th(.text("Timing")), .forEach(study.forms) { .th(.text($0.name)) })),
                .tbody(.forEach(grid.rows) { row in
                    .tr(.th(.text(row.name)), .td(.text(row.timing)), .forEach(grid.forms) { form in .td(.text(row.forms.contains(form) ? "✓" : "")) })
                })))
    }

    static func diff(req: Request) async throws -> Response {
        let user = try req.user
        let (from, to) = try StudyAPI.versionPair(req)
        let changes = StudyDiff.changes(from: try await req.studies.definition(version: from), to: try await req.studies.definition(version: to))
        return Layout.page(
            title: "Changes from version \(from) to \(to)", user: user,
            .if(changes.isEmpty, .p(.text("No differences."))),
            .ul(.id("changes"), .forEach(changes) { .li(.text($0.description)) }))
    }
}

/// One study form for one participant at one visit, rendered from its definition.
enum FormPages {
    static func load(_ req: Request) async throws -> (CurrentUser, Participant, StudyDefinition, TrialDomain.Form, String, FormRecord?) {
        let user = try req.user
        try user.require(.readParticipants)
        let participant = try await req.participants.find(id: try APIController.participantID(req), scope: user.scope)
        let visit = req.parameters.get("visit") ?? "", formCode = req.parameters.get("form") ?? ""
        let record = try await req.formRecords.records(participantID: participant.id, scope: user.scope).first { $0.visit == visit && $0.form == formCode }
        // A record already collected is shown with the form of its own version.
        let study = if let record { try await req.studies.definition(version: record.studyVersion) } else { try await req.currentStudy() }
        guard let form = study.form(formCode), form.visits.contains(visit) else {
            throw StoreError.notFound(entity: "form", id: "'\(formCode)' at visit '\(visit)'")
        }
        return (user, participant, study, form, visit, record)
    }

    static func show(req: Request) async throws -> Response {
        let (user, participant, study, form, visit, record) = try await load(req)
        let recorded = try await VisitPages.recorded(req, user: user, participantID: participant.id, visit: visit)
        return render(
            user: user, participant: participant, study: study, form: form, visit: visit, values: record?.values ?? [:], record: record, error: nil,
            recorded: recorded)
    }

    static func render(
        user: CurrentUser, participant: Participant, study: StudyDefinition, form: TrialDomain.Form, visit: String, values: [String: String],
        record: FormRecord?, error: String?, recorded: [String: LabResult] = [:]
    ) -> Response {
        let canWrite = AccessPolicy.allows(user.account.role, .writeParticipants)
        let response = Layout.page(
            title: "\(form.name) · \(study.visit(visit)?.name ?? visit) · \(participant.screeningNumber)", user: user,
            .p(.id("form-version"), .text(record.map { "Collected under study version \($0.studyVersion); last saved \(iso($0.updatedAt))." } ?? "Not yet entered; study version \(study.version) applies.")),
            .unwrap(error) { .p(.class("error"), .id("error"), .text($0)) },
            .form(
                .method(.post), .action("/participants/\(participant.id.uuidString)/forms/\(Layout.pathSegment(visit))/\(Layout.pathSegment(form.code))"), Layout.csrfField(user),
                .forEach(form.fields) { field in .group(input(field, value: values[field.code] ?? ""), VisitPages.note(field, study: study, recorded: recorded, id: field.code)) },
                .if(record != nil, Layout.field("Reason for change", id: "reason", required: false)),
                .if(canWrite, .button(.type(.submit), .id("save-form"), .text("Save")))),
            .p(.a(.href("/participants/\(participant.id.uuidString)"), .text("Back to the participant"))))
        if error != nil { response.status = .unprocessableEntity }
        return response
    }

    /// `id`: the control's id and name, the field's code unless several forms share the page (`form.field`).
    static func input(_ field: Field, value: String, id: String? = nil) -> Node<HTML.FormContext> {
        let label = field.label + (field.unit.map { $0 == "1" ? "" : " (\($0))" } ?? "") + (field.isRequired ? " *" : "")
        let id = id ?? field.code
        switch field.type {
        case .choice:
            return Layout.select(label, id: id, options: [("", "—", value.isEmpty)] + (field.choices ?? []).map { ($0.code, $0.label, $0.code == value) })
        case .yesno:
            return Layout.select(label, id: id, options: [("", "—", value.isEmpty), ("yes", "Yes", value == "yes"), ("no", "No", value == "no")])
        case .date:
            return Layout.field(label, id: id, type: .date, required: false, value: value)
        case .datetime, .number, .integer, .text:
            return Layout.field(label, id: id, type: .text, required: false, value: value)
        }
    }

    static func save(req: Request) async throws -> Response {
        let (user, participant, study, form, visit, record) = try await load(req)
        try user.require(.writeParticipants)
        let posted = try req.content.decode([String: String].self)
        var values: [String: String] = [:]
        for field in form.fields { if let v = posted[field.code] { values[field.code] = v } }
        do {
            _ = try await req.formRecords.save(
                participantID: participant.id, visit: visit, form: form.code, values: values, reason: posted["reason"], scope: user.scope, now: req.now)
        } catch let error as StoreError {
            // Show the form again with what was typed, so nothing entered is lost.
            return render(user: user, participant: participant, study: study, form: form, visit: visit, values: values, record: record, error: error.description)
        }
        return req.redirect(to: "/participants/\(participant.id.uuidString)", redirectType: .normal)
    }
}
