import Foundation
import Testing

@testable import PrometheusExposition

@Suite("Exposition formats: negotiation, protobuf, native buckets, exemplars")
struct ExpositionTests {
    @Test(arguments: [
        // What Prometheus 2.42 sends with --enable-feature=native-histograms, and without.
        (
            "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited;q=0.7,"
                + "text/plain;version=0.0.4;q=0.3,*/*;q=0.2", ExpositionFormat.protobuf
        ),
        (
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
                + "text/plain;version=0.0.4;q=0.5,*/*;q=0.1", .openMetrics
        ),
        ("text/plain;version=0.0.4", .text004),
        ("application/openmetrics-text; version=1.0.0; charset=utf-8", .openMetrics),
        // The highest q wins wherever it is listed; equal q: the first listed.
        ("text/plain;q=0.9, application/openmetrics-text;q=0.5", .text004),
        ("application/openmetrics-text;q=0.5, text/plain;q=0.5", .openMetrics),
        // Protobuf only in the form Prometheus defines: another message or encoding is not ours.
        ("application/vnd.google.protobuf;proto=other.Message;encoding=delimited", .text004),
        ("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=text", .text004),
        // Nothing we serve, malformed, refused (q=0), empty, absent: text, never an error.
        ("application/json", .text004),
        ("application/openmetrics-text;version=9.9", .text004),
        ("application/openmetrics-text;q=abc", .text004),
        ("application/openmetrics-text;q=0", .text004),
        (";;;,,=,", .text004),
        ("", .text004),
        (String(repeating: "a/b;", count: 2000), .text004),
    ])
    func acceptIsNegotiated(accept: String, expected: ExpositionFormat) {
        #expect(ExpositionFormat.negotiate(accept: accept) == expected)
    }

    @Test func noAcceptHeaderGetsText() {
        #expect(ExpositionFormat.negotiate(accept: nil) == .text004)
    }

    /// A gauge family written by hand from `metrics.proto`: name (1), help (2), type GAUGE (3 = 1), one metric (4)
    /// whose gauge (2) holds value (1) 1.5, the whole family prefixed with its length.
    @Test func aGaugeIsTheExactProtobufBytes() throws {
        let registry = MetricsRegistry()
        try registry.family("g", help: "h", kind: .gauge).set([], 1.5)
        let expected: [UInt8] =
            [21, 0x0a, 1, UInt8(ascii: "g"), 0x12, 1, UInt8(ascii: "h"), 0x18, 1, 0x22, 11, 0x12, 9, 0x09]
            + [0, 0, 0, 0, 0, 0, 0xf8, 0x3f]
        #expect(registry.render(format: .protobuf) == expected)
    }

    @Test func labelledCountersCarryTheirLabelsAndTotalName() throws {
        let registry = MetricsRegistry()
        try registry.family("c_total", help: "", kind: .counter, labels: ["k"]).add(["v"], 2)
        let bytes = registry.render(format: .protobuf)
        // Family: name "c_total", empty help, type COUNTER (0); metric: label {k, v}, counter {2.0}.
        let metric: [UInt8] =
            [0x0a, 6, 0x0a, 1, UInt8(ascii: "k"), 0x12, 1, UInt8(ascii: "v")] + [0x1a, 9, 0x09]
            + [0, 0, 0, 0, 0, 0, 0, 0x40]
        let family: [UInt8] =
            [0x0a, 7] + Array("c_total".utf8) + [0x12, 0, 0x18, 0, 0x22, UInt8(metric.count)] + metric
        #expect(bytes == [UInt8(family.count)] + family)
    }

    @Test func aLabelledFamilyWithoutSeriesIsLeftOut() throws {
        let registry = MetricsRegistry()
        _ = try registry.family("e_total", help: "", kind: .counter, labels: ["k"])
        #expect(registry.render(format: .protobuf).isEmpty)
    }

