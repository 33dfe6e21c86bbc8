import Foundation
import Logging
import ObjectStorage
import PrometheusExposition
import ServiceLifecycle
import SidecarBreaker
import SidecarCanary
import SidecarConfig
import SidecarServer
import SidecarTelemetry
import Synchronization

/// The one owner of the running backends. Start-up builds the first set; after that SIGHUP and `POST /-/reload`
/// are requests on one queue, applied strictly one at a time by ``run()``, each answered with its own result.
/// Nothing else changes which backends run, so two reloads can never compute their changes against the same old
/// state (the race a lock around each half of a reload left open).
final class ReloadOwner: Service {
    /// Who asked for a reload (logged with its result).
    enum Origin: Sendable, CustomStringConvertible {
        case signal
        case http

        var description: String {
            switch self {
            case .signal: "SIGHUP"
            case .http: "POST \(Route.reload.path)"
            }
        }
    }

    /// What runs now; written only by ``apply(_:initial:)``, which only the queue and ``start()`` call.
    struct Active: Sendable {
        var entry: CanaryConfiguration.Backend
        var target: CanaryTarget
        var owned: OwnedBackend
    }

    private struct State: Sendable {
        var configuration: CanaryConfiguration
        var active: [String: Active] = [:]
        var started = false
    }

    private struct Request: Sendable {
        var origin: Origin
        var reply: CheckedContinuation<Result<Int, ConfigurationError>, Never>
    }

    private let state: Mutex<State>
    private let requests: AsyncStream<Request>
    private let requestSink: AsyncStream<Request>.Continuation
    private let stopping = Atomic<Bool>(false)
    private let generation = Atomic<Int>(0)
    private let tlsBox = Mutex<EndpointTLS?>(nil)
    /// Outages a previous process announced and did not close (state_dir), taken by the first target of each backend.
    private let remembered = Mutex<[String: ResumedOutage]>([:])

    let telemetry: TelemetryHook
    let scheduler: CanaryScheduler<ContinuousClock>
    let access: EndpointAccess
    let factory: BackendFactory
    let loader: ConfigurationLoader
    /// Where reloads read the configuration from; `nil` when it was built in code (the demo).
    let configurationPath: String?
    let logger: Logger
    let now: @Sendable () -> Date

    init(
        configuration: CanaryConfiguration,
        configurationPath: String?,
        loader: ConfigurationLoader,
        factory: BackendFactory,
        telemetry: TelemetryHook,
        scheduler: CanaryScheduler<ContinuousClock>,
        access: EndpointAccess,
        logger: Logger,
        now: @escaping @Sendable () -> Date
    ) {
        self.state = Mutex(State(configuration: configuration))
        (self.requests, self.requestSink) = AsyncStream.makeStream(of: Request.self)
        self.configurationPath = configurationPath
        self.loader = loader
        self.factory = factory
        self.telemetry = telemetry
        self.scheduler = scheduler
        self.access = access
        self.logger = logger
        self.now = now
    }

    var configuration: CanaryConfiguration { self.state.withLock { $0.configuration } }

    /// Bumped by every reload attempt, good or bad: a cached `/metrics` from before a reload is not served after it.
    var reloadGeneration: Int { self.generation.load(ordering: .acquiring) }

    /// The endpoint's certificate when it serves TLS (read at start, read again on every reload).
    var endpointTLS: EndpointTLS? { self.tlsBox.withLock { $0 } }

    /// Builds every backend of the initial configuration and starts probing. Called once, before ``run()`` takes
    /// requests from the queue, so it too is one application at a time.
    func start() async throws {
        let configuration = self.configuration
        let alreadyStarted = self.state.withLock { state in
            defer { state.started = true }
            return state.started
        }
        guard !alreadyStarted else { return }
        try await self.apply(configuration, initial: true)
    }

    /// Queues a reload and waits for its own result. Answers at once with a failure while shutting down.
    func reload(_ origin: Origin) async -> Result<Int, ConfigurationError> {
        await withCheckedContinuation { (continuation: CheckedContinuation<Result<Int, ConfigurationError>, Never>) in
            if case .terminated = self.requestSink.yield(Request(origin: origin, reply: continuation)) {
                continuation.resume(returning: .failure(Self.shuttingDown))
            }
        }
    }

    static let shuttingDown = ConfigurationError(field: "config", message: "the service is shutting down; not reloaded")

