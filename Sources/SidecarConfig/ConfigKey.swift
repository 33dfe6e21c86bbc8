import Foundation
import Yams

/// How a key's value is written: what the reader accepts and what the reference says.
public enum ConfigValueType: Sendable, Equatable {
    case string
    case bool
    case integer(ClosedRange<Int>)
    case duration(min: Duration, max: Duration)
    /// Bytes: `1024`, `1KiB`, `64KiB`, `1MiB`, `1KB`.
    case size(ClosedRange<Int>)
    /// A share of the interval: `10%` or `0.1`, 0 to 50 %.
    case fraction
    /// A share strictly between 0 and 1: `99.9%` or `0.999`.
    case objective
    case number
    /// One of these words.
    case choice([String])
    /// A list of what the text says.
    case list(String)
    /// A mapping of what the text says (`user: bcrypt hash`).
    case mapping(String)
    /// A mapping with its own key table (the section named).
    case section(String)
    /// A list of mappings, each with the key table of the section named.
    case sections(String)

    /// The type as the reference writes it.
    public var name: String {
        switch self {
        case .string: "string"
        case .bool: "bool"
        case .integer: "integer"
        case .duration: "duration"
        case .size: "size"
        case .fraction: "fraction"
        case .objective: "objective"
        case .number: "number"
        case .choice: "one of"
        case .list(let of): "list of \(of)"
        case .mapping(let of): "mapping of \(of)"
        case .section(let name): "section `\(name)`"
        case .sections(let name): "list of section `\(name)`"
        }
    }

    /// The values the reader accepts, as the reference writes them; empty when any value of the type is.
    public var allowed: String {
        switch self {
        case .integer(let range): "\(range.lowerBound) to \(range.upperBound)"
        case .duration(let min, let max): "\(ConfigValueType.text(min)) to \(ConfigValueType.text(max))"
        case .size(let range):
            "\(ConfigValueType.text(bytes: range.lowerBound)) to \(ConfigValueType.text(bytes: range.upperBound))"
        case .fraction: "0% to 50%"
        case .objective: "above 0% and below 100%"
        case .choice(let words): words.map { "`\($0)`" }.joined(separator: ", ")
        default: ""
        }
    }

    /// A duration as it is written in the configuration (`100ms`, `5s`, `24h`).
    static func text(_ duration: Duration) -> String {
        let milliseconds = duration.components.seconds * 1000 + duration.components.attoseconds / 1_000_000_000_000_000
        if milliseconds % 3_600_000 == 0 { return "\(milliseconds / 3_600_000)h" }
        if milliseconds % 60_000 == 0 { return "\(milliseconds / 60_000)m" }
        if milliseconds % 1000 == 0 { return "\(milliseconds / 1000)s" }
        return "\(milliseconds)ms"
    }

