import Foundation
import TestSupport
import Testing
import TrialDomain
import TrialStandards

/// Every grade boundary of every term, worked from the CTCAE rows quoted in the table
/// (">a - b": above a, up to and including b; "<a - b": below a, down to and including b).
@Suite struct CTCAEGradingTests {
    let v4: GradingTable
    let v5: GradingTable

    init() throws {
        v4 = try GradingTables.table(version: "4.03")
        v5 = try GradingTables.table(version: "5.0")
    }

    func grade(_ table: GradingTable, _ term: String, _ value: Double, uln: Double? = nil, lln: Double? = nil, baseline: Double? = nil) throws -> Int {
        try LabGrader.grade(table: table, term: term, value: value, uln: uln, lln: lln, baseline: baseline).grade
    }

    /// ALT and AST, v4.03 and v5.0 with a normal baseline: >ULN–3.0, >3.0–5.0, >5.0–20.0, >20.0 × ULN (ULN 40 U/L).
    @Test(arguments: ["ALT", "AST"], [(40.0, 0), (40.04, 1), (120.0, 1), (120.04, 2), (200.0, 2), (200.04, 3), (800.0, 3), (800.04, 4)])
    func transaminasesAgainstULN(term: String, c: (Double, Int)) throws {
        #expect(try grade(v4, term, c.0, uln: 40) == c.1)
        #expect(try grade(v5, term, c.0, uln: 40, baseline: 30) == c.1)
        #expect(try grade(v5, term, c.0, uln: 40) == c.1)
    }

