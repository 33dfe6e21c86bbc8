import Foundation
import ObjectStorage
import SidecarConfig
import SidecarEvents

/// The alerts this instance pushes to Alertmanager (`POST /api/v2/alerts`), as a pure state machine: events in,
/// the alerts to send now out. No I/O and no clock: the caller passes the time.
///
/// `S3CanaryCircuitOpen` fires on `backend.circuit.opened` and is resolved explicitly on `backend.circuit.closed`;
/// `S3CanaryIntegrityFailure` fires on corruption and resolves `integrityWindow` after the last one (as the
/// Prometheus rule's 15-minute window does). Every firing alert is sent again on each resend with `endsAt` one
/// `validity` ahead, so the alerts of an instance that dies resolve by themselves once that time has passed.
struct AlertBook: Sendable {
    /// One alert as Alertmanager's API v2 takes it (`PostableAlert`).
    struct Alert: Sendable, Equatable, Encodable {
        var labels: [String: String]
        var annotations: [String: String]
        var startsAt: String
        var endsAt: String
        var generatorURL: String
    }

    /// One alert to send, with the event type its delivery is counted under.
    struct Push: Sendable, Equatable {
        var alert: Alert
        var event: WebhookEventType
    }

    private struct Key: Hashable {
        var alertname: String
        var backend: String
    }

    private struct Active {
        var labels: [String: String]
        var annotations: [String: String]
        var startsAt: Date
        var generatorURL: String
        var event: WebhookEventType
        /// When an integrity alert stops firing by itself; `nil` for breaker alerts (resolved by `closed`).
        var until: Date?
    }

    /// How long a pushed firing alert stays valid without a resend.
    var validity: Duration
    /// How long an integrity alert fires after the last corruption.
    var integrityWindow: Duration = .seconds(900)
    private var active: [Key: Active] = [:]

    static let circuitOpen = "S3CanaryCircuitOpen"
    static let integrityFailure = "S3CanaryIntegrityFailure"
    static let defaultRunbookBase = "https://github.com/s3-canary/s3-canary/blob/main"

    init(validity: Duration) {
        self.validity = validity
    }

    /// The alerts firing now, by name and backend.
    var firing: [(alertname: String, backend: String)] {
        self.active.keys.map { ($0.alertname, $0.backend) }.sorted {
            ($0.alertname, $0.backend) < ($1.alertname, $1.backend)
        }
    }

    /// Takes an event; returns what to send now (nothing for events that are not alerts).
    mutating func apply(_ event: WebhookEvent, now: Date) -> [Push] {
        guard let backend = event.backend else { return [] }
        switch event.type {
        case .circuitOpened:
            let key = Key(alertname: Self.circuitOpen, backend: backend)
            let entry = self.entry(event, alertname: Self.circuitOpen, severity: "warning", until: nil)
            self.active[key] = entry
            return [self.push(entry, endsAt: now.addingTimeInterval(self.validity.seconds))]
        case .circuitClosed:
            let key = Key(alertname: Self.circuitOpen, backend: backend)
            var resolved: Active
            if let entry = self.active.removeValue(forKey: key) {
                resolved = entry
            } else {
                // Resolved even when this instance never saw it open (a restart mid-outage): Alertmanager may hold it.
                resolved = self.entry(event, alertname: Self.circuitOpen, severity: "warning", until: nil)
                resolved.startsAt = event.time.addingTimeInterval(-(event.openDurationSeconds ?? 0))
            }
            resolved.event = .circuitClosed
            return [self.push(resolved, endsAt: now)]
        case .corruptionDetected:
            let key = Key(alertname: Self.integrityFailure, backend: backend)
            var entry = self.entry(
                event, alertname: Self.integrityFailure, severity: "critical",
                until: now.addingTimeInterval(self.integrityWindow.seconds))
            if let previous = self.active[key] { entry.startsAt = previous.startsAt }
            self.active[key] = entry
            return [self.push(entry, endsAt: now.addingTimeInterval(self.validity.seconds))]
        default:
            return []
        }
    }

    /// The periodic resend: every firing alert again with a fresh `endsAt`; integrity alerts past their window
    /// resolved.
    mutating func resend(now: Date) -> [Push] {
        var pushes: [Push] = []
        for (key, entry) in self.active.sorted(by: {
            ($0.key.alertname, $0.key.backend) < ($1.key.alertname, $1.key.backend)
        }) {
            if let until = entry.until, until <= now {
                self.active[key] = nil
                pushes.append(self.push(entry, endsAt: now))
            } else {
                pushes.append(self.push(entry, endsAt: now.addingTimeInterval(self.validity.seconds)))
            }
        }
        return pushes
    }

    private func entry(_ event: WebhookEvent, alertname: String, severity: String, until: Date?) -> Active {
        // External labels first: the alert's own labels win (the configuration forbids those names anyway).
        let labels = event.externalLabels.merging([
            "alertname": alertname, "instance": event.instance, "backend": event.backend ?? "", "severity": severity,
        ]) { $1 }
        var annotations = [
            "summary": PayloadFormat.summary(event),
            "runbook_url": (event.externalLabels["runbook_base"] ?? Self.defaultRunbookBase)
                + "/docs/runbook.md#\(alertname.lowercased())",
        ]
        if let error = event.lastError {
            annotations["description"] = "last error: \(error.operation) \(error.reason): \(error.message)"
        }
        return Active(
            labels: labels, annotations: annotations, startsAt: event.time, generatorURL: event.statusURL,
            event: event.type, until: until)
    }

    private func push(_ entry: Active, endsAt: Date) -> Push {
        Push(
            alert: Alert(
                labels: entry.labels, annotations: entry.annotations, startsAt: PayloadFormat.rfc3339(entry.startsAt),
                endsAt: PayloadFormat.rfc3339(endsAt), generatorURL: entry.generatorURL),
            event: entry.event
        )
    }
}
