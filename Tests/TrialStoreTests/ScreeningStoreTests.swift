import FluentKit
import FluentSQL
import Foundation
import TestSupport
import Testing
import TrialDomain
import TrialStandards
@testable import TrialStore

private let now = DateParsing.instant("2026-03-10T12:00")!

/// The built-in study, seeded, with a generated list and one site scope.
private struct Trial {
    let store: Store
    let scope: AccessScope
    var participants: FluentParticipantRepository { FluentParticipantRepository(store: store) }
    var forms: FluentFormRecordRepository { FluentFormRecordRepository(store: store) }
    var screening: FluentScreeningRepository { FluentScreeningRepository(store: store) }

    static func make(_ store: Store, generateList: Bool = true) async throws -> Trial {
        _ = try await FluentStudyRepository(store: store).seedIfEmpty(try StudyFile.builtIn(), now: now)
        let site = try #require(try await FluentAccountRepository(store: store).site(code: "SYSU3"))
        let trial = Trial(store: store, scope: AccessScope(actor: "ana", siteIDs: [site.id]))
        if generateList { _ = try await trial.screening.generateList(seedHex: String(repeating: "ab", count: 32), actor: "stat", now: now) }
        return trial
    }

    /// Screening data of an eligible patient (worked from PROTOCOL.md's criteria), transplanted two days ago.
    func screened(_ number: String, meldNa: String = "32", overrides: [String: [String: String]] = [:]) async throws -> Participant {
        let site = scope.siteIDs.first!
        let p = try await participants.create(siteID: site, screeningNumber: number, scope: scope, now: now)
        var data: [String: [String: String]] = [
            "demographics": ["screening_date": "2026-03-01", "birth_date": "1980-05-01", "sex": "M"],
            "aclf": ["chronic_liver_disease": "yes", "ascites": "yes", "ascites_date": "2026-02-25", "encephalopathy": "no", "needs_transplant": "yes"],
            "history": ["malignancy": "no", "active_infection": "no", "combined_transplant": "no", "retransplant": "no", "ebv": "positive", "hiv": "negative", "hcv": "negative"],
            "consent": ["obtained": "yes", "signed_at": "2026-03-01T09:00", "form_version": "1"],
            "labs": ["collected_at": "2026-03-01T08:00", "total_bilirubin": "250", "inr": "2.0", "pt_activity": "30", "meld_na": meldNa],
        ]
        for (form, values) in overrides { data[form, default: [:]].merge(values) { $1 } }
        for (form, values) in data.sorted(by: { $0.key < $1.key }) {
            _ = try await forms.save(participantID: p.id, visit: "screening", form: form, values: values, reason: nil, scope: scope, now: now)
        }
        _ = try await forms.save(
            participantID: p.id, visit: "transplant", form: "transplant", values: ["transplant_date": "2026-03-08", "donor": "deceased"], reason: nil,
            scope: scope, now: now)
        return p
    }

    func ready(_ number: String, meldNa: String = "32") async throws -> Participant {
        let p = try await screened(number, meldNa: meldNa)
        // Consent is recorded first: the consent criterion reads the consent record.
        _ = try await screening.recordConsent(participantID: p.id, formVersion: "1", signedAt: DateParsing.instant("2026-03-01T09:00")!, scope: scope, now: now)
        _ = try await screening.decideEligibility(participantID: p.id, scope: scope, now: now)
        return p
    }
}

