import Foundation

/// Inputs in conventional units: bilirubin and creatinine mg/dL, albumin g/dL, sodium mmol/L, lactate mmol/L, WBC 10^9/L, MAP mmHg.
public struct ScoreInputs: Equatable, Sendable {
    public var bilirubin: Double?
    public var inr: Double?
    public var creatinine: Double?
    public var sodium: Double?
    public var albumin: Double?
    public var female: Bool?
    public var dialysis: Bool = false
    public var ascites: String?
    public var encephalopathyGrade: Int?
    public var lactate: Double?
    public var age: Double?
    public var wbc: Double?
    public var map: Double?
    public var vasopressors: Bool = false
    public var pao2Fio2: Double?
    public var spo2Fio2: Double?
    public init() {}
}

public struct ScoreResult: Equatable, Sendable {
    public var name: String
    public var score: Double
    /// The inputs after the formula's bounds and caps.
    public var inputs: [String: Double]
    public var category: String?
    public var source: String
}

public enum ScoreError: Error, Equatable, Sendable, CustomStringConvertible {
    case missing([String])
    case invalid(String)
    public var description: String {
        switch self {
        case .missing(let names): "missing input: " + names.map { "--\($0)" }.joined(separator: ", ")
        case .invalid(let why): why
        }
    }
}

public enum LiverScores {
    public static let names = ["meld", "meld-na", "meld-3.0", "child-pugh", "clif-c-of", "clif-c-aclf", "aarc"]

    public static func compute(_ name: String, _ x: ScoreInputs) throws -> ScoreResult {
        switch name {
        case "meld": return try meld(x)
        case "meld-na": return try meldNa(x)
        case "meld-3.0": return try meld3(x)
        case "child-pugh": return try childPugh(x)
        case "clif-c-of": return try clifOF(x)
        case "clif-c-aclf": return try clifACLF(x)
        case "aarc": return try aarc(x)
        default: throw ScoreError.invalid("score: unknown '\(name)' (known: \(names.joined(separator: ", ")))")
        }
    }

    static func require(_ pairs: [(String, Double?)]) throws -> [Double] {
        let missing = pairs.filter { $0.1 == nil }.map(\.0)
        if !missing.isEmpty { throw ScoreError.missing(missing) }
        for (name, value) in pairs where !(value! > 0) || !value!.isFinite {
            throw ScoreError.invalid("--\(name): must be more than 0")
        }
        return pairs.map { $0.1! }
    }

    /// MELD as UNOS computes it (Kamath PS et al., Hepatology 2001;33:464; OPTN policy): inputs below 1.0 are set to 1.0,
    /// creatinine is capped at 4.0 and set to 4.0 on dialysis; 10 × (0.957 ln Cr + 0.378 ln bilirubin + 1.120 ln INR + 0.643), capped at 40.
    public static func meld(_ x: ScoreInputs) throws -> ScoreResult {
        let v = try require([("bilirubin", x.bilirubin), ("inr", x.inr), ("creatinine", x.creatinine)])
        let b = max(v[0], 1), inr = max(v[1], 1), cr = x.dialysis ? 4 : min(max(v[2], 1), 4)
        let score = min(10 * (0.957 * log(cr) + 0.378 * log(b) + 1.120 * log(inr) + 0.643), 40)
        return ScoreResult(
            name: "meld", score: score, inputs: ["bilirubin": b, "inr": inr, "creatinine": cr], category: nil,
            source: "Kamath PS et al. Hepatology 2001;33:464-470, with the OPTN/UNOS bounds")
    }

    /// MELD-Na as OPTN/UNOS applies it since 2016 (Kim WR et al., N Engl J Med 2008;359:1018): sodium bounded to 125–137;
    /// when MELD (rounded to the tenth) is above 11, MELD + 1.32 (137 − Na) − 0.033 × MELD × (137 − Na); capped at 40.
    public static func meldNa(_ x: ScoreInputs) throws -> ScoreResult {
        let base = try meld(x)
        guard let sodiumValue = x.sodium else { throw ScoreError.missing(["sodium"]) }
        let na = min(max(sodiumValue, 125), 137)
        let m = (base.score * 10).rounded() / 10
        let score = m > 11 ? min(m + 1.32 * (137 - na) - 0.033 * m * (137 - na), 40) : m
        var inputs = base.inputs
        inputs["sodium"] = na
        return ScoreResult(name: "meld-na", score: score, inputs: inputs, category: nil, source: "Kim WR et al. N Engl J Med 2008;359:1018-1026; OPTN policy 2016")
    }

