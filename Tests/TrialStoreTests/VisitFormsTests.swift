import FluentKit
import FluentSQL
import Foundation
import TestSupport
import Testing
import TrialDomain
import TrialStandards
@testable import TrialStore

private let now = DateParsing.instant("2026-03-10T12:00")!

/// The screening visit's pages of an eligible patient (worked from PROTOCOL.md's criteria).
private let screeningPages: [(form: String, values: [String: String])] = [
    ("demographics", ["screening_date": "2026-03-01", "birth_date": "1980-05-01", "sex": "M"]),
    ("aclf", ["chronic_liver_disease": "yes", "ascites": "yes", "ascites_date": "2026-02-25", "encephalopathy": "no", "needs_transplant": "yes"]),
    ("history", ["malignancy": "no", "active_infection": "no", "combined_transplant": "no", "retransplant": "no", "ebv": "positive", "hiv": "negative", "hcv": "negative"]),
    ("consent", ["obtained": "yes", "signed_at": "2026-03-01T09:00", "form_version": "1"]),
    ("labs", ["collected_at": "2026-03-01T08:00", "total_bilirubin": "250", "inr": "2.0", "pt_activity": "30", "meld_na": "32"]),
]

@Suite struct VisitFormsTests {
    private func setUp(_ store: Store) async throws -> (Participant, AccessScope) {
        _ = try await FluentStudyRepository(store: store).seedIfEmpty(try StudyFile.builtIn(), now: now)
        let site = try #require(try await FluentAccountRepository(store: store).site(code: "SYSU3"))
        let scope = AccessScope(actor: "ana", siteIDs: [site.id])
        let p = try await FluentParticipantRepository(store: store).create(siteID: site.id, screeningNumber: "P-001", scope: scope, now: now)
        return (p, scope)
    }

    private func count(_ sql: String, _ store: Store) async throws -> Int {
        try await (store.database as! any SQLDatabase).raw(SQLQueryString(sql)).first()!.decode(column: "n", as: Int.self)
    }

    @Test(arguments: TestDatabase.available)
    func aVisitsPagesSavedTogetherAreEachRecordedAndAudited(database: TestDatabase) async throws {
        try await database.withStore { store in
            let (p, scope) = try await setUp(store)
            let events = try await count("SELECT COUNT(*) AS n FROM audit_events", store)
            let saved = try await FluentFormRecordRepository(store: store).save(
                participantID: p.id, visit: "screening", forms: screeningPages, reason: nil, scope: scope, now: now)
            #expect(saved.map(\.form) == screeningPages.map(\.form))
            #expect(try await count("SELECT COUNT(*) AS n FROM form_records", store) == 5)
            #expect(try await count("SELECT COUNT(*) AS n FROM audit_events WHERE entity = 'form_record'", store) == 5)
            #expect(try await count("SELECT COUNT(*) AS n FROM audit_events", store) == events + 5)
            // The file holds every page, so the eligibility decision sees them all.
            let screening = FluentScreeningRepository(store: store)
            #expect(try await screening.file(participantID: p.id, scope: scope).values["labs.meld_na"] == "32")
            _ = try await screening.recordConsent(participantID: p.id, formVersion: "1", signedAt: now.addingTimeInterval(-3600), scope: scope, now: now)
            #expect(try await screening.decideEligibility(participantID: p.id, scope: scope, now: now).outcome == .met)
            #expect(try await AuditChain.verify(on: store.database).isIntact)
        }
    }

    /// An observed date after today (or a time ahead of the clock) is refused, naming the field; nothing is saved.
    @Test(arguments: TestDatabase.available)
    func observedDatesInTheFutureAreRefused(database: TestDatabase) async throws {
        try await database.withStore { store in
            let (p, scope) = try await setUp(store)
            let forms = FluentFormRecordRepository(store: store)
            await #expect(throws: StoreError.invalid(field: "screening_date", rule: "must not be in the future (today is 2026-03-10)")) {
                try await forms.save(
                    participantID: p.id, visit: "screening", form: "demographics", values: ["screening_date": "2026-03-11", "birth_date": "1980-01-01", "sex": "F"],
                    reason: nil, scope: scope, now: now)
            }
            await #expect(throws: StoreError.invalid(field: "signed_at", rule: "must not be in the future")) {
                try await forms.save(
                    participantID: p.id, visit: "screening", form: "consent", values: ["obtained": "yes", "signed_at": "2026-03-10T12:10", "form_version": "1"],
                    reason: nil, scope: scope, now: now)
            }
            // Today's date, and a time within the five minutes clocks may differ, are taken.
            _ = try await forms.save(
                participantID: p.id, visit: "screening", form: "consent", values: ["obtained": "yes", "signed_at": "2026-03-10T12:04", "form_version": "1"],
                reason: nil, scope: scope, now: now)
            #expect(try await count("SELECT COUNT(*) AS n FROM form_records", store) == 1)
        }
    }

    @Test(arguments: TestDatabase.available)
    func oneBadPageSavesNoneAndNamesTheFormAndField(database: TestDatabase) async throws {
        try await database.withStore { store in
            let (p, scope) = try await setUp(store)
            let events = try await count("SELECT COUNT(*) AS n FROM audit_events", store)
            var pages = screeningPages
            pages[4].values["inr"] = "two"
            do {
                _ = try await FluentFormRecordRepository(store: store).save(participantID: p.id, visit: "screening", forms: pages, reason: nil, scope: scope, now: now)
                Issue.record("a page with an unreadable INR was saved")
            } catch let StoreError.invalid(field, _) {
                #expect(field == "labs.inr")
            }
            await #expect(throws: StoreError.invalid(field: "forms", rule: "form 'labs' is given more than once")) {
                _ = try await FluentFormRecordRepository(store: store).save(
                    participantID: p.id, visit: "screening", forms: screeningPages + [screeningPages[4]], reason: nil, scope: scope, now: now)
            }
            #expect(try await count("SELECT COUNT(*) AS n FROM form_records", store) == 0)
            #expect(try await count("SELECT COUNT(*) AS n FROM audit_events", store) == events)
        }
    }

    // The pages' dates are checked as one set against the file: a screening date after the transplant already
    // recorded is refused, naming the page and field, and none of the visit's pages is saved.
    @Test(arguments: TestDatabase.available)
    func datesAreCheckedAcrossThePagesAndTheFile(database: TestDatabase) async throws {
        try await database.withStore { store in
            let (p, scope) = try await setUp(store)
            let forms = FluentFormRecordRepository(store: store)
            _ = try await forms.save(
                participantID: p.id, visit: "transplant", form: "transplant", values: ["transplant_date": "2026-03-08", "donor": "deceased"], reason: nil,
                scope: scope, now: now)
            var pages = screeningPages
            pages[0].values["screening_date"] = "2026-03-09"
            do {
                _ = try await forms.save(participantID: p.id, visit: "screening", forms: pages, reason: nil, scope: scope, now: now)
                Issue.record("a screening date after the transplant was saved")
            } catch let StoreError.invalid(field, rule) {
                #expect(field == "demographics.screening_date")
                #expect(rule.contains("cannot be before Screening"))
            }
            #expect(try await count("SELECT COUNT(*) AS n FROM form_records", store) == 1)
            _ = try await forms.save(participantID: p.id, visit: "screening", forms: screeningPages, reason: nil, scope: scope, now: now)
            #expect(try await count("SELECT COUNT(*) AS n FROM form_records", store) == 6)
            #expect(try await AuditChain.verify(on: store.database).isIntact)
        }
    }
}
