import Foundation
import TestSupport
import Testing

/// The container image `scripts/image.sh` builds from the release binary (`scripts/test.sh` builds it for its
/// `release` phase and names its `.build-image/image.json` in `$S3CANARY_IMAGE_JSON`), run by podman the way a
/// cluster runs it: as its non-root user, read-only root file system, the configuration mounted, against the real RGW
/// (and under the systemd unit's system-call filter, so that filter is known to let the service run).
@Suite("container image", .tags(.release), .serialized)
struct ImageTests {
    struct Image {
        var name: String
        var archive: String
        var digest: String
        var dockerArchive: String { self.archive.replacingOccurrences(of: ".oci.tar", with: ".docker.tar") }
    }

    static func image() throws -> Image {
        guard let path = ProcessInfo.processInfo.environment["S3CANARY_IMAGE_JSON"], !path.isEmpty else {
            throw HarnessError(
                "S3CANARY_IMAGE_JSON is not set: scripts/test.sh builds the image with scripts/image.sh for its release"
                    + " phase")
        }
        let object = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path)))
        guard let fields = object as? [String: Any], let name = fields["name"] as? String,
            let archive = fields["archive"] as? String, let digest = fields["digest"] as? String
        else { throw HarnessError("\(path) lacks name, archive or digest") }
        let root = URL(fileURLWithPath: path).deletingLastPathComponent().deletingLastPathComponent()
        let absolute = archive.hasPrefix("/") ? archive : root.appendingPathComponent(archive).path
        return Image(name: name, archive: absolute, digest: digest)
    }

    /// A containers.conf this machine accepts (../shared/FACTS.md): open-file limits no higher than the hard limit,
    /// and runc. Written once; `nil` when it could not be.
    static let containersConfiguration: URL? = {
        var limit = rlimit()
        getrlimit(Int32(RLIMIT_NOFILE.rawValue), &limit)
        guard let directory = try? Harness.temporaryDirectory("podman-conf") else { return nil }
        let conf = directory.appendingPathComponent("containers.conf")
        let text = """
            [containers]
            default_ulimits = ["nofile=\(limit.rlim_max):\(limit.rlim_max)", "nproc=32768:32768"]
            [engine]
            runtime = "runc"

            """
        return (try? Data(text.utf8).write(to: conf)) == nil ? nil : conf
    }()

    /// podman with ``containersConfiguration``. `podman run --detach` leaves conmon running with every file descriptor
    /// podman inherited, so a pipe of ours would stay open as long as the container; podman runs through Python's
    /// subprocess, which passes it only standard input, output and error (close_fds), and its output goes to files.
    static func podman(_ arguments: [String]) async throws -> Harness.Output {
        guard let conf = Self.containersConfiguration else {
            throw HarnessError("cannot write a containers.conf for podman in a temporary directory")
        }
        let directory = try Harness.temporaryDirectory("podman")
        var environment = ProcessInfo.processInfo.environment
        environment["CONTAINERS_CONF"] = conf.path
        let out = directory.appendingPathComponent("stdout")
        let err = directory.appendingPathComponent("stderr")
        let script = """
            import subprocess, sys
            with open(sys.argv[1], "wb") as out, open(sys.argv[2], "wb") as err:
                sys.exit(subprocess.run(["podman"] + sys.argv[3:], stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                                        close_fds=True).returncode)
            """
        var result = try await Harness.runDetached(
            "/usr/bin/env", ["python3", "-c", script, out.path, err.path] + arguments, environment: environment)
        result.stdout = (try? String(contentsOf: out, encoding: .utf8)) ?? ""
        result.stderr += (try? String(contentsOf: err, encoding: .utf8)) ?? ""
        return result
    }

    static func inspect(_ arguments: [String]) async throws -> [String: Any] {
        let output = try await Self.podman(arguments)
        #expect(output.status == 0, "\(output.stderr)")
        let array = try JSONSerialization.jsonObject(with: Data(output.stdout.utf8)) as? [[String: Any]]
        return try #require(array?.first, "podman \(arguments.joined(separator: " ")): \(output.stdout.prefix(300))")
    }

    @Test func bothArchivesHoldOneImageThatRunsAsItsOwnUserWithTheBuildsIdentity() async throws {
        let image = try Self.image()
        // The OCI archive is what a registry gets (skopeo copy oci-archive:...); the docker archive is the same image
        // (same config bytes, so the same ID) with the health check podman keeps.
        // Each archive into a store without the image (loading an image ID podman has changes nothing); the docker
        // one last, as scripts/image.sh leaves it for the test below.
        _ = try await Self.podman(["rmi", "--force", image.name])
        let oci = try await Self.podman(["load", "--quiet", "--input", image.archive])
        #expect(oci.status == 0, "\(oci.stderr)")
        let fromOCI = try #require(try await Self.inspect(["image", "inspect", image.name])["Id"] as? String)
        let removed = try await Self.podman(["rmi", "--force", image.name])
        #expect(removed.status == 0, "\(removed.stderr)")
        let docker = try await Self.podman(["load", "--quiet", "--input", image.dockerArchive])
        #expect(docker.status == 0, "\(docker.stderr)")
        let inspected = try await Self.inspect(["image", "inspect", image.name])
        #expect(inspected["Id"] as? String == fromOCI)
        let config = try #require(inspected["Config"] as? [String: Any])
        #expect(config["User"] as? String == "65532:65532")
        #expect(config["Entrypoint"] as? [String] == ["/usr/bin/s3-canary"])
        #expect((config["ExposedPorts"] as? [String: Any])?.keys.sorted() == ["9340/tcp"])
        let health = try #require(inspected["Healthcheck"] as? [String: Any], "no health check: \(inspected.keys)")
        #expect(health["Test"] as? [String] == ["CMD", "/usr/bin/s3-canary", "healthcheck"])

        // The labels name the commit the binary was stamped with, and the version it reports.
        let labels = try #require(config["Labels"] as? [String: String])
        let version = try Harness.run(ReleaseBinaryTests.binary(), ["--version"])
        let lines = version.stdout.split(separator: "\n").map(String.init)
        #expect(lines.first == "s3-canary \(labels["org.opencontainers.image.version"] ?? "?")", "\(lines)")
        #expect(lines.contains("revision: \(labels["org.opencontainers.image.revision"] ?? "?")"), "\(lines)")
        #expect(labels["org.opencontainers.image.revision"]?.count ?? 0 >= 40)

        // Nothing but the binary, its libraries, certificates, zones and the user: no shell to exec into.
        let shell = try await Self.podman(["run", "--rm", "--network", "none", "--entrypoint", "/bin/sh", image.name])
        #expect(shell.status != 0)
    }

    @Test func itProbesRGWAsNonRootOnAReadOnlyRootUnderTheUnitsSystemCallFilter() async throws {
        let image = try Self.image()
        let rgw = try RGWEnvironment.load()
        let work = try Harness.temporaryDirectory("image")
        let port = try Harness.freePort()
        let config = work.appendingPathComponent("s3-canary.yaml")
        // The keys come from the container's environment, as a Secret would give them.
        try Data(rgw.oneBackendConfiguration(name: "image", port: port, stateDir: "/var/lib/s3-canary").utf8)
            .write(to: config)
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: config.path)
        // The system-call filter of the systemd unit, as a seccomp profile: the unit is known to let the service run.
        let profile = work.appendingPathComponent("seccomp.json")
        let converted = try await Harness.runDetached(
            "/usr/bin/env",
            [
                "python3", Harness.root.appendingPathComponent("Tests/Fixtures/systemd_seccomp.py").path,
                Harness.root.appendingPathComponent("Config/systemd/s3-canary.service").path, profile.path,
            ])
        #expect(converted.status == 0, "\(converted.stderr)")
        #expect(
            (Int(converted.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? 0) > 100, "\(converted.stdout)")
        let name = "s3canary-image-test-\(port)"
        let started = try await Self.podman([
            "run", "--detach", "--name", name, "--read-only", "--network", "host", "--cap-drop", "ALL",
            // no-new-privileges as the unit's NoNewPrivileges; it also makes runc load the filter after it set the user.
            "--security-opt", "no-new-privileges", "--security-opt", "seccomp=\(profile.path)",
            "--volume", "\(config.path):/etc/s3-canary/s3-canary.yaml:ro",
            "--env", "S3CANARY_TEST_RGW_ACCESS_KEY=\(rgw.accessKey)",
            "--env", "S3CANARY_TEST_RGW_SECRET_KEY=\(rgw.secretKey)",
            image.name,
        ])
        #expect(started.status == 0, "\(started.stderr)")
        defer { _ = try? Harness.run("/usr/bin/env", ["podman", "rm", "--force", "--volumes", name]) }

        let base = "http://127.0.0.1:\(port)"
        try await Harness.waitUntil(.seconds(60), "the container's first successful cycle") {
            guard try Harness.http("\(base)/readyz").status == 200 else { return false }
            return Samples(try Harness.http("\(base)/metrics").body)[#"s3canary_probe_success{backend="rgw"}"#] == 1
        }
        let samples = Samples(try Harness.http("\(base)/metrics").body)
        #expect(samples[#"s3canary_circuit_breaker_state{backend="rgw"}"#] == 0)
        #expect((samples[#"s3canary_probes_total{backend="rgw",result="success"}"#] ?? 0) >= 1)

        // Its process runs as uid and gid 65532 on the host too (rootful podman maps nothing).
        let state = try await Self.inspect(["container", "inspect", name])
        let pid = try #require((state["State"] as? [String: Any])?["Pid"] as? Int)
        let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
        let ids = status.split(separator: "\n").filter { $0.hasPrefix("Uid:") || $0.hasPrefix("Gid:") }
        #expect(ids.count == 2)
        for line in ids {
            #expect(
                line.split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst().allSatisfy { $0 == "65532" },
                "\(line)")
        }

        // The health check command works inside the image (no shell, no curl), and fails when nothing answers.
        let healthy = try await Self.podman([
            "exec", name, "/usr/bin/s3-canary", "healthcheck", "--url", "\(base)/readyz",
        ])
        #expect(healthy.status == 0, "\(healthy.stdout)\(healthy.stderr)")
        let closed = try Harness.freePort()
        let unhealthy = try await Self.podman([
            "exec", name, "/usr/bin/s3-canary", "healthcheck", "--url", "http://127.0.0.1:\(closed)/healthz",
        ])
        #expect(unhealthy.status == 1, "\(unhealthy.stdout)\(unhealthy.stderr)")

        // SIGTERM (the image's stop signal) ends it cleanly, well inside podman's grace period.
        let stopped = try await Self.podman(["stop", "--time", "40", name])
        #expect(stopped.status == 0, "\(stopped.stderr)")
        let after = try await Self.inspect(["container", "inspect", name])
        #expect((after["State"] as? [String: Any])?["ExitCode"] as? Int == 0, "\(after["State"] ?? "")")
    }
}
