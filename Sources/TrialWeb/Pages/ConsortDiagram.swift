import Foundation
import TrialDomain

/// The CONSORT flow diagram as a standalone SVG 1.1 document, laid out from counts alone.
///
/// Text is measured with a pessimistic estimate of common sans-serif fonts (no font files on the server), so labels
/// wrap a little early rather than overflow their boxes. The same flow and title always give the same bytes.
public enum ConsortDiagram {
    public static func svg(_ flow: ConsortFlow, title: String) -> String {
        let drawing = layout(flow, title: title)
        let summary = summary(drawing.flow)
        // Ids must be unique when several diagrams share a page; derived from the content to stay deterministic.
        let id = "consort-" + fingerprint(title + "\u{1F}" + summary)
        let w = drawing.width, h = drawing.height
        var out = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        out += "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"\(w)\" height=\"\(h)\" viewBox=\"0 0 \(w) \(h)\""
        out += " role=\"img\" aria-labelledby=\"\(id)-title \(id)-desc\" font-family=\"sans-serif\" font-size=\"\(Metric.font)\""
        out += " class=\"chart\">\n"
        out += "<title id=\"\(id)-title\">\(escape(title))</title>\n"
        out += "<desc id=\"\(id)-desc\">\(escape(summary))</desc>\n"
        out += "<defs><marker id=\"\(id)-arrow\" viewBox=\"0 0 10 10\" refX=\"10\" refY=\"5\" markerWidth=\"6\" markerHeight=\"6\" orient=\"auto\">"
        out += "<path d=\"M0,0 L10,5 L0,10 z\" fill=\"\(Palette.line)\"/></marker></defs>\n"
        // An opaque background keeps the text readable on dark pages and in print.
        out += "<rect x=\"0\" y=\"0\" width=\"\(w)\" height=\"\(h)\" fill=\"\(Palette.background)\"/>\n"
        for box in drawing.boxes { out += render(box) }
        // Connectors after boxes, so arrowheads sit on top of box outlines.
        for connector in drawing.connectors {
            let d = connector.points.enumerated().map { "\($0.offset == 0 ? "M" : "L")\($0.element.x),\($0.element.y)" }.joined(separator: " ")
            out += "<path d=\"\(d)\" fill=\"none\" stroke=\"\(Palette.line)\" stroke-width=\"1.5\""
            if connector.dashed { out += " stroke-dasharray=\"5 4\"" }
            if connector.arrow { out += " marker-end=\"url(#\(id)-arrow)\"" }
            out += "/>\n"
        }
        out += "</svg>\n"
        return out
    }
}

// MARK: - Layout (internal so tests can check geometry)

extension ConsortDiagram {
    enum Metric {
        static let margin = 16
        static let gutter = 140  // row labels on the left: "Randomization" in bold on one line
        static let gutterGap = 16
        static let column = 240  // one per arm
        static let armBox = 220
        static let mainBox = 220  // assessed, randomized
        static let excludedBox = 240
        static let font = 12
        static let lineHeight = 16
        static let padding = 8
        static let titleFont = 16
        static let titleLineHeight = 20
        static let step = 32  // between an arm's boxes
        static let indent = 12  // reasons under a bullet
    }

    enum Palette {
        static let background = "#ffffff"
        static let boxFill = "#ffffff"
        static let boxStroke = "#4d4d4d"
        static let text = "#1a1a1a"
        static let labelFill = "#dce8f4"
        static let labelStroke = "#4a6f96"
        static let labelText = "#0d2b4e"
        static let line = "#333333"
    }

    enum Kind: String, Sendable {
        case heading, rowLabel = "row-label", assessed, excluded, randomized, allocation, followUp = "follow-up", analysis
    }

    struct Line: Equatable, Sendable {
        var text: String
        /// From the box's inner left edge; ignored in centred boxes.
        var indent: Int
        var bold: Bool
    }

    struct Box: Equatable, Sendable {
        var kind: Kind
        /// Index into the flow's stages; nil for the heading and enrollment.
        var stage: Int?
        var x: Int
        var y: Int
        var width: Int
        var height: Int
        var lines: [Line]
        var centered: Bool

        var right: Int { x + width }
        var bottom: Int { y + height }
        var midX: Int { x + width / 2 }
        var midY: Int { y + height / 2 }

        func overlaps(_ other: Box) -> Bool { x < other.right && other.x < right && y < other.bottom && other.y < bottom }
    }

    struct Point: Equatable, Sendable {
        var x: Int
        var y: Int
    }

    struct Connector: Equatable, Sendable {
        var points: [Point]
        var arrow: Bool
        var dashed: Bool = false
    }