@Suite struct ScreeningFlowTests {
    @Test(arguments: TestDatabase.available)
    func screeningToInfusion(database: TestDatabase) async throws {
        try await database.withStore { store in
            let trial = try await Trial.make(store)
            let p = try await trial.ready("P-001")
            #expect(try await trial.participants.find(id: p.id, scope: trial.scope).status == .consented)
            let allocation = try await trial.screening.allocate(participantID: p.id, scope: trial.scope, now: now)
            #expect(allocation.stratum == "SYSU3|meld_na≥30")
            #expect(allocation.position == 1)
            #expect(try await trial.participants.find(id: p.id, scope: trial.scope).status == .randomized)
            // Asking again returns the same allocation.
            #expect(try await trial.screening.allocate(participantID: p.id, scope: trial.scope, now: now.addingTimeInterval(60)) == allocation)

            let dose = DoseRecord(
                dose: "infusion", given: true, startedAt: now.addingTimeInterval(3600), endedAt: now.addingTimeInterval(5400), lot: "EV-2026-001", expiry: "2026-06-30",
                recordedBy: "", recordedAt: now)
            if allocation.arm == "control" {
                // The control arm's plan has no doses; the answer does not say which arm the participant is in.
                await #expect(throws: StoreError.invalid(field: "dose", rule: "no such dose for this participant: 'infusion'")) {
                    try await trial.screening.recordDose(participantID: p.id, record: dose, scope: trial.scope, now: now.addingTimeInterval(7200))
                }
            } else {
                let saved = try await trial.screening.recordDose(participantID: p.id, record: dose, scope: trial.scope, now: now.addingTimeInterval(7200))
                // 1×10^10 particles, a fixed dose.
                #expect(saved.amount == 1e10)
                #expect(saved.unit == "particles")
                #expect(saved.recordedBy == "ana")
                await #expect(throws: StoreError.duplicate(field: "dose", value: "infusion")) {
                    try await trial.screening.recordDose(participantID: p.id, record: dose, scope: trial.scope, now: now.addingTimeInterval(7200))
                }
            }
            let file = try await trial.screening.file(participantID: p.id, scope: trial.scope)
            // Time zero: the infusion start, or for control the allocation (PROTOCOL.md).
            #expect(file.anchors["time_zero"] == (allocation.arm == "control" ? allocation.allocatedAt : dose.startedAt))
            let schedule = try await trial.screening.schedule(participantID: p.id, scope: trial.scope, now: now.addingTimeInterval(7200))
            #expect(schedule.first { $0.visit == "screening" }?.state == .done)
            #expect(schedule.first { $0.visit == "day_7" }?.state == .upcoming)
            #expect(try await AuditChain.verify(on: store.database).isIntact)
        }
    }

    /// The file read straight from the tables holds what each step recorded.
    @Test(arguments: TestDatabase.available)
    func theFileHoldsWhatEachStepRecorded(database: TestDatabase) async throws {
        try await database.withStore { store in
            let trial = try await Trial.make(store)
            var infused: (Participant, Allocation)?
            for i in 1...8 where infused == nil {
                let p = try await trial.ready("P-\(i)")
                let allocation = try await trial.screening.allocate(participantID: p.id, scope: trial.scope, now: now)
                if allocation.arm == "msc_ev" { infused = (p, allocation) }
            }
            let (p, allocation) = try #require(infused)
            let input = DoseRecord(
                dose: "infusion", given: true, startedAt: now.addingTimeInterval(600), endedAt: now.addingTimeInterval(2400), lot: "EV-7", expiry: "2026-04-01",
                recordedBy: "", recordedAt: now)
            _ = try await trial.screening.recordDose(participantID: p.id, record: input, scope: trial.scope, now: now.addingTimeInterval(3000))
            let file = try await FluentScreeningRepository.file(participantID: p.id, scope: trial.scope, on: store.database)
            #expect(file.participant.screeningNumber == p.screeningNumber)
            #expect(file.participant.status == .randomized)
            #expect(file.siteCode == "SYSU3")
            #expect(file.lastDecision == "eligible")
            #expect(file.consents.map(\.formVersion) == ["1"])
            #expect(file.consents.first?.signedAt == DateParsing.instant("2026-03-01T09:00"))
            #expect(file.validConsent != nil)
            #expect(file.allocation == allocation)
            #expect(file.doses.map(\.dose) == ["infusion"])
            #expect(file.doses.first?.lot == "EV-7")
            #expect(file.doses.first?.expiry == "2026-04-01")
            #expect(file.doses.first?.startedAt == input.startedAt)
            #expect(file.doses.first?.deviation == false)
            #expect(file.eligibilityValues["labs.meld_na"] == "32")
            #expect(file.values["transplant.donor"] == "deceased")
            #expect(file.visitDates["transplant"] == DateParsing.day("2026-03-08"))
            // Screening happened on its screening date, not on the earlier day ascites was found (2026-02-25).
            #expect(file.visitDates["screening"] == DateParsing.day("2026-03-01"))
            // Another site's scope does not see it.
            await #expect(throws: StoreError.notFound(entity: "participant", id: p.id.uuidString)) {
                try await FluentScreeningRepository.file(participantID: p.id, scope: AccessScope(actor: "x", siteIDs: [UUID()]), on: store.database)
            }
        }
    }

    /// Allocations asked for together are made in the order given, sharing commits; one that is refused fails alone.
    @Test(arguments: TestDatabase.available)
    func allocationsInOrderTakeSlotsInThatOrder(database: TestDatabase) async throws {
        try await database.withStore { store in
            let trial = try await Trial.make(store)
            var ids: [UUID] = []
            for i in 1...6 { ids.append(try await trial.ready("P-\(i)").id) }
            let undecided = try await trial.screened("P-7")
            // Asked in reverse, with the one not yet decided (nor consented) in the middle.
            let order = Array(ids.reversed().prefix(3)) + [undecided.id] + Array(ids.reversed().dropFirst(3))
            let results = try await trial.screening.allocateInOrder(order.map { ($0, now) }, scope: trial.scope)
            #expect(results.count == 7)
            if case .failure(let error) = results[3] {
                #expect(error as? StoreError == .invalid(field: "eligibility", rule: "an investigator must confirm eligibility before allocation"))
            } else {
                Issue.record("allocated without a decision")
            }
            // All in one stratum (MELD-Na 32): the stored positions follow the order asked.
            let stored = try await (store.database as! any SQLDatabase).raw(
                "SELECT participant_id FROM randomization_slots WHERE participant_id IS NOT NULL ORDER BY position"
            ).all().map { try $0.decode(column: "participant_id", as: UUID.self) }
            #expect(stored == order.filter { $0 != undecided.id })
            #expect(try await trial.participants.find(id: undecided.id, scope: trial.scope).status == .screening)
            #expect(try await AuditChain.verify(on: store.database).isIntact)
        }
    }

    /// The next free slot is found through the index of unallocated slots, in order, with no sort of every free slot
    /// (SQLite refuses a statement whose INDEXED BY index cannot serve it).
    @Test func theNextFreeSlotIsFoundThroughItsIndex() async throws {
        try await TestDatabase.sqlite.withStore { store in
            _ = try await Trial.make(store)
            let plan = try await (store.database as! any SQLDatabase).raw(
                "EXPLAIN QUERY PLAN " + FluentScreeningRepository.nextFreeSlot(list: UUID(), stratum: "x", postgres: false)).all().map { try $0.decode(column: "detail", as: String.self) }
            #expect(!plan.contains { $0.contains("TEMP B-TREE") }, "plan: \(plan)")
        }
    }

    @Test(arguments: TestDatabase.available)
    func theControlArmGetsNoDoseAndTheMSCEVArmDoes(database: TestDatabase) async throws {
        try await database.withStore { store in
            let trial = try await Trial.make(store)
            var arms: Set<String> = []
            for i in 1...6 {
                let p = try await trial.ready("P-\(i)")
                let allocation = try await trial.screening.allocate(participantID: p.id, scope: trial.scope, now: now)
                arms.insert(allocation.arm)
                let plan = try await trial.screening.doses(participantID: p.id, scope: trial.scope, now: now)
                #expect(plan.map(\.dose.code) == (allocation.arm == "control" ? [] : ["infusion"]))
                #expect(plan.first?.state == (allocation.arm == "control" ? nil : .due))
            }
            // Six allocations in blocks of 2 and 4 always reach both arms.
            #expect(arms == ["msc_ev", "control"])
        }
    }

    /// A dose the day after its window is kept only with the deviation's reason, and flagged as a deviation; a skipped
    /// dose needs its reason; times in the future are refused.
    @Test(arguments: TestDatabase.available)
    func dosesOutsideTheirWindowAreDeviationsAndSkippedDosesHaveReasons(database: TestDatabase) async throws {
        try await database.withStore { store in
            let trial = try await Trial.make(store)
            var mscEV: Participant?
            for i in 1...8 where mscEV == nil {
                let p = try await trial.ready("D-\(i)")
                if try await trial.screening.allocate(participantID: p.id, scope: trial.scope, now: now).arm == "msc_ev" { mscEV = p }
            }
            let p = try #require(mscEV)
            let late = DoseRecord(dose: "infusion", given: true, startedAt: now.addingTimeInterval(86_400), lot: "L1", recordedBy: "", recordedAt: now)
            let later = now.addingTimeInterval(2 * 86_400)
            await #expect {
                try await trial.screening.recordDose(participantID: p.id, record: late, scope: trial.scope, now: later)
            } throws: { error in
                guard case StoreError.invalid(field: "deviationReason", let rule) = error else { return false }
                return rule.contains("a dose outside its window needs the reason for the deviation")
            }
            let future = DoseRecord(dose: "infusion", given: true, startedAt: later.addingTimeInterval(3600), lot: "L1", recordedBy: "", recordedAt: now)
            await #expect(throws: StoreError.invalid(field: "startedAt", rule: "must not be in the future")) {
                try await trial.screening.recordDose(participantID: p.id, record: future, scope: trial.scope, now: later)
            }
            await #expect(throws: StoreError.invalid(field: "reason", rule: "a dose not given is recorded with the reason")) {
                try await trial.screening.recordDose(participantID: p.id, record: DoseRecord(dose: "infusion", given: false, recordedBy: "", recordedAt: now), scope: trial.scope, now: later)
            }
            var excused = late
            excused.deviationReason = "pump failure on the day"
            #expect(try await trial.screening.deviations(scope: trial.scope).isEmpty)
            let saved = try await trial.screening.recordDose(participantID: p.id, record: excused, scope: trial.scope, now: later)
            #expect(saved.deviation)
            // Listed as a protocol deviation, with its reason.
            let deviations = try await trial.screening.deviations(scope: trial.scope)
            #expect(deviations.map(\.dose) == ["infusion"])
            #expect(deviations.first?.reason == "pump failure on the day")
            #expect(deviations.first?.screeningNumber == p.screeningNumber)
            let plan = try await trial.screening.doses(participantID: p.id, scope: trial.scope, now: later)
            #expect(plan.first?.state == .given)
            #expect(try await AuditChain.verify(on: store.database).isIntact)
        }
    }

    @Test(arguments: TestDatabase.available)
    func eligibilityCannotBeConfirmedOnMissingDataAndFailuresAreLogged(database: TestDatabase) async throws {
        try await database.withStore { store in
            let trial = try await Trial.make(store)
            let site = trial.scope.siteIDs.first!
            let incomplete = try await trial.participants.create(siteID: site, screeningNumber: "P-001", scope: trial.scope, now: now)
            await #expect {
                try await trial.screening.decideEligibility(participantID: incomplete.id, scope: trial.scope, now: now)
            } throws: { error in
                guard case StoreError.invalid(field: "eligibility", let rule) = error else { return false }
                return rule.hasPrefix("cannot be confirmed while 13 criteria cannot be told")
            }
            let failing = try await trial.screened("P-002", overrides: ["history": ["hiv": "positive"], "labs": ["total_bilirubin": "100"]])
            let assessment = try await trial.screening.decideEligibility(participantID: failing.id, scope: trial.scope, now: now)
            #expect(assessment.outcome == .notMet)
            #expect(try await trial.participants.find(id: failing.id, scope: trial.scope).status == .screenFailed)
            await #expect(throws: StoreError.invalid(field: "eligibility", rule: "an investigator must confirm eligibility before allocation")) {
                try await trial.screening.allocate(participantID: failing.id, scope: trial.scope, now: now)
            }
            _ = try await trial.ready("P-003")
            let randomized = try await trial.ready("P-004")
            _ = try await trial.screening.allocate(participantID: randomized.id, scope: trial.scope, now: now)
            let log = try await trial.screening.screeningLog(scope: trial.scope)
            #expect(log.screened == 4)
            #expect(log.eligible == 2)
            #expect(log.screenFailed == 1)
            #expect(log.failures == [ScreeningLog.Failure(screeningNumber: "P-002", criteria: ["jaundice", "hiv_or_hcv"])])
            #expect(log.consented == 2)
            #expect(log.randomized == 1)
        }
    }

    @Test(arguments: TestDatabase.available)
    func impossibleSequencesAreRefused(database: TestDatabase) async throws {
        try await database.withStore { store in
            let trial = try await Trial.make(store)
            let p = try await trial.ready("P-001")
            // A transplant before screening.
            await #expect(throws: StoreError.invalid(field: "transplant_date", rule: "Liver transplantation (day 0) cannot be before Screening (2026-03-01)")) {
                try await trial.forms.save(participantID: p.id, visit: "transplant", form: "transplant", values: ["transplant_date": "2026-02-20", "donor": "living"], reason: "x", scope: trial.scope, now: now)
            }
            // A follow-up visit dated before screening.
            await #expect(throws: StoreError.invalid(field: "collected_at", rule: "a day_7 date cannot be before Screening (2026-03-01)")) {
                try await trial.forms.save(participantID: p.id, visit: "day_7", form: "labs", values: ["collected_at": "2026-02-27T08:00"], reason: nil, scope: trial.scope, now: now)
            }
            let allocation = try await trial.screening.allocate(participantID: p.id, scope: trial.scope, now: now)
            // Consent dated after the allocation.
            await #expect(throws: StoreError.invalid(field: "signedAt", rule: "consent cannot be dated after the allocation (\(AuditEntry.timestamp(allocation.allocatedAt)))")) {
                try await trial.screening.recordConsent(participantID: p.id, formVersion: "1", signedAt: now.addingTimeInterval(60), scope: trial.scope, now: now.addingTimeInterval(120))
            }
            // A dose before the allocation.
            if allocation.arm == "msc_ev" {
                let early = DoseRecord(dose: "infusion", given: true, startedAt: DateParsing.instant("2026-03-07T10:00")!, recordedBy: "", recordedAt: now)
                await #expect(throws: StoreError.self) {
                    try await trial.screening.recordDose(participantID: p.id, record: early, scope: trial.scope, now: now)
                }
                let expired = DoseRecord(dose: "infusion", given: true, startedAt: now, lot: "L1", expiry: "2026-03-09", recordedBy: "", recordedAt: now)
                await #expect(throws: StoreError.invalid(field: "expiry", rule: "the product had expired when the dose started")) {
                    try await trial.screening.recordDose(participantID: p.id, record: expired, scope: trial.scope, now: now.addingTimeInterval(120))
                }
            }
            #expect(try await trial.screening.file(participantID: p.id, scope: trial.scope).doses.isEmpty)
        }
    }

    @Test(arguments: TestDatabase.available)
    func allocationNeedsAListConsentAndTheWindow(database: TestDatabase) async throws {
        try await database.withStore { store in
            let trial = try await Trial.make(store, generateList: false)
            let p = try await trial.ready("P-001")
            await #expect(throws: StoreError.invalid(field: "randomization", rule: "the allocation list has not been generated; the statistician generates it when the study goes live")) {
                try await trial.screening.allocate(participantID: p.id, scope: trial.scope, now: now)
            }
            _ = try await trial.screening.generateList(seedHex: nil, actor: "stat", now: now)
            await #expect(throws: StoreError.duplicate(field: "randomization list", value: "MSC-EV-ACLF-LT")) {
                try await trial.screening.generateList(seedHex: nil, actor: "stat", now: now)
            }
            // Transplant on 8 March: allocation from day +1 to day +7, so 16 March is too late.
            await #expect(throws: StoreError.invalid(field: "allocation", rule: "must happen from transplant 1d to 7d (2026-03-09 to 2026-03-15)")) {
                try await trial.screening.allocate(participantID: p.id, scope: trial.scope, now: DateParsing.instant("2026-03-16T09:00")!)
            }
            try await trial.screening.withdrawConsent(
                participantID: p.id, withdrawnAt: now, withdrawal: .noFurtherData, reason: "patient's wish", scope: trial.scope, now: now)
            await #expect(throws: StoreError.self) {
                try await trial.screening.allocate(participantID: p.id, scope: trial.scope, now: now)
            }
            #expect(try await trial.participants.find(id: p.id, scope: trial.scope).status == .withdrawn)
        }
    }
}

