import Foundation
public import ObjectStorage

/// The whole configuration of the service (docs/design.md, 3.5), after parsing, expansion and validation.
public struct CanaryConfiguration: Sendable, Equatable {
    /// The canary operations, in the order a cycle runs them.
    public enum Operation: String, Sendable, CaseIterable, Codable {
        case put, head, get
        case getRange = "get_range"
        case copy, list
        // The compatibility features (opt-in): each gets a verdict (ok, unsupported, failing, corrupting).
        case conditional, presign, checksum
        case awsChunked = "aws_chunked"
        case multipart
        case delete

        /// The operations that check an S3 feature clients use, in cycle order.
        public static let features: [Operation] = [.conditional, .presign, .checksum, .awsChunked, .multipart]

        /// Whether this operation checks a feature (and has a verdict).
        public var isFeature: Bool { Self.features.contains(self) }
    }

    /// The sizes of the multipart canary's two parts (`probe.multipart:`).
    public struct Multipart: Sendable, Equatable {
        /// The first part: S3 requires every part but the last to be at least 5 MiB.
        public var partSize: Int = 5 << 20
        /// The last part.
        public var lastPartSize: Int = 1 << 20
        /// The object's whole size.
        public var objectSize: Int { self.partSize + self.lastPartSize }
        init() {}
    }

    /// What a canary cycle does and how often (`probe:`, at the top level or per backend).
    public struct Probe: Sendable, Equatable {
        /// Time from the start of one cycle of a backend to the start of its next.
        public var interval: Duration = .seconds(15)
        /// Per-operation timeout.
        public var timeout: Duration = .seconds(5)
        /// Fraction of the interval each cycle's start may move, either way.
        public var jitter: Double = 0.10
        /// Size in bytes of the object each cycle writes and reads back.
        public var objectSize: Int = 1024
        /// Where canaries live in the bucket; each instance and backend gets its own folder below it.
        public var keyPrefix: String = ".s3-canary/"
        /// Which operations a cycle runs; a cycle runs them in its own fixed order, whatever the order here.
        public var operations: [Operation] = [.put, .head, .get, .getRange, .delete]
        /// How often an operation runs when not every cycle (`probe.every`): costly checks rarely, the rest each
        /// cycle. Never `put` or `delete`, which are the cycle; each at least the interval.
        public var every: [Operation: Duration] = [:]
        /// Features whose `unsupported` answer fails the cycle (`probe.require`): the operator's applications
        /// depend on them. By default an unsupported feature never fails a cycle.
        public var required: Set<Operation> = []
        /// Part sizes of the `multipart` operation.
        public var multipart = Multipart()
        /// The checksum the `checksum` and `aws_chunked` operations send (the AWS SDKs' default is CRC32).
        public var checksumAlgorithm: ChecksumAlgorithm = .crc32
        init() {}
    }

    /// When a backend's circuit breaker opens and for how long (`breaker:`, at the top level or per backend).
    public struct Breaker: Sendable, Equatable {
        /// Consecutive failures that open the breaker.
        public var failureThreshold: Int = 3
        /// How long an open breaker rejects calls before it lets a half-open probe through.
        public var openTimeout: Duration = .seconds(30)
        /// How long a half-open probe may take before it is abandoned; `nil` means ``defaultProbeTimeout(for:)``.
        var probeTimeout: Duration?
        init() {}

        /// The default probe timeout: twice the per-operation timeout, at least a second. The one place it is
        /// decided, so `run` and `probe` agree.
        static func defaultProbeTimeout(for probe: Probe) -> Duration {
            max(probe.timeout * 2, .seconds(1))
        }
    }

    /// Where a backend's S3 credentials come from: keys given as secrets, or a named source.
    public enum Credentials: Sendable, Equatable {
        case keys(accessKeyID: SecretSource, secretAccessKey: SecretSource, sessionToken: SecretSource?)
        case environment
        case profile(String?)
        case webIdentity
        case container
        case instanceMetadata
        case defaultChain(profile: String?)

        /// Whether these credentials are temporary and refreshed (and can fail to refresh).
        public var refreshes: Bool {
            switch self {
            case .keys, .environment, .profile: false
            case .webIdentity, .container, .instanceMetadata, .defaultChain: true
            }
        }
    }

