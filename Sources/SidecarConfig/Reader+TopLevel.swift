import Foundation
import ObjectStorage
import Yams

/// The top level of the configuration file.
public enum TopLevelKey: String, ConfigSectionKey {
    case listen, server, instance
    case externalURL = "external_url"
    case externalLabels = "external_labels"
    case stateDirectory = "state_dir"
    case probe, breaker, metrics, slo, dns, backends, webhooks, alertmanagers, sharding

    public static let section = ""
    public static let summary = "The top level of the file."

    public var spec: ConfigKeySpec {
        switch self {
        case .listen:
            .init(
                .string, default: "0.0.0.0:9340", restart: true,
                "host:port of the HTTP endpoint (metrics, status, health).")
        case .server:
            .init(
                .section(ServerKey.section),
                "Who may reach the HTTP endpoint: TLS, basic auth or a bearer token, request limits.")
        case .instance:
            .init(
                .string, default: "the host name",
                "This process's name: part of every object key (so replicas never collide) and of every event; "
                    + "letters, digits, -, _ and ."
            )
        case .externalURL:
            .init(
                .string,
                "The URL people reach this instance at (http or https), used in events' links; default "
                    + "http://INSTANCE:PORT."
            )
        case .externalLabels:
            .init(
                .mapping("label name to value"),
                "Labels added to every event and pushed alert, such as {cluster: eu-1}; not alertname, backend, "
                    + "instance, severity or job."
            )
        case .stateDirectory:
            .init(
                .string, restart: true,
                "An absolute directory where undelivered events and open outages survive a restart; off when absent.")
        case .probe: .init(.section(ProbeKey.section), "The canary cycle's defaults for every backend.")
        case .breaker: .init(.section(BreakerKey.section), "The circuit breaker's defaults for every backend.")
        case .metrics:
            .init(
                .section(MetricsKey.section), restart: true,
                "The latency histograms' shape (a histogram cannot change its buckets under a running Prometheus).")
        case .slo:
            .init(
                .section(SLOKey.section),
                "Service level objectives over 28 days, the default for every backend; nothing SLO-related without it.")
        case .dns:
            .init(.section(DNSKey.section), "DNS servers for every backend's endpoint name, instead of the system's.")
        case .backends: .init(.sections(BackendKey.section), required: true, "The S3 backends to probe; at least one.")
        case .webhooks:
            .init(.sections(WebhookKey.section), restart: true, "Receivers of signed breaker-transition events.")
        case .alertmanagers:
            .init(
                .section(AlertmanagersKey.section), restart: true,
                "The Alertmanager cluster this instance pushes its alerts to.")
        case .sharding: .init(.section(ShardingKey.section), "Probe only this replica's share of the backends.")
        }
    }
}

extension Reader {
    /// Parses the document, then runs the resolution pass (secrets and TLS files) over what it built.
    mutating func configuration(_ root: Node, hostName: String) -> CanaryConfiguration? {
        guard var configuration = self.parse(root, hostName: hostName) else { return nil }
        self.resolve(&configuration)
        return configuration
    }

