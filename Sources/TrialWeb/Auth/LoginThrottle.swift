import Foundation
import Vapor

/// Failed sign-ins per client address in a sliding window, in memory: the per-account lockout stops guessing at one
/// account, this stops one address from guessing across many (and from locking them all out). Lost on restart, which
/// only hands an attacker one more window.
actor LoginThrottle {
    let limit: Int
    let window: TimeInterval
    /// The times of each address's counted attempts still in the window, oldest first.
    private var attempts: [String: [Date]] = [:]
    private var lastSweep = Date.distantPast

    init(limit: Int, window: TimeInterval) {
        self.limit = limit
        self.window = window
    }

    /// Counts an attempt before its password is checked, so that concurrent attempts cannot slip past the limit
    /// together; `succeeded` takes it back. Returns when the address may try again if it is over the limit.
    func admit(_ address: String, now: Date) -> Date? {
        sweep(now)
        var times = (attempts[address] ?? []).filter { now.timeIntervalSince($0) < window }
        if times.count >= limit {
            attempts[address] = times
            return times[times.count - limit].addingTimeInterval(window)
        }
        times.append(now)
        attempts[address] = times
        return nil
    }

    /// A successful sign-in is not a failure: the attempt counted by `admit` at `at` is taken back.
    func succeeded(_ address: String, at: Date) {
        guard var times = attempts[address], let index = times.lastIndex(of: at) else { return }
        times.remove(at: index)
        attempts[address] = times.isEmpty ? nil : times
    }

    /// Forgets addresses whose attempts have all left the window, once a window, so that the table stays as small
    /// as the addresses seen lately.
    private func sweep(_ now: Date) {
        guard now.timeIntervalSince(lastSweep) >= window else { return }
        lastSweep = now
        attempts = attempts.filter { _, times in times.last.map { now.timeIntervalSince($0) < window } ?? false }
    }
}

struct LoginThrottleKey: StorageKey {
    typealias Value = LoginThrottle
}

extension Application {
    /// The one throttle of this application, made by `configure`.
    var loginThrottle: LoginThrottle {
        get {
            guard let throttle = storage[LoginThrottleKey.self] else { fatalError("configure(_:config:) has not run") }
            return throttle
        }
        set { storage[LoginThrottleKey.self] = newValue }
    }
}

extension Request {
    /// The address the request came from: the socket's peer, or behind a trusted proxy the last X-Forwarded-For
    /// entry, the one that proxy added (earlier entries are the client's to write).
    var clientAddress: String {
        if config.trustForwardedFor, let header = headers[.xForwardedFor].last,
            let last = header.split(separator: ",").last?.trimmingCharacters(in: .whitespaces), !last.isEmpty
        {
            return last
        }
        return remoteAddress?.ipAddress ?? "unknown"
    }
}
