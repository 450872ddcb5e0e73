import Foundation
import TrialDomain

// The plain records SDTM datasets are made from. The store fills them, one participant at a time, so that a dataset
// streams: `SDTMExport` (SDTMDomains.swift) turns each participant's records into rows and never holds the study.
// Times the store keeps as instants are `Date`s, written in the site's time zone; days the forms hold as text
// ("yyyy-MM-dd") stay text. Codes are the study definition's (sites, arms, visits, doses, criteria, forms).

/// A day or an instant: a form's date field is a day, a recorded event an instant.
public enum SDTMDate: Equatable, Sendable {
    case instant(Date)
    /// yyyy-MM-dd, as a form's date field holds it.
    case day(String)
}

/// One randomization: the one at enrolment (`stage` nil) or a later stage the definition's `randomizations` name.
public struct SDTMAllocation: Equatable, Sendable {
    public var stage: String?
    /// The arm allocated (a code of the definition's arms).
    public var arm: String
    public var at: Date

    public init(stage: String? = nil, arm: String, at: Date) {
        self.stage = stage
        self.arm = arm
        self.at = at
    }
}

/// The investigator's eligibility decision and the criteria (definition codes) it found not met, or met for an exclusion.
public struct SDTMEligibility: Equatable, Sendable {
    public var decidedAt: Date
    public var eligible: Bool
    public var failedCriteria: [String]

    public init(decidedAt: Date, eligible: Bool, failedCriteria: [String] = []) {
        self.decidedAt = decidedAt
        self.eligible = eligible
        self.failedCriteria = failedCriteria
    }
}

/// How a participant's time in the study ended, in CDISC's completion/reason for non-completion terms (NCOMPLT).
public struct SDTMDisposition: Equatable, Sendable {
    public enum Reason: String, CaseIterable, Sendable {
        case completed = "COMPLETED"
        case adverseEvent = "ADVERSE EVENT"
        case death = "DEATH"
        case lostToFollowUp = "LOST TO FOLLOW-UP"
        case physicianDecision = "PHYSICIAN DECISION"
        case protocolDeviation = "PROTOCOL DEVIATION"
        case withdrawalBySubject = "WITHDRAWAL BY SUBJECT"
        case studyTerminatedBySponsor = "STUDY TERMINATED BY SPONSOR"
        case pregnancy = "PREGNANCY"
        case other = "OTHER"
    }

    public var reason: Reason
    public var date: SDTMDate
    /// The words recorded (DSTERM); the reason's own wording when absent.
    public var term: String?

    public init(reason: Reason, date: SDTMDate, term: String? = nil) {
        self.reason = reason
        self.date = date
        self.term = term
    }
}

/// A participant: DM's one record, and what every other domain needs of them (USUBJID, reference start, epochs).
public struct SDTMSubject: Equatable, Sendable {
    /// The store's id: the other records name their participant by it.
    public var participantID: String
    /// A site code of the definition.
    public var site: String
    /// The site's screening number, SUBJID: unique within the site (`ScreeningNumber` allows at most 32 characters).
    public var screeningNumber: String
    public var status: ParticipantStatus
    /// The choice code of the definition's sex field (`participant.sex`).
    public var sex: String?
    /// yyyy-MM-dd.
    public var birthDate: String?
    public var consentedAt: Date?
    public var eligibility: SDTMEligibility?
    /// In the order they happened; the last is the participant's arm now.
    public var allocations: [SDTMAllocation]
    /// The first and last dose given, as the store keeps them (the dose records need not be at hand for DM).
    public var firstDoseAt: Date?
    public var lastDoseAt: Date?
    public var disposition: SDTMDisposition?
    public var deathDate: SDTMDate?
    /// The last day the participant was seen or heard from, for RFPENDTC when follow-up has not ended.
    public var lastContact: SDTMDate?

    public init(
        participantID: String, site: String, screeningNumber: String, status: ParticipantStatus, sex: String? = nil, birthDate: String? = nil,
        consentedAt: Date? = nil, eligibility: SDTMEligibility? = nil, allocations: [SDTMAllocation] = [], firstDoseAt: Date? = nil,
        lastDoseAt: Date? = nil, disposition: SDTMDisposition? = nil, deathDate: SDTMDate? = nil, lastContact: SDTMDate? = nil
    ) {
        self.participantID = participantID
        self.site = site
        self.screeningNumber = screeningNumber
        self.status = status
        self.sex = sex
        self.birthDate = birthDate
        self.consentedAt = consentedAt
        self.eligibility = eligibility
        self.allocations = allocations
        self.firstDoseAt = firstDoseAt
        self.lastDoseAt = lastDoseAt
        self.disposition = disposition
        self.deathDate = deathDate
        self.lastContact = lastContact
    }

