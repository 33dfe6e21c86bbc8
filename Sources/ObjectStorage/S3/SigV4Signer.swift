import Crypto
public import Foundation
import Synchronization

/// AWS Signature Version 4 for S3, in the `Authorization` header.
///
/// S3 differs from other AWS services in two ways this signer honours: the canonical URI is encoded once
/// (never normalised, so `//` and `.` segments survive), and the payload hash is sent as
/// `x-amz-content-sha256` (or `UNSIGNED-PAYLOAD`). The signing key depends only on the secret, day, region and
/// service, so it is cached per day.
public struct SigV4Signer: Sendable {
    /// The region signatures are scoped to.
    public var region: String
    /// The service signatures are scoped to (`s3`).
    public var service: String
    /// The last derived signing key: it changes once a day (or with the secret), and deriving it is four HMACs,
    /// a third of a signature's cost.
    private let keyCache = SigningKeyCache()

    /// A signer for `service` in `region`.
    public init(region: String, service: String = "s3") {
        self.region = region
        self.service = service
    }

    /// The SHA-256 of an empty payload, which GET, HEAD and DELETE sign.
    public static let emptyPayloadHash = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    /// The payload hash that tells S3 the body is not signed (allowed over HTTPS only).
    public static let unsignedPayload = "UNSIGNED-PAYLOAD"

    /// Everything a signature is made of, kept so tests can compare each step.
    public struct Signature: Sendable {
        /// Headers to add to the request: `Authorization`, `x-amz-date`, `x-amz-content-sha256` and, for
        /// temporary credentials, `x-amz-security-token`.
        public var headers: [(String, String)]
        /// The canonical request (SigV4 task 1).
        public var canonicalRequest: String
        /// The string to sign (SigV4 task 2).
        public var stringToSign: String
        /// The signed header names, lower-case, `;`-separated.
        public var signedHeaders: String
        /// The signature, lower-case hex.
        public var signature: String
        /// The `Authorization` header value.
        public var authorization: String
    }

    /// Signs one request.
    ///
    /// - Parameters:
    ///   - method: HTTP method, upper case.
    ///   - canonicalURI: the path exactly as it will be sent, already percent-encoded (see ``S3URIEncoding``).
    ///   - query: the query parameters, not encoded; an empty value signs as `name=`.
    ///   - host: the `Host` header value (with the port when it is not the scheme's default).
    ///   - headers: other headers to sign, such as `Range` or `x-amz-meta-*`.
    ///   - payloadHash: hex SHA-256 of the body, or ``unsignedPayload``.
    public func sign(
        method: String,
        canonicalURI: String,
        query: [(String, String)],
        host: String,
        headers: [(String, String)],
        payloadHash: String,
        credentials: Credentials,
        date: Date
    ) -> Signature {
        let timestamp = AmzTimestamp(date)
        var toSign: [(String, String)] = [
            ("host", host),
            ("x-amz-content-sha256", payloadHash),
            ("x-amz-date", timestamp.dateTime),
        ]
        if let token = credentials.sessionToken {
            toSign.append(("x-amz-security-token", token))
        }
        for (name, value) in headers {
            toSign.append((name.lowercased(), value))
        }
        // Several headers of one name sign as one line with their values joined by commas.
        var merged: [String: [String]] = [:]
        for (name, value) in toSign {
            merged[name, default: []].append(Self.canonicalHeaderValue(value))
        }
        let names = merged.keys.sorted()
        let canonicalHeaders = names.map { "\($0):\(merged[$0, default: []].joined(separator: ","))\n" }.joined()
        let signedHeaders = names.joined(separator: ";")

        let canonicalRequest = [
            method,
            canonicalURI.isEmpty ? "/" : canonicalURI,
            Self.canonicalQuery(query),
            canonicalHeaders,
            signedHeaders,
            payloadHash,
        ].joined(separator: "\n")

        let scope = self.scope(timestamp)
        let (stringToSign, signature) = self.sign(
            canonicalRequest, timestamp: timestamp, secret: credentials.secretAccessKey)
        let authorization =
            "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope),"
            + "SignedHeaders=\(signedHeaders),Signature=\(signature)"

        var outHeaders: [(String, String)] = [
            ("Authorization", authorization),
            ("x-amz-date", timestamp.dateTime),
            ("x-amz-content-sha256", payloadHash),
        ]
        if let token = credentials.sessionToken {
            outHeaders.append(("x-amz-security-token", token))
        }
        return Signature(
            headers: outHeaders,
            canonicalRequest: canonicalRequest,
            stringToSign: stringToSign,
            signedHeaders: signedHeaders,
            signature: signature,
            authorization: authorization
        )
    }

    /// `<day>/<region>/<service>/aws4_request`: what a signature is valid for.
    func scope(_ timestamp: AmzTimestamp) -> String {
        "\(timestamp.date)/\(self.region)/\(self.service)/aws4_request"
    }

    /// SigV4 tasks 2 and 3, the same for a header signature and a presigned URL: the string to sign for
    /// `canonicalRequest`, and its HMAC with the day's signing key, lower-case hex.
    func sign(
        _ canonicalRequest: String, timestamp: AmzTimestamp, secret: String
    ) -> (stringToSign: String, signature: String) {
        let stringToSign = [
            "AWS4-HMAC-SHA256",
            timestamp.dateTime,
            self.scope(timestamp),
            Self.hex(SHA256.hash(data: Data(canonicalRequest.utf8))),
        ].joined(separator: "\n")
        let key = self.signingKey(secret: secret, date: timestamp.date)
        return (stringToSign, Self.hex(HMAC<SHA256>.authenticationCode(for: Data(stringToSign.utf8), using: key)))
    }

