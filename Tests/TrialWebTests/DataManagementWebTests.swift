import Foundation
import TestSupport
import Testing
import TrialDomain
import TrialStore
@testable import TrialWeb
import Vapor
import VaporTesting

private func when(_ hours: Double) -> String { iso(Date().addingTimeInterval(hours * 3600)) }

@Suite struct DataManagementAPITests {
    /// The monitor's query on a lab value through the API: the coordinator corrects the value (the reason answers),
    /// cannot close; the monitor closes; the data manager locks the study and every write path answers 409.
    @Test(arguments: TestDatabase.available)
    func aQueryIsAnsweredByACorrectionAndALockRefusesWrites(database: TestDatabase) async throws {
        try await TestApp.run(database) { t in
            try await t.user("cora", role: .coordinator, sites: ["SYSU3"])
            try await t.user("mona", role: .monitor, sites: ["SYSU3"])
            try await t.user("dora", role: .dataManager, sites: ["SYSU3"])
            let cora = try await t.token("cora"), mona = try await t.token("mona"), dora = try await t.token("dora")
            let id = try await t.send(.POST, "api/v1/participants", headers: bearer(cora), body: json(#"{"siteCode":"SYSU3","screeningNumber":"S-1"}"#))
                .content.get(String.self, at: "id")
            let collected = when(-30)
            let lab = try await t.send(.POST, "api/v1/participants/\(id)/labs", headers: bearer(cora),
                body: json(#"{"visit":"screening","test":"ALT","value":400,"unit":"U/L","collectedAt":"\#(collected)"}"#))
            #expect(lab.status == .created, "\(errorMessage(lab))")

            // Site staff may not raise a query; the monitor may.
            let body = #"{"participantId":"\#(id)","target":{"visit":"screening","lab":"ALT","field":"value"},"text":"Source shows 40"}"#
            #expect(try await t.send(.POST, "api/v1/queries", headers: bearer(cora), body: json(body)).status == .forbidden)
            let raised = try await t.send(.POST, "api/v1/queries", headers: bearer(mona), body: json(body))
            #expect(raised.status == .created, "\(errorMessage(raised))")
            let queryID = try raised.content.get(String.self, at: "id")
            #expect(try raised.content.get(String.self, at: "status") == "open")

            let open = try await t.send(.GET, "api/v1/queries?status=open&site=SYSU3&assignee=coordinator&participant=\(id)", headers: bearer(cora))
            #expect(try open.content.decode(QueryPageDTO.self).items.map(\.id) == [UUID(uuidString: queryID)])

            // A correction needs its reason; given one, it answers the query.
            let noReason = try await t.send(.PUT, "api/v1/participants/\(id)/labs/screening/ALT", headers: bearer(cora),
                body: json(#"{"value":40,"unit":"U/L","collectedAt":"\#(collected)","reason":" "}"#))
            #expect(noReason.status == .unprocessableEntity)
            let corrected = try await t.send(.PUT, "api/v1/participants/\(id)/labs/screening/ALT", headers: bearer(cora),
                body: json(#"{"value":40,"unit":"U/L","collectedAt":"\#(collected)","reason":"transcription error"}"#))
            #expect(corrected.status == .ok, "\(errorMessage(corrected))")
            #expect(try corrected.content.get(Double.self, at: "enteredValue") == 40)
            let answered = try await t.send(.GET, "api/v1/queries/\(queryID)", headers: bearer(mona)).content.decode(QueryDTO.self)
            #expect(answered.status == "answered")
            #expect(answered.answeredBy == "cora")

            let closeByCoordinator = try await t.send(.POST, "api/v1/queries/\(queryID)/transitions", headers: bearer(cora), body: json(#"{"action":"close"}"#))
            #expect(closeByCoordinator.status == .forbidden)
            #expect(errorMessage(closeByCoordinator).contains("only a monitor or data manager closes"))
            let closed = try await t.send(.POST, "api/v1/queries/\(queryID)/transitions", headers: bearer(mona), body: json(#"{"action":"close","text":"ok"}"#))
            #expect(try closed.content.get(String.self, at: "status") == "closed")
            let again = try await t.send(.POST, "api/v1/queries/\(queryID)/transitions", headers: bearer(cora), body: json(#"{"action":"answer","text":"x"}"#))
            #expect(again.status == .conflict)
            let bad = try await t.send(.POST, "api/v1/queries/\(queryID)/transitions", headers: bearer(mona), body: json(#"{"action":"approve"}"#))
            #expect(bad.status == .unprocessableEntity)

            // Only a data manager locks; under the lock every write answers 409 naming the lock.
            #expect(try await t.send(.POST, "api/v1/locks", headers: bearer(mona), body: json(#"{"kind":"lock","level":"study","reason":"x"}"#)).status == .forbidden)
            let lock = try await t.send(.POST, "api/v1/locks", headers: bearer(dora), body: json(#"{"kind":"lock","level":"study","reason":"final analysis"}"#))
            #expect(lock.status == .created, "\(errorMessage(lock))")
            #expect(try lock.content.get(String.self, at: "datasetSha256").count == 64)
            let writes: [(HTTPMethod, String, String)] = [
                (.POST, "api/v1/participants/\(id)/labs", #"{"visit":"screening","test":"AST","value":40,"unit":"U/L","collectedAt":"\#(collected)"}"#),
                (.PUT, "api/v1/participants/\(id)/labs/screening/ALT", #"{"value":41,"unit":"U/L","collectedAt":"\#(collected)","reason":"r"}"#),
                (.PUT, "api/v1/participants/\(id)/forms/screening/clinical", #"{"values":{"he_grade":1}}"#),
                (.POST, "api/v1/participants", #"{"siteCode":"SYSU3","screeningNumber":"S-2"}"#),
                (.POST, "api/v1/participants/\(id)/consents", #"{"formVersion":"1","signedAt":"\#(when(-1))"}"#),
            ]
            for (method, path, body) in writes {
                let r = try await t.send(method, path, headers: bearer(cora), body: json(body))
                #expect(r.status == .conflict, "\(method) \(path): \(r.status) \(errorMessage(r))")
                #expect(errorMessage(r).contains("the study is locked"), "\(path)")
            }
            #expect(try await t.send(.POST, "api/v1/queries", headers: bearer(mona), body: json(body)).status == .conflict)
            let locks = try await t.send(.GET, "api/v1/locks", headers: bearer(cora)).content.decode([LockDTO].self)
            #expect(locks.count == 1)
            let unlock = try await t.send(.POST, "api/v1/locks/\(locks[0].id)/unlock", headers: bearer(dora), body: json(#"{"reason":"late data"}"#))
            #expect(unlock.status == .noContent)
            let after = try await t.send(.PUT, "api/v1/participants/\(id)/forms/screening/clinical", headers: bearer(cora), body: json(#"{"values":{"he_grade":1}}"#))
            #expect(after.status == .ok, "\(errorMessage(after))")
        }
    }

    /// Signing through the API: user ID and password each time, the signer's own; wrong credentials are refused
    /// (403) and audited, and the fifth in a row locks signing for 15 minutes (409) even for the right password.
    @Test(arguments: TestDatabase.available)
    func signingChecksCredentialsAndLocksAfterFiveWrong(database: TestDatabase) async throws {
        try await TestApp.run(database) { t in
            try await t.user("cora", role: .coordinator, sites: ["SYSU3"])
            try await t.user("ivan", role: .investigator, sites: ["SYSU3"])
            let cora = try await t.token("cora"), ivan = try await t.token("ivan")
            let id = try await t.send(.POST, "api/v1/participants", headers: bearer(cora), body: json(#"{"siteCode":"SYSU3","screeningNumber":"S-1"}"#))
                .content.get(String.self, at: "id")
            _ = try await t.send(.PUT, "api/v1/participants/\(id)/forms/screening/clinical", headers: bearer(cora), body: json(#"{"values":{"he_grade":1}}"#))
            let path = "api/v1/participants/\(id)/signatures"
            #expect(try await t.send(.POST, path, headers: bearer(cora), body: json(#"{"username":"cora","password":"\#(TestApp.password)"}"#)).status == .forbidden)
            let noUser = try await t.send(.POST, path, headers: bearer(ivan), body: json(#"{"password":"\#(TestApp.password)"}"#))
            #expect(noUser.status == .unprocessableEntity)
            #expect(try await t.send(.POST, path, headers: bearer(ivan), body: json(#"{"username":"cora","password":"\#(TestApp.password)"}"#)).status == .forbidden)
            let signed = try await t.send(.POST, path, headers: bearer(ivan), body: json(#"{"username":"ivan","password":"\#(TestApp.password)","meaning":"approve"}"#))
            #expect(signed.status == .created, "\(errorMessage(signed))")
            let signature = try signed.content.decode(SignatureDTO.self)
            #expect(signature.valid)
            #expect(signature.signedAtSite.hasSuffix("Asia/Shanghai") || signature.signedAtSite.hasSuffix("UTC"))
            // A change after signing shows on the signature.
            _ = try await t.send(.PUT, "api/v1/participants/\(id)/forms/screening/clinical", headers: bearer(cora), body: json(#"{"values":{"he_grade":2},"reason":"re-examined"}"#))
            let after = try await t.send(.GET, path, headers: bearer(cora)).content.decode([SignatureDTO].self)
            #expect(after.map(\.valid) == [false])
            #expect(after.first?.changed == ["screening/clinical.he_grade"])

            for attempt in 1...5 {
                let r = try await t.send(.POST, path, headers: bearer(ivan), body: json(#"{"username":"ivan","password":"wrong password \#(attempt)"}"#))
                #expect(r.status == (attempt < 5 ? .forbidden : .conflict), "attempt \(attempt): \(errorMessage(r))")
            }
            let locked = try await t.send(.POST, path, headers: bearer(ivan), body: json(#"{"username":"ivan","password":"\#(TestApp.password)"}"#))
            #expect(locked.status == .conflict)
            #expect(errorMessage(locked).contains("signing is locked"))
        }
    }

    /// A deviation raised by hand through the API, reviewed by the monitor; the list shows the classification.
    @Test(arguments: TestDatabase.available)
    func aDeviationIsRaisedAndReviewedThroughTheAPI(database: TestDatabase) async throws {
        try await TestApp.run(database) { t in
            try await t.user("cora", role: .coordinator, sites: ["SYSU3"])
            try await t.user("mona", role: .monitor, sites: ["SYSU3"])
            let cora = try await t.token("cora"), mona = try await t.token("mona")
            let id = try await t.send(.POST, "api/v1/participants", headers: bearer(cora), body: json(#"{"siteCode":"SYSU3","screeningNumber":"S-1"}"#))
                .content.get(String.self, at: "id")
            let bad = try await t.send(.POST, "api/v1/deviations", headers: bearer(cora), body: json(#"{"participantId":"\#(id)","kind":"dose","detail":"x"}"#))
            #expect(bad.status == .unprocessableEntity)
            let raised = try await t.send(.POST, "api/v1/deviations", headers: bearer(cora),
                body: json(#"{"participantId":"\#(id)","kind":"consent","detail":"Consent signed on an outdated form version"}"#))
            #expect(raised.status == .created, "\(errorMessage(raised))")
            let key = try raised.content.get(String.self, at: "key")
            #expect(try await t.send(.POST, "api/v1/deviations/\(key)/review", headers: bearer(cora), body: json(#"{"classification":"important"}"#)).status == .forbidden)
            let review = try await t.send(.POST, "api/v1/deviations/\(key)/review", headers: bearer(mona), body: json(#"{"classification":"important","note":"re-consent needed"}"#))
            #expect(review.status == .noContent, "\(errorMessage(review))")
            let list = try await t.send(.GET, "api/v1/deviations", headers: bearer(mona)).content.decode([ProtocolDeviationDTO].self)
            #expect(list.first { $0.key == key }?.classification == "important")
        }
    }
}

