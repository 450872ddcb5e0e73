import Foundation

/// One changed field inside an audit event. Values are text so the hash input is exact.
public struct FieldChange: Codable, Equatable, Sendable {
    public var field: String
    public var old: String?
    public var new: String?

    public init(field: String, old: String?, new: String?) {
        self.field = field
        self.old = old
        self.new = new
    }
}

public enum AuditAction: String, Codable, Sendable, CaseIterable {
    case create, update, delete
}

/// The content of one audit event, as hashed into the chain.
public struct AuditEntry: Codable, Equatable, Sendable {
    public var sequence: Int64
    public var occurredAt: String
    public var actor: String
    public var action: AuditAction
    public var entity: String
    public var entityID: String
    public var siteID: String?
    public var reason: String?
    public var changes: [FieldChange]
    public var previousHash: String

    public init(
        sequence: Int64, occurredAt: String, actor: String, action: AuditAction, entity: String,
        entityID: String, siteID: String?, reason: String?, changes: [FieldChange], previousHash: String
    ) {
        self.sequence = sequence
        self.occurredAt = occurredAt
        self.actor = actor
        self.action = action
        self.entity = entity
        self.entityID = entityID
        self.siteID = siteID
        self.reason = reason
        self.changes = changes
        self.previousHash = previousHash
    }

    /// The hash of the first event's predecessor.
    public static let genesisHash = String(repeating: "0", count: 64)

    /// Deterministic bytes for hashing: sorted-key JSON with every optional written out, byte for byte what
    /// Foundation's JSONSerialization writes with `.sortedKeys` and `.withoutEscapingSlashes` (the form existing
    /// chains were hashed in; a test holds the two equal). Written by hand because JSONSerialization dominated verify.
    public func canonicalBytes() -> Data {
        Data(
            Self.canonicalBytes(
                sequence: sequence, occurredAt: occurredAt, actor: actor, action: action.rawValue, entity: entity, entityID: entityID,
                siteID: siteID, reason: reason, previousHash: previousHash
            ) { out in
                for (index, change) in changes.enumerated() {
                    if index > 0 { out.append(0x2C) }
                    Self.appendChange(field: change.field, new: change.new, old: change.old, to: &out)
                }
                return true
            } ?? [])
    }

