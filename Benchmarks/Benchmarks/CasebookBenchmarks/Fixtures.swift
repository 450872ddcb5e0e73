import FluentKit
import Foundation
import Logging
import NIOCore
import NIOPosix
import TrialDomain
import TrialStore

/// The inputs the benchmarks share, built the way the tests build them.
enum Fixtures {
    /// A participant of the built-in study who meets every criterion (as `EligibilityBoundaryTests.eligible`).
    static let eligibleParticipant: [String: String] = [
        "demographics.screening_date": "2026-01-10", "demographics.birth_date": "1980-05-01", "demographics.sex": "F",
        "aclf.chronic_liver_disease": "yes", "aclf.ascites": "yes", "aclf.ascites_date": "2026-01-01", "aclf.encephalopathy": "no",
        "aclf.needs_transplant": "yes",
        "history.malignancy": "no", "history.active_infection": "no", "history.combined_transplant": "no", "history.retransplant": "no",
        "history.ebv": "positive", "history.hiv": "negative", "history.hcv": "negative",
        "consent.obtained": "yes",
        "labs.total_bilirubin": "200", "labs.inr": "1.8", "labs.pt_activity": "30", "labs.meld_na": "31",
    ]

    /// The built-in study's only site.
    static let site = "SYSU3"

    /// A fixed allocation-list seed, so every run draws the same list.
    static let seedHex = "5be1c0a8f3d24e7a9b6c1d0e2f3a4b5c6d7e8f90123456789abcdef012345678"

    static let now = Date(timeIntervalSince1970: 1_790_000_000)

    /// What a lab save audits: one new lab result with its values and both CTCAE grades.
    static func labResultChanges(_ i: Int) -> [FieldChange] {
        [
            FieldChange(field: "term", old: nil, new: "BILI"),
            FieldChange(field: "value", old: nil, new: String(40 + i % 200)),
            FieldChange(field: "unit", old: nil, new: "umol/L"),
            FieldChange(field: "uln", old: nil, new: "17.1"),
            FieldChange(field: "collected_at", old: nil, new: "2026-01-\(String(format: "%02d", 1 + i % 28))T08:30:00Z"),
            FieldChange(field: "grade_ctcae_4_03", old: nil, new: "3"),
            FieldChange(field: "grade_ctcae_5_0", old: nil, new: "3"),
        ]
    }

    /// One audit event as `AuditChain.append` would build it, for the pure hashing benchmark.
    static let auditEntry = AuditEntry(
        sequence: 12_345, occurredAt: AuditEntry.timestamp(now), actor: "ana.investigator", action: .create, entity: "lab_result",
        entityID: "6F9619FF-8B86-D011-B42D-00C04FC964FF", siteID: "0E984725-C51C-4BF4-9960-E1C80E27ABA0", reason: nil,
        changes: labResultChanges(7), previousHash: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08")

    /// Appends `count` lab-result events in one write transaction (`Store.write`: BEGIN IMMEDIATE … COMMIT on SQLite).
    static func appendEvents(_ count: Int, to store: Store, startingAt start: Int = 0) async throws {
        try await store.write { tx in
            for i in start..<(start + count) {
                try await AuditChain.append(
                    on: tx, actor: "ana.investigator", action: .create, entity: "lab_result", entityID: "lab-\(i)",
                    siteID: "0E984725-C51C-4BF4-9960-E1C80E27ABA0", reason: nil, changes: labResultChanges(i), now: now)
            }
        }
    }
}

enum BenchmarkFixtureError: Error, CustomStringConvertible {
    case noDatabase
    case notOpen
    case chainBroken(String)

    var description: String {
        switch self {
        case .noDatabase: "the SQLite database could not be opened"
        case .notOpen: "the benchmark store was not opened by its setup"
        case .chainBroken(let why): "audit chain does not verify: \(why)"
        }
    }
}

/// A migrated SQLite store in a fresh temporary folder, opened the way the CLI and the store tests open it
/// (`DatabaseSettings.register`, no web framework), kept open across a benchmark's iterations.
final class SQLiteStoreFixture: @unchecked Sendable {
    private let lock = NSLock()
    private var databases: Databases?
    private var directory: URL?
    private var _store: Store?

    var store: Store {
        get throws {
            guard let store = lock.withLock({ _store }) else { throw BenchmarkFixtureError.notOpen }
            return store
        }
    }

    func open() async throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("casebook-benchmarks-\(UUID().uuidString)")
        let path = directory.appendingPathComponent("bench.sqlite").path
        let databases = Databases(threadPool: NIOThreadPool.singleton, on: MultiThreadedEventLoopGroup.singleton)
        try DatabaseSettings.sqlite(path: path).register(in: databases)
        var logger = Logger(label: "casebook.benchmarks")
        logger.logLevel = .warning
        guard let database = databases.database(logger: logger, on: MultiThreadedEventLoopGroup.singleton.any()) else {
            await databases.shutdownAsync()
            throw BenchmarkFixtureError.noDatabase
        }
        let store = Store(database: database)
        try await store.migrate()
        lock.withLock {
            self.databases = databases
            self.directory = directory
            self._store = store
        }
    }

    func close() async {
        let (databases, directory) = lock.withLock {
            defer {
                self.databases = nil
                self.directory = nil
                self._store = nil
            }
            return (self.databases, self.directory)
        }
        await databases?.shutdownAsync()
        if let directory { try? FileManager.default.removeItem(at: directory) }
    }
}
