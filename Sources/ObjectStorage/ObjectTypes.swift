public import NIOCore

/// A server's answer that names the request it answered: `x-amz-request-id`, which the storage vendor asks for
/// when a request misbehaved. The canary puts it on its steps, the status page and the latency exemplars.
public protocol IdentifiedResponse: Sendable {
    /// The request id the server sent (`x-amz-request-id`); `nil` when it sent none.
    var requestID: String? { get }
}

/// What a HEAD request reports about an object.
public struct HeadObjectResult: Sendable, Equatable {
    /// Size of the object in bytes.
    public var size: Int64
    /// The object's ETag.
    public var etag: String?
    /// The stored `Content-Type`.
    public var contentType: String?
    /// The `Last-Modified` header, as the server wrote it.
    public var lastModified: String?
    /// User metadata (`x-amz-meta-*` without the prefix, names lower-cased).
    public var metadata: [String: String]
    /// The request id the server sent.
    public var requestID: String?

    /// A result from its parts.
    public init(
        size: Int64,
        etag: String? = nil,
        contentType: String? = nil,
        lastModified: String? = nil,
        metadata: [String: String] = [:],
        requestID: String? = nil
    ) {
        self.size = size
        self.etag = etag
        self.contentType = contentType
        self.lastModified = lastModified
        self.metadata = metadata
        self.requestID = requestID
    }
}

/// The answer to a PUT.
public struct PutObjectResult: Sendable, Equatable {
    /// The ETag of the stored object.
    public var etag: String?
    /// The request id the server sent.
    public var requestID: String?

    /// A result from its ETag.
    public init(etag: String?, requestID: String? = nil) {
        self.etag = etag
        self.requestID = requestID
    }
}

/// The answer to a server-side copy.
public struct CopyObjectResult: Sendable, Equatable {
    /// The ETag of the copy.
    public var etag: String?
    /// The request id the server sent.
    public var requestID: String?

    /// A result from its ETag.
    public init(etag: String?, requestID: String? = nil) {
        self.etag = etag
        self.requestID = requestID
    }
}

/// An object's body and what the server said about it.
public struct GetObjectResult: Sendable, Equatable {
    /// The bytes read.
    public var body: ByteBuffer
    /// Size of the returned body (for a ranged read, the range's length, not the object's).
    public var size: Int64
    /// The ETag of the object.
    public var etag: String?
    /// The stored `Content-Type`.
    public var contentType: String?
    /// User metadata (`x-amz-meta-*` without the prefix, names lower-cased).
    public var metadata: [String: String]
    /// The `Content-Range` header, such as `bytes 0-99/1024` (a server may send it on a 200 too).
    public var contentRange: String?
    /// Whether the answer was 206 Partial Content (some servers answer a satisfiable range with 200 and the
    /// range's bytes: rclone `serve s3`).
    public var partialContent: Bool
    /// The request id the server sent.
    public var requestID: String?
    /// The stored checksums the server returned (`x-amz-checksum-*`, asked for with `x-amz-checksum-mode`).
    public var checksums: [ChecksumAlgorithm: String]

    /// A result from its parts.
    public init(
        body: ByteBuffer,
        size: Int64,
        etag: String? = nil,
        contentType: String? = nil,
        metadata: [String: String] = [:],
        contentRange: String? = nil,
        partialContent: Bool? = nil,
        requestID: String? = nil,
        checksums: [ChecksumAlgorithm: String] = [:]
    ) {
        self.partialContent = partialContent ?? (contentRange != nil)
        self.requestID = requestID
        self.checksums = checksums
        self.body = body
        self.size = size
        self.etag = etag
        self.contentType = contentType
        self.metadata = metadata
        self.contentRange = contentRange
    }
}

/// One entry of a listing.
public struct ListedObject: Sendable, Equatable {
    /// The object's key.
    public var key: String
    /// Size of the object in bytes.
    public var size: Int64
    /// The object's ETag, if the listing gave one.
    public var etag: String?
    /// As the server wrote it (ISO 8601 for S3).
    public var lastModified: String?

    /// An entry from its parts.
    public init(key: String, size: Int64, etag: String? = nil, lastModified: String? = nil) {
        self.key = key
        self.size = size
        self.etag = etag
        self.lastModified = lastModified
    }
}

/// One page of a listing.
public struct ListObjectsPage: Sendable, Equatable {
    /// The entries of this page.
    public var objects: [ListedObject]
    /// Whether more pages follow.
    public var isTruncated: Bool
    /// The request id the server sent for this page.
    public var requestID: String?

    /// A page from its entries.
    public init(objects: [ListedObject], isTruncated: Bool, requestID: String? = nil) {
        self.objects = objects
        self.isTruncated = isTruncated
        self.requestID = requestID
    }
}

/// The answer to a DELETE: only the request id (S3 answers 204 whether or not the key existed).
public struct DeleteObjectResult: IdentifiedResponse, Equatable {
    /// The request id the server sent.
    public var requestID: String?

    /// A result from its request id.
    public init(requestID: String? = nil) {
        self.requestID = requestID
    }
}

extension HeadObjectResult: IdentifiedResponse {}
extension PutObjectResult: IdentifiedResponse {}
extension CopyObjectResult: IdentifiedResponse {}
extension GetObjectResult: IdentifiedResponse {}
extension ListObjectsPage: IdentifiedResponse {}
