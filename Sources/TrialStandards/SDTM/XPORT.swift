import Foundation

// SAS transport (XPORT) version 5, the file format FDA asks for SDTM datasets.
// The authority is SAS TS-140, "Record Layout of a SAS Version 5 or 6 Data Set in SAS Transport (XPORT) Format";
// comments cite its sections as "TS-140 §n" (the numbered items of "Record Layout") or by heading.
//
// Choices made here, each explained where it is implemented:
// - Character lengths are declared up front (TS-140 §7: each NAMESTR, with its length, precedes the data), and a
//   value longer than declared is an error. `XPORTLengthPolicy.fitToData` shrinks lengths to the data in two passes
//   over a row source the caller can replay.
// - Character data, names and labels must be ASCII: a transport file carries no encoding ("Encoding Guidelines"),
//   FDA asks for ASCII, and with ASCII a declared length in bytes is also a length in characters.
// - The writer holds one row and a 64 KiB output buffer, never the dataset.

// MARK: - Values

/// A SAS missing numeric value: `.`, `._` or `.A` to `.Z`.
public struct XPORTMissing: Hashable, Sendable, CustomStringConvertible {
    /// The first byte of the stored value (TS-140 "Missing Values"); the other seven bytes are 0x00.
    public let code: UInt8

    public static let standard = XPORTMissing(unchecked: 0x2E)
    public static let underscore = XPORTMissing(unchecked: 0x5F)

    /// `.A` to `.Z`; nil for anything else.
    public static func letter(_ letter: Character) -> XPORTMissing? {
        guard let ascii = letter.asciiValue, (0x41...0x5A).contains(ascii) else { return nil }
        return XPORTMissing(unchecked: ascii)
    }

    /// nil unless `code` is one TS-140 lists: 0x2E, 0x5F or 0x41–0x5A.
    public init?(code: UInt8) {
        guard code == 0x2E || code == 0x5F || (0x41...0x5A).contains(code) else { return nil }
        self.code = code
    }

    private init(unchecked code: UInt8) { self.code = code }

    public var description: String { code == 0x2E ? "." : "." + String(UnicodeScalar(code)) }
}

/// One cell of a row, in the order of the dataset's variables.
public enum XPORTValue: Hashable, Sendable, CustomStringConvertible {
    case number(Double)
    case missing(XPORTMissing)
    /// Stored blank-padded to the variable's length; read back with trailing blanks trimmed.
    case text(String)

    /// A numeric cell from an optional: nil is the standard missing value `.`.
    public static func numeric(_ value: Double?) -> XPORTValue { value.map(XPORTValue.number) ?? .missing(.standard) }

    /// A character cell from an optional: nil is blank, SAS's missing character value.
    public static func character(_ value: String?) -> XPORTValue { .text(value ?? "") }

    public var number: Double? { if case .number(let value) = self { value } else { nil } }
    public var text: String? { if case .text(let value) = self { value } else { nil } }
    public var missing: XPORTMissing? { if case .missing(let value) = self { value } else { nil } }

    public var description: String {
        switch self {
        case .number(let value): "\(value)"
        case .missing(let missing): missing.description
        case .text(let text): "'\(text)'"
        }
    }
}

// MARK: - Metadata

/// A display format or informat as the NAMESTR holds it (TS-140 §7: nform/nfl/nfd/nfj, niform/nifl/nifd).
/// `DATE9.` is name "DATE", width 9; `8.2` is name "", width 8, decimals 2.
public struct XPORTFormat: Hashable, Sendable {
    public enum Justification: Int16, Hashable, Sendable { case left = 0, right = 1 }

    public var name: String
    public var width: Int
    public var decimals: Int
    /// nfj; informats have no justification field, so it is ignored there.
    public var justification: Justification

    public init(name: String, width: Int = 0, decimals: Int = 0, justification: Justification = .left) {
        self.name = name
        self.width = width
        self.decimals = decimals
        self.justification = justification
    }
}

public struct XPORTVariable: Hashable, Sendable {
    public enum Kind: Hashable, Sendable { case numeric, character }

    /// 1–8 of A–Z, 0–9 and _, not starting with a digit.
    public var name: String
    public var kind: Kind
    /// Bytes in each observation: 1–200 for character (SAS V5), 2–8 for numeric (8 keeps full precision;
    /// TS-140 "Introduction": shorter numerics are the IBM double truncated).
    public var length: Int
    /// At most 40 bytes (TS-140 §7: char40 nlabel).
    public var label: String
    public var format: XPORTFormat?
    public var informat: XPORTFormat?

    public init(name: String, kind: Kind, length: Int, label: String = "", format: XPORTFormat? = nil, informat: XPORTFormat? = nil) {
        self.name = name
        self.kind = kind
        self.length = length
        self.label = label
        self.format = format
        self.informat = informat
    }

    public static func numeric(_ name: String, label: String = "", length: Int = 8, format: XPORTFormat? = nil, informat: XPORTFormat? = nil) -> XPORTVariable {
        XPORTVariable(name: name, kind: .numeric, length: length, label: label, format: format, informat: informat)
    }

    /// `length` is the declared maximum in bytes, from the study's SDTM metadata.
    public static func character(_ name: String, length: Int, label: String = "", format: XPORTFormat? = nil, informat: XPORTFormat? = nil) -> XPORTVariable {
        XPORTVariable(name: name, kind: .character, length: length, label: label, format: format, informat: informat)
    }
}

