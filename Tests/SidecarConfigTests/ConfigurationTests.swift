import Foundation
import ObjectStorage
import Testing

@testable import SidecarConfig

/// The invalid configurations in `Tests/Fixtures/invalid-configs`; each names the field its error must point at
/// in a first line `# expect: PATH`. The integration suite runs the same files through `s3-canary check-config`.
enum InvalidConfigs {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/invalid-configs")

    static var all: [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory.path)) ?? []).filter { $0.hasSuffix(".yaml") }
            .sorted()
    }

    static func expectedPath(_ name: String) -> String? {
        guard let data = FileManager.default.contents(atPath: directory.appendingPathComponent(name).path) else {
            return nil
        }
        let firstLine = data.prefix { $0 != UInt8(ascii: "\n") }
        let text = String(decoding: firstLine, as: UTF8.self)
        guard text.hasPrefix("# expect: ") else { return nil }
        return String(text.dropFirst("# expect: ".count))
    }
}

@Suite("Configuration loading and validation")
struct ConfigurationTests {
    static let loader = ConfigurationLoader(environment: ["CEPH_KEY": "AK", "HOME": "/root"], hostName: "host-1")

    static let valid = """
        listen: 127.0.0.1:9340
        instance: replica-1
        probe:
          interval: 15s
          timeout: 2500ms
          jitter: 10%
          object_size: 4KiB
          key_prefix: .s3-canary
          operations: [delete, put, head, get, get_range, copy, list]
        breaker: {failure_threshold: 5, open_timeout: 1m}
        backends:
          - name: ceph-a
            endpoint: http://127.0.0.1:7480
            region: us-east-1
            bucket: canary
            path_style: true
            credentials: {access_key_id: "${CEPH_KEY}", secret_access_key_env: HOME}
          - name: aws
            endpoint: https://s3.eu-west-1.amazonaws.com
            region: eu-west-1
            bucket: my-canary
            path_style: false
            payload_signing: unsigned
            credentials: {source: default_chain}
            probe: {interval: 1m, timeout: 10s}
            breaker: {failure_threshold: 2}
        """

