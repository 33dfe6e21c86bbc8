import Crypto
public import Foundation
public import Logging
public import NIOCore
import NIOFoundationCompat
import NIOHTTP1
import NIOPosix
import NIOSSL

/// An ``ObjectBackend`` that speaks the S3 REST API to one bucket, signing every request with SigV4.
///
/// Each backend owns its HTTP client, so one slow or broken store never exhausts connections another needs,
/// and pool size and timeouts can be tuned per store. Call ``shutdown()`` before dropping it.
public final class S3Backend: ObjectBackend, BackendCopier, AddressedBackend {
    /// How this backend reaches its bucket.
    public let configuration: Configuration
    private let endpoint: Configuration.Endpoint
    let credentialsProvider: any CredentialsProvider
    let signer: SigV4Signer
    private let transport: HTTPTransport
    /// The one address every request goes to (``pinned(to:)``); `nil` to use the first the name resolves to.
    public let pinnedAddress: String?
    private let logger: Logger
    let now: @Sendable () -> Date
    private let onResponseHead: (@Sendable (ResponseHead) -> Void)?
    private let onRequestTrace: (@Sendable (RequestTrace) -> Void)?

    /// Creates the backend and its connection pool.
    ///
    /// - Parameter onResponseHead: called for each complete answer, with the S3 operation, the task's
    ///   ``RequestLabel``, the time from sending the request to its response head (time to first byte) and the
    ///   request id.
    /// - Parameter onRequestTrace: called as each request ends, answered or not, with its address, phases and the
    ///   phase it failed in.
    /// - Throws: ``ConfigurationError`` listing every problem of `configuration`.
    public init(
        configuration: Configuration,
        credentials: any CredentialsProvider,
        logger: Logger = Logger(label: "s3-canary.s3", factory: { _ in SwiftLogNoOpLogHandler() }),
        now: @escaping @Sendable () -> Date = { Date() },
        onResponseHead: (@Sendable (ResponseHead) -> Void)? = nil,
        onRequestTrace: (@Sendable (RequestTrace) -> Void)? = nil
    ) throws {
        let problems = configuration.validate()
        guard problems.isEmpty, case .success(let endpoint) = Configuration.parseEndpoint(configuration.endpoint) else {
            throw ConfigurationError(problems: problems)
        }
        self.configuration = configuration
        self.endpoint = endpoint
        self.credentialsProvider = credentials
        self.signer = SigV4Signer(region: configuration.region)
        self.logger = logger
        self.now = now
        self.onResponseHead = onResponseHead
        self.onRequestTrace = onRequestTrace
        self.pinnedAddress = nil

        var tlsContext: NIOSSLContext?
        if endpoint.isTLS {
            var tls = TLSConfiguration.makeClientConfiguration()
            if let caBundle = configuration.tls.caBundlePath {
                tls.trustRoots = .file(caBundle)
            }
            if !configuration.tls.verifyCertificates {
                tls.certificateVerification = .none
            }
            do {
                tlsContext = try NIOSSLContext(configuration: tls)
            } catch {
                throw ConfigurationError(
                    field: "tls.caBundlePath", message: "cannot load the TLS trust roots: \(error)")
            }
        }
        let resolver: any HostResolver =
            configuration.dns.map { DNSResolver(servers: $0.servers, timeout: $0.timeout) } ?? SystemResolver()
        // One event loop per backend: its connections live there, and cycles that prefer its executor run there
        // too, so a request does not hop from the caller's thread to the loop's and back.
        let eventLoop = MultiThreadedEventLoopGroup.singleton.next()
        self.eventLoopExecutor = EventLoopTaskExecutor(eventLoop)
        self.transport = HTTPTransport(
            settings: HTTPTransport.Settings(
                host: endpoint.connectHost(bucket: configuration.addressing == .virtualHost ? configuration.bucket : nil),
                port: endpoint.port ?? (endpoint.isTLS ? 443 : 80),
                connection: configuration.connection,
                ipFamily: configuration.ipFamily,
                connectTimeout: configuration.timeouts.connect,
                requestTimeout: configuration.timeouts.request,
                maxIdlePerAddress: configuration.pool.maxConnections,
                idleTimeout: configuration.pool.idleTimeout,
                maxResponseBytes: configuration.maxResponseBytes
            ),
            tls: tlsContext, resolver: resolver, eventLoop: eventLoop)
    }

