import Foundation
import Logging
import ObjectStorage
import ServiceLifecycle

/// Publishes `s3canary_tls_certificate_expiry_timestamp_seconds` for every https backend: the earliest expiry in
/// the chain it serves, read at start-up and then once per `interval` (an hour by default).
struct TLSExpiryWatcher: Service {
    let service: CanaryService
    var interval: Duration = .seconds(3600)

    func run() async throws {
        while !Task.isShuttingDownGracefully {
            await self.checkAll()
            do {
                try await cancelWhenGracefulShutdown { try await Task.sleep(for: self.interval) }
            } catch {
                return
            }
        }
    }

    func checkAll() async {
        for backend in self.service.configuration.backends {
            guard let url = URL(string: backend.s3.endpoint), url.scheme?.lowercased() == "https", let host = url.host else {
                continue
            }
            do {
                let expiry = try await TLSCertificateInspector.earliestExpiry(host: host, port: url.port ?? 443)
                self.service.metrics.tlsCertificateExpiry.set([backend.name], expiry.timeIntervalSince1970)
            } catch {
                self.service.logger.debug(
                    "cannot read the TLS certificate chain",
                    metadata: ["canary.backend": "\(backend.name)", "tls.error": "\(error)"]
                )
            }
        }
    }
}
