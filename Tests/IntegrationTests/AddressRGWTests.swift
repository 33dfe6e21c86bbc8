import Foundation
import TestSupport
import Testing

/// Every address behind a name, against the real RGW: three TLS front ends on loopback aliases answer for
/// `localhost` through the tests' own DNS server; one of them stalls, refuses new connections or shows another
/// certificate, and the canary must name that address and the phase it broke in, keep the backend's breaker closed
/// while another address works, and open it when none does.
@Suite("Addresses, phases and DNS against RGW", .tags(.faults), .serialized)
struct AddressRGWTests {
    static func config(port: Int, rig: AddressRig, receiver: WebhookReceiver, prefix: String) -> String {
        let dns = "dns: {servers: [\"\(rig.dnsServer)\"], timeout: 500ms}"
        return """
            listen: 127.0.0.1:\(port)
            instance: addr
            probe: {interval: 2s, timeout: 1500ms, key_prefix: \(prefix)}
            breaker: {failure_threshold: 2, open_timeout: 2s}
            metrics: {request_phases: true}
            backends:
              - name: every
                endpoint: \(rig.endpoint)
                bucket: \(RGWEnvironment.pathBucket)
                addresses: all
                ip_family: ipv4
                connect_timeout: 500ms
                \(dns)
                tls: {ca_bundle: \(rig.caBundle)}
                credentials: \(RGWEnvironment.credentialsFromEnvironment)
              - name: pooled
                endpoint: \(rig.endpoint)
                bucket: \(RGWEnvironment.pathBucket)
                connect_timeout: 500ms
                \(dns)
                tls: {ca_bundle: \(rig.caBundle)}
                credentials: \(RGWEnvironment.credentialsFromEnvironment)
              - name: fresh
                endpoint: \(rig.endpoint)
                bucket: \(RGWEnvironment.pathBucket)
                connection: fresh
                \(dns)
                tls: {ca_bundle: \(rig.caBundle)}
                credentials: \(RGWEnvironment.credentialsFromEnvironment)
              - name: v6
                endpoint: \(rig.endpoint)
                bucket: \(RGWEnvironment.pathBucket)
                ip_family: ipv6
                \(dns)
                tls: {ca_bundle: \(rig.caBundle)}
                credentials: \(RGWEnvironment.credentialsFromEnvironment)
              - name: nxdomain
                endpoint: https://nx.canary.test:\(rig.port)
                bucket: \(RGWEnvironment.pathBucket)
                \(dns)
                credentials: \(RGWEnvironment.credentialsFromEnvironment)
              - name: servfail
                endpoint: https://servfail.canary.test:\(rig.port)
                bucket: \(RGWEnvironment.pathBucket)
                \(dns)
                credentials: \(RGWEnvironment.credentialsFromEnvironment)
            webhooks:
              - {name: events, url: "\(receiver.base)/ok/address", secret: "\(receiver.secret)", events: ["address.*"]}

            """
    }

    static func status(_ canary: RunningCanary, _ backend: String) throws -> [String: Any] {
        let body = try Harness.http("\(canary.base)/status").body
        let document = try #require(try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any])
        let backends = try #require(document["backends"] as? [[String: Any]])
        return try #require(backends.first { $0["name"] as? String == backend })
    }

    static func network(_ canary: RunningCanary, _ backend: String) throws -> [String: Any] {
        try #require(try Self.status(canary, backend)["network"] as? [String: Any])
    }

    static func address(_ network: [String: Any], _ address: String) -> [String: Any]? {
        (network["addresses"] as? [[String: Any]])?.first { $0["address"] as? String == address }
    }

