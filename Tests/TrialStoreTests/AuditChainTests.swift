import FluentKit
import FluentSQL
import Foundation
import FluentSQLiteDriver
import Logging
import TestSupport
import Testing
import TrialDomain
@testable import TrialStore

private let now = Date(timeIntervalSince1970: 1_790_000_000)

/// Two sites, a user at each, and a participant at site A: the fixture most store tests need.
private func seed(_ store: Store) async throws -> (a: Site, b: Site, participant: Participant) {
    let accounts = FluentAccountRepository(store: store)
    let a = try await accounts.createSite(code: "A", name: "Site A", actor: "admin", now: now)
    let b = try await accounts.createSite(code: "B", name: "Site B", actor: "admin", now: now)
    let participant = try await FluentParticipantRepository(store: store).create(
        siteID: a.id, screeningNumber: "A-001", scope: .init(actor: "ana", siteIDs: [a.id]), now: now)
    return (a, b, participant)
}

private func eventCount(_ store: Store) async throws -> Int {
    try await AuditEventModel.query(on: store.database).count()
}

@Suite struct AuditChainTests {
    @Test(arguments: TestDatabase.available)
    func everyWriteLeavesAChainedEvent(database: TestDatabase) async throws {
        try await database.withStore { store in
            let (a, _, p) = try await seed(store)
            let repo = FluentParticipantRepository(store: store)
            let scope = AccessScope(actor: "ana", siteIDs: [a.id])
            _ = try await repo.updateStatus(id: p.id, status: .eligible, reason: "criteria confirmed", scope: scope, now: now)
            let history = try await repo.history(id: p.id, scope: scope)
            #expect(history.map(\.action) == [.create, .update])
            #expect(history[1].changes == [FieldChange(field: "status", old: "screening", new: "eligible")])
            #expect(history[1].reason == "criteria confirmed")
            #expect(history[1].actor == "ana")
            #expect(history[1].occurredAt == AuditEntry.timestamp(now))
            // Each event's previous hash is the hash of the event before it.
            let all = try await AuditEventModel.query(on: store.database).sort(\.$id).all()
            #expect(all.first?.previousHash == AuditChain.genesis)
            for (earlier, later) in zip(all, all.dropFirst()) { #expect(later.previousHash == earlier.hash) }
            let result = try await AuditChain.verify(on: store.database)
            #expect(result.isIntact)
            #expect(result.checked == all.count)
        }
    }

    @Test(arguments: TestDatabase.available)
    func aChangeWithoutAReasonIsRefusedAndNothingIsWritten(database: TestDatabase) async throws {
        try await database.withStore { store in
            let (a, _, p) = try await seed(store)
            let before = try await eventCount(store)
            let repo = FluentParticipantRepository(store: store)
            let scope = AccessScope(actor: "ana", siteIDs: [a.id])
            await #expect(throws: StoreError.reasonRequired(field: "status")) {
                try await repo.updateStatus(id: p.id, status: .eligible, reason: nil, scope: scope, now: now)
            }
            let investigator = AccessScope(actor: "ana", siteIDs: [a.id], role: .investigator)
            await #expect(throws: StoreError.reasonRequired(field: "screeningNumber")) {
                try await repo.delete(id: p.id, reason: " ", scope: investigator, now: now)
            }
            // A reason is a reason, not a document: 2,001 characters are refused whole.
            await #expect(throws: StoreError.invalid(field: "reason", rule: "must be at most 2000 characters")) {
                try await repo.updateStatus(id: p.id, status: .eligible, reason: String(repeating: "x", count: 2_001), scope: scope, now: now)
            }
            #expect(try await repo.find(id: p.id, scope: scope).status == .screening)
            #expect(try await eventCount(store) == before)
        }
    }

    @Test(arguments: TestDatabase.available)
    func aHandEditedEventBreaksTheChainAtThatEvent(database: TestDatabase) async throws {
        try await database.withStore { store in
            _ = try await seed(store)
            let sql = store.database as! any SQLDatabase
            try await sql.raw("UPDATE audit_events SET actor = 'mallory' WHERE sequence = 2").run()
            let result = try await AuditChain.verify(on: store.database)
            #expect(result.broken?.sequence == 2)
            #expect(result.broken?.problem == "content does not match its hash")
            #expect(result.checked == 1)
        }
    }

    @Test(arguments: TestDatabase.available)
    func aRehashedEditIsCaughtByTheNextEvent(database: TestDatabase) async throws {
        try await database.withStore { store in
            _ = try await seed(store)
            let sql = store.database as! any SQLDatabase
            // A forger who also recomputes the edited event's hash still breaks the link to event 3.
            guard let row = try await sql.raw("SELECT * FROM audit_events WHERE sequence = 2").first() else { return }
            var entry = try AuditChain.decodeEntry(row)
            entry.actor = "mallory"
            try await sql.raw("UPDATE audit_events SET actor = 'mallory', hash = \(bind: AuditChain.hash(entry)) WHERE sequence = 2").run()
            let result = try await AuditChain.verify(on: store.database)
            #expect(result.broken?.sequence == 3)
        }
    }

    @Test(arguments: TestDatabase.available)
    func verifyingPageByPageFollowsTheChainAcrossPages(database: TestDatabase) async throws {
        try await database.withStore { store in
            _ = try await seed(store)
            let count = try await eventCount(store)
            #expect(count >= 3)
            #expect(try await AuditChain.verify(on: store.database, pageSize: 1) == .init(checked: count, broken: nil))
            try await (store.database as! any SQLDatabase).raw("UPDATE audit_events SET actor = 'mallory' WHERE sequence = \(bind: count)").run()
            let result = try await AuditChain.verify(on: store.database, pageSize: 1)
            #expect(result == .init(checked: count - 1, broken: .init(sequence: Int64(count), problem: "content does not match its hash")))
        }
    }

    @Test(arguments: TestDatabase.available)
    func aDeletedEventIsNamed(database: TestDatabase) async throws {
        try await database.withStore { store in
            _ = try await seed(store)
            try await (store.database as! any SQLDatabase).raw("DELETE FROM audit_events WHERE sequence = 2").run()
            let result = try await AuditChain.verify(on: store.database)
            #expect(result.broken == .init(sequence: 2, problem: "event is missing"))
        }
    }

    @Test(arguments: TestDatabase.available)
    func aTruncatedTailIsNoticed(database: TestDatabase) async throws {
        try await database.withStore { store in
            _ = try await seed(store)
            let last = try await eventCount(store)
            try await (store.database as! any SQLDatabase).raw("DELETE FROM audit_events WHERE sequence = \(bind: last)").run()
            let result = try await AuditChain.verify(on: store.database)
            #expect(result.broken?.sequence == Int64(last))
        }
    }

    @Test(arguments: TestDatabase.available)
    func concurrentWritesKeepOneUnbrokenChain(database: TestDatabase) async throws {
        try await database.withStore { store in
            let (a, _, _) = try await seed(store)
            let repo = FluentParticipantRepository(store: store)
            let scope = AccessScope(actor: "ana", siteIDs: [a.id])
            try await withThrowingTaskGroup(of: Void.self) { group in
                for i in 0..<20 {
                    group.addTask { _ = try await repo.create(siteID: a.id, screeningNumber: "C-\(i)", scope: scope, now: now) }
                }
                try await group.waitForAll()
            }
            let result = try await AuditChain.verify(on: store.database)
            #expect(result.isIntact)
            #expect(result.checked == 3 + 20)
        }
    }
}

