import AsyncHTTPClient
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
public import Musl
#elseif canImport(Darwin)
public import Darwin
#endif

extension S3Backend {
    /// Maps a transport error from AsyncHTTPClient or SwiftNIO to an ``ObjectStorageError`` with no HTTP status.
    ///
    /// The distinction matters to on-call: `dns` and `tls` point at configuration or certificates, `connection` at
    /// the network or a dead server, `timeout` at a slow one.
    static func classify(
        _ error: any Error,
        operation: String,
        endpoint: Configuration.Endpoint,
        address: String? = nil
    ) -> ObjectStorageError {
        if let error = error as? ObjectStorageError { return error }
        if let error = error as? PhaseError {
            return self.classify(error, operation: operation, endpoint: endpoint, address: address)
        }
        let target = endpoint.authority()
        func make(_ code: ObjectStorageError.Code, _ message: String) -> ObjectStorageError {
            ObjectStorageError(code: code, operation: operation, message: message, underlying: error)
        }
        switch error {
        case is CancellationError:
            return make(.cancelled, "cancelled")
        case let error as HTTPClientError:
            switch error {
            case .deadlineExceeded, .readTimeout, .writeTimeout, .getConnectionFromPoolTimeout:
                return make(.timeout, "no complete answer from \(target) in time (\(error))")
            case .connectTimeout:
                return make(.timeout, "connecting to \(target) timed out")
            case .tlsHandshakeTimeout:
                return make(.tls, "TLS handshake with \(target) timed out")
            case .cancelled, .requestStreamCancelled:
                return make(.cancelled, "cancelled")
            case .remoteConnectionClosed:
                return make(.connection, "\(target) closed the connection before answering")
            case .alreadyShutdown:
                return make(.cancelled, "the backend's HTTP client is shut down")
            case .invalidURL, .emptyHost, .emptyScheme:
                return make(.invalidRequest, "the request could not be built: \(error)")
            default:
                return make(.other, "\(error)")
            }
        case let error as NIOConnectionError:
            if error.connectionErrors.isEmpty, error.dnsAError != nil || error.dnsAAAAError != nil {
                return make(.dns, "cannot resolve \(endpoint.host)")
            }
            if let first = error.connectionErrors.first {
                return self.classifyConnect(first.error, operation: operation, target: target, wrapped: error)
            }
            return make(.connection, "cannot connect to \(target)")
        case is SocketAddressError:
            return make(.dns, "cannot resolve \(endpoint.host)")
        case is NIOSSLError, is BoringSSLError, is NIOSSLExtraError:
            return make(.tls, "TLS with \(target) failed: \(error)")
        case let error as ChannelError:
            if case .connectTimeout = error {
                return make(.timeout, "connecting to \(target) timed out")
            }
            return make(.connection, "connection to \(target) failed: \(error)")
        case let error as IOError:
            return self.classifyConnect(error, operation: operation, target: target, wrapped: error)
        case let error as HTTPParserError:
            if case .invalidEOFState = error {
                // The server (or something between) closed the connection before the body it announced was complete.
                return make(.connection, "\(target) closed the connection in the middle of the answer")
            }
            return make(.invalidResponse, "\(target) sent a malformed HTTP answer: \(error)")
        case is NIOTooManyBytesError:
            return make(.invalidResponse, "the answer is larger than max_response_bytes")
        default:
            return make(.other, "\(error)")
        }
    }

    /// A failure of our own transport, by the phase it happened in: `dns`, `connect` and `tls` each their own
    /// code; after the connection is up, our deadline is `timeout` and a broken connection `connection`.
    private static func classify(
        _ error: PhaseError,
        operation: String,
        endpoint: Configuration.Endpoint,
        address: String?
    ) -> ObjectStorageError {
        let target = endpoint.authority() + (address.map { " (\($0))" } ?? "")
        func make(_ code: ObjectStorageError.Code, _ message: String) -> ObjectStorageError {
            var made = ObjectStorageError(code: code, operation: operation, message: message, underlying: error.underlying)
            made.phase = error.phase
            return made
        }
        if error.underlying is CancellationError { return make(.cancelled, "cancelled") }
        let step: String
        switch error.phase {
        case .dns:
            if let failure = error.underlying as? DNSFailure { return make(.dns, failure.description) }
            return make(.dns, "cannot resolve \(endpoint.host): \(error.underlying)")
        case .connect:
            if error.timedOut { return make(.connect, "connecting to \(target) timed out") }
            let connect = self.classifyConnect(
                (error.underlying as? NIOConnectionError)?.connectionErrors.first?.error ?? error.underlying,
                operation: operation, target: target, wrapped: error.underlying)
            return make(.connect, connect.message)
        case .tls:
            if error.timedOut { return make(.tls, "TLS handshake with \(target) timed out") }
            return make(.tls, "TLS with \(target) failed: \(error.underlying)")
        case .request: step = "while sending the request"
        case .firstByte: step = "while waiting for the answer"
        case .transfer: step = "while reading the answer's body"
        }
        if error.timedOut { return make(.timeout, "no complete answer from \(target) in time (\(step))") }
        switch error.underlying {
        case is NIOTooManyBytesError:
            return make(.invalidResponse, "the answer is larger than max_response_bytes")
        case let parser as HTTPParserError:
            if case .invalidEOFState = parser {
                return make(.connection, "\(target) closed the connection \(step)")
            }
            return make(.invalidResponse, "\(target) sent a malformed HTTP answer: \(parser)")
        case let io as IOError where io.errnoCode == ECONNRESET:
            return make(.connection, "connection reset by \(target) \(step)")
        default:
            return make(.connection, "\(target) closed the connection \(step) (\(error.underlying))")
        }
    }

    private static func classifyConnect(
        _ error: any Error,
        operation: String,
        target: String,
        wrapped: any Error
    ) -> ObjectStorageError {
        var message = "cannot connect to \(target)"
        var code = ObjectStorageError.Code.connection
        if let io = error as? IOError {
            switch io.errnoCode {
            case ECONNREFUSED: message = "connection refused by \(target)"
            case ECONNRESET: message = "connection reset by \(target)"
            case ETIMEDOUT:
                message = "connecting to \(target) timed out"
                code = .timeout
            case EHOSTUNREACH, ENETUNREACH: message = "\(target) is unreachable"
            default: message = "cannot connect to \(target): \(io)"
            }
        } else if case ChannelError.connectTimeout = error {
            message = "connecting to \(target) timed out"
            code = .timeout
        }
        return ObjectStorageError(code: code, operation: operation, message: message, underlying: wrapped)
    }
}
