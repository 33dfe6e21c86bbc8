public import Foundation

/// An access key pair, and a session token for temporary credentials.
///
/// `description` never prints the secret or the token, so a credentials value logged by mistake leaks nothing.
public struct Credentials: Sendable, Equatable, CustomStringConvertible {
    /// The access key ID; not secret, and safe to log.
    public var accessKeyID: String
    /// The secret access key.
    public var secretAccessKey: String
    /// The session token of temporary credentials; `nil` for long-lived keys.
    public var sessionToken: String?
    /// When temporary credentials stop working; `nil` for long-lived keys.
    public var expiration: Date?

    /// Credentials from their parts.
    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil, expiration: Date? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
        self.expiration = expiration
    }

    /// The access key ID, with the secret and the token redacted.
    public var description: String {
        """
        Credentials(accessKeyID: \(self.accessKeyID), secret: <redacted>\
        \(self.sessionToken == nil ? "" : ", session token: <redacted>"))
        """
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
    /// What went wrong and how to fix it.
    public var message: String

    /// An error of `source`, explained by `message`.
    public init(source: String, message: String) {
        self.source = source
        self.message = message
    }

    /// `credentials (<source>): <message>`, for logs and problem lists.
    public var description: String { "credentials (\(self.source)): \(self.message)" }
}

/// Fixed keys, read once when the backend is configured.
public struct StaticCredentialsProvider: CredentialsProvider {
    /// The keys handed out.
    public var value: Credentials

    /// A provider that always answers `value`.
    public init(_ value: Credentials) {
        self.value = value
    }

    /// The fixed keys.
    public func credentials() async throws -> Credentials { self.value }
}

/// The standard variables `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY` and `AWS_SESSION_TOKEN`.
public struct EnvironmentCredentialsProvider: CredentialsProvider {
    private let environment: @Sendable () -> [String: String]

    /// A provider reading this process's environment on every call.
    public init() {
        self.environment = { ProcessInfo.processInfo.environment }
    }

    /// For tests: read from `environment` instead of the process's.
    public init(environment: [String: String]) {
        self.environment = { environment }
    }

    /// The keys the variables hold now; throws a ``CredentialsError`` when the key ID or secret is unset.
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
