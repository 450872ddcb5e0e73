import ArgumentParser
import Foundation
import TrialDomain
import TrialStandards
import TrialStore

/// `casebook demo`: a synthetic ACLF-LT trial entered through the same repositories, rules and audit trail as real entry.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fill the database with a synthetic trial: screening, consent, allocation, doses, labs to month 6, adverse events.")
    @Option(help: "How many patients to screen.") var participants: Int = 50
    @Option(help: "Same seed, same trial.") var seed: UInt64 = 1

    func run() async throws {
        guard (1...100_000).contains(participants) else { throw inputError("--participants: must be from 1 to 100000") }
        let started = Date()
        try await Runtime.withStore { store, _ in
            let summary = try await DemoTrial(store: store, seed: seed).fill(participants: participants)
            print(summary.replacingOccurrences(of: "(", with: String(format: "(%.1f s: ", Date().timeIntervalSince(started))))
        }
    }
}

/// Random draws for one participant (or, on stream 0, for the trial), independent of every other participant's, so
/// participants can be entered concurrently and the same seed still gives the same trial.
struct DemoRandom: Sendable {
    var rng: ChaCha20Generator

    init(seed: UInt64, stream: UInt64) {
        var bytes = [UInt8](repeating: 0, count: 32)
        for i in 0..<8 { bytes[i] = UInt8(truncatingIfNeeded: seed >> (8 * UInt64(i))) }
        rng = ChaCha20Generator(seed: bytes, stream: stream)
    }

    mutating func next() -> UInt64 { rng.next() }

    mutating func uniform(_ range: ClosedRange<Double>) -> Double {
        range.lowerBound + Double(rng.next() >> 11) / Double(1 << 53) * (range.upperBound - range.lowerBound)
    }

    mutating func chance(_ p: Double) -> Bool { uniform(0...1) < p }
}

struct DemoTrial: Sendable {
    let store: Store
    let seed: UInt64
    /// Participants entered at once: their writes share commits, as a site's concurrent entries would.
    static let width = 256

    init(store: Store, seed: UInt64) {
        self.store = store
        self.seed = seed
    }

    static func day(_ d: Date) -> String { String(AuditEntry.timestamp(d).prefix(10)) }
    static func minute(_ d: Date) -> String { String(AuditEntry.timestamp(d).prefix(16)) }

    struct Context: Sendable {
        let study: StudyDefinition
        let site: Site
        let scope: AccessScope
        let safety: FluentSafetyRepository
        let today: Date
        let count: Int
        let existing: Int
    }

    /// A participant who passed screening, with the draws still to come.
    struct Screened: Sendable {
        let index: Int
        let participantID: UUID
        let transplant: Date
        let screeningDay: Date
        let bilirubin: Double
        let inr: Double
        var random: DemoRandom
    }

    struct Tally: Sendable {
        var labs = 0
        var events = 0
    }

    func fill(participants count: Int) async throws -> String {
        let studies = FluentStudyRepository(store: store)
        guard let study = try await studies.current(), let siteDef = study.sites.first,
            let site = try await FluentAccountRepository(store: store).site(code: siteDef.code)
        else { throw Runtime.fail("no study with a site is loaded") }
        let scope = AccessScope(actor: "demo", siteIDs: [site.id])
        let screening = FluentScreeningRepository(store: store)
        if try await screening.listSlots() == nil {
            var trial = DemoRandom(seed: seed, stream: 0)
            let seedHex = AuditChain.hex((0..<32).map { _ in UInt8(truncatingIfNeeded: trial.next()) })
            // Every demo participant could fall in one stratum, so each stratum gets room for all of them.
            _ = try await screening.generateList(seedHex: seedHex, actor: "demo", now: Date(), length: max(count, 100))
        }
        let context = Context(
            study: study, site: site, scope: scope, safety: FluentSafetyRepository(store: store, tables: try GradingTables.builtIn()),
            today: DateParsing.day(Self.day(Date()))!, count: count,
            existing: try await FluentParticipantRepository(store: store).counts(scope: scope).values.reduce(0, +))
        var clock = Date()
        var phases: [String] = []
        func phase(_ name: String) {
            phases.append(String(format: "%@ %.1f s", name, Date().timeIntervalSince(clock)))
            clock = Date()
        }
        // Screening to consent, many participants at once.
        var screened = try await Self.concurrently(Array(0..<count)) { index in try await screen(index, context) }.compactMap { $0 }
        phase("screening")
        // Allocation one at a time in screening order: the list hands out its slots in the order participants arrive.
        var requests: [(participantID: UUID, now: Date)] = []
        for index in screened.indices {
            let at = screened[index].transplant.addingTimeInterval(86_400 * screened[index].random.uniform(1...5).rounded() + 10 * 3600)
            requests.append((screened[index].participantID, at))
        }
        var allocated: [(Screened, Allocation)] = []
        for (participant, result) in zip(screened, try await screening.allocateInOrder(requests, scope: scope)) {
            allocated.append((participant, try result.get()))
        }
        phase("allocation")
        // The course after allocation, many at once again.
        let tallies = try await Self.concurrently(allocated) { participant, allocation in try await followUp(participant, allocation, context) }
        phase("follow-up")
        let labs = tallies.reduce(0) { $0 + $1.labs }, events = tallies.reduce(0) { $0 + $1.events }
        return "Demo trial: \(count) screened, \(count - screened.count) screen failures, \(screened.count) randomized, \(labs) lab results, \(events) adverse events. (\(phases.joined(separator: ", ")))"
    }

