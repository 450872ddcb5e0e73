import Foundation
import TrialDomain

/// Analysis charts as standalone SVG 1.1 documents, in the house style of `ConsortDiagram`: `role="img"` with a
/// `<title>` and a plain-text `<desc>` for screen readers, escaped text, ids derived from the content (so the same input
/// always gives the same bytes and several charts can share a page), a viewBox that scales down, and colours whose text
/// reaches 4.5:1 against the white background. Groups differ in dash pattern as well as colour, so a chart still reads
/// in greyscale and for colour-blind viewers.
public enum AnalysisCharts {
    /// Kaplan–Meier curves, one per group: right-continuous steps, a "+" at every time with a censoring, the pointwise
    /// interval as a faint band (when `intervals` and the curve has one), the proportion event-free from 0 to 1 against
    /// days up to `max(horizon, last time)`, a legend, and the number at risk (time ≥ t) under each x tick.
    /// No groups, or no participants in any group, give a chart that says "No data".
    public static func kaplanMeier(
        _ curves: [(label: String, curve: SurvivalCurve)], title: String, xLabel: String, horizon: Double?, intervals: Bool = true
    ) -> String {
        let frame = kaplanMeierFrame(curves, title: title, horizon: horizon, intervals: intervals)
        let summary = kaplanMeierSummary(curves, xLabel: xLabel, horizon: horizon)
        let id = "km-" + fingerprint(title + "\u{1F}" + xLabel + "\u{1F}" + summary)
        var out = header(width: frame.width, height: frame.height, id: id, title: title, summary: summary)
        out += titleText(frame.titleLines)
        guard frame.hasData else {
            out += noData(frame.plot)
            return out + "</svg>\n"
        }
        let plot = frame.plot
        let x = frame.x, y = frame.y

        // Grid and axes.
        out += "<g class=\"km-grid\" stroke=\"\(Palette.grid)\" stroke-width=\"1\">\n"
        for tick in frame.yTicks { out += "<line x1=\"\(n(plot.left))\" y1=\"\(n(y(tick)))\" x2=\"\(n(plot.right))\" y2=\"\(n(y(tick)))\"/>\n" }
        out += "</g>\n"
        out += axes(plot)
        out += "<g class=\"km-y-ticks\" fill=\"\(Palette.text)\" text-anchor=\"end\">\n"
        for tick in frame.yTicks {
            out += "<text x=\"\(n(plot.left - 6))\" y=\"\(n(y(tick) + 4))\">\(number(tick, places: 2))</text>\n"
        }
        out += "</g>\n"
        out += "<g class=\"km-x-ticks\" fill=\"\(Palette.text)\" text-anchor=\"middle\">\n"
        for tick in frame.xTicks {
            out += "<line x1=\"\(n(x(tick)))\" y1=\"\(n(plot.bottom))\" x2=\"\(n(x(tick)))\" y2=\"\(n(plot.bottom + 5))\" stroke=\"\(Palette.axis)\"/>\n"
            out += "<text x=\"\(n(x(tick)))\" y=\"\(n(plot.bottom + 18))\">\(number(tick, places: 2))</text>\n"
        }
        out += "</g>\n"
        out += "<text class=\"km-x-label\" x=\"\(n((plot.left + plot.right) / 2))\" y=\"\(n(plot.bottom + 36))\" text-anchor=\"middle\""
        out += " fill=\"\(Palette.text)\">\(escape(xLabel))</text>\n"
        let yMid = (plot.top + plot.bottom) / 2
        out += "<text class=\"km-y-label\" x=\"\(Metric.margin + 10)\" y=\"\(n(yMid))\" text-anchor=\"middle\" fill=\"\(Palette.text)\""
        out += " transform=\"rotate(-90 \(Metric.margin + 10) \(n(yMid)))\">Proportion event-free</text>\n"

        // Bands first, so every line sits on top of every band.
        if intervals {
            for (index, group) in curves.enumerated() {
                guard let d = bandPath(group.curve, x: x, y: y) else { continue }
                let style = Style.of(index)
                out += "<path class=\"km-band\" d=\"\(d)\" fill=\"\(style.colour)\" fill-opacity=\"0.12\" stroke=\"none\"/>\n"
            }
        }
        for (index, group) in curves.enumerated() where group.curve.n > 0 {
            let style = Style.of(index)
            let points = stepPoints(group.curve).map { "\(n(x($0.days))),\(n(y($0.estimate)))" }
            out += "<path class=\"km-line\" id=\"\(id)-line-\(index)\" d=\"M\(points.joined(separator: " L"))\" fill=\"none\""
            out += " stroke=\"\(style.colour)\" stroke-width=\"2\"\(style.dashAttribute)/>\n"
            let marks = group.curve.steps.filter { $0.censored > 0 && $0.days.isFinite }.map { step -> String in
                let cx = x(step.days), cy = y(step.estimate), r = Metric.censorMark
                return "M\(n(cx - r)),\(n(cy)) L\(n(cx + r)),\(n(cy)) M\(n(cx)),\(n(cy - r)) L\(n(cx)),\(n(cy + r))"
            }
            if !marks.isEmpty {
                out += "<path class=\"km-censor\" d=\"\(marks.joined(separator: " "))\" fill=\"none\" stroke=\"\(style.colour)\" stroke-width=\"1.5\"/>\n"
            }
        }

        out += legend(frame.legend)

        // Number at risk: one row per group, a count under each x tick.
        out += "<text class=\"km-at-risk-heading\" x=\"\(Metric.margin)\" y=\"\(n(frame.riskHeading))\" font-weight=\"bold\""
        out += " fill=\"\(Palette.text)\">Number at risk</text>\n"
        for (index, group) in curves.enumerated() {
            let style = Style.of(index)
            let baseline = frame.riskRows[index]
            out += "<g class=\"km-at-risk-row\" fill=\"\(style.colour)\">\n"
            out += "<text class=\"km-at-risk-label\" x=\"\(n(plot.left - Metric.riskLabelGap))\" y=\"\(n(baseline))\" text-anchor=\"end\">"
            out += "\(escape(frame.riskLabels[index]))</text>\n"
            for tick in frame.xTicks {
                out += "<text class=\"km-at-risk\" x=\"\(n(x(tick)))\" y=\"\(n(baseline))\" text-anchor=\"middle\">"
                out += "\(atRisk(group.curve, at: tick))</text>\n"
            }
            out += "</g>\n"
        }
        return out + "</svg>\n"
    }

