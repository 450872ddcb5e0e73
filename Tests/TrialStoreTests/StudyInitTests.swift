import FluentKit
import Foundation
import TestSupport
import Testing
import TrialDomain
import TrialStandards
@testable import TrialStore

private let now = Date(timeIntervalSince1970: 1_790_000_000)

/// Another study than the built-in one: its own code and site.
private func otherStudy() throws -> StudyDefinition {
    var study = try StudyFile.builtIn()
    study.code = "OTHER-STUDY"
    study.sites = [SiteDefinition(code: "OTH1", name: "Other site")]
    return study
}

@Suite struct StudyInitTests {
    @Test(arguments: TestDatabase.available)
    func anEmptyDatabaseTakesAnyStudy(database: TestDatabase) async throws {
        try await database.withStore { store in
            let studies = FluentStudyRepository(store: store)
            let other = try otherStudy()
            #expect(try await studies.initialize(other, actor: "cli:dm", now: now).version == 1)
            #expect(try await studies.current()?.code == "OTHER-STUDY")
            #expect(try await FluentAccountRepository(store: store).site(code: "OTH1") != nil)
            // The built-in study's seeding does nothing once a study is in force.
            #expect(try await !studies.seedIfEmpty(try StudyFile.builtIn(), now: now))
        }
    }

    @Test(arguments: TestDatabase.available)
    func theUnusedBuiltInStudyGivesWayAndTheTrailSaysSo(database: TestDatabase) async throws {
        try await database.withStore { store in
            let studies = FluentStudyRepository(store: store)
            _ = try await studies.seedIfEmpty(try StudyFile.builtIn(), now: now)
            _ = try await studies.initialize(try otherStudy(), actor: "cli:dm", now: now)
            #expect(try await studies.current()?.code == "OTHER-STUDY")
            #expect(try await studies.versions().map(\.version) == [1])
            let trail = try await AuditChain.history(on: store.database, entity: "study", entityID: "MSC-EV-ACLF-LT")
            #expect(trail.last?.action == .delete)
            #expect(try await AuditChain.verify(on: store.database).isIntact)
        }
    }

    /// Once the study in force has a participant (or an amendment), init is refused and names it.
    @Test(arguments: TestDatabase.available)
    func aStudyInUseIsNeverReplaced(database: TestDatabase) async throws {
        try await database.withStore { store in
            let studies = FluentStudyRepository(store: store)
            _ = try await studies.seedIfEmpty(try StudyFile.builtIn(), now: now)
            let site = try #require(try await FluentAccountRepository(store: store).site(code: "SYSU3"))
            _ = try await FluentParticipantRepository(store: store).create(
                siteID: site.id, screeningNumber: "P-001", scope: AccessScope(actor: "ana", siteIDs: [site.id]), now: now)
            do {
                _ = try await studies.initialize(try otherStudy(), actor: "cli:dm", now: now)
                Issue.record("init replaced a study in use")
            } catch let StoreError.conflict(field, rule) {
                #expect(field == "study")
                #expect(rule.contains("MSC-EV-ACLF-LT"))
                #expect(rule.contains("1 participants") || rule.contains("1 participant"))
            }
            #expect(try await studies.current()?.code == "MSC-EV-ACLF-LT")
        }
    }

    @Test(arguments: TestDatabase.available)
    func aStudyInitialisedByHandIsNotReplacedEither(database: TestDatabase) async throws {
        try await database.withStore { store in
            let studies = FluentStudyRepository(store: store)
            _ = try await studies.initialize(try otherStudy(), actor: "cli:dm", now: now)
            await #expect(throws: StoreError.self) { try await studies.initialize(try StudyFile.builtIn(), actor: "cli:dm", now: now) }
        }
    }
}

@Suite struct OperatingStatusTests {
    /// The registry says withdrawn, the sponsor says recruiting: participants are enrolled. Suspended: refused, with 409's error.
    @Test(arguments: TestDatabase.available)
    func onlyARecruitingStudyEnrolsAndAllocates(database: TestDatabase) async throws {
        try await database.withStore { store in
            let studies = FluentStudyRepository(store: store)
            var study = try StudyFile.builtIn()
            #expect(study.lifecycle.status == .withdrawn)
            #expect(study.lifecycle.operatingStatus == .recruiting)
            _ = try await studies.seedIfEmpty(study, now: now)
            let site = try #require(try await FluentAccountRepository(store: store).site(code: "SYSU3"))
            let scope = AccessScope(actor: "ana", siteIDs: [site.id])
            let participants = FluentParticipantRepository(store: store)
            let p = try await participants.create(siteID: site.id, screeningNumber: "P-001", scope: scope, now: now)

            study.version = 2
            study.lifecycle.operating?.append(OperatingChange(status: .suspended, date: "2026-09-01", reason: "safety review"))
            _ = try await studies.publish(study, actor: "dm", reason: "suspended for a safety review", now: now)
            await #expect(throws: StoreError.conflict(field: "study", rule: "participants are enrolled only while the study is recruiting; study MSC-EV-ACLF-LT is suspended")) {
                try await participants.create(siteID: site.id, screeningNumber: "P-002", scope: scope, now: now)
            }
            do {
                _ = try await FluentScreeningRepository(store: store).allocate(participantID: p.id, scope: scope, now: now)
                Issue.record("a suspended study allocated")
            } catch let StoreError.conflict(field, _) {
                #expect(field == "study")
            }
            #expect(try await participants.list(scope: scope).count == 1)
        }
    }
}

