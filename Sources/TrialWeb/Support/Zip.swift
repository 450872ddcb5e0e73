import Foundation

/// A zip archive of files stored as they are (method 0, no compression), as APPNOTE.TXT 6.3 describes: a local header
/// and the data of each file, then the central directory. Written to a file handle a file at a time.
enum ZipArchive {
    /// CRC-32 (ISO 3309 / ITU-T V.42, polynomial 0xEDB88320), as APPNOTE 4.4.7 requires.
    static let table: [UInt32] = (0..<256).map { n -> UInt32 in
        var c = UInt32(n)
        for _ in 0..<8 { c = c & 1 != 0 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
        return c
    }

    static func crc32(_ data: Data, start: UInt32 = 0xFFFF_FFFF) -> UInt32 {
        var c = start
        for byte in data { c = table[Int((c ^ UInt32(byte)) & 0xFF)] ^ (c >> 8) }
        return c
    }

    static func write(files: [(name: String, url: URL)], to handle: FileHandle) throws {
        var offset: UInt32 = 0
        var central = Data()
        for file in files {
            let data = try Data(contentsOf: file.url, options: .alwaysMapped)
            guard data.count < Int(UInt32.max), offset < UInt32.max - UInt32(data.count) else {
                throw StoreErrorBridge.tooLarge(file.name)
            }
            let crc = crc32(data) ^ 0xFFFF_FFFF
            let name = Data(file.name.utf8)
            var local = Data()
            local.append(le32: 0x0403_4B50); local.append(le16: 20); local.append(le16: 0); local.append(le16: 0)
            local.append(le16: 0); local.append(le16: 0x21)  // 00:00 on 1980-01-01: fixed, so the same data give the same bytes
            local.append(le32: crc); local.append(le32: UInt32(data.count)); local.append(le32: UInt32(data.count))
            local.append(le16: UInt16(name.count)); local.append(le16: 0); local.append(name)
            try handle.write(contentsOf: local)
            try handle.write(contentsOf: data)
            central.append(le32: 0x0201_4B50); central.append(le16: 20); central.append(le16: 20); central.append(le16: 0); central.append(le16: 0)
            central.append(le16: 0); central.append(le16: 0x21)
            central.append(le32: crc); central.append(le32: UInt32(data.count)); central.append(le32: UInt32(data.count))
            central.append(le16: UInt16(name.count)); central.append(le16: 0); central.append(le16: 0); central.append(le16: 0); central.append(le16: 0)
            central.append(le32: 0); central.append(le32: offset); central.append(name)
            offset += UInt32(local.count + data.count)
        }
        var end = Data()
        end.append(le32: 0x0605_4B50); end.append(le16: 0); end.append(le16: 0)
        end.append(le16: UInt16(files.count)); end.append(le16: UInt16(files.count))
        end.append(le32: UInt32(central.count)); end.append(le32: offset); end.append(le16: 0)
        try handle.write(contentsOf: central + end)
    }

    enum StoreErrorBridge: Error, CustomStringConvertible {
        case tooLarge(String)
        var description: String {
            switch self { case .tooLarge(let name): "\(name) is too large for a zip without its 64-bit extension" }
        }
    }
}

extension Data {
    mutating func append(le16 value: UInt16) { Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) } }
    mutating func append(le32 value: UInt32) { Swift.withUnsafeBytes(of: value.littleEndian) { append(contentsOf: $0) } }
}