    /// A single-arm stopping rule: participants evaluated (0…`maxSampleSize`) across, participants with the event up.
    /// Each look's boundary is a horizontal step over its own n (n − ½ to n + ½, so consecutive looks join into a
    /// staircase); the stopping region, at or above it, is shaded; looks where no stop is possible have none, so the line
    /// starts at the first n that can stop and breaks where looks are apart. `observed` is marked "now: x of n".
    /// No boundaries, or a maximum below 1, give a chart that says "No data".
    public static func stoppingBoundary(
        _ boundaries: [StoppingBoundary], maxSampleSize: Int, observed: (n: Int, events: Int)?, title: String
    ) -> String {
        let frame = stoppingFrame(boundaries, maxSampleSize: maxSampleSize, observed: observed, title: title)
        let summary = stoppingSummary(boundaries, maxSampleSize: maxSampleSize, observed: observed)
        let id = "stop-" + fingerprint(title + "\u{1F}" + summary)
        var out = header(width: frame.width, height: frame.height, id: id, title: title, summary: summary)
        out += titleText(frame.titleLines)
        guard frame.hasData else {
            out += noData(frame.plot)
            return out + "</svg>\n"
        }
        let plot = frame.plot
        let x = frame.x, y = frame.y
        out += "<g class=\"stop-grid\" stroke=\"\(Palette.grid)\" stroke-width=\"1\">\n"
        for tick in frame.yTicks { out += "<line x1=\"\(n(plot.left))\" y1=\"\(n(y(tick)))\" x2=\"\(n(plot.right))\" y2=\"\(n(y(tick)))\"/>\n" }
        out += "</g>\n"

        // The region first, then the axes and the line over it.
        let runs = stoppingRuns(frame.boundaries, scale: x, limit: frame.x.domain.upper)
        let top = y.domain.upper
        if !runs.isEmpty {
            let d = runs.map { run -> String in
                let points = run.map { "\(n(x($0.n))),\(n(y($0.events)))" }
                let closing = ["\(n(x(run.last!.n))),\(n(y(top)))", "\(n(x(run.first!.n))),\(n(y(top)))"]
                return "M" + (points + closing).joined(separator: " L") + " Z"
            }.joined(separator: " ")
            out += "<path class=\"stop-region\" d=\"\(d)\" fill=\"\(Palette.stop)\" fill-opacity=\"0.15\" stroke=\"none\"/>\n"
        }
        out += axes(plot)
        out += "<g class=\"stop-y-ticks\" fill=\"\(Palette.text)\" text-anchor=\"end\">\n"
        for tick in frame.yTicks { out += "<text x=\"\(n(plot.left - 6))\" y=\"\(n(y(tick) + 4))\">\(number(tick, places: 0))</text>\n" }
        out += "</g>\n"
        out += "<g class=\"stop-x-ticks\" fill=\"\(Palette.text)\" text-anchor=\"middle\">\n"
        for tick in frame.xTicks {
            out += "<line x1=\"\(n(x(tick)))\" y1=\"\(n(plot.bottom))\" x2=\"\(n(x(tick)))\" y2=\"\(n(plot.bottom + 5))\" stroke=\"\(Palette.axis)\"/>\n"
            out += "<text x=\"\(n(x(tick)))\" y=\"\(n(plot.bottom + 18))\">\(number(tick, places: 0))</text>\n"
        }
        out += "</g>\n"
        out += "<text class=\"stop-x-label\" x=\"\(n((plot.left + plot.right) / 2))\" y=\"\(n(plot.bottom + 36))\" text-anchor=\"middle\""
        out += " fill=\"\(Palette.text)\">Participants evaluated</text>\n"
        let yMid = (plot.top + plot.bottom) / 2
        out += "<text class=\"stop-y-label\" x=\"\(Metric.margin + 10)\" y=\"\(n(yMid))\" text-anchor=\"middle\" fill=\"\(Palette.text)\""
        out += " transform=\"rotate(-90 \(Metric.margin + 10) \(n(yMid)))\">Participants with the event</text>\n"
        if !runs.isEmpty {
            let d = runs.map { "M" + $0.map { "\(n(x($0.n))),\(n(y($0.events)))" }.joined(separator: " L") }.joined(separator: " ")
            out += "<path class=\"stop-boundary\" d=\"\(d)\" fill=\"none\" stroke=\"\(Palette.stop)\" stroke-width=\"2.5\"/>\n"
        }

        if let observed {
            let cx = x(Double(observed.n)), cy = y(Double(observed.events))
            out += "<circle class=\"stop-observed\" cx=\"\(n(cx))\" cy=\"\(n(cy))\" r=\"5\" fill=\"\(Palette.observed)\" stroke=\"\(Palette.background)\""
            out += " stroke-width=\"1.5\"/>\n"
            // The label goes to the right of the point unless it would leave the plot there.
            let label = "now: \(observed.events) of \(observed.n)"
            let width = textWidth(label, size: Metric.font, bold: true)
            // A pale backing keeps it legible where it crosses the boundary or the region.
            let right = cx + 9 + width <= plot.right
            let textX = right ? cx + 9 : cx - 9, baseline = max(plot.top + 14, cy - 10)
            out += "<rect class=\"stop-observed-backing\" x=\"\(n(right ? textX - 2 : textX - width - 2))\" y=\"\(n(baseline - 12))\""
            out += " width=\"\(n(width + 4))\" height=\"16\" rx=\"2\" fill=\"\(Palette.background)\" fill-opacity=\"0.85\"/>\n"
            out += "<text class=\"stop-observed-label\" x=\"\(n(textX))\" y=\"\(n(baseline))\""
            out += "\(right ? "" : " text-anchor=\"end\"") font-weight=\"bold\" fill=\"\(Palette.text)\">\(escape(label))</text>\n"
        }
        out += legend(frame.legend)
        return out + "</svg>\n"
    }
}

