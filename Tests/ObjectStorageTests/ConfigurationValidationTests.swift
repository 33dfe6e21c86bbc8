import Foundation
import Testing

@testable import ObjectStorage

@Suite("S3 backend configuration: bad input names the field and the fix")
struct ConfigurationValidationTests {
    static func problems(_ change: (inout S3Backend.Configuration) -> Void) -> [ConfigurationProblem] {
        var configuration = S3Backend.Configuration(endpoint: "http://127.0.0.1:7480", bucket: "canary")
        change(&configuration)
        return configuration.validate()
    }

    @Test func aGoodConfigurationHasNoProblems() {
        #expect(Self.problems { _ in }.isEmpty)
    }

    @Test(arguments: [
        "not a url", "ftp://host", "127.0.0.1:7480", "", "http://", "http://h:7480/bucket", "http://user:pw@h",
    ])
    func endpointMustBeAnHTTPURL(_ endpoint: String) {
        let problems = Self.problems { $0.endpoint = endpoint }
        #expect(problems.count == 1)
        #expect(problems.first?.field == "endpoint")
        #expect(problems.first?.message.contains("http") == true)
        // Credentials in a URL never reach an error message.
        #expect(problems.first?.description.contains("pw") == false)
    }

    @Test func emptyBucket() {
        let problems = Self.problems { $0.bucket = "" }
        #expect(problems.map(\.field) == ["bucket"])
        #expect(problems[0].message.contains("name the bucket"))
    }

    @Test func virtualHostNeedsADNSSafeBucket() {
        #expect(
            Self.problems {
                $0.bucket = "Has_Upper"; $0.addressing = .virtualHost
            }.map(\.field) == ["bucket"])
        #expect(
            Self.problems {
                $0.bucket = "Has_Upper"; $0.addressing = .path
            }.isEmpty)
    }

    @Test func regionWithSpaces() {
        let problems = Self.problems { $0.region = "us east 1" }
        #expect(problems.map(\.field) == ["region"])
        #expect(problems[0].message.contains("no spaces"))
    }

    @Test func unsignedPayloadNeedsHTTPS() {
        #expect(Self.problems { $0.payloadSigning = .unsigned }.map(\.field) == ["payloadSigning"])
        #expect(
            Self.problems {
                $0.payloadSigning = .unsigned; $0.endpoint = "https://s3.example.com"
            }.isEmpty)
    }

    @Test func everyProblemIsListedAtOnce() {
        let problems = Self.problems {
            $0.endpoint = "nope"
            $0.bucket = ""
            $0.region = "a b"
            $0.timeouts.connect = .zero
            $0.pool.maxConnections = 0
            $0.tls.caBundlePath = "/nonexistent/ca.pem"
        }
        #expect(
            Set(problems.map(\.field))
                == ["endpoint", "bucket", "region", "timeouts.connect", "pool.maxConnections", "tls.caBundlePath"]
        )
    }

    @Test func initThrowsTheProblemsInsteadOfCrashing() {
        let configuration = S3Backend.Configuration(endpoint: "::::", bucket: "")
        #expect(throws: ConfigurationError.self) {
            _ = try S3Backend(
                configuration: configuration,
                credentials: StaticCredentialsProvider(.init(accessKeyID: "a", secretAccessKey: "b")))
        }
    }
}

@Suite("Credentials sources")
struct CredentialsTests {
    @Test func environmentProvider() async throws {
        let provider = EnvironmentCredentialsProvider(environment: [
            "AWS_ACCESS_KEY_ID": "AK", "AWS_SECRET_ACCESS_KEY": "SK", "AWS_SESSION_TOKEN": "TOK",
        ])
        #expect(
            try await provider.credentials()
                == Credentials(accessKeyID: "AK", secretAccessKey: "SK", sessionToken: "TOK"))
        await #expect(throws: CredentialsError.self) {
            try await EnvironmentCredentialsProvider(environment: ["AWS_ACCESS_KEY_ID": "AK"]).credentials()
        }
    }

    @Test func profilesFromCredentialsAndConfigFiles() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("aws-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try Data(
            """
            # comment
            [default]
            aws_access_key_id = DEFAULTKEY
            aws_secret_access_key = defaultsecret

            [ceph]
            aws_access_key_id=CEPHKEY
            aws_secret_access_key=ceph/secret+=
            aws_session_token = tok
            """.utf8
        ).write(to: dir.appendingPathComponent("credentials"))
        try Data(
            """
            [profile   only-config]
            aws_access_key_id = CFGKEY
            aws_secret_access_key = cfgsecret
            region = eu-west-1
            """.utf8
        ).write(to: dir.appendingPathComponent("config"))
        let env = [
            "AWS_SHARED_CREDENTIALS_FILE": dir.appendingPathComponent("credentials").path,
            "AWS_CONFIG_FILE": dir.appendingPathComponent("config").path,
            "HOME": dir.path,
        ]
        #expect(try await ProfileCredentialsProvider(environment: env).credentials().accessKeyID == "DEFAULTKEY")
        let ceph = try await ProfileCredentialsProvider(profile: "ceph", environment: env).credentials()
        #expect(ceph == Credentials(accessKeyID: "CEPHKEY", secretAccessKey: "ceph/secret+=", sessionToken: "tok"))
        var withProfile = env
        withProfile["AWS_PROFILE"] = "only-config"
        #expect(try await ProfileCredentialsProvider(environment: withProfile).credentials().accessKeyID == "CFGKEY")
        await #expect(throws: CredentialsError.self) {
            try await ProfileCredentialsProvider(profile: "missing", environment: env).credentials()
        }
    }

    @Test func descriptionsNeverShowSecrets() {
        let credentials = Credentials(accessKeyID: "AK", secretAccessKey: "SECRETMARKER", sessionToken: "TOKENMARKER")
        #expect(!"\(credentials)".contains("SECRETMARKER"))
        #expect(!"\(credentials)".contains("TOKENMARKER"))
    }
}