@Suite struct GroupedWriteTests {
    /// Concurrent writes share commits on SQLite; a request that fails rolls back alone and the others stay written.
    @Test(arguments: TestDatabase.available)
    func aFailingRequestSpoilsNothingElseInItsBatch(database: TestDatabase) async throws {
        try await database.withStore { store in
            let (a, _, _) = try await seed(store)
            let repo = FluentParticipantRepository(store: store)
            let scope = AccessScope(actor: "ana", siteIDs: [a.id])
            let before = try await eventCount(store)
            // Ten distinct numbers, each asked for three times at once: one of each three can win.
            let outcomes = await withTaskGroup(of: Bool.self) { group in
                for i in 0..<30 {
                    group.addTask { (try? await repo.create(siteID: a.id, screeningNumber: "G-\(i % 10)", scope: scope, now: now)) != nil }
                }
                var results: [Bool] = []
                for await ok in group { results.append(ok) }
                return results
            }
            #expect(outcomes.filter { $0 }.count == 10)
            #expect(try await repo.list(scope: scope).filter { $0.screeningNumber.hasPrefix("G-") }.count == 10)
            #expect(try await eventCount(store) == before + 10)
            #expect(try await AuditChain.verify(on: store.database).isIntact)
        }
    }
}

@Suite struct SiteIsolationTests {
    @Test(arguments: TestDatabase.available)
    func anotherSitesParticipantCannotBeReadOrWritten(database: TestDatabase) async throws {
        try await database.withStore { store in
            let (_, b, p) = try await seed(store)
            let repo = FluentParticipantRepository(store: store)
            let outsider = AccessScope(actor: "bob", siteIDs: [b.id])
            let before = try await eventCount(store)
            let notFound = StoreError.notFound(entity: "participant", id: p.id.uuidString)
            await #expect(throws: notFound) { try await repo.find(id: p.id, scope: outsider) }
            await #expect(throws: notFound) { try await repo.updateStatus(id: p.id, status: .withdrawn, reason: "x", scope: outsider, now: now) }
            await #expect(throws: notFound) { try await repo.delete(id: p.id, reason: "x", scope: outsider, now: now) }
            await #expect(throws: notFound) { try await repo.history(id: p.id, scope: outsider) }
            await #expect(throws: StoreError.notFound(entity: "site", id: p.siteID.uuidString)) {
                try await repo.create(siteID: p.siteID, screeningNumber: "A-002", scope: outsider, now: now)
            }
            #expect(try await repo.list(scope: outsider).isEmpty)
            #expect(try await eventCount(store) == before)
        }
    }

    @Test(arguments: TestDatabase.available)
    func aUserAtTwoSitesSeesBoth(database: TestDatabase) async throws {
        try await database.withStore { store in
            let (a, b, _) = try await seed(store)
            let repo = FluentParticipantRepository(store: store)
            let both = AccessScope(actor: "cy", siteIDs: [a.id, b.id])
            _ = try await repo.create(siteID: b.id, screeningNumber: "B-001", scope: both, now: now)
            #expect(try await repo.list(scope: both).map(\.screeningNumber) == ["A-001", "B-001"])
            #expect(try await repo.list(scope: .init(actor: "ana", siteIDs: [a.id])).map(\.screeningNumber) == ["A-001"])
        }
    }
}

