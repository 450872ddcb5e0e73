import Foundation

/// Where a participant stands in the trial; the screening log counts these.
public enum ParticipantStatus: String, Codable, CaseIterable, Sendable {
    case screening
    case screenFailed = "screen-failed"
    case eligible
    /// Data changed after an "eligible" decision and the criteria no longer support it: an investigator decides again,
    /// and until then the participant cannot be allocated.
    case needsReview = "needs-review"
    case consented
    case randomized
    case withdrawn
    case completed
}

/// A site's screening number: letters, digits and dashes, so it never carries a name.
public enum ScreeningNumber {
    public static func validate(_ text: String) -> String? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if trimmed.isEmpty { return "must not be empty" }
        if trimmed.count > 32 { return "must be at most 32 characters" }
        let allowed = CharacterSet.alphanumerics.union(CharacterSet(charactersIn: "-_"))
        if trimmed.unicodeScalars.contains(where: { !allowed.contains($0) || !$0.isASCII }) {
            return "may hold only letters A–Z, digits, '-' and '_'"
        }
        return nil
    }
}