    /// A size as it is written in the configuration (`1KiB`, `64MiB`).
    static func text(bytes: Int) -> String {
        for (unit, size) in [("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)]
        where bytes >= size && bytes % size == 0 {
            return "\(bytes / size)\(unit)"
        }
        return "\(bytes)"
    }
}

/// One key of a section: its type, default, and what it does. Declared once, in the section's key table beside
/// the code that reads it; the unknown-key check, the typed lookups and `s3-canary config-docs` all read it.
public struct ConfigKeySpec: Sendable {
    public var type: ConfigValueType
    /// The default as it would be written in the file; `nil` when the key has none (required, or off when absent).
    public var defaultValue: String?
    public var required: Bool
    /// Given as `KEY` (the value), `KEY_env` (a variable) or `KEY_file` (a file); never shown anywhere.
    public var secret: Bool
    /// Read at start-up only: a reload keeps the running value and logs a warning (`ReloadOwner`).
    public var restart: Bool
    /// One line: what the key does.
    public var summary: String

    public init(
        _ type: ConfigValueType, default defaultValue: String? = nil, required: Bool = false, secret: Bool = false,
        restart: Bool = false, _ summary: String
    ) {
        self.type = type
        self.defaultValue = defaultValue
        self.required = required
        self.secret = secret
        self.restart = restart
        self.summary = summary
    }
}

/// A section's key table: one case per key, its spec beside it.
public protocol ConfigSectionKey: RawRepresentable<String>, CaseIterable, Hashable, Sendable {
    /// Where the section sits, as problems name it: `probe`, `backends[].credentials`.
    static var section: String { get }
    /// One line: what the section is for.
    static var summary: String { get }
    var spec: ConfigKeySpec { get }
}

extension ConfigSectionKey {
    /// The names this key may be written as: a secret also as `KEY_env` (a variable) and `KEY_file` (a file), in
    /// that order.
    var forms: [String] {
        self.spec.secret ? [self.rawValue, "\(self.rawValue)_env", "\(self.rawValue)_file"] : [self.rawValue]
    }

    /// Every key name the section accepts.
    static var acceptedNames: [String] { Self.allCases.flatMap(\.forms) }
}

/// Every section's key table, in the order the reference lists them.
public enum ConfigSections {
    public static let all: [any ConfigSectionKey.Type] = [
        TopLevelKey.self, ServerKey.self, ServerTLSKey.self, ProbeKey.self, MultipartKey.self, BreakerKey.self,
        MetricsKey.self, SLOKey.self, LatencyObjectiveKey.self, DNSKey.self, BackendKey.self, BackendTLSKey.self,
        DurabilityKey.self, CredentialsKey.self, WebhookKey.self, AlertmanagersKey.self, AlertmanagerBasicAuthKey.self,
        ShardingKey.self,
    ]
}

/// A mapping read against a key table: unknown keys are already reported, lookups take only declared keys.
struct ConfigSection<Key: ConfigSectionKey> {
    /// The section's own path (`backends[0].probe`).
    let path: String
    /// Entries by the name written (a secret's `_env` and `_file` forms under their own names).
    let entries: [String: (Node, String)]

    subscript(_ key: Key) -> (Node, String)? { self.entries[key.rawValue] }

    /// Whether the key is given in any of its forms.
    func has(_ key: Key) -> Bool { key.forms.contains { self.entries[$0] != nil } }

    /// The path a problem about the key names, whether or not it is given.
    func path(_ key: Key) -> String { self.path.isEmpty ? key.rawValue : "\(self.path).\(key.rawValue)" }
}

extension Reader {
    /// The mapping at `node` read against `Key`'s table: unknown keys reported with a hint and the allowed ones.
    mutating func section<Key: ConfigSectionKey>(_ node: Node, _ path: String, _: Key.Type) -> ConfigSection<Key>? {
        guard let entries = self.mapping(node, path, allowed: Key.acceptedNames) else { return nil }
        return ConfigSection(path: path, entries: entries)
    }

    /// A duration key, within its declared range.
    mutating func duration<Key>(_ section: ConfigSection<Key>, _ key: Key) -> Duration? {
        guard let (node, path) = section[key] else { return nil }
        guard case .duration(let min, let max) = key.spec.type else { return self.duration(node, path) }
        return self.duration(node, path, min: min, max: max)
    }

    /// An integer key, within its declared range.
    mutating func integer<Key>(_ section: ConfigSection<Key>, _ key: Key) -> Int? {
        guard let (node, path) = section[key] else { return nil }
        guard case .integer(let range) = key.spec.type else {
            return self.integer(node, path, range: Int.min...Int.max)
        }
        return self.integer(node, path, range: range)
    }

    /// A size key, within its declared range.
    mutating func size<Key>(_ section: ConfigSection<Key>, _ key: Key) -> Int? {
        guard let (node, path) = section[key] else { return nil }
        guard case .size(let range) = key.spec.type else { return self.size(node, path, range: 0...Int.max) }
        return self.size(node, path, range: range)
    }

    mutating func bool<Key>(_ section: ConfigSection<Key>, _ key: Key) -> Bool? {
        section[key].flatMap { self.bool($0.0, $0.1) }
    }

    mutating func string<Key>(_ section: ConfigSection<Key>, _ key: Key) -> String? {
        section[key].flatMap { self.string($0.0, $0.1) }
    }

    /// A `choice` key: one of its declared words, or a problem listing them.
    mutating func choice<Key>(_ section: ConfigSection<Key>, _ key: Key) -> String? {
        guard let (node, path) = section[key], let text = self.string(node, path) else { return nil }
        guard case .choice(let words) = key.spec.type, !words.contains(text) else { return text }
        self.problem(path, "\"\(text)\" is not one of \(words.joined(separator: ", "))")
        return nil
    }
}
