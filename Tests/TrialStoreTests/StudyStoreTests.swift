import FluentKit
import Foundation
import TestSupport
import Testing
import TrialDomain
import TrialStandards
@testable import TrialStore

private let now = Date(timeIntervalSince1970: 1_790_000_000)

@Suite struct StudyStoreTests {
    @Test(arguments: TestDatabase.available)
    func theBuiltInStudyIsSeededOnceWithItsSites(database: TestDatabase) async throws {
        try await database.withStore { store in
            let studies = FluentStudyRepository(store: store)
            let builtIn = try StudyFile.builtIn()
            #expect(try await studies.seedIfEmpty(builtIn, now: now))
            #expect(try await !studies.seedIfEmpty(builtIn, now: now))
            #expect(try await studies.current() == builtIn)
            #expect(try await studies.versions().map(\.version) == [1])
            #expect(try await FluentAccountRepository(store: store).site(code: "SYSU3")?.name == "Third Affiliated Hospital of Sun Yat-sen University")
            #expect(try await AuditChain.verify(on: store.database).isIntact)
        }
    }

    @Test(arguments: TestDatabase.available)
    func anInvalidOrOutOfOrderVersionIsRefused(database: TestDatabase) async throws {
        try await database.withStore { store in
            let studies = FluentStudyRepository(store: store)
            var study = try StudyFile.builtIn()
            _ = try await studies.publish(study, actor: "dm", reason: nil, now: now)
            await #expect(throws: StoreError.invalid(field: "definition.version", rule: "must be 2, the next version after 1")) {
                try await studies.publish(study, actor: "dm", reason: "again", now: now)
            }
            study.version = 2
            study.visits[5].anchor = "nowhere"
            await #expect(throws: StoreError.invalid(field: "definition.visits[day_7].anchor", rule: "names unknown anchor 'nowhere'")) {
                try await studies.publish(study, actor: "dm", reason: "typo", now: now)
            }
            study.visits[5].anchor = "transplant"
            await #expect(throws: StoreError.reasonRequired(field: "version")) {
                study.visits[5].window?.after = Offset(2, .days)
                return try await studies.publish(study, actor: "dm", reason: nil, now: now)
            }
            #expect(try await studies.versions().count == 1)
        }
    }
}

