import Foundation

/// A criterion written the way a protocol reads: `screening_labs.inr >= 1.5 or screening_labs.pt_activity < 40`.
public indirect enum Expression: Equatable, Sendable {
    case number(Double)
    /// A number with its unit, as a protocol writes a threshold: `5 mg/dL`, `4w`.
    case quantity(Double, String)
    case text(String)
    case boolean(Bool)
    /// `form.field`, or a parameter's code.
    case reference(String)
    case call(String, [Expression])
    /// A score by name with named inputs: `child_pugh(bilirubin: labs.bilirubin, albumin: …)`.
    case score(String, [NamedArgument])
    case negate(Expression)
    case not(Expression)
    case binary(BinaryOperator, Expression, Expression)
    /// `date within 4w before other`: the first date is at most that long before (or after) the second, the same day included.
    case within(Expression, Expression, before: Bool, Expression)
    /// A value converted between two units of one analyte or of time; put in by the scope, never written.
    case convert(Expression, from: String, to: String, analyte: String?)
}

extension Expression {
    /// Every name the expression reads (`form.field`, parameters), in the order they first appear.
    public var references: [String] {
        var names: [String] = []
        func walk(_ e: Expression) {
            switch e {
            case .reference(let n): if !names.contains(n) { names.append(n) }
            case .call(_, let args): args.forEach(walk)
            case .score(_, let args): args.forEach { walk($0.value) }
            case .negate(let x), .not(let x), .convert(let x, _, _, _): walk(x)
            case .binary(_, let l, let r): walk(l); walk(r)
            case .within(let a, let span, _, let b): walk(a); walk(span); walk(b)
            default: break
            }
        }
        walk(self)
        return names
    }
}

public struct NamedArgument: Equatable, Sendable {
    public var label: String
    public var value: Expression
    public init(_ label: String, _ value: Expression) {
        self.label = label
        self.value = value
    }
}

public enum BinaryOperator: String, Equatable, Sendable {
    case and, or
    case less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">=", equal = "=", notEqual = "!="
    case add = "+", subtract = "-", multiply = "*", divide = "/"

    var isComparison: Bool { [.less, .lessOrEqual, .greater, .greaterOrEqual, .equal, .notEqual].contains(self) }
    var isArithmetic: Bool { [.add, .subtract, .multiply, .divide].contains(self) }
}

public struct ExpressionError: Error, Equatable, Sendable, CustomStringConvertible {
    public var message: String
    public init(_ message: String) { self.message = message }
    public var description: String { message }
}

// MARK: - Parsing

enum Token: Equatable {
    case number(Double), quantity(Double, String), identifier(String), text(String), symbol(String), end
}

/// Units a number may carry in an expression: time, and the lab units sites report.
enum QuantityUnits {
    static let time: [String: Double] = ["h": 1.0 / 24, "d": 1, "w": 7]
    /// Longest first, so that mg/dL is not read as mg.
    static let all: [String] = [
        "mg/dL", "umol/L", "µmol/L", "μmol/L", "mmol/L", "g/dL", "g/L", "IU/L", "U/L", "ukat/L", "µkat/L", "mEq/L", "10^9/L", "mm[Hg]",
        "mg/L", "ng/mL", "ng/dL", "pg/mL", "ug/L", "µg/L", "ug/dL", "µg/dL", "ug/mL", "µg/mL", "mg/mL", "IU/mL", "mIU/mL", "U/mL", "kU/L", "nmol/L", "pmol/L",
        "w", "d", "h",
    ].sorted { $0.count > $1.count }

    /// The unit at `at`, if one starts there and ends the word; time units only when written against the number (4w).
    static func longest(in chars: [Character], at: Int, attached: Bool) -> (text: String, length: Int)? {
        for unit in all {
            let u = Array(unit)
            guard at + u.count <= chars.count, Array(chars[at..<(at + u.count)]) == u else { continue }
            if time[unit] != nil && !attached { continue }
            let end = at + u.count
            if end < chars.count, chars[end].isLetter || chars[end].isNumber || chars[end] == "_" || chars[end] == "." { continue }
            return (unit, u.count)
        }
        return nil
    }
}

