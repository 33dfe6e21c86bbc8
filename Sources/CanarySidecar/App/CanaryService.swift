import Foundation
import Logging
import ObjectStorage
import ServiceLifecycle
import Synchronization

/// The running service: owns the backends, their breakers, the scheduler, metrics and the status board, and
/// applies configuration changes (start, reload) as a diff, so unchanged backends keep their breaker state.
public final class CanaryService: Sendable {
    public let metrics: CanaryMetrics
    public let board: StatusBoard
    public let scheduler: CanaryScheduler<ContinuousClock>
    public let logger: Logger
    /// Credentials the endpoint accepts; replaced on every reload.
    public let access = EndpointAccess()
    /// The endpoint's certificate when it serves TLS (fixed at start); its files are read again on every reload.
    public var endpointTLS: EndpointTLS? { self.tlsBox.withLock { $0 } }
    private let tlsBox = Mutex<EndpointTLS?>(nil)
    private let reloads = Atomic<Int>(0)
    /// Bumped by every reload attempt, good or bad: a cached `/metrics` from before a reload is not served after it.
    public var reloadGeneration: Int { self.reloads.load(ordering: .acquiring) }
    let factory: BackendFactory
    /// Where reloads read the configuration from; `nil` when it was built in code (the demo).
    let configurationPath: String?
    let loader: ConfigurationLoader

    struct Active: Sendable {
        var entry: CanaryConfiguration.Backend
        var target: CanaryTarget
        var owned: OwnedBackend
    }

    struct State: Sendable {
        var configuration: CanaryConfiguration
        var active: [String: Active] = [:]
    }

    private let state: Mutex<State>
    private let eventListeners = Mutex<[@Sendable (WebhookEvent) -> Void]>([])

    public init(
        configuration: CanaryConfiguration,
        configurationPath: String?,
        loader: ConfigurationLoader = ConfigurationLoader(),
        factory: BackendFactory = .s3,
        metrics: CanaryMetrics,
        logger: Logger
    ) {
        self.metrics = metrics
        self.board = StatusBoard()
        self.logger = logger
        self.factory = factory
        self.configurationPath = configurationPath
        self.loader = loader
        self.state = Mutex(State(configuration: configuration))
        let board = self.board
        let integrity = Mutex<(@Sendable (CycleResult) -> Void)?>(nil)
        self.scheduler = CanaryScheduler(clock: ContinuousClock(), logger: logger) { report in
            // A removed backend's last cycle may end after its series were dropped: do not bring them back.
            guard board.contains(report.result.backend) else { return }
            metrics.scheduleDrift.observe([], max(report.drift.seconds, 0))
            metrics.record(report.result)
            board.record(report.result)
            if report.result.integrityFailure { integrity.withLock { $0 }?(report.result) }
        }
        integrity.withLock { $0 = { [weak self] result in self?.emitCorruption(result) } }
    }

    public var configuration: CanaryConfiguration { self.state.withLock { $0.configuration } }

    /// Registers a listener for events: breaker transitions, corruption, reload failures (the webhook dispatcher).
    public func onEvent(_ listener: @escaping @Sendable (WebhookEvent) -> Void) {
        self.eventListeners.withLock { $0.append(listener) }
    }

    /// Sends an event to every listener.
    public func emit(_ event: WebhookEvent) {
        for listener in self.eventListeners.withLock({ $0 }) { listener(event) }
    }

    /// Sends a service-level event (`service.started`, `service.stopping`, `config.reload_failed`).
    public func emit(_ type: WebhookEventType, message: String? = nil) {
        let configuration = self.configuration
        self.emit(WebhookEvent(type: type, instance: configuration.instance, message: message, statusURL: configuration.statusURL))
    }

    /// Builds every backend of the initial configuration and starts probing.
    public func start() async throws {
        try await self.apply(self.configuration, initial: true)
        self.metrics.reloadSuccessful.set([], 1)
        self.metrics.reloadTimestamp.set([], Date().timeIntervalSince1970)
    }

    /// Re-reads the configuration file and applies it. A bad file keeps the running configuration.
    public func reload() async -> Result<Int, ConfigurationError> {
        guard let path = self.configurationPath else {
            return .failure(ConfigurationError(field: "config", message: "this instance was not started from a file; nothing to reload"))
        }
        defer { self.reloads.add(1, ordering: .releasing) }
        do {
            let configuration = try self.loader.load(path: path)
            if configuration.webhooks != self.configuration.webhooks {
                self.logger.warning("webhook changes need a restart; the running webhooks stay")
            }
            if configuration.listen != self.configuration.listen {
                self.logger.warning("listen address changes need a restart; keeping \(self.configuration.listen.description)")
            }
            try await self.apply(configuration, initial: false)
            self.metrics.reloadSuccessful.set([], 1)
            self.metrics.reloadTimestamp.set([], Date().timeIntervalSince1970)
            self.logger.notice("configuration reloaded", metadata: ["config.backends": "\(configuration.backends.count)"])
            return .success(configuration.backends.count)
        } catch let error as ConfigurationError {
            self.metrics.reloadSuccessful.set([], 0)
            self.emit(.reloadFailed, message: error.problems.map(\.description).joined(separator: "; "))
            self.logger.error(
                "configuration reload failed; the running configuration stays",
                metadata: ["config.problems": "\(error.problems.map(\.description).joined(separator: "; "))"]
            )
            return .failure(error)
        } catch {
            self.metrics.reloadSuccessful.set([], 0)
            return .failure(ConfigurationError(field: "config", message: "\(error)"))
        }
    }

