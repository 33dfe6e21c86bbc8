import Foundation
import Testing

@testable import PrometheusExposition
@testable import SidecarBreaker
@testable import SidecarCanary
@testable import SidecarConfig
@testable import SidecarTelemetry

@Suite("Metrics registry and exposition")
struct MetricsTests {
    @Test func rendersText004() throws {
        let registry = MetricsRegistry()
        let counter = try registry.family("x_events_total", help: "Events.", kind: .counter, labels: ["backend"])
        let gauge = try registry.family("x_up", help: "Up.", kind: .gauge)
        let histogram = try registry.family(
            "x_seconds", help: "Latency.", kind: .histogram, labels: ["op"], buckets: [0.001, 0.01])
        counter.add(["a\"b\\c\nd"], 2)
        gauge.set([], 1)
        histogram.observe(["get"], 0.0005)
        histogram.observe(["get"], 0.005)
        histogram.observe(["get"], 5)
        let text = registry.renderText(format: .text004)
        #expect(
            text == """
                # HELP x_events_total Events.
                # TYPE x_events_total counter
                x_events_total{backend="a\\"b\\\\c\\nd"} 2
                # HELP x_seconds Latency.
                # TYPE x_seconds histogram
                x_seconds_bucket{op="get",le="0.001"} 1
                x_seconds_bucket{op="get",le="0.01"} 2
                x_seconds_bucket{op="get",le="+Inf"} 3
                x_seconds_sum{op="get"} 5.0055
                x_seconds_count{op="get"} 3
                # HELP x_up Up.
                # TYPE x_up gauge
                x_up 1

                """)
    }

    @Test func rendersOpenMetricsWithEOFAndCounterFamilyNames() throws {
        let registry = MetricsRegistry()
        let counter = try registry.family("x_events_total", help: "Events.", kind: .counter)
        counter.add([], 1)
        let text = registry.renderText(format: .openMetrics)
        #expect(text == "# HELP x_events Events.\n# TYPE x_events counter\nx_events_total 1\n# EOF\n")
    }

    @Test func negotiatesLikePrometheus() {
        #expect(ExpositionFormat.negotiate(accept: nil) == .text004)
        #expect(ExpositionFormat.negotiate(accept: "text/plain;version=0.0.4") == .text004)
        #expect(
            ExpositionFormat.negotiate(
                accept: """
                    application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,\
                    text/plain;version=0.0.4;q=0.5,*/*;q=0.1
                    """
            )
                == .openMetrics
        )
    }

    @Test func redefinitionWithAnotherShapeThrowsInsteadOfCrashing() throws {
        let registry = MetricsRegistry()
        _ = try registry.family("x_total", help: "a", kind: .counter)
        #expect(throws: MetricsRegistry.DefinitionError.self) {
            try registry.family("x_total", help: "a", kind: .gauge)
        }
        #expect(try registry.family("x_total", help: "a", kind: .counter).name == "x_total")
    }

    @Test func aBackendStartsWithExactlyTheSeriesItsAlertsNeed() throws {
        let metrics = try CanaryMetrics(version: "test")
        metrics.addBackend("ceph-a", operations: ["put", "get"], threshold: 3)
        metrics.addBackend("ceph-b", operations: ["put", "get"], threshold: 5)
        let text = metrics.renderText(format: .text004)
        let ceph = text.split(separator: "\n").filter { $0.contains("backend=\"ceph-a\"") }
        #expect(
            ceph.joined(separator: "\n") == """
                s3canary_circuit_breaker_consecutive_failures{backend="ceph-a"} 0
                s3canary_circuit_breaker_failure_threshold{backend="ceph-a"} 3
                s3canary_circuit_breaker_state{backend="ceph-a"} 0
                s3canary_circuit_breaker_transitions_total{backend="ceph-a",from="closed",to="open"} 0
                s3canary_circuit_breaker_transitions_total{backend="ceph-a",from="half_open",to="closed"} 0
                s3canary_circuit_breaker_transitions_total{backend="ceph-a",from="half_open",to="open"} 0
                s3canary_circuit_breaker_transitions_total{backend="ceph-a",from="open",to="half_open"} 0
                s3canary_integrity_failures_total{backend="ceph-a"} 0
                s3canary_last_success_timestamp_seconds{backend="ceph-a"} 0
                s3canary_operation_duration_seconds_bucket{backend="ceph-a",operation="get",le="0.025"} 0
                s3canary_operation_duration_seconds_bucket{backend="ceph-a",operation="get",le="0.1"} 0
                s3canary_operation_duration_seconds_bucket{backend="ceph-a",operation="get",le="0.25"} 0
                s3canary_operation_duration_seconds_bucket{backend="ceph-a",operation="get",le="1"} 0
                s3canary_operation_duration_seconds_bucket{backend="ceph-a",operation="get",le="+Inf"} 0
                s3canary_operation_duration_seconds_sum{backend="ceph-a",operation="get"} 0
                s3canary_operation_duration_seconds_count{backend="ceph-a",operation="get"} 0
                s3canary_operation_duration_seconds_bucket{backend="ceph-a",operation="put",le="0.025"} 0
                s3canary_operation_duration_seconds_bucket{backend="ceph-a",operation="put",le="0.1"} 0
                s3canary_operation_duration_seconds_bucket{backend="ceph-a",operation="put",le="0.25"} 0
                s3canary_operation_duration_seconds_bucket{backend="ceph-a",operation="put",le="1"} 0
                s3canary_operation_duration_seconds_bucket{backend="ceph-a",operation="put",le="+Inf"} 0
                s3canary_operation_duration_seconds_sum{backend="ceph-a",operation="put"} 0
                s3canary_operation_duration_seconds_count{backend="ceph-a",operation="put"} 0
                s3canary_operations_total{backend="ceph-a",operation="get",result="error"} 0
                s3canary_operations_total{backend="ceph-a",operation="get",result="success"} 0
                s3canary_operations_total{backend="ceph-a",operation="put",result="error"} 0
                s3canary_operations_total{backend="ceph-a",operation="put",result="success"} 0
                s3canary_probe_success{backend="ceph-a"} 0
                s3canary_probes_total{backend="ceph-a",result="failure"} 0
                s3canary_probes_total{backend="ceph-a",result="skipped"} 0
                s3canary_probes_total{backend="ceph-a",result="success"} 0
                """)
        #expect(text.contains("s3canary_build_info{version=\"test\""))
        metrics.removeBackend("ceph-a")
        let after = metrics.renderText(format: .text004)
        #expect(!after.contains("\"ceph-a\""))
        #expect(after.contains("\"ceph-b\""))
    }

    /// The series budget (docs/design.md): at most 60 per backend with the default five operations and classic
    /// histograms, https and refreshing credentials included; what happens rarely appears when it happens.
    @Test(arguments: [false, true])
    func theDefaultBackendFitsTheSeriesBudget(native: Bool) throws {
        var configuration = MetricsConfiguration()
        configuration.nativeHistograms = native
        let metrics = try CanaryMetrics(version: "test", configuration: configuration)
        let operations = CanaryConfiguration.Probe().operations.map(\.label)
        metrics.addBackend("b", operations: operations, threshold: 3, refreshingCredentials: true)
        metrics.tlsCertificateExpiry.set(["b"], 2e9)
        func series() -> Int {
            metrics.renderText(format: .text004).split(separator: "\n").filter {
                $0.hasPrefix("s3canary_") && $0.contains("backend=\"b\"")
            }.count
        }
        #expect(operations.count == 5)
        #expect(series() == 60)
        metrics.operationErrors.add(["b", "put", "timeout"])
        #expect(series() == 61, "an error reason is a series from its first occurrence")
    }

    @Test func aSweepCountsWhatItRemovedFromTheFirstRemoval() throws {
        let metrics = try CanaryMetrics(version: "test")
        metrics.addBackend("m", operations: ["put", "delete"], threshold: 3)
        metrics.recordSweep(SweepReport(backend: "m", removedCanaries: 0, abortedUploads: 0, errors: 0))
        #expect(!metrics.renderText(format: .text004).contains("s3canary_sweep_removed_total{"))
        metrics.recordSweep(SweepReport(backend: "m", removedCanaries: 2, abortedUploads: 1, errors: 1))
        metrics.recordSweep(SweepReport(backend: "m", removedCanaries: 1, abortedUploads: 0, errors: 0))
        #expect(metrics.sweepRemoved.value(["m", "canary"]) == 3)
        #expect(metrics.sweepRemoved.value(["m", "upload"]) == 1)
        #expect(metrics.sweepErrors.value(["m"]) == 1)
        metrics.removeBackend("m")
        #expect(metrics.sweepRemoved.value(["m", "canary"]) == nil)
    }

    @Test func aCycleResultIsRecorded() throws {
        let metrics = try CanaryMetrics(version: "test")
        metrics.addBackend("m", operations: ["put", "get"], threshold: 3)
        let result = CycleResult(
            backend: "m", startedAt: Date(timeIntervalSince1970: 1000), duration: .milliseconds(20), status: .failure,
            steps: [
                StepResult(operation: .put, result: .success, seconds: 0.002),
                StepResult(operation: .get, result: .error, seconds: 0.003, reason: .integrity, message: "differs"),
            ],
            failure: FailureSummary(operation: "get", reason: .integrity, message: "differs"), integrityFailure: true
        )
        metrics.record(result)
        #expect(metrics.probes.value(["m", "failure"]) == 1)
        #expect(metrics.probeSuccess.value(["m"]) == 0)
        #expect(metrics.operations.value(["m", "put", "success"]) == 1)
        #expect(metrics.operationErrors.value(["m", "get", "integrity"]) == 1)
        #expect(metrics.integrityFailures.value(["m"]) == 1)
        #expect(metrics.operationDuration.count(["m", "get"]) == 1)
        #expect(metrics.lastSuccess.value(["m"]) == 0)
    }

    @Test func aPacedOperationPublishesItsLastRunUntilAReloadStopsPacingIt() throws {
        let metrics = try CanaryMetrics(version: "test")
        metrics.addBackend("p", operations: ["put", "list", "delete"], paced: ["list"], threshold: 3)
        #expect(metrics.operationLastRun.value(["p", "list"]) == nil, "no last run before the first")
        var result = CycleResult(
            backend: "p", startedAt: Date(timeIntervalSince1970: 1000), duration: .seconds(2), status: .success,
            steps: [
                StepResult(operation: .put, result: .success, seconds: 0.002),
                StepResult(operation: .list, result: .success, seconds: 0.003),
                StepResult(operation: .delete, result: .success, seconds: 0.002),
            ], integrityFailure: false)
        result.paced = [.list]
        metrics.record(result)
        #expect(metrics.operationLastRun.value(["p", "list"]) == 1002)
        #expect(metrics.operationLastRun.value(["p", "put"]) == nil, "put runs every cycle: no last-run series")
        metrics.addBackend("p", operations: ["put", "list", "delete"], threshold: 3)
        #expect(metrics.operationLastRun.value(["p", "list"]) == nil, "a reload that stops pacing list drops it")
    }
}