/// The member: name (the SDTM domain, e.g. "AE"), label and the rarely used data set type (TS-140 §5).
public struct XPORTDataset: Hashable, Sendable {
    public var name: String
    /// At most 40 bytes: TS-140 §5 stores only the first 40 characters.
    public var label: String
    public var type: String

    public init(name: String, label: String = "", type: String = "") {
        self.name = name
        self.label = label
        self.type = type
    }
}

/// A header date-time as TS-140 §2 formats it: ddMMMyy:hh:mm:ss, with a two-digit year and no time zone.
public struct XPORTTimestamp: Hashable, Sendable, CustomStringConvertible {
    public let text: String

    private static let months = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"]

    /// The wall-clock time in `timeZone`, as SAS writes its session's local time.
    public init(_ date: Date, timeZone: TimeZone = .current) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = timeZone
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        func two(_ n: Int?) -> String { let n = (n ?? 0) % 100; return n < 10 ? "0\(n)" : "\(n)" }
        text = two(c.day) + Self.months[(c.month ?? 1) - 1] + two(c.year) + ":" + two(c.hour) + ":" + two(c.minute) + ":" + two(c.second)
    }

    /// nil unless `text` is ddMMMyy:hh:mm:ss with an upper-case English month.
    public init?(text: String) {
        let b = Array(text.utf8)
        let digits = [0, 1, 5, 6, 8, 9, 11, 12, 14, 15]
        guard b.count == 16, digits.allSatisfy({ (0x30...0x39).contains(b[$0]) }), b[7] == 0x3A, b[10] == 0x3A, b[13] == 0x3A,
              Self.months.contains(String(decoding: b[2..<5], as: UTF8.self)) else { return nil }
        self.text = text
    }

    /// As found in a file, for the reader: other writers are not always this tidy.
    init(unchecked text: String) { self.text = text }

    public var description: String { text }
}

/// The fields of the library and member headers that describe where the file came from (TS-140 §2, §3, §5).
public struct XPORTHeader: Hashable, Sendable {
    /// At most 8 bytes each.
    public var sasVersion: String
    public var operatingSystem: String
    public var created: XPORTTimestamp
    public var modified: XPORTTimestamp

    /// "9.4" is the SAS release whose XPORT V5 engine wrote the reference files this writer reproduces byte for byte.
    public init(sasVersion: String = "9.4", operatingSystem: String = "CASEBOOK", created: XPORTTimestamp = XPORTTimestamp(Date()), modified: XPORTTimestamp? = nil) {
        self.sasVersion = sasVersion
        self.operatingSystem = operatingSystem
        self.created = created
        self.modified = modified ?? created
    }
}

/// How character lengths in the NAMESTRs are chosen.
public enum XPORTLengthPolicy: Hashable, Sendable {
    /// As declared: one pass, and a longer value is an error.
    case declared
    /// Each character length shrinks to its longest value (at least 1); the declared length stays the limit.
    /// Reads the row source twice. FDA's Study Data Technical Conformance Guide sizes a variable by its longest value
    /// across all the study's datasets: for that, measure each with `XPORT.fitLengths` and declare the maximum.
    case fitToData
}

// MARK: - Errors

public enum XPORTError: Error, Equatable, Sendable, CustomStringConvertible, LocalizedError {
    case invalidDatasetName(String)
    case invalidVariableName(dataset: String, name: String)
    case duplicateVariable(dataset: String, variable: String)
    case noVariables(dataset: String)
    case tooManyVariables(dataset: String, count: Int, limit: Int)
    /// `variable` nil: the dataset's own label.
    case labelTooLong(dataset: String, variable: String?, length: Int, limit: Int)
    /// A name, label, format or header field with a byte outside ASCII or the field's characters.
    case invalidMetadata(dataset: String, field: String, value: String)
    case invalidLength(dataset: String, variable: String, length: Int, allowed: ClosedRange<Int>)
    case wrongValueCount(dataset: String, record: Int, expected: Int, actual: Int)
    case typeMismatch(dataset: String, variable: String, record: Int, expected: String, actual: String)
    case valueTooLong(dataset: String, variable: String, record: Int, length: Int, limit: Int)
    /// `byte` is the 1-based position of the first non-ASCII byte in the value's UTF-8.
    case nonASCIIValue(dataset: String, variable: String, record: Int, byte: Int)
    /// NaN, infinity, or a magnitude outside IBM double range.
    case numberNotRepresentable(dataset: String, variable: String, record: Int, value: Double)
    /// Under `.fitToData` the second pass gave a different number of rows from the first.
    case rowSourceChanged(dataset: String, firstPass: Int, secondPass: Int)
    case writerClosed(dataset: String)
    case io(path: String, message: String)
    /// Reading: not a version 5 transport file, or a damaged one.
    case malformed(offset: Int, reason: String)

