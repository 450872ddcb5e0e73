import Foundation

/// A user's role. One role per account; site memberships limit where it applies.
public enum Role: String, CaseIterable, Codable, Sendable {
    case admin
    case investigator
    case coordinator
    case monitor
    case dataManager = "data-manager"
    case statistician
    case dsmbViewer = "dsmb-viewer"
    /// Unblinded: prepares the product and records doses with their lot and expiry.
    case pharmacist
    /// Unblinded: analyses by arm for the data monitoring committee.
    case independentStatistician = "independent-statistician"

    public var title: String {
        switch self {
        case .admin: "Administrator"
        case .investigator: "Investigator"
        case .coordinator: "Study coordinator"
        case .monitor: "Monitor"
        case .dataManager: "Data manager"
        case .statistician: "Statistician"
        case .dsmbViewer: "DSMB viewer"
        case .pharmacist: "Pharmacist"
        case .independentStatistician: "Independent statistician"
        }
    }

    /// Parses the CLI/API spelling; accepts `data_manager` and `dsmb_viewer` too.
    public init?(parsing text: String) {
        let normal = text.lowercased().replacingOccurrences(of: "_", with: "-")
        guard let role = Role(rawValue: normal) else { return nil }
        self = role
    }
}

/// What a role may do. Site membership is checked separately: a permission never
/// reaches a participant of a site the user does not belong to.
public enum Permission: String, CaseIterable, Sendable {
    case manageUsers
    case manageSites
    case readParticipants
    case writeParticipants
    case readAudit
    case viewRandomizationList
    case manageStudy
    /// Record a dose given or skipped.
    case recordDoses
}

public enum AccessPolicy {
    public static func permissions(for role: Role) -> Set<Permission> {
        switch role {
        case .admin: [.manageUsers, .manageSites, .readAudit, .manageStudy]
        case .dataManager: [.readParticipants, .writeParticipants, .readAudit, .manageStudy]
        case .investigator, .coordinator: [.readParticipants, .writeParticipants, .readAudit, .recordDoses]
        case .monitor: [.readParticipants, .readAudit]
        case .statistician: [.readParticipants, .viewRandomizationList]
        case .dsmbViewer, .independentStatistician: [.readParticipants]
        case .pharmacist: [.readParticipants, .recordDoses]
        }
    }

    public static func allows(_ role: Role, _ permission: Permission) -> Bool {
        permissions(for: role).contains(permission)
    }
}
