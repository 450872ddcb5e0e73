import FluentKit
import FluentSQL
import Foundation
import TrialDomain

public struct StudyVersionInfo: Sendable, Equatable, Codable {
    public var version: Int
    public var publishedAt: Date
    public var publishedBy: String
    public var reason: String?
}

/// The study definition's versions. Publishing N+1 never touches N, so data collected under N stays readable as N.
public protocol StudyRepository: Sendable {
    func current() async throws -> StudyDefinition?
    func definition(version: Int) async throws -> StudyDefinition
    func versions() async throws -> [StudyVersionInfo]
    func publish(_ study: StudyDefinition, actor: String, reason: String?, now: Date) async throws -> StudyVersionInfo
    /// Loads `study` as version 1 when no study is stored yet; returns whether it did.
    func seedIfEmpty(_ study: StudyDefinition, now: Date) async throws -> Bool
}

public struct FluentStudyRepository: StudyRepository {
    let store: Store
    public init(store: Store) { self.store = store }

    public func current() async throws -> StudyDefinition? {
        try await Self.current(on: store.database)?.study
    }

    /// The latest version and its content hash; the text is read and decoded only the first time this process meets it.
    static func current(on db: any Database) async throws -> (study: StudyDefinition, hash: String)? {
        let sql = db as! any SQLDatabase
        guard let head = try await sql.raw("SELECT version, definition_hash FROM study_versions ORDER BY version DESC LIMIT 1").first() else {
            return nil
        }
        if let hash = try head.decode(column: "definition_hash", as: String?.self), let cached = DefinitionCache.shared.get(hash) {
            return (cached, hash)
        }
        let version = try head.decode(column: "version", as: Int.self)
        guard let row = try await StudyVersionModel.query(on: db).filter(\.$version == version).first() else { return nil }
        return (try Self.decode(row), row.definitionHash ?? AuditChain.sha256Hex(row.definition))
    }

    /// The current version, taken from the cache when `hash` (read with something else) names one it holds.
    static func current(on db: any Database, hash: String?) async throws -> StudyDefinition? {
        if let hash, let cached = DefinitionCache.shared.get(hash) { return cached }
        return try await current(on: db)?.study
    }

    public func definition(version: Int) async throws -> StudyDefinition {
        let sql = store.database as! any SQLDatabase
        if let row = try await sql.raw("SELECT definition_hash FROM study_versions WHERE version = \(bind: version)").first(),
            let hash = try row.decode(column: "definition_hash", as: String?.self), let cached = DefinitionCache.shared.get(hash)
        {
            return cached
        }
        guard let row = try await StudyVersionModel.query(on: store.database).filter(\.$version == version).first() else {
            throw StoreError.notFound(entity: "study version", id: String(version))
        }
        return try Self.decode(row)
    }

    public func versions() async throws -> [StudyVersionInfo] {
        try await StudyVersionModel.query(on: store.database).sort(\.$version).all().map {
            StudyVersionInfo(version: $0.version, publishedAt: $0.publishedAt, publishedBy: $0.publishedBy, reason: $0.reason)
        }
    }

    public func publish(_ study: StudyDefinition, actor: String, reason: String?, now: Date) async throws -> StudyVersionInfo {
        let problems = StudyValidator.problems(in: study)
        if let first = problems.first {
            throw StoreError.invalid(field: "definition.\(first.path)", rule: first.rule + (problems.count > 1 ? " (and \(problems.count - 1) more problems)" : ""))
        }
        return try await store.write { tx in try await Self.publish(study, actor: actor, reason: reason, now: now, on: tx) }
    }

    static func publish(_ study: StudyDefinition, actor: String, reason: String?, now: Date, on tx: any Database) async throws -> StudyVersionInfo {
        let latest = try await StudyVersionModel.query(on: tx).sort(\.$version, .descending).first()
        if let latest {
            guard latest.studyCode == study.code else {
                throw StoreError.invalid(field: "definition.code", rule: "must stay '\(latest.studyCode)'; this database runs that study")
            }
        }
        let expected = (latest?.version ?? 0) + 1
        guard study.version == expected else {
            throw StoreError.invalid(field: "definition.version", rule: "must be \(expected), the next version after \(expected - 1)")
        }
        let previous = try latest.map(Self.decode)
        // An amendment changes a published protocol, so it carries a reason like any other change.
        let changes: [FieldChange] =
            if let previous {
                StudyDiff.changes(from: previous, to: study).map { FieldChange(field: $0.path, old: $0.old, new: $0.new) }
            } else {
                [FieldChange(field: "version", old: nil, new: String(study.version))]
            }
        let row = StudyVersionModel()
        row.id = UUID.timeOrdered()
        row.studyCode = study.code
        row.version = study.version
        row.definition = try Self.encode(study)
        row.definitionHash = AuditChain.sha256Hex(row.definition)
        row.publishedAt = now
        row.publishedBy = actor
        row.reason = reason
        try await AuditChain.append(
            on: tx, actor: actor, action: latest == nil ? .create : .update, entity: "study", entityID: study.code, siteID: nil,
            reason: reason, changes: changes, now: now)
        try await row.create(on: tx)
        try await Self.addSites(of: study, actor: actor, now: now, on: tx)
        try await Self.addTerms(of: study, actor: actor, now: now, on: tx)
        return StudyVersionInfo(version: study.version, publishedAt: now, publishedBy: actor, reason: reason)
    }