struct Lexer {
    static func tokens(_ source: String) throws -> [Token] {
        var result: [Token] = []
        let chars = Array(source)
        var i = 0
        // Typographic forms a clinician may paste from the protocol.
        let aliases: [Character: String] = ["≥": ">=", "≤": "<=", "≠": "!=", "×": "*", "·": "*", "÷": "/", "−": "-"]
        while i < chars.count {
            let c = chars[i]
            if c.isWhitespace { i += 1; continue }
            if let alias = aliases[c] { result.append(.symbol(alias)); i += 1; continue }
            if c.isNumber || (c == "." && i + 1 < chars.count && chars[i + 1].isNumber) {
                var j = i
                while j < chars.count, chars[j].isNumber || chars[j] == "." { j += 1 }
                guard let value = Double(String(chars[i..<j])) else { throw ExpressionError("'\(String(chars[i..<j]))' is not a number") }
                // A unit right after a number makes it a quantity: 5 mg/dL, 4w, 24h.
                var k = j
                while k < chars.count, chars[k] == " " { k += 1 }
                if let unit = QuantityUnits.longest(in: chars, at: k, attached: k == j) {
                    result.append(.quantity(value, unit.text))
                    i = k + unit.length
                } else {
                    result.append(.number(value))
                    i = j
                }
                continue
            }
            if c.isLetter || c == "_" {
                var j = i
                while j < chars.count, chars[j].isLetter || chars[j].isNumber || chars[j] == "_" || chars[j] == "." || chars[j] == "@" { j += 1 }
                result.append(.identifier(String(chars[i..<j])))
                i = j
                continue
            }
            if c == "\"" || c == "'" {
                var j = i + 1
                while j < chars.count, chars[j] != c { j += 1 }
                guard j < chars.count else { throw ExpressionError("a quoted text is not closed") }
                result.append(.text(String(chars[(i + 1)..<j])))
                i = j + 1
                continue
            }
            let two = i + 1 < chars.count ? String(chars[i...(i + 1)]) : ""
            if [">=", "<=", "!=", "=="].contains(two) {
                result.append(.symbol(two == "==" ? "=" : two))
                i += 2
                continue
            }
            if "<>=+-*/(),%:".contains(c) {
                result.append(.symbol(String(c)))
                i += 1
                continue
            }
            throw ExpressionError("unexpected character '\(c)'")
        }
        result.append(.end)
        return result
    }
}

public enum ExpressionParser {
    /// Parsing depends on the text alone, and a study has a few dozen expressions read for every participant: each
    /// text is parsed once (bounded, for texts a user types in a preview).
    nonisolated(unsafe) static var parsed: [String: Result<Expression, ExpressionError>] = [:]
    static let lock = NSLock()

    public static func parse(_ source: String) throws -> Expression {
        if let known = lock.withLock({ parsed[source] }) { return try known.get() }
        let result: Result<Expression, ExpressionError>
        do { result = .success(try parseAnew(source)) } catch let error as ExpressionError { result = .failure(error) }
        lock.withLock {
            if parsed.count >= 4096 { parsed.removeAll(keepingCapacity: true) }
            parsed[source] = result
        }
        return try result.get()
    }

    static func parseAnew(_ source: String) throws -> Expression {
        var parser = Parser(tokens: try Lexer.tokens(source))
        let expression = try parser.or()
        guard parser.peek == .end else { throw ExpressionError("unexpected \(parser.describe(parser.peek)) after a complete expression") }
        return expression
    }
}

struct Parser {
    var tokens: [Token]
    var position = 0

    var peek: Token { tokens[position] }
    mutating func advance() -> Token {
        defer { position += 1 }
        return tokens[position]
    }

    func describe(_ token: Token) -> String {
        switch token {
        case .number(let v): "number \(v)"
        case .quantity(let v, let u): "\(v) \(u)"
        case .identifier(let s): "'\(s)'"
        case .text(let s): "\"\(s)\""
        case .symbol(let s): "'\(s)'"
        case .end: "the end"
        }
    }

