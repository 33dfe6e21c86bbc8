import AsyncHTTPClient
import Foundation
import NIOCore
import NIOHTTP1
import NIOSSL
import ObjectStorage

/// One delivery attempt as the dispatcher sees it: what it sends and what came back.
public struct WebhookAttempt: Sendable {
    var url: String
    var headers: [(String, String)]
    var body: Data
    var timeout: Duration
}

/// The answer to one attempt: the status (`nil` when nothing answered), a `Retry-After`, and what went wrong.
public struct WebhookAnswer: Sendable, Equatable {
    var status: Int?
    var retryAfter: Duration?
    var failure: String?

    init(status: Int?, retryAfter: Duration? = nil, failure: String? = nil) {
        self.status = status
        self.retryAfter = retryAfter
        self.failure = failure
    }
}

/// Sends webhook requests. ``HTTPWebhookTransport`` is the real one; tests pass their own to drive retries and
/// time without sockets.
public protocol WebhookTransport: Sendable {
    func send(_ attempt: WebhookAttempt) async -> WebhookAnswer
    func shutdown() async
}

/// Webhook requests over AsyncHTTPClient: no redirects, HTTP/1.1, a five-second connect timeout.
public final class HTTPWebhookTransport: WebhookTransport {
    private let client: HTTPClient

    /// A transport with its own HTTP client; call ``shutdown()`` when done. `caBundle`: a PEM file of the CAs to
    /// trust for https receivers instead of the system's.
    public init(caBundle: String? = nil) {
        var tls = TLSConfiguration.makeClientConfiguration()
        if let caBundle { tls.trustRoots = .file(caBundle) }
        var configuration = HTTPClient.Configuration(
            tlsConfiguration: tls, redirectConfiguration: .disallow, timeout: .init(connect: .seconds(5)))
        configuration.connectionPool.retryConnectionEstablishment = false
        configuration.httpVersion = .http1Only
        self.client = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    /// POSTs one attempt; a transport error is an answer without a status, never a throw.
    public func send(_ attempt: WebhookAttempt) async -> WebhookAnswer {
        var request = HTTPClientRequest(url: attempt.url)
        request.method = .POST
        for (name, value) in attempt.headers { request.headers.add(name: name, value: value) }
        request.body = .bytes(ByteBuffer(bytes: attempt.body))
        do {
            let response = try await self.client.execute(request, timeout: attempt.timeout.timeAmount)
            _ = try? await response.body.collect(upTo: 64 * 1024)
            let retryAfter = RetrySchedule.parseRetryAfter(response.headers.first(name: "retry-after"))
            return WebhookAnswer(status: Int(response.status.code), retryAfter: retryAfter)
        } catch {
            // The error's type only: descriptions of transport errors can name the host of a secret URL.
            return WebhookAnswer(status: nil, failure: String(describing: type(of: error)))
        }
    }

    /// Shuts the HTTP client down.
    public func shutdown() async {
        try? await self.client.shutdown()
    }
}
