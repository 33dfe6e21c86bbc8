import Foundation
import ObjectStorage
import Yams

/// `backends[].durability`: a corpus of objects written once and read back for ever (docs/design.md, 4.15).
public enum DurabilityKey: String, ConfigSectionKey {
    case objects
    case objectSize = "object_size"
    case prefix
    case sampleEvery = "sample_every"
    case sampleSize = "sample_size"
    case fullEvery = "full_every"
    case concurrency
    case requestsPerSecond = "requests_per_second"

    public static let section = "backends[].durability"
    public static let summary =
        "A durability corpus: objects written once (content derived from each key), sampled often and read in full "
        + "rarely; a missing or damaged object is reported and never rewritten. Absent: none."

    public var spec: ConfigKeySpec {
        switch self {
        case .objects:
            .init(
                .integer(1...10_000_000), default: "10000",
                "Objects in the corpus; a corpus, once written, keeps its own count.")
        case .objectSize: .init(.size(1...(16 << 20)), default: "10KiB", "Each object's size.")
        case .prefix:
            .init(
                .string, default: ".s3-canary-durability/",
                "Where the corpus lives, shared by every instance (one corpus per bucket and prefix); must not overlap "
                    + "probe.key_prefix, which the sweeper cleans.")
        case .sampleEvery:
            .init(
                .duration(min: .seconds(1), max: .seconds(86_400)), default: "1m",
                "How often a random sample is read back and checked byte for byte.")
        case .sampleSize: .init(.integer(1...10_000), default: "20", "Objects per sample.")
        case .fullEvery:
            .init(
                .duration(min: .seconds(1), max: .seconds(30 * 86_400)), default: "24h",
                "How often the whole corpus is read back, from the end of the last full pass.")
        case .concurrency: .init(.integer(1...64), default: "4", "Requests in flight at once for the corpus.")
        case .requestsPerSecond:
            .init(
                .integer(1...100_000), default: "50",
                "The corpus's requests per second at most, writing and reading, so it never starves the canary.")
        }
    }
}

extension Reader {
    /// `backends[].durability`, checked against the backend's canary prefix.
    mutating func durability(
        _ node: Node, _ path: String, probe: CanaryConfiguration.Probe
    ) -> CanaryConfiguration.Durability? {
        guard let map = self.section(node, path, DurabilityKey.self) else { return nil }
        var durability = CanaryConfiguration.Durability()
        if let v = self.integer(map, .objects) { durability.objects = v }
        if let v = self.size(map, .objectSize) { durability.objectSize = v }
        if let (n, p) = map[.prefix], let v = self.string(n, p) {
            if v.isEmpty || v.hasPrefix("/") || v.contains("//") || v.count > 512 {
                self.problem(
                    p,
                    "\"\(v)\" must be non-empty and not start with / or contain //; the default is "
                        + ".s3-canary-durability/")
            } else {
                durability.prefix = v.hasSuffix("/") ? v : v + "/"
            }
        }
        if durability.prefix.hasPrefix(probe.keyPrefix) || probe.keyPrefix.hasPrefix(durability.prefix) {
            self.problem(
                map.path(.prefix),
                "\(durability.prefix) overlaps probe.key_prefix \(probe.keyPrefix), where the sweeper deletes old "
                    + "objects; give the corpus a prefix of its own")
        }
        if let v = self.duration(map, .sampleEvery) { durability.sampleEvery = v }
        if let v = self.integer(map, .sampleSize) { durability.sampleSize = v }
        if let v = self.duration(map, .fullEvery) { durability.fullEvery = v }
        if let v = self.integer(map, .concurrency) { durability.concurrency = v }
        if let v = self.integer(map, .requestsPerSecond) { durability.requestsPerSecond = v }
        let passSeconds = Double(durability.objects) / Double(durability.requestsPerSecond)
        if passSeconds > durability.fullEvery.seconds {
            self.problem(
                map.path(.fullEvery),
                "a pass over \(durability.objects) objects at \(durability.requestsPerSecond) requests a second takes "
                    + "\(Int(passSeconds.rounded(.up))) s, longer than full_every \(durability.fullEvery): raise "
                    + "full_every or requests_per_second, or lower objects")
        }
        return durability
    }
}

extension CanaryConfiguration {
    /// A backend's durability corpus (`backends[].durability`).
    public struct Durability: Sendable, Equatable {
        /// Objects in the corpus (when this instance writes it; an existing corpus keeps its manifest's count).
        public var objects = 10_000
        /// Each object's size in bytes.
        public var objectSize = 10 << 10
        /// Where the corpus lives in the bucket, ending in `/`.
        public var prefix = ".s3-canary-durability/"
        /// How often a random sample is checked.
        public var sampleEvery: Duration = .seconds(60)
        /// Objects per sample.
        public var sampleSize = 20
        /// How often the whole corpus is checked.
        public var fullEvery: Duration = .seconds(86_400)
        /// Requests in flight at once.
        public var concurrency = 4
        /// Requests per second at most.
        public var requestsPerSecond = 50

        /// The defaults.
        public init() {}
    }
}
