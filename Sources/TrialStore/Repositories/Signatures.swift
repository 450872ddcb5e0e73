import Crypto
import FluentKit
import FluentSQL
import Foundation
import TrialDomain

public struct Signature: Codable, Equatable, Sendable {
    public var id: UUID
    public var participantID: UUID
    public var visit: String?
    public var form: String?
    public var meaning: SignatureMeaning
    public var statement: String
    public var signer: String
    public var signedAt: Date
    public var contentSHA256: String
    public var auditSequence: Int64
    public var chainHead: String
    public var invalidatedAt: Date?
    public var invalidatedBy: String?
    /// Whether the data it covers are still exactly those signed: stored and recomputed on every read, so a change
    /// made behind the server's back shows too.
    public var valid: Bool
    /// The values that differ from those signed.
    public var changed: [String]

    public var covers: String { form.map { "form \($0) at \(visit ?? "")" } ?? "the casebook" }
}

/// Electronic signatures (21 CFR 11.50, 11.70, 11.200): bound to the SHA-256 of exactly the signed values and to the
/// audit chain's head; invalidated, with an audit event, by any write that changes a signed value.
public struct FluentSignatureRepository: Sendable {
    let store: Store
    public init(store: Store) { self.store = store }

    /// Signs, once the caller has checked the credentials. `sessionHash`: the signing session, remembered so that
    /// later signings in it ask for the password alone.
    public func sign(
        participantID: UUID, visit: String?, form: String?, meaning: SignatureMeaning, sessionHash: String?, scope: AccessScope, now: Date
    ) async throws -> Signature {
        guard let role = scope.role else { throw StoreError.forbidden(rule: "a signature needs a signed-in user") }
        try SignatureRules.checkSigner(role)
        if (visit == nil) != (form == nil) { throw StoreError.invalid(field: "form", rule: "a form's signature names its visit and form; a casebook's neither") }
        return try await store.write { tx in
            let sql = tx as! any SQLDatabase
            let file = try await FluentScreeningRepository.file(participantID: participantID, scope: scope, on: tx)
            if let visit, let form {
                guard file.study.form(form)?.visits.contains(visit) == true else {
                    throw StoreError.invalid(field: "form", rule: "form '\(form)' is not collected at visit '\(visit)'")
                }
            }
            try await LockCheck.require(
                WriteTarget(siteID: file.participant.siteID, participantID: participantID, visit: visit, form: form), kind: .review, actor: scope.actor,
                attempted: "signature", on: tx)
            let values = try await Self.values(participantID: participantID, visit: visit, form: form, on: sql)
            guard !values.isEmpty else { throw StoreError.conflict(field: "signature", rule: "there are no data to sign") }
            let content = SignedContent.canonical(values)
            let hash = Self.sha256(content)
            let id = UUID.timeOrdered()
            let event = try await AuditChain.append(
                on: tx, actor: scope.actor, action: .create, entity: "signature", entityID: id.uuidString, siteID: file.participant.siteID.uuidString,
                reason: meaning.statement,
                changes: [
                    .init(field: "participant", old: nil, new: participantID.uuidString), .init(field: "covers", old: nil, new: form.map { "\(visit!).\($0)" } ?? "casebook"),
                    .init(field: "meaning", old: nil, new: meaning.rawValue), .init(field: "content_sha256", old: nil, new: hash),
                ], now: now)
            try await sql.raw("""
                INSERT INTO signatures (id, participant_id, site_id, visit_code, form_code, meaning, statement, signer, signed_at, content_sha256, content,
                  audit_sequence, chain_head)
                VALUES (\(bind: id), \(bind: participantID), \(bind: file.participant.siteID), \(bind: visit), \(bind: form), \(bind: meaning.rawValue),
                  \(bind: meaning.statement), \(bind: scope.actor), \(bind: now), \(bind: hash), \(bind: content), \(bind: event.sequence), \(bind: event.previousHash))
                """).run()
            if let sessionHash {
                if try await sql.raw("SELECT session_hash FROM signing_sessions WHERE session_hash = \(bind: sessionHash)").first() == nil {
                    try await sql.raw("""
                        INSERT INTO signing_sessions (session_hash, username, first_signed_at) VALUES (\(bind: sessionHash), \(bind: scope.actor), \(bind: now))
                        """).run()
                }
            }
            try await sql.raw("DELETE FROM signing_failures WHERE username = \(bind: scope.actor)").run()
            return Signature(
                id: id, participantID: participantID, visit: visit, form: form, meaning: meaning, statement: meaning.statement, signer: scope.actor,
                signedAt: now, contentSHA256: hash, auditSequence: event.sequence, chainHead: event.previousHash, invalidatedAt: nil, invalidatedBy: nil,
                valid: true, changed: [])
        }
    }

