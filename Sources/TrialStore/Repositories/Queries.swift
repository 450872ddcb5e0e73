import FluentKit
import FluentSQL
import Foundation
import TrialDomain

/// One message of a query's thread: how it was raised, answered, closed, reopened or cancelled.
public struct QueryMessage: Codable, Equatable, Sendable {
    public var action: String
    public var status: QueryStatus
    public var text: String
    public var actor: String
    public var at: Date
}

public struct DataQuery: Codable, Equatable, Sendable {
    public var id: UUID
    public var participantID: UUID
    public var screeningNumber: String
    public var siteCode: String
    public var kind: QueryKind
    public var status: QueryStatus
    public var target: QueryTarget
    public var text: String
    public var assignee: Role
    public var dueAt: Date?
    public var raisedBy: String
    public var raisedAt: Date
    public var answeredBy: String?
    public var updatedAt: Date
    public var checkCode: String?
    public var messages: [QueryMessage]?

    public func ageInDays(now: Date) -> Int { QueryRules.ageInDays(raisedAt: raisedAt, now: now) }
    public func isOverdue(now: Date) -> Bool { QueryRules.isOverdue(status: status, dueAt: dueAt, now: now) }
}

public struct QueryInput: Sendable {
    public var participantID: UUID
    public var kind: QueryKind
    public var target: QueryTarget
    public var text: String
    public var assignee: Role?
    public var dueAt: Date?

    public init(participantID: UUID, kind: QueryKind = .query, target: QueryTarget = QueryTarget(), text: String, assignee: Role? = nil, dueAt: Date? = nil) {
        self.participantID = participantID
        self.kind = kind
        self.target = target
        self.text = text
        self.assignee = assignee
        self.dueAt = dueAt
    }
}

public struct QueryFilter: Sendable, Equatable {
    public var status: QueryStatus?
    public var siteCode: String?
    public var participantID: UUID?
    public var assignee: Role?
    public var overdue: Bool
    public var limit: Int
    public var after: String?

    public init(status: QueryStatus? = nil, siteCode: String? = nil, participantID: UUID? = nil, assignee: Role? = nil, overdue: Bool = false, limit: Int = 50, after: String? = nil) {
        self.status = status
        self.siteCode = siteCode
        self.participantID = participantID
        self.assignee = assignee
        self.overdue = overdue
        self.limit = limit
        self.after = after
    }
}

public struct QueryPage: Sendable, Equatable {
    public var items: [DataQuery]
    public var next: String?
}

/// Queries on participants' data: raised, answered, closed, reopened and cancelled by the roles TrialDomain's
/// `QueryRules` allow, each step one audited write that a freeze leaves open and a lock refuses.
public struct FluentQueryRepository: Sendable {
    let store: Store
    public init(store: Store) { self.store = store }

    public static let maximumText = 4_000

    public func raise(_ input: QueryInput, scope: AccessScope, now: Date) async throws -> DataQuery {
        guard let role = scope.role else { throw StoreError.forbidden(rule: "a query is raised by a signed-in user") }
        try QueryRules.checkRaise(input.kind, by: role)
        let text = try Self.checkText(input.text)
        if let dueAt = input.dueAt, dueAt < now { throw StoreError.invalid(field: "dueAt", rule: "must not be in the past") }
        if let assignee = input.assignee, !(QueryRules.siteStaff.contains(assignee) || QueryRules.reviewers.contains(assignee)) {
            throw StoreError.invalid(field: "assignee", rule: "must be investigator, coordinator, monitor or data-manager")
        }
        return try await store.write { tx in
            let file = try await FluentScreeningRepository.file(participantID: input.participantID, scope: scope, on: tx)
            do { try input.target.check(in: file.study) } catch let error as QueryTargetError { throw StoreError.invalid(field: error.field, rule: error.rule) }
            try await LockCheck.require(
                WriteTarget(siteID: file.participant.siteID, participantID: input.participantID, visit: input.target.visit, form: input.target.form),
                kind: .review, actor: scope.actor, attempted: "\(input.kind.rawValue) raised", on: tx)
            let status = QueryRules.initialStatus(input.kind)
            let due = input.dueAt ?? (input.kind.needsResponse ? file.study.dataManagement?.queryDueDays.map { now.addingTimeInterval(Double($0) * 86_400) } : nil)
            let query = DataQuery(
                id: UUID.timeOrdered(), participantID: input.participantID, screeningNumber: file.participant.screeningNumber, siteCode: file.siteCode,
                kind: input.kind, status: status, target: input.target, text: text, assignee: input.assignee ?? .coordinator, dueAt: due,
                raisedBy: scope.actor, raisedAt: now, answeredBy: nil, updatedAt: now, checkCode: nil,
                messages: [QueryMessage(action: "raise", status: status, text: text, actor: scope.actor, at: now)])
            try await Self.insert(query, siteID: file.participant.siteID, on: tx)
            return query
        }
    }

