import Foundation
import Testing
import TrialStore

@Suite struct TimeOrderedIDTests {
    // RFC 9562 §5.7: the first 12 hex digits are the Unix time in milliseconds, the version digit (first of the
    // third group) is 7, and the variant (first hex digit of the fourth group) is one of 8, 9, a, b.
    @Test func idsCarryTheMillisecondsTheVersionAndTheVariant() {
        // 2026-11-30T00:00:00.1235Z, in the middle of its millisecond: `date -u -d 2026-11-30 +%s` gives 1795996800; 1795996800123 ms = 0x01a229c0547b.
        let text = UUID.timeOrdered(at: Date(timeIntervalSince1970: 1_795_996_800.1235)).uuidString.lowercased()
        #expect(text.hasPrefix("01a229c0-547b-7"))
        for _ in 0..<2_000 {
            let groups = UUID.timeOrdered().uuidString.lowercased().split(separator: "-")
            #expect(groups.map(\.count) == [8, 4, 4, 4, 12])
            #expect(groups[2].first == "7")
            #expect(["8", "9", "a", "b"].contains(groups[3].first!))
        }
    }

    // Ids made in a later millisecond sort after earlier ones, as text too (how SQLite stores them).
    @Test func laterIdsSortAfterEarlierOnes() {
        let start = Date(timeIntervalSince1970: 1_795_996_800)
        let ids = (0..<1_000).map { UUID.timeOrdered(at: start.addingTimeInterval((Double($0) + 0.5) / 1000)).uuidString }
        #expect(ids == ids.sorted())
    }

    // 74 random bits: a repeat among 100,000 ids of one millisecond would mean they are not random.
    @Test func idsOfOneMillisecondDoNotRepeat() {
        let now = Date()
        var seen = Set<UUID>()
        for _ in 0..<100_000 { seen.insert(UUID.timeOrdered(at: now)) }
        #expect(seen.count == 100_000)
        // Every random bit varies across ids; the time, version and variant bits do not.
        let ids = (0..<256).map { _ in UUID.timeOrdered(at: now).uuid }
        let first = withUnsafeBytes(of: ids[0]) { Array($0) }
        var differs = [UInt8](repeating: 0, count: 16)
        for id in ids.dropFirst() {
            withUnsafeBytes(of: id) { bytes in for i in 0..<16 { differs[i] |= bytes[i] ^ first[i] } }
        }
        #expect(differs == [0, 0, 0, 0, 0, 0, 0x0F, 0xFF, 0x3F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF])
    }
}

@Suite struct UUIDTextTests {
    /// The text stored for an id is exactly what Foundation's `uuidString` gives, so rows written either way match.
    @Test func theTextIsFoundationsUUIDString() {
        let known = "E621E1F8-C36C-495A-93FC-0C247A3E6E5F"
        #expect(UUID(uuidString: known)!.text == known)
        #expect(UUID(uuid: (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)).text == "00000000-0000-0000-0000-000000000000")
        #expect(UUID(uuid: (255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255, 255)).text == "FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF")
        for _ in 0..<1000 {
            let id = UUID()
            #expect(id.text == id.uuidString)
        }
    }
}
