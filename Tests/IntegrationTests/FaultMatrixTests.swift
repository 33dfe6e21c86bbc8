import Foundation
import TestSupport
import Testing

/// The switchable fault proxy of `Tests/Fixtures/fault_proxy.py`, one listener per backend in front of RGW.
final class FaultInjector: @unchecked Sendable {
    let controlPort: Int
    let ports: [String: Int]
    private let daemon: Daemon

    init(names: [String], target: Int, directory: URL) async throws {
        self.controlPort = try Harness.freePort()
        var ports: [String: Int] = [:]
        for name in names { ports[name] = try Harness.freePort() }
        self.ports = ports
        self.daemon = try Daemon(
            "/usr/bin/env",
            [
                "python3", "-u", Harness.root.appendingPathComponent("Tests/Fixtures/fault_proxy.py").path,
                String(self.controlPort),
                "127.0.0.1", String(target),
            ] + names.map { "\($0)=\(ports[$0] ?? 0)" },
            log: directory.appendingPathComponent("fault-proxy.log")
        )
        try await Harness.waitForPort(self.controlPort, of: self.daemon, "fault proxy")
    }

    func set(_ name: String, _ mode: String) throws {
        let result = try Harness.run(
            "/usr/bin/env",
            ["curl", "-s", "-f", "-X", "POST", "--data", mode, "http://127.0.0.1:\(self.controlPort)/\(name)"])
        guard result.status == 0 else { throw HarnessError("switching \(name) to \(mode) failed: \(result.stderr)") }
    }

    func stop() { self.daemon.signal(SIGKILL) }
}

/// Every fault the issue names, on its own backend at once, next to a healthy backend: each faulted breaker opens
/// within its bound with the right reason, `/metrics` keeps answering, the healthy backend keeps its schedule, and
/// each outage sends exactly one opened and one closed event.
@Suite("Fault matrix against the real RGW", .tags(.faults), .serialized)
struct FaultMatrixTests {
    /// Backend name, proxy mode, and the `reason` label its errors must carry (`nil`: it must stay healthy).
    static let faults: [(name: String, mode: String, reason: String?)] = [
        ("hang", "hang", "timeout"),
        ("reset", "reset", "connection"),
        ("close-body", "close_body", "connection"),
        ("refuse", "refuse", "connect"),
        ("http-500", "500", "http_5xx"),
        ("slowdown", "slowdown", "throttled"),
        ("forbidden", "403", "auth"),
        ("corrupt", "corrupt", "integrity"),
        ("bad-length", "bad_length", "connection"),
        ("trickle", "trickle", "timeout"),
        ("latency", "latency:40", nil),
    ]

    static func errorCount(_ samples: Samples, backend: String, reason: String) -> Double {
        samples.values.filter { key, _ in
            key.hasPrefix("s3canary_operation_errors_total{") && key.contains("backend=\"\(backend)\"")
                && key.contains("reason=\"\(reason)\"")
        }.values.reduce(0, +)
    }

