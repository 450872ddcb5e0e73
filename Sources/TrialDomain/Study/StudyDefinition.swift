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
    /// The study's own settings for labs of the catalogue, such as a conversion factor its protocol states.
    public var labs: [StudyLab]?
    /// Where a participant's sex and date of birth are recorded, for reference ranges, scores and age.
    public var participant: ParticipantFields?
    /// Randomizations after enrolment, each at a named visit (the one at enrolment is `randomization`).
    public var randomizations: [StageRandomization]?
    /// Which roles see arms in a masked study.
    public var blinding: BlindingSettings?
    /// What this version, as an amendment, changes for participants already enrolled.
    public var amendment: AmendmentSettings?
    /// The CTCAE terms the protocol names, so adverse events can be recorded before NCI's full catalogue is imported.
    public var adverseEventTerms: [StudyTerm]?
    /// Named values computed from others, usable by name in every expression (each may use those listed before it).
    public var derived: [DerivedField]?
    /// Query due times, edit checks and source verification.
    public var dataManagement: DataManagementSettings?
    /// Safety monitoring while the trial runs: the toxicity stopping rules of the sponsor's monitoring plan.
    public var monitoring: MonitoringSettings?

    public init(schemaVersion: Int, code: String, version: Int, identity: StudyIdentity, lifecycle: Lifecycle, sites: [SiteDefinition], parameters: [Parameter], arms: [Arm], interventions: [Intervention], anchors: [Anchor], visits: [Visit], forms: [Form], eligibility: Eligibility, endpoints: [Endpoint], randomization: RandomizationSettings, consent: ConsentSettings, safety: SafetySettings, labs: [StudyLab]? = nil, participant: ParticipantFields? = nil, randomizations: [StageRandomization]? = nil, blinding: BlindingSettings? = nil, amendment: AmendmentSettings? = nil, adverseEventTerms: [StudyTerm]? = nil, derived: [DerivedField]? = nil, dataManagement: DataManagementSettings? = nil, monitoring: MonitoringSettings? = nil) {
        self.schemaVersion = schemaVersion
        self.code = code
        self.version = version
        self.identity = identity
        self.lifecycle = lifecycle
        self.sites = sites
        self.parameters = parameters
        self.arms = arms
        self.interventions = interventions
        self.anchors = anchors
        self.visits = visits
        self.forms = forms
        self.eligibility = eligibility
        self.endpoints = endpoints
        self.randomization = randomization
        self.consent = consent
        self.safety = safety
        self.labs = labs
        self.participant = participant
        self.randomizations = randomizations
        self.blinding = blinding
        self.amendment = amendment
        self.adverseEventTerms = adverseEventTerms
        self.derived = derived
        self.dataManagement = dataManagement
        self.monitoring = monitoring
    }

    public static let currentSchemaVersion = 1

    /// The participant's sex code, from the field the study names.
    public func sex(in values: [String: String]) -> String? { participant?.sex.flatMap { values[$0] } }
    public func isFemale(in values: [String: String]) -> Bool? {
        guard let code = sex(in: values), let female = participant?.female else { return nil }
        return code == female
    }
    public func birthDate(in values: [String: String]) -> Date? { participant?.birthDate.flatMap { values[$0] }.flatMap(DateParsing.day) }

    public func form(_ code: String) -> Form? { forms.first { $0.code == code } }

    /// The form and field a `form.field` name points at.
    public func field(named name: String) -> (form: Form, field: Field)? {
        let parts = name.split(separator: ".", maxSplits: 1).map(String.init)
        guard parts.count == 2, let form = form(parts[0]), let field = form.field(parts[1]) else { return nil }
        return (form, field)
    }
    public var eligibilityVisit: String? { eligibility.visit ?? visits.first?.code }
    public func visit(_ code: String) -> Visit? { visits.first { $0.code == code } }
    public func parameter(_ code: String) -> Parameter? { parameters.first { $0.code == code } }

    /// A site's value of a parameter: for one read from a reference range, that limit of the site's range in force
    /// (by sex where the site gives one); otherwise the site's own override, else the study default.
    public func parameterValue(_ code: String, site: String?, sex: String? = nil, on day: Date? = nil) -> Double? {
        guard let parameter = parameter(code) else { return nil }
        if let source = parameter.range {
            let ranges = site.flatMap { s in sites.first { $0.code == s }?.referenceRanges } ?? []
            let range = ReferenceRange.pick(ranges, test: source.test.uppercased(), sex: sex, age: nil, on: day)
            return source.limit == .high ? range?.high : range?.low
        }
        if let site, let override = sites.first(where: { $0.code == site })?.parameters?[code] { return override }
        return parameter.value
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

    public init(title: String, shortTitle: String, acronym: String? = nil, registryIds: [String], sponsor: String, products: [String], conditions: [String], phase: String, studyType: String, allocation: String, interventionModel: String, masking: String, purpose: String, description: String? = nil) {
        self.title = title
        self.shortTitle = shortTitle
        self.acronym = acronym
        self.registryIds = registryIds
        self.sponsor = sponsor
        self.products = products
        self.conditions = conditions
        self.phase = phase
        self.studyType = studyType
        self.allocation = allocation
        self.interventionModel = interventionModel
        self.masking = masking
        self.purpose = purpose
        self.description = description
    }
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

    public init(status: StudyStatus, date: String, reason: String? = nil) {
        self.status = status
        self.date = date
        self.reason = reason
    }
}