@Suite struct AllocationConcurrencyTests {
    /// 64 concurrent requests for 64 participants take 64 distinct positions; repeats return the same allocation.
    @Test(arguments: TestDatabase.available)
    func sixtyFourAtOnce(database: TestDatabase) async throws {
        try await database.withStore { store in
            let trial = try await Trial.make(store)
            var ids: [UUID] = []
            for i in 1...64 { ids.append(try await trial.ready(String(format: "P-%03d", i), meldNa: i % 2 == 0 ? "25" : "35").id) }
            let results = try await withThrowingTaskGroup(of: Allocation.self) { group in
                for id in ids + ids.prefix(16) {
                    group.addTask { try await trial.screening.allocate(participantID: id, scope: trial.scope, now: now) }
                }
                var all: [Allocation] = []
                for try await allocation in group { all.append(allocation) }
                return all
            }
            let byParticipant = Dictionary(grouping: results, by: \.participantID)
            #expect(byParticipant.count == 64)
            for (_, answers) in byParticipant { #expect(Set(answers.map(\.position)).count == 1) }
            let positions = Set(results.map { "\($0.stratum)#\($0.position)" })
            #expect(positions.count == 64)
            // Each stratum used its first 32 positions, in order, with no gaps.
            for stratum in ["SYSU3|meld_na<30", "SYSU3|meld_na≥30"] {
                #expect(Set(results.filter { $0.stratum == stratum }.map(\.position)) == Set(1...32))
            }
            let used = try await RandomizationSlotModel.query(on: store.database).filter(\.$participantID != nil).count()
            #expect(used == 64)
            #expect(try await AuditChain.verify(on: store.database).isIntact)
        }
    }
}

@Suite struct MinimizationStoreTests {
    /// With minimization as the study's setting, concurrent allocations each see the ones before them.
    @Test(arguments: TestDatabase.available)
    func concurrentAllocationsByMinimization(database: TestDatabase) async throws {
        try await database.withStore { store in
            var study = try StudyFile.builtIn()
            study.randomization.method = "minimization"
            study.randomization.minimizationProbability = 1
            _ = try await FluentStudyRepository(store: store).seedIfEmpty(study, now: now)
            let trial = try await Trial.make(store, generateList: false)
            _ = try await trial.screening.generateList(seedHex: String(repeating: "cd", count: 32), actor: "stat", now: now)
            var ids: [UUID] = []
            for i in 1...12 { ids.append(try await trial.ready("M-\(i)", meldNa: i % 3 == 0 ? "35" : "25").id) }
            let results = try await withThrowingTaskGroup(of: Allocation.self) { group in
                for id in ids { group.addTask { try await trial.screening.allocate(participantID: id, scope: trial.scope, now: now) } }
                var all: [Allocation] = []
                for try await a in group { all.append(a) }
                return all
            }
            let arms = Dictionary(grouping: results, by: \.arm).mapValues(\.count)
            // Always taking the least imbalancing arm keeps the site's totals within the tie-break's reach of equal.
            #expect(arms.values.reduce(0, +) == 12)
            #expect(abs(arms["msc_ev", default: 0] - arms["control", default: 0]) <= 2)
            for stratum in Set(results.map(\.stratum)) {
                let positions = results.filter { $0.stratum == stratum }.map(\.position).sorted()
                #expect(positions == Array(1...positions.count))
            }
        }
    }
}

@Suite struct PrimaryEndpointTests {
    /// Participants answered at 24 h: toxicity counted by arm, with the exact interval of Clopper & Pearson.
    @Test(arguments: TestDatabase.available)
    func countedByArmWithExactIntervals(database: TestDatabase) async throws {
        try await database.withStore { store in
            let trial = try await Trial.make(store)
            var expected: [String: (assessed: Int, toxic: Int)] = [:]
            for i in 1...6 {
                let p = try await trial.ready("E-\(i)")
                let allocation = try await trial.screening.allocate(participantID: p.id, scope: trial.scope, now: now)
                let toxic = i % 3 == 0
                _ = try await trial.forms.save(
                    participantID: p.id, visit: "safety_24h", form: "toxicity_24h",
                    values: ["assessed_at": "2026-03-11T12:00", "any_toxicity": toxic ? "yes" : "no"], reason: nil, scope: trial.scope,
                    now: now.addingTimeInterval(86_400))
                expected[allocation.arm, default: (0, 0)].assessed += 1
                if toxic { expected[allocation.arm, default: (0, 0)].toxic += 1 }
            }
            let study = try #require(try await FluentStudyRepository(store: store).current())
            let result = try #require(try await FluentCohortRepository(store: store).endpoints(scope: trial.scope, study: study, byArm: true, only: "infusion_toxicity").first)
            #expect(result.groups.map(\.arm) == [nil, "msc_ev", "control"])
            let endpoint = result.groups.dropFirst()
            for arm in endpoint {
                let e = expected[arm.arm ?? ""] ?? (0, 0)
                #expect(arm.n == e.assessed)
                #expect(arm.events == e.toxic)
                let ci = ClopperPearson.interval(successes: e.toxic, trials: e.assessed)
                #expect(arm.lower == ci?.lower)
                #expect(arm.upper == ci?.upper)
            }
            #expect(result.groups[0].n == 6)
            #expect(result.groups[0].events == 2)
        }
    }
}

@Suite struct StageRandomizationTests {
    /// The built-in study with a second randomization at day 28: MSC-EV participants draw a boost or not; control
    /// participants draw too (a dummy that keeps them in control), as a double-dummy design has everyone do.
    static func twoStageStudy() throws -> StudyDefinition {
        var study = try StudyFile.builtIn()
        let infusion = try #require(study.arms[0].doses?.first)
        var boost = infusion
        boost.code = "boost"
        boost.anchor = "infusion"
        boost.target = Offset(4, .weeks)
        boost.window = VisitWindow(before: Offset(1, .days), after: Offset(3, .days))
        boost.visit = nil
        study.arms += [
            Arm(code: "msc_ev_boost", name: "MSC-EV with a boost", type: "EXPERIMENTAL", ratio: 0, interventions: ["msc_ev"], doses: [infusion, boost]),
            Arm(code: "msc_ev_single", name: "MSC-EV once", type: "EXPERIMENTAL", ratio: 0, interventions: ["msc_ev"], doses: [infusion]),
        ]
        study.randomizations = [
            StageRandomization(
                code: "day28", visit: "day_28", options: [RandomizationOption(code: "boost", ratio: 1), RandomizationOption(code: "single", ratio: 1)],
                assigns: ["msc_ev": ["boost": "msc_ev_boost", "single": "msc_ev_single"], "control": ["boost": "control", "single": "control"]],
                blockSizes: [2], stratifyBySite: true)
        ]
        return study
    }

