import Foundation
import ObjectStorage
import Yams

/// `probe:` (the defaults) and a backend's `probe:` (its overrides): the canary cycle.
public enum ProbeKey: String, ConfigSectionKey {
    case interval, timeout, jitter
    case objectSize = "object_size"
    case keyPrefix = "key_prefix"
    case operations, every, require, multipart
    case checksumAlgorithm = "checksum_algorithm"

    public static let section = "probe"
    public static let summary =
        "The canary cycle: the defaults for every backend, and each backend's own overrides (backends[].probe)."

    public var spec: ConfigKeySpec {
        switch self {
        case .interval:
            .init(
                .duration(min: .milliseconds(100), max: .seconds(86_400)), default: "15s",
                "How often each backend runs a cycle.")
        case .timeout:
            .init(
                .duration(min: .milliseconds(1), max: .seconds(86_400)), default: "5s",
                "The deadline of each operation; shorter than the interval (a cycle ends at 90 % of the interval).")
        case .jitter:
            .init(
                .fraction, default: "10%",
                "Each cycle's start moves by up to this share of the interval, so a fleet does not probe in step.")
        case .objectSize: .init(.size(1...(64 << 20)), default: "1KiB", "The canary object's size.")
        case .keyPrefix:
            .init(
                .string, default: ".s3-canary/",
                "Where the canary writes: <key_prefix><instance>/<backend>/; must not start with / or contain //.")
        case .operations:
            .init(
                .list("operations: " + CanaryConfiguration.Operation.allCases.map(\.rawValue).joined(separator: ", ")),
                default: "[put, head, get, get_range, delete]",
                "The steps of a cycle, run in a fixed order; put and delete are required. conditional, presign, "
                    + "checksum, aws_chunked and multipart are the compatibility canaries."
            )
        case .every:
            .init(
                .mapping("operation to duration"),
                "How often an operation runs when not every cycle, such as {multipart: 10m, list: 1m}: at the first "
                    + "cycle at least that long (less half an interval) after its last run, and the next cycle after "
                    + "a failed one. At least the interval; not put or delete, which are the cycle; unset: every "
                    + "operation each cycle. A backend's every replaces the top-level one."
            )
        case .require:
            .init(
                .list("features: " + CanaryConfiguration.Operation.features.map(\.rawValue).joined(separator: ", ")),
                default: "[]",
                "Features the applications depend on: one the server answers as unsupported fails the cycle (and "
                    + "counts against the breaker) instead of being reported only; each must be in operations.")
        case .multipart: .init(.section(MultipartKey.section), "The multipart canary's parts.")
        case .checksumAlgorithm:
            .init(
                .choice(ChecksumAlgorithm.allCases.map(\.rawValue)), default: "crc32",
                "The flexible checksum the checksum and aws_chunked canaries send.")
        }
    }
}

/// `probe.multipart:`: the multipart canary's object, as parts.
public enum MultipartKey: String, ConfigSectionKey {
    case partSize = "part_size"
    case lastPartSize = "last_part_size"

    public static let section = "probe.multipart"
    public static let summary = "The multipart canary's parts: one of part_size, then the last one."

    public var spec: ConfigKeySpec {
        switch self {
        case .partSize:
            .init(.size(1...(5 << 30)), default: "5MiB", "Every part but the last; at least 5MiB, S3's minimum.")
        case .lastPartSize: .init(.size(1...(5 << 30)), default: "1MiB", "The last part.")
        }
    }
}

/// `breaker:` (the defaults) and a backend's `breaker:`: when a backend's circuit opens and is tried again.
public enum BreakerKey: String, ConfigSectionKey {
    case failureThreshold = "failure_threshold"
    case openTimeout = "open_timeout"
    case probeTimeout = "probe_timeout"

    public static let section = "breaker"
    public static let summary =
        "The circuit breaker: the defaults for every backend, and each backend's own overrides (backends[].breaker)."

    public var spec: ConfigKeySpec {
        switch self {
        case .failureThreshold:
            .init(.integer(1...1000), default: "3", "Consecutive failed cycles that open the breaker.")
        case .openTimeout:
            .init(
                .duration(min: .milliseconds(100), max: .seconds(86_400)), default: "30s",
                "How long it stays open before one half-open probe (plus up to 25 % jitter).")
        case .probeTimeout:
            .init(
                .duration(min: .milliseconds(100), max: .seconds(86_400)),
                "A half-open probe longer than this is abandoned; default twice probe.timeout.")
        }
    }
}