    /// Runs `body` for every item, `width` at a time; results in the items' order.
    static func concurrently<Item: Sendable, Result: Sendable>(
        _ items: [Item], _ body: @escaping @Sendable (Item) async throws -> Result
    ) async throws -> [Result] {
        try await withThrowingTaskGroup(of: (Int, Result).self) { group in
            var results = [Result?](repeating: nil, count: items.count)
            var next = 0
            while next < min(width, items.count) {
                let i = next
                group.addTask { (i, try await body(items[i])) }
                next += 1
            }
            while let (i, result) = try await group.next() {
                results[i] = result
                if next < items.count {
                    let j = next
                    group.addTask { (j, try await body(items[j])) }
                    next += 1
                }
            }
            return results.map { $0! }
        }
    }

    /// Screening, eligibility, consent and the transplant; nil for a screen failure.
    func screen(_ index: Int, _ c: Context) async throws -> Screened? {
        var random = DemoRandom(seed: seed, stream: UInt64(c.existing + index + 1))
        let forms = FluentFormRecordRepository(store: store)
        let screening = FluentScreeningRepository(store: store)
        let number = String(format: "DEMO-%05d", c.existing + index + 1)
        // Transplants spread over the past 200 days, so most participants have reached month 6.
        let transplant = c.today.addingTimeInterval(-86_400 * (200 - 190 * Double(index) / Double(max(c.count, 1))).rounded())
        let screeningDay = transplant.addingTimeInterval(-86_400 * random.uniform(2...20).rounded())
        let participant = try await FluentParticipantRepository(store: store).create(
            siteID: c.site.id, screeningNumber: number, scope: c.scope, now: screeningDay)
        // About one in six fails screening, each for a reason the protocol names.
        let failure = random.chance(1.0 / 6) ? Int(random.uniform(0...2.99)) : -1
        let bilirubin = failure == 0 ? random.uniform(120...165) : random.uniform(180...450)
        let inr = random.uniform(1.5...3.5)
        let meldNa = random.uniform(22...38).rounded()
        let values: [(String, [String: String])] = [
            ("demographics", ["screening_date": Self.day(screeningDay), "birth_date": Self.day(screeningDay.addingTimeInterval(-86_400 * 365.25 * random.uniform(25...58))), "sex": random.chance(0.3) ? "F" : "M"]),
            ("aclf", ["chronic_liver_disease": "yes", "ascites": "yes", "ascites_date": Self.day(screeningDay.addingTimeInterval(-86_400 * random.uniform(1...20).rounded())), "encephalopathy": random.chance(0.4) ? "yes" : "no",
                      "encephalopathy_date": Self.day(screeningDay.addingTimeInterval(-86_400 * 3)), "needs_transplant": "yes"]),
            ("history", ["malignancy": failure == 1 ? "yes" : "no", "active_infection": "no", "combined_transplant": "no", "retransplant": "no",
                         "ebv": "positive", "hiv": failure == 2 ? "positive" : "negative", "hcv": "negative"]),
            ("consent", ["obtained": "yes", "signed_at": Self.minute(screeningDay.addingTimeInterval(9 * 3600)), "form_version": c.study.consent.current]),
            ("labs", ["collected_at": Self.minute(screeningDay.addingTimeInterval(8 * 3600)), "total_bilirubin": String(format: "%.1f", bilirubin),
                      "inr": String(format: "%.2f", inr), "pt_activity": String(format: "%.0f", random.uniform(15...38)), "meld_na": String(format: "%.0f", meldNa)]),
        ]
        // The screening visit's pages entered together, as a site enters them.
        _ = try await forms.save(
            participantID: participant.id, visit: "screening", forms: values.map { (form: $0.0, values: $0.1) }, reason: nil, scope: c.scope,
            now: screeningDay.addingTimeInterval(10 * 3600))
        let decided = try await screening.decideEligibility(participantID: participant.id, scope: c.scope, now: screeningDay.addingTimeInterval(11 * 3600))
        guard decided.outcome == .met else { return nil }
        _ = try await screening.recordConsent(
            participantID: participant.id, formVersion: c.study.consent.current, signedAt: screeningDay.addingTimeInterval(9 * 3600), scope: c.scope,
            now: screeningDay.addingTimeInterval(12 * 3600))
        _ = try await forms.save(
            participantID: participant.id, visit: "transplant", form: "transplant",
            values: ["transplant_date": Self.day(transplant), "donor": random.chance(0.8) ? "deceased" : "living"],
            reason: nil, scope: c.scope, now: transplant.addingTimeInterval(20 * 3600))
        return Screened(index: index, participantID: participant.id, transplant: transplant, screeningDay: screeningDay, bilirubin: bilirubin, inr: inr, random: random)
    }

