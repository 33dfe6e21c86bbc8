import Foundation
import ObjectStorage
import SidecarTelemetry

extension StatusPage {
    /// The addresses of the backend's name: each one's verdict (with `addresses: all`), where its last failure broke,
    /// its last request's phases and TLS session. Nothing until a request went out.
    static func addresses(_ network: StatusDocument.Network) -> String {
        guard !network.addresses.isEmpty || network.dnsError != nil else { return "" }
        var rows = ""
        for address in network.addresses {
            let verdict = address.up.map { $0 ? "up" : "failing" } ?? "-"
            let error = address.lastError.map {
                [$0.operation, $0.reason, $0.phase.map { "in \($0)" }, $0.message].compactMap { $0 }.joined(
                    separator: " ")
            }
            let tls = address.tls.map { "\($0.version) \($0.cipher) · \($0.fingerprintSHA256.prefix(16))…" } ?? ""
            rows += """
                <tr data-address="\(escape(address.address))" data-up="\(verdict)"\
                \(address.up == false ? " class=\"bad\"" : "")><td>\(escape(address.address))</td>\
                <td>\(verdict)</td><td>\(escape(Self.phaseText(address.phases)))</td><td>\(escape(tls))</td>\
                <td>\(escape(address.up == false ? error ?? "" : ""))</td></tr>\n
                """
        }
        var notes: [String] = []
        if network.degraded { notes.append("degraded: some addresses fail while others work") }
        if network.certificatesDiffer { notes.append("the addresses present different certificates") }
        if let dns = network.dnsError {
            notes.append("the name did not resolve: \(dns.code) from \(dns.server)")
        } else if !network.answer.isEmpty {
            let ttl = network.ttlSeconds.map { ", TTL \(Int($0)) s" } ?? ""
            notes.append("resolved by \(network.resolver ?? "-") to \(network.answer.count) addresses\(ttl)")
        }
        let caption = notes.map(escape).joined(separator: " · ")
        return """
            <div class="scroll"><table class="slo" data-degraded="\(network.degraded)" \
            data-certificates-differ="\(network.certificatesDiffer)"><caption>addresses: \(caption)</caption>
            <thead><tr><th>address</th><th>verdict</th><th>last request's phases</th><th>TLS</th>\
            <th>last error</th></tr></thead>
            <tbody>
            \(rows)</tbody></table></div>
            """
    }

    /// `dns 0.4 ms · connect 0.2 ms · ...`, in the phases' order.
    static func phaseText(_ phases: [String: Double]) -> String {
        RequestPhase.allCases.compactMap { phase in
            phases[phase.rawValue].map { "\(phase.rawValue) \(String(format: "%.1f", $0 * 1000)) ms" }
        }.joined(separator: " · ")
    }

    /// The network part of `/probe?debug=true`: the answer and each address's last request.
    static func networkLines(_ status: NetworkStatus) -> String {
        let network = StatusDocument.network(status)
        guard !network.addresses.isEmpty || network.dnsError != nil else { return "" }
        var text = "\nNetwork:\n"
        if let dns = network.dnsError {
            text += "  the name did not resolve: \(dns.code) from \(dns.server)\(dns.detail.map { " (\($0))" } ?? "")\n"
        } else {
            let ttl = network.ttlSeconds.map { ", TTL \(Int($0)) s" } ?? ""
            text += "  resolved by \(network.resolver ?? "-"): \(network.answer.joined(separator: ", "))\(ttl)\n"
        }
        for address in network.addresses {
            let verdict = address.up.map { $0 ? " up" : " FAILING" } ?? ""
            text += "  \(address.address)\(verdict): \(Self.phaseText(address.phases))\n"
            if let tls = address.tls {
                text += "    TLS \(tls.version) \(tls.cipher), certificate sha256 \(tls.fingerprintSHA256)\n"
            }
            if address.up == false, let error = address.lastError {
                text +=
                    "    last error: \(error.operation) \(error.reason ?? "-") in \(error.phase ?? "-"): "
                    + "\(error.message ?? "")\n"
            }
        }
        if network.degraded { text += "  degraded: some addresses fail while others work\n" }
        if network.certificatesDiffer { text += "  the addresses present different certificates\n" }
        return text
    }
}