public struct Lifecycle: Codable, Equatable, Sendable {
    /// The registry's status history: a fact about the record, shown as such; it governs nothing here.
    public var history: [StatusChange]
    /// The sponsor's own operating status, which decides whether participants may be enrolled and allocated.
    public var operating: [OperatingChange]?
    public var enrollment: Enrollment
    public var dates: StudyDates

    public init(history: [StatusChange], operating: [OperatingChange]? = nil, enrollment: Enrollment, dates: StudyDates) {
        self.history = history
        self.operating = operating
        self.enrollment = enrollment
        self.dates = dates
    }

    /// The registry status.
    public var status: StudyStatus? { history.last?.status }
    /// A study that never stated one is still being planned, and enrols no one.
    public var operatingStatus: OperatingStatus { operating?.last?.status ?? .planning }
}

/// The status that governs the system: only a recruiting study takes new participants and allocates them.
public enum OperatingStatus: String, Codable, CaseIterable, Sendable {
    case planning, recruiting, suspended
    case closedToEnrolment = "closed_to_enrolment"
    case completed, withdrawn

    public var title: String {
        switch self {
        case .planning: "Planning"
        case .recruiting: "Recruiting"
        case .suspended: "Suspended"
        case .closedToEnrolment: "Closed to enrolment"
        case .completed: "Completed"
        case .withdrawn: "Withdrawn"
        }
    }

    public var needsReason: Bool { [.suspended, .closedToEnrolment, .withdrawn].contains(self) }
}

public struct OperatingChange: Codable, Equatable, Sendable {
    public var status: OperatingStatus
    /// ISO date, yyyy-MM-dd.
    public var date: String
    public var reason: String?

    public init(status: OperatingStatus, date: String, reason: String? = nil) {
        self.status = status
        self.date = date
        self.reason = reason
    }
}

public struct Enrollment: Codable, Equatable, Sendable {
    /// Participants the study plans to randomize; a setting, not the registry's actual count.
    public var target: Int?
    public var actual: Int?

    public init(target: Int? = nil, actual: Int? = nil) {
        self.target = target
        self.actual = actual
    }
}

public struct StudyDates: Codable, Equatable, Sendable {
    public var start: String?
    public var primaryCompletion: String?
    public var completion: String?
    public var recordUpdated: String?

    public init(start: String? = nil, primaryCompletion: String? = nil, completion: String? = nil, recordUpdated: String? = nil) {
        self.start = start
        self.primaryCompletion = primaryCompletion
        self.completion = completion
        self.recordUpdated = recordUpdated
    }
}

public struct SiteDefinition: Codable, Equatable, Sendable {
    public var code: String
    public var name: String
    /// Overrides of study parameters (same unit as the study default).
    public var parameters: [String: Double]?
    /// The site laboratory's reference ranges, in each test's canonical unit.
    public var referenceRanges: [ReferenceRange]?
    /// The site's IANA time zone (Asia/Shanghai): windows in days and weeks, and "today", are the site's. UTC when absent.
    public var timeZone: String?

    public init(code: String, name: String, parameters: [String: Double]? = nil, referenceRanges: [ReferenceRange]? = nil, timeZone: String? = nil) {
        self.code = code
        self.name = name
        self.parameters = parameters
        self.referenceRanges = referenceRanges
        self.timeZone = timeZone
    }
}

