import ArgumentParser
import Fluent
import FluentSQLiteDriver
import Foundation
import TrialStore
import TrialWeb
import Vapor

/// `casebook backup --output FILE`: an online, consistent copy of the configured database.
struct BackupCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backup",
        abstract: "Copy the database while it runs: SQLite by VACUUM INTO, PostgreSQL by pg_dump (custom format); the file is replaced whole.")
    @ArgumentParser.Option(help: "The archive to write.") var output: String

    func run() async throws {
        let url = URL(fileURLWithPath: output).absoluteURL.standardizedFileURL
        try await Runtime.withStore(migrate: false) { store, config in
            let started = Date()
            do {
                switch config.database {
                case .sqlite: try await Backup.sqlite(store.database, to: url)
                case .postgres(let database, _): try Backup.postgres(url: database, to: url)
                }
            } catch let failure as Backup.Failure {
                throw Runtime.fail("backup: \(failure)")
            }
            let size = (try? FileManager.default.attributesOfItem(atPath: url.path)[.size] as? Int) ?? 0
            print("Wrote \(output): \(Backup.engine(of: config.database).rawValue) backup, \(size / 1024) KiB (\(String(format: "%.1f", Date().timeIntervalSince(started))) s)")
        }
    }
}

/// `casebook restore FILE`: into the configured database, only when it is empty, only from an archive of the same
/// engine whose audit chain verifies; otherwise nothing is written.
struct RestoreCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "restore",
        abstract: "Restore a backup into the configured database: refused for a database with data, an archive of the other engine, or one whose audit chain does not verify.")
    @ArgumentParser.Argument(help: "The archive `casebook backup` wrote.") var file: String

    func run() async throws {
        let archive = URL(fileURLWithPath: file).absoluteURL.standardizedFileURL
        let config = try Runtime.config()
        let engine: Backup.Engine
        do { engine = try Backup.engine(of: archive) } catch let failure as Backup.Failure { throw Runtime.fail("restore: \(failure)") }
        let target = Backup.engine(of: config.database)
        guard engine == target else {
            throw Runtime.fail(
                "restore: \(file) is a \(engine.rawValue) backup, but this installation uses \(target.rawValue) (\(config.database.redacted)); restore it into a \(engine.rawValue) installation")
        }
        // The target must hold nothing yet: a restore never merges into or overwrites a trial's data.
        let empty = try await Runtime.withStore(migrate: false) { store, _ in try await Backup.isEmpty(store.database) }
        guard empty else { throw Runtime.fail("restore: \(config.database.redacted) already holds data; restore into an empty database") }
        switch config.database {
        case .sqlite(let path):
            try await restoreSQLite(archive, into: URL(fileURLWithPath: path).absoluteURL.standardizedFileURL)
        case .postgres(let url, _):
            do { try Backup.pgRestore(url: url, from: archive) } catch let failure as Backup.Failure { throw Runtime.fail("restore: \(failure)") }
            let result = try await Runtime.withStore(migrate: false) { store, _ in
                let result = try await AuditChain.verify(on: store.database)
                if !result.isIntact { try await Backup.dropAll(store.database) }
                return result
            }
            if let broken = result.broken { throw Runtime.fail("restore: refused, the archive's audit trail is broken at event \(broken.sequence): \(broken.problem); nothing was kept") }
            print("Restored \(file) into \(config.database.redacted): audit trail intact, \(result.checked) events.")
        }
    }

    /// Checks a copy of the archive beside the target, then renames it into place, so that a refused archive leaves the
    /// target as it was.
    func restoreSQLite(_ archive: URL, into target: URL) async throws {
        let copy = target.deletingLastPathComponent().appendingPathComponent(".\(target.lastPathComponent).\(UUID().uuidString).restore")
        defer { try? FileManager.default.removeItem(at: copy) }
        try FileManager.default.copyItem(at: archive, to: copy)
        let app = try await Application.make(Environment(name: "production", arguments: ["casebook"]))
        let result: AuditVerification
        do {
            let id = DatabaseID(string: "archive")
            app.databases.use(.sqlite(.file(copy.path)), as: id, isDefault: false)
            result = try await AuditChain.verify(on: app.db(id))
            // Back to a single file before it is moved: no write-ahead log left beside it.
            try await (app.db(id) as! any SQLDatabase).raw("PRAGMA journal_mode = DELETE").run()
            try await app.asyncShutdown()
        } catch {
            try? await app.asyncShutdown()
            throw error
        }
        if let broken = result.broken {
            throw Runtime.fail("restore: refused, the archive's audit trail is broken at event \(broken.sequence): \(broken.problem); nothing was written")
        }
        for suffix in ["", "-wal", "-shm"] { try? FileManager.default.removeItem(atPath: target.path + suffix) }
        guard rename(copy.path, target.path) == 0 else { throw Runtime.fail("restore: cannot write \(target.path): \(String(cString: strerror(errno)))") }
        print("Restored \(file) into SQLite file \(target.path): audit trail intact, \(result.checked) events.")
    }
}