    struct Drawing: Sendable {
        var width: Int
        var height: Int
        var boxes: [Box]
        var connectors: [Connector]
        /// What was drawn: pooled if the given flow was blinded.
        var flow: ConsortFlow
    }

    static func layout(_ given: ConsortFlow, title: String) -> Drawing {
        typealias M = Metric
        // A blinded flow that still holds arms is pooled here, so no arm can reach the picture.
        let flow = given.pooled && given.stages.contains { $0.arms.count > 1 } ? given.pooled(label: "All randomized") : given
        let stages = flow.stages.isEmpty ? [ConsortStage(label: "Randomization", randomized: 0, arms: [])] : flow.stages
        let staged = stages.count > 1
        let maxArms = max(1, stages.map(\.arms.count).max() ?? 1)
        let contentLeft = M.margin + M.gutter + M.gutterGap
        let center = contentLeft + maxArms * M.column / 2
        let excludedX = center + M.mainBox / 2 + 30
        let width = max(contentLeft + maxArms * M.column, excludedX + M.excludedBox) + M.margin

        var boxes: [Box] = []
        var connectors: [Connector] = []
        func box(_ kind: Kind, stage: Int?, x: Int, y: Int, width: Int, lines: [Line], centered: Bool = false) -> Box {
            Box(kind: kind, stage: stage, x: x, y: y, width: width, height: 2 * M.padding + lines.count * M.lineHeight, lines: lines, centered: centered)
        }
        func centeredLines(_ text: String, width: Int, bold: Bool) -> [Line] {
            wrap(text, width: width - 2 * M.padding, size: M.font, bold: bold).map { Line(text: $0, indent: 0, bold: bold) }
        }
        func rowLabel(_ text: String, stage: Int?, top: Int, bottom: Int) {
            let lines = centeredLines(text, width: M.gutter, bold: true)
            let height = max(bottom - top, 2 * M.padding + lines.count * M.lineHeight)
            boxes.append(Box(kind: .rowLabel, stage: stage, x: M.margin, y: top, width: M.gutter, height: height, lines: lines, centered: true))
        }
        func arrow(_ from: Point, _ to: Point, dashed: Bool = false) { connectors.append(Connector(points: [from, to], arrow: true, dashed: dashed)) }
        func line(_ from: Point, _ to: Point, dashed: Bool = false) {
            if from != to { connectors.append(Connector(points: [from, to], arrow: false, dashed: dashed)) }
        }

        let titleLines = wrap(title, width: width - 2 * M.margin, size: M.titleFont, bold: true).map { Line(text: $0, indent: 0, bold: true) }
        let heading = Box(
            kind: .heading, stage: nil, x: M.margin, y: M.margin, width: width - 2 * M.margin, height: titleLines.count * M.titleLineHeight,
            lines: titleLines, centered: true)
        boxes.append(heading)

        let assessed = box(
            .assessed, stage: nil, x: center - M.mainBox / 2, y: heading.bottom + 16, width: M.mainBox,
            lines: centeredLines("Assessed for eligibility (n=\(flow.assessed))", width: M.mainBox, bold: true), centered: true)
        let inner = M.excludedBox - 2 * M.padding
        let excluded = box(
            .excluded, stage: nil, x: excludedX, y: assessed.bottom + 20, width: M.excludedBox,
            lines: item("Excluded (n=\(flow.excluded))", level: 0, bold: true, width: inner) + reasons(flow.excludedReasons, level: 1, width: inner))
        boxes += [assessed, excluded]
        arrow(Point(x: center, y: excluded.midY), Point(x: excluded.x, y: excluded.midY))

        // Where the previous stage's columns end; the next stage's randomization is fed from them.
        var tails: [Point] = []
        for (index, stage) in stages.enumerated() {
            var lines = staged ? centeredLines(stage.label, width: M.mainBox, bold: true) : []
            lines += centeredLines("Randomized (n=\(stage.randomized))", width: M.mainBox, bold: !staged)
            let randomized: Box
            if index == 0 {
                randomized = box(.randomized, stage: 0, x: center - M.mainBox / 2, y: excluded.bottom + 20, width: M.mainBox, lines: lines, centered: true)
                arrow(Point(x: center, y: assessed.bottom), Point(x: center, y: randomized.y))
                rowLabel("Enrollment", stage: nil, top: assessed.y, bottom: randomized.bottom)
            } else {
                // Dashed: only some of the stage before go on, so this is not a count carried down from the boxes above.
                let bus = (tails.map(\.y).max() ?? 0) + 20
                for tail in tails { line(tail, Point(x: tail.x, y: bus), dashed: true) }
                let xs = tails.map(\.x) + [center]
                line(Point(x: xs.min()!, y: bus), Point(x: xs.max()!, y: bus), dashed: true)
                randomized = box(.randomized, stage: index, x: center - M.mainBox / 2, y: bus + 20, width: M.mainBox, lines: lines, centered: true)
                arrow(Point(x: center, y: bus), Point(x: center, y: randomized.y), dashed: true)
                rowLabel("Randomization", stage: index, top: randomized.y, bottom: randomized.bottom)
            }
            boxes.append(randomized)
            tails = [Point(x: center, y: randomized.bottom)]
            guard !stage.arms.isEmpty else { continue }

            // Columns centred under the randomized box; the widest stage sets the canvas.
            let left = center - stage.arms.count * M.column / 2
            let xs = stage.arms.indices.map { left + $0 * M.column + (M.column - M.armBox) / 2 }
            let mids = xs.map { $0 + M.armBox / 2 }
            let bus = randomized.bottom + 20
            line(Point(x: center, y: randomized.bottom), Point(x: center, y: bus))
            line(Point(x: min(mids.min()!, center), y: bus), Point(x: max(mids.max()!, center), y: bus))
            for mid in mids { arrow(Point(x: mid, y: bus), Point(x: mid, y: bus + 20)) }

            let text = M.armBox - 2 * M.padding
            // Boxes of a row share one height so the rows line up across arms.
            func row(_ kind: Kind, y: Int, _ content: (ConsortArm) -> [Line]) -> [Box] {
                let lines = stage.arms.map(content)
                let height = 2 * M.padding + (lines.map(\.count).max() ?? 1) * M.lineHeight
                return zip(xs, lines).map { Box(kind: kind, stage: index, x: $0, y: y, width: M.armBox, height: height, lines: $1, centered: false) }
            }
            let allocation = row(.allocation, y: bus + 20) { arm in
                let head = flow.pooled ? "\(arm.name) (n=\(arm.allocated))" : "Allocated to \(arm.name) (n=\(arm.allocated))"
                return item(head, level: 0, bold: true, width: text)
                    + item("Received allocated intervention (n=\(arm.received))", level: 1, width: text)
                    + item("Did not receive allocated intervention (n=\(arm.notReceived))", level: 1, width: text)
                    + reasons(arm.notReceivedReasons, level: 2, width: text)
            }
            let followUp = row(.followUp, y: allocation[0].bottom + M.step) { arm in
                item("Lost to follow-up (n=\(arm.lostToFollowUp))", level: 0, width: text)
                    + reasons(arm.lostToFollowUpReasons, level: 1, width: text)
                    + item("Discontinued intervention (n=\(arm.discontinued))", level: 0, width: text)
                    + reasons(arm.discontinuedReasons, level: 1, width: text)
            }
            let analysis = row(.analysis, y: followUp[0].bottom + M.step) { arm in
                item("Analysed (n=\(arm.analysed))", level: 0, bold: true, width: text)
                    + item("Excluded from analysis (n=\(arm.excludedFromAnalysis))", level: 0, width: text)
                    + reasons(arm.excludedFromAnalysisReasons, level: 1, width: text)
            }
            for (upper, lower) in Array(zip(allocation, followUp)) + Array(zip(followUp, analysis)) {
                arrow(Point(x: upper.midX, y: upper.bottom), Point(x: lower.midX, y: lower.y))
            }
            boxes += allocation + followUp + analysis
            rowLabel("Allocation", stage: index, top: allocation[0].y, bottom: allocation[0].bottom)
            rowLabel("Follow-up", stage: index, top: followUp[0].y, bottom: followUp[0].bottom)
            rowLabel("Analysis", stage: index, top: analysis[0].y, bottom: analysis[0].bottom)
            tails = analysis.map { Point(x: $0.midX, y: $0.bottom) }
        }
        let height = (boxes.map(\.bottom).max() ?? 0) + M.margin
        return Drawing(width: width, height: height, boxes: boxes, connectors: connectors, flow: flow)
    }