    /// One backend to probe, with the top-level probe and breaker settings and its own overrides applied.
    public struct Backend: Sendable, Equatable {
        /// Short unique name: the `backend` label of every metric and part of the canary keys.
        public var name: String
        /// Endpoint, bucket, addressing, TLS and timeouts of the S3 client.
        public var s3: S3Backend.Configuration
        /// Where the S3 credentials come from.
        public var credentials: Credentials
        /// This backend's probe settings.
        public var probe: Probe
        /// This backend's breaker settings.
        public var breaker: Breaker
        /// This backend's objectives (`slo:` with the backend's own `slo:` over it); empty: none.
        public var slo = SLOConfiguration()
        /// Whether each cycle probes the first address of the endpoint's name or every one.
        public var addresses = AddressSelection.first
        /// With `addresses: all`, the most addresses probed (the first ones of the answer).
        public var maxAddresses = 8
        /// The durability corpus (`durability:`); `nil`: none.
        public var durability: Durability?

        /// A backend entry from its parts, for configurations built in code (the demo).
        public init(
            name: String,
            s3: S3Backend.Configuration,
            credentials: Credentials,
            probe: Probe,
            breaker: Breaker
        ) {
            self.name = name
            self.s3 = s3
            self.credentials = credentials
            self.probe = probe
            self.breaker = breaker
        }

        /// The half-open probe's time limit for this backend, the default applied.
        public var breakerProbeTimeout: Duration {
            self.breaker.probeTimeout ?? Breaker.defaultProbeTimeout(for: self.probe)
        }
    }

    /// The address the HTTP endpoint listens on (`listen: host:port`).
    public struct Listen: Sendable, Equatable {
        /// Host name or IP address to bind; the default listens on every IPv4 interface.
        public var host: String = "0.0.0.0"
        /// TCP port.
        public var port: Int = 9340
        /// The default address, `0.0.0.0:9340`.
        public init() {}
        /// `host:port` for logs and messages, an IPv6 host in brackets.
        public var description: String {
            self.host.contains(":") ? "[\(self.host)]:\(self.port)" : "\(self.host):\(self.port)"
        }
    }

    /// Who may reach the HTTP endpoint and how (exporter-toolkit's web config, docs/design.md, 4.7).
    public struct Server: Sendable, Equatable {
        /// PEM files of the endpoint's certificate chain and key; read again on every reload.
        public struct TLSFiles: Sendable, Equatable {
            var certificateFile: String
            var keyFile: String
        }

        /// The endpoint's certificate and key files; `nil` serves plain HTTP.
        public var tls: TLSFiles?
        /// User name to bcrypt hash (`htpasswd -nbB user password`).
        public var basicAuthUsers: [String: String] = [:]
        /// A token clients may send as `Authorization: Bearer`; `nil` when the endpoint takes none.
        public var bearerToken: SecretSource?
        /// Sum of all request header lines; larger requests get 400 (from NIO's HTTP decoder).
        public var maxHeaderBytes: Int = 16 * 1024
        /// Request bodies larger than this get 413 (only `POST /-/reload` takes a request, and it needs no body).
        public var maxBodyBytes: Int = 4 * 1024
        /// Idle keep-alive connections are closed after this, so slow or abandoned clients cannot pile up.
        public var idleTimeout: Duration = .seconds(60)
        init() {}
    }

