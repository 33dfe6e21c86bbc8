public import Foundation
public import Logging
public import ServiceLifecycle
public import SidecarConfig
public import SidecarEvents
public import SidecarTelemetry
import Synchronization

/// Pushes this instance's alerts to every Alertmanager of `alertmanagers:` (`POST <url>/api/v2/alerts`), the way
/// Prometheus sends alerts: on every breaker and integrity event, and again every `resend_interval` while firing.
/// Delivery (a queue and worker per Alertmanager, retries with backoff, `Retry-After`, metrics under `webhook` =
/// `alertmanager-<n>`) is the webhook dispatcher's, so a slow or dead Alertmanager never delays probing.
public final class AlertmanagerPusher<C: Clock>: Service where C.Duration == Duration {
    private let book: Mutex<AlertBook>
    private let dispatcher: WebhookDispatcher<C>
    private let clock: C
    private let now: @Sendable () -> Date
    private let resendInterval: Duration
    private let logger: Logger

    /// - Parameters:
    ///   - clock: what the resend interval and delivery are measured on.
    ///   - now: wall-clock time for `startsAt` and `endsAt`.
    public init(
        configuration: AlertmanagerConfiguration,
        metrics: CanaryMetrics,
        logger: Logger,
        clock: C,
        transport: (any WebhookTransport)? = nil,
        userAgent: String = "s3-canary",
        now: @escaping @Sendable () -> Date = { Date() }
    ) {
        self.book = Mutex(AlertBook(validity: configuration.alertValidity))
        self.clock = clock
        self.now = now
        self.resendInterval = configuration.resendInterval
        self.logger = logger
        let lanes = configuration.urls.enumerated().map { index, url in
            var lane = WebhookConfiguration(name: "alertmanager-\(index)", url: url + "/api/v2/alerts")
            lane.events = [
                WebhookEventType.circuitOpened, .circuitClosed, .corruptionDetected,
            ].map(\.rawValue)
            lane.timeout = configuration.timeout
            lane.maxRetries = configuration.maxRetries
            lane.queueSize = configuration.queueSize
            // A push older than an alert's validity says nothing the next resend will not say better.
            lane.maxAge = configuration.alertValidity
            if let token = configuration.bearerToken {
                lane.headers["Authorization"] = "Bearer \(token)"
            } else if let auth = configuration.basicAuth {
                lane.headers["Authorization"] =
                    "Basic " + Data("\(auth.username):\(auth.password)".utf8).base64EncodedString()
            }
            return lane
        }
        self.dispatcher = WebhookDispatcher(
            webhooks: lanes, metrics: metrics, logger: logger, clock: clock,
            transport: transport ?? HTTPWebhookTransport(caBundle: configuration.caBundle), userAgent: userAgent,
            now: now
        )
    }

    /// Takes an event (a sink of the telemetry hook); breaker and integrity events become pushes at once.
    public func receive(_ event: WebhookEvent) {
        let now = self.now()
        let pushes = self.book.withLock { $0.apply(event, now: now) }
        self.send(pushes)
    }

    /// Delivers until graceful shutdown, re-sending the firing alerts every `resend_interval`.
    public func run() async throws {
        try await withThrowingDiscardingTaskGroup { group in
            group.addTask { try await self.dispatcher.run() }
            while !Task.isShuttingDownGracefully {
                do {
                    try await cancelWhenGracefulShutdown { try await self.clock.sleep(for: self.resendInterval) }
                } catch {
                    break
                }
                let now = self.now()
                let pushes = self.book.withLock { $0.resend(now: now) }
                self.send(pushes)
            }
        }
    }

    /// One POST per alert: Alertmanager takes any number per request, and one each keeps a failed delivery to the
    /// alerts it carried.
    private func send(_ pushes: [AlertBook.Push]) {
        for push in pushes {
            let body: Data
            do {
                body = try PayloadFormat.encoder().encode([push.alert])
            } catch {
                self.logger.warning("an alert could not be encoded", metadata: ["alert.error": "\(type(of: error))"])
                continue
            }
            // Counted under the event that caused it (a resend under the alert's own event type).
            let event = WebhookEvent(
                type: push.event, time: self.now(), instance: push.alert.labels["instance"] ?? "",
                backend: push.alert.labels["backend"], statusURL: push.alert.generatorURL)
            self.dispatcher.enqueue(.init(body: body, contentType: "application/json"), for: event)
        }
    }
}
