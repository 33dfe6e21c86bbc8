import Foundation
import Synchronization

/// What a histogram family keeps and shows: classic buckets (their bounds also sort the exemplars), native
/// buckets, exemplars.
public struct HistogramShape: Sendable, Equatable {
    /// Native (exponential) buckets: the starting schema and the most buckets a series keeps.
    public struct Native: Sendable, Equatable {
        public var schema: Int
        public var maxBuckets: Int

        public init(schema: Int, maxBuckets: Int) {
            self.schema = schema
            self.maxBuckets = maxBuckets
        }
    }

    /// Classic bucket upper bounds, ascending, `+Inf` implied.
    public var classic: [Double]
    /// Whether the classic buckets are shown; when not, a text scrape shows only `+Inf`, `_sum` and `_count`, as
    /// Prometheus's own clients do for a native-only histogram.
    public var exposeClassic: Bool
    /// Native buckets, shown in the protobuf format; `nil`: classic only.
    public var native: Native?
    /// Whether observations carry exemplars (the latest per classic bucket is kept).
    public var exemplars: Bool

    public init(classic: [Double], exposeClassic: Bool = true, native: Native? = nil, exemplars: Bool = false) {
        self.classic = classic
        self.exposeClassic = exposeClassic
        self.native = native
        self.exemplars = exemplars
    }
}

/// An exemplar: one observation's value and time, labelled with the S3 request id that produced it, so on-call can
/// go from a latency spike to the id the storage vendor asks for.
public struct Exemplar: Sendable, Equatable {
    /// The exemplar's one label.
    public static let labelName = "request_id"

    /// The request id (`x-amz-request-id`).
    public var requestID: String
    /// The observed value.
    public var value: Double
    /// Unix time of the observation, in seconds.
    public var timestamp: Double

    /// An exemplar, or `nil` when the id does not fit OpenMetrics' limit of 128 characters for an exemplar's label
    /// names and values together (an S3 request id is 16 to about 60): a clipped id would name another request.
    public init?(requestID: String, value: Double, timestamp: Double) {
        guard !requestID.isEmpty, requestID.unicodeScalars.count + Self.labelName.count <= 128,
            timestamp.isFinite, (0..<1e11).contains(timestamp)
        else { return nil }
        self.requestID = requestID
        self.value = value
        self.timestamp = timestamp
    }
}

extension MetricsRegistry.Kind {
    /// The `io.prometheus.client.MetricType` value.
    var protobufType: UInt64 {
        switch self {
        case .counter: 0
        case .gauge: 1
        case .histogram: 4
        }
    }
}

/// One metric family and its series.
public final class MetricFamily: Sendable {
    public let name: String
    public let help: String
    public let kind: MetricsRegistry.Kind
    public let labelNames: [String]
    /// What a histogram keeps and shows.
    public let shape: HistogramShape
    /// Upper bounds of a histogram's classic buckets, ascending, without `+Inf`.
    public var buckets: [Double] { self.shape.classic }

    struct Histogram: Sendable {
        /// Observations per classic bucket (not cumulative), without `+Inf`.
        var counts: [UInt64]
        var sum: Double = 0
        var count: UInt64 = 0
        var native: NativeBuckets?
        /// The latest exemplar per classic bucket, `+Inf` last; empty when the family keeps none.
        var exemplars: [Exemplar?]
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

    init(name: String, help: String, kind: MetricsRegistry.Kind, labelNames: [String], shape: HistogramShape) {
        self.name = name
        self.help = help
        self.kind = kind
        self.labelNames = labelNames
        self.shape = shape
        self.series = Mutex(Store(labelNames: labelNames))
        let shown = shape.exposeClassic ? shape.classic : []
        self.bucketSuffixes = (shown.map { Self.format($0) } + ["+Inf"]).map { Array("le=\"\($0)\"} ".utf8) }
    }

