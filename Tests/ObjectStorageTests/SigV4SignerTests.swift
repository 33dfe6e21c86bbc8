import Foundation
import Testing

@testable import ObjectStorage

/// The examples of the S3 API reference ("Signature Calculations for the Authorization Header"), with the
/// documented key pair and expected signatures.
@Suite("SigV4 signer: AWS's published examples")
struct SigV4PublishedExamplesTests {
    static let credentials = Credentials(
        accessKeyID: "AKIAIOSFODNN7EXAMPLE",
        secretAccessKey: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
    )
    static let date = Date(timeIntervalSince1970: 1_369_353_600)  // 20130524T000000Z
    static let signer = SigV4Signer(region: "us-east-1")
    static let host = "examplebucket.s3.amazonaws.com"

    @Test func getObjectWithRange() {
        let signed = Self.signer.sign(
            method: "GET", canonicalURI: "/test.txt", query: [], host: Self.host,
            headers: [("Range", "bytes=0-9")], payloadHash: SigV4Signer.emptyPayloadHash,
            credentials: Self.credentials, date: Self.date
        )
        #expect(signed.signedHeaders == "host;range;x-amz-content-sha256;x-amz-date")
        #expect(signed.signature == "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
        #expect(
            signed.authorization
                == "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,"
                + "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,"
                + "Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        )
    }

    @Test func putObject() {
        let body = Data("Welcome to Amazon S3.".utf8)
        let hash = SigV4Signer.payloadHash(body)
        #expect(hash == "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072")
        let signed = Self.signer.sign(
            method: "PUT", canonicalURI: "/" + S3URIEncoding.encode("test$file.text", keepSlash: true), query: [],
            host: Self.host,
            headers: [("Date", "Fri, 24 May 2013 00:00:00 GMT"), ("x-amz-storage-class", "REDUCED_REDUNDANCY")],
            payloadHash: hash, credentials: Self.credentials, date: Self.date
        )
        #expect(signed.canonicalRequest.split(separator: "\n").dropFirst().first == "/test%24file.text")
        #expect(signed.signedHeaders == "date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class")
        #expect(signed.signature == "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd")
    }

    @Test func getBucketLifecycle() {
        let signed = Self.signer.sign(
            method: "GET", canonicalURI: "/", query: [("lifecycle", "")], host: Self.host, headers: [],
            payloadHash: SigV4Signer.emptyPayloadHash, credentials: Self.credentials, date: Self.date
        )
        #expect(signed.canonicalRequest.contains("\nlifecycle=\n"))
        #expect(signed.signature == "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543")
    }

    @Test func listObjects() {
        let signed = Self.signer.sign(
            method: "GET", canonicalURI: "/", query: [("prefix", "J"), ("max-keys", "2")], host: Self.host,
            headers: [], payloadHash: SigV4Signer.emptyPayloadHash, credentials: Self.credentials, date: Self.date
        )
        #expect(signed.canonicalRequest.contains("\nmax-keys=2&prefix=J\n"))
        #expect(signed.signature == "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7")
    }

    @Test func sessionTokenIsSignedAndSent() {
        var credentials = Self.credentials
        credentials.sessionToken = "token/with+chars="
        let signed = Self.signer.sign(
            method: "HEAD", canonicalURI: "/k", query: [], host: Self.host, headers: [],
            payloadHash: SigV4Signer.emptyPayloadHash, credentials: credentials, date: Self.date
        )
        #expect(signed.signedHeaders == "host;x-amz-content-sha256;x-amz-date;x-amz-security-token")
        #expect(signed.headers.contains { $0.0 == "x-amz-security-token" && $0.1 == "token/with+chars=" })
        #expect(!signed.authorization.contains("token/with"))
    }
}

@Suite("SigV4 building blocks")
struct SigV4BuildingBlockTests {
    @Test(arguments: [
        (0.0, "19700101T000000Z"),
        (1_369_353_600.0, "20130524T000000Z"),
        (951_782_399.0, "20000228T235959Z"),
        (951_782_400.0, "20000229T000000Z"),
        (4_102_444_799.5, "20991231T235959Z"),
    ])
    func timestamps(seconds: Double, expected: String) {
        let stamp = AmzTimestamp(Date(timeIntervalSince1970: seconds))
        #expect(stamp.dateTime == expected)
        #expect(stamp.date == String(expected.prefix(8)))
    }

    @Test func timestampsMatchAFormatterAcrossYears() {
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "UTC")
        formatter.dateFormat = "yyyyMMdd'T'HHmmss'Z'"
        var seconds = 0.0
        while seconds < 4_000_000_000 {
            let date = Date(timeIntervalSince1970: seconds)
            #expect(AmzTimestamp(date).dateTime == formatter.string(from: date))
            seconds += 7_777_777  // whole seconds: SigV4 truncates, the formatter rounds
        }
    }

    @Test(arguments: [
        ("a b", false, "a%20b"),
        ("a/b", true, "a/b"),
        ("a/b", false, "a%2Fb"),
        ("~-_.", false, "~-_."),
        ("+=!*'()", false, "%2B%3D%21%2A%27%28%29"),
        ("é", true, "%C3%A9"),
        ("//x", true, "//x"),
    ])
    func uriEncoding(input: String, keepSlash: Bool, expected: String) {
        #expect(S3URIEncoding.encode(input, keepSlash: keepSlash) == expected)
    }

    @Test func headerValuesAreTrimmedAndFolded() {
        #expect(SigV4Signer.canonicalHeaderValue("  a   b \t c  ") == "a b c")
    }

    @Test func canonicalQuerySortsByEncodedNameThenValue() {
        #expect(SigV4Signer.canonicalQuery([("b", "2"), ("a", "z"), ("a", "y"), ("A", "x")]) == "A=x&a=y&a=z&b=2")
    }
}
