import Benchmark
import Foundation
import TrialDomain
import TrialStandards
import TrialStore

/// In-process benchmarks of the work behind a screening, a lab save, an allocation and the audit trail.
/// Each one is short (a few seconds at most); the figures are measurements, not pass/fail checks.
let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput, .mallocCountTotal, .peakMemoryResident],
        warmupIterations: 3,
        maxDuration: .seconds(3),
        maxIterations: 10_000
    )

    // Loaded once, as the server does: the study file and the CTCAE tables ship with the binary.
    let study: StudyDefinition
    let v403: GradingTable
    let v50: GradingTable
    do {
        study = try StudyFile.builtIn()
        v403 = try GradingTables.table(version: "4.03")
        v50 = try GradingTables.table(version: "5.0")
    } catch {
        fatalError("the built-in study or grading tables cannot be loaded: \(error)")
    }

    // MARK: 1. Eligibility

    let participant = Fixtures.eligibleParticipant
    do {
        let check = try EligibilityAssessment.assess(study: study, site: Fixtures.site, values: participant)
        precondition(check.outcome == .met && check.criteria.count == 13, "the reference participant must be eligible on all 13 criteria")
    } catch {
        fatalError("eligibility cannot be assessed: \(error)")
    }

    Benchmark("Eligibility: assess one participant, built-in study (13 criteria)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try EligibilityAssessment.assess(study: study, site: Fixtures.site, values: participant))
        }
    }

    // MARK: 2. CTCAE grading

    // Total bilirubin 60 µmol/L against the SYSU3 ULN of 17.1 (3.5 × ULN): grade 3 in both versions.
    Benchmark(
        "Grading: bilirubin 60 umol/L, ULN 17.1, CTCAE v4.03",
        configuration: .init(scalingFactor: .kilo, maxIterations: 2_000)
    ) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try LabGrader.grade(table: v403, term: "BILI", value: 60, uln: 17.1, lln: nil, baseline: nil))
        }
    }

    // v5.0 grades against baseline when baseline was abnormal; a normal baseline (10) takes the ULN rules.
    Benchmark(
        "Grading: bilirubin 60 umol/L, ULN 17.1, baseline 10, CTCAE v5.0",
        configuration: .init(scalingFactor: .kilo, maxIterations: 2_000)
    ) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try LabGrader.grade(table: v50, term: "BILI", value: 60, uln: 17.1, lln: nil, baseline: 10))
        }
    }

    // MARK: 3. Allocation

    guard let seed = ChaCha20Generator.seed(hex: Fixtures.seedHex) else { fatalError("the benchmark seed is not 64 hex digits") }
    let arms = study.arms.map { (code: $0.code, ratio: $0.ratio) }
    let strata = AllocationList.strata(study: study)
    // The length `generateList` uses when the study sets none: the enrolment target, at least 100 per stratum.
    let perStratum = study.randomization.listLengthPerStratum ?? max(study.lifecycle.enrollment.target ?? 0, 100)

    Benchmark("Allocation: generate the built-in study's list (permuted blocks, \(strata.count) strata × \(perStratum))") { benchmark in
        for _ in benchmark.scaledIterations {
            var rng = ChaCha20Generator(seed: seed)
            blackHole(
                try AllocationList.generate(
                    arms: arms, blockSizes: study.randomization.blockSizes, strata: strata, perStratum: perStratum, using: &rng))
        }
    }

    // What `allocate` does in memory for a minimization list: the participant's stratum (MELD-Na expression),
    // the arm counts at each of their levels over the 200 already allocated, then Pocock–Simon's choice.
    var seeding = ChaCha20Generator(seed: seed, stream: 99)
    let taken: [(stratum: String, arm: String)] = (0..<200).map { _ in
        (stratum: strata[Int(seeding.next(upperBound: UInt64(strata.count)))], arm: arms[Int(seeding.next(upperBound: UInt64(arms.count)))].code)
    }
    let probability = study.randomization.minimizationProbability ?? 0.8

    Benchmark("Allocation: one participant by minimization (stratum + Pocock–Simon, 200 allocated)") { benchmark in
        for _ in benchmark.scaledIterations {
            let stratum = try AllocationList.stratum(study: study, site: Fixtures.site, values: participant)
            let levels = stratum.split(separator: "|").map(String.init)
            let counts = levels.map { level in
                Dictionary(grouping: taken.filter { $0.stratum.split(separator: "|").map(String.init).contains(level) }, by: \.arm).mapValues(\.count)
            }
            var rng = ChaCha20Generator(seed: seed, stream: UInt64(taken.count))
            blackHole(Minimization.choose(arms: arms, counts: counts, probability: probability, using: &rng))
        }
    }

    // MARK: 4. Audit chain

    Benchmark("Audit: canonical bytes + SHA-256 of one event (AuditChain.hash)") { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(AuditChain.hash(Fixtures.auditEntry))
        }
    }

    // 1,000 appends per iteration in one write transaction, on an SQLite file (WAL) that grows across iterations.
    let appendStore = SQLiteStoreFixture()
    Benchmark(
        "Audit: AuditChain.append × 1,000 in one transaction (SQLite file)",
        configuration: .init(scalingFactor: .kilo, maxDuration: .seconds(5), maxIterations: 20)
    ) { benchmark in
        let store = try appendStore.store
        try await Fixtures.appendEvents(benchmark.scaledIterations.count, to: store)
    } setup: {
        try await appendStore.open()
    } teardown: {
        await appendStore.close()
    }

    // A chain of 10,000 events, written once in setup (10 transactions of 1,000), then verified from the first event.
    let chainLength = 10_000
    let verifyStore = SQLiteStoreFixture()
    Benchmark(
        "Audit: AuditChain.verify over 10,000 events (SQLite file)",
        configuration: .init(warmupIterations: 1, scalingFactor: .one, maxDuration: .seconds(10), maxIterations: 10)
    ) { benchmark in
        let store = try verifyStore.store
        let result = try await AuditChain.verify(on: store.database)
        guard result.isIntact, result.checked == chainLength else {
            throw BenchmarkFixtureError.chainBroken("\(result.checked) checked, \(String(describing: result.broken))")
        }
        blackHole(result)
    } setup: {
        try await verifyStore.open()
        let store = try verifyStore.store
        for start in stride(from: 0, to: chainLength, by: 1_000) {
            try await Fixtures.appendEvents(1_000, to: store, startingAt: start)
        }
    } teardown: {
        await verifyStore.close()
    }
}
