import ObjectStorage
import Yams

/// `dns:` (top level, the default of every backend) and `backends[].dns:`: DNS servers of the canary's own.
public enum DNSKey: String, ConfigSectionKey {
    case servers, timeout

    public static let section = "dns"
    public static let summary =
        "Resolve endpoint names through these DNS servers with the canary's own client (A/AAAA over UDP, TCP when "
        + "truncated), so a failure names the answer (NXDOMAIN, SERVFAIL, timeout) and the status document shows the TTL; "
        + "without it, the system resolver. A backend's own dns: replaces the top-level one."

    public var spec: ConfigKeySpec {
        switch self {
        case .servers:
            .init(
                .list("IP:PORT"), required: true,
                "The servers, asked in order until one answers: 10.0.0.2:53, [fd00::2]:53, or an IP for port 53.")
        case .timeout:
            .init(
                .duration(min: .milliseconds(10), max: .seconds(60)), default: "2s", "How long to wait for each server."
            )
        }
    }
}

/// Where a backend's canary goes among the addresses its endpoint's name resolves to (`backends[].addresses`).
public enum AddressSelection: String, Sendable, CaseIterable, Codable {
    /// The first address of the answer (the family filter applied), as any client would.
    case first
    /// Every address, each cycle: one bad address of several is `degraded`, not an outage.
    case all
}

extension Reader {
    /// A `dns:` section.
    mutating func dns(_ node: Node, _ path: String) -> S3Backend.Configuration.DNS? {
        guard let map = self.section(node, path, DNSKey.self) else { return nil }
        var servers: [String] = []
        if let (n, p) = map[.servers], let items = self.list(n, p) {
            for (item, itemPath) in items {
                guard let text = self.string(item, itemPath) else { continue }
                if DNSServerAddress.isValid(text) {
                    servers.append(text)
                } else {
                    self.problem(
                        itemPath, "\"\(text)\" is not IP:PORT; write it such as 10.0.0.2:53, [fd00::2]:53 or 10.0.0.2")
                }
            }
            if items.isEmpty { self.problem(p, "is empty; give at least one DNS server such as 10.0.0.2:53") }
        } else if !map.has(.servers) {
            self.problem(map.path(.servers), "is missing; give the DNS servers such as [\"10.0.0.2:53\"]")
        }
        var dns = S3Backend.Configuration.DNS(servers: servers)
        if let v = self.duration(map, .timeout) { dns.timeout = v }
        return dns
    }
}
