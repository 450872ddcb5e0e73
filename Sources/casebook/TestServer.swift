import ArgumentParser
import Foundation
import TrialDomain
import TrialWeb

/// Tests only: `serve` with the clinical clock read from a file the test writes (an instant such as
/// 2026-03-01T10:00Z), so a browser test can walk a participant through weeks of visits in minutes. Hidden, and never
/// what `casebook serve` runs: that always uses the system clock. Sign-in and sessions keep the system clock here too.
struct TestServer: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "serve-test-clock", abstract: "Tests only: serve with the clinical clock read from --clock-file.", shouldDisplay: false)
    @Option(help: "Port to listen on.") var port: Int
    @Option(help: "A file holding the instant the clinical clock reads; the system clock while it is empty or missing.") var clockFile: String

    func run() async throws {
        var config = try Runtime.config()
        config.port = port
        let path = clockFile
        config.clock = {
            guard let text = try? String(contentsOfFile: path, encoding: .utf8),
                let instant = DateParsing.instant(text.trimmingCharacters(in: .whitespacesAndNewlines))
            else { return Date() }
            return instant
        }
        try await Runtime.serve(config)
    }
}
