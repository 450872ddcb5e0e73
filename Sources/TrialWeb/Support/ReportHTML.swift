import Crypto
import Foundation
import TrialDomain
import TrialStore

/// The DSMB report as one self-contained HTML document that prints well: the same text on the page and in the file
/// `casebook report dsmb` writes.
enum ReportHTML {
    static let css = """
        body{font-family:system-ui,sans-serif;color:#1b1f24;margin:1.5rem auto;max-width:70rem;padding:0 1rem;line-height:1.4}
        h1{font-size:1.6rem}h2{border-bottom:2px solid #12355b;padding-bottom:.2rem;margin-top:2rem}
        table{border-collapse:collapse;margin:.6rem 0 1.2rem;font-size:.9rem}th,td{border:1px solid #99a;padding:.25rem .5rem;text-align:left;vertical-align:top}
        th{background:#e8edf3}td.n{text-align:right;font-variant-numeric:tabular-nums}caption{text-align:left;font-weight:600;padding:.3rem 0}
        .banner{padding:.6rem 1rem;border:2px solid #12355b;background:#eef3f9;font-weight:600}
        .alert{padding:.6rem 1rem;border:2px solid #8a1c1c;background:#fdf0f0;color:#6b0f0f;font-weight:600}
        .empty{color:#444;font-style:italic}.scroll{overflow-x:auto}figure{margin:1rem 0}svg{max-width:100%;height:auto}
        @media print{body{max-width:none;margin:0}h2{break-after:avoid}table,figure{break-inside:avoid}.noprint{display:none}}
        @page{margin:15mm}
        """

    /// The served report's policy: the pages' own plus this one style block, allowed by its hash. The page stays the
    /// very document the CLI writes (self-contained, so a saved or printed copy keeps its look) and no other inline
    /// style is allowed. The hash is of the element's text, exactly as `document` writes it.
    static let contentSecurityPolicy = ResponseHeadersMiddleware.policy(
        styleSource: "'self' 'sha256-\(Data(SHA256.hash(data: Data(css.utf8))).base64EncodedString())'")

    static func e(_ text: String) -> String { Layout.escape(text) }

    static func number(_ v: Double, places: Int = 2) -> String {
        let scale = pow(10, Double(places))
        return FormValidator.format((v * scale).rounded() / scale)
    }

    static func percent(_ p: Double?) -> String { p.map { String(format: "%.1f %%", $0 * 100) } ?? "–" }

    static func utc(_ date: Date) -> String { AuditEntry.timestamp(date).prefix(16).replacingOccurrences(of: "T", with: " ") + " UTC" }

