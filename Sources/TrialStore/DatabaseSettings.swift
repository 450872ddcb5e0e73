import FluentKit
import FluentPostgresDriver
import FluentSQLiteDriver
import Foundation
import Logging

/// Where the data lives: an SQLite file by default, PostgreSQL when `DATABASE_URL` is set.
public enum DatabaseSettings: Sendable, Equatable {
    case sqlite(path: String)
    /// `schema` sets the search path; tests use it to give each case a schema of its own.
    case postgres(url: String, schema: String? = nil)

    public static let defaultSQLitePath = "./data/casebook.sqlite"

    /// Reads `DATABASE_URL` and `CASEBOOK_SQLITE_PATH`; every problem is reported, not just the first.
    public static func from(environment env: [String: String]) -> (DatabaseSettings?, [ConfigurationIssue]) {
        if let url = env["DATABASE_URL"], !url.isEmpty {
            guard let parsed = URL(string: url), let scheme = parsed.scheme,
                ["postgres", "postgresql"].contains(scheme.lowercased()), parsed.host != nil
            else {
                return (nil, [.init(variable: "DATABASE_URL", problem: "must be a postgres://user:password@host:port/database URL")])
            }
            return (.postgres(url: url), [])
        }
        let path = env["CASEBOOK_SQLITE_PATH"] ?? defaultSQLitePath
        if path.trimmingCharacters(in: .whitespaces).isEmpty {
            return (nil, [.init(variable: "CASEBOOK_SQLITE_PATH", problem: "must not be empty")])
        }
        return (.sqlite(path: path), [])
    }

    /// A description safe for logs: no password.
    public var redacted: String {
        switch self {
        case .sqlite(let path): return "SQLite file \(path)"
        case .postgres(let url, let schema):
            guard var parts = URLComponents(string: url) else { return "PostgreSQL" }
            if parts.password != nil { parts.password = "***" }
            return "PostgreSQL \(parts.string ?? "")" + (schema.map { " (schema \($0))" } ?? "")
        }
    }

    /// Registers the database as the default one of `databases`.
    public func register(in databases: Databases) throws {
        switch self {
        case .sqlite(let path):
            let directory = URL(fileURLWithPath: path).deletingLastPathComponent()
            try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
            let sqlite = DatabaseConfigurationFactory.sqlite(.file(path), connectionPoolTimeout: .seconds(60), sqlLogLevel: .trace)
            databases.use(sqlite, as: .sqlite, isDefault: true)
            // Grouped writes get a connection of their own, so a batch in progress never holds up a reader, on a thread
            // of their own.
            databases.use(WriterConfiguration<WriterThread>(base: sqlite.make()), as: .sqliteWriter, isDefault: false)
        case .postgres(let url, let schema):
            var configuration = try SQLPostgresConfiguration(url: url)
            if let schema {
                configuration.coreConfiguration.options.additionalStartupParameters = [("search_path", schema)]
            }
            let postgres = DatabaseConfigurationFactory.postgres(
                configuration: configuration, maxConnectionsPerEventLoop: 4, connectionPoolTimeout: .seconds(60), sqlLogLevel: .trace)
            databases.use(postgres, as: .psql, isDefault: true)
            // Grouped writes get connections on an event loop of their own (see `WriterLoop`).
            databases.use(WriterConfiguration<WriterLoop>(base: postgres.make()), as: .postgresWriter, isDefault: false)
        }
    }
}

extension DatabaseID {
    /// The SQLite file again, for `Store.write` only.
    public static let sqliteWriter = DatabaseID(string: "sqlite-writer")
    /// The PostgreSQL database again, for `Store.write` only.
    public static let postgresWriter = DatabaseID(string: "postgres-writer")
}

public struct ConfigurationIssue: Sendable, Equatable, CustomStringConvertible {
    public var variable: String
    public var problem: String
    public init(variable: String, problem: String) {
        self.variable = variable
        self.problem = problem
    }
    public var description: String { "\(variable): \(problem)" }
}

/// All configuration problems at once, so an operator fixes them in one go.
public struct ConfigurationError: Error, CustomStringConvertible {
    public var issues: [ConfigurationIssue]
    public init(issues: [ConfigurationIssue]) { self.issues = issues }
    public var description: String {
        "Casebook cannot start; fix these environment variables:\n" + issues.map { "  - \($0)" }.joined(separator: "\n")
    }
}
