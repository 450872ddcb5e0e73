import Crypto
import FluentKit
import FluentPostgresDriver
import FluentSQL
import FluentSQLiteDriver
import Foundation
import TrialDomain

/// The tamper-evident audit trail: each event's SHA-256 covers its content and the previous hash.
public enum AuditChain {
    public static let genesis = AuditEntry.genesisHash

    public static func sha256Hex(_ text: String) -> String { hex(SHA256.hash(data: Data(text.utf8))) }

    public static func hash(_ entry: AuditEntry) -> String { hex(SHA256.hash(data: entry.canonicalBytes())) }

    /// Lower-case hex without `String(format:)`, which costs more than the hash itself on Linux.
    public static func hex(_ digest: some Sequence<UInt8>) -> String {
        let digits = Array("0123456789abcdef".utf8)
        var bytes: [UInt8] = []
        bytes.reserveCapacity(64)
        for byte in digest {
            bytes.append(digits[Int(byte >> 4)])
            bytes.append(digits[Int(byte & 0x0f)])
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    static let table = AuditEventModel.schema
    static let columns = [
        "sequence", "occurred_at", "actor", "action", "entity", "entity_id", "site_id", "reason", "changes", "previous_hash", "hash",
    ]

    /// Appends one event. Call inside the transaction that makes the change.
    @discardableResult
    public static func append(
        on database: any Database, actor: String, action: AuditAction, entity: String, entityID: String,
        siteID: String?, reason: String?, changes: [FieldChange], now: Date
    ) async throws -> AuditEntry {
        try await append(
            on: database,
            AuditDraft(actor: actor, action: action, entity: entity, entityID: entityID, siteID: siteID, reason: reason, changes: changes, now: now))
    }

    @discardableResult
    public static func append(on database: any Database, _ draft: AuditDraft) async throws -> AuditEntry {
        try checkReason(draft)
        let sql = database as! any SQLDatabase
        if let batch = BatchHead.current {
            // Inside a grouped write the batch holds the head; the head row is written once, at its end. The event
            // goes in now, inside the request's savepoint, so a row the database refuses fails that request alone.
            let (entry, values) = try await next(draft, on: sql, head: batch)
            try await sql.insert(into: table).columns(columns).values(values).run()
            return entry
        }
        // Taking the head row first serialises appends: a row lock on PostgreSQL, the write lock on SQLite.
        guard let row = try await sql.raw("UPDATE audit_head SET sequence = sequence + 1 WHERE id = 1 RETURNING sequence, hash").first() else {
            throw StoreError.notFound(entity: "audit_head", id: "1")
        }
        let (entry, values) = make(draft, sequence: try row.decode(column: "sequence", as: Int64.self), previous: try row.decode(column: "hash", as: String.self))
        try await sql.insert(into: table).columns(columns).values(values).run()
        try await sql.raw("UPDATE audit_head SET hash = \(bind: entry.hash) WHERE id = 1").run()
        return entry.entry
    }

    static func checkReason(_ draft: AuditDraft) throws {
        do {
            try AuditRules.checkReason(draft.reason, action: draft.action, entity: draft.entity, changes: draft.changes)
        } catch AuditRuleError.reasonRequired(_, let field) {
            throw StoreError.reasonRequired(field: field)
        } catch AuditRuleError.reasonTooLong(let limit) {
            throw StoreError.invalid(field: "reason", rule: "must be at most \(limit) characters")
        }
    }

    /// The next event's row inside a grouped write, advancing the batch's head in memory.
    static func nextRow(_ draft: AuditDraft, on sql: any SQLDatabase, head: BatchHead) async throws -> [any Encodable & Sendable] {
        try await next(draft, on: sql, head: head).1
    }

    private static func next(_ draft: AuditDraft, on sql: any SQLDatabase, head: BatchHead) async throws -> (AuditEntry, [any Encodable & Sendable]) {
        if head.sequence == nil {
            // The batch holds the head until its commit: SQLite's write lock already does that; PostgreSQL needs the row lock.
            let lock: SQLQueryString = sql.dialect.name == "sqlite" ? "" : " FOR UPDATE"
            guard let row = try await sql.raw("SELECT sequence, hash FROM audit_head WHERE id = 1" + lock).first() else {
                throw StoreError.notFound(entity: "audit_head", id: "1")
            }
            head.sequence = try row.decode(column: "sequence", as: Int64.self)
            head.hash = try row.decode(column: "hash", as: String.self)
        }
        let (made, values) = make(draft, sequence: head.sequence! + 1, previous: head.hash)
        head.sequence = made.entry.sequence
        head.hash = made.hash
        return (made.entry, values)
    }

    private static func make(_ d: AuditDraft, sequence: Int64, previous: String) -> ((entry: AuditEntry, hash: String), [any Encodable & Sendable]) {
        let entry = AuditEntry(
            sequence: sequence, occurredAt: AuditEntry.timestamp(d.now), actor: d.actor, action: d.action, entity: d.entity,
            entityID: d.entityID, siteID: d.siteID, reason: d.reason?.trimmingCharacters(in: .whitespacesAndNewlines), changes: d.changes,
            previousHash: previous)
        let digest = hash(entry)
        let values: [any Encodable & Sendable] = [
            entry.sequence, entry.occurredAt, entry.actor, entry.action.rawValue, entry.entity, entry.entityID, entry.siteID, entry.reason,
            ChangesText.encode(entry.changes), entry.previousHash, digest,
        ]
        return ((entry, digest), values)
    }

    /// Recomputes the chain from the first event. Stops at the first event that does not hold.
    /// Rows are checked as the database hands them over, a page at a time, never all held at once.
    public static func verify(on database: any Database, pageSize: Int = 100_000) async throws -> AuditVerification {
        let sql = database as! any SQLDatabase
        let state = VerifyState(waitsForSlots: database is any SQLiteDatabase)
        let select = "SELECT \(columns.joined(separator: ", ")) FROM \(table) WHERE sequence >= ? ORDER BY sequence LIMIT \(pageSize)"
        while state.broken == nil {
            state.pageRows = 0
            if let lite = database as? any SQLiteDatabase {
                // SQLite rows straight from the connection, handed over on its own thread as they are stepped (the
                // database wrapper's query would schedule each row on the event loop), and not through the generic
                // row decoder, which costs more than the hash.
                let binds: [SQLiteData] = [.integer(.init(state.expectedSequence))]
                try await lite.withConnection { connection in
                    try await connection.query(select, binds) { row in
                        state.check(Result { try AuditChain.read(row) }, sequence: { if case .integer(let n) = row.column("sequence") { Int64(n) } else { nil } })
                    }
                }
            } else if let postgres = database as? any PostgresDatabase {
                // PostgreSQL rows from the connection, decoded by their column types: the generic row decoder (Codable,
                // per column) cost more than the hash. Rows arrive on an event loop, which must not wait for a hashing
                // slot: smaller pages, each hashed before the next is read, keep memory flat instead.
                let query: PostgresQuery = """
                    SELECT \(unescaped: columns.joined(separator: ", ")) FROM \(unescaped: table) WHERE sequence >= \(state.expectedSequence)
                    ORDER BY sequence LIMIT \(unescaped: String(min(pageSize, 20_000)))
                    """
                try await postgres.withConnection { connection in
                    // Each row handed over as it is parsed, without an async sequence's per-row hand-off.
                    connection.query(query, logger: postgres.logger) { row in
                        let cells = row.makeRandomAccess()
                        state.check(Result { try AuditChain.read(cells) }, sequence: { try? cells[0].decode(Int64.self) })
                    }.map { _ in }
                }.get()
                await state.settle()
            } else {
                throw StoreError.invalid(field: "database", rule: "audit verification supports SQLite and PostgreSQL")
            }
            if state.pageRows == 0 { break }
        }
        if let broken = await state.finish() { return .init(checked: Int(broken.sequence - 1), broken: broken) }
        let checked = Int(state.expectedSequence - 1)
        guard let head = try await sql.raw("SELECT sequence, hash FROM audit_head WHERE id = 1").first() else {
            return .init(checked: checked, broken: .init(sequence: 0, problem: "chain head is missing"))
        }
        let headSequence = try head.decode(column: "sequence", as: Int64.self)
        let headHash = try head.decode(column: "hash", as: String.self)
        let last = state.expectedSequence - 1
        if headSequence != last || headHash != state.previous {
            return .init(
                checked: checked,
                broken: .init(sequence: state.expectedSequence, problem: "events after \(last) are missing (chain head is at \(headSequence))"))
        }
        return .init(checked: checked, broken: nil)
    }

    /// Where a verification stands; rows arrive one at a time, in order. Sequence and links are checked as they come;
    /// content hashes, which cost the most, in chunks on other threads, and the earliest problem wins.
    private final class VerifyState: @unchecked Sendable {
        /// Whether the reading thread may block until a hashing slot is free (not an event loop).
        let waitsForSlots: Bool
        var expectedSequence: Int64 = 1
        var previous = AuditEntry.genesisHash
        var pageRows = 0
        var broken: AuditVerification.Broken?
        private var chunk: [StoredEvent] = []
        private let group = DispatchGroup()
        /// Bounds the events waiting to be hashed, so memory stays flat however long the chain.
        private let slots = DispatchSemaphore(value: 4)
        private let lock = NSLock()
        private var firstBad: AuditVerification.Broken?

        init(waitsForSlots: Bool) { self.waitsForSlots = waitsForSlots }

        func check(_ read: Result<StoredEvent, any Error>, sequence readSequence: () -> Int64?) {
            guard broken == nil else { return }
            pageRows += 1
            guard case .success(let event) = read else {
                let readable = readSequence() ?? expectedSequence
                broken = .init(sequence: expectedSequence, problem: readable == expectedSequence ? "event cannot be read" : "event is missing")
                return
            }
            if event.sequence != expectedSequence {
                broken = .init(sequence: expectedSequence, problem: "event is missing")
            } else if event.previousHash != previous {
                broken = .init(sequence: event.sequence, problem: "previous hash does not match event \(event.sequence - 1)")
            } else {
                previous = event.hash
                expectedSequence += 1
                chunk.append(event)
                if chunk.count == 4096 { dispatch() }
            }
        }

        private func dispatch() {
            guard !chunk.isEmpty else { return }
            let work = chunk
            chunk = []
            if waitsForSlots { slots.wait() }
            group.enter()
            DispatchQueue.global().async { [self] in
                defer {
                    if waitsForSlots { slots.signal() }
                    group.leave()
                }
                for event in work {
                    if let problem = event.problem() {
                        lock.withLock {
                            if event.sequence < firstBad?.sequence ?? .max { firstBad = .init(sequence: event.sequence, problem: problem) }
                        }
                        break
                    }
                }
            }
        }

        /// Returns once every chunk handed out so far is hashed.
        func settle() async {
            dispatch()
            await withCheckedContinuation { continuation in group.notify(queue: .global()) { continuation.resume() } }
        }

        /// The first broken event once every chunk is hashed.
        func finish() async -> AuditVerification.Broken? {
            await settle()
            if let bad = lock.withLock({ firstBad }), bad.sequence < (broken?.sequence ?? .max) { return bad }
            return broken
        }
    }

    /// One event as stored: its text is parsed and hashed later, off the thread that reads the rows.
    struct StoredEvent: Sendable {
        var sequence: Int64
        var occurredAt: String
        var actor: String
        var action: String
        var entity: String
        var entityID: String
        var siteID: String?
        var reason: String?
        var changes: String
        var previousHash: String
        var hash: String

        /// Why the event does not hold, or nil when its content matches its hash.
        func problem() -> String? {
            guard AuditAction(rawValue: action) != nil,
                let bytes = AuditEntry.canonicalBytes(
                    sequence: sequence, occurredAt: occurredAt, actor: actor, action: action, entity: entity, entityID: entityID, siteID: siteID,
                    reason: reason, previousHash: previousHash, changes: { ChangesText.appendCanonical(changes, to: &$0) })
            else { return "event cannot be read" }
            return AuditChain.hex(SHA256.hash(data: bytes)) == hash ? nil : "content does not match its hash"
        }
    }

    /// An SQLite row as the driver gives it, columns by position (the order `verify` selects them in).
    static func read(_ row: SQLiteRow) throws -> StoredEvent {
        let columns = row.columns
        guard columns.count == 11, columns[0].name == "sequence", columns[10].name == "hash" else {
            throw StoreError.invalid(field: "audit_events", rule: "unexpected columns")
        }
        func text(_ i: Int) throws -> String {
            guard case .text(let value) = columns[i].data else { throw StoreError.invalid(field: columns[i].name, rule: "must be text") }
            return value
        }
        func optionalText(_ i: Int) throws -> String? {
            switch columns[i].data {
            case .text(let value): return value
            case .null: return nil
            default: throw StoreError.invalid(field: columns[i].name, rule: "must be text or null")
            }
        }
        guard case .integer(let sequence) = columns[0].data else { throw StoreError.invalid(field: "sequence", rule: "must be an integer") }
        return StoredEvent(
            sequence: Int64(sequence), occurredAt: try text(1), actor: try text(2), action: try text(3), entity: try text(4),
            entityID: try text(5), siteID: try optionalText(6), reason: try optionalText(7), changes: try text(8), previousHash: try text(9),
            hash: try text(10))
    }

    /// A PostgreSQL row, columns by position (the order `verify` selects them in).
    static func read(_ cells: PostgresRandomAccessRow) throws -> StoredEvent {
        guard cells.count == 11, cells[0].columnName == "sequence", cells[10].columnName == "hash" else {
            throw StoreError.invalid(field: "audit_events", rule: "unexpected columns")
        }
        return StoredEvent(
            sequence: try cells[0].decode(Int64.self), occurredAt: try cells[1].decode(String.self), actor: try cells[2].decode(String.self),
            action: try cells[3].decode(String.self), entity: try cells[4].decode(String.self), entityID: try cells[5].decode(String.self),
            siteID: try cells[6].decode(String?.self), reason: try cells[7].decode(String?.self), changes: try cells[8].decode(String.self),
            previousHash: try cells[9].decode(String.self), hash: try cells[10].decode(String.self))
    }

    /// The events about one record, oldest first.
    public static func history(on database: any Database, entity: String, entityID: String) async throws -> [AuditEntry] {
        let sql = database as! any SQLDatabase
        return try await sql.raw(
            """
            SELECT sequence, occurred_at, actor, action, entity, entity_id, site_id, reason, changes, previous_hash
            FROM audit_events WHERE entity = \(bind: entity) AND entity_id = \(bind: entityID) ORDER BY sequence
            """
        ).all().map(decodeEntry)
    }

    static func decodeEntry(_ row: any SQLRow) throws -> AuditEntry {
        let changes = try ChangesText.decode(try row.decode(column: "changes", as: String.self))
        guard let action = AuditAction(rawValue: try row.decode(column: "action", as: String.self)) else {
            throw StoreError.invalid(field: "action", rule: "unknown audit action")
        }
        return AuditEntry(
            sequence: try row.decode(column: "sequence", as: Int64.self),
            occurredAt: try row.decode(column: "occurred_at", as: String.self),
            actor: try row.decode(column: "actor", as: String.self), action: action,
            entity: try row.decode(column: "entity", as: String.self),
            entityID: try row.decode(column: "entity_id", as: String.self),
            siteID: try row.decode(column: "site_id", as: String?.self),
            reason: try row.decode(column: "reason", as: String?.self), changes: changes,
            previousHash: try row.decode(column: "previous_hash", as: String.self))
    }
}

/// An audit event to be appended; the chain gives it its sequence and hashes when it is written.
public struct AuditDraft: Sendable {
    public var actor: String
    public var action: AuditAction
    public var entity: String
    public var entityID: String
    public var siteID: String?
    public var reason: String?
    public var changes: [FieldChange]
    public var now: Date

    public init(actor: String, action: AuditAction, entity: String, entityID: String, siteID: String?, reason: String?, changes: [FieldChange], now: Date) {
        self.actor = actor
        self.action = action
        self.entity = entity
        self.entityID = entityID
        self.siteID = siteID
        self.reason = reason
        self.changes = changes
        self.now = now
    }
}

/// The chain head while one grouped transaction appends: read once, advanced in memory, written once
/// before the commit. A request rolled back to its savepoint restores the head it found.
final class BatchHead: @unchecked Sendable {
    @TaskLocal static var current: BatchHead?
    var sequence: Int64?
    var hash = ""
    /// The sequence audit_head already holds in this transaction, when a grouped statement wrote it along the way.
    var stored: Int64?

    func snapshot() -> (Int64?, String, Int64?) { (sequence, hash, stored) }
    func restore(_ s: (Int64?, String, Int64?)) { (sequence, hash, stored) = s }

    /// The statement that moves audit_head to this head.
    var update: SQLQueryString? {
        sequence.map { "UPDATE audit_head SET sequence = \(bind: $0), hash = \(bind: hash) WHERE id = 1" }
    }

    func flush(on sql: any SQLDatabase) async throws {
        guard let update, sequence != stored else { return }
        try await sql.raw(update).run()
    }
}

public struct AuditVerification: Sendable, Equatable {
    public struct Broken: Sendable, Equatable {
        public var sequence: Int64
        public var problem: String
    }
    public var checked: Int
    public var broken: Broken?
    public var isIntact: Bool { broken == nil }
}

/// The stored text of an event's changes: a JSON array of {field, new, old}. Read and written by hand because
/// Foundation's JSON coders cost more than the hash when a whole chain is verified.
enum ChangesText {
    static func encode(_ changes: [FieldChange]) -> String {
        var out: [UInt8] = [0x5B]
        for (index, change) in changes.enumerated() {
            if index > 0 { out.append(0x2C) }
            AuditEntry.appendChange(field: change.field, new: change.new, old: change.old, to: &out)
        }
        out.append(0x5D)
        return String(decoding: out, as: UTF8.self)
    }

    /// Any valid JSON of that shape (older rows leave out null members); nothing else, so an edited row cannot pass.
    static func decode(_ text: String) throws -> [FieldChange] {
        guard let changes = parse(Array(text.utf8)) else {
            throw StoreError.invalid(field: "changes", rule: "must be a JSON list of {field, old, new} with text or null values")
        }
        return changes
    }

    static func parse(_ b: [UInt8]) -> [FieldChange]? {
        var result: [FieldChange] = []
        let ok = b.withUnsafeBufferPointer { buffer in
            walk(buffer) { field, new, old in
                guard let f = String(validating: field, as: UTF8.self) else { return false }
                var n: String?, o: String?
                if let new { guard let v = String(validating: new, as: UTF8.self) else { return false }; n = v }
                if let old { guard let v = String(validating: old, as: UTF8.self) else { return false }; o = v }
                result.append(FieldChange(field: f, old: o, new: n))
                return true
            }
        }
        return ok ? result : nil
    }

    /// Writes the members of the canonical changes array straight from the stored text, without building strings.
    static func appendCanonical(_ text: String, to out: inout [UInt8]) -> Bool {
        var text = text
        return text.withUTF8 { buffer in
            var first = true
            return walk(buffer) { field, new, old in
                if !first { out.append(0x2C) }
                first = false
                out.append(0x7B)
                out.append(contentsOf: #""field":"#.utf8); AuditEntry.appendJSONString(bytes: field, to: &out); out.append(0x2C)
                out.append(contentsOf: #""new":"#.utf8); append(new, to: &out); out.append(0x2C)
                out.append(contentsOf: #""old":"#.utf8); append(old, to: &out)
                out.append(0x7D)
                return true
            }
        }
    }

    private static func append(_ value: UnsafeBufferPointer<UInt8>?, to out: inout [UInt8]) {
        if let value { AuditEntry.appendJSONString(bytes: value, to: &out) } else { out.append(contentsOf: [0x6E, 0x75, 0x6C, 0x6C]) }
    }

    /// Walks a JSON array of {field, new, old} objects, calling `each` with each object's unescaped UTF-8 values
    /// (nil for null or absent). False when the text is anything else, or `each` refuses.
    private static func walk(
        _ b: UnsafeBufferPointer<UInt8>,
        _ each: (UnsafeBufferPointer<UInt8>, UnsafeBufferPointer<UInt8>?, UnsafeBufferPointer<UInt8>?) -> Bool
    ) -> Bool {
        var i = 0
        // Unescaped copies of strings that had escapes; plain strings are read in place.
        var scratch: [[UInt8]] = [[], [], [], []]
        func skip() { while i < b.count, b[i] == 0x20 || b[i] == 0x0A || b[i] == 0x0D || b[i] == 0x09 { i += 1 } }
        func expect(_ c: UInt8) -> Bool {
            skip()
            guard i < b.count, b[i] == c else { return false }
            i += 1
            return true
        }
        func hex4() -> UInt32? {
            guard i + 4 <= b.count else { return nil }
            var v: UInt32 = 0
            for _ in 0..<4 {
                let c = b[i]
                let d: UInt32
                switch c {
                case 0x30...0x39: d = UInt32(c - 0x30)
                case 0x41...0x46: d = UInt32(c - 0x37)
                case 0x61...0x66: d = UInt32(c - 0x57)
                default: return nil
                }
                v = v << 4 | d
                i += 1
            }
            return v
        }
        /// A string's content: a range of the input, or (when it had escapes) a scratch slot's bytes.
        enum Piece { case range(Range<Int>), slot(Int) }
        func string(slot: Int) -> Piece? {
            guard expect(0x22) else { return nil }
            let start = i
            while i < b.count, b[i] != 0x22, b[i] != 0x5C, b[i] >= 0x20 { i += 1 }
            guard i < b.count else { return nil }
            if b[i] == 0x22 {
                i += 1
                return .range(start..<(i - 1))
            }
            scratch[slot].removeAll(keepingCapacity: true)
            scratch[slot].append(contentsOf: UnsafeBufferPointer(rebasing: b[start..<i]))
            while i < b.count {
                let c = b[i]
                i += 1
                switch c {
                case 0x22: return .slot(slot)
                case 0x5C:
                    guard i < b.count else { return nil }
                    let e = b[i]
                    i += 1
                    switch e {
                    case 0x22, 0x5C, 0x2F: scratch[slot].append(e)
                    case 0x62: scratch[slot].append(0x08)
                    case 0x66: scratch[slot].append(0x0C)
                    case 0x6E: scratch[slot].append(0x0A)
                    case 0x72: scratch[slot].append(0x0D)
                    case 0x74: scratch[slot].append(0x09)
                    case 0x75:
                        guard var scalar = hex4() else { return nil }
                        if (0xD800..<0xDC00).contains(scalar) {
                            guard i + 1 < b.count, b[i] == 0x5C, b[i + 1] == 0x75 else { return nil }
                            i += 2
                            guard let low = hex4(), (0xDC00..<0xE000).contains(low) else { return nil }
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        }
                        guard let u = Unicode.Scalar(scalar) else { return nil }
                        scratch[slot].append(contentsOf: Array(String(Character(u)).utf8))
                    default: return nil
                    }
                case 0x00..<0x20: return nil
                default: scratch[slot].append(c)
                }
            }
            return nil
        }
        /// Whether a key is `name`, compared in place: building arrays to compare was most of a verify's allocations.
        func named(_ piece: Piece, _ name: StaticString) -> Bool {
            name.withUTF8Buffer { want in
                switch piece {
                case .range(let r): return r.count == want.count && UnsafeBufferPointer(rebasing: b[r]).elementsEqual(want)
                case .slot(let n): return scratch[n].elementsEqual(want)
                }
            }
        }
        func optionalString(slot: Int) -> Piece?? {
            skip()
            if i + 4 <= b.count, b[i] == 0x6E, b[i + 1] == 0x75, b[i + 2] == 0x6C, b[i + 3] == 0x6C {
                i += 4
                return .some(nil)
            }
            guard let piece = string(slot: slot) else { return nil }
            return .some(piece)
        }
        guard expect(0x5B) else { return false }
        if expect(0x5D) { skip(); return i == b.count }
        repeat {
            guard expect(0x7B) else { return false }
            var field: Piece?, old: Piece?, new: Piece?
            var seenOld = false, seenNew = false
            if !expect(0x7D) {
                repeat {
                    guard let key = string(slot: 3), expect(0x3A) else { return false }
                    if named(key, "field") {
                        guard field == nil, let v = string(slot: 0) else { return false }; field = v
                    } else if named(key, "old") {
                        guard !seenOld, let v = optionalString(slot: 1) else { return false }; old = v; seenOld = true
                    } else if named(key, "new") {
                        guard !seenNew, let v = optionalString(slot: 2) else { return false }; new = v; seenNew = true
                    } else {
                        return false
                    }
                } while expect(0x2C)
                guard expect(0x7D) else { return false }
            }
            guard let field else { return false }
            func view(_ piece: Piece?, _ body: (UnsafeBufferPointer<UInt8>?) -> Bool) -> Bool {
                switch piece {
                case .none: return body(nil)
                case .range(let r): return body(UnsafeBufferPointer(rebasing: b[r]))
                case .slot(let n): return scratch[n].withUnsafeBufferPointer { body($0) }
                }
            }
            let accepted = view(field) { f in view(new) { n in view(old) { o in each(f!, n, o) } } }
            guard accepted else { return false }
        } while expect(0x2C)
        guard expect(0x5D) else { return false }
        skip()
        return i == b.count
    }
}

extension AuditChain {
    /// Every event about one participant's records (the participant, its forms, labs, adverse events and their
    /// follow-ups, consents, doses, eligibility reviews, queries, signatures, verifications, deviations), oldest first:
    /// the audit trail of a casebook for the site's archive.
    /// The entities whose events concern one participant; named so the lookup uses the (entity, entity_id) index.
    static let participantEntities: [String] = [
        "participant", "form_record", "lab_result", "adverse_event", "ae_follow_up", "consent", "dose", "allocation", "allocation_refused",
        "eligibility_review", "query", "query_refused", "signature", "signature_refused", "verification", "protocol_deviation", "unblinding",
    ]

    public static func participantTrail(on database: any Database, participantID: UUID) async throws -> [AuditEntry] {
        let sql = database as! any SQLDatabase
        var ids: [String] = [participantID.uuidString]
        for (table, column) in [
            ("form_records", "participant_id"), ("lab_results", "participant_id"), ("adverse_events", "participant_id"), ("consents", "participant_id"),
            ("doses", "participant_id"), ("eligibility_reviews", "participant_id"), ("queries", "participant_id"), ("signatures", "participant_id"),
            ("verifications", "participant_id"), ("protocol_deviations", "participant_id"),
        ] {
            for row in try await sql.raw("SELECT id FROM \(ident: table) WHERE \(ident: column) = \(bind: participantID)").all() {
                ids.append(try row.decode(column: "id", as: UUID.self).uuidString)
            }
        }
        for row in try await sql.raw("""
            SELECT f.id FROM ae_follow_ups f JOIN adverse_events e ON e.id = f.event_id WHERE e.participant_id = \(bind: participantID)
            """).all() {
            ids.append(try row.decode(column: "id", as: UUID.self).uuidString)
        }
        var entries: [AuditEntry] = []
        // Bound values per statement stay well under SQLite's limit.
        for start in stride(from: 0, to: ids.count, by: 500) {
            let chunk = Array(ids[start..<min(ids.count, start + 500)])
            entries += try await sql.raw("""
                SELECT sequence, occurred_at, actor, action, entity, entity_id, site_id, reason, changes, previous_hash
                FROM audit_events WHERE entity IN (\(binds: participantEntities)) AND entity_id IN (\(binds: chunk))
                """).all().map(decodeEntry)
        }
        return entries.sorted { $0.sequence < $1.sequence }
    }
}