    /// MELD 3.0 (Kim WR et al., Gastroenterology 2021;161:1887-1895): bilirubin, INR, creatinine at least 1.0, creatinine at most 3.0
    /// (3.0 on dialysis), sodium 125–137, albumin 1.5–3.5 g/dL.
    public static func meld3(_ x: ScoreInputs) throws -> ScoreResult {
        let v = try require([("bilirubin", x.bilirubin), ("inr", x.inr), ("creatinine", x.creatinine), ("sodium", x.sodium), ("albumin", x.albumin)])
        guard let female = x.female else { throw ScoreError.missing(["sex"]) }
        let b = max(v[0], 1), inr = max(v[1], 1), cr = x.dialysis ? 3 : min(max(v[2], 1), 3)
        let na = min(max(v[3], 125), 137), alb = min(max(v[4], 1.5), 3.5)
        let score = 1.33 * (female ? 1 : 0) + 4.56 * log(b) + 0.82 * (137 - na) - 0.24 * (137 - na) * log(b) + 9.09 * log(inr)
            + 11.14 * log(cr) + 1.85 * (3.5 - alb) - 1.83 * (3.5 - alb) * log(cr) + 6
        return ScoreResult(
            name: "meld-3.0", score: min(score, 40), inputs: ["bilirubin": b, "inr": inr, "creatinine": cr, "sodium": na, "albumin": alb, "female": female ? 1 : 0],
            category: nil, source: "Kim WR et al. Gastroenterology 2021;161:1887-1895")
    }

    static func ascitesPoints(_ text: String?) throws -> Int {
        switch text {
        case "none"?: return 1
        case "mild"?: return 2
        case "moderate-severe"?: return 3
        case nil: throw ScoreError.missing(["ascites"])
        default: throw ScoreError.invalid("--ascites: must be none, mild or moderate-severe")
        }
    }

    static func heGrade(_ x: ScoreInputs) throws -> Int {
        guard let grade = x.encephalopathyGrade else { throw ScoreError.missing(["encephalopathy-grade"]) }
        guard (0...4).contains(grade) else { throw ScoreError.invalid("--encephalopathy-grade: must be 0 to 4 (West Haven)") }
        return grade
    }

    /// Child–Pugh (Pugh RN et al., Br J Surg 1973;60:646-649, with INR for prothrombin time): bilirubin < 2 / 2–3 / > 3 mg/dL,
    /// albumin > 3.5 / 2.8–3.5 / < 2.8 g/dL, INR < 1.7 / 1.7–2.3 / > 2.3, ascites, encephalopathy; class A 5–6, B 7–9, C 10–15.
    public static func childPugh(_ x: ScoreInputs) throws -> ScoreResult {
        let v = try require([("bilirubin", x.bilirubin), ("albumin", x.albumin), ("inr", x.inr)])
        let bili = v[0] < 2 ? 1 : (v[0] <= 3 ? 2 : 3)
        let alb = v[1] > 3.5 ? 1 : (v[1] >= 2.8 ? 2 : 3)
        let inr = v[2] < 1.7 ? 1 : (v[2] <= 2.3 ? 2 : 3)
        let asc = try ascitesPoints(x.ascites)
        let he = try heGrade(x)
        let hePoints = he == 0 ? 1 : (he <= 2 ? 2 : 3)
        let total = bili + alb + inr + asc + hePoints
        return ScoreResult(
            name: "child-pugh", score: Double(total),
            inputs: ["bilirubin": v[0], "albumin": v[1], "inr": v[2], "ascites_points": Double(asc), "encephalopathy_grade": Double(he)],
            category: total <= 6 ? "A" : (total <= 9 ? "B" : "C"), source: "Pugh RN et al. Br J Surg 1973;60:646-649")
    }

