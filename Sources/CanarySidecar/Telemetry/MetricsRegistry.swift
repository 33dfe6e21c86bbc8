import Foundation
import Synchronization

/// A small Prometheus registry: counters, gauges and histograms with labels, rendered as text 0.0.4 or
/// OpenMetrics 1.0.
///
/// Written here rather than taken from swift-prometheus because the exporter needs what that one lacks:
/// OpenMetrics output, removing the series of a backend that a reload dropped, and no `fatalError` on a
/// definition clash (a clash throws at start-up instead).
public final class MetricsRegistry: Sendable {
    public enum Kind: String, Sendable {
        case counter, gauge, histogram
    }

    private let families = Mutex<[String: MetricFamily]>([:])

    public init() {}

    public struct DefinitionError: Error, CustomStringConvertible {
        public var name: String
        public var description: String { "metric \(self.name) is defined twice with different shapes" }
    }

    /// Defines (or returns the existing identical) family. `name` is the sample name: counters end in `_total`.
    public func family(
        _ name: String,
        help: String,
        kind: Kind,
        labels: [String] = [],
        buckets: [Double] = []
    ) throws -> MetricFamily {
        try self.families.withLock { families in
            if let existing = families[name] {
                guard existing.kind == kind, existing.labelNames == labels, existing.help == help,
                    existing.buckets == buckets
                else { throw DefinitionError(name: name) }
                return existing
            }
            let family = MetricFamily(name: name, help: help, kind: kind, labelNames: labels, buckets: buckets)
            families[name] = family
            return family
        }
    }

    /// Renders every family, sorted by name, in the chosen format.
    public func render(format: ExpositionFormat) -> String {
        let families = self.families.withLock { $0.values.sorted { $0.name < $1.name } }
        var out = ""
        out.reserveCapacity(families.count * 256)
        for family in families {
            family.render(into: &out, format: format)
        }
        if format == .openMetrics { out += "# EOF\n" }
        return out
    }
}

/// The two exposition formats Prometheus scrapes.
public enum ExpositionFormat: Sendable {
    case text004
    case openMetrics

    public var contentType: String {
        switch self {
        case .text004: "text/plain; version=0.0.4; charset=utf-8"
        case .openMetrics: "application/openmetrics-text; version=1.0.0; charset=utf-8"
        }
    }

    /// Picks OpenMetrics only when the scraper's `Accept` header asks for it, as Prometheus does.
    public static func negotiate(accept: String?) -> ExpositionFormat {
        guard let accept, accept.contains("application/openmetrics-text") else { return .text004 }
        return .openMetrics
    }
}

/// One metric family and its series.
public final class MetricFamily: Sendable {
    public let name: String
    public let help: String
    public let kind: MetricsRegistry.Kind
    public let labelNames: [String]
    /// Upper bounds of a histogram's buckets, ascending, without `+Inf`.
    public let buckets: [Double]

    struct Histogram: Sendable {
        var counts: [UInt64]
        var sum: Double = 0
        var count: UInt64 = 0
    }

    enum Value: Sendable {
        case scalar(Double)
        case histogram(Histogram)
    }

    private let series = Mutex<[[String]: Value]>([:])

    init(name: String, help: String, kind: MetricsRegistry.Kind, labelNames: [String], buckets: [Double]) {
        self.name = name
        self.help = help
        self.kind = kind
        self.labelNames = labelNames
        self.buckets = buckets
    }

    private func fresh() -> Value {
        self.kind == .histogram ? .histogram(Histogram(counts: Array(repeating: 0, count: self.buckets.count))) : .scalar(0)
    }

    /// Creates the series with zero values if it does not exist, so rates and alerts work before any event.
    public func touch(_ labels: [String]) {
        self.series.withLock { series in
            if series[labels] == nil { series[labels] = self.fresh() }
        }
    }

    /// Adds `amount` to a counter or gauge.
    public func add(_ labels: [String], _ amount: Double = 1) {
        self.series.withLock { series in
            if case .scalar(let value) = series[labels] ?? self.fresh() {
                series[labels] = .scalar(value + amount)
            }
        }
    }

