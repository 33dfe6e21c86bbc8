import AsyncHTTPClient
import Foundation
import NIOCore
import NIOFoundationCompat
import NIOHTTP1

/// Parses the timestamps AWS credential sources use (`2026-11-25T12:00:00Z`, with or without fractions).
func parseAWSDate(_ text: String?) -> Date? {
    guard let text else { return nil }
    let formatter = ISO8601DateFormatter()
    formatter.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
    if let date = formatter.date(from: text) { return date }
    formatter.formatOptions = [.withInternetDateTime]
    return formatter.date(from: text)
}

/// Sends one small request with the shared HTTP client and returns status and body.
func fetchSmall(
    _ url: String,
    method: HTTPMethod = .GET,
    headers: [(String, String)] = [],
    body: String? = nil,
    timeout: Duration = .seconds(5),
    source: String
) async throws -> (Int, String) {
    var request = HTTPClientRequest(url: url)
    request.method = method
    for (name, value) in headers { request.headers.add(name: name, value: value) }
    if let body {
        request.body = .bytes(ByteBuffer(string: body))
    }
    do {
        let response = try await HTTPClient.shared.execute(request, timeout: timeout.timeAmount)
        let data = try await response.body.collect(upTo: 1 << 20)
        return (Int(response.status.code), String(buffer: data))
    } catch {
        throw CredentialsError(source: source, message: "request failed: \(type(of: error))")
    }
}

/// A credentials JSON document of the container endpoint and instance metadata.
struct CredentialsDocument: Decodable {
    var AccessKeyId: String
    var SecretAccessKey: String
    var Token: String?
    var Expiration: String?

    func credentials() -> Credentials {
        Credentials(
            accessKeyID: self.AccessKeyId,
            secretAccessKey: self.SecretAccessKey,
            sessionToken: self.Token,
            expiration: parseAWSDate(self.Expiration)
        )
    }
}

/// `AssumeRoleWithWebIdentity` with the token in `AWS_WEB_IDENTITY_TOKEN_FILE` (Kubernetes service-account tokens,
/// EKS IRSA). The token file is re-read on every fetch: Kubernetes rotates it.
public struct WebIdentityCredentialsFetcher: CredentialsFetcher {
    /// Path of the web identity token, read again on every fetch.
    public var tokenFile: String
    /// The role to assume.
    public var roleARN: String
    /// The session name the assumed role is known by.
    public var sessionName: String
    /// `AWS_ENDPOINT_URL_STS`, else the regional STS endpoint.
    public var stsEndpoint: String
    /// `web identity`.
    public var sourceName: String { "web identity" }

    /// A fetcher for `roleARN` with the token in `tokenFile`, asking the STS at `stsEndpoint`.
    public init(tokenFile: String, roleARN: String, sessionName: String, stsEndpoint: String) {
        self.tokenFile = tokenFile
        self.roleARN = roleARN
        self.sessionName = sessionName
        self.stsEndpoint = stsEndpoint
    }

    /// From the standard variables; `nil` when `AWS_WEB_IDENTITY_TOKEN_FILE` or `AWS_ROLE_ARN` is missing.
    public init?(environment: [String: String], region: String) {
        guard let file = environment["AWS_WEB_IDENTITY_TOKEN_FILE"], !file.isEmpty,
            let role = environment["AWS_ROLE_ARN"], !role.isEmpty
        else { return nil }
        let endpoint =
            environment["AWS_ENDPOINT_URL_STS"].flatMap { $0.isEmpty ? nil : $0 }
            ?? "https://sts.\(region).amazonaws.com"
        self.init(
            tokenFile: file,
            roleARN: role,
            sessionName: environment["AWS_ROLE_SESSION_NAME"].flatMap { $0.isEmpty ? nil : $0 } ?? "s3-canary",
            stsEndpoint: endpoint
        )
    }

    /// Calls `AssumeRoleWithWebIdentity` with the current token.
    public func fetch() async throws -> Credentials {
        guard let data = FileManager.default.contents(atPath: self.tokenFile) else {
            throw CredentialsError(source: self.sourceName, message: "cannot read the token file \(self.tokenFile)")
        }
        let token = String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        func form(_ value: String) -> String { S3URIEncoding.encode(value, keepSlash: false) }
        let body = [
            "Action=AssumeRoleWithWebIdentity", "Version=2011-06-15", "RoleArn=\(form(self.roleARN))",
            "RoleSessionName=\(form(self.sessionName))", "WebIdentityToken=\(form(token))",
        ].joined(separator: "&")
        let (status, text) = try await fetchSmall(
            self.stsEndpoint, method: .POST,
            headers: [("Content-Type", "application/x-www-form-urlencoded"), ("Accept", "application/xml")],
            body: body, source: self.sourceName
        )
        let root = try? XMLElement.parse(Array(text.utf8))
        guard status == 200, let result = root?.child("AssumeRoleWithWebIdentityResult")?.child("Credentials"),
            let key = result.text(of: "AccessKeyId"), let secret = result.text(of: "SecretAccessKey")
        else {
            let code = root?.child("Error")?.text(of: "Code") ?? root?.text(of: "Code") ?? "HTTP \(status)"
            throw CredentialsError(source: self.sourceName, message: "STS refused AssumeRoleWithWebIdentity: \(code)")
        }
        return Credentials(
            accessKeyID: key,
            secretAccessKey: secret,
            sessionToken: result.text(of: "SessionToken"),
            expiration: parseAWSDate(result.text(of: "Expiration"))
        )
    }
}

