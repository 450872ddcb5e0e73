import Foundation
import Testing
import TrialDomain
@testable import TrialStore

private let now = Date(timeIntervalSince1970: 1_790_000_000)
private let account = Account(
    id: UUID(), username: "ana", role: .coordinator, isActive: true, siteIDs: [], passwordHash: "", failedLogins: 0, lockedUntil: nil)

/// Counts the lookups a cache starts, and holds each until released, so that callers pile up behind it.
private final class Lookups: @unchecked Sendable {
    private let lock = NSLock()
    private var count = 0
    var started: Int { lock.withLock { count } }

    func read(_ result: Account?, after delay: Duration = .milliseconds(20)) -> @Sendable () async throws -> Account? {
        { [self] in
            lock.withLock { count += 1 }
            try await Task.sleep(for: delay)
            return result
        }
    }
}

@Suite struct TokenAccountCacheTests {
    @Test func requestsMissingTogetherShareOneLookup() async throws {
        let cache = TokenAccountCache()
        let lookups = Lookups()
        let found = try await withThrowingTaskGroup(of: Account?.self) { group in
            for _ in 0..<64 { group.addTask { try await cache.account("h", now: now, read: lookups.read(account)) } }
            return try await group.reduce(into: [Account?]()) { $0.append($1) }
        }
        #expect(found.count == 64)
        #expect(found.allSatisfy { $0 == account })
        #expect(lookups.started == 1)
        // Cached now: no further lookup within the lifetime, a new one after it.
        _ = try await cache.account("h", now: now.addingTimeInterval(TokenAccountCache.lifetime - 1), read: lookups.read(account))
        #expect(lookups.started == 1)
        _ = try await cache.account("h", now: now.addingTimeInterval(TokenAccountCache.lifetime + 1), read: lookups.read(account))
        #expect(lookups.started == 2)
    }

    @Test func anUnknownTokenIsNotCached() async throws {
        let cache = TokenAccountCache()
        let lookups = Lookups()
        #expect(try await cache.account("h", now: now, read: lookups.read(nil, after: .zero)) == nil)
        #expect(try await cache.account("h", now: now, read: lookups.read(account, after: .zero)) == account)
        #expect(lookups.started == 2)
    }

    @Test func aRequestAfterClearingNeverSharesALookupStartedBefore() async throws {
        let cache = TokenAccountCache()
        let lookups = Lookups()
        // A lookup that will find the account, still under way when the token is revoked (the cache cleared).
        let before = Task { try await cache.account("h", now: now, read: lookups.read(account, after: .milliseconds(200))) }
        while lookups.started == 0 { try await Task.sleep(for: .milliseconds(1)) }
        cache.removeAll()
        #expect(try await cache.account("h", now: now, read: lookups.read(nil, after: .zero)) == nil)
        #expect(lookups.started == 2)
        // The earlier request gets what it was reading, but its answer is not kept.
        #expect(try await before.value == account)
        #expect(try await cache.account("h", now: now, read: lookups.read(nil, after: .zero)) == nil)
        #expect(lookups.started == 3)
    }
}
