import Foundation

/// Who may see allocations. In an open-label study (registry masking NONE) everyone who reads participants does;
/// in a masked one only the roles the definition unblinds (by default the pharmacist who prepares the product, the
/// independent statistician and the data monitoring committee's viewer), and a user an emergency unblinding names
/// for that one participant.
public enum Blinding {
    public static let defaultUnblindedRoles: Set<Role> = [.dsmbViewer, .pharmacist, .independentStatistician]

    public static func isMasked(_ study: StudyDefinition) -> Bool {
        study.identity.masking.uppercased() != "NONE"
    }

    public static func unblindedRoles(_ study: StudyDefinition) -> Set<Role> {
        guard let names = study.blinding?.unblindedRoles else { return defaultUnblindedRoles }
        return Set(names.compactMap(Role.init(parsing:)))
    }

    public static func seesArms(_ role: Role, study: StudyDefinition) -> Bool {
        !isMasked(study) || unblindedRoles(study).contains(role)
    }
}

public struct BlindingSettings: Codable, Equatable, Sendable {
    /// The roles that see arms, products and dose amounts in a masked study.
    public var unblindedRoles: [String]

    public init(unblindedRoles: [String]) {
        self.unblindedRoles = unblindedRoles
    }
}

/// Who takes the standard exports, and in which form (issue: statisticians and data managers; a blinded reader always
/// gets the blinded form).
public enum ExportRules {
    public static let roles: Set<Role> = [.statistician, .independentStatistician, .dataManager]

    /// Whether the export is blinded, or why it is refused. `requested`: the requester's `blinded` choice, if any.
    public static func blinded(role: Role, study: StudyDefinition, requested: Bool?) throws -> Bool {
        guard roles.contains(role) else {
            throw RuleError.forbidden(rule: "exports are for statisticians and data managers (your role: \(role.rawValue))")
        }
        guard Blinding.seesArms(role, study: study) else {
            if requested == false { throw RuleError.forbidden(rule: "a blinded reader gets the blinded export only (your role: \(role.rawValue))") }
            return true
        }
        return requested ?? false
    }
}