    /// A wrapped entry; a bullet's continuation lines hang under its text, not under the bullet.
    static func item(_ text: String, level: Int, bold: Bool = false, width: Int) -> [Line] {
        let bullet = level == 0 ? "" : level == 1 ? "• " : "– "
        let indent = max(0, level - 1) * Metric.indent
        let hang = Int(textWidth(bullet, size: Metric.font, bold: bold).rounded(.up))
        return wrap(text, width: width - indent - hang, size: Metric.font, bold: bold).enumerated().map {
            $0.offset == 0 ? Line(text: bullet + $0.element, indent: indent, bold: bold) : Line(text: $0.element, indent: indent + hang, bold: bold)
        }
    }

    static func reasons(_ reasons: [ConsortReason], level: Int, width: Int) -> [Line] {
        reasons.flatMap { item("\($0.label) (n=\($0.n))", level: level, width: width) }
    }

    /// Greedy word wrap; a word longer than a line is cut wherever it must be.
    /// A count "(n=…)" keeps to the word before it, so it is never left alone on a line.
    /// "(n=…)" stays with the word before it when the two fit on a line.
    static func wrap(_ text: String, width: Int, size: Int, bold: Bool) -> [String] {
        var words: [String] = []
        for word in SVGText.words(text) {
            if word.hasPrefix("(n="), let last = words.last, textWidth(last + " " + word, size: size, bold: bold) <= Double(width) {
                words[words.count - 1] = last + " " + word
            } else {
                words.append(word)
            }
        }
        return SVGText.wrap(words, width: Double(width), size: size, bold: bold)
    }