    public var description: String {
        switch self {
        case .invalidDatasetName(let name):
            "dataset name '\(name)' must be 1–8 of A–Z, 0–9 and _, not starting with a digit"
        case .invalidVariableName(let dataset, let name):
            "\(dataset): variable name '\(name)' must be 1–8 of A–Z, 0–9 and _, not starting with a digit"
        case .duplicateVariable(let dataset, let variable):
            "\(dataset): variable \(variable) is declared twice"
        case .noVariables(let dataset):
            "\(dataset): a dataset needs at least one variable"
        case .tooManyVariables(let dataset, let count, let limit):
            "\(dataset): \(count) variables, more than the \(limit) a version 5 transport file can describe"
        case .labelTooLong(let dataset, let variable, let length, let limit):
            "\(variable.map { "\(dataset).\($0)" } ?? dataset): label is \(length) bytes, longer than \(limit)"
        case .invalidMetadata(let dataset, let field, let value):
            "\(dataset): \(field) '\(value)' is not allowed (ASCII only, within the field's width)"
        case .invalidLength(let dataset, let variable, let length, let allowed):
            "\(dataset).\(variable): length \(length) is outside \(allowed.lowerBound)–\(allowed.upperBound)"
        case .wrongValueCount(let dataset, let record, let expected, let actual):
            "\(dataset) record \(record): \(actual) values for \(expected) variables"
        case .typeMismatch(let dataset, let variable, let record, let expected, let actual):
            "\(dataset).\(variable) record \(record): expected \(expected), got \(actual)"
        case .valueTooLong(let dataset, let variable, let record, let length, let limit):
            "\(dataset).\(variable) record \(record): value is \(length) bytes, longer than the variable's length \(limit)"
        case .nonASCIIValue(let dataset, let variable, let record, let byte):
            "\(dataset).\(variable) record \(record): byte \(byte) of the value is not ASCII"
        case .numberNotRepresentable(let dataset, let variable, let record, let value):
            "\(dataset).\(variable) record \(record): \(value) cannot be stored as an IBM double (use a missing value for no value)"
        case .rowSourceChanged(let dataset, let firstPass, let secondPass):
            "\(dataset): the row source gave \(firstPass) rows when measured and \(secondPass) when written"
        case .writerClosed(let dataset):
            "\(dataset): the writer is finished or failed; nothing more can be written"
        case .io(let path, let message):
            "\(path): \(message)"
        case .malformed(let offset, let reason):
            "not a readable SAS transport (XPORT) version 5 file at byte \(offset): \(reason)"
        }
    }

    public var errorDescription: String? { description }
}

// MARK: - IBM double

/// IBM System/360 double precision, the transport file's only number format (TS-140 "Numeric Data Fields"):
/// sign bit, 7-bit exponent of 16 in excess 64, 56-bit fraction with the radix point before its first hex digit.
///
/// Worked by hand from that layout:
/// -   1.0      = 0.1 (hex) × 16^1: exponent 64+1 = 0x41, fraction 0x10… → 41 10 00 00 00 00 00 00 (testieee.c's table)
/// -   100.0    = 0x64 = 0.64 × 16^2 → 42 64 00 00 00 00 00 00
/// - −118.625   = −0x76.A = −0.76A × 16^2: sign set, 0x80 | 0x42 = 0xC2 → C2 76 A0 00 00 00 00 00
/// -   0.5      = 0.8 × 16^0 → 40 80 00 00 00 00 00 00
public enum IBMFloat {
    /// The eight bytes as a big-endian integer; nil for NaN, ±infinity and magnitudes outside the range ieee2xpt accepts.
    ///
    /// An IEEE double is 1.f × 2^e with a 53-bit significand m = 1f. With s = e mod 4 (0…3), m << s is below 2^56 and,
    /// read as a 56-bit fraction, lies in [1/16, 1): a normalized IBM fraction, so no bit is lost. The value is then
    /// that fraction × 16^(floor(e/4) + 1), and the excess-64 exponent is floor(e/4) + 65, as ieee2xpt computes it.
    public static func encode(_ value: Double) -> UInt64? {
        guard value.isFinite else { return nil }
        // IEEE −0 is stored as IBM true zero; ieee2xpt would flag it as out of range.
        if value == 0 { return 0 }
        let e = Int(value.exponent)
        // ieee2xpt: "If the ieee exponent is greater than 248 or less than -260, then it cannot fit in the ibm exponent
        // field." IBM's exponent would in fact reach 2^252; keeping to SAS's routine writes nothing SAS would refuse.
        // Subnormal doubles (e < −1022) fall below the range too.
        guard (-260...248).contains(e) else { return nil }
        let significand = value.significandBitPattern | (1 << 52)
        let sign: UInt64 = value.sign == .minus ? 1 << 63 : 0
        return sign | UInt64((e >> 2) + 65) << 56 | significand << UInt64(e & 3)
    }

    /// The stored form of a missing value (TS-140 "Missing Values").
    public static func encode(_ missing: XPORTMissing) -> UInt64 { UInt64(missing.code) << 56 }

    /// `.number` or `.missing`; nil for a zero fraction under a first byte that is neither 0 nor a missing code.
    ///
    /// Rounds the 56-bit fraction to the nearest double where xpt2ieee truncates; the two agree on every value that
    /// came from a double, which is every value SAS writes. Unnormalized fractions are valid IBM numbers and decode too.
    public static func decode(_ bits: UInt64) -> XPORTValue? {
        let first = UInt8(truncatingIfNeeded: bits >> 56)
        let fraction = bits & 0x00FF_FFFF_FFFF_FFFF
        if fraction == 0 {
            // xpt2ieee: a non-zero first byte over seven zero bytes is a missing value.
            if first == 0 { return .number(0) }
            return XPORTMissing(code: first).map(XPORTValue.missing)
        }
        let magnitude = Double(sign: .plus, exponent: 4 * (Int(first & 0x7F) - 64) - 56, significand: Double(fraction))
        return .number(first & 0x80 == 0 ? magnitude : -magnitude)
    }
}

