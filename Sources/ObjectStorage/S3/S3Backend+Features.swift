import Crypto
import Foundation
public import NIOCore
import NIOHTTP1

extension S3Backend: FeatureBackend {
    /// `PUT` with checksums (as headers, or as the trailer of an `aws-chunked` body) and conditions.
    public func putObject(key: String, body: ByteBuffer, options: PutOptions) async throws -> PutObjectResult {
        var headers: [(String, String)] = []
        if let contentType = options.contentType { headers.append(("Content-Type", contentType)) }
        headers += try Self.metadataHeaders(options.metadata, operation: "PutObject")
        if let ifNoneMatch = options.ifNoneMatch { headers.append(("If-None-Match", ifNoneMatch)) }
        if let ifMatch = options.ifMatch { headers.append(("If-Match", ifMatch)) }
        if let algorithm = options.checksum {
            headers.append(("x-amz-sdk-checksum-algorithm", algorithm.sdkName))
            headers.append((algorithm.headerName, algorithm.digest(of: body.readableBytesView)))
        }
        var wireBody = body
        var payloadHash: String?
        if let algorithm = options.trailingChecksum {
            wireBody = AWSChunkedEncoding.encode(body, trailer: algorithm)
            headers += AWSChunkedEncoding.headers(decodedLength: body.readableBytes, trailer: algorithm)
            payloadHash = AWSChunkedEncoding.payloadHash
        }
        // An aws-chunked body goes as botocore sends it, with Transfer-Encoding: chunked and no Content-Length: a
        // server that needs the length (411 MissingContentLength) fails the SDK's default uploads the same way.
        let response = try await self.send(
            operation: "PutObject", method: .PUT, key: key, headers: headers, body: wireBody, payloadHash: payloadHash,
            chunkedTransfer: options.trailingChecksum != nil)
        return PutObjectResult(etag: response.etag, requestID: response.requestID)
    }

    /// `GET` with a range, conditions and `x-amz-checksum-mode`.
    public func getObject(key: String, options: GetOptions) async throws -> GetObjectResult {
        var headers: [(String, String)] = []
        if let range = options.range { headers.append(("Range", range)) }
        if let ifMatch = options.ifMatch { headers.append(("If-Match", ifMatch)) }
        if let ifNoneMatch = options.ifNoneMatch { headers.append(("If-None-Match", ifNoneMatch)) }
        if options.checksumMode { headers.append(("x-amz-checksum-mode", "ENABLED")) }
        let response = try await self.send(operation: "GetObject", method: .GET, key: key, headers: headers)
        return Self.getResult(response)
    }

    /// `GET` through a presigned URL valid for `expires`, with no `Authorization` header: what a browser or a
    /// partner's script holding the URL sends.
    public func presignedGetObject(key: String, expires: Duration) async throws -> GetObjectResult {
        let operation = "GetObject (presigned)"
        let (path, host) = self.target(key: key)
        let presigned = self.signer.presign(
            method: "GET", canonicalURI: path, host: host, expires: max(1, Int(expires.seconds.rounded(.up))),
            credentials: try await self.credentials(for: operation), date: self.now())
        let request = TransportRequest(
            method: .GET, target: path + "?" + presigned.encodedQuery, headers: HTTPHeaders([("Host", host)]),
            body: nil, chunked: false)
        return Self.getResult(try await self.execute(request, operation: operation))
    }

    /// `POST ?uploads`.
    public func createMultipartUpload(key: String, contentType: String?) async throws -> MultipartUpload {
        let operation = "CreateMultipartUpload"
        var headers: [(String, String)] = []
        if let contentType { headers.append(("Content-Type", contentType)) }
        let response = try await self.send(
            operation: operation, method: .POST, key: key, query: [("uploads", "")], headers: headers)
        let root = try Self.parseXML(response, operation: operation)
        guard let uploadID = root.text(of: "UploadId"), !uploadID.isEmpty else {
            throw Self.invalid(response, operation: operation, "the answer has no UploadId")
        }
        return MultipartUpload(key: key, uploadID: uploadID, requestID: response.requestID)
    }

    /// `PUT ?partNumber&uploadId`, with `Content-MD5` so the server checks what it received.
    public func uploadPart(_ upload: MultipartUpload, partNumber: Int, body: ByteBuffer) async throws -> UploadedPart {
        let operation = "UploadPart"
        let response = try await self.send(
            operation: operation, method: .PUT, key: upload.key,
            query: [("partNumber", String(partNumber)), ("uploadId", upload.uploadID)],
            headers: [("Content-MD5", Data(Insecure.MD5.hash(data: body.readableBytesView)).base64EncodedString())],
            body: body)
        guard let etag = response.etag, !etag.isEmpty else {
            throw Self.invalid(response, operation: operation, "part \(partNumber) was answered without an ETag")
        }
        return UploadedPart(partNumber: partNumber, etag: etag, requestID: response.requestID)
    }