    static func textWidth(_ text: String, size: Int, bold: Bool) -> Double { SVGText.width(text, size: size, bold: bold) }

    /// Every count and reason in words, for the `<desc>` a screen reader announces.
    static func summary(_ flow: ConsortFlow) -> String {
        func listed(_ reasons: [ConsortReason]) -> String {
            reasons.isEmpty ? "" : " (" + reasons.map { "\($0.label) n=\($0.n)" }.joined(separator: "; ") + ")"
        }
        let staged = flow.stages.count > 1
        var parts = ["CONSORT flow diagram."]
        var enrollment = "Enrollment: assessed for eligibility n=\(flow.assessed); excluded n=\(flow.excluded)\(listed(flow.excludedReasons));"
        enrollment += staged ? " \(flow.stages[0].label): randomized n=\(flow.randomized)." : " randomized n=\(flow.randomized)."
        parts.append(enrollment)
        for (index, stage) in flow.stages.enumerated() {
            if index > 0 { parts.append("\(stage.label): randomized n=\(stage.randomized).") }
            for arm in stage.arms {
                let head = flow.pooled ? "\(arm.name) n=\(arm.allocated)" : "Allocated to \(arm.name) n=\(arm.allocated)"
                parts.append(
                    "\(head): received allocated intervention n=\(arm.received);"
                        + " did not receive allocated intervention n=\(arm.notReceived)\(listed(arm.notReceivedReasons));"
                        + " lost to follow-up n=\(arm.lostToFollowUp)\(listed(arm.lostToFollowUpReasons));"
                        + " discontinued intervention n=\(arm.discontinued)\(listed(arm.discontinuedReasons));"
                        + " analysed n=\(arm.analysed); excluded from analysis n=\(arm.excludedFromAnalysis)\(listed(arm.excludedFromAnalysisReasons)).")
            }
        }
        return parts.joined(separator: " ")
    }

    static func render(_ box: Box) -> String {
        var out = ""
        let label = box.kind == .rowLabel
        if box.kind != .heading {
            out += "<rect class=\"consort-\(box.kind.rawValue)\" x=\"\(box.x)\" y=\"\(box.y)\" width=\"\(box.width)\" height=\"\(box.height)\" rx=\"4\""
            out += " fill=\"\(label ? Palette.labelFill : Palette.boxFill)\""
            out += " stroke=\"\(label ? Palette.labelStroke : Palette.boxStroke)\" stroke-width=\"1\"/>\n"
        }
        let (lineHeight, size) = box.kind == .heading ? (Metric.titleLineHeight, Metric.titleFont) : (Metric.lineHeight, Metric.font)
        // Centred boxes centre their text vertically too; others start at the top so a row's columns line up.
        let top = box.centered ? box.y + (box.height - box.lines.count * lineHeight) / 2 : box.y + Metric.padding
        for (index, line) in box.lines.enumerated() {
            let baseline = top + index * lineHeight + lineHeight * 3 / 4
            let x = box.centered ? box.midX : box.x + Metric.padding + line.indent
            out += "<text x=\"\(x)\" y=\"\(baseline)\" fill=\"\(label ? Palette.labelText : Palette.text)\""
            if box.centered { out += " text-anchor=\"middle\"" }
            if size != Metric.font { out += " font-size=\"\(size)\"" }
            if line.bold { out += " font-weight=\"bold\"" }
            out += ">\(escape(line.text))</text>\n"
        }
        return out
    }

    static func escape(_ text: String) -> String { SVGText.escape(text) }
    static func fingerprint(_ text: String) -> String { SVGText.fingerprint(text) }
}