    /// Publishes `study` as version 1 of this database's one study: on a database with no study, or with only the
    /// built-in study loaded at first start and never used (no amendment, no participant, no allocation list).
    /// Otherwise refuses, naming the study in force.
    public func initialize(_ study: StudyDefinition, actor: String, now: Date) async throws -> StudyVersionInfo {
        let problems = StudyValidator.problems(in: study)
        if let first = problems.first {
            throw StoreError.invalid(field: "definition.\(first.path)", rule: first.rule + (problems.count > 1 ? " (and \(problems.count - 1) more problems)" : ""))
        }
        guard study.version == 1 else { throw StoreError.invalid(field: "definition.version", rule: "must be 1 for a study's first version") }
        return try await store.write { tx in
            let sql = tx as! any SQLDatabase
            let versions = try await StudyVersionModel.query(on: tx).sort(\.$version).all()
            if let inForce = versions.last {
                let participants = try await sql.raw("SELECT COUNT(*) AS n FROM participants").first()?.decode(column: "n", as: Int.self) ?? 0
                let lists = try await sql.raw("SELECT COUNT(*) AS n FROM randomization_lists").first()?.decode(column: "n", as: Int.self) ?? 0
                guard versions.count == 1, inForce.publishedBy == Self.seedActor, participants == 0, lists == 0 else {
                    throw StoreError.conflict(
                        field: "study",
                        rule: "this database already runs study \(inForce.studyCode) (version \(inForce.version)\(participants > 0 ? ", \(participants) participants" : "")); "
                            + "study init needs a database with no study or only the unused built-in one; publish amendments with `casebook study publish`")
                }
                // The unused default gives way; the audit trail keeps that it was there and why it went.
                try await AuditChain.append(
                    on: tx, actor: actor, action: .delete, entity: "study", entityID: inForce.studyCode, siteID: nil,
                    reason: "replaced by study \(study.code) before any use (study init)",
                    changes: [FieldChange(field: "version", old: String(inForce.version), new: nil)], now: now)
                try await inForce.delete(on: tx)
            }
            return try await Self.publish(study, actor: actor, reason: "study initialised", now: now, on: tx)
        }
    }

    /// Who loads the built-in study on a database's first start.
    static let seedActor = "system"

    public func seedIfEmpty(_ study: StudyDefinition, now: Date) async throws -> Bool {
        if try await StudyVersionModel.query(on: store.database).count() > 0 { return false }
        do {
            _ = try await publish(study, actor: Self.seedActor, reason: nil, now: now)
            return true
        } catch {
            // Another process may have seeded it between the check and the write.
            if try await StudyVersionModel.query(on: store.database).count() > 0 { return false }
            throw error
        }
    }

    /// Enrolment and allocation happen only while the study's operating status is recruiting.
    static func requireRecruiting(_ study: StudyDefinition, to action: String) throws {
        let status = study.lifecycle.operatingStatus
        guard status == .recruiting else {
            throw StoreError.conflict(
                field: "study", rule: "\(action) only while the study is recruiting; study \(study.code) is \(status.title.lowercased())")
        }
    }

    /// The CTCAE terms a definition names join the catalogue where it lacks them; an import of NCI's table, with every
    /// grade's wording, replaces them.
    static func addTerms(of study: StudyDefinition, actor: String, now: Date, on tx: any Database) async throws {
        var added = 0
        for term in study.adverseEventTerms ?? [] {
            if try await CTCAETermModel.query(on: tx).filter(\.$version == term.version).filter(\.$meddra == term.meddra).first() != nil { continue }
            let model = CTCAETermModel()
            model.id = UUID.timeOrdered()
            model.version = term.version
            model.meddra = term.meddra
            model.soc = term.soc
            model.term = term.term
            let grades: [String?] = (1...5).map { term.grades.contains($0) ? "Grade \($0) (its wording comes with the import of NCI's CTCAE v\(term.version) table)" : nil }
            model.grades = String(decoding: try JSONEncoder().encode(grades), as: UTF8.self)
            model.definition = ""
            try await model.create(on: tx)
            added += 1
        }
        guard added > 0 else { return }
        try await AuditChain.append(
            on: tx, actor: actor, action: .update, entity: "terminology", entityID: "study \(study.code)", siteID: nil,
            reason: "terms the protocol names", changes: [.init(field: "terms", old: nil, new: String(added))], now: now)
    }

    /// The sites a definition names exist as sites users can belong to.
    static func addSites(of study: StudyDefinition, actor: String, now: Date, on tx: any Database) async throws {
        for site in study.sites where try await SiteModel.query(on: tx).filter(\.$code == site.code).first() == nil {
            let model = SiteModel(id: UUID.timeOrdered(), code: site.code, name: site.name, createdAt: now)
            try await model.create(on: tx)
            try await AuditChain.append(
                on: tx, actor: actor, action: .create, entity: "site", entityID: model.id!.uuidString, siteID: model.id!.uuidString,
                reason: nil, changes: [.init(field: "code", old: nil, new: site.code), .init(field: "name", old: nil, new: site.name)], now: now)
        }
    }

    static func encode(_ study: StudyDefinition) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        return String(decoding: try encoder.encode(study), as: UTF8.self)
    }

    /// A published version never changes, so each is decoded once per process.
    static func decode(_ row: StudyVersionModel) throws -> StudyDefinition {
        let key = row.definitionHash ?? AuditChain.sha256Hex(row.definition)
        if let cached = DefinitionCache.shared.get(key) { return cached }
        let study = try JSONDecoder().decode(StudyDefinition.self, from: Data(row.definition.utf8))
        DefinitionCache.shared.set(key, study)
        return study
    }
}

/// Decoded study versions by the hash of their stored text.
final class DefinitionCache: @unchecked Sendable {
    static let shared = DefinitionCache()
    private let lock = NSLock()
    private var entries: [String: StudyDefinition] = [:]

    func get(_ key: String) -> StudyDefinition? { lock.withLock { entries[key] } }
    func set(_ key: String, _ value: StudyDefinition) { lock.withLock { entries[key] = value } }
}
