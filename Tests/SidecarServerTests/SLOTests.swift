import Foundation
import PrometheusExposition
import SidecarBreaker
import Testing

@testable import SidecarCanary
@testable import SidecarConfig
@testable import SidecarServer
@testable import SidecarTelemetry

@Suite("Objectives: configuration, gauges, misses and the status page's own figures")
struct SLOTests {
    static let loader = ConfigurationLoader(environment: [:], hostName: "host-1")

    static let configuration = """
        probe: {operations: [put, get, delete]}
        slo:
          availability: 99.9%
          latency:
            get: {threshold: 100ms, objective: 99%}
        backends:
          - {name: a, endpoint: "http://h:1", bucket: b, credentials: {access_key_id: k, secret_access_key: s}}
          - name: b
            endpoint: "http://h:1"
            bucket: b
            credentials: {access_key_id: k, secret_access_key: s}
            probe: {operations: [put, head, delete]}
            slo: {availability: 0.995, latency: {put: {threshold: 250ms, objective: 0.9}}}
          - {name: c, endpoint: "http://h:1", bucket: b, credentials: {access_key_id: k, secret_access_key: s}}
        """

    @Test func defaultsApplyAndABackendsOwnObjectivesOverrideThem() throws {
        let loaded = try Self.loader.load(data: Data(Self.configuration.utf8))
        let a = try #require(loaded.backends.first { $0.name == "a" })
        let b = try #require(loaded.backends.first { $0.name == "b" })
        #expect(a.slo.availability == 0.999)
        #expect(a.slo.latency == [.get: .init(threshold: .milliseconds(100), objective: 0.99)])
        #expect(b.slo.availability == 0.995)
        // b does not run get: the default get objective does not apply to it; its own put objective does.
        #expect(b.slo.latency == [.put: .init(threshold: .milliseconds(250), objective: 0.9)])
    }

    @Test func withoutObjectivesABackendHasNone() throws {
        let loaded = try Self.loader.load(
            data: Data(
                #"backends: [{name: a, endpoint: "http://h:1", bucket: b, credentials: {source: environment}}]"#.utf8))
        #expect(loaded.backends[0].slo.isEmpty)
    }

    @Test func gaugesAreOptInAndMissesCountSlowSuccessesOnly() throws {
        let metrics = try CanaryMetrics(version: "t")
        let slo = SLOConfiguration(
            availability: 0.999, latency: [.get: .init(threshold: .milliseconds(100), objective: 0.99)])
        metrics.addBackend("a", operations: ["put", "get", "delete"], threshold: 3, slo: slo)
        metrics.addBackend("plain", operations: ["put", "get", "delete"], threshold: 3)
        let steps = [
            StepResult(operation: .get, result: .success, seconds: 0.25),
            StepResult(operation: .get, result: .success, seconds: 0.05),
            StepResult(operation: .get, result: .error, seconds: 0.5, reason: .timeout),
            StepResult(operation: .put, result: .success, seconds: 0.5),
        ]
        for backend in ["a", "plain"] {
            metrics.record(
                CycleResult(
                    backend: backend, startedAt: Date(), duration: .seconds(1), status: .failure, steps: steps,
                    integrityFailure: false))
        }
        let text = metrics.renderText(format: .text004)
        let sloLines = text.split(separator: "\n").filter { $0.hasPrefix("s3canary_slo_") }
        #expect(
            sloLines.joined(separator: "\n") == """
                s3canary_slo_availability_objective{backend="a"} 0.999
                s3canary_slo_latency_misses_total{backend="a",operation="get"} 1
                s3canary_slo_latency_objective{backend="a",operation="get"} 0.99
                s3canary_slo_latency_threshold_seconds{backend="a",operation="get"} 0.1
                """)
        // A reload that drops the latency objective drops its gauges and misses; removal drops the rest.
        metrics.setObjectives(SLOConfiguration(availability: 0.99), backend: "a")
        #expect(!metrics.renderText(format: .text004).contains("s3canary_slo_latency_objective{"))
        #expect(!metrics.renderText(format: .text004).contains("s3canary_slo_latency_misses_total{"))
        metrics.removeBackend("a")
        #expect(!metrics.renderText(format: .text004).contains("s3canary_slo_"))
    }

    @Test func theStatusPageFiguresCountSkippedCyclesAsFailedAndSpendTheBudget() throws {
        let board = StatusBoard()
        board.setBackends(["a"])
        board.setObjectives(
            SLOConfiguration(availability: 0.9, latency: [.get: .init(threshold: .milliseconds(100), objective: 0.5)]),
            backend: "a")
        let start = Date(timeIntervalSince1970: 1_800_000_000)
        let statuses: [CycleResult.Status] =
            [.success, .success, .failure, .skipped] + Array(repeating: .success, count: 16)
        for (index, status) in statuses.enumerated() {
            let seconds = index.isMultiple(of: 4) ? 0.2 : 0.02
            board.record(
                CycleResult(
                    backend: "a", startedAt: start.addingTimeInterval(Double(index)), duration: .milliseconds(30),
                    status: status,
                    steps: status == .skipped
                        ? []
                        : [StepResult(operation: .get, result: .success, seconds: seconds, requestID: "r\(index)")],
                    integrityFailure: false))
        }
        let backend = try #require(board.backends.first)
        #expect(backend.totals.cycles == 20 && backend.totals.success == 18 && backend.totals.skipped == 1)
        #expect(backend.recentCycles.count == 20 && backend.recentCycles[3].status == "skipped")
        #expect(backend.recentCycles[0].requestID == "r0")
        let objectives = StatusDocument.objectives(backend)
        // Availability 18/20 = 90 % against 90 %: the budget is exactly spent.
        #expect(objectives[0].kind == "availability" && objectives[0].attainment == 0.9)
        #expect(abs((objectives[0].budgetRemaining ?? 1) - 0) < 1e-9)
        // Latency: 19 steps reached the backend, 5 slower than 100 ms (indices 0, 4, 8, 12, 16): 14/19 met.
        #expect(objectives[1].operation == "get" && objectives[1].events == 19)
        #expect(abs((objectives[1].attainment ?? 0) - 14.0 / 19.0) < 1e-9)
    }
}