// MARK: - Byte sinks

/// Where the writer's bytes go, in pieces of at most 64 KiB.
public protocol XPORTByteSink {
    mutating func write(_ bytes: ArraySlice<UInt8>) throws
}

public struct XPORTFileSink: XPORTByteSink {
    public let handle: FileHandle
    public init(_ handle: FileHandle) { self.handle = handle }
    public func write(_ bytes: ArraySlice<UInt8>) throws { try handle.write(contentsOf: bytes) }
}

/// Collects the file in memory: for tests and small datasets.
public struct XPORTMemorySink: XPORTByteSink {
    public private(set) var data = Data()
    public init() {}
    public mutating func write(_ bytes: ArraySlice<UInt8>) throws { data.append(contentsOf: bytes) }
}

// MARK: - Layout

enum XPORTLayout {
    static let recordLength = 80
    static let namestrLength = 140
    static let blank: UInt8 = 0x20
    static let maxVariables = 9999  // TS-140 §6: the count is four digits
    static let characterLengths = 1...200
    static let numericLengths = 2...8

    /// TS-140 §1, §4, §6, §8: "HEADER RECORD*******", an 8-byte name, "HEADER RECORD!!!!!!!", 30 digits, 2 blanks.
    static func headerRecord(_ name: String, digits: String = String(repeating: "0", count: 30)) -> [UInt8] {
        Array(("HEADER RECORD*******" + name.padding(toLength: 8, withPad: " ", startingAt: 0) + "HEADER RECORD!!!!!!!" + digits + "  ").utf8)
    }

    static func headerPrefix(_ name: String) -> [UInt8] { Array(headerRecord(name).prefix(48)) }

    /// Left-justified, blank-padded ASCII; callers have checked the width.
    static func field(_ text: String, _ width: Int) -> [UInt8] {
        var bytes = Array(text.utf8.prefix(width))
        bytes.append(contentsOf: repeatElement(blank, count: width - bytes.count))
        return bytes
    }

    static func int16(_ n: Int) -> [UInt8] { withUnsafeBytes(of: Int16(n).bigEndian, Array.init) }
    static func int32(_ n: Int) -> [UInt8] { withUnsafeBytes(of: Int32(n).bigEndian, Array.init) }

    static func isName(_ name: String) -> Bool {
        let b = Array(name.utf8)
        guard (1...8).contains(b.count), !(0x30...0x39).contains(b[0]) else { return false }
        return b.allSatisfy { (0x41...0x5A).contains($0) || (0x30...0x39).contains($0) || $0 == 0x5F }
    }

    static func isASCII(_ text: String, max: Int) -> Bool { text.utf8.count <= max && text.utf8.allSatisfy { $0 < 0x80 } }

    /// Checks everything the headers and NAMESTRs will hold, before any byte is written.
    static func validate(_ dataset: XPORTDataset, _ variables: [XPORTVariable], _ header: XPORTHeader?) throws {
        let ds = dataset.name
        guard isName(ds) else { throw XPORTError.invalidDatasetName(ds) }
        guard dataset.label.utf8.count <= 40 else { throw XPORTError.labelTooLong(dataset: ds, variable: nil, length: dataset.label.utf8.count, limit: 40) }
        guard isASCII(dataset.label, max: 40) else { throw XPORTError.invalidMetadata(dataset: ds, field: "dataset label", value: dataset.label) }
        guard isASCII(dataset.type, max: 8) else { throw XPORTError.invalidMetadata(dataset: ds, field: "dataset type", value: dataset.type) }
        if let header {
            for (field, value, width) in [("SAS version", header.sasVersion, 8), ("operating system", header.operatingSystem, 8),
                                          ("created", header.created.text, 16), ("modified", header.modified.text, 16)]
            where !isASCII(value, max: width) {
                throw XPORTError.invalidMetadata(dataset: ds, field: field, value: value)
            }
        }
        guard !variables.isEmpty else { throw XPORTError.noVariables(dataset: ds) }
        guard variables.count <= maxVariables else { throw XPORTError.tooManyVariables(dataset: ds, count: variables.count, limit: maxVariables) }
        var seen = Set<String>()
        for v in variables {
            guard isName(v.name) else { throw XPORTError.invalidVariableName(dataset: ds, name: v.name) }
            guard seen.insert(v.name).inserted else { throw XPORTError.duplicateVariable(dataset: ds, variable: v.name) }
            guard v.label.utf8.count <= 40 else { throw XPORTError.labelTooLong(dataset: ds, variable: v.name, length: v.label.utf8.count, limit: 40) }
            guard isASCII(v.label, max: 40) else { throw XPORTError.invalidMetadata(dataset: ds, field: "label of \(v.name)", value: v.label) }
            let allowed = v.kind == .numeric ? numericLengths : characterLengths
            guard allowed.contains(v.length) else { throw XPORTError.invalidLength(dataset: ds, variable: v.name, length: v.length, allowed: allowed) }
            for (what, format) in [("format", v.format), ("informat", v.informat)] {
                guard let format else { continue }
                let nameOK = isASCII(format.name, max: 8) && !format.name.utf8.contains(blank)
                guard nameOK, (0...Int(Int16.max)).contains(format.width), (0...Int(Int16.max)).contains(format.decimals) else {
                    throw XPORTError.invalidMetadata(dataset: ds, field: "\(what) of \(v.name)", value: "\(format.name)\(format.width).\(format.decimals)")
                }
            }
        }
    }
}

