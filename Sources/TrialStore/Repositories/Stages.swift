import FluentKit
import FluentSQL
import Foundation
import TrialDomain

/// A participant's draw in a randomization after enrolment.
public struct StageAllocation: Codable, Equatable, Sendable {
    public var randomization: String
    public var option: String
    public var armBefore: String
    public var armAfter: String
    public var allocatedAt: Date
    public var allocatedBy: String
}

extension FluentScreeningRepository {
    /// Generates the concealed list of one stage randomization, once; returns the seed that reproduces it.
    /// `length`: positions per stratum (default the stage's `listLengthPerStratum`, else 100).
    public func generateStageList(randomization code: String, seedHex: String?, actor: String, now: Date, length: Int? = nil) async throws -> (seed: String, slots: Int) {
        try await store.write { tx in
            try await LockCheck.require(WriteTarget(siteID: nil), kind: .data, actor: actor, attempted: "stage list generation", on: tx)
            guard let study = try await FluentStudyRepository.current(on: tx)?.study else { throw StoreError.notFound(entity: "study", id: "current") }
            guard let stage = study.randomizations?.first(where: { $0.code == code }) else {
                throw StoreError.notFound(entity: "randomization", id: "'\(code)' in study \(study.code)")
            }
            let sql = tx as! any SQLDatabase
            if try await sql.raw("SELECT id FROM stage_lists WHERE study_code = \(bind: study.code) AND randomization = \(bind: code)").first() != nil {
                throw StoreError.duplicate(field: "randomization list", value: code)
            }
            let seed = try Self.seed(seedHex)
            var rng = ChaCha20Generator(seed: ChaCha20Generator.seed(hex: seed)!)
            let slots: [AllocationSlot]
            do {
                slots = try AllocationList.generate(
                    arms: stage.options.map { ($0.code, $0.ratio) }, blockSizes: stage.blockSizes, strata: stage.strata(study: study),
                    perStratum: length ?? stage.listLengthPerStratum ?? 100, using: &rng)
            } catch let error as RandomizationError {
                throw StoreError.invalid(field: "randomization", rule: error.description)
            }
            let listID = UUID.timeOrdered()
            try await sql.raw("""
                INSERT INTO stage_lists (id, study_code, randomization, seed, generated_by, generated_at)
                VALUES (\(bind: listID), \(bind: study.code), \(bind: code), \(bind: seed), \(bind: actor), \(bind: now))
                """).run()
            for chunk in stride(from: 0, to: slots.count, by: 200) {
                var insert = sql.insert(into: "stage_slots").columns("id", "list_id", "stratum", "position", "block", "block_size", "option")
                for slot in slots[chunk..<min(chunk + 200, slots.count)] {
                    insert = insert.values(
                        SQLBind(UUID.timeOrdered()), SQLBind(listID), SQLBind(slot.stratum), SQLBind(slot.position), SQLBind(slot.block),
                        SQLBind(slot.blockSize), SQLBind(slot.arm))
                }
                try await insert.run()
            }
            try await AuditChain.append(
                on: tx, actor: actor, action: .create, entity: "randomization_list", entityID: listID.uuidString, siteID: nil, reason: nil,
                changes: [
                    .init(field: "randomization", old: nil, new: code), .init(field: "positions", old: nil, new: String(slots.count)),
                    .init(field: "seed_sha256_prefix", old: nil, new: String(AuditChain.sha256Hex(seed).prefix(16))),
                ], now: now)
            return (seed, slots.count)
        }
    }

    static func seed(_ seedHex: String?) throws -> String {
        if let seedHex {
            guard ChaCha20Generator.seed(hex: seedHex) != nil else { throw StoreError.invalid(field: "seed", rule: "must be 64 hexadecimal digits") }
            return seedHex.lowercased()
        }
        var system = SystemRandomNumberGenerator()
        return AuditChain.hex((0..<32).map { _ in UInt8.random(in: 0...255, using: &system) })
    }