@Suite struct AccountStoreTests {
    @Test(arguments: TestDatabase.available)
    func userCreationIsAllOrNothing(database: TestDatabase) async throws {
        try await database.withStore { store in
            let accounts = FluentAccountRepository(store: store)
            _ = try await accounts.createSite(code: "A", name: "Site A", actor: "admin", now: now)
            let before = try await eventCount(store)
            await #expect(throws: StoreError.notFound(entity: "site", id: "NOPE")) {
                try await accounts.createUser(username: "ines", passwordHash: "h", role: .investigator, siteCodes: ["A", "NOPE"], actor: "admin", now: now)
            }
            #expect(try await accounts.account(username: "ines") == nil)
            #expect(try await eventCount(store) == before)
            await #expect(throws: StoreError.invalid(field: "site", rule: "a investigator must belong to at least one site")) {
                try await accounts.createUser(username: "ines", passwordHash: "h", role: .investigator, siteCodes: [], actor: "admin", now: now)
            }
        }
    }

    @Test(arguments: TestDatabase.available)
    func accountChangesAreAudited(database: TestDatabase) async throws {
        try await database.withStore { store in
            let accounts = FluentAccountRepository(store: store)
            _ = try await accounts.createSite(code: "A", name: "Site A", actor: "admin", now: now)
            _ = try await accounts.createSite(code: "B", name: "Site B", actor: "admin", now: now)
            let user = try await accounts.createUser(username: "ines", passwordHash: "h", role: .investigator, siteCodes: ["A"], actor: "admin", now: now)
            _ = try await accounts.updateUser("ines", change: .init(addSites: ["B"]), actor: "admin", reason: "covers site B", now: now)
            let history = try await AuditChain.history(on: store.database, entity: "user", entityID: user.id.uuidString)
            #expect(history.map(\.action) == [.create, .update])
            #expect(history[0].changes.contains(FieldChange(field: "role", old: nil, new: "investigator")))
            #expect(history[1].changes == [FieldChange(field: "sites", old: nil, new: "B")])
            #expect(try await accounts.account(username: "ines")?.siteIDs.count == 2)
            #expect(try await AuditChain.verify(on: store.database).isIntact)
        }
    }

    @Test(arguments: TestDatabase.available)
    func repeatedFailedLoginsLockTheAccount(database: TestDatabase) async throws {
        try await database.withStore { store in
            let accounts = FluentAccountRepository(store: store)
            let admin = try await accounts.createUser(username: "root", passwordHash: "h", role: .admin, siteCodes: [], actor: "cli", now: now)
            #expect(try await accounts.recordFailedLogin(userID: admin.id, threshold: 3, lockFor: 600, now: now) == nil)
            #expect(try await accounts.recordFailedLogin(userID: admin.id, threshold: 3, lockFor: 600, now: now) == nil)
            #expect(try await accounts.recordFailedLogin(userID: admin.id, threshold: 3, lockFor: 600, now: now) == now.addingTimeInterval(600))
            #expect(try await accounts.account(username: "root")?.lockedUntil == now.addingTimeInterval(600))
        }
    }

    @Test(arguments: TestDatabase.available)
    func migrationsRevertAndReapply(database: TestDatabase) async throws {
        try await database.withStore { store in
            _ = try await seed(store)
            try await store.revertAll()
            try await store.migrate()
            #expect(try await FluentAccountRepository(store: store).sites().isEmpty)
            #expect(try await AuditChain.verify(on: store.database) == .init(checked: 0, broken: nil))
        }
    }
}

