import Foundation

/// What a signature means, stated with it (21 CFR 11.50(a)(3)).
public enum SignatureMeaning: String, Codable, Sendable, CaseIterable {
    case approve
    case review

    public var statement: String {
        switch self {
        case .approve: "I approve these data as accurate and complete"
        case .review: "I have reviewed these data"
        }
    }
}

/// The credentials a signing asks for.
public enum SigningCredentials: Equatable, Sendable {
    /// The first signing of a session: user ID and password (21 CFR 11.200(a)(1)(i)).
    case usernameAndPassword
    /// Later signings in the same continuous session: the password alone (11.200(a)(1)(i)).
    case passwordOnly
}

public enum SignatureRules {
    /// The investigator signs a participant's casebook: under ICH E6 the investigator answers for the data reported,
    /// and the sign-off attests it.
    public static func checkSigner(_ role: Role) throws {
        guard role == .investigator else {
            throw RuleError.forbidden(rule: "only an investigator signs a casebook (your role: \(role.rawValue))")
        }
    }

    public static func credentials(firstInSession: Bool) -> SigningCredentials {
        firstInSession ? .usernameAndPassword : .passwordOnly
    }

    /// Wrong passwords in a row that lock signing, and for how long.
    public static let failuresBeforeLock = 5
    public static let lockDuration: TimeInterval = 15 * 60

    /// After one more wrong password: the count of consecutive failures and, at the limit, until when signing is locked.
    public static func afterFailure(failures: Int, now: Date) -> (failures: Int, lockedUntil: Date?) {
        let count = failures + 1
        return count >= failuresBeforeLock ? (0, now.addingTimeInterval(lockDuration)) : (count, nil)
    }
}

/// One value a signature covers, as text: `visit/form.field`, `visit/lab.TEST`, `ae/ID.field`.
public struct SignedValue: Equatable, Sendable {
    public var key: String
    public var value: String

    public init(key: String, value: String) {
        self.key = key
        self.value = value
    }
}

public enum SignedContent {
    /// The exact bytes a signature's SHA-256 is taken over: every value, sorted by key, one `key=value` line each, with
    /// backslashes and line breaks escaped so that no two different sets of values give the same text.
    public static func canonical(_ values: [SignedValue]) -> String {
        values.sorted { $0.key < $1.key }.map { "\(escape($0.key))=\(escape($0.value))\n" }.joined()
    }

    static func escape(_ text: String) -> String {
        guard text.contains(where: { $0 == "\\" || $0 == "\n" || $0 == "\r" || $0 == "=" }) else { return text }
        return text.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
            .replacingOccurrences(of: "\r", with: "\\r").replacingOccurrences(of: "=", with: "\\=")
    }

    /// The values back from their canonical text.
    public static func parse(_ content: String) -> [SignedValue] {
        content.split(separator: "\n").compactMap { line in
            var key = "", value = "", inKey = true, escaped = false
            for c in line {
                if escaped {
                    let plain: Character = c == "n" ? "\n" : c == "r" ? "\r" : c
                    if inKey { key.append(plain) } else { value.append(plain) }
                    escaped = false
                } else if c == "\\" {
                    escaped = true
                } else if c == "=" && inKey {
                    inKey = false
                } else if inKey {
                    key.append(c)
                } else {
                    value.append(c)
                }
            }
            return inKey ? nil : SignedValue(key: key, value: value)
        }
    }

    /// The keys whose values differ between two sets, for saying what changed since a signing.
    public static func changedKeys(_ signed: [SignedValue], _ current: [SignedValue]) -> [String] {
        let a = Dictionary(signed.map { ($0.key, $0.value) }, uniquingKeysWith: { $1 })
        let b = Dictionary(current.map { ($0.key, $0.value) }, uniquingKeysWith: { $1 })
        return Set(a.keys).union(b.keys).filter { a[$0] != b[$0] }.sorted()
    }
}
