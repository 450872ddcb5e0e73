import Foundation
import TrialDomain

// Plain input records for the CDISC ODM 1.3.2 export (ODMWriter). The store fills them; nothing here reads a database.
// Section numbers (§) are those of the ODM 1.3.2 specification (../shared/reference/xsd/odm-1.3.2/ODM1-3-2-Final.htm).

/// A person named by audit records and signatures (§3.1.2.1 User). Every user an event or a signature names must be
/// listed: AdminData is written before the clinical data, so a user cannot be added once subjects are streaming.
public struct ODMUser: Equatable, Sendable {
    /// ODM's UserType vocabulary.
    public enum Kind: String, Sendable, CaseIterable {
        case sponsor = "Sponsor", investigator = "Investigator", lab = "Lab", other = "Other"
    }

    /// The user name as audit events and signatures carry it (AuditEntry.actor); ODM's LoginName.
    public var name: String
    public var fullName: String?
    public var kind: Kind?
    /// The site codes the user works at (LocationRef).
    public var sites: [String]

    public init(name: String, fullName: String? = nil, kind: Kind? = nil, sites: [String] = []) {
        self.name = name
        self.fullName = fullName
        self.kind = kind
        self.sites = sites
    }
}

/// A site as an ODM Location (§3.1.2.2), with the day from which it uses the exported metadata version.
public struct ODMSite: Equatable, Sendable {
    public var code: String
    public var name: String
    /// yyyy-MM-dd: MetaDataVersionRef's EffectiveDate (§3.1.2.2.1).
    public var effectiveDate: String

    public init(code: String, name: String, effectiveDate: String) {
        self.code = code
        self.name = name
        self.effectiveDate = effectiveDate
    }

    /// The study definition's sites, each using the metadata from the same day.
    public static func sites(of study: StudyDefinition, effectiveDate: String) -> [ODMSite] {
        study.sites.map { ODMSite(code: $0.code, name: $0.name, effectiveDate: effectiveDate) }
    }
}

/// A kind of signature (§3.1.2.3 SignatureDef): its short name (Meaning) and the statement the signer makes (LegalReason).
public struct ODMSignatureMeaning: Equatable, Sendable {
    public var code: String
    public var statement: String

    public init(code: String, statement: String) {
        self.code = code
        self.statement = statement
    }
}

/// What goes into AdminData (§3.1.2), in the order given.
public struct ODMAdministration: Equatable, Sendable {
    public var users: [ODMUser]
    public var sites: [ODMSite]
    public var meanings: [ODMSignatureMeaning]

    public init(users: [ODMUser], sites: [ODMSite], meanings: [ODMSignatureMeaning]) {
        self.users = users
        self.sites = sites
        self.meanings = meanings
    }
}

/// One audit event that touched a value (§3.1.4.1.2 AuditRecord): who, where, when, why, and its place in the chain.
public struct ODMAuditEvent: Equatable, Sendable {
    /// The audit chain's sequence number: SourceID.
    public var sequence: Int64
    /// When it happened, as AuditEntry stores it (ISO 8601; without a zone it is UTC, as Casebook writes instants).
    public var occurredAt: String
    /// The user name (must be one of the export's users).
    public var user: String
    public var reason: String?
    /// The site code where it happened; the subject's site when nil.
    public var site: String?

    public init(sequence: Int64, occurredAt: String, user: String, reason: String? = nil, site: String? = nil) {
        self.sequence = sequence
        self.occurredAt = occurredAt
        self.user = user
        self.reason = reason
        self.site = site
    }

    /// The event as the audit chain holds it; `site` is a site code (the chain keeps the site's database id).
    public init(_ entry: AuditEntry, site: String? = nil) {
        self.init(sequence: entry.sequence, occurredAt: entry.occurredAt, user: entry.actor, reason: entry.reason, site: site)
    }
}

/// An electronic signature in force (§3.1.4.1.3 Signature).
public struct ODMSignature: Equatable, Sendable {
    /// What it signs: the whole casebook (SubjectData) or one form at one visit (FormData).
    public enum Covers: Equatable, Sendable {
        case casebook
        case form(visit: String, form: String)
    }

    /// One of the export's signature meanings.
    public var meaning: String
    public var user: String
    public var signedAt: Date
    public var covers: Covers
    /// The site code where it was signed; the subject's site when nil.
    public var site: String?

    public init(meaning: String, user: String, signedAt: Date, covers: Covers, site: String? = nil) {
        self.meaning = meaning
        self.user = user
        self.signedAt = signedAt
        self.covers = covers
        self.site = site
    }
}

/// One form's current values at one visit, as text in the form's canonical form (FormValidator's), with the audit
/// events of each value, keyed by field code.
public struct ODMFormData: Equatable, Sendable {
    public var visit: String
    public var form: String
    public var values: [String: String]
    public var audit: [String: [ODMAuditEvent]]

    public init(visit: String, form: String, values: [String: String], audit: [String: [ODMAuditEvent]] = [:]) {
        self.visit = visit
        self.form = form
        self.values = values
        self.audit = audit
    }
}

