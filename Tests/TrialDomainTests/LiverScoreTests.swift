import Foundation
import Testing
@testable import TrialDomain

private func inputs(_ build: (inout ScoreInputs) -> Void) -> ScoreInputs {
    var x = ScoreInputs()
    build(&x)
    return x
}

@Suite struct MELDTests {
    /// Kamath 2001 / UNOS: 10 × (0.957 ln Cr + 0.378 ln bili + 1.120 ln INR + 0.643).
    @Test(arguments: [
        // Every input at or below 1.0 is set to 1.0: 10 × 0.643.
        (0.5, 0.8, 0.3, false, 6.43),
        // Creatinine 5 is capped at 4: 10 × (0.957 ln 4 + 0.643) = 19.6968.
        (1.0, 1.0, 5.0, false, 19.69684),
        // Dialysis sets creatinine to 4 whatever was measured.
        (1.0, 1.0, 1.0, true, 19.69684),
        // 10 × (0.957 ln 1.5 + 0.378 ln 3 + 1.120 ln 2 + 0.643) = 22.2263.
        (3.0, 2.0, 1.5, false, 22.22630),
        // 10 × (0.378 ln 2 + 1.120 ln 1.5 + 0.957 ln 1.2 + 0.643) = 15.3361.
        (2.0, 1.5, 1.2, false, 15.33612),
    ])
    func meld(bilirubin: Double, inr: Double, creatinine: Double, dialysis: Bool, expected: Double) throws {
        let r = try LiverScores.meld(inputs { $0.bilirubin = bilirubin; $0.inr = inr; $0.creatinine = creatinine; $0.dialysis = dialysis })
        #expect(abs(r.score - expected) < 1e-4)
    }

    @Test func meldIsCappedAt40() throws {
        let r = try LiverScores.meld(inputs { $0.bilirubin = 60; $0.inr = 8; $0.creatinine = 4 })
        #expect(r.score == 40)
    }

    /// MELD-Na, OPTN 2016: MELD rounded to a tenth (22.2 here), sodium bounded 125–137,
    /// MELD + 1.32 (137 − Na) − 0.033 × MELD × (137 − Na).
    @Test(arguments: [(120.0, 29.2488), (125.0, 29.2488), (130.0, 26.3118), (137.0, 22.2), (140.0, 22.2)])
    func meldNaWithSodiumBounds(sodium: Double, expected: Double) throws {
        let r = try LiverScores.meldNa(inputs { $0.bilirubin = 3; $0.inr = 2; $0.creatinine = 1.5; $0.sodium = sodium })
        #expect(abs(r.score - expected) < 1e-4)
        #expect(r.inputs["sodium"] == min(max(sodium, 125), 137))
    }

    @Test func meldNaLeavesMELDOf11OrLessAlone() throws {
        // All inputs at 1.0: MELD 6.4, below the threshold, so sodium does not count.
        let r = try LiverScores.meldNa(inputs { $0.bilirubin = 1; $0.inr = 1; $0.creatinine = 1; $0.sodium = 125 })
        #expect(abs(r.score - 6.4) < 1e-9)
    }

    /// MELD 3.0 (Kim 2021) for a woman with bilirubin 3, INR 2, creatinine 1.5, sodium 130, albumin 2.5:
    /// 1.33 + 4.56 ln 3 + 0.82 × 7 − 0.24 × 7 × ln 3 + 9.09 ln 2 + 11.14 ln 1.5 + 1.85 × 1 − 1.83 × 1 × ln 1.5 + 6 = 28.1596.
    @Test func meld3() throws {
        let r = try LiverScores.meld3(inputs {
            $0.female = true; $0.bilirubin = 3; $0.inr = 2; $0.creatinine = 1.5; $0.sodium = 130; $0.albumin = 2.5
        })
        #expect(abs(r.score - 28.15959) < 1e-4)
    }

