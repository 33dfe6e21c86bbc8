import Foundation

/// Every metric the exporter publishes, defined in this one file (DESIGN §5).
///
/// `backend` and `webhook` labels carry configured names, never URLs. Series for every backend × operation
/// exist from the moment a backend is added, so rates and alerts work before the first failure.
public final class CanaryMetrics: Sendable {
    public let registry: MetricsRegistry

    /// Latency buckets from 250 µs (a local RGW answers in under 1 ms) to 60 s.
    public static let latencyBuckets: [Double] = [
        0.00025, 0.0005, 0.001, 0.002, 0.004, 0.008, 0.016, 0.032, 0.064, 0.128, 0.256, 0.512, 1, 2, 4, 8, 16,
        30, 60,
    ]

    public let probeSuccess: MetricFamily
    public let probeDuration: MetricFamily
    public let probes: MetricFamily
    public let lastSuccess: MetricFamily
    public let operationDuration: MetricFamily
    public let operationTimeToFirstByte: MetricFamily
    public let operations: MetricFamily
    public let operationErrors: MetricFamily
    public let integrityFailures: MetricFamily
    public let scheduleDrift: MetricFamily
    public let breakerState: MetricFamily
    public let breakerTransitions: MetricFamily
    public let breakerConsecutiveFailures: MetricFamily
    public let breakerThreshold: MetricFamily
    public let breakerOpenTimeout: MetricFamily
    public let credentialsRefreshFailures: MetricFamily
    public let tlsCertificateExpiry: MetricFamily
    public let webhookDeliveries: MetricFamily
    public let webhookDropped: MetricFamily
    public let webhookQueueDepth: MetricFamily
    public let webhookRequestDuration: MetricFamily
    public let buildInfo: MetricFamily
    public let reloadSuccessful: MetricFamily
    public let reloadTimestamp: MetricFamily
    let process: ProcessMetrics

