import Foundation
import Plot
import TrialDomain
import TrialStore
import Vapor

/// A whole visit on one page: every form of it and its lab results, saved together (the same write as
/// `PUT /api/v1/participants/{id}/visits/{visit}`), with the eligibility assessment beside it at the eligibility visit.
enum VisitPages {
    /// Blank rows offered for lab results in the site's own units.
    static let labRows = 3

    static func show(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.readParticipants)
        let id = try APIController.participantID(req)
        let visit = req.parameters.get("visit") ?? ""
        let file = try await req.screening.file(participantID: id, scope: user.scope)
        var values: [String: String] = [:]
        for record in try await req.formRecords.records(participantID: id, scope: user.scope) where record.visit == visit {
            for (key, value) in record.values { values["\(record.form).\(key)"] = value }
        }
        return try await render(req: req, user: user, file: file, visit: visit, values: values, labs: [], error: nil)
    }

    /// The lab results on record at a visit, by test: shown beside the fields linked to them, so a lab is entered once.
    static func recorded(_ req: Request, user: CurrentUser, participantID: UUID, visit: String) async throws -> [String: LabResult] {
        Dictionary(
            try await req.safety.labs(participantID: participantID, scope: user.scope).filter { $0.visit == visit }.map { ($0.test.uppercased(), $0) },
            uniquingKeysWith: { a, _ in a })
    }

    /// "Lab result on record: 12 mg/dL, sampled 2026-03-01 08:00 UTC", for a field linked to a lab with a result.
    static func note(_ field: TrialDomain.Field, study: StudyDefinition, recorded: [String: LabResult], id: String) -> Node<HTML.FormContext> {
        guard let code = field.lab.flatMap(study.labTest)?.code, let result = recorded[code] else { return .empty }
        return .raw(
            "<p class=\"lab-on-record\" id=\"\(Layout.escape(id)).recorded\">Lab result on record: \(Layout.escape(FormValidator.format(result.enteredValue))) "
                + "\(Layout.escape(result.enteredUnit)), sampled \(VisitLabValues.minute(result.collectedAt))</p>")
    }

    static func render(
        req: Request, user: CurrentUser, file: ParticipantFile, visit: String, values: [String: String], labs: [[String: String]], error: String?
    ) async throws -> Response {
        let study = file.study
        guard let visitDefinition = study.visit(visit) else { throw StoreError.notFound(entity: "visit", id: visit) }
        let forms = study.forms.filter { $0.visits.contains(visit) }
        let canWrite = AccessPolicy.allows(user.account.role, .writeParticipants)
        let base = "/participants/\(file.participant.id.uuidString)"
        let assessment = visit == study.eligibilityVisit ? try file.assessment() : nil
        let recorded = try await recorded(req, user: user, participantID: file.participant.id, visit: visit)
        let response = Layout.page(
            title: "\(visitDefinition.name) · \(file.participant.screeningNumber)", user: user,
            .unwrap(error) { .p(.class("error"), .id("error"), .attribute(named: "role", value: "alert"), .text($0)) },
            .form(
                .method(.post), .action("\(base)/visits/\(Layout.pathSegment(visit))"), .id("visit-form"), Layout.csrfField(user),
                .forEach(forms) { form in
                    .fieldset(
                        .raw("<legend>\(Layout.escape(form.name))</legend>"),
                        .forEach(form.fields) { field in
                            let id = "\(form.code).\(field.code)"
                            return .group(FormPages.input(field, value: values[id] ?? "", id: id), note(field, study: study, recorded: recorded, id: id))
                        })
                },
                .fieldset(
                    .raw("<legend>Lab results in the site&#39;s units (each once: a result here fills its field above)</legend>"),
                    .forEach(0..<labRows) { i in
                        let row = i < labs.count ? labs[i] : [:]
                        return .group(
                            Layout.select("Test \(i + 1)", id: "lab\(i).test", options: [("", "—", (row["test"] ?? "").isEmpty)] + study.labTests.map { ($0.code, "\($0.name) (\($0.code))", $0.code == row["test"]) }),
                            Layout.field("Value \(i + 1)", id: "lab\(i).value", required: false, value: row["value"] ?? ""),
                            Layout.field("Unit \(i + 1)", id: "lab\(i).unit", required: false, value: row["unit"] ?? ""),
                            Layout.field("Sampled at \(i + 1) (yyyy-MM-ddTHH:mm, UTC)", id: "lab\(i).collectedAt", required: false, value: row["collectedAt"] ?? ""))
                    }),
                Layout.field("Reason for change (when correcting)", id: "reason", required: false),
                .if(canWrite, .button(.type(.submit), .id("save-visit"), .text("Save the visit")))),
            .unwrap(assessment) { a in
                .div(.class("card"), .id("visit-eligibility"),
                    .h2(.text("Eligibility as entered")),
                    .p(.id("visit-eligibility-outcome"), .text("Outcome: \(a.verdict)")),
                    .ul(.forEach(a.criteria) { c in
                        .li(.id("criterion-\(Layout.escape(c.code))"), .text("\(c.kind == "inclusion" ? "Include" : "Exclude"): \(c.text) — \(c.verdict)"))
                    }))
            },
            .p(.a(.href(base), .text("Back to the participant"))))
        if error != nil { response.status = .unprocessableEntity }
        return response
    }

    static func save(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.writeParticipants)
        let id = try APIController.participantID(req)
        let visit = req.parameters.get("visit") ?? ""
        let posted = try req.content.decode([String: String].self)
        let file = try await req.screening.file(participantID: id, scope: user.scope)
        // Only what was typed: a form left wholly blank is not saved.
        var forms: [(form: String, values: [String: String])] = []
        var typed: [String: String] = [:]
        for form in file.study.forms where form.visits.contains(visit) {
            var values: [String: String] = [:]
            for field in form.fields {
                if let v = posted["\(form.code).\(field.code)"], !v.trimmingCharacters(in: .whitespaces).isEmpty { values[field.code] = v }
            }
            for (k, v) in values { typed["\(form.code).\(k)"] = v }
            if !values.isEmpty { forms.append((form.code, values)) }
        }
        var labs: [VisitLab] = [], rows: [[String: String]] = []
        var problems: [String] = []
        for i in 0..<Self.labRows {
            let row = ["test", "value", "unit", "collectedAt"].reduce(into: [String: String]()) { $0[$1] = posted["lab\(i).\($1)"] ?? "" }
            guard !(row["test"] ?? "").isEmpty else { continue }
            rows.append(row)
            guard let value = Double(row["value"] ?? "") else { problems.append("labs[\(row["test"]!)].value: must be a number"); continue }
            guard let at = DateParsing.instant(row["collectedAt"] ?? "") else { problems.append("labs[\(row["test"]!)].collectedAt: must be yyyy-MM-ddTHH:mm"); continue }
            labs.append(VisitLab(test: row["test"]!, value: value, unit: row["unit"] ?? "", collectedAt: at))
        }
        do {
            if !problems.isEmpty { throw StoreError.invalid(field: "labs", rule: problems.joined(separator: "; ")) }
            _ = try await req.safety.saveVisit(
                participantID: id, visit: visit, forms: forms, labs: labs, reason: posted["reason"].flatMap { $0.isEmpty ? nil : $0 }, scope: user.scope,
                now: req.now)
        } catch let error as StoreError {
            // Shown again with everything typed, so nothing entered is lost.
            return try await render(req: req, user: user, file: file, visit: visit, values: typed, labs: rows, error: error.description)
        }
        return req.redirect(to: "/participants/\(id.uuidString)/visits/\(visit.addingPercentEncoding(withAllowedCharacters: .urlPathAllowed) ?? visit)", redirectType: .normal)
    }
}
