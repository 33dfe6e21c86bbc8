public import Foundation
public import Logging
public import ObjectStorage
import PrometheusExposition
public import ServiceLifecycle
public import SidecarConfig
public import SidecarTelemetry

/// Publishes `s3canary_tls_certificate_expiry_timestamp_seconds` for every https backend: the earliest expiry in
/// the chain it serves, read at start-up and then once per `interval` (an hour by default) on `clock`.
public struct TLSExpiryWatcher<C: Clock>: Service where C.Duration == Duration {
    let metrics: CanaryMetrics
    let logger: Logger
    let clock: C
    var interval: Duration
    /// The backends configured now (a reload may change them).
    let backends: @Sendable () -> [CanaryConfiguration.Backend]
    /// Reads the earliest `notAfter` of the chain served at host:port (tests pass their own).
    let inspect: @Sendable (_ host: String, _ port: Int) async throws -> Date

    /// A watcher of the backends `backends` returns at each check; `inspect` reads a chain's earliest expiry.
    public init(
        metrics: CanaryMetrics,
        logger: Logger,
        clock: C,
        interval: Duration = .seconds(3600),
        backends: @escaping @Sendable () -> [CanaryConfiguration.Backend],
        inspect: @escaping @Sendable (_ host: String, _ port: Int) async throws -> Date = { host, port in
            try await TLSCertificateInspector.earliestExpiry(host: host, port: port)
        }
    ) {
        self.metrics = metrics
        self.logger = logger
        self.clock = clock
        self.interval = interval
        self.backends = backends
        self.inspect = inspect
    }

    /// Checks every https backend now and then every `interval`, until graceful shutdown.
    public func run() async throws {
        while !Task.isShuttingDownGracefully {
            await self.checkAll()
            do {
                try await cancelWhenGracefulShutdown { try await self.clock.sleep(for: self.interval) }
            } catch {
                return
            }
        }
    }

    func checkAll() async {
        for backend in self.backends() {
            guard let url = URL(string: backend.s3.endpoint), url.scheme?.lowercased() == "https", let host = url.host
            else {
                continue
            }
            do {
                let expiry = try await self.inspect(host, url.port ?? 443)
                self.metrics.tlsCertificateExpiry.set([backend.name], expiry.timeIntervalSince1970)
            } catch {
                self.logger.debug(
                    "cannot read the TLS certificate chain",
                    metadata: ["canary.backend": "\(backend.name)", "tls.error": "\(error)"]
                )
            }
        }
    }
}
