import Foundation
import Logging
import ObjectStorage
import PrometheusExposition
import SidecarNotify
import TestSupport
import Testing

@testable import SidecarConfig
@testable import SidecarEvents
@testable import SidecarTelemetry

@Suite("Webhooks verified by real receivers", .serialized)
struct WebhookRGWTests {
    @Test func oneOutageGivesExactlyOneOpenedAndOneClosedPerWebhook() async throws {
        let rgw = try RGWEnvironment.load()
        let work = try Harness.temporaryDirectory("webhooks")
        let receiver = try WebhookReceiver(directory: work)
        try await receiver.start()
        defer { receiver.stop() }
        let secretFile = work.appendingPathComponent("webhook-secret")
        try Data("\(receiver.secret)\n".utf8).write(to: secretFile)
        let urlFile = work.appendingPathComponent("pagerduty-url")
        try Data("\(receiver.base)/ok/pagerduty?token=URLTOKENMARKER\n".utf8).write(to: urlFile)
        let proxy = try FaultProxy(target: rgw.port, directory: work)
        try await proxy.up()
        let prefix = ".s3-canary-wh-\(UUID().uuidString.prefix(6).lowercased())/"
        let (canary, _) = try await RunningCanary.start(name: "webhooks") { port in
            """
            listen: 127.0.0.1:\(port)
            instance: wh
            probe: {interval: 1s, timeout: 500ms, key_prefix: \(prefix)}
            breaker: {failure_threshold: 2, open_timeout: 2s}
            backends:
              - name: rgw-flaky
                endpoint: http://127.0.0.1:\(proxy.port)
                bucket: \(RGWEnvironment.pathBucket)
                credentials: \(RGWEnvironment.credentialsFromEnvironment)
            webhooks:
              - {name: ce, url: "\(receiver.base)/ok/cloudevents", secret_file: \(secretFile.path), events: ["*"]}
              - {name: am, url: "\(receiver.base)/ok/alertmanager", format: alertmanager, \
            secret_file: \(secretFile.path),
                 events: [backend.circuit.opened, backend.circuit.closed]}
              - {name: slack, url: "\(receiver.base)/ok/slack", format: slack, secret_file: \(secretFile.path), \
            events: ["backend.circuit.*"]}
              - {name: pd, url_file: \(urlFile.path), format: pagerduty, routing_key: R0UT1NG, \
            secret_file: \(secretFile.path),
                 events: ["backend.*"]}

            """
        }
        defer { canary.daemon.signal(SIGKILL) }
        try await Harness.waitUntil(.seconds(20), "first cycle") {
            try Harness.http("\(canary.base)/readyz").status == 200
        }
        await proxy.down()
        try await Harness.waitUntil(.seconds(20), "breaker open") {
            try canary.metrics()[#"s3canary_circuit_breaker_state{backend="rgw-flaky"}"#] == 1
        }
        try await Task.sleep(for: .seconds(3))  // stays open a while: more failed probes, no more events
        try await proxy.up()
        try await Harness.waitUntil(.seconds(30), "breaker closed") {
            try canary.metrics()[#"s3canary_circuit_breaker_state{backend="rgw-flaky"}"#] == 0
        }
        let paths = ["/ok/cloudevents", "/ok/alertmanager", "/ok/slack", "/ok/pagerduty?token=URLTOKENMARKER"]
        try await Harness.waitUntil(.seconds(20), "both events at every webhook") {
            paths.allSatisfy { path in
                let kinds = receiver.deliveries(path: path).map(eventKind)
                return kinds.contains("backend.circuit.opened") && kinds.contains("backend.circuit.closed")
            }
        }
        try await Task.sleep(for: .seconds(2))  // let any duplicate arrive before counting

        let exit = await canary.daemon.stop(SIGTERM)
        #expect(exit == 0)
        for path in paths {
            let deliveries = receiver.deliveries(path: path)
            let kinds = deliveries.map(eventKind)
            #expect(kinds.filter { $0 == "backend.circuit.opened" }.count == 1, "\(path): \(kinds)")
            #expect(kinds.filter { $0 == "backend.circuit.closed" }.count == 1, "\(path): \(kinds)")
            #expect(!kinds.contains("backend.circuit.half_opened"), "half_opened is only for explicit subscribers")
            #expect(Set(deliveries.map(\.id)).count == deliveries.count, "\(path): duplicate ids")
            for delivery in deliveries {
                #expect(delivery.standardWebhooksOK, "\(path): standardwebhooks rejected \(delivery.id)")
                #expect(delivery.hmacOK, "\(path): X-Webhook-Signature wrong")
                #expect(delivery.schemaOK == true, "\(path): schema: \(delivery.schemaError ?? "-")")
            }
        }
        let cloudEvents = receiver.deliveries(path: "/ok/cloudevents")
        #expect(cloudEvents.allSatisfy { $0.cloudEventOK == true })
        // The events of the CloudEvents webhook, in order, and the drain on SIGTERM delivered service.stopping.
        let ceKinds = cloudEvents.map(eventKind)
        #expect(ceKinds.first == "service.started")
        #expect(ceKinds.last == "service.stopping", "\(ceKinds)")
        let opened = try #require(
            cloudEvents.first { eventKind($0) == "backend.circuit.opened" }?.json["data"] as? [String: Any])
        #expect(opened["backend"] as? String == "rgw-flaky" && opened["threshold"] as? Int == 2)
        #expect((opened["last_error"] as? [String: Any])?["reason"] as? String == "connect")
        let closed = try #require(
            cloudEvents.first { eventKind($0) == "backend.circuit.closed" }?.json["data"] as? [String: Any])
        #expect((closed["open_duration_seconds"] as? Double ?? 0) >= 2)
        // Secrets stay secret: not in logs, not in metrics.
        let log = canary.daemon.log
        #expect(!log.contains(receiver.secret) && !log.contains("URLTOKENMARKER") && !log.contains("R0UT1NG"))
    }