// MARK: - Layout (internal so tests can check geometry)

extension AnalysisCharts {
    enum Metric {
        static let width = 720
        static let margin = 16
        static let font = 12
        static let titleFont = 16
        static let titleLineHeight = 20
        static let legendRow = 20
        static let legendSample = 28
        static let plotHeight = 280.0
        static let plotRightPad = 24.0
        static let minimumGutter = 56.0  // y tick labels and the rotated axis title
        static let maximumGutter = 180.0  // group names in the number-at-risk table are cut to this
        static let riskRow = 18.0
        /// Between a number-at-risk row's group name and the plot's left edge, where the counts under x = 0 are centred.
        static let riskLabelGap = 28.0
        /// Between the legend and the top of the plot, which holds the top y tick label.
        static let plotGap = 16.0
        static let censorMark = 4.0
        static let noDataHeight = 160.0
        /// An isolated look's boundary is drawn at least this far either side of its n, so it stays visible.
        static let minimumHalfStep = 4.0
    }

    enum Palette {
        static let background = "#ffffff"
        static let text = "#1a1a1a"
        static let axis = "#4d4d4d"
        static let grid = "#e3e3e3"
        static let stop = "#b3261e"
        static let observed = "#1a1a1a"
        /// Each at least 4.5:1 on white: the at-risk counts are written in them.
        static let groups = ["#0b5394", "#b45309", "#1e7b34", "#7b2d8e", "#a3175b", "#00636b"]
        static let dashes: [String?] = [nil, "8 4", "2 3", "10 3 2 3", "5 5", "12 3 2 3 2 3"]
    }

    /// Colour and dash of group `index`; past the sixth the pairs shift, so 36 groups stay distinct.
    struct Style: Equatable {
        var colour: String
        var dash: String?

        static func of(_ index: Int) -> Style {
            let k = Palette.groups.count
            return Style(colour: Palette.groups[index % k], dash: Palette.dashes[(index % k + index / k) % Palette.dashes.count])
        }

        var dashAttribute: String { dash.map { " stroke-dasharray=\"\($0)\"" } ?? "" }
    }

    /// Maps a data interval linearly onto a pixel interval (the y scales run upward, so their pixels fall).
    struct LinearScale {
        var domain: (lower: Double, upper: Double)
        var range: (lower: Double, upper: Double)

