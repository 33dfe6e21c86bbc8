import Foundation
import ObjectStorage

/// The whole configuration of the service (DESIGN §9), after parsing, expansion and validation.
public struct CanaryConfiguration: Sendable, Equatable {
    /// The canary operations, in the order a cycle runs them.
    public enum Operation: String, Sendable, CaseIterable, Codable {
        case put, head, get
        case getRange = "get_range"
        case copy, list, delete
    }

    public struct Probe: Sendable, Equatable {
        public var interval: Duration = .seconds(15)
        /// Per-operation timeout.
        public var timeout: Duration = .seconds(5)
        /// Fraction of the interval each cycle's start may move, either way.
        public var jitter: Double = 0.10
        public var objectSize: Int = 1024
        public var keyPrefix: String = ".s3-canary/"
        public var operations: [Operation] = [.put, .head, .get, .getRange, .delete]
        public init() {}
    }

    public struct Breaker: Sendable, Equatable {
        public var failureThreshold: Int = 3
        public var openTimeout: Duration = .seconds(30)
        /// How long a half-open probe may take before it is abandoned; `nil` means ``defaultProbeTimeout(for:)``.
        public var probeTimeout: Duration?
        public init() {}

        /// The default probe timeout: twice the per-operation timeout, at least a second. The one place it is
        /// decided, so `run` and `probe` agree.
        public static func defaultProbeTimeout(for probe: Probe) -> Duration {
            max(probe.timeout * 2, .seconds(1))
        }
    }

    public enum Credentials: Sendable, Equatable {
        case keys(accessKeyID: SecretSource, secretAccessKey: SecretSource, sessionToken: SecretSource?)
        case environment
        case profile(String?)
        case webIdentity
        case container
        case instanceMetadata
        case defaultChain(profile: String?)
    }

    public struct Backend: Sendable, Equatable {
        public var name: String
        public var s3: S3Backend.Configuration
        public var credentials: Credentials
        public var probe: Probe
        public var breaker: Breaker

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

    public struct Listen: Sendable, Equatable {
        public var host: String = "0.0.0.0"
        public var port: Int = 9340
        public init() {}
        public var description: String { self.host.contains(":") ? "[\(self.host)]:\(self.port)" : "\(self.host):\(self.port)" }
    }

    /// Who may reach the HTTP endpoint and how (exporter-toolkit's web config, DESIGN §7).
    public struct Server: Sendable, Equatable {
        /// PEM files of the endpoint's certificate chain and key; read again on every reload.
        public struct TLSFiles: Sendable, Equatable {
            public var certificateFile: String
            public var keyFile: String
        }

        public var tls: TLSFiles?
        /// User name to bcrypt hash (`htpasswd -nbB user password`).
        public var basicAuthUsers: [String: String] = [:]
        public var bearerToken: SecretSource?
        /// Sum of all request header lines; larger requests get 400 (from NIO's HTTP decoder).
        public var maxHeaderBytes: Int = 16 * 1024
        /// Request bodies larger than this get 413 (only `POST /-/reload` takes a request, and it needs no body).
        public var maxBodyBytes: Int = 4 * 1024
        /// Idle keep-alive connections are closed after this, so slow or abandoned clients cannot pile up.
        public var idleTimeout: Duration = .seconds(60)
        public init() {}
    }

    public var listen = Listen()
    public var server = Server()
    public var instance: String
    public var probe = Probe()
    public var breaker = Breaker()
    public var backends: [Backend] = []
    public var webhooks: [WebhookConfiguration] = []
    /// How receivers reach this instance's `/status` (links in events); default `http://<instance>:<port>`.
    public var externalURL: String?

    /// Where receivers reach this instance: `external_url`, or `http://<instance>:<port>` by default.
    public var externalBaseURL: String {
        let base = self.externalURL ?? "http://\(self.instance):\(self.listen.port)"
        return base.hasSuffix("/") ? String(base.dropLast()) : base
    }

    public init(instance: String) {
        self.instance = instance
    }
}

extension CanaryConfiguration {
    /// Parses a duration as the configuration file writes it (`250ms`, `5s`, `1m`).
    public static func parseDuration(_ text: String) -> Duration? { Reader.parseDuration(text) }
}

extension CanaryConfiguration.Operation {
    /// The `operation` label value.
    public var label: String { self.rawValue }
}