    /// Whether this session has signed before, so the password alone is asked for.
    public func hasSigned(sessionHash: String) async throws -> Bool {
        try await (store.database as! any SQLDatabase).raw("SELECT session_hash FROM signing_sessions WHERE session_hash = \(bind: sessionHash)").first() != nil
    }

    /// Until when signing is locked for this user, if it is.
    public func lockedUntil(username: String, now: Date) async throws -> Date? {
        let until = try await (store.database as! any SQLDatabase).raw("SELECT locked_until FROM signing_failures WHERE username = \(bind: username)")
            .first()?.decode(column: "locked_until", as: Date?.self)
        return until.flatMap { $0 > now ? $0 : nil }
    }

    /// Counts a wrong password, audited; at the fifth in a row signing locks for 15 minutes. Returns the lock's end.
    public func recordFailure(username: String, participantID: UUID, now: Date) async throws -> Date? {
        try await store.write { tx in
            let sql = tx as! any SQLDatabase
            let failures = try await sql.raw("SELECT failures FROM signing_failures WHERE username = \(bind: username)").first()?.decode(column: "failures", as: Int.self)
            let next = SignatureRules.afterFailure(failures: failures ?? 0, now: now)
            if failures == nil {
                try await sql.raw("""
                    INSERT INTO signing_failures (username, failures, locked_until) VALUES (\(bind: username), \(bind: next.failures), \(bind: next.lockedUntil))
                    """).run()
            } else {
                try await sql.raw("""
                    UPDATE signing_failures SET failures = \(bind: next.failures), locked_until = \(bind: next.lockedUntil) WHERE username = \(bind: username)
                    """).run()
            }
            try await AuditChain.append(
                on: tx, actor: username, action: .create, entity: "signature_refused", entityID: participantID.uuidString, siteID: nil,
                reason: next.lockedUntil == nil ? "wrong credentials" : "wrong credentials; signing locked until \(AuditEntry.timestamp(next.lockedUntil!))",
                changes: [], now: now)
            return next.lockedUntil
        }
    }

    public func signatures(participantID: UUID, scope: AccessScope) async throws -> [Signature] {
        try await FluentParticipantRepository.requireVisible(id: participantID, scope: scope, on: store.database)
        let sql = store.database as! any SQLDatabase
        let rows = try await sql.raw("""
            SELECT id, visit_code, form_code, meaning, statement, signer, signed_at, content_sha256, content, audit_sequence, chain_head, invalidated_at, invalidated_by
            FROM signatures WHERE participant_id = \(bind: participantID) ORDER BY signed_at
            """).all()
        var result: [Signature] = []
        for row in rows {
            let visit = try row.decode(column: "visit_code", as: String?.self), form = try row.decode(column: "form_code", as: String?.self)
            let stored = try row.decode(column: "content", as: String.self)
            let current = try await Self.values(participantID: participantID, visit: visit, form: form, on: sql)
            let hash = try row.decode(column: "content_sha256", as: String.self)
            let invalidatedAt = try row.decode(column: "invalidated_at", as: Date?.self)
            let same = Self.sha256(SignedContent.canonical(current)) == hash && Self.sha256(stored) == hash
            result.append(Signature(
                id: try row.decode(column: "id", as: UUID.self), participantID: participantID, visit: visit, form: form,
                meaning: SignatureMeaning(rawValue: try row.decode(column: "meaning", as: String.self)) ?? .approve,
                statement: try row.decode(column: "statement", as: String.self), signer: try row.decode(column: "signer", as: String.self),
                signedAt: try row.decode(column: "signed_at", as: Date.self), contentSHA256: hash,
                auditSequence: try row.decode(column: "audit_sequence", as: Int64.self), chainHead: try row.decode(column: "chain_head", as: String.self),
                invalidatedAt: invalidatedAt, invalidatedBy: try row.decode(column: "invalidated_by", as: String?.self),
                valid: same && invalidatedAt == nil, changed: SignedContent.changedKeys(SignedContent.parse(stored), current)))
        }
        return result
    }

    /// Marks invalid, with an audit event each, the participant's valid signatures that cover a value a write in this
    /// transaction changed: the casebook's always, a form's when the write touched that form at that visit.
    static func invalidate(participantID: UUID, visit: String?, forms: [String], actor: String, now: Date, on tx: any Database) async throws {
        let sql = tx as! any SQLDatabase
        let rows = try await sql.raw("""
            SELECT id, site_id, visit_code, form_code FROM signatures WHERE participant_id = \(bind: participantID) AND invalidated_at IS NULL
            """).all()
        for row in rows {
            let signedVisit = try row.decode(column: "visit_code", as: String?.self), signedForm = try row.decode(column: "form_code", as: String?.self)
            if let signedForm { guard signedVisit == visit, forms.contains(signedForm) else { continue } }
            let id = try row.decode(column: "id", as: UUID.self)
            try await sql.raw("UPDATE signatures SET invalidated_at = \(bind: now), invalidated_by = \(bind: actor) WHERE id = \(bind: id)").run()
            try await AuditChain.append(
                on: tx, actor: actor, action: .update, entity: "signature", entityID: id.uuidString, siteID: try row.decode(column: "site_id", as: UUID.self).uuidString,
                reason: "signed data changed", changes: [.init(field: "valid", old: "yes", new: "no")], now: now)
        }
    }