@Suite struct AccountChangeTests {
    @Test(arguments: TestDatabase.available)
    func roleSiteAndActiveChangesAreOneAuditedEvent(database: TestDatabase) async throws {
        try await database.withStore { store in
            let accounts = FluentAccountRepository(store: store)
            _ = try await accounts.createSite(code: "A", name: "Site A", actor: "admin", now: now)
            _ = try await accounts.createSite(code: "B", name: "Site B", actor: "admin", now: now)
            let user = try await accounts.createUser(username: "ines", passwordHash: "h", role: .investigator, siteCodes: ["A"], actor: "admin", now: now)
            let before = try await eventCount(store)
            await #expect(throws: StoreError.reasonRequired(field: "role")) {
                try await accounts.updateUser("ines", change: .init(role: .monitor), actor: "admin", reason: nil, now: now)
            }
            await #expect(throws: StoreError.invalid(field: "site", rule: "a investigator must belong to at least one site")) {
                try await accounts.updateUser("ines", change: .init(removeSites: ["A"]), actor: "admin", reason: "moved", now: now)
            }
            #expect(try await eventCount(store) == before)
            let updated = try await accounts.updateUser(
                "ines", change: .init(role: .monitor, addSites: ["B"], removeSites: ["A"], isActive: false), actor: "admin",
                reason: "now monitors site B", now: now)
            #expect(updated.role == .monitor)
            #expect(updated.isActive == false)
            let history = try await AuditChain.history(on: store.database, entity: "user", entityID: user.id.uuidString)
            #expect(history.last?.changes == [
                FieldChange(field: "role", old: "investigator", new: "monitor"),
                FieldChange(field: "is_active", old: "true", new: "false"),
                FieldChange(field: "sites", old: nil, new: "B"),
                FieldChange(field: "sites", old: "A", new: nil),
            ])
            #expect(history.last?.reason == "now monitors site B")
            let reloaded = try await accounts.account(username: "ines")
            #expect(reloaded?.siteIDs.count == 1)
            #expect(reloaded?.role == .monitor)
        }
    }
}

