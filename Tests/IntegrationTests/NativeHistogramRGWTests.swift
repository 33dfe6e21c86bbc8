import Foundation
import PrometheusExposition
import TestSupport
import Testing

/// Issue "metrics that scale": a real Prometheus with native histograms and exemplar storage scrapes two real runs
/// against RGW, one with native plus classic histograms (the default) and one with classic only.
@Suite("Native histograms and exemplars against RGW and Prometheus", .tags(.faults), .serialized)
struct NativeHistogramRGWTests {
    /// Every operation of the default probe.
    static let operations = ["put", "head", "get", "get_range", "delete"]
    static let protobufAccept =
        "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited"

    static func config(port: Int, prefix: String, metrics: String, backends: [(String, String, String)]) -> String {
        """
        listen: 127.0.0.1:\(port)
        instance: native
        probe: {interval: 1s, timeout: 900ms, key_prefix: \(prefix)}
        metrics: \(metrics)
        backends:
        \(backends.map { name, endpoint, bucket in
            """
              - name: \(name)
                endpoint: \(endpoint)
                bucket: \(bucket)
                path_style: true
                credentials: \(RGWEnvironment.credentialsFromEnvironment)
            """
        }.joined(separator: "\n"))

        """
    }

    /// RGW writes each request's `trans_id` (the `x-amz-request-id` it answers with) to its log at `debug_rgw` 2:
    /// the ids it really sent, to hold the exemplars against.
    struct RGWRequestLog {
        var socket: String
        var log: URL
        var previous: String
        var offset: UInt64

        static func start() throws -> RGWRequestLog {
            guard let directory = ProcessInfo.processInfo.environment["S3CANARY_TEST_RGW_DIR"] else {
                throw HarnessError("S3CANARY_TEST_RGW_DIR is not set: run through scripts/test.sh")
            }
            let socket = "\(directory)/run/client.rgw.test.asok"
            let log = URL(fileURLWithPath: "\(directory)/log/client.rgw.test.log")
            let current = try Harness.run(
                "/usr/bin/env", ["ceph", "--admin-daemon", socket, "config", "get", "debug_rgw"])
            let previous =
                ((try? JSONSerialization.jsonObject(with: Data(current.stdout.utf8))) as? [String: String])?[
                    "debug_rgw"] ?? "1/5"
            let set = try Harness.run(
                "/usr/bin/env", ["ceph", "--admin-daemon", socket, "config", "set", "debug_rgw", "2"])
            guard set.status == 0 else { throw HarnessError("ceph config set debug_rgw: \(set.stderr)") }
            let offset = (try FileManager.default.attributesOfItem(atPath: log.path)[.size] as? UInt64) ?? 0
            return RGWRequestLog(socket: socket, log: log, previous: previous, offset: offset)
        }

        /// The transaction ids RGW logged since `start`.
        func ids() throws -> Set<String> {
            let handle = try FileHandle(forReadingFrom: self.log)
            defer { try? handle.close() }
            try handle.seek(toOffset: self.offset)
            let text = String(decoding: handle.readDataToEndOfFile(), as: UTF8.self)
            var ids: Set<String> = []
            for line in text.split(separator: "\n") {
                guard let range = line.range(of: "trans_id = ") else { continue }
                ids.insert(String(line[range.upperBound...].prefix { !$0.isWhitespace }))
            }
            return ids
        }

        func stop() {
            _ = try? Harness.run(
                "/usr/bin/env", ["ceph", "--admin-daemon", self.socket, "config", "set", "debug_rgw", self.previous])
        }
    }

    /// One observation as `/status` showed it.
    struct Observed: Hashable {
        var backend: String
        var operation: String
        var startedAt: String
        var seconds: Double
        var requestID: String?
    }

