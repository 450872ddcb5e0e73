import Foundation
import Testing
import TrialStandards

// SAS transport (XPORT) v5, checked against SAS TS-140 and against files SAS wrote.

/// ../shared/reference beside the checkout, found as TestSupport's `Reference.root` finds it; worked out here so that
/// this file needs nothing but TrialStandards.
private let reference = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("shared/reference")
private let examples = reference.appendingPathComponent("xpt/examples")
private let sdtm = reference.appendingPathComponent("sdtm/sas-cst-definexml21-sdtm33/transport")

private func present(_ url: URL) -> Bool { FileManager.default.fileExists(atPath: url.path) }

private func bytes(_ bits: UInt64) -> [UInt8] { (0..<8).map { UInt8(truncatingIfNeeded: bits >> UInt64(56 - 8 * $0)) } }

private func hex(_ bytes: some Sequence<UInt8>) -> String { bytes.map { String(format: "%02X", $0) }.joined(separator: " ") }

private func encoded(_ value: Double) throws -> [UInt8] { bytes(try #require(IBMFloat.encode(value), "\(value)")) }

private func member(_ url: URL) throws -> XPORTMember {
    let library = try XPORT.read(contentsOf: url)
    #expect(library.members.count == 1, "\(url.lastPathComponent)")
    return try #require(library.members.first)
}

/// The file's observations and each variable's offset in a row, found from the bytes here rather than by the reader:
/// the data begins after the OBS header record (TS-140 §8) and each row is the variables' lengths in order.
private struct RawObservations {
    let data: [UInt8]
    let start: Int
    let rowLength: Int
    let offsets: [String: (at: Int, length: Int)]

    init(_ url: URL, _ variables: [XPORTVariable]) throws {
        let data = [UInt8](try Data(contentsOf: url))
        let obs = Array("HEADER RECORD*******OBS     HEADER RECORD!!!!!!!".utf8)
        let record = try #require(stride(from: 0, to: data.count, by: 80).first { data[$0..<$0 + obs.count].elementsEqual(obs) })
        self.data = data
        start = record + 80
        var offsets: [String: (Int, Int)] = [:]
        var position = 0
        for v in variables { offsets[v.name] = (position, v.length); position += v.length }
        self.offsets = offsets
        rowLength = position
    }

    func cell(_ row: Int, _ name: String) throws -> [UInt8] {
        let (at, length) = try #require(offsets[name])
        let base = start + row * rowLength + at
        return Array(data[base..<base + length])
    }
}

private func day(_ iso: String) throws -> Date {
    var calendar = Calendar(identifier: .gregorian)
    calendar.timeZone = TimeZone(identifier: "UTC")!
    let parts = iso.prefix(10).split(separator: "-").compactMap { Int($0) }
    try #require(parts.count == 3, "\(iso)")
    return try #require(calendar.date(from: DateComponents(year: parts[0], month: parts[1], day: parts[2])))
}

/// SDTM study day: the day of RFSTDTC is day 1 and there is no day 0 (SDTMIG 4.4.4).
private func studyDay(_ date: String, reference: String) throws -> Double {
    let days = (try day(date).timeIntervalSince(try day(reference)) / 86_400).rounded()
    return days >= 0 ? days + 1 : days
}

/// The file a second time, written from what the reader made of it.
private func rewritten(_ url: URL) throws -> Data {
    let library = try XPORT.read(contentsOf: url)
    let member = try #require(library.members.first)
    // One header serves the library and the member in this writer, as in every reference file.
    try #require(library.header == member.header, "\(url.lastPathComponent): library and member headers differ")
    let writer = try XPORTWriter(sink: XPORTMemorySink(), dataset: member.dataset, variables: member.variables, header: member.header)
    for row in member.rows { try writer.append(row) }
    try writer.finish()
    return writer.sink.data
}

/// nil when equal. Comparing files with `==` inside #expect would make Swift Testing diff megabytes on failure.
private func difference(_ a: Data, _ b: Data) -> String? {
    let (x, y) = ([UInt8](a), [UInt8](b))
    guard let index = x.indices.first(where: { $0 >= y.count || x[$0] != y[$0] }) else {
        return x.count == y.count ? nil : "lengths \(x.count) and \(y.count)"
    }
    return "first difference at byte \(index) (record \(index / 80 + 1), column \(index % 80 + 1))"
}

private func temporaryDirectory() throws -> URL {
    let url = FileManager.default.temporaryDirectory.appendingPathComponent("xport-tests-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
    return url
}

@Suite struct IBMFloatTests {
    /// testieee.c's xpt_testvals (TS-140 "Provided Subroutines"): 1, −1, 0 and 2.
    @Test func theSpecsTestValues() throws {
        let table: [(Double, UInt64)] = [(1, 0x4110_0000_0000_0000), (-1, 0xC110_0000_0000_0000), (0, 0), (2, 0x4120_0000_0000_0000)]
        for (value, bits) in table {
            #expect(IBMFloat.encode(value) == bits, "\(value)")
            #expect(IBMFloat.decode(bits) == .number(value), "\(value)")
        }
    }

    @Test func valuesWorkedByHand() throws {
        // 100 = 0x64 = 0.64 × 16^2.
        #expect(try encoded(100) == [0x42, 0x64, 0, 0, 0, 0, 0, 0])
        // 118.625 = 0x76.A = 0.76A × 16^2; negative sets the sign bit: 0x80 | 0x42.
        #expect(try encoded(-118.625) == [0xC2, 0x76, 0xA0, 0, 0, 0, 0, 0])
        // 0.5 = 0.8 × 16^0: exponent 0x40.
        #expect(try encoded(0.5) == [0x40, 0x80, 0, 0, 0, 0, 0, 0])
        // 0.1 is the double 0x1.999999999999A × 2^−4 = 0.1999999999999A × 16^0: the 53 bits shift in whole.
        #expect(try encoded(0.1) == [0x40, 0x19, 0x99, 0x99, 0x99, 0x99, 0x99, 0x9A])
        // 1/3 is 0x1.5555555555555 × 2^−2 = 0.55555555555554 × 16^0 (2^−2 needs a shift of 3 into the hex digit).
        #expect(try encoded(1.0 / 3) == [0x40, 0x55, 0x55, 0x55, 0x55, 0x55, 0x55, 0x54])
        // 4096 = 0.1 × 16^4.
        #expect(try encoded(4096) == [0x44, 0x10, 0, 0, 0, 0, 0, 0])
    }

    /// TS-140 "Missing Values": the first byte names the missing value, the rest are 0x00.
    @Test func missingValues() {
        let table: [(XPORTMissing?, UInt8, String)] = [
            (.standard, 0x2E, "."), (.underscore, 0x5F, "._"), (.letter("A"), 0x41, ".A"), (.letter("Z"), 0x5A, ".Z"),
        ]
        for (missing, code, text) in table {
            guard let missing else { Issue.record("no missing value \(text)"); continue }
            #expect(IBMFloat.encode(missing) == UInt64(code) << 56)
            #expect(IBMFloat.decode(UInt64(code) << 56) == .missing(missing))
            #expect(missing.description == text)
        }
        #expect(XPORTMissing.letter("a") == nil)
        #expect(XPORTMissing(code: 0x40) == nil)
        #expect(IBMFloat.decode(0x8000_0000_0000_0000) == nil)
    }

    @Test func theEdgesOfTheRange() {
        // ieee2xpt's range: IEEE exponents −260 to 248. 2^−260 = 0.1 × 16^−64: exponent byte 0.
        #expect(IBMFloat.encode(0x1p-260) == 0x0010_0000_0000_0000)
        #expect(IBMFloat.decode(0x0010_0000_0000_0000) == .number(0x1p-260))
        // The largest double below 2^249 = 0.1FFFFFFFFFFFFF × 16^63: exponent byte 0x7F.
        let largest = 0x1.fffffffffffffp248
        #expect(IBMFloat.encode(largest) == 0x7F1F_FFFF_FFFF_FFFF)
        #expect(IBMFloat.encode(-largest) == 0xFF1F_FFFF_FFFF_FFFF)
        for outside in [0x1p249, 0x1p-261, -0x1p300, .leastNonzeroMagnitude, .greatestFiniteMagnitude, .nan, .infinity, -.infinity] {
            #expect(IBMFloat.encode(outside) == nil, "\(outside)")
        }
        // IEEE −0 has no IBM counterpart but true zero.
        #expect(IBMFloat.encode(-0.0) == 0)
        #expect(IBMFloat.encode(1e-78) != nil)
        // 2^249 ≈ 9.06e74 is the spec's ceiling, though IBM's own runs to 16^63 ≈ 7.2e75.
        #expect(IBMFloat.encode(9e74) != nil)
        #expect(IBMFloat.encode(1e75) == nil)
    }

    /// Every double in range survives the trip exactly (53 bits fit in 56 after a hex shift), and the fraction is
    /// normalized: its first hex digit is never 0.
    @Test func everyDoubleInRangeRoundTrips() throws {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 {  // SplitMix64: the same values every run
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        for _ in 0..<20_000 {
            let random = next()
            let exponent = Int(random % 509) - 260
            let value = Double(sign: random & 1 == 0 ? .plus : .minus, exponent: exponent, significand: 1 + Double(next() >> 12) / 0x1p52)
            guard (-260...248).contains(Int(value.exponent)) else { continue }
            let bits = try #require(IBMFloat.encode(value), "\(value)")
            #expect(bits & 0x00F0_0000_0000_0000 != 0, "\(value) is not normalized: \(hex(bytes(bits)))")
            #expect(IBMFloat.decode(bits) == .number(value), "\(value)")
        }
    }

    @Test func unnormalizedAndTruncatedFractionsDecode() {
        // 0.01 (hex) × 16^2 = 1: valid IBM, though no writer normalizing its numbers produces it.
        #expect(IBMFloat.decode(0x4201_0000_0000_0000) == .number(1))
        // A numeric of length 3 keeps 3 bytes (TS-140 "Introduction"): 0x40 0x55 0x55 → 0.5555 (hex).
        #expect(IBMFloat.decode(0x4055_5500_0000_0000) == .number(Double(0x5555) / 0x10000))
    }
}

@Suite struct XPORTSpecSampleTests {
    /// Bytes from the LIST output of TS-140's sample session: two lines of hex digits, high and low nibbles.
    private func listed(_ zone: String, _ numr: String) -> [UInt8] {
        zip(zone, numr).map { UInt8(String([$0, $1]), radix: 16)! }
    }

    /// TS-140 "A Sample Session": data set ABC with X (numeric, DATE7.) = 1, 2, ., .A and Y (character 8,
    /// "character variable") = a, B, blank, *. Records 1–8 and 13 are text in the listing, laid out here by
    /// §1–§8 (the PDF's text loses runs of blanks); records 9–12 and 14 are the listing's own hex.
    @Test func theSampleSessionFileIsReproducedByteForByte() throws {
        let writer = try XPORTWriter(
            sink: XPORTMemorySink(), dataset: XPORTDataset(name: "ABC"),
            variables: [.numeric("X", format: XPORTFormat(name: "DATE", width: 7)), .character("Y", length: 8, label: "character variable")],
            header: XPORTHeader(sasVersion: "6.06", operatingSystem: "bsd4.2", created: try #require(XPORTTimestamp(text: "13APR89:10:20:06"))))
        for row: [XPORTValue] in [[.number(1), .text("a")], [.number(2), .text("B")], [.missing(.standard), .text("")], [.missing(try #require(.letter("A"))), .text("*")]] {
            try writer.append(row)
        }
        try writer.finish()
        let file = [UInt8](writer.sink.data)

        func text(_ s: String) -> [UInt8] { Array(s.utf8) + Array(repeating: 0x20, count: 80 - s.utf8.count) }
        let expected: [[UInt8]] = [
            text("HEADER RECORD*******LIBRARY HEADER RECORD!!!!!!!000000000000000000000000000000"),
            text("SAS     SAS     SASLIB  6.06    bsd4.2                          13APR89:10:20:06"),
            text("13APR89:10:20:06"),
            text("HEADER RECORD*******MEMBER  HEADER RECORD!!!!!!!000000000000000001600000000140"),
            text("HEADER RECORD*******DSCRPTR HEADER RECORD!!!!!!!000000000000000000000000000000"),
            text("SAS     ABC     SASDATA 6.06    bsd4.2                          13APR89:10:20:06"),
            text("13APR89:10:20:06"),
            text("HEADER RECORD*******NAMESTR HEADER RECORD!!!!!!!000000000200000000000000000000"),
            listed("00000000522222222222222222222222222222222222222222222222445422220000000022222222",
                   "01000801800000000000000000000000000000000000000000000000414500000700000000000000"),
            listed("00000000000000000000000000000000000000000000000000000000000000000000522222226667",
                   "00000000000000000000000000000000000000000000000000000000000002000802900000003812"),
            listed("66767276766666222222222222222222222222222222000000002222222200000000000000000000",
                   "134520612912C5000000000000000000000000000000000000000000000000000008000000000000"),
            listed("00000000000000000000000000000000000000002222222222222222222222222222222222222222",
                   "00000000000000000000000000000000000000000000000000000000000000000000000000000000"),
            text("HEADER RECORD*******OBS     HEADER RECORD!!!!!!!000000000000000000000000000000"),
            listed("41000000622222224200000042222222200000002222222240000000222222222222222222222222",
                   "10000000100000001000000020000000E00000000000000010000000A00000000000000000000000"),
        ]
        #expect(file.count == expected.count * 80)
        for (index, record) in expected.enumerated() where index * 80 + 80 <= file.count {
            #expect(Array(file[index * 80..<index * 80 + 80]) == record, "record \(index + 1)")
        }

        let read = try #require(try XPORT.read(writer.sink.data).members.first)
        #expect(read.variables.first?.format == XPORTFormat(name: "DATE", width: 7))
        #expect(read.values(of: "X") == [.number(1), .number(2), .missing(.standard), .missing(try #require(.letter("A")))])
        #expect(read.values(of: "Y") == [.text("a"), .text("B"), .text(""), .text("*")])
    }
}

@Suite struct XPORTReferenceFileTests {
    /// VSSTRESN is SAS's number for the text in VSSTRESC, and VSDY the study day of VSDTC from DM's RFSTDTC: the
    /// 8 bytes SAS stored must be what this encoder makes of those values (fractions, and negatives before day 1).
    @Test(.enabled(if: present(sdtm.appendingPathComponent("vs.xpt")) && present(sdtm.appendingPathComponent("dm.xpt")), "needs ../shared/reference/sdtm/sas-cst-definexml21-sdtm33/transport/vs.xpt and dm.xpt beside the checkout"))
    func theEncoderWritesSASsNumbers() throws {
        let vs = try member(sdtm.appendingPathComponent("vs.xpt"))
        let dm = try member(sdtm.appendingPathComponent("dm.xpt"))
        let start = Dictionary(uniqueKeysWithValues: zip(try #require(dm.values(of: "USUBJID")), try #require(dm.values(of: "RFSTDTC"))).map { ($0.text ?? "", $1.text ?? "") })
        let raw = try RawObservations(sdtm.appendingPathComponent("vs.xpt"), vs.variables)
        let column = { (name: String) throws -> [XPORTValue] in try #require(vs.values(of: name), "\(name)") }
        let (subjects, texts, dates) = (try column("USUBJID"), try column("VSSTRESC"), try column("VSDTC"))
        var fractions = 0, negatives = 0
        for row in vs.rows.indices {
            let text = try #require(texts[row].text)
            let value = try #require(Double(text), "VSSTRESC '\(text)' in record \(row + 1)")
            #expect(try raw.cell(row, "VSSTRESN") == encoded(value), "VSSTRESN record \(row + 1): \(text)")
            if value != value.rounded() { fractions += 1 }

            let subject = try #require(subjects[row].text)
            let firstDose = try #require(start[subject], "\(subject) is not in DM")
            let dy = try studyDay(try #require(dates[row].text), reference: firstDose)
            #expect(try raw.cell(row, "VSDY") == encoded(dy), "VSDY record \(row + 1): \(dy)")
            if dy < 0 { negatives += 1 }
        }
        #expect(vs.rows.count == 1414)
        #expect(fractions > 100 && negatives > 100, "the file should exercise fractions (\(fractions)) and negatives (\(negatives))")
    }

    /// TAETORD is each element's place within its arm: 1, 2, … in file order. Both TA examples, SAS 9.3's and R's.
    @Test(.enabled(if: present(examples), "needs ../shared/reference/xpt/examples beside the checkout"))
    func trialArmOrderIsStoredAsSASStoresIt() throws {
        for name in ["cdiscpilot01_ta_SAS9.3.xpt", "cdiscpilot_update2_ta_written_by_R_SASxport.xpt"] {
            let url = examples.appendingPathComponent(name)
            let ta = try member(url)
            let raw = try RawObservations(url, ta.variables)
            var places: [String: Int] = [:]
            for (row, arm) in try #require(ta.values(of: "ARMCD")).enumerated() {
                let place = (places[arm.text ?? ""] ?? 0) + 1
                places[arm.text ?? ""] = place
                #expect(try raw.cell(row, "TAETORD") == encoded(Double(place)), "\(name) record \(row + 1)")
                #expect(ta.rows[row][4] == .number(Double(place)))
            }
            #expect(ta.rows.count == (name.contains("SAS9.3") ? 8 : 11), "\(name)")
        }
    }

    /// SAS 9.4's IE example: one row, whose study day is missing: DM gives CDISC015 no RFSTDTC to count from.
    @Test(.enabled(if: present(examples), "needs ../shared/reference/xpt/examples beside the checkout"))
    func theIEExampleReadsAsSASWroteIt() throws {
        let url = examples.appendingPathComponent("sascst_sdtm33_ie_SAS9.4.xpt")
        let library = try XPORT.read(contentsOf: url)
        let ie = try #require(library.members.first)
        #expect(library.header.sasVersion == "9.4")
        #expect(library.header.operatingSystem == "X64_10PR")
        #expect(library.header.created.text == "21AUG20:09:14:25")
        #expect(ie.dataset == XPORTDataset(name: "IE", label: "Inclusion/Exclusion Criteria Not Met"))
        #expect(ie.variables.map(\.name) == ["STUDYID", "DOMAIN", "USUBJID", "IESEQ", "IETESTCD", "IETEST", "IECAT", "IEORRES", "IESTRESC", "EPOCH", "IEDTC", "IEDY"])
        #expect(ie.variables.map(\.length) == [12, 2, 8, 8, 7, 196, 9, 1, 1, 9, 10, 8])
        #expect(ie.variables[4].label == "Inclusion/Exclusion Criterion Short Name")
        #expect(ie.rows == [[
            .text("CDISCPILOT01"), .text("IE"), .text("CDISC015"), .number(1), .text("INCL03"), .text("MMSE score of 10 to 23."),
            .text("INCLUSION"), .text("N"), .text("N"), .text("SCREENING"), .text("2014-03-17"), .missing(.standard),
        ]])
        let raw = try RawObservations(url, ie.variables)
        #expect(try raw.cell(0, "IESEQ") == encoded(1))
        #expect(try raw.cell(0, "IEDY") == bytes(IBMFloat.encode(.standard)))
    }

    /// Read each SAS-written file, write it again from what was read with the same header: the same bytes.
    @Test(.enabled(if: present(examples) && present(sdtm), "needs ../shared/reference/xpt/examples and ../shared/reference/sdtm beside the checkout"))
    func everyReferenceFileIsRewrittenByteForByte() throws {
        var urls: [URL] = []
        for folder in [examples, sdtm] {
            urls += try FileManager.default.contentsOfDirectory(at: folder, includingPropertiesForKeys: nil)
                .filter { $0.pathExtension == "xpt" }.sorted { $0.lastPathComponent < $1.lastPathComponent }
        }
        #expect(urls.count == 30)
        for url in urls {
            let problem = difference(try rewritten(url), try Data(contentsOf: url))
            #expect(problem == nil, "\(url.lastPathComponent): \(problem ?? "")")
        }
    }

    /// The same through the file API: temporary file, rename, nothing left beside it.
    @Test(.enabled(if: present(examples), "needs ../shared/reference/xpt/examples beside the checkout"))
    func aReferenceFileIsRewrittenThroughTheFileAPI() throws {
        let url = examples.appendingPathComponent("cdiscpilot01_ta_SAS9.3.xpt")
        let ta = try member(url)
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let target = directory.appendingPathComponent("ta.xpt")
        try XPORT.write(to: target, dataset: ta.dataset, variables: ta.variables, header: ta.header) { emit in
            for row in ta.rows { try emit(row) }
        }
        #expect(difference(try Data(contentsOf: target), try Data(contentsOf: url)) == nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["ta.xpt"])
    }
}

@Suite struct XPORTWriterTests {
    let header = XPORTHeader(created: XPORTTimestamp(text: "01JAN25:00:00:00")!)

    private func ae(_ terms: [String]) throws -> XPORTMemorySink {
        let writer = try XPORTWriter(sink: XPORTMemorySink(), dataset: XPORTDataset(name: "AE"), variables: [.character("AETERM", length: 200), .numeric("AESEQ")], header: header)
        for (index, term) in terms.enumerated() { try writer.append([.text(term), .number(Double(index + 1))]) }
        try writer.finish()
        return writer.sink
    }

    @Test func aValueLongerThanDeclaredNamesDatasetVariableAndRecord() throws {
        let terms = Array(repeating: "HEADACHE", count: 16) + [String(repeating: "X", count: 240)]
        #expect(throws: XPORTError.valueTooLong(dataset: "AE", variable: "AETERM", record: 17, length: 240, limit: 200)) { try ae(terms) }
        let message = XPORTError.valueTooLong(dataset: "AE", variable: "AETERM", record: 17, length: 240, limit: 200).description
        #expect(message == "AE.AETERM record 17: value is 240 bytes, longer than the variable's length 200")
    }

    @Test func badCellsAreRefusedByName() throws {
        let variables: [XPORTVariable] = [.character("LBTESTCD", length: 8), .numeric("LBSTRESN")]
        func refusal(_ row: [XPORTValue]) throws -> XPORTError? {
            let writer = try XPORTWriter(sink: XPORTMemorySink(), dataset: XPORTDataset(name: "LB"), variables: variables, header: header)
            try writer.append([.text("ALT"), .number(1)])
            do { try writer.append(row) } catch let error as XPORTError { return error }
            return nil
        }
        // Non-ASCII is refused: the file cannot say its encoding and FDA asks for ASCII. 'é' is UTF-8 bytes 4–5.
        #expect(try refusal([.text("CAFé"), .number(1)]) == .nonASCIIValue(dataset: "LB", variable: "LBTESTCD", record: 2, byte: 4))
        #expect(try refusal([.number(1), .number(1)]) == .typeMismatch(dataset: "LB", variable: "LBTESTCD", record: 2, expected: "text (a special missing value is for numeric variables)", actual: "1.0"))
        #expect(try refusal([.missing(.underscore), .number(1)]) == .typeMismatch(dataset: "LB", variable: "LBTESTCD", record: 2, expected: "text (a special missing value is for numeric variables)", actual: "._"))
        #expect(try refusal([.text("ALT"), .text("12")]) == .typeMismatch(dataset: "LB", variable: "LBSTRESN", record: 2, expected: "a number or missing value", actual: "'12'"))
        #expect(try refusal([.text("ALT")]) == .wrongValueCount(dataset: "LB", record: 2, expected: 2, actual: 1))
        #expect(try refusal([.text("ALT"), .number(1e80)]) == .numberNotRepresentable(dataset: "LB", variable: "LBSTRESN", record: 2, value: 1e80))
        guard case .numberNotRepresentable(_, "LBSTRESN", 2, let value) = try refusal([.text("ALT"), .number(.nan)]) else {
            Issue.record("NaN was accepted")
            return
        }
        #expect(value.isNaN)
        // A missing character value is blank: `.` is accepted there.
        #expect(try refusal([.missing(.standard), .missing(.standard)]) == nil)
    }

    @Test func badMetadataIsRefusedBeforeAnyByteIsWritten() {
        func refusal(_ variables: [XPORTVariable], dataset: XPORTDataset = XPORTDataset(name: "DM"), header: XPORTHeader? = nil) -> XPORTError? {
            do { _ = try XPORTWriter(sink: XPORTMemorySink(), dataset: dataset, variables: variables, header: header ?? self.header) } catch let error as XPORTError { return error } catch { return nil }
            return nil
        }
        let ok = XPORTVariable.character("USUBJID", length: 20)
        for name in ["1AGE", "age", "AGEATCONSENT", "AGE-Y", "", "ÅGE"] {
            #expect(refusal([.numeric(name)]) == .invalidVariableName(dataset: "DM", name: name), "\(name)")
        }
        #expect(refusal([.numeric("_AGE")]) == nil)
        #expect(refusal([ok], dataset: XPORTDataset(name: "dm")) == .invalidDatasetName("dm"))
        #expect(refusal([ok], dataset: XPORTDataset(name: "DEMOGRAPHICS")) == .invalidDatasetName("DEMOGRAPHICS"))
        #expect(refusal([ok, ok]) == .duplicateVariable(dataset: "DM", variable: "USUBJID"))
        #expect(refusal([]) == .noVariables(dataset: "DM"))
        #expect(refusal([.character("X", length: 201)]) == .invalidLength(dataset: "DM", variable: "X", length: 201, allowed: 1...200))
        #expect(refusal([.character("X", length: 0)]) == .invalidLength(dataset: "DM", variable: "X", length: 0, allowed: 1...200))
        #expect(refusal([.numeric("X", length: 9)]) == .invalidLength(dataset: "DM", variable: "X", length: 9, allowed: 2...8))
        let long = String(repeating: "L", count: 41)
        #expect(refusal([.numeric("X", label: long)]) == .labelTooLong(dataset: "DM", variable: "X", length: 41, limit: 40))
        #expect(refusal([ok], dataset: XPORTDataset(name: "DM", label: long)) == .labelTooLong(dataset: "DM", variable: nil, length: 41, limit: 40))
        #expect(refusal([.numeric("X", label: "Weight (µg)")]) == .invalidMetadata(dataset: "DM", field: "label of X", value: "Weight (µg)"))
        #expect(refusal([.numeric("X", format: XPORTFormat(name: "DATE 9"))]) == .invalidMetadata(dataset: "DM", field: "format of X", value: "DATE 90.0"))
        #expect(refusal([ok], header: XPORTHeader(sasVersion: "9.4.1.2.3", created: header.created)) == .invalidMetadata(dataset: "DM", field: "SAS version", value: "9.4.1.2.3"))
        #expect(refusal([ok], header: XPORTHeader(operatingSystem: "LINUX X86_64", created: header.created)) == .invalidMetadata(dataset: "DM", field: "operating system", value: "LINUX X86_64"))
        let many = (1...10_000).map { XPORTVariable.numeric("V\($0)") }
        #expect(refusal(many) == .tooManyVariables(dataset: "DM", count: 10_000, limit: 9999))
    }

    /// Every kind of cell, back through the reader.
    @Test func valuesRoundTrip() throws {
        let variables: [XPORTVariable] = [.numeric("N"), .character("C", length: 12), .numeric("SHORT", length: 3)]
        let rows: [[XPORTValue]] = [
            [.number(-118.625), .text("  leading"), .number(1)],
            [.number(0.1), .text(""), .number(-2)],
            [.missing(.standard), .text("exactly 12 c"), .missing(.standard)],
            [.missing(.underscore), .text("x"), .missing(try #require(.letter("Z")))],
            [.missing(try #require(.letter("A"))), .text("!\"#$%&'()*+,"), .number(0)],
            [.number(1e-78), .text("trail   "), .number(0.5)],
            [.number(-7.2e74), .text("z"), .number(1.0 / 3)],
            [.numeric(nil), .character(nil), .numeric(16)],
        ]
        let writer = try XPORTWriter(sink: XPORTMemorySink(), dataset: XPORTDataset(name: "T"), variables: variables, header: header)
        for row in rows { try writer.append(row) }
        try writer.finish()
        #expect(writer.sink.data.count % 80 == 0)
        let read = try #require(try XPORT.read(writer.sink.data).members.first)
        #expect(read.variables == variables)
        #expect(read.values(of: "N") == rows.map { $0[0] })
        // Trailing blanks are padding, so "trail   " comes back as "trail"; leading blanks stay.
        #expect(read.values(of: "C") == rows.map { .text(($0[1].text ?? "").replacingOccurrences(of: "trail   ", with: "trail")) })
        // A 3-byte numeric is the 8-byte one truncated: exact for 1, −2, 0, 0.5 and 16, 0x0.555500 for 1/3.
        #expect(read.values(of: "SHORT") == [
            .number(1), .number(-2), .missing(.standard), .missing(try #require(.letter("Z"))), .number(0), .number(0.5),
            .number(Double(0x5555) / 0x10000), .number(16),
        ])
    }

    /// SAS pads the last record with blanks (TS-140 §9); blank rows before the end are data.
    @Test func paddingIsNotReadAsRows() throws {
        func readBack(_ terms: [String]) throws -> [XPORTValue]? {
            let writer = try XPORTWriter(sink: XPORTMemorySink(), dataset: XPORTDataset(name: "P"), variables: [.character("C", length: 7)], header: header)
            for term in terms { try writer.append([.text(term)]) }
            try writer.finish()
            return try #require(try XPORT.read(writer.sink.data).members.first).values(of: "C")
        }
        for terms in [["A", "", "B"], ["A"], [String](), ["", "", "C", "D", "E", "F", "G", "H", "I"]] {
            #expect(try readBack(terms) == terms.map(XPORTValue.text), "\(terms)")
        }
        // The format's one ambiguity: "A" and 20 blank rows of 7 bytes (147 bytes) pad to the same 160 bytes as "A" and
        // anywhere from 11 to 21 blank rows. The reader keeps blank rows that start within the first 80 bytes: 11.
        #expect(try readBack(["A"] + Array(repeating: "", count: 20)) == [.text("A")] + Array(repeating: .text(""), count: 11))
    }

    @Test func aRefusedRowLeavesTheOutputWhole() throws {
        let writer = try XPORTWriter(sink: XPORTMemorySink(), dataset: XPORTDataset(name: "CM"), variables: [.character("CMTRT", length: 4), .numeric("CMSEQ")], header: header)
        try writer.append([.text("ASA"), .number(1)])
        #expect(throws: XPORTError.valueTooLong(dataset: "CM", variable: "CMTRT", record: 2, length: 11, limit: 4)) {
            try writer.append([.text("PARACETAMOL"), .number(2)])
        }
        try writer.append([.text("APAP"), .number(2)])
        try writer.finish()
        #expect(throws: XPORTError.writerClosed(dataset: "CM")) { try writer.append([.text("X"), .number(3)]) }
        let read = try #require(try XPORT.read(writer.sink.data).members.first)
        #expect(read.rows == [[.text("ASA"), .number(1)], [.text("APAP"), .number(2)]])
    }

    /// Output leaves in pieces of at most 64 KiB as rows arrive, not as one dataset-sized block at the end.
    @Test func rowsStreamToTheSink() throws {
        struct Counting: XPORTByteSink {
            var total = 0, largest = 0, writes = 0
            mutating func write(_ bytes: ArraySlice<UInt8>) { total += bytes.count; largest = max(largest, bytes.count); writes += 1 }
        }
        let writer = try XPORTWriter(sink: Counting(), dataset: XPORTDataset(name: "LB"), variables: [.character("LBTESTCD", length: 8), .numeric("LBSTRESN"), .character("LBCOMM", length: 200)], header: header)
        let rows = 20_000
        for index in 0..<rows {
            try writer.append([.text("ALT"), .number(Double(index) / 4), .text("comment \(index)")])
            if index == rows / 2 { #expect(writer.sink.total > 1_000_000, "bytes should reach the sink while rows are still coming") }
        }
        try writer.finish()
        // Eight header records, three NAMESTRs in 6 records, the OBS header, then the rows padded to a record.
        let expected = 8 * 80 + 6 * 80 + 80 + (rows * 216 + 79) / 80 * 80
        #expect(writer.sink.total == expected)
        #expect(writer.sink.largest <= 65_536)
        #expect(writer.sink.writes >= rows * 216 / 65_536)
    }

    @Test func fitToDataShrinksCharacterLengthsToTheLongestValue() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("ae.xpt")
        let terms = ["HEADACHE", "NAUSEA", "PRURITUS AT APPLICATION SITE"]
        var passes = 0
        try XPORT.write(
            to: url, dataset: XPORTDataset(name: "AE", label: "Adverse Events"),
            variables: [.character("AETERM", length: 200), .character("AEOUT", length: 40), .numeric("AESEQ")], header: header, lengths: .fitToData
        ) { emit in
            passes += 1
            for (index, term) in terms.enumerated() { try emit([.text(term), .text(""), .number(Double(index + 1))]) }
        }
        #expect(passes == 2)
        let ae = try member(url)
        #expect(ae.variables.map(\.length) == [28, 1, 8])
        #expect(ae.values(of: "AETERM") == terms.map(XPORTValue.text))

        // The declared length is still the limit, and a source that changes between passes is caught.
        let variables: [XPORTVariable] = [.character("AETERM", length: 10)]
        #expect(throws: XPORTError.valueTooLong(dataset: "AE", variable: "AETERM", record: 3, length: 28, limit: 10)) {
            try XPORT.fitLengths(dataset: XPORTDataset(name: "AE"), variables: variables) { emit in for term in terms { try emit([.text(term)]) } }
        }
        var extra = 0
        #expect(throws: XPORTError.rowSourceChanged(dataset: "AE", firstPass: 1, secondPass: 2)) {
            try XPORT.write(to: url, dataset: XPORTDataset(name: "AE"), variables: variables, header: header, lengths: .fitToData) { emit in
                extra += 1
                for _ in 0..<extra { try emit([.text("NAUSEA")]) }
            }
        }
        // The failed write left the earlier file as it was.
        #expect(try member(url).variables.map(\.length) == [28, 1, 8])
    }

    @Test func aFailedWriteLeavesNoFileAndKeepsTheOldOne() throws {
        let directory = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: directory) }
        let url = directory.appendingPathComponent("ae.xpt")
        let variables: [XPORTVariable] = [.character("AETERM", length: 8)]
        func write(_ terms: [String]) throws {
            try XPORT.write(to: url, dataset: XPORTDataset(name: "AE"), variables: variables, header: header) { emit in
                for term in terms { try emit([.text(term)]) }
            }
        }
        #expect(throws: XPORTError.valueTooLong(dataset: "AE", variable: "AETERM", record: 3, length: 9, limit: 8)) { try write(["A", "B", "DIZZINESS"]) }
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == [])

        try write(["A", "B"])
        let good = try Data(contentsOf: url)
        struct SourceFailed: Error {}
        #expect(throws: SourceFailed.self) {
            try XPORT.write(to: url, dataset: XPORTDataset(name: "AE"), variables: variables, header: header) { emit in
                try emit([.text("C")])
                throw SourceFailed()
            }
        }
        #expect(difference(try Data(contentsOf: url), good) == nil)
        #expect(try FileManager.default.contentsOfDirectory(atPath: directory.path) == ["ae.xpt"])

        try write(["C"])
        #expect(try member(url).rows == [[.text("C")]])

        let missing = directory.appendingPathComponent("no/such/folder/ae.xpt")
        #expect(throws: XPORTError.self) { try XPORT.write(to: missing, dataset: XPORTDataset(name: "AE"), variables: variables, header: header) { _ in } }
    }

    @Test func timestampsAreSASDateTimes() throws {
        let utc = try #require(TimeZone(identifier: "UTC"))
        #expect(XPORTTimestamp(Date(timeIntervalSince1970: 0), timeZone: utc).text == "01JAN70:00:00:00")
        // 2020-08-21T09:14:25Z, the creation time the SAS 9.4 IE example carries.
        #expect(XPORTTimestamp(Date(timeIntervalSince1970: 1_598_001_265), timeZone: utc).text == "21AUG20:09:14:25")
        #expect(XPORTTimestamp(Date(timeIntervalSince1970: 1_598_001_265), timeZone: try #require(TimeZone(identifier: "Asia/Shanghai"))).text == "21AUG20:17:14:25")
        #expect(XPORTTimestamp(text: "21AUG20:09:14:25") != nil)
        for bad in ["21Aug20:09:14:25", "21AUG2020:09:14", "21XXX20:09:14:25", "21AUG20 09:14:25"] {
            #expect(XPORTTimestamp(text: bad) == nil, "\(bad)")
        }
    }
}

@Suite struct XPORTReaderTests {
    private func file(_ name: String, _ rows: [[XPORTValue]]) throws -> Data {
        let writer = try XPORTWriter(sink: XPORTMemorySink(), dataset: XPORTDataset(name: name), variables: [.character("C", length: 3), .numeric("N")],
                                     header: XPORTHeader(created: try #require(XPORTTimestamp(text: "01JAN25:00:00:00"))))
        for row in rows { try writer.append(row) }
        try writer.finish()
        return writer.sink.data
    }

    /// TS-140 §4: the member header records "occur for every member in the transport file".
    @Test func everyMemberOfALibraryIsRead() throws {
        let first = try file("ONE", [[.text("a"), .number(1)]])
        let second = try file("TWO", [[.text("b"), .number(2)], [.text("c"), .missing(.standard)]])
        let library = try XPORT.read(first + second.dropFirst(240))
        #expect(library.members.map(\.dataset.name) == ["ONE", "TWO"])
        #expect(library.members.map(\.rows) == [[[.text("a"), .number(1)]], [[.text("b"), .number(2)], [.text("c"), .missing(.standard)]]])
    }

    @Test func otherFilesAreRefused() throws {
        var v8 = try file("ONE", [])
        v8.replaceSubrange(20..<28, with: Array("LIBV8   ".utf8))
        #expect(throws: XPORTError.malformed(offset: 0, reason: "this is a version 8 transport file (LIBV8), not version 5")) { try XPORT.read(v8) }
        #expect(throws: XPORTError.self) { try XPORT.read(Data(repeating: 0x20, count: 800)) }
        #expect(throws: XPORTError.self) { try XPORT.read(try file("ONE", [[.text("a"), .number(1)]]).dropLast(40)) }
        var badMissing = try file("ONE", [[.text("a"), .number(1)]])
        badMissing[badMissing.count - 80 + 3] = 0x80
        for i in 4..<11 { badMissing[badMissing.count - 80 + i] = 0 }
        #expect(throws: XPORTError.self) { try XPORT.read(badMissing) }
    }
}
