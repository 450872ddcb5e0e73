import Foundation

/// How an endpoint is computed from the participants' records; part of the study definition.
public struct EndpointAnalysis: Codable, Equatable, Sendable {
    public enum Method: String, Codable, Sendable, CaseIterable {
        /// Participants with an event within `window` after `anchor`, of those assessed, with an exact 95 % interval.
        case proportion
        /// Participants with any adverse event (matching `adverseEvents`) within the window, and their worst grades.
        case adverseEvents = "adverse_events"
        /// A lab's value at a visit: n, mean, SD, median, range.
        case valueAtVisit = "value_at_visit"
        /// A lab's value at a visit minus its baseline.
        case changeFromBaseline = "change_from_baseline"
        /// Time from `anchor` to the first event (`events`), censored at the last observation; Kaplan–Meier at `horizon`.
        case timeToEvent = "time_to_event"
    }

    public var method: Method
    /// The anchor a window counts from.
    public var anchor: String?
    public var window: Offset?
    /// Forms that answer whether the event happened: a participant with the form recorded is assessed,
    /// and has the event when `event` holds over its fields.
    public var forms: [FormEventRule]?
    /// Adverse events that count as the event (or, for `adverse_events`, which events count at all).
    public var adverseEvents: AdverseEventRule?
    /// `value_at_visit`, `change_from_baseline`: a lab code of the catalogue, or a number computed from the visit's
    /// forms (`expression`, such as a score), and a visit code.
    public var lab: String?
    public var expression: String?
    public var visit: String?
    /// Adverse events counted within the window after each dose given, per dose as well as per participant.
    public var perDose: Bool?
    /// `time_to_event`: what ends the time, each with the date field it happened on.
    public var events: [TimedEventRule]?
    /// `time_to_event`: when the survival estimate is read.
    public var horizon: Offset?

    public init(
        method: Method, anchor: String? = nil, window: Offset? = nil, forms: [FormEventRule]? = nil, adverseEvents: AdverseEventRule? = nil,
        lab: String? = nil, expression: String? = nil, visit: String? = nil, perDose: Bool? = nil, events: [TimedEventRule]? = nil, horizon: Offset? = nil
    ) {
        self.expression = expression
        self.method = method
        self.anchor = anchor
        self.window = window
        self.forms = forms
        self.adverseEvents = adverseEvents
        self.lab = lab
        self.visit = visit
        self.perDose = perDose
        self.events = events
        self.horizon = horizon
    }
}

/// An event that ends a participant's time: a form whose condition holds, dated by one of its fields.
public struct TimedEventRule: Codable, Equatable, Sendable {
    public var form: String
    /// A yes/no condition over the form's fields; the event happened when it holds.
    public var event: String
    /// The `form.field` holding the event's date.
    public var date: String

    public init(form: String, event: String, date: String) {
        self.form = form
        self.event = event
        self.date = date
    }
}

public struct FormEventRule: Codable, Equatable, Sendable {
    public var form: String
    /// A yes/no condition over the form's fields.
    public var event: String

    public init(form: String, event: String) {
        self.form = form
        self.event = event
    }
}

public struct AdverseEventRule: Codable, Equatable, Sendable {
    /// MedDRA codes of the CTCAE terms that count; all terms when absent.
    public var terms: [String]?
    public var minGrade: Int?
    /// Only events attributed possibly, probably or definitely to the treatment.
    public var related: Bool?
    public var serious: Bool?

    public init(terms: [String]? = nil, minGrade: Int? = nil, related: Bool? = nil, serious: Bool? = nil) {
        self.terms = terms
        self.minGrade = minGrade
        self.related = related
        self.serious = serious
    }

    public func matches(_ event: AdverseEventEntry) -> Bool {
        if let terms, !terms.contains(event.meddra) { return false }
        if let minGrade, event.grade < minGrade { return false }
        if related == true, !event.related { return false }
        if let serious, event.serious != serious { return false }
        return true
    }
}

