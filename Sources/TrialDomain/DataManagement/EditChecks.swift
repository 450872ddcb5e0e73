import Foundation

/// How the study runs its data management: when a query falls due, which checks run on saved data, which fields a
/// monitor verifies against source.
public struct DataManagementSettings: Codable, Equatable, Sendable {
    /// Days a site has to answer a query; none when absent.
    public var queryDueDays: Int?
    public var editChecks: [EditCheck]?
    public var verification: VerificationSettings?

    public init(queryDueDays: Int? = nil, editChecks: [EditCheck]? = nil, verification: VerificationSettings? = nil) {
        self.queryDueDays = queryDueDays
        self.editChecks = editChecks
        self.verification = verification
    }
}

/// Source data verification: critical fields are all verified, the others on a sample of participants.
public struct VerificationSettings: Codable, Equatable, Sendable {
    /// `form.field` paths, or `lab.TEST` for a lab result.
    public var critical: [String]
    /// The share of participants whose other fields are verified too, from 0 to 1.
    public var sampleRate: Double

    public init(critical: [String], sampleRate: Double) {
        self.critical = critical
        self.sampleRate = sampleRate
    }
}

public enum EditCheckSeverity: String, Codable, Sendable, CaseIterable {
    /// Refuses the write.
    case hard
    /// Lets the write through and raises a failed-check query.
    case soft
}

/// A rule the data must keep, as data: a condition that holds when they are clean.
public struct EditCheck: Codable, Equatable, Sendable {
    public var code: String
    /// What the site reads when the check fails.
    public var message: String
    /// Holds for clean data: `demographics.weight_kg >= 30`, `infusion.end_time > infusion.start_time`; a value at
    /// another visit is named `form.field@visit` (`labs.collected_at > labs.collected_at@baseline`).
    public var expression: String
    public var severity: EditCheckSeverity
    /// The `form.field`s it concerns; a failed-check query points at the first.
    public var fields: [String]
    /// Where it runs; by default every visit that collects the first field's form.
    public var visits: [String]?

    public init(code: String, message: String, expression: String, severity: EditCheckSeverity, fields: [String], visits: [String]? = nil) {
        self.code = code
        self.message = message
        self.expression = expression
        self.severity = severity
        self.fields = fields
        self.visits = visits
    }

    /// The visits the check runs at in this study.
    public func visits(in study: StudyDefinition) -> [String] {
        if let visits { return visits }
        guard let first = fields.first, let form = study.form(String(first.split(separator: ".").first ?? "")) else { return [] }
        return form.visits
    }
}

public enum EditCheckOutcome: Equatable, Sendable {
    case passed
    case failed
    /// Some value it reads is missing: nothing to say yet.
    case cannotTell
}

public struct EditCheckFinding: Equatable, Sendable {
    public var check: EditCheck
    public var visit: String
    public var outcome: EditCheckOutcome
}

public enum EditChecks {
    /// Runs every check of the study at each visit it concerns, over the values each visit has (its own first, then
    /// the participant's other data). A visit with none of the check's fields entered is not judged.
    public static func run(
        study: StudyDefinition, site: String?, values: [String: String], visitValues: [String: [String: String]], history: ClinicalHistory? = nil
    ) -> [EditCheckFinding] {
        let checks = study.dataManagement?.editChecks ?? []
        guard !checks.isEmpty else { return [] }
        let scope = ExpressionScope(study: study)
        // Every visit's values under `form.field@visit` as well, for checks that compare visits.
        var across = values
        for (visit, own) in visitValues {
            for (name, value) in own { across["\(name)@\(visit)"] = value }
        }
        var findings: [EditCheckFinding] = []
        for check in checks {
            guard let expression = try? scope.checkCondition(check.expression) else { continue }
            for visit in check.visits(in: study) {
                let own = visitValues[visit] ?? [:]
                guard check.fields.contains(where: { own[$0] != nil }) else { continue }
                let merged = across.merging(own) { _, new in new }
                let outcome: EditCheckOutcome
                switch try? Evaluator(study: study, site: site, values: merged, scope: scope, history: history).evaluate(expression) {
                case .boolean(true): outcome = .passed
                case .boolean(false): outcome = .failed
                default: outcome = .cannotTell
                }
                findings.append(EditCheckFinding(check: check, visit: visit, outcome: outcome))
            }
        }
        return findings
    }

