import Foundation
import TestSupport
import Testing
@testable import TrialDomain
import TrialStandards
import TrialStore
@testable import TrialWeb
import Vapor
import VaporTesting

@Suite struct StudyAPITests {
    @Test(arguments: TestDatabase.available)
    func aFreshServerServesTheBuiltInStudy(database: TestDatabase) async throws {
        try await TestApp.run(database) { t in
            try await t.user("root", role: .admin, sites: [])
            let token = try await t.token("root")
            let study = try await t.send(.GET, "api/v1/study", headers: bearer(token))
            #expect(study.status == .ok)
            let definition = try JSONDecoder().decode(StudyDefinition.self, from: Data(study.body.readableBytesView))
            #expect(definition == (try StudyFile.builtIn()))
            let schedule = try await t.send(.GET, "api/v1/study/schedule", headers: bearer(token)).content.decode(ScheduleGrid.self)
            #expect(schedule.rows.first { $0.visit == "safety_24h" }?.forms == ["vitals", "toxicity_24h"])
            #expect(schedule.rows.first { $0.visit == "safety_24h" }?.timing == "time_zero +24h ±2h")
            #expect(try await t.send(.GET, "api/v1/study", headers: [:]).status == .unauthorized)
            // The format's JSON Schema, the same document docs/ links.
            let schema = try await t.send(.GET, "api/v1/study/schema", headers: bearer(token))
            #expect(schema.status == .ok)
            #expect(Data(schema.body.readableBytesView) == (try StudySchema.text()))
            #expect(try schema.content.get(String.self, at: "$schema") == "https://json-schema.org/draft/2020-12/schema")
        }
    }

