import ArgumentParser
import NIOCore
import NIOPosix
import Foundation
import TrialDomain
import TrialStandards
import TrialStore
import TrialWeb

@main
struct Casebook: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "casebook",
        abstract: "Clinical-trial data capture and trial management.",
        discussion: "Every command reads the same environment: "
            + AppConfig.variables.map { "\($0.name) (\($0.meaning))" }.joined(separator: "; "),
        subcommands: [Serve.self, Migrate.self, Users.self, Sites.self, Tokens.self, Audit.self, Study.self, Randomization.self, Grade.self, Score.self, Terminology.self, Demo.self, DataLockCommand.self, Export.self, Report.self, BackupCommand.self, RestoreCommand.self, StoppingRuleCommand.self, BenchServer.self, BenchAudit.self, TestServer.self])

    /// Async code runs on the event loop threads instead of a second pool of its own: a request's handler then
    /// resumes where its I/O completes, without a thread switch each way (lab saves at 64 connections ~4,500/s → ~5,100/s,
    /// and steadier; demo 10,000 60 s → 53 s). Must come before any other concurrency code. Blocking work (bcrypt)
    /// goes to the application's thread pool.
    static func main() async {
        _ = NIOSingletons.unsafeTryInstallSingletonPosixEventLoopGroupAsConcurrencyGlobalExecutor()
        do {
            var command = try parseAsRoot()
            if var asyncCommand = command as? any AsyncParsableCommand { try await asyncCommand.run() } else { try command.run() }
        } catch {
            exit(withError: error)
        }
    }
}

struct Serve: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Start the pages and the JSON API (migrates the database first).")

    @Option(help: "Address to bind (default CASEBOOK_HOSTNAME or 127.0.0.1).") var hostname: String?
    @Option(help: "Port to listen on (default CASEBOOK_PORT or 8080).") var port: Int?

    func run() async throws {
        var config = try Runtime.config()
        if let hostname { config.hostname = hostname }
        if let port {
            guard (1...65535).contains(port) else { throw ValidationError("--port must be from 1 to 65535") }
            config.port = port
        }
        try await Runtime.serve(config)
    }
}

struct Migrate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Bring the database schema up to date, or revert the last batch.")
    @Flag(help: "Revert the last batch of migrations instead.") var revert = false

    func run() async throws {
        try await Runtime.withStore(migrate: false) { store, config in
            if revert {
                try await store.revertLastBatch()
                print("Reverted the last migration batch on \(config.database.redacted).")
            } else {
                try await store.migrate()
                print("Database \(config.database.redacted) is up to date.")
            }
        }
    }
}

