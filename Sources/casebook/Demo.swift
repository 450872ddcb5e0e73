import ArgumentParser
import Foundation
import TrialDomain
import TrialStandards
import TrialStore

/// `casebook demo`: a synthetic ACLF-LT trial entered through the same repositories, rules and audit trail as real entry.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fill the database with a synthetic trial: screening, consent, allocation, infusions, labs to month 6, adverse events.")
    @Option(help: "How many patients to screen.") var participants: Int = 50
    @Option(help: "Same seed, same trial.") var seed: UInt64 = 1

    func run() async throws {
        guard (1...100_000).contains(participants) else { throw inputError("--participants: must be from 1 to 100000") }
        let started = Date()
        try await Runtime.withStore { store, _ in
            var demo = DemoTrial(store: store, seed: seed)
            let summary = try await demo.fill(participants: participants)
            print(summary + String(format: " (%.1f s)", Date().timeIntervalSince(started)))
        }
    }
}

struct DemoTrial {
    let store: Store
    var rng: ChaCha20Generator

    init(store: Store, seed: UInt64) {
        self.store = store
        var bytes = [UInt8](repeating: 0, count: 32)
        for i in 0..<8 { bytes[i] = UInt8(truncatingIfNeeded: seed >> (8 * UInt64(i))) }
        rng = ChaCha20Generator(seed: bytes)
    }

    mutating func uniform(_ range: ClosedRange<Double>) -> Double {
        range.lowerBound + Double(rng.next() >> 11) / Double(1 << 53) * (range.upperBound - range.lowerBound)
    }

    mutating func chance(_ p: Double) -> Bool { uniform(0...1) < p }

    static func day(_ d: Date) -> String { String(AuditEntry.timestamp(d).prefix(10)) }
    static func minute(_ d: Date) -> String { String(AuditEntry.timestamp(d).prefix(16)) }

