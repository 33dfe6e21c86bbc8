public import Foundation
public import Logging
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// One JSON object per line on stderr (`--log-format json`), for log shippers.
///
/// Lines are built by hand (keys sorted, strings escaped), so a line can never fail to encode, and written whole
/// under one process-wide lock, so lines from concurrent tasks never interleave. Timestamps are UTC with
/// milliseconds, formatted without a date formatter per line.
public struct JSONLogHandler: LogHandler {
    /// Lowest level that is written.
    public var logLevel: Logger.Level = .info
    /// Metadata added to every line of this handler.
    public var metadata: Logger.Metadata = [:]
    /// Provides metadata at log time (such as task-local context).
    public var metadataProvider: Logger.MetadataProvider?
    let label: String
    let now: @Sendable () -> Date
    let write: @Sendable ([UInt8]) -> Void

    /// Serialises writes from every handler of the process.
    private static let output = Mutex(())

    /// A handler for the logger named `label`.
    ///
    /// - Parameters:
    ///   - now: the time a line is stamped with (tests pass a fixed one).
    ///   - write: where a finished line goes; standard error by default.
    public init(
        label: String,
        now: @escaping @Sendable () -> Date = { Date() },
        write: @escaping @Sendable ([UInt8]) -> Void = JSONLogHandler.standardError
    ) {
        self.label = label
        self.now = now
        self.write = write
    }

    /// One entry of ``metadata``.
    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { self.metadata[key] }
        set { self.metadata[key] = newValue }
    }

    /// Writes one line: `ts`, `level`, `logger`, `msg` and the merged metadata as string fields.
    public func log(event: LogEvent) {
        var fields: [String: String] = [
            "ts": Self.timestamp(self.now()),
            "level": event.level.rawValue,
            "logger": self.label,
            "msg": event.message.description,
        ]
        var merged = self.metadata
        if let provided = self.metadataProvider?.get() { merged.merge(provided) { $1 } }
        if let extra = event.metadata { merged.merge(extra) { $1 } }
        for (key, value) in merged { fields[key] = "\(value)" }
        var line: [UInt8] = [UInt8(ascii: "{")]
        for (index, key) in fields.keys.sorted().enumerated() {
            if index > 0 { line.append(UInt8(ascii: ",")) }
            Self.appendString(key, to: &line)
            line.append(UInt8(ascii: ":"))
            Self.appendString(fields[key] ?? "", to: &line)
        }
        line.append(contentsOf: [UInt8(ascii: "}"), UInt8(ascii: "\n")])
        self.write(line)
    }

    /// Writes a whole line to standard error under the process-wide lock.
    public static let standardError: @Sendable ([UInt8]) -> Void = { line in
        Self.output.withLock { _ in
            line.withUnsafeBytes { buffer in
                guard let base = buffer.baseAddress else { return }
                var offset = 0
                while offset < buffer.count {
                    let written = Glibc.write(2, base + offset, buffer.count - offset)
                    if written <= 0 { return }
                    offset += written
                }
            }
        }
    }

    /// A JSON string: quotes, backslashes and control characters escaped; slashes left readable.
    static func appendString(_ text: String, to out: inout [UInt8]) {
        out.append(UInt8(ascii: "\""))
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "\""): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\"")])
            case UInt8(ascii: "\\"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "\\")])
            case UInt8(ascii: "\n"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "n")])
            case UInt8(ascii: "\r"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "r")])
            case UInt8(ascii: "\t"): out.append(contentsOf: [UInt8(ascii: "\\"), UInt8(ascii: "t")])
            case 0..<0x20:
                let hex = Array("0123456789abcdef".utf8)
                out.append(contentsOf: Array("\\u00".utf8))
                out.append(hex[Int(byte >> 4)])
                out.append(hex[Int(byte & 0xF)])
            default: out.append(byte)
            }
        }
        out.append(UInt8(ascii: "\""))
    }

    /// `2026-11-26T07:12:03.042Z`: RFC 3339 in UTC with milliseconds.
    static func timestamp(_ date: Date) -> String {
        let millisTotal = Int64((date.timeIntervalSince1970 * 1000).rounded(.down))
        var seconds = time_t(millisTotal.quotientAndRemainder(dividingBy: 1000).quotient)
        var millis = Int(millisTotal % 1000)
        if millis < 0 {
            millis += 1000
            seconds -= 1
        }
        var parts = tm()
        gmtime_r(&seconds, &parts)
        func pad(_ value: Int32, _ width: Int) -> String {
            let digits = String(value)
            return String(repeating: "0", count: max(0, width - digits.count)) + digits
        }
        return "\(pad(parts.tm_year + 1900, 4))-\(pad(parts.tm_mon + 1, 2))-\(pad(parts.tm_mday, 2))T"
            + "\(pad(parts.tm_hour, 2)):\(pad(parts.tm_min, 2)):\(pad(parts.tm_sec, 2)).\(pad(Int32(millis), 3))Z"
    }
}
