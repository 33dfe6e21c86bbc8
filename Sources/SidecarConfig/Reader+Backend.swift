import Foundation
import ObjectStorage
import Yams

/// `backends[]`: one S3 backend to probe.
public enum BackendKey: String, ConfigSectionKey {
    case name, endpoint, region, bucket
    case pathStyle = "path_style"
    case payloadSigning = "payload_signing"
    case connectTimeout = "connect_timeout"
    case maxConnections = "max_connections"
    case connection, addresses
    case ipFamily = "ip_family"
    case maxAddresses = "max_addresses"
    case dns, tls, credentials, probe, breaker, slo, durability

    public static let section = "backends[]"
    public static let summary = "One S3 backend to probe, each with its own connection pool, breaker and series."

    public var spec: ConfigKeySpec {
        switch self {
        case .name:
            .init(
                .string, required: true,
                "A short unique name: a metric label and part of object keys; letters, digits, -, _ and .")
        case .endpoint:
            .init(
                .string, required: true,
                "The S3 endpoint URL, such as http://127.0.0.1:7480 or https://s3.eu-west-1.amazonaws.com.")
        case .region: .init(.string, default: "us-east-1", "The SigV4 signing region.")
        case .bucket: .init(.string, required: true, "The bucket the canary writes to.")
        case .pathStyle:
            .init(
                .bool, default: "true",
                "true: path-style requests (host/bucket/key); false: virtual-host addressing (bucket.host).")
        case .payloadSigning:
            .init(
                .choice(S3Backend.Configuration.PayloadSigning.allCases.map(\.rawValue)), default: "signed",
                "unsigned sends UNSIGNED-PAYLOAD; only over https.")
        case .connectTimeout:
            .init(
                .duration(min: .milliseconds(1), max: .seconds(86_400)), default: "5s",
                "The TCP connect's deadline, and the TLS handshake's after it; capped at probe.timeout.")
        case .maxConnections:
            .init(
                .integer(1...1024), default: "4",
                "Idle connections this backend keeps per address for reuse (connection: pooled).")
        case .connection:
            .init(
                .choice(ConnectionMode.allCases.map(\.rawValue)), default: "pooled",
                "pooled: keep connections, but open at least one new connection to each address every cycle; fresh: "
                    + "a new connection (and name lookup) for every request, as blackbox_exporter.")
        case .addresses:
            .init(
                .choice(AddressSelection.allCases.map(\.rawValue)), default: "first",
                "first: probe the first address the name resolves to; all: run each cycle against every address "
                    + "(Host and SNI stay the name); the cycle succeeds while one works, a failing one is degraded.")
        case .ipFamily:
            .init(
                .choice(IPFamily.allCases.map(\.rawValue)), default: "any",
                "Which addresses of the name to use: any, ipv4 (A records) or ipv6 (AAAA records).")
        case .maxAddresses:
            .init(
                .integer(1...64), default: "8",
                "With addresses: all, probe at most this many addresses (the first ones): bounds the series.")
        case .dns: .init(.section(DNSKey.section), "DNS servers of this backend's own; replaces the top-level dns:.")
        case .tls: .init(.section(BackendTLSKey.section), "How the backend's certificate is checked.")
        case .credentials:
            .init(
                .section(CredentialsKey.section), required: true,
                "How requests are signed: keys, or a source of temporary credentials.")
        case .probe: .init(.section(ProbeKey.section), "Overrides of the top-level probe: for this backend.")
        case .breaker: .init(.section(BreakerKey.section), "Overrides of the top-level breaker: for this backend.")
        case .durability:
            .init(
                .section(DurabilityKey.section),
                "A corpus of objects written once and checked for ever (missing, corrupted); absent: none.")
        case .slo:
            .init(
                .section(SLOKey.section),
                "This backend's objectives: availability replaces the default, latency merges per operation.")
        }
    }
}

/// `backends[].tls:`: how an https backend's certificate is checked.
public enum BackendTLSKey: String, ConfigSectionKey {
    case caBundle = "ca_bundle"
    case insecureSkipVerify = "insecure_skip_verify"

    public static let section = "backends[].tls"
    public static let summary =
        "How an https backend's certificate is checked; its chain's expiry is exported either way."

    public var spec: ConfigKeySpec {
        switch self {
        case .caBundle: .init(.string, "A PEM file of the CAs to trust instead of the system's.")
        case .insecureSkipVerify:
            .init(.bool, default: "false", "true: do not verify the certificate (logged as a warning at start).")
        }
    }
}