    func isWord(_ word: String) -> Bool {
        if case .identifier(let s) = peek { return s.lowercased() == word }
        return false
    }

    mutating func or() throws -> Expression {
        var left = try and()
        while isWord("or") {
            _ = advance()
            left = .binary(.or, left, try and())
        }
        return left
    }

    mutating func and() throws -> Expression {
        var left = try not()
        while isWord("and") {
            _ = advance()
            left = .binary(.and, left, try not())
        }
        return left
    }

    mutating func not() throws -> Expression {
        if isWord("not") {
            _ = advance()
            return .not(try not())
        }
        return try comparison()
    }

    mutating func comparison() throws -> Expression {
        let left = try sum()
        if isWord("within") {
            _ = advance()
            let span = try sum()
            guard isWord("before") || isWord("after") else { throw ExpressionError("'before' or 'after' expected after within \(render(span))") }
            let before = isWord("before")
            _ = advance()
            return .within(left, span, before: before, try sum())
        }
        guard case .symbol(let s) = peek, let op = BinaryOperator(rawValue: s), op.isComparison else { return left }
        _ = advance()
        var right = try sum()
        var result: Expression = .binary(op, left, right)
        // 18 <= age <= 60 reads as both comparisons, the middle shared.
        while case .symbol(let s) = peek, let next = BinaryOperator(rawValue: s), next.isComparison {
            _ = advance()
            let third = try sum()
            result = .binary(.and, result, .binary(next, right, third))
            right = third
        }
        return result
    }

    mutating func sum() throws -> Expression {
        var left = try product()
        while case .symbol(let s) = peek, s == "+" || s == "-" {
            _ = advance()
            left = .binary(s == "+" ? .add : .subtract, left, try product())
        }
        return left
    }

    mutating func product() throws -> Expression {
        var left = try unary()
        while case .symbol(let s) = peek, s == "*" || s == "/" {
            _ = advance()
            left = .binary(s == "*" ? .multiply : .divide, left, try unary())
        }
        return left
    }

    mutating func unary() throws -> Expression {
        if case .symbol("-") = peek {
            _ = advance()
            return .negate(try unary())
        }
        return try primary()
    }

    mutating func primary() throws -> Expression {
        let token = advance()
        switch token {
        case .number(let value):
            // "40 %" reads as the number 40 in a percent field.
            if case .symbol("%") = peek { _ = advance() }
            return .number(value)
        case .quantity(let value, let unit):
            return .quantity(value, unit)
        case .text(let s):
            return .text(s)
        case .identifier(let name):
            switch name.lowercased() {
            case "yes", "true": return .boolean(true)
            case "no", "false": return .boolean(false)
            default: break
            }
            if case .symbol("(") = peek, position + 2 < tokens.count, case .identifier = tokens[position + 1], tokens[position + 2] == .symbol(":") {
                _ = advance()
                var arguments = [NamedArgument]()
                while true {
                    guard case .identifier(let label) = advance(), advance() == .symbol(":") else {
                        throw ExpressionError("\(name)( takes named inputs like bilirubin: labs.total_bilirubin")
                    }
                    arguments.append(NamedArgument(label, try or()))
                    if case .symbol(",") = peek { _ = advance(); continue }
                    break
                }
                guard advance() == .symbol(")") else { throw ExpressionError("')' expected to close \(name)(") }
                return .score(name, arguments)
            }
            if case .symbol("(") = peek {
                _ = advance()
                var arguments: [Expression] = []
                if peek != .symbol(")") {
                    arguments.append(try or())
                    while case .symbol(",") = peek {
                        _ = advance()
                        arguments.append(try or())
                    }
                }
                guard advance() == .symbol(")") else { throw ExpressionError("')' expected to close \(name)(") }
                return .call(name, arguments)
            }
            return .reference(name)
        case .symbol("("):
            let inner = try or()
            guard advance() == .symbol(")") else { throw ExpressionError("')' expected") }
            return inner
        default:
            throw ExpressionError("a value was expected, found \(describe(token))")
        }
    }
}

