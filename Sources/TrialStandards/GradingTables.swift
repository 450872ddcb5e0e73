import Foundation
import TrialDomain
import Yams

/// The CTCAE laboratory grading tables shipped with Casebook (v4.03, the protocol's, and v5.0).
public enum GradingTables {
    struct File: Decodable {
        var tables: [GradingTable]
    }

    /// Read once per process: the tables ship with the binary and never change while it runs.
    public static func builtIn() throws -> [GradingTable] { try cached.get() }

    private static let cached = Result { try load() }

    static func load() throws -> [GradingTable] {
        guard let url = Bundle.module.url(forResource: "ctcae-lab-grading", withExtension: "yaml", subdirectory: "Grading") else {
            throw GradingError.invalid("the built-in CTCAE grading table is missing from the installation")
        }
        return try YAMLDecoder().decode(File.self, from: String(contentsOf: url, encoding: .utf8)).tables
    }

    public static func table(version: String) throws -> GradingTable {
        let tables = try builtIn()
        guard let table = tables.first(where: { $0.version == version }) else {
            throw GradingError.invalid("--version: must be one of \(tables.map(\.version).joined(separator: ", "))")
        }
        return table
    }

    /// The CTCAE v4.03 rows the protocol's own assessments need (infusion reactions and the graded labs), quoted from
    /// NCI's table so a fresh install records them; `casebook terminology import ctcae FILE` loads the full catalogue.
    public static func protocolTerms() throws -> [CTCAETerm] {
        guard let url = Bundle.module.url(forResource: "ctcae-4.03-protocol-terms", withExtension: "csv", subdirectory: "Grading") else {
            throw GradingError.invalid("the built-in CTCAE terms are missing from the installation")
        }
        return try CTCAECatalogue.parse(String(contentsOf: url, encoding: .utf8), version: "4.03")
    }

    /// Which unit family a graded term's values belong to, for converting what a site reports.
    public static func analyte(ofTerm code: String) -> String {
        switch code {
        case "BILI": "bilirubin"
        case "CREAT": "creatinine"
        case "PLAT", "WBC": "count"
        case "INR": "ratio"
        default: "enzyme"
        }
    }
}
