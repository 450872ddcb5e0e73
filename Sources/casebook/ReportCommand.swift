import ArgumentParser
import Foundation
import TrialDomain
import TrialStore
import TrialWeb

/// Reports for the data monitoring committee, written as one HTML file that prints well.
struct Report: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Write a report of the trial.", subcommands: [DSMB.self])

    struct DSMB: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "dsmb",
            abstract: "The DSMB report: the open session pools the arms (enrolment, CONSORT, completeness, pooled safety); the closed session shows them.")
        @Option(help: "open or closed.") var session: String
        @Option(help: "The HTML file to write (replaced whole, or left as it was if the report fails).") var output: String

        func run() async throws {
            guard let session = ReportSession(rawValue: session) else { throw Runtime.fail("--session must be open or closed, not '\(session)'") }
            let url = URL(fileURLWithPath: output)
            try await Runtime.withStore { store, _ in
                guard let study = try await FluentStudyRepository(store: store).current() else { throw Runtime.fail("no study is loaded") }
                let sites = try await FluentAccountRepository(store: store).sites()
                let everywhere = AccessScope(actor: Runtime.actor, siteIDs: Set(sites.map(\.id)))
                let now = Date()
                let started = Date()
                // A crossing found now is raised as the server would raise it.
                let raised = try await SafetyMonitorService.evaluate(store: store, study: study, now: now)
                let html = try await ReportDocument.dsmb(store: store, study: study, scope: everywhere, session: session, now: now)
                try await Exports.atomically(to: url) { handle in try handle.write(contentsOf: Data(html.utf8)) }
                try await FluentAnalysisRepository(store: store).recordReport("dsmb", session: session.rawValue, scope: everywhere, now: now)
                for rule in raised { print("Stopping rule \(rule): boundary crossed; alert raised.") }
                print("Wrote \(output): DSMB report, \(session.rawValue) session (\(String(format: "%.1f", Date().timeIntervalSince(started))) s)")
            }
        }
    }
}