// MARK: - Types

/// What an expression yields. A number carries its unit; a bare literal has none and fits any unit.
public enum ValueType: Equatable, Sendable, CustomStringConvertible {
    case number(unit: String?)
    case boolean
    case date
    case text
    case choice(codes: [String])

    public var description: String {
        switch self {
        case .number(let unit): unit.map { "a number in \($0)" } ?? "a number"
        case .boolean: "yes/no"
        case .date: "a date"
        case .text: "text"
        case .choice: "a choice"
        }
    }
}

/// Resolves names in expressions against a study definition, checks types and units, and puts in unit conversions.
public struct ExpressionScope: Sendable {
    public var fields: [String: (label: String, type: ValueType)]
    /// The analyte of a number field linked to a lab of the catalogue (`lab: BILI`), for converting its units.
    public var analytes: [String: String]
    public let conversions: UnitConversions
    /// Derived fields, checked and ready to put in where they are named.
    var derived: [String: Expression] = [:]
    /// What `adverse_events(since: …)` may count from: the study's anchors, its doses, and `previous_dose`.
    var timePoints: Set<String> = []

    public init(study: StudyDefinition) {
        var fields: [String: (String, ValueType)] = [:]
        var analytes: [String: String] = [:]
        for form in study.forms {
            for field in form.fields {
                let type: ValueType =
                    switch field.type {
                    case .number, .integer: .number(unit: field.unit ?? "1")
                    case .date, .datetime: .date
                    case .yesno: .boolean
                    case .text: .text
                    case .choice: .choice(codes: field.choices?.map(\.code) ?? [])
                    }
                fields["\(form.code).\(field.code)"] = (field.label, type)
                if let lab = field.lab.flatMap(study.labTest) { analytes["\(form.code).\(field.code)"] = lab.analyte }
                // `form.field@visit`: the value at one named visit, for checks across visits.
                for visit in form.visits where form.visits.count > 1 {
                    fields["\(form.code).\(field.code)@\(visit)"] = ("\(field.label) at \(visit)", type)
                    if let lab = field.lab.flatMap(study.labTest) { analytes["\(form.code).\(field.code)@\(visit)"] = lab.analyte }
                }
            }
        }
        for parameter in study.parameters {
            fields[parameter.code] = (parameter.label, .number(unit: parameter.unit))
        }
        // The consent record, for the consent criterion.
        if fields[ConsentRule.name] == nil { fields[ConsentRule.name] = (ConsentRule.label, .boolean) }
        self.fields = fields
        self.analytes = analytes
        self.conversions = UnitConversions(study: study)
        self.timePoints = Set(study.anchors.map(\.code) + DoseRules.codes(of: study) + [AdverseEventCount.previousDose])
        // In order, so each may use those before it; one that does not check is left out (validation names it).
        for field in study.derived ?? [] {
            guard let (expression, type) = try? check(try ExpressionParser.parse(field.expression)) else { continue }
            self.fields[field.code] = (field.label, type)
            self.derived[field.code] = expression
            if let analyte = analyte(of: expression) { self.analytes[field.code] = analyte }
        }
    }

    /// Functions: their argument types and result.
    static let functions: [String: (arguments: [ValueType], result: ValueType)] = [
        // Whole days from the first date to the second.
        "days_between": ([.date, .date], .number(unit: "d")),
        // Completed years of age on the second date, for a birth date.
        "age_years": ([.date, .date], .number(unit: "a")),
    ]

    /// Arithmetic on numbers: the logarithms and exp give a plain number; the others keep their argument's unit.
    static let mathFunctions: Set<String> = ["ln", "log10", "exp", "min", "max", "abs", "round"]

    public func typeOf(_ expression: Expression) throws -> ValueType { try check(expression).type }

