import Foundation
import TestSupport

/// One name with several addresses in front of the real RGW: TLS front ends on the loopback aliases 127.0.0.2-4,
/// all on one port (Tests/Fixtures/address_front.py, whose control port breaks one address a chosen way), and a DNS
/// server of the tests' own (Tests/Fixtures/dns_server.py, dnslib) that answers from a zone file the test rewrites.
/// The name is `localhost`, RGW's `rgw dns name`, so RGW takes the requests as path-style ones; the system resolver
/// would answer 127.0.0.1 for it, only the tests' DNS server answers the three aliases (A) and `::1` (AAAA), where a
/// fourth front answers.
struct AddressRig {
    static let addresses = ["127.0.0.2", "127.0.0.3", "127.0.0.4"]
    static let name = "localhost"

    let work: URL
    /// The CA both certificates are signed by (`tls.ca_bundle`).
    let caBundle: String
    /// The port every address listens on.
    let port: Int
    let control: Int
    /// `127.0.0.1:PORT` of the DNS server.
    let dnsServer: String
    let zone: URL
    let front: Daemon
    let dns: Daemon

    var endpoint: String { "https://\(Self.name):\(self.port)" }

    /// Makes the CA and two certificates for `localhost` (the second is the `alt_cert` mode's: same CA, another key),
    /// writes a zone with the three addresses and starts both servers.
    static func start(_ label: String, upstream: Int) async throws -> AddressRig {
        let work = try Harness.temporaryDirectory(label)
        func path(_ name: String) -> String { work.appendingPathComponent(name).path }
        try TLSFront.openssl([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "365", "-subj", "/CN=s3-canary address CA",
            "-keyout", path("ca.key"), "-out", path("ca.pem"),
        ])
        try Data("subjectAltName=DNS:\(Self.name)\n".utf8).write(to: work.appendingPathComponent("san.ext"))
        for certificate in ["server", "alt"] {
            try TLSFront.openssl([
                "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=\(Self.name)", "-keyout",
                path("\(certificate).key"),
                "-out", path("\(certificate).csr"),
            ])
            try TLSFront.openssl([
                "x509", "-req", "-in", path("\(certificate).csr"), "-CA", path("ca.pem"), "-CAkey", path("ca.key"),
                "-CAcreateserial", "-days", "30", "-extfile", path("san.ext"), "-out", path("\(certificate).pem"),
            ])
        }
        let zone = work.appendingPathComponent("zone.json")
        try Self.write(zone, ["localhost": ["a": Self.addresses, "aaaa": ["::1"], "ttl": 30]])
        let port = try Harness.freePort()
        let control = try Harness.freePort()
        let dnsPort = try Harness.freePort()
        let fixtures = Harness.root.appendingPathComponent("Tests/Fixtures")
        let front = try Daemon(
            "/usr/bin/env",
            [
                "python3", "-u", fixtures.appendingPathComponent("address_front.py").path,
                "--upstream", "127.0.0.1:\(upstream)", "--port", "\(port)", "--tls", path("server.pem"),
                path("server.key"), "--alt-tls", path("alt.pem"), path("alt.key"), "--control", "\(control)",
            ] + Self.addresses + ["::1"],
            log: work.appendingPathComponent("front.log"))
        let dns = try Daemon(
            "/usr/bin/env",
            [
                "python3", "-u", fixtures.appendingPathComponent("dns_server.py").path, zone.path, "127.0.0.1",
                "\(dnsPort)",
            ],
            log: work.appendingPathComponent("dns.log"))
        let rig = AddressRig(
            work: work, caBundle: path("ca.pem"), port: port, control: control, dnsServer: "127.0.0.1:\(dnsPort)",
            zone: zone, front: front, dns: dns)
        do {
            try await Harness.waitUntil(.seconds(15), "address_front.py and dns_server.py ready") {
                guard front.isRunning else { throw HarnessError("address_front.py exited: \(front.log)") }
                guard dns.isRunning else { throw HarnessError("dns_server.py exited: \(dns.log)") }
                return front.log.contains("ready") && dns.log.contains("ready")
            }
        } catch {
            rig.stop()
            throw error
        }
        return rig
    }

    /// Sets how `address` treats new connections: ok, stall, stall_response, refuse_new, reset_on_data, alt_cert.
    func mode(_ address: String, _ mode: String) throws {
        let result = try Harness.run(
            "/usr/bin/env",
            ["curl", "-s", "-f", "-X", "POST", "http://127.0.0.1:\(self.control)/mode?address=\(address)&mode=\(mode)"])
        guard result.status == 0 else { throw HarnessError("setting \(address) to \(mode): \(result.stderr)") }
    }

    /// Replaces the zone: names to `{"a": [...], "ttl": N}` or `{"rcode": "SERVFAIL"}` (dns_server.py's format).
    func zone(_ names: [String: [String: Any]]) throws { try Self.write(self.zone, names) }

    private static func write(_ zone: URL, _ names: [String: [String: Any]]) throws {
        let data = try JSONSerialization.data(withJSONObject: ["names": names])
        let temporary = zone.appendingPathExtension("new")
        try data.write(to: temporary)
        // rename(2): the server, which reads the file on every query, sees the old zone or the new one.
        guard rename(temporary.path, zone.path) == 0 else { throw HarnessError("cannot replace \(zone.path)") }
    }

    func stop() {
        self.front.signal(SIGKILL)
        self.dns.signal(SIGKILL)
    }
}