@Suite struct StoredChangesTests {
    /// The hand-written reader takes what JSONEncoder wrote before (nulls left out) and what the writer writes now.
    @Test func readsBothStoredFormsAndRoundTrips() throws {
        let changes: [FieldChange] = [
            .init(field: "value", old: nil, new: "55 U/L"), .init(field: "q\"uote\\/", old: "é\n\t\u{1}😀", new: nil), .init(field: "x", old: "", new: ""),
        ]
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let older = String(decoding: try encoder.encode(changes), as: UTF8.self)
        #expect(try ChangesText.decode(older) == changes)
        #expect(try ChangesText.decode(ChangesText.encode(changes)) == changes)
        #expect(try JSONDecoder().decode([FieldChange].self, from: Data(ChangesText.encode(changes).utf8)) == changes)
        #expect(try ChangesText.decode(#" [ { "new" : null , "field" : "a\u00e9\ud83d\ude00" } ] "#) == [.init(field: "aé😀", old: nil, new: nil)])
        #expect(try ChangesText.decode("[]") == [])
        // Keys written with escapes are the same keys.
        #expect(try ChangesText.decode(#"[{"fi\u0065ld":"a","n\u0065w":null}]"#) == [.init(field: "a", old: nil, new: nil)])
        // Verify transcodes the stored text straight to the canonical form; it must equal the form built from values.
        let entry = AuditEntry(
            sequence: 7, occurredAt: "2026-01-01T00:00:00.000Z", actor: "ana", action: .update, entity: "lab_result", entityID: "x",
            siteID: nil, reason: "typo", changes: changes, previousHash: AuditEntry.genesisHash)
        for stored in [older, ChangesText.encode(changes)] {
            let transcoded = AuditEntry.canonicalBytes(
                sequence: 7, occurredAt: entry.occurredAt, actor: "ana", action: "update", entity: "lab_result", entityID: "x", siteID: nil,
                reason: "typo", previousHash: AuditEntry.genesisHash, changes: { ChangesText.appendCanonical(stored, to: &$0) })
            #expect(transcoded.map { Data($0) } == entry.canonicalBytes())
        }
        var sink: [UInt8] = []
        #expect(!ChangesText.appendCanonical(#"[{"field":1}]"#, to: &sink))
    }

