import Foundation
import TestSupport
import Testing

/// Malformed configurations made from a valid one (wrong types, missing fields, huge numbers, negative durations,
/// unknown keys, invalid UTF-8, YAML bombs): `s3-canary check-config` exits 2 with a message naming the field for
/// every one of them, and never crashes or hangs.
@Suite("Fuzzed configurations through the binary")
struct ConfigFuzzTests {
    static let valid = """
        listen: 127.0.0.1:9340
        instance: fuzz-1
        probe:
          interval: 15s
          timeout: 2s
          jitter: 10%
          object_size: 4KiB
          key_prefix: .s3-canary/
          operations: [put, head, get, get_range, delete]
        breaker: {failure_threshold: 3, open_timeout: 30s}
        backends:
          - name: ceph
            endpoint: http://127.0.0.1:7480
            region: us-east-1
            bucket: canary
            path_style: true
            credentials:
              access_key_id: AKIAFUZZ
              secret_access_key: fuzz-secret
        webhooks:
          - name: hook
            url: http://127.0.0.1:9999/hook
            secret: whsec_fuzz
            events: ["*"]

        """

    /// A mutation: its name, the document, and a text the message must contain (the field), if one is known.
    struct Case {
        var name: String
        var data: Data
        var mentions: String?
    }

    static func replacing(_ old: String, _ new: String) -> Data {
        Data(Self.valid.replacingOccurrences(of: old, with: new).utf8)
    }

