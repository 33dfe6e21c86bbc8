import Crypto
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import NIOTLS
import Synchronization

/// A request as the transport sends it: signed and final.
struct TransportRequest: Sendable {
    var method: HTTPMethod
    /// Path and query, as they go on the request line.
    var target: String
    var headers: HTTPHeaders
    var body: ByteBuffer?
    /// Send the body with `Transfer-Encoding: chunked` and no `Content-Length`.
    var chunked: Bool
}

/// A whole answer.
struct TransportResponse: Sendable {
    var status: HTTPResponseStatus
    var headers: HTTPHeaders
    var body: ByteBuffer
}

/// One HTTP/1.1 connection to one address, one request at a time, timing each phase on its event loop.
///
/// Our own small client rather than AsyncHTTPClient's pool, because a canary must say where a request broke: the
/// TCP connect, the TLS handshake, sending, waiting for the head, or the body; and it must choose the address and
/// when a connection is new (`connection: pooled | fresh`), which a general-purpose pool hides.
final class HTTPConnection: Sendable {
    let channel: any Channel
    /// The address connected to, as text (`127.0.0.2`, `::1`).
    let address: String
    /// The TLS session, on an HTTPS connection.
    let tls: TLSSessionInfo?
    private let exchange: NIOLoopBound<ExchangeHandler>
    private let health: ConnectionHealth

    private init(
        channel: any Channel, address: String, tls: TLSSessionInfo?, exchange: NIOLoopBound<ExchangeHandler>,
        health: ConnectionHealth
    ) {
        self.channel = channel
        self.address = address
        self.tls = tls
        self.exchange = exchange
        self.health = health
    }

    /// Whether another request may go on this connection: open, the last answer complete, no `Connection: close`.
    var isReusable: Bool { self.health.reusable.load(ordering: .relaxed) && self.channel.isActive }

    func close() { self.channel.close(promise: nil) }

    /// A connection being opened, or how opening it ended: the connection or the ``PhaseError`` naming the phase that
    /// failed, and the `connect` and `tls` phases it finished either way.
    struct Opening: Sendable {
        var result: Result<HTTPConnection, PhaseError>
        var phases: [PhaseDuration]
    }