    /// The same backend (its connections, credentials and hooks), sending every request to `address`.
    private init(pinning source: S3Backend, to address: String) {
        self.configuration = source.configuration
        self.endpoint = source.endpoint
        self.credentialsProvider = source.credentialsProvider
        self.signer = source.signer
        self.transport = source.transport
        self.pinnedAddress = address
        self.logger = source.logger
        self.now = source.now
        self.onResponseHead = source.onResponseHead
        self.onRequestTrace = source.onRequestTrace
        self.eventLoopExecutor = source.eventLoopExecutor
    }

    /// This backend with every request sent to `address` (one the name resolved to), the `Host` header, TLS SNI and
    /// certificate check still on the endpoint's name: how `addresses: all` probes each address.
    public func pinned(to address: String) -> any ObjectBackend {
        S3Backend(pinning: self, to: address)
    }

    /// The addresses the endpoint's name resolves to now (the configured DNS servers or the system's, the
    /// `ip_family` applied); throws ``DNSFailure``.
    public func resolveAddresses() async throws -> NameResolution {
        try await self.transport.resolve()
    }

    /// Starts a canary cycle: with `connection: pooled`, the next request to each address opens a new connection, so
    /// a server that stops accepting new ones is seen within one cycle.
    public func beginConnectionCycle() {
        // A pinned view is one address of a cycle its unpinned backend began.
        guard self.pinnedAddress == nil else { return }
        self.transport.beginCycle()
    }

    private let eventLoopExecutor: EventLoopTaskExecutor

    /// Closes every pooled connection. Requests still running fail with ``ObjectStorageError/Code/cancelled``.
    public func shutdown() async throws {
        await self.transport.shutdown()
    }

    // MARK: - ObjectBackend

    /// `HEAD` on the object.
    public func headObject(key: String) async throws -> HeadObjectResult {
        let response = try await self.send(operation: "HeadObject", method: .HEAD, key: key)
        return HeadObjectResult(
            size: response.contentLength ?? 0,
            etag: response.etag,
            contentType: response.headers.first(name: "content-type"),
            lastModified: response.headers.first(name: "last-modified"),
            metadata: response.metadata,
            requestID: response.requestID
        )
    }

    /// `PUT` of the object, with its content type and `x-amz-meta-*` headers.
    public func putObject(
        key: String, body: ByteBuffer, contentType: String?, metadata: [String: String]
    )
        async throws -> PutObjectResult
    {
        var headers: [(String, String)] = []
        headers.append(("Content-MD5", Data(Insecure.MD5.hash(data: body.readableBytesView)).base64EncodedString()))
        if let contentType { headers.append(("Content-Type", contentType)) }
        headers += try Self.metadataHeaders(metadata, operation: "PutObject")
        let response = try await self.send(operation: "PutObject", method: .PUT, key: key, headers: headers, body: body)
        return PutObjectResult(etag: response.etag, requestID: response.requestID)
    }

    /// `GET` of the object, or of a byte range with `Range`.
    public func getObject(key: String, range: String?) async throws -> GetObjectResult {
        try await self.getObject(key: key, options: GetOptions(range: range))
    }

    /// `DELETE` of the object; a missing key counts as deleted.
    @discardableResult
    public func deleteObject(key: String) async throws -> DeleteObjectResult {
        do {
            let response = try await self.send(operation: "DeleteObject", method: .DELETE, key: key)
            return DeleteObjectResult(requestID: response.requestID)
        } catch let error as ObjectStorageError where error.isNotFound && error.s3Code != "NoSuchBucket" {
            // Already absent: the state the caller asked for.
            return DeleteObjectResult(requestID: error.requestID)
        }
    }

