import Foundation
import TestSupport
import Testing

@Suite("s3-canary demo")
struct DemoTests {
    @Test func demoServesMetricsAndItsFlakyBreakerRoundTripsWithinThreeMinutes() async throws {
        let work = try Harness.temporaryDirectory("demo")
        let port = try Harness.freePort()
        let demo = try Daemon(
            Harness.binary, ["demo", "--listen", "127.0.0.1:\(port)"], log: work.appendingPathComponent("demo.log"))
        defer { demo.signal(SIGKILL) }
        let base = "http://127.0.0.1:\(port)"
        try await Harness.waitUntil(.seconds(30), "demo /metrics") { try Harness.http("\(base)/metrics").status == 200 }
        try await Harness.waitUntil(.seconds(180), "demo-flaky open → closed") {
            let samples = Samples(try Harness.http("\(base)/metrics").body)
            return samples[#"s3canary_circuit_breaker_transitions_total{backend="demo-flaky",from="closed",to="open"}"#]
                ?? 0 >= 1
                && samples[
                    #"s3canary_circuit_breaker_transitions_total{backend="demo-flaky",from="half_open",to="closed"}"#]
                    ?? 0 >= 1
        }
        let samples = Samples(try Harness.http("\(base)/metrics").body)
        #expect(samples[#"s3canary_probe_success{backend="demo-stable"}"#] == 1)
        #expect(
            samples[#"s3canary_circuit_breaker_transitions_total{backend="demo-stable",from="closed",to="open"}"#] == 0)
        try await Self.checkStatusPage(base)
        #expect(await demo.stop() == 0)
    }

    /// The status page as people see it, after the flaky breaker opened and closed: at 1400 and 390 px, light and
    /// dark, in headless Chromium (Tests/Fixtures/page_inspector.py over the DevTools protocol). Screenshots go to
    /// test-output/; every backend, the summary counts and each backend's marks must match /status (read just
    /// before and just after, as a cycle may end in between), and body text must keep a 4.5:1 contrast.
    static func checkStatusPage(_ base: String) async throws {
        let before = try Self.status(base)
        let inspector = try await Harness.runDetached(
            "/usr/bin/env",
            [
                "python3", Harness.root.appendingPathComponent("Tests/Fixtures/page_inspector.py").path, "\(base)/",
                Harness.outputDirectory.path, "--widths", "1400,390", "--schemes", "light,dark",
            ])
        let after = try Self.status(base)
        #expect(inspector.status == 0, "page_inspector: \(inspector.stderr.suffix(1500))")
        let report = try #require(
            try JSONSerialization.jsonObject(with: Data(inspector.stdout.utf8)) as? [String: Any])
        let runs = try #require(report["runs"] as? [[String: Any]])
        #expect(runs.count == 4)
        for run in runs {
            let label = "\(run["width"] ?? "?") px \(run["scheme"] ?? "?")"
            #expect((run["darkMatched"] as? Bool) == (run["scheme"] as? String == "dark"), "\(label): scheme")
            let contrast = run["contrast"] as? [String: Any] ?? [:]
            let body = (contrast["body"] as? [String: Any])?["ratio"] as? Double ?? 0
            let minimum = (contrast["minimum"] as? [String: Any])?["ratio"] as? Double ?? 0
            #expect(body >= 4.5, "\(label): body text contrast \(body)")
            #expect(minimum >= 4.5, "\(label): lowest text contrast \(contrast["minimum"] ?? "")")
            #expect(run["overflow"] as? Bool == false, "\(label): the page is wider than the screen")
            let screenshot = run["screenshot"] as? String ?? ""
            let size = (try? FileManager.default.attributesOfItem(atPath: screenshot)[.size] as? Int) ?? 0
            #expect(size > 20_000, "\(label): screenshot \(screenshot) of \(size) bytes")

            let backends = run["backends"] as? [[String: Any]] ?? []
            #expect(backends.map { $0["name"] as? String ?? "" } == before.map(\.name), "\(label): backends")
            let summary = (run["summary"] as? [String: Any])?["data"] as? [String: Int] ?? [:]
            #expect(summary["backends"] == before.count, "\(label): summary \(summary)")
            let healthTotal = ["open", "half-open", "failing", "degraded", "healthy", "waiting"].compactMap {
                summary[$0]
            }.reduce(0, +)
            #expect(healthTotal == before.count, "\(label): summary counts \(summary)")
            for snapshotPair in zip(before, after) {
                let (early, late) = snapshotPair
                let shown = backends.first { $0["name"] as? String == early.name } ?? [:]
                let marks = (shown["marks"] as? [[String: Any]] ?? []).map { $0["status"] as? String ?? "" }
                #expect(
                    marks == early.marks || marks == late.marks,
                    "\(label): \(early.name) shows \(marks.count) marks, /status \(early.marks.count)")
                let state = shown["state"] as? String
                #expect(state == early.state || state == late.state, "\(label): \(early.name) state")
            }
            let openBefore = before.filter { $0.state == "open" }.count
            let openAfter = after.filter { $0.state == "open" }.count
            #expect(summary["open"] == openBefore || summary["open"] == openAfter, "\(label): open count")
            // Shape, not only colour: a skipped cycle's mark is shorter than a successful one's.
            let marks = backends.flatMap { $0["marks"] as? [[String: Any]] ?? [] }
            let heights = Dictionary(grouping: marks, by: { $0["status"] as? String ?? "" }).mapValues {
                $0.compactMap { $0["height"] as? Double }.max() ?? 0
            }
            if let skipped = heights["skipped"], let ok = heights["success"] {
                #expect(skipped < ok * 0.6, "\(label): skipped marks \(skipped) px, successful \(ok) px")
            }
        }
        // The flaky backend's bar shows its outage: failed or skipped marks among the successful ones.
        let flaky = before.first { $0.name == "demo-flaky" }
        #expect(flaky?.marks.contains { $0 != "success" } == true, "demo-flaky's bar shows no outage")
    }

    struct Shown {
        var name: String
        var state: String
        var marks: [String]
    }

    static func status(_ base: String) throws -> [Shown] {
        let body = try Harness.http("\(base)/status").body
        let json = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
        return (json["backends"] as? [[String: Any]] ?? []).map { backend in
            Shown(
                name: backend["name"] as? String ?? "",
                state: (backend["breaker"] as? [String: Any])?["state"] as? String ?? "",
                marks: (backend["recent_cycles"] as? [[String: Any]] ?? []).map { $0["status"] as? String ?? "" })
        }
    }
}
