/// A query that cannot be encoded or a response that cannot be decoded.
package struct DNSMessageError: Error, Sendable, Equatable, CustomStringConvertible {
    package var message: String
    package init(_ message: String) { self.message = message }
    package var description: String { "DNS: \(self.message)" }
}

/// The record types a query can ask for.
package enum DNSRecordType: UInt16, Sendable {
    case a = 1
    case cname = 5
    case aaaa = 28
}

/// The response code (RCODE) of a response header.
package enum DNSResponseCode: Sendable, Equatable {
    case noError, formatError, serverFailure, nameError, notImplemented, refused
    /// Any other code; `init(_:)` never makes one of the six above this way.
    case other(UInt8)

    package init(_ raw: UInt8) {
        switch raw {
        case 0: self = .noError
        case 1: self = .formatError
        case 2: self = .serverFailure
        case 3: self = .nameError
        case 4: self = .notImplemented
        case 5: self = .refused
        default: self = .other(raw)
        }
    }

    /// The conventional mnemonic, as dig prints it: `NOERROR`, `NXDOMAIN`, `SERVFAIL`, or `RCODE<n>`.
    package var name: String {
        switch self {
        case .noError: "NOERROR"
        case .formatError: "FORMERR"
        case .serverFailure: "SERVFAIL"
        case .nameError: "NXDOMAIN"
        case .notImplemented: "NOTIMP"
        case .refused: "REFUSED"
        case .other(let raw): "RCODE\(raw)"
        }
    }
}

/// The query a stub resolver sends.
package enum DNSQuestion: Sendable {
    /// A recursive query (RD set) with one question for `name`, class IN.
    ///
    /// `name` is a host name: labels of 1 to 63 ASCII letters, digits, `-` or `_`, at most 253 bytes in all, with
    /// or without the trailing dot.
    package static func query(id: UInt16, name: String, type: DNSRecordType) throws(DNSMessageError) -> [UInt8] {
        var message: [UInt8] = [UInt8(id >> 8), UInt8(id & 0xFF), 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]
        let allowed = { (c: Unicode.Scalar) in
            c.isASCII && (c.properties.isAlphabetic || ("0"..."9").contains(c) || c == "-" || c == "_" || c == ".")
        }
        if let bad = name.unicodeScalars.first(where: { !allowed($0) }) {
            throw DNSMessageError("name \"\(name)\" contains \"\(bad)\"; allowed: ASCII letters, digits, - and _")
        }
        var text = Array(name.utf8)
        if text.last == UInt8(ascii: ".") { text.removeLast() }
        guard !text.isEmpty else { throw DNSMessageError("the name is empty") }
        guard text.count <= 253 else {
            throw DNSMessageError("name \"\(name)\" is \(text.count) bytes long, more than 253")
        }
        for label in text.split(separator: UInt8(ascii: "."), omittingEmptySubsequences: false) {
            guard !label.isEmpty else { throw DNSMessageError("name \"\(name)\" has an empty label") }
            guard label.count <= 63 else {
                throw DNSMessageError("name \"\(name)\" has a label of \(label.count) bytes, more than 63")
            }
            message.append(UInt8(label.count))
            message += label
        }
        message += [0, UInt8(type.rawValue >> 8), UInt8(type.rawValue & 0xFF), 0, 1]
        return message
    }
}

/// One record of the answer section.
package struct DNSAnswer: Sendable, Equatable {
    package enum Value: Sendable, Equatable {
        /// An A record, as a dotted quad.
        case ipv4(String)
        /// An AAAA record, in RFC 5952's canonical text (`2001:db8::1`).
        case ipv6(String)
        /// A CNAME record's target.
        case cname(String)
        /// A record of another type or class, not read.
        case other
    }

    /// The owner name, without the trailing dot (`.` for the root), bytes outside printable ASCII as `\DDD`.
    package var name: String
    package var type: UInt16
    /// Seconds; a TTL with the top bit set reads as 0 (RFC 2181, section 8).
    package var ttl: UInt32
    package var value: Value

    package init(name: String, type: UInt16, ttl: UInt32, value: Value) {
        self.name = name
        self.type = type
        self.ttl = ttl
        self.value = value
    }
}

