import Foundation
import Synchronization

/// A small Prometheus registry: counters, gauges and histograms with labels, rendered as text 0.0.4, OpenMetrics
/// 1.0 (with exemplars) or the protobuf exposition (with native histograms).
///
/// Written here rather than taken from swift-prometheus because the exporter needs what that one lacks:
/// OpenMetrics and protobuf output, native histograms and exemplars, removing the series of a backend that a
/// reload dropped, and no `fatalError` on a definition clash (a clash throws at start-up instead).
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
        try self.family(name, help: help, kind: kind, labels: labels, histogram: HistogramShape(classic: buckets))
    }

    /// Defines (or returns the existing identical) histogram family of the given shape.
    public func family(
        _ name: String,
        help: String,
        kind: Kind,
        labels: [String] = [],
        histogram shape: HistogramShape
    ) throws -> MetricFamily {
        try self.families.withLock { families in
            if let existing = families[name] {
                guard existing.kind == kind, existing.labelNames == labels, existing.help == help,
                    existing.shape == shape
                else { throw DefinitionError(name: name) }
                return existing
            }
            let family = MetricFamily(name: name, help: help, kind: kind, labelNames: labels, shape: shape)
            families[name] = family
            return family
        }
    }

    /// The names of every defined family.
    public var familyNames: [String] { self.families.withLock { Array($0.keys) } }

    /// Renders every family, sorted by name, in the chosen format.
    public func render(format: ExpositionFormat) -> [UInt8] {
        let families = self.families.withLock { $0.values.sorted { $0.name < $1.name } }
        var out: [UInt8] = []
        out.reserveCapacity(families.count * 4096)
        if format == .protobuf {
            var family = ProtobufWriter(capacity: 1 << 16)
            var scratch = MetricFamily.ProtobufScratch()
            var writer = ProtobufWriter(capacity: families.count * 4096)
            for each in families {
                family.removeAll()
                guard each.encode(into: &family, scratch: &scratch) else { continue }
                writer.delimited(family.bytes)
            }
            return writer.bytes
        }
        for family in families {
            family.render(into: &out, format: format)
        }
        if format == .openMetrics { out.append(contentsOf: "# EOF\n".utf8) }
        return out
    }

    /// The text formats as a string (tests, `/probe`).
    public func renderText(format: ExpositionFormat) -> String {
        String(decoding: self.render(format: format), as: UTF8.self)
    }
}
