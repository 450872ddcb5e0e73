import Foundation
import Testing
import TrialDomain
@testable import TrialWeb

private struct Pixel: Equatable {
    var x: Double
    var y: Double
}

/// The subpaths of a path written as "Mx,y Lx,y … [Z]", the only commands the charts use.
private func subpaths(_ d: String) -> [[Pixel]] {
    var result: [[Pixel]] = []
    for token in d.split(separator: " ") {
        guard let command = token.first, command != "Z" else { continue }
        let numbers = token.dropFirst().split(separator: ",").compactMap { Double($0) }
        guard numbers.count == 2 else { continue }
        if command == "M" { result.append([]) }
        result[result.count - 1].append(Pixel(x: numbers[0], y: numbers[1]))
    }
    return result
}

private func near(_ a: Double, _ b: Double) -> Bool { abs(a - b) <= 0.011 }

/// Inside a closed polygon, or on its edge.
private func contains(_ polygon: [Pixel], _ p: Pixel) -> Bool {
    let edges = zip(polygon, polygon.dropFirst() + [polygon[0]])
    for (a, b) in edges {
        let cross = (b.x - a.x) * (p.y - a.y) - (b.y - a.y) * (p.x - a.x)
        let within = p.x >= min(a.x, b.x) - 0.011 && p.x <= max(a.x, b.x) + 0.011 && p.y >= min(a.y, b.y) - 0.011 && p.y <= max(a.y, b.y) + 0.011
        if abs(cross) < 0.5, within { return true }
    }
    var inside = false
    for (a, b) in edges where (a.y > p.y) != (b.y > p.y) {
        if p.x < a.x + (p.y - a.y) / (b.y - a.y) * (b.x - a.x) { inside.toggle() }
    }
    return inside
}

