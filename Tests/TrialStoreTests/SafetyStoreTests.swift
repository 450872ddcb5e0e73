import FluentKit
import FluentSQL
import FluentSQLiteDriver
import Foundation
import TestSupport
import Testing
import TrialDomain
import TrialStandards
@testable import TrialStore

private let now = DateParsing.instant("2026-03-10T12:00")!

/// The built-in study with reference ranges for the site (ALT ULN 40 U/L as an example range), terms seeded, one allocated participant.
private func safetyTrial(_ store: Store) async throws -> (FluentSafetyRepository, AccessScope, Participant) {
    var study = try StudyFile.builtIn()
    study.sites[0].referenceRanges = [
        ReferenceRange(test: "BILI", high: 17.1), ReferenceRange(test: "ALT", high: 40), ReferenceRange(test: "PLAT", low: 150, high: 400),
    ]
    _ = try await FluentStudyRepository(store: store).seedIfEmpty(study, now: now)
    let safety = FluentSafetyRepository(store: store, tables: try GradingTables.builtIn())
    try await safety.seedTermsIfEmpty(try GradingTables.protocolTerms(), version: "4.03", now: now)
    let site = try #require(try await FluentAccountRepository(store: store).site(code: "SYSU3"))
    let scope = AccessScope(actor: "ana", siteIDs: [site.id])
    let p = try await FluentParticipantRepository(store: store).create(siteID: site.id, screeningNumber: "P-001", scope: scope, now: now)
    _ = try await FluentFormRecordRepository(store: store).save(
        participantID: p.id, visit: "screening", form: "demographics", values: ["screening_date": "2026-03-01", "birth_date": "1980-01-01", "sex": "M"],
        reason: nil, scope: scope, now: now)
    return (safety, scope, p)
}

/// Another process moves the fixture participant's screening date to 2026-03-20, raising the revision as every write does.
private func moveScreeningDateByHand(of participantID: UUID, on sql: any SQLDatabase) async throws {
    try await sql.raw(
        """
        UPDATE form_records SET data = '{"birth_date":"1980-01-01","screening_date":"2026-03-20","sex":"M"}'
        WHERE participant_id = \(bind: participantID) AND form_code = 'demographics'
        """
    ).run()
    try await sql.raw("UPDATE participants SET revision = revision + 1 WHERE id = \(bind: participantID)").run()
}

@Suite struct LabGradingStoreTests {
    /// Bilirubin 200 µmol/L at screening (11.7 × ULN 17.1: v4.03 grade 4) is the baseline; 210 at day 7 is grade 4 by v4.03
    /// but only 1.05 × baseline, grade 1 by v5.0's abnormal-baseline rule; no shift, so not treatment-emergent.
    @Test(arguments: TestDatabase.available)
    func gradedAgainstULNAndBaseline(database: TestDatabase) async throws {
        try await database.withStore { store in
            let (safety, scope, p) = try await safetyTrial(store)
            let baseline = try await safety.recordLab(
                participantID: p.id, visit: "screening", test: "BILI", value: 200, unit: "umol/L", collectedAt: DateParsing.instant("2026-03-01T08:00")!, scope: scope, now: now)
            #expect(baseline.gradeV4 == 4)
            #expect(baseline.baseline == nil)
            // Entered in mg/dL: 210 µmol/L ÷ 17.104 = 12.278 mg/dL.
            let day7 = try await safety.recordLab(
                participantID: p.id, visit: "day_7", test: "BILI", value: 12.278, unit: "mg/dL", collectedAt: DateParsing.instant("2026-03-09T08:00")!, scope: scope, now: now)
            #expect(abs(day7.value - 210) < 0.01)
            #expect(day7.enteredUnit == "mg/dL")
            #expect(day7.baseline == 200)
            #expect(day7.gradeV4 == 4)
            #expect(day7.gradeV5 == 1)
            #expect(day7.baselineGrade == 4)
            #expect(day7.shift == "4 → 4")
            #expect(!day7.treatmentEmergent)
            #expect(day7.basisV5?.contains("if baseline was abnormal") == true)
        }
    }

