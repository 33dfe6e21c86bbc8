import Foundation
import TestSupport
import Testing

/// Samples of a Prometheus text exposition, keyed by `name{labels}` exactly as written.
struct Samples {
    var values: [String: Double] = [:]

    init(_ text: String) {
        for line in text.split(separator: "\n") where !line.hasPrefix("#") {
            guard let space = line.lastIndex(of: " "), let value = Double(line[line.index(after: space)...]) else {
                continue
            }
            self.values[String(line[..<space])] = value
        }
    }

    subscript(_ key: String) -> Double? { self.values[key] }
}

/// A running `s3-canary` (and the files it was started with).
struct RunningCanary {
    var daemon: Daemon
    var port: Int
    var directory: URL
    var configPath: URL

    var base: String { "http://127.0.0.1:\(self.port)" }

    func metrics() throws -> Samples {
        let (status, body) = try Harness.http("\(self.base)/metrics")
        guard status == 200 else { throw HarnessError("/metrics answered \(status.map(String.init) ?? "nothing")") }
        return Samples(body)
    }

    static func start(name: String, config: (Int) -> String) async throws -> (RunningCanary, Duration) {
        let directory = try Harness.temporaryDirectory(name)
        let port = try Harness.freePort()
        let configPath = directory.appendingPathComponent("s3-canary.yaml")
        try Data(config(port).utf8).write(to: configPath)
        let started = ContinuousClock.now
        let daemon = try Daemon(
            Harness.binary, ["run", "--config", configPath.path, "--log-level", "debug"],
            log: directory.appendingPathComponent("s3-canary.log")
        )
        let canary = RunningCanary(daemon: daemon, port: port, directory: directory, configPath: configPath)
        try await Harness.waitUntil(.seconds(30), "/healthz of \(name)") {
            guard daemon.isRunning else { throw HarnessError("s3-canary exited: \(daemon.log)") }
            return try Harness.http("\(canary.base)/healthz", timeout: 1).status == 200
        }
        return (canary, started.duration(to: .now))
    }
}

/// A Prometheus server scraping one target every second.
struct PrometheusServer {
    var daemon: Daemon
    var port: Int

    static func start(
        scraping target: String, directory: URL, features: [String] = []
    ) async throws
        -> PrometheusServer
    {
        try await Self.start(
            configuration: """
                global: {scrape_interval: 1s, evaluation_interval: 1s}
                scrape_configs:
                  - job_name: s3canary
                    static_configs: [{targets: ["\(target)"]}]
                """,
            directory: directory, features: features)
    }

    /// A Prometheus with `configuration` as its `prometheus.yml` and `--enable-feature` `features`, ready to answer.
    static func start(
        configuration: String, directory: URL, features: [String] = []
    ) async throws
        -> PrometheusServer
    {
        let port = try Harness.freePort()
        let config = directory.appendingPathComponent("prometheus.yml")
        try Data(configuration.utf8).write(to: config)
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/prometheus") else {
            throw HarnessError("prometheus is not installed: run the tests through scripts/test.sh")
        }
        let daemon = try Daemon(
            "/usr/bin/prometheus",
            [
                "--config.file=\(config.path)", "--storage.tsdb.path=\(directory.appendingPathComponent("tsdb").path)",
                "--web.listen-address=127.0.0.1:\(port)",
            ] + (features.isEmpty ? [] : ["--enable-feature=\(features.joined(separator: ","))"]),
            log: directory.appendingPathComponent("prometheus.log")
        )
        let server = PrometheusServer(daemon: daemon, port: port)
        try await Harness.waitUntil(.seconds(20), "Prometheus ready") {
            try Harness.http("http://127.0.0.1:\(port)/-/ready", timeout: 1).status == 200
        }
        return server
    }

    /// Runs an instant query now, or at `time`, and returns each series' labels and value.
    func query(_ expression: String, at time: Date? = nil) throws -> [(labels: [String: String], value: Double)] {
        let encoded = expression.addingPercentEncoding(withAllowedCharacters: .alphanumerics) ?? expression
        let at = time.map { "&time=\(String(format: "%.3f", $0.timeIntervalSince1970))" } ?? ""
        let (status, body) = try Harness.http("http://127.0.0.1:\(self.port)/api/v1/query?query=\(encoded)\(at)")
        guard status == 200,
            let json = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any],
            let data = json["data"] as? [String: Any], let result = data["result"] as? [[String: Any]]
        else { throw HarnessError("query \(expression) failed: \(status.map(String.init) ?? "-") \(body)") }
        return result.compactMap { series in
            guard let labels = series["metric"] as? [String: String], let value = series["value"] as? [Any],
                let text = value.last as? String, let number = Double(text)
            else { return nil }
            return (labels, number)
        }
    }
}