/// A CTCAE term as NCI's table lists it: version, MedDRA code, term, system organ class, and the grades it has. The
/// grades' wording stays with the catalogue import.
public struct StudyTerm: Codable, Equatable, Sendable {
    public var version: String
    public var meddra: String
    public var term: String
    public var soc: String
    public var grades: [Int]

    public init(version: String, meddra: String, term: String, soc: String, grades: [Int]) {
        self.version = version
        self.meddra = meddra
        self.term = term
        self.soc = soc
        self.grades = grades
    }
}

/// Whom an amendment's schedule applies to: everyone (their remaining visits and doses follow it), or only participants
/// enrolled from this version on (the others keep the schedule of the version they were enrolled under).
public struct AmendmentSettings: Codable, Equatable, Sendable {
    public enum AppliesTo: String, Codable, Sendable {
        case everyone
        case newParticipants = "new_participants"
    }
    public var appliesTo: AppliesTo
    /// With `everyone`: the day (yyyy-MM-dd, the site's calendar) from which participants already enrolled follow
    /// this version; their visits and doses due before it keep the version they followed. Absent: all at once.
    public var from: String?

    public init(appliesTo: AppliesTo, from: String? = nil) {
        self.appliesTo = appliesTo
        self.from = from
    }
}

/// The fields that say who the participant is, as `form.field`.
public struct ParticipantFields: Codable, Equatable, Sendable {
    /// A choice field; its codes are the ones reference ranges use for sex.
    public var sex: String?
    /// The choice code that means female, for the scores that weigh sex.
    public var female: String?
    public var birthDate: String?
    /// How a participant's follow-up ended (CONSORT's lost and discontinued, SDTM's disposition).
    public var endOfStudy: EndOfStudyRule?

    public init(sex: String? = nil, female: String? = nil, birthDate: String? = nil, endOfStudy: EndOfStudyRule? = nil) {
        self.sex = sex
        self.female = female
        self.birthDate = birthDate
        self.endOfStudy = endOfStudy
    }
}

/// A value the protocol computes from recorded ones, such as a BMI or a score, named for use in criteria and endpoints.
public struct DerivedField: Codable, Equatable, Sendable {
    public var code: String
    public var label: String
    public var expression: String

    public init(code: String, label: String, expression: String) {
        self.code = code
        self.label = label
        self.expression = expression
    }
}

/// A study's own setting for one lab of the catalogue (a conversion factor its protocol states), or a lab of its
/// own that the catalogue lacks (then with its name and canonical unit).
public struct StudyLab: Codable, Equatable, Sendable {
    /// The catalogue code, such as BILI, or the study's own code for a lab it adds.
    public var code: String
    /// Factors to the lab's canonical unit that the protocol states, which win over the catalogue's.
    public var conversions: [LabConversion]?
    /// For a lab the study adds: its name, canonical UCUM unit, LOINC (only where a source gives it), the values
    /// no living patient shows, and the CTCAE term that grades it.
    public var name: String?
    public var unit: String?
    public var loinc: String?
    public var plausible: NumberRange?
    public var ctcae: String?

    public init(
        code: String, conversions: [LabConversion]? = nil, name: String? = nil, unit: String? = nil, loinc: String? = nil, plausible: NumberRange? = nil,
        ctcae: String? = nil
    ) {
        self.code = code
        self.conversions = conversions
        self.name = name
        self.unit = unit
        self.loinc = loinc
        self.plausible = plausible
        self.ctcae = ctcae
    }

    /// The lab as the catalogue would hold it, for a lab the study adds.
    var added: LabTest? {
        guard LabCatalogue.test(code) == nil, let name, let unit else { return nil }
        return LabTest(
            code: code.uppercased(), name: name, loinc: loinc, analyte: "study:\(code.uppercased())", unit: unit,
            plausible: (plausible?.min ?? 0)...(plausible?.max ?? .greatestFiniteMagnitude), ctcae: ctcae)
    }
}

extension StudyDefinition {
    /// The labs this study can record: the catalogue's and those its definition adds.
    public var labTests: [LabTest] { LabCatalogue.tests + (labs ?? []).compactMap(\.added) }

    public func labTest(_ code: String) -> LabTest? {
        LabCatalogue.test(code) ?? (labs ?? []).lazy.compactMap(\.added).first { $0.code == code.uppercased() }
    }
}

