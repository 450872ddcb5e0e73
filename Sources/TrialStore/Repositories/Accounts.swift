import FluentKit
import Foundation
import TrialDomain

public struct Site: Sendable, Equatable, Codable {
    public var id: UUID
    public var code: String
    public var name: String
}

public struct Account: Sendable, Equatable {
    public var id: UUID
    public var username: String
    public var role: Role
    public var isActive: Bool
    public var siteIDs: Set<UUID>
    public var passwordHash: String
    public var failedLogins: Int
    public var lockedUntil: Date?
}

/// What an administrator may change about an account.
public struct AccountChange: Sendable, Equatable {
    public var role: Role?
    public var addSites: [String]
    public var removeSites: [String]
    public var isActive: Bool?
    public init(role: Role? = nil, addSites: [String] = [], removeSites: [String] = [], isActive: Bool? = nil) {
        self.role = role
        self.addSites = addSites
        self.removeSites = removeSites
        self.isActive = isActive
    }
}

public struct APIToken: Sendable, Equatable, Codable {
    public var id: UUID
    public var name: String
    public var prefix: String
    public var createdAt: Date
    public var revokedAt: Date?
    public var lastUsedAt: Date?
}

/// Sites, users, memberships, sessions and API tokens. Changes to users, roles and memberships are audited.
public protocol AccountRepository: Sendable {
    func createSite(code: String, name: String, actor: String, now: Date) async throws -> Site
    func sites() async throws -> [Site]
    func site(code: String) async throws -> Site?
    func createUser(username: String, passwordHash: String, role: Role, siteCodes: [String], actor: String, now: Date) async throws -> Account
    /// Changes role, memberships or active state in one audited transaction; a reason is required.
    func updateUser(_ username: String, change: AccountChange, actor: String, reason: String?, now: Date) async throws -> Account
    func account(username: String) async throws -> Account?
    func account(id: UUID) async throws -> Account?
    func accounts() async throws -> [Account]
    func userCount() async throws -> Int
    /// Counts a failed login; returns the lock time if this failure locked the account.
    func recordFailedLogin(userID: UUID, threshold: Int, lockFor: TimeInterval, now: Date) async throws -> Date?
    func recordSuccessfulLogin(userID: UUID) async throws
    func createSession(userID: UUID, tokenHash: String, expiresAt: Date, now: Date) async throws
    func session(tokenHash: String) async throws -> (userID: UUID, expiresAt: Date)?
    func extendSession(tokenHash: String, expiresAt: Date) async throws
    func deleteSession(tokenHash: String) async throws
    func createToken(userID: UUID, name: String, tokenHash: String, prefix: String, actor: String, now: Date) async throws -> APIToken
    func tokens(userID: UUID) async throws -> [APIToken]
    func revokeToken(id: UUID, userID: UUID, actor: String, now: Date) async throws
    func userID(forTokenHash hash: String, now: Date) async throws -> UUID?
    /// The active account an API token belongs to, nil when the token is unknown or revoked or the account inactive.
    func account(forTokenHash hash: String, now: Date) async throws -> Account?
    /// The same when it was looked up in the last few seconds, without waiting for the database; else nil.
    func cachedAccount(forTokenHash hash: String, now: Date) -> Account?
}

public struct FluentAccountRepository: AccountRepository {
    let store: Store
    public init(store: Store) { self.store = store }
    var db: any Database { store.database }

    public func createSite(code: String, name: String, actor: String, now: Date) async throws -> Site {
        let code = code.trimmingCharacters(in: .whitespaces)
        let name = name.trimmingCharacters(in: .whitespaces)
        if let problem = ScreeningNumber.validate(code) { throw StoreError.invalid(field: "code", rule: problem) }
        if name.isEmpty { throw StoreError.invalid(field: "name", rule: "must not be empty") }
        return try await store.write { tx in
            if try await SiteModel.query(on: tx).filter(\.$code == code).first() != nil {
                throw StoreError.duplicate(field: "code", value: code)
            }
            let site = SiteModel(id: UUID.timeOrdered(), code: code, name: name, createdAt: now)
            try await site.create(on: tx)
            try await AuditChain.append(
                on: tx, actor: actor, action: .create, entity: "site", entityID: site.id!.uuidString, siteID: site.id!.uuidString,
                reason: nil, changes: [.init(field: "code", old: nil, new: code), .init(field: "name", old: nil, new: name)], now: now)
            return Site(id: site.id!, code: code, name: name)
        }
    }

    public func sites() async throws -> [Site] {
        try await SiteModel.query(on: db).sort(\.$code).all().map { Site(id: $0.id!, code: $0.code, name: $0.name) }
    }

