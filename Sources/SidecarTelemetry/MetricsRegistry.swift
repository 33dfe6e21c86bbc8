import Foundation
import ObjectStorage
import SidecarBreaker
import SidecarCanary
import SidecarConfig
import Synchronization

/// A small Prometheus registry: counters, gauges and histograms with labels, rendered as text 0.0.4 or
/// OpenMetrics 1.0.
///
/// Written here rather than taken from swift-prometheus because the exporter needs what that one lacks:
/// OpenMetrics output, removing the series of a backend that a reload dropped, and no `fatalError` on a
/// definition clash (a clash throws at start-up instead).
public final class MetricsRegistry: Sendable {
    /// The three metric types the exporter uses.
    public enum Kind: String, Sendable {
        case counter, gauge, histogram
    }

    private let families = Mutex<[String: MetricFamily]>([:])

    /// An empty registry.
    public init() {}

    struct DefinitionError: Error, CustomStringConvertible {
        var name: String
        var description: String { "metric \(self.name) is defined twice with different shapes" }
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

    /// The names of every defined family.
    var familyNames: [String] { self.families.withLock { Array($0.keys) } }

    /// Renders every family, sorted by name, in the chosen format.
    public func render(format: ExpositionFormat) -> String {
        let families = self.families.withLock { $0.values.sorted { $0.name < $1.name } }
        var out: [UInt8] = []
        out.reserveCapacity(families.count * 4096)
        for family in families {
            family.render(into: &out, format: format)
        }
        if format == .openMetrics { out.append(contentsOf: "# EOF\n".utf8) }
        return String(decoding: out, as: UTF8.self)
    }
}

/// The two exposition formats Prometheus scrapes.
public enum ExpositionFormat: Sendable {
    case text004
    case openMetrics

    /// The `Content-Type` of a scrape answer in this format.
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
    let name: String
    let help: String
    let kind: MetricsRegistry.Kind
    let labelNames: [String]
    /// Upper bounds of a histogram's buckets, ascending, without `+Inf`.
    let buckets: [Double]

    struct Histogram: Sendable {
        var counts: [UInt64]
        var sum: Double = 0
        var count: UInt64 = 0
    }

    enum Value: Sendable {
        case scalar(Double)
        case histogram(Histogram)
    }

    /// The series in insertion order, with their label text rendered once and their sorted order cached until
    /// the next insertion: a scrape then mostly copies bytes.
    struct Store: Sendable {
        private var index: [[String]: Int] = [:]
        private(set) var labels: [[String]] = []
        private(set) var labelBytes: [[UInt8]] = []
        private(set) var values: [Value] = []
        private var order: [Int]?
        let labelNames: [String]

        init(labelNames: [String]) { self.labelNames = labelNames }

        var isEmpty: Bool { self.values.isEmpty }

        subscript(labels: [String]) -> Value? {
            get { self.index[labels].map { self.values[$0] } }
            set {
                guard let newValue else {
                    self.removeAll { $0 == labels }
                    return
                }
                if let position = self.index[labels] {
                    self.values[position] = newValue
                } else {
                    self.index[labels] = self.values.count
                    self.labels.append(labels)
                    var bytes: [UInt8] = []
                    MetricFamily.appendLabels(names: self.labelNames, values: labels, to: &bytes)
                    self.labelBytes.append(bytes)
                    self.values.append(newValue)
                    self.order = nil
                }
            }
        }

        mutating func removeAll(where shouldRemove: ([String]) -> Bool) {
            var kept = Store(labelNames: self.labelNames)
            for position in self.values.indices where !shouldRemove(self.labels[position]) {
                kept[self.labels[position]] = self.values[position]
            }
            self = kept
        }

        /// Positions in label order (computed once per change of the series set).
        mutating func sortedPositions() -> [Int] {
            if let order = self.order { return order }
            let labels = self.labels
            let order = labels.indices.sorted { labels[$0].lexicographicallyPrecedes(labels[$1]) }
            self.order = order
            return order
        }
    }

    private let series: Mutex<Store>
    /// `le="0.001"} ` for each bucket, `+Inf` last: rendered once, appended for every series.
    private let bucketSuffixes: [[UInt8]]

    init(name: String, help: String, kind: MetricsRegistry.Kind, labelNames: [String], buckets: [Double]) {
        self.name = name
        self.help = help
        self.kind = kind
        self.labelNames = labelNames
        self.buckets = buckets
        self.series = Mutex(Store(labelNames: labelNames))
        self.bucketSuffixes = (buckets.map { Self.format($0) } + ["+Inf"]).map { Array("le=\"\($0)\"} ".utf8) }
    }

    private func fresh() -> Value {
        self.kind == .histogram
            ? .histogram(Histogram(counts: Array(repeating: 0, count: self.buckets.count))) : .scalar(0)
    }

