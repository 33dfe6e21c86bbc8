/// The single error type of every ``ObjectBackend`` operation.
///
/// `code` is stable and fit for a metric label or a `switch`; the rest (HTTP status, S3 error code and
/// message, request id, underlying error) is there for logs and for people. Nothing in it ever holds a
/// credential: S3 error bodies can echo the string to sign, so only `Code`, `Message` and `RequestId` are read.
public struct ObjectStorageError: Error, Sendable, CustomStringConvertible {
    /// A stable, bounded classification of what went wrong.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        /// The label value, such as `not_found`.
        public let rawValue: String
        private init(_ rawValue: String) { self.rawValue = rawValue }
        /// The label value.
        public var description: String { self.rawValue }

        /// The object (or bucket) does not exist: HTTP 404.
        public static let notFound = Code("not_found")
        /// The server answered with an error status other than 404.
        public static let httpError = Code("http_error")
        /// A connection that was up broke before the whole answer came: reset, closed early.
        public static let connection = Code("connection")
        /// No connection could be made: refused, unreachable, or the TCP connect timed out.
        public static let connect = Code("connect")
        /// The endpoint's host name did not resolve.
        public static let dns = Code("dns")
        /// The TLS handshake or certificate verification failed.
        public static let tls = Code("tls")
        /// The operation did not finish within its timeout.
        public static let timeout = Code("timeout")
        /// The caller cancelled the operation (for instance on shutdown).
        public static let cancelled = Code("cancelled")
        /// The backend cannot copy server-side; fall back to GET + PUT.
        public static let copyNotSupported = Code("copy_not_supported")
        /// A circuit breaker is open: the call was rejected without any I/O.
        public static let backendUnavailable = Code("backend_unavailable")
        /// The server's answer could not be understood (bad XML, missing header).
        public static let invalidResponse = Code("invalid_response")
        /// No credentials could be obtained to sign the request.
        public static let credentials = Code("credentials")
        /// The request could not be built (a key or range the client refuses to send).
        public static let invalidRequest = Code("invalid_request")
        /// Anything else.
        public static let other = Code("other")
    }

    /// What went wrong, for metrics and `switch`.
    public var code: Code
    /// Which operation failed, such as `HeadObject`.
    public var operation: String?
    /// The HTTP status, when the server answered at all.
    public var httpStatus: Int?
    /// The S3 error code from the XML body (`NoSuchKey`, `SignatureDoesNotMatch`, `SlowDown`...).
    public var s3Code: String?
    /// A human-readable message: the server's, or ours when the server gave none.
    public var message: String
    /// `x-amz-request-id` (or `RequestId` from the body), for the storage team's logs.
    public var requestID: String?
    /// The error this one wraps, kept for logs.
    public var underlying: (any Error)?

    /// An error of class `code`; everything else is optional detail for logs.
    public init(
        code: Code,
        operation: String? = nil,
        httpStatus: Int? = nil,
        s3Code: String? = nil,
        message: String,
        requestID: String? = nil,
        underlying: (any Error)? = nil
    ) {
        self.code = code
        self.operation = operation
        self.httpStatus = httpStatus
        self.s3Code = s3Code
        self.message = message
        self.requestID = requestID
        self.underlying = underlying
    }

    /// The phase of the HTTP request this error ended (`connect`, `tls`, `first_byte`...), when the transport knows.
    public var failedPhase: RequestPhase? { (self.underlying as? PhaseError)?.phase ?? self.phase }

    /// Set where the transport's own error is not kept as `underlying`.
    var phase: RequestPhase?

    /// The object or bucket does not exist.
    public var isNotFound: Bool { self.code == .notFound || self.httpStatus == 404 }

    /// The server refused our identity or signature (401/403).
    public var isAuthFailure: Bool { self.httpStatus == 401 || self.httpStatus == 403 }

    /// The server asked us to slow down (429, or S3's `SlowDown` / `Throttling` codes on 503).
    public var isThrottled: Bool {
        if self.httpStatus == 429 { return true }
        switch self.s3Code {
        case "SlowDown", "Throttling", "ThrottlingException", "RequestLimitExceeded", "TooManyRequests":
            return true
        default:
            return false
        }
    }

    /// Operation, code, HTTP status, S3 code, message and request id, as far as known.
    public var description: String {
        var parts: [String] = []
        if let operation { parts.append(operation) }
        parts.append(self.code.rawValue)
        if let httpStatus { parts.append("HTTP \(httpStatus)") }
        if let s3Code { parts.append(s3Code) }
        var text = parts.joined(separator: " ")
        if !self.message.isEmpty { text += ": \(self.message)" }
        if let requestID { text += " (request id \(requestID))" }
        return text
    }

    /// Whether `error`, or any error it wraps (a ``CopyError``), means "not found".
    public static func isNotFound(_ error: any Error) -> Bool {
        switch error {
        case let error as ObjectStorageError:
            return error.isNotFound
        case let error as CopyError:
            return error.underlying.isNotFound
        default:
            return false
        }
    }

    /// The error a backend that cannot copy server-side throws.
    public static func copyNotSupported(operation: String = "CopyObject") -> ObjectStorageError {
        ObjectStorageError(
            code: .copyNotSupported,
            operation: operation,
            message: "this backend cannot copy server-side; read and write the object instead"
        )
    }
}

/// A server-side copy failure, saying which side failed.
///
/// A `read` failure (the source is missing or unreadable) may be retried from another source; a `write`
/// failure (the destination refused it) should stop the caller.
public struct CopyError: Error, Sendable, CustomStringConvertible {
    /// The side of the copy that failed.
    public enum Phase: String, Sendable {
        case read
        case write
    }

    /// Whether reading the source or writing the destination failed.
    public var phase: Phase
    /// The failure itself.
    public var underlying: ObjectStorageError

    /// A copy failure on `phase`.
    public init(phase: Phase, underlying: ObjectStorageError) {
        self.phase = phase
        self.underlying = underlying
    }

    /// `copy <phase> failed: <error>`.
    public var description: String { "copy \(self.phase.rawValue) failed: \(self.underlying)" }
}