@Suite struct AmendmentTests {
    /// Data collected under version 1 stays attributed to 1 and read with 1's forms after version 2 is published.
    @Test(arguments: TestDatabase.available)
    func oldDataKeepsItsVersion(database: TestDatabase) async throws {
        try await database.withStore { store in
            let studies = FluentStudyRepository(store: store)
            let v1 = try StudyFile.builtIn()
            _ = try await studies.seedIfEmpty(v1, now: now)
            let site = try #require(try await FluentAccountRepository(store: store).site(code: "SYSU3"))
            let scope = AccessScope(actor: "ana", siteIDs: [site.id])
            let participant = try await FluentParticipantRepository(store: store).create(siteID: site.id, screeningNumber: "P-001", scope: scope, now: now)
            let forms = FluentFormRecordRepository(store: store)
            let labs = ["collected_at": "2026-01-05T08:30", "total_bilirubin": "400", "inr": "2.1"]
            let first = try await forms.save(participantID: participant.id, visit: "screening", form: "labs", values: labs, reason: nil, scope: scope, now: now)
            #expect(first.studyVersion == 1)

            // Version 2 narrows the bilirubin range and adds a field to the labs form.
            var v2 = v1
            v2.version = 2
            let labsIndex = try #require(v2.forms.firstIndex { $0.code == "labs" })
            let bilirubinIndex = try #require(v2.forms[labsIndex].fields.firstIndex { $0.code == "total_bilirubin" })
            v2.forms[labsIndex].fields[bilirubinIndex].range?.max = 300
            var ammonia = v2.forms[labsIndex].fields[bilirubinIndex]
            ammonia.code = "ammonia"
            ammonia.label = "Ammonia"
            ammonia.unit = "umol/L"
            ammonia.loinc = nil
            v2.forms[labsIndex].fields.append(ammonia)
            _ = try await studies.publish(v2, actor: "dm", reason: "amendment 1: ammonia added", now: now)

            // The old record is still version 1, and an update of it is checked against version 1's form.
            let updated = try await forms.save(
                participantID: participant.id, visit: "screening", form: "labs", values: labs.merging(["inr": "2.2"]) { $1 },
                reason: "transcription error", scope: scope, now: now)
            #expect(updated.studyVersion == 1)
            #expect(updated.values["total_bilirubin"] == "400")
            await #expect(throws: StoreError.invalid(field: "ammonia", rule: "is not a field of form 'labs'")) {
                try await forms.save(
                    participantID: participant.id, visit: "screening", form: "labs", values: labs.merging(["ammonia": "2"]) { $1 },
                    reason: "x", scope: scope, now: now)
            }
            // A new record follows version 2.
            await #expect(throws: StoreError.invalid(field: "total_bilirubin", rule: "must be at most 300 umol/L")) {
                try await forms.save(participantID: participant.id, visit: "baseline", form: "labs", values: labs, reason: nil, scope: scope, now: now)
            }
            let second = try await forms.save(
                participantID: participant.id, visit: "baseline", form: "labs",
                values: ["collected_at": "2026-01-07T08:00", "total_bilirubin": "250", "ammonia": "60"], reason: nil, scope: scope,
                now: now.addingTimeInterval(60))
            #expect(second.studyVersion == 2)
            let all = try await forms.records(participantID: participant.id, scope: scope)
            #expect(all.map(\.studyVersion) == [1, 2])
            #expect(try await studies.definition(version: 1) == v1)
            #expect(try await AuditChain.verify(on: store.database).isIntact)
        }
    }

    @Test(arguments: TestDatabase.available)
    func badFormValuesAreRefusedByFieldAndNothingIsSaved(database: TestDatabase) async throws {
        try await database.withStore { store in
            _ = try await FluentStudyRepository(store: store).seedIfEmpty(try StudyFile.builtIn(), now: now)
            let site = try #require(try await FluentAccountRepository(store: store).site(code: "SYSU3"))
            let scope = AccessScope(actor: "ana", siteIDs: [site.id])
            let participant = try await FluentParticipantRepository(store: store).create(siteID: site.id, screeningNumber: "P-001", scope: scope, now: now)
            let forms = FluentFormRecordRepository(store: store)
            let cases: [(String, String, [String: String], StoreError)] = [
                ("screening", "labs", ["collected_at": "2026-01-05T08:30", "inr": "high"], .invalid(field: "inr", rule: "must be a number in ratio")),
                ("screening", "labs", ["inr": "2"], .invalid(field: "collected_at", rule: "is required")),
                ("screening", "labs", ["collected_at": "2026-02-30T08:30"], .invalid(field: "collected_at", rule: "must be a date and time as yyyy-MM-ddTHH:mm (UTC) or with an offset")),
                ("screening", "history", ["malignancy": "maybe"], .invalid(field: "malignancy", rule: "must be yes or no; active_infection: is required; combined_transplant: is required; retransplant: is required; ebv: is required; hiv: is required; hcv: is required")),
                ("day_7", "demographics", [:], .invalid(field: "visit", rule: "form 'demographics' is not collected at visit 'day_7' (it is at screening)")),
                ("screening", "x_ray", [:], .notFound(entity: "form", id: "'x_ray' in study version 1")),
            ]
            for (visit, form, values, error) in cases {
                await #expect(throws: error) {
                    try await forms.save(participantID: participant.id, visit: visit, form: form, values: values, reason: nil, scope: scope, now: now)
                }
            }
            #expect(try await forms.records(participantID: participant.id, scope: scope).isEmpty)
            await #expect(throws: StoreError.notFound(entity: "participant", id: participant.id.uuidString)) {
                try await forms.records(participantID: participant.id, scope: .init(actor: "bob", siteIDs: []))
            }
        }
    }
}