    /// v5.0 with an abnormal baseline (100 U/L, ULN 40): 1.5–3.0, >3.0–5.0, >5.0–20.0, >20.0 × baseline.
    @Test(arguments: ["ALT", "AST"], [(149.0, 0), (150.0, 1), (300.0, 1), (300.1, 2), (500.0, 2), (500.1, 3), (2000.0, 3), (2000.1, 4)])
    func transaminasesAgainstAnAbnormalBaseline(term: String, c: (Double, Int)) throws {
        let result = try LabGrader.grade(table: v5, term: term, value: c.0, uln: 40, lln: nil, baseline: 100)
        #expect(result.grade == c.1)
        if c.1 > 0 { #expect(result.againstBaseline) }
        // v4.03 has no baseline rule: 300 U/L is >5 × ULN whatever the baseline.
        if c.0 == 300 { #expect(try grade(v4, term, 300, uln: 40, baseline: 100) == 3) }
    }

    /// Bilirubin (ULN 17.1 µmol/L): >ULN–1.5, >1.5–3.0, >3.0–10.0, >10.0 × ULN; v5.0 abnormal baseline >1.0–1.5 … × baseline.
    @Test func bilirubin() throws {
        for (value, expected) in [(17.1, 0), (17.2, 1), (25.65, 1), (25.7, 2), (51.3, 2), (51.4, 3), (171.0, 3), (171.1, 4)] {
            #expect(try grade(v4, "BILI", value, uln: 17.1) == expected, "\(value)")
        }
        // An ACLF patient at baseline 200 µmol/L: v4.03 calls 210 grade 4; v5.0 compares it with baseline: 1.05 × is grade 1.
        #expect(try grade(v4, "BILI", 210, uln: 17.1, baseline: 200) == 4)
        #expect(try grade(v5, "BILI", 200, uln: 17.1, baseline: 200) == 0)
        for (value, expected) in [(210.0, 1), (300.0, 1), (300.1, 2), (600.0, 2), (600.1, 3), (2000.0, 3), (2000.1, 4)] {
            #expect(try grade(v5, "BILI", value, uln: 17.1, baseline: 200) == expected, "\(value)")
        }
    }

    /// GGT: >ULN–2.5, >2.5–5.0, >5.0–20.0, >20.0 × ULN (ULN 60); v5.0 abnormal baseline 2.0–2.5, >2.5–5.0 … × baseline (100).
    @Test func ggt() throws {
        for (value, expected) in [(60.0, 0), (60.1, 1), (150.0, 1), (150.1, 2), (300.0, 2), (300.1, 3), (1200.0, 3), (1200.1, 4)] {
            #expect(try grade(v4, "GGT", value, uln: 60) == expected, "\(value)")
        }
        for (value, expected) in [(199.0, 0), (200.0, 1), (250.0, 1), (250.1, 2), (500.0, 2), (500.1, 3), (2000.0, 3), (2000.1, 4)] {
            #expect(try grade(v5, "GGT", value, uln: 60, baseline: 100) == expected, "\(value)")
        }
    }

    /// INR: v4.03 >1–1.5, >1.5–2.5, >2.5 × ULN (ULN 1.1); v5.0 absolute >1.2–1.5, >1.5–2.5, >2.5.
    @Test func inr() throws {
        for (value, expected) in [(1.1, 0), (1.11, 1), (1.65, 1), (1.66, 2), (2.75, 2), (2.76, 3), (9.0, 3)] {
            #expect(try grade(v4, "INR", value, uln: 1.1) == expected, "\(value)")
        }
        for (value, expected) in [(1.2, 0), (1.21, 1), (1.5, 1), (1.51, 2), (2.5, 2), (2.51, 3)] {
            #expect(try grade(v5, "INR", value, uln: 1.1) == expected, "\(value)")
        }
    }

    /// Creatinine: v4.03 grade 1 is >1–1.5 × baseline or >ULN–1.5 × ULN; grade 3 >3.0 × baseline or >3.0–6.0 × ULN; grade 4 >6.0 × ULN.
    @Test func creatinine() throws {
        for (value, expected) in [(100.0, 0), (101.0, 1), (150.0, 1), (151.0, 2), (300.0, 2), (301.0, 3), (600.0, 3), (601.0, 4)] {
            #expect(try grade(v4, "CREAT", value, uln: 100) == expected, "\(value)")
        }
        // Baseline 50, ULN 100: 80 is 1.6 × baseline, grade 2 by baseline though below ULN.
        #expect(try grade(v4, "CREAT", 80, uln: 100, baseline: 50) == 2)
        #expect(try grade(v4, "CREAT", 151, uln: 100, baseline: 50) == 3)
        // v5.0 grade 1 has no baseline criterion: 60 against baseline 50 (1.2 ×) is grade 0.
        #expect(try grade(v4, "CREAT", 60, uln: 100, baseline: 50) == 1)
        #expect(try grade(v5, "CREAT", 60, uln: 100, baseline: 50) == 0)
    }

    /// Platelets (LLN 150 × 10^9/L): <LLN–75, <75–50, <50–25, <25; WBC (LLN 4.0): <LLN–3.0, <3.0–2.0, <2.0–1.0, <1.0.
    @Test func decreasedCounts() throws {
        for table in [v4, v5] {
            for (value, expected) in [(150.0, 0), (149.0, 1), (75.0, 1), (74.9, 2), (50.0, 2), (49.9, 3), (25.0, 3), (24.9, 4)] {
                #expect(try grade(table, "PLAT", value, uln: 400, lln: 150) == expected, "\(value)")
            }
            for (value, expected) in [(4.0, 0), (3.9, 1), (3.0, 1), (2.9, 2), (2.0, 2), (1.9, 3), (1.0, 3), (0.9, 4)] {
                #expect(try grade(table, "WBC", value, uln: 11, lln: 4) == expected, "\(value)")
            }
        }
    }

    @Test func termsAreFoundByCodeOrName() throws {
        #expect(try LabGrader.grade(table: v4, term: "Alanine aminotransferase increased", value: 121, uln: 40, lln: nil, baseline: nil).grade == 2)
        #expect(throws: GradingError.self) { try grade(v4, "Ferritin", 1, uln: 1) }
        #expect(throws: GradingError.missing("lln")) { try grade(v4, "PLAT", 100, uln: 400) }
    }

    /// Each grade's wording is the CTCAE row's own, checked against NCI's tables when they are beside the checkout.
    @Test func theTablesQuoteTheCTCAERows() throws {
        for (table, file) in [(v4, "ctcae/CTCAE_4.03.csv"), (v5, "ctcae/CTCAE_v5.0.csv")] {
            guard let csv = try? String(contentsOf: Reference.root.appendingPathComponent(file), encoding: .utf8) else {
                print("SKIPPED: ../shared/reference/\(file) is not beside this checkout")
                return
            }
            for term in table.terms {
                let row = try #require(csv.components(separatedBy: .newlines).first { $0.hasPrefix("\(term.meddra),") && $0.contains(",\(term.term),") }, "\(term.term)")
                for rule in term.rules {
                    let quoted = rule.text.components(separatedBy: " (the anticoagulation")[0]
                        .replacingOccurrences(of: " if baseline was normal", with: "").replacingOccurrences(of: " if baseline was abnormal", with: "")
                    #expect(row.contains(quoted), "\(table.version) \(term.code) grade \(rule.grade): '\(quoted)'")
                }
            }
        }
    }
}
