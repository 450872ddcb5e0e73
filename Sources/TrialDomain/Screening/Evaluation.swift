import Foundation

/// A value while evaluating a criterion. `unknown` carries the names whose data is missing.
public enum EvaluatedValue: Equatable, Sendable {
    case number(Double)
    case boolean(Bool)
    case date(Date)
    case text(String)
    case unknown(Set<String>)
}

/// One input a criterion used, as shown to the investigator.
public struct Evidence: Equatable, Sendable, Codable {
    public var name: String
    public var label: String
    /// The value as entered, or nil when missing.
    public var value: String?
    public var unit: String?
    public var note: String?

    public init(name: String, label: String, value: String?, unit: String?, note: String? = nil) {
        self.name = name
        self.label = label
        self.value = value
        self.unit = unit
        self.note = note
    }
}

/// Evaluates expressions over one participant's form data, with missing data as "cannot tell" (Kleene logic).
public struct Evaluator: Sendable {
    public let study: StudyDefinition
    public let site: String?
    /// Values keyed `form.field`, as stored (text).
    public let values: [String: String]
    let scope: ExpressionScope
    /// The participant's adverse events and doses, for conditions over events; without it they cannot tell.
    public let history: ClinicalHistory?

    public init(study: StudyDefinition, site: String?, values: [String: String], history: ClinicalHistory? = nil) {
        self.study = study
        self.site = site
        self.values = values
        self.scope = ExpressionScope(study: study)
        self.history = history
    }

    /// With a scope made once for many participants.
    public init(study: StudyDefinition, site: String?, values: [String: String], scope: ExpressionScope, history: ClinicalHistory? = nil) {
        self.study = study
        self.site = site
        self.values = values
        self.scope = scope
        self.history = history
    }

    public func evaluate(_ expression: Expression) throws -> EvaluatedValue {
        switch expression {
        case .number(let v): return .number(v)
        case .quantity(let v, _): return .number(v)
        case .text(let s): return .text(s)
        case .boolean(let b): return .boolean(b)
        case .reference(let name): return try lookup(name)
        case .convert(let inner, let from, let to, let analyte):
            let value = try evaluate(inner)
            guard case .number(let n) = value else { return value }
            guard let factor = scope.conversions.factor(from: from, to: to, analyte: analyte) else {
                throw ExpressionError("no conversion from \(from) to \(to)")
            }
            return .number(n * factor)
        case .score(AdverseEventCount.function, let arguments):
            guard let history else { return .unknown([AdverseEventCount.function]) }
            return try AdverseEventCount.evaluate(arguments, history: history, evaluator: self)
        case .score(let name, let arguments):
            var values: [String: EvaluatedValue] = [:]
            for argument in arguments { values[argument.label] = try evaluate(argument.value) }
            return ScoreFunctions.evaluate(name, values)
        case .within(let first, let span, let before, let second):
            let values = [try evaluate(first), try evaluate(span), try evaluate(second)]
            if let missing = Self.missing(values) { return .unknown(missing) }
            guard case .date(let a) = values[0], case .number(let days) = values[1], case .date(let b) = values[2] else {
                throw ExpressionError("within needs two dates and a span")
            }
            let apart = before ? Self.wholeDays(from: a, to: b) : Self.wholeDays(from: b, to: a)
            return .boolean(apart >= 0 && Double(apart) <= days + 1e-9)
        case .call(let name, let arguments):
            let values = try arguments.map(evaluate)
            if let missing = Self.missing(values) { return .unknown(missing) }
            if ExpressionScope.mathFunctions.contains(name) { return try math(name, values) }
            guard case .date(let a) = values[0], case .date(let b) = values[1] else { throw ExpressionError("\(name) needs two dates") }
            switch name {
            case "days_between": return .number(Double(Self.wholeDays(from: a, to: b)))
            case "age_years": return .number(Double(Self.completedYears(born: a, on: b)))
            default: throw ExpressionError("unknown function '\(name)'")
            }
        case .negate(let inner):
            let v = try evaluate(inner)
            if case .number(let n) = v { return .number(-n) }
            return v
        case .not(let inner):
            let v = try evaluate(inner)
            if case .boolean(let b) = v { return .boolean(!b) }
            return v
        case .binary(let op, let left, let right):
            let l = try evaluate(left), r = try evaluate(right)
            switch op {
            case .and:
                // false and anything is false, even when the other side is unknown.
                if l == .boolean(false) || r == .boolean(false) { return .boolean(false) }
                if let missing = Self.missing([l, r]) { return .unknown(missing) }
                return .boolean(true)
            case .or:
                if l == .boolean(true) || r == .boolean(true) { return .boolean(true) }
                if let missing = Self.missing([l, r]) { return .unknown(missing) }
                return .boolean(false)
            default:
                if let missing = Self.missing([l, r]) { return .unknown(missing) }
                return try apply(op, l, r)
            }
        }
    }

