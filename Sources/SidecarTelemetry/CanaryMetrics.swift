import Foundation
import ObjectStorage
public import PrometheusExposition
public import SidecarBreaker
public import SidecarCanary
public import SidecarConfig
import Synchronization

/// Every metric the exporter publishes, defined in this one file (docs/design.md, "Metrics"): the canary's own, the
/// standard `process_*` ones and the gauges `/probe` answers with.
///
/// `backend` and `webhook` labels carry configured names, never URLs. Series for every backend × operation
/// exist from the moment a backend is added, so rates and alerts work before the first failure.
public final class CanaryMetrics: Sendable {
    let registry: MetricsRegistry

    /// The histogram shapes and what is exported (`metrics:`).
    public let configuration: MetricsConfiguration

    let probeSuccess: MetricFamily
    let probes: MetricFamily
    let lastSuccess: MetricFamily
    let operationLastRun: MetricFamily
    let durabilityObjects: MetricFamily
    let durabilityLastFullPass: MetricFamily
    let durabilityFullEvery: MetricFamily
    let durabilityChecks: MetricFamily
    let operationDuration: MetricFamily
    /// `s3canary_operation_ttfb_seconds`: time to the first response byte, per backend and operation; `nil`
    /// unless `metrics.time_to_first_byte` is on.
    public let operationTimeToFirstByte: MetricFamily?
    /// `s3canary_request_phase_seconds`, per backend and phase; `nil` unless `metrics.request_phases` is on.
    let requestPhase: MetricFamily?
    let addressUp: MetricFamily
    let addressLastSuccess: MetricFamily
    let tlsInfo: MetricFamily
    let operations: MetricFamily
    let operationErrors: MetricFamily
    let integrityFailures: MetricFamily
    let featureSupported: MetricFamily
    let scheduleDrift: MetricFamily
    let breakerState: MetricFamily
    let breakerTransitions: MetricFamily
    let breakerConsecutiveFailures: MetricFamily
    let breakerThreshold: MetricFamily
    /// `s3canary_credentials_refresh_failures_total`, per backend.
    public let credentialsRefreshFailures: MetricFamily
    package let tlsCertificateExpiry: MetricFamily
    /// `s3canary_webhook_deliveries_total`, per webhook, event and ``DeliveryResult``.
    public let webhookDeliveries: MetricFamily
    /// `s3canary_webhook_dropped_total`, per webhook and ``DropReason``.
    public let webhookDropped: MetricFamily
    /// `s3canary_outbox_events`: events in the durable outbox (state_dir), every webhook together.
    public let outboxEvents: MetricFamily
    /// `s3canary_outbox_oldest_event_timestamp_seconds`: when the oldest of them was accepted (0: none waits).
    public let outboxOldest: MetricFamily
    /// `s3canary_outbox_write_errors_total`: events the outbox could not store (delivered from memory only).
    public let outboxWriteErrors: MetricFamily
    /// `s3canary_state_problems_total`: state stores found unusable at start, by kind.
    public let stateProblems: MetricFamily
    /// `s3canary_webhook_queue_depth`: events waiting, per webhook.
    public let webhookQueueDepth: MetricFamily
    /// `s3canary_webhook_request_duration_seconds`, per webhook.
    public let webhookRequestDuration: MetricFamily
    let buildInfo: MetricFamily
    /// `s3canary_config_last_reload_successful`: whether the last load of the configuration succeeded.
    public let reloadSuccessful: MetricFamily
    /// `s3canary_config_last_reload_success_timestamp_seconds`.
    public let reloadTimestamp: MetricFamily
    /// `s3canary_config_reloads_total`, per ``ReloadResult``.
    public let reloads: MetricFamily
    /// `s3canary_sweep_errors_total`: leftover canaries the sweeper could not list or delete, per backend.
    public let sweepErrors: MetricFamily
    /// `s3canary_sweep_removed_total`: leftovers the sweeper removed, by kind (`canary`, `upload`).
    public let sweepRemoved: MetricFamily
    let shardInfo: MetricFamily
    let sloAvailabilityObjective: MetricFamily
    let sloLatencyObjective: MetricFamily
    let sloLatencyThreshold: MetricFamily
    let sloLatencyMisses: MetricFamily
    /// Latency thresholds in seconds by backend and operation, for counting misses as results come in.
    private let sloThresholds = Mutex<[String: [String: Double]]>([:])
    let processResidentMemory: MetricFamily
    let processCPUSeconds: MetricFamily
    let processOpenFDs: MetricFamily
    let processMaxFDs: MetricFamily
    let processStartTime: MetricFamily