    /// The expression with units made to agree (thresholds converted, conversions put in) and its type.
    public func check(_ expression: Expression) throws -> (expression: Expression, type: ValueType) {
        switch expression {
        case .number: return (expression, .number(unit: nil))
        case .quantity(_, let unit): return (expression, .number(unit: unit))
        case .text: return (expression, .text)
        case .boolean: return (expression, .boolean)
        case .convert(_, _, let to, _): return (expression, .number(unit: to))
        case .reference(let name):
            guard let field = fields[name] else { throw ExpressionError("unknown field '\(name)'") }
            return (derived[name] ?? expression, field.type)
        case .call(let name, let arguments):
            if Self.mathFunctions.contains(name) { return try checkMath(name, arguments) }
            guard let function = Self.functions[name] else {
                let known = (Array(Self.functions.keys) + Array(Self.mathFunctions) + ScoreFunctions.names).sorted()
                throw ExpressionError("unknown function '\(name)' (known: \(known.joined(separator: ", ")))")
            }
            guard arguments.count == function.arguments.count else {
                throw ExpressionError("\(name) takes \(function.arguments.count) arguments, not \(arguments.count)")
            }
            var checked: [Expression] = []
            for (argument, expected) in zip(arguments, function.arguments) {
                let (e, type) = try check(argument)
                guard type == expected else { throw ExpressionError("\(name) needs \(expected) for \(render(argument))") }
                checked.append(e)
            }
            return (.call(name, checked), function.result)
        case .score(AdverseEventCount.function, let arguments):
            return (try AdverseEventCount.check(arguments, scope: self), .number(unit: "1"))
        case .score(let name, let arguments):
            return (try ScoreFunctions.check(name, arguments, scope: self), .number(unit: "1"))
        case .within(let first, let span, let before, let second):
            let (a, at) = try check(first), (b, bt) = try check(second)
            guard at == .date, bt == .date else { throw ExpressionError("within compares two dates: \(render(expression))") }
            let (d, dt) = try check(span)
            guard case .number(let unit) = dt else { throw ExpressionError("within needs a span of time such as 4w, not \(render(span))") }
            return (.within(a, try fit(d, unit, to: "d", analyte: nil, context: expression), before: before, b), .boolean)
        case .negate(let inner):
            let (e, type) = try check(inner)
            guard case .number = type else { throw ExpressionError("'-' needs a number, not \(render(inner))") }
            return (.negate(e), type)
        case .not(let inner):
            let (e, type) = try check(inner)
            guard type == .boolean else { throw ExpressionError("'not' needs yes/no, not \(render(inner))") }
            return (.not(e), .boolean)
        case .binary(let op, let left, let right):
            var (l, lt) = try check(left)
            var (r, rt) = try check(right)
            if op == .and || op == .or {
                guard lt == .boolean, rt == .boolean else {
                    throw ExpressionError("'\(op.rawValue)' joins yes/no conditions; \(render(lt == .boolean ? right : left)) is \(lt == .boolean ? rt : lt)")
                }
                return (.binary(op, l, r), .boolean)
            }
            if op.isArithmetic {
                guard case .number(let lu) = lt, case .number(let ru) = rt else {
                    throw ExpressionError("'\(op.rawValue)' needs numbers in \(render(expression))")
                }
                switch op {
                case .add, .subtract:
                    if let lu, let ru, lu != ru {
                        (l, r) = try agree(l, lu, r, ru, context: expression)
                        return (.binary(op, l, r), .number(unit: lu))
                    }
                    return (.binary(op, l, r), .number(unit: lu ?? ru))
                default:
                    // A value over another of the same measure is a plain ratio (bilirubin / ULN).
                    if op == .divide, let lu, let ru, lu != "1", ru != "1" {
                        if lu != ru { (l, r) = try agree(l, lu, r, ru, context: expression) }
                        return (.binary(op, l, r), .number(unit: "1"))
                    }
                    // Scaling by a bare number keeps the unit: 10 × ULN is still µmol/L.
                    if let lu, let ru, lu != "1", ru != "1" { throw ExpressionError("cannot multiply \(render(left)) by \(render(right)): both carry units") }
                    if lu == "1" && ru != nil { return (.binary(op, l, r), .number(unit: ru)) }
                    return (.binary(op, l, r), .number(unit: lu ?? ru))
                }
            }
            switch (lt, rt) {
            case (.number(let lu), .number(let ru)):
                if let lu, let ru, lu != ru { (l, r) = try agree(l, lu, r, ru, context: expression) }
            case (.date, .date):
                break
            case (.boolean, .boolean), (.text, .text):
                guard op == .equal || op == .notEqual else { throw ExpressionError("\(render(left)) can only be compared with = or !=") }
            case (.choice(let codes), .text), (.text, .choice(let codes)):
                guard op == .equal || op == .notEqual else { throw ExpressionError("a choice can only be compared with = or !=") }
                let literal = if case .text(let s) = right { s } else if case .text(let s) = left { s } else { "" }
                if !codes.contains(literal) {
                    throw ExpressionError("'\(literal)' is not one of the choices (\(codes.joined(separator: ", ")))")
                }
            default:
                throw ExpressionError("cannot compare \(render(left)) (\(lt)) with \(render(right)) (\(rt))")
            }
            return (.binary(op, l, r), .boolean)
        }
    }

