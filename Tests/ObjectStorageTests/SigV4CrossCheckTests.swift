import Foundation
import Testing

@testable import ObjectStorage

/// Signs generated requests with our signer and with botocore (run as a subprocess) and compares.
///
/// The inputs stress what signers get wrong: spaces, unicode, `+ = ~ ! * ' ( )`, `//`, empty query values,
/// headers with runs of spaces, session tokens.
@Suite("SigV4 signer agrees with botocore")
struct SigV4CrossCheckTests {
    struct Case: Codable {
        var method: String
        var host: String
        var bucket: String
        var key: String
        var query: [[String]]
        var headers: [[String]]
        var payload_hash: String
        var access_key: String
        var secret_key: String
        var token: String?
        var region: String
        var timestamp: String
        var date: Double
    }

    struct Reference: Codable {
        var signature: String
        var canonical_request: String
    }

    /// A small deterministic generator, so a failure reproduces.
    struct SplitMix64: RandomNumberGenerator {
        var state: UInt64
        mutating func next() -> UInt64 {
            self.state &+= 0x9E37_79B9_7F4A_7C15
            var z = self.state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
    }

    static let pieces = [
        "a", "Z", "0", "9", " ", "  ", "-", "_", ".", "~", "/", "//", "+", "=", "!", "*", "'", "(", ")", "&", "$",
        "@", ",", ";", ":", "?", "#", "[", "]", "%", "é", "日本", "ü", "😀", "ñ", "photos", "2026", "x y z",
    ]

    static func randomText(_ rng: inout SplitMix64, count: ClosedRange<Int>) -> String {
        let length = Int.random(in: count, using: &rng)
        return (0..<length).map { _ in Self.pieces.randomElement(using: &rng) ?? "a" }.joined()
    }

    static func makeCases(count: Int) -> [Case] {
        var rng = SplitMix64(state: 20_261_125)
        let methods = ["GET", "PUT", "HEAD", "DELETE", "POST"]
        let hosts = ["127.0.0.1:7480", "examplebucket.s3.amazonaws.com", "bucket.localhost:9000", "s3.example.com"]
        return (0..<count).map { index in
            var query: [[String]] = []
            var usedNames = Set<String>()
            for _ in 0..<Int.random(in: 0...3, using: &rng) {
                let name = Self.randomText(&rng, count: 1...3)
                guard usedNames.insert(name).inserted else { continue }
                query.append([name, Bool.random(using: &rng) ? "" : Self.randomText(&rng, count: 1...4)])
            }
            var headers: [[String]] = []
            if Bool.random(using: &rng) { headers.append(["Range", "bytes=\(index)-\(index + 99)"]) }
            if Bool.random(using: &rng) { headers.append(["Content-Type", "text/plain;  charset=utf-8"]) }
            if Bool.random(using: &rng) { headers.append(["x-amz-meta-note", "  two   spaces here "]) }
            let date = Double(1_300_000_000 + Int.random(in: 0...700_000_000, using: &rng))
            return Case(
                method: methods.randomElement(using: &rng) ?? "GET",
                host: hosts.randomElement(using: &rng) ?? "h",
                bucket: Bool.random(using: &rng) ? "canary-\(index % 7)" : "",
                key: Self.randomText(&rng, count: 1...8),
                query: query,
                headers: headers,
                payload_hash: Bool.random(using: &rng)
                    ? SigV4Signer.payloadHash(Data("body \(index)".utf8)) : SigV4Signer.unsignedPayload,
                access_key: "AKIA\(index)EXAMPLE",
                secret_key: "secret/\(index)+key=\(Self.randomText(&rng, count: 1...3))",
                token: index % 5 == 0 ? "session/\(index)+token==" : nil,
                region: ["us-east-1", "eu-west-3", "default", "ap-southeast-2"][index % 4],
                timestamp: AmzTimestamp(Date(timeIntervalSince1970: date)).dateTime,
                date: date
            )
        }
    }

    @Test func twoHundredFiftyGeneratedRequestsMatch() throws {
        let cases = Self.makeCases(count: 250)
        let data = try runPythonFixture("botocore_sign.py", input: try JSONEncoder().encode(cases))
        let references = try JSONDecoder().decode([Reference].self, from: data)
        try #require(references.count == cases.count)

        var mismatches = 0
        for (testCase, reference) in zip(cases, references) {
            let path = testCase.bucket.isEmpty ? "/\(testCase.key)" : "/\(testCase.bucket)/\(testCase.key)"
            let signer = SigV4Signer(region: testCase.region)
            let signed = signer.sign(
                method: testCase.method,
                canonicalURI: S3URIEncoding.encode(path, keepSlash: true),
                query: testCase.query.map { ($0[0], $0[1]) },
                host: testCase.host,
                headers: testCase.headers.map { ($0[0], $0[1]) },
                payloadHash: testCase.payload_hash,
                credentials: Credentials(
                    accessKeyID: testCase.access_key,
                    secretAccessKey: testCase.secret_key,
                    sessionToken: testCase.token
                ),
                date: Date(timeIntervalSince1970: testCase.date)
            )
            if signed.signature != reference.signature {
                mismatches += 1
                if mismatches <= 3 {
                    Issue.record(
                        """
                        key \(testCase.key.debugDescription):\nours:\n\(signed.canonicalRequest)\n\
                        botocore:\n\(reference.canonical_request)
                        """
                    )
                }
            }
        }
        #expect(mismatches == 0, "\(mismatches) of \(cases.count) signatures differ from botocore's")
    }
}
