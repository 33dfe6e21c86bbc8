import Foundation
import NIOCore
import ObjectStorage
import Testing

/// The real Ceph RGW that `scripts/test.sh` starts, read from the environment it exports.
///
/// A missing variable fails the test with the reason: integration tests never pass by skipping.
struct RGWEnvironment {
    var endpoint: String
    var virtualHostEndpoint: String
    var accessKey: String
    var secretKey: String

    static let pathBucket = "canary-path"
    static let virtualHostBucket = "canary-vh"
    static let miscBucket = "canary-misc"
    /// A backend's `credentials:` value that reads the test keys from the environment scripts/test.sh exports.
    static let credentialsFromEnvironment =
        "{access_key_id_env: S3CANARY_TEST_RGW_ACCESS_KEY, secret_access_key_env: S3CANARY_TEST_RGW_SECRET_KEY}"

    static func load() throws -> RGWEnvironment {
        let env = ProcessInfo.processInfo.environment
        func value(_ name: String) throws -> String {
            guard let value = env[name], !value.isEmpty else {
                throw RGWMissing(variable: name)
            }
            return value
        }
        return RGWEnvironment(
            endpoint: try value("S3CANARY_TEST_RGW_ENDPOINT"),
            virtualHostEndpoint: try value("S3CANARY_TEST_RGW_VH_ENDPOINT"),
            accessKey: try value("S3CANARY_TEST_RGW_ACCESS_KEY"),
            secretKey: try value("S3CANARY_TEST_RGW_SECRET_KEY")
        )
    }

    struct RGWMissing: Error, CustomStringConvertible {
        var variable: String
        var description: String {
            "\(self.variable) is not set: run the integration tests through scripts/test.sh, which starts Ceph RGW"
        }
    }

    /// A whole configuration with one backend, `rgw`, on the misc bucket, probed every 2 s with the keys from the
    /// environment: what the release binary and its image run (`name` sets the instance and the key prefix).
    func oneBackendConfiguration(name: String, port: Int, stateDir: String) -> String {
        """
        listen: 127.0.0.1:\(port)
        instance: \(name)-test
        state_dir: \(stateDir)
        probe: {interval: 2s, timeout: 1s, key_prefix: .s3-canary-\(name)/}
        backends:
          - name: rgw
            endpoint: \(self.endpoint)
            bucket: \(Self.miscBucket)
            credentials: \(Self.credentialsFromEnvironment)
        """
    }

    /// The RGW's port on loopback.
    var port: Int { Int(self.endpoint.split(separator: ":").last ?? "") ?? 7480 }

    var credentials: StaticCredentialsProvider {
        StaticCredentialsProvider(Credentials(accessKeyID: self.accessKey, secretAccessKey: self.secretKey))
    }

    func configuration(
        _ addressing: S3Backend.Configuration.Addressing, bucket: String? = nil
    ) -> S3Backend.Configuration {
        var configuration = S3Backend.Configuration(
            endpoint: addressing == .path ? self.endpoint : self.virtualHostEndpoint,
            bucket: bucket ?? (addressing == .path ? Self.pathBucket : Self.virtualHostBucket),
            addressing: addressing
        )
        configuration.timeouts = .init(connect: .seconds(3), request: .seconds(10))
        return configuration
    }

    /// Runs `body` with a backend and always shuts its HTTP client down.
    @discardableResult
    func withBackend<T>(
        _ configuration: S3Backend.Configuration,
        credentials: (any CredentialsProvider)? = nil,
        _ body: (S3Backend) async throws -> T
    ) async throws -> T {
        let backend = try S3Backend(configuration: configuration, credentials: credentials ?? self.credentials)
        do {
            let result = try await body(backend)
            try await backend.shutdown()
            return result
        } catch {
            try? await backend.shutdown()
            throw error
        }
    }
}

/// A unique prefix per test, so parallel tests and reruns never see each other's objects.
func uniquePrefix(_ name: String) -> String {
    "it/\(name)/\(UUID().uuidString.prefix(8))/"
}

func randomBytes(_ count: Int) -> ByteBuffer {
    var buffer = ByteBuffer()
    buffer.reserveCapacity(count)
    for _ in 0..<count { buffer.writeInteger(UInt8.random(in: 0...255)) }
    return buffer
}