    /// `ListObjectsV2`, page by page, following continuation tokens.
    public func listObjects(
        prefix: String,
        pageSize: Int,
        page: (ListObjectsPage) async throws -> Bool
    ) async throws {
        var token: String?
        repeat {
            var query: [(String, String)] = [
                ("list-type", "2"), ("prefix", prefix), ("max-keys", String(max(1, min(pageSize, 1000)))),
            ]
            if let token { query.append(("continuation-token", token)) }
            let response = try await self.send(operation: "ListObjectsV2", method: .GET, key: nil, query: query)
            let root: XMLElement
            do {
                root = try XMLElement.parse(response.body.readableBytesView)
            } catch {
                throw ObjectStorageError(
                    code: .invalidResponse,
                    operation: "ListObjectsV2",
                    httpStatus: Int(response.status.code),
                    message: "cannot parse the listing: \(error)",
                    requestID: response.requestID,
                    underlying: error
                )
            }
            let objects = root.children("Contents").compactMap { entry -> ListedObject? in
                guard let key = entry.text(of: "Key") else { return nil }
                return ListedObject(
                    key: key,
                    size: Int64(entry.text(of: "Size") ?? "") ?? 0,
                    etag: entry.text(of: "ETag").map(Self.unquote),
                    lastModified: entry.text(of: "LastModified")
                )
            }
            let truncated = root.text(of: "IsTruncated") == "true"
            token = truncated ? root.text(of: "NextContinuationToken") : nil
            if truncated && token == nil {
                throw ObjectStorageError(
                    code: .invalidResponse,
                    operation: "ListObjectsV2",
                    httpStatus: Int(response.status.code),
                    message: "a truncated listing came without NextContinuationToken",
                    requestID: response.requestID
                )
            }
            let keepGoing = try await page(
                ListObjectsPage(objects: objects, isTruncated: truncated, requestID: response.requestID))
            if !keepGoing { return }
        } while token != nil
    }

    // MARK: - BackendCopier

    /// `PUT` with `x-amz-copy-source`: a server-side copy inside the bucket.
    public func copyObject(
        source: String, destination: String, contentType: String?, metadata: [String: String]?
    )
        async throws -> CopyObjectResult
    {
        var headers: [(String, String)] = [
            (
                "x-amz-copy-source",
                "/\(S3URIEncoding.encode(self.configuration.bucket, keepSlash: false))/"
                    + S3URIEncoding.encode(source, keepSlash: true)
            )
        ]
        if contentType != nil || metadata != nil {
            headers.append(("x-amz-metadata-directive", "REPLACE"))
            if let contentType { headers.append(("Content-Type", contentType)) }
            do {
                headers += try Self.metadataHeaders(metadata ?? [:], operation: "CopyObject")
            } catch let error as ObjectStorageError {
                throw CopyError(phase: .write, underlying: error)
            }
        } else {
            headers.append(("x-amz-metadata-directive", "COPY"))
        }
        do {
            let response = try await self.send(
                operation: "CopyObject", method: .PUT, key: destination, headers: headers)
            // S3 may answer 200 and still fail the copy, with an <Error> body.
            let root = try? XMLElement.parse(response.body.readableBytesView)
            if let root, root.name == "Error" {
                throw Self.error(from: root, operation: "CopyObject", response: response)
            }
            return CopyObjectResult(
                etag: root?.text(of: "ETag").map(Self.unquote) ?? response.etag, requestID: response.requestID)
        } catch let error as ObjectStorageError {
            throw CopyError(phase: Self.copyPhase(of: error), underlying: error)
        }
    }

    /// A missing or unreadable source is a read failure, which another source may fix; everything else is a
    /// write failure.
    static func copyPhase(of error: ObjectStorageError) -> CopyError.Phase {
        switch error.s3Code {
        case "NoSuchKey", "InvalidObjectState", "PreconditionFailed":
            return .read
        case nil where error.httpStatus == 404:
            return .read
        default:
            return .write
        }
    }

    // MARK: - Requests

    struct Response {
        var status: HTTPResponseStatus
        var headers: HTTPHeaders
        var body: ByteBuffer