    /// A later randomization may stratify by a factor too, read at its visit: MELD-Na 35 is the "≥ 30" level.
    @Test func aStageStratifiesByItsFactors() throws {
        var study = try Self.twoStageStudy()
        study.randomizations![0].factors = [StratificationFactor(code: "meld_na", label: "MELD-Na", expression: "labs.meld_na", cutoffs: [30])]
        #expect(StudyValidator.problems(in: study) == [])
        let stage = study.randomizations![0]
        #expect(stage.strata(study: study) == ["control|SYSU3|meld_na<30", "control|SYSU3|meld_na≥30", "msc_ev|SYSU3|meld_na<30", "msc_ev|SYSU3|meld_na≥30"])
        #expect(try stage.stratum(arm: "msc_ev", site: "SYSU3", study: study, values: ["labs.meld_na": "35"]) == "msc_ev|SYSU3|meld_na≥30")
        #expect(throws: RandomizationError.self) { try stage.stratum(arm: "msc_ev", site: "SYSU3", study: study, values: [:]) }
    }

    @Test func theTwoStageDefinitionIsValidAndItsMistakesAreNamed() throws {
        var study = try Self.twoStageStudy()
        #expect(StudyValidator.problems(in: study) == [])
        study.randomizations![0].assigns["control"] = ["boost": "control"]
        study.randomizations![0].blockSizes = [3]
        let paths = Set(StudyValidator.problems(in: study).map(\.path))
        #expect(paths.isSuperset(of: ["randomizations[day28].assigns.control", "randomizations[day28].blockSizes"]))
    }