    /// The canonical bytes from an event's parts; `changes` writes the members of the changes array and may refuse (nil).
    public static func canonicalBytes(
        sequence: Int64, occurredAt: String, actor: String, action: String, entity: String, entityID: String, siteID: String?,
        reason: String?, previousHash: String, changes: (inout [UInt8]) -> Bool
    ) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(512)
        // Keys in the order JSONSerialization sorts them.
        out.append(0x7B)
        appendKey("action", to: &out); appendJSONString(action, to: &out); out.append(0x2C)
        appendKey("actor", to: &out); appendJSONString(actor, to: &out); out.append(0x2C)
        appendKey("changes", to: &out); out.append(0x5B)
        guard changes(&out) else { return nil }
        out.append(0x5D); out.append(0x2C)
        appendKey("entity", to: &out); appendJSONString(entity, to: &out); out.append(0x2C)
        appendKey("entityID", to: &out); appendJSONString(entityID, to: &out); out.append(0x2C)
        appendKey("occurredAt", to: &out); appendJSONString(occurredAt, to: &out); out.append(0x2C)
        appendKey("previousHash", to: &out); appendJSONString(previousHash, to: &out); out.append(0x2C)
        appendKey("reason", to: &out); appendJSONString(reason, to: &out); out.append(0x2C)
        appendKey("sequence", to: &out); out.append(contentsOf: String(sequence).utf8); out.append(0x2C)
        appendKey("siteID", to: &out); appendJSONString(siteID, to: &out)
        out.append(0x7D)
        return out
    }

    /// One member of the changes array: {"field":…,"new":…,"old":…}.
    public static func appendChange(field: String, new: String?, old: String?, to out: inout [UInt8]) {
        out.append(0x7B)
        appendKey("field", to: &out); appendJSONString(field, to: &out); out.append(0x2C)
        appendKey("new", to: &out); appendJSONString(new, to: &out); out.append(0x2C)
        appendKey("old", to: &out); appendJSONString(old, to: &out)
        out.append(0x7D)
    }

    private static func appendKey(_ name: StaticString, to out: inout [UInt8]) {
        out.append(0x22)
        name.withUTF8Buffer { out.append(contentsOf: $0) }
        out.append(0x22)
        out.append(0x3A)
    }

    /// A JSON string as JSONSerialization escapes it: quote, backslash and control characters; nothing else.
    public static func appendJSONString(_ value: String?, to out: inout [UInt8]) {
        guard var value else {
            out.append(contentsOf: [0x6E, 0x75, 0x6C, 0x6C])
            return
        }
        value.withUTF8 { appendJSONString(bytes: $0, to: &out) }
    }

    /// The same for text given as UTF-8 bytes.
    public static func appendJSONString(bytes: UnsafeBufferPointer<UInt8>, to out: inout [UInt8]) {
        out.append(0x22)
        // Most text needs no escape at all: copy it whole.
        if !bytes.contains(where: { $0 < 0x20 || $0 == 0x22 || $0 == 0x5C }) {
            out.append(contentsOf: bytes)
        } else {
            for byte in bytes {
                switch byte {
                case 0x22: out.append(0x5C); out.append(0x22)
                case 0x5C: out.append(0x5C); out.append(0x5C)
                case 0x08: out.append(0x5C); out.append(0x62)
                case 0x0C: out.append(0x5C); out.append(0x66)
                case 0x0A: out.append(0x5C); out.append(0x6E)
                case 0x0D: out.append(0x5C); out.append(0x72)
                case 0x09: out.append(0x5C); out.append(0x74)
                case 0x00..<0x20:
                    let digit = { (d: UInt8) -> UInt8 in d < 10 ? 0x30 + d : 0x57 + d }
                    out.append(contentsOf: [0x5C, 0x75, 0x30, 0x30, digit(byte >> 4), digit(byte & 0x0F)])
                default: out.append(byte)
                }
            }
        }
        out.append(0x22)
    }

    /// UTC, millisecond precision, fixed width: the form stored and hashed.
    public static func timestamp(_ date: Date) -> String {
        let millis = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        let (days, millisOfDay) = millis.quotientAndRemainderFloor(86_400_000)
        let secondsOfDay = millisOfDay / 1000, ms = millisOfDay % 1000
        // Days to civil date: H. Hinnant, "chrono-Compatible Low-Level Date Algorithms", civil_from_days.
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        func pad(_ value: Int64, _ width: Int) -> String {
            let text = String(value)
            return text.count >= width ? text : String(repeating: "0", count: width - text.count) + text
        }
        return "\(pad(year, 4))-\(pad(month, 2))-\(pad(day, 2))T\(pad(secondsOfDay / 3600, 2)):\(pad(secondsOfDay / 60 % 60, 2)):\(pad(secondsOfDay % 60, 2)).\(pad(ms, 3))Z"
    }
}

extension Int64 {
    /// Division rounding towards negative infinity, so instants before 1970 land on the right day.
    fileprivate func quotientAndRemainderFloor(_ divisor: Int64) -> (quotient: Int64, remainder: Int64) {
        var (q, r) = quotientAndRemainder(dividingBy: divisor)
        if r < 0 { q -= 1; r += divisor }
        return (q, r)
    }
}

/// Why a change cannot be audited as asked.
public enum AuditRuleError: Error, Equatable, Sendable {
    /// Any change after a record's first save needs a reason.
    case reasonRequired(entity: String, field: String)
    case reasonTooLong(limit: Int)
}

public enum AuditRules {
    /// The longest reason the trail keeps: a reason explains a change, it is not a document (free text has stated limits).
    public static let reasonLimit = 2_000

    /// A reason is required for every update or delete; creates may omit it. None is longer than `reasonLimit`.
    public static func checkReason(_ reason: String?, action: AuditAction, entity: String, changes: [FieldChange]) throws {
        if let reason, reason.count > reasonLimit { throw AuditRuleError.reasonTooLong(limit: reasonLimit) }
        guard action != .create else { return }
        if (reason ?? "").trimmingCharacters(in: .whitespacesAndNewlines).isEmpty {
            throw AuditRuleError.reasonRequired(entity: entity, field: changes.first?.field ?? "reason")
        }
    }
}