// MARK: - Row encoding

/// Validates a row against the variables and lays it out as one observation (TS-140 §9).
struct XPORTRowCodec {
    let dataset: String
    let variables: [XPORTVariable]
    let positions: [Int]
    let rowLength: Int
    /// The longest character value seen per variable, for `.fitToData`.
    private(set) var longest: [Int]

    init(dataset: String, variables: [XPORTVariable]) {
        self.dataset = dataset
        self.variables = variables
        var position = 0
        positions = variables.map { v in defer { position += v.length }; return position }
        rowLength = position
        longest = Array(repeating: 0, count: variables.count)
    }

    /// Overwrites every byte of `row`, which has `rowLength` bytes; throws before touching it if any cell is bad.
    mutating func encode(_ values: [XPORTValue], record: Int, into row: inout [UInt8]) throws {
        guard values.count == variables.count else {
            throw XPORTError.wrongValueCount(dataset: dataset, record: record, expected: variables.count, actual: values.count)
        }
        for (index, (variable, value)) in zip(variables, values).enumerated() {
            try check(value, variable, index, record)
        }
        for (index, (variable, value)) in zip(variables, values).enumerated() {
            let start = positions[index]
            switch value {
            case .number(let number):
                // check() has ensured it is representable.
                put(IBMFloat.encode(number)!, length: variable.length, at: start, into: &row)
            case .missing(let missing) where variable.kind == .numeric:
                put(IBMFloat.encode(missing), length: variable.length, at: start, into: &row)
            case .missing:
                // check() let only `.` through: a character variable's missing value is blank.
                row.replaceSubrange(start..<start + variable.length, with: repeatElement(XPORTLayout.blank, count: variable.length))
            case .text(let text):
                var i = start
                for byte in text.utf8 { row[i] = byte; i += 1 }
                row.replaceSubrange(i..<start + variable.length, with: repeatElement(XPORTLayout.blank, count: start + variable.length - i))
            }
        }
    }

    private mutating func check(_ value: XPORTValue, _ v: XPORTVariable, _ index: Int, _ record: Int) throws {
        switch (v.kind, value) {
        case (.numeric, .number(let number)):
            guard IBMFloat.encode(number) != nil else {
                throw XPORTError.numberNotRepresentable(dataset: dataset, variable: v.name, record: record, value: number)
            }
        case (.numeric, .missing), (.character, .missing(.standard)):
            break
        case (.character, .text(let text)):
            let length = text.utf8.count
            guard length <= v.length else {
                throw XPORTError.valueTooLong(dataset: dataset, variable: v.name, record: record, length: length, limit: v.length)
            }
            if let bad = text.utf8.firstIndex(where: { $0 >= 0x80 }) {
                throw XPORTError.nonASCIIValue(dataset: dataset, variable: v.name, record: record, byte: text.utf8.distance(from: text.utf8.startIndex, to: bad) + 1)
            }
            longest[index] = max(longest[index], length)
        case (.numeric, _):
            throw XPORTError.typeMismatch(dataset: dataset, variable: v.name, record: record, expected: "a number or missing value", actual: value.description)
        case (.character, _):
            throw XPORTError.typeMismatch(dataset: dataset, variable: v.name, record: record, expected: "text (a special missing value is for numeric variables)", actual: value.description)
        }
    }

    /// A numeric of length n keeps the first n bytes of the IBM double (TS-140 "Introduction").
    private func put(_ bits: UInt64, length: Int, at start: Int, into row: inout [UInt8]) {
        for i in 0..<length { row[start + i] = UInt8(truncatingIfNeeded: bits >> UInt64(56 - 8 * i)) }
    }
}

// MARK: - Writer

/// Streams one dataset as a transport file: headers and NAMESTRs on creation, then each row as it is appended.
/// A rejected row leaves the output untouched, so the caller may go on; `XPORT.write(to:…)` stops at the first.
public final class XPORTWriter<Sink: XPORTByteSink> {
    public let dataset: XPORTDataset
    public let variables: [XPORTVariable]
    public private(set) var sink: Sink
    /// Rows written so far; a row's record number in errors is this plus one.
    public private(set) var recordCount = 0

    private var codec: XPORTRowCodec
    private var row: [UInt8]
    private var pending: [UInt8] = []
    private var bytesOut = 0
    private var closed = false

    private static var chunk: Int { 65_536 }

    public init(sink: Sink, dataset: XPORTDataset, variables: [XPORTVariable], header: XPORTHeader = XPORTHeader()) throws {
        try XPORTLayout.validate(dataset, variables, header)
        self.sink = sink
        self.dataset = dataset
        self.variables = variables
        codec = XPORTRowCodec(dataset: dataset.name, variables: variables)
        row = Array(repeating: XPORTLayout.blank, count: codec.rowLength)
        pending.reserveCapacity(Self.chunk + codec.rowLength)
        try emit(Self.headers(dataset, variables, header, positions: codec.positions))
        try flush()
    }

