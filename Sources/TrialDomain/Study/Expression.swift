import Foundation

/// A criterion written the way a protocol reads: `screening_labs.inr >= 1.5 or screening_labs.pt_activity < 40`.
public indirect enum Expression: Equatable, Sendable {
    case number(Double)
    case text(String)
    case boolean(Bool)
    /// `form.field`, or a parameter's code.
    case reference(String)
    case call(String, [Expression])
    case negate(Expression)
    case not(Expression)
    case binary(BinaryOperator, Expression, Expression)
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
    case number(Double), identifier(String), text(String), symbol(String), end
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
                result.append(.number(value))
                i = j
                continue
            }
            if c.isLetter || c == "_" {
                var j = i
                while j < chars.count, chars[j].isLetter || chars[j].isNumber || chars[j] == "_" || chars[j] == "." { j += 1 }
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
            if "<>=+-*/(),%".contains(c) {
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
    public static func parse(_ source: String) throws -> Expression {
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
        if case .symbol(let s) = peek, let op = BinaryOperator(rawValue: s), op.isComparison {
            _ = advance()
            return .binary(op, left, try sum())
        }
        return left
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
        case .text(let s):
            return .text(s)
        case .identifier(let name):
            switch name.lowercased() {
            case "yes", "true": return .boolean(true)
            case "no", "false": return .boolean(false)
            default: break
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

/// Resolves names in expressions against a study definition.
public struct ExpressionScope: Sendable {
    public var fields: [String: (label: String, type: ValueType)]

    public init(study: StudyDefinition) {
        var fields: [String: (String, ValueType)] = [:]
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
            }
        }
        for parameter in study.parameters {
            fields[parameter.code] = (parameter.label, .number(unit: parameter.unit))
        }
        self.fields = fields
    }

    /// Functions: their argument types and result.
    static let functions: [String: (arguments: [ValueType], result: ValueType)] = [
        // Whole days from the first date to the second.
        "days_between": ([.date, .date], .number(unit: "d")),
        // Completed years of age on the second date, for a birth date.
        "age_years": ([.date, .date], .number(unit: "a")),
    ]

    public func typeOf(_ expression: Expression) throws -> ValueType {
        switch expression {
        case .number: return .number(unit: nil)
        case .text: return .text
        case .boolean: return .boolean
        case .reference(let name):
            guard let field = fields[name] else { throw ExpressionError("unknown field '\(name)'") }
            return field.type
        case .call(let name, let arguments):
            guard let function = Self.functions[name] else {
                throw ExpressionError("unknown function '\(name)' (known: \(Self.functions.keys.sorted().joined(separator: ", ")))")
            }
            guard arguments.count == function.arguments.count else {
                throw ExpressionError("\(name) takes \(function.arguments.count) arguments, not \(arguments.count)")
            }
            for (argument, expected) in zip(arguments, function.arguments) where try typeOf(argument) != expected {
                throw ExpressionError("\(name) needs \(expected) for \(render(argument))")
            }
            return function.result
        case .negate(let inner):
            guard case .number = try typeOf(inner) else { throw ExpressionError("'-' needs a number, not \(render(inner))") }
            return try typeOf(inner)
        case .not(let inner):
            guard try typeOf(inner) == .boolean else { throw ExpressionError("'not' needs yes/no, not \(render(inner))") }
            return .boolean
        case .binary(let op, let left, let right):
            let l = try typeOf(left), r = try typeOf(right)
            if op == .and || op == .or {
                guard l == .boolean, r == .boolean else {
                    throw ExpressionError("'\(op.rawValue)' joins yes/no conditions; \(render(l == .boolean ? right : left)) is \(l == .boolean ? r : l)")
                }
                return .boolean
            }
            if op.isArithmetic {
                guard case .number(let lu) = l, case .number(let ru) = r else {
                    throw ExpressionError("'\(op.rawValue)' needs numbers in \(render(expression))")
                }
                switch op {
                case .add, .subtract:
                    if let lu, let ru, lu != ru { throw unitMismatch(left, lu, right, ru) }
                    return .number(unit: lu ?? ru)
                default:
                    // Scaling by a bare number keeps the unit: 10 × ULN is still µmol/L.
                    if lu != nil && ru != nil { throw ExpressionError("cannot multiply or divide \(render(left)) by \(render(right)): both carry units") }
                    return .number(unit: lu ?? ru)
                }
            }
            switch (l, r) {
            case (.number(let lu), .number(let ru)):
                if let lu, let ru, lu != ru { throw unitMismatch(left, lu, right, ru) }
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
                throw ExpressionError("cannot compare \(render(left)) (\(l)) with \(render(right)) (\(r))")
            }
            return .boolean
        }
    }

    func unitMismatch(_ left: Expression, _ lu: String, _ right: Expression, _ ru: String) -> ExpressionError {
        ExpressionError("cannot compare \(render(left)) in \(lu) with \(render(right)) in \(ru)")
    }

    /// Parses and checks that the expression is a yes/no condition.
    public func checkCondition(_ source: String) throws -> Expression {
        let expression = try ExpressionParser.parse(source)
        let type = try typeOf(expression)
        guard type == .boolean else { throw ExpressionError("must be a yes/no condition, but gives \(type)") }
        return expression
    }
}

/// The expression written back as text, for messages.
public func render(_ expression: Expression) -> String {
    switch expression {
    case .number(let v): FormValidator.format(v)
    case .text(let s): "\"\(s)\""
    case .boolean(let b): b ? "yes" : "no"
    case .reference(let name): name
    case .call(let name, let args): "\(name)(\(args.map(render).joined(separator: ", ")))"
    case .negate(let e): "-\(render(e))"
    case .not(let e): "not \(render(e))"
    case .binary(let op, let l, let r): "\(render(l)) \(op.rawValue) \(render(r))"
    }
}