        func callAsFunction(_ value: Double) -> Double {
            let span = domain.upper - domain.lower
            guard span > 0 else { return range.lower }
            return range.lower + (value - domain.lower) / span * (range.upper - range.lower)
        }
    }

    struct Rect: Equatable {
        var left: Double
        var top: Double
        var right: Double
        var bottom: Double
    }

    enum LegendMark: Equatable {
        case group(Int)
        case censor
        case band(confidence: Double)
        case boundary
        case region
        case observed
    }

    struct LegendItem: Equatable {
        var mark: LegendMark
        var label: String
        var x: Double
        /// Text baseline.
        var y: Double
    }

    struct KaplanMeierFrame {
        var width: Int
        var height: Int
        var titleLines: [String]
        var legend: [LegendItem]
        var plot: Rect
        var x: LinearScale
        var y: LinearScale
        var xTicks: [Double]
        var yTicks: [Double]
        var riskHeading: Double
        /// Baseline of each group's number-at-risk row, in group order.
        var riskRows: [Double]
        var riskLabels: [String]
        var hasData: Bool
    }

    struct StoppingFrame {
        var width: Int
        var height: Int
        var titleLines: [String]
        var legend: [LegendItem]
        var plot: Rect
        var x: LinearScale
        var y: LinearScale
        var xTicks: [Double]
        var yTicks: [Double]
        /// The boundaries that can stop (count ≤ n, n ≥ 1), by n.
        var boundaries: [StoppingBoundary]
        var hasData: Bool
    }

    static func kaplanMeierFrame(
        _ curves: [(label: String, curve: SurvivalCurve)], title: String, horizon: Double?, intervals: Bool = true
    ) -> KaplanMeierFrame {
        let width = Double(Metric.width), margin = Double(Metric.margin)
        let titleLines = wrap(title, width: width - 2 * margin, size: Metric.titleFont, bold: true)
        let titleBottom = margin + Double(titleLines.count * Metric.titleLineHeight)
        let hasData = curves.contains { $0.curve.n > 0 }
        guard hasData else {
            let plot = Rect(left: margin, top: titleBottom + 8, right: width - margin, bottom: titleBottom + 8 + Metric.noDataHeight)
            let unit = LinearScale(domain: (0, 1), range: (0, 1))
            return KaplanMeierFrame(
                width: Metric.width, height: Int(plot.bottom + margin), titleLines: titleLines, legend: [], plot: plot, x: unit, y: unit,
                xTicks: [], yTicks: [], riskHeading: 0, riskRows: [], riskLabels: [], hasData: false)
        }

        // The gutter holds the y tick labels and, under the plot, the group names of the number-at-risk rows.
        let longest = curves.map { textWidth($0.label, size: Metric.font, bold: false) }.max() ?? 0
        let gutter = min(Metric.maximumGutter, max(Metric.minimumGutter, longest + Metric.riskLabelGap))
        let left = margin + gutter, right = width - Metric.plotRightPad
        let riskLabels = curves.map { truncate($0.label, width: gutter - Metric.riskLabelGap, size: Metric.font) }

        var items: [(LegendMark, String)] = curves.enumerated().map { (.group($0.offset), "\($0.element.label) (n=\($0.element.curve.n))") }
        if curves.contains(where: { $0.curve.censored > 0 }) { items.append((.censor, "Censored")) }
        if intervals, let banded = curves.first(where: { !bandRuns($0.curve).isEmpty }) {
            items.append((.band(confidence: banded.curve.confidence), "\(number(banded.curve.confidence * 100, places: 1))% pointwise interval"))
        }
        let (legend, legendBottom) = layoutLegend(items, left: margin, right: width - margin, top: titleBottom + 8)

        let plot = Rect(left: left, top: legendBottom + Metric.plotGap, right: right, bottom: legendBottom + Metric.plotGap + Metric.plotHeight)
        let times = curves.flatMap { $0.curve.steps.map(\.days) }.filter(\.isFinite)
        var lower = min(0, times.min() ?? 0)
        var upper = max(times.max() ?? 0, horizon.flatMap { $0.isFinite ? $0 : nil } ?? 0)
        if upper <= lower { upper = lower + 1 }
        let xTicks = niceTicks(lower, upper, target: 6, integers: false)
        lower = xTicks.first!
        upper = xTicks.last!
        let x = LinearScale(domain: (lower, upper), range: (plot.left, plot.right))
        let y = LinearScale(domain: (0, 1), range: (plot.bottom, plot.top))
        let riskHeading = plot.bottom + 62
        let riskRows = curves.indices.map { riskHeading + Double($0 + 1) * Metric.riskRow }
        let height = Int(((riskRows.last ?? riskHeading) + margin).rounded(.up))
        return KaplanMeierFrame(
            width: Metric.width, height: height, titleLines: titleLines, legend: legend, plot: plot, x: x, y: y, xTicks: xTicks,
            yTicks: [0, 0.25, 0.5, 0.75, 1], riskHeading: riskHeading, riskRows: riskRows, riskLabels: riskLabels, hasData: true)
    }