    /// Applies queued reloads one at a time until graceful shutdown; requests still queued then are answered with
    /// a failure, never left waiting.
    func run() async {
        await withGracefulShutdownHandler {
            for await request in self.requests {
                if self.stopping.load(ordering: .acquiring) {
                    request.reply.resume(returning: .failure(Self.shuttingDown))
                } else {
                    request.reply.resume(returning: await self.reloadNow(request.origin))
                }
            }
        } onGracefulShutdown: {
            self.stopping.store(true, ordering: .releasing)
            self.requestSink.finish()
        }
    }

    /// Re-reads the configuration file and applies it. A failed reload, of whatever kind, keeps the running
    /// configuration, and is logged, counted and sent as `config.reload_failed`.
    private func reloadNow(_ origin: Origin) async -> Result<Int, ConfigurationError> {
        defer { self.generation.add(1, ordering: .releasing) }
        let metrics = self.telemetry.metrics
        let result: Result<Int, ConfigurationError>
        do {
            guard let path = self.configurationPath else {
                throw ConfigurationError(
                    field: "config", message: "this instance was not started from a file; nothing to reload")
            }
            let configuration = try self.loader.load(path: path)
            let running = self.configuration
            if configuration.webhooks != running.webhooks {
                self.logger.warning("webhook changes need a restart; the running webhooks stay")
            }
            if configuration.stateDirectory != running.stateDirectory {
                self.logger.warning("state_dir changes need a restart; the running outbox stays")
            }
            if configuration.alertmanagers != running.alertmanagers {
                self.logger.warning("alertmanagers changes need a restart; the running ones stay")
            }
            if configuration.metrics != metrics.configuration {
                // A histogram cannot change its buckets under a running Prometheus: the shape stays until restart.
                self.logger.warning("metrics changes need a restart; the histograms keep their running shape")
            }
            if configuration.listen != running.listen {
                self.logger.warning("listen address changes need a restart; keeping \(running.listen.description)")
            }
            try await self.apply(configuration, initial: false)
            result = .success(configuration.ownedBackends.count)
        } catch let error as ConfigurationError {
            result = .failure(error)
        } catch {
            // Anything else (a backend that could not be built for another reason) fails the reload the same way.
            result = .failure(ConfigurationError(field: "config", message: "\(error)"))
        }
        switch result {
        case .success(let count):
            metrics.reloads.add([ReloadResult.success.rawValue])
            self.logger.notice(
                "configuration reloaded",
                metadata: ["config.backends": "\(count)", "config.reload_origin": "\(origin)"]
            )
        case .failure(let error):
            let problems = error.problems.map(\.description).joined(separator: "; ")
            metrics.reloadSuccessful.set([], 0)
            metrics.reloads.add([ReloadResult.failure.rawValue])
            self.logger.error(
                "configuration reload failed; the running configuration stays",
                metadata: ["config.problems": "\(problems)", "config.reload_origin": "\(origin)"]
            )
            self.telemetry.emit(.reloadFailed, message: problems)
        }
        return result
    }

    /// Sets the outages to continue (before the first ``apply``): each backend's first target starts open.
    func resume(_ outages: [String: ResumedOutage]) {
        self.remembered.withLock { $0 = outages }
    }

    private func makeTarget(
        _ entry: CanaryConfiguration.Backend, instance: String, replacing previous: Active?
    ) async throws -> Active {
        let metrics = self.telemetry.metrics
        let logger = self.logger
        let owned = try self.factory.make(
            entry,
            BackendContext(
                logger: self.logger,
                onCredentialsRefreshFailure: { error in
                    metrics.credentialsRefreshFailures.add([entry.name])
                    logger.warning(
                        "refreshing credentials failed; the current ones stay in use until they expire",
                        metadata: ["canary.backend": "\(entry.name)", "credentials.error": "\(error)"]
                    )
                },
                onTimeToFirstByte: { [now] operation, elapsed, requestID in
                    guard let family = metrics.operationTimeToFirstByte else { return }
                    let seconds = elapsed.seconds
                    let exemplar = requestID.flatMap {
                        Exemplar(requestID: $0, value: seconds, timestamp: now().timeIntervalSince1970)
                    }
                    family.observe([entry.name, operation.label], seconds, exemplar: exemplar)
                },
                onRequestTrace: { [now, telemetry = self.telemetry] trace in
                    telemetry.requestFinished(trace, backend: entry.name, at: now())
                }
            )
        )
        let telemetry = self.telemetry
        var target = CanaryTarget(
            entry,
            instance: instance,
            wrapping: owned.backend,
            continuing: previous?.target.backend,
            features: previous?.target.features ?? FeatureHistory(),
            pace: previous?.target.pace ?? OperationPace(),
            resuming: previous == nil ? self.remembered.withLock { $0.removeValue(forKey: entry.name) } : nil,
            onTransition: { telemetry.breakerTransition($0) }
        )
        guard let durability = entry.durability else { return Active(entry: entry, target: target, owned: owned) }
        // The corpus gets a client of its own: its reads never take the canary's connections (nor the cycle's new
        // one), and its requests are neither canary operations nor counted in the request phases.
        let corpus: OwnedBackend
        do {
            corpus = try self.factory.make(entry, BackendContext(logger: self.logger))
        } catch {
            await owned.shutdown()
            throw error
        }
        target.durability = DurabilityTarget(
            name: entry.name, instance: instance, settings: durability, backend: corpus.backend)
        let both = OwnedBackend(backend: owned.backend) {
            await owned.shutdown()
            await corpus.shutdown()
        }
        return Active(entry: entry, target: target, owned: both)
    }

