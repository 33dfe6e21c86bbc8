import Foundation
import Logging
import ObjectStorage
import PrometheusExposition
import Synchronization
import Testing

@testable import CanarySidecar
@testable import SidecarBreaker
@testable import SidecarCanary
@testable import SidecarConfig
@testable import SidecarEvents
@testable import SidecarNotify
@testable import SidecarServer
@testable import SidecarTelemetry

@Suite("CanaryService wiring over in-memory backends")
struct CanaryServiceTests {
    final class Events: Sendable {
        let list = Mutex<[WebhookEvent]>([])
    }

    @Test func corruptionAndBreakerEventsReachListenersAndMetrics() async throws {
        var configuration = Demo.configuration(listen: .init())
        // The two cycles run through `probe(backend:)`, one after the other, not on the scheduler's real-clock
        // slots: a cycle's deadline is 0.9 of the interval, and a minute is far more than a loaded 2-core CI
        // machine needs for one in-memory cycle (a 4 s interval once timed a cycle out and opened the breaker
        // with `timeout` instead of `integrity`).
        configuration.probe.interval = .seconds(60)
        configuration.probe.timeout = .seconds(50)
        configuration.backends = configuration.backends.prefix(1).map { backend in
            var backend = backend
            backend.name = "mem"
            backend.probe = configuration.probe
            backend.breaker.failureThreshold = 2
            return backend
        }
        let stores = Demo.Stores(names: ["mem"])
        let store = try #require(stores["mem"])
        let metrics = try CanaryMetrics(version: "test")
        let service = CanaryService(
            configuration: configuration, configurationPath: nil, factory: stores.factory, metrics: metrics,
            logger: Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })
        )
        let events = Events()
        service.onEvent { event in events.list.withLock { $0.append(event) } }
        try await service.start()
        store.corruptNextReads(2)
        for _ in 0..<2 {
            let (result, _) = try #require(await service.probe(backend: "mem"))
            let reasons = result.steps.map { "\($0.operation.label): \($0.reason?.rawValue ?? "ok")" }
            #expect(result.integrityFailure, "steps: \(reasons)")
        }
        let received = events.list.withLock { $0 }
        let corruption = try #require(received.first { $0.type == .corruptionDetected })
        #expect(corruption.backend == "mem" && corruption.lastError?.reason == "integrity")
        // Two corrupted reads in a row are two breaker failures: the threshold of 2 opens it.
        let opened = try #require(received.first { $0.type == .circuitOpened })
        #expect(
            opened.lastError?.reason == "integrity" && opened.threshold == 2,
            "opened by \(String(describing: opened.lastError))")
        #expect((metrics.integrityFailures.value(["mem"]) ?? 0) >= 2)
        #expect(metrics.breakerTransitions.value(["mem", "closed", "open"]) == 1)
        service.scheduler.shutdown()
    }
}
