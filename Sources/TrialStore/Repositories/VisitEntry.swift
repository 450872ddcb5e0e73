import FluentKit
import FluentSQL
import Foundation
import TrialDomain

/// A lab result as a site enters it with its visit: in the site's unit.
public struct VisitLab: Sendable, Equatable {
    public var test: String
    public var value: Double
    public var unit: String
    public var collectedAt: Date

    public init(test: String, value: Double, unit: String, collectedAt: Date) {
        self.test = test
        self.value = value
        self.unit = unit
        self.collectedAt = collectedAt
    }
}

public struct SavedVisit: Sendable {
    public var forms: [FormRecord]
    public var labs: [LabResult]
}

extension FluentSafetyRepository {
    /// Every form and lab result of one visit in one write: all checked first and every problem reported together
    /// (forms by `form.field`, labs by `labs[TEST].field`), then all saved with their audit events, or nothing.
    public func saveVisit(
        participantID: UUID, visit: String, forms: [(form: String, values: [String: String])], labs: [VisitLab], reason: String?, scope: AccessScope,
        now: Date
    ) async throws -> SavedVisit {
        guard !forms.isEmpty || !labs.isEmpty else { throw StoreError.invalid(field: "forms", rule: "a visit needs at least one form or lab result") }
        if let twice = Dictionary(grouping: forms.map(\.form), by: { $0 }).first(where: { $0.value.count > 1 })?.key {
            throw StoreError.invalid(field: "forms", rule: "form '\(twice)' is given more than once")
        }
        if let twice = Dictionary(grouping: labs.map { $0.test.uppercased() }, by: { $0 }).first(where: { $0.value.count > 1 })?.key {
            throw StoreError.invalid(field: "labs", rule: "\(twice) is given more than once")
        }
        return try await store.write { tx in
            let current = try await FluentScreeningRepository.file(participantID: participantID, scope: scope, on: tx)
            if !labs.isEmpty {
                try await LockCheck.require(
                    WriteTarget(siteID: current.participant.siteID, participantID: participantID, visit: visit), kind: .data, actor: scope.actor,
                    attempted: "lab results at \(visit)", on: tx)
            }
            var problems: [(field: String, rule: String)] = []
            if current.study.visit(visit) == nil { problems.append(("visit", "names unknown visit '\(visit)'")) }
            for lab in labs {
                let path = "labs[\(lab.test)]"
                guard let test = current.study.labTest(lab.test) else {
                    problems.append(("\(path).test", "must be one of \(current.study.labTests.map(\.code).joined(separator: ", "))"))
                    continue
                }
                if lab.collectedAt > now.addingTimeInterval(300) { problems.append(("\(path).collectedAt", "must not be in the future")) }
                do {
                    _ = try LabEvaluator.evaluate(
                        test: test, value: lab.value, unit: lab.unit, collectedAt: lab.collectedAt, study: current.study, site: current.siteCode,
                        sex: nil, birthDate: nil, baseline: nil, tables: [])
                } catch let error as LabEvaluationError {
                    switch error {
                    case .unit(let rule): problems.append(("\(path).unit", rule))
                    case .implausible(let rule): problems.append(("\(path).value", rule))
                    }
                }
            }
            var records: [FormRecord] = []
            if !forms.isEmpty {
                do {
                    records = try await FluentFormRecordRepository.save(
                        participantID: participantID, visit: visit, forms: forms, reason: reason, scope: scope, now: now,
                        before: nil, recheck: false, qualify: true, runChecks: false, on: tx)
                } catch StoreError.invalid(let field, let rule) {
                    // The forms' problems first, as the form save words them, then the labs'.
                    problems.insert((field, rule), at: 0)
                }
            } else {
                try await ParticipantRevision.bump(participantID, on: tx)
            }
            if let first = problems.first {
                throw StoreError.invalid(field: first.field, rule: ([first.rule] + problems.dropFirst().map { "\($0.field): \($0.rule)" }).joined(separator: "; "))
            }
            // The file with the forms just saved: the labs' checks (anchors, sex and age for the ranges) read it.
            let file = try await FluentScreeningRepository.file(participantID: participantID, scope: scope, on: tx)
            var results: [LabResult] = []
            for lab in labs {
                let test = file.study.labTest(lab.test)!
                let baseline = try await (tx as! any SQLDatabase).raw("""
                    SELECT value FROM lab_results WHERE participant_id = \(bind: participantID) AND test_code = \(bind: test.code)
                    AND visit_code IN (\(binds: Baseline.visits(of: file.study))) AND collected_at < \(bind: lab.collectedAt)
                    ORDER BY collected_at DESC LIMIT 1
                    """).first()?.decode(column: "value", as: Double.self)
                let built = try labRows(
                    participantID: participantID, file: file, visit: visit, test: test, value: lab.value, unit: lab.unit, collectedAt: lab.collectedAt,
                    baseline: baseline, scope: scope, now: now)
                try AuditChain.checkReason(built.audit)
                try await Store.insertAlone(built.rows, audit: built.audit, duplicate: .duplicate(field: "labs[\(test.code)]", value: "\(test.code) at \(visit)"), on: tx)
                results.append(built.answer)
            }
            if !labs.isEmpty {
                try await FluentSignatureRepository.invalidate(participantID: participantID, visit: visit, forms: [], actor: scope.actor, now: now, on: tx)
            }
            if !(file.study.dataManagement?.editChecks ?? []).isEmpty {
                try await EditCheckRunner.apply(participantID: participantID, scope: scope, now: now, on: tx)
            }
            if FluentFormRecordRepository.isScheduled(visit, in: file.study), !labs.isEmpty || records.contains(where: { $0.createdAt == now }) {
                try await FluentScreeningRepository.raiseScheduleDeviations(participantID: participantID, scope: scope, now: now, on: tx)
            }
            if visit == file.study.eligibilityVisit {
                try await FluentScreeningRepository.recheckEligibility(participantID: participantID, scope: scope, now: now, on: tx)
            }
            return SavedVisit(forms: records, labs: results)
        }
    }
}