    /// Applies `configuration` as a diff: unchanged backends keep running with their breakers, changed ones are
    /// rebuilt continuing their breaker's state, removed ones stop and lose their series. Everything that can fail
    /// (endpoint files, backends) is built before anything changes.
    private func apply(_ configuration: CanaryConfiguration, initial: Bool) async throws {
        let current = self.state.withLock { $0 }
        // Endpoint settings first, read once: a missing token file or a bad certificate fails the reload before
        // anything changes; they are installed below, once the backends are built.
        let server = configuration.server
        let rules = try EndpointAccess.Rules(server, environment: self.loader.environment)
        var certificate: TLSMaterial?
        if let files = server.tls {
            if initial || self.endpointTLS != nil {
                certificate = try TLSMaterial(files)
            } else {
                self.logger.warning("turning TLS on needs a restart; the endpoint stays plain HTTP")
            }
        } else if !initial, self.endpointTLS != nil {
            self.logger.warning("turning TLS off needs a restart; the endpoint keeps serving TLS")
        }
        let keepUnchanged = !initial && current.configuration.instance == configuration.instance
        var next: [String: Active] = [:]
        var fresh: [Active] = []
        do {
            for entry in configuration.ownedBackends {
                if keepUnchanged, let existing = current.active[entry.name], existing.entry == entry {
                    next[entry.name] = existing
                } else {
                    let active = try await self.makeTarget(
                        entry, instance: configuration.instance, replacing: initial ? nil : current.active[entry.name]
                    )
                    fresh.append(active)
                    next[entry.name] = active
                }
            }
        } catch {
            for active in fresh { await active.owned.shutdown() }
            throw error
        }
        let removed = current.active.keys.filter { next[$0] == nil }
        for name in removed {
            // An outage announced for a backend that no longer exists here would never get its `closed`.
            if let active = current.active[name], let open = active.target.backend.outageDuration {
                self.telemetry.outageEnded(
                    backend: name, after: open,
                    message: "backend removed from the configuration while its breaker was open")
            }
        }
        self.access.install(rules)
        if let certificate {
            self.tlsBox.withLock { box in
                if let tls = box { tls.install(certificate) } else { box = EndpointTLS(certificate) }
            }
        }
        self.state.withLock { state in
            state.configuration = configuration
            state.active = next
        }
        self.telemetry.setOrigin(.init(configuration))
        let metrics = self.telemetry.metrics
        for name in removed { metrics.removeBackend(name) }
        for active in fresh {
            metrics.addBackend(
                active.entry.name,
                operations: active.entry.probe.operations.map(\.label),
                paced: active.entry.probe.every.keys.map(\.label),
                threshold: active.entry.breaker.failureThreshold,
                refreshingCredentials: active.entry.credentials.refreshes,
                slo: active.entry.slo,
                durability: active.entry.durability
            )
            // A rebuilt backend continues its predecessor's breaker: the gauges say where it is, not "closed".
            metrics.record(active.target.backend.snapshot, backend: active.entry.name)
        }
        self.telemetry.board.setBackends(configuration.ownedBackends.map(\.name))
        for entry in configuration.ownedBackends { self.telemetry.board.setObjectives(entry.slo, backend: entry.name) }
        metrics.setShard(configuration.sharding.map { ($0.shard, $0.shards) } ?? (0, 1))
        // Removed runners stop; replaced ones are stopped by `start`. Each runner releases its own backend's
        // connections when its last cycle has ended.
        self.scheduler.stop(removed)
        let owners = Dictionary(uniqueKeysWithValues: fresh.map { ($0.entry.name, $0.owned) })
        self.scheduler.start(fresh.map(\.target)) { name in
            await owners[name]?.shutdown()
        }
        metrics.reloadSuccessful.set([], 1)
        metrics.reloadTimestamp.set([], self.now().timeIntervalSince1970)
    }
}
