public import Foundation
public import Logging
public import ObjectStorage
import PrometheusExposition
import ServiceLifecycle
import SidecarBreaker
public import SidecarCanary
public import SidecarConfig
import SidecarEvents
public import SidecarServer
public import SidecarTelemetry
import Synchronization

/// The running service as the wiring composes it: the telemetry hook (metrics, board, events), the scheduler,
/// the endpoint's access rules and the one owner of the running backends (``ReloadOwner``). It decides nothing
/// itself; it connects those parts and is what the HTTP endpoint serves.
public final class CanaryService: EndpointModel {
    let telemetry: TelemetryHook
    let scheduler: CanaryScheduler<ContinuousClock>
    let logger: Logger
    let now: @Sendable () -> Date
    /// Credentials the endpoint accepts; replaced on every reload.
    public let access = EndpointAccess()
    let owner: ReloadOwner

    /// Every metric family the service records into.
    public var metrics: CanaryMetrics { self.telemetry.metrics }
    /// What `/status`, `/readyz` and the status page show.
    public var board: StatusBoard { self.telemetry.board }

    /// A service for `configuration` (a reload reads `configurationPath` again); nothing runs until it starts.
    ///
    /// - Parameter now: wall-clock time for cycle timestamps, canary keys and reload times (tests pass their own).
    public init(
        configuration: CanaryConfiguration,
        configurationPath: String?,
        loader: ConfigurationLoader = ConfigurationLoader(),
        factory: BackendFactory = .s3,
        metrics: CanaryMetrics,
        logger: Logger,
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.logger = logger
        self.now = now
        let telemetry = TelemetryHook(
            metrics: metrics,
            board: StatusBoard(),
            logger: logger,
            origin: .init(configuration)
        )
        self.telemetry = telemetry
        self.scheduler = CanaryScheduler(
            clock: ContinuousClock(),
            logger: logger,
            now: now,
            onSweep: { report in
                // A backend a reload removed has no series any more; its last sweep is logged only.
                if telemetry.board.contains(report.backend) { metrics.recordSweep(report) }
            },
            onDurability: { report in telemetry.durabilityChecked(report) },
            observer: { report in telemetry.cycleFinished(report.result, breaker: report.breaker, drift: report.drift) }
        )
        self.owner = ReloadOwner(
            configuration: configuration,
            configurationPath: configurationPath,
            loader: loader,
            factory: factory,
            telemetry: telemetry,
            scheduler: self.scheduler,
            access: self.access,
            logger: logger,
            now: now
        )
    }

    /// The configuration the backends run with now.
    var configuration: CanaryConfiguration { self.owner.configuration }

    /// The endpoint's certificate when it serves TLS.
    var endpointTLS: EndpointTLS? { self.owner.endpointTLS }

    /// Registers a receiver of every event: breaker transitions, corruption, service and reload events.
    func onEvent(_ sink: @escaping @Sendable (WebhookEvent) -> Void) {
        self.telemetry.addSink(sink)
    }

    /// Sends a service-level event (`service.started`, `service.stopping`, `config.reload_failed`).
    func emit(_ type: WebhookEventType, message: String? = nil) {
        self.telemetry.emit(type, message: message)
    }

    /// Builds every backend of the initial configuration and starts probing.
    /// Outages a previous process announced and did not close: their backends start open (call before start).
    func resume(_ outages: [String: ResumedOutage]) {
        self.owner.resume(outages)
    }

    func start() async throws {
        try await self.owner.start()
    }

    /// The queue of reloads, applied one at a time; run it in the service group.
    var reloads: any Service { self.owner }

    // MARK: - EndpointModel

    /// The instance name of the running configuration.
    public var instance: String { self.configuration.instance }
    /// The backends probed now, sorted by name.
    public var targets: [CanaryTarget] { self.scheduler.targets }
    /// Changes on every reload attempt.
    public var reloadGeneration: Int { self.owner.reloadGeneration }

    /// Re-reads the configuration file and applies it, after any reload queued before; answers with this
    /// request's own result. A bad file keeps the running configuration.
    public func reload() async -> Result<Int, ConfigurationError> {
        await self.owner.reload(.http)
    }

    /// A reload asked for by SIGHUP.
    func reloadOnSignal() async {
        _ = await self.owner.reload(.signal)
    }

    /// Runs one cycle of `backend` now (for `/probe`), with a step-by-step log; its result is recorded like a
    /// scheduled cycle's.
    public func probe(backend name: String) async -> (CycleResult, [String])? {
        guard let target = self.scheduler.target(named: name) else { return nil }
        let lines = Mutex<[String]>([])
        let cycle = CanaryCycle(target: target, clock: ContinuousClock(), now: self.now) { line in
            lines.withLock { $0.append(line) }
        }
        let result = await cycle.run()
        self.telemetry.cycleFinished(result, breaker: target.backend.snapshot)
        return (result, lines.withLock { $0 })
    }
}
