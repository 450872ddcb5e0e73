import FluentKit
import FluentSQLiteDriver
import Foundation

/// The SQLite writer's own thread: its connection's statements run there, and so does the writer's code, as the task
/// executor of each batch. A statement then runs where the write is waiting for it, instead of hopping to a shared
/// pool thread and queueing behind request handlers to come back: each hop cost more than the statement.
final class WriterThread: TaskExecutor, @unchecked Sendable {
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

    func shutdown() async {
        try? await pool.shutdownGracefully()
    }
}

/// A database configuration whose connections use a writer's thread, started with the database's driver (the first
/// time the database is used) and stopped when it shuts down.
struct WriterThreadConfiguration: DatabaseConfiguration {
    var base: any DatabaseConfiguration
    let started = Started()

    final class Started: @unchecked Sendable {
        private let lock = NSLock()
        private var _thread: WriterThread?
        var thread: WriterThread? {
            get { lock.withLock { _thread } }
            set { lock.withLock { _thread = newValue } }
        }
    }

    var middleware: [any AnyModelMiddleware] {
        get { base.middleware }
        set { base.middleware = newValue }
    }

    func makeDriver(for databases: Databases) -> any DatabaseDriver {
        let thread = WriterThread()
        started.thread = thread
        return Driver(base: base.makeDriver(for: Databases(threadPool: thread.pool, on: databases.eventLoopGroup)), thread: thread)
    }

    struct Driver: DatabaseDriver {
        let base: any DatabaseDriver
        let thread: WriterThread

        func makeDatabase(with context: DatabaseContext) -> any Database { base.makeDatabase(with: context) }

        // The writer's last batch may still hold its connection after its requests were answered: the pool is shut
        // down once it has given it back, so that every connection is closed.
        func shutdown() {
            let deadline = Date().addingTimeInterval(10)
            while !WriteBatcher.shared.isIdle, Date() < deadline { Thread.sleep(forTimeInterval: 0.001) }
            base.shutdown()
            thread.pool.shutdownGracefully { _ in }
        }

        func shutdownAsync() async {
            await WriteBatcher.shared.waitUntilIdle()
            await base.shutdownAsync()
            await thread.shutdown()
        }
    }
}

/// The PostgreSQL writer's own event loop: its connection's I/O runs there, and so does the writer's code, as the task
/// executor of each batch. An answer from the server then resumes the batch on the thread that read it, instead of
/// queueing twice per statement behind request handlers on the shared event loops (which made a batch of 3 ms of
/// server work take 15 ms).
final class WriterLoop: TaskExecutor, @unchecked Sendable {
    let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
    var loop: any EventLoop { group.next() }

    private let lock = NSLock()
    private var open = true

    func enqueue(_ job: UnownedJob) {
        let executor = asUnownedTaskExecutor()
        // Once stopped, run the job here: a task must never be dropped.
        guard lock.withLock({ open }) else { return job.runSynchronously(on: executor) }
        loop.execute { job.runSynchronously(on: executor) }
    }

    func shutdown() async {
        lock.withLock { open = false }
        try? await group.shutdownGracefully()
    }
}

/// A database configuration whose connections live on a writer's event loop, started the first time a store asks for
/// it (a store must name that loop when it makes the database) and stopped when the database shuts down.
struct WriterLoopConfiguration: DatabaseConfiguration {
    var base: any DatabaseConfiguration
    let started = Started()

    final class Started: @unchecked Sendable {
        private let lock = NSLock()
        private var _writer: WriterLoop?
        var writer: WriterLoop {
            lock.withLock {
                if let _writer { return _writer }
                let writer = WriterLoop()
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
        return Driver(base: base.makeDriver(for: Databases(threadPool: databases.threadPool, on: writer.group)), writer: writer)
    }

    struct Driver: DatabaseDriver {
        let base: any DatabaseDriver
        let writer: WriterLoop

        func makeDatabase(with context: DatabaseContext) -> any Database { base.makeDatabase(with: context) }

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
