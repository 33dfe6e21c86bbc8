import Foundation
import TestSupport
import Testing

/// At-least-once across crashes (state_dir), with real processes killed by SIGKILL, the real fault proxy in front of
/// RGW and the real webhook receiver: events accepted while the receiver is down arrive after a restart, an outage
/// survives a restart as one `opened` and one `closed`, fifty kill -9 during writes lose nothing and never re-send
/// an event under another id, and a corrupt store or a read-only directory never stops the probing.
@Suite("Durable outbox and remembered breakers across SIGKILL", .tags(.slow), .serialized)
struct OutboxCrashTests {
    /// One s3-canary process of a test, on a fixed config file (a restart reads the same file and state_dir).
    struct Process {
        let daemon: Daemon
        let port: Int
        let log: URL
        var base: String { "http://127.0.0.1:\(self.port)" }

        static func start(config: URL, port: Int, log: URL, waitForHealth: Bool = true) async throws -> Process {
            let daemon = try Daemon(Harness.binary, ["run", "--config", config.path, "--log-level", "debug"], log: log)
            let process = Process(daemon: daemon, port: port, log: log)
            if waitForHealth {
                try await Harness.waitUntil(.seconds(30), "/healthz") {
                    guard daemon.isRunning else { throw HarnessError("s3-canary exited: \(daemon.log)") }
                    return try Harness.http("\(process.base)/healthz", timeout: 1).status == 200
                }
            }
            return process
        }

        func metric(_ name: String) throws -> Double? {
            Samples(try Harness.http("\(self.base)/metrics").body)[name]
        }

        var text: String { (try? String(contentsOf: self.log, encoding: .utf8)) ?? "" }

        /// The ids the outbox stored, in order (its debug lines), and whether the store opened.
        var acceptedIDs: [String] {
            self.text.split(separator: "\n").filter { $0.contains("events accepted into the outbox") }.flatMap { line in
                guard let range = line.range(of: "outbox.event_ids=") else { return [String]() }
                let ids = line[range.upperBound...].prefix { $0 != " " }
                return ids.split(separator: ",").map(String.init)
            }
        }
    }

    static func config(
        directory: URL, port: Int, proxyPort: Int, receiver: WebhookReceiver?, interval: String = "300ms",
        timeout: String = "250ms", openTimeout: String = "1s", stateDir: String? = nil
    ) throws -> URL {
        let webhook =
            receiver.map {
                """
                webhooks:
                  - {name: receiver, url: "\($0.base)/ok/outbox", secret: "\($0.secret)", \
                events: ["backend.circuit.*"], max_retries: 100, max_age: 1h}
                """
            } ?? ""
        let text = """
            listen: 127.0.0.1:\(port)
            instance: outbox
            state_dir: \(stateDir ?? directory.appendingPathComponent("state").path)
            probe: {interval: \(interval), timeout: \(timeout), key_prefix: .s3-canary-outbox/, \
            operations: [put, get, delete]}
            breaker: {failure_threshold: 1, open_timeout: \(openTimeout)}
            backends:
              - name: flaky
                endpoint: http://127.0.0.1:\(proxyPort)
                bucket: \(RGWEnvironment.miscBucket)
                credentials: \(RGWEnvironment.credentialsFromEnvironment)
            \(webhook)
            """
        let url = directory.appendingPathComponent("s3-canary.yaml")
        try Data(text.utf8).write(to: url)
        return url
    }

    /// What most tests here start from: RGW behind the fault proxy (listener `flaky`), a webhook receiver (up unless
    /// `receiverUp` is false), the port and the config file every restart reads again.
    struct Rig {
        let directory: URL
        let proxy: FaultInjector
        let receiver: WebhookReceiver
        let port: Int
        let config: URL

        static func make(
            _ name: String, receiverUp: Bool = true, interval: String = "300ms", timeout: String = "250ms",
            openTimeout: String = "1s"
        ) async throws -> Rig {
            let rgw = try RGWEnvironment.load()
            let directory = try Harness.temporaryDirectory(name)
            let proxy = try await FaultInjector(names: ["flaky"], target: rgw.port, directory: directory)
            let receiver = try WebhookReceiver(directory: directory)
            do {
                if receiverUp { try await receiver.start() }
                let port = try Harness.freePort()
                let config = try OutboxCrashTests.config(
                    directory: directory, port: port, proxyPort: proxy.ports["flaky"] ?? 0, receiver: receiver,
                    interval: interval, timeout: timeout, openTimeout: openTimeout)
                return Rig(directory: directory, proxy: proxy, receiver: receiver, port: port, config: config)
            } catch {
                proxy.stop()
                receiver.stop()
                throw error
            }
        }

