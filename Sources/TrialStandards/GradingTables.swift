import Foundation
import TrialDomain
import Yams

/// The CTCAE laboratory grading tables shipped with Casebook (v4.03, the protocol's, and v5.0).
public enum GradingTables {
    struct File: Decodable {
        var tables: [GradingTable]
    }

    public static func builtIn() throws -> [GradingTable] {
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
