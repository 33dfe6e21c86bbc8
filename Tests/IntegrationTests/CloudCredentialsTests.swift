import Foundation
import ObjectStorage
import Synchronization
import TestSupport
import Testing

@testable import CanarySidecar
@testable import SidecarConfig
@testable import SidecarServer

/// moto's server, which answers STS and the EC2 instance metadata endpoints.
struct MotoServer {
    var daemon: Daemon
    var port: Int
    var base: String { "http://127.0.0.1:\(self.port)" }

    static func start(directory: URL) async throws -> MotoServer {
        let port = try Harness.freePort()
        let daemon = try Daemon(
            "/usr/bin/env", ["moto_server", "-H", "127.0.0.1", "-p", String(port)],
            log: directory.appendingPathComponent("moto.log"))
        try await Harness.waitUntil(.seconds(20), "moto up") {
            guard daemon.isRunning else { throw HarnessError("moto_server exited: \(daemon.log)") }
            return try Harness.http("http://127.0.0.1:\(port)/moto-api/", timeout: 1).status != nil
        }
        return MotoServer(daemon: daemon, port: port)
    }
}

/// Counts fetches and can be pointed at another fetcher mid-test.
final class SwitchableFetcher: CredentialsFetcher {
    let current: Mutex<any CredentialsFetcher>
    let fetches = Mutex(0)
    var sourceName: String { "switchable" }
    init(_ fetcher: any CredentialsFetcher) { self.current = Mutex(fetcher) }
    func fetch() async throws -> Credentials {
        self.fetches.withLock { $0 += 1 }
        return try await self.current.withLock { $0 }.fetch()
    }
}

/// A wall clock the test moves by hand.
final class TestDate: Sendable {
    let offset = Mutex<TimeInterval>(0)
    var now: Date { Date().addingTimeInterval(self.offset.withLock { $0 }) }
    func advance(_ seconds: TimeInterval) { self.offset.withLock { $0 += seconds } }
}

final class Failures: Sendable {
    let list = Mutex<[String]>([])
}

@Suite("Cloud credential chain against moto")
struct CloudCredentialsTests {
    @Test func webIdentityCredentialsAreFetchedUsedToSignRefreshedAndKeptOnSTSErrors() async throws {
        let work = try Harness.temporaryDirectory("web-identity")
        let moto = try await MotoServer.start(directory: work)
        defer { moto.daemon.signal(SIGKILL) }
        let tokenFile = work.appendingPathComponent("token")
        try Data("eyJhbGciOiJSUzI1NiJ9.test-token\n".utf8).write(to: tokenFile)
        let environment = [
            "AWS_WEB_IDENTITY_TOKEN_FILE": tokenFile.path, "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/canary",
            "AWS_ROLE_SESSION_NAME": "canary-test", "AWS_ENDPOINT_URL_STS": moto.base,
        ]
        let webIdentity = try #require(WebIdentityCredentialsFetcher(environment: environment, region: "us-east-1"))
        let fetcher = SwitchableFetcher(webIdentity)
        let failures = Failures()
        let clock = TestDate()
        // Refresh when less than 3000 s are left: moto's credentials last an hour, so moving the provider's clock
        // 700 s on makes them due, whatever the speed of this machine.
        let provider = RefreshingCredentialsProvider(
            fetcher, refreshBefore: .seconds(3000), now: { clock.now },
            onRefreshFailure: { error in failures.list.withLock { $0.append("\(error)") } }
        )
        let first = try await provider.credentials()
        #expect(first.accessKeyID.count >= 16 && first.sessionToken != nil)
        let expiration = try #require(first.expiration)
        #expect(expiration.timeIntervalSinceNow > 3000)
        #expect(try await provider.credentials() == first, "fresh credentials are cached")
        #expect(fetcher.fetches.withLock { $0 } == 1)

        // Used to sign: a capture server records what S3Backend sends.
        let headerLog = work.appendingPathComponent("headers.jsonl")
        let capture = try await FaultS3.start(
            status: 404, code: "NoSuchKey", message: "", headerLog: headerLog, directory: work, name: "capture")
        defer { capture.daemon.signal(SIGKILL) }
        let capturePort = capture.port
        let backend = try S3Backend(
            configuration: .init(endpoint: "http://127.0.0.1:\(capturePort)", bucket: "b"),
            credentials: provider
        )
        _ = try? await backend.headObject(key: "k")
        try await backend.shutdown()
        let logged = try String(contentsOf: headerLog, encoding: .utf8)
        #expect(logged.contains("Credential=\(first.accessKeyID)/"))
        #expect(logged.contains(first.sessionToken ?? "-"))

        // Two fetches once the refresh window is reached.
        clock.advance(700)
        let second = try await provider.credentials()
        #expect(fetcher.fetches.withLock { $0 } == 2)
        #expect(second.accessKeyID != first.accessKeyID || second.sessionToken != first.sessionToken)

        // STS fails: the last credentials stay in use (they have not expired) and the failure is reported.
        fetcher.current.withLock {
            $0 = WebIdentityCredentialsFetcher(
                tokenFile: tokenFile.path, roleARN: "arn:aws:iam::123456789012:role/canary", sessionName: "s",
                stsEndpoint: "http://127.0.0.1:\(capturePort)"
            )
        }
        clock.advance(2)
        let kept = try await provider.credentials()
        #expect(kept == second)
        #expect(failures.list.withLock { $0.count } == 1)
        #expect(failures.list.withLock { $0.first }?.contains("web identity") == true)
    }

