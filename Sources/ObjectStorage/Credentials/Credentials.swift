import Foundation

/// An access key pair, and a session token for temporary credentials.
///
/// `description` never prints the secret or the token, so a credentials value logged by mistake leaks nothing.
public struct Credentials: Sendable, Equatable, CustomStringConvertible {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?
    /// When temporary credentials stop working; `nil` for long-lived keys.
    public var expiration: Date?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil, expiration: Date? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.expiration = expiration
    }

    public var description: String {
        "Credentials(accessKeyID: \(self.accessKeyID), secret: <redacted>\(self.sessionToken == nil ? "" : ", session token: <redacted>"))"
    }
}

/// Where a backend gets its credentials from.
///
/// The signer only ever asks a provider; adding a source (web identity, container endpoint, instance metadata)
/// means adding a provider, not touching the signer.
public protocol CredentialsProvider: Sendable {
    /// Returns credentials valid for at least the next request, or throws a ``CredentialsError``.
    func credentials() async throws -> Credentials
}

/// Why no credentials could be had, naming the source and the fix.
public struct CredentialsError: Error, Sendable, CustomStringConvertible {
    /// The source that failed, such as `environment` or `profile default`.
    public var source: String
    public var message: String

    public init(source: String, message: String) {
        self.source = source
        self.message = message
    }

    public var description: String { "credentials (\(self.source)): \(self.message)" }
}

/// Fixed keys, read once when the backend is configured.
public struct StaticCredentialsProvider: CredentialsProvider {
    public var value: Credentials

    public init(_ value: Credentials) {
        self.value = value
    }

    public func credentials() async throws -> Credentials { self.value }
}

/// The standard variables `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`.
public struct EnvironmentCredentialsProvider: CredentialsProvider {
    private let environment: @Sendable () -> [String: String]

    public init() {
        self.environment = { ProcessInfo.processInfo.environment }
    }

    /// For tests: read from `environment` instead of the process's.
    public init(environment: [String: String]) {
        self.environment = { environment }
    }

    public func credentials() async throws -> Credentials {
        let env = self.environment()
        guard let key = env["AWS_ACCESS_KEY_ID"], !key.isEmpty else {
            throw CredentialsError(source: "environment", message: "AWS_ACCESS_KEY_ID is not set")
        }
        guard let secret = env["AWS_SECRET_ACCESS_KEY"], !secret.isEmpty else {
            throw CredentialsError(source: "environment", message: "AWS_SECRET_ACCESS_KEY is not set")
        }
        let token = env["AWS_SESSION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 }
        return Credentials(accessKeyID: key, secretAccessKey: secret, sessionToken: token)
    }
}
