/// Tries providers in order and uses the first that yields credentials, as the AWS SDKs' default chain does.
///
/// Today the chain is environment then shared profile files; the cloud sources (web identity, container
/// endpoint, IMDSv2) slot in after them without touching the signer.
public struct ChainCredentialsProvider: CredentialsProvider {
    /// The providers, in the order they are tried.
    public var providers: [any CredentialsProvider]

    /// A chain that tries `providers` in order.
    public init(_ providers: [any CredentialsProvider]) {
        self.providers = providers
    }

    /// The credentials of the first provider that has them; a ``CredentialsError`` listing every failure if none has.
    public func credentials() async throws -> Credentials {
        var failures: [String] = []
        for provider in self.providers {
            do {
                return try await provider.credentials()
            } catch let error as CredentialsError {
                failures.append(error.description)
            }
        }
        throw CredentialsError(
            source: "default chain",
            message: "no source had credentials: " + failures.joined(separator: "; ")
        )
    }
}