    @Test(arguments: TestDatabase.available)
    func anAmendmentIsPublishedWithItsDiffAndOldDataKeepsItsVersion(database: TestDatabase) async throws {
        try await TestApp.run(database) { t in
            try await t.user("dana", role: .dataManager, sites: ["SYSU3"])
            try await t.user("ana", role: .investigator, sites: ["SYSU3"])
            let dm = try await t.token("dana"), ana = try await t.token("ana")
            let created = try await t.send(.POST, "api/v1/participants", headers: bearer(ana), body: json(#"{"siteCode":"SYSU3","screeningNumber":"P-001"}"#))
            let id = try created.content.get(String.self, at: "id")
            let saved = try await t.send(
                .PUT, "api/v1/participants/\(id)/forms/screening/labs", headers: bearer(ana),
                body: json(#"{"values":{"collected_at":"2026-01-05T08:30","total_bilirubin":400,"inr":"2.1"}}"#))
            #expect(saved.status == .ok)
            #expect(try saved.content.get(Int.self, at: "studyVersion") == 1)

            var v2 = try StudyFile.builtIn()
            v2.version = 2
            v2.lifecycle.history.append(StatusChange(status: .recruiting, date: "2026-01-01", reason: nil))
            let definition = try StudyFile.json(v2)
            let noReason = try await t.send(.POST, "api/v1/study/versions", headers: bearer(dm), body: json(#"{"definition":\#(definition)}"#))
            #expect(noReason.status == .unprocessableEntity)
            #expect(errorMessage(noReason).contains("a reason is required"))
            let forbidden = try await t.send(.POST, "api/v1/study/versions", headers: bearer(ana), body: json(#"{"definition":\#(definition),"reason":"x"}"#))
            #expect(forbidden.status == .forbidden)
            let typo = definition.replacingOccurrences(of: #""masking""#, with: #""maskng" : "SINGLE", "masking""#)
            let badKey = try await t.send(.POST, "api/v1/study/versions", headers: bearer(dm), body: json(#"{"definition":\#(typo),"reason":"x"}"#))
            #expect(badKey.status == .unprocessableEntity)
            #expect(errorMessage(badKey).contains("definition.identity.maskng: unknown setting"))
            let published = try await t.send(
                .POST, "api/v1/study/versions", headers: bearer(dm), body: json(#"{"definition":\#(definition),"reason":"recruitment opens"}"#))
            #expect(published.status == .created)

            let diff = try await t.send(.GET, "api/v1/study/diff?from=1&to=2", headers: bearer(dm)).content.decode([StudyChangeDTO].self)
            #expect(diff.map(\.path) == ["lifecycle.history", "version"])
            let versions = try await t.send(.GET, "api/v1/study/versions", headers: bearer(dm)).content.decode([StudyVersionDTO].self)
            #expect(versions.map(\.reason) == [nil, "recruitment opens"])

            let records = try await t.send(.GET, "api/v1/participants/\(id)/forms", headers: bearer(ana)).content.decode([FormRecordDTO].self)
            #expect(records.map(\.studyVersion) == [1])
            let fresh = try await t.send(
                .PUT, "api/v1/participants/\(id)/forms/screening/demographics", headers: bearer(ana),
                body: json(#"{"values":{"screening_date":"2026-01-05","birth_date":"1980-02-29","sex":"F"}}"#))
            #expect(try fresh.content.get(Int.self, at: "studyVersion") == 2)
        }
    }

    @Test(arguments: TestDatabase.available)
    func badFormInputIsNamedAndNothingIsWritten(database: TestDatabase) async throws {
        try await TestApp.run(database) { t in
            try await t.site("B")
            try await t.user("ana", role: .investigator, sites: ["SYSU3"])
            try await t.user("bob", role: .investigator, sites: ["B"])
            let ana = try await t.token("ana"), bob = try await t.token("bob")
            let id = try await t.send(.POST, "api/v1/participants", headers: bearer(ana), body: json(#"{"siteCode":"SYSU3","screeningNumber":"P-001"}"#))
                .content.get(String.self, at: "id")
            let before = try await t.auditCount()
            let cases: [(String, String, HTTPResponseStatus, String)] = [
                ("screening/labs", #"{"values":{"collected_at":"2026-01-05T08:30","inr":"very high"}}"#, .unprocessableEntity, "inr: must be a number in ratio"),
                ("screening/labs", #"{"values":{"collected_at":"2026-01-05T08:30","total_bilirubin":99999}}"#, .unprocessableEntity, "total_bilirubin: must be at most 1500 umol/L"),
                ("screening/labs", #"{"values":{"collected_at":"2026-01-05T08:30"},"note":"x"}"#, .unprocessableEntity, "note: unknown field"),
                ("screening/labs", #"{"values":{"collected_at":["2026"]}}"#, .unprocessableEntity, "values.collected_at: must be"),
                ("day_7/demographics", #"{"values":{}}"#, .unprocessableEntity, "visit: form 'demographics' is not collected at visit 'day_7'"),
            ]
            for (path, body, status, message) in cases {
                let response = try await t.send(.PUT, "api/v1/participants/\(id)/forms/\(path)", headers: bearer(ana), body: json(body))
                #expect(response.status == status, "\(body)")
                #expect(errorMessage(response).contains(message), "\(errorMessage(response))")
            }
            let other = try await t.send(
                .PUT, "api/v1/participants/\(id)/forms/screening/labs", headers: bearer(bob), body: json(#"{"values":{"collected_at":"2026-01-05T08:30"}}"#))
            #expect(other.status == .notFound)
            #expect(try await t.auditCount() == before)
        }
    }
}

@Suite struct StudyPageTests {
    @Test func theOverviewScheduleAndFormPagesShowTheStudy() async throws {
        try await TestApp.run(.sqlite) { t in
            try await t.user("ana", role: .investigator, sites: ["SYSU3"])
            let token = try await t.token("ana")
            let id = try await t.send(.POST, "api/v1/participants", headers: bearer(token), body: json(#"{"siteCode":"SYSU3","screeningNumber":"P-001"}"#))
                .content.get(String.self, at: "id")
            let browser = PageBrowser(t)
            _ = try await browser.signIn("ana")
            let overview = try await browser.request(.GET, "study").body.string
            #expect(overview.contains("MSC-EV of ThirdSunYatSen"))
            #expect(overview.contains("1×10^10 particles in 100 mL"))
            #expect(overview.contains("Withdrawn"))
            #expect(overview.contains("labs.total_bilirubin &gt;= 10 × bilirubin_uln"))
            let schedule = try await browser.request(.GET, "study/schedule").body.string
            #expect(schedule.contains("time_zero +24h ±2h"))
            let form = try await browser.request(.GET, "participants/\(id)/forms/screening/labs")
            #expect(form.status == .ok)
            let csrf = try #require(PageBrowser.csrf(in: form.body.string))
            let bad = try await browser.request(.POST, "participants/\(id)/forms/screening/labs", form: ["csrf": csrf, "collected_at": "2026-01-05T08:30", "inr": "abc"])
            #expect(bad.status == .unprocessableEntity)
            #expect(bad.body.string.contains("inr: must be a number in ratio"))
            // What was typed is shown again.
            #expect(bad.body.string.contains(#"value="abc""#))
            // ... escaped: Plot writes attribute values as given, so a typed quote must not end the attribute.
            let hostile = try await browser.request(
                .POST, "participants/\(id)/forms/screening/labs", form: ["csrf": csrf, "collected_at": "2026-01-05T08:30", "inr": #""><script>alert(1)</script>"#])
            #expect(hostile.status == .unprocessableEntity)
            #expect(hostile.body.string.contains(#"value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;""#))
            #expect(!hostile.body.string.contains("<script>alert(1)"))
            let good = try await browser.request(.POST, "participants/\(id)/forms/screening/labs", form: ["csrf": csrf, "collected_at": "2026-01-05T08:30", "inr": "2.1"])
            #expect(good.status == .seeOther)
            let detail = try await browser.request(.GET, "participants/\(id)").body.string
            #expect(detail.contains("entered (study version 1)"))
        }
    }
}
