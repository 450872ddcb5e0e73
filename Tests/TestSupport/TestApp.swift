import Fluent
import FluentKit
import Foundation
import TrialDomain
import TrialStore
import TrialWeb
import Vapor
import VaporTesting

/// A configured application on a fresh database, built by the same `configure` as production.
public struct TestApp: Sendable {
    public let app: Application
    public var store: Store { app.store }
    public var accounts: FluentAccountRepository { FluentAccountRepository(store: store) }

    public static func config(_ settings: DatabaseSettings, environment: [String: String] = [:]) throws -> AppConfig {
        var config = try AppConfig.from(environment: ["CASEBOOK_BCRYPT_COST": "10"].merging(environment) { $1 })
        config.database = settings
        return config
    }

    public static func run(
        _ database: TestDatabase, environment: [String: String] = [:], _ body: (TestApp) async throws -> Void
    ) async throws {
        let (settings, cleanup) = try await database.makeSettings()
        do {
            try await withApp(configure: { app in try await configure(app, config: try config(settings, environment: environment)) }) { app in
                try await body(TestApp(app: app))
            }
            try await cleanup()
        } catch {
            try? await cleanup()
            throw error
        }
    }

    @discardableResult
    public func site(_ code: String) async throws -> Site {
        try await accounts.createSite(code: code, name: "Site \(code)", actor: "test", now: Date())
    }

    public static let password = "correct horse battery"

    @discardableResult
    public func user(_ username: String, role: Role, sites: [String]) async throws -> Account {
        try await accounts.createUser(
            username: username, passwordHash: try Passwords.hash(Self.password, cost: 10), role: role, siteCodes: sites,
            actor: "test", now: Date())
    }

    /// A new API token for `username`, as `casebook tokens create` makes one.
    public func token(_ username: String) async throws -> String {
        guard let account = try await accounts.account(username: username) else { throw Abort(.notFound) }
        return try await TokenIssuer.issue(for: account, name: "test", accounts: accounts, now: Date()).token
    }
}
