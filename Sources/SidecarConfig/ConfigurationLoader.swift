public import Foundation
public import ObjectStorage
import Yams

/// Reads the YAML configuration: `${ENV}` expansion in values, `*_file` and `*_env` secrets, durations, sizes,
/// per-backend overrides, unknown keys rejected. Every problem is collected with its path
/// (`backends[1].endpoint: ...`) so one run of `check-config` lists them all.
public struct ConfigurationLoader: Sendable {
    /// The variables `*_env` secrets and the bearer token are read from (tests pass their own).
    public var environment: [String: String]
    var hostName: String

    /// A loader that reads this process's environment and host name unless given others.
    public init(
        environment: [String: String] = ProcessInfo.processInfo.environment,
        hostName: String = ProcessInfo.processInfo.hostName
    ) {
        self.environment = environment
        self.hostName = hostName
    }

    /// Loads and validates the file at `path`.
    public func load(path: String) throws(ConfigurationError) -> CanaryConfiguration {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ConfigurationError(field: "config", message: "cannot read \(path); check the path and permissions")
        }
        return try self.load(data: data)
    }

    /// Loads and validates a YAML document.
    func load(data: Data) throws(ConfigurationError) -> CanaryConfiguration {
        guard data.count <= 1 << 20 else {
            throw ConfigurationError(
                field: "config", message: "is larger than 1 MiB; this cannot be a canary configuration")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigurationError(field: "config", message: "is not valid UTF-8; save the file as UTF-8")
        }
        let node: Node?
        do {
            // The basic resolver tags every scalar as a string: the reader reads scalars' text and types it itself
            // (bool, integer, duration, with errors naming the key). Yams's default resolver would test each plain
            // scalar against its regular expressions, which compiles them with ICU on the first load: about 5 ms of
            // every start and ICU's pages resident, for tags nothing reads. (`<<` merge keys were never merged.)
            node = try Yams.compose(yaml: text, .basic)
        } catch {
            var message = "is not valid YAML: \(Self.describe(error))"
            if text.contains("${") {
                // `{` and `}` are YAML flow indicators: `{key: ${VAR}}` does not parse, `{key: "${VAR}"}` does.
                message += #"; inside { } mappings, quote values that use ${VAR}, such as "${CEPH_KEY}""#
            }
            throw ConfigurationError(field: "config", message: message)
        }
        guard let root = node else {
            throw ConfigurationError(field: "config", message: "is empty; at least one backend is needed")
        }
        var reader = Reader(environment: self.environment)
        let configuration = reader.configuration(root, hostName: self.hostName)
        guard reader.problems.isEmpty, let configuration else {
            throw ConfigurationError(problems: reader.problems)
        }
        return configuration
    }

    static func describe(_ error: any Error) -> String {
        // Never the offending line itself: it may hold a secret, and a fuzzed line can be megabytes long.
        if let error = error as? YamlError {
            switch error {
            case .scanner(let context, let problem, let mark, _), .parser(let context, let problem, let mark, _),
                .composer(let context, let problem, let mark, _):
                var text = "line \(mark.line), column \(mark.column): \(problem)"
                if let context { text += " (\(context.text) from line \(context.mark.line))" }
                return String(text.prefix(300))
            case .reader(let problem, let offset, _, _):
                return "\(problem) at byte \(offset.map(String.init) ?? "?")"
            default:
                return String("\(error)".prefix { $0 != "\n" }.prefix(300))
            }
        }
        return "\(error)"
    }
}

/// Walks the YAML tree, collecting problems instead of stopping at the first.
struct Reader {
    let environment: [String: String]
    var problems: [ConfigurationProblem] = []
    /// Bounds the work on hostile input (alias bombs expand into shared nodes that a walk would multiply).
    var budget = 50_000
    /// The resolution pass's steps, registered while parsing (`Reader+Secrets.swift`).
    var resolutions: [Resolution] = []

    init(environment: [String: String]) {
        self.environment = environment
    }

    /// What has been reported, so a repeated problem is listed once without a quadratic search.
    private var reported: Set<String> = []

    /// Records a problem. Messages quote values; a hostile value (megabytes on one line) is cut to its ends.
    mutating func problem(_ path: String, _ message: String) {
        let path = Self.clipped(path, to: 200)
        let message = Self.clipped(message, to: 400)
        if self.reported.insert(path + "\u{0}" + message).inserted {
            self.problems.append(ConfigurationProblem(field: path, message: message))
        }
    }

