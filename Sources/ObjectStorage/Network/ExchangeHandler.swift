import NIOCore
import NIOHTTP1
import Synchronization

/// Sends one request at a time on its connection and collects the answer, noting when the request was sent, when
/// the head came and when the body ended. Lives on the connection's event loop.
final class ExchangeHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    struct Outcome: Sendable {
        var response: TransportResponse
        var phases: [PhaseDuration]
    }

    /// The request in flight.
    private struct Pending {
        var id: UInt64
        var promise: EventLoopPromise<Outcome>
        var limit: Int
        var started: NIODeadline
        var sent: NIODeadline?
        var headAt: NIODeadline?
        var head: HTTPResponseHead?
        var body = ByteBuffer()
        var timer: Scheduled<Void>?

        /// Where the request is: the phase a failure now would name.
        var phase: RequestPhase {
            if self.sent == nil && self.head == nil { return .request }
            return self.head == nil ? .firstByte : .transfer
        }

        var phases: [PhaseDuration] {
            var phases: [PhaseDuration] = []
            let sent = self.sent ?? self.headAt ?? .now()
            phases.append(PhaseDuration(.request, (sent - self.started).duration))
            if let headAt = self.headAt {
                phases.append(PhaseDuration(.firstByte, (max(headAt, sent) - sent).duration))
            }
            return phases
        }
    }

    private let health: ConnectionHealth
    private var context: ChannelHandlerContext?
    private var pending: Pending?
    private var nextID: UInt64 = 0

    init(health: ConnectionHealth) {
        self.health = health
    }

    func handlerAdded(context: ChannelHandlerContext) { self.context = context }
    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    func start(_ request: TransportRequest, limit: Int, timeout: Duration, promise: EventLoopPromise<Outcome>) {
        guard let context, self.pending == nil, context.channel.isActive else {
            self.health.reusable.store(false, ordering: .relaxed)
            promise.fail(PhaseError(phase: .request, underlying: ChannelError.ioOnClosedChannel, timedOut: false))
            return
        }
        self.nextID += 1
        let id = self.nextID
        var pending = Pending(id: id, promise: promise, limit: limit, started: .now())
        pending.timer = context.eventLoop.assumeIsolated().scheduleTask(in: timeout.timeAmount) {
            self.fail(TransportTimeout(after: timeout), timedOut: true, id: id)
        }
        self.pending = pending
        var headers = request.headers
        if request.chunked {
            headers.replaceOrAdd(name: "transfer-encoding", value: "chunked")
            headers.remove(name: "content-length")
        } else if let body = request.body {
            headers.replaceOrAdd(name: "content-length", value: String(body.readableBytes))
        }
        let head = HTTPRequestHead(version: .http1_1, method: request.method, uri: request.target, headers: headers)
        context.write(self.wrapOutboundOut(.head(head)), promise: nil)
        if let body = request.body, body.readableBytes > 0 {
            context.write(self.wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        }
        let written = context.eventLoop.makePromise(of: Void.self)
        context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: written)
        written.futureResult.assumeIsolated().whenComplete { result in
            switch result {
            case .success:
                if self.pending?.id == id, self.pending?.sent == nil { self.pending?.sent = .now() }
            case .failure(let error):
                self.fail(error, timedOut: false, id: id)
            }
        }
    }

    /// The caller gave up (its task was cancelled): the answer will not be read, so the connection is closed.
    func cancel() {
        guard let pending = self.pending else { return }
        self.fail(CancellationError(), timedOut: false, id: pending.id)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard var pending = self.pending else { return }
        switch self.unwrapInboundIn(data) {
        case .head(let head):
            pending.headAt = .now()
            if pending.sent == nil { pending.sent = pending.headAt }
            pending.head = head
            self.pending = pending
        case .body(var part):
            guard pending.body.readableBytes + part.readableBytes <= pending.limit else {
                self.fail(NIOTooManyBytesError(maxBytes: pending.limit), timedOut: false, id: pending.id)
                return
            }
            pending.body.writeBuffer(&part)
            self.pending = pending
        case .end:
            self.pending = nil
            pending.timer?.cancel()
            guard let head = pending.head, let headAt = pending.headAt else {
                self.health.reusable.store(false, ordering: .relaxed)
                pending.promise.fail(
                    PhaseError(phase: .firstByte, underlying: HTTPParserError.invalidEOFState, timedOut: false))
                context.close(promise: nil)
                return
            }
            var phases = pending.phases
            phases.append(PhaseDuration(.transfer, (NIODeadline.now() - headAt).duration))
            if !head.isKeepAlive {
                self.health.reusable.store(false, ordering: .relaxed)
                context.close(promise: nil)
            }
            pending.promise.succeed(
                Outcome(
                    response: TransportResponse(status: head.status, headers: head.headers, body: pending.body),
                    phases: phases))
        }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        self.health.reusable.store(false, ordering: .relaxed)
        if let pending = self.pending {
            self.fail(error, timedOut: false, id: pending.id)
        } else {
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        self.health.reusable.store(false, ordering: .relaxed)
        if let pending = self.pending {
            self.fail(ChannelError.eof, timedOut: false, id: pending.id)
        }
        context.fireChannelInactive()
    }

    /// Fails the request `id` (if still in flight) in the phase it is in, and closes the connection: whatever the
    /// server sends later cannot be matched to a request any more.
    private func fail(_ error: any Error, timedOut: Bool, id: UInt64) {
        guard let pending = self.pending, pending.id == id else { return }
        self.pending = nil
        pending.timer?.cancel()
        self.health.reusable.store(false, ordering: .relaxed)
        self.context?.close(promise: nil)
        pending.promise.fail(PhaseError(phase: pending.phase, underlying: error, timedOut: timedOut))
    }
}

