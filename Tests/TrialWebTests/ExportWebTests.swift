import Foundation
import TestSupport
import Testing
import TrialDomain
import TrialStandards
import TrialStore
@testable import TrialWeb
import Vapor
import VaporTesting

private func when(_ hours: Double) -> String { iso(Date().addingTimeInterval(hours * 3600)) }

@Suite struct ExportAPITests {
    /// Exports are for statisticians and data managers; in a masked study a blinded reader always gets the blinded form
    /// and is refused the other; the SDTM export is a zip of the datasets and their Define-XML.
    @Test(arguments: TestDatabase.available)
    func exportsFollowTheRolesAndTheBlind(database: TestDatabase) async throws {
        try await TestApp.run(database) { t in
            try await t.user("cora", role: .coordinator, sites: ["SYSU3"])
            try await t.user("stan", role: .statistician, sites: ["SYSU3"])
            try await t.user("indi", role: .independentStatistician, sites: ["SYSU3"])
            let cora = try await t.token("cora"), stan = try await t.token("stan"), indi = try await t.token("indi")
            let id = try await t.send(.POST, "api/v1/participants", headers: bearer(cora), body: json(#"{"siteCode":"SYSU3","screeningNumber":"S-1"}"#))
                .content.get(String.self, at: "id")
            _ = try await t.send(.POST, "api/v1/participants/\(id)/labs", headers: bearer(cora),
                body: json(#"{"visit":"screening","test":"ALT","value":40,"unit":"U/L","collectedAt":"\#(when(-30))"}"#))

            #expect(try await t.send(.GET, "api/v1/exports/fhir", headers: bearer(cora)).status == .forbidden)
            let open = try await t.send(.GET, "api/v1/exports/fhir", headers: bearer(stan))
            #expect(open.status == .ok)
            #expect(open.body.string.contains("\"resourceType\":\"Observation\""))
            #expect(open.headers.first(name: .cacheControl) == "no-store")

            var masked = try StudyFile.builtIn()
            masked.version = 2
            masked.identity.masking = "DOUBLE"
            _ = try await FluentStudyRepository(store: t.store).publish(masked, actor: "dm", reason: "masking", now: Date())
            // The statistician is blinded now: the blinded form, whatever is asked, and "unblinded" refused.
            #expect(try await t.send(.GET, "api/v1/exports/fhir?blinded=false", headers: bearer(stan)).status == .forbidden)
            let odm = try await t.send(.GET, "api/v1/exports/odm", headers: bearer(stan))
            #expect(odm.status == .ok)
            #expect(!odm.body.string.contains("CB.I.ARMCD"))
            #expect(odm.body.string.contains("<SubjectData"))
            // The independent statistician sees arms, and may still ask for the blinded form.
            #expect(try await t.send(.GET, "api/v1/exports/odm?blinded=true", headers: bearer(indi)).status == .ok)
            let zip = try await t.send(.GET, "api/v1/exports/sdtm", headers: bearer(indi))
            #expect(zip.status == .ok)
            let bytes = Array(zip.body.readableBytesView)
            // A zip: local file headers (PK\3\4) first, the end of central directory (PK\5\6) last, naming define.xml and dm.xpt.
            #expect(bytes.starts(with: [0x50, 0x4B, 0x03, 0x04]))
            #expect(Array(bytes.suffix(22).prefix(4)) == [0x50, 0x4B, 0x05, 0x06])
            let text = String(decoding: bytes, as: UTF8.self)
            #expect(text.contains("define.xml") && text.contains("dm.xpt") && text.contains("ta.xpt"))
            // Python's zipfile reads it and finds every CRC right.
            let file = FileManager.default.temporaryDirectory.appendingPathComponent("sdtm-\(UUID().uuidString).zip")
            try Data(bytes).write(to: file)
            defer { try? FileManager.default.removeItem(at: file) }
            let python = Process()
            python.executableURL = URL(fileURLWithPath: "/usr/bin/env")
            python.arguments = ["python3", "-c", "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; print(len(z.namelist()))", file.path]
            let out = Pipe()
            python.standardOutput = out
            try python.run()
            python.waitUntilExit()
            #expect(python.terminationStatus == 0)
            #expect(Int(String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0 >= 13)
        }
    }

    /// CRC-32 of "123456789" is 0xCBF43926, the check value of the ISO 3309 / V.42 polynomial.
    @Test func crcMatchesTheStandardCheckValue() {
        #expect(ZipArchive.crc32(Data("123456789".utf8)) ^ 0xFFFF_FFFF == 0xCBF4_3926)
    }
}
