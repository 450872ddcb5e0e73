import Foundation

/// One lab result as stored: in its test's canonical unit, with the value and unit the site entered.
public struct StoredLabResult: Sendable, Equatable {
    public var test: String
    public var canonical: Double
    public var collectedAt: Date
    public var enteredValue: Double
    public var enteredUnit: String

    public init(test: String, canonical: Double, collectedAt: Date, enteredValue: Double, enteredUnit: String) {
        self.test = test
        self.canonical = canonical
        self.collectedAt = collectedAt
        self.enteredValue = enteredValue
        self.enteredUnit = enteredUnit
    }
}

/// A visit's values with its lab results read in: a lab is entered once, by whichever path (a form field linked to
/// the lab, or the lab API), and eligibility reads it either way. Two values for one field that disagree are not
/// used: the criterion cannot tell until someone resolves them.
public enum VisitLabValues {
    public struct Merged: Sendable, Equatable {
        /// `form.field` values, lab results filled in where the form has none.
        public var values: [String: String]
        /// Fields whose form value and lab result disagree, with both, for the evidence.
        public var conflicts: [String: String]
        /// Where a value filled from a lab result came from, for the evidence.
        public var sources: [String: String]
    }

    /// "2026-03-01 08:00 UTC".
    public static func minute(_ date: Date) -> String {
        let text = AuditEntry.timestamp(date)
        return String(text.prefix(10)) + " " + String(text.dropFirst(11).prefix(5)) + " UTC"
    }

    /// Relative difference under which two entries of one result count as the same (rounding of a converted value).
    static let tolerance = 0.005

    /// `zone`: the site's, for calendar days. With `eligibility.date` set, a sample taken after that day, or longer
    /// before it than `eligibility.samplesWithin`, is not used, and says why.
    public static func merge(
        study: StudyDefinition, visit: String, values: [String: String], results: [StoredLabResult], zone: TimeZone = SiteCalendar.utc
    ) -> Merged {
        var merged = Merged(values: values, conflicts: [:], sources: [:])
        let conversions = UnitConversions(study: study)
        let calendar = SiteCalendar(zone: zone)
        let screening = study.eligibility.date.flatMap { values[$0] }.flatMap { DateParsing.day(String($0.prefix(10)), in: zone) }
        /// Why a sample taken at `at` may not be used, if it may not.
        func outside(_ at: Date) -> String? {
            guard let screening else { return nil }
            let day = calendar.day(at), screeningDay = calendar.day(screening)
            if day > screeningDay { return "sampled outside the window: \(Self.minute(at)), after the screening date \(calendar.dayText(screening))" }
            if let within = study.eligibility.samplesWithin, Double(screeningDay - day) > within.seconds / 86_400 {
                return "sampled outside the window: \(Self.minute(at)), more than \(within) before the screening date \(calendar.dayText(screening))"
            }
            return nil
        }
        for form in study.forms where form.visits.contains(visit) {
            // The form's own sample time: its first date or date-time field, as for a visit's date.
            let formSampled = form.fields.first { $0.type == .date || $0.type == .datetime }
                .flatMap { values["\(form.code).\($0.code)"] }.flatMap { DateParsing.instant($0) ?? DateParsing.day(String($0.prefix(10)), in: zone) }
            for field in form.fields {
                guard let lab = field.lab, let test = study.labTest(lab) else { continue }
                let name = "\(form.code).\(field.code)"
                if values[name] != nil, let at = formSampled, let why = outside(at) {
                    merged.values[name] = nil
                    merged.conflicts[name] = why
                }
                guard let result = results.first(where: { $0.test.uppercased() == test.code }) else { continue }
                let unit = field.unit ?? test.unit
                guard let factor = conversions.toCanonical(analyte: test.analyte, unit: unit), factor > 0 else { continue }
                let inFieldUnit = result.canonical / factor
                let sampled = "lab result \(FormValidator.format(result.enteredValue)) \(result.enteredUnit), sampled \(Self.minute(result.collectedAt))"
                if let why = outside(result.collectedAt) {
                    if merged.values[name] == nil && merged.conflicts[name] == nil { merged.conflicts[name] = "\(why) (\(sampled))" }
                    continue
                }
                if merged.conflicts[name] != nil { continue }
                if let entered = values[name], let formValue = Double(entered) {
                    let scale = max(abs(formValue), abs(inFieldUnit), 1e-9)
                    if abs(formValue - inFieldUnit) / scale > tolerance {
                        merged.values[name] = nil
                        merged.conflicts[name] = "values disagree: form \(entered) \(unit), \(sampled)"
                    }
                } else {
                    merged.values[name] = FormValidator.format((inFieldUnit * 10_000).rounded() / 10_000)
                    merged.sources[name] = sampled
                }
            }
        }
        return merged
    }

    /// The labs whose results at the eligibility visit some criterion or stratification factor reads (through the
    /// fields linked to them, derived fields put in): a new result for one of these can change eligibility.
    public static func readByEligibility(study: StudyDefinition) -> Set<String> {
        guard let visit = study.eligibilityVisit else { return [] }
        let scope = ExpressionScope(study: study)
        var names: Set<String> = []
        let sources = (study.eligibility.inclusion + study.eligibility.exclusion).map(\.expression) + study.randomization.factors.map(\.expression)
        for source in sources { if let checked = try? scope.check(try ExpressionParser.parse(source)).expression { names.formUnion(checked.references) } }
        var labs: Set<String> = []
        for form in study.forms where form.visits.contains(visit) {
            for field in form.fields where names.contains("\(form.code).\(field.code)") {
                if let lab = field.lab.flatMap(study.labTest) { labs.insert(lab.code) }
            }
        }
        return labs
    }
}
