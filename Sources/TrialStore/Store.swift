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

    /// Runs `body` in one transaction. On SQLite it begins IMMEDIATE so a writer never has to
    /// upgrade a read lock mid-transaction (which SQLite refuses instead of waiting).
    ///
    /// Writers in this process queue at a gate before they ask SQLite for the write lock: SQLite's own busy handler
    /// would otherwise spin on a shared thread-pool thread that the lock holder may need to commit.
    public func write<T: Sendable>(_ body: @escaping @Sendable (any Database) async throws -> T) async throws -> T {
        guard isSQLite else { return try await database.transaction(body) }
        await SQLiteWriteGate.shared.acquire()
        do {
            let result = try await database.withConnection { connection in
                let sql = connection as! any SQLDatabase
                try await sql.raw("BEGIN IMMEDIATE").run()
                do {
                    let result = try await body(connection)
                    try await sql.raw("COMMIT").run()
                    return result
                } catch {
                    try? await sql.raw("ROLLBACK").run()
                    throw error
                }
            }
            await SQLiteWriteGate.shared.release()
            return result
        } catch {
            await SQLiteWriteGate.shared.release()
            throw error
        }
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

/// One SQLite writer at a time in this process, served in arrival order.
actor SQLiteWriteGate {
    static let shared = SQLiteWriteGate()
    private var busy = false
    private var waiting: [CheckedContinuation<Void, Never>] = []

    func acquire() async {
        guard busy else {
            busy = true
            return
        }
        await withCheckedContinuation { waiting.append($0) }
    }

    func release() {
        if waiting.isEmpty { busy = false } else { waiting.removeFirst().resume() }
    }
}
