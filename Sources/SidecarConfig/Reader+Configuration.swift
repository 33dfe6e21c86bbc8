import Foundation
import ObjectStorage
import Yams

extension Reader {
    static let topLevelKeys = [
        "listen", "server", "instance", "external_url", "external_labels", "sharding", "alertmanagers", "probe",
        "breaker", "backends", "webhooks", "metrics", "slo", "state_dir",
    ]
    static let metricsKeys = [
        "classic_histograms", "classic_buckets", "native_histograms", "native_histogram_bucket_factor",
        "native_histogram_max_buckets", "time_to_first_byte",
    ]
    static let serverKeys = [
        "tls", "basic_auth_users", "bearer_token", "bearer_token_env", "bearer_token_file", "max_header_bytes",
        "max_body_bytes", "idle_timeout",
    ]
    static let webhookKeys = [
        "name", "url", "url_file", "url_env", "format", "events", "secret", "secret_file", "secret_env", "routing_key",
        "routing_key_file", "routing_key_env", "timeout", "max_retries", "max_age", "queue_size", "headers",
    ]
    static let probeKeys = [
        "interval", "timeout", "jitter", "object_size", "key_prefix", "operations", "multipart", "checksum_algorithm",
    ]
    static let breakerKeys = ["failure_threshold", "open_timeout", "probe_timeout"]
    static let backendKeys = [
        "name", "endpoint", "region", "bucket", "path_style", "credentials", "probe", "breaker", "connect_timeout",
        "max_connections", "payload_signing", "tls", "slo",
    ]
    static let credentialKeys = [
        "source", "profile", "access_key_id", "access_key_id_env", "access_key_id_file", "secret_access_key",
        "secret_access_key_env", "secret_access_key_file", "session_token", "session_token_env", "session_token_file",
    ]