    /// Connects to `address` and, with `tls`, completes the handshake with `serverName` as SNI and the name the
    /// certificate is checked against (none for an IP literal: then the certificate must name the IP).
    ///
    /// Runs on `eventLoop` as a chain of futures, no task of its own, so a pool can start one and let whichever request
    /// comes next take it. The future never fails: a failure is the ``Opening``'s result.
    static func open(
        to address: SocketAddress,
        serverName: String,
        tls: NIOSSLContext?,
        connectTimeout: Duration,
        eventLoop: any EventLoop
    ) -> EventLoopFuture<Opening> {
        let health = ConnectionHealth()
        let times = ConnectionTimes()
        let cipher = CipherSniffer.Result()
        let handshake = eventLoop.makePromise(of: Void.self)
        let sniName = (try? SocketAddress(ipAddress: serverName, port: 0)) == nil ? serverName : nil
        let text = address.ipAddress ?? "\(address)"
        let start = NIODeadline.now()
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(connectTimeout.timeAmount)
            .channelOption(.tcpOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let pipeline = channel.pipeline.syncOperations
                    try pipeline.addHandler(ActiveWatcher(times: times))
                    if let tls {
                        try pipeline.addHandler(CipherSniffer(result: cipher))
                        try pipeline.addHandler(NIOSSLClientHandler(context: tls, serverHostname: sniName))
                        try pipeline.addHandler(HandshakeWatcher(promise: handshake, times: times))
                    }
                    try pipeline.addHTTPClientHandlers()
                    try pipeline.addHandler(ExchangeHandler(health: health))
                }
            }
        return bootstrap.connect(to: address).flatMap { channel -> EventLoopFuture<Opening> in
            let connected = times.active ?? .now()
            let phases = [PhaseDuration(.connect, (connected - start).duration)]
            guard tls != nil else {
                handshake.succeed()
                return eventLoop.makeSucceededFuture(
                    Self.finish(channel, address: text, session: nil, health: health, phases: phases))
            }
            let timer = eventLoop.scheduleTask(in: connectTimeout.timeAmount) {
                handshake.fail(ChannelError.connectTimeout(connectTimeout.timeAmount))
            }
            return handshake.futureResult.map { () -> Opening in
                timer.cancel()
                let tlsPhase = PhaseDuration(.tls, ((times.handshake ?? .now()) - connected).duration)
                let session = try? Self.session(of: channel, cipher: cipher.name)
                return Self.finish(
                    channel, address: text, session: session, health: health, phases: phases + [tlsPhase])
            }.recover { error in
                timer.cancel()
                channel.close(promise: nil)
                let failure = PhaseError(phase: .tls, underlying: error, timedOut: Self.isTimeout(error))
                return Opening(result: .failure(failure), phases: phases)
            }
        }.recover { error in
            handshake.fail(error)
            let failure = PhaseError(phase: .connect, underlying: error, timedOut: Self.isTimeout(error))
            return Opening(result: .failure(failure), phases: [])
        }
    }

    /// The connection on an open channel, on its event loop: the handler that runs its exchanges looked up once.
    private static func finish(
        _ channel: any Channel, address: String, session: TLSSessionInfo?, health: ConnectionHealth,
        phases: [PhaseDuration]
    ) -> Opening {
        do {
            let handler = try channel.pipeline.syncOperations.handler(type: ExchangeHandler.self)
            let exchange = NIOLoopBound(handler, eventLoop: channel.eventLoop)
            let connection = HTTPConnection(
                channel: channel, address: address, tls: session, exchange: exchange, health: health)
            return Opening(result: .success(connection), phases: phases)
        } catch {
            channel.close(promise: nil)
            let failure = PhaseError(phase: .connect, underlying: ChannelError.ioOnClosedChannel, timedOut: false)
            return Opening(result: .failure(failure), phases: phases)
        }
    }

    /// Sends `request` and reads the whole answer, up to `limit` body bytes, within `timeout`. Returns the answer and
    /// the `request`, `first_byte` and `transfer` phases; throws ``PhaseError`` naming the phase that failed.
    func execute(
        _ request: TransportRequest, limit: Int, timeout: Duration
    ) async throws -> (TransportResponse, [PhaseDuration]) {
        let promise = self.channel.eventLoop.makePromise(of: ExchangeHandler.Outcome.self)
        let exchange = self.exchange
        self.channel.eventLoop.execute {
            exchange.value.start(request, limit: limit, timeout: timeout, promise: promise)
        }
        let outcome = try await withTaskCancellationHandler {
            try await promise.futureResult.get()
        } onCancel: {
            self.channel.eventLoop.execute { exchange.value.cancel() }
        }
        return (outcome.response, outcome.phases)
    }

    private static func isTimeout(_ error: any Error) -> Bool {
        if case ChannelError.connectTimeout = error { return true }
        if let error = error as? NIOConnectionError, let first = error.connectionErrors.first {
            return Self.isTimeout(first.error)
        }
        return false
    }

    /// Version, cipher and leaf certificate of the channel's TLS session; runs on its event loop.
    private static func session(of channel: any Channel, cipher: String?) throws -> TLSSessionInfo? {
        let pipeline = channel.pipeline.syncOperations
        let version: String
        switch try pipeline.nioSSL_tlsVersion() {
        case .tlsv1: version = "TLSv1.0"
        case .tlsv11: version = "TLSv1.1"
        case .tlsv12: version = "TLSv1.2"
        case .tlsv13: version = "TLSv1.3"
        case .none: version = "unknown"
        }
        guard let certificate = try pipeline.nioSSL_peerCertificate() else { return nil }
        let digest = SHA256.hash(data: try certificate.toDERBytes())
        return TLSSessionInfo(
            version: version,
            cipher: cipher ?? "unknown",
            fingerprint: digest.map { String(format: "%02x", $0) }.joined(),
            notAfter: Date(timeIntervalSince1970: TimeInterval(certificate.notValidAfter))
        )
    }
}

/// Set by the connection's handlers, read by whoever holds the connection.
final class ConnectionHealth: Sendable {
    let reusable = Atomic<Bool>(true)
}

/// When the connection came up and when its TLS handshake finished, as the event loop saw them.
final class ConnectionTimes: Sendable {
    private let state = Mutex<(active: NIODeadline?, handshake: NIODeadline?)>((nil, nil))
    var active: NIODeadline? { self.state.withLock { $0.active } }
    var handshake: NIODeadline? { self.state.withLock { $0.handshake } }
    func markActive() { self.state.withLock { $0.active = .now() } }
    func markHandshake() { self.state.withLock { $0.handshake = .now() } }
}

/// Notes the moment the TCP connection is up.
private final class ActiveWatcher: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    let times: ConnectionTimes
    init(times: ConnectionTimes) { self.times = times }

    func channelActive(context: ChannelHandlerContext) {
        self.times.markActive()
        context.fireChannelActive()
    }
}

/// Completes a promise when the TLS handshake finishes (or the channel fails or goes away first).
final class HandshakeWatcher: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    let promise: EventLoopPromise<Void>
    let times: ConnectionTimes?

    init(promise: EventLoopPromise<Void>, times: ConnectionTimes? = nil) {
        self.promise = promise
        self.times = times
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event as? TLSUserEvent ?? .shutdownCompleted {
            self.times?.markHandshake()
            self.promise.succeed()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.promise.fail(error)
        context.fireErrorCaught(error)
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.promise.fail(ChannelError.ioOnClosedChannel)
        context.fireChannelInactive()
    }
}

extension TimeAmount {
    var duration: Duration { .nanoseconds(self.nanoseconds) }
}
