public import Foundation

extension SigV4Signer {
    /// A presigned request: SigV4 in the query string, which anyone holding the URL can send without credentials.
    public struct Presigned: Sendable {
        /// Every query parameter of the URL, not encoded, the signature last.
        public var query: [(String, String)]
        /// The canonical request (SigV4 task 1).
        public var canonicalRequest: String
        /// The string to sign (SigV4 task 2).
        public var stringToSign: String
        /// The signature, lower-case hex.
        public var signature: String

        /// The query string as it goes on the URL, each name and value percent-encoded.
        public var encodedQuery: String {
            self.query.map {
                "\(S3URIEncoding.encode($0.0, keepSlash: false))=\(S3URIEncoding.encode($0.1, keepSlash: false))"
            }.joined(separator: "&")
        }
    }

    /// Signs a request in its query string (AWS's "query string authentication"): only `host` is signed and the
    /// payload is `UNSIGNED-PAYLOAD`, so the URL works for whoever sends it until `expires` after `date`.
    ///
    /// - Parameters:
    ///   - query: the request's own query parameters, not encoded; the `X-Amz-*` ones are added.
    ///   - expires: seconds the URL stays valid (S3 allows 1 to 604,800).
    public func presign(
        method: String,
        canonicalURI: String,
        query: [(String, String)] = [],
        host: String,
        expires: Int,
        credentials: Credentials,
        date: Date
    ) -> Presigned {
        let timestamp = AmzTimestamp(date)
        let scope = self.scope(timestamp)
        var parameters = query
        parameters.append(("X-Amz-Algorithm", "AWS4-HMAC-SHA256"))
        parameters.append(("X-Amz-Credential", "\(credentials.accessKeyID)/\(scope)"))
        parameters.append(("X-Amz-Date", timestamp.dateTime))
        parameters.append(("X-Amz-Expires", String(expires)))
        if let token = credentials.sessionToken {
            parameters.append(("X-Amz-Security-Token", token))
        }
        parameters.append(("X-Amz-SignedHeaders", "host"))
        let canonicalRequest = [
            method,
            canonicalURI.isEmpty ? "/" : canonicalURI,
            Self.canonicalQuery(parameters),
            "host:\(Self.canonicalHeaderValue(host))\n",
            "host",
            Self.unsignedPayload,
        ].joined(separator: "\n")
        let (stringToSign, signature) = self.sign(
            canonicalRequest, timestamp: timestamp, secret: credentials.secretAccessKey)
        parameters.append(("X-Amz-Signature", signature))
        return Presigned(
            query: parameters, canonicalRequest: canonicalRequest, stringToSign: stringToSign, signature: signature)
    }
}
