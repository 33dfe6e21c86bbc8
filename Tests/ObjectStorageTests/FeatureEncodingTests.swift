import Foundation
import NIOCore
import Testing

@testable import ObjectStorage

/// What the compatibility canaries send, checked against published examples and against botocore: presigned URLs
/// (AWS's "query string authentication" example), checksums (the CRC check values and RFC 3720's CRC32C vectors)
/// and `aws-chunked` framing with a trailer (botocore's `AwsChunkedWrapper`, which the SDK uploads go through).
@Suite("Presigning, checksums and aws-chunked framing")
struct FeatureEncodingTests {
    static let credentials = Credentials(
        accessKeyID: "AKIAIOSFODNN7EXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")

    /// AWS S3 API reference, "Authenticating Requests: Using Query Parameters", the GET example.
    @Test func presignedGetMatchesAWSExample() {
        let presigned = SigV4Signer(region: "us-east-1").presign(
            method: "GET", canonicalURI: "/test.txt", host: "examplebucket.s3.amazonaws.com", expires: 86_400,
            credentials: Self.credentials, date: Date(timeIntervalSince1970: 1_369_353_600))
        #expect(presigned.signature == "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
        #expect(
            presigned.encodedQuery
                == "X-Amz-Algorithm=AWS4-HMAC-SHA256"
                + "&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request"
                + "&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host"
                + "&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404")
        #expect(presigned.canonicalRequest.hasSuffix("\nhost:examplebucket.s3.amazonaws.com\n\nhost\nUNSIGNED-PAYLOAD"))
    }

    struct PresignCase: Codable {
        var host: String
        var path: String
        var access_key: String
        var secret_key: String
        var token: String?
        var region: String
        var date: Double
        var expires: Int
    }

    struct PresignReference: Codable {
        var url: String
        var signature: String
    }

    /// Sixty generated requests (odd keys, session tokens, regions, expiries) presigned by us and by botocore.
    @Test func presignedURLsMatchBotocore() throws {
        let keys = ["a", "photos/2026/x y.jpg", "日本/ü+=&.txt", "~tilde/(paren)!*'", "deep//slash/./dot"]
        let cases = (0..<60).map { index in
            PresignCase(
                host: ["127.0.0.1:7480", "examplebucket.s3.amazonaws.com", "localhost:9000"][index % 3],
                path: "/bucket-\(index % 4)/" + keys[index % keys.count],
                access_key: "AKIA\(index)EXAMPLE", secret_key: "secret/\(index)+key",
                token: index % 4 == 0 ? "session/\(index)+token==" : nil,
                region: ["us-east-1", "eu-west-3", "default"][index % 3],
                date: Double(1_500_000_000 + index * 86_399), expires: [1, 300, 3600, 604_800][index % 4])
        }
        let references = try Self.botocore([PresignReference].self, mode: "presign", cases)
        try #require(references.count == cases.count)
        for (testCase, reference) in zip(cases, references) {
            let ours = SigV4Signer(region: testCase.region).presign(
                method: "GET", canonicalURI: S3URIEncoding.encode(testCase.path, keepSlash: true),
                host: testCase.host, expires: testCase.expires,
                credentials: Credentials(
                    accessKeyID: testCase.access_key, secretAccessKey: testCase.secret_key,
                    sessionToken: testCase.token),
                date: Date(timeIntervalSince1970: testCase.date))
            #expect(ours.signature == reference.signature, "\(testCase.path): \(ours.canonicalRequest)")
        }
    }

    /// The check values of the CRC catalogue ("123456789") and RFC 3720's CRC32C examples (B.4).
    @Test func checksumsMatchPublishedVectors() {
        let digits = Array("123456789".utf8)
        #expect(CRC32Table.ieee.checksum(digits) == 0xCBF4_3926)
        #expect(CRC32Table.castagnoli.checksum(digits) == 0xE306_9283)
        #expect(CRC32Table.castagnoli.checksum([UInt8](repeating: 0, count: 32)) == 0x8A91_36AA)
        #expect(CRC32Table.castagnoli.checksum([UInt8](repeating: 0xFF, count: 32)) == 0x62A8_AB43)
        #expect(CRC32Table.castagnoli.checksum((0..<32).map(UInt8.init)) == 0x46DD_794E)
        #expect(ChecksumAlgorithm.crc32.digest(of: digits) == "y/Q5Jg==")
        #expect(ChecksumAlgorithm.crc32c.digest(of: digits) == "4waSgw==")
        #expect(ChecksumAlgorithm.sha256.digest(of: [UInt8]()) == "47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=")
        #expect(ChecksumAlgorithm.crc32.headerName == "x-amz-checksum-crc32")
    }

    struct ChunkedCase: Codable {
        var body: String
        var algorithm: String
        var chunk_size: Int
    }

    struct ChunkedReference: Codable {
        var framed: String
    }

    /// Our framing is botocore's byte for byte: empty bodies, one chunk, exact multiples, a short last chunk.
    @Test func awsChunkedFramingMatchesBotocore() throws {
        let shapes: [(size: Int, chunk: Int, algorithm: ChecksumAlgorithm)] = [
            (0, 1 << 20, .crc32), (5, 1 << 20, .crc32), (1024, 1 << 20, .sha256), (4096, 1024, .crc32),
            (4097, 1024, .sha1), ((1 << 20) + 17, 1 << 20, .crc32),
        ]
        var bodies: [ByteBuffer] = []
        for shape in shapes {
            var buffer = ByteBuffer()
            for index in 0..<shape.size { buffer.writeInteger(UInt8(truncatingIfNeeded: index &* 31 &+ 7)) }
            bodies.append(buffer)
        }
        let cases = zip(shapes, bodies).map { shape, body in
            ChunkedCase(
                body: Data(body.readableBytesView).base64EncodedString(), algorithm: shape.algorithm.rawValue,
                chunk_size: shape.chunk)
        }
        let references = try Self.botocore([ChunkedReference].self, mode: "chunked", cases)
        try #require(references.count == cases.count)
        for ((shape, body), reference) in zip(zip(shapes, bodies), references) {
            let ours = AWSChunkedEncoding.encode(body, trailer: shape.algorithm, chunkSize: shape.chunk)
            #expect(
                Data(ours.readableBytesView) == Data(base64Encoded: reference.framed),
                "\(shape.size) bytes in chunks of \(shape.chunk) with \(shape.algorithm)")
        }
        // And one exact example, readable here: "hello" in chunks of 2.
        let hello = AWSChunkedEncoding.encode(ByteBuffer(string: "hello"), trailer: .crc32, chunkSize: 2)
        #expect(
            String(buffer: hello)
                == "2\r\nhe\r\n2\r\nll\r\n1\r\no\r\n0\r\nx-amz-checksum-crc32:NhCmhg==\r\n\r\n")
        #expect(
            AWSChunkedEncoding.headers(decodedLength: 5, trailer: .crc32).map { "\($0.0): \($0.1)" } == [
                "Content-Encoding: aws-chunked", "x-amz-decoded-content-length: 5",
                "x-amz-sdk-checksum-algorithm: CRC32", "x-amz-trailer: x-amz-checksum-crc32",
            ])
    }

    /// Runs `Fixtures/botocore_features.py MODE` with `cases` as JSON on stdin.
    static func botocore<Input: Encodable, Output: Decodable>(
        _ type: Output.Type, mode: String, _ cases: Input
    ) throws -> Output {
        let data = try runPythonFixture(
            "botocore_features.py", arguments: [mode], input: try JSONEncoder().encode(cases))
        return try JSONDecoder().decode(Output.self, from: data)
    }
}
