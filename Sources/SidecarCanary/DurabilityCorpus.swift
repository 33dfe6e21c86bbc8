import Crypto
public import Foundation
public import NIOCore
public import SidecarConfig

/// What a durability corpus is, independent of any server: its keys, each object's content (derived from its key,
/// so no copy of the data is kept anywhere) and the manifest that says the corpus is complete.
public struct DurabilityCorpus: Sendable, Equatable {
    /// The rule that derives an object's bytes from its key, named in the manifest: SplitMix64 seeded with the first
    /// eight bytes (big-endian) of the SHA-256 of the key, each 64-bit output written little-endian, cut at the size.
    public static let contentRule = "splitmix64-sha256-key-v1"

    /// Where the corpus lives, ending in `/`.
    public var prefix: String
    /// Objects in the corpus.
    public var objects: Int
    /// Each object's size in bytes.
    public var objectSize: Int

    public init(prefix: String, objects: Int, objectSize: Int) {
        self.prefix = prefix
        self.objects = objects
        self.objectSize = objectSize
    }

    /// The manifest's key: written last, when every object is there, and never overwritten.
    public var manifestKey: String { "\(self.prefix)manifest.json" }

    /// Where an instance keeps how far its full pass got and what it found damaged.
    public func progressKey(instance: String) -> String { "\(self.prefix)progress/\(instance).json" }

    /// The key of object `index`: `<prefix>objects/<index, eight digits>`.
    public func key(_ index: Int) -> String {
        let digits = String(index)
        return "\(self.prefix)objects/\(String(repeating: "0", count: max(0, 8 - digits.count)))\(digits)"
    }

    /// The index of a corpus key, or `nil` for another key.
    public func index(of key: String) -> Int? {
        let head = "\(self.prefix)objects/"
        guard key.hasPrefix(head), let index = Int(key.dropFirst(head.count)), index >= 0, index < self.objects else {
            return nil
        }
        return index
    }

    /// The bytes object `index` must hold.
    public func content(_ index: Int) -> ByteBuffer {
        Self.content(forKey: self.key(index), size: self.objectSize)
    }

    /// The bytes the object at `key` must hold under ``contentRule``.
    public static func content(forKey key: String, size: Int) -> ByteBuffer {
        var state = SHA256.hash(data: Data(key.utf8)).prefix(8).reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
        var buffer = ByteBuffer()
        buffer.reserveCapacity(size)
        var remaining = size
        while remaining > 0 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            if remaining >= 8 {
                buffer.writeInteger(z, endianness: .little)
                remaining -= 8
            } else {
                for shift in 0..<remaining { buffer.writeInteger(UInt8(truncatingIfNeeded: z >> (8 * UInt64(shift)))) }
                remaining = 0
            }
        }
        return buffer
    }

    /// Whether `body` is exactly what object `index` must hold.
    public func holds(_ body: ByteBuffer, at index: Int) -> Bool {
        body.readableBytes == self.objectSize && body == self.content(index)
    }
}

/// The manifest object: the corpus is complete, and what it is. Written once with `If-None-Match: *`.
public struct DurabilityManifest: Sendable, Equatable, Codable {
    public var format = 1
    public var objects: Int
    public var objectSize: Int
    public var content: String
    public var created: Date
    public var createdBy: String

    enum CodingKeys: String, CodingKey {
        case format, objects, content, created
        case objectSize = "object_size"
        case createdBy = "created_by"
    }

    public init(objects: Int, objectSize: Int, created: Date, createdBy: String) {
        self.objects = objects
        self.objectSize = objectSize
        self.content = DurabilityCorpus.contentRule
        self.created = created
        self.createdBy = createdBy
    }

    static let encoder: JSONEncoder = {
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        encoder.outputFormatting = [.sortedKeys]
        return encoder
    }()

    static let decoder: JSONDecoder = {
        let decoder = JSONDecoder()
        decoder.dateDecodingStrategy = .iso8601
        return decoder
    }()
}

/// An instance's own record in the bucket (`<prefix>progress/<instance>.json`): where its full pass is, when the last
/// one ended, and the objects it found damaged, so a restart neither starts the pass over nor announces a loss twice.
public struct DurabilityProgress: Sendable, Equatable, Codable {
    /// A damaged object.
    public struct Damage: Sendable, Equatable, Codable {
        public enum State: String, Sendable, Codable, CaseIterable {
            case missing, corrupted
        }
        public var index: Int
        public var state: State
        /// When it was first found so.
        public var since: Date

        public init(index: Int, state: State, since: Date) {
            self.index = index
            self.state = state
            self.since = since
        }
    }

    public var format = 1
    /// The next index of the full pass under way; `nil` when none is.
    public var position: Int?
    /// When the pass under way started.
    public var passStarted: Date?
    /// When the last full pass ended (the corpus's creation counts as one).
    public var lastFullPass: Date?
    /// The damaged objects, by index.
    public var damaged: [Damage] = []

    enum CodingKeys: String, CodingKey {
        case format, position, damaged
        case passStarted = "pass_started"
        case lastFullPass = "last_full_pass"
    }

    public init() {}
}