    public func append(_ values: [XPORTValue]) throws {
        guard !closed else { throw XPORTError.writerClosed(dataset: dataset.name) }
        try codec.encode(values, record: recordCount + 1, into: &row)
        recordCount += 1
        try emit(row)
    }

    /// Pads the last record with blanks (TS-140 §9: "no special trailing record") and hands over what is buffered.
    public func finish() throws {
        guard !closed else { throw XPORTError.writerClosed(dataset: dataset.name) }
        let tail = (XPORTLayout.recordLength - bytesOut % XPORTLayout.recordLength) % XPORTLayout.recordLength
        pending.append(contentsOf: repeatElement(XPORTLayout.blank, count: tail))
        bytesOut += tail
        try flush()
        closed = true
    }

    private func emit(_ bytes: [UInt8]) throws {
        pending.append(contentsOf: bytes)
        bytesOut += bytes.count
        if pending.count >= Self.chunk { try flush() }
    }

    private func flush() throws {
        do {
            var start = 0
            while start < pending.count {
                let end = min(start + Self.chunk, pending.count)
                try sink.write(pending[start..<end])
                start = end
            }
            pending.removeAll(keepingCapacity: true)
        } catch {
            closed = true
            throw error
        }
    }

    private static func headers(_ dataset: XPORTDataset, _ variables: [XPORTVariable], _ header: XPORTHeader, positions: [Int]) -> [UInt8] {
        typealias L = XPORTLayout
        var out: [UInt8] = []
        // §1–§3: library header and its two real records.
        out += L.headerRecord("LIBRARY")
        out += L.field("SAS", 8) + L.field("SAS", 8) + L.field("SASLIB", 8) + L.field(header.sasVersion, 8) + L.field(header.operatingSystem, 8)
            + L.field("", 24) + L.field(header.created.text, 16)
        out += L.field(header.modified.text, 16) + L.field("", 64)
        // §4: the member header's last digits give the NAMESTR size, 140.
        out += L.headerRecord("MEMBER", digits: "000000000000000001600000000140")
        out += L.headerRecord("DSCRPTR")
        // §5: member header data, then modified date, blanks to column 33, label and type.
        out += L.field("SAS", 8) + L.field(dataset.name, 8) + L.field("SASDATA", 8) + L.field(header.sasVersion, 8) + L.field(header.operatingSystem, 8)
            + L.field("", 24) + L.field(header.created.text, 16)
        out += L.field(header.modified.text, 16) + L.field("", 16) + L.field(dataset.label, 40) + L.field(dataset.type, 8)
        // §6: the variable count at offset 54.
        let count = String(variables.count)
        out += L.headerRecord("NAMESTR", digits: "000000" + String(repeating: "0", count: 4 - count.count) + count + String(repeating: "0", count: 20))
        // §7: 140-byte NAMESTRs streamed across records, the last one blank-padded.
        for (index, v) in variables.enumerated() {
            out += L.int16(v.kind == .numeric ? 1 : 2) + L.int16(0) + L.int16(v.length) + L.int16(index + 1)
            out += L.field(v.name, 8) + L.field(v.label, 40)
            out += L.field(v.format?.name ?? "", 8) + L.int16(v.format?.width ?? 0) + L.int16(v.format?.decimals ?? 0)
            out += L.int16(Int(v.format?.justification.rawValue ?? 0)) + [0, 0]
            out += L.field(v.informat?.name ?? "", 8) + L.int16(v.informat?.width ?? 0) + L.int16(v.informat?.decimals ?? 0)
            out += L.int32(positions[index]) + Array(repeating: 0, count: 52)
        }
        out += Array(repeating: L.blank, count: (L.recordLength - out.count % L.recordLength) % L.recordLength)
        // §8
        out += L.headerRecord("OBS")
        return out
    }
}

// MARK: - Reading

public struct XPORTMember: Hashable, Sendable {
    public var dataset: XPORTDataset
    public var header: XPORTHeader
    public var variables: [XPORTVariable]
    public var rows: [[XPORTValue]]

    /// The column of the variable named `name`, or nil if there is none.
    public func values(of name: String) -> [XPORTValue]? {
        variables.firstIndex { $0.name == name }.map { index in rows.map { $0[index] } }
    }
}

public struct XPORTLibrary: Hashable, Sendable {
    public var header: XPORTHeader
    public var members: [XPORTMember]
}

/// The source of rows for `XPORT.write(to:…)`: it calls `emit` once per row, in order. Under `.fitToData` it is
/// called twice and must give the same rows both times.
public typealias XPORTRowSource = (_ emit: ([XPORTValue]) throws -> Void) throws -> Void

