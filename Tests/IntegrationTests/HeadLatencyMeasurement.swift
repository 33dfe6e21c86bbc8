import Foundation
import ObjectStorage
import Testing

/// Measures (does not assert) the median HEAD latency of our client against RGW, and of
/// `curl --aws-sigv4` doing the same request over one kept-alive connection, in the same run.
///
/// The figures go to `test-output/head-latency.md` for the issue note; timing assertions do not belong in tests.
@Suite("Measurement: HEAD latency against RGW, ours vs curl")
struct HeadLatencyMeasurement {
    static let samples = 300
    #if DEBUG
    static let buildConfiguration = "debug"
    #else
    static let buildConfiguration = "release"
    #endif

    @Test func measureHeadMedians() async throws {
        let rgw = try RGWEnvironment.load()
        let key = uniquePrefix("latency") + "head-me"
        let ours: [Duration] = try await rgw.withBackend(rgw.configuration(.path)) { backend in
            _ = try await backend.putObject(key: key, body: randomBytes(1024), contentType: nil, metadata: [:])
            for _ in 0..<20 { _ = try await backend.headObject(key: key) }  // warm the connection
            var durations: [Duration] = []
            let clock = ContinuousClock()
            for _ in 0..<Self.samples {
                durations.append(try await clock.measure { _ = try await backend.headObject(key: key) })
            }
            return durations
        }

        let url = "\(rgw.endpoint)/\(RGWEnvironment.pathBucket)/\(S3URIEncoding.encode(key, keepSlash: true))"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments =
            [
                "curl", "-s", "-I", "--aws-sigv4", "aws:amz:us-east-1:s3",
                "--user", "\(rgw.accessKey):\(rgw.secretKey)", "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD",
                "-w", "%{http_code} %{time_total}\\n",
            ]
            + Array(repeating: ["-o", "/dev/null", url], count: Self.samples + 20).flatMap { $0 }
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        let curlLines = text.split(separator: "\n").dropFirst(20)
        #expect(curlLines.allSatisfy { $0.hasPrefix("200 ") }, "curl HEAD did not answer 200: \(curlLines.prefix(3))")
        try await rgw.withBackend(rgw.configuration(.path)) { try await $0.deleteObject(key: key) }
        let curlSeconds = curlLines.compactMap { Double($0.split(separator: " ").last ?? "") }.sorted()
        try #require(curlSeconds.count == Self.samples)

        let oursSeconds = ours.map { Double($0.components.attoseconds) / 1e18 + Double($0.components.seconds) }.sorted()
        func percentile(_ values: [Double], _ p: Double) -> Double {
            values[min(values.count - 1, Int(Double(values.count) * p))]
        }
        let oursMedian = percentile(oursSeconds, 0.5)
        let curlMedian = percentile(curlSeconds, 0.5)
        let report = """
            # HEAD latency against RGW (\(Self.samples) samples each, same run, \(Self.buildConfiguration) build)
            | client | p50 ms | p90 ms | p99 ms |
            |---|---|---|---|
            | S3Backend | \(String(format: "%.3f", oursMedian * 1000)) | \
            \(String(format: "%.3f", percentile(oursSeconds, 0.9) * 1000)) | \
            \(String(format: "%.3f", percentile(oursSeconds, 0.99) * 1000)) |
            | curl --aws-sigv4 (kept-alive) | \(String(format: "%.3f", curlMedian * 1000)) | \
            \(String(format: "%.3f", percentile(curlSeconds, 0.9) * 1000)) | \
            \(String(format: "%.3f", percentile(curlSeconds, 0.99) * 1000)) |

            Ratio ours/curl at p50: \(String(format: "%.2f", oursMedian / curlMedian))

            """
        let outputDir = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().appendingPathComponent("test-output")
        try FileManager.default.createDirectory(at: outputDir, withIntermediateDirectories: true)
        try Data(report.utf8).write(to: outputDir.appendingPathComponent("head-latency.md"))
        print(report)
        #expect(oursSeconds.count == Self.samples)
    }
}
