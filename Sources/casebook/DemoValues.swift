import Foundation
import TrialDomain

/// Synthetic form values for any study, read from its definition: a condition the demo wants to hold (an inclusion
/// criterion, a pre-dose check) or not (an exclusion) steers the fields it names, and every other field gets a plain
/// value of its type within its range. Nothing here names a study's forms or fields.
struct DemoValues {
    let study: StudyDefinition
    let scope: ExpressionScope
    let site: String
    /// The day the values describe (a screening day, a visit's day).
    let day: Date
    /// `form.field` → text as entered.
    var values: [String: String]
    var random: DemoRandom

    init(study: StudyDefinition, scope: ExpressionScope, site: String, day: Date, values: [String: String] = [:], random: DemoRandom) {
        self.study = study
        self.scope = scope
        self.site = site
        self.day = day
        self.values = values
        self.random = random
    }

    static func day(_ d: Date) -> String { String(AuditEntry.timestamp(d).prefix(10)) }
    static func minute(_ d: Date) -> String { String(AuditEntry.timestamp(d).prefix(16)) }

    func field(_ name: String) -> Field? {
        let parts = name.split(separator: ".").map(String.init)
        guard parts.count == 2 else { return nil }
        return study.form(parts[0])?.field(parts[1])
    }

    /// Steers values so that `condition` comes out `truth`, where its shape allows.
    mutating func want(_ condition: String, _ truth: Bool) {
        guard let expression = try? scope.checkCondition(condition) else { return }
        want(expression, truth)
    }

    mutating func want(_ e: TrialDomain.Expression, _ truth: Bool) {
        switch e {
        case .binary(.and, let a, let b):
            if truth { want(a, true); want(b, true) } else { want(a, false) }
        case .binary(.or, let a, let b):
            if truth { want(a, true) } else { want(a, false); want(b, false) }
        case .not(let inner):
            want(inner, !truth)
        case .within(let a, let span, let before, let b):
            guard case .reference(let name) = a, values[name] == nil, let reference = date(of: b), case .number(let days) = span else { return }
            let offset = truth ? random.uniform(0...max(0, days - 1)).rounded() : days + 5
            set(name, date: reference.addingTimeInterval(86_400 * (before ? -offset : offset)))
        case .binary(let op, let l, let r) where [.less, .lessOrEqual, .greater, .greaterOrEqual, .equal, .notEqual].contains(op):
            if steer(op, l, r, truth) { return }
            if steer(mirror(op), r, l, truth) { return }
            search(e, truth)
        default:
            break
        }
    }

    /// For what cannot be steered directly (a score over several fields): draws values for the fields it reads until
    /// it comes out as wanted, a few dozen tries at most.
    mutating func search(_ e: TrialDomain.Expression, _ truth: Bool) {
        let open = Self.names(in: e).filter { values[$0] == nil }.sorted()
        guard !open.isEmpty else { return }
        for _ in 0..<40 {
            var trial = values
            for name in open {
                guard let field = field(name) else { continue }
                switch field.type {
                case .number, .integer:
                    let lo = field.range?.min ?? 0, hi = field.range?.max ?? 100
                    let n = lo + (hi - lo) * pow(random.uniform(0...1), 3)
                    trial[name] = FormValidator.format(((field.type == .integer ? n.rounded() : n) * 100).rounded() / 100)
                case .choice:
                    let codes = (field.choices ?? []).map(\.code)
                    trial[name] = codes.isEmpty ? nil : codes[Int(random.uniform(0...Double(codes.count) - 0.01))]
                case .yesno: trial[name] = random.chance(0.5) ? "yes" : "no"
                default: continue
                }
            }
            if (try? Evaluator(study: study, site: site, values: trial, scope: scope).evaluate(e)) == .boolean(truth) {
                values = trial
                return
            }
        }
    }

    static func names(in e: TrialDomain.Expression) -> Set<String> { Set(e.references) }

    func mirror(_ op: BinaryOperator) -> BinaryOperator {
        switch op {
        case .less: .greater
        case .lessOrEqual: .greaterOrEqual
        case .greater: .less
        case .greaterOrEqual: .lessOrEqual
        default: op
        }
    }

    /// `subject op constant`: sets the subject's field so the comparison comes out `truth`.
    mutating func steer(_ op: BinaryOperator, _ subject: TrialDomain.Expression, _ other: TrialDomain.Expression, _ truth: Bool) -> Bool {
        let scope = self.scope
        let evaluator = Evaluator(study: study, site: site, values: values, scope: scope)
        switch subject {
        case .reference(let name), .convert(.reference(let name), _, _, _):
            guard values[name] == nil, let field = field(name) else { return false }
            var factor = 1.0
            if case .convert(_, let from, let to, let analyte) = subject { factor = scope.conversions.factor(from: from, to: to, analyte: analyte) ?? 1 }
            switch (field.type, try? evaluator.evaluate(other)) {
            case (.number, .number(let c)?), (.integer, .number(let c)?):
                let target = number(op, c, truth) / factor
                set(name, number: field.type == .integer ? target.rounded() : target, field: field)
            case (.yesno, .boolean(let b)?):
                values[name] = (op == .equal) == truth ? (b ? "yes" : "no") : (b ? "no" : "yes")
            case (.choice, .text(let code)?):
                let others = (field.choices ?? []).map(\.code).filter { $0 != code }
                values[name] = (op == .equal) == truth ? code : (others.first ?? code)
            default:
                return false
            }
            return true
        case .call("age_years", let args) where args.count == 2:
            guard case .reference(let birth) = args[0], values[birth] == nil, let on = date(of: args[1]),
                case .number(let c)? = try? evaluator.evaluate(other)
            else { return false }
            let years = number(op, c, truth).rounded(.down)
            set(birth, date: on.addingTimeInterval(-86_400 * (365.25 * years + 100)))
            return true
        case .call("days_between", let args) where args.count == 2:
            guard case .reference(let first) = args[0], values[first] == nil, let second = date(of: args[1]),
                case .number(let c)? = try? evaluator.evaluate(other)
            else { return false }
            set(first, date: second.addingTimeInterval(-86_400 * number(op, c, truth).rounded()))
            return true
        default:
            return false
        }
    }

