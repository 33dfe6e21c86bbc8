import Foundation
import ObjectStorage
import TestSupport
import Testing

/// The canary's own DNS client (`dns:`) against a real DNS server (Tests/Fixtures/dns_server.py, dnslib): the answer
/// and its TTL, each failure by its code, TCP after a truncated UDP answer, and the next server after one that fails.
@Suite("DNS client against dnslib")
struct DNSResolverTests {
    struct Server {
        let zone: URL
        let port: Int
        let daemon: Daemon
        var address: String { "127.0.0.1:\(self.port)" }

        /// The queries it saw, as dns_server.py logs them: `udp A name`.
        var queries: [String] {
            let text = (try? String(contentsOf: self.zone.appendingPathExtension("log"), encoding: .utf8)) ?? ""
            return text.split(separator: "\n").compactMap { line in
                guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                    return nil
                }
                return "\(object["transport"] ?? "") \(object["type"] ?? "") \(object["name"] ?? "")"
            }
        }

        static func start(_ names: [String: [String: Any]]) async throws -> Server {
            let work = try Harness.temporaryDirectory("dns")
            let zone = work.appendingPathComponent("zone.json")
            try JSONSerialization.data(withJSONObject: ["names": names]).write(to: zone)
            let port = try Harness.freePort()
            let daemon = try Daemon(
                "/usr/bin/env",
                [
                    "python3", "-u", Harness.root.appendingPathComponent("Tests/Fixtures/dns_server.py").path,
                    zone.path,
                    "127.0.0.1", "\(port)",
                ],
                log: work.appendingPathComponent("dns.log"))
            try await Harness.waitUntil(.seconds(10), "dns_server.py ready") {
                guard daemon.isRunning else { throw HarnessError("dns_server.py exited: \(daemon.log)") }
                return daemon.log.contains("ready")
            }
            return Server(zone: zone, port: port, daemon: daemon)
        }
    }

    static func backend(_ name: String, servers: [String], family: IPFamily = .any) throws -> S3Backend {
        try S3Backend(
            configuration: .init(
                endpoint: "http://\(name):7480", bucket: "b", ipFamily: family,
                dns: .init(servers: servers, timeout: .milliseconds(300))),
            credentials: StaticCredentialsProvider(Credentials(accessKeyID: "a", secretAccessKey: "s")))
    }

    static func failure(_ backend: S3Backend) async -> DNSFailure? {
        do {
            _ = try await backend.resolveAddresses()
            return nil
        } catch {
            return error as? DNSFailure
        }
    }

    @Test func answersFailuresTruncationAndTheNextServer() async throws {
        let many = (1...40).map { "10.0.\($0 / 256).\($0 % 256)" }
        let server = try await Server.start([
            "s3.test": ["a": ["10.0.0.1", "10.0.0.2"], "aaaa": ["fd00::1"], "ttl": 42],
            "alias.test": ["cname": "s3.test"],
            "servfail.test": ["rcode": "SERVFAIL"],
            "silent.test": ["drop": true],
            "big.test": ["a": many, "ttl": 5, "truncate": true],
            "v4only.test": ["a": ["10.0.0.9"]],
        ])
        defer { server.daemon.signal(SIGKILL) }

        let answer = try await Self.backend("s3.test", servers: [server.address]).resolveAddresses()
        #expect(answer.addresses == ["10.0.0.1", "10.0.0.2", "fd00::1"], "A first, then AAAA")
        #expect(answer.ttl == .seconds(42) && answer.server == server.address)
        #expect(
            try await Self.backend("s3.test", servers: [server.address], family: .ipv6).resolveAddresses().addresses
                == ["fd00::1"])
        #expect(
            try await Self.backend("alias.test", servers: [server.address], family: .ipv4).resolveAddresses()
                .addresses == ["10.0.0.1", "10.0.0.2"])

        #expect(await Self.failure(try Self.backend("nowhere.test", servers: [server.address]))?.code == "NXDOMAIN")
        #expect(await Self.failure(try Self.backend("servfail.test", servers: [server.address]))?.code == "SERVFAIL")
        #expect(await Self.failure(try Self.backend("silent.test", servers: [server.address]))?.code == "timeout")
        #expect(
            await Self.failure(try Self.backend("v4only.test", servers: [server.address], family: .ipv6))?.code
                == "NODATA")

        // Truncated over UDP: asked again over TCP, which carries all forty.
        let big = try await Self.backend("big.test", servers: [server.address], family: .ipv4).resolveAddresses()
        #expect(big.addresses == many)
        #expect(
            server.queries.contains("udp A big.test") && server.queries.contains("tcp A big.test"), "\(server.queries)")

        // A server that does not answer passes the question on; NXDOMAIN from the first ends it.
        let closed = "127.0.0.1:\(try Harness.freePort())"
        let fallback = try await Self.backend("s3.test", servers: [closed, server.address], family: .ipv4)
            .resolveAddresses()
        #expect(fallback.addresses == ["10.0.0.1", "10.0.0.2"] && fallback.server == server.address)
        let other = try await Server.start(["nowhere.test": ["a": ["10.0.0.7"]]])
        defer { other.daemon.signal(SIGKILL) }
        #expect(
            await Self.failure(try Self.backend("nowhere.test", servers: [server.address, other.address]))?.code
                == "NXDOMAIN")
    }
}