    @Test(arguments: TestDatabase.available)
    func aWorseGradeThanBaselineIsTreatmentEmergent(database: TestDatabase) async throws {
        try await database.withStore { store in
            let (safety, scope, p) = try await safetyTrial(store)
            _ = try await safety.recordLab(participantID: p.id, visit: "screening", test: "ALT", value: 50, unit: "U/L", collectedAt: DateParsing.instant("2026-03-01T08:00")!, scope: scope, now: now)
            // 1 µkat/L = 60 U/L, so 4 µkat/L is 240 U/L: 6 × ULN 40, grade 3 against a grade 1 baseline.
            let later = try await safety.recordLab(participantID: p.id, visit: "day_14", test: "ALT", value: 4, unit: "ukat/L", collectedAt: DateParsing.instant("2026-03-09T08:00")!, scope: scope, now: now)
            #expect(later.value == 240)
            #expect(later.gradeV4 == 3)
            #expect(later.shift == "1 → 3")
            #expect(later.treatmentEmergent)
            let labs = try await safety.labs(participantID: p.id, scope: scope)
            #expect(labs.count == 2)
            #expect(try await AuditChain.verify(on: store.database).isIntact)
        }
    }

    @Test(arguments: TestDatabase.available)
    func badLabsAreRefusedByField(database: TestDatabase) async throws {
        try await database.withStore { store in
            let (safety, scope, p) = try await safetyTrial(store)
            let at = DateParsing.instant("2026-03-05T08:00")!
            await #expect(throws: StoreError.invalid(field: "unit", rule: "unit 'U/L' does not fit bilirubin (canonical umol/L)")) {
                try await safety.recordLab(participantID: p.id, visit: "day_7", test: "BILI", value: 3, unit: "U/L", collectedAt: at, scope: scope, now: now)
            }
            await #expect(throws: StoreError.invalid(field: "value", rule: "5000 umol/L is not a plausible Bilirubin, total (0–2000 umol/L)")) {
                try await safety.recordLab(participantID: p.id, visit: "day_7", test: "BILI", value: 5000, unit: "umol/L", collectedAt: at, scope: scope, now: now)
            }
            await #expect(throws: StoreError.invalid(field: "collectedAt", rule: "cannot be before Screening (2026-03-01)")) {
                try await safety.recordLab(participantID: p.id, visit: "day_7", test: "BILI", value: 30, unit: "umol/L", collectedAt: DateParsing.instant("2026-02-20T08:00")!, scope: scope, now: now)
            }
            let unranged = try await safety.recordLab(participantID: p.id, visit: "day_7", test: "GGT", value: 90, unit: "U/L", collectedAt: at, scope: scope, now: now)
            #expect(unranged.gradeV4 == nil)
            #expect(unranged.basisV4 == "not graded: no reference range for GGT at site SYSU3; add it to the site's definition")
        }
    }
}

@Suite struct GroupedLabSaveTests {
    /// Lab saves go in as one insert per table for a whole batch; a duplicate among them fails alone (named by field)
    /// and every other save, with its audit event, is written.
    @Test(arguments: TestDatabase.available)
    func aDuplicateInABatchFailsAloneAndTheChainHolds(database: TestDatabase) async throws {
        try await database.withStore { store in
            let (safety, scope, p) = try await safetyTrial(store)
            let at = DateParsing.instant("2026-03-09T08:00")!
            _ = try await safety.recordLab(participantID: p.id, visit: "day_7", test: "ALT", value: 50, unit: "U/L", collectedAt: at, scope: scope, now: now)
            let before = try await (store.database as! any SQLDatabase).raw("SELECT COUNT(*) AS n FROM audit_events").first()!.decode(column: "n", as: Int.self)
            let tests = ["AST", "BILI", "INR", "GGT", "ALT", "CREAT", "ALB", "PLAT", "WBC", "SODIUM"]
            let units = ["AST": "U/L", "BILI": "umol/L", "INR": "ratio", "GGT": "U/L", "ALT": "U/L", "CREAT": "umol/L", "ALB": "g/L",
                "PLAT": "10^9/L", "WBC": "10^9/L", "SODIUM": "mmol/L"]
            let values = ["AST": 45.0, "BILI": 30, "INR": 1.3, "GGT": 80, "ALT": 60, "CREAT": 90, "ALB": 35, "PLAT": 160, "WBC": 6, "SODIUM": 138]
            let outcomes = await withTaskGroup(of: (String, (any Error)?).self) { group in
                for test in tests {
                    group.addTask {
                        do {
                            _ = try await safety.recordLab(
                                participantID: p.id, visit: "day_7", test: test, value: values[test]!, unit: units[test]!, collectedAt: at, scope: scope, now: now)
                            return (test, nil)
                        } catch { return (test, error) }
                    }
                }
                var all: [String: (any Error)?] = [:]
                for await (test, error) in group { all[test] = error }
                return all
            }
            #expect(outcomes.count == tests.count)
            for (test, error) in outcomes {
                if test == "ALT" {
                    #expect(error as? StoreError == .duplicate(field: "test", value: "ALT at day_7"))
                } else {
                    #expect(error == nil, "\(test): \(String(describing: error))")
                }
            }
            let labs = try await safety.labs(participantID: p.id, scope: scope)
            #expect(Set(labs.map(\.test)) == Set(tests))
            #expect(labs.first { $0.test == "ALT" }?.value == 50)
            let after = try await (store.database as! any SQLDatabase).raw("SELECT COUNT(*) AS n FROM audit_events").first()!.decode(column: "n", as: Int.self)
            #expect(after == before + tests.count - 1)
            #expect(try await AuditChain.verify(on: store.database).isIntact)
        }
    }
}

