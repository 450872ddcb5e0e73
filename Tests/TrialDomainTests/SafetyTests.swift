import Foundation
import Testing
@testable import TrialDomain

@Suite struct ClopperPearsonTests {
    /// Closed forms from the definition: x = 0 gives upper 1 − (α/2)^(1/n); x = n gives lower (α/2)^(1/n);
    /// x = 1 gives lower 1 − (1 − α/2)^(1/n).
    @Test func edgesMatchTheirClosedForms() throws {
        let none = try #require(ClopperPearson.interval(successes: 0, trials: 10))
        #expect(none.lower == 0)
        #expect(abs(none.upper - (1 - pow(0.025, 0.1))) < 1e-9)
        let all = try #require(ClopperPearson.interval(successes: 10, trials: 10))
        #expect(abs(all.lower - pow(0.025, 0.1)) < 1e-9)
        #expect(all.upper == 1)
        let one = try #require(ClopperPearson.interval(successes: 1, trials: 10))
        #expect(abs(one.lower - (1 - pow(0.975, 0.1))) < 1e-9)
    }

    /// 5 of 10: 0.1871 to 0.8129, the interval printed in exact-binomial tables; symmetric by definition.
    @Test func fiveOfTen() throws {
        let ci = try #require(ClopperPearson.interval(successes: 5, trials: 10))
        #expect(abs(ci.lower - 0.18709) < 1e-4)
        #expect(abs(ci.upper - 0.81291) < 1e-4)
        #expect(abs(ci.lower + ci.upper - 1) < 1e-9)
    }

    @Test func impossibleCountsGiveNothing() {
        #expect(ClopperPearson.interval(successes: 3, trials: 0) == nil)
        #expect(ClopperPearson.interval(successes: 4, trials: 3) == nil)
    }
}

@Suite struct HysLawTests {
    /// ALT 130 U/L is 3.25 × ULN 40 and bilirubin 40 µmol/L is 2.34 × ULN 17.1: both above 3 × and 2 ×.
    @Test func flaggedAboveBothMultiples() throws {
        let check = try #require(HysLawCheck.evaluate(
            alt: 130, ast: 50, bilirubin: 40, altULN: 40, astULN: 40, bilirubinULN: 17.1, altBaseline: nil, astBaseline: nil, bilirubinBaseline: nil))
        #expect(check.byULN)
        #expect(!check.byBaseline)
    }

    /// Exactly 3 × ULN is not above it.
    @Test func exactlyThreeTimesIsNotAbove() throws {
        let check = try #require(HysLawCheck.evaluate(
            alt: 120, ast: nil, bilirubin: 40, altULN: 40, astULN: nil, bilirubinULN: 17.1, altBaseline: nil, astBaseline: nil, bilirubinBaseline: nil))
        #expect(!check.byULN)
    }

    /// An ACLF patient with bilirubin 250 at baseline 200 is far above 2 × ULN but not 2 × baseline.
    @Test func theBaselineVariantSeesPastAbnormalEntry() throws {
        let check = try #require(HysLawCheck.evaluate(
            alt: 400, ast: nil, bilirubin: 250, altULN: 40, astULN: nil, bilirubinULN: 17.1, altBaseline: 100, astBaseline: nil, bilirubinBaseline: 200))
        #expect(check.byULN)
        #expect(!check.byBaseline)
        let worse = try #require(HysLawCheck.evaluate(
            alt: 400, ast: nil, bilirubin: 450, altULN: 40, astULN: nil, bilirubinULN: 17.1, altBaseline: 100, astBaseline: nil, bilirubinBaseline: 200))
        #expect(worse.byBaseline)
    }
}

@Suite struct ReportingClockTests {
    static func berlin(_ date: Date) -> String {
        let f = DateFormatter()
        f.locale = Locale(identifier: "en_US_POSIX")
        f.timeZone = TimeZone(identifier: "Europe/Berlin")
        f.dateFormat = "yyyy-MM-dd HH:mm"
        return f.string(from: date)
    }

    /// Learned at 22:00 UTC: due 22:00 UTC the next day, past midnight.
    @Test func acrossMidnight() {
        let clock = ReportingClock(awareAt: DateParsing.instant("2026-05-10T22:00Z")!, hours: 24)
        #expect(clock.dueAt == DateParsing.instant("2026-05-11T22:00Z")!)
        #expect(!clock.isOverdue(now: DateParsing.instant("2026-05-11T21:59Z")!))
        #expect(clock.isOverdue(now: DateParsing.instant("2026-05-11T22:01Z")!))
    }