    static func stoppingFrame(_ given: [StoppingBoundary], maxSampleSize: Int, observed: (n: Int, events: Int)?, title: String) -> StoppingFrame {
        let width = Double(Metric.width), margin = Double(Metric.margin)
        let titleLines = wrap(title, width: width - 2 * margin, size: Metric.titleFont, bold: true)
        let titleBottom = margin + Double(titleLines.count * Metric.titleLineHeight)
        let boundaries = usable(given)
        guard maxSampleSize >= 1, !boundaries.isEmpty else {
            let plot = Rect(left: margin, top: titleBottom + 8, right: width - margin, bottom: titleBottom + 8 + Metric.noDataHeight)
            let unit = LinearScale(domain: (0, 1), range: (0, 1))
            return StoppingFrame(
                width: Metric.width, height: Int(plot.bottom + margin), titleLines: titleLines, legend: [], plot: plot, x: unit, y: unit,
                xTicks: [], yTicks: [], boundaries: [], hasData: false)
        }
        var items: [(LegendMark, String)] = [(.boundary, "Boundary: stop if at or above"), (.region, "Stopping region")]
        if observed != nil { items.append((.observed, "Observed now")) }
        let (legend, legendBottom) = layoutLegend(items, left: margin, right: width - margin, top: titleBottom + 8)
        let plot = Rect(left: margin + Metric.minimumGutter, top: legendBottom + Metric.plotGap, right: width - Metric.plotRightPad,
            bottom: legendBottom + Metric.plotGap + Metric.plotHeight)
        let upperN = max(maxSampleSize, boundaries.last!.n, observed?.n ?? 0)
        var xTicks = niceTicks(0, Double(upperN), target: 8, integers: true).filter { $0 <= Double(upperN) }
        if let last = xTicks.last, Double(upperN) - last >= (xTicks.count > 1 ? (xTicks[1] - xTicks[0]) / 2 : 1) { xTicks.append(Double(upperN)) }
        let highest = max(boundaries.map(\.stopIfAtLeast).max()!, observed?.events ?? 0) + 1
        let yTicks = niceTicks(0, Double(highest), target: 6, integers: true)
        let x = LinearScale(domain: (0, Double(upperN)), range: (plot.left, plot.right))
        let y = LinearScale(domain: (0, yTicks.last!), range: (plot.bottom, plot.top))
        return StoppingFrame(
            width: Metric.width, height: Int(plot.bottom + 44 + margin), titleLines: titleLines, legend: legend, plot: plot, x: x, y: y,
            xTicks: xTicks, yTicks: yTicks, boundaries: boundaries, hasData: true)
    }

    /// Looks that can stop the trial, by n; a count above n (or a look before the first participant) cannot and is dropped.
    static func usable(_ boundaries: [StoppingBoundary]) -> [StoppingBoundary] {
        var byN: [Int: StoppingBoundary] = [:]
        for b in boundaries where b.n >= 1 && b.stopIfAtLeast <= b.n { byN[b.n] = byN[b.n] ?? StoppingBoundary(n: b.n, stopIfAtLeast: max(0, b.stopIfAtLeast)) }
        return byN.values.sorted { $0.n < $1.n }
    }

    /// The boundary's vertices in data units, one list per run of consecutive looks: look n holds its count from
    /// n − ½ to n + ½, and the line rises half-way between looks. Ends are clipped to [0, `limit`] and kept at least
    /// `Metric.minimumHalfStep` pixels from the look.
    static func stoppingRuns(_ boundaries: [StoppingBoundary], scale: LinearScale, limit: Double) -> [[(n: Double, events: Double)]] {
        let perUnit = abs(scale(1) - scale(0))
        let half = max(0.5, perUnit > 0 ? Metric.minimumHalfStep / perUnit : 0.5)
        var runs: [[StoppingBoundary]] = []
        for b in boundaries {
            if let last = runs.last?.last, last.n + 1 == b.n { runs[runs.count - 1].append(b) } else { runs.append([b]) }
        }
        return runs.map { run in
            var points: [(n: Double, events: Double)] = [(max(0, Double(run[0].n) - half), Double(run[0].stopIfAtLeast))]
            for (a, b) in zip(run, run.dropFirst()) where a.stopIfAtLeast != b.stopIfAtLeast {
                points.append((Double(a.n) + 0.5, Double(a.stopIfAtLeast)))
                points.append((Double(a.n) + 0.5, Double(b.stopIfAtLeast)))
            }
            let last = run[run.count - 1]
            points.append((min(limit, Double(last.n) + half), Double(last.stopIfAtLeast)))
            return points
        }
    }

