import Foundation
import TestSupport
import Testing

/// The durability corpus on the real RGW, damaged behind the sidecar's back with boto3 (Tests/Fixtures/
/// corpus_tool.py): found, announced once, kept across a restart, rewritten by nobody but `durability reset --yes`.
@Suite("Durability corpus against RGW", .tags(.slow), .serialized)
struct DurabilityRGWTests {
    static func config(
        port: Int, instance: String, rgw: RGWEnvironment, corpus: String, objects: Int, rate: Int = 1000,
        fullEvery: String = "2s", receiver: WebhookReceiver? = nil
    ) -> String {
        var text = """
            listen: 127.0.0.1:\(port)
            instance: \(instance)
            probe: {interval: 1s, timeout: 500ms, key_prefix: .s3-canary-durability-it/}
            backends:
              - name: rgw
                endpoint: \(rgw.endpoint)
                bucket: \(RGWEnvironment.miscBucket)
                credentials: \(RGWEnvironment.credentialsFromEnvironment)
                durability:
                  objects: \(objects)
                  object_size: 1KiB
                  prefix: \(corpus)
                  sample_every: 1s
                  sample_size: 10
                  full_every: \(fullEvery)
                  requests_per_second: \(rate)

            """
        if let receiver {
            text += """
                webhooks:
                  - {name: data, url: "\(receiver.base)/ok/data", secret: "\(receiver.secret)", events: ["data.*"]}

                """
        }
        return text
    }

    static func tool(_ arguments: [String]) throws -> [String] {
        let script = Harness.root.appendingPathComponent("Tests/Fixtures/corpus_tool.py").path
        let output = try Harness.run("/usr/bin/env", ["python3", script] + arguments)
        guard output.status == 0 else {
            throw HarnessError("corpus_tool.py \(arguments.first ?? ""): \(output.stderr)")
        }
        return output.stdout.split(separator: "\n").map(String.init)
    }

    /// The backend's `durability` on `/status`; empty until the first report.
    static func durability(_ canary: RunningCanary) throws -> [String: Any] {
        let body = try Harness.http("\(canary.base)/status").body
        let document = try JSONSerialization.jsonObject(with: Data(body.utf8)) as? [String: Any]
        let backends = document?["backends"] as? [[String: Any]]
        return backends?.first?["durability"] as? [String: Any] ?? [:]
    }

    static func objects(_ canary: RunningCanary, _ state: String) throws -> Double? {
        try canary.metrics()[#"s3canary_durability_objects{backend="rgw",state="\#(state)"}"#]
    }

    static func reset(_ configPath: URL, yes: Bool) throws -> Harness.Output {
        try Harness.run(
            Harness.binary,
            ["durability", "reset", "--config", configPath.path, "--backend", "rgw"] + (yes ? ["--yes"] : []))
    }

    @Test func lossIsFoundAnnouncedOnceKeptAcrossARestartAndRewrittenOnlyByAReset() async throws {
        let rgw = try RGWEnvironment.load()
        let work = try Harness.temporaryDirectory("durability")
        let receiver = try WebhookReceiver(directory: work)
        try await receiver.start()
        defer { receiver.stop() }
        let corpus = ".s3-canary-corpus-\(UUID().uuidString.prefix(6).lowercased())/"
        let where_ = [rgw.endpoint, RGWEnvironment.miscBucket, corpus]
        let config = { (port: Int) in
            Self.config(port: port, instance: "keeper", rgw: rgw, corpus: corpus, objects: 60, receiver: receiver)
        }
        var (canary, _) = try await RunningCanary.start(name: "durability", config: config)
        defer { canary.daemon.signal(SIGKILL) }
        try await Harness.waitUntil(.seconds(60), "the corpus written and verified") {
            try Self.objects(canary, "ok") == 60
        }
        // The bytes are the documented rule's, as an independent implementation computes them.
        #expect(try Self.tool(["rule"] + where_ + ["7", "1024"]) == ["RULE-OK"])
        let before = try Self.tool(["etags"] + where_ + ["60"])
        #expect(!before.contains("-"))

        // Behind its back: two objects deleted, one byte flipped in a third.
        #expect(try Self.tool(["damage"] + where_ + ["--delete", "2,11", "--corrupt", "20"]) == ["DAMAGE-OK"])
        try await Harness.waitUntil(.seconds(30), "2 missing and 1 corrupted") {
            try Self.objects(canary, "missing") == 2 && Self.objects(canary, "corrupted") == 1
        }
        #expect(try Self.objects(canary, "ok") == 57)
        let status = try Self.durability(canary)
        let damaged = (status["damaged"] as? [[String: Any]] ?? []).compactMap { $0["key"] as? String }
        #expect(damaged == [2, 11, 20].map { "\(corpus)objects/\(String(format: "%08d", $0))" })
        try await Harness.waitUntil(.seconds(10), "data.lost and data.corrupted delivered") {
            Set(receiver.deliveries.map(eventKind)).isSuperset(of: ["data.lost", "data.corrupted"])
        }
        let lost = try #require(receiver.deliveries.first { eventKind($0) == "data.lost" })
        let data = lost.json["data"] as? [String: Any] ?? lost.json
        #expect((data["message"] as? String ?? "").contains("\(corpus)objects/00000011"), "\(lost.body)")
        #expect(lost.standardWebhooksOK)

        // A restart: the same losses, no second announcement, nothing rewritten.
        #expect(await canary.daemon.stop(SIGTERM, timeout: .seconds(30)) == 0)
        (canary, _) = try await RunningCanary.start(name: "durability-again", config: config)
        try await Harness.waitUntil(.seconds(30), "the losses known again") {
            try Self.objects(canary, "missing") == 2 && Self.objects(canary, "corrupted") == 1
        }
        let passes = try Self.durability(canary)["last_full_pass"] as? String
        try await Harness.waitUntil(.seconds(30), "a full pass after the restart") {
            try Self.durability(canary)["last_full_pass"] as? String != passes
        }
        #expect(try Self.objects(canary, "missing") == 2 && Self.objects(canary, "corrupted") == 1)
        #expect(receiver.deliveries.filter { eventKind($0).hasPrefix("data.") }.count == 2, "announced once each")
        let after = try Self.tool(["etags"] + where_ + ["60"])
        #expect(after[2] == "-" && after[11] == "-", "missing objects stay missing")
        #expect(after[20] != before[20], "the corrupted one stays as it was damaged")
        #expect(
            zip(before, after).enumerated().allSatisfy {
                [2, 11, 20].contains($0.offset) || $0.element.0 == $0.element.1
            },
            "nothing else written")

        // The reset: first it says what it would do and does nothing, then with --yes it does.
        let dry = try Self.reset(canary.configPath, yes: false)
        #expect(dry.status == 1, "\(dry.stdout)\(dry.stderr)")
        #expect(dry.stdout.contains("would rewrite 3 objects (2 missing and 1 corrupted)"), "\(dry.stdout)")
        #expect(try Self.tool(["etags"] + where_ + ["60"]) == after, "no --yes, nothing written")
        let done = try Self.reset(canary.configPath, yes: true)
        #expect(done.status == 0, "\(done.stdout)\(done.stderr)")
        #expect(done.stdout.contains("rewrote 3 of 3 objects"))
        try await Harness.waitUntil(.seconds(30), "the corpus whole again") {
            try Self.objects(canary, "ok") == 60 && Self.objects(canary, "missing") == 0
                && Self.objects(canary, "corrupted") == 0
        }
        #expect(try Self.tool(["rule"] + where_ + ["11", "1024"]) == ["RULE-OK"])
    }

