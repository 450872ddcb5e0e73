import FluentKit
import FluentSQL
import Foundation
import TrialDomain

/// A clinical row that is not what its audit events say: changed behind the server's back (by hand in the database),
/// or written without its event.
public struct RowDifference: Sendable, Equatable, CustomStringConvertible {
    public var table: String
    public var rowID: String
    public var field: String
    public var stored: String?
    public var audited: String?

    public var description: String {
        "\(table) row \(rowID), \(field): stored \(stored.map { "'\($0)'" } ?? "nothing"), audit trail says \(audited.map { "'\($0)'" } ?? "nothing")"
    }
}

/// Tamper-evident data, not only a tamper-evident log: every current participant, form, lab result and adverse event
/// is compared with the state its audit events build up (the `new` value of each field's latest change). Fields
/// the system derives again without an event of their own (grades re-graded against a corrected baseline) are not
/// compared; what a person enters is.
public enum RowVerification {
    public struct Result: Sendable, Equatable {
        public var rowsChecked: Int
        public var differences: [RowDifference]
    }

    /// The audited state of every row of one entity: id → field → latest value; `deleted` for ids with a delete event.
    static func audited(_ entity: String, on sql: any SQLDatabase) async throws -> (state: [String: [String: String?]], deleted: Set<String>) {
        var state: [String: [String: String?]] = [:]
        var deleted: Set<String> = []
        for row in try await sql.raw("""
            SELECT entity_id, action, changes FROM audit_events WHERE entity = \(bind: entity) ORDER BY sequence
            """).all()
        {
            let id = try row.decode(column: "entity_id", as: String.self).uppercased()
            if try row.decode(column: "action", as: String.self) == AuditAction.delete.rawValue { deleted.insert(id) }
            var fields = state[id] ?? [:]
            for change in try ChangesText.decode(try row.decode(column: "changes", as: String.self)) { fields[change.field] = .some(change.new) }
            state[id] = fields
        }
        return (state, deleted)
    }

    public static func verify(on database: any Database, limit: Int = 100) async throws -> Result {
        let sql = database as! any SQLDatabase
        var differences: [RowDifference] = []
        var checked = 0
        func differ(_ table: String, _ id: String, _ field: String, _ stored: String?, _ audited: String??) {
            let said = audited ?? nil
            if stored != said, differences.count < limit { differences.append(RowDifference(table: table, rowID: id, field: field, stored: stored, audited: said)) }
        }
        func unaudited(_ table: String, _ id: String) {
            if differences.count < limit { differences.append(RowDifference(table: table, rowID: id, field: "(row)", stored: "present", audited: nil)) }
        }

        let participants = try await audited("participant", on: sql)
        for row in try await sql.raw("SELECT id, screening_number, status, deleted_at FROM participants").all() {
            checked += 1
            let id = try row.decode(column: "id", as: UUID.self).uuidString
            guard let fields = participants.state[id] else { unaudited("participants", id); continue }
            differ("participants", id, "screening_number", try row.decode(column: "screening_number", as: String.self), fields["screeningNumber"])
            differ("participants", id, "status", try row.decode(column: "status", as: String.self), fields["status"])
            let removed = try row.decode(column: "deleted_at", as: Date?.self) != nil
            if removed != participants.deleted.contains(id) {
                differ("participants", id, "deleted_at", removed ? "set" : nil, .some(participants.deleted.contains(id) ? "set" : nil))
            }
        }

        let labs = try await audited("lab_result", on: sql).state
        for row in try await sql.raw("SELECT id, test_code, visit_code, entered_value, entered_unit FROM lab_results").all() {
            checked += 1
            let id = try row.decode(column: "id", as: UUID.self).uuidString
            guard let fields = labs[id] else { unaudited("lab_results", id); continue }
            differ("lab_results", id, "test_code", try row.decode(column: "test_code", as: String.self), fields["test"])
            differ("lab_results", id, "visit_code", try row.decode(column: "visit_code", as: String.self), fields["visit"])
            // As the write path words it: the value as entered with its unit.
            let value = "\(FormValidator.format(try row.decode(column: "entered_value", as: Double.self))) \(try row.decode(column: "entered_unit", as: String.self))"
            differ("lab_results", id, "entered_value", value, fields["value"])
        }

        let events = try await audited("adverse_event", on: sql).state
        for row in try await sql.raw("SELECT id, term, grade, attribution FROM adverse_events").all() {
            checked += 1
            let id = try row.decode(column: "id", as: UUID.self).uuidString
            guard let fields = events[id] else { unaudited("adverse_events", id); continue }
            differ("adverse_events", id, "term", try row.decode(column: "term", as: String.self), fields["term"])
            differ("adverse_events", id, "grade", String(try row.decode(column: "grade", as: Int.self)), fields["grade"])
            differ("adverse_events", id, "attribution", try row.decode(column: "attribution", as: String.self), fields["attribution"])
        }

        let forms = try await audited("form_record", on: sql).state
        for row in try await sql.raw("SELECT id, form_code, data FROM form_records").all() {
            checked += 1
            let id = try row.decode(column: "id", as: UUID.self).uuidString
            guard let fields = forms[id] else { unaudited("form_records", id); continue }
            let form = try row.decode(column: "form_code", as: String.self)
            let values = FluentFormRecordRepository.values(try row.decode(column: "data", as: String.self))
            // Every field the trail names, and every stored value, must agree (an empty value is no value).
            var names = Set(values.keys.map { "\(form).\($0)" })
            names.formUnion(fields.keys.filter { $0.hasPrefix("\(form).") })
            for name in names.sorted() {
                let stored = values[String(name.dropFirst(form.count + 1))].flatMap { $0.isEmpty ? nil : $0 }
                let said = (fields[name] ?? nil).flatMap { $0.isEmpty ? nil : $0 }
                differ("form_records", id, "data.\(name.dropFirst(form.count + 1))", stored, .some(said))
            }
        }
        return Result(rowsChecked: checked, differences: differences)
    }
}
