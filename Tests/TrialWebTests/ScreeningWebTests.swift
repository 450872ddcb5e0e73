import Foundation
import TestSupport
import Testing
import TrialDomain
import TrialStandards
import TrialStore
@testable import TrialWeb
import Vapor
import VaporTesting

/// Dates relative to today, since allocation must fall within days +1 to +7 after the transplant.
private func day(_ offset: Int) -> String { String(iso(Date().addingTimeInterval(Double(offset) * 86_400)).prefix(10)) }

private func enterScreening(_ t: TestApp, token: String, id: String) async throws {
    let forms: [(String, String, String)] = [
        ("screening", "demographics", #"{"screening_date":"\#(day(-5))","birth_date":"1975-06-01","sex":"F"}"#),
        ("screening", "aclf", #"{"chronic_liver_disease":true,"ascites":true,"ascites_date":"\#(day(-8))","encephalopathy":false,"needs_transplant":true}"#),
        ("screening", "history", #"{"malignancy":"no","active_infection":"no","combined_transplant":"no","retransplant":"no","ebv":"positive","hiv":"negative","hcv":"negative"}"#),
        ("screening", "consent", #"{"obtained":"yes","signed_at":"\#(day(-5))T09:00","form_version":"1"}"#),
        ("screening", "labs", #"{"collected_at":"\#(day(-5))T08:00","total_bilirubin":300,"inr":1.9,"pt_activity":35,"meld_na":31}"#),
        ("transplant", "transplant", #"{"transplant_date":"\#(day(-2))","donor":"deceased"}"#),
    ]
    for (visit, form, values) in forms {
        let response = try await t.send(.PUT, "api/v1/participants/\(id)/forms/\(visit)/\(form)", headers: bearer(token), body: json(#"{"values":\#(values)}"#))
        #expect(response.status == .ok, "\(form): \(errorMessage(response))")
    }
}

@Suite struct ScreeningAPITests {
    @Test(arguments: TestDatabase.available)
    func fromScreeningToInfusionThroughTheAPI(database: TestDatabase) async throws {
        try await TestApp.run(database) { t in
            try await t.user("ines", role: .investigator, sites: ["SYSU3"])
            try await t.user("cora", role: .coordinator, sites: ["SYSU3"])
            try await t.user("stat", role: .statistician, sites: ["SYSU3"])
            let ines = try await t.token("ines"), cora = try await t.token("cora"), stat = try await t.token("stat")
            let id = try await t.send(.POST, "api/v1/participants", headers: bearer(cora), body: json(#"{"siteCode":"SYSU3","screeningNumber":"S-001"}"#))
                .content.get(String.self, at: "id")

            let before = try await t.send(.GET, "api/v1/participants/\(id)/eligibility", headers: bearer(cora)).content.decode(EligibilityAssessment.self)
            #expect(before.outcome == .cannotTell)
            let early = try await t.send(.POST, "api/v1/participants/\(id)/eligibility/decision", headers: bearer(ines))
            #expect(early.status == .unprocessableEntity)
            #expect(errorMessage(early).contains("cannot be confirmed while"))

            try await enterScreening(t, token: cora, id: id)
            // The consent criterion reads the consent record: until one is recorded it cannot be told.
            let noConsentYet = try await t.send(.POST, "api/v1/participants/\(id)/eligibility/decision", headers: bearer(ines))
            #expect(noConsentYet.status == .unprocessableEntity)
            #expect(errorMessage(noConsentYet).contains("missing: consented"), "\(errorMessage(noConsentYet))")
            let byCoordinator = try await t.send(.POST, "api/v1/participants/\(id)/eligibility/decision", headers: bearer(cora))
            #expect(byCoordinator.status == .forbidden)
            let consent = try await t.send(
                .POST, "api/v1/participants/\(id)/consents", headers: bearer(cora), body: json(#"{"formVersion":"1","signedAt":"\#(day(-5))T09:00"}"#))
            #expect(consent.status == .created)
            let decided = try await t.send(.POST, "api/v1/participants/\(id)/eligibility/decision", headers: bearer(ines))
            #expect(try decided.content.get(String.self, at: "outcome") == "eligible")

            let noList = try await t.send(.POST, "api/v1/participants/\(id)/allocation", headers: bearer(cora))
            #expect(errorMessage(noList).contains("allocation list has not been generated"))
            #expect(try await t.send(.POST, "api/v1/randomization/list", headers: bearer(ines), body: json("{}")).status == .forbidden)
            let generated = try await t.send(.POST, "api/v1/randomization/list", headers: bearer(stat), body: json(#"{"seed":"\#(String(repeating: "5a", count: 32))"}"#))
            #expect(generated.status == .created)

            let allocated = try await t.send(.POST, "api/v1/participants/\(id)/allocation", headers: bearer(cora))
            #expect(allocated.status == .ok)
            let arm = try allocated.content.get(String.self, at: "arm")
            // Sites see the arm, never the stratum or the position in the list.
            #expect(!allocated.body.string.contains("stratum"))
            #expect(!allocated.body.string.contains("position"))
            #expect(try await t.send(.POST, "api/v1/participants/\(id)/allocation", headers: bearer(cora)).content.get(String.self, at: "arm") == arm)

            #expect(try await t.send(.GET, "api/v1/randomization/list", headers: bearer(cora)).status == .forbidden)
            let list = try await t.send(.GET, "api/v1/randomization/list", headers: bearer(stat)).content.decode(ListDTO.self)
            #expect(list.slots.filter { $0.participantId != nil }.map(\.arm) == [arm])

            let now = Date()
            let dose = #"{"dose":"infusion","startedAt":"\#(iso(now.addingTimeInterval(30)))","endedAt":"\#(iso(now.addingTimeInterval(120)))","lot":"EV-1","expiry":"2030-01-01"}"#
            let recorded = try await t.send(.POST, "api/v1/participants/\(id)/doses", headers: bearer(cora), body: json(dose))
            let plan = try await t.send(.GET, "api/v1/participants/\(id)/doses", headers: bearer(cora)).content.decode([ScheduledDoseDTO].self)
            if arm == "msc_ev" {
                #expect(recorded.status == .created, "\(errorMessage(recorded))")
                #expect(plan.map(\.state) == ["given"])
                // Open label: the site sees the product and amount.
                #expect(plan.first?.amount == 1e10)
            } else {
                #expect(recorded.status == .unprocessableEntity)
                #expect(errorMessage(recorded) == "dose: no such dose for this participant: 'infusion'")
                #expect(plan.isEmpty)
            }
            let schedule = try await t.send(.GET, "api/v1/participants/\(id)/schedule", headers: bearer(cora)).content.decode([ScheduledVisitDTO].self)
            #expect(schedule.first { $0.visit == "screening" }?.state == "done")
            #expect(schedule.first { $0.visit == "day_7" }?.state == "upcoming")
            let log = try await t.send(.GET, "api/v1/screening-log", headers: bearer(cora)).content.decode(ScreeningLog.self)
            #expect(log.randomized == 1)
            #expect(log.randomizedByArm == [arm: 1])
        }
    }

    @Test func badScreeningInputIsNamed() async throws {
        try await TestApp.run(.sqlite) { t in
            try await t.user("cora", role: .coordinator, sites: ["SYSU3"])
            let cora = try await t.token("cora")
            let id = try await t.send(.POST, "api/v1/participants", headers: bearer(cora), body: json(#"{"siteCode":"SYSU3","screeningNumber":"S-001"}"#))
                .content.get(String.self, at: "id")
            let cases: [(String, String, String)] = [
                ("consents", #"{"formVersion":"9","signedAt":"2026-01-01T09:00"}"#, "formVersion: must be one of the study's consent versions (1)"),
                ("consents", #"{"formVersion":"1","signedAt":"yesterday"}"#, "signedAt: must be a date and time"),
                ("consents", #"{"formVersion":"1"}"#, "signedAt: is required"),
                ("consents/withdrawal", #"{"withdrawnAt":"2026-01-01T09:00","scope":"everything"}"#, "scope: must be one of no_further_data, no_further_contact"),
                ("doses", #"{"dose":"infusion","startedAt":"2026-01-01T09:00","weightKg":"heavy"}"#, "weightKg: must be a number"),
                ("doses", #"{"dose":"infusion","skipped":true,"reason":"fever","lot":"L1"}"#, "lot: a skipped dose has no lot"),
                ("doses", #"{"dose":"infusion","startedAt":"2026-01-01T09:00","colour":"red"}"#, "colour: unknown field"),
            ]
            for (path, body, message) in cases {
                let response = try await t.send(.POST, "api/v1/participants/\(id)/\(path)", headers: bearer(cora), body: json(body))
                #expect(response.status.code >= 400 && response.status.code < 500)
                #expect(errorMessage(response).contains(message), "\(errorMessage(response))")
            }
        }
    }
}

@Suite struct BlindedAllocationTests {
    /// In a masked study the coordinator allocates, doses and reads the plan without ever seeing the arm, product or
    /// amount; the DSMB viewer sees the arm.
    @Test(arguments: TestDatabase.available)
    func aBlindedCoordinatorNeverSeesTheArm(database: TestDatabase) async throws {
        try await TestApp.run(database) { t in
            var masked = try StudyFile.builtIn()
            masked.version = 2
            masked.identity.masking = "DOUBLE"
            _ = try await FluentStudyRepository(store: t.store).publish(masked, actor: "dm", reason: "masked", now: Date())
            try await t.user("ines", role: .investigator, sites: ["SYSU3"])
            try await t.user("cora", role: .coordinator, sites: ["SYSU3"])
            try await t.user("dave", role: .dsmbViewer, sites: ["SYSU3"])
            let ines = try await t.token("ines"), cora = try await t.token("cora"), dave = try await t.token("dave")
            _ = try await FluentScreeningRepository(store: t.store).generateList(seedHex: String(repeating: "5a", count: 32), actor: "stat", now: Date())
            let id = try await t.send(.POST, "api/v1/participants", headers: bearer(cora), body: json(#"{"siteCode":"SYSU3","screeningNumber":"B-001"}"#))
                .content.get(String.self, at: "id")
            try await enterScreening(t, token: cora, id: id)
            _ = try await t.send(.POST, "api/v1/participants/\(id)/consents", headers: bearer(cora), body: json(#"{"formVersion":"1","signedAt":"\#(day(-5))T09:00"}"#))
            #expect(try await t.send(.POST, "api/v1/participants/\(id)/eligibility/decision", headers: bearer(ines)).status == .ok)
            let allocated = try await t.send(.POST, "api/v1/participants/\(id)/allocation", headers: bearer(cora))
            #expect(allocated.status == .ok, "\(errorMessage(allocated))")
            for arm in ["msc_ev", "control", "\"arm\""] { #expect(!allocated.body.string.contains(arm)) }
            let read = try await t.send(.GET, "api/v1/participants/\(id)/allocation", headers: bearer(cora))
            #expect(!read.body.string.contains("\"arm\""))
            let history = try await t.send(.GET, "api/v1/participants/\(id)/history", headers: bearer(cora))
            #expect(history.status == .ok)
            for arm in ["msc_ev", "control"] { #expect(!history.body.string.contains(arm), "history names \(arm)") }
            let plan = try await t.send(.GET, "api/v1/participants/\(id)/doses", headers: bearer(cora))
            for hidden in ["product", "amount", "placebo", "particles"] { #expect(!plan.body.string.contains(hidden)) }
            let unblinded = try await t.send(.GET, "api/v1/participants/\(id)/allocation", headers: bearer(dave)).content.decode(AllocationDTO.self)
            #expect(["msc_ev", "control"].contains(unblinded.arm ?? ""))

            // Emergency unblinding: only an investigator, only with a reason; then that investigator alone sees the arm.
            #expect(try await t.send(.POST, "api/v1/participants/\(id)/unblinding", headers: bearer(cora), body: json(#"{"reason":"anaphylaxis"}"#)).status == .forbidden)
            let noReason = try await t.send(.POST, "api/v1/participants/\(id)/unblinding", headers: bearer(ines), body: json(#"{"reason":"  "}"#))
            #expect(errorMessage(noReason) == "reason: an emergency unblinding needs its reason")
            #expect(!(try await t.send(.GET, "api/v1/participants/\(id)/allocation", headers: bearer(ines)).body.string.contains("\"arm\"")))
            let broken = try await t.send(.POST, "api/v1/participants/\(id)/unblinding", headers: bearer(ines), body: json(#"{"reason":"anaphylaxis after the infusion"}"#))
            #expect(try broken.content.get(String.self, at: "arm") == unblinded.arm)
            #expect(try await t.send(.GET, "api/v1/participants/\(id)/allocation", headers: bearer(ines)).content.decode(AllocationDTO.self).arm == unblinded.arm)
            #expect(!(try await t.send(.GET, "api/v1/participants/\(id)/allocation", headers: bearer(cora)).body.string.contains("\"arm\"")))
            let trail = try await AuditChain.history(on: t.store.database, entity: "unblinding", entityID: id.uppercased())
            #expect(trail.first?.reason == "anaphylaxis after the infusion")
            #expect(trail.first?.actor == "ines")
        }
    }
}

@Suite struct VisitEntryAPITests {
    /// A whole screening visit in one call, its bilirubin entered once in mg/dL through the lab list; bad input is
    /// reported whole (a form's field and a lab's unit in one answer) and nothing is saved.
    @Test(arguments: TestDatabase.available)
    func oneCallForAWholeVisit(database: TestDatabase) async throws {
        try await TestApp.run(database) { t in
            try await t.user("cora", role: .coordinator, sites: ["SYSU3"])
            let cora = try await t.token("cora")
            let id = try await t.send(.POST, "api/v1/participants", headers: bearer(cora), body: json(#"{"siteCode":"SYSU3","screeningNumber":"V-001"}"#))
                .content.get(String.self, at: "id")
            let forms = #"""
                "demographics": {"screening_date":"\#(day(-5))","birth_date":"1975-06-01","sex":"F"},
                "aclf": {"chronic_liver_disease":true,"ascites":true,"ascites_date":"\#(day(-8))","encephalopathy":false,"needs_transplant":true},
                "history": {"malignancy":"no","active_infection":"no","combined_transplant":"no","retransplant":"no","ebv":"positive","hiv":"negative","hcv":"negative"},
                "consent": {"obtained":"yes","signed_at":"\#(day(-5))T09:00","form_version":"1"},
                "labs": {"collected_at":"\#(day(-5))T08:00","inr":1.9,"pt_activity":35,"meld_na":31}
                """#
            let bad = try await t.send(
                .PUT, "api/v1/participants/\(id)/visits/screening", headers: bearer(cora),
                body: json(#"{"forms": {\#(forms.replacingOccurrences(of: #""malignancy":"no""#, with: #""malignancy":"perhaps""#))}, "labs": [{"test":"BILI","value":17.5,"unit":"mmHg","collectedAt":"\#(day(-5))T08:00"}]}"#))
            #expect(bad.status == .unprocessableEntity)
            #expect(errorMessage(bad).contains("history.malignancy"), "\(errorMessage(bad))")
            #expect(errorMessage(bad).contains("labs[BILI].unit"), "\(errorMessage(bad))")
            #expect(try await t.send(.GET, "api/v1/participants/\(id)/forms", headers: bearer(cora)).content.decode([FormRecordDTOProbe].self).isEmpty)

            // 17.5 mg/dL of bilirubin (299 µmol/L at 17.1, or 299.3 at the catalogue's 17.104) is at least 10 × the ULN of 17.1 µmol/L.
            let saved = try await t.send(
                .PUT, "api/v1/participants/\(id)/visits/screening", headers: bearer(cora),
                body: json(#"{"forms": {\#(forms)}, "labs": [{"test":"BILI","value":17.5,"unit":"mg/dL","collectedAt":"\#(day(-5))T08:00"}]}"#))
            #expect(saved.status == .ok, "\(errorMessage(saved))")
            let body = try saved.content.decode(SavedVisitProbe.self)
            #expect(body.forms.count == 5)
            #expect(body.labs.map(\.test) == ["BILI"])
            let consent = try await t.send(
                .POST, "api/v1/participants/\(id)/consents", headers: bearer(cora), body: json(#"{"formVersion":"1","signedAt":"\#(day(-5))T09:00"}"#))
            #expect(consent.status == .created)
            let assessment = try await t.send(.GET, "api/v1/participants/\(id)/eligibility", headers: bearer(cora)).content.decode(EligibilityAssessment.self)
            #expect(assessment.outcome == .met, "\(assessment.criteria.filter { $0.result != .met }.map(\.verdict))")
            let jaundice = try #require(assessment.criteria.first { $0.evidence.contains { $0.name == "labs.total_bilirubin" } })
            #expect(jaundice.evidence.first { $0.name == "labs.total_bilirubin" }?.note?.hasPrefix("lab result 17.5 mg/dL") == true)
        }
    }
}

private struct FormRecordDTOProbe: Decodable { var id: String }
private struct SavedVisitProbe: Decodable {
    struct Lab: Decodable { var test: String }
    var forms: [FormRecordDTOProbe]
    var labs: [Lab]
}