    @Test(arguments: TestDatabase.available)
    func aSecondDrawAtItsVisitMovesTheArmAndItsDosePlan(database: TestDatabase) async throws {
        try await database.withStore { store in
            _ = try await FluentStudyRepository(store: store).seedIfEmpty(try Self.twoStageStudy(), now: now)
            let trial = try await Trial.make(store)
            _ = try await trial.screening.generateStageList(randomization: "day28", seedHex: String(repeating: "5a", count: 32), actor: "stat", now: now)
            var seen: [String: Set<String>] = [:]
            var mscCount = 0
            for i in 1...8 {
                let p = try await trial.ready("S-\(i)")
                let first = try await trial.screening.allocate(participantID: p.id, scope: trial.scope, now: now)
                // Enrolment allocates only among the arms with a ratio.
                #expect(["msc_ev", "control"].contains(first.arm))
                // Day 28 after the transplant of 2026-03-08, ±3 days: 2026-04-02 to 2026-04-08.
                await #expect {
                    try await trial.screening.allocateStage(participantID: p.id, randomization: "day28", scope: trial.scope, now: now)
                } throws: { error in
                    guard case StoreError.conflict(field: "randomization", let rule) = error else { return false }
                    return rule.contains("happens at visit day_28, from 2026-04-02")
                }
                let at = DateParsing.instant("2026-04-05T10:00")!
                let second = try await trial.screening.allocateStage(participantID: p.id, randomization: "day28", scope: trial.scope, now: at)
                #expect(second.armBefore == first.arm)
                #expect(try await trial.screening.allocateStage(participantID: p.id, randomization: "day28", scope: trial.scope, now: at) == second)
                seen[first.arm, default: []].insert(second.armAfter)
                if first.arm == "msc_ev" { mscCount += 1 }
                let file = try await trial.screening.file(participantID: p.id, scope: trial.scope)
                #expect(file.arm == second.armAfter)
                #expect(file.allocation?.arm == first.arm)
                #expect(file.dosePlan.map(\.code) == (second.armAfter == "msc_ev_boost" ? ["infusion", "boost"] : (second.armAfter == "control" ? [] : ["infusion"])))
            }
            // The dummy keeps control in control; MSC-EV participants reach both arms (blocks of 2 within the stratum).
            #expect(seen["control"].map { $0 == ["control"] } ?? true)
            // The first two MSC-EV participants fill the stratum's first block of two: one each.
            #expect(mscCount >= 2)
            #expect(seen["msc_ev"] == ["msc_ev_boost", "msc_ev_single"])
            #expect(try await AuditChain.verify(on: store.database).isIntact)
        }
    }
}