        var requestID: String? { self.headers.first(name: "x-amz-request-id") }
        var etag: String? { self.headers.first(name: "etag").map(S3Backend.unquote) }
        var contentLength: Int64? { self.headers.first(name: "content-length").flatMap { Int64($0) } }
        var metadata: [String: String] {
            var out: [String: String] = [:]
            for (name, value) in self.headers where name.lowercased().hasPrefix("x-amz-meta-") {
                out[String(name.lowercased().dropFirst("x-amz-meta-".count))] = value
            }
            return out
        }
    }

    /// The path and `Host` of a request for `key` (or the bucket itself when `key` is nil).
    func target(key: String?) -> (path: String, host: String) {
        let encodedKey = key.map { S3URIEncoding.encode($0, keepSlash: true) }
        switch self.configuration.addressing {
        case .path:
            let bucket = "/" + S3URIEncoding.encode(self.configuration.bucket, keepSlash: false)
            return (encodedKey.map { "\(bucket)/\($0)" } ?? bucket, self.endpoint.authority())
        case .virtualHost:
            return ("/" + (encodedKey ?? ""), self.endpoint.authority(prefix: self.configuration.bucket))
        }
    }

    /// Signs and sends one request. `payloadHash` replaces the body's hash (an `aws-chunked` body announces its
    /// encoding there). With `chunkedTransfer` the body goes with `Transfer-Encoding: chunked` and no
    /// `Content-Length`, as botocore sends its `aws-chunked` uploads.
    func send(
        operation: String,
        method: HTTPMethod,
        key: String?,
        query: [(String, String)] = [],
        headers extraHeaders: [(String, String)] = [],
        body: ByteBuffer? = nil,
        payloadHash announcedHash: String? = nil,
        chunkedTransfer: Bool = false
    ) async throws -> Response {
        let (path, host) = self.target(key: key)
        let payloadHash: String
        if let announcedHash {
            payloadHash = announcedHash
        } else if self.configuration.payloadSigning == .unsigned && self.endpoint.isTLS {
            payloadHash = SigV4Signer.unsignedPayload
        } else if let body {
            payloadHash = SigV4Signer.payloadHash(body.readableBytesView)
        } else {
            payloadHash = SigV4Signer.emptyPayloadHash
        }
        let credentials = try await self.credentials(for: operation)
        let signature = self.signer.sign(
            method: method.rawValue,
            canonicalURI: path,
            query: query,
            host: host,
            headers: extraHeaders,
            payloadHash: payloadHash,
            credentials: credentials,
            date: self.now()
        )

        var target = path
        if !query.isEmpty {
            target +=
                "?"
                + query.map {
                    "\(S3URIEncoding.encode($0.0, keepSlash: false))=\(S3URIEncoding.encode($0.1, keepSlash: false))"
                }.joined(separator: "&")
        }
        var headers = HTTPHeaders([("Host", host)])
        for (name, value) in extraHeaders { headers.add(name: name, value: value) }
        for (name, value) in signature.headers { headers.add(name: name, value: value) }
        if body == nil && (method == .PUT || method == .POST) {
            headers.add(name: "Content-Length", value: "0")
        }
        let request = TransportRequest(
            method: method, target: target, headers: headers, body: body, chunked: body != nil && chunkedTransfer)
        return try await self.execute(request, operation: operation)
    }

    /// The credentials to sign with, or the ``ObjectStorageError/Code/credentials`` error of `operation`.
    func credentials(for operation: String) async throws -> Credentials {
        do {
            return try await self.credentialsProvider.credentials()
        } catch {
            throw ObjectStorageError(
                code: .credentials,
                operation: operation,
                message: "no credentials: \(error)",
                underlying: error
            )
        }
    }

