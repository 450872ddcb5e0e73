import FluentKit
import FluentSQL
import Foundation
import TestSupport
import Testing
import TrialDomain
import TrialStandards
@testable import TrialStore

private let now = DateParsing.instant("2026-03-10T12:00")!

@Suite struct DataManagementStoreTests {
    struct People {
        let participant: Participant
        let siteID: UUID
        let coordinator: AccessScope
        let monitor: AccessScope
        let dataManager: AccessScope
    }

    private func setUp(_ store: Store) async throws -> People {
        _ = try await FluentStudyRepository(store: store).seedIfEmpty(try StudyFile.builtIn(), now: now)
        let site = try #require(try await FluentAccountRepository(store: store).site(code: "SYSU3"))
        let coordinator = AccessScope(actor: "carl", siteIDs: [site.id], role: .coordinator)
        let p = try await FluentParticipantRepository(store: store).create(siteID: site.id, screeningNumber: "P-001", scope: coordinator, now: now)
        _ = try await FluentFormRecordRepository(store: store).save(
            participantID: p.id, visit: "screening", form: "demographics", values: ["screening_date": "2026-03-01", "birth_date": "1980-05-01", "sex": "M"],
            reason: nil, scope: coordinator, now: now)
        return People(
            participant: p, siteID: site.id, coordinator: coordinator, monitor: AccessScope(actor: "mona", siteIDs: [site.id], role: .monitor),
            dataManager: AccessScope(actor: "dora", siteIDs: [site.id], role: .dataManager))
    }

    private func count(_ sql: String, _ store: Store) async throws -> Int {
        try await (store.database as! any SQLDatabase).raw(SQLQueryString(sql)).first()!.decode(column: "n", as: Int.self)
    }

    private func safety(_ store: Store) throws -> FluentSafetyRepository {
        FluentSafetyRepository(store: store, tables: try GradingTables.builtIn())
    }

