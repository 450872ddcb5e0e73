import Foundation

/// Exact conversions between the units sites report and the canonical units Casebook stores.
public enum Units {
    public struct Problem: Error, Equatable, Sendable, CustomStringConvertible {
        public var message: String
        public var description: String { message }
    }

    /// Molar masses behind the mass↔molar factors (g/mol).
    static let molarMass: [String: Double] = [
        "bilirubin": 584.66,  // C33H36N4O6
        "creatinine": 113.12,  // C4H7N3O
        "lactate": 90.08,  // C3H6O3 (lactic acid)
        "ammonia": 17.031,  // NH3
    ]

    /// Lower case, micro signs as "u", "×" as "x", no spaces: one pass, as every lab save goes through it.
    static func normal(_ unit: String) -> String {
        var scalars = String.UnicodeScalarView()
        for scalar in unit.lowercased().unicodeScalars {
            switch scalar {
            case "µ", "μ": scalars.append("u")
            case "×": scalars.append("x")
            case " ": continue
            default: scalars.append(scalar)
            }
        }
        return String(scalars)
    }

    /// Each analyte's canonical unit and how to reach it from the others.
    static func factor(analyte: String, unit: String) -> Double? {
        let u = normal(unit)
        switch analyte {
        case "bilirubin", "creatinine", "lactate":
            let mm = molarMass[analyte]!
            // 1 mg/dL = 10 mg/L = 10 / M mmol/L.
            let perMgdL = 10 / mm
            let canonical = analyte == "lactate" ? "mmol/l" : "umol/l"
            let mgdLToCanonical = analyte == "lactate" ? perMgdL : perMgdL * 1000
            switch u {
            case canonical: return 1
            case "mg/dl": return mgdLToCanonical
            case "mmol/l" where analyte != "lactate": return 1000
            case "umol/l" where analyte == "lactate": return 0.001
            default: return nil
            }
        case "ammonia":
            // 1 µg/dL = 10 µg/L = 10 / M µmol/L.
            switch u {
            case "umol/l": return 1
            case "ug/dl": return 10 / molarMass["ammonia"]!
            default: return nil
            }
        case "afp":
            // A mass concentration: 1 ng/mL = 1 µg/L.
            return ["ng/ml", "ug/l"].contains(u) ? 1 : nil
        case "enzyme":
            // 1 U = 1 µmol/min, so 1 µkat/L = 60 U/L.
            switch u {
            case "u/l", "iu/l": return 1
            case "ukat/l": return 60
            default: return nil
            }
        case "albumin":
            switch u {
            case "g/l": return 1
            case "g/dl": return 10
            default: return nil
            }
        case "count":
            // 10^3/µL = 10^9/L; 1/mm³ = 1/µL.
            switch u {
            case "10^9/l", "10e9/l", "x10^9/l", "10^3/ul", "k/ul", "10^3/mm3", "giga/l": return 1
            case "/mm3", "/ul", "cells/ul", "cells/mm3": return 0.001
            default: return nil
            }
        case "sodium":
            // Sodium is monovalent: 1 mEq/L = 1 mmol/L.
            switch u {
            case "mmol/l", "meq/l": return 1
            default: return nil
            }
        case "ratio":
            return ["ratio", "1", ""].contains(u) ? 1 : nil
        case "percent":
            return ["%", "percent"].contains(u) ? 1 : nil
        default:
            return nil
        }
    }

    public static let canonical: [String: String] = [
        "bilirubin": "umol/L", "creatinine": "umol/L", "lactate": "mmol/L", "enzyme": "U/L", "albumin": "g/L", "count": "10^9/L",
        "sodium": "mmol/L", "ratio": "ratio", "percent": "%", "ammonia": "umol/L", "afp": "ng/mL",
    ]

    /// The value in the analyte's canonical unit.
    public static func toCanonical(_ value: Double, analyte: String, unit: String) throws -> Double {
        guard let f = factor(analyte: analyte, unit: unit) else {
            throw Problem(message: "unit '\(unit)' does not fit \(analyte) (canonical \(canonical[analyte] ?? "?"))")
        }
        return value * f
    }

    public static func convert(_ value: Double, analyte: String, from: String, to: String) throws -> Double {
        let canonicalValue = try toCanonical(value, analyte: analyte, unit: from)
        guard let f = factor(analyte: analyte, unit: to) else {
            throw Problem(message: "unit '\(to)' does not fit \(analyte) (canonical \(canonical[analyte] ?? "?"))")
        }
        return canonicalValue / f
    }
}