    public func site(code: String) async throws -> Site? {
        try await SiteModel.query(on: db).filter(\.$code == code).first().map { Site(id: $0.id!, code: $0.code, name: $0.name) }
    }

    public func createUser(
        username: String, passwordHash: String, role: Role, siteCodes: [String], actor: String, now: Date
    ) async throws -> Account {
        let username = username.trimmingCharacters(in: .whitespaces)
        guard (3...64).contains(username.count),
            username.unicodeScalars.allSatisfy({ $0.isASCII && (CharacterSet.alphanumerics.contains($0) || "._-".unicodeScalars.contains($0)) })
        else {
            throw StoreError.invalid(field: "username", rule: "3–64 characters: letters, digits, '.', '_' or '-'")
        }
        return try await store.write { tx in
            if try await UserModel.query(on: tx).filter(\.$username == username).first() != nil {
                throw StoreError.duplicate(field: "username", value: username)
            }
            // An admin manages accounts and sites but reads no participant, so needs no site.
            if siteCodes.isEmpty && role != .admin {
                throw StoreError.invalid(field: "site", rule: "a \(role.rawValue) must belong to at least one site")
            }
            var siteIDs: [UUID] = []
            for code in siteCodes {
                guard let site = try await SiteModel.query(on: tx).filter(\.$code == code).first() else {
                    throw StoreError.notFound(entity: "site", id: code)
                }
                siteIDs.append(site.id!)
            }
            let user = UserModel()
            user.id = UUID.timeOrdered()
            user.username = username
            user.passwordHash = passwordHash
            user.role = role.rawValue
            user.isActive = true
            user.failedLogins = 0
            user.createdAt = now
            try await user.create(on: tx)
            try await AuditChain.append(
                on: tx, actor: actor, action: .create, entity: "user", entityID: user.id!.uuidString, siteID: nil, reason: nil,
                changes: [.init(field: "username", old: nil, new: username), .init(field: "role", old: nil, new: role.rawValue)],
                now: now)
            for (code, siteID) in zip(siteCodes, siteIDs) {
                let membership = MembershipModel(userID: user.id!, siteID: siteID)
                try await membership.create(on: tx)
                try await AuditChain.append(
                    on: tx, actor: actor, action: .create, entity: "site_membership", entityID: membership.id!.uuidString,
                    siteID: siteID.uuidString, reason: nil,
                    changes: [.init(field: "user", old: nil, new: username), .init(field: "site", old: nil, new: code)], now: now)
            }
            return Account(
                id: user.id!, username: username, role: role, isActive: true, siteIDs: Set(siteIDs), passwordHash: passwordHash,
                failedLogins: 0, lockedUntil: nil)
        }
    }

    public func updateUser(_ username: String, change: AccountChange, actor: String, reason: String?, now: Date) async throws -> Account {
        defer { TokenAccountCache.shared.removeAll() }
        return try await store.write { tx in
            guard let user = try await UserModel.query(on: tx).filter(\.$username == username).first(), let userID = user.id else {
                throw StoreError.notFound(entity: "user", id: username)
            }
            var changes: [FieldChange] = []
            if let role = change.role, role.rawValue != user.role {
                changes.append(.init(field: "role", old: user.role, new: role.rawValue))
                user.role = role.rawValue
            }
            if let active = change.isActive, active != user.isActive {
                changes.append(.init(field: "is_active", old: String(user.isActive), new: String(active)))
                user.isActive = active
            }
            var memberships = try await MembershipModel.query(on: tx).filter(\.$userID == userID).all()
            for code in change.addSites {
                guard let site = try await SiteModel.query(on: tx).filter(\.$code == code).first(), let siteID = site.id else {
                    throw StoreError.notFound(entity: "site", id: code)
                }
                if memberships.contains(where: { $0.siteID == siteID }) { continue }
                let membership = MembershipModel(userID: userID, siteID: siteID)
                try await membership.create(on: tx)
                memberships.append(membership)
                changes.append(.init(field: "sites", old: nil, new: code))
            }
            for code in change.removeSites {
                guard let site = try await SiteModel.query(on: tx).filter(\.$code == code).first(),
                    let membership = memberships.first(where: { $0.siteID == site.id })
                else { throw StoreError.notFound(entity: "site membership", id: code) }
                try await membership.delete(on: tx)
                memberships.removeAll { $0.id == membership.id }
                changes.append(.init(field: "sites", old: code, new: nil))
            }
            let role = Role(rawValue: user.role) ?? .dsmbViewer
            if memberships.isEmpty && role != .admin {
                throw StoreError.invalid(field: "site", rule: "a \(role.rawValue) must belong to at least one site")
            }
            guard !changes.isEmpty else { throw StoreError.invalid(field: "change", rule: "nothing to change") }
            try await AuditChain.append(
                on: tx, actor: actor, action: .update, entity: "user", entityID: userID.uuidString, siteID: nil, reason: reason,
                changes: changes, now: now)
            try await user.save(on: tx)
            if change.isActive == false {
                try await SessionModel.query(on: tx).filter(\.$userID == userID).delete()
            }
            return Account(
                id: userID, username: user.username, role: role, isActive: user.isActive, siteIDs: Set(memberships.map(\.siteID)),
                passwordHash: user.passwordHash, failedLogins: user.failedLogins, lockedUntil: user.lockedUntil)
        }
    }

