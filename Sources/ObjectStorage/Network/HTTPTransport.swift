import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// The connections of one backend: which address a request goes to, whether it gets a new connection, and the phases
/// it went through. One per ``S3Backend``, on one event loop.
final class HTTPTransport: Sendable {
    struct Settings: Sendable {
        /// The endpoint's name (or IP literal): what is resolved, the TLS SNI and the name the certificate must hold.
        var host: String
        var port: Int
        var connection: ConnectionMode
        var ipFamily: IPFamily
        var connectTimeout: Duration
        var requestTimeout: Duration
        /// Idle connections kept per address.
        var maxIdlePerAddress: Int
        var idleTimeout: Duration
        var maxResponseBytes: Int
    }

    /// What a request went through, whether it got an answer or not.
    struct Exchange: Sendable {
        var outcome: Result<TransportResponse, PhaseError>
        var address: String?
        var phases: [PhaseDuration]
        var tls: TLSSessionInfo?
        var newConnection: Bool
        var resolution: NameResolution?
    }

    private struct Idle {
        var connection: HTTPConnection
        var since: NIODeadline
    }

    private struct Pool {
        var idle: [String: [Idle]] = [:]
        /// Counts cycles (``beginCycle()``); an address gets a new connection in every one.
        var generation: UInt64 = 0
        /// The generation in which each address last got a new connection.
        var freshIn: [String: UInt64] = [:]
        /// The address `addresses: first` requests go to while pooled connections to it last.
        var current: String?
        var isShutDown = false
    }

    let settings: Settings
    let eventLoop: any EventLoop
    private let tls: NIOSSLContext?
    private let resolver: any HostResolver
    private let pool = Mutex(Pool())

    init(settings: Settings, tls: NIOSSLContext?, resolver: any HostResolver, eventLoop: any EventLoop) {
        self.settings = settings
        self.tls = tls
        self.resolver = resolver
        self.eventLoop = eventLoop
    }

    /// A new cycle: the next request to each address opens a new connection (`pooled`); `fresh` opens one always.
    func beginCycle() {
        self.pool.withLock { $0.generation &+= 1 }
    }

    /// Resolves the endpoint's name, the family filter applied; an IP literal is its own answer.
    func resolve() async throws -> NameResolution {
        if isIPLiteral(self.settings.host) {
            return NameResolution(addresses: [self.settings.host], ttl: nil, server: "literal")
        }
        return try await self.resolver.resolve(self.settings.host, family: self.settings.ipFamily)
    }

    /// Sends `request` to `address` (or, when `nil`, to the first address the name resolves to), on a pooled
    /// connection when the mode and the cycle allow one.
    func send(_ request: TransportRequest, to address: String? = nil) async -> Exchange {
        var exchange = Exchange(
            outcome: .failure(PhaseError(phase: .dns, underlying: CancellationError(), timedOut: false)),
            address: address, phases: [], tls: nil, newConnection: false, resolution: nil)
        var target = address ?? self.pool.withLock { $0.current }
        var connection = target.flatMap { self.checkout($0) }
        if connection == nil && address == nil {
            let start = ContinuousClock.now
            do {
                let resolution = try await self.resolve()
                if resolution.server != "literal" {
                    exchange.phases.append(PhaseDuration(.dns, start.duration(to: .now)))
                    exchange.resolution = resolution
                }
                target = resolution.addresses.first
                self.pool.withLock { $0.current = target }
                connection = target.flatMap { self.checkout($0) }
            } catch {
                exchange.outcome = .failure(PhaseError(phase: .dns, underlying: error, timedOut: false))
                return exchange
            }
        }
        guard let target else {
            exchange.outcome = .failure(
                PhaseError(
                    phase: .dns,
                    underlying: DNSFailure(code: "NODATA", name: self.settings.host, server: "system"),
                    timedOut: false))
            return exchange
        }
        exchange.address = target
        if connection == nil {
            exchange.newConnection = true
            do {
                let socketAddress = try SocketAddress(ipAddress: target, port: self.settings.port)
                self.pool.withLock { $0.freshIn[target] = $0.generation }
                var phases = exchange.phases
                defer { exchange.phases = phases }
                connection = try await HTTPConnection.open(
                    to: socketAddress, serverName: self.settings.host, tls: self.tls,
                    connectTimeout: self.settings.connectTimeout, eventLoop: self.eventLoop, phases: &phases)
            } catch let error as PhaseError {
                exchange.outcome = .failure(error)
                return exchange
            } catch {
                exchange.outcome = .failure(PhaseError(phase: .connect, underlying: error, timedOut: false))
                return exchange
            }
            exchange.tls = connection?.tls
        }
        guard let connection else { return exchange }
        do {
            let (response, phases) = try await connection.execute(
                request, limit: self.settings.maxResponseBytes, timeout: self.settings.requestTimeout)
            exchange.phases += phases
            exchange.outcome = .success(response)
        } catch let error as PhaseError {
            exchange.outcome = .failure(error)
        } catch {
            exchange.outcome = .failure(PhaseError(phase: .request, underlying: error, timedOut: false))
        }
        self.checkin(connection)
        return exchange
    }

    /// An idle connection to `address` this request may use, or `nil` when it must open one: always with `fresh`,
    /// and for the first request to an address in each cycle with `pooled`.
    private func checkout(_ address: String) -> HTTPConnection? {
        guard self.settings.connection == .pooled else { return nil }
        let now = NIODeadline.now()
        let idleTimeout = self.settings.idleTimeout.timeAmount
        var stale: [HTTPConnection] = []
        defer { stale.forEach { $0.close() } }
        return self.pool.withLock { pool -> HTTPConnection? in
            guard pool.freshIn[address] == pool.generation else { return nil }
            while var list = pool.idle[address], let last = list.popLast() {
                pool.idle[address] = list
                if last.connection.isReusable && now - last.since < idleTimeout { return last.connection }
                stale.append(last.connection)
            }
            return nil
        }
    }

    /// Keeps a connection that can carry another request (`pooled`), closes any other.
    private func checkin(_ connection: HTTPConnection) {
        let keep = self.settings.connection == .pooled && connection.isReusable
        let refused: HTTPConnection? = self.pool.withLock { pool in
            guard keep, !pool.isShutDown else { return connection }
            var list = pool.idle[connection.address] ?? []
            list.append(Idle(connection: connection, since: .now()))
            let excess = list.count > self.settings.maxIdlePerAddress ? list.removeFirst().connection : nil
            pool.idle[connection.address] = list
            return excess
        }
        refused?.close()
    }

    /// Closes every idle connection; requests in flight finish on theirs, which are then closed.
    func shutdown() async {
        let connections = self.pool.withLock { pool in
            pool.isShutDown = true
            defer { pool.idle = [:] }
            return pool.idle.values.flatMap { $0.map(\.connection) }
        }
        for connection in connections {
            connection.close()
            try? await connection.channel.closeFuture.get()
        }
    }
}