    @Test func twoSidecarsShareOneCorpusCreatedOnce() async throws {
        let rgw = try RGWEnvironment.load()
        let corpus = ".s3-canary-corpus-\(UUID().uuidString.prefix(6).lowercased())/"
        async let first = RunningCanary.start(name: "durability-x") { port in
            Self.config(port: port, instance: "x", rgw: rgw, corpus: corpus, objects: 80)
        }
        async let second = RunningCanary.start(name: "durability-y") { port in
            Self.config(port: port, instance: "y", rgw: rgw, corpus: corpus, objects: 80)
        }
        let (x, y) = try await (first.0, second.0)
        defer {
            x.daemon.signal(SIGKILL)
            y.daemon.signal(SIGKILL)
        }
        try await Harness.waitUntil(.seconds(60), "both verify the whole corpus") {
            try Self.objects(x, "ok") == 80 && Self.objects(y, "ok") == 80
        }
        let (dx, dy) = try (Self.durability(x), Self.durability(y))
        #expect(dx["created"] as? String != nil && dx["created"] as? String == dy["created"] as? String)
        #expect(dx["created_by"] as? String == dy["created_by"] as? String, "one manifest, written by one of them")
        let keys = try listKeysIndependently(rgw, bucket: RGWEnvironment.miscBucket, prefix: corpus)
        #expect(keys.filter { $0.hasPrefix("\(corpus)objects/") }.count == 80)
        #expect(
            keys.filter { $0.hasPrefix("\(corpus)progress/") }.sorted()
                == ["x", "y"].map { "\(corpus)progress/\($0).json" })
    }

    @Test func aRestartMidPassResumesWhereThePassWas() async throws {
        let rgw = try RGWEnvironment.load()
        let corpus = ".s3-canary-corpus-\(UUID().uuidString.prefix(6).lowercased())/"
        // 600 objects at 100 requests a second: writing (a HEAD and a PUT each) takes 12 s, a pass 6 s.
        let config = { (port: Int) in
            Self.config(
                port: port, instance: "resume", rgw: rgw, corpus: corpus, objects: 600, rate: 100, fullEvery: "10s")
        }
        var (canary, _) = try await RunningCanary.start(name: "durability-resume", config: config)
        defer { canary.daemon.signal(SIGKILL) }
        try await Harness.waitUntil(.seconds(60), "a pass at least half way") {
            (try Self.durability(canary)["pass_position"] as? Int ?? 0) >= 400
        }
        let etags = try Self.tool(["etags", rgw.endpoint, RGWEnvironment.miscBucket, corpus, "600"])
        canary.daemon.signal(SIGKILL)
        (canary, _) = try await RunningCanary.start(name: "durability-resume-again", config: config)
        var resumedAt: Int?
        try await Harness.waitUntil(.seconds(30), "the pass resumed") {
            resumedAt = try Self.durability(canary)["pass_position"] as? Int
            return resumedAt != nil
        }
        #expect((resumedAt ?? 0) >= 200, "resumed from its saved position, not from 0: \(resumedAt ?? -1)")
        #expect(try Self.tool(["etags", rgw.endpoint, RGWEnvironment.miscBucket, corpus, "600"]) == etags)
    }
}
