import Foundation
public import ObjectStorage
import PrometheusExposition
import SidecarCanary

extension CanaryMetrics {
    /// A request's phases (with `metrics.request_phases`; a canary operation's requests only, as the time to first
    /// byte, not the sweeper's or a cleanup's) and, when it opened a TLS connection, its session. A session replaces
    /// the address's earlier one, and the sessions of addresses the name's last `answer` lacks go: a backend has at
    /// most one `s3canary_tls_info` series per address of its answer.
    public func record(_ trace: RequestTrace, backend: String, answer: [String]?) {
        if let family = self.requestPhase, trace.label != nil {
            for phase in trace.phases { family.observe([backend, phase.phase.rawValue], phase.duration.seconds) }
        }
        if let tls = trace.tls, let address = trace.address {
            self.tlsInfo.removeSeries { labels in
                guard labels.count == 4, labels[0] == backend else { return false }
                if labels[1] == address { return labels[2] != tls.version || labels[3] != tls.cipher }
                return answer.map { !$0.contains(labels[1]) } ?? false
            }
            self.tlsInfo.set([backend, address, tls.version, tls.cipher], 1)
        }
    }

    /// With `addresses: all`: each probed address's up and last success; the series of addresses the name no longer
    /// resolves to (or beyond `max_addresses`) go, so a backend never has more than `max_addresses` of them.
    func record(addresses set: AddressSet, backend: String, endedAt: Double) {
        // The cycle's own lookup, which no request made.
        if let seconds = set.dnsSeconds { self.requestPhase?.observe([backend, RequestPhase.dns.rawValue], seconds) }
        guard let resolution = set.resolution else { return }
        let probed = Set(set.results.map(\.address))
        for family in [self.addressUp, self.addressLastSuccess] {
            family.removeSeries { labels in labels.first == backend && !probed.contains(labels.dropFirst().first ?? "")
            }
        }
        self.tlsInfo.removeSeries { labels in
            labels.first == backend && !resolution.addresses.contains(labels.dropFirst().first ?? "")
        }
        for result in set.results {
            let labels = [backend, result.address, result.family]
            self.addressUp.set(labels, result.status == .success ? 1 : 0)
            if result.status == .success {
                self.addressLastSuccess.set(labels, endedAt)
            } else {
                self.addressLastSuccess.touch(labels)
            }
        }
    }
}
