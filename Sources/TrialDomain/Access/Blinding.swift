import Foundation

/// Who may see allocations. In an open-label study (registry masking NONE) everyone who reads participants does;
/// in a masked one only the unblinded roles do.
public enum Blinding {
    /// Roles that see arms in a masked study: the pharmacist who prepares the product, the independent statistician
    /// and the data monitoring committee's viewer.
    public static let unblindedRoles: Set<Role> = [.dsmbViewer, .pharmacist, .independentStatistician]

    public static func isMasked(_ study: StudyDefinition) -> Bool {
        study.identity.masking.uppercased() != "NONE"
    }

    public static func seesArms(_ role: Role, study: StudyDefinition) -> Bool {
        !isMasked(study) || unblindedRoles.contains(role)
    }
}
