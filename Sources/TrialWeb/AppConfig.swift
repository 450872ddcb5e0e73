import Foundation
import Logging
import TrialStore

/// Everything Casebook reads from the environment, read once at start.
public struct AppConfig: Sendable {
    public var database: DatabaseSettings
    public var hostname: String
    public var port: Int
    public var sessionLifetime: TimeInterval
    public var lockoutThreshold: Int
    public var lockoutDuration: TimeInterval
    public var secureCookies: Bool
    /// Failed sign-ins one client address may make in `loginThrottleWindow` before it is answered 429.
    public var loginAttemptsPerAddress: Int = 20
    public var loginThrottleWindow: TimeInterval = 15 * 60
    /// Whether the client address is read from X-Forwarded-For; only a proxy that sets it may stand in front, or any
    /// client could choose its own address and escape the per-address throttle.
    public var trustForwardedFor: Bool = false
    public var bcryptCost: Int
    public var maxBodyBytes: Int
    public var logLevel: Logger.Level
    /// The time clinical rules take as now (windows, "not in the future", allocation). Always the system clock for
    /// `casebook serve`; tests put in their own to move time. Sign-in and sessions keep the system clock.
    public var clock: @Sendable () -> Date = { Date() }
    /// Seconds between looks of the safety monitor at the stopping rules; 0 turns it off (as in tests that build the
    /// configuration themselves).
    public var monitorSeconds: Double = 0

    public static let variables: [(name: String, meaning: String)] = [
        ("DATABASE_URL", "postgres://user:password@host:port/database; when set, Casebook uses PostgreSQL"),
        ("CASEBOOK_SQLITE_PATH", "SQLite file used when DATABASE_URL is unset (default ./data/casebook.sqlite)"),
        ("CASEBOOK_HOSTNAME", "address the server binds (default 127.0.0.1)"),
        ("CASEBOOK_PORT", "port the server listens on (default 8080)"),
        ("CASEBOOK_SESSION_MINUTES", "idle minutes before a page session expires (default 30)"),
        ("CASEBOOK_LOCKOUT_ATTEMPTS", "failed logins in a row that lock an account (default 5)"),
        ("CASEBOOK_LOCKOUT_MINUTES", "minutes an account stays locked (default 15)"),
        ("CASEBOOK_SECURE_COOKIES", "true to mark cookies Secure and send Strict-Transport-Security, for serving behind HTTPS (default false)"),
        ("CASEBOOK_LOGIN_ATTEMPTS_PER_ADDRESS", "failed sign-ins one client address may make in 15 minutes before it is answered 429, 1-10000 (default 20)"),
        ("CASEBOOK_TRUST_FORWARDED_FOR", "true when a reverse proxy that sets X-Forwarded-For fronts Casebook: the client address is its last entry (default false)"),
        ("CASEBOOK_BCRYPT_COST", "bcrypt work factor for new passwords, 10-16 (default 12)"),
        ("CASEBOOK_MAX_BODY_KB", "largest request body accepted, in KiB (default 256)"),
        ("LOG_LEVEL", "trace, debug, info, notice, warning, error or critical (default info); trace logs SQL values and request bodies' first bytes, never in production"),
        ("CASEBOOK_MONITOR_SECONDS", "seconds between looks at the stopping rules once data changed, 0 to 3600, 0 = off (default 30)"),
    ]

    /// Reads the environment; throws one error naming every bad variable.
    public static func from(environment env: [String: String]) throws -> AppConfig {
        var issues: [ConfigurationIssue] = []
        let (database, databaseIssues) = DatabaseSettings.from(environment: env)
        issues += databaseIssues

        func integer(_ name: String, default value: Int, range: ClosedRange<Int>) -> Int {
            guard let text = env[name] else { return value }
            guard let number = Int(text.trimmingCharacters(in: .whitespaces)), range.contains(number) else {
                issues.append(.init(variable: name, problem: "must be a whole number from \(range.lowerBound) to \(range.upperBound), got '\(text)'"))
                return value
            }
            return number
        }
        let hostname = env["CASEBOOK_HOSTNAME"] ?? "127.0.0.1"
        if hostname.trimmingCharacters(in: .whitespaces).isEmpty {
            issues.append(.init(variable: "CASEBOOK_HOSTNAME", problem: "must not be empty"))
        }
        let port = integer("CASEBOOK_PORT", default: 8080, range: 1...65535)
        let sessionMinutes = integer("CASEBOOK_SESSION_MINUTES", default: 30, range: 1...1440)
        let attempts = integer("CASEBOOK_LOCKOUT_ATTEMPTS", default: 5, range: 1...100)
        let lockMinutes = integer("CASEBOOK_LOCKOUT_MINUTES", default: 15, range: 1...1440)
        let cost = integer("CASEBOOK_BCRYPT_COST", default: 12, range: 10...16)
        let bodyKB = integer("CASEBOOK_MAX_BODY_KB", default: 256, range: 1...102_400)
        let monitor = integer("CASEBOOK_MONITOR_SECONDS", default: 30, range: 0...3600)
        let perAddress = integer("CASEBOOK_LOGIN_ATTEMPTS_PER_ADDRESS", default: 20, range: 1...10_000)
        func flag(_ name: String) -> Bool {
            guard let text = env[name] else { return false }
            switch text.lowercased() {
            case "true", "1", "yes": return true
            case "false", "0", "no": return false
            default:
                issues.append(.init(variable: name, problem: "must be true or false, got '\(text)'"))
                return false
            }
        }
        let secure = flag("CASEBOOK_SECURE_COOKIES")
        let forwarded = flag("CASEBOOK_TRUST_FORWARDED_FOR")
        var level = Logger.Level.info
        if let text = env["LOG_LEVEL"] {
            if let parsed = Logger.Level(rawValue: text.lowercased()) {
                level = parsed
            } else {
                issues.append(.init(variable: "LOG_LEVEL", problem: "must be one of trace, debug, info, notice, warning, error, critical; got '\(text)'"))
            }
        }
        guard issues.isEmpty, let database else { throw ConfigurationError(issues: issues) }
        var config = AppConfig(
            database: database, hostname: hostname, port: port, sessionLifetime: TimeInterval(sessionMinutes * 60),
            lockoutThreshold: attempts, lockoutDuration: TimeInterval(lockMinutes * 60), secureCookies: secure,
            bcryptCost: cost, maxBodyBytes: bodyKB * 1024, logLevel: level)
        config.monitorSeconds = Double(monitor)
        config.loginAttemptsPerAddress = perAddress
        config.trustForwardedFor = forwarded
        return config
    }
}
