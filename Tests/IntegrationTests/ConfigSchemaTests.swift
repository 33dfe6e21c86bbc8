import Foundation
import TestSupport
import Testing

/// `s3-canary config-schema` (Config/s3-canary.schema.json) under Python jsonschema: a valid draft 2020-12 schema that
/// accepts every configuration in Config/, and rejects at the same path what check-config rejects for an unknown key,
/// a wrong type or a value out of range.
@Suite("The configuration's JSON Schema")
struct ConfigSchemaTests {
    static let schema = Harness.root.appendingPathComponent("Config/s3-canary.schema.json")

    /// Each configuration of `files` and the paths of its errors.
    static func check(_ files: [String]) async throws -> [(file: String, paths: [String])] {
        let result = try await Harness.runDetached(
            "/usr/bin/env",
            ["python3", Harness.root.appendingPathComponent("Tests/Fixtures/schema_check.py").path, Self.schema.path]
                + files)
        #expect(result.status == 0, "\(result.stderr)")
        return try result.stdout.split(separator: "\n").map { line in
            let object = try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            let errors = object["errors"] as? [[String: Any]] ?? []
            return (object["file"] as? String ?? "", errors.map { "\($0["path"] ?? "")|\($0["message"] ?? "")" })
        }
    }

    @Test func theCommittedSchemaIsWhatTheBinaryPrints() async throws {
        let printed = try await Harness.runDetached(Harness.binary, ["config-schema"])
        #expect(printed.status == 0)
        #expect(printed.stdout == (try String(contentsOf: Self.schema, encoding: .utf8)))
    }

    @Test func everyConfigurationInConfigIsAccepted() async throws {
        let config = Harness.root.appendingPathComponent("Config")
        let files = [
            "s3-canary.example.yaml", "kubernetes/overlays/sidecar/s3-canary.yaml",
            "kubernetes/overlays/fleet/s3-canary.yaml",
        ].map {
            config.appendingPathComponent($0).path
        }
        let results = try await Self.check(files)
        #expect(results.count == 3)
        for result in results { #expect(result.paths.isEmpty, "\(result.file): \(result.paths)") }
    }

    /// The configurations the docs show (README's, and each YAML block of docs/operations.md: fragments, so a
    /// missing required key is forgiven there, an unknown key or a wrong type is not) and the Helm chart's `config:`
    /// values (default and ci/*-values.yaml).
    @Test func theDocsAndTheHelmChartsConfigurationsAreAccepted() async throws {
        let work = try Harness.temporaryDirectory("schema-docs")
        let script = """
            import pathlib, re, sys, yaml
            root, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
            written = []
            def write(name, text):
                path = out / name
                path.write_text(text)
                written.append(str(path))
            readme = (root / "README.md").read_text()
            for i, block in enumerate(re.findall(r"cat > s3-canary.yaml <<'YAML'\\n(.*?)\\nYAML\\n", readme, re.S)):
                write(f"readme-{i}.yaml", block)
            operations = (root / "docs/operations.md").read_text()
            for i, block in enumerate(re.findall(r"```yaml\\n(.*?)```", operations, re.S)):
                write(f"fragment-operations-{i}.yaml", block)
            chart = root / "Config/helm/s3-canary"
            for values in [chart / "values.yaml"] + sorted((chart / "ci").glob("*-values.yaml")):
                config = yaml.safe_load(values.read_text()).get("config")
                if config is not None:
                    write(f"helm-{values.stem}.yaml", yaml.safe_dump(config))
            print("\\n".join(written))
            """
        let extracted = try await Harness.runDetached(
            "/usr/bin/env", ["python3", "-c", script, Harness.root.path, work.path])
        #expect(extracted.status == 0, "\(extracted.stderr)")
        let files = extracted.stdout.split(separator: "\n").map(String.init)
        #expect(files.contains { $0.hasSuffix("readme-0.yaml") }, "README's configuration was not found: \(files)")
        #expect(files.filter { $0.contains("fragment-operations-") }.count >= 4, "\(files)")
        #expect(files.contains { $0.hasSuffix("helm-values.yaml") }, "\(files)")
        let results = try await Self.check(files)
        #expect(results.count == files.count)
        for result in results {
            let fragment = result.file.contains("fragment-")
            let problems = result.paths.filter { !(fragment && $0.hasSuffix("is a required property")) }
            #expect(problems.isEmpty, "\(result.file): \(problems)")
        }
    }

    /// A valid backend with one key changed; the path check-config and the schema must both name.
    static let cases: [(change: String, path: String, schemaPath: String)] = [
        ("typo: 1", "backends[0].typo", "backends[0]"),
        ("path_style: maybe", "backends[0].path_style", "backends[0].path_style"),
        ("max_addresses: 0", "backends[0].max_addresses", "backends[0].max_addresses"),
        ("addresses: every", "backends[0].addresses", "backends[0].addresses"),
        ("probe: {jitter: 60%}", "backends[0].probe.jitter", "backends[0].probe.jitter"),
        (
            "breaker: {failure_threshold: many}", "backends[0].breaker.failure_threshold",
            "backends[0].breaker.failure_threshold"
        ),
    ]

    @Test func whatCheckConfigRejectsTheSchemaRejectsAtTheSamePath() async throws {
        let work = try Harness.temporaryDirectory("schema")
        var files: [String] = []
        for (index, entry) in Self.cases.enumerated() {
            let file = work.appendingPathComponent("case-\(index).yaml")
            try Data(
                """
                backends:
                  - name: a
                    endpoint: http://127.0.0.1:7480
                    bucket: b
                    credentials: {access_key_id: AK, secret_access_key: SK}
                    \(entry.change)

                """.utf8
            ).write(to: file)
            files.append(file.path)
            let checked = try await Harness.runDetached(Harness.binary, ["check-config", "--config", file.path])
            #expect(checked.status == 2 && checked.stderr.contains(entry.path), "\(entry.change): \(checked.stderr)")
        }
        let results = try await Self.check(files)
        #expect(results.count == Self.cases.count)
        for (entry, result) in zip(Self.cases, results) {
            #expect(
                result.paths.contains { $0.hasPrefix("\(entry.schemaPath)|") }, "\(entry.change): \(result.paths)")
        }
    }
}