    private func makeTarget(_ entry: CanaryConfiguration.Backend, instance: String, replacing previous: Active?) throws -> Active {
        let metrics = self.metrics
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
                onTimeToFirstByte: { operation, elapsed in
                    metrics.operationTimeToFirstByte.observe([entry.name, operation.label], elapsed.seconds)
                }
            )
        )
        let board = self.board
        let breakerConfiguration = CircuitBreaker<ContinuousClock.Instant>.Configuration(
            failureThreshold: entry.breaker.failureThreshold,
            openTimeout: entry.breaker.openTimeout,
            probeTimeout: entry.breaker.probeTimeout ?? max(entry.probe.timeout * 2, .seconds(1))
        )
        let breaker = CircuitBreakerBackend(
            name: entry.name,
            wrapping: owned.backend,
            configuration: breakerConfiguration,
            continuing: previous?.target.backend
        ) { [weak self] (event: BreakerTransitionEvent) in
            guard board.contains(event.backend) else { return }
            metrics.record(event)
            board.record(event)
            let transition = event.transition
            logger.notice(
                "circuit breaker \(transition.from.rawValue) -> \(transition.to.rawValue)",
                metadata: [
                    "canary.backend": "\(event.backend)",
                    "breaker.from": "\(transition.from.rawValue)",
                    "breaker.to": "\(transition.to.rawValue)",
                    "breaker.consecutive_failures": "\(transition.consecutiveFailures)",
                    "breaker.threshold": "\(transition.threshold)",
                    "breaker.open_seconds": "\(transition.openDuration.map { String(format: "%.1f", $0.seconds) } ?? "-")",
                    "breaker.last_error": "\(transition.lastFailure.map { "\($0.operation) \($0.reason.rawValue): \($0.message)" } ?? "-")",
                ]
            )
            // One outage is one `opened` event: a failed half-open probe re-opening the breaker is not news to
            // on-call (it stays in metrics and logs).
            guard let self, !(transition.from == .halfOpen && transition.to == .open) else { return }
            let configuration = self.configuration
            self.emit(WebhookEvent(transition: event, instance: configuration.instance, statusURL: configuration.statusURL))
        }
        let target = CanaryTarget(name: entry.name, instance: instance, probe: entry.probe, backend: breaker)
        return Active(entry: entry, target: target, owned: owned)
    }

    private func apply(_ configuration: CanaryConfiguration, initial: Bool) async throws {
        let current = self.state.withLock { $0 }
        // Endpoint settings first, read once: a missing token file or a bad certificate fails the reload before
        // anything changes; they are installed below, once the backends are built.
        let server = configuration.server
        let rules = try EndpointAccess.Rules(server, environment: self.loader.environment)
        var certificate: EndpointTLS.Material?
        if let files = server.tls {
            if initial || self.endpointTLS != nil {
                certificate = try EndpointTLS.Material(files)
            } else {
                self.logger.warning("turning TLS on needs a restart; the endpoint stays plain HTTP")
            }
        } else if !initial, self.endpointTLS != nil {
            self.logger.warning("turning TLS off needs a restart; the endpoint keeps serving TLS")
        }
        let keepUnchanged = !initial && current.configuration.instance == configuration.instance
        var next: [String: Active] = [:]
        var fresh: [Active] = []
        // Build everything first: a backend that cannot be built fails the reload before anything changes.
        do {
            for entry in configuration.backends {
                if keepUnchanged, let existing = current.active[entry.name], existing.entry == entry {
                    next[entry.name] = existing
                } else {
                    let active = try self.makeTarget(
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
        self.access.install(rules)
        if let certificate {
            if let tls = self.endpointTLS { tls.install(certificate) } else { self.tlsBox.withLock { $0 = EndpointTLS(certificate) } }
        }
        self.state.withLock { state in
            state.configuration = configuration
            state.active = next
        }
        for name in removed { self.metrics.removeBackend(name) }
        for active in fresh {
            self.metrics.addBackend(
                active.entry.name,
                operations: active.entry.probe.operations.map(\.label),
                threshold: active.entry.breaker.failureThreshold,
                openTimeout: active.entry.breaker.openTimeout
            )
        }
        self.board.setBackends(configuration.backends.map(\.name))
        // Removed runners stop; replaced ones are stopped by `start`. Each runner releases its own backend's
        // connections when its last cycle has ended.
        self.scheduler.stop(removed)
        let owners = Dictionary(uniqueKeysWithValues: fresh.map { ($0.entry.name, $0.owned) })
        self.scheduler.start(fresh.map(\.target)) { name in
            await owners[name]?.shutdown()
        }
    }

    private func emitCorruption(_ result: CycleResult) {
        let configuration = self.configuration
        let step = result.steps.last { $0.reason == .integrity }
        self.emit(
            WebhookEvent(
                type: .corruptionDetected,
                instance: configuration.instance,
                backend: result.backend,
                lastError: step.map { .init(operation: $0.operation.rawValue, reason: "integrity", message: $0.message ?? "") },
                message: step?.message,
                statusURL: configuration.statusURL
            )
        )
    }

    /// Runs one cycle of `backend` now (for `/probe`), with a step-by-step log.
    public func probeNow(backend name: String) async -> (CycleResult, [String])? {
        guard let target = self.scheduler.target(named: name) else { return nil }
        let lines = Mutex<[String]>([])
        let cycle = CanaryCycle(target: target, clock: ContinuousClock()) { line in
            lines.withLock { $0.append(line) }
        }
        let result = await cycle.run()
        self.metrics.record(result)
        self.board.record(result)
        if result.integrityFailure { self.emitCorruption(result) }
        return (result, lines.withLock { $0 })
    }
}
