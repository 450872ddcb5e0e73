import FluentKit
import FluentSQL
import FluentSQLiteDriver
import Foundation
import Logging

/// The database and the one way to write to it: a transaction that also carries the audit events.
public struct Store: Sendable {
    public let database: any Database
    /// Where grouped writes run; `database` when nil.
    public let writer: (any Database)?

    /// Where grouped writes run their code: the writer's own thread on SQLite, its own event loop on PostgreSQL.
    let writerExecutor: (any TaskExecutor)?

    /// Where the SQLite writer's WAL is copied back into the database: a reader connection, off the writer's thread.
    let checkpointer: (any Database)?

    /// Which grouped writes may share a transaction: the same file. Describing the configuration costs more than a
    /// write, so a store made from an application's databases names them by identity instead.
    let batchKey: String?

    public init(database: any Database, writer: (any Database)? = nil) {
        self.database = database
        self.writer = writer
        self.batchKey = nil
        self.writerExecutor = nil
        self.checkpointer = writer != nil && (database as? any SQLDatabase)?.dialect.name == "sqlite" ? database : nil
    }

    /// The store of an application's databases: the default one, and the writer's own connections.
    public init(databases: Databases, logger: Logger, on eventLoop: any EventLoop) {
        self.database = databases.database(logger: logger, on: eventLoop)!
        if let writer = databases.configuration(for: .sqliteWriter) as? WriterConfiguration<WriterThread> {
            self.writer = databases.database(.sqliteWriter, logger: logger, on: eventLoop)
            self.writerExecutor = writer.started.writer
            self.checkpointer = database
        } else if let writer = databases.configuration(for: .postgresWriter) as? WriterConfiguration<WriterLoop> {
            let loop = writer.started.writer
            self.writer = databases.database(.postgresWriter, logger: logger, on: loop.loop)
            self.writerExecutor = loop
            self.checkpointer = nil
        } else {
            self.writer = nil
            self.writerExecutor = nil
            self.checkpointer = nil
        }
        self.batchKey = "\(ObjectIdentifier(databases))"
    }

    public var isSQLite: Bool {
        (database as? any SQLDatabase)?.dialect.name == "sqlite"
    }

    /// Whether concurrent writes share transactions: always on SQLite (one file, one writer); on PostgreSQL for a
    /// store made from an application's databases, whose identity keeps two databases' writes apart.
    var groupsWrites: Bool { isSQLite || batchKey != nil }


    /// Runs `body` in one transaction with its audit events: all of it is written, or none of it.
    ///
    /// Concurrent calls are grouped: one writer opens one transaction (on SQLite BEGIN IMMEDIATE, so it never has to
    /// upgrade a read lock), runs each call inside its own savepoint (a failing call rolls back to it and fails
    /// alone), commits once, and only then answers every call. The commit is durable for all of them at the cost of
    /// one, and the audit chain's head is taken once per batch instead of once per call.
    public func write<T: Sendable>(_ body: @escaping @Sendable (any Database) async throws -> T) async throws -> T {
        try await writeInOrder([body])[0].get()
    }

    /// Runs each body in the order given, each in its own transaction or savepoint (as `write` does for one), each with its own
    /// outcome, consecutive ones sharing commits. For writes whose order matters, such as allocations in arrival order.
    public func writeInOrder<T: Sendable>(_ bodies: [@Sendable (any Database) async throws -> T]) async -> [Result<T, any Error>] {
        let results = await writeInOrderUnaudited(bodies)
        // A write a lock refused was rolled back; the attempt itself goes into the audit trail.
        for result in results {
            if case .failure(let error) = result, let refusal = error as? LockRefusal { await auditRefusal(refusal) }
        }
        return results
    }

    func writeInOrderUnaudited<T: Sendable>(_ bodies: [@Sendable (any Database) async throws -> T]) async -> [Result<T, any Error>] {
        guard groupsWrites else {
            var results: [Result<T, any Error>] = []
            for body in bodies {
                do { results.append(.success(try await database.transaction(body))) } catch { results.append(.failure(error)) }
            }
            return results
        }
        let works = bodies.map { body in WriteBatcher.Work.code({ connection in try await body(connection) }) }
        return await WriteBatcher.shared.submit(database: writer ?? database, key: batchKey, executor: writerExecutor, checkpointer: checkpointer, works: works).map { result in
            result.flatMap { value in
                guard let typed = value as? T else { return .failure(StoreError.invalid(field: "write", rule: "internal: unexpected result type")) }
                return .success(typed)
            }
        }
    }

