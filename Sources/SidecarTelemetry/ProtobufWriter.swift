/// The few protobuf wire-format encodings the Prometheus exposition needs (varints, zigzag, fixed64 doubles,
/// length-delimited fields), written by hand.
///
/// Why not swift-protobuf: the exposition is one write-only message type of six nested messages; generated code
/// would be a new dependency with a plugin toolchain to regenerate it, several thousand lines, and a second
/// allocation per message (build a message tree, then serialise it). Here each family is written straight into a
/// byte array; the tests decode the output with Prometheus's own `metrics.proto` through Python's `protobuf`.
struct ProtobufWriter {
    private(set) var bytes: [UInt8] = []

    init(capacity: Int = 0) { self.bytes.reserveCapacity(capacity) }

    mutating func removeAll() { self.bytes.removeAll(keepingCapacity: true) }

    mutating func varint(_ value: UInt64) {
        var rest = value
        while rest >= 0x80 {
            self.bytes.append(UInt8(truncatingIfNeeded: rest) | 0x80)
            rest >>= 7
        }
        self.bytes.append(UInt8(rest))
    }

    private mutating func key(_ field: Int, _ wireType: UInt64) {
        self.varint(UInt64(field) << 3 | wireType)
    }

    /// A `uint64`, `uint32`, `int64` (non-negative) or enum field.
    mutating func unsigned(_ field: Int, _ value: UInt64) {
        self.key(field, 0)
        self.varint(value)
    }

    /// An `sint32`/`sint64` field (zigzag).
    mutating func signed(_ field: Int, _ value: Int64) {
        self.key(field, 0)
        self.varint(UInt64(bitPattern: (value << 1) ^ (value >> 63)))
    }

    /// A `double` field (fixed64, little endian).
    mutating func double(_ field: Int, _ value: Double) {
        self.key(field, 1)
        var bits = value.bitPattern.littleEndian
        withUnsafeBytes(of: &bits) { self.bytes.append(contentsOf: $0) }
    }

    mutating func string(_ field: Int, _ value: String) {
        self.key(field, 2)
        self.varint(UInt64(value.utf8.count))
        self.bytes.append(contentsOf: value.utf8)
    }

    /// A nested message already encoded (or any length-delimited bytes).
    mutating func embedded(_ field: Int, _ message: [UInt8]) {
        self.key(field, 2)
        self.varint(UInt64(message.count))
        self.bytes.append(contentsOf: message)
    }

    /// Appends `message` with its length in front: the `encoding=delimited` framing of a scrape.
    mutating func delimited(_ message: [UInt8]) {
        self.varint(UInt64(message.count))
        self.bytes.append(contentsOf: message)
    }

    /// A nested message written by `body` into a scratch writer, then embedded with its length.
    mutating func message(_ field: Int, _ body: (inout ProtobufWriter) -> Void) {
        var inner = ProtobufWriter()
        body(&inner)
        self.embedded(field, inner.bytes)
    }
}
