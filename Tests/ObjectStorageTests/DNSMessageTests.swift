import Testing

@testable import ObjectStorage

/// The packets are dnslib 0.9.26's (`DNSRecord.pack()` in Python, which compresses names), one line per header,
/// question and record; the malformed ones are edited by hand from them.
@Suite("DNS wire format")
struct DNSMessageTests {
    /// `s3.canary.test A`: 127.0.0.2 and 127.0.0.3, TTL 30, both owners a pointer to the question's name.
    static let twoAddresses = bytes(
        """
        1234 8580 0001 0002 0000 0000
        02 7333 06 63616e617279 04 74657374 00 0001 0001
        c00c 0001 0001 0000001e 0004 7f000002
        c00c 0001 0001 0000001e 0004 7f000003
        """
    )

    /// `www.canary.test A`: CNAME `Edge.Canary.Test` (300 s), `edge.canary.test` CNAME `s3.canary.test` (20 s),
    /// then a TXT record and two A records (60 s, 30 s) whose owner points into the second CNAME's data, which
    /// points into the question in turn.
    static let chain = bytes(
        """
        1234 8580 0001 0005 0000 0000
        03 777777 06 63616e617279 04 74657374 00 0001 0001
        c00c 0005 0001 0000012c 0012 04456467650643616e617279045465737400
        04 65646765 c010 0005 0001 00000014 0005 027333c010
        c050 0010 0001 00000005 0006 0568656c6c6f
        c050 0001 0001 0000003c 0004 0a000001
        c050 0001 0001 0000001e 0004 0a000002
        """
    )