public struct LabConversion: Codable, Equatable, Sendable {
    public var unit: String
    /// One `unit` is this many of the canonical unit (1 mg/dL bilirubin = 17.1 µmol/L).
    public var factor: Double
    /// Where the factor comes from.
    public var source: String?

    public init(unit: String, factor: Double, source: String? = nil) {
        self.unit = unit
        self.factor = factor
        self.source = source
    }
}

/// A named value such as an upper limit of normal; sites may override it.
public struct Parameter: Codable, Equatable, Sendable {
    public var code: String
    public var label: String
    /// The study's value, which sites may override; absent for a parameter read from the sites' reference ranges.
    public var value: Double?
    public var unit: String
    /// A limit of each site's reference range for a lab (`{test: BILI, limit: high}` is the site's ULN), so that
    /// eligibility and grading read one source.
    public var range: ParameterRange?

    public init(code: String, label: String, value: Double?, unit: String, range: ParameterRange? = nil) {
        self.code = code
        self.label = label
        self.value = value
        self.unit = unit
        self.range = range
    }
}

public struct ParameterRange: Codable, Equatable, Sendable {
    public enum Limit: String, Codable, Sendable { case low, high }
    public var test: String
    public var limit: Limit

    public init(test: String, limit: Limit) {
        self.test = test
        self.limit = limit
    }
}

public struct Arm: Codable, Equatable, Sendable {
    public var code: String
    public var name: String
    /// EXPERIMENTAL, ACTIVE_COMPARATOR, PLACEBO_COMPARATOR, NO_INTERVENTION, OTHER
    public var type: String
    public var ratio: Int
    public var interventions: [String]
    public var description: String?
    /// The doses this arm receives, in order; none for an arm without intervention.
    public var doses: [PlannedDose]?

    public init(code: String, name: String, type: String, ratio: Int, interventions: [String], description: String? = nil, doses: [PlannedDose]? = nil) {
        self.code = code
        self.name = name
        self.type = type
        self.ratio = ratio
        self.interventions = interventions
        self.description = description
        self.doses = doses
    }
}

public struct Dose: Codable, Equatable, Sendable {
    public var amount: Double
    public var unit: String
    public var volume: Double?
    public var volumeUnit: String?

    public init(amount: Double, unit: String, volume: Double? = nil, volumeUnit: String? = nil) {
        self.amount = amount
        self.unit = unit
        self.volume = volume
        self.volumeUnit = volumeUnit
    }
}

extension Dose {
    /// "1×10^10 particles in 100 mL"
    public var summary: String {
        var text = "\(Dose.number(amount)) \(unit)"
        if let volume { text += " in \(Dose.number(volume)) \(volumeUnit ?? "")" }
        return text.trimmingCharacters(in: .whitespaces)
    }

    /// Large counts in scientific form, as protocols write doses of particles or cells.
    public static func number(_ value: Double) -> String {
        if value >= 1e6 {
            let exponent = Int(log10(value).rounded(.down))
            let mantissa = value / pow(10, Double(exponent))
            let m = mantissa == mantissa.rounded() ? String(Int(mantissa)) : String(format: "%.2f", mantissa)
            return "\(m)×10^\(exponent)"
        }
        return FormValidator.format(value)
    }
}

public struct Intervention: Codable, Equatable, Sendable {
    public var code: String
    public var name: String
    public var type: String
    public var dose: Dose?
    public var route: String?
    public var frequency: String?
    public var description: String?

    public init(code: String, name: String, type: String, dose: Dose? = nil, route: String? = nil, frequency: String? = nil, description: String? = nil) {
        self.code = code
        self.name = name
        self.type = type
        self.dose = dose
        self.route = route
        self.frequency = frequency
        self.description = description
    }
}

/// A moment visits are timed from: the transplant, the allocation, time zero.
public struct Anchor: Codable, Equatable, Sendable {
    public var code: String
    public var label: String
    public var description: String?
    /// Where a participant's time for this anchor comes from: a date field (`form.field`), `allocation`,
    /// `first_dose` (the first dose given; for an arm without doses, the allocation), or `dose:CODE` (that dose;
    /// the allocation for an arm whose plan lacks it). `infusion` is read as `first_dose`.
    /// Every dose code is an anchor too, without being listed.
    /// Anchors are listed in the order they must happen.
    public var source: String?

    public init(code: String, label: String, description: String? = nil, source: String? = nil) {
        self.code = code
        self.label = label
        self.description = description
        self.source = source
    }
}

public struct VisitWindow: Codable, Equatable, Sendable {
    public var before: Offset
    public var after: Offset