struct Users: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Manage user accounts.", subcommands: [Create.self, Update.self, List.self])

    struct Update: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Change a user's role, sites or active state; the reason goes into the audit trail.")
        @Option(help: "Whose account.") var username: String
        @Option(help: "New role.") var role: String?
        @Option(name: .customLong("add-site"), help: "Site code to add (repeatable).") var addSites: [String] = []
        @Option(name: .customLong("remove-site"), help: "Site code to remove (repeatable).") var removeSites: [String] = []
        @Flag(help: "Disable the account and end its sessions.") var deactivate = false
        @Flag(help: "Enable a disabled account.") var activate = false
        @Option(help: "Why the change is made (required).") var reason: String

        func run() async throws {
            var parsedRole: Role?
            if let role {
                guard let r = Role(parsing: role) else {
                    throw ValidationError("--role must be one of \(Role.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                parsedRole = r
            }
            if deactivate && activate { throw ValidationError("--activate and --deactivate cannot both be given") }
            let change = AccountChange(
                role: parsedRole, addSites: addSites, removeSites: removeSites, isActive: deactivate ? false : (activate ? true : nil))
            try await Runtime.withStore { store, _ in
                do {
                    let account = try await FluentAccountRepository(store: store).updateUser(
                        username, change: change, actor: Runtime.actor, reason: reason, now: Date())
                    print("Updated \(account.username): \(account.role.rawValue), \(account.isActive ? "active" : "disabled").")
                } catch let error as StoreError {
                    throw Runtime.fail(error.description)
                }
            }
        }
    }

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a user; the password is read from standard input (at least \(Passwords.minimumLength) characters).")
        @Option(help: "Login name.") var username: String
        @Option(help: "One of: \(Role.allCases.map(\.rawValue).joined(separator: ", ")).") var role: String
        @Option(name: .customLong("site"), help: "Site code the user belongs to (repeat for several; not needed for an admin).")
        var sites: [String] = []

        func run() async throws {
            guard let role = Role(parsing: role) else {
                throw ValidationError("--role must be one of \(Role.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            let password = try PasswordInput.read()
            try await Runtime.withStore { store, config in
                do {
                    let hash = try Passwords.hash(password, cost: config.bcryptCost)
                    let account = try await FluentAccountRepository(store: store).createUser(
                        username: username, passwordHash: hash, role: role, siteCodes: sites, actor: Runtime.actor, now: Date())
                    print("Created \(account.role.rawValue) \(account.username)" + (sites.isEmpty ? "." : " at \(sites.joined(separator: ", "))."))
                } catch let error as StoreError {
                    throw Runtime.fail(error.description)
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List user accounts.")
        func run() async throws {
            try await Runtime.withStore { store, _ in
                let repository = FluentAccountRepository(store: store)
                let sites = Dictionary(uniqueKeysWithValues: try await repository.sites().map { ($0.id, $0.code) })
                for account in try await repository.accounts() {
                    let codes = account.siteIDs.compactMap { sites[$0] }.sorted().joined(separator: ",")
                    print("\(account.username)\t\(account.role.rawValue)\t\(codes)")
                }
            }
        }
    }
}

struct Sites: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Manage sites.", subcommands: [Create.self, List.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create a site.")
        @Option(help: "Short code: letters, digits, '-' and '_'.") var code: String
        @Option(help: "Full name.") var name: String

        func run() async throws {
            try await Runtime.withStore { store, _ in
                do {
                    let site = try await FluentAccountRepository(store: store).createSite(code: code, name: name, actor: Runtime.actor, now: Date())
                    print("Created site \(site.code) (\(site.name)).")
                } catch let error as StoreError {
                    throw Runtime.fail(error.description)
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List sites.")
        func run() async throws {
            try await Runtime.withStore { store, _ in
                for site in try await FluentAccountRepository(store: store).sites() { print("\(site.code)\t\(site.name)") }
            }
        }
    }
}

struct Tokens: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Manage API tokens.", subcommands: [Create.self])

    struct Create: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Create an API token for a user and print it (shown only once).")
        @Option(help: "Whose token.") var username: String
        @Option(help: "A name to tell the token apart.") var name: String = "cli"

        func run() async throws {
            try await Runtime.withStore { store, _ in
                let repository = FluentAccountRepository(store: store)
                guard let account = try await repository.account(username: username) else {
                    throw Runtime.fail("username: no user '\(username)'")
                }
                do {
                    print(try await TokenIssuer.issue(for: account, name: name, accounts: repository, now: Date()).token)
                } catch let error as StoreError {
                    throw Runtime.fail(error.description)
                }
            }
        }
    }
}

struct Audit: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Check the audit trail.", subcommands: [Verify.self])

    struct Verify: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Recompute the hash chain; exit 1 naming the first broken event.")
        func run() async throws {
            try await Runtime.withStore { store, _ in
                let result = try await AuditChain.verify(on: store.database)
                if let broken = result.broken {
                    throw Runtime.fail("audit trail broken at event \(broken.sequence): \(broken.problem) (\(result.checked) events before it are intact)")
                }
                // The data too: each participant, form, lab result and adverse event as its events say.
                let rows = try await RowVerification.verify(on: store.database)
                if !rows.differences.isEmpty {
                    let listed = rows.differences.map { "  " + $0.description }.joined(separator: "\n")
                    throw Runtime.fail("the audit trail is intact (\(result.checked) events), but data rows differ from it:\n\(listed)")
                }
                print("Audit trail intact: \(result.checked) events verified; \(rows.rowsChecked) data rows match them.")
            }
        }
    }
}

/// Reads a password from standard input, without echo when it is a terminal.
enum PasswordInput {
    static func read() throws -> String {
        let terminal = isatty(STDIN_FILENO) == 1
        if terminal {
            FileHandle.standardError.write(Data("Password: ".utf8))
            var settings = termios()
            tcgetattr(STDIN_FILENO, &settings)
            let saved = settings
            settings.c_lflag &= ~tcflag_t(ECHO)
            tcsetattr(STDIN_FILENO, TCSANOW, &settings)
            defer {
                var restore = saved
                tcsetattr(STDIN_FILENO, TCSANOW, &restore)
                FileHandle.standardError.write(Data("\n".utf8))
            }
            guard let line = readLine(strippingNewline: true) else { throw Runtime.fail("password: nothing was entered") }
            return line
        }
        guard let line = readLine(strippingNewline: true), !line.isEmpty else {
            throw Runtime.fail("password: read from standard input, and none was given")
        }
        return line
    }
}