    /// `POST ?uploadId` with the parts' list; S3 may answer 200 and still fail, with an `<Error>` body.
    public func completeMultipartUpload(
        _ upload: MultipartUpload, parts: [UploadedPart]
    ) async throws
        -> PutObjectResult
    {
        let operation = "CompleteMultipartUpload"
        var xml = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        for part in parts.sorted(by: { $0.partNumber < $1.partNumber }) {
            xml += "<Part><PartNumber>\(part.partNumber)</PartNumber><ETag>\"\(part.etag)\"</ETag></Part>"
        }
        xml += "</CompleteMultipartUpload>"
        let response = try await self.send(
            operation: operation, method: .POST, key: upload.key, query: [("uploadId", upload.uploadID)],
            headers: [("Content-Type", "application/xml")], body: ByteBuffer(string: xml))
        let root = try Self.parseXML(response, operation: operation)
        if root.name == "Error" {
            throw Self.error(from: root, operation: operation, response: response)
        }
        return PutObjectResult(etag: root.text(of: "ETag").map(Self.unquote), requestID: response.requestID)
    }

    /// `DELETE ?uploadId`; `NoSuchUpload` means it is gone already.
    @discardableResult
    public func abortMultipartUpload(_ upload: MultipartUpload) async throws -> DeleteObjectResult {
        do {
            let response = try await self.send(
                operation: "AbortMultipartUpload", method: .DELETE, key: upload.key,
                query: [("uploadId", upload.uploadID)])
            return DeleteObjectResult(requestID: response.requestID)
        } catch let error as ObjectStorageError where error.s3Code == "NoSuchUpload" {
            return DeleteObjectResult(requestID: error.requestID)
        }
    }

    /// `GET ?uploads`, following `NextKeyMarker`/`NextUploadIdMarker` until `limit` uploads or the end.
    public func listMultipartUploads(prefix: String, limit: Int) async throws -> [MultipartUpload] {
        let operation = "ListMultipartUploads"
        var uploads: [MultipartUpload] = []
        var markers: (key: String, uploadID: String)?
        repeat {
            var query: [(String, String)] = [("uploads", ""), ("prefix", prefix), ("max-uploads", "1000")]
            if let markers {
                query += [("key-marker", markers.key), ("upload-id-marker", markers.uploadID)]
            }
            let response: Response
            do {
                response = try await self.send(operation: operation, method: .GET, key: nil, query: query)
            } catch let error as ObjectStorageError
                where markers == nil && error.httpStatus == 404 && error.s3Code == "NoSuchUpload"
            {
                // rclone serve s3 1.75 says "no such upload" in a bucket that never had one (docs/compatibility.md);
                // only a first page means that: on a later one it is an error like any other.
                break
            }
            let root = try Self.parseXML(response, operation: operation)
            for entry in root.children("Upload") {
                guard let key = entry.text(of: "Key"), let uploadID = entry.text(of: "UploadId") else { continue }
                uploads.append(
                    MultipartUpload(
                        key: key, uploadID: uploadID, initiated: entry.text(of: "Initiated"),
                        requestID: response.requestID))
            }
            markers = nil
            if root.text(of: "IsTruncated") == "true", let key = root.text(of: "NextKeyMarker"),
                let uploadID = root.text(of: "NextUploadIdMarker"), !(key.isEmpty && uploadID.isEmpty)
            {
                markers = (key, uploadID)
            }
        } while markers != nil && uploads.count < limit
        return Array(uploads.prefix(limit))
    }

    // MARK: - Helpers

    /// What a GET answered, its checksums included.
    static func getResult(_ response: Response) -> GetObjectResult {
        var checksums: [ChecksumAlgorithm: String] = [:]
        for algorithm in ChecksumAlgorithm.allCases {
            if let value = response.headers.first(name: algorithm.headerName) { checksums[algorithm] = value }
        }
        return GetObjectResult(
            body: response.body,
            size: Int64(response.body.readableBytes),
            etag: response.etag,
            contentType: response.headers.first(name: "content-type"),
            metadata: response.metadata,
            contentRange: response.headers.first(name: "content-range"),
            partialContent: response.status == .partialContent,
            requestID: response.requestID,
            checksums: checksums
        )
    }

    static func parseXML(_ response: Response, operation: String) throws -> XMLElement {
        do {
            return try XMLElement.parse(response.body.readableBytesView)
        } catch {
            throw ObjectStorageError(
                code: .invalidResponse, operation: operation, httpStatus: Int(response.status.code),
                message: "cannot parse the answer: \(error)", requestID: response.requestID, underlying: error)
        }
    }

    static func invalid(_ response: Response, operation: String, _ message: String) -> ObjectStorageError {
        ObjectStorageError(
            code: .invalidResponse, operation: operation, httpStatus: Int(response.status.code), message: message,
            requestID: response.requestID)
    }
}
