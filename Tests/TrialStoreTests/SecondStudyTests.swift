import FluentKit
import Foundation
import TestSupport
import Testing
import TrialDomain
import TrialStandards
@testable import TrialStore

private func at(_ text: String) -> Date { DateParsing.instant(text)! }

/// The second study (studies/ucmsc-aclf.yaml), as its file is published by `casebook study init`.
private func secondStudy() throws -> StudyDefinition {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    return try StudyFile.read(try String(contentsOf: root.appendingPathComponent("studies/ucmsc-aclf.yaml"), encoding: .utf8))
}

@Suite struct SecondStudyTests {
    /// One participant through screening, both randomizations and all five doses (one skipped), with no Swift of its own:
    /// a new database initialised with the file, then the same repositories as the first study.
    @Test(arguments: TestDatabase.available)
    func oneParticipantThroughBothRandomizationsAndEveryDose(database: TestDatabase) async throws {
        try await database.withStore { store in
            let studies = FluentStudyRepository(store: store)
            _ = try await studies.seedIfEmpty(try StudyFile.builtIn(), now: at("2026-01-01T00:00"))
            _ = try await studies.initialize(try secondStudy(), actor: "cli:dm", now: at("2026-01-01T00:00"))
            let site = try #require(try await FluentAccountRepository(store: store).site(code: "PLAGH5"))
            let scope = AccessScope(actor: "ana", siteIDs: [site.id])
            let screening = FluentScreeningRepository(store: store), forms = FluentFormRecordRepository(store: store)
            _ = try await screening.generateList(seedHex: String(repeating: "3c", count: 32), actor: "stat", now: at("2026-01-01T00:00"))
            _ = try await screening.generateStageList(randomization: "stage2", seedHex: String(repeating: "4d", count: 32), actor: "stat", now: at("2026-01-01T00:00"))

            let p = try await FluentParticipantRepository(store: store).create(siteID: site.id, screeningNumber: "U-001", scope: scope, now: at("2026-01-05T08:00"))
            let no = "no"
            let screeningPages: [(String, [String: String])] = [
                ("demographics", ["screening_date": "2026-01-05", "birth_date": "1976-01-01", "sex": "M"]),
                ("aclf", ["acute_liver_injury": "yes", "chronic_liver_disease": "yes", "ascites": "yes", "ascites_date": "2025-12-20", "encephalopathy": "no"]),
                ("history", [
                    "aki": no, "ugi_bleeding": no, "he_grade_2plus": no, "uncontrolled_infection": no, "platelets_before": "120", "bilirubin_before": "30",
                    "albumin_before": "40", "inr_before": "1.1", "ascites_before": "none", "he_before": "0", "malignancy": no, "transplant": no,
                    "extrahepatic": no, "thrombosis": no, "pregnancy": no, "allergy": no, "drug_abuse": no,
                    "alcohol_withdrawal": no, "mental_disorder": no, "other_trial": no,
                ]),
                // An immunosuppressant last taken on 2025-11-20, 46 days before screening: outside the exclusion's month.
                ("conmeds", ["immunomodulator": "yes", "immunomodulator_name": "tacrolimus", "immunomodulator_last": "2025-11-20"]),
                ("consent", ["obtained": "yes", "signed_at": "2026-01-05T09:00", "form_version": "1"]),
                // 120 µmol/L is 7.0 mg/dL: jaundice by the protocol's 5 mg/dL.
                ("labs", ["collected_at": "2026-01-05T08:00", "total_bilirubin": "120", "inr": "1.8", "pt_activity": "35", "creatinine": "90", "sodium": "135", "albumin": "28"]),
            ]
            _ = try await forms.save(participantID: p.id, visit: "screening", forms: screeningPages, reason: nil, scope: scope, now: at("2026-01-05T10:00"))
            _ = try await screening.recordConsent(participantID: p.id, formVersion: "1", signedAt: at("2026-01-05T09:00"), scope: scope, now: at("2026-01-05T11:00"))
            let assessment = try await screening.decideEligibility(participantID: p.id, scope: scope, now: at("2026-01-05T11:00"))
            #expect(assessment.outcome == .met, "\(assessment.criteria.filter { $0.result != .met }.map(\.code))")

            // Stage 1. MELD: bilirubin 120/17.1 = 7.02 mg/dL, creatinine 90 µmol/L = 1.02 mg/dL, INR 1.8: 20.5, under 22.
            let first = try await screening.allocate(participantID: p.id, scope: scope, now: at("2026-01-06T10:00"))
            #expect(first.stratum == "PLAGH5|meld<22")
            #expect(["huc_msc", "placebo"].contains(first.arm))
            // Every arm has the same five doses, so a blinded schedule is the same for everyone.
            #expect(try await screening.doses(participantID: p.id, scope: scope, now: at("2026-01-06T10:00")).map(\.dose.code) == ["d0", "d1", "d2", "d4", "d5"])

            func preDose(_ visit: String, _ when: String) async throws {
                _ = try await forms.save(
                    participantID: p.id, visit: visit, form: "pre_dose", values: ["new_exclusion": "no"], reason: nil, scope: scope,
                    now: at(when))
            }
            func give(_ dose: String, _ when: String) async throws {
                _ = try await screening.recordDose(
                    participantID: p.id, record: DoseRecord(dose: dose, given: true, startedAt: at(when), endedAt: at(when).addingTimeInterval(3600), lot: "UC-1", recordedBy: "", recordedAt: at(when)),
                    scope: scope, now: at(when).addingTimeInterval(7200))
            }
            // Without the pre-dose form the check cannot tell, and the dose is refused.
            await #expect {
                try await give("d0", "2026-01-06T12:00")
            } throws: { error in
                guard case StoreError.invalid(field: "dose", let rule) = error else { return false }
                return rule.contains("cannot tell")
            }
            try await preDose("w0", "2026-01-06T11:00")
            try await give("d0", "2026-01-06T12:00")
            // Week 1 skipped, with its reason.
            _ = try await screening.recordDose(
                participantID: p.id, record: DoseRecord(dose: "d1", given: false, skipReason: "fever on the day", recordedBy: "", recordedAt: at("2026-01-13T09:00")),
                scope: scope, now: at("2026-01-13T09:00"))
            try await preDose("w2", "2026-01-20T08:00")
            try await give("d2", "2026-01-20T10:00")
            // A related infusion reaction 3 hours after dose 3, on a CTCAE v5.0 term the definition carries.
            let safety = FluentSafetyRepository(store: store, tables: try GradingTables.builtIn())
            let event = try await safety.recordAdverseEvent(
                participantID: p.id,
                input: AdverseEventInput(meddra: "10051792", grade: 2, onsetAt: at("2026-01-20T13:00"), attribution: .probable, expected: false,
                                         actionTaken: "infusion slowed", outcome: "recovered"),
                scope: scope, now: at("2026-01-20T18:00"))
            #expect(event.version == "5.0")
            // Anaphylaxis has no grade 1 in CTCAE v5.0.
            await #expect(throws: StoreError.self) {
                try await safety.recordAdverseEvent(
                    participantID: p.id,
                    input: AdverseEventInput(meddra: "10002218", grade: 1, onsetAt: at("2026-01-20T13:00"), attribution: .possible, expected: false,
                                             actionTaken: "none", outcome: "recovered"),
                    scope: scope, now: at("2026-01-20T18:00"))
            }