    @Test func everyFaultOpensItsBreakerWithTheRightReasonAndHeals() async throws {
        let rgw = try RGWEnvironment.load()
        let work = try Harness.temporaryDirectory("fault-matrix")
        let injector = try await FaultInjector(names: Self.faults.map(\.name), target: rgw.port, directory: work)
        defer { injector.stop() }
        let receiver = try WebhookReceiver(directory: work)
        try await receiver.start()
        defer { receiver.stop() }
        let secretFile = work.appendingPathComponent("secret")
        try Data(receiver.secret.utf8).write(to: secretFile)
        let interval = 1.0, threshold = 2, timeout = 0.5, openTimeout = 2.0
        let backends = Self.faults.map { fault in
            """
              - name: \(fault.name)
                endpoint: http://127.0.0.1:\(injector.ports[fault.name] ?? 0)
                bucket: \(RGWEnvironment.pathBucket)
                credentials: \(RGWEnvironment.credentialsFromEnvironment)
            """
        }.joined(separator: "\n")
        let (canary, _) = try await RunningCanary.start(name: "fault-matrix") { port in
            """
            listen: 127.0.0.1:\(port)
            instance: faults
            probe: {interval: \(Int(interval * 1000))ms, timeout: \(Int(timeout * 1000))ms, \
            key_prefix: .s3-canary-faults/}
            breaker: {failure_threshold: \(threshold), open_timeout: \(Int(openTimeout))s}
            backends:
              - name: direct
                endpoint: \(rgw.endpoint)
                bucket: \(RGWEnvironment.miscBucket)
                credentials: \(RGWEnvironment.credentialsFromEnvironment)
            \(backends)
            webhooks:
              - {name: ce, url: "\(receiver.base)/ok/ce", secret_file: \(secretFile.path),
                 events: [backend.circuit.opened, backend.circuit.closed, integrity.corruption_detected]}

            """
        }
        defer { canary.daemon.signal(SIGKILL) }
        try await Harness.waitUntil(.seconds(30), "a first cycle of every backend") {
            try Harness.http("\(canary.base)/readyz").status == 200
        }
        let before = try canary.metrics()
        #expect(before[#"s3canary_circuit_breaker_state{backend="hang"}"#] == 0)

        // Inject every fault at once.
        let injected = ContinuousClock.now
        for fault in Self.faults { try injector.set(fault.name, fault.mode) }
        let directBefore = before[#"s3canary_probes_total{backend="direct",result="success"}"#] ?? 0
        var openedAfter: [String: Duration] = [:]
        var scrapeSeconds: [Double] = []
        let failing = Self.faults.filter { $0.reason != nil }.map(\.name)
        // A breaker must open after `threshold` failed cycles, each at most an interval (with jitter) plus a timed-out
        // operation and its timed-out cleanup, plus the 200 ms poll and a slow machine's slack.
        let bound = Duration.seconds(Double(threshold) * (interval * 1.1 + 2 * timeout) + 2)
        while ContinuousClock.now - injected < bound + .seconds(5), openedAfter.count < failing.count {
            let scrape = try Harness.run(
                "/usr/bin/env", ["curl", "-s", "-m", "5", "-w", "\n%{time_total}", "\(canary.base)/metrics"])
            var lines = scrape.stdout.components(separatedBy: "\n")
            scrapeSeconds.append(Double(lines.popLast() ?? "") ?? 99)
            let samples = Samples(lines.joined(separator: "\n"))
            for name in failing where openedAfter[name] == nil {
                if samples[#"s3canary_circuit_breaker_state{backend="\#(name)"}"#] == 1 {
                    openedAfter[name] = ContinuousClock.now - injected
                }
            }
            try await Task.sleep(for: .milliseconds(200))
        }
        let faulted = ContinuousClock.now - injected
        // Hold the faults a little longer: open breakers must send no more events.
        try await Task.sleep(for: .seconds(3))
        let during = try canary.metrics()
        let figures = Self.faults.map { fault in
            "\(fault.name): opened after \(openedAfter[fault.name].map { "\($0)" } ?? "never")"
        }.joined(separator: "\n")
        let sorted = scrapeSeconds.sorted()
        let report =
            figures
            + "\n/metrics while faulted: \(sorted.count) scrapes, "
            + "median \(sorted[sorted.count / 2]) s, max \(sorted.last ?? 0) s\n"
        try Data(report.utf8).write(to: Harness.outputDirectory.appendingPathComponent("fault-matrix.txt"))

        for fault in Self.faults {
            let state = during[#"s3canary_circuit_breaker_state{backend="\#(fault.name)"}"#]
            if let reason = fault.reason {
                #expect(
                    openedAfter[fault.name].map { $0 <= bound } == true,
                    "\(fault.name) opened within \(bound): \(report)")
                #expect(state == 1 || state == 2, "\(fault.name) is open or probing")
                let errors = during.values.filter {
                    $0.key.hasPrefix("s3canary_operation_errors_total{backend=\"\(fault.name)\"")
                }
                #expect(
                    Self.errorCount(during, backend: fault.name, reason: reason) > 0,
                    "\(fault.name) errors carry reason \(reason): \(errors)")
            } else {
                #expect(state == 0, "\(fault.name) stays closed")
                let sum = during[#"s3canary_operation_duration_seconds_sum{backend="latency",operation="head"}"#] ?? 0
                let count =
                    during[#"s3canary_operation_duration_seconds_count{backend="latency",operation="head"}"#] ?? 0
                #expect(count > 0 && sum / count > 0.02, "the injected latency shows in the HEAD histogram")
            }
        }
        #expect((during[#"s3canary_integrity_failures_total{backend="corrupt"}"#] ?? 0) >= 1)
        // /metrics answered every scrape, typically well under 100 ms, while backends hung.
        #expect(sorted.last.map { $0 < 2 } == true, "\(report)")
        #expect(sorted[sorted.count / 2] < 0.1, "\(report)")
        // The healthy backend kept its schedule: about one successful cycle per interval.
        let window = (faulted + .seconds(3)) / .seconds(1)
        let directDuring = (during[#"s3canary_probes_total{backend="direct",result="success"}"#] ?? 0) - directBefore
        #expect(directDuring >= (window / interval) * 0.7, "direct: \(directDuring) cycles in \(window) s")
        #expect(during[#"s3canary_circuit_breaker_state{backend="direct"}"#] == 0)

        // Heal everything: every breaker closes again.
        for fault in Self.faults { try injector.set(fault.name, "pass") }
        try await Harness.waitUntil(.seconds(openTimeout + 10 * interval + 10), "every breaker closed") {
            let samples = try canary.metrics()
            return Self.faults.allSatisfy { samples[#"s3canary_circuit_breaker_state{backend="\#($0.name)"}"#] == 0 }
        }
        try await Harness.waitUntil(.seconds(15), "the closed events") {
            let kinds = receiver.deliveries.map(eventKind)
            return kinds.filter { $0 == "backend.circuit.closed" }.count >= failing.count
        }
        try await Task.sleep(for: .seconds(2))  // let any duplicate arrive before counting
        var events: [String: [String: Set<String>]] = [:]
        for delivery in receiver.deliveries where delivery.status == 200 {
            let backend = (delivery.json["data"] as? [String: Any])?["backend"] as? String ?? "?"
            events[backend, default: [:]][eventKind(delivery), default: []].insert(delivery.id)
        }
        for name in failing {
            #expect(events[name]?["backend.circuit.opened"]?.count == 1, "\(name): \(events[name] ?? [:])")
            #expect(events[name]?["backend.circuit.closed"]?.count == 1, "\(name): \(events[name] ?? [:])")
        }
        #expect((events["corrupt"]?["integrity.corruption_detected"]?.count ?? 0) >= 1)
        #expect(events["latency"] == nil && events["direct"] == nil)
        #expect(receiver.deliveries.allSatisfy { $0.standardWebhooksOK && $0.cloudEventOK != false })
        #expect(canary.daemon.isRunning)
    }
}