    /// Sets a gauge.
    public func set(_ labels: [String], _ value: Double) {
        self.series.withLock { $0[labels] = .scalar(value) }
    }

    /// Records one observation in a histogram.
    public func observe(_ labels: [String], _ value: Double) {
        self.series.withLock { series in
            guard case .histogram(var histogram) = series[labels] ?? self.fresh() else { return }
            if let index = self.buckets.firstIndex(where: { value <= $0 }) {
                histogram.counts[index] += 1
            }
            histogram.sum += value
            histogram.count += 1
            series[labels] = .histogram(histogram)
        }
    }

    /// The current value of a counter or gauge series (tests, `/status`).
    public func value(_ labels: [String]) -> Double? {
        self.series.withLock { series in
            if case .scalar(let value) = series[labels] { return value }
            return nil
        }
    }

    /// The observation count of a histogram series.
    public func count(_ labels: [String]) -> UInt64? {
        self.series.withLock { series in
            if case .histogram(let histogram) = series[labels] { return histogram.count }
            return nil
        }
    }

    /// Drops every series whose label `label` equals `value` (a backend removed by a reload).
    public func removeSeries(where label: String, equals value: String) {
        guard let index = self.labelNames.firstIndex(of: label) else { return }
        self.series.withLock { series in
            series = series.filter { $0.key[index] != value }
        }
    }

    /// The family name OpenMetrics declares: counters lose their `_total` suffix there.
    private var openMetricsName: String {
        if self.kind == .counter, self.name.hasSuffix("_total") { return String(self.name.dropLast(6)) }
        return self.name
    }

    func render(into out: inout String, format: ExpositionFormat) {
        let snapshot = self.series.withLock { $0 }
        if snapshot.isEmpty && !self.labelNames.isEmpty { return }
        let declared = format == .openMetrics ? self.openMetricsName : self.name
        out += "# HELP \(declared) \(Self.escapeHelp(self.help))\n"
        out += "# TYPE \(declared) \(self.kind.rawValue)\n"
        let rows = snapshot.isEmpty ? [([String](), self.fresh())] : snapshot.sorted { $0.key.lexicographicallyPrecedes($1.key) }
        for (labels, value) in rows {
            let labelText = Self.labelText(names: self.labelNames, values: labels)
            switch value {
            case .scalar(let number):
                out += "\(self.name)\(labelText.isEmpty ? "" : "{\(labelText)}") \(Self.format(number))\n"
            case .histogram(let histogram):
                var cumulative: UInt64 = 0
                let prefix = labelText.isEmpty ? "" : labelText + ","
                for (bound, count) in zip(self.buckets, histogram.counts) {
                    cumulative += count
                    out += "\(self.name)_bucket{\(prefix)le=\"\(Self.format(bound))\"} \(cumulative)\n"
                }
                out += "\(self.name)_bucket{\(prefix)le=\"+Inf\"} \(histogram.count)\n"
                let braces = labelText.isEmpty ? "" : "{\(labelText)}"
                out += "\(self.name)_sum\(braces) \(Self.format(histogram.sum))\n"
                out += "\(self.name)_count\(braces) \(histogram.count)\n"
            }
        }
    }

    static func labelText(names: [String], values: [String]) -> String {
        zip(names, values).map { "\($0)=\"\(Self.escapeLabel($1))\"" }.joined(separator: ",")
    }

    static func escapeLabel(_ value: String) -> String {
        guard value.contains(where: { $0 == "\\" || $0 == "\"" || $0 == "\n" }) else { return value }
        var out = ""
        for character in value {
            switch character {
            case "\\": out += "\\\\"
            case "\"": out += "\\\""
            case "\n": out += "\\n"
            default: out.append(character)
            }
        }
        return out
    }

    static func escapeHelp(_ value: String) -> String {
        value.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\n", with: "\\n")
    }

    static func format(_ value: Double) -> String {
        if value.isNaN { return "NaN" }
        if value == .infinity { return "+Inf" }
        if value == -.infinity { return "-Inf" }
        if value == value.rounded(), abs(value) < 1e15 { return String(Int64(value)) }
        return String(value)
    }
}
