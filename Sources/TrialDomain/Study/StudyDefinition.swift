import Foundation

/// A protocol as data: everything a study decides, versioned, so a new study needs no new code.
public struct StudyDefinition: Codable, Equatable, Sendable {
    public var schemaVersion: Int
    public var code: String
    public var version: Int
    public var identity: StudyIdentity
    public var lifecycle: Lifecycle
    public var sites: [SiteDefinition]
    public var parameters: [Parameter]
    public var arms: [Arm]
    public var interventions: [Intervention]
    public var anchors: [Anchor]
    public var visits: [Visit]
    public var forms: [Form]
    public var eligibility: Eligibility
    public var endpoints: [Endpoint]
    public var randomization: RandomizationSettings
    public var consent: ConsentSettings
    public var safety: SafetySettings

    public static let currentSchemaVersion = 1

    public func form(_ code: String) -> Form? { forms.first { $0.code == code } }
    public func visit(_ code: String) -> Visit? { visits.first { $0.code == code } }
    public func parameter(_ code: String) -> Parameter? { parameters.first { $0.code == code } }

    /// A site's value of a parameter: its own override, else the study default.
    public func parameterValue(_ code: String, site: String?) -> Double? {
        if let site, let override = sites.first(where: { $0.code == site })?.parameters?[code] { return override }
        return parameter(code)?.value
    }
}

public struct StudyIdentity: Codable, Equatable, Sendable {
    public var title: String
    public var shortTitle: String
    public var acronym: String?
    public var registryIds: [String]
    public var sponsor: String
    public var products: [String]
    public var conditions: [String]
    /// Registry vocabulary: EARLY_PHASE1, PHASE1, PHASE2, …
    public var phase: String
    public var studyType: String
    public var allocation: String
    public var interventionModel: String
    public var masking: String
    public var purpose: String
    public var description: String?
}

/// The registry's overall-status vocabulary.
public enum StudyStatus: String, Codable, CaseIterable, Sendable {
    case notYetRecruiting = "not_yet_recruiting"
    case recruiting
    case activeNotRecruiting = "active_not_recruiting"
    case suspended
    case terminated
    case completed
    case withdrawn

    /// The registry asks why a study stopped (ClinicalTrials.gov "whyStopped").
    public var needsReason: Bool { [.suspended, .terminated, .withdrawn].contains(self) }

    public var title: String {
        switch self {
        case .notYetRecruiting: "Not yet recruiting"
        case .recruiting: "Recruiting"
        case .activeNotRecruiting: "Active, not recruiting"
        case .suspended: "Suspended"
        case .terminated: "Terminated"
        case .completed: "Completed"
        case .withdrawn: "Withdrawn"
        }
    }
}

public struct StatusChange: Codable, Equatable, Sendable {
    public var status: StudyStatus
    /// ISO date, yyyy-MM-dd.
    public var date: String
    public var reason: String?
}

public struct Lifecycle: Codable, Equatable, Sendable {
    public var history: [StatusChange]
    public var enrollment: Enrollment
    public var dates: StudyDates

    public var status: StudyStatus? { history.last?.status }
}

public struct Enrollment: Codable, Equatable, Sendable {
    /// Participants the study plans to randomize; a setting, not the registry's actual count.
    public var target: Int?
    public var actual: Int?
}

public struct StudyDates: Codable, Equatable, Sendable {
    public var start: String?
    public var primaryCompletion: String?
    public var completion: String?
    public var recordUpdated: String?
}

public struct SiteDefinition: Codable, Equatable, Sendable {
    public var code: String
    public var name: String
    /// Overrides of study parameters (same unit as the study default).
    public var parameters: [String: Double]?
}

/// A named value such as an upper limit of normal; sites may override it.
public struct Parameter: Codable, Equatable, Sendable {
    public var code: String
    public var label: String
    public var value: Double
    public var unit: String
}

public struct Arm: Codable, Equatable, Sendable {
    public var code: String
    public var name: String
    /// EXPERIMENTAL, ACTIVE_COMPARATOR, PLACEBO_COMPARATOR, NO_INTERVENTION, OTHER
    public var type: String
    public var ratio: Int
    public var interventions: [String]
    public var description: String?
}

public struct Dose: Codable, Equatable, Sendable {
    public var amount: Double
    public var unit: String
    public var volume: Double?
    public var volumeUnit: String?
}

public struct Intervention: Codable, Equatable, Sendable {
    public var code: String
    public var name: String
    public var type: String
    public var dose: Dose?
    public var route: String?
    public var frequency: String?
    public var description: String?
}