    /// A monitor's query on a lab value, answered by the coordinator's correction (its reason the answer), closed by
    /// the monitor; the coordinator's own attempt to close is refused and kept in the audit trail.
    @Test(arguments: TestDatabase.available)
    func aQueryOnALabValueIsAnsweredByItsCorrectionAndClosedByTheMonitor(database: TestDatabase) async throws {
        try await database.withStore { store in
            let people = try await setUp(store)
            let safety = try safety(store)
            let collected = DateParsing.instant("2026-03-01T08:00")!
            _ = try await safety.recordLab(
                participantID: people.participant.id, visit: "screening", test: "BILI", value: 250, unit: "umol/L", collectedAt: collected,
                scope: people.coordinator, now: now)
            let queries = FluentQueryRepository(store: store)
            let raised = try await queries.raise(
                QueryInput(participantID: people.participant.id, target: QueryTarget(visit: "screening", lab: "BILI", field: "value"), text: "Source says 205?"),
                scope: people.monitor, now: now)
            #expect(raised.status == .open)
            #expect(raised.assignee == .coordinator)
            // The study gives a site 7 days.
            #expect(raised.dueAt == now.addingTimeInterval(7 * 86_400))

            // A correction without a reason is refused; with one, it answers the query.
            await #expect(throws: StoreError.reasonRequired(field: "reason")) {
                try await safety.correctLab(
                    participantID: people.participant.id, visit: "screening", test: "BILI", value: 205, unit: "umol/L", collectedAt: collected, reason: nil,
                    scope: people.coordinator, now: now)
            }
            let corrected = try await safety.correctLab(
                participantID: people.participant.id, visit: "screening", test: "BILI", value: 205, unit: "umol/L", collectedAt: collected,
                reason: "transcription error; source 205", scope: people.coordinator, now: now.addingTimeInterval(60))
            #expect(corrected.enteredValue == 205)
            #expect(corrected.id == (try await safety.labs(participantID: people.participant.id, scope: people.coordinator)).first?.id)
            let answered = try await queries.query(id: raised.id, scope: people.monitor)
            #expect(answered.status == .answered)
            #expect(answered.answeredBy == "carl")
            #expect(answered.messages?.last?.text == "transcription error; source 205")

            // Site staff never close.
            await #expect(throws: RuleError.self) {
                try await queries.transition(id: raised.id, action: .close, text: nil, scope: people.coordinator, now: now)
            }
            #expect(try await count("SELECT COUNT(*) AS n FROM audit_events WHERE entity = 'query_refused'", store) == 1)
            let closed = try await queries.transition(id: raised.id, action: .close, text: "matches source", scope: people.monitor, now: now)
            #expect(closed.status == .closed)
            // Answering a closed query is refused as illegal.
            await #expect(throws: RuleError.illegal(rule: "only an open query can be answered (this one is closed)")) {
                try await queries.transition(id: raised.id, action: .answer, text: "again", scope: people.coordinator, now: now)
            }

            let lab = try await count("SELECT COUNT(*) AS n FROM audit_events WHERE entity = 'lab_result' AND action = 'update'", store)
            #expect(lab == 1)
            let page = try await queries.list(QueryFilter(status: .closed, siteCode: "SYSU3", participantID: people.participant.id), scope: people.monitor, now: now)
            #expect(page.items.map(\.id) == [raised.id])
            #expect(try await queries.list(QueryFilter(status: .open), scope: people.monitor, now: now).items.isEmpty)
            #expect(try await AuditChain.verify(on: store.database).isIntact)
        }
    }

    @Test(arguments: TestDatabase.available)
    func overdueAndPagingAreFilteredInTheQuery(database: TestDatabase) async throws {
        try await database.withStore { store in
            let people = try await setUp(store)
            let queries = FluentQueryRepository(store: store)
            var ids: [UUID] = []
            for i in 0..<5 {
                ids.append(try await queries.raise(
                    QueryInput(participantID: people.participant.id, target: QueryTarget(visit: "screening", form: "demographics", field: "sex"), text: "q\(i)"),
                    scope: people.dataManager, now: now.addingTimeInterval(Double(i))).id)
            }
            let first = try await queries.list(QueryFilter(limit: 2), scope: people.monitor, now: now)
            let second = try await queries.list(QueryFilter(limit: 2, after: first.next), scope: people.monitor, now: now)
            let third = try await queries.list(QueryFilter(limit: 2, after: second.next), scope: people.monitor, now: now)
            #expect((first.items + second.items + third.items).map(\.id) == ids)
            #expect(third.next == nil)
            let later = now.addingTimeInterval(8 * 86_400)
            #expect(try await queries.list(QueryFilter(overdue: true), scope: people.monitor, now: later).items.count == 5)
            #expect(try await queries.list(QueryFilter(overdue: true), scope: people.monitor, now: now).items.isEmpty)
            #expect(try await queries.list(QueryFilter(assignee: .investigator), scope: people.monitor, now: now).items.isEmpty)
            // Another site's user sees none of them.
            let stranger = AccessScope(actor: "x", siteIDs: [UUID()], role: .monitor)
            #expect(try await queries.list(QueryFilter(), scope: stranger, now: now).items.isEmpty)
            await #expect(throws: StoreError.notFound(entity: "query", id: ids[0].uuidString)) {
                try await queries.query(id: ids[0], scope: stranger)
            }
        }
    }

    /// A study lock refuses every write path that changes clinical data, and queries too; each attempt is audited;
    /// nothing is written. A freeze lets queries through.
    @Test(arguments: TestDatabase.available)
    func aStudyLockRefusesEveryWritePathAndAFreezeOnlyData(database: TestDatabase) async throws {
        try await database.withStore { store in
            let people = try await setUp(store)
            let locks = FluentLockRepository(store: store)
            let forms = FluentFormRecordRepository(store: store)
            let screening = FluentScreeningRepository(store: store)
            let safety = try safety(store)
            let participants = FluentParticipantRepository(store: store)
            let queries = FluentQueryRepository(store: store)
            let id = people.participant.id, scope = people.coordinator
            _ = try await safety.recordLab(
                participantID: id, visit: "screening", test: "INR", value: 2, unit: "ratio", collectedAt: now.addingTimeInterval(-86_400), scope: scope, now: now)
            try await safety.seedTermsIfEmpty(try GradingTables.protocolTerms(), version: "4.03", now: now)
            _ = try await screening.recordConsent(participantID: id, formVersion: "1", signedAt: now.addingTimeInterval(-7200), scope: scope, now: now)
            let investigator = AccessScope(actor: "ivy", siteIDs: [people.siteID], role: .investigator)

            await #expect(throws: StoreError.self) {
                try await locks.lock(LockInput(kind: .lock, level: .study, reason: "final"), scope: people.coordinator, now: now)
            }
            let lock = try await locks.lock(LockInput(kind: .lock, level: .study, reason: "database lock for analysis"), scope: people.dataManager, now: now)
            #expect(lock.datasetHash?.count == 64)
            #expect(lock.datasetHash == (try await locks.datasetHash()))
            let rows = try await count("SELECT (SELECT COUNT(*) FROM form_records) + (SELECT COUNT(*) FROM lab_results) + (SELECT COUNT(*) FROM participants) AS n", store)

            let attempts: [(String, () async throws -> Void)] = [
                ("form", { _ = try await forms.save(participantID: id, visit: "screening", form: "aclf", values: ["chronic_liver_disease": "yes", "ascites": "no", "encephalopathy": "no", "needs_transplant": "yes"], reason: nil, scope: scope, now: now) }),
                ("lab", { _ = try await safety.recordLab(participantID: id, visit: "screening", test: "ALT", value: 40, unit: "U/L", collectedAt: now.addingTimeInterval(-3600), scope: scope, now: now) }),
                ("visit", { _ = try await safety.saveVisit(participantID: id, visit: "screening", forms: [], labs: [VisitLab(test: "AST", value: 40, unit: "U/L", collectedAt: now.addingTimeInterval(-3600))], reason: nil, scope: scope, now: now) }),
                ("correction", { _ = try await safety.correctLab(participantID: id, visit: "screening", test: "INR", value: 2.1, unit: "ratio", collectedAt: now.addingTimeInterval(-86_400), reason: "typo", scope: scope, now: now) }),
                ("consent", { _ = try await screening.recordConsent(participantID: id, formVersion: "1", signedAt: now.addingTimeInterval(-3600), scope: scope, now: now) }),
                ("decision", { _ = try await screening.decideEligibility(participantID: id, scope: scope, now: now) }),
                ("allocation", { _ = try await screening.allocate(participantID: id, scope: scope, now: now) }),
                ("participant", { _ = try await participants.create(siteID: people.siteID, screeningNumber: "P-002", scope: scope, now: now) }),
                ("status", { _ = try await participants.updateStatus(id: id, status: .withdrawn, reason: "moved", scope: scope, now: now) }),
                ("query", { _ = try await queries.raise(QueryInput(participantID: id, text: "why?"), scope: people.monitor, now: now) }),
                ("withdrawal", { try await screening.withdrawConsent(participantID: id, withdrawnAt: now, withdrawal: .noFurtherData, reason: "moved", scope: scope, now: now) }),
                ("adverse event", {
                    _ = try await safety.recordAdverseEvent(
                        participantID: id, input: AdverseEventInput(meddra: "10002218", grade: 3, onsetAt: now.addingTimeInterval(-3600), attribution: .possible, expected: false, actionTaken: "none", outcome: "recovered"),
                        scope: scope, now: now)
                }),
                ("signature", { _ = try await FluentSignatureRepository(store: store).sign(participantID: id, visit: nil, form: nil, meaning: .approve, sessionHash: nil, scope: investigator, now: now) }),
                ("verification", { _ = try await FluentVerificationRepository(store: store).verify(participantID: id, visit: "screening", item: "lab.INR", scope: people.monitor, now: now) }),
                ("deviation", { _ = try await screening.raiseDeviation(participantID: id, kind: .other, visit: nil, detail: "x", scope: scope, now: now) }),
                ("list", { _ = try await screening.generateList(seedHex: nil, actor: "stan", now: now) }),
            ]
            for (name, attempt) in attempts {
                do {
                    try await attempt()
                    Issue.record("\(name) was written under a study lock")
                } catch let refusal as LockRefusal {
                    #expect(refusal.lock.id == lock.id, "\(name)")
                } catch {
                    Issue.record("\(name): expected a lock refusal, got \(error)")
                }
            }
            #expect(try await count("SELECT COUNT(*) AS n FROM audit_events WHERE entity = 'write_refused'", store) == attempts.count)
            #expect(try await count("SELECT (SELECT COUNT(*) FROM form_records) + (SELECT COUNT(*) FROM lab_results) + (SELECT COUNT(*) FROM participants) AS n", store) == rows)
            #expect(lock.datasetHash == (try await locks.datasetHash()))

            try await locks.unlock(id: lock.id, reason: "query found after lock", scope: people.dataManager, now: now)
            let freeze = try await locks.lock(LockInput(kind: .freeze, level: .participant, participantID: id, reason: "interim review"), scope: people.dataManager, now: now)
            _ = try await queries.raise(QueryInput(participantID: id, text: "why?"), scope: people.monitor, now: now)
            await #expect(throws: LockRefusal.self) {
                _ = try await safety.recordLab(participantID: id, visit: "screening", test: "ALT", value: 40, unit: "U/L", collectedAt: now.addingTimeInterval(-3600), scope: scope, now: now)
            }
            try await locks.unlock(id: freeze.id, reason: "review done", scope: people.dataManager, now: now)
            _ = try await safety.recordLab(participantID: id, visit: "screening", test: "ALT", value: 40, unit: "U/L", collectedAt: now.addingTimeInterval(-3600), scope: scope, now: now)
            #expect(lock.datasetHash != (try await locks.datasetHash()))
            #expect(try await AuditChain.verify(on: store.database).isIntact)
        }
    }

    /// A form lock covers that form at that visit only.
    @Test(arguments: TestDatabase.available)
    func aFormLockCoversThatFormOnly(database: TestDatabase) async throws {
        try await database.withStore { store in
            let people = try await setUp(store)
            let locks = FluentLockRepository(store: store)
            let forms = FluentFormRecordRepository(store: store)
            _ = try await locks.lock(
                LockInput(kind: .lock, level: .form, participantID: people.participant.id, visit: "screening", form: "demographics", reason: "signed"),
                scope: people.dataManager, now: now)
            await #expect(throws: LockRefusal.self) {
                _ = try await forms.save(
                    participantID: people.participant.id, visit: "screening", form: "demographics",
                    values: ["screening_date": "2026-03-02", "birth_date": "1980-05-01", "sex": "M"], reason: "typo", scope: people.coordinator, now: now)
            }
            _ = try await forms.save(
                participantID: people.participant.id, visit: "screening", form: "history",
                values: ["malignancy": "no", "active_infection": "no", "combined_transplant": "no", "retransplant": "no", "ebv": "positive", "hiv": "negative", "hcv": "negative"],
                reason: nil, scope: people.coordinator, now: now)
        }
    }

    /// A soft edit check raises a failed-check query, closes it when the data are fixed and reopens it when they break again.
    @Test(arguments: TestDatabase.available)
    func aFailedCheckQueryClosesWhenFixedAndReopensWhenBroken(database: TestDatabase) async throws {
        try await database.withStore { store in
            let people = try await setUp(store)
            let forms = FluentFormRecordRepository(store: store)
            let queries = FluentQueryRepository(store: store)
            func aclf(_ date: String, reason: String?) async throws {
                _ = try await forms.save(
                    participantID: people.participant.id, visit: "screening", form: "aclf",
                    values: ["chronic_liver_disease": "yes", "ascites": "yes", "ascites_date": date, "encephalopathy": "no", "needs_transplant": "yes"],
                    reason: reason, scope: people.coordinator, now: now)
            }
            // Screening was 2026-03-01; ascites found the day after.
            try await aclf("2026-03-02", reason: nil)
            let raised = try await queries.list(QueryFilter(participantID: people.participant.id), scope: people.monitor, now: now).items
            #expect(raised.count == 1)
            #expect(raised.first?.kind == .failedCheck)
            #expect(raised.first?.checkCode == "ascites_after_screening")
            #expect(raised.first?.target == QueryTarget(visit: "screening", form: "aclf", field: "ascites_date"))
            #expect(raised.first?.raisedBy == QueryRules.systemActor)

            try await aclf("2026-02-25", reason: "date from the admission note")
            #expect(try await queries.query(id: raised[0].id, scope: people.monitor).status == .closed)
            try await aclf("2026-03-03", reason: "re-entered")
            let reopened = try await queries.query(id: raised[0].id, scope: people.monitor)
            #expect(reopened.status == .open)
            #expect(reopened.messages?.map(\.action) == ["raise", "close", "reopen"])
            // Still one query for the one check at the one visit.
            #expect(try await count("SELECT COUNT(*) AS n FROM queries", store) == 1)
        }
    }

    /// The investigator's signature covers exactly the values signed: a change through any write invalidates it,
    /// visibly and in the audit trail; a change behind the server's back shows on reading. A form's signature is
    /// left alone by changes elsewhere.
    @Test(arguments: TestDatabase.available)
    func aSignatureIsInvalidatedByAnyChangeToWhatItCovers(database: TestDatabase) async throws {
        try await database.withStore { store in
            let people = try await setUp(store)
            let investigator = AccessScope(actor: "ivy", siteIDs: [people.siteID], role: .investigator)
            let signatures = FluentSignatureRepository(store: store)
            let forms = FluentFormRecordRepository(store: store)
            let id = people.participant.id
            await #expect(throws: RuleError.self) {
                try await signatures.sign(participantID: id, visit: nil, form: nil, meaning: .approve, sessionHash: nil, scope: people.coordinator, now: now)
            }
            let casebook = try await signatures.sign(participantID: id, visit: nil, form: nil, meaning: .approve, sessionHash: "s1", scope: investigator, now: now)
            let form = try await signatures.sign(participantID: id, visit: "screening", form: "demographics", meaning: .approve, sessionHash: "s1", scope: investigator, now: now)
            #expect(casebook.contentSHA256.count == 64)
            #expect(casebook.statement == "I approve these data as accurate and complete")
            #expect(try await signatures.hasSigned(sessionHash: "s1"))
            // Bound to the chain: the head it names is the hash of the event before its own.
            let head = try await (store.database as! any SQLDatabase).raw(
                "SELECT previous_hash FROM audit_events WHERE sequence = \(bind: casebook.auditSequence)").first()?.decode(column: "previous_hash", as: String.self)
            #expect(head == casebook.chainHead)
            #expect(try await signatures.signatures(participantID: id, scope: people.monitor).allSatisfy(\.valid))

            // Another form changes: the casebook's signature goes, the demographics form's stays.
            _ = try await forms.save(
                participantID: id, visit: "screening", form: "history",
                values: ["malignancy": "no", "active_infection": "no", "combined_transplant": "no", "retransplant": "no", "ebv": "positive", "hiv": "negative", "hcv": "negative"],
                reason: nil, scope: people.coordinator, now: now)
            var all = try await signatures.signatures(participantID: id, scope: people.monitor)
            #expect(all.first { $0.id == casebook.id }?.valid == false)
            #expect(all.first { $0.id == casebook.id }?.invalidatedBy == "carl")
            #expect(all.first { $0.id == casebook.id }?.changed.contains("screening/history.malignancy") == true)
            #expect(all.first { $0.id == form.id }?.valid == true)
            #expect(try await count("SELECT COUNT(*) AS n FROM audit_events WHERE entity = 'signature' AND action = 'update'", store) == 1)

            // A lab result saved the quick way still invalidates a casebook signature.
            let again = try await signatures.sign(participantID: id, visit: nil, form: nil, meaning: .approve, sessionHash: "s1", scope: investigator, now: now)
            _ = try await FluentSafetyRepository(store: store, tables: try GradingTables.builtIn()).recordLab(
                participantID: id, visit: "screening", test: "ALT", value: 40, unit: "U/L", collectedAt: now.addingTimeInterval(-3600), scope: people.coordinator,
                now: now)
            #expect(try await signatures.signatures(participantID: id, scope: people.monitor).first { $0.id == again.id }?.valid == false)

            // Behind the server's back: the form's signature no longer matches what is stored.
            try await (store.database as! any SQLDatabase).raw(
                "UPDATE form_records SET data = \(bind: #"{"birth_date":"1980-05-01","screening_date":"2026-03-01","sex":"F"}"#) WHERE form_code = 'demographics'").run()
            all = try await signatures.signatures(participantID: id, scope: people.monitor)
            #expect(all.first { $0.id == form.id }?.valid == false)
            #expect(all.first { $0.id == form.id }?.changed == ["screening/demographics.sex"])
        }
    }

    @Test func fiveWrongPasswordsInARowLockSigningForFifteenMinutes() {
        var failures = 0
        for _ in 1...4 {
            let next = SignatureRules.afterFailure(failures: failures, now: now)
            #expect(next.lockedUntil == nil)
            failures = next.failures
        }
        #expect(SignatureRules.afterFailure(failures: failures, now: now).lockedUntil == now.addingTimeInterval(900))
    }

    /// Source verification: a critical value is pending until a monitor verifies it; a correction makes it "changed"
    /// until verified again; only a monitor verifies; the per-site summary counts the same.
    @Test(arguments: TestDatabase.available)
    func aVerifiedValueThatChangesMustBeVerifiedAgain(database: TestDatabase) async throws {
        try await database.withStore { store in
            let people = try await setUp(store)
            let id = people.participant.id
            let collected = DateParsing.instant("2026-03-01T08:00")!
            let safety = FluentSafetyRepository(store: store, tables: try GradingTables.builtIn())
            _ = try await safety.recordLab(
                participantID: id, visit: "screening", test: "BILI", value: 250, unit: "umol/L", collectedAt: collected, scope: people.coordinator, now: now)
            let verifications = FluentVerificationRepository(store: store)
            func state(_ item: String) async throws -> VerificationState? {
                try await verifications.items(participantID: id, scope: people.monitor).first { $0.visit == "screening" && $0.item == item }?.state
            }
            // Critical in the built-in study: bilirubin and the birth date.
            #expect(try await state("lab.BILI") == .pending)
            #expect(try await state("demographics.birth_date") == .pending)
            await #expect(throws: StoreError.self) {
                try await verifications.verify(participantID: id, visit: "screening", item: "lab.BILI", scope: people.coordinator, now: now)
            }
            _ = try await verifications.verify(participantID: id, visit: "screening", item: "lab.BILI", scope: people.monitor, now: now)
            #expect(try await state("lab.BILI") == .verified)
            var summary = try await verifications.summary(scope: people.monitor)
            #expect(summary.first?.verified == 1)
            let required = try #require(summary.first?.required)

            _ = try await safety.correctLab(
                participantID: id, visit: "screening", test: "BILI", value: 205, unit: "umol/L", collectedAt: collected, reason: "source shows 205",
                scope: people.coordinator, now: now)
            #expect(try await state("lab.BILI") == .changed)
            summary = try await verifications.summary(scope: people.monitor)
            #expect(summary.first.map { ($0.verified, $0.changed, $0.required) } ?? (0, 0, 0) == (0, 1, required))
            _ = try await verifications.verify(participantID: id, visit: "screening", item: "lab.BILI", scope: people.monitor, now: now)
            #expect(try await state("lab.BILI") == .verified)
            await #expect(throws: StoreError.notFound(entity: "value", id: "lab.ALT at screening")) {
                try await verifications.verify(participantID: id, visit: "screening", item: "lab.ALT", scope: people.monitor, now: now)
            }
        }
    }

    /// Deviations: a visit's first data late raise a visit-window deviation, and the earlier visits skipped before it
    /// a missed-assessment each (once); one raised by hand; each reviewed and classified, the review replaceable.
    @Test(arguments: TestDatabase.available)
    func deviationsAreRaisedFromTheScheduleOrByHandAndReviewed(database: TestDatabase) async throws {
        try await database.withStore { store in
            let people = try await setUp(store)
            let id = people.participant.id
            let forms = FluentFormRecordRepository(store: store)
            let screening = FluentScreeningRepository(store: store)
            _ = try await forms.save(
                participantID: id, visit: "transplant", form: "transplant", values: ["transplant_date": "2026-03-02", "donor": "deceased"], reason: nil,
                scope: people.coordinator, now: now)
            // Day 14 is 2026-03-16, its window 03-14 to 03-18; the sample is from 03-20. Baseline (03-03 to 03-09) and
            // day 7 (03-08 to 03-10) have no data and their windows have closed.
            let later = DateParsing.instant("2026-03-21T12:00")!
            _ = try await forms.save(
                participantID: id, visit: "day_14", form: "labs", values: ["collected_at": "2026-03-20T08:00", "alt": "40"], reason: nil,
                scope: people.coordinator, now: later)
            var list = try await screening.deviations(scope: people.monitor)
            #expect(Set(list.map { "\($0.kind)@\($0.visit ?? "")" }) == ["visit-window@day_14", "missed-assessment@baseline", "missed-assessment@day_7"])
            #expect(list.first { $0.kind == "visit-window" }?.reason == "Day 14 done 2026-03-20, outside its window 2026-03-14 to 2026-03-18")
            // Saving more at the same visit raises nothing twice.
            _ = try await forms.save(
                participantID: id, visit: "day_14", form: "clinical", values: ["he_grade": "0"], reason: nil, scope: people.coordinator, now: later)
            #expect(try await screening.deviations(scope: people.monitor).count == 3)

            await #expect(throws: StoreError.self) {
                try await screening.raiseDeviation(participantID: id, kind: .dose, visit: nil, detail: "x", scope: people.coordinator, now: later)
            }
            let statistician = AccessScope(actor: "stan", siteIDs: [people.siteID], role: .statistician)
            await #expect(throws: StoreError.self) {
                try await screening.raiseDeviation(participantID: id, kind: .other, visit: nil, detail: "x", scope: statistician, now: later)
            }
            let manual = try await screening.raiseDeviation(
                participantID: id, kind: .procedure, visit: "day_14", detail: "Sample drawn after the infusion instead of before", scope: people.coordinator, now: later)
            await #expect(throws: StoreError.self) {
                try await screening.reviewDeviation(key: manual.key, classification: .important, note: nil, scope: people.coordinator, now: later)
            }
            try await screening.reviewDeviation(key: manual.key, classification: .important, note: "affects the day-14 ALT", scope: people.monitor, now: later)
            try await screening.reviewDeviation(key: manual.key, classification: .notImportant, note: "ALT not an endpoint here", scope: people.dataManager, now: later)
            list = try await screening.deviations(scope: people.monitor)
            let reviewed = try #require(list.first { $0.key == manual.key })
            #expect(reviewed.classification == .notImportant)
            #expect(reviewed.reviewedBy == "dora")
            #expect(try await count("SELECT COUNT(*) AS n FROM audit_events WHERE entity = 'deviation_review'", store) == 2)
            await #expect(throws: StoreError.notFound(entity: "deviation", id: "nope")) {
                try await screening.reviewDeviation(key: "nope", classification: .important, note: nil, scope: people.monitor, now: later)
            }
        }
    }

    /// Following up a serious event: its grade and outcome change with a reason; follow-up reports come after the
    /// initial report and set when the next is due, which then runs as a clock.
    @Test(arguments: TestDatabase.available)
    func aSeriousEventIsFollowedUpOnItsOwnClock(database: TestDatabase) async throws {
        try await database.withStore { store in
            let people = try await setUp(store)
            let safety = FluentSafetyRepository(store: store, tables: try GradingTables.builtIn())
            try await safety.seedTermsIfEmpty(try GradingTables.protocolTerms(), version: "4.03", now: now)
            let onset = now.addingTimeInterval(-6 * 3600), aware = now.addingTimeInterval(-5 * 3600)
            let event = try await safety.recordAdverseEvent(
                participantID: people.participant.id,
                input: AdverseEventInput(
                    meddra: "10002218", grade: 3, onsetAt: onset, seriousness: [.hospitalization], attribution: .probable, expected: false,
                    actionTaken: "infusion stopped", outcome: "recovering", awareAt: aware),
                scope: people.coordinator, now: now)
            await #expect(throws: StoreError.reasonRequired(field: "outcome")) {
                try await safety.updateAdverseEvent(eventID: event.id, grade: nil, outcome: "recovered", resolvedAt: nil, reason: nil, scope: people.coordinator, now: now)
            }
            // CTCAE v4.03 defines anaphylaxis at grades 3 to 5 only.
            await #expect(throws: StoreError.invalid(field: "grade", rule: "is not a grade of Anaphylaxis in CTCAE v4.03")) {
                try await safety.updateAdverseEvent(eventID: event.id, grade: 2, outcome: nil, resolvedAt: nil, reason: "x", scope: people.coordinator, now: now)
            }
            let updated = try await safety.updateAdverseEvent(
                eventID: event.id, grade: 4, outcome: "recovered", resolvedAt: now.addingTimeInterval(-3600), reason: "discharge letter", scope: people.coordinator, now: now)
            #expect(updated.grade == 4)
            #expect(updated.outcome == "recovered")
            await #expect(throws: StoreError.invalid(field: "resolvedAt", rule: "must not be before the onset")) {
                try await safety.updateAdverseEvent(eventID: event.id, grade: nil, outcome: nil, resolvedAt: onset.addingTimeInterval(-60), reason: "x", scope: people.coordinator, now: now)
            }
            await #expect(throws: StoreError.invalid(field: "submittedAt", rule: "a follow-up comes after the initial report to the sponsor")) {
                try await safety.addFollowUp(eventID: event.id, submittedAt: now, text: "more", nextDueAt: nil, scope: people.coordinator, now: now)
            }
            _ = try await safety.reportToSponsor(eventID: event.id, reportedAt: now.addingTimeInterval(-3600), scope: people.coordinator, now: now)
            let due = now.addingTimeInterval(7 * 86_400)
            let report = try await safety.addFollowUp(
                eventID: event.id, submittedAt: now, text: "Discharged; liver tests improving", nextDueAt: due, scope: people.coordinator, now: now)
            #expect(try await safety.followUps(eventID: event.id, scope: people.monitor).map(\.id) == [report.id])
            let clock = try #require(try await safety.followUpClocks(scope: people.monitor)[event.id])
            #expect(clock.nextDueAt == due)
            #expect(!clock.isOverdue(now: due))
            #expect(clock.isOverdue(now: due.addingTimeInterval(1)))
            #expect(try await count("SELECT COUNT(*) AS n FROM audit_events WHERE entity = 'ae_follow_up'", store) == 1)
        }
    }
}

