/// One thing wrong with a configuration, naming the field and the fix.
///
/// Validation collects every problem instead of stopping at the first, so an operator fixes a file in one go.
public struct ConfigurationProblem: Error, Sendable, Equatable, CustomStringConvertible {
    /// A path to the offending field, such as `endpoint` or `pool.maxConnections`.
    public var field: String
    /// What is wrong and how to fix it.
    public var message: String

    /// A problem with `field`, explained by `message`.
    public init(field: String, message: String) {
        self.field = field
        self.message = message
    }

    /// `field: message`, one line per problem in reports.
    public var description: String { "\(self.field): \(self.message)" }

    /// The same problem, with its field placed under `parent` (for nesting in a larger configuration).
    public func nested(under parent: String) -> ConfigurationProblem {
        ConfigurationProblem(field: parent.isEmpty ? self.field : "\(parent).\(self.field)", message: self.message)
    }
}

/// A configuration that cannot be used, with every problem found.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    /// Every problem found, in the order validation met them.
    public var problems: [ConfigurationProblem]

    /// An error carrying `problems`.
    public init(problems: [ConfigurationProblem]) {
        self.problems = problems
    }

    /// An error with a single problem.
    public init(field: String, message: String) {
        self.problems = [ConfigurationProblem(field: field, message: message)]
    }

    /// Every problem, one per line.
    public var description: String {
        self.problems.map(\.description).joined(separator: "\n")
    }
}