@Suite struct ParticipantFileCacheTests {
    /// The file is kept between reads, but any write to it, from this process or another, is seen by the next read.
    @Test(arguments: TestDatabase.available)
    func everyWriteToTheFileIsSeenByTheNextRead(database: TestDatabase) async throws {
        try await database.withStore { store in
            let (_, scope, p) = try await safetyTrial(store)
            let screening = FluentScreeningRepository(store: store)
            let forms = FluentFormRecordRepository(store: store)
            #expect(try await screening.file(participantID: p.id, scope: scope).values["demographics.sex"] == "M")
            _ = try await forms.save(
                participantID: p.id, visit: "screening", form: "demographics",
                values: ["screening_date": "2026-03-01", "birth_date": "1980-01-01", "sex": "F"], reason: "transcription error", scope: scope, now: now)
            #expect(try await screening.file(participantID: p.id, scope: scope).values["demographics.sex"] == "F")
            _ = try await screening.recordConsent(participantID: p.id, formVersion: "1", signedAt: DateParsing.instant("2026-03-02T09:00")!, scope: scope, now: now)
            #expect(try await screening.file(participantID: p.id, scope: scope).consents.count == 1)
            _ = try await FluentParticipantRepository(store: store).updateStatus(id: p.id, status: .withdrawn, reason: "moved away", scope: scope, now: now)
            #expect(try await screening.file(participantID: p.id, scope: scope).participant.status == .withdrawn)
            // Another process: changes the row and raises the revision, as every write does.
            let sql = store.database as! any SQLDatabase
            try await sql.raw("UPDATE participants SET status = 'screening', revision = revision + 1 WHERE id = \(bind: p.id)").run()
            #expect(try await screening.file(participantID: p.id, scope: scope).participant.status == .screening)
            // A deleted participant is gone at once, cached or not.
            var investigator = scope
            investigator.role = .investigator
            try await FluentParticipantRepository(store: store).delete(id: p.id, reason: "entered twice", scope: investigator, now: now)
            await #expect(throws: StoreError.notFound(entity: "participant", id: p.id.uuidString)) {
                try await screening.file(participantID: p.id, scope: scope)
            }
        }
    }
}

