import ArgumentParser
import Foundation
import TrialDomain
import TrialStandards
import TrialStore

/// `casebook demo`: a synthetic trial of whichever study is in force, entered through the same repositories, rules and
/// audit trail as real entry. The values come from the definition (see `DemoValues`), so any study can be filled.
struct Demo: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Fill the database with a synthetic trial of the study in force: screening, consent, allocations, doses, visits, labs, adverse events.")
    @Option(help: "How many patients to screen.") var participants: Int = 50
    @Option(help: "Same seed, same trial.") var seed: UInt64 = 1

    func run() async throws {
        guard (1...100_000).contains(participants) else { throw inputError("--participants: must be from 1 to 100000") }
        let started = Date()
        try await Runtime.withStore { store, _ in
            let summary: String
            do {
                summary = try await DemoTrial(store: store, seed: seed).fill(participants: participants)
            } catch let refusal as LockRefusal {
                throw Runtime.fail(refusal.description)
            }
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
        /// The adverse-event terms the catalogue holds for the study's CTCAE version.
        let terms: [String]
        /// Read once for every participant: the names, the criteria checked, and what the demo enters at each visit.
        let expressions: ExpressionScope
        let inclusion: [TrialDomain.Expression]
        let exclusion: [TrialDomain.Expression]
        /// Forms some rule reads (an endpoint, an event, a check, a later randomization): the follow-up enters these.
        let ruleForms: Set<String>
        /// Labs an endpoint reads, and ALT and total bilirubin for the eDISH plot: the follow-up records these.
        let labs: Set<String>
    }

    /// A participant who passed screening, with the draws still to come.
    struct Screened: Sendable {
        let index: Int
        let participantID: UUID
        let screeningDay: Date
        /// Everything entered so far, `form.field`, and which forms (`visit|form`) hold it.
        let values: [String: String]
        let filled: Set<String>
        let allocationAt: Date
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
        // Each later randomization's list too, unless the statistician made it already.
        for (i, stage) in (study.randomizations ?? []).enumerated() {
            var draws = DemoRandom(seed: seed, stream: UInt64.max - UInt64(i))
            let seedHex = AuditChain.hex((0..<32).map { _ in UInt8(truncatingIfNeeded: draws.next()) })
            do {
                _ = try await screening.generateStageList(randomization: stage.code, seedHex: seedHex, actor: "demo", now: Date(), length: max(count, 100))
            } catch StoreError.duplicate {
                continue
            }
        }
        let safety = FluentSafetyRepository(store: store, tables: try GradingTables.builtIn())
        let version = study.safety.ctcaeVersion.hasPrefix("4") ? "4.03" : study.safety.ctcaeVersion
        let expressions = ExpressionScope(study: study)
        let context = Context(
            study: study, site: site, scope: scope, safety: safety,
            today: DateParsing.day(Self.day(Date()))!, count: count,
            existing: try await FluentParticipantRepository(store: store).counts(scope: scope).values.reduce(0, +),
            terms: try await safety.searchTerms("", version: version, limit: 100).map(\.meddra), expressions: expressions,
            inclusion: try study.eligibility.inclusion.map { try expressions.checkCondition($0.expression) },
            exclusion: try study.eligibility.exclusion.map { try expressions.checkCondition($0.expression) },
            ruleForms: Self.ruleForms(study), labs: Set(study.endpoints.compactMap { $0.analysis?.lab?.uppercased() }).union(["ALT", "BILI"]))
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
        screened = screened.filter { $0.allocationAt < context.today }
        for participant in screened { requests.append((participant.participantID, participant.allocationAt)) }
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

    /// The forms whose fields some rule of the study reads.
    static func ruleForms(_ study: StudyDefinition) -> Set<String> {
        var sources: [String] = study.endpoints.compactMap(\.analysis).flatMap { a in
            (a.forms ?? []).map(\.event) + (a.events ?? []).flatMap { [$0.event, $0.date] } + [a.expression].compactMap { $0 }
        }
        sources += study.arms.flatMap { $0.doses ?? [] }.compactMap(\.check)
        sources += (study.randomizations ?? []).compactMap(\.eligible)
        var forms = Set(study.endpoints.compactMap(\.analysis).flatMap { a in (a.forms ?? []).map(\.form) + (a.events ?? []).map(\.form) })
        // How follow-up ended, for CONSORT and the disposition.
        if let end = study.participant?.endOfStudy, let form = end.field.split(separator: ".").first { forms.insert(String(form)) }
        let scope = ExpressionScope(study: study)
        for source in sources { forms.formUnion(DemoValues.names(in: source, scope: scope).compactMap { $0.split(separator: ".").first.map(String.init) }) }
        return forms
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

    /// Screening, eligibility and consent, and the dates of the anchors that come from forms; nil for a screen failure.
    func screen(_ index: Int, _ c: Context) async throws -> Screened? {
        var random = DemoRandom(seed: seed, stream: UInt64(c.existing + index + 1))
        let forms = FluentFormRecordRepository(store: store)
        let screening = FluentScreeningRepository(store: store)
        let study = c.study
        let number = String(format: "DEMO-%05d", c.existing + index + 1)
        // Screening days spread over the past 220 days, so most participants have reached their last visits.
        let screeningDay = c.today.addingTimeInterval(-86_400 * (220 - 200 * Double(index) / Double(max(c.count, 1))).rounded())
        let participant = try await FluentParticipantRepository(store: store).create(
            siteID: c.site.id, screeningNumber: number, scope: c.scope, now: screeningDay)
        let scope = c.expressions
        var values = DemoValues(study: study, scope: scope, site: c.site.code, day: screeningDay, random: random)
        // The anchors read from forms, in their order: the first is the screening day, each later one days after.
        var anchorDay = screeningDay
        var anchorForms: [(visit: String, form: Form)] = []
        for (i, anchor) in study.anchors.enumerated() {
            guard let source = anchor.source, source.contains("."), !source.hasPrefix("dose:"), let field = values.field(source),
                let form = study.form(String(source.split(separator: ".")[0]))
            else { continue }
            if i > 0 { anchorDay = anchorDay.addingTimeInterval(86_400 * values.random.uniform(2...20).rounded()) }
            values.set(source, date: anchorDay.addingTimeInterval(field.type == .datetime ? 8 * 3600 : 0))
            if let visit = form.visits.first, visit != study.eligibilityVisit { anchorForms.append((visit, form)) }
        }
        // About one in six fails screening on an exclusion; the others are steered to meet every criterion.
        let exclusions = study.eligibility.exclusion
        let failing = !exclusions.isEmpty && values.random.chance(1.0 / 6) ? Int(values.random.uniform(0...Double(exclusions.count) - 0.01)) : -1
        for criterion in c.inclusion { values.want(criterion, true) }
        for (i, criterion) in c.exclusion.enumerated() { values.want(criterion, i == failing) }
        let ranges = study.sites.first { $0.code == c.site.code }?.referenceRanges ?? []
        let visit = study.eligibilityVisit ?? study.visits.first?.code ?? ""
        // Every field a criterion or a stratification factor reads is entered, so nothing is left that cannot be told;
        // the visit's other pages (read by no rule) are left for the site.
        let read = (study.eligibility.inclusion + study.eligibility.exclusion).map(\.expression) + study.randomization.factors.map(\.expression)
        var always: Set<String> = []
        for source in read { always.formUnion(DemoValues.names(in: source, scope: scope)) }
        let readForms = Set(always.compactMap { $0.split(separator: ".").first.map(String.init) })
            .union(study.anchors.compactMap { $0.source?.split(separator: ".").first.map(String.init) })
        let pages = study.forms.filter { $0.visits.contains(visit) && readForms.contains($0.code) }
        for form in pages { values.fill(form, at: screeningDay.addingTimeInterval(8 * 3600), ranges: ranges, always: always) }
        _ = try await forms.save(
            participantID: participant.id, visit: visit, forms: pages.map { (form: $0.code, values: values.form($0)) }, reason: nil, scope: c.scope,
            now: screeningDay.addingTimeInterval(10 * 3600))
        // Consent comes first (the consent criterion reads its record), then the investigator's decision.
        _ = try await screening.recordConsent(
            participantID: participant.id, formVersion: study.consent.current, signedAt: screeningDay.addingTimeInterval(9 * 3600), scope: c.scope,
            now: screeningDay.addingTimeInterval(10.5 * 3600))
        let decided = try await screening.decideEligibility(participantID: participant.id, scope: c.scope, now: screeningDay.addingTimeInterval(11 * 3600))
        guard decided.outcome == .met else { return nil }
        for (visit, form) in anchorForms {
            values.fillChecked(form, visit: visit, at: anchorDay.addingTimeInterval(8 * 3600), ranges: ranges)
            _ = try await forms.save(
                participantID: participant.id, visit: visit, form: form.code, values: values.form(form), reason: nil, scope: c.scope,
                now: anchorDay.addingTimeInterval(20 * 3600))
        }
        // Allocation inside the study's window, else the day after the last anchor.
        let calendar = SiteCalendar(study: study, site: c.site.code)
        var allocationAt = anchorDay.addingTimeInterval(86_400 + 10 * 3600)
        if let window = study.randomization.window,
            let base = AnchorTimes.resolve(study: study, values: values.values, allocatedAt: nil, armHasDoses: nil, zone: calendar.zone)[window.anchor]
        {
            let days = max(0, (window.latest.seconds - window.earliest.seconds) / 86_400)
            let day = calendar.startOfDay(base.addingTimeInterval(window.earliest.seconds + 86_400 * values.random.uniform(0...max(0, days - 1)).rounded()))
            allocationAt = day.addingTimeInterval(10 * 3600)
        }
        random = values.random
        let filled = Set(pages.map { "\(visit)|\($0.code)" } + anchorForms.map { "\($0.visit)|\($0.form.code)" })
        return Screened(
            index: index, participantID: participant.id, screeningDay: screeningDay, values: values.values, filled: filled, allocationAt: allocationAt, random: random)
    }

    /// Doses and later randomizations in the order they fall due, then every visit's forms and labs up to today, and
    /// now and then an adverse event.
    func followUp(_ p: Screened, _ allocation: Allocation, _ c: Context) async throws -> Tally {
        var tally = Tally()
        let study = c.study
        let forms = FluentFormRecordRepository(store: store)
        let screening = FluentScreeningRepository(store: store)
        let scope = c.expressions
        let calendar = SiteCalendar(study: study, site: c.site.code)
        let ranges = study.sites.first { $0.code == c.site.code }?.referenceRanges ?? []
        var values = DemoValues(study: study, scope: scope, site: c.site.code, day: p.screeningDay, values: p.values, random: p.random)
        var arm = allocation.arm
        var doseTimes: [String: Date] = [:], recorded: Set<String> = [], staged: Set<String> = []
        var filled = p.filled
        func anchors() -> [String: Date] {
            AnchorTimes.resolve(
                study: study, values: values.values, allocatedAt: allocation.allocatedAt, doses: doseTimes,
                armHasDoses: !DoseRules.plan(study: study, arm: arm).isEmpty, zone: calendar.zone)
        }
        func save(_ visit: String, _ form: Form, at time: Date) async throws {
            guard !filled.contains("\(visit)|\(form.code)") else { return }
            filled.insert("\(visit)|\(form.code)")
            let page = values.form(form)
            guard !page.isEmpty else { return }
            _ = try await forms.save(participantID: p.participantID, visit: visit, form: form.code, values: page, reason: nil, scope: c.scope, now: time)
        }
        // Doses and stage draws, earliest due first.
        while true {
            let now = anchors()
            let dose = DoseRules.plan(study: study, arm: arm).first { !recorded.contains($0.code) }
            let doseWindow = dose.flatMap { DoseRules.window(of: $0, anchors: now, calendar: calendar) }
            let stage = (study.randomizations ?? []).first { !staged.contains($0.code) && $0.assigns[arm] != nil }
            let stageVisit = stage.flatMap { s in
                ParticipantSchedule.build(study: study, anchors: now, done: [:], now: c.today, arm: arm, calendar: calendar).first { $0.visit == s.visit }
            }
            let doseAt = doseWindow.map { max($0.target, allocation.allocatedAt.addingTimeInterval(3600)) }
            let stageAt = stageVisit?.target
            if let stage, let stageAt, stageAt < c.today, doseAt.map({ stageAt <= $0 }) ?? true {
                staged.insert(stage.code)
                if let eligible = stage.eligible { values.want(eligible, true) }
                for form in study.forms where form.visits.contains(stage.visit) && !(stage.eligible ?? "").isEmpty {
                    if (stage.eligible ?? "").contains("\(form.code).") {
                        values.fill(form, at: stageAt, ranges: ranges)
                        try await save(stage.visit, form, at: stageAt.addingTimeInterval(-1800))
                    }
                }
                arm = try await screening.allocateStage(participantID: p.participantID, randomization: stage.code, scope: c.scope, now: stageAt).armAfter
                continue
            }
            guard let dose, let doseAt, doseAt.addingTimeInterval(3 * 3600) < c.today else { break }
            recorded.insert(dose.code)
            let skip = !doseTimes.isEmpty && values.random.chance(0.1)
            if skip {
                _ = try await screening.recordDose(
                    participantID: p.participantID, record: DoseRecord(dose: dose.code, given: false, skipReason: "demo: not given that day", recordedBy: "", recordedAt: doseAt),
                    scope: c.scope, now: doseAt)
                continue
            }
            if let check = dose.check, let visit = dose.visit {
                values = DemoValues(study: study, scope: scope, site: c.site.code, day: doseAt, values: values.values.filter { !check.contains($0.key) }, random: values.random)
                values.want(check, true)
                for form in study.forms where form.visits.contains(visit) && check.contains("\(form.code).") {
                    filled.remove("\(visit)|\(form.code)")
                    values.fillChecked(form, visit: visit, at: doseAt, ranges: ranges)
                    try await save(visit, form, at: doseAt.addingTimeInterval(-1800))
                }
            }
            _ = try await screening.recordDose(
                participantID: p.participantID,
                record: DoseRecord(dose: dose.code, given: true, startedAt: doseAt, endedAt: doseAt.addingTimeInterval(1800), lot: String(format: "LOT-%04d", 1 + p.index / 10),
                                   recordedBy: "", recordedAt: doseAt),
                scope: c.scope, now: doseAt.addingTimeInterval(2 * 3600))
            doseTimes[dose.code] = doseAt
            // Now and then an adverse event in the day after a dose, from the terms the catalogue holds.
            if !c.terms.isEmpty && values.random.chance(0.15) {
                let term = c.terms[Int(values.random.uniform(0...Double(c.terms.count) - 0.01))]
                let onset = doseAt.addingTimeInterval(4 * 3600)
                if (try? await c.safety.recordAdverseEvent(
                    participantID: p.participantID,
                    input: AdverseEventInput(meddra: term, grade: 1, onsetAt: onset, resolvedAt: onset.addingTimeInterval(6 * 3600), attribution: .possible,
                                             expected: true, actionTaken: "none", outcome: "recovered"),
                    scope: c.scope, now: onset.addingTimeInterval(8 * 3600))) != nil
                { tally.events += 1 }
            }
        }
        // Every visit up to today: the forms some rule reads and those of coded observations (the exports' findings),
        // saved together in one write, and the labs an endpoint or the eDISH plot reads, through the lab route in the
        // site's units.
        let final = anchors()
        for visit in ParticipantSchedule.build(study: study, anchors: final, done: [:], now: c.today, arm: arm, calendar: calendar) {
            guard visit.visit != study.eligibilityVisit, let target = visit.target, target.addingTimeInterval(6 * 3600) < c.today else { continue }
            let at = max(target, allocation.allocatedAt.addingTimeInterval(1800))
            var pages: [(form: String, values: [String: String])] = []
            for form in study.forms where form.visits.contains(visit.visit) && !filled.contains("\(visit.visit)|\(form.code)")
                && (c.ruleForms.contains(form.code) || form.fields.contains { $0.lab.map(c.labs.contains) ?? ($0.loinc != nil) })
            {
                let kept = c.ruleForms.contains(form.code) || form.fields.contains { $0.lab == nil && $0.loinc != nil }
                var page = DemoValues(study: study, scope: scope, site: c.site.code, day: at, values: values.values.filter { !$0.key.hasPrefix("\(form.code).") }, random: values.random)
                page.fillChecked(form, visit: visit.visit, at: at, ranges: ranges)
                values.random = page.random
                for field in form.fields where field.lab != nil {
                    guard let lab = field.lab, let raw = page.values["\(form.code).\(field.code)"] else { continue }
                    page.values["\(form.code).\(field.code)"] = nil
                    guard c.labs.contains(lab), let value = Double(raw) else { continue }
                    _ = try await c.safety.recordLab(
                        participantID: p.participantID, visit: visit.visit, test: lab, value: value, unit: field.unit ?? "", collectedAt: at, scope: c.scope,
                        now: at.addingTimeInterval(3 * 3600))
                    tally.labs += 1
                }
                filled.insert("\(visit.visit)|\(form.code)")
                // A form entered only for its labs is not saved again: they went through the lab route.
                let entry = page.form(form)
                if !entry.isEmpty && kept { pages.append((form.code, entry)) }
            }
            if !pages.isEmpty {
                _ = try await forms.save(participantID: p.participantID, visit: visit.visit, forms: pages, reason: nil, scope: c.scope, now: at.addingTimeInterval(3600))
            }
        }
        return tally
    }
}