    static func document(_ r: DSMBReport, study: StudyDefinition) -> String {
        let arms = Dictionary(uniqueKeysWithValues: study.arms.map { ($0.code, $0.name) })
        func groupName(_ arm: String?) -> String { arm.map { arms[$0] ?? $0 } ?? "All participants" }
        let sessionName = r.session == .closed ? "Closed session (by arm)" : "Open session (arms pooled)"
        var h = "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
        h += "<title>DSMB report, \(e(sessionName.lowercased())) · \(e(study.code))</title><style>\(css)</style></head><body><main>"
        h += "<h1>Data monitoring committee report: \(e(sessionName.lowercased()))</h1>"
        h += "<p><strong>\(e(study.identity.title))</strong> (\(e(study.code)), definition version \(study.version)). Produced \(e(utc(r.generatedAt))).</p>"
        h += r.session == .closed
            ? "<p class=\"banner\" id=\"closed-banner\">Confidential: for the closed session of the data monitoring committee only. Results are shown by arm.</p>"
            : "<p class=\"banner\" id=\"open-banner\">Open session: every figure pools the arms.</p>"

        // Stopping rules first: what the committee must act on.
        h += "<h2 id=\"stopping\">Toxicity stopping rules</h2>"
        if r.stopping.isEmpty {
            h += "<p class=\"empty\">The definition names no stopping rule.</p>"
        }
        for s in r.stopping {
            let state = s.crossed ? "Boundary crossed" : "Boundary not crossed"
            h += "<section class=\"rule\" id=\"rule-\(e(s.code))\"><h3>\(e(s.name))</h3>"
            if s.crossed {
                let at = s.crossedAt.flatMap { k in s.crossedEvents.map { " at participant \(k): \($0) with the toxicity" + (s.crossedBoundary.map { ", boundary \($0)" } ?? "") } } ?? ""
                h += "<p class=\"alert\" role=\"alert\">\(e(state))\(at): the rule calls for the committee to consider stopping.</p>"
            }
            h += "<table><tbody>"
            h += "<tr><th scope=\"row\">Method</th><td>\(s.method == .bayes ? "Bayesian (Beta prior, posterior certainty)" : "Pocock-type (Ivanova)")</td></tr>"
            h += "<tr><th scope=\"row\">Unacceptable rate p0</th><td>\(number(s.p0, places: 3))</td></tr>"
            h += "<tr><th scope=\"row\">Certainty</th><td>\(number(s.certainty, places: 5))\(s.alpha.map { " (calibrated to α = \(number($0, places: 3)))" } ?? "")</td></tr>"
            h += "<tr><th scope=\"row\">Maximum participants</th><td>\(s.maxSampleSize)</td></tr>"
            if let n = s.n, let x = s.events {
                h += "<tr><th scope=\"row\">Now</th><td id=\"rule-now-\(e(s.code))\">\(x) of \(n) with the toxicity; stop if at least \(s.stopIfAtLeast.map(String.init) ?? "– (no stop possible yet)")</td></tr>"
            } else {
                h += "<tr><th scope=\"row\">Now</th><td>\(e(state)); the counts are for the closed session.</td></tr>"
            }
            h += "</tbody></table>"
            if let n = s.n, let x = s.events {
                h += "<figure>" + AnalysisCharts.stoppingBoundary(s.boundaries, maxSampleSize: s.maxSampleSize, observed: (n, x), title: "Stopping boundary: \(s.name)") + "</figure>"
            } else if !s.isMasked {
                h += "<figure>" + AnalysisCharts.stoppingBoundary(s.boundaries, maxSampleSize: s.maxSampleSize, observed: nil, title: "Stopping boundary: \(s.name)") + "</figure>"
            }
            h += "</section>"
        }

        h += "<h2 id=\"enrolment\">Enrolment</h2>"
        if r.enrolment.isEmpty {
            h += "<p class=\"empty\">No participant has been screened.</p>"
        } else {
            h += "<table id=\"enrolment-table\"><thead><tr><th scope=\"col\">Site</th><th scope=\"col\">Screened</th><th scope=\"col\">Randomized</th><th scope=\"col\">First randomized</th><th scope=\"col\">Latest randomized</th></tr></thead><tbody>"
            for row in r.enrolment {
                h += "<tr><td>\(e(row.site))</td><td class=\"n\">\(row.screened)</td><td class=\"n\">\(row.randomized)</td><td>\(row.firstRandomized.map { e(utc($0)) } ?? "–")</td><td>\(row.lastRandomized.map { e(utc($0)) } ?? "–")</td></tr>"
            }
            let screened = r.enrolment.reduce(0) { $0 + $1.screened }, randomized = r.enrolment.reduce(0) { $0 + $1.randomized }
            h += "<tr><th scope=\"row\">All sites</th><td class=\"n\">\(screened)</td><td class=\"n\">\(randomized)</td><td></td><td></td></tr></tbody></table>"
        }

        h += "<h2 id=\"consort\">Participant flow (CONSORT)</h2><figure>" + ConsortDiagram.svg(r.consort, title: "CONSORT flow diagram") + "</figure>"

        h += "<h2 id=\"completeness\">Data completeness</h2>"
        let dueRows = r.completeness.filter { $0.due > 0 }
        if dueRows.isEmpty {
            h += "<p class=\"empty\">No visit window has closed yet.</p>"
        } else {
            h += "<table id=\"completeness-table\"><thead><tr><th scope=\"col\">Visit</th><th scope=\"col\">Window closed</th><th scope=\"col\">With data</th><th scope=\"col\">Complete</th></tr></thead><tbody>"
            for row in dueRows {
                h += "<tr><td>\(e(row.name))</td><td class=\"n\">\(row.due)</td><td class=\"n\">\(row.withData)</td><td class=\"n\">\(percent(Double(row.withData) / Double(row.due)))</td></tr>"
            }
            h += "</tbody></table>"
        }

        h += "<h2 id=\"baseline\">Baseline characteristics</h2>" + baseline(r.baseline, groupName: groupName, study: study)
        h += "<h2 id=\"adverse-events\">Treatment-emergent adverse events</h2>" + adverseEvents(r.adverseEvents, groupName: groupName)
        h += "<h2 id=\"lab-shifts\">Laboratory shifts: baseline grade to worst grade after treatment started</h2>"
        // A test nobody has a value of is left out, not shown as a table of zeros.
        let measured = Set(r.labs.filter { t in t.groups.contains { g in g.visits.contains { $0.n > 0 } } }.map(\.test))
        if measured.isEmpty { h += "<p class=\"empty\">No laboratory value has been recorded.</p>" }
        for table in r.shifts where measured.contains(table.test) { h += shift(table, groupName: groupName, study: study) }
        h += "<h2 id=\"lab-values\">Laboratory values and change from baseline by visit</h2>"
        for table in r.labs where measured.contains(table.test) { h += labValues(table, groupName: groupName, study: study) }
        h += "<h2 id=\"endpoints\">Endpoints</h2>"
        for endpoint in r.endpoints where endpoint.method != nil { h += self.endpoint(endpoint, groupName: groupName) }
        h += "<p class=\"noprint\"><a href=\"/\">Back to Casebook</a></p></main></body></html>"
        return h
    }