        func stop() {
            self.proxy.stop()
            self.receiver.stop()
        }

        /// Starts the first process and fails its backend until the receiver has the `opened`; the process runs on.
        func startWithOpenedDelivered() async throws -> Process {
            let first = try await Process.start(
                config: self.config, port: self.port, log: self.directory.appendingPathComponent("first.log"))
            try self.proxy.set("flaky", "500")
            // Delivered and its delivery recorded: a SIGKILL between the receiver's 2xx and the outbox's delete would
            // send it again after the restart, under the same id (at least once), which is not what these tests ask.
            try await Harness.waitUntil(.seconds(20), "opened delivered and out of the outbox") {
                let pending = try first.metric("s3canary_outbox_events") ?? 1
                return OutboxCrashTests.breakerEvent("backend.circuit.opened", self.receiver) != nil && pending == 0
            }
            return first
        }
    }

    static func breakerEvents(_ receiver: WebhookReceiver) -> [WebhookReceiver.Delivery] {
        receiver.deliveries.filter { ($0.json["type"] as? String ?? "").hasPrefix("backend.circuit.") }
    }

    /// The first delivered breaker event of `type`.
    static func breakerEvent(_ type: String, _ receiver: WebhookReceiver) -> WebhookReceiver.Delivery? {
        Self.breakerEvents(receiver).first { $0.json["type"] as? String == type }
    }

    /// Receiver down; the breaker opens, closes and opens again (three events, all pending); SIGKILL; restart;
    /// receiver up: each of the three arrives exactly once, under the id the first process stored, in order, and
    /// the second outage, still on, is not announced again.
    @Test func eventsPendingAtSIGKILLArriveOnceAfterTheRestart() async throws {
        let rig = try await Rig.make("outbox-kill", receiverUp: false)
        defer { rig.stop() }
        let (directory, proxy, receiver, port, config) = (rig.directory, rig.proxy, rig.receiver, rig.port, rig.config)
        let first = try await Process.start(
            config: config, port: port, log: directory.appendingPathComponent("first.log"))
        defer { first.daemon.signal(SIGKILL) }
        try proxy.set("flaky", "500")
        try await Harness.waitUntil(.seconds(20), "breaker open") {
            try first.metric(#"s3canary_circuit_breaker_state{backend="flaky"}"#) == 1
        }
        try proxy.set("flaky", "pass")
        try await Harness.waitUntil(.seconds(20), "breaker closed") {
            try first.metric(#"s3canary_circuit_breaker_state{backend="flaky"}"#) == 0
        }
        try proxy.set("flaky", "500")
        try await Harness.waitUntil(.seconds(20), "three breaker events in the outbox") {
            try first.metric(#"s3canary_circuit_breaker_state{backend="flaky"}"#) != 0
                && (try first.metric("s3canary_outbox_events") ?? 0) >= 3
        }
        first.daemon.signal(SIGKILL)
        let stored = first.acceptedIDs
        #expect(stored.count == 3, "\(stored)")

        try await receiver.start()
        let second = try await Process.start(
            config: config, port: port, log: directory.appendingPathComponent("second.log"))
        defer { second.daemon.signal(SIGKILL) }
        try await Harness.waitUntil(.seconds(30), "three breaker events delivered") {
            Self.breakerEvents(receiver).count >= 3
        }
        try await Task.sleep(for: .seconds(2))  // a duplicate would arrive by now
        let delivered = Self.breakerEvents(receiver)
        #expect(delivered.map(\.id) == stored, "each stored event once, in order")
        #expect(
            delivered.map { $0.json["type"] as? String ?? "" } == [
                "backend.circuit.opened", "backend.circuit.closed", "backend.circuit.opened",
            ])
        #expect(delivered.allSatisfy { $0.standardWebhooksOK }, "resumed deliveries are signed like any other")
        #expect(second.text.contains("resuming undelivered events from the outbox"))
        #expect(try second.metric("s3canary_outbox_events") == 0)
    }

    /// SIGKILL during an outage, restart while the backend is still down, recover: one `opened` and one `closed`
    /// in all, the `closed` reporting the whole outage, restart included.
    @Test func anOutageSurvivesARestartAsOneOpenedAndOneClosed() async throws {
        let rig = try await Rig.make("outbox-outage")
        defer { rig.stop() }
        let (directory, proxy, receiver, port, config) = (rig.directory, rig.proxy, rig.receiver, rig.port, rig.config)
        let first = try await rig.startWithOpenedDelivered()
        defer { first.daemon.signal(SIGKILL) }
        let openedAt = Date()
        first.daemon.signal(SIGKILL)
        try await Task.sleep(for: .seconds(2))
        let second = try await Process.start(
            config: config, port: port, log: directory.appendingPathComponent("second.log"))
        defer { second.daemon.signal(SIGKILL) }
        #expect(try second.metric(#"s3canary_circuit_breaker_state{backend="flaky"}"#) != 0, "resumes open")
        try await Task.sleep(for: .seconds(3))  // its half-open probes fail: still the same outage
        try proxy.set("flaky", "pass")
        try await Harness.waitUntil(.seconds(20), "closed delivered") {
            Self.breakerEvent("backend.circuit.closed", receiver) != nil
        }
        let closedAt = Date()
        try await Task.sleep(for: .seconds(1))
        let types = Self.breakerEvents(receiver).map { $0.json["type"] as? String ?? "" }
        #expect(types.filter { $0 == "backend.circuit.opened" }.count == 1, "\(types)")
        #expect(types.filter { $0 == "backend.circuit.closed" }.count == 1, "\(types)")
        let closed = try #require(Self.breakerEvent("backend.circuit.closed", receiver))
        let data = closed.json["data"] as? [String: Any] ?? [:]
        let seconds = try #require(data["open_duration_seconds"] as? Double, "\(closed.json)")
        let outage = closedAt.timeIntervalSince(openedAt)
        #expect(
            seconds >= outage - 1.5 && seconds <= outage + 1.5, "reported \(seconds) s for an outage of \(outage) s")
        #expect(second.text.contains("state.open_outages=1"))
    }

    /// A backend removed from the configuration while a killed process had its breaker open: the next process sends
    /// the outage's `closed`, saying why, and nothing else about it.
    @Test func aBackendRemovedWhileOpenGetsItsClosed() async throws {
        let rig = try await Rig.make("outbox-removed")
        defer { rig.stop() }
        let (directory, receiver, port, config) = (rig.directory, rig.receiver, rig.port, rig.config)
        let first = try await rig.startWithOpenedDelivered()
        defer { first.daemon.signal(SIGKILL) }
        first.daemon.signal(SIGKILL)
        let renamed = try String(contentsOf: config, encoding: .utf8).replacingOccurrences(
            of: "name: flaky", with: "name: steady")
        try Data(renamed.utf8).write(to: config)
        let second = try await Process.start(
            config: config, port: port, log: directory.appendingPathComponent("second.log"))
        defer { second.daemon.signal(SIGKILL) }
        try await Harness.waitUntil(.seconds(20), "closed delivered") {
            Self.breakerEvent("backend.circuit.closed", receiver) != nil
        }
        let closed = try #require(Self.breakerEvent("backend.circuit.closed", receiver))
        let data = closed.json["data"] as? [String: Any] ?? [:]
        #expect(
            "\(closed.json)".contains("backend removed from the configuration while its breaker was open"),
            "\(closed.json)")
        #expect(data["backend"] as? String == "flaky" || "\(closed.json)".contains("flaky"), "\(closed.json)")
        #expect((data["open_duration_seconds"] as? Double ?? 0) > 0, "\(closed.json)")
    }

