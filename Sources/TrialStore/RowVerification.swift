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

    /// The audited state of every row of one entity, keeping only `fields`: id → field → latest value; `deleted` for
    /// ids with a delete event.
    static func audited(_ entity: String, fields wanted: Set<String>?, on database: any Database) async throws -> (state: [String: [String: String?]], deleted: Set<String>) {
        let collected = Collector((state: [String: [String: String?]](), deleted: Set<String>()))
        try await TextRows.each(database, """
            SELECT entity_id, action, changes FROM audit_events WHERE entity = '\(entity)' ORDER BY sequence
            """) { row in
            guard let id = row[0]?.uppercased(), let action = row[1], let text = row[2], let changes = try? ChangesText.decode(text) else { return }
            if action == AuditAction.delete.rawValue { collected.value.deleted.insert(id) }
            var fields = collected.value.state[id] ?? [:]
            for change in changes where wanted?.contains(change.field) ?? true { fields[change.field] = .some(change.new) }
            collected.value.state[id] = fields
        }
        return collected.value
    }

    public static func verify(on database: any Database, limit: Int = 100) async throws -> Result {
        var differences: [RowDifference] = []
        var checked = 0
        func differ(_ table: String, _ id: String, _ field: String, _ stored: String?, _ audited: String??) {
            let said = audited ?? nil
            if stored != said, differences.count < limit { differences.append(RowDifference(table: table, rowID: id, field: field, stored: stored, audited: said)) }
        }
        func unaudited(_ table: String, _ id: String) {
            if differences.count < limit { differences.append(RowDifference(table: table, rowID: id, field: "(row)", stored: "present", audited: nil)) }
        }

        // Every row of a table as text, in the same form on either database.
        func rows(_ query: String) async throws -> [[String?]] {
            let collected = Collector([[String?]]())
            try await TextRows.each(database, query) { collected.value.append($0) }
            return collected.value
        }

        let participants = try await audited("participant", fields: ["screeningNumber", "status"], on: database)
        for row in try await rows("""
            SELECT CAST(id AS TEXT), screening_number, status, CASE WHEN deleted_at IS NULL THEN 'no' ELSE 'yes' END FROM participants
            """) {
            checked += 1
            let id = (row[0] ?? "").uppercased()
            guard let fields = participants.state[id] else { unaudited("participants", id); continue }
            differ("participants", id, "screening_number", row[1], fields["screeningNumber"])
            differ("participants", id, "status", row[2], fields["status"])
            let removed = row[3] == "yes"
            if removed != participants.deleted.contains(id) {
                differ("participants", id, "deleted_at", removed ? "set" : nil, .some(participants.deleted.contains(id) ? "set" : nil))
            }
        }

        let labs = try await audited("lab_result", fields: ["test", "visit", "value"], on: database).state
        for row in try await rows("SELECT CAST(id AS TEXT), test_code, visit_code, CAST(entered_value AS TEXT), entered_unit FROM lab_results") {
            checked += 1
            let id = (row[0] ?? "").uppercased()
            guard let fields = labs[id] else { unaudited("lab_results", id); continue }
            differ("lab_results", id, "test_code", row[1], fields["test"])
            differ("lab_results", id, "visit_code", row[2], fields["visit"])
            // As the write path words it: the value as entered with its unit.
            let value = row[3].flatMap(Double.init).map { "\(FormValidator.format($0)) \(row[4] ?? "")" }
            differ("lab_results", id, "entered_value", value, fields["value"])
        }

        let events = try await audited("adverse_event", fields: ["term", "grade", "attribution"], on: database).state
        for row in try await rows("SELECT CAST(id AS TEXT), term, CAST(grade AS TEXT), attribution FROM adverse_events") {
            checked += 1
            let id = (row[0] ?? "").uppercased()
            guard let fields = events[id] else { unaudited("adverse_events", id); continue }
            differ("adverse_events", id, "term", row[1], fields["term"])
            differ("adverse_events", id, "grade", row[2], fields["grade"])
            differ("adverse_events", id, "attribution", row[3], fields["attribution"])
        }

        let forms = try await audited("form_record", fields: nil, on: database).state
        for row in try await rows("SELECT CAST(id AS TEXT), form_code, data FROM form_records") {
            checked += 1
            let id = (row[0] ?? "").uppercased()
            guard let fields = forms[id], let form = row[1] else { unaudited("form_records", id); continue }
            let values = FluentFormRecordRepository.values(row[2] ?? "{}")
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