    private func fresh() -> Value {
        guard self.kind == .histogram else { return .scalar(0) }
        return .histogram(
            Histogram(
                counts: Array(repeating: 0, count: self.shape.classic.count),
                native: self.shape.native.map { NativeBuckets(schema: $0.schema, maxBuckets: $0.maxBuckets) },
                exemplars: self.shape.exemplars ? Array(repeating: nil, count: self.shape.classic.count + 1) : []
            )
        )
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

    /// Records one observation in a histogram, with its exemplar when the family keeps them.
    public func observe(_ labels: [String], _ value: Double, exemplar: Exemplar? = nil) {
        let slot = self.buckets.firstIndex(where: { value <= $0 }) ?? self.buckets.count
        self.series.withLock { series in
            guard case .histogram(var histogram) = series[labels] ?? self.fresh() else { return }
            if slot < histogram.counts.count {
                histogram.counts[slot] += 1
            }
            histogram.native?.observe(value)
            if let exemplar, slot < histogram.exemplars.count {
                histogram.exemplars[slot] = exemplar
            }
            histogram.sum += value
            histogram.count += 1
            series[labels] = .histogram(histogram)
        }
    }

    /// The exemplars a histogram series keeps, oldest first (tests, `/status`).
    public func exemplars(_ labels: [String]) -> [Exemplar] {
        self.series.withLock { series in
            guard case .histogram(let histogram) = series[labels] else { return [] }
            return histogram.exemplars.compactMap { $0 }.sorted { $0.timestamp < $1.timestamp }
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
            series.removeAll { $0[index] == value }
        }
    }

    /// Drops the series whose label values `shouldRemove` picks.
    public func removeSeries(where shouldRemove: ([String]) -> Bool) {
        self.series.withLock { series in series.removeAll(where: shouldRemove) }
    }

    /// Drops every series of the family.
    public func removeAllSeries() {
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
                let shown = self.shape.exposeClassic ? histogram.counts.count : 0
                let exemplars = format == .openMetrics ? histogram.exemplars : []
                var cumulative: UInt64 = 0
                for index in 0...shown {
                    cumulative = index < shown ? cumulative + histogram.counts[index] : histogram.count
                    out.append(contentsOf: bucketName)
                    if !labels.isEmpty {
                        out.append(contentsOf: labels)
                        out.append(UInt8(ascii: ","))
                    }
                    out.append(contentsOf: self.bucketSuffixes[index])
                    Self.appendInteger(cumulative, to: &out)
                    // The bucket's exemplar; `+Inf` alone (classic buckets hidden) shows the latest of them all.
                    let exemplar: Exemplar? =
                        exemplars.isEmpty
                        ? nil
                        : shown > 0 ? exemplars[index] : exemplars.compactMap { $0 }.max { $0.timestamp < $1.timestamp }
                    if let exemplar { Self.appendExemplar(exemplar, to: &out) }
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

    /// Reusable buffers for nested messages whose size is only known once written (a metric, a histogram).
    struct ProtobufScratch {
        var metric = ProtobufWriter(capacity: 1024)
        var histogram = ProtobufWriter(capacity: 1024)
    }

    /// Writes the family as one `io.prometheus.client.MetricFamily` message; `false` when it has nothing to show
    /// (a labelled family without series, as in the text formats).
    func encode(into out: inout ProtobufWriter, scratch: inout ProtobufScratch) -> Bool {
        let (snapshot, order) = self.series.withLock { store in
            let order = store.sortedPositions()
            return (store, order)
        }
        if snapshot.isEmpty && !self.labelNames.isEmpty { return false }
        out.string(1, self.name)
        out.string(2, self.help)
        out.unsigned(3, self.kind.protobufType)
        let rows: [([String], Value)] =
            snapshot.isEmpty ? [([], self.fresh())] : order.map { (snapshot.labels[$0], snapshot.values[$0]) }
        for (labels, value) in rows {
            scratch.metric.removeAll()
            for (name, labelValue) in zip(self.labelNames, labels) {
                scratch.metric.labelPair(1, name: name, value: labelValue)
            }
            switch value {
            case .scalar(let number):
                scratch.metric.doubleMessage(self.kind == .counter ? 3 : 2, number)
            case .histogram(let histogram):
                scratch.histogram.removeAll()
                self.encode(histogram, into: &scratch.histogram)
                scratch.metric.embedded(7, scratch.histogram)
            }
            out.embedded(4, scratch.metric)
        }
        return true
    }

    /// A `Histogram` message: count and sum, the classic buckets (cumulative, with their exemplars) when shown, and
    /// the native buckets (schema, zero bucket, spans, deltas) with every exemplar when native.
    private func encode(_ histogram: Histogram, into out: inout ProtobufWriter) {
        out.unsigned(1, histogram.count)
        out.double(2, histogram.sum)
        if self.shape.exposeClassic {
            var cumulative: UInt64 = 0
            for (index, bound) in self.shape.classic.enumerated() {
                cumulative += histogram.counts[index]
                // Prometheus before 2.49 reads a native histogram's exemplars from these buckets only.
                let exemplar = histogram.exemplars.isEmpty ? nil : histogram.exemplars[index]
                var size = 1 + ProtobufWriter.varintSize(cumulative) + 9
                if let exemplar {
                    let inner = ProtobufWriter.exemplarSize(
                        labelName: Exemplar.labelName, labelValue: exemplar.requestID, timestamp: exemplar.timestamp)
                    size += 1 + ProtobufWriter.varintSize(UInt64(inner)) + inner
                }
                out.key(3, 2)
                out.varint(UInt64(size))
                out.unsigned(1, cumulative)
                out.double(2, bound)
                if let exemplar {
                    out.exemplar(
                        3, labelName: Exemplar.labelName, labelValue: exemplar.requestID, value: exemplar.value,
                        timestamp: exemplar.timestamp)
                }
            }
        }
        guard let native = histogram.native else { return }
        out.signed(5, Int64(native.schema))
        out.double(6, NativeBuckets.zeroThreshold)
        out.unsigned(7, native.zeroCount)
        for span in native.spans {
            out.span(12, offset: span.offset, length: span.length)
        }
        for delta in native.deltas { out.signed(13, delta) }
        for exemplar in histogram.exemplars.compactMap({ $0 }).sorted(by: { $0.value < $1.value }) {
            out.exemplar(
                16, labelName: Exemplar.labelName, labelValue: exemplar.requestID, value: exemplar.value,
                timestamp: exemplar.timestamp)
        }
    }

    /// ` # {request_id="..."} value timestamp`, OpenMetrics' exemplar syntax.
    static func appendExemplar(_ exemplar: Exemplar, to out: inout [UInt8]) {
        out.append(contentsOf: " # {\(Exemplar.labelName)=\"".utf8)
        out.append(contentsOf: Self.escapeLabel(exemplar.requestID).utf8)
        out.append(contentsOf: "\"} ".utf8)
        out.append(contentsOf: Self.format(exemplar.value).utf8)
        out.append(UInt8(ascii: " "))
        // Seconds with milliseconds, in integers: `String(format:)` per exemplar cost more than the rest of the line.
        let millis = UInt64((exemplar.timestamp * 1000).rounded())
        Self.appendInteger(millis / 1000, to: &out)
        out.append(UInt8(ascii: "."))
        let fraction = millis % 1000
        if fraction < 100 { out.append(UInt8(ascii: "0")) }
        if fraction < 10 { out.append(UInt8(ascii: "0")) }
        Self.appendInteger(fraction, to: &out)
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