    func checkMath(_ name: String, _ arguments: [Expression]) throws -> (expression: Expression, type: ValueType) {
        var checked: [(Expression, String?)] = []
        for argument in arguments {
            let (e, type) = try check(argument)
            guard case .number(let unit) = type else { throw ExpressionError("\(name) needs numbers, not \(render(argument))") }
            checked.append((e, unit))
        }
        switch name {
        case "ln", "log10", "exp", "abs":
            guard checked.count == 1 else { throw ExpressionError("\(name) takes 1 argument, not \(checked.count)") }
            // The logarithm of a value is taken in the unit it is stored in; the result is a plain number.
            return (.call(name, [checked[0].0]), .number(unit: name == "abs" ? checked[0].1 : "1"))
        case "round":
            guard (1...2).contains(checked.count) else { throw ExpressionError("round takes a number and optionally its decimals") }
            return (.call(name, checked.map(\.0)), .number(unit: checked[0].1))
        default:  // min, max
            guard checked.count >= 2 else { throw ExpressionError("\(name) takes 2 or more numbers") }
            // The unit of the first argument that is not a written threshold, so thresholds convert to the field's unit.
            let unit = (checked.first { !isQuantity($0.0) && $0.1 != nil } ?? checked.first { $0.1 != nil })?.1
            let shared = checked.compactMap { analyte(of: $0.0) }.first
            var out: [Expression] = []
            for (e, u) in checked {
                if let unit, let u, u != unit { out.append(try fit(e, u, to: unit, analyte: shared, context: .call(name, arguments))) } else { out.append(e) }
            }
            return (.call(name, out), .number(unit: unit))
        }
    }

    /// The analyte an expression's number measures, when it comes straight from a linked lab field.
    func analyte(of expression: Expression) -> String? {
        switch expression {
        case .reference(let name): analytes[name]
        case .convert(_, _, _, let analyte): analyte
        case .negate(let e): analyte(of: e)
        case .binary(let op, let l, let r) where op == .multiply || op == .divide || op == .add || op == .subtract: analyte(of: l) ?? analyte(of: r)
        default: nil
        }
    }

    /// Makes two numbers in different units comparable: a written threshold is converted to the field's unit,
    /// otherwise the right side is converted to the left's. Refused when no conversion is known.
    func agree(_ l: Expression, _ lu: String, _ r: Expression, _ ru: String, context: Expression) throws -> (Expression, Expression) {
        do {
            if case .quantity = l, !isQuantity(r) { return (try fit(l, lu, to: ru, analyte: analyte(of: r), context: context), r) }
            return (l, try fit(r, ru, to: lu, analyte: analyte(of: l) ?? analyte(of: r), context: context))
        } catch {
            func side(_ e: Expression, _ unit: String) -> String { isQuantity(e) ? render(e) : "\(render(e)) in \(unit)" }
            throw ExpressionError("cannot compare \(side(l, lu)) with \(side(r, ru))")
        }
    }