    /// A number on the wanted side of `c`: close to it, as real values near a threshold are.
    mutating func number(_ op: BinaryOperator, _ c: Double, _ truth: Bool) -> Double {
        let span = max(1, abs(c) * 0.5)
        let above = random.uniform(0.05...1) * span, below = random.uniform(0.05...1) * span
        switch (op, truth) {
        case (.greater, true), (.greaterOrEqual, true), (.less, false), (.lessOrEqual, false): return c + above
        case (.less, true), (.lessOrEqual, true), (.greater, false), (.greaterOrEqual, false): return max(0, c - below)
        case (.equal, true), (.notEqual, false): return c
        default: return c + above
        }
    }

    func date(of e: TrialDomain.Expression) -> Date? {
        guard case .reference(let name) = e, let raw = values[name] else { return nil }
        return DateParsing.instant(raw) ?? DateParsing.day(raw)
    }

    mutating func set(_ name: String, date: Date) {
        guard let field = field(name) else { return }
        values[name] = field.type == .datetime ? Self.minute(date) : Self.day(date)
    }

    mutating func set(_ name: String, number: Double, field: Field) {
        var n = number
        if let min = field.range?.min { n = max(n, min) }
        if let max = field.range?.max { n = min(n, max) }
        values[name] = FormValidator.format((n * 100).rounded() / 100)
    }

    /// The `form.field` names an expression reads, through the derived fields it names.
    static func names(in source: String, scope: ExpressionScope) -> Set<String> {
        guard let e = try? scope.check(try ExpressionParser.parse(source)).expression else { return [] }
        return names(in: e)
    }

    /// Plain values for every field of `form` not set yet: required ones and those in `always` (read by a rule), others mostly.
    mutating func fill(_ form: Form, at time: Date, ranges: [ReferenceRange], always: Set<String> = []) {
        for field in form.fields {
            let name = "\(form.code).\(field.code)"
            guard values[name] == nil, field.isRequired || always.contains(name) || random.chance(0.8) else { continue }
            switch field.type {
            case .number, .integer:
                var n: Double
                if let lab = field.lab, let range = ReferenceRange.pick(ranges, test: lab, sex: nil, age: nil, on: time),
                    let test = study.labTest(lab), let factor = UnitConversions(study: study).toCanonical(analyte: test.analyte, unit: field.unit ?? test.unit)
                {
                    // Around the site's range, in the field's unit: mostly normal, now and then raised.
                    let high = range.high ?? (range.low ?? 1) * 2, low = range.low ?? high / 4
                    n = random.uniform(low...(high * (random.chance(0.2) ? 3 : 1))) / factor
                } else if let typical = field.typical, let lo = typical.min, let hi = typical.max {
                    // As precise as the bounds are written: 36.1–38 draws 37.2, 51–90 draws 74.
                    let places = [lo, hi].map { FormValidator.format($0).split(separator: ".").dropFirst().first?.count ?? 0 }.max() ?? 0
                    let scale = pow(10, Double(places))
                    n = (random.uniform(lo...hi) * scale).rounded() / scale
                } else {
                    let lo = field.range?.min ?? 0, hi = field.range?.max ?? 100
                    n = lo + (hi - lo) * random.uniform(0.02...0.2)
                }
                set(name, number: field.type == .integer ? n.rounded() : n, field: field)
            case .yesno:
                values[name] = random.chance(0.15) ? "yes" : "no"
            case .choice:
                values[name] = field.choices?.first?.code
            case .date:
                set(name, date: time.addingTimeInterval(-86_400 * random.uniform(0...3).rounded()))
            case .datetime:
                values[name] = Self.minute(time)
            case .text:
                values[name] = field.code.contains("version") ? study.consent.current : "demo"
            }
        }
    }

    /// Fills `form` as `fill` does, drawing it again (a few dozen times at most) while one of the study's edit checks
    /// for it at `visit` fails, so that the demo keeps the study's own rules without leaning its proportions.
    mutating func fillChecked(_ form: Form, visit: String, at time: Date, ranges: [ReferenceRange], always: Set<String> = []) {
        let prefix = "\(form.code)."
        let checks = (study.dataManagement?.editChecks ?? []).filter { check in
            check.visits(in: study).contains(visit) && check.fields.contains { $0.hasPrefix(prefix) }
        }
        guard !checks.isEmpty else { return fill(form, at: time, ranges: ranges, always: always) }
        let start = values
        for _ in 0..<40 {
            values = start
            fill(form, at: time, ranges: ranges, always: always)
            let own = values.filter { $0.key.hasPrefix(prefix) }
            let failed = EditChecks.run(study: study, site: site, values: values, visitValues: [visit: own]).contains { finding in
                finding.visit == visit && finding.outcome == .failed && checks.contains(finding.check)
            }
            if !failed { return }
        }
    }

    /// The values of one form, keyed by field code.
    func form(_ form: Form) -> [String: String] {
        var out: [String: String] = [:]
        for field in form.fields { if let v = values["\(form.code).\(field.code)"] { out[field.code] = v } }
        return out
    }
}
