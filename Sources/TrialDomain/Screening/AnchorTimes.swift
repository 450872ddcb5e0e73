import Foundation

/// When each of a participant's anchors happened, from their data, allocation and infusion.
public enum AnchorTimes {
    /// `doses`: when each dose was given, by dose code. `armHasDoses`: whether the participant's arm has a dose plan
    /// (nil before allocation).
    public static func resolve(
        study: StudyDefinition, values: [String: String], allocatedAt: Date?, doses: [String: Date] = [:], armHasDoses: Bool?
    ) -> [String: Date] {
        var times: [String: Date] = doses
        for anchor in study.anchors {
            switch anchor.source {
            case "allocation"?: times[anchor.code] = allocatedAt
            case "first_dose"?, "infusion"?: times[anchor.code] = armHasDoses == false ? allocatedAt : doses.values.min()
            case let source? where source.hasPrefix("dose:"):
                let code = String(source.dropFirst(5))
                let planned = study.arms.contains { ($0.doses ?? []).contains { $0.code == code } }
                times[anchor.code] = doses[code] ?? (armHasDoses == false || !planned ? allocatedAt : nil)
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