    /// Draws the participant's option in a stage randomization, in one audited write: allocated already at enrolment,
    /// taking part (their arm in `assigns`, `eligible` holding), inside the stage visit's window, with the study still
    /// treating its participants. Asking again returns the same draw.
    public func allocateStage(participantID: UUID, randomization code: String, scope: AccessScope, now: Date) async throws -> StageAllocation {
        let before = try? await Self.cachedFileAndRevision(participantID: participantID, scope: scope, on: store.database)
        return try await store.write { tx in
            let file = try await Self.claimFile(participantID: participantID, scope: scope, before: before, attempted: "stage allocation", on: tx)
            let study = file.schedule
            guard let stage = study.randomizations?.first(where: { $0.code == code }) else {
                throw StoreError.notFound(entity: "randomization", id: "'\(code)' in study \(study.code)")
            }
            if let done = file.stages.first(where: { $0.randomization == code }) { return done }
            guard let allocation = file.allocation else {
                throw StoreError.conflict(field: "allocation", rule: "\(code) follows the allocation at enrolment, which has not happened")
            }
            let status = study.lifecycle.operatingStatus
            guard status == .recruiting || status == .closedToEnrolment else {
                throw StoreError.conflict(field: "study", rule: "participants are randomized only while the study runs; study \(study.code) is \(status.title.lowercased())")
            }
            // Worded without the arm, so that a blinded user learns nothing from a refusal.
            guard let next = stage.assigns[allocation.arm] else {
                throw StoreError.conflict(field: "randomization", rule: "this participant does not take part in \(code)")
            }
            let visit = ParticipantSchedule.build(study: study, anchors: file.anchors, done: [:], now: now, arm: allocation.arm, calendar: file.calendar)
                .first { $0.visit == stage.visit }
            guard let start = visit?.windowStart, let end = visit?.windowEnd else {
                throw StoreError.conflict(field: "randomization", rule: "\(code) happens at visit \(stage.visit), which cannot be placed yet")
            }
            guard now >= start, now <= end else {
                throw StoreError.conflict(
                    field: "randomization", rule: "\(code) happens at visit \(stage.visit), from \(file.calendar.dayText(start)) to \(file.calendar.dayText(end)) (the site's days)")
            }
            if let eligible = stage.eligible {
                let scope = ExpressionScope(study: study)
                // A condition that counts adverse events reads them as of now.
                var history: ClinicalHistory?
                if FluentScreeningRepository.countsEvents(eligible, study: study) {
                    let events = try await (tx as! any SQLDatabase).raw("""
                        SELECT meddra, grade, onset_at, serious, attribution FROM adverse_events WHERE participant_id = \(bind: participantID)
                        """).all().map(FluentCohortRepository.adverseEvent)
                    history = ClinicalHistory(adverseEvents: events, anchors: file.anchors, doses: file.doses.compactMap { $0.given ? $0.startedAt : nil }, asOf: now)
                }
                let result: EvaluatedValue
                do {
                    result = try Evaluator(study: study, site: file.siteCode, values: file.values(atVisit: stage.visit), scope: scope, history: history)
                        .evaluate(try scope.checkCondition(eligible))
                } catch { throw StoreError.invalid(field: "randomization", rule: "\(code): \(error)") }
                switch result {
                case .boolean(true): break
                case .unknown(let missing):
                    throw StoreError.conflict(field: "randomization", rule: "\(code): whether the participant takes part cannot be told: \(missing.sorted().joined(separator: ", ")) missing")
                default:
                    throw StoreError.conflict(field: "randomization", rule: "this participant does not take part in \(code): \(eligible)")
                }
            }
            let sql = tx as! any SQLDatabase
            guard let list = try await sql.raw("SELECT id FROM stage_lists WHERE study_code = \(bind: study.code) AND randomization = \(bind: code)").first() else {
                throw StoreError.invalid(field: "randomization", rule: "the allocation list of \(code) has not been generated; the statistician generates it")
            }
            let listID = try list.decode(column: "id", as: UUID.self)
            let stratum: String
            do {
                stratum = try stage.stratum(arm: allocation.arm, site: file.siteCode, study: study, values: file.values(atVisit: stage.visit))
            } catch let error as RandomizationError {
                throw StoreError.invalid(field: "stratum", rule: error.description)
            }
            let lock = sql.dialect.name == "sqlite" ? "" : " FOR UPDATE SKIP LOCKED"
            guard let slot = try await sql.raw("""
                SELECT id, option FROM stage_slots WHERE list_id = \(bind: listID) AND stratum = \(bind: stratum) AND participant_id IS NULL
                ORDER BY position LIMIT 1\(unsafeRaw: lock)
                """).first()
            else { throw StoreError.invalid(field: "randomization", rule: RandomizationError.listExhausted(stratum: stratum).description) }
            let option = try slot.decode(column: "option", as: String.self)
            guard let armAfter = next[option] else { throw StoreError.invalid(field: "randomization", rule: "\(code) says nothing of option '\(option)'") }
            try await sql.raw("""
                UPDATE stage_slots SET participant_id = \(bind: participantID), arm_before = \(bind: allocation.arm), arm_after = \(bind: armAfter),
                  allocated_at = \(bind: now), allocated_by = \(bind: scope.actor)
                WHERE id = \(bind: try slot.decode(column: "id", as: UUID.self))
                """).run()
            try await AuditChain.append(
                on: tx, actor: scope.actor, action: .create, entity: "allocation", entityID: participantID.uuidString, siteID: file.participant.siteID.uuidString,
                reason: nil,
                changes: [.init(field: "randomization", old: nil, new: code), .init(field: "arm", old: allocation.arm, new: armAfter)], now: now)
            return StageAllocation(randomization: code, option: option, armBefore: allocation.arm, armAfter: armAfter, allocatedAt: now, allocatedBy: scope.actor)
        }
    }