    /// Each backend's recent latencies per operation, oldest first, from `/status`.
    static func status(_ base: String) throws -> [String: [String: [Double]]] {
        let (status, body) = try Harness.http("\(base)/status", timeout: 5)
        guard status == 200, let json = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
            let backends = json["backends"] as? [[String: Any]]
        else { throw HarnessError("/status answered \(status.map(String.init) ?? "nothing"): \(body.prefix(300))") }
        var out: [String: [String: [Double]]] = [:]
        for backend in backends {
            guard let name = backend["name"] as? String else { continue }
            for latency in backend["latencies"] as? [[String: Any]] ?? [] {
                guard let operation = latency["operation"] as? String,
                    let samples = latency["recent_seconds"] as? [Double]
                else { continue }
                out[name, default: [:]][operation] = samples
            }
        }
        return out
    }

    /// The operations of each backend's last cycle, from `/status`.
    static func lastCycles(_ base: String) throws -> [Observed] {
        let (status, body) = try Harness.http("\(base)/status", timeout: 2)
        guard status == 200, let json = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
            let backends = json["backends"] as? [[String: Any]]
        else { return [] }
        var out: [Observed] = []
        for backend in backends {
            guard let name = backend["name"] as? String, let cycle = backend["last_cycle"] as? [String: Any],
                let started = cycle["started_at"] as? String, let operations = cycle["operations"] as? [[String: Any]]
            else { continue }
            for operation in operations {
                guard let op = operation["operation"] as? String, let seconds = operation["latency_seconds"] as? Double
                else { continue }
                out.append(
                    Observed(
                        backend: name, operation: op, startedAt: started, seconds: seconds,
                        requestID: operation["request_id"] as? String))
            }
        }
        return out
    }

