public import NIOCore

/// The operations a canary needs from an object store, independent of the protocol behind it.
///
/// Implementations must be safe to call concurrently. Every failure is thrown as ``ObjectStorageError``
/// so that callers (the circuit breaker, metrics) can classify it without knowing the implementation.
public protocol ObjectBackend: Sendable {
    /// Reads an object's size, ETag, content type and user metadata without its body.
    func headObject(key: String) async throws -> HeadObjectResult

    /// Stores `body` under `key` and returns the ETag the store reports.
    func putObject(
        key: String, body: ByteBuffer, contentType: String?, metadata: [String: String]
    ) async throws
        -> PutObjectResult

    /// Reads an object, or the byte range `range` of it (an HTTP `Range` value such as `bytes=0-99`).
    func getObject(key: String, range: String?) async throws -> GetObjectResult

    /// Deletes an object. Deleting a key that does not exist succeeds: the end state is the same.
    @discardableResult
    func deleteObject(key: String) async throws -> DeleteObjectResult

    /// Lists the keys under `prefix` page by page, calling `page` once per page in order.
    ///
    /// Returning `false` from `page` stops the listing early.
    func listObjects(
        prefix: String,
        pageSize: Int,
        page: (ListObjectsPage) async throws -> Bool
    ) async throws
}

/// The optional server-side copy capability.
///
/// Kept apart from ``ObjectBackend`` because not every store (or decorator) can copy; callers test for it
/// with `as? BackendCopier` and fall back to GET + PUT when a backend throws
/// ``ObjectStorageError/Code/copyNotSupported``.
public protocol BackendCopier: Sendable {
    /// Copies `source` to `destination` inside the same bucket.
    ///
    /// With `contentType` or `metadata` given, the destination gets them (S3's `REPLACE` directive);
    /// with neither, it keeps the source's (`COPY`). Failures are thrown as ``CopyError`` saying whether
    /// reading the source or writing the destination failed.
    func copyObject(
        source: String, destination: String, contentType: String?, metadata: [String: String]?
    )
        async throws -> CopyObjectResult
}

/// A backend whose I/O runs on one thread, which callers can run their own work on to avoid a thread hop per
/// request (each hop is a cross-thread wake-up that shows up in the latency a canary reports).
public protocol ExecutorPreferringBackend: Sendable {
    /// The executor to run work on for this backend's I/O without a thread hop.
    var preferredExecutor: any TaskExecutor { get }
}

extension ObjectBackend {
    /// Lists every key under `prefix`, following continuation tokens until the listing ends.
    public func listAllObjects(prefix: String, pageSize: Int = 1000) async throws -> [ListedObject] {
        var objects: [ListedObject] = []
        try await self.listObjects(prefix: prefix, pageSize: pageSize) { page in
            objects.append(contentsOf: page.objects)
            return true
        }
        return objects
    }
}

/// A backend whose endpoint is a name with addresses behind it, each of which can be probed on its own.
public protocol AddressedBackend: ObjectBackend {
    /// The addresses the name resolves to now; throws ``DNSFailure``.
    func resolveAddresses() async throws -> NameResolution
    /// The same backend with every request sent to `address`.
    func pinned(to address: String) -> any ObjectBackend
    /// A canary cycle starts: with pooled connections, the next request to each address opens a new one.
    func beginConnectionCycle()
}
