import Foundation
import Testing

@testable import TrialDomain

@Suite struct DateParsingTests {
    /// Seconds since the epoch at midnight UTC, as GNU `date -u -d DAY +%s` gives them.
    @Test(arguments: [
        ("1970-01-01", 0.0), ("1969-12-31", -86_400), ("2000-02-29", 951_782_400), ("2000-03-01", 951_868_800),
        ("2024-02-29", 1_709_164_800), ("2026-11-25", 1_795_564_800), ("1900-03-01", -2_203_891_200), ("2100-12-31", 4_133_894_400),
        ("1601-01-01", -11_644_473_600),
    ])
    func daysAreMidnightUTC(text: String, seconds: Double) {
        #expect(DateParsing.day(text)?.timeIntervalSince1970 == seconds)
    }

    /// Days the Gregorian calendar does not have: 1900 and 2100 are not leap years (divisible by 100, not by 400).
    @Test(arguments: ["2023-02-29", "1900-02-29", "2100-02-29", "2026-04-31", "2026-06-31", "2026-13-01", "2026-00-10", "2026-01-00", "2026-01-32", "2026-01", "soon"])
    func daysTheCalendarLacksAreRefused(text: String) {
        #expect(DateParsing.day(text) == nil)
    }
}