    func isQuantity(_ e: Expression) -> Bool { if case .quantity = e { return true } else { return false } }

    /// `e`, measured in `from`, as a value in `to`.
    func fit(_ e: Expression, _ from: String?, to: String, analyte: String?, context: Expression) throws -> Expression {
        guard let from, from != to else {
            if case .quantity(let v, _) = e { return .number(v) }
            return e
        }
        guard let factor = conversions.factor(from: from, to: to, analyte: analyte) else {
            throw ExpressionError("cannot compare \(render(context)): no conversion from \(from) to \(to)" + (analyte.map { " for \($0)" } ?? ""))
        }
        if case .quantity(let v, _) = e { return .number(v * factor) }
        return .convert(e, from: from, to: to, analyte: analyte)
    }

    /// Parses, checks and converts: the expression ready to evaluate, which must be a yes/no condition.
    public func checkCondition(_ source: String) throws -> Expression {
        let (expression, type) = try check(try ExpressionParser.parse(source))
        guard type == .boolean else { throw ExpressionError("must be a yes/no condition, but gives \(type)") }
        return expression
    }

    /// Parses, checks and converts an expression that must give a number.
    public func checkNumber(_ source: String) throws -> Expression {
        let (expression, type) = try check(try ExpressionParser.parse(source))
        guard case .number = type else { throw ExpressionError("must give a number, but gives \(type)") }
        return expression
    }
}

/// Factors between units: time units among themselves, and a lab's units through its analyte
/// (the study's own factor first, where its definition states one, then the catalogue's).
public struct UnitConversions: Sendable {
    let overrides: [String: [String: Double]]

    public init(study: StudyDefinition) {
        var overrides: [String: [String: Double]] = [:]
        for lab in study.labs ?? [] {
            guard let test = study.labTest(lab.code) else { continue }
            // A lab the study adds has no catalogue factors: its canonical unit is 1, the rest as the study states.
            if LabCatalogue.test(lab.code) == nil { overrides[test.analyte, default: [:]][Units.normal(test.unit)] = 1 }
            for conversion in lab.conversions ?? [] { overrides[test.analyte, default: [:]][Units.normal(conversion.unit)] = conversion.factor }
        }
        self.overrides = overrides
    }

    /// The factor to canonical unit of one analyte, the study's where it states one.
    public func toCanonical(analyte: String, unit: String) -> Double? {
        overrides[analyte]?[Units.normal(unit)] ?? Units.factor(analyte: analyte, unit: unit)
    }

    /// What a value in `from` is multiplied by to read in `to`.
    public func factor(from: String, to: String, analyte: String?) -> Double? {
        if Units.normal(from) == Units.normal(to) { return 1 }
        if let f = QuantityUnits.time[from], let t = QuantityUnits.time[to] { return f / t }
        guard let analyte, let f = toCanonical(analyte: analyte, unit: from), let t = toCanonical(analyte: analyte, unit: to) else { return nil }
        return f / t
    }
}

/// The expression written back as text, for messages.
public func render(_ expression: Expression) -> String {
    switch expression {
    case .number(let v): FormValidator.format(v)
    case .quantity(let v, let u): QuantityUnits.time[u] != nil ? "\(FormValidator.format(v))\(u)" : "\(FormValidator.format(v)) \(u)"
    case .score(let name, let args): "\(name)(\(args.map { "\($0.label): \(render($0.value))" }.joined(separator: ", ")))"
    case .within(let a, let span, let before, let b): "\(render(a)) within \(render(span)) \(before ? "before" : "after") \(render(b))"
    case .convert(let e, _, let to, _): "\(render(e)) in \(to)"
    case .text(let s): "\"\(s)\""
    case .boolean(let b): b ? "yes" : "no"
    case .reference(let name): name
    case .call(let name, let args): "\(name)(\(args.map(render).joined(separator: ", ")))"
    case .negate(let e): "-\(render(e))"
    case .not(let e): "not \(render(e))"
    case .binary(let op, let l, let r): "\(render(l)) \(op.rawValue) \(render(r))"
    }
}
