import Foundation

/// What a condition over events reads: the participant's adverse events and doses, as of one moment
/// (the dose about to be given, or now).
public struct ClinicalHistory: Sendable {
    public var adverseEvents: [AdverseEventEntry]
    /// Anchor times, the doses among them by dose code.
    public var anchors: [String: Date]
    /// Start times of the doses given.
    public var doses: [Date]
    public var asOf: Date

    public init(adverseEvents: [AdverseEventEntry], anchors: [String: Date], doses: [Date], asOf: Date) {
        self.adverseEvents = adverseEvents
        self.anchors = anchors
        self.doses = doses
        self.asOf = asOf
    }
}

/// `adverse_events(min_grade: 3, related: yes, since: previous_dose)`: how many of the participant's adverse events
/// match, with onset from `since` (and no later than `within` after it) up to the moment evaluated.
public enum AdverseEventCount {
    public static let function = "adverse_events"
    public static let previousDose = "previous_dose"
    static let labels = ["since", "within", "min_grade", "related", "serious", "term"]

    static func check(_ arguments: [NamedArgument], scope: ExpressionScope) throws -> Expression {
        var checked: [NamedArgument] = []
        for argument in arguments {
            let value = argument.value
            switch argument.label {
            case "since":
                guard case .reference(let point) = value, scope.timePoints.contains(point) else {
                    throw ExpressionError("\(function) since: needs an anchor, a dose or \(previousDose), not \(render(value)) (known: \(scope.timePoints.sorted().joined(separator: ", ")))")
                }
                checked.append(NamedArgument("since", .text(point)))
            case "within":
                let (e, type) = try scope.check(value)
                guard case .number(let unit?) = type, QuantityUnits.time[unit] != nil else {
                    throw ExpressionError("\(function) within: needs a span of time such as 24h or 4w, not \(render(value))")
                }
                checked.append(NamedArgument("within", try scope.fit(e, unit, to: "d", analyte: nil, context: value)))
            case "min_grade":
                guard case .number(let grade) = value, (1...5).contains(grade), grade == grade.rounded() else {
                    throw ExpressionError("\(function) min_grade: needs a CTCAE grade from 1 to 5, not \(render(value))")
                }
                checked.append(argument)
            case "related", "serious":
                guard case .boolean = value else { throw ExpressionError("\(function) \(argument.label): needs yes or no, not \(render(value))") }
                checked.append(argument)
            case "term":
                guard case .text(let code) = value, code.count == 8, code.allSatisfy(\.isNumber) else {
                    throw ExpressionError("\(function) term: needs a MedDRA code in quotes, such as \"10002198\", not \(render(value))")
                }
                checked.append(argument)
            default:
                throw ExpressionError("\(function) has no input '\(argument.label)' (known: \(labels.joined(separator: ", ")))")
            }
        }
        let labelsGiven = checked.map(\.label)
        if let repeated = labelsGiven.first(where: { label in labelsGiven.filter { $0 == label }.count > 1 }) {
            throw ExpressionError("\(function) names \(repeated) twice")
        }
        if labelsGiven.contains("within") && !labelsGiven.contains("since") { throw ExpressionError("\(function) within: counts from since:, which is missing") }
        return .score(function, checked)
    }

    static func evaluate(_ arguments: [NamedArgument], history: ClinicalHistory, evaluator: Evaluator) throws -> EvaluatedValue {
        var from: Date?, span: Double?, minGrade = 1, related: Bool?, serious: Bool?, term: String?
        for argument in arguments {
            switch (argument.label, argument.value) {
            case ("since", .text(previousDose)):
                // Before the first dose there is no previous one, and so nothing since it.
                guard let last = history.doses.filter({ $0 <= history.asOf }).max() else { return .number(0) }
                from = last
            case ("since", .text(let point)):
                guard let time = history.anchors[point] else { return .unknown([point]) }
                from = time
            case ("within", let e):
                guard case .number(let days) = try evaluator.evaluate(e) else { throw ExpressionError("\(function) within: is not a span") }
                span = days
            case ("min_grade", .number(let g)): minGrade = Int(g)
            case ("related", .boolean(let b)): related = b
            case ("serious", .boolean(let b)): serious = b
            case ("term", .text(let t)): term = t
            default: throw ExpressionError("\(function) \(argument.label): cannot be read")
            }
        }
        let until = span.flatMap { s in from.map { $0.addingTimeInterval(s * 86_400) } }
        let count = history.adverseEvents.filter { event in
            event.onsetAt <= history.asOf && from.map { event.onsetAt >= $0 } ?? true && until.map { event.onsetAt <= $0 } ?? true
                && event.grade >= minGrade && related.map { event.related == $0 } ?? true && serious.map { event.serious == $0 } ?? true
                && term.map { event.meddra == $0 } ?? true
        }.count
        return .number(Double(count))
    }
}
