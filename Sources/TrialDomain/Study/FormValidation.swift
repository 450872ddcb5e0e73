import Foundation

/// One entered value that does not fit its field.
public struct FieldProblem: Error, Equatable, Sendable, CustomStringConvertible {
    public var field: String
    public var rule: String
    public init(_ field: String, _ rule: String) {
        self.field = field
        self.rule = rule
    }
    public var description: String { "\(field): \(rule)" }
}

public struct FormValidationError: Error, Equatable, Sendable, CustomStringConvertible {
    public var problems: [FieldProblem]
    public var description: String { problems.map(\.description).joined(separator: "; ") }
}

/// Checks values typed into a form against its field definitions. Values travel as text, as typed.
public enum FormValidator {
    /// Returns the values in canonical form (trimmed numbers, yes/no), or throws every problem at once.
    /// `now`: observed dates and times (every date field not marked `planned`) may not lie after it; a date in the
    /// future is at most today.
    public static func validate(_ values: [String: String], form: Form, now: Date? = nil, zone: TimeZone = SiteCalendar.utc) throws -> [String: String] {
        var problems: [FieldProblem] = []
        var clean: [String: String] = [:]
        for key in values.keys.sorted() where form.field(key) == nil {
            problems.append(FieldProblem(key, "is not a field of form '\(form.code)'"))
        }
        for field in form.fields {
            let raw = values[field.code]?.trimmingCharacters(in: .whitespaces) ?? ""
            if raw.isEmpty {
                if field.isRequired { problems.append(FieldProblem(field.code, "is required")) }
                continue
            }
            switch check(raw, field: field) {
            case .success(let value):
                if let now, field.planned != true, let problem = future(value, field: field, now: now, zone: zone) { problems.append(problem) } else { clean[field.code] = value }
            case .failure(let problem): problems.append(problem)
            }
        }
        if !problems.isEmpty { throw FormValidationError(problems: problems) }
        return clean
    }

    static func check(_ raw: String, field: Field) -> Result<String, FieldProblem> {
        func fail(_ rule: String) -> Result<String, FieldProblem> { .failure(FieldProblem(field.code, rule)) }
        switch field.type {
        case .number, .integer:
            var text = raw
            // "171 umol/L" is accepted in a umol/L field; another unit is refused rather than misread.
            if let space = raw.firstIndex(of: " "), Double(raw[..<space]) != nil {
                let unit = raw[raw.index(after: space)...].trimmingCharacters(in: .whitespaces)
                guard let expected = field.unit, normalUnit(unit) == normalUnit(expected) else {
                    return fail("unit '\(unit)' does not fit this field, which is in \(field.unit ?? "no unit")")
                }
                text = String(raw[..<space])
            }
            guard let number = Double(text), number.isFinite else { return fail("must be a number in \(field.unit ?? "1")") }
            if field.type == .integer && number != number.rounded() { return fail("must be a whole number") }
            if let min = field.range?.min, number < min { return fail("must be at least \(format(min)) \(field.unit ?? "")".trimmingCharacters(in: .whitespaces)) }
            if let max = field.range?.max, number > max { return fail("must be at most \(format(max)) \(field.unit ?? "")".trimmingCharacters(in: .whitespaces)) }
            return .success(format(number))
        case .date:
            guard StudyValidator.isDate(raw), DateParsing.day(raw) != nil else { return fail("must be a date as yyyy-MM-dd") }
            return .success(raw)
        case .datetime:
            guard DateParsing.instant(raw) != nil else { return fail("must be a date and time as yyyy-MM-ddTHH:mm (UTC) or with an offset") }
            return .success(raw)
        case .yesno:
            switch raw.lowercased() {
            case "yes", "true", "y", "1": return .success("yes")
            case "no", "false", "n", "0": return .success("no")
            default: return fail("must be yes or no")
            }
        case .choice:
            let codes = field.choices?.map(\.code) ?? []
            guard codes.contains(raw) else { return fail("must be one of \(codes.joined(separator: ", "))") }
            return .success(raw)
        case .text:
            guard raw.count <= 2000 else { return fail("must be at most 2000 characters") }
            return .success(raw)
        }
    }