/// An endpoint's figures for one group of participants (an arm, or everyone).
public struct EndpointGroup: Codable, Equatable, Sendable {
    /// The arm's code; nil for all participants together.
    public var arm: String?
    /// Participants assessed, or with a value.
    public var n: Int
    public var events: Int?
    public var proportion: Double?
    public var lower: Double?
    public var upper: Double?
    public var summary: Summary?
    /// Participants by their worst grade ("1"…"5").
    public var worstGrades: [String: Int]?
    /// Per dose (`perDose`): doses given with their window in the data, and those with the event.
    public var doses: Int?
    public var doseEvents: Int?
    /// `time_to_event`: the Kaplan–Meier estimate at the horizon, its Greenwood standard error, events and censored.
    public var survival: SurvivalEstimate?
    /// `time_to_event`: the whole product-limit curve, for plots and the median.
    public var curve: SurvivalCurve?

    public init(
        arm: String?, n: Int, events: Int? = nil, proportion: Double? = nil, lower: Double? = nil, upper: Double? = nil, summary: Summary? = nil,
        worstGrades: [String: Int]? = nil, survival: SurvivalEstimate? = nil
    ) {
        self.survival = survival
        self.arm = arm
        self.n = n
        self.events = events
        self.proportion = proportion
        self.lower = lower
        self.upper = upper
        self.summary = summary
        self.worstGrades = worstGrades
    }
}

public struct EndpointResult: Codable, Equatable, Sendable {
    public var code: String
    public var kind: EndpointKind
    public var measure: String
    public var timeFrame: String
    /// nil when the definition says only what is measured, not how it is computed.
    public var method: String?
    public var unit: String?
    /// Everyone first, then each arm (arms only for those who may see them).
    public var groups: [EndpointGroup]
    /// `time_to_event` by arm: the log-rank test across the arms with participants.
    public var logRank: LogRankTest?
}

public enum EndpointError: Error, Equatable, Sendable, CustomStringConvertible {
    case invalid(String)
    public var description: String {
        switch self {
        case .invalid(let message): message
        }
    }
}

