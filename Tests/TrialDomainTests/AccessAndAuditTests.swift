import Foundation
import Testing
@testable import TrialDomain

@Suite struct AccessPolicyTests {
    @Test(arguments: Role.allCases)
    func onlyTheStatisticianSeesTheRandomizationList(role: Role) {
        #expect(AccessPolicy.allows(role, .viewRandomizationList) == (role == .statistician))
    }

    @Test(arguments: [
        (Role.investigator, true), (.coordinator, true), (.dataManager, true),
        (.monitor, false), (.statistician, false), (.dsmbViewer, false), (.admin, false),
    ])
    func whoWritesParticipantData(role: Role, writes: Bool) {
        #expect(AccessPolicy.allows(role, .writeParticipants) == writes)
    }

    @Test func anAdministratorReadsNoParticipant() {
        #expect(!AccessPolicy.allows(.admin, .readParticipants))
        #expect(AccessPolicy.allows(.admin, .manageUsers))
    }

    @Test(arguments: [("data_manager", Role.dataManager), ("DSMB-Viewer", .dsmbViewer), ("admin", .admin)])
    func rolesParseFromCommandLineSpellings(text: String, role: Role) {
        #expect(Role(parsing: text) == role)
    }

    @Test func unknownRoleIsRefused() {
        #expect(Role(parsing: "superuser") == nil)
    }
}

@Suite struct AuditEntryTests {
    @Test func timestampsAreUTCWithMilliseconds() {
        #expect(AuditEntry.timestamp(Date(timeIntervalSince1970: 0)) == "1970-01-01T00:00:00.000Z")
        // 1 700 000 000 s after the epoch is 2023-11-14 22:13:20 UTC.
        #expect(AuditEntry.timestamp(Date(timeIntervalSince1970: 1_700_000_000.123)) == "2023-11-14T22:13:20.123Z")
        // 1 709 208 000 s is 2024-02-29 12:00:00 UTC (a leap day); -1 s is the last second of 1969.
        #expect(AuditEntry.timestamp(Date(timeIntervalSince1970: 1_709_208_000)) == "2024-02-29T12:00:00.000Z")
        #expect(AuditEntry.timestamp(Date(timeIntervalSince1970: -1)) == "1969-12-31T23:59:59.000Z")
        // 951 868 799 s is 2000-02-29 23:59:59 UTC (a century leap year); 4 107 542 400 s is 2100-03-01 00:00:00 UTC.
        #expect(AuditEntry.timestamp(Date(timeIntervalSince1970: 951_868_799)) == "2000-02-29T23:59:59.000Z")
        #expect(AuditEntry.timestamp(Date(timeIntervalSince1970: 4_107_542_400)) == "2100-03-01T00:00:00.000Z")
    }

    @Test func canonicalFormIsSortedKeyJSONWithNullsWritten() {
        let entry = AuditEntry(
            sequence: 1, occurredAt: "2026-01-01T00:00:00.000Z", actor: "ana", action: .create, entity: "site", entityID: "S1",
            siteID: nil, reason: nil, changes: [.init(field: "code", old: nil, new: "S1")], previousHash: AuditEntry.genesisHash)
        let expected =
            #"{"action":"create","actor":"ana","changes":[{"field":"code","new":"S1","old":null}],"entity":"site","entityID":"S1","#
            + #""occurredAt":"2026-01-01T00:00:00.000Z","previousHash":"\#(AuditEntry.genesisHash)","reason":null,"sequence":1,"siteID":null}"#
        #expect(String(decoding: entry.canonicalBytes(), as: UTF8.self) == expected)
    }

    /// The form every chain so far was hashed in: Foundation's JSONSerialization with sorted keys.
    static func serialized(_ e: AuditEntry) -> String {
        var object: [String: Any] = [
            "sequence": e.sequence, "occurredAt": e.occurredAt, "actor": e.actor, "action": e.action.rawValue,
            "entity": e.entity, "entityID": e.entityID, "siteID": e.siteID ?? NSNull(), "reason": e.reason ?? NSNull(),
            "previousHash": e.previousHash,
        ]
        object["changes"] = e.changes.map { ["field": $0.field, "old": $0.old ?? NSNull(), "new": $0.new ?? NSNull()] as [String: Any] }
        let data = try! JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])
        return String(decoding: data, as: UTF8.self)
    }

    @Test func handWrittenCanonicalFormMatchesJSONSerializationByteForByte() {
        // Every ASCII character (controls, quote, backslash, slash, DEL) and multi-byte text, in every string field.
        let ascii = String(decoding: (0..<128).map { UInt8($0) }, as: UTF8.self)
        let texts = [ascii, "é ü 中 😀 \u{2028}\u{2029} µmol/L", "", "a\"b\\c/d", "ß\u{0}x"]
        for (i, text) in texts.enumerated() {
            let entry = AuditEntry(
                sequence: Int64(i) * 987_654_321 + 1, occurredAt: text, actor: text, action: AuditAction.allCases[i % 3], entity: text,
                entityID: text, siteID: i % 2 == 0 ? text : nil, reason: i % 2 == 1 ? text : nil,
                changes: [.init(field: text, old: nil, new: text), .init(field: "x", old: text, new: nil)], previousHash: text)
            #expect(String(decoding: entry.canonicalBytes(), as: UTF8.self) == Self.serialized(entry))
        }
        let empty = AuditEntry(
            sequence: Int64.max, occurredAt: "t", actor: "a", action: .delete, entity: "e", entityID: "i", siteID: nil, reason: "r",
            changes: [], previousHash: AuditEntry.genesisHash)
        #expect(String(decoding: empty.canonicalBytes(), as: UTF8.self) == Self.serialized(empty))
    }

    @Test(arguments: [AuditAction.update, .delete])
    func changesAfterTheFirstSaveNeedAReason(action: AuditAction) {
        #expect(throws: AuditRuleError.reasonRequired(entity: "participant", field: "status")) {
            try AuditRules.checkReason("  ", action: action, entity: "participant", changes: [.init(field: "status", old: "a", new: "b")])
        }
        #expect(throws: Never.self) {
            try AuditRules.checkReason("corrected transcription", action: action, entity: "participant", changes: [])
        }
    }

    @Test func aCreateNeedsNoReason() throws {
        try AuditRules.checkReason(nil, action: .create, entity: "participant", changes: [])
    }
}

@Suite struct ScreeningNumberTests {
    @Test(arguments: ["S01-001", "A_7"])
    func accepted(text: String) { #expect(ScreeningNumber.validate(text) == nil) }

    @Test(arguments: ["", "Jane Doe", "Ünal", String(repeating: "9", count: 33)])
    func refused(text: String) { #expect(ScreeningNumber.validate(text) != nil) }
}
