import Foundation
import ObjectStorage
import Yams

/// `metrics:`: the latency histograms' shape, which decides how many series a backend costs.
public enum MetricsKey: String, ConfigSectionKey {
    case classicHistograms = "classic_histograms"
    case classicBuckets = "classic_buckets"
    case nativeHistograms = "native_histograms"
    case nativeHistogramBucketFactor = "native_histogram_bucket_factor"
    case nativeHistogramMaxBuckets = "native_histogram_max_buckets"
    case timeToFirstByte = "time_to_first_byte"
    case requestPhases = "request_phases"

    public static let section = "metrics"
    public static let summary =
        "The latency histograms' shape; read at start-up only (a reload that changes it keeps the running "
            + "histograms, with a warning)."

    public var spec: ConfigKeySpec {
        switch self {
        case .classicHistograms:
            .init(.bool, default: "true", "Classic buckets (a series each), in every exposition format.")
        case .classicBuckets:
            .init(
                .list("1 to 30 ascending bounds, seconds or durations"), default: "[0.025, 0.1, 0.25, 1]",
                "The classic buckets' upper bounds; +Inf is implied; keep 1, which the latency alert reads.")
        case .nativeHistograms:
            .init(.bool, default: "true", "Native buckets (one series), in the protobuf format only.")
        case .nativeHistogramBucketFactor:
            .init(
                .number, default: "1.1",
                "The widest bucket ratio, 1.002712 (schema 8) to 65536 (schema -4); 1.1 gives schema 3.")
        case .nativeHistogramMaxBuckets:
            .init(.integer(2...10_000), default: "160", "Past this many buckets a series halves its resolution.")
        case .timeToFirstByte:
            .init(.bool, default: "false", "Also export s3canary_operation_ttfb_seconds, of the same shape.")
        case .requestPhases:
            .init(
                .bool, default: "false",
                "Also export s3canary_request_phase_seconds (dns, connect, tls, request, first_byte, transfer), of the "
                    + "same shape; the status document and the debug probe show the phases either way.")
        }
    }
}

extension Reader {
    /// `metrics:`: histogram shapes, each checked against what Prometheus accepts.
    mutating func metrics(_ node: Node, _ path: String) -> MetricsConfiguration {
        var metrics = MetricsConfiguration()
        guard let map = self.section(node, path, MetricsKey.self) else { return metrics }
        if let value = self.bool(map, .classicHistograms) { metrics.classicHistograms = value }
        if let value = self.bool(map, .nativeHistograms) { metrics.nativeHistograms = value }
        if let value = self.bool(map, .timeToFirstByte) { metrics.timeToFirstByte = value }
        if let value = self.bool(map, .requestPhases) { metrics.requestPhases = value }
        if !metrics.classicHistograms && !metrics.nativeHistograms {
            self.problem(
                map.path(.classicHistograms),
                "and native_histograms are both false; latency needs one of them (classic for text scrapers)")
        }
        if let (n, p) = map[.classicBuckets], let entries = self.list(n, p) {
            var bounds: [Double] = []
            for (entry, entryPath) in entries {
                guard let text = self.string(entry, entryPath) else { continue }
                guard let seconds = Self.seconds(text), seconds > 0, seconds.isFinite else {
                    self.problem(
                        entryPath, "\"\(text)\" is not a positive number of seconds or a duration (0.1, 250ms)")
                    continue
                }
                bounds.append(seconds)
            }
            if entries.isEmpty || entries.count > 30 {
                self.problem(p, "needs 1 to 30 bounds (each is a series per backend and operation); +Inf is implied")
            } else if bounds.count == entries.count {
                if zip(bounds, bounds.dropFirst()).contains(where: { $0 >= $1 }) {
                    self.problem(p, "must be strictly ascending, such as [0.025, 0.1, 0.25, 1]")
                } else {
                    metrics.classicBuckets = bounds
                }
            }
        }
        if let (n, p) = map[.nativeHistogramBucketFactor], let text = self.string(n, p) {
            let range = MetricsConfiguration.factorRange
            if let factor = Double(text.trimmingCharacters(in: .whitespaces)), range.contains(factor) {
                metrics.nativeBucketFactor = factor
            } else {
                self.problem(
                    p,
                    "\"\(text)\" is out of range: a bucket factor is between \(String(format: "%.6f", range.lowerBound)) "
                        + "(2^(1/256), schema 8) and 65536 (schema -4); 1.1 gives buckets at most 10 % wide"
                )
            }
        }
        if let value = self.integer(map, .nativeHistogramMaxBuckets) { metrics.nativeMaxBuckets = value }
        return metrics
    }

    /// A bucket bound: plain seconds (`0.25`) or a duration (`250ms`).
    static func seconds(_ text: String) -> Double? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let value = Double(trimmed) { return value }
        return Self.parseDuration(trimmed)?.seconds
    }
}
