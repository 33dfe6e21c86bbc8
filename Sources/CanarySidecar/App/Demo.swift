import Foundation
import Logging
import ObjectStorage
import ServiceLifecycle
import Synchronization

/// `s3-canary demo`: three in-memory backends, no account and no network needed.
///
/// `demo-stable` always works, `demo-slow` adds latency, and `demo-flaky` fails in bursts (35 s of errors every
/// 70 s), so its breaker opens and closes about once a minute and every metric and transition can be watched.
public enum Demo {
    public static let burstPeriod: Duration = .seconds(70)
    public static let burstLength: Duration = .seconds(35)

    public static func configuration(listen: CanaryConfiguration.Listen) -> CanaryConfiguration {
        var configuration = CanaryConfiguration(instance: "demo")
        configuration.listen = listen
        configuration.probe.interval = .seconds(5)
        configuration.probe.timeout = .seconds(2)
        configuration.probe.operations = [.put, .head, .get, .getRange, .copy, .list, .delete]
        configuration.breaker.failureThreshold = 3
        configuration.breaker.openTimeout = .seconds(10)
        configuration.backends = ["demo-stable", "demo-slow", "demo-flaky"].map { name in
            CanaryConfiguration.Backend(
                name: name,
                s3: S3Backend.Configuration(endpoint: "memory://\(name)", bucket: "demo"),
                credentials: .environment,
                probe: configuration.probe,
                breaker: configuration.breaker
            )
        }
        return configuration
    }

    /// The in-memory stores, by backend name.
    public final class Stores: Sendable {
        let stores: [String: MemoryBackend]

        public init(names: [String]) {
            var stores: [String: MemoryBackend] = [:]
            for name in names { stores[name] = MemoryBackend(name: name) }
            self.stores = stores
            stores["demo-slow"]?.setLatency(.milliseconds(40))
        }

        public subscript(name: String) -> MemoryBackend? { self.stores[name] }

        public var factory: BackendFactory {
            BackendFactory { entry, _ in
                guard let store = self.stores[entry.name] else {
                    throw ConfigurationError(field: "backends", message: "the demo has no backend \(entry.name)")
                }
                return OwnedBackend(backend: store)
            }
        }
    }

    /// Turns `demo-flaky`'s failures on and off in bursts.
    public struct FaultDriver: Service {
        public var store: MemoryBackend
        public var logger: Logger

        public init(store: MemoryBackend, logger: Logger) {
            self.store = store
            self.logger = logger
        }

        public func run() async throws {
            let outage = ObjectStorageError(
                code: .httpError,
                httpStatus: 503,
                s3Code: "ServiceUnavailable",
                message: "demo outage"
            )
            while !Task.isShuttingDownGracefully {
                self.store.clearFaults()
                self.logger.info("demo: demo-flaky is healthy")
                do {
                    try await cancelWhenGracefulShutdown { try await Task.sleep(for: Demo.burstPeriod - Demo.burstLength) }
                } catch { return }
                self.store.failAlways(with: outage)
                self.logger.info("demo: demo-flaky starts failing with 503")
                do {
                    try await cancelWhenGracefulShutdown { try await Task.sleep(for: Demo.burstLength) }
                } catch { return }
            }
        }
    }
}
