import Foundation
import TestSupport
import Testing

/// What a deployed binary says about itself and what an image or a shell asks of it: `--version` and the build stamp
/// (scripts/stamp.py), `healthcheck`, and the completion scripts.
@Suite("shipping commands")
struct ShippingCommandTests {
    @Test func anUnstampedBinarySaysSoAndAStampedCopyNamesItsCommitInVersionAndMetrics() async throws {
        let plain = try await Harness.runDetached(Harness.binary, ["--version"])
        #expect(plain.status == 0)
        let plainLines = plain.stdout.split(separator: "\n").map(String.init)
        #expect(plainLines.count == 3, "\(plain.stdout)")
        #expect(plainLines.first?.hasPrefix("s3-canary ") == true)
        #expect(plainLines.contains("revision: unknown (not built by scripts/release.sh)"), "\(plain.stdout)")

        // A copy stamped as scripts/release.sh stamps the release binary.
        let work = try Harness.temporaryDirectory("stamp")
        let copy = work.appendingPathComponent("s3-canary")
        try FileManager.default.copyItem(atPath: Harness.binary, toPath: copy.path)
        let stamper = Harness.root.appendingPathComponent("scripts/stamp.py").path
        let stamp = try await Harness.runDetached("/usr/bin/env", ["python3", stamper, copy.path])
        #expect(stamp.status == 0, "\(stamp.stderr)")
        let head = try Harness.run("/usr/bin/env", ["git", "-C", Harness.root.path, "rev-parse", "HEAD"])
        let commit = head.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(commit.count == 40, "git rev-parse HEAD: \(head.stdout)\(head.stderr)")
        let stamped = try await Harness.runDetached(copy.path, ["--version"])
        let lines = stamped.stdout.split(separator: "\n").map(String.init)
        let revision = try #require(lines.first { $0.hasPrefix("revision: ") }?.dropFirst("revision: ".count))
        #expect(revision == commit || revision == "\(commit)-dirty", "\(stamped.stdout)")
        let swift = try #require(lines.first { $0.hasPrefix("swift: ") }?.dropFirst("swift: ".count))
        #expect(swift.split(separator: ".").count == 3, "the toolchain's full version: \(stamped.stdout)")
        // Stamping twice rewrites the field (the marker is still there once).
        #expect(try await Harness.runDetached("/usr/bin/env", ["python3", stamper, copy.path]).status == 0)

        // The same identity in the build-info series.
        let port = try Harness.freePort()
        let demo = try Daemon(
            copy.path, ["demo", "--listen", "127.0.0.1:\(port)"], log: work.appendingPathComponent("demo.log"))
        defer { demo.signal(SIGKILL) }
        try await Harness.waitForPort(port, of: demo, "the stamped demo")
        let metrics = try Harness.http("http://127.0.0.1:\(port)/metrics").body
        let info = metrics.split(separator: "\n").first { $0.hasPrefix("s3canary_build_info{") }
        #expect(info?.contains(#"revision="\#(revision)""#) == true, "\(info ?? "no s3canary_build_info")")
        #expect(info?.contains(#"swift_version="\#(swift)""#) == true, "\(info ?? "")")
        #expect(await demo.stop() == 0)
    }

    @Test func healthcheckExitsZeroOnlyOnATwoHundredAnswer() async throws {
        let work = try Harness.temporaryDirectory("healthcheck")
        let port = try Harness.freePort()
        let demo = try Daemon(
            Harness.binary, ["demo", "--listen", "127.0.0.1:\(port)"], log: work.appendingPathComponent("demo.log"))
        defer { demo.signal(SIGKILL) }
        try await Harness.waitForPort(port, of: demo, "the demo")
        let base = "http://127.0.0.1:\(port)"
        let alive = try await Harness.runDetached(Harness.binary, ["healthcheck", "--url", "\(base)/healthz"])
        #expect(alive.status == 0, "\(alive.stdout)\(alive.stderr)")
        let missing = try await Harness.runDetached(Harness.binary, ["healthcheck", "--url", "\(base)/no-such-route"])
        #expect(missing.status == 1)
        #expect(missing.stderr.contains("answered 404"), "\(missing.stderr)")
        // Nothing listening: one refused connection, at once (no retries until the timeout).
        let closed = try Harness.freePort()
        let started = ContinuousClock.now
        let refused = try await Harness.runDetached(
            Harness.binary, ["healthcheck", "--url", "http://127.0.0.1:\(closed)/healthz", "--timeout", "20"])
        #expect(refused.status == 1)
        #expect(ContinuousClock.now - started < .seconds(15), "a refused connection waited for the timeout")
        let bad = try await Harness.runDetached(Harness.binary, ["healthcheck", "--url", "ftp://example/"])
        #expect(bad.status != 0 && bad.status != 1)
        #expect(bad.stderr.contains("--url ftp://example/ is not an http(s) URL"), "\(bad.stderr)")
        #expect(await demo.stop() == 0)
    }

    /// bash completes the subcommands and a subcommand's options from the script the binary prints.
    @Test func theBashCompletionScriptCompletesCommandsAndOptions() async throws {
        let work = try Harness.temporaryDirectory("completion")
        let script = try await Harness.runDetached(Harness.binary, ["--generate-completion-script", "bash"])
        #expect(script.status == 0, "\(script.stderr)")
        let file = work.appendingPathComponent("s3-canary.bash")
        try Data(script.stdout.utf8).write(to: file)
        func complete(_ words: [String]) throws -> Set<String> {
            let line = words.joined(separator: " ")
            let program = """
                source "$1"
                COMP_WORDS=(\(words.map { "'\($0)'" }.joined(separator: " ")))
                COMP_CWORD=\(words.count - 1)
                COMP_LINE='\(line)'
                COMP_POINT=${#COMP_LINE}
                _s3-canary s3-canary '\(words.last ?? "")' '\(words.dropLast().last ?? "")'
                printf '%s\\n' "${COMPREPLY[@]}"
                """
            let output = try Harness.run("/bin/bash", ["-c", program, "bash", file.path])
            #expect(output.status == 0, "\(output.stderr)")
            return Set(output.stdout.split(separator: "\n").map(String.init))
        }
        let commands = try complete(["s3-canary", ""])
        #expect(
            commands.isSuperset(of: ["run", "demo", "check-config", "probe", "compat", "config-schema", "healthcheck"]),
            "\(commands.sorted())")
        let options = try complete(["s3-canary", "healthcheck", "--"])
        #expect(options.isSuperset(of: ["--url", "--timeout"]), "\(options.sorted())")
        for shell in ["zsh", "fish"] {
            let other = try await Harness.runDetached(Harness.binary, ["--generate-completion-script", shell])
            #expect(other.status == 0 && other.stdout.contains("healthcheck"), "\(shell): \(other.stderr)")
        }
    }
}