    @Test func meld3BoundsItsInputs() throws {
        let r = try LiverScores.meld3(inputs {
            $0.female = false; $0.bilirubin = 0.4; $0.inr = 0.9; $0.creatinine = 5; $0.sodium = 150; $0.albumin = 5
        })
        #expect(r.inputs == ["bilirubin": 1, "inr": 1, "creatinine": 3, "sodium": 137, "albumin": 3.5, "female": 0])
        // Only creatinine is off its floor: 11.14 ln 3 + 6 = 18.2384.
        #expect(abs(r.score - (11.14 * log(3.0) + 6)) < 1e-9)
        let dialysis = try LiverScores.meld3(inputs {
            $0.female = false; $0.bilirubin = 1; $0.inr = 1; $0.creatinine = 1; $0.sodium = 137; $0.albumin = 3.5; $0.dialysis = true
        })
        #expect(dialysis.inputs["creatinine"] == 3)
    }

    @Test func missingInputsAreNamed() {
        #expect(throws: ScoreError.missing(["inr", "creatinine"])) { try LiverScores.meld(inputs { $0.bilirubin = 2 }) }
        #expect(throws: ScoreError.invalid("--bilirubin: must be more than 0")) {
            try LiverScores.meld(inputs { $0.bilirubin = 0; $0.inr = 1; $0.creatinine = 1 })
        }
    }
}

@Suite struct PointScoreTests {
    /// Child–Pugh at its boundaries: bilirubin 2 and 3 mg/dL, albumin 3.5 and 2.8 g/dL, INR 1.7 and 2.3 all score 2.
    @Test func childPughBoundaries() throws {
        let middle = try LiverScores.childPugh(inputs {
            $0.bilirubin = 2; $0.albumin = 3.5; $0.inr = 1.7; $0.ascites = "mild"; $0.encephalopathyGrade = 1
        })
        #expect(middle.score == 10)
        #expect(middle.category == "C")
        let best = try LiverScores.childPugh(inputs {
            $0.bilirubin = 1.9; $0.albumin = 3.6; $0.inr = 1.69; $0.ascites = "none"; $0.encephalopathyGrade = 0
        })
        #expect(best.score == 5)
        #expect(best.category == "A")
        let upper = try LiverScores.childPugh(inputs {
            $0.bilirubin = 3; $0.albumin = 2.8; $0.inr = 2.3; $0.ascites = "none"; $0.encephalopathyGrade = 0
        })
        // 2 + 2 + 2 + 1 + 1 = 8: class B.
        #expect(upper.score == 8)
        #expect(upper.category == "B")
    }

    /// CLIF-C OF (Jalan 2014): liver bilirubin ≥ 12 → 3; kidney 2.0 → 2; brain grade 3 → 3; INR 2.5 → 3;
    /// MAP 65 → 2; PaO2/FiO2 300 → 2: total 15.
    @Test func clifOrganFailure() throws {
        let r = try LiverScores.clifOF(inputs {
            $0.bilirubin = 12; $0.creatinine = 2; $0.encephalopathyGrade = 3; $0.inr = 2.5; $0.map = 65; $0.pao2Fio2 = 300
        })
        #expect(r.score == 15)
        let healthy = try LiverScores.clifOF(inputs {
            $0.bilirubin = 5.9; $0.creatinine = 1.9; $0.encephalopathyGrade = 0; $0.inr = 1.9; $0.map = 70; $0.spo2Fio2 = 358
        })
        #expect(healthy.score == 6)
    }

    /// CLIF-C ACLF = 10 × (0.33 × 10 + 0.04 × 50 + 0.63 ln 10 − 2) = 47.5063 for OF 10, age 50, WBC 10.
    @Test func clifACLF() throws {
        let r = try LiverScores.clifACLF(inputs {
            // Subscores 2 + 2 + 2 + 2 + 1 + 1 = 10.
            $0.bilirubin = 6; $0.creatinine = 2; $0.encephalopathyGrade = 1; $0.inr = 2; $0.map = 80; $0.pao2Fio2 = 400
            $0.age = 50; $0.wbc = 10
        })
        #expect(r.inputs["clif_c_of"] == 10)
        #expect(abs(r.score - 47.50629) < 1e-4)
    }