    /// A participant's stage draws, in the order they happened.
    static func stages(_ participantID: UUID, on sql: any SQLDatabase) async throws -> [StageAllocation] {
        try await sql.raw("""
            SELECT l.randomization, s.option, s.arm_before, s.arm_after, s.allocated_at, s.allocated_by
            FROM stage_slots s JOIN stage_lists l ON l.id = s.list_id WHERE s.participant_id = \(bind: participantID) ORDER BY s.allocated_at
            """).all().map {
            StageAllocation(
                randomization: try $0.decode(column: "randomization", as: String.self), option: try $0.decode(column: "option", as: String.self),
                armBefore: try $0.decode(column: "arm_before", as: String.self), armAfter: try $0.decode(column: "arm_after", as: String.self),
                allocatedAt: try $0.decode(column: "allocated_at", as: Date.self), allocatedBy: try $0.decode(column: "allocated_by", as: String.self))
        }
    }
}

/// The SQL for a participant's current arm: the arm their last stage draw led to, else their arm at enrolment.
enum CurrentArm {
    static func column(slot: String, participant: String) -> String {
        "COALESCE((SELECT ss.arm_after FROM stage_slots ss WHERE ss.participant_id = \(participant) ORDER BY ss.allocated_at DESC LIMIT 1), \(slot).arm)"
    }
}

extension FluentScreeningRepository {
    /// An emergency unblinding: an investigator asks, with a reason, to see one participant's arm in a masked study.
    /// Audited; from then on that user, and only that user, sees that participant's arm. Returns the arm.
    public func unblind(participantID: UUID, reason: String, scope: AccessScope, now: Date) async throws -> String {
        let why = reason.trimmingCharacters(in: .whitespacesAndNewlines)
        guard !why.isEmpty else { throw StoreError.invalid(field: "reason", rule: "an emergency unblinding needs its reason") }
        let before = try? await Self.cachedFileAndRevision(participantID: participantID, scope: scope, on: store.database)
        return try await store.write { tx in
            // No lock stops an emergency unblinding: the participant's safety comes first.
            let file = try await Self.claimFile(participantID: participantID, scope: scope, before: before, attempted: nil, on: tx)
            guard Blinding.isMasked(file.study) else { throw StoreError.conflict(field: "study", rule: "the study is open label: arms are not blinded") }
            guard let arm = file.arm else { throw StoreError.conflict(field: "allocation", rule: "the participant has not been allocated") }
            let sql = tx as! any SQLDatabase
            if try await sql.raw("SELECT id FROM unblindings WHERE participant_id = \(bind: participantID) AND username = \(bind: scope.actor)").first() == nil {
                try await sql.raw("""
                    INSERT INTO unblindings (id, participant_id, username, reason, unblinded_at)
                    VALUES (\(bind: UUID.timeOrdered()), \(bind: participantID), \(bind: scope.actor), \(bind: why), \(bind: now))
                    """).run()
            }
            // The trail records that the blind was broken, by whom and why; never the arm itself.
            try await AuditChain.append(
                on: tx, actor: scope.actor, action: .create, entity: "unblinding", entityID: participantID.uuidString,
                siteID: file.participant.siteID.uuidString, reason: why, changes: [.init(field: "unblinded_for", old: nil, new: scope.actor)], now: now)
            return arm
        }
    }

    /// Whether `actor` broke the blind for this participant.
    public func isUnblinded(participantID: UUID, actor: String) async throws -> Bool {
        try await (store.database as! any SQLDatabase).raw(
            "SELECT id FROM unblindings WHERE participant_id = \(bind: participantID) AND username = \(bind: actor)"
        ).first() != nil
    }
}
