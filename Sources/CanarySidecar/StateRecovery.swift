import Foundation
import Logging
import PrometheusExposition
import SidecarBreaker
import SidecarConfig
import SidecarEvents
import SidecarState
import SidecarTelemetry

/// What a restart picks up from `state_dir` (docs/design.md, 4.12): the store for the event outbox, and the outages
/// a previous process announced and did not close. Problems with the store are logged and counted, never fatal:
/// the service then runs as without `state_dir`.
struct StateRecovery: Sendable {
    var store: StateStore?
    var outages: [RememberedOutage] = []

    /// Opens the store of `service`'s `state_dir`, if it has one.
    static func open(for service: CanaryService) async -> StateRecovery {
        let configuration = service.configuration
        guard let directory = configuration.stateDirectory else {
            service.logger.warning(
                "no state_dir: events waiting for a receiver, and open breakers, do not survive a restart")
            return StateRecovery()
        }
        service.metrics.addOutbox()
        let (store, problems) = await StateStore.open(
            directory: directory, instance: configuration.instance, logger: service.logger)
        for problem in problems {
            service.metrics.stateProblems.add([problem.kind.rawValue])
            service.logger.error(
                "state store unusable as found",
                metadata: ["state.problem": "\(problem.kind.rawValue)", "state.message": "\(problem.message)"])
        }
        guard let store else {
            service.logger.error("running without a state store: events do not survive a restart")
            return StateRecovery()
        }
        var recovery = StateRecovery(store: store)
        do {
            recovery.outages = try await store.outages()
        } catch {
            service.logger.error("cannot read the remembered outages", metadata: ["error": "\(error)"])
        }
        service.logger.notice(
            "state store open",
            metadata: ["state.path": "\(store.path)", "state.open_outages": "\(recovery.outages.count)"])
        return recovery
    }

    /// The outages of backends this instance still probes, to continue: they start open.
    func resumable(owned: Set<String>) -> [String: ResumedOutage] {
        var out: [String: ResumedOutage] = [:]
        for outage in self.outages where owned.contains(outage.backend) {
            let failure = outage.failure.flatMap { parts -> FailureSummary? in
                guard parts.count == 3, let reason = FailureReason(rawValue: parts[1]) else { return nil }
                return FailureSummary(operation: parts[0], reason: reason, message: parts[2])
            }
            out[outage.backend] = ResumedOutage(
                since: outage.since, consecutiveFailures: outage.consecutiveFailures, lastFailure: failure)
        }
        return out
    }

    /// The `opened` events of the outages that continue, for the Alertmanager pusher: its alerts are state, held in
    /// memory, so a restarted process pushes the firing alert again (Alertmanager deduplicates by labels).
    func resumedEvents(owned: Set<String>, telemetry: TelemetryHook) -> [WebhookEvent] {
        let resumable = self.resumable(owned: owned)
        return self.outages.compactMap { outage in
            guard let resumed = resumable[outage.backend] else { return nil }
            return telemetry.resumedOutageEvent(
                backend: outage.backend, since: outage.since, eventID: outage.openedEventID,
                consecutiveFailures: outage.consecutiveFailures, lastFailure: resumed.lastFailure)
        }
    }

    /// Sends the `closed` of every outage whose backend this instance no longer probes: nothing else ever would.
    func closeOrphans(owned: Set<String>, telemetry: TelemetryHook, now: Date = Date()) {
        for outage in self.outages where !owned.contains(outage.backend) {
            telemetry.outageEnded(
                backend: outage.backend,
                after: .milliseconds(Int64(max(0, now.timeIntervalSince(outage.since)) * 1000)),
                message: "backend removed from the configuration while its breaker was open")
        }
    }
}
