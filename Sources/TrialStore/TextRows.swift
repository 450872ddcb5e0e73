import FluentKit
import FluentPostgresDriver
import FluentSQL
import FluentSQLiteDriver
import Foundation

/// Rows of a query whose every column is text (or NULL), straight from the connection and handed to `body` as they
/// are read: the generic row decoder and holding every row costs more than the work done with them when a whole
/// table is checked.
enum TextRows {
    static func each(_ database: any Database, _ query: String, _ body: @escaping @Sendable ([String?]) -> Void) async throws {
        if let lite = database as? any SQLiteDatabase {
            try await lite.withConnection { connection in
                try await connection.query(query, []) { row in
                    body(row.columns.map { column in
                        switch column.data {
                        case .text(let text): text
                        case .integer(let n): String(n)
                        case .float(let d): String(d)
                        case .null: nil
                        case .blob: nil
                        }
                    })
                }
            }
        } else if let postgres = database as? any PostgresDatabase {
            try await postgres.withConnection { connection in
                connection.query(PostgresQuery(unsafeSQL: query), logger: postgres.logger) { row in
                    body(row.map { cell in try? cell.decode(String?.self) ?? nil })
                }.map { _ in }
            }.get()
        } else {
            for row in try await (database as! any SQLDatabase).raw(SQLQueryString(query)).all() {
                body(try row.allColumns.map { try row.decode(column: $0, as: String?.self) })
            }
        }
    }
}

/// Collects what a row callback hands over; the callback runs on the reading thread only, one row at a time.
final class Collector<T>: @unchecked Sendable {
    var value: T
    init(_ value: T) { self.value = value }
}
