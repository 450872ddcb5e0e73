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