            // Stage 2 at week 4 (day 28 from the first dose: 2026-02-03, −1/+2 days), for everyone still on study.
            await #expect(throws: StoreError.self) {
                try await screening.allocateStage(participantID: p.id, randomization: "stage2", scope: scope, now: at("2026-02-03T09:00"))
            }
            _ = try await forms.save(participantID: p.id, visit: "w4", form: "stage2_check", values: ["on_study": "yes"], reason: nil, scope: scope, now: at("2026-02-03T08:30"))
            let second = try await screening.allocateStage(participantID: p.id, randomization: "stage2", scope: scope, now: at("2026-02-03T09:00"))
            let expected = first.arm == "placebo" ? ["placebo"] : ["huc_msc_prolonged", "huc_msc_standard"]
            #expect(expected.contains(second.armAfter))
            try await preDose("w4", "2026-02-03T10:00")
            try await give("d4", "2026-02-03T12:00")
            try await preDose("w5", "2026-02-10T08:00")
            // A related grade-3 event after dose 4 stops dose 5 by the pre-dose check, read from the events recorded.
            let reaction = try await safety.recordAdverseEvent(
                participantID: p.id,
                input: AdverseEventInput(meddra: "10051792", grade: 3, onsetAt: at("2026-02-03T15:00"), attribution: .possible, expected: false,
                                         actionTaken: "none", outcome: "recovered"),
                scope: scope, now: at("2026-02-04T09:00"))
            await #expect {
                try await give("d5", "2026-02-10T10:00")
            } throws: { error in
                guard case StoreError.invalid(field: "dose", let rule) = error else { return false }
                return rule.contains("the pre-dose check does not hold")
            }
            #expect(reaction.grade == 3)
            _ = try await screening.recordDose(
                participantID: p.id, record: DoseRecord(dose: "d5", given: false, skipReason: "grade 3 infusion reaction after dose 4", recordedBy: "", recordedAt: at("2026-02-10T10:00")),
                scope: scope, now: at("2026-02-10T10:00"))

            let plan = try await screening.doses(participantID: p.id, scope: scope, now: at("2026-02-11T10:00"))
            #expect(plan.map(\.state) == [.given, .skipped, .given, .given, .skipped])
            // Cells at weeks 4 and 5 only on the prolonged arm.
            let product = plan.last?.dose.product
            #expect(product == (second.armAfter == "huc_msc_prolonged" ? "huc_msc" : "placebo"))
            let file = try await screening.file(participantID: p.id, scope: scope)
            #expect(file.anchors["first_dose"] == at("2026-01-06T12:00"))

            // The per-dose safety endpoint counts three doses given, two of them (weeks 2 and 4) followed by a related
            // event within 24 hours, in one participant.
            let study = try #require(try await studies.current())
            let perDose = try #require(try await FluentCohortRepository(store: store).endpoints(scope: scope, study: study, byArm: false, only: "infusion_safety").first)
            #expect(perDose.groups[0].doses == 3)
            #expect(perDose.groups[0].doseEvents == 2)
            #expect(perDose.groups[0].events == 1)
            #expect(try await AuditChain.verify(on: store.database).isIntact)
        }
    }
}
