import ArgumentParser
import Foundation
import TrialDomain
import TrialStandards

/// A clear message and exit code 2 for inputs that are missing or contradict each other.
func inputError(_ message: String) -> ExitCode {
    FileHandle.standardError.write(Data(("casebook: " + message + "\n").utf8))
    return ExitCode(2)
}

func printJSON(_ object: [String: Any]) throws {
    let data = try JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
    print(String(decoding: data, as: UTF8.self))
}

struct Grade: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Grade one laboratory value by CTCAE (v4.03 by default; v5.0 grades against an abnormal baseline).")
    @Option(help: "SDTM LBTESTCD (ALT, AST, BILI, GGT, INR, CREAT, PLAT, WBC) or the CTCAE term name.") var term: String
    @Option(help: "The result.") var value: Double
    @Option(help: "Unit of --value, --uln, --lln and --baseline (e.g. U/L, umol/L, mg/dL, 10^9/L).") var unit: String
    @Option(help: "Upper limit of normal.") var uln: Double
    @Option(help: "Lower limit of normal (needed for decreased counts).") var lln: Double?
    @Option(help: "The participant's baseline; above ULN is an abnormal baseline.") var baseline: Double?
    @Option(help: "CTCAE version: 4.03 or 5.0.") var version: String = "4.03"
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        let table: GradingTable
        do { table = try GradingTables.table(version: version) } catch let error as GradingError { throw inputError(error.description) }
        guard let graded = table.term(term) else {
            throw inputError(GradingError.unknownTerm(term, known: table.terms.map(\.code)).description)
        }
        let analyte = GradingTables.analyte(ofTerm: graded.code)
        func canonical(_ x: Double?, _ name: String) throws -> Double? {
            guard let x else { return nil }
            guard x.isFinite, x >= 0 else { throw inputError("--\(name): must be a number of at least 0") }
            do { return try Units.toCanonical(x, analyte: analyte, unit: unit) } catch let error as Units.Problem { throw inputError("--unit: \(error.message)") }
        }
        if let lln, lln > uln { throw inputError("--lln \(lln) is above --uln \(uln)") }
        let result: LabGrade
        do {
            result = try LabGrader.grade(
                table: table, term: graded.code, value: try canonical(value, "value")!, uln: try canonical(uln, "uln"), lln: try canonical(lln, "lln"),
                baseline: try canonical(baseline, "baseline"))
        } catch let error as GradingError {
            throw inputError(error.description)
        }
        if json {
            try printJSON([
                "term": result.term, "code": result.code, "version": result.version, "grade": result.grade, "basis": result.basis,
                "againstBaseline": result.againstBaseline, "value": value, "unit": unit,
            ])
        } else {
            print("Grade \(result.grade): \(result.basis)")
        }
    }
}

struct Score: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Compute a liver score: \(LiverScores.names.joined(separator: ", ")).",
        discussion: "Units default to bilirubin and creatinine mg/dL, albumin g/dL, sodium mmol/L, lactate mmol/L, WBC 10^9/L; give --NAME-unit for others.")
    @Argument(help: "The score.") var name: String
    @Option var bilirubin: Double?
    @Option(name: .customLong("bilirubin-unit")) var bilirubinUnit: String = "mg/dL"
    @Option var inr: Double?
    @Option var creatinine: Double?
    @Option(name: .customLong("creatinine-unit")) var creatinineUnit: String = "mg/dL"
    @Option var sodium: Double?
    @Option(name: .customLong("sodium-unit")) var sodiumUnit: String = "mmol/L"
    @Option var albumin: Double?
    @Option(name: .customLong("albumin-unit")) var albuminUnit: String = "g/dL"
    @Option(help: "female or male") var sex: String?
    @Flag(help: "Dialysis twice in the past week, or CVVHD.") var dialysis = false
    @Option(help: "none, mild or moderate-severe") var ascites: String?
    @Option(name: .customLong("encephalopathy-grade"), help: "West Haven grade 0-4") var encephalopathyGrade: Int?
    @Option var lactate: Double?
    @Option(name: .customLong("lactate-unit")) var lactateUnit: String = "mmol/L"
    @Option var age: Double?
    @Option var wbc: Double?
    @Option(name: .customLong("wbc-unit")) var wbcUnit: String = "10^9/L"
    @Option(help: "Mean arterial pressure, mmHg.") var map: Double?
    @Flag var vasopressors = false
    @Option(name: .customLong("pao2-fio2")) var pao2Fio2: Double?
    @Option(name: .customLong("spo2-fio2")) var spo2Fio2: Double?
    @Flag(help: "Print one JSON object.") var json = false

    func run() throws {
        guard LiverScores.names.contains(name) else { throw inputError("score: unknown '\(name)' (known: \(LiverScores.names.joined(separator: ", ")))") }
        func convert(_ value: Double?, _ analyte: String, _ unit: String, to target: String, _ option: String) throws -> Double? {
            guard let value else { return nil }
            do { return try Units.convert(value, analyte: analyte, from: unit, to: target) } catch let error as Units.Problem {
                throw inputError("--\(option)-unit: \(error.message)")
            }
        }
        var x = ScoreInputs()
        x.bilirubin = try convert(bilirubin, "bilirubin", bilirubinUnit, to: "mg/dL", "bilirubin")
        x.creatinine = try convert(creatinine, "creatinine", creatinineUnit, to: "mg/dL", "creatinine")
        x.sodium = try convert(sodium, "sodium", sodiumUnit, to: "mmol/L", "sodium")
        x.albumin = try convert(albumin, "albumin", albuminUnit, to: "g/dL", "albumin")
        x.lactate = try convert(lactate, "lactate", lactateUnit, to: "mmol/L", "lactate")
        x.wbc = try convert(wbc, "count", wbcUnit, to: "10^9/L", "wbc")
        x.inr = inr
        switch sex {
        case "female"?: x.female = true
        case "male"?: x.female = false
        case nil: break
        default: throw inputError("--sex: must be female or male")
        }
        x.dialysis = dialysis
        x.ascites = ascites
        x.encephalopathyGrade = encephalopathyGrade
        x.age = age
        x.map = map
        x.vasopressors = vasopressors
        x.pao2Fio2 = pao2Fio2
        x.spo2Fio2 = spo2Fio2
        if pao2Fio2 != nil && spo2Fio2 != nil { throw inputError("give --pao2-fio2 or --spo2-fio2, not both") }
        let result: ScoreResult
        do { result = try LiverScores.compute(name, x) } catch let error as ScoreError { throw inputError(error.description) }
        if json {
            var object: [String: Any] = ["name": result.name, "score": result.score, "inputs": result.inputs, "source": result.source]
            if let category = result.category { object["category"] = category }
            try printJSON(object)
        } else {
            print("\(result.name): \(FormValidator.format((result.score * 100).rounded() / 100))" + (result.category.map { " (class \($0))" } ?? "") + " — \(result.source)")
        }
    }
}
