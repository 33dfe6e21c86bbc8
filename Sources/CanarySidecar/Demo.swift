import Foundation
public import Logging
public import ObjectStorage
public import ServiceLifecycle
import SidecarBreaker
public import SidecarConfig
import SidecarServer

/// `s3-canary demo`: three in-memory backends, no account and no network needed.
///
/// `demo-stable` always works, `demo-slow` adds latency, and `demo-flaky` fails in bursts (35 s of errors every
/// 70 s), so its breaker opens and closes about once a minute and every metric and transition can be watched.
public enum Demo {
    static let burstPeriod: Duration = .seconds(70)
    static let burstLength: Duration = .seconds(35)

    /// The demo's configuration: the three demo backends, each on an in-memory store, served on `listen`.
    ///
    /// - Parameters:
    ///   - loadBackends: this many more always-healthy backends (`demo-load-0001`...), for load and soak runs.
    ///   - interval: the probe interval of every backend.
    public static func configuration(
        listen: CanaryConfiguration.Listen,
        loadBackends: Int = 0,
        interval: Duration = .seconds(5)
    ) -> CanaryConfiguration {
        var configuration = CanaryConfiguration(instance: "demo")
        configuration.listen = listen
        configuration.probe.interval = interval
        configuration.probe.timeout = min(.seconds(2), interval * 0.4)
        configuration.probe.operations = [.put, .head, .get, .getRange, .copy, .list, .delete]
        configuration.breaker.failureThreshold = 3
        configuration.breaker.openTimeout = .seconds(10)
        let load = (0..<max(loadBackends, 0)).map { String(format: "demo-load-%04d", $0 + 1) }
        // The three demo backends carry objectives, so the status page shows budgets (demo-slow's 40 ms GETs miss
        // its 25 ms latency objective on purpose); the load backends carry none, as a plain config would.
        let objectives = SLOConfiguration(
            availability: 0.99, latency: [.get: .init(threshold: .milliseconds(25), objective: 0.9)])
        configuration.backends = (["demo-stable", "demo-slow", "demo-flaky"] + load).map { name in
            var backend = CanaryConfiguration.Backend(
                name: name,
                s3: S3Backend.Configuration(endpoint: "memory://\(name)", bucket: "demo"),
                credentials: .environment,
                probe: configuration.probe,
                breaker: configuration.breaker
            )
            if !name.hasPrefix("demo-load-") { backend.slo = objectives }
            return backend
        }
        return configuration
    }

    /// Parses a duration as the configuration file writes it (`250ms`, `5s`, `1m`).
    public static func parseDuration(_ text: String) -> Duration? { CanaryConfiguration.parseDuration(text) }

    /// The in-memory stores, by backend name.
    public final class Stores: Sendable {
        let stores: [String: MemoryBackend]

        /// One empty in-memory store per name; `demo-slow` answers 40 ms late.
        public init(names: [String]) {
            var stores: [String: MemoryBackend] = [:]
            for name in names { stores[name] = MemoryBackend(name: name) }
            self.stores = stores
            stores["demo-slow"]?.setLatency(.milliseconds(40))
        }

        /// The store of backend `name`, if the demo has one.
        public subscript(name: String) -> MemoryBackend? { self.stores[name] }

        /// A factory that hands each configured backend its store.
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
        var store: MemoryBackend
        var logger: Logger

        /// A driver of `store`'s faults that logs each switch.
        public init(store: MemoryBackend, logger: Logger) {
            self.store = store
            self.logger = logger
        }

        /// Alternates healthy and failing (503) periods until graceful shutdown.
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
                    try await cancelWhenGracefulShutdown {
                        try await Task.sleep(for: Demo.burstPeriod - Demo.burstLength)
                    }
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