/// The ECS/EKS container credentials endpoint (`AWS_CONTAINER_CREDENTIALS_FULL_URI` or `_RELATIVE_URI`), with the
/// authorization token from `AWS_CONTAINER_AUTHORIZATION_TOKEN` or the file in `_TOKEN_FILE` (re-read each time).
public struct ContainerCredentialsFetcher: CredentialsFetcher {
    /// The credentials endpoint's full URL.
    public var url: String
    /// The authorization token, when given as a value.
    public var token: String?
    /// The file holding the authorization token, read again on every fetch.
    public var tokenFile: String?
    /// `container endpoint`.
    public var sourceName: String { "container endpoint" }

    /// A fetcher for the endpoint at `url`, authorized with `token` or the contents of `tokenFile`.
    public init(url: String, token: String? = nil, tokenFile: String? = nil) {
        self.url = url
        self.token = token
        self.tokenFile = tokenFile
    }

    /// The fetcher the standard `AWS_CONTAINER_*` variables describe; `nil` when they name no endpoint.
    public init?(environment: [String: String]) {
        let url: String
        if let full = environment["AWS_CONTAINER_CREDENTIALS_FULL_URI"], !full.isEmpty {
            url = full
        } else if let relative = environment["AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"], !relative.isEmpty {
            url = "http://169.254.170.2" + relative
        } else {
            return nil
        }
        self.init(
            url: url,
            token: environment["AWS_CONTAINER_AUTHORIZATION_TOKEN"].flatMap { $0.isEmpty ? nil : $0 },
            tokenFile: environment["AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"].flatMap { $0.isEmpty ? nil : $0 }
        )
    }

    /// Asks the container endpoint for the task's credentials.
    public func fetch() async throws -> Credentials {
        var headers: [(String, String)] = [("Accept", "application/json")]
        if let tokenFile = self.tokenFile {
            guard let data = FileManager.default.contents(atPath: tokenFile) else {
                throw CredentialsError(source: self.sourceName, message: "cannot read the token file \(tokenFile)")
            }
            headers.append(
                ("Authorization", String(decoding: data, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
            )
        } else if let token = self.token {
            headers.append(("Authorization", token))
        }
        let (status, text) = try await fetchSmall(self.url, headers: headers, source: self.sourceName)
        guard status == 200, let document = try? JSONDecoder().decode(CredentialsDocument.self, from: Data(text.utf8))
        else {
            throw CredentialsError(
                source: self.sourceName, message: "the endpoint answered HTTP \(status) without credentials")
        }
        return document.credentials()
    }
}

/// EC2 instance metadata, version 2: a session token from `PUT /latest/api/token`, then the role's credentials.
/// The endpoint is `AWS_EC2_METADATA_SERVICE_ENDPOINT` (default `http://169.254.169.254`);
/// `AWS_EC2_METADATA_DISABLED=true` turns it off.
public struct InstanceMetadataCredentialsFetcher: CredentialsFetcher {
    /// Base URL of the instance metadata service, without a trailing slash.
    public var endpoint: String
    /// `IMDSv2`.
    public var sourceName: String { "IMDSv2" }

    /// A fetcher asking the metadata service at `endpoint`.
    public init(endpoint: String = "http://169.254.169.254") {
        self.endpoint = endpoint.hasSuffix("/") ? String(endpoint.dropLast()) : endpoint
    }

    /// The fetcher the `AWS_EC2_METADATA_*` variables describe; `nil` when `AWS_EC2_METADATA_DISABLED` is `true`.
    public init?(environment: [String: String]) {
        if environment["AWS_EC2_METADATA_DISABLED"]?.lowercased() == "true" { return nil }
        self.init(
            endpoint: environment["AWS_EC2_METADATA_SERVICE_ENDPOINT"].flatMap { $0.isEmpty ? nil : $0 }
                ?? "http://169.254.169.254")
    }

    /// Gets a session token, then the credentials of the instance's role.
    public func fetch() async throws -> Credentials {
        let (tokenStatus, token) = try await fetchSmall(
            "\(self.endpoint)/latest/api/token", method: .PUT,
            headers: [("X-aws-ec2-metadata-token-ttl-seconds", "21600")], timeout: .seconds(2), source: self.sourceName
        )
        guard tokenStatus == 200, !token.isEmpty else {
            throw CredentialsError(source: self.sourceName, message: "no session token (HTTP \(tokenStatus))")
        }
        let auth = [("X-aws-ec2-metadata-token", token.trimmingCharacters(in: .whitespacesAndNewlines))]
        let base = "\(self.endpoint)/latest/meta-data/iam/security-credentials/"
        let (roleStatus, roles) = try await fetchSmall(
            base, headers: auth, timeout: .seconds(2), source: self.sourceName)
        guard roleStatus == 200, let role = roles.split(separator: "\n").first.map(String.init), !role.isEmpty else {
            throw CredentialsError(source: self.sourceName, message: "no instance role (HTTP \(roleStatus))")
        }
        let (status, text) = try await fetchSmall(
            base + S3URIEncoding.encode(role, keepSlash: false), headers: auth, timeout: .seconds(2),
            source: self.sourceName
        )
        guard status == 200, let document = try? JSONDecoder().decode(CredentialsDocument.self, from: Data(text.utf8))
        else {
            throw CredentialsError(source: self.sourceName, message: "no credentials for role \(role) (HTTP \(status))")
        }
        return document.credentials()
    }
}