    @Test func prometheusReadsNativeHistogramsAndRequestIDExemplarsInBothModes() async throws {
        let rgw = try RGWEnvironment.load()
        let work = try Harness.temporaryDirectory("native")
        let requestLog = try RGWRequestLog.start()
        defer { requestLog.stop() }
        let prefix = ".s3-canary-native-\(UUID().uuidString.prefix(6).lowercased())/"
        let buckets = [RGWEnvironment.pathBucket, RGWEnvironment.virtualHostBucket]
        let (classic, _) = try await RunningCanary.start(name: "classic") { port in
            Self.config(
                port: port, prefix: prefix, metrics: "{native_histograms: false, time_to_first_byte: true, request_phases: true}",
                backends: [("rgw-classic", rgw.endpoint, buckets[0])])
        }
        defer { classic.daemon.signal(SIGKILL) }
        let (native, _) = try await RunningCanary.start(name: "native") { port in
            Self.config(
                port: port, prefix: prefix, metrics: "{time_to_first_byte: true, request_phases: true}",
                backends: [
                    ("rgw-a", rgw.endpoint, buckets[0]), ("rgw-b", rgw.endpoint, buckets[1]),
                ])
        }
        defer { native.daemon.signal(SIGKILL) }
        let started = Date()
        let rules = Harness.root.appendingPathComponent("Config/prometheus/alerts.yaml").path
        let prometheus = try await PrometheusServer.start(
            configuration: """
                global: {scrape_interval: 1s, evaluation_interval: 1s}
                rule_files: ["\(rules)"]
                scrape_configs:
                  - job_name: s3-canary
                    static_configs: [{targets: ["127.0.0.1:\(native.port)", "127.0.0.1:\(classic.port)"]}]
                """,
            directory: work, features: ["native-histograms", "exemplar-storage"])
        defer { prometheus.daemon.signal(SIGKILL) }
        try await Task.sleep(for: .seconds(25))
        // The histograms as Prometheus had them a second ago, and /status now: every observation in them is among the
        // recent latencies /status keeps (the last 100 per operation, oldest first; this run made about 25).
        let frozen = Date().addingTimeInterval(-1)
        let status = try Self.status(native.base)
        let seen = try Self.lastCycles(native.base)

        // Only native histograms answer histogram_count: Prometheus negotiated protobuf and stored them natively.
        let counts = try prometheus.query(
            #"histogram_count(rate(s3canary_operation_duration_seconds{backend=~"rgw-a|rgw-b"}[1m]))"#)
        let pairs = Set(counts.map { "\($0.labels["backend"] ?? "")/\($0.labels["operation"] ?? "")" })
        for backend in ["rgw-a", "rgw-b"] {
            for operation in Self.operations {
                #expect(pairs.contains("\(backend)/\(operation)"), "no native histogram for \(backend)/\(operation)")
            }
        }
        #expect(counts.allSatisfy { $0.value > 0 }, "\(counts)")
        // The classic-only run is stored as classic buckets, and never as a native histogram.
        #expect(try !prometheus.query(#"s3canary_operation_duration_seconds_bucket{backend="rgw-classic"}"#).isEmpty)
        #expect(
            try prometheus.query(#"histogram_count(s3canary_operation_duration_seconds{backend="rgw-classic"})"#)
                .isEmpty)

        // The native p99 against the p99 of the same observations seen on /status: within one bucket
        // (schema 3 for the default bucket factor 1.1: buckets grow by 2^(1/8)).
        var comparisons: [String] = []
        for backend in ["rgw-a", "rgw-b"] {
            for operation in Self.operations {
                let selector = #"{backend="\#(backend)",operation="\#(operation)"}"#
                let total = try prometheus.query(
                    "histogram_count(s3canary_operation_duration_seconds\(selector))", at: frozen)
                let quantile = try prometheus.query(
                    "histogram_quantile(0.99, s3canary_operation_duration_seconds\(selector))", at: frozen)
                let count = Int(try #require(total.first?.value))
                let prometheusP99 = try #require(quantile.first?.value)
                let samples = status[backend]?[operation] ?? []
                try #require(samples.count >= count, "/status kept \(samples.count) of \(count) observations")
                // Observations are cumulative in time: the histogram Prometheus stored holds the first `count`.
                let sorted = samples.prefix(count).sorted()
                let sampleP99 = sorted[Int((0.99 * Double(count)).rounded(.up)) - 1]
                let index = (log2(sampleP99) * 8).rounded(.up)
                let (lower, upper) = (exp2((index - 1) / 8), exp2(index / 8))
                #expect(
                    prometheusP99 >= lower * 0.999 && prometheusP99 <= upper * 1.001,
                    "\(backend)/\(operation): Prometheus p99 \(prometheusP99), samples' p99 \(sampleP99) in (\(lower), \(upper)]"
                )
                comparisons.append(
                    "| \(backend) | \(operation) | \(count) | \(String(format: "%.3f", sampleP99 * 1000)) | "
                        + "\(String(format: "%.3f", prometheusP99 * 1000)) | "
                        + "(\(String(format: "%.3f", lower * 1000)), \(String(format: "%.3f", upper * 1000))] |")
            }
        }

        // Exemplars: request ids RGW really sent (in its log), that the canary also showed on /status.
        try await Task.sleep(for: .seconds(2))  // Prometheus has scraped the cycle /status showed last
        let start = String(format: "%.3f", started.timeIntervalSince1970 - 5)
        let end = String(format: "%.3f", Date().timeIntervalSince1970 + 1)
        // The native series of the default run and the classic `_bucket` series of the classic-only one.
        let query =
            #"{__name__=~"s3canary_operation_duration_seconds(_bucket)?"}"#
            .addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? ""
        let (answer, body) = try Harness.http(
            "http://127.0.0.1:\(prometheus.port)/api/v1/query_exemplars?query=\(query)&start=\(start)&end=\(end)")
        #expect(answer == 200, "\(body)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
        let series = try #require(json["data"] as? [[String: Any]])
        let logged = try requestLog.ids()
        let shown = Set(seen.compactMap(\.requestID))
        var exemplarIDs: [String: Set<String>] = [:]
        for entry in series {
            let labels = entry["seriesLabels"] as? [String: String] ?? [:]
            for exemplar in entry["exemplars"] as? [[String: Any]] ?? [] {
                let id = (exemplar["labels"] as? [String: String])?["request_id"] ?? ""
                exemplarIDs[labels["backend"] ?? "", default: []].insert(id)
                #expect(logged.contains(id), "exemplar request id \(id) is not in RGW's log")
            }
        }
        for backend in ["rgw-a", "rgw-b", "rgw-classic"] {
            #expect(
                !(exemplarIDs[backend] ?? []).isEmpty, "no exemplar for \(backend): \(exemplarIDs.mapValues(\.count))")
        }
        // /status shows the last cycle's ids, the debug log (the lines /probe?debug=true answers with) every step's.
        #expect(shown.count == 10 && shown.isSubset(of: logged), "/status request ids \(shown) not all in RGW's log")
        let stepLines = native.daemon.log
        for id in (exemplarIDs["rgw-a"] ?? []).union(exemplarIDs["rgw-b"] ?? []) {
            #expect(stepLines.contains("(request id \(id))"), "exemplar id \(id) is no step's request id")
        }
        #expect(logged.count > 10, "RGW logged \(logged.count) transaction ids")

        // Dashboard panels and the latency recording rules answer in both modes.
        let empty = try Dashboard.emptyPanels(in: ["Overview", "Latency", "Circuit breaker"], of: prometheus)
        #expect(empty.isEmpty, "dashboard panels without data: \(empty)")
        for rule in [
            "s3canary:operation_duration_seconds:p99_5m",
            "s3canary:operation_duration_seconds:slower_than_1s:ratio_rate5m",
        ] {
            let backends = Set(try prometheus.query(rule).compactMap { $0.labels["backend"] })
            #expect(backends == ["rgw-a", "rgw-b", "rgw-classic"], "\(rule) answered for \(backends)")
        }
        for panel in ["Operation latency p50 / p95 / p99", "Time to first byte p99"] {
            for query in try Dashboard.queries() where query.panel == panel {
                let backends = Set(try prometheus.query(query.expr).compactMap { $0.labels["backend"] })
                #expect(backends == ["rgw-a", "rgw-b", "rgw-classic"], "\(panel) answered for \(backends)")
            }
        }

        // Each format of the live endpoint, read by an independent parser.
        let fixtures = Harness.root.appendingPathComponent("Tests/Fixtures")
        let text = try Harness.http("\(native.base)/metrics").body
        let lint = try Harness.run("/usr/bin/env", ["promtool", "check", "metrics"], stdin: Data(text.utf8))
        #expect(lint.status == 0 && lint.stderr.isEmpty, "promtool: \(lint.stderr)")
        let openMetrics = try await Harness.runDetached(
            "/usr/bin/env",
            [
                "python3", fixtures.appendingPathComponent("parse_openmetrics.py").path, "--url",
                "\(native.base)/metrics",
            ])
        #expect(openMetrics.status == 0, "OpenMetrics parser: \(openMetrics.stderr)")
        #expect(openMetrics.stdout.contains("\"request_id\""), "no exemplar in the OpenMetrics scrape")
        let protobuf = try await Harness.runDetached(
            "/usr/bin/env",
            [
                "python3", fixtures.appendingPathComponent("decode_protobuf.py").path, "--check", "--url",
                "\(native.base)/metrics",
            ])
        #expect(protobuf.status == 0, "protobuf decoder: \(protobuf.stderr)")
        #expect(protobuf.stderr.contains("application/vnd.google.protobuf"), "\(protobuf.stderr)")
        let families = try #require(
            try JSONSerialization.jsonObject(with: Data(protobuf.stdout.utf8)) as? [[String: Any]])
        let duration = try #require(families.first { $0["name"] as? String == "s3canary_operation_duration_seconds" })
        let histograms = (duration["metric"] as? [[String: Any]] ?? []).compactMap { $0["histogram"] as? [String: Any] }
        #expect(histograms.count == 10)
        #expect(histograms.allSatisfy { ($0["schema"] as? Int) == 3 && $0["positive_span"] != nil }, "\(histograms)")

        let output = Harness.outputDirectory
        try Data(text.utf8).write(to: output.appendingPathComponent("metrics-native-run.txt"))
        try Data(protobuf.stdout.utf8).write(to: output.appendingPathComponent("metrics-native-run.protobuf.json"))
        let report =
            "# Native p99 against /status samples (same run, ms)\n\n"
            + "| backend | operation | observations | samples' p99 | Prometheus p99 | bucket |\n|---|---|---|---|---|---|\n"
            + comparisons.joined(separator: "\n") + "\n"
        try Data(report.utf8).write(to: output.appendingPathComponent("native-histogram-p99.md"))
        print(report)
    }
}