    @Test func decodesAnAnswerWithTwoAddresses() throws {
        let response = try DNSResponse.decode(Self.twoAddresses)
        let answer = { (address: String) in
            DNSAnswer(name: "s3.canary.test", type: 1, ttl: 30, value: .ipv4(address))
        }
        #expect(
            response
                == DNSResponse(
                    id: 0x1234, isResponse: true, truncated: false, code: .noError,
                    answers: [answer("127.0.0.2"), answer("127.0.0.3")]
                )
        )
        let found = response.addresses(for: "s3.canary.test", type: .a)
        #expect(found.addresses == ["127.0.0.2", "127.0.0.3"])
        #expect(found.ttl == 30)
        #expect(response.addresses(for: "s3.canary.test", type: .aaaa).ttl == nil)
    }

    @Test func writesIPv6AddressesInRFC5952Text() throws {
        let response = try DNSResponse.decode(
            Self.bytes(
                """
                1234 8580 0001 0006 0000 0000
                02 7333 06 63616e617279 04 74657374 00 001c 0001
                c00c 001c 0001 0000001e 0010 00000000000000000000000000000001
                c00c 001c 0001 0000001e 0010 20010db8000000000000000000000001
                c00c 001c 0001 0000001e 0010 20010db8000000000001000000000001
                c00c 001c 0001 0000001e 0010 00010000000000020000000000030004
                c00c 001c 0001 0000001e 0010 20010db8000000010001000100010001
                c00c 001c 0001 0000001e 0010 00000000000000000000000000000000
                """
            )
        )
        #expect(response.answers.map(\.type) == Array(repeating: 28, count: 6))
        #expect(
            response.addresses(for: "s3.canary.test", type: .aaaa).addresses == [
                "::1", "2001:db8::1", "2001:db8::1:0:0:1", "1::2:0:0:3:4", "2001:db8:0:1:1:1:1:1", "::",
            ]
        )
    }

    @Test func followsACNAMEChainAndKeepsItsSmallestTTL() throws {
        let response = try DNSResponse.decode(Self.chain)
        #expect(
            response.answers.map(\.name)
                == ["www.canary.test", "edge.canary.test", "s3.canary.test", "s3.canary.test", "s3.canary.test"]
        )
        #expect(response.answers[0].value == .cname("Edge.Canary.Test"))
        #expect(response.answers[1].value == .cname("s3.canary.test"))
        #expect(response.answers[2].value == .other)
        for name in ["www.canary.test", "WWW.Canary.TEST."] {
            let found = response.addresses(for: name, type: .a)
            #expect(found.addresses == ["10.0.0.1", "10.0.0.2"])
            #expect(found.ttl == 20)
        }
        #expect(response.addresses(for: "s3.canary.test", type: .a).ttl == 30)
        #expect(response.addresses(for: "www.canary.test", type: .aaaa).addresses.isEmpty)
    }

    @Test func stopsAtACNAMELoopAndAfterEightHops() {
        func response(_ aliases: [(String, String)], address: String?) -> DNSResponse {
            var answers = aliases.map { DNSAnswer(name: $0.0, type: 5, ttl: 60, value: .cname($0.1)) }
            if let address {
                answers.append(DNSAnswer(name: aliases.last?.1 ?? "", type: 1, ttl: 60, value: .ipv4(address)))
            }
            return DNSResponse(id: 1, isResponse: true, truncated: false, code: .noError, answers: answers)
        }
        let loop = response([("a.test", "b.test"), ("b.test", "c.test"), ("c.test", "a.test")], address: nil)
        #expect(loop.addresses(for: "a.test", type: .a).addresses.isEmpty)
        let hops = { (count: Int) in (0..<count).map { ("h\($0).test", "h\($0 + 1).test") } }
        #expect(response(hops(8), address: "192.0.2.1").addresses(for: "h0.test", type: .a).addresses == ["192.0.2.1"])
        #expect(response(hops(9), address: "192.0.2.1").addresses(for: "h0.test", type: .a).addresses.isEmpty)
    }

    @Test(arguments: [
        // missing.canary.test A
        ("1234 8583 0001 0000 0000 0000 07 6d697373696e67 06 63616e617279 04 74657374 00 0001 0001", "NXDOMAIN"),
        // s3.canary.test AAAA
        ("1234 8582 0001 0000 0000 0000 02 7333 06 63616e617279 04 74657374 00 001c 0001", "SERVFAIL"),
    ])
    func readsTheResponseCode(_ packet: String, _ name: String) throws {
        let response = try DNSResponse.decode(Self.bytes(packet))
        #expect(response.code.name == name)
        #expect(response.answers.isEmpty)
        #expect(!response.truncated)
    }

    @Test func namesEveryResponseCode() {
        let names = (UInt8(0)...5).map { DNSResponseCode($0).name } + [DNSResponseCode(9).name]
        #expect(names == ["NOERROR", "FORMERR", "SERVFAIL", "NXDOMAIN", "NOTIMP", "REFUSED", "RCODE9"])
        #expect(DNSResponseCode(3) == .nameError)
    }

    @Test func readsTheTruncationFlagAndKeepsTheAnswersBeforeACut() throws {
        let empty = try DNSResponse.decode(
            Self.bytes("1234 8780 0001 0000 0000 0000 02 7333 06 63616e617279 04 74657374 00 0001 0001")
        )
        #expect(empty.truncated && empty.answers.isEmpty && empty.code == .noError)
        var cut = Array(Self.twoAddresses.dropLast(3))
        cut[2] |= 0x02
        let partial = try DNSResponse.decode(cut)
        #expect(partial.truncated)
        #expect(partial.answers == [DNSAnswer(name: "s3.canary.test", type: 1, ttl: 30, value: .ipv4("127.0.0.2"))])
    }

    @Test func readsATTLWithTheTopBitSetAsZero() throws {
        let response = try DNSResponse.decode(
            Self.bytes(
                """
                1234 8580 0001 0001 0000 0000
                02 7333 06 63616e617279 04 74657374 00 0001 0001
                c00c 0001 0001 80000000 0004 c0000201
                """
            )
        )
        #expect(response.answers.map(\.ttl) == [0])
    }

    @Test func encodesTheSameQueryAsDnslib() throws {
        #expect(
            try DNSQuestion.query(id: 0x944F, name: "s3.canary.test", type: .a)
                == Self.bytes("944f 0100 0001 0000 0000 0000 02 7333 06 63616e617279 04 74657374 00 0001 0001")
        )
        #expect(
            try DNSQuestion.query(id: 1, name: "s3.canary.test.", type: .aaaa)
                == Self.bytes("0001 0100 0001 0000 0000 0000 02 7333 06 63616e617279 04 74657374 00 001c 0001")
        )
        // 253 bytes, the longest name there is: 255 in the query with the label lengths and the root.
        let a63 = String(repeating: "a", count: 63)
        let longest = [a63, a63, a63, "_-9" + String(repeating: "b", count: 58)].joined(separator: ".")
        let query = try DNSQuestion.query(id: 1, name: longest, type: .a)
        #expect(query.count == 12 + 255 + 4)
        #expect(try DNSResponse.decode(query).isResponse == false)
        #expect(throws: DNSMessageError.self) { try DNSQuestion.query(id: 1, name: longest + "b", type: .a) }
    }

    @Test(arguments: [
        "", ".", "a..b", ".a", "é.test", "a b.test", "a/b",
        String(repeating: "a", count: 64) + ".test",
        Array(repeating: String(repeating: "a", count: 63), count: 4).joined(separator: "."),
    ])
    func rejectsANameThatIsNotAHostName(_ name: String) {
        #expect(throws: DNSMessageError.self) { try DNSQuestion.query(id: 1, name: name, type: .a) }
    }

    @Test func rejectsEveryPrefixOfAResponse() {
        for packet in [Self.twoAddresses, Self.chain] {
            for length in 0..<packet.count {
                #expect(throws: DNSMessageError.self) { try DNSResponse.decode(Array(packet.prefix(length))) }
            }
        }
    }

    @Test(arguments: [
        // The question's name is a pointer to itself.
        "abcd 8180 0001 0000 0000 0000 c00c 0001 0001",
        // Two questions whose names point at each other.
        "abcd 8180 0002 0000 0000 0000 c012 0001 0001 c00c 0001 0001",
        // A pointer forwards, to a name that is there.
        "abcd 8180 0001 0000 0000 0000 c012 0001 0001 01 61 00",
        // A label of type 0x40 (the extended label types of RFC 6891 are not read).
        "abcd 8180 0001 0000 0000 0000 41 00 0001 0001",
        // An A record of 5 bytes.
        "abcd 8180 0000 0001 0000 0000 00 0001 0001 0000001e 0005 7f00000201",
        // CNAME records whose data is shorter, or longer, than the name in it.
        "abcd 8180 0000 0001 0000 0000 00 0005 0001 0000001e 0002 01 61 00",
        "abcd 8180 0000 0001 0000 0000 00 0005 0001 0000001e 0004 01 61 00 00",
        // A name of 256 bytes with the lengths and the root: labels of 63, 63, 63 and 62 bytes.
        "abcd 8180 0001 0000 0000 0000" + String(repeating: " 3f" + String(repeating: "61", count: 63), count: 3)
            + " 3e" + String(repeating: "62", count: 62) + " 00 0001 0001",
    ])
    func rejectsAMalformedResponse(_ packet: String) {
        #expect(throws: DNSMessageError.self) { try DNSResponse.decode(Self.bytes(packet)) }
    }

    @Test func namesWhereAPointerGoesWrong() {
        #expect(throws: DNSMessageError("compression pointer at byte 12 does not point backwards")) {
            try DNSResponse.decode(Self.bytes("abcd 8180 0001 0000 0000 0000 c00c 0001 0001"))
        }
    }

    /// The bytes of a hex string; whitespace is ignored.
    static func bytes(_ hex: String) -> [UInt8] {
        let digits = Array(hex.filter { !$0.isWhitespace })
        return stride(from: 0, to: digits.count, by: 2).map { UInt8(String(digits[$0...$0 + 1]), radix: 16)! }
    }
}