    /// Whether a save of these forms can change what some check finds: a check concerns a form whose fields it
    /// names or reads (at any visit). A save that concerns none need not run them.
    public static func concern(study: StudyDefinition, forms: Set<String>) -> Bool {
        (study.dataManagement?.editChecks ?? []).contains { check in
            let read = check.fields + ((try? ExpressionParser.parse(check.expression).references) ?? [])
            return read.contains { path in forms.contains(String(path.split(separator: ".").first ?? "")) }
        }
    }

    /// The lab tests whose results fill a field some check reads: saving one of them runs the checks.
    public static func labsRead(study: StudyDefinition) -> Set<String> {
        var labs: Set<String> = []
        for check in study.dataManagement?.editChecks ?? [] {
            let read = check.fields + ((try? ExpressionParser.parse(check.expression).references) ?? [])
            for path in read {
                let parts = (path.split(separator: "@").first ?? "").split(separator: ".", maxSplits: 1).map(String.init)
                guard parts.count == 2, let lab = study.form(parts[0])?.fields.first(where: { $0.code == parts[1] })?.lab else { continue }
                labs.insert(lab.uppercased())
            }
        }
        return labs
    }

    /// Problems of the checks against the study they belong to, addressed `dataManagement.editChecks[code]`.
    public static func problems(in study: StudyDefinition) -> [(path: String, rule: String)] {
        guard let settings = study.dataManagement else { return [] }
        var problems: [(String, String)] = []
        if let days = settings.queryDueDays, days < 1 { problems.append(("dataManagement.queryDueDays", "must be 1 or more")) }
        let fields = Set(study.forms.flatMap { form in form.fields.map { "\(form.code).\($0.code)" } })
        let scope = ExpressionScope(study: study)
        var seen: Set<String> = []
        for check in settings.editChecks ?? [] {
            let path = "dataManagement.editChecks[\(check.code)]"
            if !seen.insert(check.code).inserted { problems.append(("\(path).code", "'\(check.code)' is used twice")) }
            if check.message.trimmingCharacters(in: .whitespaces).isEmpty { problems.append(("\(path).message", "must not be empty")) }
            if check.fields.isEmpty { problems.append(("\(path).fields", "must name at least one form.field")) }
            for field in check.fields where !fields.contains(field) { problems.append(("\(path).fields", "names unknown field '\(field)'")) }
            for visit in check.visits ?? [] where study.visit(visit) == nil { problems.append(("\(path).visits", "names unknown visit '\(visit)'")) }
            do { _ = try scope.checkCondition(check.expression) } catch { problems.append(("\(path).expression", "\(error)")) }
        }
        if let verification = settings.verification {
            if !(0...1).contains(verification.sampleRate) { problems.append(("dataManagement.verification.sampleRate", "must be from 0 to 1")) }
            let labs = Set(study.labTests.map { "lab.\($0.code)" })
            for field in verification.critical where !fields.contains(field) && !labs.contains(field) {
                problems.append(("dataManagement.verification.critical", "names unknown field '\(field)' (a form.field, or lab.TEST)"))
            }
        }
        return problems
    }
}

public enum VerificationState: String, Codable, Sendable, CaseIterable {
    /// Checked against source, and unchanged since.
    case verified
    /// Verified once, but the value has changed since: it must be verified again.
    case changed
    /// Required and not yet verified.
    case pending
    /// Neither critical nor in the participant's sample.
    case notRequired = "not-required"
}

/// Which values a monitor verifies against source, and where each stands.
public enum SourceVerification {
    /// Whether a participant is in the sample: a fixed draw from the participant's id (FNV-1a, 64 bit), so the
    /// sample never changes between reads and needs no storage.
    public static func sampled(participantID: UUID, rate: Double) -> Bool {
        guard rate > 0 else { return false }
        guard rate < 1 else { return true }
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in participantID.uuidString.utf8 {
            hash ^= UInt64(byte)
            hash = hash &* 0x0000_0100_0000_01b3
        }
        return Double(hash >> 11) / Double(1 << 53) < rate
    }

    /// Whether the item (`form.field`, or `lab.TEST`) must be verified for this participant.
    public static func required(item: String, participantID: UUID, settings: VerificationSettings?) -> Bool {
        guard let settings else { return false }
        return settings.critical.contains(item) || sampled(participantID: participantID, rate: settings.sampleRate)
    }

    public static func state(required: Bool, current: String?, verified: String?) -> VerificationState {
        if let verified { return verified == current ? .verified : .changed }
        return required ? .pending : .notRequired
    }
}
