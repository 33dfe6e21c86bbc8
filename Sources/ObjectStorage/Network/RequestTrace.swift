public import Foundation

/// The phases of one HTTP request, in order. A phase that did not happen (no DNS lookup for an IP literal or a pooled
/// connection, no TLS over plain HTTP, no connect on a pooled connection) is absent from a ``RequestTrace``.
public enum RequestPhase: String, Sendable, CaseIterable, Codable, Comparable {
    /// Resolving the endpoint's name.
    case dns
    /// The TCP connection, from the first SYN to the connection being up.
    case connect
    /// The TLS handshake, certificate verification included.
    case tls
    /// Writing the request, head and body, until the last byte is handed to the kernel.
    case request
    /// From the request sent to the response head.
    case firstByte = "first_byte"
    /// From the response head to the last byte of the body.
    case transfer

    public static func < (lhs: RequestPhase, rhs: RequestPhase) -> Bool {
        lhs.rank < rhs.rank
    }

    private var rank: Int { Self.allCases.firstIndex(of: self) ?? 0 }
}

/// How a request's connection is chosen (`connection` in the configuration).
public enum ConnectionMode: String, Sendable, CaseIterable, Codable {
    /// Connections are kept and reused, but every cycle opens at least one new connection to each address, so a
    /// server that stops accepting new connections is seen within one cycle.
    case pooled
    /// A new connection (and name lookup) for every request, as blackbox_exporter probes.
    case fresh
}

/// Which address families a name's addresses are taken from (`ip_family`).
public enum IPFamily: String, Sendable, CaseIterable, Codable {
    case any
    case ipv4
    case ipv6

    /// The family of an address literal (`127.0.0.2`, `::1`): the `family` label of the per-address series.
    public init(address: String) {
        self = address.contains(":") ? .ipv6 : .ipv4
    }
}

/// What a TLS handshake showed.
public struct TLSSessionInfo: Sendable, Equatable, Codable {
    /// The negotiated version, such as `TLSv1.3`.
    public var version: String
    /// The negotiated cipher suite by its IANA name, such as `TLS_AES_128_GCM_SHA256` (`0x....` when unknown).
    public var cipher: String
    /// SHA-256 of the leaf certificate's DER, in lower-case hex.
    public var fingerprint: String
    /// When the leaf certificate expires.
    public var notAfter: Date?

    /// Session facts from their parts.
    public init(version: String, cipher: String, fingerprint: String, notAfter: Date?) {
        self.version = version
        self.cipher = cipher
        self.fingerprint = fingerprint
        self.notAfter = notAfter
    }
}

/// One phase and how long it took.
public struct PhaseDuration: Sendable, Equatable {
    public var phase: RequestPhase
    public var duration: Duration

    public init(_ phase: RequestPhase, _ duration: Duration) {
        self.phase = phase
        self.duration = duration
    }
}

/// What ``S3Backend`` reports when a request ends, successful or not: where its time went and where it broke.
public struct RequestTrace: Sendable {
    /// The S3 operation, such as `PutObject`.
    public var operation: String
    /// The sending task's ``RequestLabel``; `nil` outside labelled work (the sweeper).
    public var label: String?
    /// The address the request went to (`127.0.0.2`, `::1`), once one was chosen.
    public var address: String?
    /// The phases that happened and finished, in order.
    public var phases: [PhaseDuration]
    /// The phase the request failed in; `nil` when it got a whole answer (whatever its status).
    public var failedPhase: RequestPhase?
    /// The TLS session of a connection this request opened.
    public var tls: TLSSessionInfo?
    /// Whether the request opened a new connection.
    public var newConnection: Bool
    /// What the name resolved to, when this request looked it up.
    public var resolution: NameResolution?
    /// Why the name did not resolve, when this request's lookup failed.
    public var dnsFailure: DNSFailure?

    /// A trace from its parts.
    public init(
        operation: String, label: String?, address: String?, phases: [PhaseDuration], failedPhase: RequestPhase?,
        tls: TLSSessionInfo?, newConnection: Bool, resolution: NameResolution? = nil, dnsFailure: DNSFailure? = nil
    ) {
        self.operation = operation
        self.label = label
        self.address = address
        self.phases = phases
        self.failedPhase = failedPhase
        self.tls = tls
        self.newConnection = newConnection
        self.resolution = resolution
        self.dnsFailure = dnsFailure
    }

    /// The time of `phase`, if it happened.
    public func duration(of phase: RequestPhase) -> Duration? {
        self.phases.first { $0.phase == phase }?.duration
    }
}

/// A request that failed in a known phase: the transport's errors before ``S3Backend`` classifies them.
struct PhaseError: Error, Sendable {
    var phase: RequestPhase
    var underlying: any Error
    /// Our own deadline ran out in this phase (rather than the peer or the network failing).
    var timedOut: Bool
}