    /// Inserts rows worked out from facts read inside the write itself: `probe` reads at most one row, and `build`
    /// turns that row (nil when there is none) into the rows, their audit event and the caller's answer, or throws to
    /// refuse. The checks `build` makes therefore still hold at the commit. A unique index refusing a row fails with
    /// `duplicate`.
    ///
    /// Given as data rather than code so that concurrent calls with the same probe read all their rows with one
    /// statement, and their inserts go in as one statement per table (and one for their audit events) inside the
    /// shared transaction. Should that statement fail, the group is rolled back and each call runs again in its own
    /// savepoint, so only the call at fault fails.
    public func insert<T: Sendable>(
        probe: Probe, duplicate: StoreError, build: @escaping @Sendable ((any SQLRow)?) throws -> CheckedRows<T>
    ) async throws -> T {
        let work = CheckedInsert(probe: probe, duplicate: duplicate) { row in
            let built = try build(row)
            return CheckedRows<any Sendable>(rows: built.rows, audit: built.audit, answer: built.answer)
        }
        let answer: any Sendable
        if groupsWrites {
            answer = try await WriteBatcher.shared.submit(database: writer ?? database, key: batchKey, executor: writerExecutor, checkpointer: checkpointer, work: .checked(work))
        } else {
            answer = try await database.transaction { tx in
                let built = try work.build(try await (tx as! any SQLDatabase).raw(Probe.query([probe])).first())
                try AuditChain.checkReason(built.audit)
                try await Self.insertAlone(built.rows, audit: built.audit, duplicate: duplicate, on: tx)
                return built.answer
            }
        }
        guard let typed = answer as? T else { throw StoreError.invalid(field: "write", rule: "internal: unexpected result type") }
        return typed
    }