    public func account(username: String) async throws -> Account? {
        guard let user = try await UserModel.query(on: db).filter(\.$username == username).first() else { return nil }
        return try await load(user)
    }

    public func account(id: UUID) async throws -> Account? {
        guard let user = try await UserModel.find(id, on: db) else { return nil }
        return try await load(user)
    }

    public func accounts() async throws -> [Account] {
        var result: [Account] = []
        for user in try await UserModel.query(on: db).sort(\.$username).all() { result.append(try await load(user)) }
        return result
    }

    public func userCount() async throws -> Int { try await UserModel.query(on: db).count() }

    private func load(_ user: UserModel) async throws -> Account {
        let sites = try await MembershipModel.query(on: db).filter(\.$userID == user.id!).all().map(\.siteID)
        return Account(
            id: user.id!, username: user.username, role: Role(rawValue: user.role) ?? .dsmbViewer, isActive: user.isActive,
            siteIDs: Set(sites), passwordHash: user.passwordHash, failedLogins: user.failedLogins, lockedUntil: user.lockedUntil)
    }

    public func recordFailedLogin(userID: UUID, threshold: Int, lockFor: TimeInterval, now: Date) async throws -> Date? {
        try await store.write { tx in
            guard let user = try await UserModel.find(userID, on: tx) else { return nil }
            user.failedLogins += 1
            var lockedUntil: Date? = nil
            if user.failedLogins >= threshold {
                lockedUntil = now.addingTimeInterval(lockFor)
                user.lockedUntil = lockedUntil
                user.failedLogins = 0
                try await AuditChain.append(
                    on: tx, actor: "system", action: .update, entity: "user", entityID: userID.uuidString, siteID: nil,
                    reason: "locked after \(threshold) failed logins",
                    changes: [.init(field: "locked_until", old: nil, new: AuditEntry.timestamp(lockedUntil!))], now: now)
            }
            try await user.save(on: tx)
            return lockedUntil
        }
    }

    public func recordSuccessfulLogin(userID: UUID) async throws {
        try await UserModel.query(on: db).filter(\.$id == userID).set(\.$failedLogins, to: 0).set(\.$lockedUntil, to: nil).update()
    }

    public func createSession(userID: UUID, tokenHash: String, expiresAt: Date, now: Date) async throws {
        let session = SessionModel()
        session.tokenHash = tokenHash
        session.userID = userID
        session.createdAt = now
        session.expiresAt = expiresAt
        try await session.create(on: db)
    }

    public func session(tokenHash: String) async throws -> (userID: UUID, expiresAt: Date)? {
        try await SessionModel.query(on: db).filter(\.$tokenHash == tokenHash).first().map { ($0.userID, $0.expiresAt) }
    }

    public func extendSession(tokenHash: String, expiresAt: Date) async throws {
        try await SessionModel.query(on: db).filter(\.$tokenHash == tokenHash).set(\.$expiresAt, to: expiresAt).update()
    }

    public func deleteSession(tokenHash: String) async throws {
        try await SessionModel.query(on: db).filter(\.$tokenHash == tokenHash).delete()
    }

    public func createToken(userID: UUID, name: String, tokenHash: String, prefix: String, actor: String, now: Date) async throws -> APIToken {
        let name = name.trimmingCharacters(in: .whitespaces)
        guard (1...100).contains(name.count) else { throw StoreError.invalid(field: "name", rule: "1–100 characters") }
        return try await store.write { tx in
            let token = APITokenModel()
            token.id = UUID.timeOrdered()
            token.userID = userID
            token.name = name
            token.tokenHash = tokenHash
            token.prefix = prefix
            token.createdAt = now
            try await token.create(on: tx)
            try await AuditChain.append(
                on: tx, actor: actor, action: .create, entity: "api_token", entityID: token.id!.uuidString, siteID: nil, reason: nil,
                changes: [.init(field: "user", old: nil, new: userID.uuidString), .init(field: "name", old: nil, new: name)], now: now)
            return APIToken(id: token.id!, name: name, prefix: prefix, createdAt: now, revokedAt: nil, lastUsedAt: nil)
        }
    }

