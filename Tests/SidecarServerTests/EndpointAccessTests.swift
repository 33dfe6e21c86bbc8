import Foundation
import HummingbirdBcrypt
import ObjectStorage
import Testing

@testable import SidecarConfig
@testable import SidecarServer

@Suite("Endpoint access")
struct EndpointAccessTests {
    static func basic(_ user: String, _ password: String) -> String {
        "Basic " + Data("\(user):\(password)".utf8).base64EncodedString()
    }

    @Test func anOpenEndpointAllowsEverything() async {
        let access = EndpointAccess()
        #expect(access.isOpen)
        #expect(await access.authorize(nil) == .allowed)
    }

    @Test func basicAuthChecksTheBcryptHashAndNothingElse() async throws {
        var server = CanaryConfiguration.Server()
        // htpasswd writes $2y$; the library writes $2b$: both are accepted.
        let hash = Bcrypt.hash("s3cret", cost: 4)
        server.basicAuthUsers = ["prom": hash, "ops": "$2y$" + hash.dropFirst(4)]
        let access = EndpointAccess()
        access.install(try EndpointAccess.Rules(server))
        #expect(await access.authorize(Self.basic("prom", "s3cret")) == .allowed)
        #expect(await access.authorize(Self.basic("ops", "s3cret")) == .allowed)
        // Served from the cache the second time, and still only for the right pair.
        #expect(await access.authorize(Self.basic("prom", "s3cret")) == .allowed)
        #expect(await access.authorize(Self.basic("prom", "s3cret ")) != .allowed)
        #expect(await access.authorize(Self.basic("nobody", "s3cret")) != .allowed)
        #expect(await access.authorize("Basic !!!notbase64") != .allowed)
        #expect(await access.authorize("Bearer s3cret") != .allowed)
        #expect(await access.authorize(nil) == .denied(challenge: #"Basic realm="s3-canary", charset="UTF-8""#))
        // A reload that drops the user drops its cached success too.
        server.basicAuthUsers = ["ops": hash]
        access.install(try EndpointAccess.Rules(server))
        #expect(await access.authorize(Self.basic("prom", "s3cret")) != .allowed)
    }

    @Test func bearerTokensCompareWhole() async throws {
        var server = CanaryConfiguration.Server()
        server.bearerToken = .environment("TOKEN")
        let access = EndpointAccess()
        access.install(try EndpointAccess.Rules(server, environment: ["TOKEN": "abcdefghijklmnop"]))
        #expect(await access.authorize("Bearer abcdefghijklmnop") == .allowed)
        #expect(await access.authorize("bearer abcdefghijklmnop") == .allowed)
        #expect(await access.authorize("Bearer abcdefghijklmno") != .allowed)
        #expect(await access.authorize("Bearer abcdefghijklmnopq") != .allowed)
        #expect(throws: ConfigurationError.self) { access.install(try EndpointAccess.Rules(server, environment: [:])) }
    }

    @Test func bcryptHashShapes() {
        #expect(BcryptHash.isValid(Bcrypt.hash("x", cost: 4)))
        #expect(!BcryptHash.isValid("plain-password"))
        #expect(!BcryptHash.isValid("$1$" + String(repeating: "a", count: 57)))
        #expect(!BcryptHash.isValid("$2b$99$" + String(repeating: "a", count: 53)))
        #expect(EndpointAccess.constantTimeEqual([1, 2, 3], [1, 2, 3]))
        #expect(!EndpointAccess.constantTimeEqual([1, 2, 3], [1, 2, 4]))
        #expect(!EndpointAccess.constantTimeEqual([1, 2], [1, 2, 3]))
    }

    @Test func theServerSectionReportsEveryProblemWithoutEchoingPasswords() throws {
        let yaml = """
            server:
              tls: {cert_file: /nonexistent/cert.pem, key_file: /nonexistent/key.pem}
              basic_auth_users: {prom: hunter2-plaintext}
              bearer_token: short
              max_header_bytes: 10
              idle_timeout: -1s
              gzip: true
            backends:
              - {name: a, endpoint: "http://127.0.0.1:1", bucket: b, \
            credentials: {access_key_id: a, secret_access_key: b}}
            """
        let error = try #require(throws: ConfigurationError.self) {
            try ConfigurationLoader(environment: [:], hostName: "h").load(data: Data(yaml.utf8))
        }
        let fields = Set(error.problems.map(\.field))
        for field in [
            "server.tls.key_file", "server.tls.cert_file", "server.basic_auth_users.prom", "server.bearer_token",
            "server.max_header_bytes", "server.idle_timeout", "server.gzip",
        ] {
            #expect(fields.contains(field), "\(field) in \(fields)")
        }
        #expect(!error.description.contains("hunter2"))
    }
}