    static func clipped(_ text: String, to limit: Int) -> String {
        guard text.count > limit else { return text }
        return "\(text.prefix(limit / 2))…(\(text.count - limit) characters)…\(text.suffix(limit / 2))"
    }

    // MARK: - Shapes

    /// A mapping's entries, with unknown keys reported.
    mutating func mapping(_ node: Node, _ path: String, allowed: [String]) -> [String: (Node, String)]? {
        self.budget -= 1
        guard self.budget > 0 else {
            self.problem(path, "the document is too large or too deeply aliased")
            return nil
        }
        guard case .mapping(let mapping) = node else {
            self.problem(path.isEmpty ? "config" : path, "must be a mapping (key: value lines), not \(Self.kind(node))")
            return nil
        }
        var out: [String: (Node, String)] = [:]
        for (keyNode, value) in mapping {
            guard case .scalar(let key) = keyNode else {
                self.problem(path, "keys must be plain strings")
                continue
            }
            let childPath = path.isEmpty ? key.string : "\(path).\(key.string)"
            guard allowed.contains(key.string) else {
                let hint = Self.closest(key.string, in: allowed).map { "; did you mean \($0)?" } ?? ""
                self.problem(childPath, "unknown key\(hint) (allowed: \(allowed.joined(separator: ", ")))")
                continue
            }
            if out[key.string] != nil {
                self.problem(childPath, "is given twice; keep one")
            }
            out[key.string] = (value, childPath)
        }
        return out
    }

    static func kind(_ node: Node) -> String {
        switch node {
        case .mapping: "a mapping"
        case .sequence: "a list"
        case .scalar: "a single value"
        case .alias: "an alias"
        }
    }

    static func closest(_ key: String, in allowed: [String]) -> String? {
        func distance(_ a: String, _ b: String) -> Int {
            let a = Array(a), b = Array(b)
            var row = Array(0...b.count)
            for i in 1...max(a.count, 1) where !a.isEmpty {
                var previous = row[0]
                row[0] = i
                for j in stride(from: 1, through: b.count, by: 1) {
                    let current = row[j]
                    row[j] = min(row[j] + 1, row[j - 1] + 1, previous + (a[i - 1] == b[j - 1] ? 0 : 1))
                    previous = current
                }
            }
            return row[b.count]
        }
        let best = allowed.map { ($0, distance(key, $0)) }.min { $0.1 < $1.1 }
        guard let best, best.1 <= 3 else { return nil }
        return best.0
    }

    /// A scalar's text after `${VAR}` expansion.
    mutating func string(_ node: Node, _ path: String) -> String? {
        guard case .scalar(let scalar) = node else {
            self.problem(path, "must be a single value, not \(Self.kind(node))")
            return nil
        }
        if scalar.string.isEmpty || (scalar.style == .plain && ["~", "null", "Null", "NULL"].contains(scalar.string)) {
            self.problem(path, "is empty; give a value or remove the key")
            return nil
        }
        return self.expand(scalar.string, path)
    }

