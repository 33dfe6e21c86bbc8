public import Foundation
import ObjectStorage

/// A secret given as a literal value, the name of an environment variable, or the path of a file.
///
/// Files are how Kubernetes and systemd hand secrets over; their trailing newline is dropped.
public enum SecretSource: Sendable, Equatable {
    case value(String)
    case environment(String)
    case file(String)

    /// Reads the secret now; `field` names it in the error.
    public func resolve(
        field: String, environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws
        -> String
    {
        switch self {
        case .value(let value):
            guard !value.isEmpty else {
                throw ConfigurationError(field: field, message: "is empty; give the value, or use a _env or _file form")
            }
            return value
        case .environment(let name):
            guard let value = environment[name], !value.isEmpty else {
                throw ConfigurationError(
                    field: field,
                    message: "environment variable \(name) is not set or empty; export it or name another variable"
                )
            }
            return value
        case .file(let path):
            let data: Data
            do {
                data = try Data(contentsOf: URL(fileURLWithPath: path))
            } catch {
                throw ConfigurationError(
                    field: field,
                    message: "cannot read file \(path); check that it exists and is readable by this process"
                )
            }
            var text = String(decoding: data, as: UTF8.self)
            while let last = text.last, last == "\n" || last == "\r" { text.removeLast() }
            guard !text.isEmpty else {
                throw ConfigurationError(field: field, message: "file \(path) is empty; write the secret into it")
            }
            return text
        }
    }
}
