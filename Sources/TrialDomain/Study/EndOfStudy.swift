import Foundation

/// How the definition says a participant's follow-up ended: a choice field of an end-of-study form, the date it ended,
/// and which of its choices mean completion and loss to follow-up (any other choice is a discontinuation). Each choice
/// may map to its CDISC disposition term (NCOMPLT codelist) for the exports.
public struct EndOfStudyRule: Codable, Equatable, Sendable {
    /// `form.field` of a choice field.
    public var field: String
    /// `form.field` of the date the participation ended (last contact).
    public var date: String?
    public var completed: [String]?
    public var lost: [String]?
    /// Each choice's CDISC disposition term (`COMPLETED`, `LOST TO FOLLOW-UP`, `DEATH`, …).
    public var dispositions: [EndOfStudyDisposition]?

    public init(field: String, date: String? = nil, completed: [String]? = nil, lost: [String]? = nil, dispositions: [EndOfStudyDisposition]? = nil) {
        self.field = field
        self.date = date
        self.completed = completed
        self.lost = lost
        self.dispositions = dispositions
    }

    /// The CDISC term of a choice, when the rule maps it.
    public func disposition(of choice: String) -> String? { dispositions?.first { $0.choice == choice }?.term }

    public enum Ending: Equatable, Sendable { case completed, lost, discontinued }

    /// What a recorded choice means: completion and loss as the rule lists them, anything else a discontinuation.
    public func ending(of choice: String) -> Ending {
        if (completed ?? []).contains(choice) { return .completed }
        if (lost ?? []).contains(choice) { return .lost }
        return .discontinued
    }

    /// The words the form shows for a choice; the code itself when the definition has no such choice.
    public func label(of choice: String, in study: StudyDefinition) -> String {
        study.field(named: field)?.field.choices?.first { $0.code == choice }?.label ?? choice
    }
}

public struct EndOfStudyDisposition: Codable, Equatable, Sendable {
    public var choice: String
    public var term: String

    public init(choice: String, term: String) {
        self.choice = choice
        self.term = term
    }
}