    public init(before: Offset, after: Offset) {
        self.before = before
        self.after = after
    }
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
    /// The arms whose participants have this visit; all arms when absent.
    public var arms: [String]?

    public init(code: String, name: String, anchor: String? = nil, target: Offset? = nil, window: VisitWindow? = nil, defines: String? = nil, arms: [String]? = nil) {
        self.code = code
        self.name = name
        self.anchor = anchor
        self.target = target
        self.window = window
        self.defines = defines
        self.arms = arms
    }
}

public enum FieldType: String, Codable, CaseIterable, Sendable {
    case number, integer, date, datetime, choice, yesno, text
}

public struct NumberRange: Codable, Equatable, Sendable {
    public var min: Double?
    public var max: Double?

    public init(min: Double? = nil, max: Double? = nil) {
        self.min = min
        self.max = max
    }
}

public struct Choice: Codable, Equatable, Sendable {
    public var code: String
    public var label: String

    public init(code: String, label: String) {
        self.code = code
        self.label = label
    }
}

public struct Field: Codable, Equatable, Sendable {
    public var code: String
    public var label: String
    public var type: FieldType
    public var unit: String?
    public var range: NumberRange?
    /// Where most values fall (a usual adult range): the demo draws from it; nothing is refused for lying outside it.
    public var typical: NumberRange?
    public var required: Bool?
    public var choices: [Choice]?
    public var loinc: String?
    /// The catalogue lab this field holds (`BILI`), so that its units convert and scores read it.
    public var lab: String?
    /// A date or time that is planned rather than observed, and so may lie in the future.
    public var planned: Bool?
    /// The liver-score input this field holds (`ascites`, `encephalopathy`, `map`, `vasopressors`, `dialysis`, `pao2_fio2`, …).
    public var score: String?

    public init(code: String, label: String, type: FieldType, unit: String? = nil, range: NumberRange? = nil, required: Bool? = nil, choices: [Choice]? = nil, loinc: String? = nil, lab: String? = nil, planned: Bool? = nil, score: String? = nil,
        typical: NumberRange? = nil
    ) {
        self.code = code
        self.typical = typical
        self.label = label
        self.type = type
        self.unit = unit
        self.range = range
        self.required = required
        self.choices = choices
        self.loinc = loinc
        self.lab = lab
        self.planned = planned
        self.score = score
    }

    public var isRequired: Bool { required ?? false }
}

public struct Form: Codable, Equatable, Sendable {
    public var code: String
    public var name: String
    public var visits: [String]
    public var fields: [Field]

    public init(code: String, name: String, visits: [String], fields: [Field]) {
        self.code = code
        self.name = name
        self.visits = visits
        self.fields = fields
    }

    public func field(_ code: String) -> Field? { fields.first { $0.code == code } }
}

public struct Criterion: Codable, Equatable, Sendable {
    public var code: String
    /// The criterion as the protocol words it.
    public var text: String
    /// The same as an expression over form data, e.g. `screening_labs.total_bilirubin >= 10 × bilirubin_uln`.
    public var expression: String

    public init(code: String, text: String, expression: String) {
        self.code = code
        self.text = text
        self.expression = expression
    }
}

public struct Eligibility: Codable, Equatable, Sendable {
    public var inclusion: [Criterion]
    public var exclusion: [Criterion]
    /// The visit whose forms the criteria read (default: the first visit).
    public var visit: String?
    /// The date field (`form.field`) that dates the screening: samples taken after it are not used.
    public var date: String?
    /// How long before that date a lab sample may be taken and still be used (`14d`).
    public var samplesWithin: Offset?

    public init(inclusion: [Criterion], exclusion: [Criterion], visit: String? = nil, date: String? = nil, samplesWithin: Offset? = nil) {
        self.inclusion = inclusion
        self.exclusion = exclusion
        self.visit = visit
        self.date = date
        self.samplesWithin = samplesWithin
    }
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
    /// How it is computed; without one the endpoint is listed but not computed.
    public var analysis: EndpointAnalysis?

    public init(code: String, kind: EndpointKind, measure: String, timeFrame: String, description: String? = nil, analysis: EndpointAnalysis? = nil) {
        self.code = code
        self.kind = kind
        self.measure = measure
        self.timeFrame = timeFrame
        self.description = description
        self.analysis = analysis
    }
}

