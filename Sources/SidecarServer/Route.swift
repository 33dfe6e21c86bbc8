import Hummingbird

/// Every route of the HTTP endpoint: its path, the methods it answers and whether it asks for credentials. The
/// router and ``EndpointGuard`` both read this table, so a path is spelled in one place (docs/design.md, "Routes").
public enum Route: String, CaseIterable, Sendable {
    case metrics = "/metrics"
    case healthz = "/healthz"
    case readyz = "/readyz"
    case status = "/status"
    case statusPage = "/"
    case probe = "/probe"
    case reload = "/-/reload"

    /// The path as requested.
    public var path: String { self.rawValue }

    /// The methods it answers; `HEAD` is answered as `GET` without a body.
    var methods: [HTTPRequest.Method] {
        switch self {
        case .reload: [.post]
        default: [.get, .head]
        }
    }

    /// Liveness probes need no secret; everything else is behind the `server:` section's credentials.
    var requiresCredentials: Bool { self != .healthz }

    /// The route of a request path, if it is one of ours.
    static func matching(_ path: String) -> Route? { Route(rawValue: path) }

    /// How to reach the pages a person would try, for the 404 text.
    static var suggestion: String {
        "try " + [Route.statusPage, .metrics, .status, .healthz, .readyz].map(\.path).joined(separator: ", ")
            + " or \(Route.probe.path)?backend=NAME"
    }
}