    @Test(arguments: [#"[{"old":"a"}]"#, #"[{"field":"a","extra":1}]"#, #"[{"field":"a"}"#, "", #"[{"field":"a","field":"b"}]"#])
    func malformedTextIsRefused(text: String) {
        #expect(throws: (any Error).self) { try ChangesText.decode(text) }
    }
}

@Suite struct WriterThreadTests {
    /// An application's store runs its grouped writes where its writer connection's work runs (on SQLite the writer's
    /// own thread, on PostgreSQL its own event loop): concurrent writes all commit, each there, and the databases then
    /// shut down.
    @Test(arguments: TestDatabase.available)
    func groupedWritesRunOnTheWriterThread(database: TestDatabase) async throws {
        let (settings, cleanup) = try await database.makeSettings()
        defer { Task { try? await cleanup() } }
        let databases = Databases(threadPool: NIOThreadPool.singleton, on: MultiThreadedEventLoopGroup.singleton)
        try settings.register(in: databases)
        let store = Store(databases: databases, logger: Logger(label: "test"), on: MultiThreadedEventLoopGroup.singleton.any())
        #expect(store.writerExecutor != nil)
        let onWriter: @Sendable () -> Bool = { [executor = store.writerExecutor] in
            if let loop = executor as? WriterLoop { return loop.loop.inEventLoop }
            return executor is WriterThread && WriterThread.isCurrent
        }
        try await store.migrate()
        #expect(!onWriter())
        let ranOnWriter = try await withThrowingTaskGroup(of: Bool.self) { group in
            for n in 0..<50 {
                group.addTask {
                    try await store.write { tx in
                        try await AuditChain.append(
                            on: tx, actor: "test", action: .create, entity: "note", entityID: "\(n)", siteID: nil, reason: nil,
                            changes: [.init(field: "n", old: nil, new: "\(n)")], now: Date())
                        return onWriter()
                    }
                }
            }
            return try await group.reduce(into: [Bool]()) { $0.append($1) }
        }
        #expect(ranOnWriter.count == 50 && ranOnWriter.allSatisfy { $0 })
        let verification = try await AuditChain.verify(on: store.database)
        #expect(verification.isIntact && verification.checked >= 50)
        await databases.shutdownAsync()
    }
}

extension WriterThreadTests {
    /// Databases shut down the moment their last write is answered: the writer's batch may still hold its connection
    /// then, and shutting the pool down under it would drop the connection unclosed (sqlite-nio asserts in debug).
    @Test func shuttingDownRightAfterAWriteClosesEveryConnection() async throws {
        for round in 0..<10 {
            let (settings, cleanup) = try await TestDatabase.sqlite.makeSettings()
            let databases = Databases(threadPool: NIOThreadPool.singleton, on: MultiThreadedEventLoopGroup.singleton)
            try settings.register(in: databases)
            let store = Store(databases: databases, logger: Logger(label: "test"), on: MultiThreadedEventLoopGroup.singleton.any())
            try await store.migrate()
            try await store.write { tx in
                try await AuditChain.append(
                    on: tx, actor: "test", action: .create, entity: "note", entityID: "\(round)", siteID: nil, reason: nil,
                    changes: [.init(field: "round", old: nil, new: "\(round)")], now: Date())
            }
            await databases.shutdownAsync()
            try await cleanup()
        }
    }
}

extension WriterThreadTests {
    /// The writer's WAL is copied back into the database by a checkpoint started after every 32 commits on a reader
    /// connection, not by SQLite inside whichever commit crosses its page threshold: after 40 commits the database
    /// file alone (without its WAL) holds the first 32 events. SQLite's own checkpoint (1,000 pages) would not have
    /// run yet, leaving the file without them.
    @Test func theWritersCommitsAreCheckpointedOffItsThread() async throws {
        let (settings, cleanup) = try await TestDatabase.sqlite.makeSettings()
        defer { Task { try? await cleanup() } }
        guard case .sqlite(let path) = settings else { return }
        let databases = Databases(threadPool: NIOThreadPool.singleton, on: MultiThreadedEventLoopGroup.singleton)
        try settings.register(in: databases)
        let store = Store(databases: databases, logger: Logger(label: "test"), on: MultiThreadedEventLoopGroup.singleton.any())
        try await store.migrate()
        for n in 0..<40 {
            try await store.write { tx in
                try await AuditChain.append(
                    on: tx, actor: "test", action: .create, entity: "note", entityID: "\(n)", siteID: nil, reason: nil,
                    changes: [.init(field: "n", old: nil, new: "\(n)")], now: Date())
            }
        }
        await WriteBatcher.shared.waitUntilIdle()
        let copy = path + "-alone.sqlite"
        try FileManager.default.copyItem(atPath: path, toPath: copy)
        let alone = Databases(threadPool: NIOThreadPool.singleton, on: MultiThreadedEventLoopGroup.singleton)
        alone.use(.sqlite(.file(copy)), as: .sqlite)
        let sql = alone.database(logger: Logger(label: "test"), on: MultiThreadedEventLoopGroup.singleton.any()) as! any SQLDatabase
        let events = try await sql.raw("SELECT COUNT(*) AS n FROM audit_events WHERE entity = 'note'").first()?.decode(column: "n", as: Int.self)
        #expect((32...40).contains(events ?? 0))
        await alone.shutdownAsync()
        await databases.shutdownAsync()
    }
}

/// Trial records are never lost from the trial: only an investigator withdraws a screening record entered in error, and
/// never an allocated one; the screening log still counts it.
@Suite struct ParticipantRemovalTests {
    @Test func theRuleByRoleAndAllocation() {
        #expect(throws: RuleError.self) { try ParticipantRemoval.check(role: .coordinator, allocated: false) }
        #expect(throws: RuleError.self) { try ParticipantRemoval.check(role: .dataManager, allocated: false) }
        #expect(throws: RuleError.self) { try ParticipantRemoval.check(role: .investigator, allocated: true) }
        #expect(throws: Never.self) { try ParticipantRemoval.check(role: .investigator, allocated: false) }
    }
}