    /// The values a signature covers: a form's at one visit, or the whole casebook (forms, lab results, adverse events).
    static func values(participantID: UUID, visit: String?, form: String?, on sql: any SQLDatabase) async throws -> [SignedValue] {
        var values: [SignedValue] = []
        var forms: SQLQueryString = "SELECT visit_code, form_code, data FROM form_records WHERE participant_id = \(bind: participantID)"
        if let visit, let form { forms = forms + " AND visit_code = \(bind: visit) AND form_code = \(bind: form)" }
        for row in try await sql.raw(forms).all() {
            let v = try row.decode(column: "visit_code", as: String.self), f = try row.decode(column: "form_code", as: String.self)
            for (field, value) in FluentFormRecordRepository.values(try row.decode(column: "data", as: String.self)) {
                values.append(SignedValue(key: "\(v)/\(f).\(field)", value: value))
            }
        }
        guard form == nil else { return values }
        for row in try await sql.raw("""
            SELECT visit_code, test_code, entered_value, entered_unit, collected_at FROM lab_results WHERE participant_id = \(bind: participantID)
            """).all() {
            let key = "\(try row.decode(column: "visit_code", as: String.self))/lab.\(try row.decode(column: "test_code", as: String.self))"
            values.append(SignedValue(
                key: key,
                value: "\(FormValidator.format(try row.decode(column: "entered_value", as: Double.self))) \(try row.decode(column: "entered_unit", as: String.self)) at \(AuditEntry.timestamp(try row.decode(column: "collected_at", as: Date.self)))"))
        }
        for row in try await sql.raw("""
            SELECT id, term, grade, onset_at, resolved_at, seriousness, attribution, outcome FROM adverse_events WHERE participant_id = \(bind: participantID)
            """).all() {
            let key = "ae/\(try row.decode(column: "id", as: UUID.self).uuidString)"
            let resolved = try row.decode(column: "resolved_at", as: Date?.self).map(AuditEntry.timestamp) ?? ""
            values.append(SignedValue(
                key: key,
                value: [try row.decode(column: "term", as: String.self), "grade \(try row.decode(column: "grade", as: Int.self))",
                        AuditEntry.timestamp(try row.decode(column: "onset_at", as: Date.self)), resolved, try row.decode(column: "seriousness", as: String.self),
                        try row.decode(column: "attribution", as: String.self), try row.decode(column: "outcome", as: String.self)].joined(separator: "|")))
        }
        return values
    }

    static func sha256(_ text: String) -> String {
        SHA256.hash(data: Data(text.utf8)).map { String(format: "%02x", $0) }.joined()
    }
}

public struct UnsignedCasebook: Sendable, Equatable {
    public var id: UUID
    public var screeningNumber: String
    public var site: String
    /// Signed once, then changed.
    public var invalidated: Bool
}

extension FluentSignatureRepository {
    /// Participants with data and no valid casebook signature, in one query.
    public func unsigned(scope: AccessScope, limit: Int) async throws -> [UnsignedCasebook] {
        guard !scope.siteIDs.isEmpty else { return [] }
        return try await (store.database as! any SQLDatabase).raw("""
            SELECT p.id, p.screening_number, s.code,
              CASE WHEN EXISTS (SELECT 1 FROM signatures g WHERE g.participant_id = p.id AND g.form_code IS NULL) THEN 1 ELSE 0 END AS signed_before
            FROM participants p JOIN sites s ON s.id = p.site_id
            WHERE p.site_id IN (\(binds: scope.siteBinds)) AND p.deleted_at IS NULL
              AND (EXISTS (SELECT 1 FROM form_records f WHERE f.participant_id = p.id)
                OR EXISTS (SELECT 1 FROM lab_results l WHERE l.participant_id = p.id)
                OR EXISTS (SELECT 1 FROM adverse_events e WHERE e.participant_id = p.id))
              AND NOT EXISTS (SELECT 1 FROM signatures g WHERE g.participant_id = p.id AND g.form_code IS NULL AND g.invalidated_at IS NULL)
            ORDER BY p.screening_number LIMIT \(bind: limit)
            """).all().map {
            UnsignedCasebook(
                id: try $0.decode(column: "id", as: UUID.self), screeningNumber: try $0.decode(column: "screening_number", as: String.self),
                site: try $0.decode(column: "code", as: String.self), invalidated: try $0.decode(column: "signed_before", as: Int.self) == 1)
        }
    }
}