    /// Fifty kill -9 at random moments while a flapping backend makes events: the store opens every time, every
    /// event the outbox accepted is delivered, and no event is ever delivered under two ids.
    @Test func fiftyKillNinesLoseNothingAndNeverRenameAnEvent() async throws {
        let rig = try await Rig.make("outbox-loop", interval: "150ms", timeout: "120ms", openTimeout: "200ms")
        defer { rig.stop() }
        let (directory, proxy, receiver, port, config) = (rig.directory, rig.proxy, rig.receiver, rig.port, rig.config)
        try proxy.set("flaky", "flap:300")
        var processes: [Process] = []
        var generator = SystemRandomNumberGenerator()
        for round in 0..<50 {
            let process = try await Process.start(
                config: config, port: port, log: directory.appendingPathComponent("round-\(round).log"))
            processes.append(process)
            try await Task.sleep(for: .milliseconds(Int.random(in: 50...700, using: &generator)))
            process.daemon.signal(SIGKILL)
            try await Harness.waitUntil(.seconds(10), "round \(round) dead") { !process.daemon.isRunning }
        }
        try proxy.set("flaky", "pass")
        let last = try await Process.start(
            config: config, port: port, log: directory.appendingPathComponent("last.log"))
        defer { last.daemon.signal(SIGKILL) }
        processes.append(last)
        try await Harness.waitUntil(.seconds(60), "outbox drained") {
            try last.metric("s3canary_outbox_events") == 0
                && last.metric(#"s3canary_circuit_breaker_state{backend="flaky"}"#) == 0
        }
        try await Task.sleep(for: .seconds(1))

        for (index, process) in processes.enumerated() {
            #expect(process.text.contains("state store open"), "start \(index) did not open the store")
            #expect(!process.text.contains("state store unusable"), "start \(index): \(process.text.suffix(2000))")
        }
        let accepted = Set(processes.flatMap(\.acceptedIDs))
        let delivered = Self.breakerEvents(receiver)
        let deliveredIDs = Set(delivered.map(\.id))
        #expect(accepted.count >= 20, "only \(accepted.count) events were made: the loop proves little")
        let lost = accepted.subtracting(deliveredIDs).filter { id in
            // Only breaker events go to this receiver; service events are accepted for no webhook.
            processes.contains { $0.text.contains(id) && $0.text.contains("backend.circuit") }
        }
        #expect(lost.isEmpty, "accepted but never delivered: \(lost.sorted().prefix(5))")
        // One event, one id: the same transition (type, time, from, to) never comes under two ids.
        var idsByEvent: [String: Set<String>] = [:]
        for delivery in delivered {
            let json = delivery.json
            let data = json["data"] as? [String: Any] ?? [:]
            let key = "\(json["type"] ?? "") \(json["time"] ?? "") \(data["from"] ?? "") \(data["to"] ?? "")"
            idsByEvent[key, default: []].insert(delivery.id)
        }
        let renamed = idsByEvent.filter { $0.value.count > 1 }
        #expect(renamed.isEmpty, "the same event under several ids: \(renamed.prefix(3))")
        let output = """
            # Outbox kill -9 loop

            50 SIGKILLs at random moments (50–700 ms after /healthz) with a backend flapping every 300 ms, then one
            last start that drains the outbox.

            - events accepted into the outbox (all processes): \(accepted.count)
            - breaker events delivered (with retries of the same id): \(delivered.count), distinct ids \(deliveredIDs.count)
            - accepted breaker events never delivered: \(lost.count)
            - events delivered under more than one id: \(renamed.count)

            """
        try Data(output.utf8).write(to: Harness.outputDirectory.appendingPathComponent("outbox-kill-loop.md"))
    }

    /// A corrupt state file and a read-only state directory: the process starts, probes, says why, and counts it.
    @Test func aCorruptStoreAndAReadOnlyDirectoryNeverStopTheProbing() async throws {
        let rgw = try RGWEnvironment.load()
        let directory = try Harness.temporaryDirectory("outbox-bad-state")
        let proxy = try await FaultInjector(names: ["flaky"], target: rgw.port, directory: directory)
        defer { proxy.stop() }
        let corruptDir = directory.appendingPathComponent("corrupt")
        try FileManager.default.createDirectory(at: corruptDir, withIntermediateDirectories: true)
        try Data(String(repeating: "not a database ", count: 500).utf8).write(
            to: corruptDir.appendingPathComponent("s3-canary-state.sqlite"))
        let readOnly = directory.appendingPathComponent("read-only")
        let source = directory.appendingPathComponent("read-only-source")
        for url in [readOnly, source] {
            try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        }
        for arguments in [["--bind", source.path, readOnly.path], ["-o", "remount,bind,ro", readOnly.path]] {
            let mount = try Harness.run("/usr/bin/env", ["mount"] + arguments)
            try #require(mount.status == 0, "mount \(arguments): \(mount.stderr) (the test needs root)")
        }
        defer { _ = try? Harness.run("/usr/bin/env", ["umount", readOnly.path]) }

        for (name, stateDir, kind, says) in [
            ("corrupt", corruptDir.path, "corrupt", "state store unusable as found"),
            ("read-only", readOnly.path, "unwritable", "running without a state store"),
        ] {
            let port = try Harness.freePort()
            let work = directory.appendingPathComponent(name + "-run")
            try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
            let config = try Self.config(
                directory: work, port: port, proxyPort: proxy.ports["flaky"] ?? 0, receiver: nil, stateDir: stateDir)
            let process = try await Process.start(config: config, port: port, log: work.appendingPathComponent("log"))
            defer { process.daemon.signal(SIGKILL) }
            try await Harness.waitUntil(.seconds(20), "\(name): cycles succeed") {
                (try process.metric(#"s3canary_probes_total{backend="flaky",result="success"}"#) ?? 0) >= 2
            }
            #expect(try process.metric("s3canary_state_problems_total{kind=\"\(kind)\"}") == 1, "\(name)")
            #expect(process.text.contains(says), "\(name): \(process.text.prefix(3000))")
            #expect(process.daemon.isRunning)
        }
        let aside = try FileManager.default.contentsOfDirectory(atPath: corruptDir.path)
        #expect(aside.contains { $0.hasPrefix("s3-canary-state.sqlite.corrupt-") }, "\(aside)")
        #expect(aside.contains("s3-canary-state.sqlite"), "a fresh store replaced it: \(aside)")
    }
}