    /// Expands `${VAR}` and `${VAR:-default}`; `$$` is a literal `$`. An undefined variable is an error, never an
    /// empty value.
    mutating func expand(_ text: String, _ path: String) -> String? {
        guard text.contains("$") else { return text }
        var out = ""
        var index = text.startIndex
        var failed = false
        while index < text.endIndex {
            let character = text[index]
            let next = text.index(after: index)
            if character == "$", next < text.endIndex, text[next] == "$" {
                out.append("$")
                index = text.index(after: next)
            } else if character == "$", next < text.endIndex, text[next] == "{" {
                guard let close = text[next...].firstIndex(of: "}") else {
                    self.problem(path, "has an unclosed ${; write ${NAME}, or $$ for a literal $")
                    return nil
                }
                let body = String(text[text.index(after: next)..<close])
                let parts = body.components(separatedBy: ":-")
                let name = parts[0]
                if name.isEmpty || !name.allSatisfy({ $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "_") }) {
                    self.problem(path, "${\(body)} is not a variable name")
                    failed = true
                } else if let value = self.environment[name], !value.isEmpty {
                    out += value
                } else if parts.count > 1 {
                    out += parts.dropFirst().joined(separator: ":-")
                } else {
                    self.problem(
                        path, "environment variable \(name) is not set; export it or write ${\(name):-default}")
                    failed = true
                }
                index = text.index(after: close)
            } else {
                out.append(character)
                index = next
            }
        }
        return failed ? nil : out
    }

    mutating func bool(_ node: Node, _ path: String) -> Bool? {
        guard let text = self.string(node, path) else { return nil }
        switch text.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default:
            self.problem(path, "\"\(text)\" is not true or false")
            return nil
        }
    }

    mutating func integer(_ node: Node, _ path: String, range: ClosedRange<Int>) -> Int? {
        guard let text = self.string(node, path) else { return nil }
        guard let value = Int(text) else {
            self.problem(path, "\"\(text)\" is not a whole number")
            return nil
        }
        guard range.contains(value) else {
            self.problem(path, "\(value) is out of range \(range.lowerBound)...\(range.upperBound)")
            return nil
        }
        return value
    }

    mutating func duration(
        _ node: Node, _ path: String, min: Duration = .milliseconds(1), max: Duration = .seconds(86_400)
    )
        -> Duration?
    {
        guard let text = self.string(node, path) else { return nil }
        guard let value = Self.parseDuration(text) else {
            self.problem(path, "\"\(text)\" is not a duration; write it with a unit, such as 500ms, 15s, 2m or 1h30m")
            return nil
        }
        guard value >= min, value <= max else {
            self.problem(path, "\(text) is out of range \(min)...\(max)")
            return nil
        }
        return value
    }

    static func parseDuration(_ text: String) -> Duration? {
        let units: [(String, Double)] = [("ms", 0.001), ("h", 3600), ("m", 60), ("s", 1)]
        var rest = Substring(text.trimmingCharacters(in: .whitespaces))
        guard !rest.isEmpty else { return nil }
        var total = 0.0
        while !rest.isEmpty {
            let number = rest.prefix { $0.isNumber || $0 == "." }
            guard !number.isEmpty, let value = Double(number), value.isFinite else { return nil }
            rest = rest.dropFirst(number.count)
            guard let unit = units.first(where: { rest.hasPrefix($0.0) }) else { return nil }
            rest = rest.dropFirst(unit.0.count)
            total += value * unit.1
            guard total < 1e9 else { return nil }
        }
        return .milliseconds(Int64((total * 1000).rounded()))
    }

    mutating func size(_ node: Node, _ path: String, range: ClosedRange<Int>) -> Int? {
        guard let text = self.string(node, path) else { return nil }
        let units: [(String, Int)] = [
            ("KiB", 1 << 10), ("MiB", 1 << 20), ("GiB", 1 << 30), ("KB", 1000), ("MB", 1_000_000), ("B", 1), ("", 1),
        ]
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        for (suffix, multiplier) in units where trimmed.hasSuffix(suffix) {
            let number = trimmed.dropLast(suffix.count).trimmingCharacters(in: .whitespaces)
            guard let value = Int(number), value >= 0 else { continue }
            let (bytes, overflow) = value.multipliedReportingOverflow(by: multiplier)
            guard !overflow, range.contains(bytes) else {
                self.problem(path, "\(text) is out of range \(range.lowerBound)...\(range.upperBound) bytes")
                return nil
            }
            return bytes
        }
        self.problem(path, "\"\(text)\" is not a size; write it such as 1KiB, 64KiB or 1024")
        return nil
    }

    mutating func fraction(_ node: Node, _ path: String) -> Double? {
        guard let text = self.string(node, path) else { return nil }
        let trimmed = text.trimmingCharacters(in: .whitespaces)
        let value = trimmed.hasSuffix("%") ? Double(trimmed.dropLast()).map { $0 / 100 } : Double(trimmed)
        guard let value, value.isFinite, (0...0.5).contains(value) else {
            self.problem(path, "\"\(text)\" is not a fraction between 0% and 50%; write it such as 10% or 0.1")
            return nil
        }
        return value
    }

    mutating func list(_ node: Node, _ path: String) -> [(Node, String)]? {
        guard case .sequence(let sequence) = node else {
            self.problem(path, "must be a list (lines starting with -), not \(Self.kind(node))")
            return nil
        }
        self.budget -= sequence.count
        guard self.budget > 0 else {
            self.problem(path, "the document is too large or too deeply aliased")
            return nil
        }
        return sequence.enumerated().map { ($1, "\(path)[\($0)]") }
    }
}