/// One lab result as the store keeps it: the value as entered and in the test's canonical unit.
public struct ODMLabResult: Equatable, Sendable {
    public var visit: String
    /// The lab code (catalogue or study: BILI).
    public var test: String
    public var collectedAt: Date
    /// In the test's canonical unit.
    public var value: Double
    public var unit: String
    public var enteredValue: Double
    public var enteredUnit: String
    /// The CTCAE grade by the study's version, when graded.
    public var grade: Int?
    public var audit: [ODMAuditEvent]

    public init(
        visit: String, test: String, collectedAt: Date, value: Double, unit: String, enteredValue: Double, enteredUnit: String, grade: Int? = nil,
        audit: [ODMAuditEvent] = []
    ) {
        self.visit = visit
        self.test = test
        self.collectedAt = collectedAt
        self.value = value
        self.unit = unit
        self.enteredValue = enteredValue
        self.enteredUnit = enteredUnit
        self.grade = grade
        self.audit = audit
    }
}

/// The arm a subject is in now; left out of a blinded export.
public struct ODMAllocation: Equatable, Sendable {
    public var arm: String
    public var allocatedAt: Date?

    public init(arm: String, allocatedAt: Date? = nil) {
        self.arm = arm
        self.allocatedAt = allocatedAt
    }
}

/// Everything exported for one participant: one SubjectData (§3.1.4.1).
public struct ODMSubject: Equatable, Sendable {
    /// The study subject id: SubjectKey.
    public var key: String
    /// The site code: SiteRef.
    public var site: String
    public var forms: [ODMFormData]
    public var labs: [ODMLabResult]
    /// Signatures in force, of the casebook and of forms.
    public var signatures: [ODMSignature]
    public var allocation: ODMAllocation?

    public init(key: String, site: String, forms: [ODMFormData] = [], labs: [ODMLabResult] = [], signatures: [ODMSignature] = [], allocation: ODMAllocation? = nil) {
        self.key = key
        self.site = site
        self.forms = forms
        self.labs = labs
        self.signatures = signatures
        self.allocation = allocation
    }
}

/// The document's own settings (§3.1 ODM attributes) and the export's choices.
public struct ODMOptions: Equatable, Sendable {
    public var fileOID: String
    /// CreationDateTime; every audit and signature time must precede it (§2.10).
    public var createdAt: Date
    /// AsOfDateTime, when the data were read; not after `createdAt`.
    public var asOf: Date?
    /// Leave out every arm: the allocation event, form, items and code list, and each subject's arm.
    public var blinded: Bool
    public var originator: String?
    public var sourceSystem: String?
    public var sourceSystemVersion: String?
    /// xml:lang of every TranslatedText; none when nil.
    public var language: String?
    /// Bytes gathered before they go to the sink; they go only between subjects (and at the end).
    public var flushThreshold: Int

    public init(
        fileOID: String, createdAt: Date, asOf: Date? = nil, blinded: Bool, originator: String? = nil, sourceSystem: String? = "Casebook",
        sourceSystemVersion: String? = nil, language: String? = "en", flushThreshold: Int = 64 * 1024
    ) {
        self.fileOID = fileOID
        self.createdAt = createdAt
        self.asOf = asOf
        self.blinded = blinded
        self.originator = originator
        self.sourceSystem = sourceSystem
        self.sourceSystemVersion = sourceSystemVersion
        self.language = language
        self.flushThreshold = flushThreshold
    }
}

/// Why an export cannot be written as asked. `path` names the place: `SUBJECT/visit/form.field`.
public enum ODMError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A user, site, meaning, subject key, form at a visit, lab at a visit or OID given twice.
    case duplicate(kind: String, value: String)
    /// A reference to something the definition or AdminData does not have.
    case unknown(kind: String, value: String, path: String)
    /// A form recorded or signed at a visit the definition does not collect it at.
    case formNotAtVisit(form: String, visit: String, path: String)
    /// A value that does not fit its item's data type or code list.
    case invalidValue(path: String, value: String, rule: String)
    /// Text holding a character XML 1.0 cannot carry (control characters other than tab and line breaks).
    case unrepresentableText(path: String)
    /// An audit or signature time after the file's CreationDateTime (§2.10), or AsOfDateTime after it (§3.1).
    case timeAfterCreation(path: String, time: String)
    /// The writer used out of order: a subject after `finish()`.
    case finished

    public var description: String {
        switch self {
        case .duplicate(let kind, let value): "\(kind) '\(value)' is given more than once"
        case .unknown(let kind, let value, let path): "\(path): unknown \(kind) '\(value)'"
        case .formNotAtVisit(let form, let visit, let path): "\(path): form '\(form)' is not collected at visit '\(visit)'"
        case .invalidValue(let path, let value, let rule): "\(path): '\(value)' \(rule)"
        case .unrepresentableText(let path): "\(path): holds a character XML 1.0 cannot carry"
        case .timeAfterCreation(let path, let time): "\(path): \(time) is after the file's creation time"
        case .finished: "the document is already finished"
        }
    }
}