    @Test func aFullConfigurationLoads() throws {
        let configuration = try Self.loader.load(data: Data(Self.valid.utf8))
        #expect(configuration.listen.host == "127.0.0.1" && configuration.listen.port == 9340)
        #expect(configuration.instance == "replica-1")
        #expect(configuration.probe.timeout == .milliseconds(2500))
        #expect(configuration.probe.objectSize == 4096)
        #expect(configuration.probe.keyPrefix == ".s3-canary/")
        #expect(
            configuration.probe.operations == CanaryConfiguration.Operation.allCases.filter { !$0.isFeature },
            "operations run in cycle order")
        #expect(configuration.breaker.openTimeout == .seconds(60))
        #expect(configuration.backends.map(\.name) == ["ceph-a", "aws"])
        let ceph = configuration.backends[0]
        #expect(ceph.s3.addressing == .path)
        #expect(
            ceph.credentials
                == .keys(accessKeyID: .value("AK"), secretAccessKey: .environment("HOME"), sessionToken: nil))
        #expect(ceph.breaker.failureThreshold == 5)
        #expect(ceph.s3.timeouts.request == .milliseconds(2500))
        let aws = configuration.backends[1]
        #expect(aws.s3.addressing == .virtualHost && aws.s3.payloadSigning == .unsigned)
        #expect(aws.probe.interval == .seconds(60) && aws.probe.timeout == .seconds(10))
        #expect(aws.probe.objectSize == 4096, "per-backend overrides start from the global probe settings")
        #expect(aws.breaker.failureThreshold == 2 && aws.breaker.openTimeout == .seconds(60))
        #expect(aws.credentials == .defaultChain(profile: nil))
    }

    @Test func defaultsApply() throws {
        let configuration = try Self.loader.load(
            data: Data(
                """
                backends:
                  - {name: a, endpoint: "http://h:1", bucket: b, credentials: {source: environment}}
                """.utf8
            )
        )
        #expect(configuration.listen.port == 9340 && configuration.listen.host == "0.0.0.0")
        #expect(configuration.instance == "host-1")
        #expect(configuration.probe.interval == .seconds(15) && configuration.probe.objectSize == 1024)
        #expect(configuration.probe.operations == [.put, .head, .get, .getRange, .delete])
        #expect(configuration.breaker.failureThreshold == 3 && configuration.breaker.openTimeout == .seconds(30))
    }

    @Test func theFixtureTableHasAtLeastTwentyCases() {
        #expect(InvalidConfigs.all.count >= 20)
    }

    @Test(arguments: InvalidConfigs.all)
    func invalidConfigurationNamesTheField(file: String) throws {
        let expected = try #require(InvalidConfigs.expectedPath(file), "\(file) lacks its # expect: line")
        do {
            _ = try Self.loader.load(path: InvalidConfigs.directory.appendingPathComponent(file).path)
            Issue.record("\(file) was accepted")
        } catch {
            #expect(
                error.problems.contains { $0.field == expected },
                "\(file): expected a problem at \(expected), got \(error.problems.map(\.description))"
            )
            #expect(error.problems.allSatisfy { !$0.message.isEmpty })
        }
    }

    @Test func everyProblemIsListedAtOnce() {
        let text = """
            listen: nowhere
            probe: {interval: soon, operations: [put]}
            backends:
              - {name: "bad name", endpoint: "nope", bucket: "", credentials: {secret_access_key_file: /none}}
              - {name: b, endpoint: "http://h:1", bucket: b, credentials: {source: environment}, typo: 1}
            """
        do {
            _ = try Self.loader.load(data: Data(text.utf8))
            Issue.record("accepted")
        } catch {
            let fields = Set(error.problems.map(\.field))
            for field in [
                "listen", "probe.interval", "probe.operations", "backends[0].name", "backends[0].endpoint",
                "backends[0].bucket", "backends[0].credentials.secret_access_key_file", "backends[1].typo",
            ] {
                #expect(fields.contains(field), "missing \(field) in \(error.problems.map(\.description))")
            }
        }
    }

    @Test func secretsAreNeverEchoedInProblems() {
        let text = """
            backends:
              - {name: a, endpoint: "http://h:1", bucket: b, region: "bad region",
                 credentials: {access_key_id: AKMARKER, secret_access_key: SECRETMARKER}}
            """
        do {
            _ = try Self.loader.load(data: Data(text.utf8))
            Issue.record("accepted")
        } catch {
            #expect(!error.description.contains("SECRETMARKER"))
        }
    }

    @Test(arguments: [
        ("500ms", Duration.milliseconds(500)), ("15s", .seconds(15)), ("2m", .seconds(120)),
        ("1h30m", .seconds(5400)), ("1.5s", .milliseconds(1500)),
    ])
    func durations(text: String, expected: Duration) {
        #expect(Reader.parseDuration(text) == expected)
    }

    @Test(arguments: ["", "15", "s", "-1s", "1d", "1e9h", "nan s", "5 s x"])
    func badDurations(text: String) {
        #expect(Reader.parseDuration(text) == nil)
    }

    @Test func aliasBombsAreBounded() {
        var text = "a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n"
        for i in 1..<12 {
            text += "a\(i): &a\(i) [" + Array(repeating: "*a\(i - 1)", count: 10).joined(separator: ", ") + "]\n"
        }
        text += "backends: *a11\n"
        let started = ContinuousClock.now
        #expect(throws: ConfigurationError.self) { try Self.loader.load(data: Data(text.utf8)) }
        #expect(ContinuousClock.now - started < .seconds(10))
    }
}

@Suite("Network keys: connection, addresses, ip_family, max_addresses, dns")
struct NetworkKeyTests {
    @Test func theKeysLoadAndABackendsOwnDNSReplacesTheTopLevelOne() throws {
        let configuration = try ConfigurationTests.loader.load(
            data: Data(
                """
                dns: {servers: ["10.0.0.2:53", "[fd00::2]:5353", "10.0.0.3"], timeout: 750ms}
                backends:
                  - {name: a, endpoint: "https://s3.example.com", bucket: b, credentials: {source: environment},
                     connection: fresh, addresses: all, ip_family: ipv6, max_addresses: 3}
                  - {name: b, endpoint: "https://s3.example.com", bucket: b, credentials: {source: environment},
                     dns: {servers: ["127.0.0.1:5300"]}}
                """.utf8))
        let a = configuration.backends[0]
        #expect(a.s3.connection == .fresh && a.s3.ipFamily == .ipv6)
        #expect(a.addresses == .all && a.maxAddresses == 3)
        #expect(a.s3.dns == .init(servers: ["10.0.0.2:53", "[fd00::2]:5353", "10.0.0.3"], timeout: .milliseconds(750)))
        let b = configuration.backends[1]
        #expect(b.s3.connection == .pooled && b.s3.ipFamily == .any && b.addresses == .first && b.maxAddresses == 8)
        #expect(b.s3.dns == .init(servers: ["127.0.0.1:5300"], timeout: .seconds(2)))
    }

    @Test(arguments: ["10.0.0.2:53", "[fd00::2]:53", "10.0.0.2", "fd00::2", "127.0.0.1:65535"])
    func dnsServersThatParse(_ text: String) {
        #expect(DNSServerAddress.isValid(text))
    }

    @Test(arguments: ["ns1.example.com:53", "10.0.0.2:0", "10.0.0.2:70000", "[fd00::2]", "10.0.0.2:dns", ""])
    func dnsServersThatDoNot(_ text: String) {
        #expect(!DNSServerAddress.isValid(text))
    }
}
