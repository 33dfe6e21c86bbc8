import Foundation
import ObjectStorage
import Yams

/// `server:`: who may reach the HTTP endpoint, and its request limits.
public enum ServerKey: String, ConfigSectionKey {
    case tls
    case basicAuthUsers = "basic_auth_users"
    case bearerToken = "bearer_token"
    case maxHeaderBytes = "max_header_bytes"
    case maxBodyBytes = "max_body_bytes"
    case idleTimeout = "idle_timeout"

    public static let section = "server"
    public static let summary =
        "Who may reach the HTTP endpoint (all optional; exporter-toolkit's web config in spirit)."

    public var spec: ConfigKeySpec {
        switch self {
        case .tls:
            .init(
                .section(ServerTLSKey.section),
                "Serve HTTPS with this PEM certificate and key, read again on every reload (turning TLS on or off "
                    + "needs a restart)."
            )
        case .basicAuthUsers:
            .init(
                .mapping("user name to bcrypt hash"),
                "Basic auth users; bcrypt hashes only (htpasswd -nbBC 10 USER PASSWORD).")
        case .bearerToken:
            .init(
                .string, secret: true,
                "A bearer token every request must carry; at least 16 characters (openssl rand -hex 32).")
        case .maxHeaderBytes: .init(.size(1024...(1 << 20)), default: "16KiB", "Larger request headers get 400.")
        case .maxBodyBytes:
            .init(.size(0...(1 << 20)), default: "4KiB", "Larger request bodies get 413 (chunked bodies 411).")
        case .idleTimeout:
            .init(
                .duration(min: .seconds(1), max: .seconds(3600)), default: "60s",
                "Idle keep-alive connections are closed after this.")
        }
    }
}

/// `server.tls:`: the endpoint's certificate.
public enum ServerTLSKey: String, ConfigSectionKey {
    case certificateFile = "cert_file"
    case keyFile = "key_file"

    public static let section = "server.tls"
    public static let summary = "The HTTP endpoint's certificate; both files are read at start and on every reload."

    public var spec: ConfigKeySpec {
        switch self {
        case .certificateFile: .init(.string, required: true, "The PEM certificate chain file.")
        case .keyFile: .init(.string, required: true, "The PEM private key file.")
        }
    }
}

extension Reader {
    /// `server:`: endpoint TLS, basic auth users (bcrypt hashes only) or a bearer token, request limits.
    mutating func server(_ node: Node, _ path: String) -> CanaryConfiguration.Server {
        var server = CanaryConfiguration.Server()
        guard let map = self.section(node, path, ServerKey.self) else { return server }
        if let (tlsNode, tlsPath) = map[.tls], let tls = self.section(tlsNode, tlsPath, ServerTLSKey.self) {
            let cert = self.string(tls, .certificateFile)
            let key = self.string(tls, .keyFile)
            if !tls.has(.certificateFile) {
                self.problem(tls.path(.certificateFile), "is required with tls; give the PEM certificate chain file")
            }
            if !tls.has(.keyFile) {
                self.problem(tls.path(.keyFile), "is required with tls; give the PEM private key file")
            }
            if let cert, let key {
                let files = CanaryConfiguration.Server.TLSFiles(certificateFile: cert, keyFile: key)
                server.tls = files
                self.afterParsing { reader, _ in
                    do throws(ConfigurationError) {
                        _ = try TLSMaterial(files)
                    } catch {
                        for problem in error.problems { reader.problem(problem.field, problem.message) }
                    }
                }
            }
        }
        if let (usersNode, usersPath) = map[.basicAuthUsers] {
            if case .mapping(let users) = usersNode {
                for (userNode, hashNode) in users {
                    guard case .scalar(let user) = userNode, !user.string.isEmpty, !user.string.contains(":") else {
                        self.problem(usersPath, "user names must be non-empty plain strings without ':'")
                        continue
                    }
                    let hashPath = "\(usersPath).\(user.string)"
                    guard let hash = self.string(hashNode, hashPath) else { continue }
                    if BcryptHash.isValid(hash) {
                        server.basicAuthUsers[user.string] = hash
                    } else {
                        // Never echo the value: it may be a password pasted by mistake.
                        self.problem(
                            hashPath,
                            """
                            is not a bcrypt hash ($2a$, $2b$ or $2y$, 60 characters); \
                            store a hash, never the password: htpasswd -nbBC 10 USER PASSWORD
                            """
                        )
                    }
                }
            } else {
                self.problem(usersPath, "must be a mapping of user name to bcrypt hash, not \(Self.kind(usersNode))")
            }
        }
        if let (source, sourcePath) = self.secretSource(map, .bearerToken) {
            // Kept as its source (the endpoint reads it again on reload); read here only to check it.
            server.bearerToken = source
            self.resolveLater(source, sourcePath) { reader, _, token in
                if token.count < 16 {
                    reader.problem(
                        sourcePath, "is shorter than 16 characters; use a long random token (openssl rand -hex 32)")
                }
            }
        }
        if let bytes = self.size(map, .maxHeaderBytes) { server.maxHeaderBytes = bytes }
        if let bytes = self.size(map, .maxBodyBytes) { server.maxBodyBytes = bytes }
        if let timeout = self.duration(map, .idleTimeout) { server.idleTimeout = timeout }
        return server
    }
}