    /// The signing key for a day, from the cache when the secret, day, region and service are those of last time.
    func signingKey(secret: String, date: String) -> SymmetricKey {
        let scope = SigningKeyCache.Scope(secret: secret, date: date, region: self.region, service: self.service)
        if let key = self.keyCache.key(for: scope) { return key }
        let key = self.deriveSigningKey(secret: secret, date: date)
        self.keyCache.store(key, for: scope)
        return key
    }

    /// Derives the signing key: HMAC chain over the day, region, service and `aws4_request`.
    func deriveSigningKey(secret: String, date: String) -> SymmetricKey {
        let kSecret = SymmetricKey(data: Data("AWS4\(secret)".utf8))
        let kDate = HMAC<SHA256>.authenticationCode(for: Data(date.utf8), using: kSecret)
        let kRegion = HMAC<SHA256>.authenticationCode(for: Data(self.region.utf8), using: SymmetricKey(data: kDate))
        let kService = HMAC<SHA256>.authenticationCode(
            for: Data(self.service.utf8),
            using: SymmetricKey(data: kRegion)
        )
        let kSigning = HMAC<SHA256>.authenticationCode(
            for: Data("aws4_request".utf8),
            using: SymmetricKey(data: kService)
        )
        return SymmetricKey(data: kSigning)
    }

    /// Sorted by encoded name then encoded value, each encoded with every reserved character escaped.
    static func canonicalQuery(_ query: [(String, String)]) -> String {
        let encoded: [(name: String, value: String)] = query.map { pair in
            (S3URIEncoding.encode(pair.0, keepSlash: false), S3URIEncoding.encode(pair.1, keepSlash: false))
        }
        let sorted = encoded.sorted { left, right in
            left.name == right.name ? left.value < right.value : left.name < right.name
        }
        return sorted.map { "\($0.name)=\($0.value)" }.joined(separator: "&")
    }

    /// Trims the value and folds runs of spaces into one, as SigV4 asks.
    static func canonicalHeaderValue(_ value: String) -> String {
        var out = ""
        var lastWasSpace = false
        for character in value.trimmingCharacters(in: .whitespaces) {
            if character == " " || character == "\t" {
                if !lastWasSpace { out.append(" ") }
                lastWasSpace = true
            } else {
                out.append(character)
                lastWasSpace = false
            }
        }
        return out
    }

    static func hex<D: Sequence>(_ digest: D) -> String where D.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var out: [UInt8] = []
        for byte in digest {
            out.append(digits[Int(byte >> 4)])
            out.append(digits[Int(byte & 0x0F)])
        }
        return String(decoding: out, as: UTF8.self)
    }

    /// Hex SHA-256 of `bytes`, the payload hash S3 expects.
    public static func payloadHash<D: DataProtocol>(_ bytes: D) -> String {
        self.hex(SHA256.hash(data: bytes))
    }
}

/// The two timestamp forms SigV4 uses, computed without `DateFormatter` (which is slow and locale-bound).
struct AmzTimestamp: Sendable {
    /// `YYYYMMDD'T'HHMMSS'Z'`
    var dateTime: String
    /// `YYYYMMDD`
    var date: String

    init(_ instant: Date) {
        let seconds = Int64(instant.timeIntervalSince1970.rounded(.down))
        var days = seconds / 86_400
        var secondOfDay = seconds % 86_400
        if secondOfDay < 0 {
            secondOfDay += 86_400
            days -= 1
        }
        // Civil date from days since 1970-01-01 (proleptic Gregorian).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)

        func pad(_ value: Int64, _ width: Int) -> String {
            let text = String(value)
            return String(repeating: "0", count: max(0, width - text.count)) + text
        }
        self.date = pad(year, 4) + pad(month, 2) + pad(day, 2)
        self.dateTime =
            self.date + "T" + pad(secondOfDay / 3600, 2) + pad(secondOfDay % 3600 / 60, 2) + pad(secondOfDay % 60, 2)
            + "Z"
    }
}

/// Percent-encoding as S3 signs and expects it: RFC 3986 unreserved characters stay, every other byte of the
/// UTF-8 form becomes `%XX` (upper-case hex). In object keys `/` stays as the path separator.
public enum S3URIEncoding {
    /// Encodes `value`; with `keepSlash`, `/` stays as is (object keys).
    public static func encode(_ value: String, keepSlash: Bool) -> String {
        let hexDigits = Array("0123456789ABCDEF".utf8)
        var out: [UInt8] = []
        out.reserveCapacity(value.utf8.count)
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."),
                UInt8(ascii: "~"):
                out.append(byte)
            case UInt8(ascii: "/") where keepSlash:
                out.append(byte)
            default:
                out.append(UInt8(ascii: "%"))
                out.append(hexDigits[Int(byte >> 4)])
                out.append(hexDigits[Int(byte & 0x0F)])
            }
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// One remembered signing key per signer (a backend signs with one secret at a time).
final class SigningKeyCache: Sendable {
    struct Scope: Equatable, Sendable {
        var secret: String
        var date: String
        var region: String
        var service: String
    }

    private let entry = Mutex<(Scope, SymmetricKey)?>(nil)

    func key(for scope: Scope) -> SymmetricKey? {
        self.entry.withLock { entry in
            guard let (cached, key) = entry, cached == scope else { return nil }
            return key
        }
    }

    func store(_ key: SymmetricKey, for scope: Scope) {
        self.entry.withLock { $0 = (scope, key) }
    }
}
