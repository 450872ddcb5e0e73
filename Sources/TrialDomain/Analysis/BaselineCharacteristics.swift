import Foundation

/// Baseline characteristics per arm (CONSORT 2010 item 15): age at allocation, sex, and each lab's baseline value.
public struct BaselineGroup: Codable, Equatable, Sendable {
    public var arm: String?
    public var n: Int
    /// Completed years from the birth date to the day of allocation.
    public var age: Summary?
    /// Participants by the sex field's choice code; those without a recorded value are not counted.
    public var sex: [String: Int]
    /// Each lab's baseline value, by test code (the study's baseline rule: the last result at the baseline visits
    /// before treatment started).
    public var labs: [String: Summary]
}

public enum BaselineCharacteristics {
    /// `tests`: the labs to summarise, in their order; `reference`: when treatment started for a participant.
    public static func compute(
        _ records: [ParticipantRecord], study: StudyDefinition, tests: [String], reference: (ParticipantRecord) -> Date?, byArm: Bool
    ) -> [BaselineGroup] {
        let allocated = records.filter { $0.arm != nil }
        let groups: [(String?, [ParticipantRecord])] =
            [(nil, allocated)] + (byArm ? study.arms.map { arm in (arm.code, allocated.filter { $0.arm == arm.code }) }.filter { !$0.1.isEmpty } : [])
        let visits = Baseline.visits(of: study)
        let sexField = study.participant?.sex.flatMap(study.field(named:)), birthField = study.participant?.birthDate.flatMap(study.field(named:))
        return groups.map { arm, members in
            var ages: [Double] = []
            var sex: [String: Int] = [:]
            var labs: [String: [Double]] = [:]
            for record in members {
                if let b = birthField, let text = record.values(ofForm: b.form.code)?["\(b.form.code).\(b.field.code)"], let born = DateParsing.day(text),
                    let at = record.allocatedAt
                {
                    ages.append(Double(Evaluator.completedYears(born: born, on: at)))
                }
                if let s = sexField, let value = record.values(ofForm: s.form.code)?["\(s.form.code).\(s.field.code)"], !value.isEmpty { sex[value, default: 0] += 1 }
                let before = reference(record) ?? record.allocatedAt
                for test in tests {
                    if let value = Baseline.value(of: test, in: record.labs, visits: visits, before: before) { labs[test, default: []].append(value.value) }
                }
            }
            return BaselineGroup(arm: arm, n: members.count, age: Summary(ages), sex: sex, labs: labs.compactMapValues { Summary($0) })
        }
    }
}
