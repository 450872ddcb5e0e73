import Crypto
import Fluent
import Foundation
import TrialDomain
import TrialStore
import Vapor

struct AppConfigKey: StorageKey {
    typealias Value = AppConfig
}

extension Application {
    /// The configuration `configure` was given.
    public var casebookConfig: AppConfig {
        get {
            guard let config = storage[AppConfigKey.self] else { fatalError("configure(_:config:) has not run") }
            return config
        }
        set { storage[AppConfigKey.self] = newValue }
    }
}

extension Application {
    /// The application's store, for work outside a request.
    public var store: Store { store(on: eventLoopGroup.any()) }

    /// One store per event loop, made once: making one costs more than a lab save's own checks.
    func store(on eventLoop: any EventLoop) -> Store {
        if let cache = storage[StoreCache.self] { return cache.store(databases: databases, logger: logger, on: eventLoop) }
        let cache = StoreCache()
        storage[StoreCache.self] = cache
        return cache.store(databases: databases, logger: logger, on: eventLoop)
    }
}

/// The stores of one application's event loops; it lives in the application's storage, so it ends with it.
final class StoreCache: StorageKey, @unchecked Sendable {
    typealias Value = StoreCache
    private let lock = NSLock()
    private var stores: [ObjectIdentifier: Store] = [:]

    func store(databases: Databases, logger: Logger, on eventLoop: any EventLoop) -> Store {
        let key = ObjectIdentifier(eventLoop)
        if let store = lock.withLock({ stores[key] }) { return store }
        let store = Store(databases: databases, logger: logger, on: eventLoop)
        lock.withLock { stores[key] = store }
        return store
    }
}

extension Request {
    var config: AppConfig { application.casebookConfig }
    /// Now, for clinical rules: the application's clock.
    var now: Date { application.casebookConfig.clock() }
    var store: Store { application.store(on: eventLoop) }
    var accounts: any AccountRepository { FluentAccountRepository(store: store) }
    var participants: any ParticipantRepository { FluentParticipantRepository(store: store) }
}

/// Random secrets and the hashes they are stored as: the database never holds a usable token.
public enum Secrets {
    public static func randomToken(bytes: Int = 32) -> String {
        var generator = SystemRandomNumberGenerator()
        return AuditChain.hex((0..<bytes).map { _ in UInt8.random(in: .min ... .max, using: &generator) })
    }

    public static func sha256(_ text: String) -> String {
        AuditChain.sha256Hex(text)
    }

    /// The CSRF token bound to one session; a page form must echo it back.
    static func csrfToken(forSession session: String) -> String { sha256("csrf|" + session) }

    /// Compares without an early exit so timing reveals nothing about how much matched.
    static func constantTimeEquals(_ a: String, _ b: String) -> Bool {
        let x = Array(a.utf8), y = Array(b.utf8)
        guard x.count == y.count else { return false }
        return zip(x, y).reduce(0) { $0 | ($1.0 ^ $1.1) } == 0
    }
}

/// API tokens carry a readable prefix so a user can tell them apart in the list.
public enum TokenIssuer {
    public static func issue(
        for account: Account, name: String, accounts: any AccountRepository, now: Date
    ) async throws -> (token: String, record: APIToken) {
        let secret = "cbk_" + Secrets.randomToken()
        let record = try await accounts.createToken(
            userID: account.id, name: name, tokenHash: Secrets.sha256(secret), prefix: String(secret.prefix(12)),
            actor: account.username, now: now)
        return (secret, record)
    }
}

/// Password rules and hashing, shared by the CLI and the pages.
public enum Passwords {
    public static let minimumLength = 12

    public static func check(_ password: String) throws {
        if password.count < minimumLength {
            throw StoreError.invalid(field: "password", rule: "must be at least \(minimumLength) characters")
        }
        if password.utf8.count > 72 {
            throw StoreError.invalid(field: "password", rule: "must be at most 72 bytes (bcrypt's limit)")
        }
    }

    public static func hash(_ password: String, cost: Int) throws -> String {
        try check(password)
        return try Bcrypt.hash(password, cost: cost)
    }

    public static func verify(_ password: String, hash: String) -> Bool {
        (try? Bcrypt.verify(password, created: hash)) ?? false
    }
}
