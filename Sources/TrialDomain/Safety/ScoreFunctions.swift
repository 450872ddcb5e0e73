import Foundation

/// The liver scores as expression functions with named inputs (`child_pugh(bilirubin: labs.total_bilirubin, …)`):
/// each number is converted from the field's unit to the one the formula takes, so a site's µmol/L works as well as mg/dL.
enum ScoreFunctions {
    /// Expression name → the score's name in `LiverScores`.
    static let scores: [String: String] = [
        "meld": "meld", "meld_na": "meld-na", "meld_3": "meld-3.0", "child_pugh": "child-pugh", "clif_c_of": "clif-c-of",
        "clif_c_aclf": "clif-c-aclf", "aarc": "aarc",
    ]
    static var names: [String] { scores.keys.sorted() }

    enum Input: Sendable {
        case number(unit: String, analyte: String?)
        case flag
        case choice
    }

    /// The inputs the formulas take, in their conventional units (see `ScoreInputs`).
    static let inputs: [String: Input] = [
        "bilirubin": .number(unit: "mg/dL", analyte: "bilirubin"), "creatinine": .number(unit: "mg/dL", analyte: "creatinine"),
        "albumin": .number(unit: "g/dL", analyte: "albumin"), "inr": .number(unit: "ratio", analyte: "ratio"),
        "sodium": .number(unit: "mmol/L", analyte: "sodium"), "lactate": .number(unit: "mmol/L", analyte: "lactate"),
        "wbc": .number(unit: "10^9/L", analyte: "count"), "map": .number(unit: "mm[Hg]", analyte: nil), "age": .number(unit: "a", analyte: nil),
        "pao2_fio2": .number(unit: "mm[Hg]", analyte: nil), "spo2_fio2": .number(unit: "1", analyte: nil),
        "encephalopathy": .number(unit: "1", analyte: nil),
        "female": .flag, "dialysis": .flag, "vasopressors": .flag, "ascites": .choice,
    ]

    static func check(_ name: String, _ arguments: [NamedArgument], scope: ExpressionScope) throws -> Expression {
        guard scores[name] != nil else { throw ExpressionError("unknown score '\(name)' (known: \(names.joined(separator: ", ")))") }
        var seen: Set<String> = []
        var checked: [NamedArgument] = []
        for argument in arguments {
            guard let input = inputs[argument.label] else {
                throw ExpressionError("\(name) has no input '\(argument.label)' (inputs: \(inputs.keys.sorted().joined(separator: ", ")))")
            }
            guard seen.insert(argument.label).inserted else { throw ExpressionError("\(name): '\(argument.label)' is given twice") }
            let (e, type) = try scope.check(argument.value)
            switch (input, type) {
            case (.number(let unit, let analyte), .number(let from)):
                checked.append(NamedArgument(argument.label, try scope.fit(e, from, to: unit, analyte: analyte ?? scope.analyte(of: e), context: argument.value)))
            case (.flag, .boolean), (.choice, .choice), (.choice, .text):
                checked.append(NamedArgument(argument.label, e))
            default:
                throw ExpressionError("\(name): \(argument.label) cannot be \(type)")
            }
        }
        return .score(name, checked)
    }

    /// The score, or the names of what is missing; an input the formula refuses (such as 0) also leaves it unknown.
    static func evaluate(_ name: String, _ values: [String: EvaluatedValue]) -> EvaluatedValue {
        var missing: Set<String> = []
        for case .unknown(let names) in values.values { missing.formUnion(names) }
        if !missing.isEmpty { return .unknown(missing) }
        let x = scoreInputs(values)
        do {
            return .number(try LiverScores.compute(scores[name] ?? name, x).score)
        } catch ScoreError.missing(let inputs) {
            return .unknown(Set(inputs.map { "\(name): \($0)" }))
        } catch {
            return .unknown(["\(name): \(error)"])
        }
    }

    static func scoreInputs(_ values: [String: EvaluatedValue]) -> ScoreInputs {
        func number(_ key: String) -> Double? { if case .number(let n)? = values[key] { return n } else { return nil } }
        func flag(_ key: String) -> Bool? { if case .boolean(let b)? = values[key] { return b } else { return nil } }
        var x = ScoreInputs()
        x.bilirubin = number("bilirubin")
        x.creatinine = number("creatinine")
        x.albumin = number("albumin")
        x.inr = number("inr")
        x.sodium = number("sodium")
        x.lactate = number("lactate")
        x.wbc = number("wbc")
        x.map = number("map")
        x.age = number("age")
        x.pao2Fio2 = number("pao2_fio2")
        x.spo2Fio2 = number("spo2_fio2")
        x.encephalopathyGrade = number("encephalopathy").map { Int($0) }
        x.female = flag("female")
        x.dialysis = flag("dialysis") ?? false
        x.vasopressors = flag("vasopressors") ?? false
        if case .text(let t)? = values["ascites"] { x.ascites = t }
        return x
    }
}

/// The scores of one visit, from its lab results (catalogue codes, canonical units) and the findings its forms hold for
/// the score inputs their fields are tagged with (`score: ascites`): the one home of the mapping to the formulas' units.
public enum VisitScores {
    /// The catalogue lab behind each numeric input, and the conventional unit the formulas take.
    static let labInputs: [(lab: String, input: String)] = [
        ("BILI", "bilirubin"), ("CREAT", "creatinine"), ("ALB", "albumin"), ("INR", "inr"), ("SODIUM", "sodium"), ("LACTATE", "lactate"), ("WBC", "wbc"),
    ]

    /// Inputs for the formulas; `labs` by catalogue code in canonical units, `findings` by score input name as entered.
    public static func inputs(
        labs: [String: Double], findings: [String: String], female: Bool?, age: Double?, conversions: UnitConversions
    ) -> ScoreInputs {
        var values: [String: EvaluatedValue] = [:]
        for (lab, input) in labInputs {
            guard let value = labs[lab], let test = LabCatalogue.test(lab), case .number(let unit, _)? = ScoreFunctions.inputs[input],
                let factor = conversions.factor(from: test.unit, to: unit, analyte: test.analyte)
            else { continue }
            values[input] = .number(value * factor)
        }
        for (input, raw) in findings {
            switch ScoreFunctions.inputs[input] {
            case .number?: if let n = Double(raw) { values[input] = .number(n) }
            case .flag?: values[input] = .boolean(raw == "yes")
            case .choice?: values[input] = .text(raw)
            case nil: continue
            }
        }
        if let female { values["female"] = .boolean(female) }
        if let age { values["age"] = .number(age) }
        return ScoreFunctions.scoreInputs(values)
    }
}
