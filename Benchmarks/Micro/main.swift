import Crypto
import Foundation
import Logging
import ObjectStorage
import PrometheusExposition
import SidecarBreaker
import SidecarCanary
import SidecarConfig
import SidecarServer
import SidecarState
import SidecarTelemetry
import Synchronization

// Micro benchmarks of the hot paths, each beside a baseline measured in the same run (ratios are what matter:
// they survive a slower or busier machine). A plain release executable: `swift run -c release s3-canary-bench`.
// Prints one JSON object per line; scripts/bench.sh puts them in bench/REPORT.md.

@inline(never) func blackHole<T>(_ value: T) { withExtendedLifetime(value) {} }

/// Median nanoseconds per iteration over `repeats` batches of `iterations`.
func measure(_ iterations: Int, repeats: Int = 7, _ body: () -> Void) -> Double {
    let clock = ContinuousClock()
    var samples: [Double] = []
    for _ in 0..<repeats {
        let elapsed = clock.measure { for _ in 0..<iterations { body() } }
        let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
        samples.append(seconds * 1e9 / Double(iterations))
    }
    return samples.sorted()[samples.count / 2]
}

func report(_ name: String, nanoseconds: Double, baseline: String, baselineNanoseconds: Double) {
    let line: [String: Any] = [
        "name": name, "ns": (nanoseconds * 10).rounded() / 10, "baseline": baseline,
        "baseline_ns": (baselineNanoseconds * 10).rounded() / 10,
        "ratio": (nanoseconds / baselineNanoseconds * 100).rounded() / 100,
    ]
    if let data = try? JSONSerialization.data(withJSONObject: line, options: [.sortedKeys]) {
        print(String(decoding: data, as: UTF8.self))
    }
}

