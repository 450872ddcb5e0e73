import FluentKit
import FluentSQL
import FluentSQLiteDriver
import Foundation

/// Online backups and their restore: a consistent copy while writes go on (SQLite's `VACUUM INTO`, PostgreSQL's
/// `pg_dump` snapshot), and a restore that writes only into an empty database, only from an archive of the same engine
/// whose audit chain verifies.
public enum Backup {
    public enum Engine: String, Sendable {
        case sqlite = "SQLite"
        case postgres = "PostgreSQL"
    }

    public struct Failure: Error, CustomStringConvertible, Sendable {
        public var description: String
        public init(_ description: String) { self.description = description }
    }

    /// The engine an archive was written by, from its first bytes: SQLite's file header or pg_dump's custom format.
    public static func engine(of file: URL) throws -> Engine {
        guard let handle = try? FileHandle(forReadingFrom: file) else { throw Failure("\(file.path): cannot be read") }
        defer { try? handle.close() }
        let head = (try? handle.read(upToCount: 16)) ?? Data()
        if head.starts(with: Data("SQLite format 3\u{0}".utf8)) { return .sqlite }
        if head.starts(with: Data("PGDMP".utf8)) { return .postgres }
        throw Failure("\(file.path): not a Casebook backup (neither an SQLite database nor a pg_dump custom-format archive)")
    }

    public static func engine(of settings: DatabaseSettings) -> Engine {
        switch settings {
        case .sqlite: .sqlite
        case .postgres: .postgres
        }
    }

    /// `VACUUM INTO` a new file beside `output`, then renamed over it: a reader's transaction, so writers go on and
    /// the copy is the database at one moment.
    public static func sqlite(_ database: any Database, to output: URL) async throws {
        let temporary = output.deletingLastPathComponent().appendingPathComponent(".\(output.lastPathComponent).\(UUID().uuidString).partial")
        defer { try? FileManager.default.removeItem(at: temporary) }
        try await (database as! any SQLDatabase).raw("VACUUM INTO \(bind: temporary.path)").run()
        try replace(output, with: temporary)
    }

    /// `pg_dump` in its custom format (one consistent snapshot), written beside `output` and renamed over it.
    public static func postgres(url: String, to output: URL) throws {
        let temporary = output.deletingLastPathComponent().appendingPathComponent(".\(output.lastPathComponent).\(UUID().uuidString).partial")
        defer { try? FileManager.default.removeItem(at: temporary) }
        try run("pg_dump", ["--format=custom", "--no-owner", "--file", temporary.path, "--dbname", url])
        try replace(output, with: temporary)
    }

    /// Restores a pg_dump archive in one transaction; the caller has checked the database is empty.
    public static func pgRestore(url: String, from archive: URL) throws {
        try run("pg_restore", ["--no-owner", "--single-transaction", "--exit-on-error", "--dbname", url, archive.path])
    }

    static func replace(_ output: URL, with temporary: URL) throws {
        guard rename(temporary.path, output.path) == 0 else {
            throw Failure("cannot write \(output.path): \(String(cString: strerror(errno)))")
        }
    }

    static func run(_ tool: String, _ arguments: [String]) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = [tool] + arguments
        let errors = Pipe()
        process.standardError = errors
        do { try process.run() } catch { throw Failure("\(tool) could not be started: \(error)") }
        let message = errors.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else {
            let text = String(decoding: message, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
            throw Failure("\(tool) failed (exit \(process.terminationStatus))\(text.isEmpty ? "" : ": " + text)")
        }
    }

    /// True when the database holds no Casebook data: no tables at all, or an audit trail with no event.
    public static func isEmpty(_ database: any Database) async throws -> Bool {
        let sql = database as! any SQLDatabase
        let hasTable: Bool
        if database is any SQLiteDatabase {
            hasTable = try await sql.raw("SELECT name FROM sqlite_master WHERE type = 'table' AND name = 'audit_events'").first() != nil
        } else {
            hasTable = try await sql.raw("""
                SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = 'audit_events'
                """).first() != nil
        }
        guard hasTable else {
            if database is any SQLiteDatabase { return try await sql.raw("SELECT name FROM sqlite_master WHERE type = 'table'").first() == nil }
            return try await sql.raw("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()").first() == nil
        }
        return try await sql.raw("SELECT sequence FROM audit_events LIMIT 1").first() == nil
    }

    /// Drops every table of the current schema: what a refused PostgreSQL restore leaves behind is taken away again.
    public static func dropAll(_ database: any Database) async throws {
        let sql = database as! any SQLDatabase
        for row in try await sql.raw("SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()").all() {
            try await sql.raw("DROP TABLE IF EXISTS \(ident: try row.decode(column: "table_name", as: String.self)) CASCADE").run()
        }
    }
}
