public import Foundation

/// Keys from the shared `credentials` and `config` files, as the AWS CLI and SDKs write them.
///
/// The profile is the one given, else `AWS_PROFILE`, else `default`. The files are
/// `AWS_SHARED_CREDENTIALS_FILE` (default `~/.aws/credentials`, sections `[name]`) and `AWS_CONFIG_FILE`
/// (default `~/.aws/config`, sections `[profile name]` or `[default]`); the credentials file wins.
/// Files are read on every call, so rotated keys are picked up without a restart.
public struct ProfileCredentialsProvider: CredentialsProvider {
    /// The profile whose keys are read.
    public var profile: String
    /// Path of the shared credentials file.
    public var credentialsFile: String
    /// Path of the shared config file.
    public var configFile: String

    /// A provider for `profile`, with the file paths and the default profile taken from `environment`.
    public init(profile: String? = nil, environment: [String: String] = ProcessInfo.processInfo.environment) {
        let home = environment["HOME"] ?? NSHomeDirectory()
        self.profile = profile ?? environment["AWS_PROFILE"].flatMap { $0.isEmpty ? nil : $0 } ?? "default"
        self.credentialsFile = environment["AWS_SHARED_CREDENTIALS_FILE"] ?? "\(home)/.aws/credentials"
        self.configFile = environment["AWS_CONFIG_FILE"] ?? "\(home)/.aws/config"
    }

    /// Reads the profile's keys from the files now.
    public func credentials() async throws -> Credentials {
        let source = "profile \(self.profile)"
        let fromCredentials = Self.readINI(path: self.credentialsFile)?[self.profile]
        let configSection = self.profile == "default" ? "default" : "profile \(self.profile)"
        let fromConfig = Self.readINI(path: self.configFile)?[configSection]
        guard fromCredentials != nil || fromConfig != nil else {
            throw CredentialsError(
                source: source,
                message: "no [\(self.profile)] section in \(self.credentialsFile) "
                    + "and no [\(configSection)] in \(self.configFile); create it or set AWS_PROFILE"
            )
        }
        func value(_ key: String) -> String? {
            let found = fromCredentials?[key] ?? fromConfig?[key]
            return found.flatMap { $0.isEmpty ? nil : $0 }
        }
        guard let key = value("aws_access_key_id"), let secret = value("aws_secret_access_key") else {
            throw CredentialsError(
                source: source,
                message: "the profile has no aws_access_key_id and aws_secret_access_key"
            )
        }
        return Credentials(accessKeyID: key, secretAccessKey: secret, sessionToken: value("aws_session_token"))
    }

    /// Parses an INI file into sections of `key = value`; `nil` when the file cannot be read.
    static func readINI(path: String) -> [String: [String: String]]? {
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        return self.parseINI(String(decoding: data, as: UTF8.self))
    }

    static func parseINI(_ text: String) -> [String: [String: String]] {
        var sections: [String: [String: String]] = [:]
        var current: String?
        for rawLine in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            let line = rawLine.trimmingCharacters(in: .whitespaces)
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            if line.hasPrefix("[") && line.hasSuffix("]") {
                let name = line.dropFirst().dropLast().trimmingCharacters(in: .whitespaces)
                // "profile   name" and "profile name" are the same section.
                let parts = name.split(separator: " ", omittingEmptySubsequences: true)
                current = parts.joined(separator: " ")
                if let current, sections[current] == nil { sections[current] = [:] }
                continue
            }
            guard let section = current, let equals = line.firstIndex(of: "=") else { continue }
            let key = line[..<equals].trimmingCharacters(in: .whitespaces).lowercased()
            let value = line[line.index(after: equals)...].trimmingCharacters(in: .whitespaces)
            sections[section, default: [:]][key] = value
        }
        return sections
    }
}
