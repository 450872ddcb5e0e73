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

    func get(_ key: Key, revision: Int64, studyHash: String) -> ParticipantFile? {
        lock.withLock {
            guard let entry = entries[key], entry.revision == revision, entry.studyHash == studyHash else { return nil }
            return entry.file
        }
    }

    func set(_ key: Key, revision: Int64, studyHash: String, file: ParticipantFile) {
        lock.withLock {
            if entries.count >= Self.capacity { entries.removeAll(keepingCapacity: true) }
            entries[key] = (revision, studyHash, file)
        }
    }
}

enum ParticipantRevision {
    /// Call in the transaction of every write that changes what `ParticipantFile` holds.
    static func bump(_ participantID: UUID, on tx: any Database) async throws {
        try await (tx as! any SQLDatabase).raw("UPDATE participants SET revision = revision + 1 WHERE id = \(bind: participantID)").run()
    }
}
