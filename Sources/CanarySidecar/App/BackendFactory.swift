import Foundation
import Logging
import ObjectStorage

/// A backend the service owns: what probes go through, and how to release it.
public struct OwnedBackend: Sendable {
    public var backend: any ObjectBackend
    public var shutdown: @Sendable () async -> Void

    public init(backend: any ObjectBackend, shutdown: @escaping @Sendable () async -> Void = {}) {
        self.backend = backend
        self.shutdown = shutdown
    }
}

/// Makes the real backend of a configuration entry. The demo and tests swap in in-memory backends.
public struct BackendFactory: Sendable {
    public var make: @Sendable (CanaryConfiguration.Backend, Logger) throws -> OwnedBackend

    public init(make: @escaping @Sendable (CanaryConfiguration.Backend, Logger) throws -> OwnedBackend) {
        self.make = make
    }

    /// S3 over HTTP, with the credentials the entry names.
    public static let s3 = BackendFactory { entry, logger in
        let provider = try Self.credentialsProvider(entry.credentials, field: "backends.\(entry.name).credentials")
        var backendLogger = logger
        backendLogger[metadataKey: "canary.backend"] = "\(entry.name)"
        let backend = try S3Backend(configuration: entry.s3, credentials: provider, logger: backendLogger)
        if !entry.s3.tls.verifyCertificates {
            logger.warning(
                "TLS certificate verification is off for this backend",
                metadata: ["canary.backend": "\(entry.name)"]
            )
        }
        return OwnedBackend(backend: backend, shutdown: { try? await backend.shutdown() })
    }

    static func credentialsProvider(_ credentials: CanaryConfiguration.Credentials, field: String) throws
        -> any CredentialsProvider
    {
        switch credentials {
        case .keys(let keyID, let secret, let token):
            return StaticCredentialsProvider(
                Credentials(
                    accessKeyID: try keyID.resolve(field: "\(field).access_key_id"),
                    secretAccessKey: try secret.resolve(field: "\(field).secret_access_key"),
                    sessionToken: try token?.resolve(field: "\(field).session_token")
                )
            )
        case .environment:
            return EnvironmentCredentialsProvider()
        case .profile(let profile):
            return ProfileCredentialsProvider(profile: profile)
        case .defaultChain(let profile):
            return ChainCredentialsProvider([EnvironmentCredentialsProvider(), ProfileCredentialsProvider(profile: profile)])
        }
    }
}