    /// AARC (Choudhury 2017): bilirubin 15 → 2, HE 2 → 2, INR 2.5 → 2, lactate 2.6 → 3, creatinine 0.6 → 1: 10, grade II.
    @Test func aarc() throws {
        let r = try LiverScores.aarc(inputs {
            $0.bilirubin = 15; $0.encephalopathyGrade = 2; $0.inr = 2.5; $0.lactate = 2.6; $0.creatinine = 0.6
        })
        #expect(r.score == 10)
        #expect(r.category == "II")
        let low = try LiverScores.aarc(inputs { $0.bilirubin = 14.9; $0.encephalopathyGrade = 0; $0.inr = 1.79; $0.lactate = 1.4; $0.creatinine = 0.69 })
        #expect(low.score == 5)
        #expect(low.category == "I")
    }
}

@Suite struct UnitTests {
    /// Bilirubin 584.66 g/mol: 1 mg/dL = 10 mg/L ÷ 584.66 = 17.104 µmol/L. Creatinine 113.12 g/mol: 88.402 µmol/L.
    /// Ammonia (NH3) 17.031 g/mol: 1 µg/dL = 10 µg/L ÷ 17.031 = 0.58716 µmol/L (100 µg/dL = 58.716). AFP: 1 ng/mL = 1 µg/L.
    @Test(arguments: [
        ("bilirubin", 1.0, "mg/dL", "umol/L", 17.10396), ("bilirubin", 171.04, "µmol/L", "mg/dL", 10.00002),
        ("creatinine", 1.0, "mg/dL", "umol/L", 88.40170), ("creatinine", 88.4017, "umol/L", "mg/dL", 1.0),
        ("enzyme", 1.0, "ukat/L", "U/L", 60.0), ("enzyme", 120.0, "U/L", "µkat/L", 2.0),
        ("albumin", 3.5, "g/dL", "g/L", 35.0), ("albumin", 28.0, "g/L", "g/dL", 2.8),
        ("count", 75000.0, "/mm3", "10^9/L", 75.0), ("count", 75.0, "10^9/L", "/uL", 75000.0),
        ("lactate", 9.008, "mg/dL", "mmol/L", 1.0), ("sodium", 130.0, "mEq/L", "mmol/L", 130.0),
        ("ammonia", 1.0, "µg/dL", "umol/L", 0.58716), ("ammonia", 58.71646, "umol/L", "ug/dL", 100.0),
        ("afp", 400.0, "ng/mL", "µg/L", 400.0),
    ])
    func conversions(analyte: String, value: Double, from: String, to: String, expected: Double) throws {
        #expect(abs(try Units.convert(value, analyte: analyte, from: from, to: to) - expected) < 1e-4)
    }

    /// The same unit as sites spell it: micro sign or Greek mu, any case, spaces, "×" for "x".
    @Test(arguments: ["umol/L", "µmol/L", "μmol/L", "UMOL/L", "µmol / l"])
    func spellingsOfOneUnit(unit: String) throws {
        #expect(abs(try Units.convert(17.10396, analyte: "bilirubin", from: unit, to: "mg/dL") - 1.0) < 1e-4)
    }

    @Test func timesSignAndSpacesInACount() throws {
        #expect(try Units.convert(75, analyte: "count", from: "× 10^9/L", to: "/uL") == 75000)
        #expect(throws: Units.Problem.self) { try Units.convert(1, analyte: "count", from: "10^9/µ", to: "/uL") }
    }

    @Test func aUnitOfTheWrongKindIsRefused() {
        #expect(throws: Units.Problem(message: "unit 'U/L' does not fit bilirubin (canonical umol/L)")) {
            try Units.convert(1, analyte: "bilirubin", from: "U/L", to: "mg/dL")
        }
    }
}