    /// Inserts a new query with its first message and audit event, inside the caller's write.
    static func insert(_ query: DataQuery, siteID: UUID, on tx: any Database) async throws {
        let sql = tx as! any SQLDatabase
        try await sql.raw("""
            INSERT INTO queries (id, participant_id, site_id, kind, status, visit_code, form_code, lab_test, field_code, text, assignee_role, due_at,
              raised_by, raised_at, answered_by, updated_at, check_code)
            VALUES (\(bind: query.id), \(bind: query.participantID), \(bind: siteID), \(bind: query.kind.rawValue), \(bind: query.status.rawValue),
              \(bind: query.target.visit), \(bind: query.target.form), \(bind: query.target.lab), \(bind: query.target.field), \(bind: query.text),
              \(bind: query.assignee.rawValue), \(bind: query.dueAt), \(bind: query.raisedBy), \(bind: query.raisedAt), \(bind: String?.none),
              \(bind: query.raisedAt), \(bind: query.checkCode))
            """).run()
        try await addMessage(query.id, action: "raise", status: query.status, text: query.text, actor: query.raisedBy, at: query.raisedAt, on: sql)
        try await AuditChain.append(
            on: tx, actor: query.raisedBy, action: .create, entity: "query", entityID: query.id.uuidString, siteID: siteID.uuidString, reason: nil,
            changes: [
                .init(field: "kind", old: nil, new: query.kind.rawValue), .init(field: "status", old: nil, new: query.status.rawValue),
                .init(field: "participant", old: nil, new: query.participantID.uuidString), .init(field: "target", old: nil, new: Self.describe(query.target)),
                .init(field: "text", old: nil, new: query.text), .init(field: "assignee", old: nil, new: query.assignee.rawValue),
            ], now: query.raisedAt)
    }

    static func addMessage(_ id: UUID, action: String, status: QueryStatus, text: String, actor: String, at: Date, on sql: any SQLDatabase) async throws {
        try await sql.raw("""
            INSERT INTO query_messages (id, query_id, action, status, text, actor, at)
            VALUES (\(bind: UUID.timeOrdered()), \(bind: id), \(bind: action), \(bind: status.rawValue), \(bind: text), \(bind: actor), \(bind: at))
            """).run()
    }

    public func transition(id: UUID, action: QueryAction, text: String?, scope: AccessScope, now: Date) async throws -> DataQuery {
        guard let role = scope.role else { throw StoreError.forbidden(rule: "a query is moved by a signed-in user") }
        let words = try text.map(Self.checkText)
        if action == .answer && (words ?? "").isEmpty { throw StoreError.invalid(field: "text", rule: "an answer needs its text") }
        do {
            return try await store.write { tx in
                var query = try await Self.find(id, scope: scope, on: tx)
                try await LockCheck.require(
                    WriteTarget(siteID: try await Self.siteID(id, on: tx), participantID: query.participantID, visit: query.target.visit, form: query.target.form),
                    kind: .review, actor: scope.actor, attempted: "query \(action.rawValue)", on: tx)
                let status = try QueryRules.transition(
                    from: query.status, kind: query.kind, action: action, role: role, actor: scope.actor, answeredBy: query.answeredBy)
                try await Self.move(&query, to: status, action: action.rawValue, text: words ?? "", actor: scope.actor, now: now, on: tx)
                return query
            }
        } catch let refused as RuleError {
            // Refused moves are kept too: who tried what.
            _ = try? await store.write { tx in
                try await AuditChain.append(
                    on: tx, actor: scope.actor, action: .update, entity: "query_refused", entityID: id.uuidString, siteID: nil, reason: refused.description,
                    changes: [.init(field: "action", old: nil, new: action.rawValue)], now: now)
            }
            throw refused
        }
    }

    /// Moves a query to `status` with a message and an audit event, inside the caller's write.
    static func move(_ query: inout DataQuery, to status: QueryStatus, action: String, text: String, actor: String, now: Date, on tx: any Database) async throws {
        let sql = tx as! any SQLDatabase
        let old = query.status
        query.status = status
        query.updatedAt = now
        if action == QueryAction.answer.rawValue { query.answeredBy = actor }
        if action == QueryAction.reopen.rawValue { query.answeredBy = nil }
        try await sql.raw("""
            UPDATE queries SET status = \(bind: status.rawValue), answered_by = \(bind: query.answeredBy), updated_at = \(bind: now) WHERE id = \(bind: query.id)
            """).run()
        try await addMessage(query.id, action: action, status: status, text: text, actor: actor, at: now, on: sql)
        query.messages = (query.messages ?? []) + [QueryMessage(action: action, status: status, text: text, actor: actor, at: now)]
        try await AuditChain.append(
            on: tx, actor: actor, action: .update, entity: "query", entityID: query.id.uuidString, siteID: try await siteID(query.id, on: tx).uuidString,
            reason: text.isEmpty ? "query \(action)" : text, changes: [.init(field: "status", old: old.rawValue, new: status.rawValue), .init(field: "action", old: nil, new: action)],
            now: now)
    }