    private mutating func parse(_ root: Node, hostName: String) -> CanaryConfiguration? {
        guard let top = self.section(root, "", TopLevelKey.self) else { return nil }
        var configuration = CanaryConfiguration(instance: hostName.isEmpty ? "localhost" : hostName)
        if let (node, path) = top[.listen], let text = self.string(node, path) {
            if let listen = Self.parseListen(text) {
                configuration.listen = listen
            } else {
                self.problem(path, "\"\(text)\" is not host:port; write it such as 0.0.0.0:9340 or 127.0.0.1:9340")
            }
        }
        if let (node, path) = top[.server] {
            configuration.server = self.server(node, path)
        }
        if let (node, path) = top[.instance], let text = self.string(node, path) {
            if Self.isSafeName(text) {
                configuration.instance = text
            } else {
                self.problem(
                    path, "\"\(text)\" may hold only letters, digits, -, _ and . (it becomes part of object keys)")
            }
        }
        if let (node, path) = top[.probe] {
            configuration.probe = self.probe(node, path, base: configuration.probe)
        }
        if let (node, path) = top[.breaker] {
            configuration.breaker = self.breaker(node, path, base: configuration.breaker)
        }
        self.checkProbe(configuration.probe, "probe")
        if let (node, path) = top[.dns] {
            configuration.dns = self.dns(node, path)
        }
        if let (node, path) = top[.externalURL], let text = self.string(node, path) {
            if let url = URL(string: text), ["http", "https"].contains(url.scheme ?? ""), url.host != nil {
                configuration.externalURL = text
            } else {
                self.problem(path, "\"\(text)\" is not an http(s) URL, such as https://canary.example.com")
            }
        }
        if let (node, path) = top[.alertmanagers] {
            configuration.alertmanagers = self.alertmanagers(node, path)
        }
        if let (node, path) = top[.stateDirectory], let text = self.string(node, path) {
            if text.hasPrefix("/"), !text.contains("\0") {
                configuration.stateDirectory = text
            } else {
                self.problem(path, "\"\(text)\" must be an absolute directory path, such as /var/lib/s3-canary")
            }
        }
        if let (node, path) = top[.sharding] {
            configuration.sharding = self.sharding(node, path, hostName: hostName)
        }
        if let (node, path) = top[.metrics] {
            configuration.metrics = self.metrics(node, path)
        }
        if let (node, path) = top[.externalLabels] {
            configuration.externalLabels = self.externalLabels(node, path)
        }
        if let (node, path) = top[.webhooks], let entries = self.list(node, path) {
            var names: Set<String> = []
            for (entry, entryPath) in entries {
                // Appended even when incomplete (the problem is reported): the resolution pass finds each webhook
                // at the index it was read at.
                let webhook = self.webhook(entry, entryPath, index: configuration.webhooks.count)
                if !webhook.name.isEmpty && !names.insert(webhook.name).inserted {
                    self.problem(
                        "\(entryPath).name", "\"\(webhook.name)\" is used by another webhook; names must be unique")
                }
                configuration.webhooks.append(webhook)
            }
        }
        if let (node, path) = top[.slo] {
            configuration.slo = self.slo(node, path)
        }
        guard let (node, path) = top[.backends] else {
            self.problem("backends", "is missing; list at least one backend to probe")
            return nil
        }
        guard let entries = self.list(node, path) else { return nil }
        if entries.isEmpty {
            self.problem(path, "is empty; list at least one backend to probe")
        }
        var names: Set<String> = []
        var latencyRun: Set<CanaryConfiguration.Operation> = []
        for (entry, entryPath) in entries {
            guard let backend = self.backend(entry, entryPath, defaults: configuration) else { continue }
            latencyRun.formUnion(backend.slo.latency.keys)
            if !names.insert(backend.name).inserted {
                self.problem(
                    "\(entryPath).name", "\"\(backend.name)\" is used by another backend; names must be unique")
            }
            configuration.backends.append(backend)
        }
        // A default latency objective applies to the backends that run its operation; one that none runs is a typo.
        for operation in configuration.slo.latency.keys.sorted(by: { $0.rawValue < $1.rawValue })
        where !latencyRun.contains(operation) {
            self.problem(
                "slo.latency.\(operation.rawValue)",
                "no backend runs \(operation.rawValue); add it to probe.operations or remove the objective")
        }
        return configuration
    }

    /// `external_labels:`: label name to value, added to every event (as Prometheus adds its external labels to
    /// alerts), so receivers can group a fleet by cluster or location.
    mutating func externalLabels(_ node: Node, _ path: String) -> [String: String] {
        guard case .mapping(let entries) = node else {
            self.problem(
                path, "must be a mapping of label name to value, such as {cluster: eu-1}, not \(Self.kind(node))")
            return [:]
        }
        var labels: [String: String] = [:]
        for (keyNode, valueNode) in entries {
            guard case .scalar(let key) = keyNode else {
                self.problem(path, "label names must be plain strings")
                continue
            }
            let name = key.string
            let labelPath = "\(path).\(name)"
            guard CanaryConfiguration.isValidLabelName(name) else {
                self.problem(
                    labelPath,
                    "is not a Prometheus label name: letters, digits and _, not starting with a digit or __"
                )
                continue
            }
            guard !CanaryConfiguration.reservedLabelNames.contains(name) else {
                self.problem(
                    labelPath,
                    "is set by s3-canary itself ("
                        + CanaryConfiguration.reservedLabelNames.sorted().joined(separator: ", ") + "); "
                        + "choose another name, such as cluster or location"
                )
                continue
            }
            guard let value = self.string(valueNode, labelPath) else { continue }
            guard !value.isEmpty, value.count <= 128 else {
                self.problem(labelPath, "must be 1 to 128 characters")
                continue
            }
            labels[name] = value
        }
        return labels
    }

    /// `text` as a URL when it is http(s) with a host (the receivers' URLs: webhooks, Alertmanagers).
    static func httpURL(_ text: String) -> URL? {
        guard let url = URL(string: text), ["http", "https"].contains(url.scheme?.lowercased() ?? ""), url.host != nil
        else { return nil }
        return url
    }

    static func isSafeName(_ text: String) -> Bool {
        !text.isEmpty && text.count <= 128
            && text.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_" || $0 == ".") }
    }

    static func parseListen(_ text: String) -> CanaryConfiguration.Listen? {
        guard let colon = text.lastIndex(of: ":") else { return nil }
        var host = String(text[..<colon])
        if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        guard let port = Int(text[text.index(after: colon)...]), (0...65535).contains(port), !host.isEmpty,
            !host.contains(where: \.isWhitespace)
        else { return nil }
        var listen = CanaryConfiguration.Listen()
        listen.host = host
        listen.port = port
        return listen
    }
}