    /// Where the curve turns: from (start, 1) along each level to the next time the estimate changes, down, and on to
    /// the last time (an event or a censoring). Right-continuous: the estimate at an event time is the lower level.
    static func stepPoints(_ curve: SurvivalCurve) -> [(days: Double, estimate: Double)] {
        let steps = curve.steps.filter { $0.days.isFinite }
        guard let first = steps.first else { return [] }
        var points: [(days: Double, estimate: Double)] = [(min(0, first.days), 1)]
        var level = 1.0
        for step in steps where step.estimate != level {
            points.append((step.days, level))
            points.append((step.days, step.estimate))
            level = step.estimate
        }
        if let last = steps.last, points.last!.days != last.days { points.append((last.days, level)) }
        return points
    }

    /// The pointwise interval as closed polygons, one per run of steps that have one, each step's interval held to the next
    /// step; nil when there is nothing of any width to shade.
    static func bandPath(_ curve: SurvivalCurve, x: LinearScale, y: LinearScale) -> String? {
        let runs = bandRuns(curve)
        guard !runs.isEmpty else { return nil }
        return runs.map { run -> String in
            var points: [String] = []
            for part in run { points += ["\(n(x(part.from))),\(n(y(part.upper)))", "\(n(x(part.to))),\(n(y(part.upper)))"] }
            for part in run.reversed() { points += ["\(n(x(part.to))),\(n(y(part.lower)))", "\(n(x(part.from))),\(n(y(part.lower)))"] }
            return "M" + points.joined(separator: " L") + " Z"
        }.joined(separator: " ")
    }

    /// Runs of consecutive steps with an interval, each held from its time to the next step's; runs with no area are left out.
    static func bandRuns(_ curve: SurvivalCurve) -> [[(from: Double, to: Double, lower: Double, upper: Double)]] {
        let steps = curve.steps.filter { $0.days.isFinite }
        var runs: [[(from: Double, to: Double, lower: Double, upper: Double)]] = [[]]
        for (index, step) in steps.enumerated() {
            guard let lower = step.lower, let upper = step.upper, index + 1 < steps.count else {
                if !runs[runs.count - 1].isEmpty { runs.append([]) }
                continue
            }
            runs[runs.count - 1].append((step.days, steps[index + 1].days, lower, upper))
        }
        return runs.filter { run in run.contains { $0.upper > $0.lower && $0.to > $0.from } }
    }

    /// Participants at risk at `days`: everyone whose time (event or censoring) is `days` or later.
    static func atRisk(_ curve: SurvivalCurve, at days: Double) -> Int {
        curve.steps.first { $0.days >= days }?.atRisk ?? 0
    }

    /// Evenly spaced ticks of 1, 2, 2.5 or 5 × 10^k (2.5 left out for counts) covering [lower, upper], about `target` of them.
    static func niceTicks(_ lower: Double, _ upper: Double, target: Int, integers: Bool) -> [Double] {
        let raw = (upper - lower) / Double(max(1, target - 1))
        guard raw > 0, raw.isFinite else { return [lower, lower + 1] }
        var exponent = Int(floor(log10(raw)))
        let fraction = raw / pow(10, Double(exponent))
        var mantissa: Int  // in tenths: 10, 20, 25, 50
        if fraction <= 1 {
            mantissa = 10
        } else if fraction <= 2 {
            mantissa = 20
        } else if fraction <= 2.5, !(integers && exponent == 0) {
            mantissa = 25
        } else if fraction <= 5 {
            mantissa = 50
        } else {
            (mantissa, exponent) = (10, exponent + 1)
        }
        // Counts step by whole numbers.
        if integers, exponent < 0 { (mantissa, exponent) = (10, 0) }
        // A tick is an integer multiple of mantissa × 10^(exponent − 1), formed by one exact division so 0.3 is 0.3.
        let power = exponent - 1
        func value(_ i: Int) -> Double {
            let units = Double(i * mantissa)
            return power >= 0 ? units * pow(10, Double(power)) : units / pow(10, Double(-power))
        }
        let step = value(1)
        let first = Int(floor(lower / step + 1e-9)), last = Int(ceil(upper / step - 1e-9))
        return (first...max(first + 1, last)).map(value)
    }

    /// Lays items out in rows, wrapping at `right`; returns them and the bottom of the last row.
    static func layoutLegend(_ items: [(LegendMark, String)], left: Double, right: Double, top: Double) -> ([LegendItem], Double) {
        var placed: [LegendItem] = []
        var x = left, row = 0
        let sample = Double(Metric.legendSample) + 6
        for (mark, text) in items {
            let label = truncate(text, width: right - left - sample, size: Metric.font)
            let width = sample + textWidth(label, size: Metric.font, bold: false)
            if x > left, x + width > right {
                row += 1
                x = left
            }
            placed.append(LegendItem(mark: mark, label: label, x: x, y: top + Double(row * Metric.legendRow) + 14))
            x += width + 20
        }
        return (placed, top + Double((row + 1) * Metric.legendRow))
    }
}

