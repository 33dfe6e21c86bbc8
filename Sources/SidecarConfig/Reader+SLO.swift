import Foundation
import Yams

/// `slo:` (top level or a backend's): service level objectives over 28 days.
public enum SLOKey: String, ConfigSectionKey {
    case availability, latency

    public static let section = "slo"
    public static let summary =
        "Objectives over 28 days; a backend's own slo: replaces availability and merges latency per operation."

    public var spec: ConfigKeySpec {
        switch self {
        case .availability:
            .init(.objective, "The share of cycles that succeed (failed and skipped cycles are bad), such as 99.9%.")
        case .latency:
            .init(
                .mapping("operation to section `\(LatencyObjectiveKey.section)`"),
                "Per operation: the share of its successful steps within a threshold; applies to the backends that "
                    + "run it."
            )
        }
    }
}

/// `slo.latency.OPERATION:`: one operation's latency objective.
public enum LatencyObjectiveKey: String, ConfigSectionKey {
    case threshold, objective

    public static let section = "slo.latency.OPERATION"
    public static let summary = "One operation's latency objective, such as get: {threshold: 100ms, objective: 99%}."

    public var spec: ConfigKeySpec {
        switch self {
        case .threshold:
            .init(
                .duration(min: .milliseconds(1), max: .seconds(600)), required: true,
                "The latency to stay within; below the backend's probe.timeout.")
        case .objective: .init(.objective, required: true, "The share of steps within the threshold, such as 99%.")
        }
    }
}

extension Reader {
    /// `slo:` (top level or a backend's): `availability: 99.9%` and `latency: {OPERATION: {threshold, objective}}`.
    mutating func slo(_ node: Node, _ path: String) -> SLOConfiguration {
        var slo = SLOConfiguration()
        guard let map = self.section(node, path, SLOKey.self) else { return slo }
        if let (n, p) = map[.availability] { slo.availability = self.objective(n, p) }
        if let (n, p) = map[.latency] {
            let operations = CanaryConfiguration.Operation.allCases.map(\.rawValue)
            guard let entries = self.mapping(n, p, allowed: operations) else { return slo }
            for (key, (entryNode, entryPath)) in entries.sorted(by: { $0.key < $1.key }) {
                guard let operation = CanaryConfiguration.Operation(rawValue: key),
                    let entry = self.section(entryNode, entryPath, LatencyObjectiveKey.self)
                else { continue }
                var threshold: Duration?
                if entry.has(.threshold) {
                    threshold = self.duration(entry, .threshold)
                } else {
                    self.problem(entry.path(.threshold), "is required: the latency to stay within, such as 100ms")
                }
                var objective: Double?
                if let (on, op) = entry[.objective] {
                    objective = self.objective(on, op)
                } else {
                    self.problem(entry.path(.objective), "is required: the share within the threshold, such as 99%")
                }
                if let threshold, let objective {
                    slo.latency[operation] = SLOConfiguration.Latency(threshold: threshold, objective: objective)
                }
            }
        }
        return slo
    }

    /// An objective: a share strictly between 0 and 1, written `99.9%` or `0.999`.
    mutating func objective(_ node: Node, _ path: String) -> Double? {
        guard let text = self.string(node, path) else { return nil }
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        // Through Decimal and its text, so 99.9% is the double nearest 0.999 (99.9 / 100 in binary is not, and
        // Decimal's own doubleValue is not exact either).
        let number = Decimal(string: String(trimmed.hasSuffix("%") ? trimmed.dropLast() : Substring(trimmed)))
        let value = number.flatMap { Double("\(trimmed.hasSuffix("%") ? $0 / 100 : $0)") }
        guard let value, value.isFinite, value > 0, value < 1 else {
            self.problem(
                path,
                "\"\(text)\" is not an objective above 0 % and below 100 %; write it such as 99.9% or 0.999 "
                    + "(100 % leaves no error budget)")
            return nil
        }
        return value
    }
}