    /// Defines every family and publishes the build's `version`, `revision` (its git commit, or "unknown") and
    /// `swiftVersion` (the toolchain's, or the language mode's when the binary was not stamped) in the build info;
    /// throws only if two definitions clash.
    public init(
        version: String, revision: String = "unknown", swiftVersion: String = CanaryMetrics.swiftVersion,
        configuration: MetricsConfiguration = MetricsConfiguration()
    ) throws {
        let registry = MetricsRegistry()
        self.registry = registry
        self.configuration = configuration
        let backend = ["backend"]
        let latency = HistogramShape(
            classic: configuration.classicBuckets,
            exposeClassic: configuration.classicHistograms,
            native: configuration.nativeHistograms
                ? HistogramShape.Native(
                    schema: configuration.nativeSchema, maxBuckets: configuration.nativeMaxBuckets)
                : nil,
            exemplars: true
        )
        self.probeSuccess = try registry.family(
            "s3canary_probe_success", help: "Whether the last canary cycle of the backend succeeded (1) or not (0).",
            kind: .gauge, labels: backend)
        self.probes = try registry.family(
            "s3canary_probes_total",
            help: "Canary cycles by result (success, failure, skipped while the breaker was open).",
            kind: .counter, labels: ["backend", "result"])
        self.lastSuccess = try registry.family(
            "s3canary_last_success_timestamp_seconds", help: "Unix time of the backend's last successful cycle.",
            kind: .gauge, labels: backend)
        self.durabilityObjects = try registry.family(
            "s3canary_durability_objects",
            help: "Objects of the backend's durability corpus by state (ok, missing, corrupted); never rewritten.",
            kind: .gauge, labels: ["backend", "state"])
        self.durabilityLastFullPass = try registry.family(
            "s3canary_durability_last_full_pass_timestamp_seconds",
            help: "Unix time the last full pass over the durability corpus ended (its creation counts as one).",
            kind: .gauge, labels: backend)
        self.durabilityFullEvery = try registry.family(
            "s3canary_durability_full_pass_interval_seconds",
            help: "How often the whole durability corpus is read back (durability.full_every).",
            kind: .gauge, labels: backend)
        self.durabilityChecks = try registry.family(
            "s3canary_durability_checks_total",
            help: "Durability corpus objects read back, by result (ok, missing, corrupted, error: no verdict).",
            kind: .counter, labels: ["backend", "result"])
        self.operationLastRun = try registry.family(
            "s3canary_operation_last_run_timestamp_seconds",
            help: "Unix time a paced operation (probe.every) last ran, whatever it found, its cycle's end.",
            kind: .gauge, labels: ["backend", "operation"])
        self.operationDuration = try registry.family(
            "s3canary_operation_duration_seconds",
            help:
                "Duration of each canary operation that reached the backend; exemplars carry the S3 request id.",
            kind: .histogram, labels: ["backend", "operation"], histogram: latency)
        self.operationTimeToFirstByte =
            configuration.timeToFirstByte
            ? try registry.family(
                "s3canary_operation_ttfb_seconds",
                help: "Time from sending each S3 request of a canary operation to receiving its response head.",
                kind: .histogram, labels: ["backend", "operation"], histogram: latency)
            : nil
        self.requestPhase =
            configuration.requestPhases
            ? try registry.family(
                "s3canary_request_phase_seconds",
                help:
                    "Time of each phase of the canary's HTTP requests (dns, connect, tls, request, first_byte, "
                    + "transfer); a phase that did not happen (a pooled connection, plain HTTP) is not observed.",
                kind: .histogram, labels: ["backend", "phase"], histogram: latency)
            : nil
        self.addressUp = try registry.family(
            "s3canary_address_up",
            help: "With addresses: all, whether the last cycle against this address of the backend's name succeeded.",
            kind: .gauge, labels: ["backend", "address", "family"])
        self.addressLastSuccess = try registry.family(
            "s3canary_address_last_success_timestamp_seconds",
            help: "With addresses: all, Unix time of the last successful cycle against this address.",
            kind: .gauge, labels: ["backend", "address", "family"])
        self.tlsInfo = try registry.family(
            "s3canary_tls_info",
            help: "The TLS session the canary's last new connection to this address negotiated; always 1.",
            kind: .gauge, labels: ["backend", "address", "version", "cipher"])
        self.operations = try registry.family(
            "s3canary_operations_total", help: "Canary operations by result (success, error, rejected by the breaker).",
            kind: .counter, labels: ["backend", "operation", "result"])
        self.operationErrors = try registry.family(
            "s3canary_operation_errors_total", help: "Failed canary operations by reason.",
            kind: .counter, labels: ["backend", "operation", "reason"])
        self.integrityFailures = try registry.family(
            "s3canary_integrity_failures_total", help: "Reads that returned other bytes or sizes than were written.",
            kind: .counter, labels: backend)
        self.featureSupported = try registry.family(
            "s3canary_feature_supported",
            help:
                "Whether the feature's last verdict is ok (1) or unsupported, failing or corrupting (0); "
                + "features are the opt-in operations multipart, checksum, aws_chunked, conditional, presign.",
            kind: .gauge, labels: ["backend", "feature"])
        self.breakerState = try registry.family(
            "s3canary_circuit_breaker_state", help: "Circuit breaker state: 0 closed, 1 open, 2 half-open.",
            kind: .gauge, labels: backend)
        self.breakerTransitions = try registry.family(
            "s3canary_circuit_breaker_transitions_total", help: "Circuit breaker transitions by from and to state.",
            kind: .counter, labels: ["backend", "from", "to"])
        self.breakerConsecutiveFailures = try registry.family(
            "s3canary_circuit_breaker_consecutive_failures", help: "Consecutive failures the breaker has counted.",
            kind: .gauge, labels: backend)
        self.breakerThreshold = try registry.family(
            "s3canary_circuit_breaker_failure_threshold", help: "Consecutive failures that open the breaker (config).",
            kind: .gauge, labels: backend)
        self.credentialsRefreshFailures = try registry.family(
            "s3canary_credentials_refresh_failures_total",
            help: "Failed refreshes of temporary credentials (the previous ones stay in use until they expire).",
            kind: .counter, labels: backend)
        self.tlsCertificateExpiry = try registry.family(
            "s3canary_tls_certificate_expiry_timestamp_seconds",
            help: "Unix time when the earliest certificate of the backend's served chain expires (https backends).",
            kind: .gauge, labels: backend)
        self.webhookDeliveries = try registry.family(
            "s3canary_webhook_deliveries_total",
            help: "Webhook delivery attempts by event and result (success, failure).",
            kind: .counter, labels: ["webhook", "event", "result"])
        self.webhookDropped = try registry.family(
            "s3canary_webhook_dropped_total",
            help:
                "Webhook events given up on, "
                + "by reason (\(DropReason.allCases.map(\.rawValue).joined(separator: ", "))).",
            kind: .counter, labels: ["webhook", "reason"])
        self.outboxEvents = try registry.family(
            "s3canary_outbox_events",
            help: "Events accepted into the durable outbox (state_dir) and not yet delivered or given up on.",
            kind: .gauge)
        self.outboxOldest = try registry.family(
            "s3canary_outbox_oldest_event_timestamp_seconds",
            help: "Unix time the oldest event in the outbox was accepted; 0 when none waits.", kind: .gauge)
        self.outboxWriteErrors = try registry.family(
            "s3canary_outbox_write_errors_total",
            help:
                "Failed outbox writes (storing accepted events, forgetting delivered ones); an event that could not be "
                + "stored is delivered from memory only.",
            kind: .counter)
        self.stateProblems = try registry.family(
            "s3canary_state_problems_total",
            help:
                "State stores found unusable at start, and outbox records of an unknown event type, by kind (corrupt, schema, foreign, unwritable, unknown_event).",
            kind: .counter, labels: ["kind"])
        self.webhookQueueDepth = try registry.family(
            "s3canary_webhook_queue_depth", help: "Events waiting for delivery, per webhook.", kind: .gauge,
            labels: ["webhook"])
        self.webhookRequestDuration = try registry.family(
            "s3canary_webhook_request_duration_seconds", help: "Duration of webhook HTTP requests.", kind: .histogram,
            labels: ["webhook"], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30])
        self.scheduleDrift = try registry.family(
            "s3canary_schedule_drift_seconds",
            help:
                "How late each cycle started against its planned time (jitter included in the plan): "
                + "the canary's own lag.",
            kind: .histogram, buckets: [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5])
        self.buildInfo = try registry.family(
            "s3canary_build_info", help: "Build information; always 1.", kind: .gauge,
            labels: ["version", "revision", "swift_version"])
        self.reloadSuccessful = try registry.family(
            "s3canary_config_last_reload_successful", help: "Whether the last configuration load succeeded.",
            kind: .gauge)
        self.reloadTimestamp = try registry.family(
            "s3canary_config_last_reload_success_timestamp_seconds",
            help: "Unix time of the last successful configuration load.", kind: .gauge)
        self.reloads = try registry.family(
            "s3canary_config_reloads_total", help: "Configuration reloads (SIGHUP or HTTP) by result.",
            kind: .counter, labels: ["result"])
        for result in ReloadResult.allCases { self.reloads.touch([result.rawValue]) }
        self.sweepRemoved = try registry.family(
            "s3canary_sweep_removed_total",
            help:
                "Leftovers the sweeper removed: canary objects a crash left (kind=canary) and multipart uploads "
                + "it left open (kind=upload).",
            kind: .counter, labels: backend + ["kind"])
        self.sweepErrors = try registry.family(
            "s3canary_sweep_errors_total",
            help:
                "Leftover canaries the sweeper could not list or delete "
                + "(it goes on with the next; the next sweep retries).",
            kind: .counter, labels: backend)
        self.shardInfo = try registry.family(
            "s3canary_shard_info",
            help: "This replica's shard of the backends (sharding:); shard 0 of 1 when it probes them all.",
            kind: .gauge, labels: ["shard", "shards"])
        self.sloAvailabilityObjective = try registry.family(
            "s3canary_slo_availability_objective",
            help:
                "Share of cycles that must succeed over 28 days (slo:); a cycle the open breaker skipped is a failure.",
            kind: .gauge, labels: backend)
        self.sloLatencyObjective = try registry.family(
            "s3canary_slo_latency_objective",
            help: "Share of successful operations that must finish within the latency threshold over 28 days (slo:).",
            kind: .gauge, labels: ["backend", "operation"])
        self.sloLatencyThreshold = try registry.family(
            "s3canary_slo_latency_threshold_seconds", help: "The latency objective's threshold (slo:).",
            kind: .gauge, labels: ["backend", "operation"])
        self.sloLatencyMisses = try registry.family(
            "s3canary_slo_latency_misses_total",
            help: "Successful operations that took longer than the latency objective's threshold.",
            kind: .counter, labels: ["backend", "operation"])
        // The standard process metrics (client_golang's names), read from /proc at scrape time.
        self.processResidentMemory = try registry.family(
            "process_resident_memory_bytes", help: "Resident memory size in bytes.", kind: .gauge)
        self.processCPUSeconds = try registry.family(
            "process_cpu_seconds_total", help: "Total user and system CPU time spent in seconds.", kind: .counter)
        self.processOpenFDs = try registry.family(
            "process_open_fds", help: "Number of open file descriptors.", kind: .gauge)
        self.processMaxFDs = try registry.family(
            "process_max_fds", help: "Maximum number of open file descriptors.", kind: .gauge)
        self.processStartTime = try registry.family(
            "process_start_time_seconds", help: "Start time of the process since unix epoch in seconds.",
            kind: .gauge)
        self.buildInfo.set([version, revision, swiftVersion], 1)
        self.refreshProcessMetrics()
    }

    /// The Swift version the code was compiled for, to the minor version (the toolchain's exact one is in the stamp
    /// scripts/stamp.py writes).
    public static var swiftVersion: String {
        #if swift(>=6.3)
        "6.3"
        #elseif swift(>=6.2)
        "6.2"
        #else
        "6.x"
        #endif
    }

    /// Creates the series a backend's rates and alerts need from start-up, with zeros, and publishes its breaker
    /// threshold. The series budget (docs/design.md, "Series budget"): per backend 13 (+1 for https, +1 for
    /// credentials that refresh), per operation two result counters and the latency histogram. What happens rarely
    /// (an error reason, a rejection by the breaker, a sweep error) is created when it first happens.
    public func addBackend(
        _ name: String, operations: [String], paced: [String] = [], threshold: Int, refreshingCredentials: Bool = false,
        slo: SLOConfiguration = SLOConfiguration(), durability: CanaryConfiguration.Durability? = nil
    ) {
        self.setDurability(durability, backend: name)
        self.setObjectives(slo, backend: name)
        self.probeSuccess.touch([name])
        self.lastSuccess.touch([name])
        for result in CycleResult.Status.allCases { self.probes.touch([name, result.rawValue]) }
        for operation in operations {
            self.operationDuration.touch([name, operation])
            self.operationTimeToFirstByte?.touch([name, operation])
            for result in [OperationResult.success, .error] {
                self.operations.touch([name, operation, result.rawValue])
            }
        }
        self.integrityFailures.touch([name])
        // An operation a reload no longer paces loses its last run (its pace is the cycle's again).
        self.operationLastRun.removeSeries { labels in labels.first == name && !paced.contains(labels.last ?? "") }
        // A feature a reload dropped loses its verdict; the others keep theirs until their next cycle.
        self.featureSupported.removeSeries { labels in labels.first == name && !operations.contains(labels.last ?? "") }
        if refreshingCredentials { self.credentialsRefreshFailures.touch([name]) }
        self.breakerState.set([name], 0)
        self.breakerConsecutiveFailures.set([name], 0)
        let transitions: [(BreakerState, BreakerState)] = [
            (.closed, .open), (.open, .halfOpen), (.halfOpen, .closed), (.halfOpen, .open),
        ]
        for (from, to) in transitions {
            self.breakerTransitions.touch([name, from.rawValue, to.rawValue])
        }
        self.breakerThreshold.set([name], Double(threshold))
    }

    /// Publishes a backend's objectives (replacing earlier ones: a reload may drop one); opt-in, so a backend
    /// without objectives has no SLO series.
    func setObjectives(_ slo: SLOConfiguration, backend name: String) {
        for family in [self.sloAvailabilityObjective, self.sloLatencyObjective, self.sloLatencyThreshold] {
            family.removeSeries(where: "backend", equals: name)
        }
        // The misses of an objective the reload dropped go too; those it kept keep counting (no reset).
        let kept = Set(slo.latency.keys.map(\.label))
        self.sloLatencyMisses.removeSeries { labels in labels.first == name && !kept.contains(labels.last ?? "") }
        if let availability = slo.availability { self.sloAvailabilityObjective.set([name], availability) }
        var thresholds: [String: Double] = [:]
        for (operation, latency) in slo.latency {
            self.sloLatencyObjective.set([name, operation.label], latency.objective)
            self.sloLatencyThreshold.set([name, operation.label], latency.threshold.seconds)
            self.sloLatencyMisses.touch([name, operation.label])
            thresholds[operation.label] = latency.threshold.seconds
        }
        self.sloThresholds.withLock { $0[name] = thresholds.isEmpty ? nil : thresholds }
    }

    /// The latency threshold of `operation` on `backend`, if it has an objective.
    func latencyThreshold(backend: String, operation: String) -> Double? {
        self.sloThresholds.withLock { $0[backend]?[operation] }
    }

    /// Creates the outbox's series (with state_dir).
    public func addOutbox() {
        self.outboxEvents.set([], 0)
        self.outboxOldest.set([], 0)
        self.outboxWriteErrors.touch([])
    }

    /// Creates every series of a webhook with zeros.
    public func addWebhook(_ name: String, events: [WebhookEventType]) {
        for event in events {
            for result in DeliveryResult.allCases {
                self.webhookDeliveries.touch([name, event.rawValue, result.rawValue])
            }
        }
        for reason in DropReason.allCases { self.webhookDropped.touch([name, reason.rawValue]) }
        self.webhookQueueDepth.set([name], 0)
        self.webhookRequestDuration.touch([name])
    }

    /// Publishes this replica's shard (one series; a reload that changes it replaces it).
    public func setShard(_ shard: (shard: Int, shards: Int)) {
        self.shardInfo.removeAllSeries()
        self.shardInfo.set([String(shard.shard), String(shard.shards)], 1)
    }

    /// Drops every series of a backend a reload removed.
    public func removeBackend(_ name: String) {
        for family in [
            self.probeSuccess, self.probes, self.lastSuccess, self.operationLastRun, self.durabilityObjects,
            self.durabilityLastFullPass, self.durabilityFullEvery, self.durabilityChecks, self.operationDuration,
            self.operations,
            self.operationErrors, self.integrityFailures, self.featureSupported, self.breakerState,
            self.breakerTransitions,
            self.breakerConsecutiveFailures, self.breakerThreshold, self.credentialsRefreshFailures,
            self.tlsCertificateExpiry, self.sweepErrors, self.sweepRemoved, self.sloAvailabilityObjective,
            self.sloLatencyObjective,
            self.sloLatencyThreshold, self.sloLatencyMisses, self.addressUp, self.addressLastSuccess, self.tlsInfo,
        ] + [self.operationTimeToFirstByte, self.requestPhase].compactMap({ $0 }) {
            family.removeSeries(where: "backend", equals: name)
        }
        self.sloThresholds.withLock { $0[name] = nil }
    }

    /// Renders everything, refreshing process metrics first.
    public func render(format: ExpositionFormat) -> [UInt8] {
        self.refreshProcessMetrics()
        return self.registry.render(format: format)
    }

    /// Renders a text format as a string (tests, tools).
    public func renderText(format: ExpositionFormat) -> String {
        String(decoding: self.render(format: format), as: UTF8.self)
    }

    /// The metrics `/probe` answers with, as blackbox_exporter does: one cycle and its operations, in a registry
    /// of their own (no `backend` label: the scraper's target names it).
    public static func renderProbe(_ result: CycleResult) throws -> String {
        let registry = MetricsRegistry()
        let success = try registry.family(
            "s3canary_probe_success", help: "Whether this probe succeeded.", kind: .gauge)
        let duration = try registry.family(
            "s3canary_probe_duration_seconds", help: "Duration of this probe.", kind: .gauge)
        let operationDuration = try registry.family(
            "s3canary_probe_operation_duration_seconds", help: "Duration of each operation of this probe.",
            kind: .gauge, labels: ["operation"])
        let operationSuccess = try registry.family(
            "s3canary_probe_operation_success", help: "Whether each operation of this probe succeeded.",
            kind: .gauge, labels: ["operation"])
        success.set([], result.status == .success ? 1 : 0)
        duration.set([], result.duration.seconds)
        for step in result.steps {
            if let seconds = step.seconds { operationDuration.set([step.operation.label], seconds) }
            operationSuccess.set([step.operation.label], step.result == .success ? 1 : 0)
        }
        return registry.renderText(format: .text004)
    }
}

/// The `result` label of `s3canary_operations_total`.
enum OperationResult: String, CaseIterable, Sendable {
    case success, error, rejected
}

/// The `result` label of `s3canary_config_reloads_total`.
public enum ReloadResult: String, CaseIterable, Sendable {
    case success, failure
}

/// The `result` label of `s3canary_webhook_deliveries_total`.
public enum DeliveryResult: String, CaseIterable, Sendable {
    case success, failure
}

/// The `reason` label of `s3canary_webhook_dropped_total`: why an event was given up on.
public enum DropReason: String, CaseIterable, Sendable {
    /// The webhook's queue was full when the event came.
    case queueFull = "queue_full"
    /// Every retry failed.
    case retriesExhausted = "retries_exhausted"
    /// Older than the webhook's `max_age` before it could be delivered.
    case expired
    /// The receiver answered 410 Gone.
    case gone
    /// The receiver answered another 4xx (not 408 or 429): retrying would not help.
    case rejected
    /// Still queued when the drain time at shutdown ran out.
    case shutdown
    /// The payload could not be encoded (never sent).
    case unencodable
}

/// The breaker states as label values.
public typealias BreakerState = CircuitBreaker<ContinuousClock.Instant>.State