    /// The arm now (after every stage), nil before allocation.
    public var arm: String? { allocations.last?.arm }
}

/// One lab value as entered and as converted to the test's canonical unit, with the range in force and its grade.
public struct SDTMLab: Equatable, Sendable {
    public var participantID: String
    /// The visit code, nil for a sample outside the schedule.
    public var visit: String?
    /// The catalogue's (or the study's own) test code: ALT, BILI, …
    public var test: String
    public var collectedAt: Date
    public var value: Double
    public var unit: String
    public var standardValue: Double
    public var standardUnit: String
    /// The site's reference range in force on the day of sampling, in the canonical unit.
    public var lowerLimit: Double?
    public var upperLimit: Double?
    /// The CTCAE grade by the study's version (`safety.ctcaeVersion`); nil where the test has no CTCAE term.
    public var grade: Int?

    public init(
        participantID: String, visit: String?, test: String, collectedAt: Date, value: Double, unit: String, standardValue: Double,
        standardUnit: String, lowerLimit: Double? = nil, upperLimit: Double? = nil, grade: Int? = nil
    ) {
        self.participantID = participantID
        self.visit = visit
        self.test = test
        self.collectedAt = collectedAt
        self.value = value
        self.unit = unit
        self.standardValue = standardValue
        self.standardUnit = standardUnit
        self.lowerLimit = lowerLimit
        self.upperLimit = upperLimit
        self.grade = grade
    }
}

/// Action taken with study treatment (CDISC ACN terms).
public enum SDTMAction: String, CaseIterable, Sendable {
    case doseIncreased = "DOSE INCREASED"
    case doseNotChanged = "DOSE NOT CHANGED"
    case doseReduced = "DOSE REDUCED"
    case drugInterrupted = "DRUG INTERRUPTED"
    case drugWithdrawn = "DRUG WITHDRAWN"
    case notApplicable = "NOT APPLICABLE"
    case unknown = "UNKNOWN"

    /// The store keeps the action as free text: its CDISC term, read loosely ("none" is no change), or nil when the
    /// words match no term, so that the store can ask rather than guess.
    public init?(parsing text: String) {
        let t = SDTMAction.words(text)
        if let exact = SDTMAction(rawValue: t) { self = exact; return }
        switch t {
        case "NONE", "NO CHANGE", "NOT CHANGED", "UNCHANGED": self = .doseNotChanged
        case "INTERRUPTED", "PAUSED", "INFUSION INTERRUPTED", "STOPPED TEMPORARILY": self = .drugInterrupted
        case "WITHDRAWN", "STOPPED", "DISCONTINUED", "PERMANENTLY DISCONTINUED": self = .drugWithdrawn
        case "REDUCED": self = .doseReduced
        case "INCREASED": self = .doseIncreased
        case "NA", "N/A", "NOT APPLICABLE": self = .notApplicable
        default: return nil
        }
    }

    static func words(_ text: String) -> String {
        text.uppercased().replacingOccurrences(of: "_", with: " ").split(whereSeparator: \.isWhitespace).joined(separator: " ")
    }
}

/// Outcome of an adverse event (CDISC OUT terms).
public enum SDTMOutcome: String, CaseIterable, Sendable {
    case fatal = "FATAL"
    case notRecovered = "NOT RECOVERED/NOT RESOLVED"
    case recovered = "RECOVERED/RESOLVED"
    case recoveredWithSequelae = "RECOVERED/RESOLVED WITH SEQUELAE"
    case recovering = "RECOVERING/RESOLVING"
    case unknown = "UNKNOWN"

    /// As `SDTMAction(parsing:)`: the store's free text read loosely, nil when it matches no term.
    public init?(parsing text: String) {
        let t = SDTMAction.words(text)
        if let exact = SDTMOutcome(rawValue: t) { self = exact; return }
        switch t {
        case "RECOVERED", "RESOLVED": self = .recovered
        case "RECOVERING", "RESOLVING", "IMPROVING": self = .recovering
        case "NOT RECOVERED", "NOT RESOLVED", "ONGOING": self = .notRecovered
        case "SEQUELAE", "RECOVERED WITH SEQUELAE", "RESOLVED WITH SEQUELAE": self = .recoveredWithSequelae
        case "DEATH", "DIED", "FATAL": self = .fatal
        default: return nil
        }
    }
}