struct Study: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The study definition: show, validate, import from a registry record, publish amendments.",
        subcommands: [Show.self, Validate.self, Import.self, Init.self, Publish.self, Status.self, Operating.self])

    struct Show: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Print the study definition in force.")
        @Flag(help: "Print the definition as JSON.") var json = false

        func run() async throws {
            try await Runtime.withStore { store, _ in
                guard let study = try await FluentStudyRepository(store: store).current() else { throw Runtime.fail("no study is loaded") }
                if json {
                    print(try StudyFile.json(study))
                } else {
                    print(StudySummary.text(study))
                }
            }
        }
    }

    struct Validate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Check a definition file; print every problem with its path and rule.")
        @Argument(help: "A YAML or JSON study definition.") var file: String

        func run() async throws {
            let text = try StudyCommands.read(file)
            do {
                let study = try StudyFile.read(text)
                print("\(file): valid (study \(study.code), version \(study.version)).")
            } catch let error as StudyFile.ReadError {
                for problem in error.problems { FileHandle.standardError.write(Data("\(file): \(problem)\n".utf8)) }
                throw ExitCode(1)
            }
        }
    }

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Turn a registry record (plain text, or ClinicalTrials.gov API v2 JSON) into a draft definition.")
        @Argument(help: "The registry record.") var file: String
        @Option(help: "Where to write the draft (YAML).") var output: String

        func run() async throws {
            let text = try StudyCommands.read(file)
            let draft: RegistryDraft
            do {
                draft = try RegistryImport.draft(from: text, source: URL(fileURLWithPath: file).lastPathComponent)
            } catch let error as RegistryImportError {
                throw Runtime.fail("\(file): \(error)")
            }
            try draft.yaml().write(toFile: output, atomically: true, encoding: .utf8)
            print("Wrote draft \(output). To do before it can be published:")
            for todo in draft.todos { print("  - \(todo)") }
        }
    }

    struct Publish: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Publish a definition file as the next version; data collected under earlier versions keeps its version.")
        @Argument(help: "A YAML or JSON study definition whose version is the next one.") var file: String
        @Option(help: "Why the protocol changes (required for an amendment).") var reason: String?

        func run() async throws {
            let study: StudyDefinition
            do {
                study = try StudyFile.read(try StudyCommands.read(file))
            } catch let error as StudyFile.ReadError {
                throw Runtime.fail("\(file): \(error.problems.map(\.description).joined(separator: "; "))")
            }
            try await StudyCommands.publish(study, reason: reason)
        }
    }

    struct Init: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Publish a definition file as version 1 of this database's study: on a database with no study, or with only the unused built-in one.")
        @Argument(help: "A YAML or JSON study definition with version 1.") var file: String

        func run() async throws {
            let study: StudyDefinition
            do {
                study = try StudyFile.read(try StudyCommands.read(file))
            } catch let error as StudyFile.ReadError {
                for problem in error.problems { FileHandle.standardError.write(Data("\(file): \(problem)\n".utf8)) }
                throw ExitCode(1)
            }
            try await Runtime.withStore { store, _ in
                do {
                    let info = try await FluentStudyRepository(store: store).initialize(study, actor: Runtime.actor, now: Date())
                    print("Initialised study \(study.code) version \(info.version) (\(study.lifecycle.operatingStatus.rawValue)).")
                } catch let error as StoreError {
                    throw Runtime.fail(error.description)
                }
            }
        }
    }

    struct Operating: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Record a change of the study's operating status (which governs enrolment), as a new version of the definition.")
        @Argument(help: "One of: \(OperatingStatus.allCases.map(\.rawValue).joined(separator: ", ")).") var status: String
        @Option(help: "Date of the change, yyyy-MM-dd.") var date: String
        @Option(help: "Why; required for suspended, closed_to_enrolment and withdrawn.") var reason: String?

        func run() async throws {
            guard let status = OperatingStatus(rawValue: status) else {
                throw ValidationError("status must be one of \(OperatingStatus.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            try await Runtime.withStore { store, _ in
                guard var study = try await FluentStudyRepository(store: store).current() else { throw Runtime.fail("no study is loaded") }
                study.version += 1
                study.lifecycle.operating = (study.lifecycle.operating ?? []) + [OperatingChange(status: status, date: date, reason: reason)]
                let problems = StudyValidator.problems(in: study)
                guard problems.isEmpty else { throw Runtime.fail(problems.map(\.description).joined(separator: "; ")) }
                try await StudyCommands.publish(study, reason: reason ?? "operating status changed to \(status.rawValue)", store: store)
            }
        }
    }

    struct Status: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Record a change of the study's registry status (a fact shown, not a control), as a new version of the definition.")
        @Argument(help: "One of: \(StudyStatus.allCases.map(\.rawValue).joined(separator: ", ")).") var status: String
        @Option(help: "Date of the change, yyyy-MM-dd.") var date: String
        @Option(help: "Why; required for suspended, terminated and withdrawn.") var reason: String?

        func run() async throws {
            guard let status = StudyStatus(rawValue: status) else {
                throw ValidationError("status must be one of \(StudyStatus.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            try await Runtime.withStore { store, _ in
                guard var study = try await FluentStudyRepository(store: store).current() else { throw Runtime.fail("no study is loaded") }
                study.version += 1
                study.lifecycle.history.append(try StudyCommands.statusChange(status, date: date, reason: reason))
                try await StudyCommands.publish(study, reason: reason ?? "status changed to \(status.rawValue)", store: store)
            }
        }
    }
}