    /// Berlin moves its clocks from 02:00 to 03:00 on 29 March 2026: 24 hours after 23:30 on the 28th is 00:30 on the 30th, local time.
    @Test func acrossTheSpringForwardChange() {
        let aware = DateParsing.instant("2026-03-28T23:30+01:00")!
        let clock = ReportingClock(awareAt: aware, hours: 24)
        #expect(Self.berlin(aware) == "2026-03-28 23:30")
        #expect(Self.berlin(clock.dueAt) == "2026-03-30 00:30")
        #expect(clock.dueAt.timeIntervalSince(aware) == 86_400)
    }

    @Test func aReportInTimeIsNotOverdueLater() {
        let clock = ReportingClock(awareAt: DateParsing.instant("2026-05-10T08:00Z")!, hours: 24, reportedAt: DateParsing.instant("2026-05-11T07:00Z")!)
        #expect(!clock.isOverdue(now: DateParsing.instant("2026-06-01T00:00Z")!))
    }
}

@Suite struct CTCAECatalogueTests {
    @Test func aSmallTableIsRead() throws {
        let csv = """
            MedDRA Code,SOC,Term,Grade 1,Grade 2,Grade 3,Grade 4,Grade 5,Definition
            10051792,General disorders,Infusion related reaction,"Mild transient reaction; infusion interruption not indicated",Therapy indicated,Prolonged,Life-threatening,Death,"A disorder, with a comma"
            """
        let terms = try CTCAECatalogue.parse(csv, version: "4.03")
        #expect(terms.count == 1)
        #expect(terms[0].grades[0] == "Mild transient reaction; infusion interruption not indicated")
        #expect(terms[0].definition == "A disorder, with a comma")
    }

    @Test(arguments: [
        ("Code,SOC\n", 1),
        ("MedDRA Code,SOC,Term,G1,G2,G3,G4,G5,Definition\n10000001,S,T,a,b,c,d,e,f\n1234,S,U,a,b,c,d,e,f\n", 3),
        ("MedDRA Code,SOC,Term,G1,G2,G3,G4,G5,Definition\n10000001,S,T,a,b\n", 2),
        ("MedDRA Code,SOC,Term,G1,G2,G3,G4,G5,Definition\n10000001,S,T,a,b,c,d,e,f\n10000001,S,U,a,b,c,d,e,f\n", 3),
        ("MedDRA Code,SOC,Term,G1,G2,G3,G4,G5,Definition\n10000001,S,T,\"open,b,c,d,e,f\n", 2),
    ])
    func aMalformedFileIsRefusedWholeNamingTheLine(text: String, line: Int) {
        #expect { try CTCAECatalogue.parse(text, version: "4.03") } throws: { ($0 as? CatalogueError)?.line == line }
    }
}

@Suite struct ReferenceRangeTests {
    @Test func theMostSpecificRangeWins() {
        let ranges = [
            ReferenceRange(test: "ALT", high: 40), ReferenceRange(test: "ALT", high: 33, sex: "F"),
            ReferenceRange(test: "ALT", high: 45, sex: "M", ageMin: 18, ageMax: 60),
        ]
        #expect(ReferenceRange.pick(ranges, test: "ALT", sex: "F", age: 40)?.high == 33)
        #expect(ReferenceRange.pick(ranges, test: "ALT", sex: "M", age: 40)?.high == 45)
        #expect(ReferenceRange.pick(ranges, test: "ALT", sex: "M", age: 70)?.high == 40)
        #expect(ReferenceRange.pick(ranges, test: "AST", sex: "M", age: 70) == nil)
    }
}

@Suite struct LabEvaluatorTests {
    private func tables() throws -> [GradingTable] {
        // The two CTCAE tables the product ships are read in TrialStandards; here the same rules are written by hand for one term.
        let rule = { (grade: Int, low: Double, high: Double?) in
            GradeRule(grade: grade, text: "> \(low) × ULN", when: [[GradeCondition(of: .uln, min: low, minInclusive: false, max: high, maxInclusive: true)]], baseline: nil)
        }
        let v4 = GradingTable(version: "4.03", source: "CTCAE v4.03, ALT increased", terms: [GradedTerm(code: "ALT", term: "Alanine aminotransferase increased", meddra: "10001551", unit: "U/L", rules: [
            rule(1, 1, 3), rule(2, 3, 5), rule(3, 5, 20), rule(4, 20, nil),
        ])])
        return [v4]
    }