@Suite struct ReconsentTests {
    @Test(arguments: TestDatabase.available)
    func aNewConsentVersionAsksForReconsentAfterAllocation(database: TestDatabase) async throws {
        try await database.withStore { store in
            let trial = try await Trial.make(store)
            let p = try await trial.ready("R-1")
            let allocation = try await trial.screening.allocate(participantID: p.id, scope: trial.scope, now: now)
            var v2 = try StudyFile.builtIn()
            v2.version = 2
            v2.consent.versions.append(ConsentVersion(version: "2", date: "2026-03-11"))
            v2.consent.current = "2"
            _ = try await FluentStudyRepository(store: store).publish(v2, actor: "dm", reason: "new consent form", now: now)
            #expect(try await trial.screening.file(participantID: p.id, scope: trial.scope).needsReconsent)
            let after = allocation.allocatedAt.addingTimeInterval(86_400)
            await #expect(throws: StoreError.self) {
                try await trial.screening.recordConsent(participantID: p.id, formVersion: "1", signedAt: after, scope: trial.scope, now: after)
            }
            _ = try await trial.screening.recordConsent(participantID: p.id, formVersion: "2", signedAt: after, scope: trial.scope, now: after)
            #expect(try await !trial.screening.file(participantID: p.id, scope: trial.scope).needsReconsent)
        }
    }
}