extension ParticipantFileCacheTests {
    /// Another process moves the screening date (raising the revision) after the file was cached: the next form save
    /// checks the transplant date against the new screening date.
    @Test(arguments: TestDatabase.available)
    func aFormSaveChecksAgainstWhatIsCommittedNotWhatWasCached(database: TestDatabase) async throws {
        try await database.withStore { store in
            let (_, scope, p) = try await safetyTrial(store)
            let screening = FluentScreeningRepository(store: store)
            #expect(try await screening.file(participantID: p.id, scope: scope).values["demographics.screening_date"] == "2026-03-01")
            try await moveScreeningDateByHand(of: p.id, on: store.database as! any SQLDatabase)
            await #expect(throws: StoreError.self) {
                try await FluentFormRecordRepository(store: store).save(
                    participantID: p.id, visit: "transplant", form: "transplant", values: ["transplant_date": "2026-03-10", "donor": "deceased"],
                    reason: nil, scope: scope, now: now)
            }
            #expect(try await screening.file(participantID: p.id, scope: scope).values["demographics.screening_date"] == "2026-03-20")
        }
    }

    /// Requests that miss the cache together (a burst of saves for one participant) share one read; a read that
    /// fails is not kept, so the next request reads again.
    @Test func concurrentMissesShareOneRead() async throws {
        try await TestDatabase.sqlite.withStore { store in
            let (_, scope, p) = try await safetyTrial(store)
            let file = try await FluentScreeningRepository.cachedFileAndRevision(participantID: p.id, scope: scope, on: store.database).file
            let cache = ParticipantFileCache()
            let reads = Counter()
            let load: @Sendable () async throws -> ParticipantFile = {
                await reads.add()
                try await Task.sleep(for: .milliseconds(50))
                return file
            }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for _ in 0..<20 { group.addTask { _ = try await cache.file(p.id, revision: 7, studyHash: "h", load: load) } }
                try await group.waitForAll()
            }
            #expect(await reads.value == 1)
            #expect(cache.get(p.id, revision: 7, studyHash: "h") != nil)
            #expect(cache.get(p.id, revision: 8, studyHash: "h") == nil)
            await #expect(throws: StoreError.self) {
                try await cache.file(p.id, revision: 8, studyHash: "h") { throw StoreError.notFound(entity: "participant", id: "x") }
            }
            _ = try await cache.file(p.id, revision: 8, studyHash: "h", load: load)
            #expect(await reads.value == 2)
        }
    }

    /// Writes for a participant with nothing kept share one read of its revision and file; should that read fail (it
    /// was made for a user who may not see the participant), a write waiting on it reads for itself.
    @Test func concurrentWritesShareOneStateRead() async throws {
        try await TestDatabase.sqlite.withStore { store in
            let (_, scope, p) = try await safetyTrial(store)
            let state = try await FluentScreeningRepository.cachedFileState(participantID: p.id, scope: scope, on: store.database)
            let cache = ParticipantFileCache()
            let reads = Counter()
            let read: @Sendable () async throws -> ParticipantFileCache.State = {
                await reads.add()
                try await Task.sleep(for: .milliseconds(50))
                return state
            }
            let revisions = try await withThrowingTaskGroup(of: Int64.self) { group in
                for _ in 0..<20 { group.addTask { try await cache.latest(p.id, read: read).revision } }
                return try await group.reduce(into: [Int64]()) { $0.append($1) }
            }
            #expect(await reads.value == 1)
            #expect(revisions == Array(repeating: state.revision, count: 20))

            let other = UUID(), started = Counter(), own = Counter()
            let failing = Task {
                try await cache.latest(other) {
                    await started.add()
                    try await Task.sleep(for: .milliseconds(300))
                    throw StoreError.notFound(entity: "participant", id: other.uuidString)
                }
            }
            while await started.value == 0 { await Task.yield() }
            let second = try await cache.latest(other) {
                await own.add()
                return state
            }
            #expect(second.revision == state.revision)
            #expect(await own.value == 1)
            await #expect(throws: StoreError.notFound(entity: "participant", id: other.uuidString)) { try await failing.value }
            // Nothing of the failed read stays behind: the next write reads afresh.
            _ = try await cache.latest(other, read: read)
            #expect(await reads.value == 2)
        }
    }

    /// A file read before the write stands in for the one inside only at the same revision and study version.
    @Test(arguments: TestDatabase.available)
    func aFileReadBeforeTheWriteIsUsedOnlyIfNothingChanged(database: TestDatabase) async throws {
        try await database.withStore { store in
            let (_, scope, p) = try await safetyTrial(store)
            let before = try await FluentScreeningRepository.cachedFileAndRevision(participantID: p.id, scope: scope, on: store.database)
            let study = before.file.study
            #expect(ParticipantRevision.stillCurrent(before, revision: before.revision, study: study) != nil)
            #expect(ParticipantRevision.stillCurrent(before, revision: before.revision + 1, study: study) == nil)
            var amended = study
            amended.version += 1
            #expect(ParticipantRevision.stillCurrent(before, revision: before.revision, study: amended) == nil)
            #expect(ParticipantRevision.stillCurrent(nil, revision: before.revision, study: study) == nil)
        }
    }
}

