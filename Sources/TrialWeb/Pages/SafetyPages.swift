import Foundation
import Plot
import TrialDomain
import TrialStandards
import TrialStore
import Vapor

struct LabForm: Content {
    var visit: String
    var test: String
    var value: String
    var unit: String
    var collectedAt: String
}

struct AdverseEventForm: Content {
    var meddra: String
    var grade: String
    var onsetAt: String
    var resolvedAt: String?
    var seriousness: [String]?
    var attribution: String
    var expected: String?
    var actionTaken: String
    var outcome: String
    var awareAt: String?
}

struct GradePreview: Content {
    var test: String
    var canonicalValue: Double?
    var unit: String?
    var gradeV4: Int?
    var gradeV5: Int?
    var basis: String
}

/// Labs and adverse events on the participant page; SAE clocks, the primary endpoint and eDISH on the safety page.
enum SafetyPages {
    static func panels(req: Request, user: CurrentUser, file: ParticipantFile, records: [FormRecord]) async throws -> Node<HTML.BodyContext> {
        let participant = file.participant, study = file.study
        let safety = try req.safety
        let labs = try await safety.labs(participantID: participant.id, scope: user.scope)
        let events = try await safety.adverseEvents(participantID: participant.id, scope: user.scope)
        let scores = try await SafetyAPI.scoresFor(req, file: file, labs: labs, records: records, scope: user.scope)
        let hysLaw = FluentSafetyRepository.hysLaw(labs: labs, settings: study.safety.hysLaw).filter { $0.check.byULN || $0.check.byBaseline }
        let canWrite = AccessPolicy.allows(user.account.role, .writeParticipants)
        let base = "/participants/\(participant.id.uuidString)"
        // The visits whose forms hold lab fields, in the schedule's order.
        let labForms = study.forms.filter { $0.fields.contains { $0.lab != nil } }
        let labVisits = labForms.isEmpty ? study.visits.map(\.code) : study.visits.map(\.code).filter { v in labForms.contains { $0.visits.contains(v) } }
        return .group(
            .div(.class("card"), .id("labs"),
                .h2(.text("Laboratory results")),
                .table(.id("lab-table"),
                    .thead(.tr(.th(.text("Visit")), .th(.text("Test")), .th(.text("Value")), .th(.text("Entered as")), .th(.text("Range")),
                        .th(.text("CTCAE v4.03")), .th(.text("CTCAE v5.0")), .th(.text("Shift from baseline")), .th(.text("Treatment-emergent")))),
                    .tbody(.forEach(labs) { l in
                        .tr(
                            .td(.text(l.visit)), .td(.text(l.test)), .td(.text("\(FormValidator.format(l.value)) \(l.unit)")),
                            .td(.text("\(FormValidator.format(l.enteredValue)) \(l.enteredUnit)")),
                            .td(.text([l.lln.map { "LLN \(FormValidator.format($0))" }, l.uln.map { "ULN \(FormValidator.format($0))" }].compactMap { $0 }.joined(separator: ", "))),
                            .td(.text(l.gradeV4.map { "grade \($0)" } ?? "not graded"), .br(), .small(.text(l.basisV4 ?? ""))),
                            .td(.text(l.gradeV5.map { "grade \($0)" } ?? "not graded"), .br(), .small(.text(l.basisV5 ?? ""))),
                            .td(.text(l.shift ?? "")), .td(.text(l.treatmentEmergent ? "yes" : "no")))
                    })),
                .forEach(hysLaw) { flag in
                    .p(.class("error"), .id("hys-law-\(Layout.escape(flag.visit))"),
                        .text("Potential Hy's law at \(flag.visit): ALT or AST \(String(format: "%.1f", flag.check.transaminaseMultipleOfULN)) × ULN with bilirubin \(String(format: "%.1f", flag.check.bilirubinMultipleOfULN)) × ULN" + (flag.check.byBaseline ? "; also above the multiples of baseline" : " (by ULN only; not by baseline)")))
                },
                .if(!scores.isEmpty,
                    .table(.id("scores"), .caption(.text("Liver scores by visit")),
                        .thead(.tr(.th(.text("Visit")), .forEach(LiverScores.names) { .th(.text($0)) }, .th(.text("Inputs (after bounds)")))),
                        .tbody(.forEach(scores) { s in
                            .tr(
                                .td(.text(s.visit)),
                                .forEach(LiverScores.names) { name in .td(.text(s.scores[name].map { String(format: "%.1f", $0) } ?? "")) },
                                .td(.text(s.inputs.sorted { $0.key < $1.key }.map { "\($0.key) \(FormValidator.format(($0.value * 100).rounded() / 100))" }.joined(separator: ", "))))
                        }))),
                .if(canWrite,
                    .form(.method(.post), .action("\(base)/labs"), .id("lab-form"), .data(named: "participant", value: participant.id.uuidString), Layout.csrfField(user),
                        Layout.select("Visit", id: "visit", options: labVisits.map { ($0, study.visit($0)?.name ?? $0, false) }),
                        Layout.select("Test", id: "test", options: study.labTests.map { ($0.code, "\($0.name) (\($0.unit))", false) }),
                        Layout.field("Value", id: "value"), Layout.field("Unit", id: "unit"),
                        Layout.field("Collected at (yyyy-MM-ddTHH:mm, UTC)", id: "collectedAt"),
                        .p(.id("grade-preview"), .attribute(named: "aria-live", value: "polite")),
                        .button(.type(.submit), .id("save-lab"), .text("Save result"))))),
            .div(.class("card"), .id("adverse-events"),
                .h2(.text("Adverse events")),
                .table(.id("ae-table"),
                    .thead(.tr(.th(.text("Term")), .th(.text("Grade")), .th(.text("Onset")), .th(.text("Serious")), .th(.text("Attribution")), .th(.text("Outcome")))),
                    .tbody(.forEach(events) { e in
                        .tr(
                            .td(.text("\(e.term) (MedDRA \(e.meddra))")), .td(.text("\(e.grade): \(e.gradeDefinition)")), .td(.text(iso(e.onsetAt))),
                            .td(.text(e.serious ? e.seriousness.map(\.rawValue).joined(separator: ", ") : "no")), .td(.text(e.attribution.rawValue)),
                            .td(.text(e.outcome)))
                    })),
                .if(canWrite,
                    .form(.method(.post), .action("\(base)/adverse-events"), .id("ae-form"), Layout.csrfField(user),
                        .label(.for("term-search"), .text("CTCAE v4.03 term (type to search)")),
                        .input(.type(.text), .id("term-search"), .attribute(named: "list", value: "term-options"), .autocomplete(false)),
                        .raw("<datalist id=\"term-options\"></datalist>"),
                        Layout.field("MedDRA code", id: "meddra"),
                        .div(.id("grade-definitions"), .attribute(named: "aria-live", value: "polite")),
                        Layout.select("Grade", id: "grade", options: (1...5).map { (String($0), String($0), false) }),
                        Layout.field("Onset (yyyy-MM-ddTHH:mm, UTC)", id: "onsetAt"),
                        Layout.field("Resolved (optional)", id: "resolvedAt", required: false),
                        .raw("<fieldset><legend>Serious (ICH E2A)</legend>" + Seriousness.allCases.map {
                            "<label><input type=\"checkbox\" name=\"seriousness[]\" value=\"\($0.rawValue)\"> \($0.rawValue.replacingOccurrences(of: "_", with: " "))</label>"
                        }.joined() + "</fieldset>"),
                        Layout.field("Site aware at (serious events)", id: "awareAt", required: false),
                        Layout.select("Attribution to the study treatment", id: "attribution", options: Attribution.allCases.map { ($0.rawValue, $0.rawValue, false) }),
                        Layout.select("Expected", id: "expected", options: [("no", "no", true), ("yes", "yes", false)]),
                        Layout.field("Action taken", id: "actionTaken"), Layout.field("Outcome", id: "outcome"),
                        .button(.type(.submit), .id("save-ae"), .text("Save adverse event"))))),
            .element(named: "script", nodes: [.attribute(named: "src", value: scriptPath)]))
    }

