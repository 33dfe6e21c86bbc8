import Testing

@testable import ObjectStorage

/// The cipher suite read from a ServerHello as it passes (RFC 8446 4.1.3; TLS 1.2's has the same prefix).
@Suite("Cipher suite from the ServerHello")
struct CipherSnifferTests {
    /// A handshake record holding a ServerHello with `sessionID` bytes of session id and `suite`, cut after `keep`
    /// bytes (the rest of a real ServerHello, extensions, does not matter here).
    static func serverHello(suite: UInt16, sessionID: Int = 32) -> [UInt8] {
        var hello: [UInt8] = [0x03, 0x03] + [UInt8](repeating: 0xAB, count: 32) + [UInt8(sessionID)]
        hello += [UInt8](repeating: 0x11, count: sessionID) + [UInt8(suite >> 8), UInt8(suite & 0xFF), 0x00]
        hello += [0x00, 0x00]  // no extensions
        let message: [UInt8] = [0x02, 0x00, UInt8(hello.count >> 8), UInt8(hello.count & 0xFF)] + hello
        return [0x16, 0x03, 0x03, UInt8(message.count >> 8), UInt8(message.count & 0xFF)] + message
    }

    @Test(arguments: [
        (UInt16(0x1301), "TLS_AES_128_GCM_SHA256"), (0xC02F, "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
        (0x1234, "0x1234"), (0x0A0B, "0x0A0B"),
    ])
    func readsTheSuite(suite: UInt16, name: String) {
        let bytes = Self.serverHello(suite: suite)
        #expect(CipherSniffer.serverHelloSuite(bytes) == suite)
        #expect(CipherSniffer.name(of: suite) == name)
        #expect(CipherSniffer.serverHelloSuite(Self.serverHello(suite: suite, sessionID: 0)) == suite)
    }

    @Test func waitsForEnoughBytesAndIgnoresOtherRecords() {
        let bytes = Self.serverHello(suite: 0x1302)
        for cut in [0, 4, 5, 40, 75] { #expect(CipherSniffer.serverHelloSuite(Array(bytes.prefix(cut))) == nil) }
        // An alert record (21) first: not a handshake, nothing to read.
        #expect(CipherSniffer.serverHelloSuite([0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x28]) == nil)
        // A ServerHello split across two handshake records is joined.
        let message = Array(bytes.dropFirst(5))
        let first = Array(message.prefix(20))
        let second = Array(message.dropFirst(20))
        let split: [UInt8] =
            [0x16, 0x03, 0x03, 0x00, UInt8(first.count)] + first + [0x16, 0x03, 0x03, 0x00, UInt8(second.count)]
            + second
        #expect(CipherSniffer.serverHelloSuite(split) == 0x1302)
    }
}