extension Reader {
    mutating func probe(_ node: Node, _ path: String, base: CanaryConfiguration.Probe) -> CanaryConfiguration.Probe {
        var probe = base
        guard let map = self.section(node, path, ProbeKey.self) else { return probe }
        if let v = self.duration(map, .interval) { probe.interval = v }
        if let v = self.duration(map, .timeout) { probe.timeout = v }
        if let (n, p) = map[.jitter], let v = self.fraction(n, p) { probe.jitter = v }
        if let v = self.size(map, .objectSize) { probe.objectSize = v }
        if let (n, p) = map[.keyPrefix], let v = self.string(n, p) {
            if v.hasPrefix("/") || v.contains("//") || v.count > 512 {
                self.problem(p, "\"\(v)\" must not start with / or contain //; the default is .s3-canary/")
            } else {
                probe.keyPrefix = v.hasSuffix("/") ? v : v + "/"
            }
        }
        if let (n, p) = map[.operations], let items = self.list(n, p) {
            var operations: [CanaryConfiguration.Operation] = []
            for (item, itemPath) in items {
                guard let text = self.string(item, itemPath) else { continue }
                guard let operation = CanaryConfiguration.Operation(rawValue: text) else {
                    let names = CanaryConfiguration.Operation.allCases.map(\.rawValue).joined(separator: ", ")
                    self.problem(itemPath, "\"\(text)\" is not an operation (one of \(names))")
                    continue
                }
                if operations.contains(operation) {
                    self.problem(itemPath, "\(text) is listed twice")
                } else {
                    operations.append(operation)
                }
            }
            // A cycle runs in a fixed order whatever the list's order.
            probe.operations = CanaryConfiguration.Operation.allCases.filter(operations.contains)
            if !operations.contains(.put) || !operations.contains(.delete) {
                self.problem(p, "must include put and delete: the canary writes its own object and removes it")
            }
        }
        if let (n, p) = map[.every] {
            let names = CanaryConfiguration.Operation.allCases.map(\.rawValue)
            if let entries = self.mapping(n, p, allowed: names) {
                var every: [CanaryConfiguration.Operation: Duration] = [:]
                for (name, (entryNode, entryPath)) in entries.sorted(by: { $0.key < $1.key }) {
                    guard let operation = CanaryConfiguration.Operation(rawValue: name) else { continue }
                    if operation == .put || operation == .delete {
                        self.problem(
                            entryPath,
                            "\(name) runs in every cycle (the cycle writes and removes its own object); its pace is "
                                + "probe.interval")
                        continue
                    }
                    if let duration = self.duration(entryNode, entryPath) { every[operation] = duration }
                }
                probe.every = every
            }
        }
        if let (n, p) = map[.require], let items = self.list(n, p) {
            var required: Set<CanaryConfiguration.Operation> = []
            for (item, itemPath) in items {
                guard let text = self.string(item, itemPath) else { continue }
                guard let feature = CanaryConfiguration.Operation(rawValue: text), feature.isFeature else {
                    let names = CanaryConfiguration.Operation.features.map(\.rawValue).joined(separator: ", ")
                    self.problem(itemPath, "\"\(text)\" is not a compatibility feature (one of \(names))")
                    continue
                }
                if !required.insert(feature).inserted { self.problem(itemPath, "\(text) is listed twice") }
            }
            probe.required = required
        }
        if let (n, p) = map[.multipart], let sizes = self.section(n, p, MultipartKey.self) {
            if let v = self.size(sizes, .partSize) {
                if v < 5 << 20 {
                    let partPath = sizes.path(.partSize)
                    self.problem(
                        partPath, "\(v) bytes is below S3's 5MiB minimum for every part but the last; use 5MiB")
                } else {
                    probe.multipart.partSize = v
                }
            }
            if let v = self.size(sizes, .lastPartSize) { probe.multipart.lastPartSize = v }
        }
        if let (n, p) = map[.checksumAlgorithm], let text = self.string(n, p) {
            if let algorithm = ChecksumAlgorithm(rawValue: text.lowercased()) {
                probe.checksumAlgorithm = algorithm
            } else {
                let names = ChecksumAlgorithm.allCases.map(\.rawValue).joined(separator: ", ")
                self.problem(p, "\"\(text)\" is not a checksum algorithm S3 knows (one of \(names))")
            }
        }
        return probe
    }

    /// The slowest link a multipart canary is sized for: its parts go up and the object comes back down within one
    /// operation timeout at this rate, or `check-config` says so.
    static let multipartFloorBytesPerSecond = 8 << 20

    mutating func checkProbe(_ probe: CanaryConfiguration.Probe, _ path: String) {
        let notRun = CanaryConfiguration.Operation.features.filter { probe.required.contains($0) }
            .filter { !probe.operations.contains($0) }
        if !notRun.isEmpty {
            let names = notRun.map(\.rawValue).joined(separator: ", ")
            self.problem(
                "\(path).require",
                """
                \(names) required (here or by the top-level probe.require) but not run: add \
                \(notRun.count == 1 ? "it" : "them") to \(path).operations
                """)
        }
        for (operation, every) in probe.every.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            let entryPath = "\(path).every.\(operation.rawValue)"
            if !probe.operations.contains(operation) {
                self.problem(
                    entryPath, "\(operation.rawValue) is not run: add it to \(path).operations or remove it here")
            } else if every < probe.interval {
                self.problem(
                    entryPath,
                    "\(every) is shorter than the interval \(probe.interval): an operation runs at most once a "
                        + "cycle; remove it here to run it every cycle")
            }
        }
        if probe.operations.contains(.multipart) {
            let needed = Double(2 * probe.multipart.objectSize) / Double(Self.multipartFloorBytesPerSecond)
            if needed > probe.timeout.seconds {
                self.problem(
                    "\(path).multipart",
                    """
                    \(probe.multipart.objectSize) bytes up and down again take \(String(format: "%.1f", needed))s at \
                    8MiB/s, longer than the timeout \(probe.timeout); raise \(path).timeout to at least \
                    \(Int(needed.rounded(.up)))s or lower part_size/last_part_size
                    """
                )
            }
        }
        if probe.timeout >= probe.interval {
            self.problem(
                "\(path).timeout",
                """
                \(probe.timeout) must be shorter than the interval \(probe.interval): \
                a cycle never outlives its interval
                """
            )
        }
    }

    mutating func breaker(
        _ node: Node, _ path: String, base: CanaryConfiguration.Breaker
    ) -> CanaryConfiguration.Breaker {
        var breaker = base
        guard let map = self.section(node, path, BreakerKey.self) else { return breaker }
        if let v = self.integer(map, .failureThreshold) { breaker.failureThreshold = v }
        if let v = self.duration(map, .openTimeout) { breaker.openTimeout = v }
        if let v = self.duration(map, .probeTimeout) { breaker.probeTimeout = v }
        return breaker
    }
}
