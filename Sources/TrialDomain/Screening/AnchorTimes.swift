import Foundation

/// When each of a participant's anchors happened, from their data, allocation and infusion.
public enum AnchorTimes {
    /// `doses`: when each dose was given, by dose code. `armHasDoses`: whether the participant's arm has a dose plan
    /// (nil before allocation).
    /// A date without a time (a transplant date) is midnight in the site's time zone.
    public static func resolve(
        study: StudyDefinition, values: [String: String], allocatedAt: Date?, doses: [String: Date] = [:], armHasDoses: Bool?,
        zone: TimeZone = SiteCalendar.utc
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
                if let raw = values[field] { times[anchor.code] = DateParsing.instant(raw) ?? DateParsing.day(raw, in: zone) }
            case nil: break
            }
        }
        return times
    }

    /// Anchors are listed in the order they happen; the first one out of order is named, by calendar day.
    public static func firstOutOfOrder(
        study: StudyDefinition, times: [String: Date], calendar: SiteCalendar = SiteCalendar(zone: SiteCalendar.utc)
    ) -> (later: Anchor, earlier: Anchor, date: Date)? {
        var previous: (Anchor, Date)?
        for anchor in study.anchors {
            guard let time = times[anchor.code] else { continue }
            if let (before, beforeTime) = previous, calendar.day(time) < calendar.day(beforeTime) { return (anchor, before, beforeTime) }
            previous = (anchor, time)
        }
        return nil
    }

    public static func day(_ date: Date) -> Int { Int((date.timeIntervalSince1970 / 86_400).rounded(.down)) }

    public static func dayText(_ date: Date) -> String { String(AuditEntry.timestamp(date).prefix(10)) }
}

/// Calendar days in a site's time zone, by the tz database (daylight saving included): windows counted in days or weeks
/// run from the start of their first day to the end of their last, as the site's clock reads them.
public struct SiteCalendar: Sendable {
    public static let utc = TimeZone(identifier: "UTC")!
    public let zone: TimeZone

    public init(zone: TimeZone) { self.zone = zone }

    /// The site's zone, from the study's definition; UTC when it names none.
    public init(study: StudyDefinition, site: String?) {
        zone = site.flatMap { s in study.sites.first { $0.code == s }?.timeZone }.flatMap(TimeZone.init(identifier:)) ?? Self.utc
    }

    var calendar: Calendar {
        var c = Calendar(identifier: .gregorian)
        c.timeZone = zone
        return c
    }

    public func startOfDay(_ date: Date) -> Date { calendar.startOfDay(for: date) }

    /// The last instant (to the millisecond) of the day `date` falls on.
    public func endOfDay(_ date: Date) -> Date {
        let start = startOfDay(date)
        return (calendar.date(byAdding: .day, value: 1, to: start) ?? start.addingTimeInterval(86_400)).addingTimeInterval(-0.001)
    }

    /// Days since 1970-01-01 of the site's calendar day `date` falls on.
    public func day(_ date: Date) -> Int {
        let c = calendar.dateComponents([.year, .month, .day], from: date)
        return DateParsing.daysFromCivil(year: c.year!, month: c.month!, day: c.day!)
    }

    public func dayText(_ date: Date) -> String {
        let c = calendar.dateComponents([.year, .month, .day], from: date)
        return String(format: "%04d-%02d-%02d", c.year!, c.month!, c.day!)
    }
}
