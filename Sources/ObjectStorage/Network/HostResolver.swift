public import Foundation
import NIOCore
import NIOPosix

#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif

/// The addresses a name resolved to, in the order to use them.
public struct NameResolution: Sendable, Equatable {
    /// The addresses as text (`127.0.0.2`, `::1`), without duplicates.
    public var addresses: [String]
    /// The smallest TTL of the answer; `nil` from the system resolver, which does not say.
    public var ttl: Duration?
    /// The DNS server that answered (`IP:PORT`), or `system`.
    public var server: String

    public init(addresses: [String], ttl: Duration?, server: String) {
        self.addresses = addresses
        self.ttl = ttl
        self.server = server
    }
}

/// A name that did not resolve, and the answer that said so.
public struct DNSFailure: Error, Sendable, Equatable, CustomStringConvertible {
    /// The answer's code: `NXDOMAIN`, `SERVFAIL`, `REFUSED`, `NODATA` (the name has no address of the family asked),
    /// `timeout`, or the system resolver's `EAI_*` name.
    public var code: String
    /// The name looked up.
    public var name: String
    /// The server that answered last (`system` for the system resolver).
    public var server: String
    /// More detail, when there is any.
    public var detail: String?

    public init(code: String, name: String, server: String, detail: String? = nil) {
        self.code = code
        self.name = name
        self.server = server
        self.detail = detail
    }

    public var description: String {
        "\(self.name) did not resolve: \(self.code) from \(self.server)" + (self.detail.map { " (\($0))" } ?? "")
    }
}

/// Turns a name into addresses; throws ``DNSFailure``.
protocol HostResolver: Sendable {
    func resolve(_ name: String, family: IPFamily) async throws -> NameResolution
}

/// `getaddrinfo`, on NIO's thread pool: what the machine's own resolver (`/etc/hosts`, `resolv.conf`) says.
struct SystemResolver: HostResolver {
    func resolve(_ name: String, family: IPFamily) async throws -> NameResolution {
        let addresses = try await NIOThreadPool.singleton.runIfActive { try Self.lookUp(name, family: family) }
        return NameResolution(addresses: addresses, ttl: nil, server: "system")
    }

    private static func lookUp(_ name: String, family: IPFamily) throws -> [String] {
        var hints = addrinfo()
        switch family {
        case .any: hints.ai_family = AF_UNSPEC
        case .ipv4: hints.ai_family = AF_INET
        case .ipv6: hints.ai_family = AF_INET6
        }
        #if canImport(Darwin)
        hints.ai_socktype = SOCK_STREAM
        #else
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        #endif
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(name, nil, &hints, &list)
        defer { if let list { freeaddrinfo(list) } }
        guard status == 0 else {
            let code: String
            switch status {
            case EAI_NONAME: code = "EAI_NONAME"
            case EAI_AGAIN: code = "EAI_AGAIN"
            case EAI_FAIL: code = "EAI_FAIL"
            default: code = "EAI_\(-status)"
            }
            throw DNSFailure(code: code, name: name, server: "system", detail: String(cString: gai_strerror(status)))
        }
        var addresses: [String] = []
        var entry = list
        while let current = entry {
            if let text = Self.text(of: current.pointee), !addresses.contains(text) { addresses.append(text) }
            entry = current.pointee.ai_next
        }
        guard !addresses.isEmpty else { throw DNSFailure(code: "NODATA", name: name, server: "system") }
        return addresses
    }

    private static func text(of info: addrinfo) -> String? {
        guard let address = info.ai_addr, info.ai_family == AF_INET || info.ai_family == AF_INET6 else { return nil }
        var buffer = [CChar](repeating: 0, count: 1025)
        guard getnameinfo(address, info.ai_addrlen, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0
        else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

/// Whether `text` is an IP address literal rather than a name.
func isIPLiteral(_ text: String) -> Bool {
    (try? SocketAddress(ipAddress: text, port: 0)) != nil
}
