import Foundation
import TestSupport
import Testing
@testable import TrialDomain
import TrialStandards
import TrialStore
@testable import TrialWeb
import Vapor
import VaporTesting

private func when(_ hours: Double) -> String { iso(Date().addingTimeInterval(hours * 3600)) }

/// The site gets ALT, AST and bilirubin ranges by amendment, as a real site laboratory would add them.
private func amendRanges(_ t: TestApp) async throws {
    var study = try StudyFile.builtIn()
    study.version = 2
    study.sites[0].referenceRanges = [ReferenceRange(test: "BILI", high: 17.1), ReferenceRange(test: "ALT", high: 40), ReferenceRange(test: "AST", high: 40)]
    _ = try await FluentStudyRepository(store: t.store).publish(study, actor: "dm", reason: "site laboratory ranges", now: Date())
}

@Suite struct SafetyAPITests {
    @Test(arguments: TestDatabase.available)
    func labsScoresHysLawAndTheSAEClock(database: TestDatabase) async throws {
        try await TestApp.run(database) { t in
            try await amendRanges(t)
            try await t.user("cora", role: .coordinator, sites: ["SYSU3"])
            let cora = try await t.token("cora")
            let id = try await t.send(.POST, "api/v1/participants", headers: bearer(cora), body: json(#"{"siteCode":"SYSU3","screeningNumber":"S-1"}"#))
                .content.get(String.self, at: "id")
            for (test, value, unit) in [("ALT", 100.0, "U/L"), ("BILI", 200.0, "umol/L"), ("INR", 2.0, "ratio"), ("CREAT", 132.6, "umol/L"), ("SODIUM", 130.0, "mmol/L"), ("ALB", 25.0, "g/L")] {
                let r = try await t.send(.POST, "api/v1/participants/\(id)/labs", headers: bearer(cora),
                    body: json(#"{"visit":"screening","test":"\#(test)","value":\#(value),"unit":"\#(unit)","collectedAt":"\#(when(-30))"}"#))
                #expect(r.status == .created, "\(test): \(errorMessage(r))")
            }
            // Day 7: ALT 400 (10 × ULN, 4 × baseline 100) with bilirubin 450 (26 × ULN, 2.25 × baseline 200): Hy's law both ways.
            for (test, value) in [("ALT", 400.0), ("BILI", 450.0)] {
                _ = try await t.send(.POST, "api/v1/participants/\(id)/labs", headers: bearer(cora),
                    body: json(#"{"visit":"day_7","test":"\#(test)","value":\#(value),"unit":"\#(test == "ALT" ? "U/L" : "umol/L")","collectedAt":"\#(when(-2))"}"#))
            }
            let hys = try await t.send(.GET, "api/v1/participants/\(id)/hys-law", headers: bearer(cora)).content.decode([HysLawDTO].self)
            #expect(hys.first { $0.visit == "day_7" }.map { ($0.byULN, $0.byBaseline) } ?? (false, false) == (true, true))
            let labs = try await t.send(.GET, "api/v1/participants/\(id)/labs", headers: bearer(cora)).content.decode([LabResult].self)
            let day7ALT = try #require(labs.first { $0.visit == "day_7" && $0.test == "ALT" })
            #expect(day7ALT.gradeV4 == 3)
            // v5.0 against the abnormal baseline 100: 4.0 × baseline is in >3.0–5.0, grade 2.
            #expect(day7ALT.gradeV5 == 2)
            #expect(day7ALT.treatmentEmergent)

            // Clinical findings at screening let Child–Pugh join the MELD scores.
            _ = try await t.send(.PUT, "api/v1/participants/\(id)/forms/screening/clinical", headers: bearer(cora),
                body: json(#"{"values":{"ascites_grade":"mild","he_grade":1}}"#))
            let scores = try await t.send(.GET, "api/v1/participants/\(id)/scores", headers: bearer(cora)).content.decode([VisitScoresDTO].self)
            let screening = try #require(scores.first { $0.visit == "screening" })
            // Bilirubin 200 µmol/L = 11.69 mg/dL (3 points), albumin 2.5 g/dL (3), INR 2.0 (2), mild ascites (2), HE grade 1 (2): 12.
            #expect(screening.scores["child-pugh"] == 12)
            #expect(screening.scores["meld"] != nil)
            #expect(screening.scores["meld-3.0"] == nil)

            // A serious event the site learned of 25 hours ago is overdue.
            let sae = try await t.send(.POST, "api/v1/participants/\(id)/adverse-events", headers: bearer(cora), body: json("""
                {"meddra":"10002218","grade":3,"onsetAt":"\(when(-26))","seriousness":["hospitalization"],"attribution":"possible","expected":false,
                 "actionTaken":"treated","outcome":"recovering","awareAt":"\(when(-25))"}
                """))
            #expect(sae.status == .created, "\(errorMessage(sae))")
            let list = try await t.send(.GET, "api/v1/serious-adverse-events", headers: bearer(cora)).content.decode([SAEDTO].self)
            #expect(list.count == 1)
            #expect(list[0].overdue)
            let bad = try await t.send(.POST, "api/v1/participants/\(id)/adverse-events", headers: bearer(cora), body: json("""
                {"meddra":"10002218","grade":3,"onsetAt":"\(when(-3))","seriousness":["bad luck"],"attribution":"possible","expected":false,"actionTaken":"x","outcome":"y"}
                """))
            #expect(errorMessage(bad).contains("seriousness: 'bad luck' is not one of"))
            let terms = try await t.send(.GET, "api/v1/ctcae/terms?q=fever", headers: bearer(cora)).content.decode([CTCAETerm].self)
            #expect(terms.map(\.term) == ["Fever"])
        }
    }
}

@Suite struct EndpointAPITests {
    /// Every endpoint the definition computes, one by code, the primary under its old path, and 404 for an unknown code.
    @Test(arguments: TestDatabase.available)
    func endpointsByCodeAndArmsOnlyForThoseWhoMaySeeThem(database: TestDatabase) async throws {
        try await TestApp.run(database) { t in
            try await t.user("cora", role: .coordinator, sites: ["SYSU3"])
            try await t.user("dave", role: .dsmbViewer, sites: ["SYSU3"])
            let cora = try await t.token("cora"), dave = try await t.token("dave")
            let all = try await t.send(.GET, "api/v1/endpoints", headers: bearer(cora))
            #expect(all.status == .ok)
            let results = try all.content.decode([EndpointResult].self)
            let study = try StudyFile.builtIn()
            #expect(results.map(\.code) == study.endpoints.map(\.code))
            #expect(results.first?.method == "proportion")
            // Open label: everyone who reads participants sees arms.
            #expect(results.first?.groups.map(\.arm) == [nil, "msc_ev", "control"])
            let one = try await t.send(.GET, "api/v1/endpoints/ast", headers: bearer(cora)).content.decode(EndpointResult.self)
            #expect(one.unit == "U/L")
            #expect(try await t.send(.GET, "api/v1/endpoints/nope", headers: bearer(cora)).status == .notFound)
            let primary = try await t.send(.GET, "api/v1/primary-endpoint", headers: bearer(cora)).content.decode(EndpointResult.self)
            #expect(primary.code == "infusion_toxicity")

            // Masked by amendment: the coordinator sees everyone together only; the DSMB viewer still sees arms.
            var masked = study
            masked.version = 2
            masked.identity.masking = "DOUBLE"
            _ = try await FluentStudyRepository(store: t.store).publish(masked, actor: "dm", reason: "masking", now: Date())
            let blind = try await t.send(.GET, "api/v1/endpoints/infusion_toxicity", headers: bearer(cora)).content.decode(EndpointResult.self)
            #expect(blind.groups.map(\.arm) == [nil])
            let unblinded = try await t.send(.GET, "api/v1/endpoints/infusion_toxicity", headers: bearer(dave)).content.decode(EndpointResult.self)
            #expect(unblinded.groups.count == 3)
        }
    }
}
