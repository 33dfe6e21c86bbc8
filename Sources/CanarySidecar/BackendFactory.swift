import Foundation
import Logging
import ObjectStorage
import SidecarCanary
import SidecarConfig
import SidecarServer

/// A backend the service owns: what probes go through, and how to release it.
struct OwnedBackend: Sendable {
    var backend: any ObjectBackend
    var shutdown: @Sendable () async -> Void

    init(backend: any ObjectBackend, shutdown: @escaping @Sendable () async -> Void = {}) {
        self.backend = backend
        self.shutdown = shutdown
    }
}

/// What a factory may report back to the service about a backend it made.
struct BackendContext: Sendable {
    var logger: Logger
    /// Called when refreshing temporary credentials failed (the old ones stay in use until they expire).
    var onCredentialsRefreshFailure: @Sendable (any Error) -> Void
    /// Called with each request's time to first byte and request id, during the canary operation that sent it.
    var onTimeToFirstByte: @Sendable (CanaryConfiguration.Operation, Duration, String?) -> Void
    /// Called as each request ends, with its address, phases, TLS session and the name's answer.
    var onRequestTrace: @Sendable (RequestTrace) -> Void

    init(
        logger: Logger,
        onCredentialsRefreshFailure: @escaping @Sendable (any Error) -> Void = { _ in },
        onTimeToFirstByte: @escaping @Sendable (CanaryConfiguration.Operation, Duration, String?) -> Void = {
            _, _, _ in
        },
        onRequestTrace: @escaping @Sendable (RequestTrace) -> Void = { _ in }
    ) {
        self.logger = logger
        self.onCredentialsRefreshFailure = onCredentialsRefreshFailure
        self.onTimeToFirstByte = onTimeToFirstByte
        self.onRequestTrace = onRequestTrace
    }
}

/// Makes the real backend of a configuration entry. The demo and tests swap in in-memory backends.
public struct BackendFactory: Sendable {
    var make: @Sendable (CanaryConfiguration.Backend, BackendContext) throws -> OwnedBackend

    init(make: @escaping @Sendable (CanaryConfiguration.Backend, BackendContext) throws -> OwnedBackend) {
        self.make = make
    }

    /// S3 over HTTP, with the credentials the entry names.
    public static let s3 = BackendFactory { entry, context in
        let logger = context.logger
        let provider = try Self.credentialsProvider(
            entry.credentials,
            field: "backends.\(entry.name).credentials",
            region: entry.s3.region,
            onRefreshFailure: context.onCredentialsRefreshFailure
        )
        var backendLogger = logger
        backendLogger[metadataKey: "canary.backend"] = "\(entry.name)"
        let backend = try S3Backend(
            configuration: entry.s3,
            credentials: provider,
            logger: backendLogger,
            onResponseHead: { head in
                // Only requests a canary operation sent (not the sweeper's) are measured.
                if let operation = head.label.flatMap(CanaryConfiguration.Operation.init(rawValue:)) {
                    context.onTimeToFirstByte(operation, head.elapsed, head.requestID)
                }
            },
            onRequestTrace: context.onRequestTrace
        )
        if !entry.s3.tls.verifyCertificates {
            logger.warning(
                "TLS certificate verification is off for this backend",
                metadata: ["canary.backend": "\(entry.name)"]
            )
        }
        return OwnedBackend(backend: backend, shutdown: { try? await backend.shutdown() })
    }

    static func credentialsProvider(
        _ credentials: CanaryConfiguration.Credentials,
        field: String,
        region: String,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        onRefreshFailure: @escaping @Sendable (any Error) -> Void
    ) throws -> any CredentialsProvider {
        func refreshing(_ fetcher: any CredentialsFetcher) -> RefreshingCredentialsProvider {
            RefreshingCredentialsProvider(fetcher, onRefreshFailure: onRefreshFailure)
        }
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
        case .webIdentity:
            guard let fetcher = WebIdentityCredentialsFetcher(environment: environment, region: region) else {
                throw ConfigurationError(
                    field: "\(field).source", message: "web_identity needs AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN"
                )
            }
            return refreshing(fetcher)
        case .container:
            guard let fetcher = ContainerCredentialsFetcher(environment: environment) else {
                throw ConfigurationError(
                    field: "\(field).source",
                    message: "container needs AWS_CONTAINER_CREDENTIALS_FULL_URI or _RELATIVE_URI")
            }
            return refreshing(fetcher)
        case .instanceMetadata:
            return refreshing(
                InstanceMetadataCredentialsFetcher(environment: environment) ?? InstanceMetadataCredentialsFetcher())
        case .defaultChain(let profile):
            // The AWS SDKs' order: environment, shared files, web identity, container endpoint, instance metadata.
            var chain: [any CredentialsProvider] = [
                EnvironmentCredentialsProvider(environment: environment),
                ProfileCredentialsProvider(profile: profile, environment: environment),
            ]
            if let fetcher = WebIdentityCredentialsFetcher(environment: environment, region: region) {
                chain.append(refreshing(fetcher))
            }
            if let fetcher = ContainerCredentialsFetcher(environment: environment) { chain.append(refreshing(fetcher)) }
            if let fetcher = InstanceMetadataCredentialsFetcher(environment: environment) {
                chain.append(refreshing(fetcher))
            }
            return ChainCredentialsProvider(chain)
        }
    }
}
