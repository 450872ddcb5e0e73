import Foundation

/// When each of a participant's anchors happened, from their data, allocation and infusion.
public enum AnchorTimes {
    public static func resolve(
        study: StudyDefinition, values: [String: String], allocatedAt: Date?, infusionStart: Date?, armHasIntervention: Bool?
    ) -> [String: Date] {
        var times: [String: Date] = [:]
        for anchor in study.anchors {
            switch anchor.source {
            case "allocation"?: times[anchor.code] = allocatedAt
            case "infusion"?: times[anchor.code] = armHasIntervention == false ? allocatedAt : infusionStart
            case let field?:
                if let raw = values[field] { times[anchor.code] = DateParsing.instant(raw) ?? DateParsing.day(raw) }
            case nil: break
            }
        }
        return times
    }

    /// Anchors are listed in the order they happen; the first one out of order is named, by calendar day.
    public static func firstOutOfOrder(study: StudyDefinition, times: [String: Date]) -> (later: Anchor, earlier: Anchor, date: Date)? {
        var previous: (Anchor, Date)?
        for anchor in study.anchors {
            guard let time = times[anchor.code] else { continue }
            if let (before, beforeTime) = previous, day(time) < day(beforeTime) { return (anchor, before, beforeTime) }
            previous = (anchor, time)
        }
        return nil
    }

    public static func day(_ date: Date) -> Int { Int((date.timeIntervalSince1970 / 86_400).rounded(.down)) }

    public static func dayText(_ date: Date) -> String { String(AuditEntry.timestamp(date).prefix(10)) }
}