    static func head(_ groups: [String]) -> String {
        "<thead><tr><th scope=\"col\"></th>" + groups.map { "<th scope=\"col\">\(e($0))</th>" }.joined() + "</tr></thead>"
    }

    static func tally(_ t: AdverseEventTally) -> String {
        "\(t.participants) (\(percent(t.proportion)))" + (t.events.map { "; \($0) event\($0 == 1 ? "" : "s")" } ?? "")
    }

    static func adverseEvents(_ table: AdverseEventTable, groupName: (String?) -> String) -> String {
        guard table.groups.contains(where: { $0.n > 0 }) else { return "<p class=\"empty\">No participant has been allocated.</p>" }
        var h = "<div class=\"scroll\"><table id=\"ae-summary\"><caption>Participants with at least one event, n (%); events</caption>"
        h += head(table.groups.map { "\(groupName($0.arm)) (N = \($0.n))" }) + "<tbody>"
        let rows: [(String, (AdverseEventGroup) -> AdverseEventTally?)] = [
            ("Any adverse event", { $0.any }), ("Serious", { $0.serious }), ("Related to treatment", { $0.related }),
            ("Grade 3 or higher", { $0.gradeAtLeast3 }), ("Fatal (grade 5)", { $0.fatal }), ("Leading to discontinuation", { $0.leadingToDiscontinuation }),
        ]
        for (label, pick) in rows {
            h += "<tr><th scope=\"row\">\(e(label))</th>" + table.groups.map { g in "<td class=\"n\">\(pick(g).map(tally) ?? "not recorded")</td>" }.joined() + "</tr>"
        }
        h += "</tbody></table></div>"
        // By organ class and term, with the worst grade.
        var socs: [String] = []
        for g in table.groups { for row in g.organClasses where !socs.contains(row.soc) { socs.append(row.soc) } }
        if socs.isEmpty { return h + "<p class=\"empty\">No treatment-emergent adverse event has been recorded.</p>" }
        h += "<div class=\"scroll\"><table id=\"ae-by-term\"><caption>By system organ class and term: participants n (%), and by worst grade 1 / 2 / 3 / 4 / 5</caption>"
        h += head(table.groups.map { "\(groupName($0.arm)) (N = \($0.n))" }) + "<tbody>"
        func cell(_ t: AdverseEventTally?) -> String {
            guard let t, t.participants > 0 else { return "<td class=\"n\">0</td>" }
            let grades = (t.worstGrades ?? []).map(String.init).joined(separator: " / ")
            return "<td class=\"n\">\(t.participants) (\(percent(t.proportion)))<br>\(grades)</td>"
        }
        for soc in socs {
            h += "<tr><th scope=\"row\">\(e(soc))</th>" + table.groups.map { g in cell(g.organClasses.first { $0.soc == soc }?.count) }.joined() + "</tr>"
            var terms: [(String, String)] = []
            for g in table.groups {
                for t in g.organClasses.first(where: { $0.soc == soc })?.terms ?? [] where !terms.contains(where: { $0.0 == t.meddra }) { terms.append((t.meddra, t.term)) }
            }
            for (meddra, term) in terms {
                h += "<tr><td>&#160;&#160;\(e(term))</td>" + table.groups.map { g in
                    cell(g.organClasses.first { $0.soc == soc }?.terms.first { $0.meddra == meddra }?.count)
                }.joined() + "</tr>"
            }
        }
        return h + "</tbody></table></div>"
    }

