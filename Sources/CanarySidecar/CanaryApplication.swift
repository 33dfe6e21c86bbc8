import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import ObjectStorage
public import ServiceLifecycle
import SidecarBreaker
import SidecarCanary
import SidecarConfig
import SidecarNotify
import SidecarServer
import SidecarState
import SidecarTelemetry
import UnixSignals

/// Wires the service into one `ServiceGroup`: the HTTP server, the scheduler, SIGHUP reloads and any extra
/// services (the demo's fault driver). SIGTERM and SIGINT shut down gracefully: `/readyz` turns 503 at once,
/// the scheduler starts no new cycle and waits for running ones (their canaries are deleted), then the server
/// stops.
public struct CanaryApplication: Sendable {
    var service: CanaryService
    var extraServices: [any Service]
    var gracePeriod: Duration
    var webhookDrainTimeout: Duration
    var version: String

    /// An application around `service`; `gracePeriod` bounds the whole graceful shutdown.
    public init(
        service: CanaryService,
        extraServices: [any Service] = [],
        gracePeriod: Duration = .seconds(30),
        webhookDrainTimeout: Duration = .seconds(10),
        version: String = "dev"
    ) {
        self.service = service
        self.extraServices = extraServices
        self.gracePeriod = gracePeriod
        self.webhookDrainTimeout = webhookDrainTimeout
        self.version = version
    }

    /// Starts the service and serves until SIGTERM or SIGINT, then shuts everything down in order.
    public func run() async throws {
        let service = self.service
        let listen = service.configuration.listen
        let recovery = await StateRecovery.open(for: service)
        let owned = Set(service.configuration.ownedBackends.map(\.name))
        service.resume(recovery.resumable(owned: owned))
        try await service.start()
        let settings = service.configuration.server
        let http1 = HTTPServerBuilder.http1(
            configuration: .init(
                idleTimeout: settings.idleTimeout.timeAmount,
                httpDecoderConfiguration: .init(
                    maxHeaderFieldSize: settings.maxHeaderBytes,
                    maxHeaderListSize: settings.maxHeaderBytes,
                    maxHeaderFieldCount: 100
                )
            )
        )
        let builder =
            try service.endpointTLS.map { try HTTPServerBuilder.tls(http1, tlsConfiguration: $0.serverConfiguration()) }
            ?? http1
        let server = Application(
            router: HTTPServer.router(serving: service, maxBodyBytes: settings.maxBodyBytes),
            server: builder,
            configuration: .init(address: .hostname(listen.host, port: listen.port), serverName: nil),
            onServerRunning: { channel in
                service.logger.notice(
                    "listening",
                    metadata: ["http.address": "\(channel.localAddress?.description ?? listen.description)"]
                )
            },
            logger: service.logger
        )
        let scheduler = SchedulerShutdownGate(service: service)
        let hangups = ReloadOnHangup(service: service)
        let expiry = TLSExpiryWatcher(
            metrics: service.metrics,
            logger: service.logger,
            clock: ContinuousClock(),
            backends: { service.configuration.ownedBackends }
        )
        let dispatcher = WebhookDispatcher(
            webhooks: service.configuration.webhooks,
            metrics: service.metrics,
            logger: service.logger,
            clock: ContinuousClock(),
            drainTimeout: self.webhookDrainTimeout,
            userAgent: "s3-canary/\(self.version)",
            store: recovery.store
        )
        service.onEvent { dispatcher.publish($0) }
        var pushers: [any Service] = []
        if let alertmanagers = service.configuration.alertmanagers {
            let pusher = AlertmanagerPusher(
                configuration: alertmanagers, metrics: service.metrics, logger: service.logger,
                clock: ContinuousClock(), userAgent: "s3-canary/\(self.version)"
            )
            service.onEvent { pusher.receive($0) }
            for event in recovery.resumedEvents(owned: owned, telemetry: service.telemetry) { pusher.receive(event) }
            pushers.append(pusher)
        }
        // Shut down in reverse order: the scheduler first (so metrics stay scrapeable while cycles drain),
        // the HTTP server last.
        // Each service named here: without a name, ServiceLifecycle names it "\(service)", which reflects the whole
        // value (the HTTP server with its router, the service with its configuration) through dynamic casts that
        // scan every protocol conformance in the binary: a tenth of the start-up's CPU, for log lines nobody reads.
        func named(_ name: String, _ service: any Service) -> ServiceGroupConfiguration.ServiceConfiguration {
            .init(service: service, serviceName: name)
        }
        var configuration = ServiceGroupConfiguration(
            services: [named("http-server", server), named("webhook-dispatcher", dispatcher)]
                + pushers.map { named("alertmanager-pusher", $0) }
                + [named("tls-expiry-watcher", expiry)]
                + self.extraServices.map { named(_typeName(type(of: $0), qualified: false), $0) }
                + [
                    named("reloads", service.reloads), named("reload-on-hangup", hangups),
                    named("scheduler", scheduler),
                ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            cancellationSignals: [],
            logger: service.logger
        )
        configuration.maximumGracefulShutdownDuration = self.gracePeriod
        let group = ServiceGroup(configuration: configuration)
        service.logger.notice(
            "s3-canary started",
            metadata: [
                "config.backends": "\(service.configuration.ownedBackends.map(\.name).joined(separator: ","))",
                "config.instance": "\(service.configuration.instance)",
            ]
        )
        service.emit(.serviceStarted)
        recovery.closeOrphans(owned: owned, telemetry: service.telemetry)
        try await group.run()
        service.logger.notice("s3-canary stopped")
    }
}

/// Runs the scheduler; on graceful shutdown marks the service not ready before anything else happens.
struct SchedulerShutdownGate: Service {
    let service: CanaryService

    func run() async throws {
        try await withGracefulShutdownHandler {
            try await self.service.scheduler.run()
        } onGracefulShutdown: {
            self.service.board.beginShutdown()
            self.service.emit(.serviceStopping)
            self.service.logger.notice("shutting down: no new cycles; waiting for running ones")
        }
    }
}

/// Reloads the configuration on SIGHUP, as Prometheus and most daemons do.
struct ReloadOnHangup: Service {
    let service: CanaryService

    func run() async throws {
        let signals = await UnixSignalsSequence(trapping: .sighup)
        for await _ in signals.cancelOnGracefulShutdown() {
            await self.service.reloadOnSignal()
        }
    }
}