    static func back(_ req: Request, _ id: UUID) -> Response { req.redirect(to: "/participants/\(id.uuidString)", redirectType: .normal) }

    static func recordLab(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.writeParticipants)
        let id = try APIController.participantID(req)
        let form = try req.content.decode(LabForm.self)
        guard let value = Double(form.value.trimmingCharacters(in: .whitespaces)) else { throw StoreError.invalid(field: "value", rule: "must be a number") }
        _ = try await req.safety.recordLab(
            participantID: id, visit: form.visit, test: form.test, value: value, unit: form.unit, collectedAt: try instant(form.collectedAt, field: "collectedAt"),
            scope: user.scope, now: req.now)
        return back(req, id)
    }

    static func recordAdverseEvent(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.writeParticipants)
        let id = try APIController.participantID(req)
        let form = try req.content.decode(AdverseEventForm.self)
        guard let grade = Int(form.grade) else { throw StoreError.invalid(field: "grade", rule: "must be 1 to 5") }
        let body = AdverseEventBody(
            meddra: form.meddra.trimmingCharacters(in: .whitespaces), grade: grade, onsetAt: form.onsetAt,
            resolvedAt: form.resolvedAt.flatMap { $0.isEmpty ? nil : $0 }, seriousness: form.seriousness, attribution: form.attribution,
            expected: form.expected == "yes", actionTaken: form.actionTaken, outcome: form.outcome, awareAt: form.awareAt.flatMap { $0.isEmpty ? nil : $0 })
        _ = try await req.safety.recordAdverseEvent(participantID: id, input: try SafetyAPI.adverseEventInput(body), scope: user.scope, now: req.now)
        return back(req, id)
    }

    /// The grade a value would get, for the lab form as it is typed; nothing is saved.
    static func gradePreview(req: Request) async throws -> GradePreview {
        let user = try req.user
        try user.require(.readParticipants)
        let code = (try? req.query.get(String.self, at: "test")) ?? ""
        let unit = (try? req.query.get(String.self, at: "unit")) ?? ""
        guard let value = (try? req.query.get(String.self, at: "value")).flatMap(Double.init),
            let participantID = (try? req.query.get(String.self, at: "participant")).flatMap(UUID.init(uuidString:))
        else { return GradePreview(test: code, canonicalValue: nil, unit: nil, gradeV4: nil, gradeV5: nil, basis: "") }
        let file = try await req.screening.file(participantID: participantID, scope: user.scope)
        guard let test = file.study.labTest(code) else { return GradePreview(test: code, canonicalValue: nil, unit: nil, gradeV4: nil, gradeV5: nil, basis: "") }
        // The same evaluation a save makes: the participant's range by sex and age, and their baseline.
        let now = req.now
        let labs = try await req.safety.labs(participantID: participantID, scope: user.scope).map {
            LabValue(test: $0.test, visit: $0.visit, collectedAt: $0.collectedAt, value: $0.value)
        }
        let baseline = Baseline.value(of: test.code, in: labs, visits: Baseline.visits(of: file.study), before: now)?.value
        let evaluation: LabEvaluation
        do {
            evaluation = try LabEvaluator.evaluate(
                test: test, value: value, unit: unit.isEmpty ? test.unit : unit, collectedAt: now, study: file.study, site: file.siteCode,
                sex: file.study.sex(in: file.values), birthDate: file.study.birthDate(in: file.values), baseline: baseline, tables: try GradingTables.builtIn())
        } catch let error as LabEvaluationError {
            return GradePreview(test: test.code, canonicalValue: nil, unit: nil, gradeV4: nil, gradeV5: nil, basis: error.description)
        }
        return GradePreview(
            test: test.code, canonicalValue: evaluation.canonical, unit: test.unit, gradeV4: evaluation.gradeV4?.grade, gradeV5: evaluation.gradeV5?.grade,
            basis: evaluation.basisV4 ?? "not graded: no CTCAE term for \(test.code)")
    }

    static func terms(req: Request) async throws -> [CTCAETerm] {
        _ = try req.user
        return try await req.safety.searchTerms((try? req.query.get(String.self, at: "q")) ?? "", limit: 15)
    }

    static func safety(req: Request) async throws -> Response {
        let user = try req.user
        try user.require(.readParticipants)
        let saes = try await SafetyAPI.seriousList(req, user: user)
        let study = try await req.currentStudy()
        let withArms = SafetyAPI.seesArms(user, study: study)
        let endpoints = try await FluentCohortRepository(store: req.store).endpoints(scope: user.scope, study: study, byArm: withArms)
        let points = try await req.safety.edish(scope: user.scope, withArms: withArms)
        return Layout.page(
            title: "Safety", user: user,
            .h2(.text("Serious adverse events")),
            .table(.id("sae-table"),
                .thead(.tr(.th(.text("Term")), .th(.text("Grade")), .th(.text("Site aware")), .th(.text("Due")), .th(.text("Reported")), .th(.text("Clock")))),
                .tbody(.forEach(saes) { s in
                    .tr(.class(s.overdue ? "error" : ""),
                        .td(.text(s.term)), .td(.text("\(s.grade)")), .td(.text(s.awareAt)), .td(.text(s.dueAt)), .td(.text(s.reportedAt ?? "")),
                        .td(.text(s.reportedAt != nil ? (s.overdue ? "reported late" : "reported in time") : (s.overdue ? "OVERDUE" : String(format: "%.1f h left", s.hoursLeft)))))
                })),
            .h2(.text("Endpoints")),
            .forEach(endpoints.filter { $0.method != nil }) { e in endpointTable(e, study: study) },
            .h2(.text("eDISH: peak ALT and peak total bilirubin as multiples of ULN")),
            .raw(EDISHPlot.svg(points: points, arms: withArms ? study.arms.map(\.code) : [])))
    }

    /// One endpoint's figures: everyone, then each arm where the user may see arms.
    static func endpointTable(_ e: EndpointResult, study: StudyDefinition) -> Node<HTML.BodyContext> {
        let counted = e.groups.contains { $0.events != nil }
        let primaryCode = study.endpoints.first { $0.kind == .primary }?.code
        let id = primaryCode == e.code ? "primary-endpoint" : "endpoint-\(e.code)"
        let headings = counted ? ["Group", "Assessed", "With the event", "Proportion (exact 95 % CI)"] : ["Group", "With a value", "Mean (SD)", "Median (range)"]
        let rows: [[String]] = e.groups.map { g in
            let name = g.arm.map { ScreeningPages.armName(study, $0) } ?? "All participants"
            return [name, "\(g.n)"] + (counted ? countedCells(g) : summaryCells(g, unit: e.unit ?? ""))
        }
        return .table(.id(id), .class("endpoint"),
            .caption(.text("\(e.kind.rawValue.capitalized): \(e.measure) (\(e.timeFrame))")),
            .thead(.tr(.forEach(headings) { .th(.text($0)) })),
            .tbody(.forEach(rows) { cells in .tr(.forEach(cells) { .td(.text($0)) }) }))
    }

    static func countedCells(_ g: EndpointGroup) -> [String] {
        let grades = (g.worstGrades ?? [:]).sorted { $0.key < $1.key }.map { "grade \($0.key): \($0.value)" }
        let events = "\(g.events ?? 0)" + (grades.isEmpty ? "" : " (worst \(grades.joined(separator: ", ")))")
        let share = g.proportion.map { p in String(format: "%.1f %% (%.1f–%.1f %%)", p * 100, (g.lower ?? 0) * 100, (g.upper ?? 0) * 100) } ?? "none assessed"
        return [events, share]
    }

    static func summaryCells(_ g: EndpointGroup, unit: String) -> [String] {
        guard let s = g.summary else { return ["no values", ""] }
        func number(_ v: Double) -> String { FormValidator.format((v * 100).rounded() / 100) }
        let mean = number(s.mean) + (s.sd.map { " (\(number($0)))" } ?? "") + " \(unit)"
        return [mean, "\(number(s.median)) (\(number(s.min))–\(number(s.max))) \(unit)"]
    }

    static let script = """
        (function () {
          function q(id) { return document.getElementById(id); }
          var lab = q('lab-form');
          if (lab) {
            // Answers can arrive out of order while typing: only the latest question's answer is shown.
            var asked = 0;
            var preview = function () {
              var mine = ++asked;
              var p = new URLSearchParams({participant: lab.dataset.participant, test: q('test').value, value: q('value').value, unit: q('unit').value});
              if (!q('value').value) { q('grade-preview').textContent = ''; return; }
              fetch('/labs/grade-preview?' + p).then(function (r) { return r.json(); }).then(function (g) {
                if (mine !== asked) { return; }
                q('grade-preview').textContent = g.gradeV4 === undefined || g.gradeV4 === null ? g.basis
                  : 'CTCAE v4.03 grade ' + g.gradeV4 + ', v5.0 grade ' + g.gradeV5 + ' (' + g.basis + ')';
              });
            };
            ['test', 'value', 'unit'].forEach(function (id) { q(id).addEventListener('input', preview); q(id).addEventListener('change', preview); });
          }
          var search = q('term-search');
          if (search) {
            var found = {}, searched = 0;
            search.addEventListener('input', function () {
              var mine = ++searched;
              fetch('/ctcae/terms?q=' + encodeURIComponent(search.value)).then(function (r) { return r.json(); }).then(function (terms) {
                if (mine !== searched) { return; }
                var list = q('term-options'); list.innerHTML = ''; found = {};
                terms.forEach(function (t) { found[t.term] = t; var o = document.createElement('option'); o.value = t.term; list.appendChild(o); });
                var t = found[search.value];
                if (t) {
                  q('meddra').value = t.meddra;
                  var box = q('grade-definitions'); box.innerHTML = '';
                  t.grades.forEach(function (g, i) { if (g) { var p = document.createElement('p'); p.textContent = 'Grade ' + (i + 1) + ': ' + g; box.appendChild(p); } });
                }
              });
            });
          }
        })();
        """

    /// Named by the script's fingerprint, as the stylesheet is, so a cached copy never outlives a release.
    static let scriptPath = "/assets/casebook.js?v=" + Secrets.sha256(script).prefix(12)

    static func asset(req: Request) -> Response { Layout.asset(script, type: "application/javascript; charset=utf-8") }
}

