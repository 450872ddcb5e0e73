import Foundation
import TrialDomain
@testable import TrialWeb
import XCTest

extension ParsedSVG {
    func rects(_ kind: String) -> Int { named("rect").filter { $0.attributes["class"] == "consort-\(kind)" }.count }
}

private func reason(_ label: String, _ n: Int) -> ConsortReason { ConsortReason(label: label, n: n) }

/// An arm whose counts add up.
private func arm(_ index: Int, allocated: Int = 50, name: String? = nil) -> ConsortArm {
    ConsortArm(
        code: "CODE\(index)X", name: name ?? "Arm number \(index)", allocated: allocated, received: allocated - 2, notReceived: 2,
        notReceivedReasons: [reason("Withdrew before first dose \(index)", 2)],
        lostToFollowUp: 3, lostToFollowUpReasons: [reason("Moved away", 1), reason("Could not be contacted \(index)", 2)],
        discontinued: 4, discontinuedReasons: [reason("Adverse event", 4)],
        analysed: allocated - 1, excludedFromAnalysis: 1, excludedFromAnalysisReasons: [reason("No baseline measurement", 1)])
}

private func flow(arms count: Int) -> ConsortFlow {
    let arms = (1...count).map { arm($0, allocated: 40 + $0) }
    let randomized = arms.reduce(0) { $0 + $1.allocated }
    return ConsortFlow(
        assessed: randomized + 37, excluded: 37,
        excludedReasons: [reason("Not meeting inclusion criteria", 21), reason("Declined to participate", 11), reason("Other reasons", 5)],
        randomized: randomized, arms: arms)
}

/// Stage one's analysed go on to a second randomization of three arms.
private func twoStages() -> ConsortFlow {
    var flow = flow(arms: 2)
    flow.stages[0].label = "First randomization"
    flow.stages.append(
        ConsortStage(label: "Second randomization", randomized: 33, arms: [arm(7, allocated: 11), arm(8, allocated: 11), arm(9, allocated: 11)]))
    return flow
}

/// WCAG 2 contrast ratio of two #rrggbb colours.
private func contrast(_ a: String, _ b: String) -> Double {
    func luminance(_ hex: String) -> Double {
        let value = Int(hex.dropFirst(), radix: 16)!
        let channels = [(value >> 16) & 0xFF, (value >> 8) & 0xFF, value & 0xFF].map { c -> Double in
            let s = Double(c) / 255
            return s <= 0.03928 ? s / 12.92 : pow((s + 0.055) / 1.055, 2.4)
        }
        return 0.2126 * channels[0] + 0.7152 * channels[1] + 0.0722 * channels[2]
    }
    let (l1, l2) = (luminance(a), luminance(b))
    return (max(l1, l2) + 0.05) / (min(l1, l2) + 0.05)
}