    public func tokens(userID: UUID) async throws -> [APIToken] {
        try await APITokenModel.query(on: db).filter(\.$userID == userID).sort(\.$createdAt, .descending).all().map {
            APIToken(id: $0.id!, name: $0.name, prefix: $0.prefix, createdAt: $0.createdAt, revokedAt: $0.revokedAt, lastUsedAt: $0.lastUsedAt)
        }
    }

    public func revokeToken(id: UUID, userID: UUID, actor: String, now: Date) async throws {
        defer { TokenAccountCache.shared.removeAll() }
        try await store.write { tx in
            guard let token = try await APITokenModel.query(on: tx).filter(\.$id == id).filter(\.$userID == userID).first() else {
                throw StoreError.notFound(entity: "api_token", id: id.uuidString)
            }
            guard token.revokedAt == nil else { return }
            token.revokedAt = now
            try await token.save(on: tx)
            try await AuditChain.append(
                on: tx, actor: actor, action: .update, entity: "api_token", entityID: id.uuidString, siteID: nil,
                reason: "revoked by its owner", changes: [.init(field: "revoked_at", old: nil, new: AuditEntry.timestamp(now))],
                now: now)
        }
    }

    public func account(forTokenHash hash: String, now: Date) async throws -> Account? {
        try await TokenAccountCache.shared.account(hash, now: now) {
            guard let userID = try await userID(forTokenHash: hash, now: now), let account = try await account(id: userID), account.isActive else {
                return nil
            }
            return account
        }
    }

    public func cachedAccount(forTokenHash hash: String, now: Date) -> Account? {
        TokenAccountCache.shared.cached(hash, now: now)
    }

    public func userID(forTokenHash hash: String, now: Date) async throws -> UUID? {
        guard let token = try await APITokenModel.query(on: db).filter(\.$tokenHash == hash).first(), token.revokedAt == nil else {
            return nil
        }
        return token.userID
    }
}

/// API tokens resolved to their accounts, kept a few seconds so a burst of API calls does not look up the same
/// token and memberships on every request. Revoking a token or changing a user in this process clears it at once;
/// a change made by another process (the CLI, a second server) takes effect within `lifetime`.
final class TokenAccountCache: @unchecked Sendable {
    static let shared = TokenAccountCache()
    static let lifetime: TimeInterval = 5
    static let capacity = 10_000

    private let lock = NSLock()
    private var entries: [String: (account: Account, until: Date)] = [:]
    /// Lookups under way: the requests that miss together (every connection of a client the moment its entry
    /// expires) wait for one lookup instead of each queueing its own on the database.
    private var pending: [String: Task<Account?, any Error>] = [:]
    private var generation = 0

    /// The token's account: cached, or read by `read` (nil for an unknown, revoked or inactive one, never cached).
    func account(_ hash: String, now: Date, read: @escaping @Sendable () async throws -> Account?) async throws -> Account? {
        enum Found {
            case cached(Account)
            case pending(Task<Account?, any Error>)
        }
        let found: Found = lock.withLock {
            if let account = kept(hash, now: now) { return .cached(account) }
            if let task = pending[hash] { return .pending(task) }
            let generation = generation
            let task = Task {
                defer { self.finished(hash, generation: generation) }
                let account = try await read()
                if let account { self.set(hash, account, now: now, ifGeneration: generation) }
                return account
            }
            pending[hash] = task
            return .pending(task)
        }
        switch found {
        case .cached(let account): return account
        case .pending(let task): return try await task.value
        }
    }

    func cached(_ hash: String, now: Date) -> Account? {
        lock.withLock { kept(hash, now: now) }
    }

    /// Call holding the lock.
    private func kept(_ hash: String, now: Date) -> Account? {
        guard let entry = entries[hash], entry.until > now else { return nil }
        return entry.account
    }

    /// Skipped when the cache was cleared after the lookup started, so a stale read never lands.
    private func set(_ hash: String, _ account: Account, now: Date, ifGeneration generation: Int) {
        lock.withLock {
            guard generation == self.generation else { return }
            if entries.count >= Self.capacity { entries.removeAll() }
            entries[hash] = (account, now.addingTimeInterval(Self.lifetime))
        }
    }

    private func finished(_ hash: String, generation: Int) {
        lock.withLock {
            if generation == self.generation { pending[hash] = nil }
        }
    }

    /// Also forgets lookups under way: a request that comes after a revocation never shares one started before it.
    func removeAll() {
        lock.withLock {
            generation += 1
            entries.removeAll()
            pending.removeAll()
        }
    }
}
