import Foundation
import Yams

/// `sharding:`: this replica probes only the backends of its shard.
public enum ShardingKey: String, ConfigSectionKey {
    case shards, shard
    case shardFromHostname = "shard_from_hostname"

    public static let section = "sharding"
    public static let summary =
        "Split the backends between replicas by a stable hash of their names; give shard or shard_from_hostname."

    public var spec: ConfigKeySpec {
        switch self {
        case .shards: .init(.integer(1...10_000), required: true, "How many replicas share the backends.")
        case .shard: .init(.integer(0...9_999), "This replica's shard, 0 to shards - 1.")
        case .shardFromHostname:
            .init(
                .bool, default: "false",
                "true: the shard is the host name's StatefulSet ordinal (s3-canary-2 is shard 2).")
        }
    }
}

/// `alertmanagers:`: the Alertmanager cluster this instance pushes its alerts to.
public enum AlertmanagersKey: String, ConfigSectionKey {
    case urls
    case resendInterval = "resend_interval"
    case timeout
    case maxRetries = "max_retries"
    case queueSize = "queue_size"
    case bearerToken = "bearer_token"
    case basicAuth = "basic_auth"
    case caBundle = "ca_bundle"

    public static let section = "alertmanagers"
    public static let summary =
        "Push this instance's alerts to every Alertmanager of a cluster (API v2), as Prometheus does."

    public var spec: ConfigKeySpec {
        switch self {
        case .urls:
            .init(
                .list("http(s) base URLs"), required: true,
                "Every Alertmanager of the cluster, such as [http://alertmanager:9093].")
        case .resendInterval:
            .init(
                .duration(min: .seconds(1), max: .seconds(3600)), default: "1m",
                "Firing alerts are sent again this often; each is valid for four times this.")
        case .timeout:
            .init(.duration(min: .milliseconds(100), max: .seconds(120)), default: "10s", "Each push's deadline.")
        case .maxRetries: .init(.integer(0...100), default: "3", "Attempts after the first, per Alertmanager.")
        case .queueSize:
            .init(
                .integer(1...100_000), default: "100",
                "Pushes waiting per Alertmanager; when full the oldest is dropped and counted.")
        case .bearerToken: .init(.string, secret: true, "Sent as Authorization: Bearer; not with basic_auth.")
        case .basicAuth: .init(.section(AlertmanagerBasicAuthKey.section), "Basic auth; not with bearer_token.")
        case .caBundle: .init(.string, "A PEM file of the CAs to trust for https Alertmanagers.")
        }
    }
}

/// `alertmanagers.basic_auth:`.
public enum AlertmanagerBasicAuthKey: String, ConfigSectionKey {
    case username, password

    public static let section = "alertmanagers.basic_auth"
    public static let summary = "Basic auth for the Alertmanagers."

    public var spec: ConfigKeySpec {
        switch self {
        case .username: .init(.string, required: true, "The user name.")
        case .password: .init(.string, required: true, secret: true, "The password.")
        }
    }
}

