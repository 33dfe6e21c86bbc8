import NIOCore
import NIOPosix
import Synchronization

/// A small DNS client of our own (`dns.servers`): A and AAAA over UDP, again over TCP when the answer is truncated,
/// so a failure says what the server answered (`NXDOMAIN`, `SERVFAIL`, a timeout) and a success carries the TTL.
/// Servers are asked in order; one that fails or does not answer passes the question to the next, while `NXDOMAIN`
/// and an answer without addresses (`NODATA`) are answers and end the lookup.
struct DNSResolver: HostResolver {
    let servers: [String]
    let timeout: Duration

    init(servers: [String], timeout: Duration) {
        self.servers = servers
        self.timeout = timeout
    }

    /// `IP:PORT`, `[IPv6]:PORT`, or a bare IP for port 53; `nil` for anything else.
    static func parseServer(_ text: String) -> SocketAddress? {
        if let address = try? SocketAddress(ipAddress: text, port: 53) { return address }
        var host = text
        var port = 53
        if text.hasPrefix("["), let close = text.firstIndex(of: "]") {
            host = String(text[text.index(after: text.startIndex)..<close])
            let rest = text[text.index(after: close)...]
            guard rest.hasPrefix(":"), let value = Int(rest.dropFirst()) else { return nil }
            port = value
        } else if let colon = text.lastIndex(of: ":"), !text[..<colon].contains(":") {
            host = String(text[..<colon])
            guard let value = Int(text[text.index(after: colon)...]) else { return nil }
            port = value
        } else {
            return nil
        }
        guard (1...65535).contains(port) else { return nil }
        return try? SocketAddress(ipAddress: host, port: port)
    }

    func resolve(_ name: String, family: IPFamily) async throws -> NameResolution {
        var last: DNSFailure?
        for server in self.servers {
            guard let address = Self.parseServer(server) else { continue }
            do {
                return try await self.resolve(name, family: family, server: address, label: server)
            } catch let failure as DNSFailure {
                if failure.code == "NXDOMAIN" || failure.code == "NODATA" { throw failure }
                last = failure
            }
        }
        throw last ?? DNSFailure(code: "timeout", name: name, server: self.servers.joined(separator: ","))
    }

    /// Both families' questions to one server (A first, then AAAA, in the answer's order).
    private func resolve(
        _ name: String, family: IPFamily, server: SocketAddress, label: String
    ) async throws -> NameResolution {
        let types: [DNSRecordType] =
            switch family {
            case .any: [.a, .aaaa]
            case .ipv4: [.a]
            case .ipv6: [.aaaa]
            }
        var outcomes: [(DNSRecordType, Result<DNSResponse, DNSFailure>)] = []
        await withTaskGroup(of: (Int, Result<DNSResponse, DNSFailure>).self) { group in
            for (index, type) in types.enumerated() {
                group.addTask {
                    do {
                        return (index, .success(try await self.query(name, type: type, server: server, label: label)))
                    } catch let failure as DNSFailure {
                        return (index, .failure(failure))
                    } catch {
                        return (
                            index,
                            .failure(DNSFailure(code: "error", name: name, server: label, detail: "\(error)"))
                        )
                    }
                }
            }
            var byIndex: [Int: Result<DNSResponse, DNSFailure>] = [:]
            for await (index, result) in group { byIndex[index] = result }
            outcomes = types.indices.compactMap { index in byIndex[index].map { (types[index], $0) } }
        }
        var addresses: [String] = []
        var ttl: UInt32?
        var codes: [String] = []
        var failures: [DNSFailure] = []
        for (type, outcome) in outcomes {
            switch outcome {
            case .success(let response):
                codes.append(response.code.name)
                guard response.code == .noError else { continue }
                let found = response.addresses(for: name, type: type)
                for address in found.addresses where !addresses.contains(address) { addresses.append(address) }
                if let value = found.ttl { ttl = min(ttl ?? value, value) }
            case .failure(let failure):
                failures.append(failure)
            }
        }
        if !addresses.isEmpty {
            return NameResolution(addresses: addresses, ttl: ttl.map { .seconds(Int64($0)) }, server: label)
        }
        if let failure = failures.first { throw failure }
        // Every question was answered: the first code that is not NOERROR, or NODATA when all were NOERROR.
        let code = codes.first { $0 != "NOERROR" } ?? "NODATA"
        throw DNSFailure(code: code, name: name, server: label)
    }