/// The built-in study seeded, its site's scope, and one participant registered, for the amendment tests.
private func amendmentTrial(_ store: Store, now: Date) async throws -> (FluentStudyRepository, StudyDefinition, Site, AccessScope, Participant) {
    let studies = FluentStudyRepository(store: store)
    let v1 = try StudyFile.builtIn()
    _ = try await studies.seedIfEmpty(v1, now: now)
    let site = try #require(try await FluentAccountRepository(store: store).site(code: "SYSU3"))
    let scope = AccessScope(actor: "ana", siteIDs: [site.id])
    let p = try await FluentParticipantRepository(store: store).create(siteID: site.id, screeningNumber: "A-1", scope: scope, now: now)
    return (studies, v1, site, scope, p)
}

@Suite struct AmendmentScheduleTests {
    /// An amendment for new participants only leaves an enrolled participant on the schedule they were enrolled under;
    /// a later one for everyone moves them. A new consent form version asks an allocated participant for re-consent,
    /// which alone may be dated after the allocation.
    @Test(arguments: TestDatabase.available)
    func enrolledParticipantsKeepTheirScheduleAndReconsent(database: TestDatabase) async throws {
        try await database.withStore { store in
            let now = DateParsing.instant("2026-03-10T12:00")!
            let (studies, v1, site, scope, p) = try await amendmentTrial(store, now: now)
            let screening = FluentScreeningRepository(store: store)
            _ = try await screening.recordConsent(participantID: p.id, formVersion: "1", signedAt: now.addingTimeInterval(-3600), scope: scope, now: now)

            var v2 = v1
            v2.version = 2
            v2.amendment = AmendmentSettings(appliesTo: .newParticipants)
            v2.visits[5].window = VisitWindow(before: Offset(3, .days), after: Offset(3, .days))
            v2.consent.versions.append(ConsentVersion(version: "2", date: "2026-03-09"))
            v2.consent.current = "2"
            _ = try await studies.publish(v2, actor: "dm", reason: "wider day-7 window, for new participants", now: now)
            var file = try await screening.file(participantID: p.id, scope: scope)
            #expect(file.study.version == 2)
            #expect(file.schedule.version == 1)
            #expect(file.schedule.visits[5].window?.before == Offset(1, .days))
            let later = try await FluentParticipantRepository(store: store).create(siteID: site.id, screeningNumber: "A-2", scope: scope, now: now)
            #expect(try await screening.file(participantID: later.id, scope: scope).schedule.version == 2)

            var v3 = v2
            v3.version = 3
            v3.amendment = AmendmentSettings(appliesTo: .everyone)
            _ = try await studies.publish(v3, actor: "dm", reason: "for everyone", now: now)
            file = try await screening.file(participantID: p.id, scope: scope)
            #expect(file.schedule.version == 3)
            // Not allocated: no re-consent is asked before allocation, a consent to version 2 simply follows.
            #expect(!file.needsReconsent)
        }
    }
}

@Suite struct AmendmentFromADateTests {
    /// Version 2 widens every follow-up window to ±4 days for everyone from 2026-03-20. Transplanted on 2026-03-03, the
    /// participant's day 7 (2026-03-10) and day 14 (2026-03-17) fall before that day and keep version 1's windows;
    /// day 28 (2026-03-31) onwards follow version 2.
    @Test(arguments: TestDatabase.available)
    func visitsDueFromTheDateFollowTheAmendment(database: TestDatabase) async throws {
        try await database.withStore { store in
            let now = DateParsing.instant("2026-03-10T12:00")!
            let (studies, v1, site, scope, p) = try await amendmentTrial(store, now: now)
            let screening = FluentScreeningRepository(store: store)
            _ = try await FluentFormRecordRepository(store: store).save(
                participantID: p.id, visit: "transplant", form: "transplant", values: ["transplant_date": "2026-03-03", "donor": "deceased"],
                reason: nil, scope: scope, now: now)

            var v2 = v1
            v2.version = 2
            v2.amendment = AmendmentSettings(appliesTo: .everyone, from: "2026-03-20")
            let wide = VisitWindow(before: Offset(4, .days), after: Offset(4, .days))
            for i in v2.visits.indices where ["day_7", "day_14", "day_28", "month_3"].contains(v2.visits[i].code) { v2.visits[i].window = wide }
            _ = try await studies.publish(v2, actor: "dm", reason: "wider windows from 20 March", now: now)

            let schedule = try await screening.schedule(participantID: p.id, scope: scope, now: now)
            let file = try await screening.file(participantID: p.id, scope: scope)
            #expect(file.schedule.visit("day_7")?.window?.before == Offset(1, .days))
            #expect(file.schedule.visit("day_14")?.window?.before == Offset(2, .days))
            #expect(file.schedule.visit("day_28")?.window == wide)
            #expect(file.schedule.visit("month_3")?.window == wide)
            // Day 28 ± 4: from the start of 2026-03-27 to the end of 2026-04-04 (Asia/Shanghai, UTC+8).
            let day28 = try #require(schedule.first { $0.visit == "day_28" })
            #expect(day28.windowStart == DateParsing.instant("2026-03-26T16:00"))
            // A participant enrolled after the amendment follows it whole.
            let later = try await FluentParticipantRepository(store: store).create(siteID: site.id, screeningNumber: "A-2", scope: scope, now: now)
            #expect(try await screening.file(participantID: later.id, scope: scope).schedule.visit("day_7")?.window == wide)
        }
    }
}
