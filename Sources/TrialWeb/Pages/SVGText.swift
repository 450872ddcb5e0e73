import Foundation

/// What every SVG the server draws needs of text: escaping, stable ids, widths without a font engine, wrapping.
enum SVGText {
    /// Escaped for element text and attribute values alike.
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default:
                // XML 1.0 forbids these even as character references; one would make the whole document unreadable.
                let v = scalar.value
                if (v < 0x20 && v != 0x9 && v != 0xA && v != 0xD) || v == 0xFFFE || v == 0xFFFF {
                    out += "\u{FFFD}"
                } else {
                    out.unicodeScalars.append(scalar)
                }
            }
        }
        return out
    }

    /// FNV-1a, 32 bits, as hex: stable across runs, unlike `Hasher`.
    static func fingerprint(_ text: String) -> String {
        var hash: UInt32 = 2_166_136_261
        for byte in text.utf8 {
            hash ^= UInt32(byte)
            hash = hash &* 16_777_619
        }
        let hex = String(hash, radix: 16)
        return String(repeating: "0", count: 8 - hex.count) + hex
    }

    /// Advance widths in ems, rounded up from DejaVu Sans, the widest of the usual sans-serif fallbacks.
    static func width(_ text: String, size: Int, bold: Bool) -> Double {
        var ems = 0.0
        for character in text {
            switch character {
            case " ", "i", "j", "l", "I", ".", ",", ":", ";", "'", "|", "!": ems += 0.34
            case "f", "t", "r", "(", ")", "[", "]", "-", "/": ems += 0.44
            case "•", "–", "=", "…": ems += 0.84
            case "m", "w", "M", "W", "%", "@", "&": ems += 1.0
            default:
                let wide = (character.unicodeScalars.first?.value ?? 0) >= 0x1100  // CJK, emoji and the like
                ems += wide ? 1.0 : character.isUppercase ? 0.8 : 0.66
            }
        }
        return ems * Double(size) * (bold ? 1.1 : 1)
    }

    /// `words` set in lines no wider than `width`, breaking at spaces; a word wider than a line is split.
    static func wrap(_ words: [String], width: Double, size: Int, bold: Bool) -> [String] {
        func fits(_ s: String) -> Bool { self.width(s, size: size, bold: bold) <= width }
        var lines: [String] = []
        var current = ""
        for word in words {
            let candidate = current.isEmpty ? word : current + " " + word
            if fits(candidate) {
                current = candidate
                continue
            }
            if !current.isEmpty { lines.append(current) }
            current = ""
            for character in word {
                if !current.isEmpty, !fits(current + String(character)) {
                    lines.append(current)
                    current = ""
                }
                current.append(character)
            }
        }
        if !current.isEmpty || lines.isEmpty { lines.append(current) }
        return lines
    }

    static func words(_ text: String) -> [String] { text.split(whereSeparator: \.isWhitespace).map(String.init) }
}
