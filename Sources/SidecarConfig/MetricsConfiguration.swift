import Foundation

/// `metrics:`: the shape of the latency histograms, which decides how many series a backend costs.
///
/// Classic histograms are a series per bucket; native histograms (Prometheus's protobuf exposition) are one series
/// with far finer buckets. Both are on by default: a scraper that negotiates protobuf gets the native one (and the
/// classic buckets beside it), a text scraper gets the classic buckets only. Read at start-up; a reload that
/// changes it keeps the running shape (a histogram cannot change its buckets under a running Prometheus).
public struct MetricsConfiguration: Sendable, Equatable {
    /// Whether latency histograms carry classic buckets (`classic_histograms`).
    public var classicHistograms = true
    /// Upper bounds of the classic buckets, ascending, `+Inf` implied (`classic_buckets`). Few on purpose: each is a
    /// series per backend and operation. 1 s is the latency alert's threshold, 0.1 s a common objective.
    public var classicBuckets: [Double] = [0.025, 0.1, 0.25, 1]
    /// Whether latency histograms carry native buckets, exposed in the protobuf format (`native_histograms`).
    public var nativeHistograms = true
    /// The widest a native bucket may be, as the ratio of its upper to its lower bound
    /// (`native_histogram_bucket_factor`); the schema is the coarsest whose factor is at most this.
    public var nativeBucketFactor = 1.1
    /// Most native buckets a series keeps (`native_histogram_max_buckets`): beyond it, the series halves its
    /// resolution (merges neighbouring buckets), as Prometheus's own clients do.
    public var nativeMaxBuckets = 160
    /// Whether the time-to-first-byte histogram is exported (`time_to_first_byte`); off by default, it doubles the
    /// latency series.
    public var timeToFirstByte = false
    /// Whether the request phase histogram is exported (`request_phases`); off by default, it costs a histogram per
    /// phase and backend.
    public var requestPhases = false

    /// The defaults.
    public init() {}

    /// Factors a schema can give: schema `s` grows buckets by 2^(2^-s), from 65536 (schema -4) to about 1.0027
    /// (schema 8).
    public static let factorRange: ClosedRange<Double> = Self.factor(ofSchema: 8)...Self.factor(ofSchema: -4)

    /// The native-histogram schema for `nativeBucketFactor`: the coarsest whose buckets grow by at most the factor.
    public var nativeSchema: Int {
        (-4...8).first { Self.factor(ofSchema: $0) <= self.nativeBucketFactor } ?? 8
    }

    /// How much each bucket of `schema` is wider than the previous one.
    public static func factor(ofSchema schema: Int) -> Double {
        pow(2, pow(2, Double(-schema)))
    }
}
