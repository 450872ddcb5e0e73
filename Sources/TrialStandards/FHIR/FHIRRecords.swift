import Foundation
import TrialDomain

// The plain records an HL7 FHIR R4 export is written from. The store fills them; `FHIRBundleWriter` turns each into
// its resources. They hold only what the export may show: no names, no full birth dates, no database keys beyond the
// record's own id (which the export hashes into a urn:uuid, never shows).

/// How an export is written.
public struct FHIRExportOptions: Equatable, Sendable {
    /// The deployment's own base URI (`https://casebook.example-hospital.org/fhir`): the systems of Casebook's
    /// identifiers and local codes are made from it, and the urn:uuid of every resource is derived from it, so two
    /// deployments never produce the same ids.
    public var base: String
    /// Leave out arms and what was given: no ResearchStudy.arm, no ResearchSubject.assignedArm/actualArm, the product
    /// of every administration masked and no dosage.
    public var blinded: Bool
    /// What a masked administration shows as its medication.
    public var maskedProduct: String
    /// Bundle.timestamp; absent, the bundle carries none, so that the same data always gives the same bytes.
    public var timestamp: Date?

    public init(base: String, blinded: Bool, maskedProduct: String = "Masked study product", timestamp: Date? = nil) {
        self.base = base.hasSuffix("/") ? String(base.dropLast()) : base
        self.blinded = blinded
        self.maskedProduct = maskedProduct
        self.timestamp = timestamp
    }
}

/// A participant: one ResearchSubject and one pseudonymous Patient.
public struct FHIRSubject: Equatable, Sendable {
    /// Administrative sex, as FHIR's AdministrativeGender has it.
    public enum Sex: String, Equatable, Sendable {
        case male, female, other, unknown
    }

    /// The study subject id (USUBJID-like, `UCMSC-ACLF-PLAGH5-001`): the only identifier exported, and the key the
    /// participant's labs, adverse events and doses refer to.
    public var subject: String
    public var status: ParticipantStatus
    public var sex: Sex?
    /// The year of birth only: the export never carries a fuller birth date.
    public var birthYear: Int?
    /// The arm allocated (its code); omitted from a blinded export. Its presence also tells a withdrawal after
    /// allocation (ResearchSubject `off-study`) from one before it (`withdrawn`).
    public var assignedArm: String?
    /// The arm actually followed when it differs, or after a later randomization stage (its code).
    public var actualArm: String?
    /// When the participant entered the study (consent or allocation, as the store decides), and left it.
    public var start: Date?
    public var end: Date?

    public init(
        subject: String, status: ParticipantStatus, sex: Sex? = nil, birthYear: Int? = nil, assignedArm: String? = nil, actualArm: String? = nil,
        start: Date? = nil, end: Date? = nil
    ) {
        self.subject = subject
        self.status = status
        self.sex = sex
        self.birthYear = birthYear
        self.assignedArm = assignedArm
        self.actualArm = actualArm
        self.start = start
        self.end = end
    }

    /// A birth date (yyyy-MM-dd or a longer ISO form) reduced to its year, the most the export shows.
    public static func year(ofBirthDate text: String) -> Int? {
        guard text.count >= 4, let year = Int(text.prefix(4)), year > 0 else { return nil }
        return year
    }
}

/// One laboratory result: an Observation.
public struct FHIRLab: Equatable, Sendable {
    /// Observation.status, as FHIR R4's ObservationStatus has it.
    public enum Status: String, Equatable, Sendable {
        case registered, preliminary, final, amended, corrected, cancelled
        case enteredInError = "entered-in-error"
        case unknown
    }

    /// The store's id of the result (hashed into the resource's urn:uuid).
    public var id: String
    public var subject: String
    /// The lab's code in the catalogue or the study (`BILI`).
    public var test: String
    public var value: Double
    /// The unit of `value`; absent, the lab's canonical unit.
    public var unit: String?
    public var collectedAt: Date
    /// The reference range in force at the site on the day of sampling, in the same unit as the value.
    public var low: Double?
    public var high: Double?
    public var status: Status

    public init(
        id: String, subject: String, test: String, value: Double, unit: String? = nil, collectedAt: Date, low: Double? = nil, high: Double? = nil,
        status: Status = .final
    ) {
        self.id = id
        self.subject = subject
        self.test = test
        self.value = value
        self.unit = unit
        self.collectedAt = collectedAt
        self.low = low
        self.high = high
        self.status = status
    }
}

