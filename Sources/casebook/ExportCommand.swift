import ArgumentParser
import Foundation
import TrialDomain
import TrialStandards
import TrialStore
import TrialWeb

/// Standard exports of every participant, written as they are read.
struct Export: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Export the trial's data in a standard form.", subcommands: [SDTM.self, ODM.self, FHIR.self])

    struct SDTM: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "sdtm", abstract: "SDTM datasets as SAS transport (XPORT v5) files, one per domain, with their Define-XML 2.1.")
        @Option(help: "The folder to write into (its datasets are replaced only once all are written).") var output: String
        @Flag(help: "The blinded form: no arms in DM, no TA, doses as collected (EC) instead of EX.") var blinded = false

        func run() async throws {
            try await Runtime.withStore { store, _ in
                guard let study = try await FluentStudyRepository(store: store).current() else { throw Runtime.fail("no study is loaded") }
                let sites = try await FluentAccountRepository(store: store).sites()
                let everywhere = AccessScope(actor: Runtime.actor, siteIDs: Set(sites.map(\.id)))
                let started = Date()
                let counts: [String: Int]
                do {
                    counts = try await Exports.sdtm(store: store, study: study, scope: everywhere, blinded: blinded, directory: URL(fileURLWithPath: output))
                } catch let error as XPORTError {
                    throw Runtime.fail("sdtm: \(error)")
                } catch let error as SDTMError {
                    throw Runtime.fail("sdtm: \(error)")
                }
                let summary = counts.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
                print("Wrote \(output): \(summary) (\(String(format: "%.1f", Date().timeIntervalSince(started))) s)")
            }
        }
    }

    struct ODM: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "odm", abstract: "A CDISC ODM 1.3.2 Snapshot: the study's metadata, every subject's forms and lab results with their audit records, and signatures.")
        @Option(help: "The XML file to write (replaced whole, or left as it was if the export fails).") var output: String
        @Flag(help: "Leave out arms, as a blinded reader gets it.") var blinded = false

        func run() async throws {
            let url = URL(fileURLWithPath: output)
            try await Runtime.withStore { store, _ in
                guard let study = try await FluentStudyRepository(store: store).current() else { throw Runtime.fail("no study is loaded") }
                let sites = try await FluentAccountRepository(store: store).sites()
                let everywhere = AccessScope(actor: Runtime.actor, siteIDs: Set(sites.map(\.id)))
                let started = Date()
                var subjects = 0
                do {
                    try await Exports.atomically(to: url) { handle in
                        subjects = try await Exports.odm(store: store, study: study, scope: everywhere, blinded: blinded) { try handle.write(contentsOf: Data($0)) }
                    }
                } catch let error as ODMError {
                    throw Runtime.fail("odm: \(error)")
                }
                print("Wrote \(output): \(subjects) subjects (\(String(format: "%.1f", Date().timeIntervalSince(started))) s)")
            }
        }
    }

    struct FHIR: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "fhir", abstract: "An HL7 FHIR R4 collection Bundle: ResearchStudy, ResearchSubject, Patient (pseudonymous), Observation, AdverseEvent, MedicationAdministration.")
        @Option(help: "The JSON file to write (replaced whole, or left as it was if the export fails).") var output: String
        @Flag(help: "Leave out arms and what was given, as a blinded reader gets it.") var blinded = false
        @Option(help: "This deployment's base URI, for identifier systems and stable ids.") var base = "https://casebook.invalid/fhir"

        func run() async throws {
            let url = URL(fileURLWithPath: output)
            try await Runtime.withStore { store, _ in
                guard let study = try await FluentStudyRepository(store: store).current() else { throw Runtime.fail("no study is loaded") }
                let sites = try await FluentAccountRepository(store: store).sites()
                let everywhere = AccessScope(actor: Runtime.actor, siteIDs: Set(sites.map(\.id)))
                let started = Date()
                var counts: [String: Int] = [:]
                do {
                    try await Exports.atomically(to: url) { handle in
                        counts = try await Exports.fhir(store: store, study: study, scope: everywhere, blinded: blinded, base: base) { try handle.write(contentsOf: $0) }
                    }
                } catch let error as FHIRExportError {
                    throw Runtime.fail("fhir: \(error)")
                }
                let summary = counts.sorted { $0.key < $1.key }.map { "\($0.value) \($0.key)" }.joined(separator: ", ")
                print("Wrote \(output): \(summary) (\(String(format: "%.1f", Date().timeIntervalSince(started))) s)")
            }
        }
    }
}
