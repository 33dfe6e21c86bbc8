import Crypto
public import Foundation
import HummingbirdBcrypt
import NIOCore
import NIOPosix
public import NIOSSL
import ObjectStorage
import SidecarBreaker
public import SidecarConfig
import SidecarTelemetry
import Synchronization

/// The endpoint's certificate and key, swapped on reload without restarting the listener: every TLS handshake
/// asks for the current pair, so new connections get the new certificate and open ones finish on the old one.
public final class EndpointTLS: Sendable {
    private let current: Mutex<TLSMaterial>

    /// Serves `material` until the next ``install(_:)``.
    public init(_ material: TLSMaterial) {
        self.current = Mutex(material)
    }

    /// Serves `material` from the next handshake on (a reload read the files again).
    public func install(_ material: TLSMaterial) {
        self.current.withLock { $0 = material }
    }

    /// A server configuration that takes the current pair on every handshake; TLS 1.2 at least.
    public func serverConfiguration() -> TLSConfiguration {
        let material = self.current.withLock { $0 }
        var configuration = TLSConfiguration.makeServerConfiguration(
            certificateChain: material.chain.map { .certificate($0) },
            privateKey: .privateKey(material.key)
        )
        configuration.minimumTLSVersion = .tlsv12
        configuration.sslContextCallback = { [self] _, promise in
            let material = self.current.withLock { $0 }
            var override = NIOSSLContextConfigurationOverride()
            override.certificateChain = material.chain.map { .certificate($0) }
            override.privateKey = .privateKey(material.key)
            promise.succeed(override)
        }
        return configuration
    }
}

/// Who may read the endpoint: basic auth against bcrypt hashes, or a bearer token. `/healthz` is always open so
/// liveness probes need no secret.
public final class EndpointAccess: Sendable {
    enum Decision: Sendable, Equatable {
        case allowed
        /// No or wrong credentials; the `WWW-Authenticate` challenge to send.
        case denied(challenge: String)
    }

    /// The credentials of one `server:` section, the token already read (so a reload reads it once).
    public struct Rules: Sendable {
        var users: [String: String] = [:]
        var tokenDigest: [UInt8]?
        var isOpen: Bool { self.users.isEmpty && self.tokenDigest == nil }

        init() {}

        /// The rules of `server`, its bearer token read now from its secret source.
        public init(
            _ server: CanaryConfiguration.Server, environment: [String: String] = ProcessInfo.processInfo.environment
        )
            throws
        {
            self.users = server.basicAuthUsers
            if let source = server.bearerToken {
                let token = try source.resolve(field: "server.bearer_token", environment: environment)
                self.tokenDigest = Array(SHA256.hash(data: Data(token.utf8)))
            }
        }
    }

    private struct State: Sendable {
        var rules = Rules()
        /// Digests of `user:password` pairs that passed bcrypt, so a scrape every few seconds costs one hash, not
        /// one bcrypt run. Cleared on every update.
        var verified: Set<[UInt8]> = []
    }

    private let state = Mutex(State())
    /// Keyed digests: an attacker who reads memory does not get a table of `sha256(user:password)`.
    private let cacheKey = SymmetricKey(size: .bits256)

    /// Open access until the first ``install(_:)``.
    public init() {}

    /// Replaces the rules; successes remembered under the old ones are forgotten.
    public func install(_ rules: Rules) {
        self.state.withLock { $0 = State(rules: rules) }
    }

    var isOpen: Bool { self.state.withLock { $0.rules.isOpen } }

    /// Checks an `Authorization` header value.
    func authorize(_ authorization: String?) async -> Decision {
        let rules = self.state.withLock { $0.rules }
        if rules.isOpen { return .allowed }
        let challenge =
            rules.users.isEmpty ? #"Bearer realm="s3-canary""# : #"Basic realm="s3-canary", charset="UTF-8""#
        guard let authorization, let space = authorization.firstIndex(of: " ") else {
            return .denied(challenge: challenge)
        }
        let scheme = authorization[..<space].lowercased()
        let credential = authorization[authorization.index(after: space)...].trimmingCharacters(in: .whitespaces)
        switch scheme {
        case "bearer":
            guard let expected = rules.tokenDigest else { return .denied(challenge: challenge) }
            let given = Array(SHA256.hash(data: Data(credential.utf8)))
            return Self.constantTimeEqual(given, expected) ? .allowed : .denied(challenge: challenge)
        case "basic":
            guard let decoded = Data(base64Encoded: credential), let pair = String(data: decoded, encoding: .utf8),
                let colon = pair.firstIndex(of: ":")
            else { return .denied(challenge: challenge) }
            let user = String(pair[..<colon])
            let password = String(pair[pair.index(after: colon)...])
            // An unknown user still costs a comparison against a dummy hash, so timing does not reveal user names.
            let hash = rules.users[user] ?? Self.dummyHash
            let digest = Array(HMAC<SHA256>.authenticationCode(for: Data(pair.utf8), using: self.cacheKey))
            if self.state.withLock({ $0.verified.contains(digest) }), rules.users[user] != nil { return .allowed }
            let verified = try? await NIOThreadPool.singleton.runIfActive {
                Self.bcryptMatches(password: password, hash: hash)
            }
            let matches = verified == true && rules.users[user] != nil
            if matches {
                self.state.withLock { state in
                    if state.verified.count > 256 { state.verified.removeAll() }
                    state.verified.insert(digest)
                }
                return .allowed
            }
            return .denied(challenge: challenge)
        default:
            return .denied(challenge: challenge)
        }
    }

    /// A valid bcrypt hash of a random password, compared against for unknown users.
    static let dummyHash = "$2b$10$C7Wq3m3rUqvGoxYv1rYpNuoZ6cMfqsH7XJW3Yw0fN6nVYwqS4H7L6"

    /// Whether `password` hashes to `hash` (bcrypt, with the hash's own salt and cost), through hummingbird-auth's
    /// public `Bcrypt.verify`.
    ///
    /// Its final comparison stops at the first differing byte (hummingbird-auth 2.5.0 `Sources/CBcrypt/bcrypt.c`
    /// defines `timingsafe_bcmp` as `memcmp`). What that can leak is how many leading characters of a bcrypt output
    /// match the stored one, and a client cannot steer that output without knowing the salt, so it tells nothing about
    /// the password; the hash's own cost dominates the time. Slow by design (tens of milliseconds): callers run it
    /// on NIO's blocking pool, never on the cooperative threads.
    static func bcryptMatches(password: String, hash: String) -> Bool {
        guard BcryptHash.isValid(hash) else { return false }
        // `$2y$` (htpasswd's) is `$2b$` under another name; the C library knows only the latter.
        let hash = hash.hasPrefix("$2y$") ? "$2b$" + hash.dropFirst(4) : hash
        return Bcrypt.verify(password, hash: hash)
    }

    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        var difference: UInt8 = 0
        for index in a.indices { difference |= a[index] ^ b[index] }
        return difference == 0
    }
}
