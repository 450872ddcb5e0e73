import ArgumentParser
import FluentSQL
import Fluent
import Foundation
import TrialDomain
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
                try await (req.db as! any SQLDatabase).raw("INSERT INTO bench_rows (id, body) VALUES (\(bind: UUID.timeOrdered().uuidString), \(bind: body))").run()
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

/// Benchmark only: appends events to the audit trail through the real append, so `audit verify` can be timed on
/// a chain of a given length. Each event looks like a lab save's.
struct BenchAudit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-audit", abstract: "Benchmark only: append N lab-like events to the audit trail.", shouldDisplay: false)
    @ArgumentParser.Option var events: Int = 1_000_000

    func run() async throws {
        try await Runtime.withStore { store, _ in
            let started = Date()
            var written = 0
            while written < events {
                let chunk = min(10_000, events - written)
                let first = written
                try await store.write { tx in
                    for n in first..<(first + chunk) {
                        try await AuditChain.append(
                            on: tx, actor: "bench", action: .create, entity: "lab_result", entityID: UUID.timeOrdered().uuidString,
                            siteID: "6f1c2b1e-0000-4000-8000-000000000001", reason: nil,
                            changes: [
                                .init(field: "test", old: nil, new: "ALT"), .init(field: "visit", old: nil, new: "v1"),
                                .init(field: "value", old: nil, new: "\(40 + n % 60) U/L"), .init(field: "grade_v4", old: nil, new: "1"),
                                .init(field: "grade_v5", old: nil, new: nil),
                            ], now: Date())
                    }
                }
                written += chunk
            }
            print(String(format: "appended %d events in %.1f s", written, Date().timeIntervalSince(started)))
        }
    }
}
