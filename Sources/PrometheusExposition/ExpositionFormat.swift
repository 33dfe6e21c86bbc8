import Foundation

/// The three exposition formats Prometheus scrapes, and the `Accept` negotiation between them.
public enum ExpositionFormat: Sendable, Hashable, CaseIterable {
    /// Text 0.0.4: classic buckets only, no exemplars. Also the answer to any `Accept` we cannot read.
    case text004
    /// OpenMetrics 1.0 text: classic buckets with exemplars.
    case openMetrics
    /// Delimited `io.prometheus.client.MetricFamily` messages: native histograms, classic buckets and exemplars.
    case protobuf

    /// The `Content-Type` of a scrape answer in this format.
    public var contentType: String {
        switch self {
        case .text004: "text/plain; version=0.0.4; charset=utf-8"
        case .openMetrics: "application/openmetrics-text; version=1.0.0; charset=utf-8"
        case .protobuf: "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited"
        }
    }

    /// The format the scraper prefers among those it accepts, by `q` (ties go to the one listed first), as RFC 9110
    /// content negotiation reads `Accept`. A header that names nothing we serve, or that does not parse, gets text
    /// 0.0.4, which every scraper reads: a scrape never fails on negotiation.
    public static func negotiate(accept: String?) -> ExpositionFormat {
        guard let accept, accept.utf8.count <= 4096 else { return .text004 }
        var best: (format: ExpositionFormat, quality: Double)?
        for range in accept.split(separator: ",") {
            guard let (format, quality) = Self.mediaRange(range), quality > 0 else { continue }
            if quality > (best?.quality ?? 0) { best = (format, quality) }
        }
        return best?.format ?? .text004
    }

    /// One media range of `Accept`: the format it names (`nil` for one we do not serve) and its `q`.
    private static func mediaRange(_ text: Substring) -> (ExpositionFormat, Double)? {
        let parts = text.split(separator: ";", omittingEmptySubsequences: false).map {
            $0.trimmingCharacters(in: .whitespaces)
        }
        guard let type = parts.first?.lowercased(), type.contains("/") else { return nil }
        var parameters: [String: String] = [:]
        for parameter in parts.dropFirst() {
            guard let equals = parameter.firstIndex(of: "=") else { return nil }
            let name = parameter[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            var value = parameter[parameter.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            if value.count >= 2, value.hasPrefix("\""), value.hasSuffix("\"") {
                value = String(value.dropFirst().dropLast())
            }
            parameters[name] = value
        }
        var quality = 1.0
        if let q = parameters["q"] {
            guard let value = Double(q), (0...1).contains(value) else { return nil }
            quality = value
        }
        let format: ExpositionFormat
        switch type {
        case "application/vnd.google.protobuf":
            guard parameters["proto"] == "io.prometheus.client.MetricFamily", parameters["encoding"] == "delimited"
            else { return nil }
            format = .protobuf
        case "application/openmetrics-text":
            guard ["1.0.0", "0.0.1", nil].contains(parameters["version"]) else { return nil }
            format = .openMetrics
        case "text/plain":
            guard ["0.0.4", nil].contains(parameters["version"]) else { return nil }
            format = .text004
        case "*/*", "text/*":
            format = .text004
        default:
            return nil
        }
        return (format, quality)
    }
}
