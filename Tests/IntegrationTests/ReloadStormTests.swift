import Foundation
import TestSupport
import Testing

/// The real binary against the real RGW: 30 rounds of six concurrent `POST /-/reload` plus two SIGHUPs, the file
/// alternating between two backend sets and intervals. Afterwards exactly the last file's backends run, each at one
/// cycle per interval (not two), their series exist and no removed backend's series remain, and a backend whose
/// breaker was open before the storm is still open after it.
@Suite("Reload storm")
struct ReloadStormTests {
    /// File A: interval 1 s, backends shared, a1, a2 and down.
    static let backendsA = ["shared", "a1", "a2"]
    /// File B: interval 2 s (so `shared`, unchanged by name, is rebuilt on every switch), backends shared, b1, down.
    static let backendsB = ["shared", "b1"]
    static let rounds = 30
    static let postsPerRound = 6
    /// Rounds that also send a SIGHUP beside their POSTs.
    static let hangupRounds: Set<Int> = [10, 20]

    /// One file of the storm. `down` is the same entry in both files (its own interval, its own breaker), so a
    /// reload must keep it, open breaker and all; every other backend inherits the file's interval.
    static func config(
        port: Int, interval: String, backends: [String], downPort: Int, rgw: RGWEnvironment, prefix: String
    ) -> String {
        var text = """
            listen: 127.0.0.1:\(port)
            instance: storm
            probe: {interval: \(interval), timeout: 500ms, key_prefix: \(prefix)}
            backends:

            """
        for name in backends {
            text += """
                  - name: \(name)
                    endpoint: \(rgw.endpoint)
                    bucket: \(RGWEnvironment.miscBucket)
                    credentials: \(RGWEnvironment.credentialsFromEnvironment)

                """
        }
        text += """
              - name: down
                endpoint: http://127.0.0.1:\(downPort)
                bucket: \(RGWEnvironment.miscBucket)
                credentials: \(RGWEnvironment.credentialsFromEnvironment)
                probe: {interval: 1s}
                breaker: {failure_threshold: 1, open_timeout: 10m}

            """
        return text
    }

    /// Replaces the file in one step (temporary file + rename): a reload never reads half a file.
    static func writeAtomically(_ text: String, to path: URL) throws {
        let temporary = path.deletingLastPathComponent()
            .appendingPathComponent(".\(path.lastPathComponent).\(UUID().uuidString.prefix(8))")
        try Data(text.utf8).write(to: temporary)
        guard rename(temporary.path, path.path) == 0 else {
            throw HarnessError("renaming \(temporary.path) to \(path.path) failed: errno \(errno)")
        }
    }

    /// The backends that have an `s3canary_probe_success` series.
    static func backendsWithSeries(_ samples: Samples) -> Set<String> {
        let head = "s3canary_probe_success{backend=\""
        let tail = "\"}"
        return Set(
            samples.values.keys.compactMap { key -> String? in
                guard key.hasPrefix(head), key.hasSuffix(tail) else { return nil }
                return String(key.dropFirst(head.count).dropLast(tail.count))
            }
        )
    }

    /// Cycles of one backend so far: `s3canary_probes_total` summed over its results (success, failure, skipped).
    static func cycles(_ samples: Samples, _ backend: String) -> Double {
        samples.values.filter { key, _ in key.hasPrefix("s3canary_probes_total{backend=\"\(backend)\",") }.values
            .reduce(0, +)
    }

    struct Answer: Sendable {
        var status: Int?
        var body: String
    }

    /// Collects the answers of the threads of one round and hands them over once all are in.
    final class Answers: @unchecked Sendable {
        private let lock = NSLock()
        private var answers: [Answer?]
        private var missing: Int
        private let done: @Sendable ([Answer]) -> Void

        init(count: Int, done: @escaping @Sendable ([Answer]) -> Void) {
            self.answers = Array(repeating: nil, count: count)
            self.missing = count
            self.done = done
        }

        func put(_ answer: Answer, at index: Int) {
            self.lock.lock()
            self.answers[index] = answer
            self.missing -= 1
            let complete = self.missing == 0 ? self.answers.map { $0 ?? Answer(status: nil, body: "no answer") } : nil
            self.lock.unlock()
            if let complete { self.done(complete) }
        }
    }

    /// Runs `work(0)`…`work(count - 1)` at once, each on a thread of its own, and returns their answers in order.
    /// `Harness.http` blocks on curl: on the cooperative pool the requests would queue behind each other (and starve
    /// the other tests), so they get plain threads.
    static func onThreads(_ count: Int, _ work: @escaping @Sendable (Int) -> Answer) async -> [Answer] {
        await withCheckedContinuation { (continuation: CheckedContinuation<[Answer], Never>) in
            let answers = Answers(count: count) { continuation.resume(returning: $0) }
            for index in 0..<count {
                Thread { answers.put(work(index), at: index) }.start()
            }
        }
    }

