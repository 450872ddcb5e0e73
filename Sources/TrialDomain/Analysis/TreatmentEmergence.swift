import Foundation

/// Which adverse events and which times count as on treatment, for every table that says "treatment-emergent".
public enum TreatmentEmergence {
    /// When treatment started for the participant: the first dose given, or allocation in an arm that plans no dose
    /// (a control arm of standard care starts its follow-up there); nil before either.
    public static func start(of record: ParticipantRecord, study: StudyDefinition) -> Date? {
        if let first = record.doses.values.min() { return first }
        guard let arm = record.arm, DoseRules.plan(study: study, arm: arm).isEmpty else { return nil }
        return record.allocatedAt
    }

    /// An event that began on or after the start of treatment (ICH E9 glossary: emerging during treatment, having
    /// been absent before it). A worsening of a condition present before is recorded as a new event with its own onset.
    public static func adverseEvent(_ event: AdverseEventEntry, of record: ParticipantRecord, study: StudyDefinition) -> Bool {
        guard let start = start(of: record, study: study) else { return false }
        return event.onsetAt >= start
    }
}
