import FluentKit
import FluentSQL
import Foundation
import Logging
import NIOCore
import NIOPosix
import TrialStore

/// The databases every store and web suite runs against: SQLite always, PostgreSQL when
/// `CASEBOOK_TEST_POSTGRES_URL` names a server (`.ci/run` starts one).
public enum TestDatabase: String, CaseIterable, Sendable, CustomStringConvertible {
    case sqlite
    case postgres

    public var description: String { rawValue }

    public static var postgresURL: String? {
        let url = ProcessInfo.processInfo.environment["CASEBOOK_TEST_POSTGRES_URL"]
        return (url?.isEmpty ?? true) ? nil : url
    }

    public static var available: [TestDatabase] { postgresURL == nil ? [.sqlite] : [.sqlite, .postgres] }

    /// A fresh, empty database for one test: a new SQLite file, or a new PostgreSQL schema.
    public func makeSettings() async throws -> (settings: DatabaseSettings, cleanup: @Sendable () async throws -> Void) {
        switch self {
        case .sqlite:
            let directory = FileManager.default.temporaryDirectory.appendingPathComponent("casebook-tests-\(UUID().uuidString)")
            let path = directory.appendingPathComponent("test.sqlite").path
            return (.sqlite(path: path), { try? FileManager.default.removeItem(at: directory) })
        case .postgres:
            guard let url = Self.postgresURL else { throw TestSupportError.postgresNotConfigured }
            let schema = "t_" + UUID().uuidString.replacingOccurrences(of: "-", with: "").lowercased().prefix(16)
            try await Self.withDatabase(.postgres(url: url)) { db in
                try await (db as! any SQLDatabase).raw("CREATE SCHEMA \(unsafeRaw: String(schema))").run()
            }
            return (.postgres(url: url, schema: String(schema)), {
                try await Self.withDatabase(.postgres(url: url)) { db in
                    try await (db as! any SQLDatabase).raw("DROP SCHEMA \(unsafeRaw: String(schema)) CASCADE").run()
                }
            })
        }
    }

    /// Opens `settings` without any web framework, as the CLI and store tests do.
    public static func withDatabase<T>(_ settings: DatabaseSettings, _ body: (any Database) async throws -> T) async throws -> T {
        let databases = Databases(threadPool: NIOThreadPool.singleton, on: MultiThreadedEventLoopGroup.singleton)
        try settings.register(in: databases)
        let logger = Logger(label: "casebook.tests")
        guard let db = databases.database(logger: logger, on: MultiThreadedEventLoopGroup.singleton.any()) else {
            throw TestSupportError.postgresNotConfigured
        }
        do {
            let result = try await body(db)
            await databases.shutdownAsync()
            return result
        } catch {
            await databases.shutdownAsync()
            throw error
        }
    }

    /// A migrated, empty store for one test.
    public func withStore<T>(_ body: (Store) async throws -> T) async throws -> T {
        let (settings, cleanup) = try await makeSettings()
        do {
            let result = try await Self.withDatabase(settings) { db in
                let store = Store(database: db)
                try await store.migrate()
                return try await body(store)
            }
            try await cleanup()
            return result
        } catch {
            try? await cleanup()
            throw error
        }
    }
}

public enum TestSupportError: Error, CustomStringConvertible {
    case postgresNotConfigured
    public var description: String { "CASEBOOK_TEST_POSTGRES_URL is not set" }
}

/// Paths into ../shared/reference, for tests that check output against public material.
public enum Reference {
    public static var root: URL {
        URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("shared/reference")
    }
}