final class ConsortDiagramTests: XCTestCase {
    func testIsAnAccessibleStandaloneSVG() throws {
        let svg = ConsortDiagram.svg(flow(arms: 2), title: "Participant flow")
        XCTAssertTrue(svg.hasPrefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg "))
        let parsed = try ParsedSVG.parse(svg)
        let root = try XCTUnwrap(parsed.elements.first)
        XCTAssertEqual(root.name, "svg")
        XCTAssertEqual(root.attributes["xmlns"], "http://www.w3.org/2000/svg")
        XCTAssertEqual(root.attributes["version"], "1.1")
        XCTAssertEqual(root.attributes["role"], "img")
        XCTAssertEqual(root.attributes["font-family"], "sans-serif")
        let width = try XCTUnwrap(root.attributes["width"]), height = try XCTUnwrap(root.attributes["height"])
        XCTAssertEqual(root.attributes["viewBox"], "0 0 \(width) \(height)")
        XCTAssertGreaterThan(Int(width) ?? 0, 0)
        XCTAssertGreaterThan(Int(height) ?? 0, 0)

        // title and desc come first and are what aria-labelledby names.
        XCTAssertEqual(parsed.elements[1].name, "title")
        XCTAssertEqual(parsed.elements[2].name, "desc")
        XCTAssertEqual(parsed.elements[1].text, "Participant flow")
        XCTAssertTrue(parsed.elements[2].text.hasPrefix("CONSORT flow diagram."))
        let ids = try XCTUnwrap(root.attributes["aria-labelledby"]).split(separator: " ").map(String.init)
        XCTAssertEqual(ids, [parsed.elements[1].attributes["id"], parsed.elements[2].attributes["id"]].compactMap { $0 })

        // Arrows point at a marker that exists.
        let marker = try XCTUnwrap(parsed.named("marker").first?.attributes["id"])
        XCTAssertTrue(parsed.named("path").contains { $0.attributes["marker-end"] == "url(#\(marker))" })

        for row in ["Enrollment", "Allocation", "Follow-up", "Analysis"] {
            XCTAssertTrue(parsed.named("text").contains { $0.text == row }, row)
        }
    }

    func testShowsEveryCountAndReason() throws {
        for flow in [flow(arms: 3), twoStages()] {
            let parsed = try ParsedSVG.parse(ConsortDiagram.svg(flow, title: "Flow"))
            let drawn = parsed.drawn, desc = parsed.named("desc")[0].text
            var counts = [flow.assessed, flow.excluded] + flow.excludedReasons.map(\.n)
            var labels = flow.excludedReasons.map(\.label)
            for stage in flow.stages {
                counts.append(stage.randomized)
                for arm in stage.arms {
                    counts += [arm.allocated, arm.received, arm.notReceived, arm.lostToFollowUp, arm.discontinued, arm.analysed, arm.excludedFromAnalysis]
                    let reasons = arm.notReceivedReasons + arm.lostToFollowUpReasons + arm.discontinuedReasons + arm.excludedFromAnalysisReasons
                    counts += reasons.map(\.n)
                    labels += reasons.map(\.label) + [arm.name]
                }
            }
            for n in counts {
                XCTAssertTrue(drawn.contains("(n=\(n))"), "drawn n=\(n)")
                XCTAssertTrue(desc.contains("n=\(n)"), "desc n=\(n)")
            }
            for label in labels {
                XCTAssertTrue(drawn.contains(label), "drawn \(label)")
                XCTAssertTrue(desc.contains(label), "desc \(label)")
            }
        }
    }

    func testEscapesLabels() throws {
        var flow = flow(arms: 2)
        flow.arms[0].name = "Dose <10 mg & \"low\""
        flow.arms[1].notReceivedReasons = [reason("Rash <grade 3> & 'other'", 2)]
        // A control character, which XML cannot hold at all, and a line break.
        flow.excludedReasons[2].label = "Other\u{7}\nreasons"
        let title = "Trial <A> & \"B\""
        let svg = ConsortDiagram.svg(flow, title: title)
        XCTAssertFalse(svg.contains("<10"))
        XCTAssertFalse(svg.contains("<grade"))
        XCTAssertFalse(svg.contains("\u{7}"))
        XCTAssertTrue(svg.contains("&lt;10 mg &amp; &quot;low&quot;"))
        XCTAssertTrue(svg.contains("&lt;grade"))

        let parsed = try ParsedSVG.parse(svg)
        XCTAssertEqual(parsed.named("title")[0].text, title)
        let desc = parsed.named("desc")[0].text
        XCTAssertTrue(desc.contains("Allocated to Dose <10 mg & \"low\" n=41"))
        XCTAssertTrue(desc.contains("Rash <grade 3> & 'other' n=2"))
        XCTAssertTrue(parsed.drawn.contains("Rash <grade 3> & 'other' (n=2)"))
    }

    func testOneColumnPerArmAndWidthGrowsWithArms() throws {
        var widths: [Int] = []
        for count in 1...8 {
            let svg = ConsortDiagram.svg(flow(arms: count), title: "Flow")
            let parsed = try ParsedSVG.parse(svg)
            for kind in ["allocation", "follow-up", "analysis"] { XCTAssertEqual(parsed.rects(kind), count, "\(kind) with \(count) arms") }
            XCTAssertEqual(parsed.rects("assessed"), 1)
            XCTAssertEqual(parsed.rects("excluded"), 1)
            XCTAssertEqual(parsed.rects("randomized"), 1)
            let xs = Set(parsed.named("rect").filter { $0.attributes["class"] == "consort-allocation" }.compactMap { $0.attributes["x"] })
            XCTAssertEqual(xs.count, count)
            widths.append(Int(parsed.elements[0].attributes["width"] ?? "") ?? 0)
        }
        XCTAssertEqual(widths, widths.sorted())
        XCTAssertGreaterThan(widths[7], widths[0])
        XCTAssertGreaterThan(widths[7], widths[3])
    }

    func testPooledShowsOneColumnAndNoArms() throws {
        var blinded = flow(arms: 3)
        blinded.pooled = true  // not pooled by the caller: the diagram must still hide the arms
        for flow in [flow(arms: 3).pooled(label: "All randomized"), blinded] {
            let svg = ConsortDiagram.svg(flow, title: "Flow")
            let parsed = try ParsedSVG.parse(svg)
            for index in 1...3 {
                XCTAssertFalse(svg.contains("Arm number \(index)"))
                XCTAssertFalse(svg.contains("CODE\(index)X"))
                // Reasons naming an arm's index stay (they are data), but appear merged in one column.
            }
            XCTAssertFalse(svg.contains("Allocated to"))
            XCTAssertEqual(parsed.rects("allocation"), 1)
            XCTAssertTrue(parsed.drawn.contains("All randomized (n=126)"))
            XCTAssertTrue(parsed.named("desc")[0].text.contains("All randomized n=126"))
            XCTAssertTrue(parsed.drawn.contains("Adverse event (n=12)"))
        }
    }

    func testNoTwoBoxesOverlapAndTextFits() {
        var long = flow(arms: 4)
        long.arms[1].name = "A rather long arm name that will need several lines to fit inside its column"
        long.arms[2].discontinuedReasons = [reason("Supercalifragilisticexpialidociouslylongwordwithoutspaces", 4)]
        long.excludedReasons.append(reason("Lived too far from the study site to attend the weekly visits the protocol asks for", 0))
        var empty = ConsortFlow(assessed: 3, excluded: 3, stages: [])
        empty.excludedReasons = [reason("Not meeting inclusion criteria", 3)]
        let flows = (1...8).map { flow(arms: $0) } + [long, twoStages(), twoStages().pooled(label: "All randomized"), empty]
        for (number, flow) in flows.enumerated() {
            let drawing = ConsortDiagram.layout(flow, title: "A title long enough that it has to wrap on the narrowest canvas, which holds a single arm")
            let boxes = drawing.boxes
            for i in boxes.indices {
                let box = boxes[i]
                XCTAssertTrue(box.x >= 0 && box.y >= 0 && box.right <= drawing.width && box.bottom <= drawing.height, "flow \(number): \(box.kind) off canvas")
                for j in boxes.indices where j > i {
                    XCTAssertFalse(box.overlaps(boxes[j]), "flow \(number): \(box.kind) overlaps \(boxes[j].kind)")
                }
                if box.kind == .rowLabel { XCTAssertEqual(box.lines.count, 1, "row label \(box.lines.map(\.text)) is broken") }
                for line in box.lines where line.text.hasPrefix("(n=") { XCTFail("flow \(number): count alone on a line in \(box.kind)") }
                let size = box.kind == .heading ? ConsortDiagram.Metric.titleFont : ConsortDiagram.Metric.font
                let room = box.kind == .heading ? box.width : box.width - 2 * ConsortDiagram.Metric.padding
                for line in box.lines {
                    let width = Double(line.indent) + ConsortDiagram.textWidth(line.text, size: size, bold: line.bold)
                    XCTAssertLessThanOrEqual(width, Double(room), "flow \(number): \"\(line.text)\" overflows")
                }
            }
        }
    }

    func testWrapsAtSpacesAndCutsOnlyOverlongWords() {
        let lines = ConsortDiagram.wrap("Discontinued intervention (n=4)", width: 160, size: 12, bold: false)
        XCTAssertEqual(lines, ["Discontinued", "intervention (n=4)"])
        let cut = ConsortDiagram.wrap("Pneumonoultramicroscopicsilicovolcanoconiosis", width: 100, size: 12, bold: false)
        XCTAssertGreaterThan(cut.count, 1)
        XCTAssertEqual(cut.joined(), "Pneumonoultramicroscopicsilicovolcanoconiosis")
        XCTAssertEqual(ConsortDiagram.wrap("", width: 100, size: 12, bold: false), [""])
    }

    func testSecondStageIsDrawnBelowTheFirst() throws {
        let drawing = ConsortDiagram.layout(twoStages(), title: "Flow")
        let first = drawing.boxes.filter { $0.stage == 0 || ($0.stage == nil && $0.kind != .rowLabel) }
        let second = drawing.boxes.filter { $0.stage == 1 }
        XCTAssertEqual(second.filter { $0.kind == .allocation }.count, 3)
        XCTAssertEqual(second.filter { $0.kind == .randomized }.count, 1)
        XCTAssertLessThan(try XCTUnwrap(first.map(\.bottom).max()), try XCTUnwrap(second.map(\.y).min()))
        let parsed = try ParsedSVG.parse(ConsortDiagram.svg(twoStages(), title: "Flow"))
        XCTAssertTrue(parsed.drawn.contains("First randomization"))
        XCTAssertTrue(parsed.drawn.contains("Second randomization Randomized (n=33)"))
    }

    func testTextColoursContrast() throws {
        typealias P = ConsortDiagram.Palette
        XCTAssertGreaterThanOrEqual(contrast(P.text, P.boxFill), 4.5)
        XCTAssertGreaterThanOrEqual(contrast(P.text, P.background), 4.5)
        XCTAssertGreaterThanOrEqual(contrast(P.labelText, P.labelFill), 4.5)
        // Non-text outlines and arrows: 3:1 (WCAG 1.4.11).
        XCTAssertGreaterThanOrEqual(contrast(P.line, P.background), 3)
        XCTAssertGreaterThanOrEqual(contrast(P.boxStroke, P.background), 3)
        let parsed = try ParsedSVG.parse(ConsortDiagram.svg(twoStages(), title: "Flow"))
        for text in parsed.named("text") { XCTAssertTrue([P.text, P.labelText].contains(text.attributes["fill"] ?? ""), text.text) }
    }

    func testIsDeterministic() {
        XCTAssertEqual(ConsortDiagram.svg(twoStages(), title: "Flow"), ConsortDiagram.svg(twoStages(), title: "Flow"))
        XCTAssertNotEqual(ConsortDiagram.svg(twoStages(), title: "Flow"), ConsortDiagram.svg(twoStages(), title: "Other flow"))
    }
}