/// An adverse event as recorded: a CTCAE term (whose code is a MedDRA lowest level term) graded by CTCAE.
public struct SDTMAdverseEvent: Equatable, Sendable {
    public var participantID: String
    public var term: String
    /// The term's MedDRA code (8 digits).
    public var meddra: String
    /// The term's system organ class as CTCAE lists it.
    public var soc: String?
    public var ctcaeVersion: String
    public var grade: Int
    public var onset: Date
    public var resolved: Date?
    public var serious: Bool
    public var seriousness: [Seriousness]
    public var attribution: Attribution
    public var action: SDTMAction
    public var outcome: SDTMOutcome

    public init(
        participantID: String, term: String, meddra: String, soc: String? = nil, ctcaeVersion: String, grade: Int, onset: Date, resolved: Date? = nil,
        serious: Bool, seriousness: [Seriousness] = [], attribution: Attribution, action: SDTMAction, outcome: SDTMOutcome
    ) {
        self.participantID = participantID
        self.term = term
        self.meddra = meddra
        self.soc = soc
        self.ctcaeVersion = ctcaeVersion
        self.grade = grade
        self.onset = onset
        self.resolved = resolved
        self.serious = serious
        self.seriousness = seriousness
        self.attribution = attribution
        self.action = action
        self.outcome = outcome
    }
}

/// A planned dose as recorded: given, with its times, amount and lot, or skipped with the reason.
public struct SDTMDose: Equatable, Sendable {
    public var participantID: String
    /// The dose's code in the arm's plan.
    public var dose: String
    public var given: Bool
    public var startedAt: Date?
    public var endedAt: Date?
    /// As worked out when recorded; the plan's amount and unit when absent.
    public var amount: Double?
    public var unit: String?
    public var lot: String?
    public var skipReason: String?

    public init(
        participantID: String, dose: String, given: Bool, startedAt: Date? = nil, endedAt: Date? = nil, amount: Double? = nil, unit: String? = nil,
        lot: String? = nil, skipReason: String? = nil
    ) {
        self.participantID = participantID
        self.dose = dose
        self.given = given
        self.startedAt = startedAt
        self.endedAt = endedAt
        self.amount = amount
        self.unit = unit
        self.lot = lot
        self.skipReason = skipReason
    }
}

/// A visit that took place.
public struct SDTMVisitRecord: Equatable, Sendable {
    public var participantID: String
    public var visit: String
    public var start: SDTMDate
    public var end: SDTMDate?

    public init(participantID: String, visit: String, start: SDTMDate, end: SDTMDate? = nil) {
        self.participantID = participantID
        self.visit = visit
        self.start = start
        self.end = end
    }
}

/// A form as saved at a visit: field code → value as text, as the store keeps it. VS reads the fields the
/// definition marks as vital signs by their LOINC code.
public struct SDTMFormRecord: Equatable, Sendable {
    public var participantID: String
    public var visit: String
    public var form: String
    public var values: [String: String]

    public init(participantID: String, visit: String, form: String, values: [String: String]) {
        self.participantID = participantID
        self.visit = visit
        self.form = form
        self.values = values
    }
}

/// Everything one participant contributes, handed over together so that every subject-level domain streams by
/// participant. Records of another participant are refused.
public struct SDTMSubjectData: Equatable, Sendable {
    public var subject: SDTMSubject
    public var doses: [SDTMDose]
    public var labs: [SDTMLab]
    public var adverseEvents: [SDTMAdverseEvent]
    public var visits: [SDTMVisitRecord]
    public var forms: [SDTMFormRecord]

    public init(
        subject: SDTMSubject, doses: [SDTMDose] = [], labs: [SDTMLab] = [], adverseEvents: [SDTMAdverseEvent] = [], visits: [SDTMVisitRecord] = [],
        forms: [SDTMFormRecord] = []
    ) {
        self.subject = subject
        self.doses = doses
        self.labs = labs
        self.adverseEvents = adverseEvents
        self.visits = visits
        self.forms = forms
    }
}

/// The source of participants for a dataset: it calls `emit` once per participant. Writing every subject-level
/// dataset calls it once per dataset, so it must give the same participants each time.
public typealias SDTMSubjectSource = (_ emit: (SDTMSubjectData) throws -> Void) throws -> Void