/// The request's own time limit ran out.
struct TransportTimeout: Error, Sendable {
    var after: Duration
}

/// Reads the cipher suite from the server's ServerHello as it passes (in TLS 1.2 and 1.3 alike it is in the clear),
/// since the TLS library does not say which suite it negotiated. Passes every byte on unchanged and stops looking
/// once it found the suite or the first 16 KiB held none.
final class CipherSniffer: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    /// The suite's name, once seen; read after the handshake.
    final class Result: Sendable {
        private let value = Mutex<String?>(nil)
        var name: String? { self.value.withLock { $0 } }
        func set(_ name: String) { self.value.withLock { $0 = name } }
    }

    private let result: Result
    private var seen: [UInt8] = []
    private var done = false

    init(result: Result) {
        self.result = result
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if !self.done {
            self.seen += self.unwrapInboundIn(data).readableBytesView
            if let suite = Self.serverHelloSuite(self.seen) {
                self.result.set(Self.name(of: suite))
                self.done = true
            } else if self.seen.count > 16384 {
                self.done = true
            }
            if self.done { self.seen = [] }
        }
        context.fireChannelRead(data)
    }

    /// The cipher suite of the ServerHello at the start of `bytes`, once enough of it is there.
    static func serverHelloSuite(_ bytes: [UInt8]) -> UInt16? {
        // Handshake records (type 22) carry the messages; join their payloads.
        var payload: [UInt8] = []
        var offset = 0
        while offset + 5 <= bytes.count, bytes[offset] == 22 {
            let length = Int(bytes[offset + 3]) << 8 | Int(bytes[offset + 4])
            let end = min(bytes.count, offset + 5 + length)
            payload += bytes[(offset + 5)..<end]
            offset += 5 + length
        }
        // ServerHello: type 2, 3-byte length, version (2), random (32), session id (1 + n), cipher suite (2).
        guard payload.count > 38, payload[0] == 2 else { return nil }
        let sessionIDLength = Int(payload[38])
        let suiteAt = 39 + sessionIDLength
        guard payload.count >= suiteAt + 2 else { return nil }
        return UInt16(payload[suiteAt]) << 8 | UInt16(payload[suiteAt + 1])
    }

    /// The IANA name of the suites servers choose today; others as `0x....`.
    static func name(of suite: UInt16) -> String {
        switch suite {
        case 0x1301: "TLS_AES_128_GCM_SHA256"
        case 0x1302: "TLS_AES_256_GCM_SHA384"
        case 0x1303: "TLS_CHACHA20_POLY1305_SHA256"
        case 0xC02B: "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"
        case 0xC02C: "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384"
        case 0xC02F: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"
        case 0xC030: "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"
        case 0xCCA8: "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256"
        case 0xCCA9: "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"
        case 0xC013: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"
        case 0xC014: "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA"
        case 0x009C: "TLS_RSA_WITH_AES_128_GCM_SHA256"
        case 0x009D: "TLS_RSA_WITH_AES_256_GCM_SHA384"
        default: "0x" + String(suite, radix: 16, uppercase: true).leftPadded(to: 4)
        }
    }
}

extension String {
    fileprivate func leftPadded(to width: Int) -> String {
        String(repeating: "0", count: max(0, width - self.count)) + self
    }
}
