public import NIOCore

/// The `aws-chunked` content encoding with an unsigned trailer (`STREAMING-UNSIGNED-PAYLOAD-TRAILER`), the form
/// the AWS SDKs send uploads in by default since 2025:
///
///     <hex size>\r\n<bytes>\r\n ... 0\r\n<trailer name>:<value>\r\n\r\n
///
/// The request goes with `Transfer-Encoding: chunked` (no `Content-Length`), as botocore sends it;
/// `x-amz-decoded-content-length` is the object's length. A server that does not decode it stores the framing as
/// data, which the canary reads back as corruption.
public enum AWSChunkedEncoding {
    /// The payload hash that announces an unsigned `aws-chunked` body with a trailer.
    public static let payloadHash = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"

    /// The chunk size botocore uses (1 MiB), so our bytes on the wire are the SDK's.
    public static let defaultChunkSize = 1 << 20

    /// The framed body: `payload` in chunks of `chunkSize`, the empty last chunk, then the trailer line for the
    /// checksum of the whole payload.
    public static func encode(
        _ payload: ByteBuffer, trailer algorithm: ChecksumAlgorithm, chunkSize: Int = defaultChunkSize
    ) -> ByteBuffer {
        let checksum = algorithm.digest(of: payload.readableBytesView)
        var out = ByteBuffer()
        out.reserveCapacity(payload.readableBytes + payload.readableBytes / max(chunkSize, 1) * 12 + 80)
        var rest = payload
        while rest.readableBytes > 0, let chunk = rest.readSlice(length: min(max(chunkSize, 1), rest.readableBytes)) {
            out.writeString(String(chunk.readableBytes, radix: 16))
            out.writeString("\r\n")
            out.writeImmutableBuffer(chunk)
            out.writeString("\r\n")
        }
        out.writeString("0\r\n\(algorithm.headerName):\(checksum)\r\n\r\n")
        return out
    }

    /// The headers that go with an encoded body of `decodedLength` payload bytes (besides the payload hash, which
    /// the signer sends as `x-amz-content-sha256`).
    public static func headers(decodedLength: Int, trailer algorithm: ChecksumAlgorithm) -> [(String, String)] {
        [
            ("Content-Encoding", "aws-chunked"),
            ("x-amz-decoded-content-length", String(decodedLength)),
            ("x-amz-sdk-checksum-algorithm", algorithm.sdkName),
            ("x-amz-trailer", algorithm.headerName),
        ]
    }
}