    /// Sends a built request: reports its trace and time to first byte, and turns transport failures and non-2xx
    /// answers into ``ObjectStorageError``.
    func execute(_ request: TransportRequest, operation: String) async throws -> Response {
        let exchange = await self.transport.send(request, to: self.pinnedAddress)
        let label = RequestLabel.current
        let failure: PhaseError?
        if case .failure(let error) = exchange.outcome { failure = error } else { failure = nil }
        self.onRequestTrace?(
            RequestTrace(
                operation: operation, label: label, address: exchange.address, phases: exchange.phases,
                failedPhase: failure?.phase, tls: exchange.tls, newConnection: exchange.newConnection,
                resolution: exchange.resolution, dnsFailure: failure?.underlying as? DNSFailure))
        let response: TransportResponse
        switch exchange.outcome {
        case .failure(let error):
            let classified = Self.classify(
                error, operation: operation, endpoint: self.endpoint, address: exchange.address)
            self.logger.debug(
                "s3 request failed",
                metadata: [
                    "s3.operation": "\(operation)", "s3.error": "\(classified)",
                    "s3.address": "\(exchange.address ?? "-")", "s3.phase": "\(error.phase.rawValue)",
                ]
            )
            throw classified
        case .success(let answer):
            response = answer
        }
        if let firstByte = exchange.phases.first(where: { $0.phase == .firstByte }) {
            self.onResponseHead?(
                ResponseHead(
                    operation: operation, label: label, elapsed: firstByte.duration,
                    requestID: response.headers.first(name: "x-amz-request-id")))
        }
        let result = Response(status: response.status, headers: response.headers, body: response.body)
        self.logger.trace(
            "s3 request",
            metadata: [
                "s3.operation": "\(operation)", "s3.status": "\(response.status.code)",
                "s3.address": "\(exchange.address ?? "-")",
            ]
        )
        guard (200..<300).contains(response.status.code) else {
            let root = try? XMLElement.parse(response.body.readableBytesView)
            throw Self.error(from: root, operation: operation, response: result)
        }
        return result
    }

    /// Builds the error for a non-2xx answer from its XML body, when it has one.
    static func error(from root: XMLElement?, operation: String, response: Response) -> ObjectStorageError {
        let status = Int(response.status.code)
        let s3Code = root.flatMap { $0.name == "Error" ? $0.text(of: "Code") : nil }.flatMap { $0.isEmpty ? nil : $0 }
        var message = root.flatMap { $0.name == "Error" ? $0.text(of: "Message") : nil } ?? ""
        if message.isEmpty {
            // RGW sends an empty <Message>, and HEAD has no body at all: say what the status means.
            message = s3Code ?? response.status.reasonPhrase
        }
        let requestID = response.requestID ?? root?.text(of: "RequestId")
        return ObjectStorageError(
            code: status == 404 ? .notFound : .httpError,
            operation: operation,
            httpStatus: status,
            s3Code: s3Code,
            message: message,
            requestID: requestID
        )
    }

    static func metadataHeaders(_ metadata: [String: String], operation: String) throws -> [(String, String)] {
        try metadata.sorted { $0.key < $1.key }.map { name, value in
            let printable: (Character) -> Bool = { $0.isASCII && ($0 == " " || !$0.isWhitespace) }
            guard !name.isEmpty,
                name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") }),
                value.allSatisfy(printable)
            else {
                throw ObjectStorageError(
                    code: .invalidRequest,
                    operation: operation,
                    message: "metadata \(name) must have an ASCII token name and a printable ASCII value"
                )
            }
            return ("x-amz-meta-\(name.lowercased())", value)
        }
    }

    static func unquote(_ etag: String) -> String {
        var value = etag
        if value.hasPrefix("W/") { value.removeFirst(2) }
        if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") {
            value = String(value.dropFirst().dropLast())
        }
        return value
    }
}

extension S3Backend: ExecutorPreferringBackend {
    /// The event loop of this backend's HTTP client.
    public var preferredExecutor: any TaskExecutor { self.eventLoopExecutor }
}

/// Runs Swift tasks on a NIO event loop.
final class EventLoopTaskExecutor: TaskExecutor {
    let eventLoop: any EventLoop

    init(_ eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        self.eventLoop.execute {
            job.runSynchronously(on: self.asUnownedTaskExecutor())
        }
    }
}