@Suite struct EligibilityStaysLiveTests {
    /// The finding: after an "eligible" decision a correction set malignancy to yes, and the participant was still
    /// allocated. Now the status goes to "needs review", allocation is refused (409, audited, nothing allocated), and
    /// the investigator's new decision is a screen failure.
    @Test(arguments: TestDatabase.available)
    func anExclusionEnteredAfterTheDecisionBlocksAllocation(database: TestDatabase) async throws {
        try await database.withStore { store in
            let trial = try await Trial.make(store)
            let p = try await trial.ready("P-010")
            #expect(try await trial.participants.find(id: p.id, scope: trial.scope).status == .consented)
            _ = try await trial.forms.save(
                participantID: p.id, visit: "screening", form: "history",
                values: ["malignancy": "yes", "active_infection": "no", "combined_transplant": "no", "retransplant": "no", "ebv": "positive", "hiv": "negative", "hcv": "negative"],
                reason: "source document: hepatocellular carcinoma found", scope: trial.scope, now: now)
            #expect(try await trial.participants.find(id: p.id, scope: trial.scope).status == .needsReview)
            await #expect {
                try await trial.screening.allocate(participantID: p.id, scope: trial.scope, now: now)
            } throws: { error in
                guard case StoreError.conflict(field: "eligibility", let rule) = error else { return false }
                return rule.contains("exclusion malignancy applies")
            }
            let sql = store.database as! any SQLDatabase
            #expect(try await sql.raw("SELECT COUNT(*) AS n FROM randomization_slots WHERE participant_id = \(bind: p.id)").first()?.decode(column: "n", as: Int.self) == 0)
            #expect(try await sql.raw("SELECT COUNT(*) AS n FROM audit_events WHERE entity = 'allocation_refused' AND entity_id = \(bind: p.id.uuidString)").first()?.decode(column: "n", as: Int.self) == 1)
            let decided = try await trial.screening.decideEligibility(participantID: p.id, scope: trial.scope, now: now)
            #expect(decided.failed.map(\.code) == ["malignancy"])
            #expect(try await trial.participants.find(id: p.id, scope: trial.scope).status == .screenFailed)
            #expect(try await AuditChain.verify(on: store.database).isIntact)
        }
    }

    /// A correction that keeps the participant eligible changes nothing; one after allocation raises a protocol
    /// deviation and leaves the arm as it was (intention to treat).
    @Test(arguments: TestDatabase.available)
    func afterAllocationAContradictionIsADeviation(database: TestDatabase) async throws {
        try await database.withStore { store in
            let trial = try await Trial.make(store)
            let p = try await trial.ready("P-011")
            _ = try await trial.forms.save(
                participantID: p.id, visit: "screening", form: "labs",
                values: ["collected_at": "2026-03-01T08:00", "total_bilirubin": "260", "inr": "2.0", "pt_activity": "30", "meld_na": "32"],
                reason: "transcription", scope: trial.scope, now: now)
            #expect(try await trial.participants.find(id: p.id, scope: trial.scope).status == .consented)
            let allocation = try await trial.screening.allocate(participantID: p.id, scope: trial.scope, now: now)
            _ = try await trial.forms.save(
                participantID: p.id, visit: "screening", form: "history",
                values: ["malignancy": "no", "active_infection": "no", "combined_transplant": "no", "retransplant": "no", "ebv": "positive", "hiv": "positive", "hcv": "negative"],
                reason: "late result", scope: trial.scope, now: now.addingTimeInterval(3600))
            #expect(try await trial.screening.allocate(participantID: p.id, scope: trial.scope, now: now.addingTimeInterval(7200)) == allocation)
            #expect(try await trial.participants.find(id: p.id, scope: trial.scope).status == .randomized)
            let deviations = try await trial.screening.deviations(scope: trial.scope).filter { $0.participantID == p.id }
            #expect(deviations.map(\.kind) == ["eligibility"])
            #expect(deviations.first?.reason == "eligibility after allocation: exclusion hiv_or_hcv applies")
        }
    }
}