/// `Tests/Fixtures/fault_s3.py`: a fake S3 endpoint answering every request with one fixed error (and, with
/// `headerLog`, writing each request's headers there), ready to answer.
struct FaultS3 {
    var daemon: Daemon
    var port: Int

    static func start(
        status: Int, code: String, message: String, headerLog: URL? = nil, directory: URL, name: String = "fault"
    ) async throws -> FaultS3 {
        let port = try Harness.freePort()
        let daemon = try Daemon(
            "/usr/bin/env",
            [
                "python3", Harness.root.appendingPathComponent("Tests/Fixtures/fault_s3.py").path, String(port),
                String(status), code, message,
            ] + (headerLog.map { [$0.path] } ?? []),
            log: directory.appendingPathComponent("\(name).log")
        )
        do {
            try await Harness.waitForPort(port, of: daemon, "\(name) server")
        } catch {
            daemon.signal(SIGKILL)
            throw error
        }
        return FaultS3(daemon: daemon, port: port)
    }
}

/// The loopback TCP proxy that stands between one backend and RGW, killed and restarted to cut it off.
final class FaultProxy: @unchecked Sendable {
    let port: Int
    let target: Int
    let directory: URL
    private var daemon: Daemon?

    init(target: Int, directory: URL) throws {
        self.port = try Harness.freePort()
        self.target = target
        self.directory = directory
    }

    func up() async throws {
        let daemon = try Daemon(
            "/usr/bin/env",
            [
                "python3", Harness.root.appendingPathComponent("Tests/Fixtures/tcp_proxy.py").path, String(self.port),
                "127.0.0.1", String(self.target),
            ],
            log: self.directory.appendingPathComponent("proxy-\(UUID().uuidString.prefix(4)).log")
        )
        self.daemon = daemon
        try await Harness.waitForPort(self.port, of: daemon, "proxy")
    }

    func down() async {
        await self.daemon?.stop(SIGKILL)
        self.daemon = nil
    }
}

/// Lists keys with boto3 (`Tests/Fixtures/list_keys.py`): an S3 client independent of ours.
func listKeysIndependently(_ rgw: RGWEnvironment, bucket: String, prefix: String) throws -> [String] {
    try listIndependently(endpoint: rgw.endpoint, bucket: bucket, prefix: prefix)
}

/// Lists keys with boto3, and with `uploads` the multipart uploads in progress as `UPLOAD <key>` lines.
func listIndependently(endpoint: String, bucket: String, prefix: String, uploads: Bool = false) throws -> [String] {
    let script = Harness.root.appendingPathComponent("Tests/Fixtures/list_keys.py").path
    let output = try Harness.run(
        "/usr/bin/env", ["python3", script, endpoint, bucket, prefix] + (uploads ? ["uploads"] : []))
    var lines = output.stdout.split(separator: "\n").map(String.init)
    guard output.status == 0, lines.popLast() == "LISTED-OK" else {
        throw HarnessError("listing with boto3 failed: \(output.stderr.suffix(500))")
    }
    return lines
}
