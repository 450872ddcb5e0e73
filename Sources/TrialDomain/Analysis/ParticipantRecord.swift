import Foundation

/// One participant's data as plain values, read for a whole cohort at once and handed to the analyses:
/// the store fills it from a few set queries, the domain computes from it.
public struct ParticipantRecord: Sendable, Equatable {
    public var id: UUID
    public var screeningNumber: String
    public var site: String
    /// nil until allocated.
    public var arm: String?
    public var allocatedAt: Date?
    /// When each of the study's anchors happened (see `AnchorTimes`).
    public var anchors: [String: Date]
    /// When each dose was given, by dose code.
    public var doses: [String: Date]
    public var forms: [FormEntry]
    public var labs: [LabValue]
    public var adverseEvents: [AdverseEventEntry]
    /// The latest lab sample, when an analysis asked for it (censoring at last contact).
    public var lastObservation: Date?

    public init(
        id: UUID, screeningNumber: String, site: String, arm: String? = nil, allocatedAt: Date? = nil, anchors: [String: Date] = [:],
        doses: [String: Date] = [:], forms: [FormEntry] = [], labs: [LabValue] = [], adverseEvents: [AdverseEventEntry] = []
    ) {
        self.id = id
        self.screeningNumber = screeningNumber
        self.site = site
        self.arm = arm
        self.allocatedAt = allocatedAt
        self.anchors = anchors
        self.doses = doses
        self.forms = forms
        self.labs = labs
        self.adverseEvents = adverseEvents
    }

    /// What conditions over adverse events read, as of `asOf`.
    public func history(asOf: Date = .distantFuture) -> ClinicalHistory {
        ClinicalHistory(adverseEvents: adverseEvents, anchors: anchors.merging(doses) { a, _ in a }, doses: Array(doses.values), asOf: asOf)
    }

    /// A form's values keyed `form.field`, from every visit that recorded it (a later record of a field wins).
    public func values(ofForm form: String) -> [String: String]? {
        let entries = forms.filter { $0.form == form }
        guard !entries.isEmpty else { return nil }
        var values: [String: String] = [:]
        for entry in entries.sorted(by: { $0.recordedAt < $1.recordedAt }) {
            for (key, value) in entry.values { values["\(form).\(key)"] = value }
        }
        return values
    }
}

/// One form record: its visit, form and values as stored (text).
public struct FormEntry: Sendable, Equatable {
    public var visit: String
    public var form: String
    public var values: [String: String]
    public var recordedAt: Date

    public init(visit: String, form: String, values: [String: String], recordedAt: Date) {
        self.visit = visit
        self.form = form
        self.values = values
        self.recordedAt = recordedAt
    }
}

/// One lab result in its test's canonical unit.
public struct LabValue: Sendable, Equatable {
    public var test: String
    public var visit: String
    public var collectedAt: Date
    public var value: Double
    /// The CTCAE grade stored with the result, in the study's version, when the analysis asked for grades.
    public var grade: Int?

    public init(test: String, visit: String, collectedAt: Date, value: Double, grade: Int? = nil) {
        self.test = test
        self.visit = visit
        self.collectedAt = collectedAt
        self.value = value
        self.grade = grade
    }
}

public struct AdverseEventEntry: Sendable, Equatable {
    public var meddra: String
    public var grade: Int
    public var onsetAt: Date
    public var serious: Bool
    public var attribution: Attribution
    /// The action taken with the treatment, as recorded, when the analysis read it.
    public var actionTaken: String?

    public init(meddra: String, grade: Int, onsetAt: Date, serious: Bool, attribution: Attribution, actionTaken: String? = nil) {
        self.meddra = meddra
        self.grade = grade
        self.onsetAt = onsetAt
        self.serious = serious
        self.attribution = attribution
        self.actionTaken = actionTaken
    }

    /// Related to the study treatment: possible, probable or definite (NCI CTEP attribution scale).
    public var related: Bool { [.possible, .probable, .definite].contains(attribution) }
}

/// The baseline of a lab test: the last result from the baseline visits collected before `before`
/// (before the first dose or allocation; the eligibility visit and the visit that defines allocation).
public enum Baseline {
    public static func visits(of study: StudyDefinition) -> [String] {
        let allocationAnchor = study.anchors.first { $0.source == "allocation" }?.code
        let allocationVisit = allocationAnchor.flatMap { a in study.visits.first { $0.defines == a }?.code }
        return [study.eligibilityVisit, allocationVisit].compactMap { $0 }.reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
    }

    public static func value(of test: String, in labs: [LabValue], visits: [String], before: Date?) -> LabValue? {
        labs.filter { lab in lab.test == test && visits.contains(lab.visit) && (before.map { lab.collectedAt < $0 } ?? true) }
            .max { $0.collectedAt < $1.collectedAt }
    }
}