    /// The first dose (for an arm with doses), the 24-hour assessment, labs to month 6 and adverse events.
    func followUp(_ p: Screened, _ allocation: Allocation, _ c: Context) async throws -> Tally {
        var random = p.random
        var tally = Tally()
        let forms = FluentFormRecordRepository(store: store)
        let screening = FluentScreeningRepository(store: store)
        var timeZero = allocation.allocatedAt
        let plan = DoseRules.plan(study: c.study, arm: allocation.arm)
        if let first = plan.first {
            let start = allocation.allocatedAt.addingTimeInterval(3600)
            _ = try await screening.recordDose(
                participantID: p.participantID,
                record: DoseRecord(dose: first.code, given: true, startedAt: start, endedAt: start.addingTimeInterval(1800), lot: String(format: "LOT-%04d", 1 + p.index / 10),
                                   recordedBy: "", recordedAt: start),
                scope: c.scope, now: start.addingTimeInterval(2 * 3600))
            timeZero = start
            if random.chance(0.15) {
                _ = try await c.safety.recordAdverseEvent(
                    participantID: p.participantID,
                    input: AdverseEventInput(meddra: "10016558", grade: 1, onsetAt: start.addingTimeInterval(4 * 3600), resolvedAt: start.addingTimeInterval(10 * 3600),
                                             attribution: .possible, expected: true, actionTaken: "paracetamol", outcome: "recovered"),
                    scope: c.scope, now: start.addingTimeInterval(12 * 3600))
                tally.events += 1
            }
        }
        let assessedAt = timeZero.addingTimeInterval(24 * 3600)
        let toxic = !plan.isEmpty && random.chance(0.1)
        _ = try await forms.save(
            participantID: p.participantID, visit: "safety_24h", form: "toxicity_24h",
            values: ["assessed_at": Self.minute(assessedAt), "any_toxicity": toxic ? "yes" : "no", "worst_grade": toxic ? "1" : "0"],
            reason: nil, scope: c.scope, now: assessedAt)
        // Post-transplant course: bilirubin and INR fall from ACLF levels; now and then a rejection-like enzyme rise.
        let rejection = random.chance(0.1)
        var lastCollected = p.screeningDay
        for (visit, days) in [("screening", -1.0), ("day_7", 7), ("day_14", 14), ("day_28", 28), ("month_3", 90), ("month_6", 180)] {
            let collected = visit == "screening" ? p.screeningDay.addingTimeInterval(8 * 3600) : p.transplant.addingTimeInterval(86_400 * days + 8 * 3600)
            // Up to the start of today, not the hour of the run, so a seed gives the same trial all day.
            guard collected < c.today, collected >= lastCollected else { continue }
            lastCollected = collected
            let t = max(days, 0)
            let bili = 15 + (p.bilirubin - 15) * exp(-t / 12)
            let alt = (visit == "day_14" && rejection) ? random.uniform(250...600) : 25 + 60 * exp(-t / 10) + random.uniform(0...15)
            for (test, value, unit) in [("BILI", bili, "umol/L"), ("INR", 1.0 + (p.inr - 1.0) * exp(-t / 8), "ratio"), ("ALT", alt, "U/L"),
                                        ("AST", alt * random.uniform(0.8...1.2), "U/L"), ("GGT", random.uniform(40...250), "U/L")] {
                _ = try await c.safety.recordLab(
                    participantID: p.participantID, visit: visit, test: test, value: (value * 100).rounded() / 100, unit: unit, collectedAt: collected, scope: c.scope,
                    now: collected.addingTimeInterval(3 * 3600))
                tally.labs += 1
            }
        }
        if rejection && p.transplant.addingTimeInterval(86_400 * 15) < c.today {
            let onset = p.transplant.addingTimeInterval(86_400 * 14 + 9 * 3600)
            _ = try await c.safety.recordAdverseEvent(
                participantID: p.participantID,
                input: AdverseEventInput(meddra: "10001551", grade: 3, onsetAt: onset, seriousness: [.hospitalization], attribution: .unlikely, expected: false,
                                         actionTaken: "steroid pulse", outcome: "recovered", awareAt: onset.addingTimeInterval(3600)),
                scope: c.scope, now: onset.addingTimeInterval(2 * 3600))
            tally.events += 1
        }
        return tally
    }
}