    static func insertAlone(_ rows: [RowInsert], audit: AuditDraft, duplicate: StoreError, on tx: any Database) async throws {
        let sql = tx as! any SQLDatabase
        for row in rows {
            do {
                try await sql.insert(into: row.table).columns(row.columns).values(row.values).run()
            } catch where StoreError.isUniqueViolation(error) {
                throw duplicate
            }
        }
        try await AuditChain.append(on: tx, audit)
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

/// One row to insert, given as data.
public struct RowInsert: Sendable {
    public var table: String
    public var columns: [String]
    public var values: [any Encodable & Sendable]

    public init(table: String, columns: [String], values: [any Encodable & Sendable]) {
        precondition(columns.count == values.count, "one value per column")
        self.table = table
        self.columns = columns
        self.values = values
    }
}

/// What a write reads before it decides what to insert: `select` reads from a table `probe` of one row per write
/// (its `columns` and `probe_index`) and gives each write at most one row, with `probe_index` among its columns.
/// Writes with the same `select` share one statement.
public struct Probe: Sendable {
    public var select: String
    public var columns: [String]
    public var values: [any Encodable & Sendable]

    public init(select: String, columns: [String], values: [any Encodable & Sendable]) {
        precondition(columns.count == values.count, "one value per column")
        self.select = select
        self.columns = columns
        self.values = values
    }

    /// One statement for probes that share a `select`, each numbered by its place in the list.
    static func query(_ probes: [Probe]) -> SQLQueryString {
        var query: SQLQueryString = "WITH probe(probe_index"
        for column in probes[0].columns { query = query + ", \(ident: column)" }
        query = query + ") AS (VALUES "
        for (index, probe) in probes.enumerated() {
            query = query + (index == 0 ? "(" : ", (") + "\(bind: index)"
            for value in probe.values { query = query + ", \(bind: value)" }
            query = query + ")"
        }
        return query + ") " + SQLQueryString(probes[0].select)
    }
}

/// What a checked insert writes, and what its caller is answered.
public struct CheckedRows<Answer: Sendable>: Sendable {
    public var rows: [RowInsert]
    public var audit: AuditDraft
    public var answer: Answer

    public init(rows: [RowInsert], audit: AuditDraft, answer: Answer) {
        self.rows = rows
        self.audit = audit
        self.answer = answer
    }
}

struct CheckedInsert: Sendable {
    let probe: Probe
    let duplicate: StoreError
    let build: @Sendable ((any SQLRow)?) throws -> CheckedRows<any Sendable>
}

/// Groups concurrent writes into shared transactions, one database at a time and one transaction at a time in this
/// process (so SQLite's busy handler never spins on a thread the lock holder needs).
final class WriteBatcher: @unchecked Sendable {
    static let shared = WriteBatcher()
    /// Enough to amortise one fsync over many requests without holding any of them long.
    static let maximumBatch = 256
    /// SQLite allows 32,766 bound values in one statement.
    static let maximumBinds = 30_000

    enum Work: Sendable {
        case code(@Sendable (any Database) async throws -> any Sendable)
        case checked(CheckedInsert)
    }

    struct Job {
        let key: String
        let database: any Database
        let work: Work
        let executor: (any TaskExecutor)?
        let checkpointer: (any Database)?
        let done: @Sendable (Result<any Sendable, any Error>) -> Void
    }

    /// Guards `queue` and `draining`; a plain lock rather than an actor, so queueing a write costs no hop to another
    /// executor, nor taking the next batch one from the writer's thread.
    private let lock = NSLock()
    private var queue: [Job] = []
    private var draining = false

    func submit(database: any Database, key: String?, executor: (any TaskExecutor)?, checkpointer: (any Database)? = nil, work: Work) async throws -> any Sendable {
        try await submit(database: database, key: key, executor: executor, checkpointer: checkpointer, works: [work])[0].get()
    }

    /// Queues several writes at once, in order: they run in that order (sharing commits), each answered on its own.
    func submit(
        database: any Database, key: String?, executor: (any TaskExecutor)?, checkpointer: (any Database)? = nil, works: [Work]
    ) async -> [Result<any Sendable, any Error>] {
        guard !works.isEmpty else { return [] }
        // The configuration names the file, so requests from every event loop's pool share a batch.
        let key = key ?? String(describing: database.context.configuration)
        return await withCheckedContinuation { continuation in
            let answers = Answers(count: works.count) { continuation.resume(returning: $0) }
            let jobs = works.enumerated().map { index, work in
                Job(key: key, database: database, work: work, executor: executor, checkpointer: checkpointer, done: { answers.set(index, $0) })
            }
            if enqueue(jobs) { Task { await self.drain() } }
        }
    }

    /// Whether no write is queued or running, and so no connection is held for one.
    var isIdle: Bool { lock.withLock { !draining && queue.isEmpty && checkpointing.isEmpty } }

    /// Per database: commits since its last checkpoint was started, and the databases with one running.
    private var commitsSinceCheckpoint: [String: Int] = [:]
    private var checkpointing: Set<String> = []
    /// About a thousand pages at a few dozen a commit: SQLite's own default interval, counted in commits.
    static let commitsPerCheckpoint = 32

    /// Starts a passive checkpoint on a reader connection every so many commits, so that copying the WAL back into
    /// the database (and its fsync) never stalls the batch that happens to cross SQLite's threshold. Passive: it
    /// copies what no reader still needs and never waits for the writer.
    private func committed(key: String, checkpointer: (any Database)?) {
        guard let checkpointer else { return }
        let start: Bool = lock.withLock {
            commitsSinceCheckpoint[key, default: 0] += 1
            guard commitsSinceCheckpoint[key]! >= Self.commitsPerCheckpoint, !checkpointing.contains(key) else { return false }
            commitsSinceCheckpoint[key] = 0
            checkpointing.insert(key)
            return true
        }
        guard start else { return }
        Task {
            try? await (checkpointer as? any SQLDatabase)?.raw("PRAGMA wal_checkpoint(PASSIVE)").run()
            self.lock.withLock { _ = self.checkpointing.remove(key) }
        }
    }

    /// Waits, at most `limit`, until no write is queued or running: a database shut down under a running batch would
    /// lose the connection it holds without closing it.
    func waitUntilIdle(limit: Duration = .seconds(10)) async {
        let clock = ContinuousClock()
        let deadline = clock.now + limit
        while !isIdle, clock.now < deadline { try? await Task.sleep(for: .milliseconds(1)) }
    }

    /// Queues the jobs; true when no drain is running, so the caller starts one.
    private func enqueue(_ jobs: [Job]) -> Bool {
        lock.withLock {
            queue.append(contentsOf: jobs)
            if draining { return false }
            draining = true
            return true
        }
    }

    /// Collects the answers of writes queued together and hands them over once all are in.
    private final class Answers: @unchecked Sendable {
        private let lock = NSLock()
        private var results: [Result<any Sendable, any Error>?]
        private var missing: Int
        private let finished: @Sendable ([Result<any Sendable, any Error>]) -> Void

        init(count: Int, finished: @escaping @Sendable ([Result<any Sendable, any Error>]) -> Void) {
            results = Array(repeating: nil, count: count)
            missing = count
            self.finished = finished
        }

        func set(_ index: Int, _ result: Result<any Sendable, any Error>) {
            let all: [Result<any Sendable, any Error>]? = lock.withLock {
                results[index] = result
                missing -= 1
                return missing == 0 ? results.map { $0! } : nil
            }
            if let all { finished(all) }
        }
    }

    /// Batches after the first that may run on one connection before it goes back to the pool, so that writes to
    /// another database in the same process (tests) get their turn.
    static let batchesPerLease = 64

    private func drain() async {
        while let batch = nextBatchOrStop() {
            let key = batch[0].key
            // The connection is held while batches keep coming: taking it from the pool costs as much as a statement.
            let lease = Lease(batch)
            let executor = batch[0].executor
            do {
                try await batch[0].database.withConnection { connection in
                    // On SQLite the grouped statements go to the connection itself, their values bound as the driver's own.
                    let lite = try await (connection as? any SQLiteDatabase)?.withConnection { $0 }
                    // Checkpoints are then started after commits instead (see `committed`); set per connection.
                    if let lite, batch[0].checkpointer != nil { try await lite.query("PRAGMA wal_autocheckpoint = 0", []) { _ in } }
                    // Set here: the connection's closure runs in a task of its own, which does not inherit it.
                    await withTaskExecutorPreference(executor) {
                        for _ in 0...Self.batchesPerLease {
                            guard let next = lease.pending else { break }
                            lease.pending = nil
                            await self.run(next, on: connection, lite: lite)
                            lease.pending = self.takeBatch(key: key)
                        }
                    }
                }
            } catch {
                // No connection: the batch waiting for one fails.
                for job in lease.pending ?? [] { job.done(.failure(error)) }
                lease.pending = nil
            }
            if let left = lease.pending { putBack(left) }
        }
    }

    /// The next batch of the first waiting write's database; when none is waiting, the drain ends (under the same
    /// lock, so a write queued meanwhile starts a new one).
    private func nextBatchOrStop() -> [Job]? {
        lock.withLock {
            guard let first = queue.first else {
                draining = false
                return nil
            }
            return takeBatchLocked(key: first.key)
        }
    }

    /// The next batch of writes to this database, in the order they came, if any are waiting.
    private func takeBatch(key: String) -> [Job]? {
        lock.withLock { takeBatchLocked(key: key) }
    }

    private func putBack(_ jobs: [Job]) {
        lock.withLock { queue.insert(contentsOf: jobs, at: 0) }
    }

    /// Call holding the lock.
    private func takeBatchLocked(key: String) -> [Job]? {
        var batch: [Job] = []
        var rest: [Job] = []
        for job in queue {
            if job.key == key && batch.count < Self.maximumBatch { batch.append(job) } else { rest.append(job) }
        }
        guard !batch.isEmpty else { return nil }
        queue = rest
        return batch
    }

    /// The batch taken but not yet run on a leased connection.
    private final class Lease: @unchecked Sendable {
        var pending: [Job]?
        init(_ batch: [Job]) { pending = batch }
    }

    private func run(_ batch: [Job], on connection: any Database, lite: SQLiteConnection?) async {
        var outcomes = [Result<any Sendable, any Error>?](repeating: nil, count: batch.count)
        let works = batch.map(\.work)
        do {
            outcomes = try await {
                let sql = connection as! any SQLDatabase
                let begin = sql.dialect.name == "sqlite" ? "BEGIN IMMEDIATE" : "BEGIN"
                let head = BatchHead()
                var results = [Result<any Sendable, any Error>?](repeating: nil, count: works.count)
                try await sql.raw(SQLQueryString(begin)).run()
                do {
                    try await BatchHead.$current.withValue(head) {
                        for (index, work) in works.enumerated() {
                            guard case .code(let body) = work else { continue }
                            results[index] = try await Self.alone(sql, head) { try await body(connection) }
                        }

                        var grouped: [(Int, [RowInsert], AuditDraft, StoreError)] = []
                        let checked = works.indices.compactMap { index -> (Int, CheckedInsert)? in
                            guard case .checked(let work) = works[index] else { return nil }
                            return (index, work)
                        }
                        if !checked.isEmpty {
                            // The probes first, one statement for each kind; what each write builds from its row joins the group.
                            let rows = try await Self.probe(checked.map(\.1.probe), on: sql, lite: lite)
                            for (n, (index, work)) in checked.enumerated() {
                                do {
                                    let built = try work.build(rows[n])
                                    try AuditChain.checkReason(built.audit)
                                    grouped.append((index, built.rows, built.audit, work.duplicate))
                                    results[index] = .success(built.answer)
                                } catch {
                                    results[index] = .failure(error)
                                }
                            }
                        }
                        if !grouped.isEmpty {
                            // With nothing before it in the transaction, the group needs no savepoint of its own.
                            let alone = grouped.count == works.count
                            let before = head.snapshot()
                            if !alone { try await sql.raw("SAVEPOINT grouped").run() }
                            do {
                                try await Self.insertGrouped(grouped.map { ($0.1, $0.2) }, on: sql, lite: lite, head: head)
                                if !alone { try await sql.raw("RELEASE grouped").run() }
                            } catch {
                                // Someone in the group is at fault: find out who, one savepoint each.
                                if alone {
                                    try await sql.raw("ROLLBACK").run()
                                    try await sql.raw(SQLQueryString(begin)).run()
                                } else {
                                    try await sql.raw("ROLLBACK TO grouped").run()
                                    try await sql.raw("RELEASE grouped").run()
                                }
                                head.restore(before)
                                for (index, rows, audit, duplicate) in grouped {
                                    // Built above, so a success holding the caller's answer.
                                    let answer = try results[index]!.get()
                                    results[index] = try await Self.alone(sql, head) {
                                        try await Store.insertAlone(rows, audit: audit, duplicate: duplicate, on: connection)
                                        return answer
                                    }
                                }
                            }
                        }
                    }
                    try await head.flush(on: sql)
                    try await sql.raw("COMMIT").run()
                    committed(key: batch[0].key, checkpointer: batch[0].checkpointer)
                } catch {
                    try? await sql.raw("ROLLBACK").run()
                    throw error
                }
                return results
            }()
        } catch {
            // The commit itself failed: nothing of the batch is on disk, so every request fails.
            for job in batch { job.done(.failure(error)) }
            return
        }
        for (job, outcome) in zip(batch, outcomes) {
            job.done(outcome ?? .failure(StoreError.invalid(field: "write", rule: "internal: not run")))
        }
    }

    /// Runs one request in its own savepoint: its failure undoes only its own statements and audit events.
    private static func alone(
        _ sql: any SQLDatabase, _ head: BatchHead, _ body: () async throws -> any Sendable
    ) async throws -> Result<any Sendable, any Error> {
        let before = head.snapshot()
        try await sql.raw("SAVEPOINT request").run()
        do {
            let value = try await body()
            try await sql.raw("RELEASE request").run()
            return .success(value)
        } catch {
            try await sql.raw("ROLLBACK TO request").run()
            try await sql.raw("RELEASE request").run()
            head.restore(before)
            return .failure(error)
        }
    }

    /// Each probe's row (nil when it has none): one statement for all probes with the same `select`.
    private static func probe(_ probes: [Probe], on sql: any SQLDatabase, lite: SQLiteConnection?) async throws -> [(any SQLRow)?] {
        var rows = [(any SQLRow)?](repeating: nil, count: probes.count)
        var kinds: [String: [Int]] = [:]
        for (index, probe) in probes.enumerated() { kinds[probe.select, default: []].append(index) }
        for members in kinds.values {
            let perStatement = max(1, maximumBinds / (probes[members[0]].columns.count + 1))
            for start in stride(from: 0, to: members.count, by: perStatement) {
                let chunk = Array(members[start..<min(members.count, start + perStatement)])
                let query = Probe.query(chunk.map { probes[$0] })
                let found: [any SQLRow]
                if let lite { found = try await LiteStatement.rows(query, on: lite, sql: sql) } else { found = try await sql.raw(query).all() }
                for row in found {
                    let n = try row.decode(column: "probe_index", as: Int.self)
                    guard chunk.indices.contains(n), rows[chunk[n]] == nil else {
                        throw StoreError.invalid(field: "write", rule: "internal: a probe gave more than one row")
                    }
                    rows[chunk[n]] = row
                }
            }
        }
        return rows
    }

    /// One INSERT per table and column list for all the group's rows, then one for their audit events, in order.
    private static func insertGrouped(
        _ items: [([RowInsert], AuditDraft)], on sql: any SQLDatabase, lite: SQLiteConnection?, head: BatchHead
    ) async throws {
        var tables: [(table: String, columns: [String], rows: [[any Encodable & Sendable]])] = []
        for (rows, _) in items {
            for row in rows {
                if let i = tables.firstIndex(where: { $0.table == row.table && $0.columns == row.columns }) {
                    tables[i].rows.append(row.values)
                } else {
                    tables.append((row.table, row.columns, [row.values]))
                }
            }
        }
        var events: [[any Encodable & Sendable]] = []
        for (_, audit) in items { events.append(try await AuditChain.nextRow(audit, on: sql, head: head)) }
        let binds = tables.reduce(events.count * AuditChain.columns.count) { $0 + $1.rows.count * $1.columns.count }
        if lite == nil, sql.dialect.name == "postgresql", binds <= maximumBinds {
            // One round trip instead of one per table and one for the head: the inserts as data-modifying parts of
            // a statement that moves audit_head, which fails as a whole (a duplicate anywhere) as separate ones would.
            let inserts = (tables + [(AuditChain.table, AuditChain.columns, events)]).map { table in
                table.rows.reduce(sql.insert(into: table.table).columns(table.columns)) { $0.values($1) }.insert
            }
            guard let update = head.update else { throw StoreError.invalid(field: "write", rule: "internal: no audit head") }
            try await sql.execute(sql: InsertsTogether(inserts: inserts, then: update)) { _ in }
            head.stored = head.sequence
            return
        }
        for table in tables { try await insertMany(table.table, table.columns, table.rows, on: sql, lite: lite) }
        try await insertMany(AuditChain.table, AuditChain.columns, events, on: sql, lite: lite)
    }

    /// `WITH i0 AS (INSERT ...), i1 AS (INSERT ...) UPDATE ...` (PostgreSQL): every part runs, in one statement.
    private struct InsertsTogether: SQLExpression {
        let inserts: [SQLInsert]
        let then: SQLQueryString
        func serialize(to serializer: inout SQLSerializer) {
            serializer.write("WITH ")
            for (index, insert) in inserts.enumerated() {
                if index > 0 { serializer.write(", ") }
                serializer.write("i\(index) AS (")
                insert.serialize(to: &serializer)
                serializer.write(")")
            }
            serializer.write(" ")
            then.serialize(to: &serializer)
        }
    }

    private static func insertMany(
        _ table: String, _ columns: [String], _ rows: [[any Encodable & Sendable]], on sql: any SQLDatabase, lite: SQLiteConnection?
    ) async throws {
        let perStatement = max(1, maximumBinds / max(1, columns.count))
        var start = 0
        while start < rows.count {
            let chunk = rows[start..<min(rows.count, start + perStatement)]
            if let lite {
                try await LiteStatement.insert(into: table, columns: columns, rows: chunk, on: lite)
            } else {
                var insert = sql.insert(into: table).columns(columns)
                for row in chunk { insert = insert.values(row) }
                try await insert.run()
            }
            start += perStatement
        }
    }
}


/// Grouped statements sent straight to an SQLite connection: hundreds of values each, where SQLKit's encoder (a
/// dynamic cast, and for optionals and UUIDs a coder, per value) would cost more than SQLite's own work.
enum LiteStatement {
    /// The value as SQLiteKit's `SQLiteDataEncoder` would bind it; a type not listed here goes through that encoder.
    static func value(_ value: any Encodable & Sendable) throws -> SQLiteData {
        // The exact type first: comparing metatypes is cheaper than the casts below, which also look through optionals.
        let type = ObjectIdentifier(Swift.type(of: value))
        if type == ObjectIdentifier(String.self) { return .text(value as! String) }
        if type == ObjectIdentifier(UUID.self) { return .text((value as! UUID).text) }
        if type == ObjectIdentifier(Double.self) { return .float(value as! Double) }
        if type == ObjectIdentifier(Date.self) { return .float((value as! Date).timeIntervalSince1970) }
        if type == ObjectIdentifier(Int.self) { return .integer(value as! Int) }
        if type == ObjectIdentifier(Int64.self) { return .integer(Int(value as! Int64)) }
        if type == ObjectIdentifier(Bool.self) { return .integer(value as! Bool ? 1 : 0) }
        // A lab result's optional columns: each failed cast below, through the optional, costs about as much as a bind.
        if type == ObjectIdentifier(Double?.self) { return (value as! Double?).map { .float($0) } ?? .null }
        if type == ObjectIdentifier(Int?.self) { return (value as! Int?).map { .integer($0) } ?? .null }
        if type == ObjectIdentifier(String?.self) { return (value as! String?).map { .text($0) } ?? .null }
        switch value {
        case let v as String?: return v.map { .text($0) } ?? .null
        case let v as UUID?: return v.map { .text($0.text) } ?? .null
        case let v as Double?: return v.map { .float($0) } ?? .null
        case let v as Date?: return v.map { .float($0.timeIntervalSince1970) } ?? .null
        case let v as Int?: return v.map { .integer($0) } ?? .null
        case let v as Int64?: return v.map { .integer(Int($0)) } ?? .null
        case let v as Bool?: return v.map { .integer($0 ? 1 : 0) } ?? .null
        default: return try SQLiteDataEncoder().encode(value)
        }
    }

    static func insert(into table: String, columns: [String], rows: ArraySlice<[any Encodable & Sendable]>, on connection: SQLiteConnection) async throws {
        var text = "INSERT INTO \(quoted(table)) (\(columns.map(quoted).joined(separator: ", "))) VALUES "
        let row = "(" + Array(repeating: "?", count: columns.count).joined(separator: ", ") + ")"
        var binds: [SQLiteData] = []
        binds.reserveCapacity(rows.count * columns.count)
        for (index, values) in rows.enumerated() {
            text += index == 0 ? row : ", " + row
            for value in values { binds.append(try Self.value(value)) }
        }
        try await connection.query(text, binds) { _ in }
    }

    /// The rows of a query written with SQLKit, its binds encoded as above.
    static func rows(_ query: SQLQueryString, on connection: SQLiteConnection, sql: any SQLDatabase) async throws -> [any SQLRow] {
        let (text, values) = sql.serialize(query)
        let binds = try values.map { try Self.value($0) }
        let found = Rows()
        try await connection.query(text, binds) { row in found.append(row.sql()) }
        return found.all
    }

    private final class Rows: @unchecked Sendable {
        private let lock = NSLock()
        private var rows: [any SQLRow] = []
        func append(_ row: any SQLRow) { lock.withLock { rows.append(row) } }
        var all: [any SQLRow] { lock.withLock { rows } }
    }

    static func quoted(_ identifier: String) -> String {
        // Names here come from the code and hold no quote; the replacement is only a guard, skipped when not needed.
        let inner = identifier.utf8.contains(UInt8(ascii: "\"")) ? identifier.replacingOccurrences(of: "\"", with: "\"\"") : identifier
        return "\"" + inner + "\""
    }
}