    /// CLIF-C OF (Jalan R et al., J Hepatol 2014;61:1038-1047): six organ subscores of 1–3, total 6–18.
    public static func clifOF(_ x: ScoreInputs) throws -> ScoreResult {
        let v = try require([("bilirubin", x.bilirubin), ("creatinine", x.creatinine), ("inr", x.inr), ("map", x.map)])
        let he = try heGrade(x)
        let liver = v[0] < 6 ? 1 : (v[0] < 12 ? 2 : 3)
        let kidney = x.dialysis || v[1] >= 3.5 ? 3 : (v[1] >= 2 ? 2 : 1)
        let brain = he == 0 ? 1 : (he <= 2 ? 2 : 3)
        let coagulation = v[2] < 2 ? 1 : (v[2] < 2.5 ? 2 : 3)
        let circulation = x.vasopressors ? 3 : (v[3] >= 70 ? 1 : 2)
        let respiration: Int
        if let pf = x.pao2Fio2 {
            respiration = pf > 300 ? 1 : (pf > 200 ? 2 : 3)
        } else if let sf = x.spo2Fio2 {
            respiration = sf > 357 ? 1 : (sf > 214 ? 2 : 3)
        } else {
            throw ScoreError.missing(["pao2-fio2 or --spo2-fio2"])
        }
        let total = liver + kidney + brain + coagulation + circulation + respiration
        return ScoreResult(
            name: "clif-c-of", score: Double(total),
            inputs: ["liver": Double(liver), "kidney": Double(kidney), "brain": Double(brain), "coagulation": Double(coagulation),
                     "circulation": Double(circulation), "respiration": Double(respiration)],
            category: nil, source: "Jalan R et al. J Hepatol 2014;61:1038-1047")
    }

    /// CLIF-C ACLF = 10 × (0.33 × CLIF-C OFs + 0.04 × age + 0.63 × ln(WBC ×10^9/L) − 2) (Jalan R et al., J Hepatol 2014;61:1038-1047).
    public static func clifACLF(_ x: ScoreInputs) throws -> ScoreResult {
        let of = try clifOF(x)
        let v = try require([("age", x.age), ("wbc", x.wbc)])
        let score = 10 * (0.33 * of.score + 0.04 * v[0] + 0.63 * log(v[1]) - 2)
        var inputs = of.inputs
        inputs["clif_c_of"] = of.score
        inputs["age"] = v[0]
        inputs["wbc"] = v[1]
        return ScoreResult(name: "clif-c-aclf", score: score, inputs: inputs, category: nil, source: "Jalan R et al. J Hepatol 2014;61:1038-1047")
    }

    /// AARC score (Choudhury A et al., Gut 2017;66:541-553): bilirubin < 15 / 15–25 / > 25 mg/dL, HE 0 / I–II / III–IV,
    /// INR < 1.8 / 1.8–2.5 / > 2.5, lactate < 1.5 / 1.5–2.5 / > 2.5 mmol/L, creatinine < 0.7 / 0.7–1.5 / > 1.5 mg/dL;
    /// grade I 5–7, II 8–10, III 11–15.
    public static func aarc(_ x: ScoreInputs) throws -> ScoreResult {
        let v = try require([("bilirubin", x.bilirubin), ("inr", x.inr), ("lactate", x.lactate), ("creatinine", x.creatinine)])
        let he = try heGrade(x)
        let bili = v[0] < 15 ? 1 : (v[0] <= 25 ? 2 : 3)
        let hePoints = he == 0 ? 1 : (he <= 2 ? 2 : 3)
        let inr = v[1] < 1.8 ? 1 : (v[1] <= 2.5 ? 2 : 3)
        let lactate = v[2] < 1.5 ? 1 : (v[2] <= 2.5 ? 2 : 3)
        let cr = v[3] < 0.7 ? 1 : (v[3] <= 1.5 ? 2 : 3)
        let total = bili + hePoints + inr + lactate + cr
        return ScoreResult(
            name: "aarc", score: Double(total),
            inputs: ["bilirubin": v[0], "encephalopathy_grade": Double(he), "inr": v[1], "lactate": v[2], "creatinine": v[3]],
            category: total <= 7 ? "I" : (total <= 10 ? "II" : "III"), source: "Choudhury A et al. Gut 2017;66:541-553")
    }
}
