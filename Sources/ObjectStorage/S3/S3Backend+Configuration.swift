import Foundation

extension S3Backend {
    /// How to reach one bucket. Defaults suit a canary: short timeouts, a small pool.
    public struct Configuration: Sendable, Equatable {
        /// Whether the bucket goes in the path (`host/bucket/key`, what Ceph RGW and MinIO use by default) or
        /// the host name (`bucket.host/key`, what AWS prefers).
        public enum Addressing: String, Sendable, CaseIterable {
            case path
            case virtualHost = "virtual_host"
        }

        /// Whether the body's SHA-256 is signed. `unsigned` saves hashing the body and is allowed over HTTPS
        /// only, where TLS already protects it.
        public enum PayloadSigning: String, Sendable, CaseIterable {
            case signed
            case unsigned
        }

        /// How long a connection and a request may take.
        public struct Timeouts: Sendable, Equatable {
            /// Time to establish a connection (TCP and TLS).
            public var connect: Duration
            /// Whole-request deadline when the caller gives none.
            public var request: Duration

            /// Timeouts; the defaults are 5 s to connect and 30 s per request.
            public init(connect: Duration = .seconds(5), request: Duration = .seconds(30)) {
                self.connect = connect
                self.request = request
            }
        }

        /// The connection pool of the backend's HTTP client.
        public struct Pool: Sendable, Equatable {
            /// Connections kept per backend; a canary needs few.
            public var maxConnections: Int
            /// How long an idle connection is kept for reuse.
            public var idleTimeout: Duration

            /// Pool settings; the defaults keep 4 connections, idle for up to 60 s.
            public init(maxConnections: Int = 4, idleTimeout: Duration = .seconds(60)) {
                self.maxConnections = maxConnections
                self.idleTimeout = idleTimeout
            }
        }

        /// Which servers to trust over HTTPS.
        public struct TLS: Sendable, Equatable {
            /// PEM file of the CAs to trust instead of the system's.
            public var caBundlePath: String?
            /// Turning this off accepts any certificate: for tests and broken labs only.
            public var verifyCertificates: Bool

            /// TLS settings; by default the system's CAs, with verification on.
            public init(caBundlePath: String? = nil, verifyCertificates: Bool = true) {
                self.caBundlePath = caBundlePath
                self.verifyCertificates = verifyCertificates
            }
        }

        /// DNS servers of the backend's own, instead of the system resolver.
        public struct DNS: Sendable, Equatable {
            /// `IP:PORT` (or `[IPv6]:PORT`, or an IP for port 53), asked in order until one answers.
            public var servers: [String]
            /// How long to wait for each server's answer.
            public var timeout: Duration

            /// DNS settings; the timeout defaults to 2 s per server.
            public init(servers: [String], timeout: Duration = .seconds(2)) {
                self.servers = servers
                self.timeout = timeout
            }
        }

        /// `http(s)://host[:port]`, without a path.
        public var endpoint: String
        /// The region requests are signed for.
        public var region: String
        /// The bucket every key lives in.
        public var bucket: String
        /// Where the bucket goes in the URL.
        public var addressing: Addressing
        /// Whether request bodies are signed.
        public var payloadSigning: PayloadSigning
        /// Connect and request timeouts.
        public var timeouts: Timeouts
        /// Connection pool settings.
        public var pool: Pool
        /// Which servers to trust over HTTPS.
        public var tls: TLS
        /// Largest response body read into memory; a canary's objects are small.
        public var maxResponseBytes: Int
        /// Whether connections are reused (`pooled`, with a new one to each address every cycle) or not (`fresh`).
        public var connection: ConnectionMode
        /// Which address family the endpoint's name is resolved to.
        public var ipFamily: IPFamily
        /// DNS servers to ask instead of the system resolver.
        public var dns: DNS?

        /// A configuration for `bucket` at `endpoint`; ``S3Backend`` rejects an invalid one when created.
        public init(
            endpoint: String,
            region: String = "us-east-1",
            bucket: String,
            addressing: Addressing = .path,
            payloadSigning: PayloadSigning = .signed,
            timeouts: Timeouts = Timeouts(),
            pool: Pool = Pool(),
            tls: TLS = TLS(),
            maxResponseBytes: Int = 64 << 20,
            connection: ConnectionMode = .pooled,
            ipFamily: IPFamily = .any,
            dns: DNS? = nil
        ) {
            self.endpoint = endpoint
            self.region = region
            self.bucket = bucket
            self.addressing = addressing
            self.payloadSigning = payloadSigning
            self.timeouts = timeouts
            self.pool = pool
            self.tls = tls
            self.maxResponseBytes = maxResponseBytes
            self.connection = connection
            self.ipFamily = ipFamily
            self.dns = dns
        }

        /// The parsed endpoint.
        struct Endpoint: Sendable, Equatable {
            var scheme: String
            var host: String
            var port: Int?

            var isTLS: Bool { self.scheme == "https" }

            /// The name connections go to (what is resolved, the TLS SNI): the host, or `bucket.host` for
            /// virtual-host addressing.
            func connectHost(bucket: String?) -> String {
                bucket.map { "\($0).\(self.host)" } ?? self.host
            }

            /// `host[:port]` as the `Host` header carries it (the port only when not the scheme's default).
            func authority(prefix: String? = nil) -> String {
                var host = self.host
                if host.contains(":") { host = "[\(host)]" }
                if let prefix { host = "\(prefix).\(host)" }
                if let port, port != (self.isTLS ? 443 : 80) { return "\(host):\(port)" }
                return host
            }
        }

