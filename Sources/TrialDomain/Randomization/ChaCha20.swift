import Foundation

/// A deterministic cryptographic random generator: the ChaCha20 block function of RFC 8439 as a keystream.
/// The same 32-byte seed always yields the same allocation list, which is what makes the list auditable.
public struct ChaCha20Generator: RandomNumberGenerator, Sendable {
    private var state: [UInt32]
    private var buffer: [UInt32] = []
    private var index = 0

    /// `seed` must be 32 bytes; `stream` separates independent sequences drawn from one seed.
    public init(seed: [UInt8], stream: UInt64 = 0) {
        precondition(seed.count == 32, "a ChaCha20 seed is 32 bytes")
        var key = [UInt32](repeating: 0, count: 8)
        for i in 0..<8 {
            key[i] = UInt32(seed[4 * i]) | UInt32(seed[4 * i + 1]) << 8 | UInt32(seed[4 * i + 2]) << 16 | UInt32(seed[4 * i + 3]) << 24
        }
        // RFC 8439 §2.3: constants, key, block counter, nonce.
        state = [0x6170_7865, 0x3320_646e, 0x7962_2d32, 0x6b20_6574] + key + [0, 0, UInt32(truncatingIfNeeded: stream), UInt32(truncatingIfNeeded: stream >> 32)]
    }

    /// For tests against RFC 8439's vectors: a given counter and 96-bit nonce.
    init(key: [UInt8], counter: UInt32, nonce: [UInt32]) {
        self.init(seed: key)
        state[12] = counter
        state[13] = nonce[0]
        state[14] = nonce[1]
        state[15] = nonce[2]
    }

    static func quarterRound(_ x: inout [UInt32], _ a: Int, _ b: Int, _ c: Int, _ d: Int) {
        x[a] &+= x[b]; x[d] ^= x[a]; x[d] = x[d] << 16 | x[d] >> 16
        x[c] &+= x[d]; x[b] ^= x[c]; x[b] = x[b] << 12 | x[b] >> 20
        x[a] &+= x[b]; x[d] ^= x[a]; x[d] = x[d] << 8 | x[d] >> 24
        x[c] &+= x[d]; x[b] ^= x[c]; x[b] = x[b] << 7 | x[b] >> 25
    }

    /// One 64-byte block as sixteen little-endian words, then the counter moves on.
    mutating func block() -> [UInt32] {
        var x = state
        for _ in 0..<10 {
            Self.quarterRound(&x, 0, 4, 8, 12); Self.quarterRound(&x, 1, 5, 9, 13)
            Self.quarterRound(&x, 2, 6, 10, 14); Self.quarterRound(&x, 3, 7, 11, 15)
            Self.quarterRound(&x, 0, 5, 10, 15); Self.quarterRound(&x, 1, 6, 11, 12)
            Self.quarterRound(&x, 2, 7, 8, 13); Self.quarterRound(&x, 3, 4, 9, 14)
        }
        for i in 0..<16 { x[i] &+= state[i] }
        state[12] &+= 1
        return x
    }

    public mutating func next() -> UInt64 {
        if index + 2 > buffer.count {
            buffer = block()
            index = 0
        }
        defer { index += 2 }
        return UInt64(buffer[index]) | UInt64(buffer[index + 1]) << 32
    }

    /// A seed written as 64 hex digits, as it is stored and shown to the statistician.
    public static func seed(hex: String) -> [UInt8]? {
        let chars = Array(hex.lowercased())
        guard chars.count == 64 else { return nil }
        var bytes: [UInt8] = []
        for i in stride(from: 0, to: 64, by: 2) {
            guard let byte = UInt8(String(chars[i...i + 1]), radix: 16) else { return nil }
            bytes.append(byte)
        }
        return bytes
    }
}