/// Computes endpoints from participants' records, as the definition says.
public enum EndpointCalculator {
    /// `byArm`: false for those who must not see allocations; the groups are then everyone only.
    public static func compute(_ endpoint: Endpoint, study: StudyDefinition, records: [ParticipantRecord], byArm: Bool) throws -> EndpointResult {
        var result = EndpointResult(
            code: endpoint.code, kind: endpoint.kind, measure: endpoint.measure, timeFrame: endpoint.timeFrame, method: endpoint.analysis?.method.rawValue,
            unit: nil, groups: [])
        guard let analysis = endpoint.analysis else { return result }
        let allocated = records.filter { $0.arm != nil }
        let groups: [(arm: String?, records: [ParticipantRecord])] =
            [(nil, allocated)] + (byArm ? study.arms.map { arm in (arm.code, allocated.filter { $0.arm == arm.code }) } : [])
        switch analysis.method {
        case .proportion, .adverseEvents:
            let outcome = try eventOutcome(analysis, study: study)
            result.groups = groups.map { group in
                var assessed = 0, events = 0, doses = 0, doseEvents = 0
                var worst: [String: Int] = [:]
                for record in group.records {
                    guard let answer = outcome(record) else { continue }
                    assessed += 1
                    if answer.event { events += 1 }
                    doses += answer.doses
                    doseEvents += answer.doseEvents
                    if analysis.method == .adverseEvents, let grade = answer.worstGrade { worst[String(grade), default: 0] += 1 }
                }
                let ci = ClopperPearson.interval(successes: events, trials: assessed)
                var g = EndpointGroup(
                    arm: group.arm, n: assessed, events: events, proportion: assessed > 0 ? Double(events) / Double(assessed) : nil, lower: ci?.lower,
                    upper: ci?.upper, worstGrades: analysis.method == .adverseEvents ? worst : nil)
                if analysis.perDose == true {
                    g.doses = doses
                    g.doseEvents = doseEvents
                }
                return g
            }
        case .timeToEvent:
            guard let anchor = analysis.anchor, let horizon = analysis.horizon else { throw EndpointError.invalid("\(endpoint.code): needs an anchor and a horizon") }
            let scope = ExpressionScope(study: study)
            let rules = try (analysis.events ?? []).map { rule in (rule, try scope.checkCondition(rule.event)) }
            let timed = groups.map { group in
                (arm: group.arm, times: group.records.compactMap { record -> (days: Double, event: Bool)? in
                    guard let start = record.anchors[anchor] else { return nil }
                    var eventAt: Date?
                    for (rule, condition) in rules {
                        guard let values = record.values(ofForm: rule.form),
                            (try? Evaluator(study: study, site: record.site, values: values, scope: scope, history: record.history()).evaluate(condition)) == .boolean(true),
                            let raw = values[rule.date], let at = DateParsing.instant(raw) ?? DateParsing.day(raw)
                        else { continue }
                        eventAt = min(eventAt ?? at, at)
                    }
                    if let eventAt { return eventAt < start ? nil : (eventAt.timeIntervalSince(start) / 86_400, true) }
                    // Censored at the last observation: a lab sample, a dose or an adverse event's onset.
                    let last = ([record.lastObservation].compactMap { $0 } + record.doses.values + record.adverseEvents.map(\.onsetAt)).max() ?? start
                    return (max(0, last.timeIntervalSince(start) / 86_400), false)
                })
            }
            result.groups = timed.map { group in
                let times = group.times
                let curve = SurvivalCurve.kaplanMeier(times)
                let estimate = curve.estimate(at: horizon.seconds / 86_400)
                var g = EndpointGroup(arm: group.arm, n: times.count, events: estimate.events, survival: estimate)
                g.curve = curve
                return g
            }
            if byArm {
                var byArm: [String: [(days: Double, event: Bool)]] = [:]
                for group in timed { if let arm = group.arm { byArm[arm] = group.times } }
                result.logRank = LogRankTest.logRank(byArm)
            }
        case .valueAtVisit where analysis.expression != nil, .changeFromBaseline where analysis.expression != nil:
            guard let source = analysis.expression, let visit = analysis.visit else { throw EndpointError.invalid("\(endpoint.code): needs an expression and a visit") }
            let scope = ExpressionScope(study: study)
            let (expression, type) = try scope.check(try ExpressionParser.parse(source))
            guard case .number(let unit) = type else { throw ExpressionError("must give a number, but gives \(type)") }
            if unit != "1" { result.unit = unit }
            let baselineVisits = Baseline.visits(of: study)
            func value(_ record: ParticipantRecord, at visit: String) -> Double? {
                let entries = record.forms.filter { $0.visit == visit }.sorted { $0.recordedAt < $1.recordedAt }
                guard !entries.isEmpty else { return nil }
                var values: [String: String] = [:]
                for entry in entries { for (key, v) in entry.values { values["\(entry.form).\(key)"] = v } }
                guard case .number(let n)? = try? Evaluator(study: study, site: record.site, values: values, scope: scope, history: record.history()).evaluate(expression) else { return nil }
                return n
            }
            result.groups = groups.map { group in
                let values = group.records.compactMap { record -> Double? in
                    guard let at = value(record, at: visit) else { return nil }
                    guard analysis.method == .changeFromBaseline else { return at }
                    // The later baseline visit's value, else the earlier's.
                    guard let baseline = baselineVisits.reversed().lazy.compactMap({ value(record, at: $0) }).first else { return nil }
                    return at - baseline
                }
                return EndpointGroup(arm: group.arm, n: values.count, summary: Summary(values))
            }
        case .valueAtVisit, .changeFromBaseline:
            guard let lab = analysis.lab, let visit = analysis.visit else { throw EndpointError.invalid("\(endpoint.code): needs a lab and a visit") }
            result.unit = study.labTest(lab)?.unit
            let baselineVisits = Baseline.visits(of: study)
            result.groups = groups.map { group in
                let values = group.records.compactMap { record -> Double? in
                    guard let at = record.labs.filter({ $0.test == lab && $0.visit == visit }).max(by: { $0.collectedAt < $1.collectedAt }) else { return nil }
                    guard analysis.method == .changeFromBaseline else { return at.value }
                    guard let baseline = Baseline.value(of: lab, in: record.labs, visits: baselineVisits, before: at.collectedAt) else { return nil }
                    return at.value - baseline.value
                }
                return EndpointGroup(arm: group.arm, n: values.count, summary: Summary(values))
            }
        }
        return result
    }

