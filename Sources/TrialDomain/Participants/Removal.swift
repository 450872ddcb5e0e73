import Foundation

/// Trial records are never removed from analysis (intention to treat): only a screening record entered in error, never
/// allocated, may be withdrawn from the lists, by an investigator, with a reason. It stays in the audit trail and is
/// counted in the screening log as entered in error.
public enum ParticipantRemoval {
    /// The reason itself is the audit trail's rule (required for a delete, at most its limit).
    public static func check(role: Role, allocated: Bool) throws {
        guard role == .investigator else {
            throw RuleError.forbidden(rule: "only an investigator withdraws a screening record entered in error (your role: \(role.rawValue))")
        }
        guard !allocated else {
            throw RuleError.illegal(rule: "an allocated participant stays in the trial and its analysis (intention to treat); record a withdrawal instead")
        }
    }
}