    static var cases: [Case] {
        var cases: [Case] = []
        func add(_ name: String, _ old: String, _ new: String, mentions: String?) {
            precondition(Self.valid.contains(old), "\(name): \(old) is not in the base document")
            cases.append(Case(name: name, data: Self.replacing(old, new), mentions: mentions))
        }
        // Wrong types, one per field.
        let fields: [(String, String, String)] = [
            ("listen: 127.0.0.1:9340", "listen", "listen: [1, 2]"),
            ("instance: fuzz-1", "instance", "instance: {a: 1}"),
            ("interval: 15s", "probe.interval", "interval: fifteen"),
            ("timeout: 2s", "probe.timeout", "timeout: [2s]"),
            ("jitter: 10%", "probe.jitter", "jitter: lots"),
            ("object_size: 4KiB", "probe.object_size", "object_size: big"),
            ("key_prefix: .s3-canary/", "probe.key_prefix", "key_prefix: {x: y}"),
            ("operations: [put, head, get, get_range, delete]", "probe.operations", "operations: put"),
            ("operations: [put, head, get, get_range, delete]", "probe.operations", "operations: [put, teleport]"),
            ("failure_threshold: 3", "breaker.failure_threshold", "failure_threshold: three"),
            ("open_timeout: 30s", "breaker.open_timeout", "open_timeout: true"),
            ("endpoint: http://127.0.0.1:7480", "backends[0].endpoint", "endpoint: [http://a]"),
            ("endpoint: http://127.0.0.1:7480", "backends[0].endpoint", "endpoint: ftp://127.0.0.1"),
            ("endpoint: http://127.0.0.1:7480", "backends[0].endpoint", "endpoint: not a url"),
            ("region: us-east-1", "backends[0].region", "region: {}"),
            ("bucket: canary", "backends[0].bucket", "bucket: Not_A Valid Bucket"),
            ("path_style: true", "backends[0].path_style", "path_style: perhaps"),
            ("name: ceph", "backends[0].name", "name: [ceph]"),
            ("name: ceph", "backends[0].name", "name: \"has spaces/and slashes\""),
            ("url: http://127.0.0.1:9999/hook", "webhooks[0].url", "url: gopher://x"),
            ("events: [\"*\"]", "webhooks[0].events", "events: [no.such.event]"),
            ("access_key_id: AKIAFUZZ", "access_key_id", "access_key_id: [a, b]"),
        ]
        for (index, (old, field, new)) in fields.enumerated() {
            add("wrong-type-\(index)-\(field)", old, new, mentions: field)
        }
        // Missing fields.
        add("missing-endpoint", "    endpoint: http://127.0.0.1:7480\n", "", mentions: "endpoint")
        add("missing-bucket", "    bucket: canary\n", "", mentions: "bucket")
        add("missing-name", "  - name: ceph\n    endpoint", "  - endpoint", mentions: "name")
        add("missing-secret", "      secret_access_key: fuzz-secret\n", "", mentions: "secret_access_key")
        add("missing-webhook-url", "    url: http://127.0.0.1:9999/hook\n", "", mentions: "url")
        cases.append(
            Case(
                name: "missing-backends", data: Data(Self.valid.components(separatedBy: "backends:")[0].utf8),
                mentions: "backends"))
        cases.append(Case(name: "empty-file", data: Data(), mentions: "config"))
        cases.append(Case(name: "only-comments", data: Data("# nothing here\n".utf8), mentions: "config"))
        // Huge numbers.
        add("huge-interval", "interval: 15s", "interval: 99999999999999999999999s", mentions: "probe.interval")
        add("huge-object-size", "object_size: 4KiB", "object_size: 9999999999999GiB", mentions: "probe.object_size")
        add("huge-threshold", "failure_threshold: 3", "failure_threshold: 1e400", mentions: "breaker.failure_threshold")
        add("huge-port", "listen: 127.0.0.1:9340", "listen: 127.0.0.1:99999999999", mentions: "listen")
        add("huge-jitter", "jitter: 10%", "jitter: 1e308%", mentions: "probe.jitter")
        add(
            "int-overflow", "failure_threshold: 3", "failure_threshold: 9223372036854775808",
            mentions: "breaker.failure_threshold")
        // Negative and zero durations.
        add("negative-interval", "interval: 15s", "interval: -15s", mentions: "probe.interval")
        add("negative-timeout", "timeout: 2s", "timeout: -1ms", mentions: "probe.timeout")
        add("negative-open-timeout", "open_timeout: 30s", "open_timeout: -30s", mentions: "breaker.open_timeout")
        add("zero-interval", "interval: 15s", "interval: 0s", mentions: "probe.interval")
        add(
            "negative-threshold", "failure_threshold: 3", "failure_threshold: -3", mentions: "breaker.failure_threshold"
        )
        add("negative-size", "object_size: 4KiB", "object_size: -4KiB", mentions: "probe.object_size")
        add("nan-jitter", "jitter: 10%", "jitter: .nan", mentions: "probe.jitter")
        // Unknown keys, at every level.
        add("unknown-top", "instance: fuzz-1", "instance: fuzz-1\nintervall: 5s", mentions: "intervall")
        add("unknown-probe", "  interval: 15s", "  intervall: 15s", mentions: "probe.intervall")
        add("unknown-backend", "    region: us-east-1", "    regoin: us-east-1", mentions: "backends[0].regoin")
        add(
            "unknown-credentials", "      access_key_id: AKIAFUZZ", "      access_key: AKIAFUZZ",
            mentions: "credentials.access_key")
        add("unknown-webhook", "    secret: whsec_fuzz", "    secrett: whsec_fuzz", mentions: "webhooks[0].secrett")
        add("unknown-breaker", "failure_threshold: 3", "failures: 3", mentions: "breaker.failures")
        add(
            "unknown-server", "instance: fuzz-1", "instance: fuzz-1\nserver: {tls_cert: x}", mentions: "server.tls_cert"
        )
        // Structure.
        add("duplicate-key", "instance: fuzz-1", "instance: fuzz-1\ninstance: fuzz-2", mentions: "instance")
        cases.append(
            Case(
                name: "duplicate-backend-name",
                data: Data(
                    Self.valid.replacingOccurrences(
                        of: "webhooks:",
                        with: """
                              - {name: ceph, endpoint: "http://127.0.0.1:1", bucket: b, \
                            credentials: {access_key_id: a, secret_access_key: b}}
                            webhooks:
                            """
                    ).utf8),
                mentions: "backends[1].name"
            )
        )
        add("backends-mapping", "backends:\n  - name: ceph", "backends:\n  name: ceph", mentions: "backends")
        add("tab-indent", "  interval: 15s", "\tinterval: 15s", mentions: "config")
        add("unterminated-quote", "instance: fuzz-1", "instance: \"fuzz-1", mentions: "config")
        add(
            "undefined-env", "instance: fuzz-1", "instance: ${S3CANARY_FUZZ_UNDEFINED_VARIABLE}",
            mentions: "S3CANARY_FUZZ_UNDEFINED_VARIABLE")
        add(
            "secret-file-missing", "      secret_access_key: fuzz-secret",
            "      secret_access_key_file: /nonexistent/secret",
            mentions: "secret_access_key_file")
        add("timeout-over-interval", "timeout: 2s", "timeout: 20s", mentions: "probe.timeout")
        cases.append(Case(name: "top-level-list", data: Data("- a\n- b\n".utf8), mentions: "config"))
        cases.append(Case(name: "top-level-scalar", data: Data("just a string\n".utf8), mentions: "config"))
        // Invalid UTF-8 and control bytes.
        var invalid = Data(Self.valid.utf8)
        invalid.append(contentsOf: [0x0A, 0x23, 0xFF, 0xFE, 0xC3, 0x28, 0x0A])
        cases.append(Case(name: "invalid-utf8-comment", data: invalid, mentions: "UTF-8"))
        var invalidValue = Data(Self.valid.replacingOccurrences(of: "fuzz-1", with: "fuzz-@").utf8)
        if let at = invalidValue.firstIndex(of: UInt8(ascii: "@")) { invalidValue[at] = 0xC0 }
        cases.append(Case(name: "invalid-utf8-value", data: invalidValue, mentions: "UTF-8"))
        cases.append(Case(name: "nul-byte", data: Self.replacing("fuzz-1", "fuzz\u{0}1"), mentions: nil))
        cases.append(Case(name: "utf16", data: Self.valid.data(using: .utf16) ?? Data(), mentions: nil))
        // YAML bombs and huge documents.
        var laughs = "a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
        var previous = "a"
        for level in ["b", "c", "d", "e", "f", "g", "h", "i"] {
            laughs +=
                "\(level): &\(level) [" + Array(repeating: "*\(previous)", count: 9).joined(separator: ",") + "]\n"
            previous = level
        }
        cases.append(Case(name: "billion-laughs", data: Data(laughs.utf8), mentions: nil))
        let aliasedBackends =
            Self.valid.replacingOccurrences(of: "backends:", with: "backends: &b")
            + "x: [" + Array(repeating: "*b", count: 5000).joined(separator: ",") + "]\n"
        cases.append(Case(name: "alias-fanout", data: Data(aliasedBackends.utf8), mentions: nil))
        cases.append(
            Case(
                name: "deep-lists",
                data: Data(
                    ("a: " + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000)).utf8),
                mentions: "config"))
        cases.append(
            Case(
                name: "deep-maps",
                data: Data(
                    ("a: " + String(repeating: "{x: ", count: 20_000) + "1" + String(repeating: "}", count: 20_000))
                        .utf8), mentions: "config"))
        cases.append(Case(name: "self-alias", data: Data("a: &a [*a]\n".utf8), mentions: "config"))
        cases.append(
            Case(
                name: "two-mebibytes",
                data: Data((Self.valid + "# " + String(repeating: "x", count: 2 << 20) + "\n").utf8), mentions: "1 MiB")
        )
        cases.append(
            Case(
                name: "long-value", data: Self.replacing("fuzz-1", String(repeating: "f", count: 100_000)),
                mentions: "instance"))
        cases.append(
            Case(
                name: "many-backends",
                data: Data(
                    (Self.valid.components(separatedBy: "backends:")[0] + "backends:\n"
                        + String(repeating: "  - {}\n", count: 5000)).utf8), mentions: "backends[0]"))
        return cases
    }

    @Test func everyMalformedConfigurationExitsTwoWithAMessage() async throws {
        let work = try Harness.temporaryDirectory("config-fuzz")
        let base = work.appendingPathComponent("valid.yaml")
        try Data(Self.valid.utf8).write(to: base)
        let ok = try await Harness.runDetached(
            "/usr/bin/env", ["timeout", "20", Harness.binary, "check-config", "--config", base.path])
        try #require(ok.status == 0, "the base document must be valid: \(ok.stdout)\(ok.stderr)")

        let cases = Self.cases
        #expect(cases.count >= 50)
        var slowest = (name: "", seconds: 0.0)
        for fuzzCase in cases {
            let file = work.appendingPathComponent("\(fuzzCase.name).yaml")
            try fuzzCase.data.write(to: file)
            let started = ContinuousClock.now
            let result = try await Harness.runDetached(
                "/usr/bin/env", ["timeout", "20", Harness.binary, "check-config", "--config", file.path])
            let seconds = (ContinuousClock.now - started) / .seconds(1)
            if seconds > slowest.seconds { slowest = (fuzzCase.name, seconds) }
            let output = result.stdout + result.stderr
            // 124 is timeout's "it hung"; 132/134/139 a trap, an abort or a segfault.
            #expect(result.status == 2, "\(fuzzCase.name): exit \(result.status): \(output.prefix(600))")
            #expect(output.contains("invalid"), "\(fuzzCase.name): \(output.prefix(600))")
            // Values are quoted clipped, so a message stays small; only thousands of real problems make it long.
            let limit = fuzzCase.name == "many-backends" ? 4 << 20 : 64 << 10
            #expect(output.utf8.count < limit, "\(fuzzCase.name): the message is \(output.utf8.count) bytes")
            if let mentions = fuzzCase.mentions {
                #expect(output.contains(mentions), "\(fuzzCase.name) names \(mentions): \(output.prefix(600))")
            }
            #expect(
                !output.contains("fuzz-secret") && !output.contains("whsec_fuzz"), "\(fuzzCase.name) echoes a secret")
        }
        try Data("\(cases.count) fuzzed configurations; slowest \(slowest.name) in \(slowest.seconds) s\n".utf8)
            .write(to: Harness.outputDirectory.appendingPathComponent("config-fuzz.txt"))
    }
}