/// The eDISH plot (Watkins PB et al., Drug Saf 2011;34:243): log axes, lines at 3 × ULN ALT and 2 × ULN bilirubin.
enum EDISHPlot {
    static func svg(points: [EDISHPoint], arms: [String]) -> String {
        let width = 560.0, height = 420.0, left = 60.0, bottom = 50.0, top = 20.0, right = 20.0
        let minX = 0.1, maxX = 100.0, minY = 0.1, maxY = 100.0
        func x(_ v: Double) -> Double { left + (log10(min(max(v, minX), maxX)) - log10(minX)) / (log10(maxX) - log10(minX)) * (width - left - right) }
        func y(_ v: Double) -> Double { height - bottom - (log10(min(max(v, minY), maxY)) - log10(minY)) / (log10(maxY) - log10(minY)) * (height - top - bottom) }
        let colours = ["#c0392b", "#2471a3", "#1e8449", "#7d3c98"]
        var parts = ["<svg xmlns=\"http://www.w3.org/2000/svg\" id=\"edish\" role=\"img\" aria-label=\"eDISH plot\" width=\"\(Int(width))\" height=\"\(Int(height))\" viewBox=\"0 0 \(Int(width)) \(Int(height))\">"]
        parts.append("<rect x=\"\(left)\" y=\"\(top)\" width=\"\(width - left - right)\" height=\"\(height - top - bottom)\" fill=\"#fff\" stroke=\"#888\"/>")
        for tick in [0.1, 1.0, 10.0, 100.0] {
            parts.append("<text x=\"\(x(tick))\" y=\"\(height - bottom + 16)\" font-size=\"11\" text-anchor=\"middle\">\(FormValidator.format(tick))</text>")
            parts.append("<text x=\"\(left - 6)\" y=\"\(y(tick) + 4)\" font-size=\"11\" text-anchor=\"end\">\(FormValidator.format(tick))</text>")
        }
        parts.append("<line x1=\"\(x(3))\" y1=\"\(top)\" x2=\"\(x(3))\" y2=\"\(height - bottom)\" stroke=\"#555\" stroke-dasharray=\"4 3\"/>")
        parts.append("<line x1=\"\(left)\" y1=\"\(y(2))\" x2=\"\(width - right)\" y2=\"\(y(2))\" stroke=\"#555\" stroke-dasharray=\"4 3\"/>")
        parts.append("<text x=\"\((left + width - right) / 2)\" y=\"\(height - 12)\" font-size=\"12\" text-anchor=\"middle\">Peak ALT (× ULN)</text>")
        parts.append("<text x=\"14\" y=\"\((top + height - bottom) / 2)\" font-size=\"12\" text-anchor=\"middle\" transform=\"rotate(-90 14 \((top + height - bottom) / 2))\">Peak total bilirubin (× ULN)</text>")
        parts.append("<text x=\"\(width - right - 4)\" y=\"\(top + 14)\" font-size=\"11\" text-anchor=\"end\">Potential Hy's law</text>")
        for point in points {
            let colour = colours[(arms.firstIndex(of: point.arm ?? "") ?? colours.count - 1) % colours.count]
            parts.append("<circle class=\"edish-point\" cx=\"\(x(point.peakALTxULN))\" cy=\"\(y(point.peakBilirubinxULN))\" r=\"5\" fill=\"\(colour)\"><title>\(Layout.escape(point.screeningNumber)) (\(Layout.escape(point.arm ?? "not allocated"))): ALT \(String(format: "%.2f", point.peakALTxULN)) × ULN, bilirubin \(String(format: "%.2f", point.peakBilirubinxULN)) × ULN</title></circle>")
        }
        for (i, arm) in arms.enumerated() {
            parts.append("<circle cx=\"\(left + 12 + Double(i) * 110)\" cy=\"\(top + 12)\" r=\"5\" fill=\"\(colours[i % colours.count])\"/><text x=\"\(left + 22 + Double(i) * 110)\" y=\"\(top + 16)\" font-size=\"11\">\(Layout.escape(arm))</text>")
        }
        parts.append("</svg>")
        return parts.joined()
    }
}