// 1. SigV4: signing one GET (host, date, content hash, a Range header) against one HMAC-SHA256 of 256 bytes.
let signer = SigV4Signer(region: "us-east-1")
let credentials = Credentials(accessKeyID: "AKIDEXAMPLE", secretAccessKey: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY")
let date = Date()
let signNs = measure(20_000) {
    blackHole(
        signer.sign(
            method: "GET", canonicalURI: "/canary/.s3-canary/host-1/ceph-a/1795637370628-b1dc8f0a9cf870b3",
            query: [], host: "127.0.0.1:7480", headers: [("range", "bytes=0-99")],
            payloadHash: SigV4Signer.emptyPayloadHash, credentials: credentials, date: date
        )
    )
}
let key = SymmetricKey(data: Data(repeating: 7, count: 32))
let message = Data(repeating: 42, count: 256)
let hmacNs = measure(20_000) { blackHole(HMAC<SHA256>.authenticationCode(for: message, using: key)) }
report("sigv4_sign_request", nanoseconds: signNs, baseline: "hmac_sha256_256_bytes", baselineNanoseconds: hmacNs)

// 2. Breaker: one admit + record on a closed breaker, under the same Mutex the backend decorator uses, against
// a bare Mutex increment.
let breaker = Mutex(CircuitBreaker<ContinuousClock.Instant>(configuration: .init()))
let now = ContinuousClock.now
let breakerNs = measure(200_000) {
    breaker.withLock { machine in
        let (admission, _) = machine.admit(now: now, jitter: 0.5)
        if case .allowed(let ticket) = admission {
            blackHole(machine.record(.success, ticket: ticket, now: now, jitter: 0.5))
        }
    }
}
let counter = Mutex(0)
let mutexNs = measure(200_000) { counter.withLock { $0 &+= 1 } }
report("breaker_admit_and_record", nanoseconds: breakerNs, baseline: "mutex_increment", baselineNanoseconds: mutexNs)

// 3. Exposition: rendering 1,000 gauge series (text 0.0.4) against appending the same 1,000 finished lines.
let registry = MetricsRegistry()
if let family = try? registry.family(
    "bench_series", help: "Benchmark series.", kind: .gauge, labels: ["backend", "operation"])
{
    for index in 0..<1000 { family.set(["backend-\(index / 10)", "op-\(index % 10)"], Double(index)) }
}
let rendered = registry.renderText(format: .text004)
let lines = rendered.split(separator: "\n").map { String($0) + "\n" }
let renderNs = measure(200, repeats: 7) { blackHole(registry.renderText(format: .text004)) }
let appendNs = measure(200, repeats: 7) {
    var out = ""
    out.reserveCapacity(rendered.utf8.count)
    for line in lines { out += line }
    blackHole(out)
}
report(
    "exposition_1000_series", nanoseconds: renderNs, baseline: "string_append_same_lines", baselineNanoseconds: appendNs
)
let openMetricsNs = measure(200, repeats: 7) { blackHole(registry.renderText(format: .openMetrics)) }
report(
    "exposition_1000_series_openmetrics", nanoseconds: openMetricsNs, baseline: "string_append_same_lines",
    baselineNanoseconds: appendNs)

// 4. The real families of 1,000 backends (default five operations, native and classic histograms, a request id
// exemplar per observation), rendered in each format against the text rendering of the same registry: what
// protobuf and OpenMetrics cost beside the format every scraper reads.
if let metrics = try? CanaryMetrics(version: "bench") {
    let operations: [CanaryConfiguration.Operation] = [.put, .head, .get, .getRange, .delete]
    let started = Date(timeIntervalSince1970: 1_795_000_000)
    for index in 0..<1000 {
        let name = "backend-\(index)"
        metrics.addBackend(name, operations: operations.map(\.label), threshold: 3)
        for cycle in 0..<20 {
            let steps = operations.enumerated().map { offset, operation in
                StepResult(
                    operation: operation, result: .success,
                    seconds: 0.001 * Double(1 + (index + cycle + offset) % 40),
                    requestID: "tx00000\(String(index * 100 + cycle, radix: 16))-0065f1a2b3-1016-default")
            }
            metrics.record(
                CycleResult(
                    backend: name, startedAt: started, duration: .milliseconds(10), status: .success, steps: steps,
                    failure: nil, integrityFailure: false))
        }
    }
    let textNs = measure(5, repeats: 5) { blackHole(metrics.render(format: .text004)) }
    report(
        "exposition_1000_backends_text", nanoseconds: textNs, baseline: "exposition_1000_backends_text",
        baselineNanoseconds: textNs)
    let openMetricsBackendsNs = measure(5, repeats: 5) { blackHole(metrics.render(format: .openMetrics)) }
    report(
        "exposition_1000_backends_openmetrics", nanoseconds: openMetricsBackendsNs,
        baseline: "exposition_1000_backends_text", baselineNanoseconds: textNs)
    let protobufNs = measure(5, repeats: 5) { blackHole(metrics.render(format: .protobuf)) }
    report(
        "exposition_1000_backends_protobuf", nanoseconds: protobufNs, baseline: "exposition_1000_backends_text",
        baselineNanoseconds: textNs)
}

// 5. The event outbox (state_dir): one event accepted (a transaction of its own, as the dispatcher's writer does for
// each published event) and later forgotten (its delivery), against appending the same bytes to a plain file
// without fsync, the cheapest thing a hand-made file format could do. Its time per event is what the outbox adds to
// a transition's way to the receivers; 1e9 / ns is the events per second one writer sustains.
do {
    let directory = FileManager.default.temporaryDirectory.appendingPathComponent("outbox-bench-\(UUID().uuidString)")
    let body = Data(repeating: 0x7B, count: 1024)
    let (opened, _) = await StateStore.open(directory: directory.path, instance: "bench", logger: .init(label: "bench"))
    if let store = opened {
        let clock = ContinuousClock()
        func perEvent(_ events: Int, _ body: () async throws -> Void) async rethrows -> Double {
            var samples: [Double] = []
            for _ in 0..<5 {
                let start = clock.now
                for _ in 0..<events { try await body() }
                samples.append(start.duration(to: clock.now).seconds * 1e9 / Double(events))
            }
            return samples.sorted()[samples.count / 2]
        }
        let record = OutboxRecord(
            lane: "receiver", eventID: "id", eventType: "backend.circuit.opened", contentType: "application/json",
            body: body, createdAt: Date())
        let outboxNs = try await perEvent(400) {
            let sequence = try await store.append([record], outage: nil)
            for seq in sequence { try await store.remove(seq) }
        }
        let file = directory.appendingPathComponent("plain.log")
        FileManager.default.createFile(atPath: file.path, contents: nil)
        let handle = try FileHandle(forWritingTo: file)
        let plainNs = try await perEvent(400) {
            try handle.seekToEnd()
            try handle.write(contentsOf: body)
        }
        try? handle.close()
        await store.close()
        report(
            "outbox_accept_and_forget_1kib_event", nanoseconds: outboxNs, baseline: "plain_file_append_1kib",
            baselineNanoseconds: plainNs)
    }
    try? FileManager.default.removeItem(at: directory)
}