    /// An observed date after today, or an observed time more than five minutes ahead (clocks differ that much).
    static func future(_ value: String, field: Field, now: Date, zone: TimeZone) -> FieldProblem? {
        switch field.type {
        case .date:
            // Today is the site's today.
            let today = SiteCalendar(zone: zone).dayText(now)
            guard value > today else { return nil }
            return FieldProblem(field.code, "must not be in the future (today is \(today))")
        case .datetime:
            guard let instant = DateParsing.instant(value), instant > now.addingTimeInterval(300) else { return nil }
            return FieldProblem(field.code, "must not be in the future")
        default:
            return nil
        }
    }

    static func normalUnit(_ unit: String) -> String {
        unit.lowercased().replacingOccurrences(of: "µ", with: "u").replacingOccurrences(of: "μ", with: "u").replacingOccurrences(of: " ", with: "")
    }

    public static func format(_ number: Double) -> String {
        number == number.rounded() && abs(number) < 1e15 ? String(Int(number)) : String(number)
    }
}

/// Calendar dates and instants as the forms write them; always UTC so a date means the same day everywhere.
public enum DateParsing {

    /// "2026-01-02" as midnight in `zone` (the tz database's offset on that day, so daylight saving is counted).
    public static func day(_ text: String, in zone: TimeZone) -> Date? {
        guard let utc = day(text) else { return nil }
        // The offset at local midnight: first guess from UTC midnight, then corrected once for a change between.
        let first = utc.addingTimeInterval(-Double(zone.secondsFromGMT(for: utc)))
        return utc.addingTimeInterval(-Double(zone.secondsFromGMT(for: first)))
    }

    /// "2026-01-02" as midnight UTC; nil for a day the calendar does not have (2026-02-29, 2026-04-31).
    public static func day(_ text: String) -> Date? {
        let parts = text.split(separator: "-").compactMap { Int($0) }
        guard parts.count == 3, case let (y, m, d) = (parts[0], parts[1], parts[2]), (1...12).contains(m) else { return nil }
        let leap = y % 4 == 0 && (y % 100 != 0 || y % 400 == 0)
        let length = m == 2 ? (leap ? 29 : 28) : [4, 6, 9, 11].contains(m) ? 30 : 31
        guard (1...length).contains(d) else { return nil }
        return Date(timeIntervalSince1970: Double(daysFromCivil(year: y, month: m, day: d)) * 86_400)
    }

    /// Days since 1970-01-01 in the proleptic Gregorian calendar: H. Hinnant, "chrono-Compatible Low-Level Date Algorithms", days_from_civil.
    static func daysFromCivil(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yoe = y - era * 400
        let doy = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy
        return era * 146_097 + doe - 719_468
    }

    /// "2026-01-02T03:04", with optional seconds and a Z or ±hh:mm offset (none means UTC).
    public static func instant(_ text: String) -> Date? {
        let pieces = text.split(separator: "T", maxSplits: 1)
        guard pieces.count == 2, let day = day(String(pieces[0])) else { return nil }
        var time = String(pieces[1])
        var offset = 0
        if time.hasSuffix("Z") {
            time.removeLast()
        } else if let sign = time.lastIndex(where: { $0 == "+" || $0 == "-" }) {
            let zone = time[time.index(after: sign)...].split(separator: ":").compactMap { Int($0) }
            guard zone.count == 2, zone[0] <= 14, zone[1] < 60 else { return nil }
            offset = (zone[0] * 3600 + zone[1] * 60) * (time[sign] == "-" ? -1 : 1)
            time = String(time[..<sign])
        }
        let clock = time.split(separator: ":").map { Double($0) }
        guard (2...3).contains(clock.count), clock.allSatisfy({ $0 != nil }) else { return nil }
        let h = clock[0]!, m = clock[1]!, s = clock.count == 3 ? clock[2]! : 0
        guard (0..<24).contains(h), (0..<60).contains(m), (0..<61).contains(s) else { return nil }
        return day.addingTimeInterval(h * 3600 + m * 60 + s - Double(offset))
    }
}