    mutating func fill(participants count: Int) async throws -> String {
        let studies = FluentStudyRepository(store: store)
        guard let study = try await studies.current(), let siteDef = study.sites.first,
            let site = try await FluentAccountRepository(store: store).site(code: siteDef.code)
        else { throw Runtime.fail("no study with a site is loaded") }
        let scope = AccessScope(actor: "demo", siteIDs: [site.id])
        let screening = FluentScreeningRepository(store: store)
        let forms = FluentFormRecordRepository(store: store)
        let safety = FluentSafetyRepository(store: store, tables: try GradingTables.builtIn())
        if try await screening.listSlots() == nil {
            let seedHex = AuditChain.hex((0..<32).map { _ in UInt8(truncatingIfNeeded: rng.next()) })
            // Every demo participant could fall in one stratum, so each stratum gets room for all of them.
            _ = try await screening.generateList(seedHex: seedHex, actor: "demo", now: Date(), length: max(count, 100))
        }
        let existing = try await FluentParticipantRepository(store: store).list(scope: scope).count
        let today = DateParsing.day(Self.day(Date()))!
        var failed = 0, randomized = 0, labs = 0, events = 0
        for index in 0..<count {
            let number = String(format: "DEMO-%05d", existing + index + 1)
            // Transplants spread over the past 200 days, so most participants have reached month 6.
            let transplant = today.addingTimeInterval(-86_400 * (200 - 190 * Double(index) / Double(max(count, 1))).rounded())
            let screeningDay = transplant.addingTimeInterval(-86_400 * uniform(2...20).rounded())
            let participant = try await FluentParticipantRepository(store: store).create(siteID: site.id, screeningNumber: number, scope: scope, now: screeningDay)
            // About one in six fails screening, each for a reason the protocol names.
            let failure = chance(1.0 / 6) ? Int(uniform(0...2.99)) : -1
            let bilirubin = failure == 0 ? uniform(120...165) : uniform(180...450)
            let inr = uniform(1.5...3.5)
            let meldNa = uniform(22...38).rounded()
            let values: [(String, [String: String])] = [
                ("demographics", ["screening_date": Self.day(screeningDay), "birth_date": Self.day(screeningDay.addingTimeInterval(-86_400 * 365.25 * uniform(25...58))), "sex": chance(0.3) ? "F" : "M"]),
                ("aclf", ["chronic_liver_disease": "yes", "ascites": "yes", "ascites_date": Self.day(screeningDay.addingTimeInterval(-86_400 * uniform(1...20).rounded())), "encephalopathy": chance(0.4) ? "yes" : "no",
                          "encephalopathy_date": Self.day(screeningDay.addingTimeInterval(-86_400 * 3)), "needs_transplant": "yes"]),
                ("history", ["malignancy": failure == 1 ? "yes" : "no", "active_infection": "no", "combined_transplant": "no", "retransplant": "no",
                             "ebv": "positive", "hiv": failure == 2 ? "positive" : "negative", "hcv": "negative"]),
                ("consent", ["obtained": "yes", "signed_at": Self.minute(screeningDay.addingTimeInterval(9 * 3600)), "form_version": study.consent.current]),
                ("labs", ["collected_at": Self.minute(screeningDay.addingTimeInterval(8 * 3600)), "total_bilirubin": String(format: "%.1f", bilirubin),
                          "inr": String(format: "%.2f", inr), "pt_activity": String(format: "%.0f", uniform(15...38)), "meld_na": String(format: "%.0f", meldNa)]),
            ]
            for (form, v) in values {
                _ = try await forms.save(participantID: participant.id, visit: "screening", form: form, values: v, reason: nil, scope: scope, now: screeningDay.addingTimeInterval(10 * 3600))
            }
            let decided = try await screening.decideEligibility(participantID: participant.id, scope: scope, now: screeningDay.addingTimeInterval(11 * 3600))
            guard decided.outcome == .met else {
                failed += 1
                continue
            }
            _ = try await screening.recordConsent(
                participantID: participant.id, formVersion: study.consent.current, signedAt: screeningDay.addingTimeInterval(9 * 3600), scope: scope,
                now: screeningDay.addingTimeInterval(12 * 3600))
            _ = try await forms.save(
                participantID: participant.id, visit: "transplant", form: "transplant", values: ["transplant_date": Self.day(transplant), "donor": chance(0.8) ? "deceased" : "living"],
                reason: nil, scope: scope, now: transplant.addingTimeInterval(20 * 3600))
            let allocatedAt = transplant.addingTimeInterval(86_400 * uniform(1...5).rounded() + 10 * 3600)
            let allocation = try await screening.allocate(participantID: participant.id, scope: scope, now: allocatedAt)
            randomized += 1
            var timeZero = allocatedAt
            if allocation.arm == "msc_ev" {
                let start = allocatedAt.addingTimeInterval(3600)
                _ = try await screening.recordInfusion(
                    participantID: participant.id,
                    input: InfusionInput(productLot: String(format: "EV-%04d", 1 + index / 10), particles: 1e10, volumeML: 100, startedAt: start, stoppedAt: start.addingTimeInterval(1800),
                                         rateMLPerHour: 200, interruptions: []),
                    scope: scope, now: start.addingTimeInterval(2 * 3600))
                timeZero = start
                if chance(0.15) {
                    _ = try await safety.recordAdverseEvent(
                        participantID: participant.id,
                        input: AdverseEventInput(meddra: "10016558", grade: 1, onsetAt: start.addingTimeInterval(4 * 3600), resolvedAt: start.addingTimeInterval(10 * 3600),
                                                 attribution: .possible, expected: true, actionTaken: "paracetamol", outcome: "recovered"),
                        scope: scope, now: start.addingTimeInterval(12 * 3600))
                    events += 1
                }
            }
            let assessedAt = timeZero.addingTimeInterval(24 * 3600)
            let toxic = allocation.arm == "msc_ev" && chance(0.1)
            _ = try await forms.save(
                participantID: participant.id, visit: "safety_24h", form: "toxicity_24h",
                values: ["assessed_at": Self.minute(assessedAt), "any_toxicity": toxic ? "yes" : "no", "worst_grade": toxic ? "1" : "0"],
                reason: nil, scope: scope, now: assessedAt)
            // Post-transplant course: bilirubin and INR fall from ACLF levels; now and then a rejection-like enzyme rise.
            let rejection = chance(0.1)
            var lastCollected = screeningDay
            for (visit, days) in [("screening", -1.0), ("day_7", 7), ("day_14", 14), ("day_28", 28), ("month_3", 90), ("month_6", 180)] {
                let collected = visit == "screening" ? screeningDay.addingTimeInterval(8 * 3600) : transplant.addingTimeInterval(86_400 * days + 8 * 3600)
                guard collected < Date(), collected >= lastCollected else { continue }
                lastCollected = collected
                let t = max(days, 0)
                let bili = 15 + (bilirubin - 15) * exp(-t / 12)
                let alt = (visit == "day_14" && rejection) ? uniform(250...600) : 25 + 60 * exp(-t / 10) + uniform(0...15)
                for (test, value, unit) in [("BILI", bili, "umol/L"), ("INR", 1.0 + (inr - 1.0) * exp(-t / 8), "ratio"), ("ALT", alt, "U/L"),
                                            ("AST", alt * uniform(0.8...1.2), "U/L"), ("GGT", uniform(40...250), "U/L")] {
                    _ = try await safety.recordLab(
                        participantID: participant.id, visit: visit, test: test, value: (value * 100).rounded() / 100, unit: unit, collectedAt: collected, scope: scope,
                        now: collected.addingTimeInterval(3 * 3600))
                    labs += 1
                }
            }
            if rejection && transplant.addingTimeInterval(86_400 * 15) < Date() {
                let onset = transplant.addingTimeInterval(86_400 * 14 + 9 * 3600)
                _ = try await safety.recordAdverseEvent(
                    participantID: participant.id,
                    input: AdverseEventInput(meddra: "10001551", grade: 3, onsetAt: onset, seriousness: [.hospitalization], attribution: .unlikely, expected: false,
                                             actionTaken: "steroid pulse", outcome: "recovered", awareAt: onset.addingTimeInterval(3600)),
                    scope: scope, now: onset.addingTimeInterval(2 * 3600))
                events += 1
            }
        }
        return "Demo trial: \(count) screened, \(failed) screen failures, \(randomized) randomized, \(labs) lab results, \(events) adverse events."
    }
}