/// A DNS response: the DNS wire format (RFC 1035, AAAA from RFC 3596), as much of it as a stub resolver needs,
/// with ``DNSQuestion`` for the query.
///
/// The sidecar resolves a backend's endpoint through the DNS servers it is configured with, to tell NXDOMAIN,
/// SERVFAIL and timeouts apart and to know the TTL, which the system resolver hides. Only A, AAAA and CNAME
/// records are kept; any other record is read past. The authority and additional sections are not read. Malformed
/// input throws instead of guessing, and nothing is read outside the bytes.
package struct DNSResponse: Sendable, Equatable {
    package var id: UInt16
    /// The QR bit: false means the packet is a query, not an answer to one.
    package var isResponse: Bool
    /// The TC bit: the answer did not fit in the UDP datagram; ask again over TCP.
    package var truncated: Bool
    package var code: DNSResponseCode
    package var answers: [DNSAnswer]

    package init(id: UInt16, isResponse: Bool, truncated: Bool, code: DNSResponseCode, answers: [DNSAnswer]) {
        self.id = id
        self.isResponse = isResponse
        self.truncated = truncated
        self.code = code
        self.answers = answers
    }

    /// Decodes a response (over TCP, without its two-byte length prefix).
    ///
    /// A truncated response keeps the answers that decode and drops a partial last one instead of throwing.
    package static func decode(_ bytes: [UInt8]) throws(DNSMessageError) -> DNSResponse {
        var reader = Reader(bytes: bytes)
        let id = try reader.u16()
        let flags = try reader.u16()
        let questionCount = try reader.u16()
        let answerCount = try reader.u16()
        try reader.skip(4)  // the authority and additional counts
        for _ in 0..<questionCount {
            _ = try reader.name()
            try reader.skip(4)
        }
        let truncated = flags & 0x0200 != 0
        var answers: [DNSAnswer] = []
        for _ in 0..<answerCount {
            do throws(DNSMessageError) {
                try answers.append(reader.answer())
            } catch {
                if truncated { break }
                throw error
            }
        }
        return DNSResponse(
            id: id, isResponse: flags & 0x8000 != 0, truncated: truncated, code: DNSResponseCode(UInt8(flags & 0x0F)),
            answers: answers
        )
    }

    /// The A (or AAAA) addresses of `name`, following CNAME records within the answer section (at most 8, names
    /// compared without case or trailing dot), and the smallest TTL of the records used; the TTL is nil when
    /// there is no address.
    package func addresses(for name: String, type: DNSRecordType) -> (addresses: [String], ttl: UInt32?) {
        func key(_ name: String) -> String {
            let lower = name.lowercased()
            return lower.hasSuffix(".") && lower != "." ? String(lower.dropLast()) : lower
        }
        var current = key(name)
        var ttl = UInt32.max
        for _ in 0...8 {
            let records = self.answers.filter { key($0.name) == current }
            var addresses: [String] = []
            var alias: (target: String, ttl: UInt32)?
            for record in records {
                switch (type, record.value) {
                case (.a, .ipv4(let address)), (.aaaa, .ipv6(let address)):
                    addresses.append(address)
                    ttl = min(ttl, record.ttl)
                case (_, .cname(let target)):
                    alias = alias ?? (target, record.ttl)
                default: break
                }
            }
            if !addresses.isEmpty { return (addresses, ttl) }
            guard let alias else { break }
            ttl = min(ttl, alias.ttl)
            current = key(alias.target)
        }
        return ([], nil)
    }
}

/// A cursor over a message; every read checks the bounds.
private struct Reader {
    let bytes: [UInt8]
    var index = 0

    private func need(_ count: Int, at offset: Int) throws(DNSMessageError) {
        guard count >= 0, offset >= 0, offset + count <= self.bytes.count else {
            throw DNSMessageError("the message ends at byte \(self.bytes.count), before byte \(offset + count)")
        }
    }

    mutating func skip(_ count: Int) throws(DNSMessageError) {
        try self.need(count, at: self.index)
        self.index += count
    }

    mutating func u16() throws(DNSMessageError) -> UInt16 {
        try self.need(2, at: self.index)
        defer { self.index += 2 }
        return UInt16(self.bytes[self.index]) << 8 | UInt16(self.bytes[self.index + 1])
    }

    mutating func u32() throws(DNSMessageError) -> UInt32 {
        let high = try self.u16()
        let low = try self.u16()
        return UInt32(high) << 16 | UInt32(low)
    }

