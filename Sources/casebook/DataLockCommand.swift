import ArgumentParser
import Foundation
import TrialDomain
import TrialStore

/// Freezes and locks from the command line, for the data manager who closes a database for analysis.
struct DataLockCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "lock", abstract: "Freeze or lock data (a data manager's): the study, a site, a participant, a visit or a form.",
        subcommands: [Create.self, List.self, Release.self])

    /// The data manager acting: a CLI change is attributed to a named account holding that role.
    static func scope(_ username: String, store: Store) async throws -> AccessScope {
        guard let account = try await FluentAccountRepository(store: store).account(username: username), account.isActive else {
            throw Runtime.fail("--user: no active account '\(username)'")
        }
        return AccessScope(actor: account.username, siteIDs: account.siteIDs, role: account.role)
    }

    static func describe(_ error: any Error) -> String? {
        switch error {
        case let error as StoreError: error.description
        case let error as LockRefusal: error.description
        default: nil
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Freeze (data entry stops, review goes on) or lock (everything stops).")
        @Option(help: "freeze or lock.") var kind: String = "lock"
        @Option(help: "study, site, participant, visit or form.") var level: String
        @Option(help: "Site code, for a site lock.") var site: String?
        @Option(help: "Participant id, for a participant, visit or form lock.") var participant: String?
        @Option(help: "Visit code, for a visit or form lock.") var visit: String?
        @Option(help: "Form code, for a form lock.") var form: String?
        @Option(help: "Why (required; goes into the audit trail).") var reason: String
        @Option(help: "The data manager's username.") var user: String

        func run() async throws {
            guard let kind = LockKind(rawValue: kind) else { throw Runtime.fail("--kind: must be freeze or lock") }
            guard let level = LockLevel(rawValue: level) else {
                throw Runtime.fail("--level: must be one of \(LockLevel.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            var participantID: UUID?
            if let participant {
                guard let id = UUID(uuidString: participant) else { throw Runtime.fail("--participant: must be a participant id (UUID)") }
                participantID = id
            }
            try await Runtime.withStore { store, _ in
                let scope = try await DataLockCommand.scope(user, store: store)
                do {
                    let lock = try await FluentLockRepository(store: store).lock(
                        LockInput(kind: kind, level: level, siteCode: site, participantID: participantID, visit: visit, form: form, reason: reason),
                        scope: scope, now: Date())
                    print("\(lock.kind == .lock ? "Locked" : "Froze") \(lock.title) (id \(lock.id.uuidString))" + (lock.datasetHash.map { "; dataset SHA-256 \($0)" } ?? ""))
                } catch {
                    guard let message = DataLockCommand.describe(error) else { throw error }
                    throw Runtime.fail(message)
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Freezes and locks in force.")
        func run() async throws {
            try await Runtime.withStore { store, _ in
                let sites = try await FluentAccountRepository(store: store).sites()
                let everywhere = AccessScope(actor: Runtime.actor, siteIDs: Set(sites.map(\.id)))
                for lock in try await FluentLockRepository(store: store).locks(scope: everywhere) {
                    print([lock.id.uuidString, lock.kind.rawValue, lock.level.rawValue, lock.participantID?.uuidString ?? "", lock.visit ?? "", lock.form ?? "",
                           lock.lockedBy, AuditEntry.timestamp(lock.lockedAt), lock.reason].joined(separator: "\t"))
                }
            }
        }
    }

    struct Release: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Lift a freeze or lock.")
        @Argument(help: "The lock's id.") var id: String
        @Option(help: "Why (required; goes into the audit trail).") var reason: String
        @Option(help: "The data manager's username.") var user: String

        func run() async throws {
            guard let lockID = UUID(uuidString: id) else { throw Runtime.fail("id: must be a lock id (UUID)") }
            try await Runtime.withStore { store, _ in
                let scope = try await DataLockCommand.scope(user, store: store)
                do {
                    try await FluentLockRepository(store: store).unlock(id: lockID, reason: reason, scope: scope, now: Date())
                    print("Released \(lockID.uuidString)")
                } catch {
                    guard let message = DataLockCommand.describe(error) else { throw error }
                    throw Runtime.fail(message)
                }
            }
        }
    }
}