public struct StratificationFactor: Codable, Equatable, Sendable {
    public var code: String
    public var label: String
    /// A number the factor is cut on, as an expression (a form field or a score).
    public var expression: String
    /// Ascending cut points: [30] gives "< 30" and "≥ 30".
    public var cutoffs: [Double]

    public init(code: String, label: String, expression: String, cutoffs: [Double]) {
        self.code = code
        self.label = label
        self.expression = expression
        self.cutoffs = cutoffs
    }
}

public struct RandomizationSettings: Codable, Equatable, Sendable {
    /// permuted_blocks or minimization
    public var method: String
    public var blockSizes: [Int]
    public var stratifyBySite: Bool
    public var factors: [StratificationFactor]
    /// When allocation may happen, relative to an anchor.
    public var window: AllocationWindow?
    /// Minimization only: the chance of taking the arm that least increases imbalance (default 0.8).
    public var minimizationProbability: Double?
    /// Permuted blocks: positions generated per stratum (default: the enrolment target, at least 100).
    public var listLengthPerStratum: Int?

    public init(
        method: String, blockSizes: [Int], stratifyBySite: Bool, factors: [StratificationFactor], window: AllocationWindow? = nil,
        minimizationProbability: Double? = nil, listLengthPerStratum: Int? = nil
    ) {
        self.method = method
        self.blockSizes = blockSizes
        self.stratifyBySite = stratifyBySite
        self.factors = factors
        self.window = window
        self.minimizationProbability = minimizationProbability
        self.listLengthPerStratum = listLengthPerStratum
    }
}

public struct AllocationWindow: Codable, Equatable, Sendable {
    public var anchor: String
    public var earliest: Offset
    public var latest: Offset

    public init(anchor: String, earliest: Offset, latest: Offset) {
        self.anchor = anchor
        self.earliest = earliest
        self.latest = latest
    }
}

public struct ConsentVersion: Codable, Equatable, Sendable {
    public var version: String
    public var date: String

    public init(version: String, date: String) {
        self.version = version
        self.date = date
    }
}

public struct ConsentSettings: Codable, Equatable, Sendable {
    public var current: String
    public var versions: [ConsentVersion]

    public init(current: String, versions: [ConsentVersion]) {
        self.current = current
        self.versions = versions
    }
}

public struct HysLawSettings: Codable, Equatable, Sendable {
    public var transaminaseMultiple: Double
    public var bilirubinMultiple: Double
    public init(transaminaseMultiple: Double, bilirubinMultiple: Double) {
        self.transaminaseMultiple = transaminaseMultiple
        self.bilirubinMultiple = bilirubinMultiple
    }
}

public struct SafetySettings: Codable, Equatable, Sendable {
    /// The CTCAE versions Casebook grades by; "4.0" is read as its corrected release 4.03.
    public static let ctcaeVersions = ["4.0", "4.03", "5.0"]
    public var ctcaeVersion: String
    /// Hours within which a serious adverse event must reach the sponsor.
    public var saeReportingHours: Int
    /// Grade labs against the participant's baseline as well as against ULN.
    public var gradeAgainstBaseline: Bool
    public var primaryEndpointWindowHours: Int?
    public var hysLaw: HysLawSettings?

    public init(ctcaeVersion: String, saeReportingHours: Int, gradeAgainstBaseline: Bool, primaryEndpointWindowHours: Int? = nil) {
        self.ctcaeVersion = ctcaeVersion
        self.saeReportingHours = saeReportingHours
        self.gradeAgainstBaseline = gradeAgainstBaseline
        self.primaryEndpointWindowHours = primaryEndpointWindowHours
    }

    public init(ctcaeVersion: String, saeReportingHours: Int, gradeAgainstBaseline: Bool, primaryEndpointWindowHours: Int?, hysLaw: HysLawSettings?) {
        self.init(ctcaeVersion: ctcaeVersion, saeReportingHours: saeReportingHours, gradeAgainstBaseline: gradeAgainstBaseline, primaryEndpointWindowHours: primaryEndpointWindowHours)
        self.hysLaw = hysLaw
    }
}

/// Safety monitoring while the trial runs.
public struct MonitoringSettings: Codable, Equatable, Sendable {
    /// Toxicity stopping rules, each checked against the participants' records (`SafetyMonitor`).
    public var stoppingRules: [StoppingRuleDefinition]

    public init(stoppingRules: [StoppingRuleDefinition]) {
        self.stoppingRules = stoppingRules
    }
}

