import FluentKit
import FluentSQLiteDriver
import Foundation

/// Where a database's grouped writes run: the task executor of each batch, which is also where the writer
/// connection's own work runs, so a statement's answer resumes the batch without changing threads.
protocol Writer: TaskExecutor, Sendable {
    init()
    /// The databases the writer's connections are made from: the given ones, with the writer's thread in place of theirs.
    func databases(beside databases: Databases) -> Databases
    func shutdown() async
}

/// The SQLite writer's own thread: its connection's statements run there, and so does the writer's code, as the task
/// executor of each batch. A statement then runs where the write is waiting for it, instead of hopping to a shared
/// pool thread and queueing behind request handlers to come back: each hop cost more than the statement.
final class WriterThread: Writer, @unchecked Sendable {
    let pool = NIOThreadPool(numberOfThreads: 1)

    init() {
        pool.start()
        pool.submit { _ in Thread.current.threadDictionary[Self.marker] = true }
    }

    private static let marker = "casebook.writer-thread"

    /// Whether the caller runs on a writer's thread.
    static var isCurrent: Bool { Thread.current.threadDictionary[marker] as? Bool == true }

    func enqueue(_ job: UnownedJob) {
        // Run even once the pool has stopped (the job is then run here): a task must never be dropped.
        pool.submit { _ in job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }

    func databases(beside databases: Databases) -> Databases {
        Databases(threadPool: pool, on: databases.eventLoopGroup)
    }

    func shutdown() async {
        try? await pool.shutdownGracefully()
    }
}

/// The PostgreSQL writer's own event loop: its connection's I/O runs there, and so does the writer's code, as the task
/// executor of each batch. An answer from the server then resumes the batch on the thread that read it, instead of
/// queueing twice per statement behind request handlers on the shared event loops (which made a batch of 3 ms of
/// server work take 15 ms).
final class WriterLoop: Writer, @unchecked Sendable {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    var loop: any EventLoop { group.next() }

    private let lock = NSLock()
    private var open = true

    init() {}

    func enqueue(_ job: UnownedJob) {
        let executor = asUnownedTaskExecutor()
        // Once stopped, run the job here: a task must never be dropped.
        guard lock.withLock({ open }) else { return job.runSynchronously(on: executor) }
        loop.execute { job.runSynchronously(on: executor) }
    }

    func databases(beside databases: Databases) -> Databases {
        Databases(threadPool: databases.threadPool, on: group)
    }

    func shutdown() async {
        lock.withLock { open = false }
        try? await group.shutdownGracefully()
    }
}

/// A database configuration whose connections use a writer, started the first time it is asked for (by the driver, or
/// by a store that must name the writer's event loop when it makes the database) and stopped when the database shuts
/// down.
struct WriterConfiguration<W: Writer>: DatabaseConfiguration {
    var base: any DatabaseConfiguration
    let started = Started()

    final class Started: @unchecked Sendable {
        private let lock = NSLock()
        private var _writer: W?
        var writer: W {
            lock.withLock {
                if let _writer { return _writer }
                let writer = W()
                _writer = writer
                return writer
            }
        }
    }

    var middleware: [any AnyModelMiddleware] {
        get { base.middleware }
        set { base.middleware = newValue }
    }

    func makeDriver(for databases: Databases) -> any DatabaseDriver {
        let writer = started.writer
        return Driver(base: base.makeDriver(for: writer.databases(beside: databases)), writer: writer)
    }

    struct Driver: DatabaseDriver {
        let base: any DatabaseDriver
        let writer: W

        func makeDatabase(with context: DatabaseContext) -> any Database { base.makeDatabase(with: context) }

        // The writer's last batch may still hold its connection after its requests were answered: the pool is shut
        // down once it has given it back, so that every connection is closed.
        func shutdown() {
            let deadline = Date().addingTimeInterval(10)
            while !WriteBatcher.shared.isIdle, Date() < deadline { Thread.sleep(forTimeInterval: 0.001) }
            base.shutdown()
            let writer = writer
            Task { await writer.shutdown() }
        }

        func shutdownAsync() async {
            await WriteBatcher.shared.waitUntilIdle()
            await base.shutdownAsync()
            await writer.shutdown()
        }
    }
}
