import Foundation
import Yams

/// `backends[].credentials:`: how a backend's requests are signed.
public enum CredentialsKey: String, ConfigSectionKey {
    case source, profile
    case accessKeyID = "access_key_id"
    case secretAccessKey = "secret_access_key"
    case sessionToken = "session_token"

    public static let section = "backends[].credentials"
    public static let summary =
        "Static keys, or a source of temporary credentials (cached and refreshed five minutes before they expire)."

    /// The sources, with what each reads.
    static let sources: [(name: String, reads: String)] = [
        ("static", "the keys given here (the default when keys are given)"),
        ("environment", "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN"),
        ("profile", "the shared credentials and config files (AWS_PROFILE and friends)"),
        ("web_identity", "AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN, through STS AssumeRoleWithWebIdentity"),
        ("container", "AWS_CONTAINER_CREDENTIALS_FULL_URI or _RELATIVE_URI (ECS, EKS Pod Identity)"),
        ("imds", "EC2 instance metadata v2"),
        ("default_chain", "the SDKs' order: environment, profile files, web identity, container, IMDSv2"),
    ]

    public var spec: ConfigKeySpec {
        switch self {
        case .source:
            .init(
                .choice(Self.sources.map(\.name)),
                "Where credentials come from: "
                    + Self.sources.map { "\($0.name) (\($0.reads))" }.joined(separator: "; ") + ".")
        case .profile: .init(.string, "The profile the profile and default_chain sources read.")
        case .accessKeyID: .init(.string, secret: true, "The access key ID (static keys).")
        case .secretAccessKey: .init(.string, secret: true, "The secret access key (static keys).")
        case .sessionToken: .init(.string, secret: true, "A session token, with temporary static keys.")
        }
    }
}

extension Reader {
    mutating func credentials(_ node: Node, _ path: String) -> CanaryConfiguration.Credentials? {
        guard let map = self.section(node, path, CredentialsKey.self) else { return nil }
        func secret(_ key: CredentialsKey) -> SecretSource? {
            guard let (source, sourcePath) = self.secretSource(map, key) else { return nil }
            // Kept as its source (read when signing); files and variables are read in the resolution pass, so a
            // missing one fails validation rather than the first probe.
            if case .value = source {} else { self.resolveLater(source, sourcePath) }
            return source
        }
        let keyID = secret(.accessKeyID)
        let secretKey = secret(.secretAccessKey)
        let token = secret(.sessionToken)
        let source = self.string(map, .source)
        let profile = self.string(map, .profile)
        let givenKeys = map.has(.accessKeyID) || map.has(.secretAccessKey)
        switch source ?? (givenKeys ? "static" : nil) {
        case "static":
            guard let keyID, let secretKey else {
                if keyID == nil && !map.has(.accessKeyID) {
                    self.problem(
                        map.path(.accessKeyID), "is missing; give it (or access_key_id_env / access_key_id_file)")
                }
                if secretKey == nil && !map.has(.secretAccessKey) {
                    self.problem(
                        map.path(.secretAccessKey), "is missing; give secret_access_key_file (or _env, or the value)")
                }
                return nil
            }
            return .keys(accessKeyID: keyID, secretAccessKey: secretKey, sessionToken: token)
        case "environment":
            return .environment
        case "profile":
            return .profile(profile)
        case "web_identity":
            return .webIdentity
        case "container":
            return .container
        case "imds":
            return .instanceMetadata
        case "default_chain":
            return .defaultChain(profile: profile)
        case nil:
            self.problem(
                path,
                """
                gives neither keys nor a source; add access_key_id and secret_access_key_file, \
                or source: environment | profile | default_chain
                """
            )
            return nil
        case let other?:
            self.problem(
                map.path(.source),
                "\"\(other)\" is not static, environment, profile, web_identity, container, imds or default_chain")
            return nil
        }
    }
}