    /// CTCAE v4.03 ALT increased: > ULN–3.0 × ULN is grade 1, > 5.0–20.0 × ULN grade 3. ALT 100 U/L against ULN 40 is 2.5 × ULN,
    /// grade 1; 240 U/L is 6 × ULN, grade 3; from a baseline of 100 (grade 1) that is treatment-emergent.
    @Test func gradesAgainstTheSitesRangeAndTheBaseline() throws {
        var study = miniStudy()
        study.sites[0].referenceRanges = [ReferenceRange(test: "ALT", high: 40), ReferenceRange(test: "ALT", high: 35, sex: "F")]
        let alt = try #require(LabCatalogue.test("ALT"))
        let at = DateParsing.instant("2026-03-10T08:00")!
        let first = try LabEvaluator.evaluate(
            test: alt, value: 100, unit: "U/L", collectedAt: at, study: study, site: "S1", sex: "M", birthDate: nil, baseline: nil, tables: try tables())
        #expect(first.gradeV4?.grade == 1)
        #expect(first.range?.high == 40)
        #expect(first.treatmentEmergent == false)
        let later = try LabEvaluator.evaluate(
            test: alt, value: 240, unit: "U/L", collectedAt: at, study: study, site: "S1", sex: "M", birthDate: nil, baseline: 100, tables: try tables())
        #expect(later.gradeV4?.grade == 3)
        #expect(later.baselineGrade == 1)
        #expect(later.treatmentEmergent)
        // A woman's range at this site is 35: 100 U/L is 2.86 × ULN, still grade 1, but against 35.
        let woman = try LabEvaluator.evaluate(
            test: alt, value: 100, unit: "U/L", collectedAt: at, study: study, site: "S1", sex: "F", birthDate: nil, baseline: nil, tables: try tables())
        #expect(woman.range?.high == 35)
        // 1 µkat/L is 60 U/L (1 U = 1 µmol/min): 4 µkat/L = 240 U/L.
        #expect(try LabEvaluator.evaluate(
            test: alt, value: 4, unit: "ukat/L", collectedAt: at, study: study, site: "S1", sex: nil, birthDate: nil, baseline: nil, tables: try tables()).canonical == 240)
        #expect(throws: LabEvaluationError.self) {
            try LabEvaluator.evaluate(test: alt, value: 4, unit: "mg/dL", collectedAt: at, study: study, site: "S1", sex: nil, birthDate: nil, baseline: nil, tables: try tables())
        }
    }

    @Test func withoutARangeItSaysSoRatherThanGuessing() throws {
        let study = miniStudy()
        let alt = try #require(LabCatalogue.test("ALT"))
        let e = try LabEvaluator.evaluate(
            test: alt, value: 100, unit: "U/L", collectedAt: Date(), study: study, site: "S1", sex: nil, birthDate: nil, baseline: nil, tables: try tables())
        #expect(e.gradeV4 == nil)
        #expect(e.basisV4 == "not graded: no reference range for ALT at site S1; add it to the site's definition")
    }
}

@Suite struct ReferenceRangeInForceTests {
    /// The laboratory changed its ALT range from ULN 40 to 35 on 2026-03-01: a sample is read against the range of its day.
    @Test func theRangeOfTheSamplingDay() {
        let ranges = [ReferenceRange(test: "ALT", high: 40), ReferenceRange(test: "ALT", high: 35, from: "2026-03-01"), ReferenceRange(test: "ALT", high: 30, sex: "F")]
        #expect(ReferenceRange.pick(ranges, test: "ALT", sex: "M", age: nil, on: DateParsing.instant("2026-02-28T23:59")!)?.high == 40)
        #expect(ReferenceRange.pick(ranges, test: "ALT", sex: "M", age: nil, on: DateParsing.instant("2026-03-01T00:00")!)?.high == 35)
        // A range for her sex is more specific than any general one, whenever it took effect.
        #expect(ReferenceRange.pick(ranges, test: "ALT", sex: "F", age: nil, on: DateParsing.instant("2026-03-05T08:00")!)?.high == 30)
    }
}