    func apply(_ op: BinaryOperator, _ l: EvaluatedValue, _ r: EvaluatedValue) throws -> EvaluatedValue {
        switch (l, r) {
        case (.number(let a), .number(let b)):
            switch op {
            case .add: return .number(a + b)
            case .subtract: return .number(a - b)
            case .multiply: return .number(a * b)
            case .divide: return b == 0 ? .unknown([]) : .number(a / b)
            default: return .boolean(Self.compare(op, a, b))
            }
        case (.date(let a), .date(let b)):
            return .boolean(Self.compare(op, a.timeIntervalSince1970, b.timeIntervalSince1970))
        case (.text(let a), .text(let b)):
            return .boolean(op == .equal ? a == b : a != b)
        case (.boolean(let a), .boolean(let b)):
            return .boolean(op == .equal ? a == b : a != b)
        default:
            throw ExpressionError("cannot apply '\(op.rawValue)' to these values")
        }
    }

    func math(_ name: String, _ values: [EvaluatedValue]) throws -> EvaluatedValue {
        let numbers = try values.map { value -> Double in
            guard case .number(let n) = value else { throw ExpressionError("\(name) needs numbers") }
            return n
        }
        switch name {
        // The logarithm of nothing or less is undefined: cannot tell rather than a number.
        case "ln": return numbers[0] > 0 ? .number(log(numbers[0])) : .unknown([])
        case "log10": return numbers[0] > 0 ? .number(log10(numbers[0])) : .unknown([])
        case "exp": return .number(exp(numbers[0]))
        case "abs": return .number(abs(numbers[0]))
        case "min": return .number(numbers.min()!)
        case "max": return .number(numbers.max()!)
        case "round":
            // Half away from zero, as clinicians round by hand.
            let scale = pow(10, numbers.count > 1 ? numbers[1].rounded() : 0)
            return .number((numbers[0] * scale).rounded(.toNearestOrAwayFromZero) / scale)
        default: throw ExpressionError("unknown function '\(name)'")
        }
    }

    /// Thresholds are decimals in the protocol (3 × 17.1 is 51.3, not 51.300000000000004), so values this close count as equal.
    static func compare(_ op: BinaryOperator, _ a: Double, _ b: Double) -> Bool {
        let equal = abs(a - b) <= 1e-9 * max(1, abs(a), abs(b))
        switch op {
        case .less: return a < b && !equal
        case .lessOrEqual: return a < b || equal
        case .greater: return a > b && !equal
        case .greaterOrEqual: return a > b || equal
        case .equal: return equal
        case .notEqual: return !equal
        default: return false
        }
    }

    static func missing(_ values: [EvaluatedValue]) -> Set<String>? {
        var names: Set<String> = []
        var any = false
        for case .unknown(let n) in values {
            any = true
            names.formUnion(n)
        }
        return any ? names : nil
    }

    func lookup(_ name: String) throws -> EvaluatedValue {
        guard let field = scope.fields[name] else { throw ExpressionError("unknown field '\(name)'") }
        if study.parameter(name) != nil {
            guard let value = study.parameterValue(name, site: site, sex: study.sex(in: values)) else { return .unknown([name]) }
            return .number(value)
        }
        guard let raw = values[name], !raw.isEmpty else { return .unknown([name]) }
        switch field.type {
        case .number:
            guard let n = Double(raw) else { return .unknown([name]) }
            return .number(n)
        case .boolean: return .boolean(raw == "yes")
        case .date:
            guard let d = DateParsing.day(String(raw.prefix(10))) else { return .unknown([name]) }
            return .date(d)
        case .text, .choice: return .text(raw)
        }
    }

    /// Calendar days from `a` to `b` (UTC dates): the same day is 0, the next day 1.
    public static func wholeDays(from a: Date, to b: Date) -> Int {
        Int(((b.timeIntervalSince1970 - a.timeIntervalSince1970) / 86_400).rounded(.down))
    }

    /// Completed years of age on `date`: the birthday itself counts; someone born on 29 February turns a year older on 1 March in common years.
    public static func completedYears(born: Date, on date: Date) -> Int {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let b = calendar.dateComponents([.year, .month, .day], from: born)
        let d = calendar.dateComponents([.year, .month, .day], from: date)
        var years = d.year! - b.year!
        if (d.month!, d.day!) < (b.month!, b.day!) { years -= 1 }
        return years
    }

    /// The inputs an expression reads, with their values for this participant.
    public func evidence(for expression: Expression) -> [Evidence] {
        return expression.references.map { name in
            let label = scope.fields[name]?.label ?? name
            if let parameter = study.parameter(name) {
                let value = study.parameterValue(name, site: site, sex: study.sex(in: values))
                let overridden = site.flatMap { s in study.sites.first { $0.code == s }?.parameters?[name] } != nil
                let note =
                    if let range = parameter.range { "site \(site ?? "")'s \(range.test) reference range, \(range.limit.rawValue) limit" } else {
                        overridden ? "site \(site ?? "") value" : "study default"
                    }
                return Evidence(name: name, label: label, value: value.map { FormValidator.format($0) }, unit: value == nil ? nil : parameter.unit, note: note)
            }
            var unit: String?
            if case .number(let u)? = scope.fields[name]?.type { unit = u }
            // A missing value has no unit to show.
            return Evidence(name: name, label: label, value: values[name], unit: values[name] == nil ? nil : unit)
        }
    }
}
