import Foundation
import Logging
public import SidecarCanary
import SidecarConfig
import SidecarEvents

extension TelemetryHook {
    /// Keys named in one `data.lost` or `data.corrupted` event; the count says how many there are in all.
    static let keysPerEvent = 10

    /// A check of a backend's durability corpus: its series, its `/status`, and one event per kind of new damage.
    public func durabilityChecked(_ report: DurabilityReport) {
        guard self.board.contains(report.backend), self.metrics.hasDurability(report.backend) else { return }
        self.metrics.record(durability: report)
        self.board.record(durability: report)
        let origin = self.currentOrigin
        for (state, type) in [
            (DurabilityProgress.Damage.State.missing, WebhookEventType.dataLost), (.corrupted, .dataCorrupted),
        ] {
            let found = report.newlyDamaged.filter { $0.state == state }
            guard !found.isEmpty else { continue }
            let corpus = DurabilityCorpus(prefix: report.prefix, objects: report.objects, objectSize: 0)
            let keys = found.prefix(Self.keysPerEvent).map { corpus.key($0.index) }
            let more = found.count > keys.count ? " and \(found.count - keys.count) more" : ""
            let message =
                "\(found.count) object\(found.count == 1 ? "" : "s") of the durability corpus "
                + "\(state == .missing ? "missing" : "corrupted"): \(keys.joined(separator: ", "))\(more)"
            self.logger.error(
                "durability corpus damaged",
                metadata: [
                    "canary.backend": "\(report.backend)", "durability.state": "\(state.rawValue)",
                    "durability.count": "\(found.count)", "durability.keys": "\(keys.joined(separator: ","))",
                ])
            self.emit(
                WebhookEvent(
                    type: type, instance: origin.instance, backend: report.backend, message: message,
                    statusURL: origin.statusURL))
        }
    }
}