@Suite struct AdverseEventStoreTests {
    @Test(arguments: TestDatabase.available)
    func seriousEventsRunAClockAndGradesMustExistForTheTerm(database: TestDatabase) async throws {
        try await database.withStore { store in
            let (safety, scope, p) = try await safetyTrial(store)
            let onset = DateParsing.instant("2026-03-09T10:00")!
            // Anaphylaxis has no grade 1 or 2 in CTCAE v4.03.
            await #expect(throws: StoreError.invalid(field: "grade", rule: "Anaphylaxis has grades 3, 4, 5 in CTCAE v4.03")) {
                try await safety.recordAdverseEvent(
                    participantID: p.id, input: AdverseEventInput(meddra: "10002218", grade: 2, onsetAt: onset, attribution: .possible, expected: false, actionTaken: "none", outcome: "recovered"),
                    scope: scope, now: now)
            }
            await #expect(throws: StoreError.invalid(field: "awareAt", rule: "a serious event needs the time the site learned of it")) {
                try await safety.recordAdverseEvent(
                    participantID: p.id, input: AdverseEventInput(meddra: "10002218", grade: 3, onsetAt: onset, seriousness: [.hospitalization], attribution: .probable, expected: false, actionTaken: "infusion stopped", outcome: "recovering"),
                    scope: scope, now: now)
            }
            let event = try await safety.recordAdverseEvent(
                participantID: p.id,
                input: AdverseEventInput(
                    meddra: "10002218", grade: 3, onsetAt: onset, seriousness: [.hospitalization], attribution: .probable, expected: false,
                    actionTaken: "infusion stopped", outcome: "recovering", awareAt: DateParsing.instant("2026-03-09T10:30")!),
                scope: scope, now: now)
            #expect(event.gradeDefinition.hasPrefix("Symptomatic bronchospasm"))
            #expect(event.clock?.dueAt == DateParsing.instant("2026-03-10T10:30")!)
            // At noon on the 10th the 24 hours have run out.
            #expect(event.clock?.isOverdue(now: now) == true)
            let reported = try await safety.reportToSponsor(eventID: event.id, reportedAt: DateParsing.instant("2026-03-10T09:00")!, scope: scope, now: now)
            #expect(reported.clock?.isOverdue(now: now) == false)
            #expect(try await safety.adverseEvents(participantID: p.id, scope: scope).count == 1)
        }
    }

    @Test(arguments: TestDatabase.available)
    func theFullCatalogueImportsAndReplaces(database: TestDatabase) async throws {
        guard let csv = try? String(contentsOf: Reference.root.appendingPathComponent("ctcae/CTCAE_4.03.csv"), encoding: .utf8) else {
            print("SKIPPED: ../shared/reference/ctcae/CTCAE_4.03.csv is not beside this checkout")
            return
        }
        try await database.withStore { store in
            let (safety, _, _) = try await safetyTrial(store)
            #expect(try await safety.searchTerms("", limit: 1000).count == 13)
            let count = try await safety.importTerms(try CTCAECatalogue.parse(csv, version: "4.03"), version: "4.03", actor: "dm", now: now)
            #expect(count == 790)
            #expect(try await safety.searchTerms("nausea").map(\.term) == ["Nausea"])
            if let v5 = try? String(contentsOf: Reference.root.appendingPathComponent("ctcae/CTCAE_v5.0.csv"), encoding: .utf8) {
                #expect(try await safety.importTerms(try CTCAECatalogue.parse(v5, version: "5.0"), version: "5.0", actor: "dm", now: now) == 837)
                #expect(try await safety.searchTerms("nausea", version: "5.0").count == 1)
                // Importing v5.0 leaves v4.03 as it was.
                #expect(try await safety.searchTerms("", version: "4.03", limit: 1000).count == 790)
            }
        }
    }
}

private actor Counter {
    var value = 0
    func add() { value += 1 }
}