enum StudyCommands {
    static func read(_ path: String) throws -> String {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { throw Runtime.fail("\(path): cannot be read") }
        return text
    }

    static func statusChange(_ status: StudyStatus, date: String, reason: String?) throws -> StatusChange {
        try JSONDecoder().decode(StatusChange.self, from: JSONEncoder().encode(["status": status.rawValue, "date": date, "reason": reason]))
    }

    static func publish(_ study: StudyDefinition, reason: String?, store: Store? = nil) async throws {
        let work: (Store) async throws -> Void = { store in
            do {
                let info = try await FluentStudyRepository(store: store).publish(study, actor: Runtime.actor, reason: reason, now: Date())
                print("Published study \(study.code) version \(info.version).")
            } catch let error as StoreError {
                throw Runtime.fail(error.description)
            }
        }
        if let store { try await work(store) } else { try await Runtime.withStore { store, _ in try await work(store) } }
    }
}

struct Randomization: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "The concealed allocation list (the statistician's): generate it when the study goes live, export it.",
        subcommands: [Generate.self, List.self])

    struct Generate: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Generate the allocation list once; prints the seed that reproduces it.")
        @Option(help: "64 hexadecimal digits; drawn from the system's generator when absent.") var seed: String?
        @Option(help: "A later randomization's code (the one at enrolment when absent).") var randomization: String?

        func run() async throws {
            try await Runtime.withStore { store, _ in
                do {
                    let repository = FluentScreeningRepository(store: store)
                    let result =
                        if let randomization {
                            try await repository.generateStageList(randomization: randomization, seedHex: seed, actor: Runtime.actor, now: Date())
                        } else {
                            try await repository.generateList(seedHex: seed, actor: Runtime.actor, now: Date())
                        }
                    print("Generated \(result.slots) positions. Seed (keep it with the statistician): \(result.seed)")
                } catch let error as StoreError {
                    throw Runtime.fail(error.description)
                }
            }
        }
    }

    struct List: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Export the allocation list as CSV (stratum, position, block, block size, arm, allocated).")
        func run() async throws {
            try await Runtime.withStore { store, _ in
                guard let list = try await FluentScreeningRepository(store: store).listSlots() else { throw Runtime.fail("no allocation list has been generated") }
                print("stratum,position,block,block_size,arm,participant_id,allocated_at")
                for slot in list.slots {
                    print([slot.stratum, String(slot.position), String(slot.block), String(slot.blockSize), slot.arm,
                           slot.participantID?.uuidString ?? "", slot.allocatedAt.map(AuditEntry.timestamp) ?? ""].joined(separator: ","))
                }
            }
        }
    }
}

struct Terminology: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Import controlled terminology.", subcommands: [Import.self])

    struct Import: AsyncParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Import NCI's CTCAE table (CSV); a malformed file is refused whole, naming the line.")
        @Argument(help: "The catalogue: ctcae.") var catalogue: String
        @Argument(help: "NCI's CTCAE CSV file.") var file: String
        @Option(help: "CTCAE version of the file (4.03 or 5.0); read from the file name when absent.") var version: String?

        func run() async throws {
            guard catalogue == "ctcae" else { throw inputError("catalogue: only ctcae can be imported") }
            let text = try StudyCommands.read(file)
            let name = URL(fileURLWithPath: file).lastPathComponent
            guard let version = version ?? (name.contains("5.0") ? "5.0" : (name.contains("4.03") ? "4.03" : nil)) else {
                throw inputError("--version: give 4.03 or 5.0; the file name does not say")
            }
            let terms: [CTCAETerm]
            do { terms = try CTCAECatalogue.parse(text, version: version) } catch let error as CatalogueError { throw Runtime.fail("\(file): \(error)") }
            try await Runtime.withStore { store, _ in
                let count = try await FluentSafetyRepository(store: store, tables: try GradingTables.builtIn())
                    .importTerms(terms, version: version, actor: Runtime.actor, now: Date())
                print("Imported \(count) CTCAE v\(version) terms.")
            }
        }
    }
}