// MARK: - Text for screen readers

extension AnalysisCharts {
    static func kaplanMeierSummary(_ curves: [(label: String, curve: SurvivalCurve)], xLabel: String, horizon: Double?) -> String {
        guard curves.contains(where: { $0.curve.n > 0 }) else { return "Kaplan–Meier plot: No data." }
        var parts = [
            "Kaplan–Meier plot of the proportion event-free (0 to 1) against \(xLabel), \(curves.count) \(curves.count == 1 ? "group" : "groups")."
        ]
        for group in curves {
            let curve = group.curve
            guard curve.n > 0 else {
                parts.append("\(group.label): no participants.")
                continue
            }
            var text = "\(group.label): n=\(curve.n), \(curve.events) \(curve.events == 1 ? "event" : "events"), \(curve.censored) censored; "
            text += curve.median.map { "median \(number($0, places: 2)) days" } ?? "median not reached"
            if let horizon, horizon.isFinite {
                let last = curve.steps.last { $0.days.isFinite }
                let at = number(horizon, places: 2)
                if let last, horizon > last.days, last.estimate > 0 {
                    text += "; not estimable at \(at) days (follow-up ends at \(number(last.days, places: 2)) days)"
                } else {
                    let estimate = curve.estimate(at: horizon).estimate
                    text += "; at \(at) days \(number(estimate, places: 2))"
                    if let step = curve.step(at: horizon), let lower = step.lower, let upper = step.upper, upper > lower {
                        text += " (\(number(curve.confidence * 100, places: 1))% CI \(number(lower, places: 2)) to \(number(upper, places: 2)))"
                    }
                }
            }
            parts.append(text + ".")
        }
        return parts.joined(separator: " ")
    }

    static func stoppingSummary(_ given: [StoppingBoundary], maxSampleSize: Int, observed: (n: Int, events: Int)?) -> String {
        let boundaries = usable(given)
        guard maxSampleSize >= 1, !boundaries.isEmpty else { return "Stopping boundary: No data." }
        // Looks with the same count in a row read as one range.
        var ranges: [(from: Int, to: Int, count: Int)] = []
        for b in boundaries {
            if let last = ranges.last, last.count == b.stopIfAtLeast, last.to + 1 == b.n {
                ranges[ranges.count - 1].to = b.n
            } else {
                ranges.append((b.n, b.n, b.stopIfAtLeast))
            }
        }
        let listed = ranges.map { r in
            (r.from == r.to ? "at \(r.from)" : "from \(r.from) to \(r.to)") + " evaluated, \(r.count) or more with the event"
        }.joined(separator: "; ")
        var text = "Stopping boundary for up to \(maxSampleSize) participants evaluated. Stop \(listed)."
        if let observed {
            text += " Now \(observed.events) with the event of \(observed.n) evaluated; "
            if let b = boundaries.first(where: { $0.n == observed.n }) {
                text += "the boundary at \(observed.n) is \(b.stopIfAtLeast): "
                text += observed.events >= b.stopIfAtLeast ? "crossed, the stopping rule is met." : "not crossed."
            } else if let next = boundaries.first(where: { $0.n > observed.n }) {
                text += "no stop is possible at \(observed.n); not crossed. Next boundary at \(next.n): \(next.stopIfAtLeast)."
            } else {
                text += "no stop is possible at \(observed.n); not crossed."
            }
        }
        return text
    }
}

// MARK: - Drawing pieces

extension AnalysisCharts {
    static func header(width: Int, height: Int, id: String, title: String, summary: String) -> String {
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        out += "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"\(width)\" height=\"\(height)\" viewBox=\"0 0 \(width) \(height)\""
        out += " role=\"img\" aria-labelledby=\"\(id)-title \(id)-desc\" font-family=\"sans-serif\" font-size=\"\(Metric.font)\""
        out += " class=\"chart\">\n"
        out += "<title id=\"\(id)-title\">\(escape(title))</title>\n"
        out += "<desc id=\"\(id)-desc\">\(escape(summary))</desc>\n"
        // An opaque background keeps the text readable on dark pages and in print.
        out += "<rect x=\"0\" y=\"0\" width=\"\(width)\" height=\"\(height)\" fill=\"\(Palette.background)\"/>\n"
        return out
    }

    static func titleText(_ lines: [String]) -> String {
        lines.enumerated().map { index, line in
            let baseline = Metric.margin + index * Metric.titleLineHeight + Metric.titleLineHeight * 3 / 4
            return "<text class=\"chart-title\" x=\"\(Metric.width / 2)\" y=\"\(baseline)\" text-anchor=\"middle\" font-size=\"\(Metric.titleFont)\""
                + " font-weight=\"bold\" fill=\"\(Palette.text)\">\(escape(line))</text>\n"
        }.joined()
    }