    @Test func concurrentReloadsAndHangupsLeaveExactlyTheLastFilesBackendsEachWithOneRunnerAndKeepAnOpenBreaker()
        async throws
    {
        let rgw = try RGWEnvironment.load()
        let prefix = ".s3-canary-storm-\(UUID().uuidString.prefix(6).lowercased())/"
        // A released port: nothing listens there, so `down` fails fast (connection refused) and opens at once.
        let downPort = try Harness.freePort()
        let (canary, _) = try await RunningCanary.start(name: "reload-storm") { port in
            Self.config(
                port: port, interval: "1s", backends: Self.backendsA, downPort: downPort, rgw: rgw, prefix: prefix)
        }
        defer { canary.daemon.signal(SIGKILL) }
        let fileA = Self.config(
            port: canary.port, interval: "1s", backends: Self.backendsA, downPort: downPort, rgw: rgw, prefix: prefix
        )
        let fileB = Self.config(
            port: canary.port, interval: "2s", backends: Self.backendsB, downPort: downPort, rgw: rgw, prefix: prefix
        )
        let downState = "s3canary_circuit_breaker_state{backend=\"down\"}"
        let downOpened = "s3canary_circuit_breaker_transitions_total{backend=\"down\",from=\"closed\",to=\"open\"}"
        let downProbing = "s3canary_circuit_breaker_transitions_total{backend=\"down\",from=\"open\",to=\"half_open\"}"

        try await Harness.waitUntil(.seconds(20), "A's backends probed and down's breaker open") {
            let samples = try canary.metrics()
            return Self.backendsA.allSatisfy { samples["s3canary_probe_success{backend=\"\($0)\"}"] == 1 }
                && samples[downState] == 1
        }
        let before = try canary.metrics()
        #expect(before[downOpened] == 1, "down opened once before the storm")

        // The storm: every round replaces the file, then fires six POSTs at once (and, twice, a SIGHUP beside them).
        // A round's POSTs all end before the next file is written, so each must have loaded this round's file.
        let daemon = canary.daemon
        let reloadURL = "\(canary.base)/-/reload"
        var failures: [String] = []
        for round in 0..<Self.rounds {
            let useA = round % 2 == 0
            try Self.writeAtomically(useA ? fileA : fileB, to: canary.configPath)
            let posts = Self.postsPerRound
            let hangup = Self.hangupRounds.contains(round)
            let answers = await Self.onThreads(hangup ? posts + 1 : posts) { index in
                if index == posts {
                    daemon.signal(SIGHUP)
                    return Answer(status: nil, body: "SIGHUP sent")
                }
                do {
                    let (status, body) = try Harness.http(reloadURL, method: "POST", timeout: 15)
                    return Answer(status: status, body: body)
                } catch {
                    return Answer(status: nil, body: "\(error)")
                }
            }
            let expected = "reloaded: \(useA ? Self.backendsA.count + 1 : Self.backendsB.count + 1) backends"
            for (index, answer) in answers.prefix(posts).enumerated()
            where answer.status != 200 || !answer.body.contains(expected) {
                failures.append(
                    """
                    round \(round) (\(useA ? "A" : "B")) POST \(index): \
                    \(answer.status.map(String.init) ?? "no answer") \(answer.body)
                    """
                )
            }
        }
        #expect(failures.isEmpty, "every POST answers 200 with its round's file: \(failures.prefix(10))")
        #expect(daemon.isRunning)

        // The last round wrote B. Give replaced runners time to finish their last cycles and B's runners three of
        // their 2 s intervals; then every reload is over and nothing changes any more.
        #expect(Self.rounds % 2 == 0, "an even number of rounds ends on an odd round, which writes B")
        try await Task.sleep(for: .seconds(6))
        let started = ContinuousClock.now
        let after = try canary.metrics()
        let expectedBackends = Set(Self.backendsB + ["down"])
        #expect(Self.backendsWithSeries(after) == expectedBackends, "exactly B's backends have series")
        for removed in ["a1", "a2"] {
            let stale = after.values.keys.filter { $0.contains("backend=\"\(removed)\"") }.sorted()
            #expect(stale.isEmpty, "no series of removed backend \(removed) remain: \(stale.prefix(5))")
        }
        #expect(after["s3canary_config_last_reload_successful"] == 1)
        for name in Self.backendsB {
            #expect(after["s3canary_probe_success{backend=\"\(name)\"}"] == 1, "\(name) probes successfully")
        }
        #expect(after[downState] == 1, "down's breaker is still open after the storm")
        #expect(after[downOpened] == 1, "down's breaker never closed and opened again (it was never rebuilt fresh)")
        #expect(after[downProbing] == 0, "down's breaker never went half-open")

        // One cycle per interval, not two: a backend with two runners (an old one left behind by racing reloads)
        // would count twice as many.
        try await Task.sleep(for: .seconds(10))
        let later = try canary.metrics()
        let elapsed = (ContinuousClock.now - started) / .seconds(1)
        for (name, interval) in [("shared", 2.0), ("b1", 2.0), ("down", 1.0)] {
            let increase = Self.cycles(later, name) - Self.cycles(after, name)
            #expect(
                increase >= 2 && increase <= elapsed / interval + 2,
                "\(name): \(increase) cycles in \(elapsed) s at one per \(interval) s"
            )
        }
        #expect(later[downState] == 1)

        #expect(await canary.daemon.stop() == 0)
        // Every reload ran and succeeded: 180 POSTs and the two SIGHUPs.
        let log = canary.daemon.log
        let reloaded = log.components(separatedBy: "\n").filter { $0.contains("configuration reloaded") }.count
        #expect(reloaded == Self.rounds * Self.postsPerRound + Self.hangupRounds.count, "reloads logged")
        #expect(!log.contains("configuration reload failed"))
        #expect(try listKeysIndependently(rgw, bucket: RGWEnvironment.miscBucket, prefix: prefix).isEmpty)
    }
}