    /// One question: over UDP, and over TCP when the UDP answer is truncated.
    private func query(
        _ name: String, type: DNSRecordType, server: SocketAddress, label: String
    ) async throws -> DNSResponse {
        let id = UInt16.random(in: 0...UInt16.max)
        let question: [UInt8]
        do {
            question = try DNSQuestion.query(id: id, name: name, type: type)
        } catch {
            throw DNSFailure(code: "FORMERR", name: name, server: label, detail: error.message)
        }
        let answer = try await self.udp(question, id: id, server: server, name: name, label: label)
        if answer.truncated {
            return try await self.tcp(question, id: id, server: server, name: name, label: label)
        }
        return answer
    }

    private func udp(
        _ question: [UInt8], id: UInt16, server: SocketAddress, name: String, label: String
    ) async throws -> DNSResponse {
        try await self.ask(over: "UDP", name: name, label: label) {
            try await DatagramBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .bind(host: server.protocol == .inet6 ? "::" : "0.0.0.0", port: 0) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<AddressedEnvelope<ByteBuffer>, AddressedEnvelope<ByteBuffer>>(
                            wrappingChannelSynchronously: channel)
                    }
                }
        } exchange: { inbound, outbound in
            try await outbound.write(AddressedEnvelope(remoteAddress: server, data: ByteBuffer(bytes: question)))
            for try await envelope in inbound {
                // Anything that is not the answer to this question (another id, garbage) is not ours.
                guard let answer = try? DNSResponse.decode(Array(envelope.data.readableBytesView)),
                    answer.id == id, answer.isResponse
                else { continue }
                return answer
            }
            return nil
        }
    }

    private func tcp(
        _ question: [UInt8], id: UInt16, server: SocketAddress, name: String, label: String
    ) async throws -> DNSResponse {
        try await self.ask(over: "TCP", name: name, label: label) {
            try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
                .connectTimeout(self.timeout.timeAmount)
                .connect(to: server) { channel in
                    channel.eventLoop.makeCompletedFuture {
                        try NIOAsyncChannel<ByteBuffer, ByteBuffer>(wrappingChannelSynchronously: channel)
                    }
                }
        } exchange: { inbound, outbound in
            // Over TCP a message goes with its length first (RFC 1035 4.2.2).
            var framed = ByteBuffer()
            framed.writeInteger(UInt16(question.count))
            framed.writeBytes(question)
            try await outbound.write(framed)
            var received = ByteBuffer()
            for try await part in inbound {
                received.writeImmutableBuffer(part)
                guard let length = received.getInteger(at: received.readerIndex, as: UInt16.self),
                    received.readableBytes >= 2 + Int(length),
                    let bytes = received.getBytes(at: received.readerIndex + 2, length: Int(length))
                else { continue }
                let answer = try DNSResponse.decode(bytes)
                return answer.id == id ? answer : nil
            }
            return nil
        }
    }

    /// Opens a channel, runs `exchange` on it and closes it. The channel is closed when the timeout runs out, a
    /// `timeout` failure; any other error is an `error` one, naming `transport`.
    private func ask<Inbound: Sendable, Outbound: Sendable>(
        over transport: String, name: String, label: String,
        open: () async throws -> NIOAsyncChannel<Inbound, Outbound>,
        exchange: (NIOAsyncChannelInboundStream<Inbound>, NIOAsyncChannelOutboundWriter<Outbound>) async throws
            -> DNSResponse?
    ) async throws -> DNSResponse {
        let timedOut = Atomic<Bool>(false)
        do {
            let channel = try await open()
            let raw = channel.channel
            let timer = raw.eventLoop.scheduleTask(in: self.timeout.timeAmount) {
                timedOut.store(true, ordering: .relaxed)
                raw.close(promise: nil)
            }
            defer { timer.cancel() }
            if let answer = try await channel.executeThenClose(exchange) { return answer }
        } catch where !timedOut.load(ordering: .relaxed) {
            throw DNSFailure(code: "error", name: name, server: label, detail: "over \(transport): \(error)")
        } catch {}
        throw DNSFailure(
            code: "timeout", name: name, server: label, detail: "no answer over \(transport) within \(self.timeout)")
    }
}

/// The forms a DNS server may be written in (`dns.servers`).
public enum DNSServerAddress {
    /// Whether `text` is `IP:PORT`, `[IPv6]:PORT` or a bare IP.
    public static func isValid(_ text: String) -> Bool { DNSResolver.parseServer(text) != nil }
}
