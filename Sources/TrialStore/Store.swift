import FluentKit
import FluentSQL
import Foundation

/// The database and the one way to write to it: a transaction that also carries the audit events.
public struct Store: Sendable {
    public let database: any Database

    public init(database: any Database) {
        self.database = database
    }

    public var isSQLite: Bool {
        (database as? any SQLDatabase)?.dialect.name == "sqlite"
    }

    /// Runs `body` in one transaction with its audit events: all of it is written, or none of it.
    ///
    /// On PostgreSQL each call is its own transaction. On SQLite, concurrent calls are grouped: one writer opens
    /// one transaction (BEGIN IMMEDIATE, so it never has to upgrade a read lock), runs each call inside its own
    /// savepoint (a failing call rolls back to it and fails alone), commits once, and only then answers every call.
    /// The commit is durable for all of them at the cost of one.
    public func write<T: Sendable>(_ body: @escaping @Sendable (any Database) async throws -> T) async throws -> T {
        guard isSQLite else { return try await database.transaction(body) }
        let result = try await SQLiteWriteBatcher.shared.submit(database: database) { connection in try await body(connection) }
        guard let typed = result as? T else { throw StoreError.invalid(field: "write", rule: "internal: unexpected result type") }
        return typed
    }

    public func migrate() async throws {
        try await migrator().setupIfNeeded().get()
        try await migrator().prepareBatch().get()
        try await tuneSQLite()
    }

    public func revertLastBatch() async throws {
        try await migrator().setupIfNeeded().get()
        try await migrator().revertLastBatch().get()
    }

    public func revertAll() async throws {
        try await migrator().setupIfNeeded().get()
        try await migrator().revertAllBatches().get()
    }

    /// WAL lets readers proceed while one writer commits; the mode persists in the file.
    public func tuneSQLite() async throws {
        guard isSQLite, let sql = database as? any SQLDatabase else { return }
        try await sql.raw("PRAGMA journal_mode=WAL").run()
    }

    public func ping() async throws {
        guard let sql = database as? any SQLDatabase else { return }
        try await sql.raw("SELECT 1").run()
    }

    private func migrator() -> Migrator {
        let migrations = Migrations()
        migrations.add(StoreMigrations.all)
        return Migrator(
            databaseFactory: { _ in database }, migrations: migrations, on: database.eventLoop)
    }
}

/// Groups concurrent SQLite writes into shared transactions, one database file at a time and one transaction at a
/// time in this process (so SQLite's busy handler never spins on a thread the lock holder needs).
actor SQLiteWriteBatcher {
    static let shared = SQLiteWriteBatcher()
    /// Enough to amortise one fsync over many requests without holding any of them long.
    static let maximumBatch = 256

    struct Job {
        let key: String
        let database: any Database
        let work: @Sendable (any Database) async throws -> any Sendable
        let done: CheckedContinuation<any Sendable, any Error>
    }

    private var queue: [Job] = []
    private var draining = false

    func submit(database: any Database, work: @escaping @Sendable (any Database) async throws -> any Sendable) async throws -> any Sendable {
        // The configuration names the file, so requests from every event loop's pool share a batch.
        let key = String(describing: database.context.configuration)
        return try await withCheckedThrowingContinuation { continuation in
            queue.append(Job(key: key, database: database, work: work, done: continuation))
            if !draining {
                draining = true
                Task { await self.drain() }
            }
        }
    }

    private func drain() async {
        while let first = queue.first {
            var batch: [Job] = []
            var rest: [Job] = []
            for job in queue {
                if job.key == first.key && batch.count < Self.maximumBatch { batch.append(job) } else { rest.append(job) }
            }
            queue = rest
            await run(batch)
        }
        draining = false
    }

    private func run(_ batch: [Job]) async {
        let outcomes: [Result<any Sendable, any Error>]
        let jobs = batch.map { (work: $0.work, key: $0.key) }
        do {
            outcomes = try await batch[0].database.withConnection { connection in
                let sql = connection as! any SQLDatabase
                try await sql.raw("BEGIN IMMEDIATE").run()
                var results: [Result<any Sendable, any Error>] = []
                do {
                    for job in jobs {
                        try await sql.raw("SAVEPOINT request").run()
                        do {
                            let value = try await job.work(connection)
                            try await sql.raw("RELEASE request").run()
                            results.append(.success(value))
                        } catch {
                            try await sql.raw("ROLLBACK TO request").run()
                            try await sql.raw("RELEASE request").run()
                            results.append(.failure(error))
                        }
                    }
                    try await sql.raw("COMMIT").run()
                } catch {
                    try? await sql.raw("ROLLBACK").run()
                    throw error
                }
                return results
            }
        } catch {
            // The commit itself failed: nothing of the batch is on disk, so every request fails.
            for job in batch { job.done.resume(throwing: error) }
            return
        }
        for (job, outcome) in zip(batch, outcomes) { job.done.resume(with: outcome) }
    }
}