extension GroupedLabSaveTests {
    /// A lab save checks the participant as the write reads it, not as its cached file last saw it: a screening date
    /// moved by another process after the file was cached refuses a result dated before it, and a participant deleted
    /// meanwhile refuses the save, while a save for another participant in the same batch goes in.
    @Test(arguments: TestDatabase.available)
    func theChecksHoldAtTheCommitNotAtTheCachedRead(database: TestDatabase) async throws {
        try await database.withStore { store in
            let (safety, scope, p) = try await safetyTrial(store)
            let other = try await FluentParticipantRepository(store: store).create(siteID: p.siteID, screeningNumber: "P-002", scope: scope, now: now)
            let at = DateParsing.instant("2026-03-09T08:00")!
            for id in [p.id, other.id] {
                _ = try await safety.recordLab(participantID: id, visit: "day_7", test: "ALT", value: 50, unit: "U/L", collectedAt: at, scope: scope, now: now)
            }
            let sql = store.database as! any SQLDatabase
            try await moveScreeningDateByHand(of: p.id, on: sql)
            await #expect(throws: StoreError.invalid(field: "collectedAt", rule: "cannot be before Screening (2026-03-20)")) {
                try await safety.recordLab(participantID: p.id, visit: "day_7", test: "AST", value: 50, unit: "U/L", collectedAt: at, scope: scope, now: now)
            }
            // Deleted by hand, without raising the revision: the write still sees it gone.
            try await sql.raw("UPDATE participants SET deleted_at = \(bind: now) WHERE id = \(bind: p.id)").run()
            let refused = Task {
                try await safety.recordLab(participantID: p.id, visit: "day_14", test: "ALT", value: 50, unit: "U/L", collectedAt: at, scope: scope, now: now)
            }
            let saved = Task {
                try await safety.recordLab(participantID: other.id, visit: "day_7", test: "AST", value: 45, unit: "U/L", collectedAt: at, scope: scope, now: now)
            }
            await #expect(throws: StoreError.notFound(entity: "participant", id: p.id.uuidString)) { try await refused.value }
            #expect(try await saved.value.test == "AST")
            let stored = try await sql.raw("SELECT COUNT(*) AS n FROM lab_results WHERE participant_id = \(bind: p.id)").first()!.decode(column: "n", as: Int.self)
            #expect(stored == 1)
            #expect(try await AuditChain.verify(on: store.database).isIntact)
        }
    }

    /// Values bound straight to SQLite are bound exactly as SQLiteKit's encoder binds them, nil included.
    @Test func valuesBindAsTheDriversEncoderBindsThem() throws {
        let encoder = SQLiteDataEncoder()
        let id = UUID()
        let day = DateParsing.instant("2026-03-09T08:00")!
        let values: [any Encodable & Sendable] = [
            "text", "", id, 2.5, -0.0, day, 42, Int64(1) << 40, true, false,
            String?.none, String?("x"), UUID?.none, UUID?(id), Double?.none, Double?(1.25), Date?.none, Date?(day), Int?.none, Int?(7),
            Int64?.none, Bool?.none, Bool?(true), [1, 2],
        ]
        for value in values {
            #expect(try LiteStatement.value(value) == encoder.encode(value), "\(value)")
        }
    }
}

@Suite struct LabVisitCompletionTests {
    /// Labs entered through the API (not a form) complete their visit in the schedule, dated by the sample.
    @Test(arguments: TestDatabase.available)
    func aLabResultCompletesItsVisit(database: TestDatabase) async throws {
        try await database.withStore { store in
            let (safety, scope, p) = try await safetyTrial(store)
            _ = try await FluentFormRecordRepository(store: store).save(
                participantID: p.id, visit: "transplant", form: "transplant", values: ["transplant_date": "2026-03-03", "donor": "deceased"],
                reason: nil, scope: scope, now: now)
            let screening = FluentScreeningRepository(store: store)
            #expect(try await screening.schedule(participantID: p.id, scope: scope, now: now).first { $0.visit == "day_7" }?.state == .due)
            let collected = DateParsing.instant("2026-03-10T08:00")!
            _ = try await safety.recordLab(participantID: p.id, visit: "day_7", test: "ALT", value: 55, unit: "U/L", collectedAt: collected, scope: scope, now: now)
            let day7 = try #require(try await screening.schedule(participantID: p.id, scope: scope, now: now).first { $0.visit == "day_7" })
            #expect(day7.state == .done)
            #expect(day7.doneAt == collected)
        }
    }
}
