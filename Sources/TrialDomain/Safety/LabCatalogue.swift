import Foundation

/// A laboratory test Casebook knows: its code (SDTM LBTESTCD), LOINC, canonical unit, and the CTCAE term that grades it.
public struct LabTest: Codable, Equatable, Sendable {
    public var code: String
    public var name: String
    /// Only codes seen in a cited source (../shared/reference/LOINC.md); nil where none was verified.
    public var loinc: String?
    public var analyte: String
    public var unit: String
    /// What no living patient's sample shows: values outside are refused as entry errors.
    public var plausible: ClosedRange<Double>
    public var ctcae: String?
}

public enum LabCatalogue {
    public static let tests: [LabTest] = [
        LabTest(code: "ALT", name: "Alanine aminotransferase", loinc: "1742-6", analyte: "enzyme", unit: "U/L", plausible: 0...50_000, ctcae: "ALT"),
        LabTest(code: "AST", name: "Aspartate aminotransferase", loinc: "1920-8", analyte: "enzyme", unit: "U/L", plausible: 0...50_000, ctcae: "AST"),
        LabTest(code: "BILI", name: "Bilirubin, total", loinc: "14631-6", analyte: "bilirubin", unit: "umol/L", plausible: 0...2_000, ctcae: "BILI"),
        LabTest(code: "INR", name: "International normalized ratio", loinc: "6301-6", analyte: "ratio", unit: "ratio", plausible: 0.5...25, ctcae: "INR"),
        LabTest(code: "GGT", name: "Gamma-glutamyl transferase", loinc: "2324-2", analyte: "enzyme", unit: "U/L", plausible: 0...20_000, ctcae: "GGT"),
        LabTest(code: "PTACT", name: "Prothrombin activity", loinc: nil, analyte: "percent", unit: "%", plausible: 0...200, ctcae: nil),
        LabTest(code: "CREAT", name: "Creatinine", loinc: "14682-9", analyte: "creatinine", unit: "umol/L", plausible: 0...5_000, ctcae: "CREAT"),
        LabTest(code: "SODIUM", name: "Sodium", loinc: "2951-2", analyte: "sodium", unit: "mmol/L", plausible: 80...220, ctcae: nil),
        LabTest(code: "ALB", name: "Albumin", loinc: "1751-7", analyte: "albumin", unit: "g/L", plausible: 0...100, ctcae: nil),
        LabTest(code: "PLAT", name: "Platelets", loinc: "777-3", analyte: "count", unit: "10^9/L", plausible: 0...5_000, ctcae: "PLAT"),
        LabTest(code: "WBC", name: "White blood cells", loinc: nil, analyte: "count", unit: "10^9/L", plausible: 0...1_000, ctcae: "WBC"),
        LabTest(code: "LACTATE", name: "Lactate", loinc: nil, analyte: "lactate", unit: "mmol/L", plausible: 0...40, ctcae: nil),
        LabTest(code: "ALP", name: "Alkaline phosphatase", loinc: nil, analyte: "enzyme", unit: "U/L", plausible: 0...20_000, ctcae: nil),
        LabTest(code: "AFP", name: "Alpha-fetoprotein", loinc: nil, analyte: "afp", unit: "ng/mL", plausible: 0...1_000_000, ctcae: nil),
        LabTest(code: "NH3", name: "Ammonia", loinc: nil, analyte: "ammonia", unit: "umol/L", plausible: 0...2_000, ctcae: nil),
    ]

    public static func test(_ code: String) -> LabTest? { tests.first { $0.code == code.uppercased() } }
}

/// A site's reference range for one test, possibly for one sex and an age band.
public struct ReferenceRange: Codable, Equatable, Sendable {
    public var test: String
    public var low: Double?
    public var high: Double?
    /// F or M; nil for both.
    public var sex: String?
    public var ageMin: Double?
    public var ageMax: Double?
    /// The day (yyyy-MM-dd) the laboratory started using this range; in force until a later one for the same test,
    /// sex and ages. Absent: in force from the start.
    public var from: String?

    public init(
        test: String, low: Double? = nil, high: Double? = nil, sex: String? = nil, ageMin: Double? = nil, ageMax: Double? = nil, from: String? = nil
    ) {
        self.test = test
        self.low = low
        self.high = high
        self.sex = sex
        self.ageMin = ageMin
        self.ageMax = ageMax
        self.from = from
    }

    /// The range in force on the day of sampling that fits the participant: one for their sex and age before a
    /// general one, and of those the one that took effect last.
    public static func pick(_ ranges: [ReferenceRange], test: String, sex: String?, age: Double?, on day: Date? = nil) -> ReferenceRange? {
        let fitting = ranges.filter { r in
            r.test == test && (r.sex == nil || r.sex == sex) && (r.ageMin.map { a in age.map { $0 >= a } ?? false } ?? true)
                && (r.ageMax.map { a in age.map { $0 <= a } ?? false } ?? true)
                && inForce(r, on: day)
        }
        return fitting.max { (specificity($0), $0.from ?? "") < (specificity($1), $1.from ?? "") }
    }

    static func inForce(_ range: ReferenceRange, on day: Date?) -> Bool {
        guard let from = range.from, let start = DateParsing.day(from) else { return true }
        guard let day else { return true }
        return AnchorTimes.day(day) >= AnchorTimes.day(start)
    }

    static func specificity(_ r: ReferenceRange) -> Int { (r.sex == nil ? 0 : 2) + (r.ageMin == nil && r.ageMax == nil ? 0 : 1) }
}
