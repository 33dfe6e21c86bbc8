import Foundation
import ObjectStorage
import Testing

@testable import SidecarConfig

/// The key tables are the one declaration of every configuration key: these tests hold each table to what the
/// reader does with it and to what the reference says.
@Suite("Configuration key tables")
struct ConfigKeyTableTests {
    static let loader = ConfigurationLoader(environment: ["SECRET_FROM_ENV": "0123456789abcdef"], hostName: "host-1")

    /// A minimal valid configuration with `line` (`key: value`) placed in `section`, or the section left empty when
    /// `line` is nil; `nil` for a section a line cannot be written into this way.
    static func document(section: String, line: String?) -> String? {
        let backend = [
            "name: b1", "endpoint: http://127.0.0.1:7480", "bucket: canary",
            "credentials: {access_key_id: AK, secret_access_key: SK}",
        ]
        func backends(_ extra: [String] = []) -> String {
            "backends:\n"
                + (backend + extra).enumerated().map { ($0 == 0 ? "  - " : "    ") + $1 }.joined(separator: "\n")
        }
        let given = line.map { [$0] } ?? []
        switch section {
        case "": return (line.map { $0 + "\n" } ?? "") + backends()
        case "server", "probe", "breaker", "metrics", "slo":
            return (line.map { "\(section):\n  \($0)\n" } ?? "\(section): {}\n") + backends()
        case "probe.multipart": return "probe:\n  multipart: " + (line.map { "{\($0)}" } ?? "{}") + "\n" + backends()
        case "backends[]": return backends(given)
        case "backends[].tls": return backends(["tls: " + (line.map { "{\($0)}" } ?? "{}")])
        case "webhooks[]":
            return "webhooks:\n  - name: w\n    url: http://127.0.0.1:1/\n" + given.map { "    \($0)\n" }.joined()
                + backends()
        case "alertmanagers":
            return "alertmanagers:\n  urls: [http://127.0.0.1:9093]\n" + given.map { "  \($0)\n" }.joined() + backends()
        case "sharding":
            return "sharding:\n  shards: 2\n  shard: 0\n" + given.map { "  \($0)\n" }.joined() + backends()
        default: return nil
        }
    }

    struct Row: CustomTestStringConvertible, Sendable {
        let section: String
        let key: String
        let spec: ConfigKeySpec
        var testDescription: String { section.isEmpty ? key : "\(section).\(key)" }
    }

    static var rows: [Row] {
        func rows<Key: ConfigSectionKey>(_: Key.Type) -> [Row] {
            Key.allCases.map { Row(section: Key.section, key: $0.rawValue, spec: $0.spec) }
        }
        return ConfigSections.all.flatMap { rows($0) }
    }

    @Test("every key has a one-line description", arguments: Self.rows)
    func everyKeyIsDescribed(_ row: Row) {
        let summary = row.spec.summary.trimmingCharacters(in: .whitespaces)
        #expect(summary.count >= 10, "\(row.testDescription) has no description in its section's key table")
        #expect(!summary.contains("\n"), "\(row.testDescription): the description is one line")
    }

    @Test("every section has a description and no key twice")
    func sectionsAreDescribed() {
        func check<Key: ConfigSectionKey>(_: Key.Type) {
            #expect(Key.summary.count >= 10, "section \(Key.section) has no description")
            #expect(Set(Key.acceptedNames).count == Key.acceptedNames.count, "section \(Key.section) repeats a key")
        }
        for section in ConfigSections.all { check(section) }
        let names = ConfigSections.all.map { $0.section }
        #expect(Set(names).count == names.count)
    }

    @Test("a section a key points to is in the reference")
    func nestedSectionsAreListed() {
        let listed = Set(ConfigSections.all.map { $0.section })
        for row in Self.rows {
            switch row.spec.type {
            case .section(let name), .sections(let name):
                #expect(listed.contains(name), "\(row.testDescription) points to \(name), which no table declares")
            default: break
            }
        }
    }

    /// The documented default is the reader's: writing it changes nothing.
    @Test(
        "writing a key's documented default changes nothing",
        arguments: Self.rows.filter { $0.spec.defaultValue != nil })
    func documentedDefaultIsTheDefault(_ row: Row) throws {
        guard let value = row.spec.defaultValue, !value.hasPrefix("the "),
            let plain = Self.document(section: row.section, line: nil),
            let given = Self.document(section: row.section, line: "\(row.key): \(value)")
        else { return }
        let without = try Self.loader.load(data: Data(plain.utf8))
        let with = try Self.loader.load(data: Data(given.utf8))
        #expect(with == without, "\(row.testDescription): the table says the default is \(value)")
    }

    /// The unknown-key check reads the same table as the lookups: every declared name is accepted.
    @Test("every declared key is accepted where it is declared", arguments: Self.rows)
    func declaredKeysAreAccepted(_ row: Row) throws {
        let names = row.spec.secret ? [row.key, "\(row.key)_env", "\(row.key)_file"] : [row.key]
        for name in names {
            guard let text = Self.document(section: row.section, line: "\(name): x") else { return }
            do {
                _ = try Self.loader.load(data: Data(text.utf8))
            } catch {
                #expect(
                    !error.problems.contains { $0.message.hasPrefix("unknown key") },
                    "\(row.testDescription): \(name) is declared but reported unknown: \(error.problems)")
            }
        }
    }

    @Test("an undeclared key is reported with the declared ones")
    func undeclaredKeyIsReported() throws {
        let text = try #require(Self.document(section: "probe", line: "intervall: 5s"))
        let error = #expect(throws: ConfigurationError.self) { try Self.loader.load(data: Data(text.utf8)) }
        let problem = try #require(error?.problems.first { $0.field == "probe.intervall" })
        #expect(problem.message.contains("did you mean interval?"))
        for key in ProbeKey.allCases { #expect(problem.message.contains(key.rawValue)) }
    }

    @Test("the reference lists every key of every section")
    func referenceListsEveryKey() {
        let reference = ConfigReference.markdown()
        for row in Self.rows {
            #expect(reference.contains("| `\(row.key)`"), "\(row.testDescription) is missing from the reference")
        }
        #expect(reference.contains("## `backends[].credentials`"))
    }

    /// Secrets are read in their own pass, after parsing, and a missing one is reported at the key that named it.
    @Test("secrets are resolved after parsing, at the path of their key")
    func secretsResolveAfterParsing() throws {
        let text = """
            server: {bearer_token_env: SECRET_FROM_ENV}
            webhooks:
              - {name: w, url_file: /nonexistent/url, secret_env: SECRET_FROM_ENV}
            backends:
              - name: b1
                endpoint: http://127.0.0.1:7480
                bucket: canary
                credentials: {access_key_id: AK, secret_access_key_file: /nonexistent/secret}
            """
        let error = #expect(throws: ConfigurationError.self) { try Self.loader.load(data: Data(text.utf8)) }
        let fields = Set(error?.problems.map(\.field) ?? [])
        #expect(fields == ["webhooks[0].url_file", "backends[0].credentials.secret_access_key_file"])

        let good = text.replacingOccurrences(of: "url_file: /nonexistent/url", with: "url: http://127.0.0.1:1/hook")
            .replacingOccurrences(of: "secret_access_key_file: /nonexistent/secret", with: "secret_access_key: SK")
        let configuration = try Self.loader.load(data: Data(good.utf8))
        #expect(configuration.webhooks.first?.url == "http://127.0.0.1:1/hook")
        #expect(configuration.webhooks.first?.secret == "0123456789abcdef")
        #expect(configuration.server.bearerToken == .environment("SECRET_FROM_ENV"))
    }
}