    /// Creates the series with zero values if it does not exist, so rates and alerts work before any event.
    func touch(_ labels: [String]) {
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
    func value(_ labels: [String]) -> Double? {
        self.series.withLock { series in
            if case .scalar(let value) = series[labels] { return value }
            return nil
        }
    }

    /// The observation count of a histogram series.
    func count(_ labels: [String]) -> UInt64? {
        self.series.withLock { series in
            if case .histogram(let histogram) = series[labels] { return histogram.count }
            return nil
        }
    }

    /// Drops every series whose label `label` equals `value` (a backend removed by a reload).
    func removeSeries(where label: String, equals value: String) {
        guard let index = self.labelNames.firstIndex(of: label) else { return }
        self.series.withLock { series in
            series.removeAll { $0[index] == value }
        }
    }

    /// Drops every series of the family.
    func removeAllSeries() {
        self.series.withLock { series in series.removeAll { _ in true } }
    }

    /// The family name OpenMetrics declares: counters lose their `_total` suffix there.
    private var openMetricsName: String {
        if self.kind == .counter, self.name.hasSuffix("_total") { return String(self.name.dropLast(6)) }
        return self.name
    }

    /// Appends the family in the exposition format. Works on bytes: with a thousand backends this is hundreds of
    /// thousands of lines, and string interpolation per line cost ten times more than the text itself.
    func render(into out: inout [UInt8], format: ExpositionFormat) {
        let (snapshot, order) = self.series.withLock { store in
            let order = store.sortedPositions()
            return (store, order)
        }
        if snapshot.isEmpty && !self.labelNames.isEmpty { return }
        let declared = format == .openMetrics ? self.openMetricsName : self.name
        out.append(
            contentsOf: "# HELP \(declared) \(Self.escapeHelp(self.help))\n# TYPE \(declared) \(self.kind.rawValue)\n"
                .utf8)
        let rows: [([UInt8], Value)] =
            snapshot.isEmpty ? [([], self.fresh())] : order.map { (snapshot.labelBytes[$0], snapshot.values[$0]) }
        let name = Array(self.name.utf8)
        let bucketName = name + Array("_bucket{".utf8)
        let sumName = name + Array("_sum".utf8)
        let countName = name + Array("_count".utf8)
        for (labels, value) in rows {
            switch value {
            case .scalar(let number):
                out.append(contentsOf: name)
                Self.appendBraced(labels, to: &out)
                out.append(UInt8(ascii: " "))
                Self.appendNumber(number, to: &out)
                out.append(UInt8(ascii: "\n"))
            case .histogram(let histogram):
                var cumulative: UInt64 = 0
                for index in 0...histogram.counts.count {
                    cumulative = index < histogram.counts.count ? cumulative + histogram.counts[index] : histogram.count
                    out.append(contentsOf: bucketName)
                    if !labels.isEmpty {
                        out.append(contentsOf: labels)
                        out.append(UInt8(ascii: ","))
                    }
                    out.append(contentsOf: self.bucketSuffixes[index])
                    Self.appendInteger(cumulative, to: &out)
                    out.append(UInt8(ascii: "\n"))
                }
                out.append(contentsOf: sumName)
                Self.appendBraced(labels, to: &out)
                out.append(UInt8(ascii: " "))
                Self.appendNumber(histogram.sum, to: &out)
                out.append(UInt8(ascii: "\n"))
                out.append(contentsOf: countName)
                Self.appendBraced(labels, to: &out)
                out.append(UInt8(ascii: " "))
                Self.appendInteger(histogram.count, to: &out)
                out.append(UInt8(ascii: "\n"))
            }
        }
    }

    static func appendLabels(names: [String], values: [String], to out: inout [UInt8]) {
        for (index, (name, value)) in zip(names, values).enumerated() {
            if index > 0 { out.append(UInt8(ascii: ",")) }
            out.append(contentsOf: name.utf8)
            out.append(contentsOf: "=\"".utf8)
            out.append(contentsOf: Self.escapeLabel(value).utf8)
            out.append(UInt8(ascii: "\""))
        }
    }

    static func appendBraced(_ labels: [UInt8], to out: inout [UInt8]) {
        guard !labels.isEmpty else { return }
        out.append(UInt8(ascii: "{"))
        out.append(contentsOf: labels)
        out.append(UInt8(ascii: "}"))
    }

    static func appendInteger(_ value: UInt64, to out: inout [UInt8]) {
        if value < 10 {
            out.append(UInt8(ascii: "0") + UInt8(value))
            return
        }
        var digits:
            (
                UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8,
                UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8
            ) =
                (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        var count = 0
        var rest = value
        withUnsafeMutableBytes(of: &digits) { buffer in
            while rest > 0 {
                buffer[count] = UInt8(ascii: "0") + UInt8(rest % 10)
                rest /= 10
                count += 1
            }
            for index in stride(from: count - 1, through: 0, by: -1) { out.append(buffer[index]) }
        }
    }

    static func appendNumber(_ value: Double, to out: inout [UInt8]) {
        if value >= 0, value < 1e15, value == value.rounded() {
            Self.appendInteger(UInt64(value), to: &out)
        } else {
            out.append(contentsOf: Self.format(value).utf8)
        }
    }

    static func escapeLabel(_ value: String) -> String {
        guard
            value.utf8.contains(where: {
                $0 == UInt8(ascii: "\\") || $0 == UInt8(ascii: "\"") || $0 == UInt8(ascii: "\n")
            })
        else { return value }
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