    static func baseline(_ groups: [BaselineGroup], groupName: (String?) -> String, study: StudyDefinition) -> String {
        guard groups.contains(where: { $0.n > 0 }) else { return "<p class=\"empty\">No participant has been allocated.</p>" }
        func summary(_ s: Summary?) -> String {
            guard let s else { return "–" }
            return "n = \(s.n): \(number(s.mean))" + (s.sd.map { " (\(number($0)))" } ?? "") + "; \(number(s.median)) (\(number(s.min))–\(number(s.max)))"
        }
        var h = "<div class=\"scroll\"><table id=\"baseline-table\"><caption>Mean (SD); median (range), or n (%)</caption>"
        h += head(groups.map { "\(groupName($0.arm)) (N = \($0.n))" }) + "<tbody>"
        h += "<tr><th scope=\"row\">Age at allocation (years)</th>" + groups.map { "<td>\(summary($0.age))</td>" }.joined() + "</tr>"
        let sexField = study.participant?.sex.flatMap(study.field(named:))?.field
        for choice in sexField?.choices ?? [] {
            h += "<tr><th scope=\"row\">\(e(sexField?.label ?? "Sex")): \(e(choice.label))</th>" + groups.map { g in
                let n = g.sex[choice.code] ?? 0
                return "<td class=\"n\">\(n) (\(percent(g.n > 0 ? Double(n) / Double(g.n) : nil)))</td>"
            }.joined() + "</tr>"
        }
        let tests = Array(Set(groups.flatMap { $0.labs.keys })).sorted()
        for test in tests {
            h += "<tr><th scope=\"row\">\(e(testName(test, study: study))) at baseline</th>" + groups.map { "<td>\(summary($0.labs[test]))</td>" }.joined() + "</tr>"
        }
        return h + "</tbody></table></div>"
    }

    static func testName(_ code: String, study: StudyDefinition) -> String {
        guard let test = study.labTest(code) else { return code }
        return "\(test.name) (\(test.unit))"
    }

    static func shift(_ table: ShiftTable, groupName: (String?) -> String, study: StudyDefinition) -> String {
        let name = testName(table.test, study: study)
        guard table.groups.contains(where: { $0.n > 0 }) else { return "<p class=\"empty\">\(e(name)): no participant has been allocated.</p>" }
        var h = "<div class=\"scroll\"><table class=\"shift\" id=\"shift-\(e(table.test))\"><caption>\(e(name)): CTCAE grade at baseline (rows) and worst grade after (columns)</caption>"
        let labels = ["0", "1", "2", "3", "4", "missing"]
        h += "<thead><tr><th scope=\"col\">Group</th><th scope=\"col\">Baseline</th>" + labels.map { "<th scope=\"col\">\($0)</th>" }.joined() + "<th scope=\"col\">Worsened</th></tr></thead><tbody>"
        for g in table.groups {
            for (b, label) in labels.enumerated() {
                let cells = (0..<labels.count).map { w in "<td class=\"n\">\(g.counts[b][w])</td>" }.joined()
                let first = b == 0 ? "<th scope=\"rowgroup\" rowspan=\"\(labels.count)\">\(e(groupName(g.arm))) (N = \(g.n))</th>" : ""
                let worsened = b == 0 ? "<td class=\"n\" rowspan=\"\(labels.count)\">\(g.worsened) of \(g.assessed) (\(percent(g.proportion)))</td>" : ""
                h += "<tr>\(first)<th scope=\"row\">\(label)</th>\(cells)\(worsened)</tr>"
            }
        }
        return h + "</tbody></table></div>"
    }