    mutating func configuration(_ root: Node, hostName: String) -> CanaryConfiguration? {
        guard let top = self.mapping(root, "", allowed: Self.topLevelKeys) else { return nil }
        var configuration = CanaryConfiguration(instance: hostName.isEmpty ? "localhost" : hostName)
        if let (node, path) = top["listen"], let text = self.string(node, path) {
            if let listen = Self.parseListen(text) {
                configuration.listen = listen
            } else {
                self.problem(path, "\"\(text)\" is not host:port; write it such as 0.0.0.0:9340 or 127.0.0.1:9340")
            }
        }
        if let (node, path) = top["server"] {
            configuration.server = self.server(node, path)
        }
        if let (node, path) = top["instance"], let text = self.string(node, path) {
            if Self.isSafeName(text) {
                configuration.instance = text
            } else {
                self.problem(
                    path, "\"\(text)\" may hold only letters, digits, -, _ and . (it becomes part of object keys)")
            }
        }
        if let (node, path) = top["probe"] {
            configuration.probe = self.probe(node, path, base: configuration.probe)
        }
        if let (node, path) = top["breaker"] {
            configuration.breaker = self.breaker(node, path, base: configuration.breaker)
        }
        self.checkProbe(configuration.probe, "probe")
        if let (node, path) = top["external_url"], let text = self.string(node, path) {
            if let url = URL(string: text), ["http", "https"].contains(url.scheme ?? ""), url.host != nil {
                configuration.externalURL = text
            } else {
                self.problem(path, "\"\(text)\" is not an http(s) URL, such as https://canary.example.com")
            }
        }
        if let (node, path) = top["alertmanagers"] {
            configuration.alertmanagers = self.alertmanagers(node, path)
        }
        if let (node, path) = top["state_dir"], let text = self.string(node, path) {
            if text.hasPrefix("/"), !text.contains("\0") {
                configuration.stateDirectory = text
            } else {
                self.problem(path, "\"\(text)\" must be an absolute directory path, such as /var/lib/s3-canary")
            }
        }
        if let (node, path) = top["sharding"] {
            configuration.sharding = self.sharding(node, path, hostName: hostName)
        }
        if let (node, path) = top["metrics"] {
            configuration.metrics = self.metrics(node, path)
        }
        if let (node, path) = top["external_labels"] {
            configuration.externalLabels = self.externalLabels(node, path)
        }
        if let (node, path) = top["webhooks"], let entries = self.list(node, path) {
            var names: Set<String> = []
            for (entry, entryPath) in entries {
                guard let webhook = self.webhook(entry, entryPath) else { continue }
                if !names.insert(webhook.name).inserted {
                    self.problem(
                        "\(entryPath).name", "\"\(webhook.name)\" is used by another webhook; names must be unique")
                }
                configuration.webhooks.append(webhook)
            }
        }
        if let (node, path) = top["slo"] {
            configuration.slo = self.slo(node, path)
        }
        guard let (node, path) = top["backends"] else {
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

    mutating func webhook(_ node: Node, _ path: String) -> WebhookConfiguration? {
        guard let map = self.mapping(node, path, allowed: Self.webhookKeys) else { return nil }
        var name: String?
        if let (n, p) = map["name"], let v = self.string(n, p) {
            if Self.isSafeName(v) {
                name = v
            } else {
                self.problem(p, "\"\(v)\" may hold only letters, digits, -, _ and .")
            }
        } else if map["name"] == nil {
            self.problem("\(path).name", "is missing; give the webhook a short name such as oncall")
        }
        /// A secret-like value given as itself, NAME_env or NAME_file; read now so a missing one fails validation.
        func secretValue(_ base: String, required: Bool, hint: String) -> String? {
            guard let (source, sourcePath) = self.secretSource(map, base, parent: path) else {
                if required && ![base, "\(base)_env", "\(base)_file"].contains(where: { map[$0] != nil }) {
                    self.problem("\(path).\(base)", "is missing; \(hint)")
                }
                return nil
            }
            return self.resolveSecret(source, sourcePath)
        }
        let url = secretValue("url", required: true, hint: "give the receiver's URL (or url_file / url_env)")
        if let url {
            if Self.httpURL(url) == nil {
                // Never echo the URL: it may carry a token.
                self.problem("\(path).url", "is not an http(s) URL (the value is not shown: URLs may carry tokens)")
            }
        }
        var webhook = WebhookConfiguration(name: name ?? "", url: url ?? "")
        if let (n, p) = map["format"], let v = self.string(n, p) {
            if let format = WebhookConfiguration.Format(rawValue: v) {
                webhook.format = format
            } else {
                self.problem(
                    p,
                    """
                    "\(v)" is not one of \
                    \(WebhookConfiguration.Format.allCases.map(\.rawValue).joined(separator: ", "))
                    """
                )
            }
        }
        if let (n, p) = map["events"], let items = self.list(n, p) {
            var events: [String] = []
            for (item, itemPath) in items {
                guard let text = self.string(item, itemPath) else { continue }
                if WebhookEventType.isValidFilter(text) {
                    events.append(text)
                } else {
                    let names = WebhookEventType.allCases.map(\.rawValue).joined(separator: ", ")
                    self.problem(
                        itemPath, "\"\(text)\" matches no event (events: \(names); or *, or a prefix ending in *)")
                }
            }
            if items.isEmpty { self.problem(p, "is empty; list the events to deliver, or * for all") }
            webhook.events = events
        }
        webhook.secret = secretValue("secret", required: false, hint: "")
        webhook.routingKey = secretValue(
            "routing_key", required: webhook.format == .pagerduty,
            hint: "PagerDuty needs the integration's routing key (routing_key_file or routing_key_env)"
        )
        if let (n, p) = map["timeout"], let v = self.duration(n, p, min: .milliseconds(100), max: .seconds(120)) {
            webhook.timeout = v
        }
        if let (n, p) = map["max_retries"], let v = self.integer(n, p, range: 0...100) { webhook.maxRetries = v }
        if let (n, p) = map["max_age"], let v = self.duration(n, p, min: .seconds(1), max: .seconds(86_400 * 7)) {
            webhook.maxAge = v
        }
        if let (n, p) = map["queue_size"], let v = self.integer(n, p, range: 1...100_000) { webhook.queueSize = v }
        if let (n, p) = map["headers"], !n.isMapping {
            self.problem(p, "must be a mapping of header names to values")
        }
        if let (n, p) = map["headers"], case .mapping(let pairs) = n {
            for (keyNode, valueNode) in pairs {
                guard case .scalar(let key) = keyNode else { continue }
                let headerPath = "\(p).\(key.string)"
                let reserved = [
                    "content-type", "content-length", "host", "webhook-id", "webhook-timestamp", "webhook-signature",
                    "x-webhook-signature",
                ]
                if key.string.isEmpty
                    || !key.string.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") })
                {
                    self.problem(headerPath, "is not a valid header name")
                } else if reserved.contains(key.string.lowercased()) {
                    self.problem(headerPath, "is set by s3-canary itself; remove it")
                } else if let value = self.string(valueNode, headerPath) {
                    if value.contains(where: { $0 == "\r" || $0 == "\n" }) {
                        self.problem(headerPath, "must be a single line")
                    } else {
                        webhook.headers[key.string] = value
                    }
                }
            }
        }
        return name == nil ? nil : webhook
    }

    /// `server:`: endpoint TLS, basic auth users (bcrypt hashes only) or a bearer token, request limits.
    mutating func server(_ node: Node, _ path: String) -> CanaryConfiguration.Server {
        var server = CanaryConfiguration.Server()
        guard let map = self.mapping(node, path, allowed: Self.serverKeys) else { return server }
        if let (tlsNode, tlsPath) = map["tls"],
            let tls = self.mapping(tlsNode, tlsPath, allowed: ["cert_file", "key_file"])
        {
            let cert = tls["cert_file"].flatMap { self.string($0.0, $0.1) }
            let key = tls["key_file"].flatMap { self.string($0.0, $0.1) }
            if tls["cert_file"] == nil {
                self.problem("\(tlsPath).cert_file", "is required with tls; give the PEM certificate chain file")
            }
            if tls["key_file"] == nil {
                self.problem("\(tlsPath).key_file", "is required with tls; give the PEM private key file")
            }
            if let cert, let key {
                let files = CanaryConfiguration.Server.TLSFiles(certificateFile: cert, keyFile: key)
                do {
                    _ = try TLSMaterial(files)
                    server.tls = files
                } catch {
                    for problem in error.problems { self.problem(problem.field, problem.message) }
                }
            }
        }
        if let (usersNode, usersPath) = map["basic_auth_users"] {
            if case .mapping(let users) = usersNode {
                for (userNode, hashNode) in users {
                    guard case .scalar(let user) = userNode, !user.string.isEmpty, !user.string.contains(":") else {
                        self.problem(usersPath, "user names must be non-empty plain strings without ':'")
                        continue
                    }
                    let hashPath = "\(usersPath).\(user.string)"
                    guard let hash = self.string(hashNode, hashPath) else { continue }
                    if BcryptHash.isValid(hash) {
                        server.basicAuthUsers[user.string] = hash
                    } else {
                        // Never echo the value: it may be a password pasted by mistake.
                        self.problem(
                            hashPath,
                            """
                            is not a bcrypt hash ($2a$, $2b$ or $2y$, 60 characters); \
                            store a hash, never the password: htpasswd -nbBC 10 USER PASSWORD
                            """
                        )
                    }
                }
            } else {
                self.problem(usersPath, "must be a mapping of user name to bcrypt hash, not \(Self.kind(usersNode))")
            }
        }
        if let (source, sourcePath) = self.secretSource(map, "bearer_token", parent: path) {
            if let token = self.resolveSecret(source, sourcePath) {
                if token.count < 16 {
                    self.problem(
                        sourcePath, "is shorter than 16 characters; use a long random token (openssl rand -hex 32)")
                } else {
                    server.bearerToken = source
                }
            }
        }
        if let (n, p) = map["max_header_bytes"], let bytes = self.size(n, p, range: 1024...(1 << 20)) {
            server.maxHeaderBytes = bytes
        }
        if let (n, p) = map["max_body_bytes"], let bytes = self.size(n, p, range: 0...(1 << 20)) {
            server.maxBodyBytes = bytes
        }
        if let (n, p) = map["idle_timeout"], let timeout = self.duration(n, p, min: .seconds(1), max: .seconds(3600)) {
            server.idleTimeout = timeout
        }
        return server
    }

    /// `metrics:`: histogram shapes, each checked against what Prometheus accepts.
    mutating func metrics(_ node: Node, _ path: String) -> MetricsConfiguration {
        var metrics = MetricsConfiguration()
        guard let map = self.mapping(node, path, allowed: Self.metricsKeys) else { return metrics }
        if let (n, p) = map["classic_histograms"], let value = self.bool(n, p) { metrics.classicHistograms = value }
        if let (n, p) = map["native_histograms"], let value = self.bool(n, p) { metrics.nativeHistograms = value }
        if let (n, p) = map["time_to_first_byte"], let value = self.bool(n, p) { metrics.timeToFirstByte = value }
        if !metrics.classicHistograms && !metrics.nativeHistograms {
            self.problem(
                "\(path).classic_histograms",
                "and native_histograms are both false; latency needs one of them (classic for text scrapers)")
        }
        if let (n, p) = map["classic_buckets"], let entries = self.list(n, p) {
            var bounds: [Double] = []
            for (entry, entryPath) in entries {
                guard let text = self.string(entry, entryPath) else { continue }
                guard let seconds = Self.seconds(text), seconds > 0, seconds.isFinite else {
                    self.problem(
                        entryPath, "\"\(text)\" is not a positive number of seconds or a duration (0.1, 250ms)")
                    continue
                }
                bounds.append(seconds)
            }
            if entries.isEmpty || entries.count > 30 {
                self.problem(p, "needs 1 to 30 bounds (each is a series per backend and operation); +Inf is implied")
            } else if bounds.count == entries.count {
                if zip(bounds, bounds.dropFirst()).contains(where: { $0 >= $1 }) {
                    self.problem(p, "must be strictly ascending, such as [0.025, 0.1, 0.25, 1]")
                } else {
                    metrics.classicBuckets = bounds
                }
            }
        }
        if let (n, p) = map["native_histogram_bucket_factor"], let text = self.string(n, p) {
            let range = MetricsConfiguration.factorRange
            if let factor = Double(text.trimmingCharacters(in: .whitespaces)), range.contains(factor) {
                metrics.nativeBucketFactor = factor
            } else {
                self.problem(
                    p,
                    "\"\(text)\" is out of range: a bucket factor is between \(String(format: "%.6f", range.lowerBound)) "
                        + "(2^(1/256), schema 8) and 65536 (schema -4); 1.1 gives buckets at most 10 % wide"
                )
            }
        }
        if let (n, p) = map["native_histogram_max_buckets"], let value = self.integer(n, p, range: 2...10_000) {
            metrics.nativeMaxBuckets = value
        }
        return metrics
    }

    /// `slo:` (top level or a backend's): `availability: 99.9%` and `latency: {OPERATION: {threshold, objective}}`.
    mutating func slo(_ node: Node, _ path: String) -> SLOConfiguration {
        var slo = SLOConfiguration()
        guard let map = self.mapping(node, path, allowed: ["availability", "latency"]) else { return slo }
        if let (n, p) = map["availability"] { slo.availability = self.objective(n, p) }
        if let (n, p) = map["latency"] {
            let operations = CanaryConfiguration.Operation.allCases.map(\.rawValue)
            guard let entries = self.mapping(n, p, allowed: operations) else { return slo }
            for (key, (entryNode, entryPath)) in entries.sorted(by: { $0.key < $1.key }) {
                guard let operation = CanaryConfiguration.Operation(rawValue: key),
                    let entry = self.mapping(entryNode, entryPath, allowed: ["threshold", "objective"])
                else { continue }
                var threshold: Duration?
                if let (tn, tp) = entry["threshold"] {
                    threshold = self.duration(tn, tp, min: .milliseconds(1), max: .seconds(600))
                } else {
                    self.problem("\(entryPath).threshold", "is required: the latency to stay within, such as 100ms")
                }
                var objective: Double?
                if let (on, op) = entry["objective"] {
                    objective = self.objective(on, op)
                } else {
                    self.problem("\(entryPath).objective", "is required: the share within the threshold, such as 99%")
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

    /// A bucket bound: plain seconds (`0.25`) or a duration (`250ms`).
    static func seconds(_ text: String) -> Double? {
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        if let value = Double(trimmed) { return value }
        return Self.parseDuration(trimmed)?.seconds
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

    mutating func probe(_ node: Node, _ path: String, base: CanaryConfiguration.Probe) -> CanaryConfiguration.Probe {
        var probe = base
        guard let map = self.mapping(node, path, allowed: Self.probeKeys) else { return probe }
        if let (n, p) = map["interval"], let v = self.duration(n, p, min: .milliseconds(100)) { probe.interval = v }
        if let (n, p) = map["timeout"], let v = self.duration(n, p) { probe.timeout = v }
        if let (n, p) = map["jitter"], let v = self.fraction(n, p) { probe.jitter = v }
        if let (n, p) = map["object_size"], let v = self.size(n, p, range: 1...(64 << 20)) { probe.objectSize = v }
        if let (n, p) = map["key_prefix"], let v = self.string(n, p) {
            if v.hasPrefix("/") || v.contains("//") || v.count > 512 {
                self.problem(p, "\"\(v)\" must not start with / or contain //; the default is .s3-canary/")
            } else {
                probe.keyPrefix = v.hasSuffix("/") ? v : v + "/"
            }
        }
        if let (n, p) = map["operations"], let items = self.list(n, p) {
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
        if let (n, p) = map["multipart"], let sizes = self.mapping(n, p, allowed: ["part_size", "last_part_size"]) {
            // S3's limits: every part but the last at least 5 MiB, none over 5 GiB.
            if let (n, p) = sizes["part_size"], let v = self.size(n, p, range: 1...(5 << 30)) {
                if v < 5 << 20 {
                    self.problem(p, "\(v) bytes is below S3's 5MiB minimum for every part but the last; use 5MiB")
                } else {
                    probe.multipart.partSize = v
                }
            }
            if let (n, p) = sizes["last_part_size"], let v = self.size(n, p, range: 1...(5 << 30)) {
                probe.multipart.lastPartSize = v
            }
        }
        if let (n, p) = map["checksum_algorithm"], let text = self.string(n, p) {
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
        guard let map = self.mapping(node, path, allowed: Self.breakerKeys) else { return breaker }
        if let (n, p) = map["failure_threshold"], let v = self.integer(n, p, range: 1...1000) {
            breaker.failureThreshold = v
        }
        if let (n, p) = map["open_timeout"], let v = self.duration(n, p, min: .milliseconds(100)) {
            breaker.openTimeout = v
        }
        if let (n, p) = map["probe_timeout"], let v = self.duration(n, p, min: .milliseconds(100)) {
            breaker.probeTimeout = v
        }
        return breaker
    }

    mutating func backend(_ node: Node, _ path: String, defaults: CanaryConfiguration) -> CanaryConfiguration.Backend? {
        guard let map = self.mapping(node, path, allowed: Self.backendKeys) else { return nil }
        var name = ""
        if let (n, p) = map["name"], let v = self.string(n, p) {
            if Self.isSafeName(v) {
                name = v
            } else {
                self.problem(
                    p, "\"\(v)\" may hold only letters, digits, -, _ and . (it is a metric label and part of keys)")
            }
        } else if map["name"] == nil {
            self.problem("\(path).name", "is missing; give the backend a short name such as ceph-a")
        }
        var s3 = S3Backend.Configuration(endpoint: "", bucket: "")
        var required: [String: String] = [:]
        for key in ["endpoint", "bucket"] {
            if let (n, p) = map[key] {
                if let v = self.string(n, p) { required[key] = v }
            } else {
                self.problem(
                    "\(path).\(key)",
                    key == "endpoint"
                        ? "is missing; give the S3 endpoint such as http://127.0.0.1:7480"
                        : "is missing; name the bucket the canary writes to")
            }
        }
        s3.endpoint = required["endpoint"] ?? ""
        s3.bucket = required["bucket"] ?? ""
        if let (n, p) = map["region"], let v = self.string(n, p) { s3.region = v }
        if let (n, p) = map["path_style"], let v = self.bool(n, p) { s3.addressing = v ? .path : .virtualHost }
        if let (n, p) = map["payload_signing"], let v = self.string(n, p) {
            if let signing = S3Backend.Configuration.PayloadSigning(rawValue: v) {
                s3.payloadSigning = signing
            } else {
                self.problem(p, "\"\(v)\" is not signed or unsigned")
            }
        }
        if let (n, p) = map["connect_timeout"], let v = self.duration(n, p) { s3.timeouts.connect = v }
        if let (n, p) = map["max_connections"], let v = self.integer(n, p, range: 1...1024) {
            s3.pool.maxConnections = v
        }
        if let (n, p) = map["tls"], let tls = self.mapping(n, p, allowed: ["ca_bundle", "insecure_skip_verify"]) {
            if let (n, p) = tls["ca_bundle"], let v = self.string(n, p) { s3.tls.caBundlePath = v }
            if let (n, p) = tls["insecure_skip_verify"], let v = self.bool(n, p) { s3.tls.verifyCertificates = !v }
        }
        var probe = defaults.probe
        if let (n, p) = map["probe"] {
            probe = self.probe(n, p, base: defaults.probe)
            self.checkProbe(probe, p)
        }
        var breaker = defaults.breaker
        if let (n, p) = map["breaker"] { breaker = self.breaker(n, p, base: defaults.breaker) }
        var slo = defaults.slo
        slo.latency = slo.latency.filter { probe.operations.contains($0.key) }
        var own = SLOConfiguration()
        if let (n, p) = map["slo"] {
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
            for problem in s3.validate()
            where !(problem.field == "endpoint" && s3.endpoint.isEmpty)
                && !(problem.field == "bucket" && s3.bucket.isEmpty)
            {
                let field = Self.configKey(for: problem.field)
                self.problem("\(path).\(field)", problem.message)
            }
        }
        var credentials = CanaryConfiguration.Credentials.defaultChain(profile: nil)
        if let (n, p) = map["credentials"] {
            credentials = self.credentials(n, p) ?? credentials
        } else {
            self.problem(
                "\(path).credentials",
                "is missing; give keys (access_key_id and secret_access_key or their _file/_env forms) or a source")
        }
        var backend = CanaryConfiguration.Backend(
            name: name, s3: s3, credentials: credentials, probe: probe, breaker: breaker)
        backend.slo = slo
        return backend
    }

    /// Maps a field of `S3Backend.Configuration.validate()` (a Swift property path) to the key a user wrote.
    static func configKey(for field: String) -> String {
        switch field {
        case "timeouts.connect": "connect_timeout"
        case "timeouts.request": "probe.timeout"
        case "pool.maxConnections": "max_connections"
        case "pool.idleTimeout": "pool.idle_timeout"
        case "tls.caBundlePath": "tls.ca_bundle"
        case "payloadSigning": "payload_signing"
        case "maxResponseBytes": "max_response_bytes"
        default: field
        }
    }

    mutating func credentials(_ node: Node, _ path: String) -> CanaryConfiguration.Credentials? {
        guard let map = self.mapping(node, path, allowed: Self.credentialKeys) else { return nil }
        func secret(_ base: String) -> SecretSource? {
            guard let (source, sourcePath) = self.secretSource(map, base, parent: path) else { return nil }
            if case .value = source { return source }
            // Files and variables are read now, so a missing one fails validation rather than the first probe.
            return self.resolveSecret(source, sourcePath) == nil ? nil : source
        }
        let keyID = secret("access_key_id")
        let secretKey = secret("secret_access_key")
        let token = secret("session_token")
        var source: String?
        if let (n, p) = map["source"] { source = self.string(n, p) }
        var profile: String?
        if let (n, p) = map["profile"] { profile = self.string(n, p) }
        let givenKeys = ["access_key_id", "secret_access_key"].contains { base in
            [base, "\(base)_env", "\(base)_file"].contains { map[$0] != nil }
        }
        switch source ?? (givenKeys ? "static" : nil) {
        case "static":
            guard let keyID, let secretKey else {
                if keyID == nil
                    && !["access_key_id", "access_key_id_env", "access_key_id_file"].contains(where: { map[$0] != nil })
                {
                    self.problem(
                        "\(path).access_key_id", "is missing; give it (or access_key_id_env / access_key_id_file)")
                }
                if secretKey == nil
                    && !["secret_access_key", "secret_access_key_env", "secret_access_key_file"].contains(where: {
                        map[$0] != nil
                    })
                {
                    self.problem(
                        "\(path).secret_access_key", "is missing; give secret_access_key_file (or _env, or the value)")
                }
                return nil
            }
            return .keys(accessKeyID: keyID, secretAccessKey: secretKey, sessionToken: token)
        case "environment":
            return .environment
        case "profile":
            return .profile(profile)
        case "web_identity":
            return .webIdentity
        case "container":
            return .container
        case "imds":
            return .instanceMetadata
        case "default_chain":
            return .defaultChain(profile: profile)
        case nil:
            self.problem(
                path,
                """
                gives neither keys nor a source; add access_key_id and secret_access_key_file, \
                or source: environment | profile | default_chain
                """
            )
            return nil
        case let other?:
            self.problem(
                "\(path).source",
                "\"\(other)\" is not static, environment, profile, web_identity, container, imds or default_chain")
            return nil
        }
    }

    /// A secret given as `BASE` (the value), `BASE_env` (a variable) or `BASE_file` (a file), with the path of the
    /// key used; `nil` when none is given or more than one is (reported).
    mutating func secretSource(
        _ map: [String: (Node, String)], _ base: String, parent: String
    ) -> (SecretSource, String)? {
        let forms = [base, "\(base)_env", "\(base)_file"].filter { map[$0] != nil }
        if forms.count > 1 {
            self.problem("\(parent).\(base)", "is given as \(forms.joined(separator: " and ")); keep one")
            return nil
        }
        if let (n, p) = map[base], let v = self.string(n, p) { return (.value(v), p) }
        if let (n, p) = map["\(base)_env"], let v = self.string(n, p) { return (.environment(v), p) }
        if let (n, p) = map["\(base)_file"], let v = self.string(n, p) { return (.file(v), p) }
        return nil
    }

    /// Reads a secret now, reporting a missing file or variable as a problem at `path`.
    mutating func resolveSecret(_ source: SecretSource, _ path: String) -> String? {
        do {
            return try source.resolve(field: path, environment: self.environment)
        } catch let error as ConfigurationError {
            for problem in error.problems { self.problem(problem.field, problem.message) }
        } catch {
            self.problem(path, "\(error)")
        }
        return nil
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

    /// `sharding:`: this replica probes only the backends of its shard (`shards`, and `shard` or
    /// `shard_from_hostname`, which reads a StatefulSet ordinal such as `s3-canary-2`).
    mutating func sharding(_ node: Node, _ path: String, hostName: String) -> CanaryConfiguration.Sharding? {
        guard let map = self.mapping(node, path, allowed: ["shards", "shard", "shard_from_hostname"]) else {
            return nil
        }
        guard let (shardsNode, shardsPath) = map["shards"] else {
            self.problem("\(path).shards", "is required: how many replicas share the backends, such as 3")
            return nil
        }
        guard let shards = self.integer(shardsNode, shardsPath, range: 1...10_000) else { return nil }
        let fromHostName = map["shard_from_hostname"].flatMap { self.bool($0.0, $0.1) } ?? false
        let shard: Int
        switch (map["shard"], fromHostName) {
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
                    "\(path).shard_from_hostname",
                    "the host name \"\(Self.clipped(hostName, to: 64))\" does not end in -<number> "
                        + "as a StatefulSet pod's does "
                        + "(s3-canary-2); set shard instead"
                )
                return nil
            }
            guard ordinal < shards else {
                self.problem(
                    "\(path).shard_from_hostname",
                    "the host name's ordinal \(ordinal) is not below shards (\(shards)); "
                        + "raise shards to the replica count"
                )
                return nil
            }
            shard = ordinal
        case (.none, false):
            self.problem(
                "\(path).shard", "is required: this replica's shard, 0 to \(shards - 1), or shard_from_hostname: true")
            return nil
        }
        return CanaryConfiguration.Sharding(shards: shards, shard: shard)
    }

    /// `alertmanagers:`: the Alertmanager cluster this instance pushes its alerts to.
    mutating func alertmanagers(_ node: Node, _ path: String) -> AlertmanagerConfiguration? {
        let keys = [
            "urls", "resend_interval", "timeout", "max_retries", "queue_size", "bearer_token", "bearer_token_env",
            "bearer_token_file", "basic_auth", "ca_bundle",
        ]
        guard let map = self.mapping(node, path, allowed: keys) else { return nil }
        var urls: [String] = []
        if let (n, p) = map["urls"], let items = self.list(n, p) {
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
        } else if map["urls"] == nil {
            self.problem(
                "\(path).urls", "is missing; list every Alertmanager of the cluster, such as [http://alertmanager:9093]"
            )
        }
        var configuration = AlertmanagerConfiguration(urls: urls)
        if let (n, p) = map["resend_interval"], let v = self.duration(n, p, min: .seconds(1), max: .seconds(3600)) {
            configuration.resendInterval = v
        }
        if let (n, p) = map["timeout"], let v = self.duration(n, p, min: .milliseconds(100), max: .seconds(120)) {
            configuration.timeout = v
        }
        if let (n, p) = map["max_retries"], let v = self.integer(n, p, range: 0...100) { configuration.maxRetries = v }
        if let (n, p) = map["queue_size"], let v = self.integer(n, p, range: 1...100_000) {
            configuration.queueSize = v
        }
        if let (source, sourcePath) = self.secretSource(map, "bearer_token", parent: path) {
            configuration.bearerToken = self.resolveSecret(source, sourcePath)
        }
        if let (n, p) = map["basic_auth"] {
            if configuration.bearerToken != nil || map["bearer_token_env"] != nil || map["bearer_token_file"] != nil {
                self.problem(p, "give basic_auth or bearer_token, not both")
            }
            if let auth = self.mapping(n, p, allowed: ["username", "password", "password_env", "password_file"]) {
                let username = auth["username"].flatMap { self.string($0.0, $0.1) }
                if auth["username"] == nil { self.problem("\(p).username", "is missing") }
                var password: String?
                if let (source, sourcePath) = self.secretSource(auth, "password", parent: p) {
                    password = self.resolveSecret(source, sourcePath)
                } else {
                    self.problem("\(p).password", "is missing; give password, password_env or password_file")
                }
                if let username, let password {
                    configuration.basicAuth = .init(username: username, password: password)
                }
            }
        }
        if let (n, p) = map["ca_bundle"], let v = self.string(n, p) {
            if FileManager.default.isReadableFile(atPath: v) {
                configuration.caBundle = v
            } else {
                self.problem(p, "cannot read \(v); give a readable PEM file")
            }
        }
        return configuration
    }
}

extension Node {
    var isMapping: Bool {
        if case .mapping = self { return true }
        return false
    }
}
