public import NIOCore

/// The S3 features real clients use beyond a plain PUT and GET: flexible checksums, `aws-chunked` uploads with a
/// trailing checksum, conditional requests, presigned URLs and multipart upload.
///
/// Kept apart from ``ObjectBackend`` (like ``BackendCopier``) because only a real S3 client has them; the canary
/// records a feature operation as skipped on a backend without them.
public protocol FeatureBackend: Sendable {
    /// `PUT` with the options real SDKs send: checksums as headers or as an `aws-chunked` trailer, conditions.
    func putObject(key: String, body: ByteBuffer, options: PutOptions) async throws -> PutObjectResult

    /// `GET` with conditions and `x-amz-checksum-mode`.
    func getObject(key: String, options: GetOptions) async throws -> GetObjectResult

    /// `GET` through a presigned (query-string SigV4) URL, sent with no `Authorization` header.
    func presignedGetObject(key: String, expires: Duration) async throws -> GetObjectResult

    /// `POST ?uploads`: starts a multipart upload.
    func createMultipartUpload(key: String, contentType: String?) async throws -> MultipartUpload

    /// `PUT ?partNumber&uploadId`: one part (numbers start at 1).
    func uploadPart(_ upload: MultipartUpload, partNumber: Int, body: ByteBuffer) async throws -> UploadedPart

    /// `POST ?uploadId`: assembles the parts; a 200 answer that carries an `<Error>` body throws.
    func completeMultipartUpload(_ upload: MultipartUpload, parts: [UploadedPart]) async throws -> PutObjectResult

    /// `DELETE ?uploadId`: discards the upload and its parts. An upload that no longer exists counts as aborted.
    @discardableResult
    func abortMultipartUpload(_ upload: MultipartUpload) async throws -> DeleteObjectResult

    /// `GET ?uploads`: the uploads in progress under `prefix` (at most `limit`, oldest pages first).
    func listMultipartUploads(prefix: String, limit: Int) async throws -> [MultipartUpload]
}

/// Options of a ``FeatureBackend`` PUT.
public struct PutOptions: Sendable, Equatable {
    /// The stored `Content-Type`.
    public var contentType: String?
    /// User metadata (`x-amz-meta-*`).
    public var metadata: [String: String]
    /// A checksum computed here and sent as its `x-amz-checksum-*` header.
    public var checksum: ChecksumAlgorithm?
    /// A checksum sent as the trailer of an `aws-chunked` body (`STREAMING-UNSIGNED-PAYLOAD-TRAILER`), as the AWS
    /// SDKs send uploads by default since 2025.
    public var trailingChecksum: ChecksumAlgorithm?
    /// `If-None-Match` (`*`: only create, never overwrite).
    public var ifNoneMatch: String?
    /// `If-Match`: only overwrite this ETag.
    public var ifMatch: String?

    /// Options from their parts; all are optional.
    public init(
        contentType: String? = nil,
        metadata: [String: String] = [:],
        checksum: ChecksumAlgorithm? = nil,
        trailingChecksum: ChecksumAlgorithm? = nil,
        ifNoneMatch: String? = nil,
        ifMatch: String? = nil
    ) {
        self.contentType = contentType
        self.metadata = metadata
        self.checksum = checksum
        self.trailingChecksum = trailingChecksum
        self.ifNoneMatch = ifNoneMatch
        self.ifMatch = ifMatch
    }
}

/// Options of a ``FeatureBackend`` GET.
public struct GetOptions: Sendable, Equatable {
    /// An HTTP `Range` value.
    public var range: String?
    /// `If-Match`: answer only if the ETag is this one (412 otherwise).
    public var ifMatch: String?
    /// `If-None-Match`.
    public var ifNoneMatch: String?
    /// Sends `x-amz-checksum-mode: ENABLED`, asking for the stored checksums.
    public var checksumMode: Bool

    /// Options from their parts; all are optional.
    public init(range: String? = nil, ifMatch: String? = nil, ifNoneMatch: String? = nil, checksumMode: Bool = false) {
        self.range = range
        self.ifMatch = ifMatch
        self.ifNoneMatch = ifNoneMatch
        self.checksumMode = checksumMode
    }
}

/// A multipart upload in progress.
public struct MultipartUpload: IdentifiedResponse, Equatable {
    /// The object's key.
    public var key: String
    /// The server's id of the upload.
    public var uploadID: String
    /// When it started, as the server wrote it (listings only).
    public var initiated: String?
    /// The request id the server sent.
    public var requestID: String?

    /// An upload from its parts.
    public init(key: String, uploadID: String, initiated: String? = nil, requestID: String? = nil) {
        self.key = key
        self.uploadID = uploadID
        self.initiated = initiated
        self.requestID = requestID
    }
}

/// One uploaded part: what complete needs.
public struct UploadedPart: IdentifiedResponse, Equatable {
    /// The part's number, from 1.
    public var partNumber: Int
    /// The part's ETag, unquoted.
    public var etag: String
    /// The request id the server sent.
    public var requestID: String?

    /// A part from its parts.
    public init(partNumber: Int, etag: String, requestID: String? = nil) {
        self.partNumber = partNumber
        self.etag = etag
        self.requestID = requestID
    }
}
