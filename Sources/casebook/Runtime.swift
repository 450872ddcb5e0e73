import ArgumentParser
import Fluent
import Foundation
import Logging
import TrialStore
import TrialWeb
import Vapor

/// The one place commands read configuration and open the database, so all of them agree with `serve`.
enum Runtime {
    static func config() throws -> AppConfig {
        do {
            return try AppConfig.from(environment: ProcessInfo.processInfo.environment)
        } catch let error as ConfigurationError {
            FileHandle.standardError.write(Data((error.description + "\n").utf8))
            throw ExitCode(2)
        }
    }

    /// swift-log allows one bootstrap per process; a command that opens the store twice (restore) asks twice.
    nonisolated(unsafe) static var loggingReady = false

    static func bootstrapLogging(_ level: Logger.Level) {
        guard !loggingReady else { return }
        loggingReady = true
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }

    /// Opens the configured database (migrating it unless told not to), runs `body`, and closes it.
    static func withStore<T>(migrate: Bool = true, _ body: (Store, AppConfig) async throws -> T) async throws -> T {
        let config = try config()
        bootstrapLogging(.warning)
        let app = try await Application.make(Environment(name: "production", arguments: ["casebook"]))
        do {
            try config.database.register(in: app.databases)
            let store = app.store
            if migrate { try await prepareDatabase(store) }
            let result = try await body(store, config)
            try await app.asyncShutdown()
            return result
        } catch {
            try? await app.asyncShutdown()
            throw error
        }
    }

    /// The audit trail names the operating-system user behind every CLI change.
    static var actor: String { "cli:" + (ProcessInfo.processInfo.environment["USER"] ?? "unknown") }

    static func fail(_ message: String) -> ExitCode {
        FileHandle.standardError.write(Data(("casebook: " + message + "\n").utf8))
        return ExitCode(1)
    }

    static func serve(_ config: AppConfig) async throws {
        bootstrapLogging(config.logLevel)
        let app = try await Application.make(Environment(name: "production", arguments: ["casebook", "serve"]))
        do {
            try await configure(app, config: config)
            if try await FluentAccountRepository(store: Store(database: app.db)).userCount() == 0 {
                app.logger.warning("no accounts yet: create the first with `casebook users create --username NAME --role admin`")
            }
            try await app.execute()
        } catch {
            app.logger.error("start failed: \(String(reflecting: error))")
            try? await app.asyncShutdown()
            throw error
        }
        try await app.asyncShutdown()
    }
}