/// One adverse event: an AdverseEvent.
public struct FHIRAdverseEvent: Equatable, Sendable {
    public var id: String
    public var subject: String
    /// The CTCAE term as recorded.
    public var term: String
    /// The term's MedDRA code, where known.
    public var meddra: String?
    /// The CTCAE version the grade was given by (`5.0`).
    public var ctcaeVersion: String?
    /// The CTCAE grade, 1–5.
    public var grade: Int?
    public var onsetAt: Date
    /// When the site learnt of the event.
    public var awareAt: Date?
    /// When the event was recorded in Casebook.
    public var recordedAt: Date?
    public var serious: Bool
    /// The ICH E2A criteria that make it serious.
    public var seriousness: [Seriousness]
    /// The investigator's attribution to the study intervention.
    public var attribution: Attribution?
    /// The administrations suspected (`FHIRDose.id`s, written before this event).
    public var suspectDoses: [String]
    /// The outcome as recorded (`recovered`, `recovering`, `not_recovered`, `recovered_with_sequelae`, `fatal`, `unknown`).
    public var outcome: String?

    public init(
        id: String, subject: String, term: String, meddra: String? = nil, ctcaeVersion: String? = nil, grade: Int? = nil, onsetAt: Date,
        awareAt: Date? = nil, recordedAt: Date? = nil, serious: Bool, seriousness: [Seriousness] = [], attribution: Attribution? = nil,
        suspectDoses: [String] = [], outcome: String? = nil
    ) {
        self.id = id
        self.subject = subject
        self.term = term
        self.meddra = meddra
        self.ctcaeVersion = ctcaeVersion
        self.grade = grade
        self.onsetAt = onsetAt
        self.awareAt = awareAt
        self.recordedAt = recordedAt
        self.serious = serious
        self.seriousness = seriousness
        self.attribution = attribution
        self.suspectDoses = suspectDoses
        self.outcome = outcome
    }
}

/// One planned dose as given or not given: a MedicationAdministration.
public struct FHIRDose: Equatable, Sendable {
    public var id: String
    public var subject: String
    /// The planned dose's code (`d0`).
    public var dose: String
    /// The intervention given (its code in the study definition).
    public var product: String
    public var given: Bool
    /// When the dose started; for a dose not given, when it was due.
    public var start: Date
    public var end: Date?
    /// The amount given, in `unit` (`1.5e8` `cells`).
    public var amount: Double?
    public var unit: String?
    public var volume: Double?
    public var volumeUnit: String?
    public var route: String?
    /// Why a dose was not given.
    public var skipReason: String?

    public init(
        id: String, subject: String, dose: String, product: String, given: Bool, start: Date, end: Date? = nil, amount: Double? = nil,
        unit: String? = nil, volume: Double? = nil, volumeUnit: String? = nil, route: String? = nil, skipReason: String? = nil
    ) {
        self.id = id
        self.subject = subject
        self.dose = dose
        self.product = product
        self.given = given
        self.start = start
        self.end = end
        self.amount = amount
        self.unit = unit
        self.volume = volume
        self.volumeUnit = volumeUnit
        self.route = route
        self.skipReason = skipReason
    }
}

/// Why an export stopped: each names the record and what it referred to.
public enum FHIRExportError: Error, Equatable, Sendable, CustomStringConvertible {
    case unknownLab(record: String, test: String)
    case unknownProduct(record: String, product: String)
    case unknownArm(subject: String, arm: String)
    /// A record refers to a participant, or an adverse event to a dose, not written before it.
    case unknownReference(record: String, reference: String)
    case duplicate(String)
    case notANumber(record: String)
    case finished

    public var description: String {
        switch self {
        case let .unknownLab(record, test): "\(record): lab '\(test)' is neither in the catalogue nor in the study"
        case let .unknownProduct(record, product): "\(record): intervention '\(product)' is not in the study"
        case let .unknownArm(subject, arm): "\(subject): arm '\(arm)' is not in the study"
        case let .unknownReference(record, reference): "\(record): refers to '\(reference)', which was not written before it"
        case let .duplicate(id): "\(id) is written twice"
        case let .notANumber(record): "\(record): a value is not a finite number"
        case .finished: "the bundle is already finished"
        }
    }
}
