import Foundation
import ObjectStorage

/// A step of the resolution pass: it runs after the whole document is parsed, reads what lives outside the file
/// (secret files and variables, TLS files) and reports problems at the path of the key that named them.
typealias Resolution = (inout Reader, inout CanaryConfiguration) -> Void

extension Reader {
    /// A secret key given as `KEY` (the value), `KEY_env` (a variable) or `KEY_file` (a file), with the path of the
    /// form used; `nil` when none is given or more than one is (reported). Nothing is read yet.
    mutating func secretSource<Key>(_ section: ConfigSection<Key>, _ key: Key) -> (SecretSource, String)? {
        let given = key.forms.filter { section.entries[$0] != nil }
        if given.count > 1 {
            self.problem(section.path(key), "is given as \(given.joined(separator: " and ")); keep one")
            return nil
        }
        // The forms in their order: the value itself, a variable's name, a file's path.
        let sources: [(String) -> SecretSource] = [SecretSource.value, SecretSource.environment, SecretSource.file]
        for (form, source) in zip(key.forms, sources) {
            if let (n, p) = section.entries[form] { return self.string(n, p).map { (source($0), p) } }
        }
        return nil
    }

    /// Runs `step` in the resolution pass, once the document is parsed.
    mutating func afterParsing(_ step: @escaping Resolution) {
        self.resolutions.append(step)
    }

    /// Reads the secret in the resolution pass and hands its value to `apply`; a missing file or variable is a
    /// problem at `path`, and `apply` is not called.
    mutating func resolveLater(
        _ source: SecretSource, _ path: String,
        _ apply: @escaping (inout Reader, inout CanaryConfiguration, String) -> Void = { _, _, _ in }
    ) {
        self.afterParsing { reader, configuration in
            if let value = reader.resolveSecret(source, path) { apply(&reader, &configuration, value) }
        }
    }

    /// The resolution pass: every step registered while parsing, in the order the keys were read.
    mutating func resolve(_ configuration: inout CanaryConfiguration) {
        let steps = self.resolutions
        self.resolutions = []
        for step in steps { step(&self, &configuration) }
    }

    /// Reads a secret now, reporting a missing file or variable as a problem at `path`.
    mutating func resolveSecret(_ source: SecretSource, _ path: String) -> String? {
        do {
            return try source.resolve(field: path, environment: self.environment)
        } catch let error as ConfigurationError {
            for problem in error.problems { self.problem(problem.field, problem.message) }
        } catch {
            self.problem(path, "\(error)")
        }
        return nil
    }
}