    /// Where the HTTP endpoint listens.
    public var listen = Listen()
    /// TLS, credentials and limits of the HTTP endpoint.
    public var server = Server()
    /// This replica's name: part of every canary key and of every event; the host name by default.
    public var instance: String
    /// Probe settings every backend starts from.
    public var probe = Probe()
    /// DNS servers for every backend's endpoint name (a backend's own `dns:` replaces them); `nil`: the system's.
    public var dns: S3Backend.Configuration.DNS?
    /// Breaker settings every backend starts from.
    public var breaker = Breaker()
    /// The backends to probe, in file order.
    public var backends: [Backend] = []
    /// Receivers of breaker, integrity and service events.
    public var webhooks: [WebhookConfiguration] = []
    /// How receivers reach this instance's `/status` (links in events); default `http://<instance>:<port>`.
    var externalURL: String?
    /// Added to every event (`external_labels:`), such as `cluster` or `location`, so receivers can group a fleet.
    public var externalLabels: [String: String] = [:]
    /// Where this instance pushes its own alerts (`alertmanagers:`); `nil`: it pushes none.
    public var alertmanagers: AlertmanagerConfiguration?
    /// Which share of the backends this replica probes (`sharding:`); `nil`: all of them.
    public var sharding: Sharding?
    /// The shape of the latency histograms (`metrics:`).
    public var metrics = MetricsConfiguration()
    /// Objectives every backend is held to unless it sets its own (`slo:`).
    public var slo = SLOConfiguration()
    /// Where the event outbox and the remembered outages survive restarts (`state_dir:`); `nil`: in memory only.
    public var stateDirectory: String?

    /// The backends this replica probes: all of them, or those of its shard.
    public var ownedBackends: [Backend] {
        guard let sharding = self.sharding else { return self.backends }
        return self.backends.filter { sharding.owns($0.name) }
    }

    /// A dedicated fleet's split of the backends: replica `shard` of `shards` probes the backends whose name hashes
    /// to it. The hash is 64-bit FNV-1a over the name's UTF-8 bytes, modulo `shards`: stable across versions,
    /// platforms and restarts, so every replica agrees without talking to the others.
    public struct Sharding: Sendable, Equatable {
        /// How many replicas share the backends.
        public var shards: Int
        /// This replica's shard, `0..<shards`.
        public var shard: Int

        public init(shards: Int, shard: Int) {
            self.shards = shards
            self.shard = shard
        }

        /// The shard a backend belongs to.
        public static func shard(of name: String, shards: Int) -> Int {
            var hash: UInt64 = 0xcbf2_9ce4_8422_2325
            for byte in name.utf8 {
                hash ^= UInt64(byte)
                hash = hash &* 0x0000_0100_0000_01b3
            }
            return Int(hash % UInt64(max(shards, 1)))
        }

        /// Whether this replica probes `name`.
        public func owns(_ name: String) -> Bool { Self.shard(of: name, shards: self.shards) == self.shard }

        /// The ordinal at the end of a StatefulSet pod's host name (`s3-canary-2` → 2).
        public static func ordinal(ofHostName hostName: String) -> Int? {
            let short = hostName.split(separator: ".").first.map(String.init) ?? hostName
            guard let dash = short.lastIndex(of: "-") else { return nil }
            let digits = short[short.index(after: dash)...]
            guard !digits.isEmpty, digits.allSatisfy(\.isASCII), digits.allSatisfy(\.isNumber) else { return nil }
            return Int(digits)
        }
    }

    /// Where receivers reach this instance: `external_url`, or `http://<instance>:<port>` by default.
    public var externalBaseURL: String {
        let base = self.externalURL ?? "http://\(self.instance):\(self.listen.port)"
        return base.hasSuffix("/") ? String(base.dropLast()) : base
    }

    /// A configuration with every default and no backends.
    public init(instance: String) {
        self.instance = instance
    }
}

extension CanaryConfiguration {
    /// Label names events and alerts already carry: external labels may not replace them.
    public static let reservedLabelNames: Set<String> = ["alertname", "backend", "instance", "severity", "job"]

    /// Whether `name` is a valid Prometheus label name that is not reserved for internal use (`__`).
    public static func isValidLabelName(_ name: String) -> Bool {
        guard let first = name.unicodeScalars.first, !name.hasPrefix("__") else { return false }
        let letters = CharacterSet(charactersIn: "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
        let digits = CharacterSet(charactersIn: "0123456789")
        return letters.contains(first) && name.unicodeScalars.allSatisfy { letters.contains($0) || digits.contains($0) }
    }

    /// Parses a duration as the configuration file writes it (`250ms`, `5s`, `1m`).
    public static func parseDuration(_ text: String) -> Duration? { Reader.parseDuration(text) }
}

extension CanaryConfiguration.Operation {
    /// The `operation` label value.
    public var label: String { self.rawValue }
}