public enum XPORT {
    /// Writes one dataset to `url`, all or nothing: the rows stream into a temporary file beside it, renamed over `url`
    /// only once complete; on any error the temporary file is removed and `url` is left as it was.
    public static func write(
        to url: URL, dataset: XPORTDataset, variables: [XPORTVariable], header: XPORTHeader = XPORTHeader(),
        lengths: XPORTLengthPolicy = .declared, rows: XPORTRowSource
    ) throws {
        try XPORTLayout.validate(dataset, variables, header)
        var variables = variables
        var measured: Int?
        if lengths == .fitToData {
            (variables, measured) = try fit(dataset: dataset, variables: variables, rows: rows)
        }
        let temp = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).partial")
        guard FileManager.default.createFile(atPath: temp.path, contents: nil) else {
            throw XPORTError.io(path: temp.path, message: "cannot create the temporary file")
        }
        do {
            let handle = try io(temp) { try FileHandle(forWritingTo: temp) }
            do {
                let writer = try XPORTWriter(sink: XPORTFileSink(handle), dataset: dataset, variables: variables, header: header)
                try rows { try writer.append($0) }
                if let measured, measured != writer.recordCount {
                    throw XPORTError.rowSourceChanged(dataset: dataset.name, firstPass: measured, secondPass: writer.recordCount)
                }
                try writer.finish()
                try io(temp) { try handle.synchronize() }
                try io(temp) { try handle.close() }
            } catch {
                try? handle.close()
                throw error
            }
            // rename(2) within one directory replaces `url` atomically: a reader sees the old file or the new, never part.
            guard rename(temp.path, url.path) == 0 else {
                throw XPORTError.io(path: url.path, message: String(cString: strerror(errno)))
            }
        } catch {
            try? FileManager.default.removeItem(at: temp)
            throw error
        }
    }

    /// The first pass of `.fitToData`, for callers streaming to their own sink: every row is checked as the writer
    /// would check it, and each character length becomes its longest value (at least 1, at most as declared).
    public static func fitLengths(dataset: XPORTDataset, variables: [XPORTVariable], rows: XPORTRowSource) throws -> [XPORTVariable] {
        try XPORTLayout.validate(dataset, variables, nil)
        return try fit(dataset: dataset, variables: variables, rows: rows).variables
    }

    private static func fit(dataset: XPORTDataset, variables: [XPORTVariable], rows: XPORTRowSource) throws -> (variables: [XPORTVariable], rows: Int) {
        var codec = XPORTRowCodec(dataset: dataset.name, variables: variables)
        var scratch = Array(repeating: XPORTLayout.blank, count: codec.rowLength)
        var count = 0
        try rows { values in
            count += 1
            try codec.encode(values, record: count, into: &scratch)
        }
        var fitted = variables
        for index in fitted.indices where fitted[index].kind == .character {
            fitted[index].length = max(1, codec.longest[index])
        }
        return (fitted, count)
    }

    private static func io<T>(_ url: URL, _ body: () throws -> T) throws -> T {
        do { return try body() } catch let error as XPORTError { throw error } catch {
            throw XPORTError.io(path: url.path, message: error.localizedDescription)
        }
    }

    public static func read(contentsOf url: URL) throws -> XPORTLibrary {
        try read(io(url) { try Data(contentsOf: url) })
    }

    /// Reads every member, holding the whole file: meant for tests, checks and round trips, not for streaming.
    /// Character values come back with trailing blanks trimmed, decoded as UTF-8 or, failing
    /// that, Windows-1252 (TS-140 "Introduction": character data is in the Windows encoding of the writing session).
    public static func read(_ data: Data) throws -> XPORTLibrary {
        try XPORTParser(bytes: [UInt8](data)).library()
    }
}

struct XPORTParser {
    let bytes: [UInt8]
    typealias L = XPORTLayout

    func library() throws -> XPORTLibrary {
        guard bytes.count >= 3 * L.recordLength, bytes.count % L.recordLength == 0 else {
            throw XPORTError.malformed(offset: bytes.count, reason: "the file is not a whole number of 80-byte records")
        }
        if has(L.headerPrefix("LIBV8"), at: 0) {
            throw XPORTError.malformed(offset: 0, reason: "this is a version 8 transport file (LIBV8), not version 5")
        }
        try expect("LIBRARY", at: 0)
        let header = self.header(real: 80, second: 160)
        var members: [XPORTMember] = []
        var offset = 3 * L.recordLength
        while offset < bytes.count {
            members.append(try member(at: &offset))
        }
        return XPORTLibrary(header: header, members: members)
    }

    private func member(at offset: inout Int) throws -> XPORTMember {
        let start = offset
        try expect("MEMBER", at: start)
        // §4: the NAMESTR size ends the member header: 0140, or 0136 from VAX/VMS.
        guard let namestrSize = Int(text(start + 74, 4)), namestrSize == 140 || namestrSize == 136 else {
            throw XPORTError.malformed(offset: start + 74, reason: "NAMESTR size '\(text(start + 74, 4))' is neither 0140 nor 0136")
        }
        try expect("DSCRPTR", at: start + 80)
        let dataset = XPORTDataset(name: text(start + 168, 8), label: text(start + 272, 40), type: text(start + 312, 8))
        let header = self.header(real: start + 160, second: start + 240)
        try expect("NAMESTR", at: start + 320)
        guard let count = Int(text(start + 374, 4).trimmingCharacters(in: .whitespaces)) else {
            throw XPORTError.malformed(offset: start + 374, reason: "the variable count is not a number")
        }
        var variables: [XPORTVariable] = []
        var positions: [Int] = []
        var at = start + 400
        guard at + count * namestrSize <= bytes.count else {
            throw XPORTError.malformed(offset: at, reason: "\(count) NAMESTRs run past the end of the file")
        }
        for _ in 0..<count {
            let variable = try namestr(at)
            variables.append(variable.0)
            positions.append(variable.1)
            at += namestrSize
        }
        let obs = (at + L.recordLength - 1) / L.recordLength * L.recordLength
        try expect("OBS", at: obs)
        let dataStart = obs + L.recordLength
        // §9: observations run to the next member header or the end of the file.
        var dataEnd = dataStart
        let memberPrefix = L.headerPrefix("MEMBER")
        while dataEnd < bytes.count, !has(memberPrefix, at: dataEnd) { dataEnd += L.recordLength }
        let rows = try observations(variables, positions, from: dataStart, to: dataEnd)
        offset = dataEnd
        return XPORTMember(dataset: dataset, header: header, variables: variables, rows: rows)
    }

