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
        // Generous per-operation time: under a loaded CI machine a tight timeout would trip the breaker first.
        configuration.probe.interval = .seconds(4)
        configuration.probe.timeout = .seconds(3)
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
        let running = Task { try await service.scheduler.run() }
        defer { running.cancel() }
        // Ends as soon as both events arrived (about 4 s alone). The generous bound is for the main phase, where the
        // integration tests' blocking process calls can hold both cooperative threads of this 2-core machine.
        let deadline = ContinuousClock.now + .seconds(90)
        while ContinuousClock.now < deadline {
            let types = events.list.withLock { $0.map(\.type) }
            if types.contains(.corruptionDetected) && types.contains(.circuitOpened) { break }
            try await Task.sleep(for: .milliseconds(50))
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
        _ = try? await running.value
    }
}