extension Reader {
    /// `sharding:`: this replica probes only the backends of its shard (`shards`, and `shard` or
    /// `shard_from_hostname`, which reads a StatefulSet ordinal such as `s3-canary-2`).
    mutating func sharding(_ node: Node, _ path: String, hostName: String) -> CanaryConfiguration.Sharding? {
        guard let map = self.section(node, path, ShardingKey.self) else { return nil }
        guard map.has(.shards) else {
            self.problem(map.path(.shards), "is required: how many replicas share the backends, such as 3")
            return nil
        }
        guard let shards = self.integer(map, .shards) else { return nil }
        let fromHostName = self.bool(map, .shardFromHostname) ?? false
        let shard: Int
        switch (map[.shard], fromHostName) {
        case (.some, true):
            self.problem(path, "give shard or shard_from_hostname: true, not both")
            return nil
        case (.some(let (shardNode, shardPath)), false):
            guard let text = self.string(shardNode, shardPath) else { return nil }
            guard let value = Int(text), value >= 0 else {
                self.problem(shardPath, "\"\(text)\" is not a shard number; use 0 to \(shards - 1)")
                return nil
            }
            guard value < shards else {
                self.problem(shardPath, "\(value) is not below shards (\(shards)); use 0 to \(shards - 1)")
                return nil
            }
            shard = value
        case (.none, true):
            guard let ordinal = CanaryConfiguration.Sharding.ordinal(ofHostName: hostName) else {
                self.problem(
                    map.path(.shardFromHostname),
                    "the host name \"\(Self.clipped(hostName, to: 64))\" does not end in -<number> "
                        + "as a StatefulSet pod's does "
                        + "(s3-canary-2); set shard instead"
                )
                return nil
            }
            guard ordinal < shards else {
                self.problem(
                    map.path(.shardFromHostname),
                    "the host name's ordinal \(ordinal) is not below shards (\(shards)); "
                        + "raise shards to the replica count"
                )
                return nil
            }
            shard = ordinal
        case (.none, false):
            self.problem(
                map.path(.shard), "is required: this replica's shard, 0 to \(shards - 1), or shard_from_hostname: true")
            return nil
        }
        return CanaryConfiguration.Sharding(shards: shards, shard: shard)
    }

    /// `alertmanagers:`: the Alertmanager cluster this instance pushes its alerts to.
    mutating func alertmanagers(_ node: Node, _ path: String) -> AlertmanagerConfiguration? {
        guard let map = self.section(node, path, AlertmanagersKey.self) else { return nil }
        var urls: [String] = []
        if let (n, p) = map[.urls], let items = self.list(n, p) {
            for (item, itemPath) in items {
                guard let text = self.string(item, itemPath) else { continue }
                guard let parsed = Self.httpURL(text), parsed.query == nil, parsed.user == nil else {
                    // Never echo it: a URL may carry credentials.
                    self.problem(
                        itemPath,
                        "is not an http(s) base URL such as http://alertmanager:9093 (the value is not shown)")
                    continue
                }
                urls.append(text.hasSuffix("/") ? String(text.dropLast()) : text)
            }
            if items.isEmpty { self.problem(p, "is empty; list every Alertmanager of the cluster") }
        } else if !map.has(.urls) {
            self.problem(
                map.path(.urls),
                "is missing; list every Alertmanager of the cluster, such as [http://alertmanager:9093]"
            )
        }
        var configuration = AlertmanagerConfiguration(urls: urls)
        if let v = self.duration(map, .resendInterval) { configuration.resendInterval = v }
        if let v = self.duration(map, .timeout) { configuration.timeout = v }
        if let v = self.integer(map, .maxRetries) { configuration.maxRetries = v }
        if let v = self.integer(map, .queueSize) { configuration.queueSize = v }
        if let (source, sourcePath) = self.secretSource(map, .bearerToken) {
            self.resolveLater(source, sourcePath) { _, configuration, token in
                configuration.alertmanagers?.bearerToken = token
            }
        }
        if let (n, p) = map[.basicAuth] {
            if map.has(.bearerToken) {
                self.problem(p, "give basic_auth or bearer_token, not both")
            }
            if let auth = self.section(n, p, AlertmanagerBasicAuthKey.self) {
                let username = self.string(auth, .username)
                if !auth.has(.username) { self.problem(auth.path(.username), "is missing") }
                if let (source, sourcePath) = self.secretSource(auth, .password) {
                    self.resolveLater(source, sourcePath) { _, configuration, password in
                        if let username {
                            configuration.alertmanagers?.basicAuth = .init(username: username, password: password)
                        }
                    }
                } else if !auth.has(.password) {
                    self.problem(auth.path(.password), "is missing; give password, password_env or password_file")
                }
            }
        }
        if let (n, p) = map[.caBundle], let v = self.string(n, p) {
            configuration.caBundle = v
            self.afterParsing { reader, _ in
                if !FileManager.default.isReadableFile(atPath: v) {
                    reader.problem(p, "cannot read \(v); give a readable PEM file")
                }
            }
        }
        return configuration
    }
}
