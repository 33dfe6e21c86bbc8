public import ObjectStorage
public import SidecarConfig
import Synchronization

/// What a compatibility operation says about its feature (docs/design.md, 4.2): the value on `/status`, the
/// status page and `s3-canary compat`.
public enum FeatureVerdict: String, Sendable, Codable, CaseIterable {
    /// The feature works as S3 documents it.
    case ok
    /// The server says it does not implement the feature (501, `NotImplemented`, a documented 400) or ignores its
    /// header. Not a failure: it never counts against the breaker and never pages, unless the feature worked
    /// earlier in this process's life (then it is `failing`).
    case unsupported
    /// Requests of the feature fail: counted against the breaker like any failed operation.
    case failing
    /// The server accepted the request and gave back other bytes or another checksum: an integrity failure.
    case corrupting

    /// Whether a server's error answer means "not implemented here" rather than "broken": HTTP 501, the S3 code
    /// `NotImplemented`, or the 400s stores document for headers and features they do not support.
    public static func isUnsupportedAnswer(_ error: ObjectStorageError) -> Bool {
        if error.httpStatus == 501 || error.s3Code == "NotImplemented" { return true }
        return error.httpStatus == 400 && ["InvalidArgument", "InvalidRequest"].contains(error.s3Code ?? "")
    }
}

/// The features that have been `ok` on a backend since this process started: an "unsupported" answer from one of
/// them is a regression. Carried across reloads with the backend's breaker.
public final class FeatureHistory: Sendable {
    private let working = Mutex<Set<CanaryConfiguration.Operation>>([])

    /// An empty history.
    public init() {}

    /// Whether `feature` has been `ok` here.
    public func hasWorked(_ feature: CanaryConfiguration.Operation) -> Bool {
        self.working.withLock { $0.contains(feature) }
    }

    func markWorking(_ feature: CanaryConfiguration.Operation) {
        _ = self.working.withLock { $0.insert(feature) }
    }
}

/// What a server answered, for a verdict's evidence: status, S3 error code and request id.
struct FeatureEvidence: Sendable, CustomStringConvertible {
    var message: String
    var httpStatus: Int?
    var s3Code: String?
    var requestID: String?

    init(message: String, httpStatus: Int? = nil, s3Code: String? = nil, requestID: String? = nil) {
        self.message = message
        self.httpStatus = httpStatus
        self.s3Code = s3Code
        self.requestID = requestID
    }

    init(_ error: ObjectStorageError) {
        self.init(
            message: String(error.description.prefix(300)), httpStatus: error.httpStatus, s3Code: error.s3Code,
            requestID: error.requestID)
    }

    var description: String { self.message }
}

/// How a feature check ended when it did not throw (a thrown error is `failing`).
enum FeatureOutcome: Sendable {
    /// The feature works; `note` is evidence worth keeping that is not a failure (an ETag of another form).
    case ok(requestID: String?, note: String? = nil)
    case unsupported(FeatureEvidence)
    case corrupting(FeatureEvidence)
}

/// A feature failed in a way the server's answer alone does not say (a regression from `ok` to an "unsupported"
/// answer): `failing`, counted against the breaker.
struct FeatureFailure: Error, Sendable, CustomStringConvertible {
    var evidence: FeatureEvidence
    var description: String { self.evidence.message }
}