    /// Answers the open queries on fields a save changed, with the save's reason (site staff only; a reviewer's
    /// change answers nothing). Inside the save's write.
    static func answer(participantID: UUID, fields: Set<String>, visit: String, reason: String?, scope: AccessScope, now: Date, on tx: any Database) async throws {
        guard let reason, !reason.isEmpty, let role = scope.role, QueryRules.siteStaff.contains(role), !fields.isEmpty else { return }
        let rows = try await (tx as! any SQLDatabase).raw("""
            SELECT id, form_code, lab_test, field_code FROM queries
            WHERE participant_id = \(bind: participantID) AND visit_code = \(bind: visit) AND status = 'open' AND kind = 'query'
            """).all()
        for row in rows {
            let target = QueryTarget(
                visit: visit, form: try row.decode(column: "form_code", as: String?.self), lab: try row.decode(column: "lab_test", as: String?.self),
                field: try row.decode(column: "field_code", as: String?.self))
            guard let path = target.fieldPath, fields.contains(path) else { continue }
            var query = try await find(try row.decode(column: "id", as: UUID.self), scope: scope, on: tx)
            try await move(&query, to: .answered, action: QueryAction.answer.rawValue, text: reason, actor: scope.actor, now: now, on: tx)
        }
    }

    public func query(id: UUID, scope: AccessScope) async throws -> DataQuery {
        try await Self.find(id, scope: scope, on: store.database)
    }

    static func siteID(_ id: UUID, on db: any Database) async throws -> UUID {
        guard let row = try await (db as! any SQLDatabase).raw("SELECT site_id FROM queries WHERE id = \(bind: id)").first() else {
            throw StoreError.notFound(entity: "query", id: id.uuidString)
        }
        return try row.decode(column: "site_id", as: UUID.self)
    }

    static let columns = """
        q.id, q.participant_id, q.kind, q.status, q.visit_code, q.form_code, q.lab_test, q.field_code, q.text, q.assignee_role, q.due_at,
        q.raised_by, q.raised_at, q.answered_by, q.updated_at, q.check_code, q.site_id, p.screening_number, s.code AS site_code
        """

    static func find(_ id: UUID, scope: AccessScope, on db: any Database) async throws -> DataQuery {
        let sql = db as! any SQLDatabase
        guard let row = try await sql.raw("""
            SELECT \(unsafeRaw: columns) FROM queries q JOIN participants p ON p.id = q.participant_id JOIN sites s ON s.id = q.site_id
            WHERE q.id = \(bind: id)
            """).first(), scope.siteIDs.contains(try row.decode(column: "site_id", as: UUID.self))
        else { throw StoreError.notFound(entity: "query", id: id.uuidString) }
        var query = try decode(row)
        query.messages = try await sql.raw("SELECT action, status, text, actor, at FROM query_messages WHERE query_id = \(bind: id) ORDER BY at, id").all().map {
            QueryMessage(
                action: try $0.decode(column: "action", as: String.self), status: QueryStatus(rawValue: try $0.decode(column: "status", as: String.self)) ?? .open,
                text: try $0.decode(column: "text", as: String.self), actor: try $0.decode(column: "actor", as: String.self), at: try $0.decode(column: "at", as: Date.self))
        }
        return query
    }

    static func decode(_ row: any SQLRow) throws -> DataQuery {
        let kind = try row.decode(column: "kind", as: String.self), status = try row.decode(column: "status", as: String.self)
        let assignee = try row.decode(column: "assignee_role", as: String.self)
        guard let k = QueryKind(rawValue: kind), let s = QueryStatus(rawValue: status), let a = Role(rawValue: assignee) else {
            throw StoreError.invalid(field: "query", rule: "unknown kind '\(kind)', status '\(status)' or assignee '\(assignee)'")
        }
        return DataQuery(
            id: try row.decode(column: "id", as: UUID.self), participantID: try row.decode(column: "participant_id", as: UUID.self),
            screeningNumber: try row.decode(column: "screening_number", as: String.self), siteCode: try row.decode(column: "site_code", as: String.self),
            kind: k, status: s,
            target: QueryTarget(
                visit: try row.decode(column: "visit_code", as: String?.self), form: try row.decode(column: "form_code", as: String?.self),
                lab: try row.decode(column: "lab_test", as: String?.self), field: try row.decode(column: "field_code", as: String?.self)),
            text: try row.decode(column: "text", as: String.self), assignee: a, dueAt: try row.decode(column: "due_at", as: Date?.self),
            raisedBy: try row.decode(column: "raised_by", as: String.self), raisedAt: try row.decode(column: "raised_at", as: Date.self),
            answeredBy: try row.decode(column: "answered_by", as: String?.self), updatedAt: try row.decode(column: "updated_at", as: Date.self),
            checkCode: try row.decode(column: "check_code", as: String?.self), messages: nil)
    }

