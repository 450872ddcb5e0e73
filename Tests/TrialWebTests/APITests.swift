import FluentKit
import Foundation
import TestSupport
import Testing
import TrialDomain
import TrialStore
@testable import TrialWeb
import Vapor
import VaporTesting

/// Sites A and B, an investigator at each, and a participant at A created through the API.
private struct World {
    let t: TestApp
    let ana: String
    let bob: String
    let participantID: String

    static func make(_ t: TestApp) async throws -> World {
        try await t.site("A")
        try await t.site("B")
        try await t.user("ana", role: .investigator, sites: ["A"])
        try await t.user("bob", role: .investigator, sites: ["B"])
        let ana = try await t.token("ana")
        let created = try await t.send(
            .POST, "api/v1/participants", headers: bearer(ana), body: json(#"{"siteCode":"A","screeningNumber":"A-001"}"#))
        #expect(created.status == .created)
        let id = try created.content.get(String.self, at: "id")
        return World(t: t, ana: ana, bob: try await t.token("bob"), participantID: id)
    }
}

@Suite struct APIAuthTests {
    @Test(arguments: TestDatabase.available)
    func theAPIWantsABearerToken(database: TestDatabase) async throws {
        try await TestApp.run(database) { t in
            let none = try await t.send(.GET, "api/v1/me")
            #expect(none.status == .unauthorized)
            #expect(errorMessage(none).contains("Authorization"))
            let wrong = try await t.send(.GET, "api/v1/me", headers: bearer("cbk_nonsense"))
            #expect(wrong.status == .unauthorized)
        }
    }

    @Test(arguments: TestDatabase.available)
    func aRevokedTokenStopsWorking(database: TestDatabase) async throws {
        try await TestApp.run(database) { t in
            try await t.site("A")
            try await t.user("ana", role: .coordinator, sites: ["A"])
            let token = try await t.token("ana")
            let me = try await t.send(.GET, "api/v1/me", headers: bearer(token))
            #expect(me.status == .ok)
            #expect(try me.content.get(String.self, at: "role") == "coordinator")
            let created = try await t.send(.POST, "api/v1/tokens", headers: bearer(token), body: json(#"{"name":"script"}"#))
            #expect(created.status == .created)
            let second = try created.content.get(String.self, at: "token")
            let secondID = try created.content.get(String.self, at: "id")
            // Used once, so the account behind it is cached: revoking must still take effect at once.
            #expect(try await t.send(.GET, "api/v1/me", headers: bearer(second)).status == .ok)
            #expect(try await t.send(.DELETE, "api/v1/tokens/\(secondID)", headers: bearer(token)).status == .noContent)
            #expect(try await t.send(.GET, "api/v1/me", headers: bearer(second)).status == .unauthorized)
            #expect(try await t.send(.GET, "api/v1/me", headers: bearer(token)).status == .ok)
            // So must deactivating the account.
            _ = try await t.accounts.updateUser("ana", change: .init(isActive: false), actor: "root", reason: "left the trial", now: Date())
            #expect(try await t.send(.GET, "api/v1/me", headers: bearer(token)).status == .unauthorized)
        }
    }

    @Test(arguments: TestDatabase.available)
    func tokensAreStoredOnlyAsHashes(database: TestDatabase) async throws {
        try await TestApp.run(database) { t in
            try await t.user("root", role: .admin, sites: [])
            let token = try await t.token("root")
            let stored = try await APITokenModel.query(on: t.store.database).all()
            #expect(stored.count == 1)
            #expect(stored[0].tokenHash == Secrets.sha256(token))
            #expect(stored[0].tokenHash != token)
        }
    }
}

@Suite struct APISiteIsolationTests {
    @Test(arguments: TestDatabase.available)
    func anotherSitesParticipantIsNotFound(database: TestDatabase) async throws {
        try await TestApp.run(database) { t in
            let w = try await World.make(t)
            let before = try await t.auditCount()
            let path = "api/v1/participants/\(w.participantID)"
            #expect(try await t.send(.GET, path, headers: bearer(w.ana)).status == .ok)
            for (method, body) in [(HTTPMethod.GET, nil), (.PATCH, #"{"status":"withdrawn","reason":"x"}"#), (.DELETE, #"{"reason":"x"}"#)] {
                let response = try await t.send(method, path, headers: bearer(w.bob), body: body.map(json))
                #expect(response.status == .notFound, "\(method) by another site's user")
                #expect(errorMessage(response).contains(w.participantID))
            }
            #expect(try await t.send(.GET, path + "/history", headers: bearer(w.bob)).status == .notFound)
            let list = try await t.send(.GET, "api/v1/participants", headers: bearer(w.bob))
            #expect(try list.content.decode(ParticipantPageDTO.self).items.isEmpty)
            let intoA = try await t.send(
                .POST, "api/v1/participants", headers: bearer(w.bob), body: json(#"{"siteCode":"A","screeningNumber":"A-002"}"#))
            #expect(intoA.status == .notFound)
            #expect(try await t.auditCount() == before)
        }
    }

    @Test(arguments: TestDatabase.available)
    func rolesLimitWhatTheAPIDoes(database: TestDatabase) async throws {
        try await TestApp.run(database) { t in
            let w = try await World.make(t)
            try await t.user("moni", role: .monitor, sites: ["A"])
            try await t.user("root", role: .admin, sites: [])
            let monitor = try await t.token("moni")
            let admin = try await t.token("root")
            #expect(try await t.send(.GET, "api/v1/participants/\(w.participantID)", headers: bearer(monitor)).status == .ok)
            let write = try await t.send(
                .PATCH, "api/v1/participants/\(w.participantID)", headers: bearer(monitor), body: json(#"{"status":"eligible","reason":"x"}"#))
            #expect(write.status == .forbidden)
            #expect(errorMessage(write).contains("monitor"))
            #expect(try await t.send(.GET, "api/v1/participants", headers: bearer(admin)).status == .forbidden)
            let site = try await t.send(.POST, "api/v1/sites", headers: bearer(admin), body: json(#"{"code":"C","name":"Site C"}"#))
            #expect(site.status == .created)
            #expect(try await t.send(.POST, "api/v1/sites", headers: bearer(w.ana), body: json(#"{"code":"D","name":"D"}"#)).status == .forbidden)
            let verify = try await t.send(.GET, "api/v1/audit/verify", headers: bearer(admin))
            #expect(try verify.content.get(Bool.self, at: "intact"))
        }
    }
}

@Suite struct APIChangeTests {
    @Test(arguments: TestDatabase.available)
    func aStatusChangeNeedsAReasonAndIsInTheHistory(database: TestDatabase) async throws {
        try await TestApp.run(database) { t in
            let w = try await World.make(t)
            let path = "api/v1/participants/\(w.participantID)"
            let noReason = try await t.send(.PATCH, path, headers: bearer(w.ana), body: json(#"{"status":"eligible"}"#))
            #expect(noReason.status == .unprocessableEntity)
            #expect(errorMessage(noReason).contains("reason is required"))
            let changed = try await t.send(.PATCH, path, headers: bearer(w.ana), body: json(#"{"status":"eligible","reason":"labs confirm ACLF"}"#))
            #expect(changed.status == .ok)
            #expect(try changed.content.get(String.self, at: "status") == "eligible")
            let history = try await t.send(.GET, path + "/history", headers: bearer(w.ana))
            let events = try history.content.decode([AuditEventDTO].self)
            #expect(events.map(\.action) == ["create", "update"])
            #expect(events[1].reason == "labs confirm ACLF")
            #expect(events[1].actor == "ana")
            #expect(events[1].changes.first?.old == "screening")
            let deleted = try await t.send(.DELETE, path, headers: bearer(w.ana), body: json(#"{"reason":"entered twice"}"#))
            #expect(deleted.status == .noContent)
            #expect(try await t.send(.GET, path, headers: bearer(w.ana)).status == .notFound)
            #expect(try await AuditChain.verify(on: t.store.database).isIntact)
        }
    }
}

@Suite struct APIBadInputTests {
    static let cases: [(name: String, body: String, status: HTTPResponseStatus, message: String)] = [
        ("malformed", #"{"siteCode":"A","#, .badRequest, "body: malformed JSON"),
        ("not an object", #"["A"]"#, .badRequest, "body: must be a JSON object"),
        ("null", "null", .badRequest, "body: must be a JSON object"),
        ("unknown field", #"{"siteCode":"A","screeningNumber":"A-9","name":"Jane"}"#, .unprocessableEntity, "name: unknown field"),
        ("wrong type", #"{"siteCode":"A","screeningNumber":9}"#, .unprocessableEntity, "screeningNumber: must be a string"),
        ("missing field", #"{"siteCode":"A"}"#, .unprocessableEntity, "screeningNumber: is required"),
        ("null field", #"{"siteCode":"A","screeningNumber":null}"#, .unprocessableEntity, "screeningNumber: is required"),
        ("rule broken", #"{"siteCode":"A","screeningNumber":"Jane Doe"}"#, .unprocessableEntity, "screeningNumber: may hold only"),
        ("duplicate", #"{"siteCode":"A","screeningNumber":"A-001"}"#, .conflict, "screeningNumber: 'A-001' is already in use"),
    ]

    @Test(arguments: TestDatabase.available)
    func badBodiesAreRefusedByNameAndNothingIsWritten(database: TestDatabase) async throws {
        try await TestApp.run(database) { t in
            let w = try await World.make(t)
            let before = try await t.auditCount()
            for c in Self.cases {
                let response = try await t.send(.POST, "api/v1/participants", headers: bearer(w.ana), body: json(c.body))
                #expect(response.status == c.status, "\(c.name)")
                #expect(errorMessage(response).contains(c.message), "\(c.name): \(errorMessage(response))")
            }
            let wrongType = try await t.send(.POST, "api/v1/participants", headers: bearer(w.ana, json: false), body: json("siteCode=A"))
            #expect(wrongType.status == .unsupportedMediaType)
            let badID = try await t.send(.GET, "api/v1/participants/not-a-uuid", headers: bearer(w.ana))
            #expect(badID.status == .unprocessableEntity)
            #expect(errorMessage(badID).contains("id: must be a participant UUID"))
            let badStatus = try await t.send(
                .PATCH, "api/v1/participants/\(w.participantID)", headers: bearer(w.ana), body: json(#"{"status":"cured","reason":"x"}"#))
            #expect(errorMessage(badStatus).contains("status: must be one of"))
            #expect(try await t.auditCount() == before)
            #expect(try await t.send(.GET, "api/v1/participants", headers: bearer(w.ana)).content.decode(ParticipantPageDTO.self).items.count == 1)
        }
    }

    /// The size limit is enforced while the body streams in, so this one goes through a real socket.
    @Test func aBodyOverTheLimitIsRefused() async throws {
        try await TestApp.run(.sqlite, environment: ["CASEBOOK_MAX_BODY_KB": "1"]) { t in
            try await t.site("A")
            try await t.user("ana", role: .investigator, sites: ["A"])
            let token = try await t.token("ana")
            let big = #"{"siteCode":"A","screeningNumber":""# + String(repeating: "9", count: 4096) + #""}"#
            let response = try await t.app.testing(method: .running(port: 0)).sendRequest(
                .POST, "api/v1/participants", headers: bearer(token), body: json(big))
            #expect(response.status == .payloadTooLarge)
            #expect(errorMessage(response).contains("larger than the limit of 1 KiB"))
            #expect(try await FluentParticipantRepository(store: t.store).list(scope: .init(actor: "x", siteIDs: Set(try await t.accounts.sites().map(\.id)))).isEmpty)
        }
    }
}

/// RFC 9110 §8.3.1: the media type is case-insensitive and may carry parameters after ";".
@Suite struct JSONContentTypeTests {
    @Test(arguments: ["application/json", "application/json; charset=utf-8", "Application/JSON", " application/json ;charset=UTF-8"])
    func jsonIsRecognised(value: String) {
        #expect(Request.isJSON(contentType: value))
    }

    @Test(arguments: [nil, "", "text/plain", "application/jsonx", "application/json-patch+json", "application/x-www-form-urlencoded", "application/js\u{0}on"])
    func anythingElseIsNot(value: String?) {
        #expect(!Request.isJSON(contentType: value))
    }
}

@Suite struct ParticipantPagingTests {
    /// 7 participants in pages of 3: 3, 3, 1, in screening-number order, each page's cursor leading to the next; a forged cursor is refused.
    @Test(arguments: TestDatabase.available)
    func pagesFollowTheCursorToTheEnd(database: TestDatabase) async throws {
        try await TestApp.run(database) { t in
            try await t.user("cora", role: .coordinator, sites: ["SYSU3"])
            let cora = try await t.token("cora")
            for n in [5, 1, 7, 3, 2, 6, 4] {
                let r = try await t.send(.POST, "api/v1/participants", headers: bearer(cora), body: json(#"{"siteCode":"SYSU3","screeningNumber":"P-\#(n)"}"#))
                #expect(r.status == .created)
            }
            var seen: [String] = [], sizes: [Int] = []
            var after: String?
            repeat {
                let path = "api/v1/participants?limit=3" + (after.map { "&after=\($0)" } ?? "")
                let page = try await t.send(.GET, path, headers: bearer(cora)).content.decode(ParticipantPageDTO.self)
                sizes.append(page.items.count)
                seen += page.items.map(\.screeningNumber)
                after = page.next
            } while after != nil && sizes.count < 10
            #expect(sizes == [3, 3, 1])
            #expect(seen == (1...7).map { "P-\($0)" })
            let forged = try await t.send(.GET, "api/v1/participants?after=bm90LWEtY3Vyc29y", headers: bearer(cora))
            #expect(forged.status == .unprocessableEntity)
            #expect(errorMessage(forged).contains("after: is not a cursor this list gave"))
            #expect(try await t.send(.GET, "api/v1/participants?limit=0", headers: bearer(cora)).status == .unprocessableEntity)
        }
    }
}