    public init(version: String) throws {
        let registry = MetricsRegistry()
        self.registry = registry
        let backend = ["backend"]
        self.probeSuccess = try registry.family(
            "s3canary_probe_success", help: "Whether the last canary cycle of the backend succeeded (1) or not (0).",
            kind: .gauge, labels: backend)
        self.probeDuration = try registry.family(
            "s3canary_probe_duration_seconds", help: "Duration of the last canary cycle of the backend.",
            kind: .gauge, labels: backend)
        self.probes = try registry.family(
            "s3canary_probes_total", help: "Canary cycles by result (success, failure, skipped while the breaker was open).",
            kind: .counter, labels: ["backend", "result"])
        self.lastSuccess = try registry.family(
            "s3canary_last_success_timestamp_seconds", help: "Unix time of the backend's last successful cycle.",
            kind: .gauge, labels: backend)
        self.operationDuration = try registry.family(
            "s3canary_operation_duration_seconds", help: "Duration of each canary operation that reached the backend.",
            kind: .histogram, labels: ["backend", "operation"], buckets: Self.latencyBuckets)
        self.operationTimeToFirstByte = try registry.family(
            "s3canary_operation_ttfb_seconds",
            help: "Time from sending each S3 request of a canary operation to receiving its response head.",
            kind: .histogram, labels: ["backend", "operation"], buckets: Self.latencyBuckets)
        self.operations = try registry.family(
            "s3canary_operations_total", help: "Canary operations by result (success, error, rejected by the breaker).",
            kind: .counter, labels: ["backend", "operation", "result"])
        self.operationErrors = try registry.family(
            "s3canary_operation_errors_total", help: "Failed canary operations by reason.",
            kind: .counter, labels: ["backend", "operation", "reason"])
        self.integrityFailures = try registry.family(
            "s3canary_integrity_failures_total", help: "Reads that returned other bytes or sizes than were written.",
            kind: .counter, labels: backend)
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
        self.breakerOpenTimeout = try registry.family(
            "s3canary_circuit_breaker_open_timeout_seconds", help: "Time an open breaker waits before probing (config).",
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
            "s3canary_webhook_deliveries_total", help: "Webhook delivery attempts by event and result (success, failure).",
            kind: .counter, labels: ["webhook", "event", "result"])
        self.webhookDropped = try registry.family(
            "s3canary_webhook_dropped_total",
            help: "Webhook events given up on, by reason (queue_full, retries_exhausted, gone, rejected, shutdown).",
            kind: .counter, labels: ["webhook", "reason"])
        self.webhookQueueDepth = try registry.family(
            "s3canary_webhook_queue_depth", help: "Events waiting for delivery, per webhook.", kind: .gauge,
            labels: ["webhook"])
        self.webhookRequestDuration = try registry.family(
            "s3canary_webhook_request_duration_seconds", help: "Duration of webhook HTTP requests.", kind: .histogram,
            labels: ["webhook"], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30])
        self.scheduleDrift = try registry.family(
            "s3canary_schedule_drift_seconds",
            help: "How late each cycle started against its planned time (jitter included in the plan): the canary's own lag.",
            kind: .histogram, buckets: [0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5])
        self.buildInfo = try registry.family(
            "s3canary_build_info", help: "Build information; always 1.", kind: .gauge,
            labels: ["version", "swift_version"])
        self.reloadSuccessful = try registry.family(
            "s3canary_config_last_reload_successful", help: "Whether the last configuration load succeeded.",
            kind: .gauge)
        self.reloadTimestamp = try registry.family(
            "s3canary_config_last_reload_success_timestamp_seconds",
            help: "Unix time of the last successful configuration load.", kind: .gauge)
        self.process = try ProcessMetrics(registry: registry)
        self.buildInfo.set([version, Self.swiftVersion], 1)
    }

    static var swiftVersion: String {
        #if swift(>=6.3)
        "6.3"
        #elseif swift(>=6.2)
        "6.2"
        #else
        "6.x"
        #endif
    }

    /// Creates every series of a backend with zeros and publishes its breaker configuration.
    public func addBackend(_ name: String, operations: [String], threshold: Int, openTimeout: Duration) {
        self.probeSuccess.touch([name])
        self.probeDuration.touch([name])
        self.lastSuccess.touch([name])
        for result in ["success", "failure", "skipped"] { self.probes.touch([name, result]) }
        for operation in operations {
            self.operationDuration.touch([name, operation])
            self.operationTimeToFirstByte.touch([name, operation])
            for result in ["success", "error", "rejected"] { self.operations.touch([name, operation, result]) }
            for reason in FailureReason.allCases { self.operationErrors.touch([name, operation, reason.rawValue]) }
        }
        self.integrityFailures.touch([name])
        self.credentialsRefreshFailures.touch([name])
        self.breakerState.set([name], 0)
        self.breakerConsecutiveFailures.set([name], 0)
        for (from, to) in [("closed", "open"), ("open", "half_open"), ("half_open", "closed"), ("half_open", "open")] {
            self.breakerTransitions.touch([name, from, to])
        }
        self.breakerThreshold.set([name], Double(threshold))
        self.breakerOpenTimeout.set([name], openTimeout.seconds)
    }

    /// The reasons an event can be dropped for (`s3canary_webhook_dropped_total`).
    public static let dropReasons = ["queue_full", "retries_exhausted", "gone", "rejected", "shutdown"]

    /// Creates every series of a webhook with zeros.
    public func addWebhook(_ name: String, events: [WebhookEventType]) {
        for event in events {
            for result in ["success", "failure"] { self.webhookDeliveries.touch([name, event.rawValue, result]) }
        }
        for reason in Self.dropReasons { self.webhookDropped.touch([name, reason]) }
        self.webhookQueueDepth.set([name], 0)
        self.webhookRequestDuration.touch([name])
    }

    /// Drops every series of a webhook a reload removed.
    public func removeWebhook(_ name: String) {
        for family in [self.webhookDeliveries, self.webhookDropped, self.webhookQueueDepth, self.webhookRequestDuration] {
            family.removeSeries(where: "webhook", equals: name)
        }
    }

    /// Drops every series of a backend a reload removed.
    public func removeBackend(_ name: String) {
        for family in [
            self.probeSuccess, self.probeDuration, self.probes, self.lastSuccess, self.operationDuration,
            self.operationTimeToFirstByte,
            self.operations, self.operationErrors, self.integrityFailures, self.breakerState,
            self.breakerTransitions, self.breakerConsecutiveFailures, self.breakerThreshold,
            self.breakerOpenTimeout, self.credentialsRefreshFailures, self.tlsCertificateExpiry,
        ] {
            family.removeSeries(where: "backend", equals: name)
        }
    }

    /// Renders everything, refreshing process metrics first.
    public func render(format: ExpositionFormat) -> String {
        self.process.refresh()
        return self.registry.render(format: format)
    }
}