    static func labValues(_ table: LabVisitTable, groupName: (String?) -> String, study: StudyDefinition) -> String {
        let name = testName(table.test, study: study)
        let visits = study.visits
        let rows = table.groups.flatMap { g in g.visits.filter { $0.n > 0 }.map { (g, $0) } }
        guard !rows.isEmpty else { return "<p class=\"empty\">\(e(name)): no value has been recorded.</p>" }
        var h = "<div class=\"scroll\"><table class=\"lab-values\" id=\"labs-\(e(table.test))\"><caption>\(e(name)): n, mean (SD), median (range); change from baseline</caption>"
        h += "<thead><tr><th scope=\"col\">Group</th><th scope=\"col\">Visit</th><th scope=\"col\">n</th><th scope=\"col\">Value</th><th scope=\"col\">Change from baseline</th></tr></thead><tbody>"
        func summary(_ s: Summary?) -> String {
            guard let s else { return "–" }
            return "\(number(s.mean))" + (s.sd.map { " (\(number($0)))" } ?? "") + "; \(number(s.median)) (\(number(s.min))–\(number(s.max)))"
        }
        for (g, row) in rows {
            let visit = visits.first { $0.code == row.visit }?.name ?? row.visit
            h += "<tr><td>\(e(groupName(g.arm)))</td><td>\(e(visit))</td><td class=\"n\">\(row.n)</td><td>\(summary(row.value))</td><td>\(summary(row.change))</td></tr>"
        }
        return h + "</tbody></table></div>"
    }

    static func endpoint(_ r: EndpointResult, groupName: (String?) -> String) -> String {
        var h = "<section class=\"endpoint\" id=\"endpoint-\(e(r.code))\"><h3>\(e(r.kind.rawValue.capitalized)): \(e(r.measure))</h3><p>\(e(r.timeFrame))</p>"
        h += "<table><thead><tr><th scope=\"col\">Group</th><th scope=\"col\">n</th><th scope=\"col\">Result</th></tr></thead><tbody>"
        for g in r.groups {
            let result: String
            if let survival = g.survival {
                result = "Kaplan–Meier at day \(number(survival.at, places: 0)): \(number(survival.estimate, places: 3))"
                    + (survival.standardError.map { " (SE \(number($0, places: 3)))" } ?? "") + "; \(survival.events) events, \(survival.censored) censored"
                    + (g.curve?.median.map { "; median \(number($0, places: 1)) days" } ?? "; median not reached")
            } else if g.events != nil {
                // Worded as the safety page words them.
                result = SafetyPages.countedCells(g).joined(separator: "; ")
            } else {
                let cells = SafetyPages.summaryCells(g, unit: r.unit ?? "")
                result = g.summary == nil ? cells[0] : "mean \(cells[0]); median \(cells[1])"
            }
            h += "<tr><td>\(e(groupName(g.arm)))</td><td class=\"n\">\(g.n)</td><td>\(e(result))</td></tr>"
        }
        h += "</tbody></table>"
        if let test = r.logRank {
            h += "<p class=\"logrank\">Log-rank test across arms: χ² = \(number(test.chiSquare, places: 3)) on \(test.degreesOfFreedom) df, p = \(number(test.pValue, places: 4)).</p>"
        }
        let curves = r.groups.compactMap { g in g.curve.map { (label: groupName(g.arm), curve: $0) } }
        if !curves.isEmpty {
            // By arm when the arms are shown; the pooled curve otherwise.
            let shown = curves.count > 1 ? curves.dropFirst().filter { $0.curve.n > 0 } : curves
            h += "<figure>" + AnalysisCharts.kaplanMeier(shown, title: "Kaplan–Meier: \(r.measure)", xLabel: "Days", horizon: r.groups.first?.survival?.at) + "</figure>"
        }
        return h + "</section>"
    }
}

/// The report as the CLI writes it: the same document the page serves.
public enum ReportDocument {
    public static func dsmb(store: Store, study: StudyDefinition, scope: AccessScope, session: ReportSession, now: Date) async throws -> String {
        ReportHTML.document(try await Reports.dsmb(store: store, study: study, scope: scope, session: session, now: now), study: study)
    }
}