/// A moment visits are timed from: the transplant, the allocation, time zero.
public struct Anchor: Codable, Equatable, Sendable {
    public var code: String
    public var label: String
    public var description: String?
}

public struct VisitWindow: Codable, Equatable, Sendable {
    public var before: Offset
    public var after: Offset
}

public struct Visit: Codable, Equatable, Sendable {
    public var code: String
    public var name: String
    /// nil for the visit that defines an anchor by itself happening (the transplant).
    public var anchor: String?
    public var target: Offset?
    public var window: VisitWindow?
    /// For visits that define an anchor when they happen (transplant, allocation, infusion).
    public var defines: String?
}

public enum FieldType: String, Codable, CaseIterable, Sendable {
    case number, integer, date, datetime, choice, yesno, text
}

public struct NumberRange: Codable, Equatable, Sendable {
    public var min: Double?
    public var max: Double?
}

public struct Choice: Codable, Equatable, Sendable {
    public var code: String
    public var label: String
}

public struct Field: Codable, Equatable, Sendable {
    public var code: String
    public var label: String
    public var type: FieldType
    public var unit: String?
    public var range: NumberRange?
    public var required: Bool?
    public var choices: [Choice]?
    public var loinc: String?

    public var isRequired: Bool { required ?? false }
}

public struct Form: Codable, Equatable, Sendable {
    public var code: String
    public var name: String
    public var visits: [String]
    public var fields: [Field]

    public func field(_ code: String) -> Field? { fields.first { $0.code == code } }
}

public struct Criterion: Codable, Equatable, Sendable {
    public var code: String
    /// The criterion as the protocol words it.
    public var text: String
    /// The same as an expression over form data, e.g. `screening_labs.total_bilirubin >= 10 × bilirubin_uln`.
    public var expression: String
}

public struct Eligibility: Codable, Equatable, Sendable {
    public var inclusion: [Criterion]
    public var exclusion: [Criterion]
}

public enum EndpointKind: String, Codable, Sendable {
    case primary, secondary, other
}

public struct Endpoint: Codable, Equatable, Sendable {
    public var code: String
    public var kind: EndpointKind
    public var measure: String
    public var timeFrame: String
    public var description: String?
}

public struct StratificationFactor: Codable, Equatable, Sendable {
    public var code: String
    public var label: String
    /// A number the factor is cut on, as an expression (a form field or a score).
    public var expression: String
    /// Ascending cut points: [30] gives "< 30" and "≥ 30".
    public var cutoffs: [Double]
}

public struct RandomizationSettings: Codable, Equatable, Sendable {
    /// permuted_blocks or minimization
    public var method: String
    public var blockSizes: [Int]
    public var stratifyBySite: Bool
    public var factors: [StratificationFactor]
    /// When allocation may happen, relative to an anchor.
    public var window: AllocationWindow?
}

public struct AllocationWindow: Codable, Equatable, Sendable {
    public var anchor: String
    public var earliest: Offset
    public var latest: Offset
}

public struct ConsentVersion: Codable, Equatable, Sendable {
    public var version: String
    public var date: String
}

public struct ConsentSettings: Codable, Equatable, Sendable {
    public var current: String
    public var versions: [ConsentVersion]
}

public struct SafetySettings: Codable, Equatable, Sendable {
    public var ctcaeVersion: String
    /// Hours within which a serious adverse event must reach the sponsor.
    public var saeReportingHours: Int
    /// Grade labs against the participant's baseline as well as against ULN.
    public var gradeAgainstBaseline: Bool
    public var primaryEndpointWindowHours: Int?
}

/// A signed time offset written as text: "24h", "-28d", "0d".
public struct Offset: Codable, Equatable, Sendable, CustomStringConvertible {
    public enum Unit: String, Sendable { case hours = "h", days = "d" }
    public var value: Int
    public var unit: Unit

    public init(_ value: Int, _ unit: Unit) {
        self.value = value
        self.unit = unit
    }

    public init?(text: String) {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        guard let last = trimmed.last, let unit = Unit(rawValue: String(last)), let value = Int(trimmed.dropLast()) else { return nil }
        self.init(value, unit)
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.singleValueContainer()
        let text = try container.decode(String.self)
        guard let parsed = Offset(text: text) else {
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "'\(text)' is not an offset like 24h or -28d")
        }
        self = parsed
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    public var description: String { "\(value)\(unit.rawValue)" }
    public var seconds: TimeInterval { TimeInterval(value) * (unit == .hours ? 3600 : 86_400) }
}
