import Foundation
import ObjectStorage
import PrometheusExposition
public import SidecarCanary
public import SidecarConfig

extension CanaryMetrics {
    /// Creates a corpus's series (or, for a backend without `durability:`, removes them): the object counts at 0
    /// until the corpus is read, the pass interval, and the checks by result.
    func setDurability(_ durability: CanaryConfiguration.Durability?, backend name: String) {
        guard let durability else {
            for family in [
                self.durabilityObjects, self.durabilityLastFullPass, self.durabilityFullEvery, self.durabilityChecks,
            ] {
                family.removeSeries(where: "backend", equals: name)
            }
            return
        }
        for state in ["ok", "missing", "corrupted"] { self.durabilityObjects.touch([name, state]) }
        for result in ["ok", "missing", "corrupted", "error"] { self.durabilityChecks.touch([name, result]) }
        self.durabilityFullEvery.set([name], durability.fullEvery.seconds)
    }

    /// Whether the backend has a corpus now (a reload may have dropped it while its last check was ending).
    func hasDurability(_ name: String) -> Bool {
        self.durabilityFullEvery.value([name]) != nil
    }

    /// Records what a check of a corpus found.
    public func record(durability report: DurabilityReport) {
        let name = report.backend
        if report.phase == .verifying {
            let counts = report.counts
            self.durabilityObjects.set([name, "ok"], Double(counts.ok))
            self.durabilityObjects.set([name, "missing"], Double(counts.missing))
            self.durabilityObjects.set([name, "corrupted"], Double(counts.corrupted))
        }
        if let last = report.lastFullPass {
            self.durabilityLastFullPass.set([name], last.timeIntervalSince1970)
        }
        let checks = report.checks
        for (result, count) in [
            ("ok", checks.ok), ("missing", checks.missing), ("corrupted", checks.corrupted), ("error", checks.error),
        ] where count > 0 {
            self.durabilityChecks.add([name, result], Double(count))
        }
    }
}