extension Reader {
    mutating func backend(_ node: Node, _ path: String, defaults: CanaryConfiguration) -> CanaryConfiguration.Backend? {
        guard let map = self.section(node, path, BackendKey.self) else { return nil }
        var name = ""
        if let v = self.string(map, .name) {
            if Self.isSafeName(v) {
                name = v
            } else {
                self.problem(
                    map.path(.name),
                    "\"\(v)\" may hold only letters, digits, -, _ and . (it is a metric label and part of keys)")
            }
        } else if !map.has(.name) {
            self.problem(map.path(.name), "is missing; give the backend a short name such as ceph-a")
        }
        var s3 = S3Backend.Configuration(endpoint: "", bucket: "")
        if map.has(.endpoint) {
            s3.endpoint = self.string(map, .endpoint) ?? ""
        } else {
            self.problem(map.path(.endpoint), "is missing; give the S3 endpoint such as http://127.0.0.1:7480")
        }
        if map.has(.bucket) {
            s3.bucket = self.string(map, .bucket) ?? ""
        } else {
            self.problem(map.path(.bucket), "is missing; name the bucket the canary writes to")
        }
        if let v = self.string(map, .region) { s3.region = v }
        if let v = self.bool(map, .pathStyle) { s3.addressing = v ? .path : .virtualHost }
        if let v = self.choice(map, .payloadSigning), let signing = S3Backend.Configuration.PayloadSigning(rawValue: v)
        {
            s3.payloadSigning = signing
        }
        if let v = self.duration(map, .connectTimeout) { s3.timeouts.connect = v }
        if let v = self.integer(map, .maxConnections) { s3.pool.maxConnections = v }
        if let v = self.choice(map, .connection), let mode = ConnectionMode(rawValue: v) { s3.connection = mode }
        if let v = self.choice(map, .ipFamily), let family = IPFamily(rawValue: v) { s3.ipFamily = family }
        s3.dns = defaults.dns
        if let (n, p) = map[.dns] { s3.dns = self.dns(n, p) }
        var addresses = AddressSelection.first
        if let v = self.choice(map, .addresses), let selection = AddressSelection(rawValue: v) { addresses = selection }
        let maxAddresses = self.integer(map, .maxAddresses) ?? 8
        if let (n, p) = map[.tls], let tls = self.section(n, p, BackendTLSKey.self) {
            if let v = self.string(tls, .caBundle) { s3.tls.caBundlePath = v }
            if let v = self.bool(tls, .insecureSkipVerify) { s3.tls.verifyCertificates = !v }
        }
        var probe = defaults.probe
        if let (n, p) = map[.probe] {
            probe = self.probe(n, p, base: defaults.probe)
            self.checkProbe(probe, p)
        }
        var breaker = defaults.breaker
        if let (n, p) = map[.breaker] { breaker = self.breaker(n, p, base: defaults.breaker) }
        var slo = defaults.slo
        slo.latency = slo.latency.filter { probe.operations.contains($0.key) }
        var own = SLOConfiguration()
        if let (n, p) = map[.slo] {
            own = self.slo(n, p)
            for operation in own.latency.keys where !probe.operations.contains(operation) {
                self.problem(
                    "\(p).latency.\(operation.rawValue)",
                    "this backend does not run \(operation.rawValue); add it to probe.operations or remove the objective"
                )
            }
            slo = slo.overridden(by: own)
            slo.latency = slo.latency.filter { probe.operations.contains($0.key) }
        }
        for (operation, latency) in slo.latency where latency.threshold >= probe.timeout {
            self.problem(
                own.latency[operation] != nil
                    ? "\(path).slo.latency.\(operation.rawValue).threshold"
                    : "slo.latency.\(operation.rawValue).threshold",
                "\(latency.threshold) is not below the probe timeout \(probe.timeout) of \(name): every step over it "
                    + "times out; lower the threshold")
        }
        // The request deadline follows the per-operation timeout.
        s3.timeouts.request = probe.timeout
        if s3.timeouts.connect > probe.timeout { s3.timeouts.connect = probe.timeout }

        if !s3.endpoint.isEmpty || !s3.bucket.isEmpty {
            let checked = s3
            // validate() reads the CA bundle: a file outside the document, so in the resolution pass.
            self.afterParsing { reader, _ in
                for problem in checked.validate()
                where !(problem.field == "endpoint" && checked.endpoint.isEmpty)
                    && !(problem.field == "bucket" && checked.bucket.isEmpty)
                {
                    reader.problem("\(path).\(Self.configKey(for: problem.field))", problem.message)
                }
            }
        }
        var credentials = CanaryConfiguration.Credentials.defaultChain(profile: nil)
        if let (n, p) = map[.credentials] {
            credentials = self.credentials(n, p) ?? credentials
        } else {
            self.problem(
                map.path(.credentials),
                "is missing; give keys (access_key_id and secret_access_key or their _file/_env forms) or a source")
        }
        var backend = CanaryConfiguration.Backend(
            name: name, s3: s3, credentials: credentials, probe: probe, breaker: breaker)
        backend.slo = slo
        if let (n, p) = map[.durability] { backend.durability = self.durability(n, p, probe: probe) }
        backend.addresses = addresses
        backend.maxAddresses = maxAddresses
        return backend
    }

    /// Maps a field of `S3Backend.Configuration.validate()` (a Swift property path) to the key a user wrote.
    static func configKey(for field: String) -> String {
        switch field {
        case "timeouts.connect": BackendKey.connectTimeout.rawValue
        case "timeouts.request": "probe.timeout"
        case "pool.maxConnections": BackendKey.maxConnections.rawValue
        case "pool.idleTimeout": "pool.idle_timeout"
        case "tls.caBundlePath": "tls.\(BackendTLSKey.caBundle.rawValue)"
        case "payloadSigning": BackendKey.payloadSigning.rawValue
        case "maxResponseBytes": "max_response_bytes"
        case "dns.servers": "dns.servers"
        case "dns.timeout": "dns.timeout"
        default: field
        }
    }
}