    /// For one participant: nil when not assessed, else whether the event happened (and the worst matching grade).
    static func eventOutcome(
        _ analysis: EndpointAnalysis, study: StudyDefinition
    ) throws -> (ParticipantRecord) -> (event: Bool, worstGrade: Int?, doses: Int, doseEvents: Int)? {
        let scope = ExpressionScope(study: study)
        let rules = try (analysis.forms ?? []).map { rule in (rule.form, try scope.checkCondition(rule.event)) }
        let aeRule = analysis.adverseEvents ?? (analysis.method == .adverseEvents ? AdverseEventRule() : nil)
        let window = analysis.window?.seconds
        return { record in
            var assessed = false, event = false
            for (form, condition) in rules {
                guard let values = record.values(ofForm: form) else { continue }
                assessed = true
                let evaluator = Evaluator(study: study, site: record.site, values: values, scope: scope, history: record.history())
                if (try? evaluator.evaluate(condition)) == .boolean(true) { event = true }
            }
            var worst: Int?
            var doses = 0, doseEvents = 0
            if analysis.perDose == true, let aeRule {
                // Each dose given opens its own window; a participant with a dose given is followed.
                let given = record.doses.values.sorted()
                for start in given {
                    doses += 1
                    let matching = record.adverseEvents.filter { e in
                        aeRule.matches(e) && e.onsetAt >= start && (window.map { e.onsetAt <= start.addingTimeInterval($0) } ?? true)
                    }
                    if !matching.isEmpty {
                        doseEvents += 1
                        event = true
                        worst = max(worst ?? 0, matching.map(\.grade).max() ?? 0)
                    }
                }
                if !given.isEmpty { assessed = true }
                return assessed ? (event, worst, doses, doseEvents) : nil
            }
            if let aeRule {
                let start = analysis.anchor.flatMap { record.anchors[$0] }
                // Without the anchor's time no event can be placed in the window.
                let timed = analysis.anchor == nil || start != nil
                let matching = !timed ? [] : record.adverseEvents.filter { e in
                    guard aeRule.matches(e) else { return false }
                    guard let start else { return true }
                    return e.onsetAt >= start && (window.map { e.onsetAt <= start.addingTimeInterval($0) } ?? true)
                }
                if !matching.isEmpty {
                    event = true
                    worst = matching.map(\.grade).max()
                }
                // Every allocated participant is followed for adverse events; a form-based endpoint needs its form or an event.
                if (analysis.method == .adverseEvents && timed) || !matching.isEmpty { assessed = true }
            }
            return assessed ? (event, worst, doses, doseEvents) : nil
        }
    }
}

/// n, mean, sample SD (n − 1), median and range of a set of values.
public struct Summary: Codable, Equatable, Sendable {
    public var n: Int
    public var mean: Double
    public var sd: Double?
    public var median: Double
    public var min: Double
    public var max: Double

    public init?(_ values: [Double]) {
        guard !values.isEmpty else { return nil }
        let sorted = values.sorted()
        n = sorted.count
        mean = sorted.reduce(0, +) / Double(n)
        let m = mean
        sd = n > 1 ? (sorted.map { ($0 - m) * ($0 - m) }.reduce(0, +) / Double(n - 1)).squareRoot() : nil
        median = n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2
        min = sorted[0]
        max = sorted[n - 1]
    }
}

/// The Kaplan–Meier product-limit estimate (Kaplan EL, Meier P. J Am Stat Assoc 1958;53:457-481) at one time, with
/// Greenwood's standard error (Greenwood M. Reports on Public Health and Medical Subjects 1926;33). At a tie an event
/// counts before a censoring.
public struct SurvivalEstimate: Codable, Equatable, Sendable {
    /// Days from the anchor at which it is read.
    public var at: Double
    public var estimate: Double
    public var standardError: Double?
    public var atRisk: Int
    /// Events and censorings up to `at`.
    public var events: Int
    public var censored: Int
}

public enum KaplanMeier {
    /// The product-limit estimate at one time, read off the whole curve (`SurvivalCurve`).
    public static func estimate(_ times: [(days: Double, event: Bool)], at horizon: Double) -> SurvivalEstimate {
        SurvivalCurve.kaplanMeier(times).estimate(at: horizon)
    }
}