    private func namestr(_ at: Int) throws -> (XPORTVariable, Int) {
        let type = int16(at), length = int16(at + 4)
        let kind: XPORTVariable.Kind
        switch type {
        case 1 where (1...8).contains(length): kind = .numeric
        case 2 where length >= 1: kind = .character
        default: throw XPORTError.malformed(offset: at, reason: "NAMESTR type \(type) with length \(length)")
        }
        func format(_ nameAt: Int, _ widthAt: Int, _ justification: Int16) -> XPORTFormat? {
            let name = text(nameAt, 8), width = int16(widthAt), decimals = int16(widthAt + 2)
            if name.isEmpty && width == 0 && decimals == 0 { return nil }
            return XPORTFormat(name: name, width: width, decimals: decimals, justification: justification == 1 ? .right : .left)
        }
        let variable = XPORTVariable(
            name: text(at + 8, 8), kind: kind, length: length, label: text(at + 16, 40),
            format: format(at + 56, at + 64, Int16(int16(at + 68))), informat: format(at + 72, at + 80, 0))
        return (variable, Int(int32(at + 84)))
    }

    private func observations(_ variables: [XPORTVariable], _ positions: [Int], from start: Int, to end: Int) throws -> [[XPORTValue]] {
        let rowLength = zip(variables, positions).map { $0.length + $1 }.max() ?? 0
        guard rowLength > 0 else { return [] }
        var count = (end - start) / rowLength
        // §9 pads the last record with blanks, which can look like blank rows when rows are shorter than a record.
        // A row of blanks lying wholly inside the last 80 bytes is taken as padding: a real all-blank last row of a
        // dataset with rows under 80 bytes is indistinguishable from it, as it is for every XPORT reader.
        while count > 0 {
            let rowStart = start + (count - 1) * rowLength
            guard end - rowStart < L.recordLength, bytes[rowStart..<rowStart + rowLength].allSatisfy({ $0 == L.blank }) else { break }
            count -= 1
        }
        var rows: [[XPORTValue]] = []
        rows.reserveCapacity(count)
        for r in 0..<count {
            let base = start + r * rowLength
            var row: [XPORTValue] = []
            row.reserveCapacity(variables.count)
            for (variable, position) in zip(variables, positions) {
                let at = base + position
                switch variable.kind {
                case .numeric:
                    var bits: UInt64 = 0
                    for i in 0..<8 { bits = bits << 8 | UInt64(i < variable.length ? bytes[at + i] : 0) }
                    guard let value = IBMFloat.decode(bits) else {
                        throw XPORTError.malformed(offset: at, reason: "\(variable.name): first byte 0x\(String(bytes[at], radix: 16)) over a zero fraction is no missing value")
                    }
                    row.append(value)
                case .character:
                    row.append(.text(text(at, variable.length)))
                }
            }
            rows.append(row)
        }
        return rows
    }

    private func header(real: Int, second: Int) -> XPORTHeader {
        XPORTHeader(
            sasVersion: text(real + 24, 8), operatingSystem: text(real + 32, 8),
            created: XPORTTimestamp(unchecked: raw(real + 64, 16)), modified: XPORTTimestamp(unchecked: raw(second, 16)))
    }

    private func has(_ prefix: [UInt8], at offset: Int) -> Bool {
        offset + prefix.count <= bytes.count && bytes[offset..<offset + prefix.count].elementsEqual(prefix)
    }

    private func expect(_ name: String, at offset: Int) throws {
        guard has(L.headerPrefix(name), at: offset) else {
            throw XPORTError.malformed(offset: offset, reason: "expected the \(name) header record")
        }
    }

    private func raw(_ offset: Int, _ count: Int) -> String { decode(bytes[offset..<offset + count]) }

    /// A blank-padded field with its trailing blanks removed.
    private func text(_ offset: Int, _ count: Int) -> String {
        var end = offset + count
        while end > offset, bytes[end - 1] == L.blank { end -= 1 }
        return decode(bytes[offset..<end])
    }

    private func decode(_ slice: ArraySlice<UInt8>) -> String {
        if let utf8 = String(bytes: slice, encoding: .utf8) { return utf8 }
        if let windows = String(bytes: slice, encoding: .windowsCP1252) { return windows }
        return String(String.UnicodeScalarView(slice.map { Unicode.Scalar($0) }))
    }

    private func int16(_ at: Int) -> Int { Int(Int16(bitPattern: UInt16(bytes[at]) << 8 | UInt16(bytes[at + 1]))) }
    private func int32(_ at: Int) -> Int32 { Int32(bitPattern: bytes[at..<at + 4].reduce(0) { $0 << 8 | UInt32($1) }) }
}
