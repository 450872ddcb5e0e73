import ArgumentParser
import FluentSQL
import Fluent
import Foundation
import TrialStore
import TrialWeb
import Vapor

/// The limit rows of the load benchmark: the same binary and database, with no domain logic and no audit.
/// Never part of `serve`; it exists only so BENCHMARKS.md can compare Casebook with the machine's limit in one run.
struct BenchServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-server", abstract: "Benchmark only: bare routes (GET /ok; POST /insert writes one row) on the configured database.",
        shouldDisplay: false)
    @ArgumentParser.Option var port: Int = 8090

    func run() async throws {
        var config = try Runtime.config()
        config.port = port
        Runtime.bootstrapLogging(.warning)
        let app = try await Application.make(Environment(name: "production", arguments: ["casebook", "serve"]))
        do {
            app.http.server.configuration.hostname = config.hostname
            app.http.server.configuration.port = port
            try config.database.register(in: app.databases)
            let sql = app.db as! any SQLDatabase
            try await sql.raw("CREATE TABLE IF NOT EXISTS bench_rows (id TEXT PRIMARY KEY, body TEXT NOT NULL)").run()
            if (sql.dialect.name) == "sqlite" { try await sql.raw("PRAGMA journal_mode=WAL").run() }
            app.get("ok") { _ in "ok" }
            app.post("insert") { req async throws -> HTTPStatus in
                let body = req.body.string ?? ""
                try await (req.db as! any SQLDatabase).raw("INSERT INTO bench_rows (id, body) VALUES (\(bind: UUID().uuidString), \(bind: body))").run()
                return .created
            }
            try await app.execute()
        } catch {
            try? await app.asyncShutdown()
            throw error
        }
        try await app.asyncShutdown()
    }
}