/// WCAG 2 contrast ratio of two #rrggbb colours.
private func contrastRatio(_ a: String, _ b: String) -> Double {
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

/// Two small groups worked by hand (times in days, † an event, + a censoring).
///
/// A: 2†, 3+, 5†, 5+, 8†   (n = 5). S = 1 − 1/5 = 0.8 at 2; at 5, 3 at risk and one event: 0.8 × 2/3 = 0.5333;
///    at 8, 1 at risk and it dies: 0. Median 8 (the first S ≤ 0.5).
/// B: 1+, 4†, 4†, 6+, 9†, 10+ (n = 6). At 4, 5 at risk and two events: 0.6; at 9, 2 at risk and one: 0.3. Median 9.
///
/// Times reach 10 (and the horizon is 10), so the x ticks are 0, 2, 4, 6, 8, 10. At risk at t is everyone whose time
/// is t or later:
///
///     t     0  2  4  6  8  10
///     A     5  5  3  1  1  0      (A's times ≥ 4 are 5, 5, 8; ≥ 6 and ≥ 8 only 8; none reach 10)
///     B     6  5  5  3  2  1      (B's 1 is gone by 2; both 4s count at 4; ≥ 6 are 6, 9, 10; ≥ 8 are 9, 10; ≥ 10 is 10)
private let groupA = SurvivalCurve.kaplanMeier([(2, true), (3, false), (5, true), (5, false), (8, true)])
private let groupB = SurvivalCurve.kaplanMeier([(1, false), (4, true), (4, true), (6, false), (9, true), (10, false)])

private func twoGroups(_ a: String = "Arm A", _ b: String = "Arm B") -> [(label: String, curve: SurvivalCurve)] {
    [(a, groupA), (b, groupB)]
}

/// One look per participant from 3 (none can stop before), the count rising every third: 3, 3, 3, 4, 4, 4, 5, 5.
/// A look whose count exceeds its n (2 of 3) cannot stop and is left out.
private let continuous = [StoppingBoundary(n: 2, stopIfAtLeast: 3)]
    + [3, 3, 3, 4, 4, 4, 5, 5].enumerated().map { StoppingBoundary(n: $0.offset + 3, stopIfAtLeast: $0.element) }

@Suite struct KaplanMeierChartTests {
    @Test func isAnAccessibleStandaloneSVG() throws {
        let svg = AnalysisCharts.kaplanMeier(twoGroups(), title: "Overall survival", xLabel: "Days since randomization", horizon: 10)
        #expect(svg.hasPrefix("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg "))
        let parsed = try ParsedSVG.parse(svg)
        let root = try #require(parsed.elements.first)
        #expect(root.name == "svg")
        #expect(root.attributes["xmlns"] == "http://www.w3.org/2000/svg")
        #expect(root.attributes["role"] == "img")
        #expect(root.attributes["font-family"] == "sans-serif")
        // Sized by the stylesheet's class: the pages' policy allows no style attribute.
        #expect(root.attributes["class"] == "chart")
        #expect(root.attributes["style"] == nil)
        let width = try #require(root.attributes["width"]), height = try #require(root.attributes["height"])
        #expect(root.attributes["viewBox"] == "0 0 \(width) \(height)")
        #expect(parsed.elements[1].name == "title" && parsed.elements[1].text == "Overall survival")
        #expect(parsed.elements[2].name == "desc")
        let ids = try #require(root.attributes["aria-labelledby"]).split(separator: " ").map(String.init)
        #expect(ids == [parsed.elements[1].attributes["id"], parsed.elements[2].attributes["id"]].compactMap { $0 })

        // Everything drawn stays on the canvas.
        let frame = AnalysisCharts.kaplanMeierFrame(twoGroups(), title: "Overall survival", horizon: 10)
        #expect(frame.riskRows.last! < Double(frame.height))
        #expect(frame.plot.right < Double(frame.width))
        #expect(frame.plot.bottom < frame.riskHeading)

        // The same input gives the same bytes; a different title a different id.
        #expect(svg == AnalysisCharts.kaplanMeier(twoGroups(), title: "Overall survival", xLabel: "Days since randomization", horizon: 10))
        let other = try ParsedSVG.parse(AnalysisCharts.kaplanMeier(twoGroups(), title: "PFS", xLabel: "Days since randomization", horizon: 10))
        #expect(other.elements[1].attributes["id"] != parsed.elements[1].attributes["id"])
    }

    @Test func labelsAreEscaped() throws {
        let label = "Arm <A> & \"B\" 'C'\u{1}"
        let svg = AnalysisCharts.kaplanMeier(twoGroups(label, "Control"), title: "KM: x < y & z", xLabel: "Days <since> entry", horizon: nil)
        #expect(!svg.contains("<A>") && !svg.contains("<since>"))
        #expect(svg.contains("Arm &lt;A&gt; &amp; &quot;B&quot; &#39;C&#39;\u{FFFD}"))
        let parsed = try ParsedSVG.parse(svg)
        #expect(parsed.named("title").first?.text == "KM: x < y & z")
        #expect(parsed.drawn.contains("Arm <A> & \"B\" 'C'\u{FFFD} (n=5)"))
        #expect(parsed.classed("km-x-label").first?.text == "Days <since> entry")
        #expect(parsed.desc.contains("Arm <A> & \"B\" 'C'\u{FFFD}: n=5"))
    }

    @Test func theStepPathPassesThroughTheWorkedPoints() throws {
        let frame = AnalysisCharts.kaplanMeierFrame(twoGroups(), title: "t", horizon: 10)
        #expect(frame.xTicks == [0, 2, 4, 6, 8, 10])
        // The scales put the domain's ends on the plot's edges, and 5 days / one half in the middle.
        #expect(near(frame.x(0), frame.plot.left) && near(frame.x(10), frame.plot.right))
        #expect(near(frame.x(5), (frame.plot.left + frame.plot.right) / 2))
        #expect(near(frame.y(1), frame.plot.top) && near(frame.y(0), frame.plot.bottom))
        #expect(near(frame.y(0.5), (frame.plot.top + frame.plot.bottom) / 2))

        let parsed = try ParsedSVG.parse(AnalysisCharts.kaplanMeier(twoGroups(), title: "t", xLabel: "Days", horizon: 10))
        let lines = parsed.classed("km-line")
        #expect(lines.count == 2)
        let d = try #require(lines.first?.attributes["d"])
        let path = try #require(subpaths(d).first)
        // Right-continuous: level 1 until the event at 2, then 0.8 until 5, 0.5333 until 8, then 0.
        let expected: [(Double, Double)] = [(0, 1), (2, 1), (2, 0.8), (5, 0.8), (5, 0.8 * 2 / 3), (8, 0.8 * 2 / 3), (8, 0)]
        #expect(path.count == expected.count)
        for (point, (days, estimate)) in zip(path, expected) {
            #expect(near(point.x, frame.x(days)) && near(point.y, frame.y(estimate)), "\(point) for (\(days), \(estimate))")
        }
        // Censoring marks: a "+" (two strokes) at A's 3 and 5, on the curve there.
        let censor = try #require(parsed.classed("km-censor").first?.attributes["d"])
        let marks = subpaths(censor)
        #expect(marks.count == 4)
        let centres = stride(from: 0, to: marks.count, by: 2).map { Pixel(x: (marks[$0][0].x + marks[$0][1].x) / 2, y: marks[$0][0].y) }
        #expect(centres.count == 2)
        #expect(near(centres[0].x, frame.x(3)) && near(centres[0].y, frame.y(0.8)))
        #expect(near(centres[1].x, frame.x(5)) && near(centres[1].y, frame.y(0.8 * 2 / 3)))
    }

    @Test func theNumberAtRiskIsCountedAtEachTick() throws {
        let parsed = try ParsedSVG.parse(AnalysisCharts.kaplanMeier(twoGroups(), title: "t", xLabel: "Days", horizon: 10))
        let counts = parsed.classed("km-at-risk").map(\.text)
        // In the worked table of the comment above `groupA`.
        #expect(counts == ["5", "5", "3", "1", "1", "0", "6", "5", "5", "3", "2", "1"])
        #expect(parsed.classed("km-at-risk-label").map(\.text) == ["Arm A", "Arm B"])
        // Each count sits under its tick.
        let frame = AnalysisCharts.kaplanMeierFrame(twoGroups(), title: "t", horizon: 10)
        let xs = parsed.classed("km-at-risk").prefix(6).compactMap { $0.attributes["x"].flatMap(Double.init) }
        #expect(zip(xs, frame.xTicks).allSatisfy { near($0, frame.x($1)) })
    }

    @Test func groupsDifferInColourAndDash() throws {
        let curves = (0..<7).map { (label: "Group \($0)", curve: groupA) }
        let parsed = try ParsedSVG.parse(AnalysisCharts.kaplanMeier(curves, title: "t", xLabel: "Days", horizon: nil))
        let styles = parsed.classed("km-line").map { "\($0.attributes["stroke"] ?? "")|\($0.attributes["stroke-dasharray"] ?? "solid")" }
        #expect(styles.count == 7 && Set(styles).count == 7)
        let dashes = parsed.classed("km-line").prefix(6).map { $0.attributes["stroke-dasharray"] ?? "solid" }
        #expect(Set(dashes).count == 6, "the first six differ in dash alone, for greyscale")
        for colour in AnalysisCharts.Palette.groups + [AnalysisCharts.Palette.text, AnalysisCharts.Palette.axis, AnalysisCharts.Palette.stop] {
            #expect(contrastRatio(colour, AnalysisCharts.Palette.background) >= 4.5, "\(colour)")
        }
    }

    @Test func theIntervalBandIsShadedFaintlyOrLeftOut() throws {
        let parsed = try ParsedSVG.parse(AnalysisCharts.kaplanMeier(twoGroups(), title: "t", xLabel: "Days", horizon: 10))
        let bands = parsed.classed("km-band")
        #expect(bands.count == 2)
        #expect(bands.allSatisfy { Double($0.attributes["fill-opacity"] ?? "1")! <= 0.2 })
        #expect(parsed.drawn.contains("95% pointwise interval"))
        // A's band from 2 to 5 lies between the interval's bounds at 2.
        let frame = AnalysisCharts.kaplanMeierFrame(twoGroups(), title: "t", horizon: 10)
        let step = try #require(groupA.step(at: 2))
        let d = try #require(bands.first?.attributes["d"])
        let band = try #require(subpaths(d).first)
        let upper = try #require(step.upper), lower = try #require(step.lower)
        #expect(lower < 0.8 && 0.8 < upper)
        #expect(band.contains { near($0.x, frame.x(2)) && near($0.y, frame.y(upper)) })
        #expect(band.contains { near($0.x, frame.x(5)) && near($0.y, frame.y(lower)) })

        let plain = try ParsedSVG.parse(AnalysisCharts.kaplanMeier(twoGroups(), title: "t", xLabel: "Days", horizon: 10, intervals: false))
        #expect(plain.classed("km-band").isEmpty && !plain.drawn.contains("interval"))
    }

    @Test func theDescriptionSummarisesEachGroup() throws {
        let parsed = try ParsedSVG.parse(AnalysisCharts.kaplanMeier(twoGroups(), title: "t", xLabel: "days since randomization", horizon: 10))
        let desc = parsed.desc
        #expect(desc.hasPrefix("Kaplan–Meier plot of the proportion event-free (0 to 1) against days since randomization, 2 groups."))
        #expect(desc.contains("Arm A: n=5, 3 events, 2 censored; median 8 days; at 10 days 0."))
        #expect(desc.contains("Arm B: n=6, 3 events, 3 censored; median 9 days; at 10 days 0.3 (95% CI "))
        // Past the end of follow-up with people still event-free, the curve says nothing.
        let later = try ParsedSVG.parse(AnalysisCharts.kaplanMeier(twoGroups(), title: "t", xLabel: "days", horizon: 365))
        #expect(later.desc.contains("Arm B: n=6, 3 events, 3 censored; median 9 days; not estimable at 365 days (follow-up ends at 10 days)."))
        #expect(later.desc.contains("Arm A: n=5, 3 events, 2 censored; median 8 days; at 365 days 0."))
        let notReached = SurvivalCurve.kaplanMeier([(3, true), (5, false), (7, false)])
        let one = try ParsedSVG.parse(AnalysisCharts.kaplanMeier([("Only", notReached)], title: "t", xLabel: "days", horizon: nil))
        #expect(one.desc.contains("1 group. Only: n=3, 1 event, 2 censored; median not reached."))
        // The axis reaches the horizon even past the last time.
        #expect(AnalysisCharts.kaplanMeierFrame(twoGroups(), title: "t", horizon: 365).xTicks.last! >= 365)
    }

    @Test func noGroupsOrNoParticipantsSayNoData() throws {
        for curves in [[], [(label: "Empty", curve: SurvivalCurve.kaplanMeier([]))]] as [[(label: String, curve: SurvivalCurve)]] {
            let parsed = try ParsedSVG.parse(AnalysisCharts.kaplanMeier(curves, title: "Overall survival", xLabel: "Days", horizon: 30))
            #expect(parsed.drawn.contains("No data"))
            #expect(parsed.desc.contains("No data"))
            #expect(parsed.classed("km-line").isEmpty)
        }
        // An empty group beside a full one is listed, with no line and nobody at risk.
        let mixed = try ParsedSVG.parse(
            AnalysisCharts.kaplanMeier([("Arm A", groupA), ("Arm C", SurvivalCurve.kaplanMeier([]))], title: "t", xLabel: "Days", horizon: nil))
        #expect(mixed.classed("km-line").count == 1)
        #expect(mixed.drawn.contains("Arm C (n=0)"))
        #expect(mixed.desc.contains("Arm C: no participants."))
        #expect(mixed.classed("km-at-risk").suffix(5).allSatisfy { $0.text == "0" })
    }

    @Test func niceTicks() {
        #expect(AnalysisCharts.niceTicks(0, 10, target: 6, integers: false) == [0, 2, 4, 6, 8, 10])
        #expect(AnalysisCharts.niceTicks(0, 365, target: 6, integers: false) == [0, 100, 200, 300, 400])
        #expect(AnalysisCharts.niceTicks(0, 12, target: 6, integers: false) == [0, 2.5, 5, 7.5, 10, 12.5])
        // Each tick is one exact division, so decimals come out as written.
        #expect(AnalysisCharts.niceTicks(0, 0.3, target: 4, integers: false) == [0, 0.1, 0.2, 0.3])
        #expect(AnalysisCharts.niceTicks(0, 0.9, target: 4, integers: false) == [0, 0.5, 1])
        // Counts never step by less than one, nor by 2.5.
        #expect(AnalysisCharts.niceTicks(0, 3, target: 6, integers: true) == [0, 1, 2, 3])
        #expect(AnalysisCharts.niceTicks(0, 12, target: 6, integers: true) == [0, 5, 10, 15])
    }
}

@Suite struct StoppingBoundaryChartTests {
    /// The boundary's horizontal runs: (from x, to x, y) in pixels.
    private func levels(_ parsed: ParsedSVG) throws -> [(from: Double, to: Double, y: Double)] {
        let d = try #require(parsed.classed("stop-boundary").first?.attributes["d"])
        return subpaths(d).flatMap { points in
            zip(points, points.dropFirst()).filter { near($0.y, $1.y) }.map { (min($0.x, $1.x), max($0.x, $1.x), $0.y) }
        }
    }

    @Test func theBoundaryPointsMapToTheGivenBoundaries() throws {
        let frame = AnalysisCharts.stoppingFrame(continuous, maxSampleSize: 10, observed: nil, title: "t")
        let parsed = try ParsedSVG.parse(AnalysisCharts.stoppingBoundary(continuous, maxSampleSize: 10, observed: nil, title: "t"))
        let levels = try levels(parsed)
        for boundary in continuous where boundary.stopIfAtLeast <= boundary.n {
            let x = frame.x(Double(boundary.n))
            let covering = levels.filter { $0.from <= x + 0.011 && x <= $0.to + 0.011 }
            #expect(covering.count == 1 && near(covering[0].y, frame.y(Double(boundary.stopIfAtLeast))), "n = \(boundary.n)")
        }
        // Nothing at 1 or 2, where no stop is possible; the line starts half-way to the first look.
        for n in [1.0, 2.0] { #expect(!levels.contains { $0.from <= frame.x(n) && frame.x(n) <= $0.to }) }
        #expect(near(levels.map(\.from).min()!, frame.x(2.5)))
        #expect(near(levels.map(\.to).max()!, frame.x(10)))
        // One level per distinct count, the axes from 0 to the maximum.
        #expect(levels.count == 3)
        #expect(near(frame.x(0), frame.plot.left) && near(frame.x(10), frame.plot.right))
        #expect(frame.y.domain.upper >= 6)
    }

    @Test func theObservedPointIsInsideTheRegionExactlyWhenItCrosses() throws {
        for (observed, crossed) in [((6, 4), true), ((6, 3), false), ((7, 6), true), ((2, 2), false), ((10, 5), true), ((9, 4), false)] {
            let svg = AnalysisCharts.stoppingBoundary(continuous, maxSampleSize: 10, observed: observed, title: "Grade 3+ toxicity")
            let parsed = try ParsedSVG.parse(svg)
            let marker = try #require(parsed.classed("stop-observed").first)
            let point = Pixel(x: Double(marker.attributes["cx"]!)!, y: Double(marker.attributes["cy"]!)!)
            let regionPath = try #require(parsed.classed("stop-region").first?.attributes["d"])
            let region = subpaths(regionPath)
            #expect(region.contains { contains($0, point) } == crossed, "\(observed)")
            #expect(parsed.classed("stop-observed-label").first?.text == "now: \(observed.1) of \(observed.0)")
            #expect(parsed.desc.contains(crossed ? "crossed, the stopping rule is met." : "not crossed."), "\(observed)")
        }
        let parsed = try ParsedSVG.parse(AnalysisCharts.stoppingBoundary(continuous, maxSampleSize: 10, observed: (6, 4), title: "t"))
        #expect(parsed.desc == "Stopping boundary for up to 10 participants evaluated. Stop from 3 to 5 evaluated, 3 or more with the event;"
            + " from 6 to 8 evaluated, 4 or more with the event; from 9 to 10 evaluated, 5 or more with the event."
            + " Now 4 with the event of 6 evaluated; the boundary at 6 is 4: crossed, the stopping rule is met.")
    }

    @Test func looksApartLeaveGaps() throws {
        let looks = [StoppingBoundary(n: 10, stopIfAtLeast: 4), StoppingBoundary(n: 20, stopIfAtLeast: 6), StoppingBoundary(n: 30, stopIfAtLeast: 8)]
        let frame = AnalysisCharts.stoppingFrame(looks, maxSampleSize: 30, observed: (15, 7), title: "t")
        let parsed = try ParsedSVG.parse(AnalysisCharts.stoppingBoundary(looks, maxSampleSize: 30, observed: (15, 7), title: "t"))
        let levels = try levels(parsed)
        #expect(levels.count == 3)
        for look in looks {
            #expect(levels.contains { $0.from < frame.x(Double(look.n)) && frame.x(Double(look.n)) <= $0.to && near($0.y, frame.y(Double(look.stopIfAtLeast))) })
        }
        #expect(!levels.contains { $0.from <= frame.x(15) && frame.x(15) <= $0.to })
        // 7 of 15 is above every count, but there is no look at 15: not in the region.
        let marker = try #require(parsed.classed("stop-observed").first)
        let point = Pixel(x: Double(marker.attributes["cx"]!)!, y: Double(marker.attributes["cy"]!)!)
        #expect(!subpaths(parsed.classed("stop-region").first!.attributes["d"]!).contains { contains($0, point) })
        #expect(parsed.desc.hasSuffix("no stop is possible at 15; not crossed. Next boundary at 20: 6."))
    }

    @Test func noBoundariesSayNoData() throws {
        for (boundaries, max) in [([], 20), ([StoppingBoundary(n: 3, stopIfAtLeast: 4)], 20), (continuous, 0)] as [([StoppingBoundary], Int)] {
            let parsed = try ParsedSVG.parse(AnalysisCharts.stoppingBoundary(boundaries, maxSampleSize: max, observed: (2, 1), title: "Rule <1>"))
            #expect(parsed.drawn.contains("No data"))
            #expect(parsed.desc == "Stopping boundary: No data.")
            #expect(parsed.named("title").first?.text == "Rule <1>")
        }
    }
}
