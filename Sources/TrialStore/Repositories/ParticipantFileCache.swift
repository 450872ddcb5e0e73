import FluentKit
import FluentSQL
import Foundation
import TrialDomain

/// Decoded participant files kept between requests. An entry is used only while the participant's revision and the
/// current study version's hash are those it was read at, so a change from any process (every write to a file
/// raises the revision in its own transaction) is seen by the next read.
final class ParticipantFileCache: @unchecked Sendable {
    static let shared = ParticipantFileCache()
    /// Bounds memory: about 10 kB a file.
    static let capacity = 20_000

    /// Keyed by participant id alone: ids are random UUIDs, so two databases in one process never share one.
    typealias Key = UUID

    private let lock = NSLock()
    private var entries: [Key: (revision: Int64, studyHash: String, file: ParticipantFile)] = [:]
    /// Reads under way: requests that miss together (a burst of saves for one participant) share one read.
    private var loading: [Key: (revision: Int64, studyHash: String, task: Task<ParticipantFile, any Error>)] = [:]

    /// Drops what is kept for a participant whose file changed without a new revision (a screening lab result that a
    /// criterion reads), so the next read in this process reads it anew.
    func forget(_ key: Key) {
        lock.withLock {
            entries[key] = nil
            loading[key] = nil
        }
    }

    /// The file at this revision and study version: kept, being read by another request, or read now by `load`.
    func file(
        _ key: Key, revision: Int64, studyHash: String, load: @escaping @Sendable () async throws -> ParticipantFile
    ) async throws -> ParticipantFile {
        enum Found { case kept(ParticipantFile), reading(Task<ParticipantFile, any Error>) }
        let found: Found = lock.withLock {
            if let file = kept(key, revision: revision, studyHash: studyHash) { return .kept(file) }
            if let pending = loading[key], pending.revision == revision, pending.studyHash == studyHash { return .reading(pending.task) }
            let task = Task {
                do {
                    let file = try await load()
                    self.finish(key, revision: revision, studyHash: studyHash, file: file)
                    return file
                } catch {
                    self.finish(key, revision: revision, studyHash: studyHash, file: nil)
                    throw error
                }
            }
            loading[key] = (revision, studyHash, task)
            return .reading(task)
        }
        switch found {
        case .kept(let file): return file
        case .reading(let task): return try await task.value
        }
    }

    private func finish(_ key: Key, revision: Int64, studyHash: String, file: ParticipantFile?) {
        lock.withLock {
            if let pending = loading[key], pending.revision == revision, pending.studyHash == studyHash { loading[key] = nil }
            // A slow read never replaces a newer one.
            guard let file, entries[key].map({ $0.revision <= revision }) ?? true else { return }
            if entries.count >= Self.capacity { entries.removeAll(keepingCapacity: true) }
            entries[key] = (revision, studyHash, file)
        }
    }

    /// A participant's file with the revision and study version hash it was read at.
    typealias State = (file: ParticipantFile, revision: Int64, studyHash: String?)
    /// Reads of a participant's revision and file under way for writes that found nothing kept.
    private var reading: [Key: Task<State, any Error>] = [:]

    /// The newest file kept for the participant; else the one a read under way finds; else what `read` finds. A burst
    /// of writes for one participant not yet kept (a morning's labs) so reads its revision once, not once each. The
    /// caller's write checks revision and study version again inside its transaction, so a state read for another
    /// request serves it too; should that read fail (another user's scope), the caller reads for itself.
    func latest(_ key: Key, read: @escaping @Sendable () async throws -> State) async throws -> State {
        enum Found { case kept(State), shared(Task<State, any Error>), own(Task<State, any Error>) }
        let found: Found = lock.withLock {
            if let entry = entries[key] { return .kept((entry.file, entry.revision, entry.studyHash)) }
            if let task = reading[key] { return .shared(task) }
            let task = Task {
                defer { self.lock.withLock { _ = self.reading.removeValue(forKey: key) } }
                return try await read()
            }
            reading[key] = task
            return .own(task)
        }
        switch found {
        case .kept(let state): return state
        case .own(let task): return try await task.value
        case .shared(let task):
            if let state = try? await task.value { return state }
            return try await read()
        }
    }

    func get(_ key: Key, revision: Int64, studyHash: String) -> ParticipantFile? {
        lock.withLock { kept(key, revision: revision, studyHash: studyHash) }
    }

    /// Call holding the lock.
    private func kept(_ key: Key, revision: Int64, studyHash: String) -> ParticipantFile? {
        guard let entry = entries[key], entry.revision == revision, entry.studyHash == studyHash else { return nil }
        return entry.file
    }
}

enum ParticipantRevision {
    /// A file read before the write may stand in for reading it inside only if no write to it came in between (the
    /// revision is the one it was read at) and it was read under the study version the save uses.
    static func stillCurrent(_ before: (file: ParticipantFile, revision: Int64)?, revision: Int64, study: StudyDefinition) -> ParticipantFile? {
        guard let before, before.revision == revision, before.file.study.version == study.version else { return nil }
        return before.file
    }

    /// Raises the participant's revision, in the write that changes its file, and tells in the same statement the
    /// site, the revision before it and the current study version's hash; not found outside the scope or once deleted.
    /// Refused (`LockRefusal`) when a freeze or lock covers the participant, or the visit and each of `forms` there;
    /// `attempted` names the write in the audit trail, nil only for an emergency unblinding, which no lock may stop.
    static func claim(
        _ participantID: UUID, scope: AccessScope, visit: String? = nil, forms: [String] = [], attempted: String?, on tx: any Database
    ) async throws -> (siteID: UUID, revision: Int64, studyHash: String?) {
        guard
            let row = try await (tx as! any SQLDatabase).raw("""
                UPDATE participants SET revision = revision + 1 WHERE id = \(bind: participantID) AND deleted_at IS NULL
                RETURNING site_id, revision, (SELECT definition_hash FROM study_versions ORDER BY version DESC LIMIT 1) AS study_hash
                """).first(),
            case let siteID = try row.decode(column: "site_id", as: UUID.self), scope.siteIDs.contains(siteID)
        else { throw StoreError.notFound(entity: "participant", id: participantID.uuidString) }
        guard let attempted else {
            return (siteID, try row.decode(column: "revision", as: Int64.self) - 1, try row.decode(column: "study_hash", as: String?.self))
        }
        if forms.isEmpty {
            try await LockCheck.require(
                WriteTarget(siteID: siteID, participantID: participantID, visit: visit), kind: .data, actor: scope.actor, attempted: attempted, on: tx)
        }
        for form in forms {
            try await LockCheck.require(
                WriteTarget(siteID: siteID, participantID: participantID, visit: visit, form: form), kind: .data, actor: scope.actor, attempted: attempted, on: tx)
        }
        return (siteID, try row.decode(column: "revision", as: Int64.self) - 1, try row.decode(column: "study_hash", as: String?.self))
    }

    /// Call in the transaction of every write that changes what `ParticipantFile` holds.
    static func bump(_ participantID: UUID, on tx: any Database) async throws {
        try await (tx as! any SQLDatabase).raw("UPDATE participants SET revision = revision + 1 WHERE id = \(bind: participantID)").run()
    }
}