    @Test func badReceiversAreRetriedDroppedOrWaitedForWithoutSlowingProbes() async throws {
        let rgw = try RGWEnvironment.load()
        let work = try Harness.temporaryDirectory("webhook-faults")
        let receiver = try WebhookReceiver(directory: work)
        try await receiver.start()
        defer { receiver.stop() }
        let latePort = try Harness.freePort()
        let late = try WebhookReceiver(directory: work, port: latePort, secret: receiver.secret)
        defer { late.stop() }
        let (canary, _) = try await RunningCanary.start(name: "webhook-faults") { port in
            """
            listen: 127.0.0.1:\(port)
            instance: whf
            probe: {interval: 1s, timeout: 500ms, key_prefix: .s3-canary-whf/}
            backends:
              - name: rgw
                endpoint: \(rgw.endpoint)
                bucket: \(RGWEnvironment.miscBucket)
                credentials: \(RGWEnvironment.credentialsFromEnvironment)
            webhooks:
              - {name: twice, url: "\(receiver.base)/fail-twice/a", secret: "\(receiver.secret)", \
            events: [service.started]}
              - {name: gone, url: "\(receiver.base)/gone/a", secret: "\(receiver.secret)", events: [service.started]}
              - {name: bad, url: "\(receiver.base)/bad/a", secret: "\(receiver.secret)", events: [service.started]}
              - {name: later, url: "\(receiver.base)/retry-after/a", secret: "\(receiver.secret)", \
            events: [service.started]}
              - {name: slow, url: "\(receiver.base)/slow/a", secret: "\(receiver.secret)", timeout: 15s, \
            events: [service.started]}
              - {name: down, url: "\(late.base)/ok/a", secret: "\(receiver.secret)", events: [service.started]}

            """
        }
        defer { canary.daemon.signal(SIGKILL) }
        let started = ContinuousClock.now
        let cyclesAtStart = try canary.metrics()[#"s3canary_probes_total{backend="rgw",result="success"}"#] ?? 0

        // 500, 500, 200: three attempts of one event, the same id each time.
        try await Harness.waitUntil(.seconds(20), "fail-twice delivered") {
            receiver.deliveries(path: "/fail-twice/a").contains { $0.status == 200 }
        }
        let twice = receiver.deliveries(path: "/fail-twice/a")
        #expect(twice.map(\.status) == [500, 500, 200])
        #expect(Set(twice.map(\.id)).count == 1)
        #expect(twice.allSatisfy { $0.standardWebhooksOK && $0.hmacOK })

        // Retry-After: 1 is honoured.
        try await Harness.waitUntil(.seconds(20), "retry-after delivered") {
            receiver.deliveries(path: "/retry-after/a").count == 2
        }
        let retried = receiver.deliveries(path: "/retry-after/a")
        #expect(retried[1].time - retried[0].time >= 0.9)

        // The slow receiver holds its own queue only: cycles keep their 1 s schedule meanwhile.
        try await Harness.waitUntil(.seconds(20), "slow receiver answered") {
            !receiver.deliveries(path: "/slow/a").isEmpty
        }
        let slowDone = ContinuousClock.now
        let cyclesDuringSlow =
            (try canary.metrics()[#"s3canary_probes_total{backend="rgw",result="success"}"#] ?? 0) - cyclesAtStart
        let elapsed = started.duration(to: slowDone).seconds
        #expect(
            cyclesDuringSlow >= elapsed - 2, "only \(cyclesDuringSlow) cycles in \(elapsed) s while a receiver was slow"
        )

        // The receiver that is down for 30 s gets the event once it is up.
        try await Task.sleep(until: started + .seconds(30))
        try await late.start()
        try await Harness.waitUntil(.seconds(90), "the late receiver got the event") {
            !late.deliveries(path: "/ok/a").isEmpty
        }
        #expect(late.deliveries(path: "/ok/a").allSatisfy { $0.standardWebhooksOK })

        let samples = try canary.metrics()
        #expect(samples[#"s3canary_webhook_dropped_total{webhook="gone",reason="gone"}"#] == 1)
        #expect(receiver.deliveries(path: "/gone/a").count == 1, "410 is not retried")
        #expect(samples[#"s3canary_webhook_dropped_total{webhook="bad",reason="rejected"}"#] == 1)
        #expect(
            samples[#"s3canary_webhook_deliveries_total{webhook="twice",event="service.started",result="failure"}"#]
                == 2)
        #expect(
            samples[#"s3canary_webhook_deliveries_total{webhook="twice",event="service.started",result="success"}"#]
                == 1)
        #expect(
            (samples[#"s3canary_webhook_deliveries_total{webhook="down",event="service.started",result="failure"}"#]
                ?? 0) >= 1)
        #expect(
            samples[#"s3canary_webhook_deliveries_total{webhook="down",event="service.started",result="success"}"#] == 1
        )
        let exposition = try Harness.http("\(canary.base)/metrics").body
        #expect(!exposition.contains(receiver.secret) && !exposition.contains("127.0.0.1:\(receiver.port)"))
        #expect(await canary.daemon.stop(SIGTERM) == 0)
    }

    @Test func aFullQueueDropsTheOldestAndCountsThem() async throws {
        let work = try Harness.temporaryDirectory("webhook-queue")
        let receiver = try WebhookReceiver(directory: work)
        try await receiver.start()
        defer { receiver.stop() }
        let metrics = try CanaryMetrics(version: "test")
        var webhook = WebhookConfiguration(name: "q", url: "\(receiver.base)/slow/q")
        webhook.queueSize = 3
        webhook.timeout = .seconds(15)
        let dispatcher = WebhookDispatcher(
            webhooks: [webhook], metrics: metrics, logger: .init(label: "test"), clock: ContinuousClock(),
            drainTimeout: .seconds(1))
        let running = Task { try await dispatcher.run() }
        func event() -> WebhookEvent {
            WebhookEvent(type: .serviceStarted, instance: "q", statusURL: "http://q/status")
        }
        dispatcher.publish(event())
        // Wait until the worker holds the first event (in flight at the slow receiver).
        try await Harness.waitUntil(.seconds(10), "first event in flight") {
            metrics.webhookQueueDepth.value(["q"]) == 0
        }
        for _ in 0..<9 { dispatcher.publish(event()) }
        #expect(metrics.webhookDropped.value(["q", "queue_full"]) == 6)
        #expect(metrics.webhookQueueDepth.value(["q"]) == 3)
        running.cancel()
        _ = await running.result
    }
}
