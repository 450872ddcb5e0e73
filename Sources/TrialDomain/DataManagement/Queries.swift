import Foundation

/// What a data query is for. OpenClinica calls these discrepancy notes; Rave and REDCap queries.
public enum QueryKind: String, Codable, Sendable, CaseIterable {
    /// A question about a value, to be answered by the site.
    case query
    /// Why a saved value was changed, written down beside the value.
    case reasonForChange = "reason-for-change"
    /// A note that asks nothing.
    case annotation
    /// Raised by one of the study's edit checks, and closed by it once the data pass.
    case failedCheck = "failed-check"

    /// Notes that ask for no answer are closed from the start.
    public var needsResponse: Bool { self == .query || self == .failedCheck }
}

public enum QueryStatus: String, Codable, Sendable, CaseIterable {
    case open, answered, closed, cancelled

    /// Still waiting for someone.
    public var isActive: Bool { self == .open || self == .answered }
}

public enum QueryAction: String, Codable, Sendable, CaseIterable {
    case answer, close, reopen, cancel
}

/// Why a rule of data management (queries, signatures, exports) refuses: `forbidden` for the wrong role or person
/// (403), `illegal` for the wrong state (409).
public enum RuleError: Error, Equatable, Sendable, CustomStringConvertible {
    case forbidden(rule: String)
    case illegal(rule: String)

    public var description: String {
        switch self {
        case .forbidden(let rule), .illegal(let rule): rule
        }
    }
}

/// Who may raise and move queries. Site staff answer; monitors and data managers raise, close, reopen and cancel;
/// site staff never close, and whoever answered a query cannot close it: a change is explained by the site and reviewed
/// by someone else (the project's rule, as OpenClinica, REDCap and Rave divide the work).
public enum QueryRules {
    public static let siteStaff: Set<Role> = [.investigator, .coordinator]
    public static let reviewers: Set<Role> = [.monitor, .dataManager]

    /// The actor of queries the system raises and closes on its own (edit checks).
    public static let systemActor = "system:edit-check"

    public static func checkRaise(_ kind: QueryKind, by role: Role) throws {
        switch kind {
        case .query:
            guard reviewers.contains(role) else {
                throw RuleError.forbidden(rule: "only a monitor or data manager raises a query (your role: \(role.rawValue))")
            }
        case .annotation, .reasonForChange:
            guard reviewers.contains(role) || siteStaff.contains(role) else {
                throw RuleError.forbidden(rule: "only site staff, monitors and data managers write \(kind.rawValue) notes (your role: \(role.rawValue))")
            }
        case .failedCheck:
            throw RuleError.forbidden(rule: "failed-check queries are raised by the study's edit checks, not by hand")
        }
    }

    /// The state a query moves to, or why it may not. `answeredBy` is who gave the latest answer, if any.
    public static func transition(
        from status: QueryStatus, kind: QueryKind, action: QueryAction, role: Role, actor: String, answeredBy: String?
    ) throws -> QueryStatus {
        switch action {
        case .answer:
            guard siteStaff.contains(role) else {
                throw RuleError.forbidden(rule: "only site staff (investigator, coordinator) answer a query (your role: \(role.rawValue))")
            }
            guard status == .open else { throw RuleError.illegal(rule: "only an open query can be answered (this one is \(status.rawValue))") }
            return .answered
        case .close:
            guard reviewers.contains(role) else {
                throw RuleError.forbidden(rule: "only a monitor or data manager closes a query (your role: \(role.rawValue))")
            }
            guard status.isActive else { throw RuleError.illegal(rule: "only an open or answered query can be closed (this one is \(status.rawValue))") }
            if let answeredBy, answeredBy == actor {
                throw RuleError.forbidden(rule: "whoever answered a query cannot close it")
            }
            return .closed
        case .reopen:
            guard reviewers.contains(role) else {
                throw RuleError.forbidden(rule: "only a monitor or data manager reopens a query (your role: \(role.rawValue))")
            }
            guard kind.needsResponse else { throw RuleError.illegal(rule: "a \(kind.rawValue) note asks for no answer and cannot be reopened") }
            guard status == .answered || status == .closed else {
                throw RuleError.illegal(rule: "only an answered or closed query can be reopened (this one is \(status.rawValue))")
            }
            return .open
        case .cancel:
            guard reviewers.contains(role) else {
                throw RuleError.forbidden(rule: "only a monitor or data manager cancels a query (your role: \(role.rawValue))")
            }
            guard status.isActive else { throw RuleError.illegal(rule: "only an open or answered query can be cancelled (this one is \(status.rawValue))") }
            return .cancelled
        }
    }

    /// The state a new note starts in.
    public static func initialStatus(_ kind: QueryKind) -> QueryStatus { kind.needsResponse ? .open : .closed }

    /// Whole days since the query was raised, as its age is shown; never negative.
    public static func ageInDays(raisedAt: Date, now: Date) -> Int { max(0, Int(now.timeIntervalSince(raisedAt) / 86_400)) }

    /// Overdue: still waiting and past its due time.
    public static func isOverdue(status: QueryStatus, dueAt: Date?, now: Date) -> Bool {
        guard status.isActive, let dueAt else { return false }
        return now > dueAt
    }
}

/// What a query is about: a participant, one form at one visit, or one lab result; optionally one field of it.
public struct QueryTarget: Codable, Equatable, Sendable {
    public var visit: String?
    public var form: String?
    /// The lab test's code, for a query on a lab result at `visit`.
    public var lab: String?
    public var field: String?

    public init(visit: String? = nil, form: String? = nil, lab: String? = nil, field: String? = nil) {
        self.visit = visit
        self.form = form
        self.lab = lab
        self.field = field
    }

    /// The path a field is named by in audit events and edit checks: `form.field`, or `lab.TEST.value`.
    public var fieldPath: String? {
        if let form, let field { return "\(form).\(field)" }
        if let lab { return "lab.\(lab).\(field ?? "value")" }
        return nil
    }

    /// Checks the target against the study: the visit, form, field and lab must exist and fit each other.
    public func check(in study: StudyDefinition) throws {
        if form != nil && lab != nil { throw RuleError.illegal(rule: "target: name a form or a lab, not both") }
        if let visit, study.visit(visit) == nil { throw QueryTargetError("target.visit", "names unknown visit '\(visit)'") }
        if let form {
            guard let visit else { throw QueryTargetError("target.visit", "is required with a form") }
            guard let definition = study.form(form) else { throw QueryTargetError("target.form", "names unknown form '\(form)'") }
            guard definition.visits.contains(visit) else {
                throw QueryTargetError("target.form", "form '\(form)' is not collected at visit '\(visit)'")
            }
            if let field, !definition.fields.contains(where: { $0.code == field }) {
                throw QueryTargetError("target.field", "form '\(form)' has no field '\(field)'")
            }
        } else if let lab {
            guard visit != nil else { throw QueryTargetError("target.visit", "is required with a lab") }
            guard study.labTest(lab) != nil else { throw QueryTargetError("target.lab", "names unknown lab test '\(lab)'") }
            if let field, !["value", "unit", "collectedAt"].contains(field) {
                throw QueryTargetError("target.field", "a lab result's fields are value, unit and collectedAt")
            }
        } else if field != nil {
            throw QueryTargetError("target.field", "needs a form or a lab")
        }
    }
}

public struct QueryTargetError: Error, Equatable, Sendable, CustomStringConvertible {
    public var field: String
    public var rule: String
    public init(_ field: String, _ rule: String) {
        self.field = field
        self.rule = rule
    }
    public var description: String { "\(field): \(rule)" }
}