        /// Every problem with this configuration, each naming its field by its Swift property path (such as
        /// `pool.maxConnections`; a caller reading a file maps those to its own keys) and the fix. Empty when usable.
        public func validate() -> [ConfigurationProblem] {
            var problems: [ConfigurationProblem] = []
            switch Self.parseEndpoint(self.endpoint) {
            case .success(let endpoint):
                if self.payloadSigning == .unsigned && !endpoint.isTLS {
                    problems.append(
                        .init(
                            field: "payloadSigning",
                            message: "unsigned payloads are only allowed over https; use signed or an https endpoint"
                        )
                    )
                }
                if !endpoint.isTLS && (self.tls.caBundlePath != nil || !self.tls.verifyCertificates) {
                    problems.append(
                        .init(field: "tls", message: "TLS settings need an https endpoint; remove them or use https")
                    )
                }
            case .failure(let problem):
                problems.append(problem)
            }
            problems += Self.validateBucket(self.bucket, addressing: self.addressing)
            if self.region.isEmpty {
                problems.append(.init(field: "region", message: "is empty; give the region, such as us-east-1"))
            } else if !self.region.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") })
            {
                problems.append(
                    .init(
                        field: "region",
                        message:
                            "\"\(self.region)\" may hold only letters, digits, - and _ (no spaces), such as us-east-1"
                    )
                )
            }
            if self.timeouts.connect <= .zero {
                problems.append(.init(field: "timeouts.connect", message: "must be positive, such as 5s"))
            }
            if self.timeouts.request <= .zero {
                problems.append(.init(field: "timeouts.request", message: "must be positive, such as 30s"))
            }
            if self.pool.maxConnections < 1 || self.pool.maxConnections > 1024 {
                problems.append(.init(field: "pool.maxConnections", message: "must be between 1 and 1024"))
            }
            if self.pool.idleTimeout <= .zero {
                problems.append(.init(field: "pool.idleTimeout", message: "must be positive, such as 60s"))
            }
            if let path = self.tls.caBundlePath, !FileManager.default.isReadableFile(atPath: path) {
                problems.append(
                    .init(field: "tls.caBundlePath", message: "cannot read \(path); give a readable PEM file")
                )
            }
            if let dns = self.dns {
                if dns.servers.isEmpty {
                    problems.append(.init(field: "dns.servers", message: "is empty; give at least one IP:PORT"))
                }
                for (index, server) in dns.servers.enumerated() where DNSResolver.parseServer(server) == nil {
                    problems.append(
                        .init(
                            field: "dns.servers[\(index)]",
                            message: "\"\(server)\" is not IP:PORT; write it as 10.0.0.2:53, [fd00::2]:53 or 10.0.0.2"))
                }
                if dns.timeout <= .zero {
                    problems.append(.init(field: "dns.timeout", message: "must be positive, such as 2s"))
                }
            }
            if self.maxResponseBytes < 1 {
                problems.append(.init(field: "maxResponseBytes", message: "must be positive"))
            }
            return problems
        }

        static func parseEndpoint(_ text: String) -> Result<Endpoint, ConfigurationProblem> {
            let example = "write it as http(s)://host[:port], such as http://127.0.0.1:7480"
            guard !text.isEmpty else {
                return .failure(.init(field: "endpoint", message: "is empty; \(example)"))
            }
            guard let url = URL(string: text), let scheme = url.scheme?.lowercased(),
                let host = url.host, !host.isEmpty
            else {
                return .failure(.init(field: "endpoint", message: "\"\(text)\" is not a URL; \(example)"))
            }
            guard scheme == "http" || scheme == "https" else {
                return .failure(.init(field: "endpoint", message: "scheme \(scheme) is not http or https; \(example)"))
            }
            guard url.path.isEmpty || url.path == "/", url.query == nil, url.fragment == nil else {
                return .failure(
                    .init(
                        field: "endpoint",
                        message: "must not have a path or query; \(example), and put the bucket in `bucket`")
                )
            }
            guard url.user == nil, url.password == nil else {
                return .failure(
                    .init(
                        field: "endpoint",
                        message: "must not carry credentials; \(example), and use the credentials section")
                )
            }
            if let port = url.port, !(1...65535).contains(port) {
                return .failure(.init(field: "endpoint", message: "port \(port) is out of range 1-65535"))
            }
            let bare = host.hasPrefix("[") && host.hasSuffix("]") ? String(host.dropFirst().dropLast()) : host
            return .success(Endpoint(scheme: scheme, host: bare, port: url.port))
        }

        static func validateBucket(_ bucket: String, addressing: Addressing) -> [ConfigurationProblem] {
            if bucket.isEmpty {
                return [.init(field: "bucket", message: "is empty; name the bucket the canary writes to")]
            }
            if bucket.contains("/") || bucket.contains(where: { $0.isWhitespace || !$0.isASCII }) {
                return [
                    .init(field: "bucket", message: "\"\(bucket)\" must not contain /, spaces or non-ASCII characters")
                ]
            }
            if bucket.count > 255 {
                return [.init(field: "bucket", message: "is longer than 255 characters")]
            }
            if addressing == .virtualHost {
                let dnsSafe =
                    (3...63).contains(bucket.count)
                    && bucket.allSatisfy { $0.isLowercase || $0.isNumber || $0 == "-" || $0 == "." }
                    && !bucket.hasPrefix("-") && !bucket.hasPrefix(".") && !bucket.hasSuffix("-")
                    && !bucket.hasSuffix(".") && !bucket.contains("..")
                if !dnsSafe {
                    return [
                        .init(
                            field: "bucket",
                            message: "\"\(bucket)\" is not a DNS-safe name (3-63 lower-case letters, digits, - and .), "
                                + "which virtual-host addressing needs; rename it or use path-style addressing"
                        )
                    ]
                }
            }
            return []
        }
    }
}
