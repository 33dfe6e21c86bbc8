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

    mutating func key(_ field: Int, _ wireType: UInt64) {
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
        self.varint(Self.zigzag(value))
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

    /// Appends another writer's bytes as a nested message with its length (a scratch writer the caller reuses, so
    /// a scrape of thousands of series does not allocate per message).
    mutating func embedded(_ field: Int, _ message: ProtobufWriter) {
        self.embedded(field, message.bytes)
    }

    // Small messages whose size is known up front are written in place, without a scratch copy.

    static func varintSize(_ value: UInt64) -> Int {
        var size = 1
        var rest = value >> 7
        while rest != 0 {
            size += 1
            rest >>= 7
        }
        return size
    }

    static func stringFieldSize(_ value: String) -> Int {
        let count = value.utf8.count
        return 1 + Self.varintSize(UInt64(count)) + count
    }

    static func zigzag(_ value: Int64) -> UInt64 { UInt64(bitPattern: (value << 1) ^ (value >> 63)) }

    /// A `LabelPair {name = 1, value = 2}` as field `field`.
    mutating func labelPair(_ field: Int, name: String, value: String) {
        self.key(field, 2)
        self.varint(UInt64(Self.stringFieldSize(name) + Self.stringFieldSize(value)))
        self.string(1, name)
        self.string(2, value)
    }

    /// A message holding one double in its field 1 (`Gauge`, `Counter`) as field `field`.
    mutating func doubleMessage(_ field: Int, _ value: Double) {
        self.key(field, 2)
        self.varint(9)
        self.double(1, value)
    }

    /// A `BucketSpan {offset = 1 (sint32), length = 2}` as field `field`.
    mutating func span(_ field: Int, offset: Int32, length: UInt32) {
        let zigzag = Self.zigzag(Int64(offset))
        self.key(field, 2)
        self.varint(UInt64(2 + Self.varintSize(zigzag) + Self.varintSize(UInt64(length))))
        self.key(1, 0)
        self.varint(zigzag)
        self.unsigned(2, UInt64(length))
    }

    /// An `Exemplar {label = 1, value = 2, timestamp = 3 (seconds = 1, nanos = 2)}` as field `field`.
    mutating func exemplar(_ field: Int, labelName: String, labelValue: String, value: Double, timestamp: Double) {
        let (seconds, nanos) = Self.timestampParts(timestamp)
        self.key(field, 2)
        self.varint(UInt64(Self.exemplarSize(labelName: labelName, labelValue: labelValue, timestamp: timestamp)))
        self.labelPair(1, name: labelName, value: labelValue)
        self.double(2, value)
        self.key(3, 2)
        self.varint(UInt64(2 + Self.varintSize(seconds) + Self.varintSize(nanos)))
        self.unsigned(1, seconds)
        self.unsigned(2, nanos)
    }

    /// The encoded size of ``exemplar(_:labelName:labelValue:value:timestamp:)`` without its own key and length.
    static func exemplarSize(labelName: String, labelValue: String, timestamp: Double) -> Int {
        let (seconds, nanos) = Self.timestampParts(timestamp)
        let pair = Self.stringFieldSize(labelName) + Self.stringFieldSize(labelValue)
        let stamp = 2 + Self.varintSize(seconds) + Self.varintSize(nanos)
        return 1 + Self.varintSize(UInt64(pair)) + pair + 9 + 1 + Self.varintSize(UInt64(stamp)) + stamp
    }

    /// A `google.protobuf.Timestamp`'s whole seconds and nanoseconds of a Unix time in seconds.
    private static func timestampParts(_ timestamp: Double) -> (seconds: UInt64, nanos: UInt64) {
        let seconds = timestamp.rounded(.down)
        return (UInt64(max(0, seconds)), UInt64(min(999_999_999, max(0, ((timestamp - seconds) * 1e9).rounded()))))
    }
}