    mutating func name() throws(DNSMessageError) -> String {
        let (name, end) = try self.name(at: self.index)
        self.index = end
        return name
    }

    /// The name at `start` and the offset just past it where it sits (past its first compression pointer, if any).
    ///
    /// A pointer must point before the labels that led to it, so the pointers go strictly backwards and a loop
    /// cannot happen.
    func name(at start: Int) throws(DNSMessageError) -> (name: String, end: Int) {
        var labels: [String] = []
        var offset = start
        var runStart = start
        var end: Int?
        var length = 1
        while true {
            try self.need(1, at: offset)
            let count = Int(self.bytes[offset])
            switch count & 0xC0 {
            case 0x00 where count == 0:
                return (labels.isEmpty ? "." : labels.joined(separator: "."), end ?? offset + 1)
            case 0x00:
                try self.need(count, at: offset + 1)
                length += count + 1
                guard length <= 255 else { throw DNSMessageError("name at byte \(start) is longer than 255 bytes") }
                labels.append(Self.text(self.bytes[(offset + 1)..<(offset + 1 + count)]))
                offset += count + 1
            case 0xC0:
                try self.need(2, at: offset)
                let target = (count & 0x3F) << 8 | Int(self.bytes[offset + 1])
                guard target < runStart else {
                    throw DNSMessageError("compression pointer at byte \(offset) does not point backwards")
                }
                end = end ?? offset + 2
                offset = target
                runStart = target
            default:
                throw DNSMessageError("label type 0x\(String(count & 0xC0, radix: 16)) at byte \(offset) is unknown")
            }
        }
    }

    /// A label as text: printable ASCII as is, `.`, `\` and any other byte as `\DDD`.
    private static func text(_ label: ArraySlice<UInt8>) -> String {
        var text = ""
        for byte in label {
            if byte > 0x20, byte < 0x7F, byte != UInt8(ascii: "."), byte != UInt8(ascii: "\\") {
                text.unicodeScalars.append(Unicode.Scalar(byte))
            } else {
                let digits = String(byte)
                text += "\\" + String(repeating: "0", count: 3 - digits.count) + digits
            }
        }
        return text
    }

    mutating func answer() throws(DNSMessageError) -> DNSAnswer {
        let name = try self.name()
        let type = try self.u16()
        let recordClass = try self.u16()
        let ttl = try self.u32()
        let length = try Int(self.u16())
        let start = self.index
        try self.skip(length)
        let data = self.bytes[start..<self.index]
        let value: DNSAnswer.Value
        switch (recordClass, DNSRecordType(rawValue: type)) {
        case (1, .a):
            guard length == 4 else { throw DNSMessageError("A record at byte \(start) has \(length) bytes, not 4") }
            value = .ipv4(data.map { String($0) }.joined(separator: "."))
        case (1, .aaaa):
            guard length == 16 else {
                throw DNSMessageError("AAAA record at byte \(start) has \(length) bytes, not 16")
            }
            value = .ipv6(Self.ipv6(Array(data)))
        case (1, .cname):
            let (target, end) = try self.name(at: start)
            guard end == self.index else {
                throw DNSMessageError("CNAME record at byte \(start) has \(length) bytes, its name \(end - start)")
            }
            value = .cname(target)
        default:
            value = .other
        }
        return DNSAnswer(name: name, type: type, ttl: ttl > UInt32(Int32.max) ? 0 : ttl, value: value)
    }

    /// RFC 5952 text: lowercase hex groups without leading zeros, the longest run of two or more zero groups
    /// (the first of equal runs) as `::`.
    private static func ipv6(_ bytes: [UInt8]) -> String {
        let groups = (0..<8).map { Int(bytes[2 * $0]) << 8 | Int(bytes[2 * $0 + 1]) }
        var best = (start: 0, count: 0)
        var index = 0
        while index < 8 {
            var end = index
            while end < 8, groups[end] == 0 { end += 1 }
            if end - index > best.count { best = (index, end - index) }
            index = max(end, index + 1)
        }
        let hex = groups.map { String($0, radix: 16) }
        guard best.count >= 2 else { return hex.joined(separator: ":") }
        return hex[..<best.start].joined(separator: ":") + "::"
            + hex[(best.start + best.count)...].joined(separator: ":")
    }
}
