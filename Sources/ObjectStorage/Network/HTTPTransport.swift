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
        /// A connection the cycle opened after a request on an older one: how it was opened, reported by the first
        /// request that uses it.
        var opened: Opened?
    }

    /// How a connection was opened: its `dns`, `connect` and `tls` phases and TLS session.
    private struct Opened {
        var phases: [PhaseDuration]
        var tls: TLSSessionInfo?
    }

    /// What a request goes on.
    private enum Plan {
        /// An idle connection (with how it was opened, when no request has used it yet).
        case reuse(HTTPConnection, Opened?)
        /// A new connection, opened for this request.
        case open
        /// The cycle's first request to the address: it goes on an idle connection, and when its answer is in, the
        /// cycle's new connection starts opening for the next request (the pool then holds connections as old as
        /// `idle_timeout` and one new per cycle, and no request waits for, or shares its time with, a handshake it
        /// did not need).
        case reuseThenOpen(HTTPConnection)
        /// The cycle's new connection, still opening: the request waits for it and takes it, or its failure.
        case take(EventLoopFuture<HTTPConnection.Opening>)
        /// The cycle's new connection to the address failed: the next request fails with that, not trying again.
        case fail(PhaseError, [PhaseDuration])
    }

    private struct Pool {
        var idle: [String: [Idle]] = [:]
        /// Counts cycles (``beginCycle()``); an address gets a new connection in every one.
        var generation: UInt64 = 0
        /// The generation in which each address last got a new connection.
        var freshIn: [String: UInt64] = [:]
        /// The address `addresses: first` requests go to while pooled connections to it last.
        var current: String?
        /// A cycle's new connection that failed, by address: the next request there fails with it (that cycle only).
        var failed: [String: (error: PhaseError, phases: [PhaseDuration], generation: UInt64)] = [:]
        /// A cycle's new connection still opening, by address, until a request takes it or it settles into `idle`
        /// (or `failed`): exactly one of the two happens, under this lock.
        var opening: [String: EventLoopFuture<HTTPConnection.Opening>] = [:]
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

    /// A new cycle: each address gets one new connection in it (`pooled`; see ``Plan``); `fresh` opens one always.
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
        var plan = target.map { self.plan(for: $0) }
        let mustOpen: Bool
        if case .open = plan { mustOpen = true } else { mustOpen = plan == nil }
        if address == nil && mustOpen {
            // No connection to the current address: (re)resolve the name, as `addresses: first` does each time.
            let start = ContinuousClock.now
            do {
                let resolution = try await self.resolve()
                if resolution.server != "literal" {
                    exchange.phases.append(PhaseDuration(.dns, start.duration(to: .now)))
                    exchange.resolution = resolution
                }
                if resolution.addresses.first != target {
                    target = resolution.addresses.first
                    self.pool.withLock { $0.current = target }
                    plan = target.map { self.plan(for: $0) }
                }
            } catch {
                exchange.outcome = .failure(PhaseError(phase: .dns, underlying: error, timedOut: false))
                return exchange
            }
        }
        guard let target, let plan else {
            exchange.outcome = .failure(
                PhaseError(
                    phase: .dns,
                    underlying: DNSFailure(code: "NODATA", name: self.settings.host, server: "system"),
                    timedOut: false))
            return exchange
        }
        exchange.address = target
        let connection: HTTPConnection
        switch plan {
        case .fail(let error, let phases):
            exchange.newConnection = true
            exchange.phases += phases
            exchange.outcome = .failure(error)
            return exchange
        case .reuse(let idle, let opened):
            connection = idle
            if let opened {
                exchange.newConnection = true
                exchange.phases += opened.phases
                exchange.tls = opened.tls
            }
        case .open, .take:
            let pending: EventLoopFuture<HTTPConnection.Opening>
            if case .take(let opening) = plan { pending = opening } else { pending = self.open(target) }
            exchange.newConnection = true
            let opening = await self.wait(for: pending)
            exchange.phases += opening.phases
            switch opening.result {
            case .success(let opened):
                exchange.tls = opened.tls
                connection = opened
            case .failure(let error):
                exchange.outcome = .failure(error)
                return exchange
            }
        case .reuseThenOpen(let idle):
            await self.execute(request, on: idle, into: &exchange)
            self.openForNextRequest(target)
            return exchange
        }
        await self.execute(request, on: connection, into: &exchange)
        return exchange
    }

    /// Starts opening a new connection to `target`, marked in this cycle's generation.
    private func open(_ target: String) -> EventLoopFuture<HTTPConnection.Opening> {
        let socketAddress: SocketAddress
        do {
            socketAddress = try SocketAddress(ipAddress: target, port: self.settings.port)
        } catch {
            let failure = PhaseError(phase: .connect, underlying: error, timedOut: false)
            return self.eventLoop.makeSucceededFuture(HTTPConnection.Opening(result: .failure(failure), phases: []))
        }
        self.pool.withLock { $0.freshIn[target] = $0.generation }
        return HTTPConnection.open(
            to: socketAddress, serverName: self.settings.host, tls: self.tls,
            connectTimeout: self.settings.connectTimeout, eventLoop: self.eventLoop)
    }

    /// How an opening ended. Its future never fails; should it, that is a failed connect.
    private func wait(for opening: EventLoopFuture<HTTPConnection.Opening>) async -> HTTPConnection.Opening {
        do {
            return try await opening.get()
        } catch {
            return HTTPConnection.Opening(
                result: .failure(PhaseError(phase: .connect, underlying: error, timedOut: false)), phases: [])
        }
    }

    /// The cycle's new connection to `target`, opened for the next request there: that request takes it while it
    /// opens (``Plan/take(_:)``); if none comes first, it settles into the pool as an idle connection that reports
    /// how it was opened, or as the failure the next request in this cycle fails with.
    private func openForNextRequest(_ target: String) {
        let opening = self.open(target)
        let generation = self.pool.withLock { pool -> UInt64? in
            // One opening per address (two cycles may overlap: a `/probe` beside the scheduled one), none after
            // shutdown: a second is closed once open.
            guard pool.opening[target] == nil, !pool.isShutDown else { return nil }
            pool.opening[target] = opening
            return pool.generation
        }
        guard let generation else {
            opening.whenSuccess { outcome in
                if case .success(let connection) = outcome.result { connection.close() }
            }
            return
        }
        opening.whenSuccess { outcome in
            let settled = self.pool.withLock { pool -> Bool in
                guard let pending = pool.opening[target], pending === opening else { return false }
                pool.opening[target] = nil
                if case .failure(let error) = outcome.result {
                    pool.failed[target] = (error, outcome.phases, generation)
                }
                return true
            }
            guard settled, case .success(let connection) = outcome.result else { return }
            self.checkin(connection, opened: Opened(phases: outcome.phases, tls: connection.tls))
        }
    }

    /// Sends `request` on `connection`, adds its phases and outcome to `exchange`, and returns the connection to the
    /// pool (or closes it).
    private func execute(
        _ request: TransportRequest, on connection: HTTPConnection, into exchange: inout Exchange
    ) async {
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
    }

    /// What a request to `address` goes on: always a new connection with `fresh`; with `pooled`, an idle one, and in
    /// each cycle one new connection per address (opened once the cycle's first request there has its answer, for the
    /// next request; or for the first request itself when there is no idle one).
    private func plan(for address: String) -> Plan {
        guard self.settings.connection == .pooled else { return .open }
        let now = NIODeadline.now()
        let idleTimeout = self.settings.idleTimeout.timeAmount
        var stale: [HTTPConnection] = []
        defer { stale.forEach { $0.close() } }
        return self.pool.withLock { pool -> Plan in
            if let failed = pool.failed.removeValue(forKey: address), failed.generation == pool.generation {
                return .fail(failed.error, failed.phases)
            }
            if let opening = pool.opening.removeValue(forKey: address) { return .take(opening) }
            var found: Idle?
            while var list = pool.idle[address], let last = list.popLast() {
                pool.idle[address] = list
                if last.connection.isReusable && now - last.since < idleTimeout {
                    found = last
                    break
                }
                stale.append(last.connection)
            }
            guard let found else { return .open }
            if pool.freshIn[address] == pool.generation { return .reuse(found.connection, found.opened) }
            // The cycle's new connection to this address: marked now, so a concurrent request does not open another.
            pool.freshIn[address] = pool.generation
            return .reuseThenOpen(found.connection)
        }
    }

    /// Keeps a connection that can carry another request (`pooled`), closes any other. The last one kept is the next
    /// one taken.
    private func checkin(_ connection: HTTPConnection, opened: Opened? = nil) {
        let keep = self.settings.connection == .pooled && connection.isReusable
        let refused: HTTPConnection? = self.pool.withLock { pool in
            guard keep, !pool.isShutDown else { return connection }
            var list = pool.idle[connection.address] ?? []
            list.append(Idle(connection: connection, since: .now(), opened: opened))
            let excess = list.count > self.settings.maxIdlePerAddress ? list.removeFirst().connection : nil
            pool.idle[connection.address] = list
            return excess
        }
        refused?.close()
    }

    /// Closes every idle connection, once any connection still opening has settled; requests in flight finish on
    /// theirs, which are then closed.
    func shutdown() async {
        let opening = self.pool.withLock { pool in
            pool.isShutDown = true
            return Array(pool.opening.values)
        }
        for pending in opening {
            _ = await self.wait(for: pending)
        }
        let connections = self.pool.withLock { pool in
            defer { pool.idle = [:] }
            return pool.idle.values.flatMap { $0.map(\.connection) }
        }
        for connection in connections {
            connection.close()
            try? await connection.channel.closeFuture.get()
        }
    }
}