    static func noData(_ box: Rect) -> String {
        var out = "<rect class=\"chart-no-data\" x=\"\(n(box.left))\" y=\"\(n(box.top))\" width=\"\(n(box.right - box.left))\""
        out += " height=\"\(n(box.bottom - box.top))\" fill=\"none\" stroke=\"\(Palette.axis)\" stroke-dasharray=\"4 4\"/>\n"
        out += "<text x=\"\(n((box.left + box.right) / 2))\" y=\"\(n((box.top + box.bottom) / 2 + 5))\" text-anchor=\"middle\" font-size=\"14\""
        out += " fill=\"\(Palette.text)\">No data</text>\n"
        return out
    }

    static func axes(_ plot: Rect) -> String {
        "<path class=\"chart-axes\" d=\"M\(n(plot.left)),\(n(plot.top)) L\(n(plot.left)),\(n(plot.bottom)) L\(n(plot.right)),\(n(plot.bottom))\""
            + " fill=\"none\" stroke=\"\(Palette.axis)\" stroke-width=\"1\"/>\n"
    }

    static func legend(_ items: [LegendItem]) -> String {
        guard !items.isEmpty else { return "" }
        var out = "<g class=\"chart-legend\">\n"
        for item in items {
            let x0 = item.x, x1 = item.x + Double(Metric.legendSample), mid = item.y - 4
            switch item.mark {
            case .group(let index):
                let style = Style.of(index)
                out += "<line x1=\"\(n(x0))\" y1=\"\(n(mid))\" x2=\"\(n(x1))\" y2=\"\(n(mid))\" stroke=\"\(style.colour)\" stroke-width=\"2\"\(style.dashAttribute)/>\n"
            case .censor:
                let cx = (x0 + x1) / 2, r = Metric.censorMark
                out += "<path d=\"M\(n(cx - r)),\(n(mid)) L\(n(cx + r)),\(n(mid)) M\(n(cx)),\(n(mid - r)) L\(n(cx)),\(n(mid + r))\" stroke=\"\(Palette.text)\""
                out += " stroke-width=\"1.5\"/>\n"
            case .band:
                out += "<rect x=\"\(n(x0))\" y=\"\(n(mid - 6))\" width=\"\(Metric.legendSample)\" height=\"12\" fill=\"\(Palette.axis)\" fill-opacity=\"0.2\"/>\n"
            case .boundary:
                out += "<line x1=\"\(n(x0))\" y1=\"\(n(mid))\" x2=\"\(n(x1))\" y2=\"\(n(mid))\" stroke=\"\(Palette.stop)\" stroke-width=\"2.5\"/>\n"
            case .region:
                out += "<rect x=\"\(n(x0))\" y=\"\(n(mid - 6))\" width=\"\(Metric.legendSample)\" height=\"12\" fill=\"\(Palette.stop)\" fill-opacity=\"0.15\"/>\n"
            case .observed:
                out += "<circle cx=\"\(n((x0 + x1) / 2))\" cy=\"\(n(mid))\" r=\"5\" fill=\"\(Palette.observed)\"/>\n"
            }
            out += "<text x=\"\(n(x1 + 6))\" y=\"\(n(item.y))\" fill=\"\(Palette.text)\">\(escape(item.label))</text>\n"
        }
        return out + "</g>\n"
    }
}

// MARK: - Text and numbers

extension AnalysisCharts {
    /// A coordinate: two decimals at most, no trailing zeros, never "-0".
    static func n(_ value: Double) -> String { number(value, places: 2) }

    /// `value` rounded to `places` decimals, trailing zeros dropped; not locale-dependent.
    static func number(_ value: Double, places: Int) -> String {
        guard value.isFinite else { return value.isNaN ? "NaN" : (value < 0 ? "-∞" : "∞") }
        let scale = pow(10, Double(places))
        let rounded = (value * scale).rounded() / scale
        if rounded == 0 { return "0" }
        if rounded == rounded.rounded(), abs(rounded) < 1e15 { return String(Int(rounded)) }
        var text = String(format: "%.\(places)f", rounded)
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text
    }

    /// Greedy word wrap; a word longer than a line is cut wherever it must be.
    static func wrap(_ text: String, width: Double, size: Int, bold: Bool) -> [String] {
        SVGText.wrap(SVGText.words(text), width: width, size: size, bold: bold)
    }

    /// `text`, cut with an ellipsis if it is wider than `width`.
    static func truncate(_ text: String, width: Double, size: Int) -> String {
        guard textWidth(text, size: size, bold: false) > width else { return text }
        var cut = ""
        for character in text {
            if textWidth(cut + String(character) + "…", size: size, bold: false) > width { break }
            cut.append(character)
        }
        return cut + "…"
    }

    static func textWidth(_ text: String, size: Int, bold: Bool) -> Double { SVGText.width(text, size: size, bold: bold) }
    static func escape(_ text: String) -> String { SVGText.escape(text) }
    static func fingerprint(_ text: String) -> String { SVGText.fingerprint(text) }
}
