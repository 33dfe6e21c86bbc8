import NIOCore

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

    /// A result from its parts.
    public init(
        size: Int64,
        etag: String? = nil,
        contentType: String? = nil,
        lastModified: String? = nil,
        metadata: [String: String] = [:]
    ) {
        self.size = size
        self.etag = etag
        self.contentType = contentType
        self.lastModified = lastModified
        self.metadata = metadata
    }
}

/// The answer to a PUT.
public struct PutObjectResult: Sendable, Equatable {
    /// The ETag of the stored object.
    public var etag: String?

    /// A result from its ETag.
    public init(etag: String?) {
        self.etag = etag
    }
}

/// The answer to a server-side copy.
public struct CopyObjectResult: Sendable, Equatable {
    /// The ETag of the copy.
    public var etag: String?

    /// A result from its ETag.
    public init(etag: String?) {
        self.etag = etag
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
    /// The `Content-Range` header of a 206 answer, such as `bytes 0-99/1024`.
    public var contentRange: String?

    /// A result from its parts.
    public init(
        body: ByteBuffer,
        size: Int64,
        etag: String? = nil,
        contentType: String? = nil,
        metadata: [String: String] = [:],
        contentRange: String? = nil
    ) {
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

    /// A page from its entries.
    public init(objects: [ListedObject], isTruncated: Bool) {
        self.objects = objects
        self.isTruncated = isTruncated
    }
}