    /// One page, oldest first, filtered in the query itself; the cursor is the last row's raise time and id.
    public func list(_ filter: QueryFilter, scope: AccessScope, now: Date) async throws -> QueryPage {
        guard !scope.siteIDs.isEmpty else { return QueryPage(items: [], next: nil) }
        guard (1...500).contains(filter.limit) else { throw StoreError.invalid(field: "limit", rule: "must be from 1 to 500") }
        var query: SQLQueryString = """
            SELECT \(unsafeRaw: Self.columns) FROM queries q JOIN participants p ON p.id = q.participant_id JOIN sites s ON s.id = q.site_id
            WHERE q.site_id IN (\(binds: scope.siteBinds))
            """
        if let status = filter.status { query = query + " AND q.status = \(bind: status.rawValue)" }
        if let site = filter.siteCode { query = query + " AND s.code = \(bind: site)" }
        if let participant = filter.participantID { query = query + " AND q.participant_id = \(bind: participant)" }
        if let assignee = filter.assignee { query = query + " AND q.assignee_role = \(bind: assignee.rawValue)" }
        if filter.overdue { query = query + " AND q.status IN ('open', 'answered') AND q.due_at IS NOT NULL AND q.due_at < \(bind: now)" }
        if let after = filter.after {
            let (time, id) = try Self.decodeCursor(after)
            query = query + " AND (q.raised_at > \(bind: time) OR (q.raised_at = \(bind: time) AND q.id > \(bind: id)))"
        }
        query = query + " ORDER BY q.raised_at, q.id LIMIT \(bind: filter.limit + 1)"
        let rows = try await (store.database as! any SQLDatabase).raw(query).all()
        var items = try rows.prefix(filter.limit).map(Self.decode)
        let next = rows.count > filter.limit ? items.last.map { Self.encodeCursor($0.raisedAt, $0.id) } : nil
        if items.isEmpty { items = [] }
        return QueryPage(items: items, next: next)
    }

    /// Counts by site and status, for a monitor's overview.
    public func counts(scope: AccessScope, now: Date) async throws -> [(site: String, open: Int, answered: Int, overdue: Int)] {
        guard !scope.siteIDs.isEmpty else { return [] }
        return try await (store.database as! any SQLDatabase).raw("""
            SELECT s.code AS site,
              SUM(CASE WHEN q.status = 'open' THEN 1 ELSE 0 END) AS open_count,
              SUM(CASE WHEN q.status = 'answered' THEN 1 ELSE 0 END) AS answered_count,
              SUM(CASE WHEN q.status IN ('open', 'answered') AND q.due_at < \(bind: now) THEN 1 ELSE 0 END) AS overdue_count
            FROM queries q JOIN sites s ON s.id = q.site_id WHERE q.site_id IN (\(binds: scope.siteBinds)) GROUP BY s.code ORDER BY s.code
            """).all().map {
            (try $0.decode(column: "site", as: String.self), try $0.decode(column: "open_count", as: Int?.self) ?? 0,
             try $0.decode(column: "answered_count", as: Int?.self) ?? 0, try $0.decode(column: "overdue_count", as: Int?.self) ?? 0)
        }
    }

    static func encodeCursor(_ time: Date, _ id: UUID) -> String { Cursor.encode("\(time.timeIntervalSince1970)|\(id.uuidString)") }

    static func decodeCursor(_ text: String) throws -> (Date, UUID) {
        let plain = try Cursor.decode(text)
        guard let bar = plain.firstIndex(of: "|"), let seconds = Double(plain[..<bar]), let id = UUID(uuidString: String(plain[plain.index(after: bar)...]))
        else { throw Cursor.invalid }
        return (Date(timeIntervalSince1970: seconds), id)
    }

    static func checkText(_ text: String) throws -> String {
        let trimmed = text.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !trimmed.isEmpty else { throw StoreError.invalid(field: "text", rule: "is required") }
        guard trimmed.count <= maximumText else { throw StoreError.invalid(field: "text", rule: "must be at most \(maximumText) characters") }
        return trimmed
    }

    static func describe(_ target: QueryTarget) -> String {
        [target.visit, target.form, target.lab, target.field].compactMap { $0 }.joined(separator: ".")
    }
}