@Suite struct OneLabStoreTests {
    /// A sample dated before the participant was born (1980-05-01) is an entry error: 422 naming the field, nothing saved.
    @Test(arguments: TestDatabase.available)
    func aSampleBeforeBirthIsRefused(database: TestDatabase) async throws {
        try await database.withStore { store in
            let trial = try await Trial.make(store)
            let safety = FluentSafetyRepository(store: store, tables: try GradingTables.builtIn())
            let p = try await trial.screened("P-030")
            await #expect(throws: StoreError.invalid(field: "collectedAt", rule: "cannot be before the participant's birth (1980-05-01)")) {
                try await safety.recordLab(
                    participantID: p.id, visit: "screening", test: "ALT", value: 40, unit: "U/L", collectedAt: DateParsing.instant("1980-04-30T08:00")!,
                    scope: trial.scope, now: now)
            }
            #expect(try await safety.labs(participantID: p.id, scope: trial.scope).isEmpty)
        }
    }

    /// The finding: form 150 µmol/L and lab API 200 µmol/L for the same screening sample, and the form won silently.
    /// Now the two disagree and bilirubin cannot be told until resolved; the same result entered both ways agrees.
    @Test(arguments: TestDatabase.available)
    func screeningReadsTheLabAPIAndFlagsDisagreement(database: TestDatabase) async throws {
        try await database.withStore { store in
            let trial = try await Trial.make(store)
            let safety = FluentSafetyRepository(store: store, tables: try GradingTables.builtIn())
            let sampled = DateParsing.instant("2026-03-01T08:00")!
            let agreeing = try await trial.screened("P-020")
            // 14.62 mg/dL is 250 µmol/L (× 17.1), the form's value.
            _ = try await safety.recordLab(
                participantID: agreeing.id, visit: "screening", test: "BILI", value: 14.62, unit: "mg/dL", collectedAt: sampled, scope: trial.scope, now: now)
            _ = try await trial.screening.recordConsent(participantID: agreeing.id, formVersion: "1", signedAt: sampled, scope: trial.scope, now: now)
            let fine = try await trial.screening.assess(participantID: agreeing.id, scope: trial.scope)
            #expect(fine.outcome == .met, "\(fine.criteria.filter { $0.result != .met }.map(\.verdict))")

            let disagreeing = try await trial.screened("P-021", overrides: ["labs": ["total_bilirubin": "150"]])
            _ = try await safety.recordLab(
                participantID: disagreeing.id, visit: "screening", test: "BILI", value: 200, unit: "umol/L", collectedAt: sampled, scope: trial.scope, now: now)
            let assessment = try await trial.screening.assess(participantID: disagreeing.id, scope: trial.scope)
            let bilirubin = try #require(assessment.criteria.first { $0.evidence.contains { $0.name == "labs.total_bilirubin" } })
            #expect(bilirubin.result == .cannotTell)
            #expect(bilirubin.verdict.hasSuffix("values disagree"))
            #expect(bilirubin.evidence.first { $0.name == "labs.total_bilirubin" }?.note?.contains("form 150 umol/L, lab result 200 umol/L") == true)
            await #expect(throws: StoreError.self) { try await trial.screening.decideEligibility(participantID: disagreeing.id, scope: trial.scope, now: now) }
        }
    }
}