    @Test func instanceMetadataV2CredentialsComeFromMoto() async throws {
        let work = try Harness.temporaryDirectory("imds")
        let moto = try await MotoServer.start(directory: work)
        defer { moto.daemon.signal(SIGKILL) }
        let fetcher = try #require(
            InstanceMetadataCredentialsFetcher(environment: ["AWS_EC2_METADATA_SERVICE_ENDPOINT": moto.base]))
        let credentials = try await fetcher.fetch()
        #expect(!credentials.accessKeyID.isEmpty && !credentials.secretAccessKey.isEmpty)
        #expect(credentials.expiration != nil)
        #expect(InstanceMetadataCredentialsFetcher(environment: ["AWS_EC2_METADATA_DISABLED": "true"]) == nil)
    }

    @Test func containerEndpointCredentialsUseTheAuthorizationToken() async throws {
        let work = try Harness.temporaryDirectory("container")
        let port = try Harness.freePort()
        let script = """
            import json, sys
            from http.server import BaseHTTPRequestHandler, HTTPServer
            class H(BaseHTTPRequestHandler):
                def log_message(self, *a): pass
                def do_GET(self):
                    ok = self.headers.get("Authorization") == "secret-token" and self.path == "/creds"
                    body = json.dumps({"AccessKeyId": "ASIACONTAINER", "SecretAccessKey": "s", "Token": "t", \
            "Expiration": "2099-01-01T00:00:00Z"}).encode() if ok else b"{}"
                    self.send_response(200 if ok else 401); self.send_header("Content-Length", str(len(body))); \
            self.end_headers(); self.wfile.write(body)
            print("ready", flush=True)
            HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
            """
        let server = try Daemon(
            "/usr/bin/env", ["python3", "-c", script, String(port)], log: work.appendingPathComponent("container.log"))
        defer { server.signal(SIGKILL) }
        try await Harness.waitForPort(port, of: server, "container endpoint")
        let tokenFile = work.appendingPathComponent("token")
        try Data("secret-token\n".utf8).write(to: tokenFile)
        let fetcher = try #require(
            ContainerCredentialsFetcher(environment: [
                "AWS_CONTAINER_CREDENTIALS_FULL_URI": "http://127.0.0.1:\(port)/creds",
                "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE": tokenFile.path,
            ]))
        let credentials = try await fetcher.fetch()
        #expect(credentials.accessKeyID == "ASIACONTAINER" && credentials.sessionToken == "t")
        let unauthorized = ContainerCredentialsFetcher(url: "http://127.0.0.1:\(port)/creds", token: "wrong")
        await #expect(throws: CredentialsError.self) { try await unauthorized.fetch() }
    }

    @Test func defaultChainPrefersTheEnvironmentThenWebIdentity() async throws {
        let work = try Harness.temporaryDirectory("chain")
        let moto = try await MotoServer.start(directory: work)
        defer { moto.daemon.signal(SIGKILL) }
        let tokenFile = work.appendingPathComponent("token")
        try Data("token-1234".utf8).write(to: tokenFile)
        let webIdentityOnly = [
            "AWS_WEB_IDENTITY_TOKEN_FILE": tokenFile.path, "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/canary",
            "AWS_ENDPOINT_URL_STS": moto.base, "AWS_EC2_METADATA_DISABLED": "true", "HOME": work.path,
        ]
        let chain = try BackendFactory.credentialsProvider(
            .defaultChain(profile: nil), field: "f", region: "us-east-1", environment: webIdentityOnly
        ) { _ in }
        let fromSTS = try await chain.credentials()
        #expect(fromSTS.sessionToken != nil && fromSTS.expiration != nil)
        var withKeys = webIdentityOnly
        withKeys["AWS_ACCESS_KEY_ID"] = "AKIAENVIRONMENT"
        withKeys["AWS_SECRET_ACCESS_KEY"] = "secret"
        let envFirst = try BackendFactory.credentialsProvider(
            .defaultChain(profile: nil), field: "f", region: "us-east-1", environment: withKeys
        ) { _ in }
        #expect(try await envFirst.credentials().accessKeyID == "AKIAENVIRONMENT")
        let nothing = try BackendFactory.credentialsProvider(
            .defaultChain(profile: nil), field: "f", region: "us-east-1",
            environment: ["AWS_EC2_METADATA_DISABLED": "true", "HOME": work.path]
        ) { _ in }
        await #expect(throws: CredentialsError.self) { try await nothing.credentials() }
    }
}
