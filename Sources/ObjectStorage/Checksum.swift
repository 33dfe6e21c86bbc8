import Crypto
public import Foundation

/// The flexible checksums S3 accepts on uploads (`x-amz-checksum-<name>`) and returns with
/// `x-amz-checksum-mode: ENABLED`: base64 of the big-endian digest.
public enum ChecksumAlgorithm: String, Sendable, CaseIterable, Codable {
    case crc32, crc32c, sha1, sha256

    /// The header that carries the value, such as `x-amz-checksum-crc32`.
    public var headerName: String { "x-amz-checksum-\(self.rawValue)" }

    /// The value of `x-amz-sdk-checksum-algorithm`, as the SDKs spell it (`CRC32`).
    public var sdkName: String { self.rawValue.uppercased() }

    /// The base64 digest of `bytes`, as S3 writes it.
    public func digest<D: DataProtocol>(of bytes: D) -> String {
        switch self {
        case .crc32: Self.base64(CRC32Table.ieee.checksum(bytes))
        case .crc32c: Self.base64(CRC32Table.castagnoli.checksum(bytes))
        case .sha1: Data(Insecure.SHA1.hash(data: bytes)).base64EncodedString()
        case .sha256: Data(SHA256.hash(data: bytes)).base64EncodedString()
        }
    }

    private static func base64(_ value: UInt32) -> String {
        Data([UInt8(value >> 24), UInt8(value >> 16 & 0xFF), UInt8(value >> 8 & 0xFF), UInt8(value & 0xFF)])
            .base64EncodedString()
    }
}

/// A reflected CRC-32 with its byte table: the IEEE polynomial (zlib's CRC32) or Castagnoli's (CRC32C).
struct CRC32Table: Sendable {
    let table: [UInt32]

    static let ieee = CRC32Table(reflectedPolynomial: 0xEDB8_8320)
    static let castagnoli = CRC32Table(reflectedPolynomial: 0x82F6_3B78)

    init(reflectedPolynomial: UInt32) {
        self.table = (0..<256).map { index -> UInt32 in
            var value = UInt32(index)
            for _ in 0..<8 { value = value & 1 == 1 ? (value >> 1) ^ reflectedPolynomial : value >> 1 }
            return value
        }
    }

    func checksum<D: DataProtocol>(_ bytes: D) -> UInt32 {
        var crc: UInt32 = 0xFFFF_FFFF
        for region in bytes.regions {
            for byte in region {
                crc = self.table[Int((crc ^ UInt32(byte)) & 0xFF)] ^ (crc >> 8)
            }
        }
        return crc ^ 0xFFFF_FFFF
    }
}
