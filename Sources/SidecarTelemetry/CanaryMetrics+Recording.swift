import Foundation
import ObjectStorage
import PrometheusExposition
public import SidecarBreaker
public import SidecarCanary
import SidecarConfig

extension CanaryMetrics {
    /// Records a finished cycle: probe gauges and counters, and every operation it ran.
    public func record(_ result: CycleResult) {
        let backend = result.backend
        self.probes.add([backend, result.status.rawValue])
        self.probeSuccess.set([backend], result.status == .success ? 1 : 0)
        if result.status == .success {
            self.lastSuccess.set([backend], result.startedAt.timeIntervalSince1970 + result.duration.seconds)
        }
        // Exemplars are stamped with the cycle's end: close enough to each request to find it in the server's log.
        let stamp = result.startedAt.timeIntervalSince1970 + result.duration.seconds
        for step in result.steps {
            let operation = step.operation.label
            switch step.result {
            case .success:
                self.operations.add([backend, operation, OperationResult.success.rawValue])
                if let seconds = step.seconds,
                    let threshold = self.latencyThreshold(backend: backend, operation: operation),
                    seconds > threshold
                {
                    self.sloLatencyMisses.add([backend, operation])
                }
            case .error:
                self.operations.add([backend, operation, OperationResult.error.rawValue])
                self.operationErrors.add([backend, operation, (step.reason ?? .other).rawValue])
            case .rejected:
                self.operations.add([backend, operation, OperationResult.rejected.rawValue])
            case .skipped, .unsupported:
                break
            }
            if result.paced.contains(step.operation), step.result != .rejected {
                self.operationLastRun.set([backend, operation], stamp)
            }
            if let verdict = step.verdict {
                self.featureSupported.set([backend, operation], verdict == .ok ? 1 : 0)
            }
            // An unsupported feature's answer time is not the feature's latency: it did not run.
            if let seconds = step.seconds, step.result != .rejected, step.result != .unsupported {
                let exemplar = step.requestID.flatMap { Exemplar(requestID: $0, value: seconds, timestamp: stamp) }
                self.operationDuration.observe([backend, operation], seconds, exemplar: exemplar)
            }
        }
        if result.integrityFailure {
            self.integrityFailures.add([backend])
        }
        self.record(addresses: result.addresses, backend: backend, endedAt: stamp)
    }

    /// Records a breaker transition.
    func record(_ event: BreakerTransitionEvent) {
        let transition = event.transition
        self.breakerTransitions.add([event.backend, transition.from.rawValue, transition.to.rawValue])
        self.breakerState.set([event.backend], transition.to.gaugeValue)
    }

    /// Publishes the breaker's live counts (called after each cycle).
    public func record(_ snapshot: BreakerSnapshot, backend: String) {
        self.breakerState.set([backend], snapshot.state.gaugeValue)
        self.breakerConsecutiveFailures.set([backend], Double(snapshot.consecutiveFailures))
    }

    /// A sweep of a backend: what it removed (a series from the first removal) and what it could not.
    public func recordSweep(_ report: SweepReport) {
        if report.removedCanaries > 0 { self.sweepRemoved.add([report.backend, "canary"], Double(report.removedCanaries)) }
        if report.abortedUploads > 0 { self.sweepRemoved.add([report.backend, "upload"], Double(report.abortedUploads)) }
        if report.errors > 0 { self.sweepErrors.add([report.backend], Double(report.errors)) }
    }
}