    @Test func openMetricsCarriesExemplarsAndTextDoesNot() throws {
        let registry = MetricsRegistry()
        let family = try registry.family(
            "lat_seconds", help: "Latency.", kind: .histogram, labels: ["backend"],
            histogram: HistogramShape(classic: [0.1, 1], exemplars: true))
        family.observe(["a"], 0.05, exemplar: Exemplar(requestID: "tx1", value: 0.05, timestamp: 1_700_000_000.5))
        family.observe(["a"], 2, exemplar: Exemplar(requestID: "tx\"2", value: 2, timestamp: 1_700_000_001))
        #expect(
            registry.renderText(format: .openMetrics) == """
                # HELP lat_seconds Latency.
                # TYPE lat_seconds histogram
                lat_seconds_bucket{backend="a",le="0.1"} 1 # {request_id="tx1"} 0.05 1700000000.500
                lat_seconds_bucket{backend="a",le="1"} 1
                lat_seconds_bucket{backend="a",le="+Inf"} 2 # {request_id="tx\\"2"} 2 1700000001.000
                lat_seconds_sum{backend="a"} 2.05
                lat_seconds_count{backend="a"} 2
                # EOF

                """)
        #expect(!registry.renderText(format: .text004).contains("#  {"))
        #expect(!registry.renderText(format: .text004).contains("request_id"))
    }

    @Test func withoutClassicBucketsTextShowsInfSumCountAndTheLatestExemplar() throws {
        let registry = MetricsRegistry()
        let family = try registry.family(
            "lat_seconds", help: "Latency.", kind: .histogram,
            histogram: HistogramShape(
                classic: [0.1, 1], exposeClassic: false, native: .init(schema: 3, maxBuckets: 160), exemplars: true))
        family.observe([], 0.05, exemplar: Exemplar(requestID: "late", value: 0.05, timestamp: 20))
        family.observe([], 2, exemplar: Exemplar(requestID: "early", value: 2, timestamp: 10))
        #expect(
            registry.renderText(format: .openMetrics) == """
                # HELP lat_seconds Latency.
                # TYPE lat_seconds histogram
                lat_seconds_bucket{le="+Inf"} 2 # {request_id="late"} 0.05 20.000
                lat_seconds_sum 2.05
                lat_seconds_count 2
                # EOF

                """)
    }

    @Test func anExemplarOverOpenMetricsLimitIsDropped() {
        #expect(Exemplar(requestID: String(repeating: "x", count: 118), value: 1, timestamp: 1) != nil)
        #expect(Exemplar(requestID: String(repeating: "x", count: 119), value: 1, timestamp: 1) == nil)
        #expect(Exemplar(requestID: "", value: 1, timestamp: 1) == nil)
        #expect(Exemplar(requestID: "a", value: 1, timestamp: .nan) == nil)
    }

    @Test(
        arguments: [
            // Powers of two sit on an upper (inclusive) bound at every schema.
            (1.0, 3, 0), (2.0, 3, 8), (0.5, 3, -8), (1.0, 0, 0), (2.0, 0, 1), (4.0, -1, 1), (4.0, -2, 1), (16.0, -2, 1),
            (17.0, -2, 2),
            // Between bounds: schema 3 grows by 2^(1/8) ≈ 1.0905.
            (1.05, 3, 1), (1.1, 3, 2), (0.001, 3, -79), (1.5, 0, 1), (5.0, -1, 2),
        ] as [(Double, Int, Int32)])
    func nativeBucketIndices(value: Double, schema: Int, expected: Int32) {
        #expect(NativeBuckets.index(of: value, schema: schema) == expected)
    }

    @Test func everyValueLandsBetweenItsBucketsBounds() {
        var generator = SystemRandomNumberGenerator()
        for schema in -4...8 {
            for _ in 0..<500 {
                let value = exp2(Double.random(in: -20...20, using: &generator))
                let index = NativeBuckets.index(of: value, schema: schema)
                let upper = NativeBuckets.upperBound(of: index, schema: schema)
                let lower = NativeBuckets.upperBound(of: index - 1, schema: schema)
                #expect(value <= upper * (1 + 1e-12) && value > lower * (1 - 1e-12), "\(value) at schema \(schema)")
            }
        }
    }

    @Test func theBucketLimitHalvesTheResolution() {
        var buckets = NativeBuckets(schema: 1, maxBuckets: 2)
        for value in [1.0, 1.3, 1.9] { buckets.observe(value) }  // schema 1: indices 0, 1, 2
        #expect(buckets.schema == 0)
        #expect(buckets.indices == [0, 1])
        #expect(buckets.counts == [1, 2])
        buckets.observe(0)
        #expect(buckets.zeroCount == 1)
    }

    @Test func spansAndDeltasDescribeThePopulatedBuckets() {
        var buckets = NativeBuckets(schema: 0, maxBuckets: 100)
        // Schema 0: index i holds (2^(i-1), 2^i].
        for value in [0.125, 0.25, 0.25, 1, 1, 32] { buckets.observe(value) }
        #expect(buckets.indices == [-3, -2, 0, 5])
        #expect(buckets.spans.map { [$0.offset, Int32($0.length)] } == [[-3, 2], [1, 1], [4, 1]])
        #expect(buckets.deltas == [1, 1, 0, -1])
    }
}