    static func up(_ samples: Samples, _ address: String) -> Double? {
        samples[#"s3canary_address_up{backend="every",address="\#(address)",family="ipv4"}"#]
    }

    /// The rig, a webhook receiver and `s3-canary run` with ``config(port:rig:receiver:prefix:)``, for `body`.
    static func running(
        _ name: String, _ body: (AddressRig, WebhookReceiver, RunningCanary) async throws -> Void
    ) async throws {
        let rgw = try RGWEnvironment.load()
        let rig = try await AddressRig.start(name, upstream: rgw.port)
        defer { rig.stop() }
        let receiver = try WebhookReceiver(directory: rig.work)
        try await receiver.start()
        defer { receiver.stop() }
        let prefix = ".s3-canary-\(name)-\(UUID().uuidString.prefix(6).lowercased())/"
        let (canary, _) = try await RunningCanary.start(name: name) { port in
            Self.config(port: port, rig: rig, receiver: receiver, prefix: prefix)
        }
        defer { canary.daemon.signal(SIGKILL) }
        try await body(rig, receiver, canary)
    }

    @Test func oneBadAddressIsDegradedAllBadIsAnOutageAndDNSFailuresSayWhy() async throws {
        try await Self.running("addresses") { rig, receiver, canary in
            try await Self.degradedThenOutage(rig, receiver, canary)
        }
    }

    @Test func aNodeRefusingNewConnectionsIsSeenWithinOneCycleAndACertificateThatDiffersIsFlagged() async throws {
        try await Self.running("addresses-pooled") { rig, _, canary in
            try await Self.refusingAndCertificates(rig, canary)
        }
    }

    static func degradedThenOutage(_ rig: AddressRig, _ receiver: WebhookReceiver, _ canary: RunningCanary) async throws
    {
        let healthy = #"s3canary_circuit_breaker_state{backend="every"}"#

        // All three work: each address up, the answer and its TTL from the tests' DNS server on /status, and a TLS
        // session per address.
        try await Harness.waitUntil(.seconds(30), "every address up, and v6 and fresh succeed") {
            let samples = try canary.metrics()
            return AddressRig.addresses.allSatisfy { Self.up(samples, $0) == 1 }
                && samples[#"s3canary_probe_success{backend="v6"}"#] == 1
                && samples[#"s3canary_probe_success{backend="fresh"}"#] == 1
        }
        let network = try Self.network(canary, "every")
        #expect(network["answer"] as? [String] == AddressRig.addresses)
        #expect(network["ttl_seconds"] as? Double == 30)
        #expect(network["resolver"] as? String == rig.dnsServer)
        #expect(network["degraded"] as? Bool == false)
        let samples = try canary.metrics()
        for address in AddressRig.addresses {
            #expect(
                samples.values.keys.contains {
                    $0.hasPrefix(#"s3canary_tls_info{backend="every",address="\#(address)",version="TLSv1."#)
                }, "no TLS session for \(address)")
        }
        // The phases of a pooled, TLS backend: each one observed, dns by the cycle's lookup.
        for phase in ["dns", "connect", "tls", "request", "first_byte", "transfer"] {
            #expect(
                (samples[#"s3canary_request_phase_seconds_count{backend="every",phase="\#(phase)"}"#] ?? 0) > 0,
                "phase \(phase) never observed")
        }

        // connection: fresh opens a connection (and looks the name up) for every request; pooled reuses them.
        let fresh = { (phase: String) in
            samples[#"s3canary_request_phase_seconds_count{backend="fresh",phase="\#(phase)"}"#] ?? 0
        }
        let pooled = { (phase: String) in
            samples[#"s3canary_request_phase_seconds_count{backend="pooled",phase="\#(phase)"}"#] ?? 0
        }
        #expect(
            fresh("first_byte") > 0 && fresh("connect") == fresh("first_byte") && fresh("dns") == fresh("first_byte"))
        #expect(fresh("tls") == fresh("first_byte"))
        #expect(
            pooled("connect") > 0 && pooled("connect") < pooled("first_byte"), "pooled opened a connection per request")
        // ip_family: ipv6 takes the name's AAAA record (::1, where a fourth front answers); every, ipv4, its three A.
        #expect(samples[#"s3canary_probe_success{backend="v6"}"#] == 1)
        #expect(try Self.network(canary, "v6")["answer"] as? [String] == ["::1"])
        #expect(samples.values.keys.contains { $0.hasPrefix(#"s3canary_tls_info{backend="v6",address="::1","#) })

        // One of three accepts connections and never answers: the backend stays up (degraded), the address is named
        // with the phase it broke in, and an address.failing event names it.
        try rig.mode("127.0.0.3", "stall")
        try await Harness.waitUntil(.seconds(20), "127.0.0.3 down") { Self.up(try canary.metrics(), "127.0.0.3") == 0 }
        try await Task.sleep(for: .seconds(3))
        let degraded = try canary.metrics()
        #expect(degraded[healthy] == 0, "one bad address of three opened the breaker")
        #expect(degraded[#"s3canary_probe_success{backend="every"}"#] == 1)
        #expect(Self.up(degraded, "127.0.0.2") == 1 && Self.up(degraded, "127.0.0.4") == 1)
        let stalled = try Self.network(canary, "every")
        #expect(stalled["degraded"] as? Bool == true)
        let third = try #require(Self.address(stalled, "127.0.0.3"))
        #expect(third["up"] as? Bool == false)
        let error = try #require(third["last_error"] as? [String: Any])
        #expect(error["phase"] as? String == "tls", "\(error)")
        #expect(error["reason"] as? String == "tls", "\(error)")
        #expect((error["message"] as? String)?.contains("127.0.0.3") == true, "\(error)")
        let page = try Harness.http("\(canary.base)/").body
        #expect(
            page.contains(#"data-health="degraded""#) && page.contains(#"data-address="127.0.0.3" data-up="failing""#))
        try await Harness.waitUntil(.seconds(10), "address.failing delivered") {
            receiver.deliveries(path: "/ok/address").contains {
                eventKind($0) == "address.failing"
                    && ($0.json["data"] as? [String: Any])?["address"] as? String == "127.0.0.3"
            }
        }
        #expect(receiver.deliveries(path: "/ok/address").allSatisfy { $0.schemaOK != false && $0.hmacOK })

        // All three refuse new connections: the backend's breaker opens, with reason connect.
        try rig.mode("127.0.0.3", "ok")
        for address in AddressRig.addresses { try rig.mode(address, "refuse_new") }
        try await Harness.waitUntil(.seconds(20), "the breaker of every opens") { try canary.metrics()[healthy] == 1 }
        let outage = try canary.metrics()
        #expect(AddressRig.addresses.allSatisfy { Self.up(outage, $0) == 0 })
        // Whichever operation met the refusal (the put goes on a kept connection while the cycle's new one opens).
        #expect(
            outage.values.contains {
                $0.key.hasPrefix(#"s3canary_operation_errors_total{backend="every","#)
                    && $0.key.hasSuffix(#"reason="connect"}"#) && $0.value > 0
            })
        let opened = try #require(try Self.status(canary, "every")["breaker"] as? [String: Any])
        #expect(
            ((opened["last_error"] as? [String: Any])?["message"] as? String)?.contains("every address failed") == true)

        // Back: the breaker closes, each address recovers (and says so).
        for address in AddressRig.addresses { try rig.mode(address, "ok") }
        try await Harness.waitUntil(.seconds(20), "the breaker of every closes and every address is up") {
            let samples = try canary.metrics()
            return samples[healthy] == 0 && AddressRig.addresses.allSatisfy { Self.up(samples, $0) == 1 }
        }
        try await Harness.waitUntil(.seconds(10), "address.recovered delivered") {
            receiver.deliveries(path: "/ok/address").contains { eventKind($0) == "address.recovered" }
        }

        // A name that does not exist, and a server that fails: reason dns, with the answer's code on /status.
        let final = try canary.metrics()
        #expect((final[#"s3canary_operation_errors_total{backend="nxdomain",operation="put",reason="dns"}"#] ?? 0) > 0)
        #expect((final[#"s3canary_operation_errors_total{backend="servfail",operation="put",reason="dns"}"#] ?? 0) > 0)
        let nx = try #require(try Self.network(canary, "nxdomain")["dns_error"] as? [String: Any])
        #expect(nx["code"] as? String == "NXDOMAIN" && nx["server"] as? String == rig.dnsServer, "\(nx)")
        try rig.zone([
            "localhost": ["a": AddressRig.addresses, "aaaa": ["::1"], "ttl": 30],
            "servfail.canary.test": ["rcode": "SERVFAIL"],
        ])
        try await Harness.waitUntil(.seconds(15), "servfail's error says SERVFAIL") {
            (try Self.network(canary, "servfail")["dns_error"] as? [String: Any])?["code"] as? String == "SERVFAIL"
        }
    }

    static func refusingAndCertificates(_ rig: AddressRig, _ canary: RunningCanary) async throws {
        let success = #"s3canary_probes_total{backend="pooled",result="success"}"#
        let failure = #"s3canary_probes_total{backend="pooled",result="failure"}"#
        try await Harness.waitUntil(.seconds(30), "pooled succeeds on pooled connections") {
            try canary.metrics()[success] ?? 0 >= 3
        }
        // `pooled` goes to the first address; it now refuses new connections while its open ones keep working. The
        // cycle in flight may still succeed on pooled connections; the next one opens its new connection beside its
        // put (on a kept one) and its head fails with the refusal.
        let before = try canary.metrics()
        try rig.mode("127.0.0.2", "refuse_new")
        try await Harness.waitUntil(.seconds(15), "a failed cycle of pooled") {
            try canary.metrics()[failure] ?? 0 > before[failure] ?? 0
        }
        let after = try canary.metrics()
        #expect((after[success] ?? 0) - (before[success] ?? 0) <= 1, "more than one cycle passed before it was seen")
        // The put went on a kept connection while the cycle's new one was refused: the next request fails with that.
        #expect(
            (after[#"s3canary_operation_errors_total{backend="pooled",operation="head",reason="connect"}"#] ?? 0) > 0)
        let cycle = try #require(try Self.status(canary, "pooled")["last_cycle"] as? [String: Any])
        let operations = try #require(cycle["operations"] as? [[String: Any]])
        let failed = try #require(operations.first { $0["reason"] != nil }, "\(operations)")
        #expect(failed["operation"] as? String == "head", "\(operations)")
        #expect(failed["phase"] as? String == "connect" && failed["reason"] as? String == "connect", "\(failed)")
        #expect((failed["message"] as? String)?.contains("127.0.0.2") == true, "\(failed)")
        try rig.mode("127.0.0.2", "ok")

        // Another certificate (same CA, so requests still succeed) on one address: flagged on /status and the page.
        try rig.mode("127.0.0.4", "alt_cert")
        try await Harness.waitUntil(.seconds(15), "certificates_differ") {
            try Self.network(canary, "every")["certificates_differ"] as? Bool == true
        }
        let network = try Self.network(canary, "every")
        let fingerprints = AddressRig.addresses.compactMap {
            (Self.address(network, $0)?["tls"] as? [String: Any])?["fingerprint_sha256"] as? String
        }
        #expect(Set(fingerprints).count == 2, "\(fingerprints)")
        #expect(try canary.metrics()[#"s3canary_probe_success{backend="every"}"#] == 1)
        #expect(try Harness.http("\(canary.base)/").body.contains(#"data-certificates-differ="true""#))
        let debug = try Harness.http("\(canary.base)/probe?backend=every&debug=true").body
        #expect(debug.contains("Network:") && debug.contains("127.0.0.4") && debug.contains("different certificates"))
    }
}
