import ObjectStorage

/// The bounded set of error reasons: the `reason` label of `s3canary_operation_errors_total`.
public enum FailureReason: String, Sendable, CaseIterable, Codable {
    case timeout, connection, connect, dns, tls
    case http4xx = "http_4xx"
    case http5xx = "http_5xx"
    case throttled, auth
    case notFound = "not_found"
    case integrity, other
}

/// The canary found different bytes (or sizes) than it wrote.
public struct IntegrityError: Error, Sendable, CustomStringConvertible {
    var operation: String
    var message: String

    /// An integrity failure of `operation`; `message` says what differed.
    public init(operation: String, message: String) {
        self.operation = operation
        self.message = message
    }

    /// The operation and what differed, for logs and failure summaries.
    public var description: String { "\(self.operation): integrity: \(self.message)" }
}

/// How an error counts, for the breaker and for metrics.
public struct ErrorClassification: Sendable, Equatable {
    /// The metric reason; `nil` for our own cancellation, which is not the backend's doing.
    public var reason: FailureReason?
    /// Whether the breaker counts it as a failure of the backend.
    public var isBackendFailure: Bool
    /// Rejected by an open breaker without I/O.
    public var isRejection: Bool

    /// docs/design.md, 4.1: no HTTP status (DNS, connect, TLS, reset), timeouts, 5xx, 429, 401, 403 and content
    /// mismatches are failures. 404, 412, 416 and other 4xx are a working backend answering about one request; our
    /// own cancellation is nobody's failure.
    public static func classify(_ error: any Error) -> ErrorClassification {
        if error is IntegrityError {
            return .init(reason: .integrity, isBackendFailure: true, isRejection: false)
        }
        if error is DeadlineExceeded {
            return .init(reason: .timeout, isBackendFailure: true, isRejection: false)
        }
        if error is CancellationError {
            return .init(reason: nil, isBackendFailure: false, isRejection: false)
        }
        let storageError: ObjectStorageError
        switch error {
        case let error as ObjectStorageError: storageError = error
        case let error as CopyError: storageError = error.underlying
        default: return .init(reason: .other, isBackendFailure: true, isRejection: false)
        }
        if let status = storageError.httpStatus {
            if storageError.isThrottled { return .init(reason: .throttled, isBackendFailure: true, isRejection: false) }
            if storageError.isAuthFailure { return .init(reason: .auth, isBackendFailure: true, isRejection: false) }
            if status == 404 { return .init(reason: .notFound, isBackendFailure: false, isRejection: false) }
            if (400..<500).contains(status) {
                return .init(reason: .http4xx, isBackendFailure: false, isRejection: false)
            }
            // 5xx, and a 200 that carried an <Error> body.
            return .init(reason: .http5xx, isBackendFailure: true, isRejection: false)
        }
        switch storageError.code {
        case .timeout: return .init(reason: .timeout, isBackendFailure: true, isRejection: false)
        case .connection: return .init(reason: .connection, isBackendFailure: true, isRejection: false)
        case .connect: return .init(reason: .connect, isBackendFailure: true, isRejection: false)
        case .dns: return .init(reason: .dns, isBackendFailure: true, isRejection: false)
        case .tls: return .init(reason: .tls, isBackendFailure: true, isRejection: false)
        case .cancelled: return .init(reason: nil, isBackendFailure: false, isRejection: false)
        case .backendUnavailable: return .init(reason: nil, isBackendFailure: false, isRejection: true)
        case .notFound: return .init(reason: .notFound, isBackendFailure: false, isRejection: false)
        case .copyNotSupported, .invalidRequest:
            return .init(reason: .other, isBackendFailure: false, isRejection: false)
        default: return .init(reason: .other, isBackendFailure: true, isRejection: false)
        }
    }
}