/// A toxicity stopping rule over the participants monitored: what counts as the toxicity (as an endpoint's event is
/// said), who is counted, and the design whose boundaries the count is held against (see `ToxicityStoppingRule`).
public struct StoppingRuleDefinition: Codable, Equatable, Sendable {
    public enum Method: String, Codable, Sendable, CaseIterable {
        /// Stop when the posterior probability that the rate exceeds p0 is above the certainty (Geller et al. 2003).
        case bayes
        /// Stop when the exact binomial test of p0 is significant at the same nominal level at every look (Ivanova et al. 2005).
        case pocock
    }

    public enum Population: String, Codable, Sendable, CaseIterable {
        /// Participants of the monitored arms with at least one dose given.
        case dosed
        /// Every participant allocated to the monitored arms.
        case allocated
    }

    public var code: String
    public var name: String
    /// The arms whose participants are monitored; every allocated participant, pooled, when absent.
    public var arms: [String]?
    /// Who is counted; `dosed` when absent.
    public var population: Population?
    /// The anchor (or dose code) the window counts from.
    public var anchor: String?
    public var window: Offset?
    /// Each dose given opens its own window (instead of one window after `anchor`).
    public var perDose: Bool?
    /// Forms whose condition, when it holds, is the toxicity.
    public var forms: [FormEventRule]?
    /// Adverse events in the window that are the toxicity.
    public var adverseEvents: AdverseEventRule?
    /// Lab results in the window graded at or above a CTCAE grade.
    public var labs: LabEventRule?
    public var method: Method
    /// `bayes` only: the Beta(a, b) prior on the toxicity rate.
    public var prior: StoppingRulePrior?
    /// The toxicity rate that is unacceptable.
    public var p0: Double
    /// Exactly one of these: the certainty to stop at, or the overall probability of stopping when the rate is p0 that
    /// the certainty is calibrated to.
    public var certainty: Double?
    public var alpha: Double?
    public var maxSampleSize: Int

    public init(
        code: String, name: String, arms: [String]? = nil, population: Population? = nil, anchor: String? = nil, window: Offset? = nil,
        perDose: Bool? = nil, forms: [FormEventRule]? = nil, adverseEvents: AdverseEventRule? = nil, labs: LabEventRule? = nil, method: Method,
        prior: StoppingRulePrior? = nil, p0: Double, certainty: Double? = nil, alpha: Double? = nil, maxSampleSize: Int
    ) {
        self.code = code
        self.name = name
        self.arms = arms
        self.population = population
        self.anchor = anchor
        self.window = window
        self.perDose = perDose
        self.forms = forms
        self.adverseEvents = adverseEvents
        self.labs = labs
        self.method = method
        self.prior = prior
        self.p0 = p0
        self.certainty = certainty
        self.alpha = alpha
        self.maxSampleSize = maxSampleSize
    }

    public var countedPopulation: Population { population ?? .dosed }
}

/// The Beta(a, b) prior of a Bayesian stopping rule, as written in a definition (`BetaPrior` checks it).
public struct StoppingRulePrior: Codable, Equatable, Sendable {
    public var a: Double
    public var b: Double

    public init(a: Double, b: Double) {
        self.a = a
        self.b = b
    }
}

/// Lab results that count as a toxicity: one of `tests` graded `minGrade` or more.
public struct LabEventRule: Codable, Equatable, Sendable {
    public var tests: [String]
    public var minGrade: Int

    public init(tests: [String], minGrade: Int) {
        self.tests = tests
        self.minGrade = minGrade
    }
}

/// A signed time offset written as text: "24h", "-28d", "0d", "12w".
public struct Offset: Codable, Equatable, Sendable, CustomStringConvertible {
    public enum Unit: String, Sendable { case hours = "h", days = "d", weeks = "w" }
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
            throw DecodingError.dataCorruptedError(in: container, debugDescription: "'\(text)' is not an offset like 24h, -28d or 12w")
        }
        self = parsed
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.singleValueContainer()
        try container.encode(description)
    }

    public var description: String { "\(value)\(unit.rawValue)" }
    public var seconds: TimeInterval {
        switch unit {
        case .hours: TimeInterval(value) * 3600
        case .days: TimeInterval(value) * 86_400
        case .weeks: TimeInterval(value) * 7 * 86_400
        }
    }

    /// Counted in calendar days (days or weeks), not hours.
    public var isCalendar: Bool { unit != .hours }
}
