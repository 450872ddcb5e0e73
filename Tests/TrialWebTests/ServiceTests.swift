import Foundation
import TestSupport
import TrialStore
import Testing
@testable import TrialWeb
import Vapor
import VaporTesting

@Suite struct ServiceTests {
    @Test(arguments: TestDatabase.available)
    func healthAndReadiness(database: TestDatabase) async throws {
        try await TestApp.run(database) { t in
            let health = try await t.send(.GET, "health")
            #expect(health.status == .ok)
            #expect(health.headers.first(name: "X-Request-Id")?.isEmpty == false)
            let ready = try await t.send(.GET, "ready")
            #expect(ready.status == .ok)
            #expect(ready.body.string.contains("ready"))
        }
    }

    /// Every answer, a refusal as much as a success, carries its request id and the hardening headers; a JSON error
    /// names the same request id as its header.
    @Test func everyAnswerCarriesTheRequestIdAndHardeningHeaders() async throws {
        try await TestApp.run(.sqlite) { t in
            let ok = try await t.send(.GET, "health")
            let refused = try await t.send(.GET, "api/v1/me", headers: bearer("not-a-token"))
            #expect(refused.status == .unauthorized)
            for response in [ok, refused] {
                #expect(response.headers.first(name: "X-Content-Type-Options") == "nosniff")
                #expect(response.headers.first(name: "X-Frame-Options") == "DENY")
                #expect(response.headers.first(name: "Content-Security-Policy")?.hasPrefix("default-src 'self'") == true)
            }
            let body = try JSONSerialization.jsonObject(with: Data(refused.body.readableBytesView)) as? [String: Any]
            #expect(body?["error"] as? String == "Authorization: the API token is unknown or revoked")
            #expect(body?["status"] as? Int == 401)
            let id = try #require(refused.headers.first(name: "X-Request-Id"))
            #expect(body?["requestId"] as? String == id)
        }
    }

    /// The OpenAPI document and the router must list the same operations under /api/v1.
    @Test func openAPIDocumentMatchesTheRegisteredRoutes() async throws {
        try await TestApp.run(.sqlite) { t in
            let response = try await t.send(.GET, "openapi.json")
            #expect(response.status == .ok)
            let document = try JSONSerialization.jsonObject(with: Data(response.body.readableBytesView)) as? [String: Any]
            #expect(document?["openapi"] as? String == "3.1.0")
            let paths = document?["paths"] as? [String: [String: Any]] ?? [:]
            let documented = Set(paths.flatMap { path, operations in operations.keys.map { "\($0.uppercased()) \(path)" } })
            let registered = Set(
                t.app.routes.all.compactMap { route -> String? in
                    let path = "/" + route.path.map { component -> String in
                        if case .parameter(let name) = component { return "{\(name)}" }
                        return component.description
                    }.joined(separator: "/")
                    return path.hasPrefix("/api/v1/") ? "\(route.method.rawValue) \(path)" : nil
                })
            #expect(!registered.isEmpty)
            #expect(documented == registered)
        }
    }

    @Test func badConfigurationNamesEveryBadVariable() {
        #expect {
            try AppConfig.from(environment: ["CASEBOOK_PORT": "eighty", "DATABASE_URL": "mysql://x", "CASEBOOK_SECURE_COOKIES": "maybe"])
        } throws: { error in
            let text = String(describing: error)
            return text.contains("CASEBOOK_PORT") && text.contains("DATABASE_URL") && text.contains("CASEBOOK_SECURE_COOKIES")
        }
    }

    @Test func defaultsAreTheDocumentedOnes() throws {
        let config = try AppConfig.from(environment: [:])
        #expect(config.hostname == "127.0.0.1")
        #expect(config.port == 8080)
        #expect(config.database == .sqlite(path: "./data/casebook.sqlite"))
        #expect(try AppConfig.from(environment: ["DATABASE_URL": "postgres://u:p@db:5432/x"]).database == .postgres(url: "postgres://u:p@db:5432/x"))
    }
}
