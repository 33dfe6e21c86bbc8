import ArgumentParser
import CanarySidecar
import Foundation
import Logging
import ObjectStorage
import ServiceLifecycle
import SidecarCanary
import SidecarConfig
import SidecarServer
import SidecarTelemetry

@main
struct S3Canary: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "s3-canary",
        abstract: "Probes S3-compatible backends through circuit breakers and exports Prometheus metrics.",
        version: BuildInfo.current.versionText,
        subcommands: [
            Run.self, DemoCommand.self, CheckConfig.self, Probe.self, Compat.self, ConfigDocs.self,
            ConfigSchemaCommand.self, Healthcheck.self, DurabilityCommand.self,
        ]
    )

    static func main() async {
        Allocator.keepLargeBlocksOutOfTheHeap()
        await Self.main(nil)
    }
}

struct LoggingOptions: ParsableArguments {
    @Option(help: "trace, debug, info, notice, warning, error or critical.")
    var logLevel: String = "info"

    @Option(help: "text or json.")
    var logFormat: String = "text"

    func bootstrap() throws -> Logger {
        guard let level = Logger.Level(rawValue: self.logLevel) else {
            throw ValidationError(
                "--log-level \(self.logLevel) is not one of trace, debug, info, notice, warning, error, critical")
        }
        switch self.logFormat {
        case "text":
            LoggingSystem.bootstrap { label in
                var handler = StreamLogHandler.standardError(label: label)
                handler.logLevel = level
                return handler
            }
        case "json":
            LoggingSystem.bootstrap { label in
                var handler = JSONLogHandler(label: label)
                handler.logLevel = level
                return handler
            }
        default:
            throw ValidationError("--log-format \(self.logFormat) is not text or json")
        }
        return Logger(label: "s3-canary")
    }
}

struct ConfigOption: ParsableArguments {
    @Option(name: .long, help: "Configuration file (YAML). Defaults to $S3CANARY_CONFIG.")
    var config: String?

    func path() throws -> String {
        if let config { return config }
        if let fromEnvironment = ProcessInfo.processInfo.environment["S3CANARY_CONFIG"], !fromEnvironment.isEmpty {
            return fromEnvironment
        }
        throw ValidationError("no configuration: pass --config FILE or set S3CANARY_CONFIG")
    }

    /// The configured backends, or only the one named `name` (`--backend`); an unknown name lists the known ones.
    static func backends(
        of configuration: CanaryConfiguration, named name: String?
    ) throws
        -> [CanaryConfiguration.Backend]
    {
        guard let name else { return configuration.backends }
        let entries = configuration.backends.filter { $0.name == name }
        guard !entries.isEmpty else {
            throw ValidationError(
                """
                no backend named \(name); \
                configured: \(configuration.backends.map(\.name).joined(separator: ", "))
                """
            )
        }
        return entries
    }

    /// Loads the configuration or prints every problem and exits 2.
    func load() throws -> (CanaryConfiguration, String) {
        let path = try self.path()
        do {
            return (try ConfigurationLoader().load(path: path), path)
        } catch {
            let lines = error.problems.map { "  \($0.field): \($0.message)" }.joined(separator: "\n")
            FileHandle.standardError.write(
                Data(
                    """
                    configuration \(path) is invalid \
                    (\(error.problems.count) problem\(error.problems.count == 1 ? "" : "s")):\n\(lines)\n
                    """
                    .utf8))
            throw ExitCode(2)
        }
    }
}

struct Run: AsyncParsableCommand {
    // Every command names itself: ArgumentParser would derive the name from `String(describing: Self.self)` each time
    // it looks, which is a dynamic cast scanning every protocol conformance in the binary (start-up CPU).
    static let configuration = CommandConfiguration(commandName: "run", abstract: "Run the service.")

    @OptionGroup var configOption: ConfigOption
    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let (configuration, path) = try self.configOption.load()
        let logger = try self.logging.bootstrap()
        let service = CanaryService(
            configuration: configuration,
            configurationPath: path,
            metrics: try CanaryMetrics(
                version: BuildInfo.version, revision: BuildInfo.current.revision,
                swiftVersion: BuildInfo.current.swiftVersion, configuration: configuration.metrics),
            logger: logger
        )
        try await CanaryApplication(service: service, version: BuildInfo.version).run()
    }
}

struct DemoCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "demo",
        abstract: "Run on three in-memory backends, one failing in bursts; no account or network needed."
    )

    @Option(help: "Address to serve on.")
    var listen: String = "127.0.0.1:9340"

    @Option(help: "Add this many always-healthy in-memory backends, for load and soak runs.")
    var loadBackends: Int = 0

    @Option(help: "Probe interval of every backend, such as 250ms or 5s.")
    var interval: String = "5s"

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let logger = try self.logging.bootstrap()
        var listen = CanaryConfiguration.Listen()
        let parts = self.listen.split(separator: ":")
        guard parts.count == 2, let port = Int(parts[1]), (0...65535).contains(port) else {
            throw ValidationError("--listen \(self.listen) is not host:port, such as 127.0.0.1:9340")
        }
        listen.host = String(parts[0])
        listen.port = port
        guard (0...10_000).contains(self.loadBackends) else {
            throw ValidationError("--load-backends \(self.loadBackends) is out of range 0...10000")
        }
        guard let interval = Demo.parseDuration(self.interval), interval >= .milliseconds(50),
            interval <= .seconds(3600)
        else {
            throw ValidationError("--interval \(self.interval) is not a duration from 50ms to 1h, such as 250ms or 5s")
        }
        let configuration = Demo.configuration(listen: listen, loadBackends: self.loadBackends, interval: interval)
        let stores = Demo.Stores(names: configuration.backends.map(\.name))
        let service = CanaryService(
            configuration: configuration,
            configurationPath: nil,
            factory: stores.factory,
            metrics: try CanaryMetrics(
                version: BuildInfo.version, revision: BuildInfo.current.revision,
                swiftVersion: BuildInfo.current.swiftVersion, configuration: configuration.metrics),
            logger: logger
        )
        var extra: [any Service] = []
        if let flaky = stores["demo-flaky"] {
            extra.append(Demo.FaultDriver(store: flaky, logger: logger))
        }
        logger.notice(
            """
            demo: open http://\(self.listen)\(Route.statusPage.path) for the status page, \
            \(Route.metrics.path) for Prometheus
            """
        )
        try await CanaryApplication(service: service, extraServices: extra, version: BuildInfo.version).run()
    }
}

struct CheckConfig: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check-config",
        abstract: "Validate a configuration: exit 0 when valid, 2 with every problem listed when not."
    )

    @OptionGroup var configOption: ConfigOption

    func run() async throws {
        let (configuration, path) = try self.configOption.load()
        print(
            """
            configuration \(path) is valid: \
            \(configuration.backends.count) backend\(configuration.backends.count == 1 ? "" : "s") \
            (\(configuration.backends.map(\.name).joined(separator: ", ")))
            """
        )
    }
}

struct ConfigDocs: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config-docs",
        abstract: "Print the reference of every configuration key, in Markdown (docs/configuration.md is its output)."
    )

    func run() {
        print(ConfigReference.markdown(), terminator: "")
    }
}

struct ConfigSchemaCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "config-schema",
        abstract: "Print the configuration's JSON Schema, draft 2020-12 (Config/s3-canary.schema.json is its output)."
    )

    func run() {
        print(ConfigSchema.json(), terminator: "")
    }
}

struct Compat: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "compat",
        abstract: """
            Check once per backend the S3 features clients use (multipart, checksum, aws_chunked, conditional, \
            presign) and print each verdict: ok, unsupported, failing or corrupting. Exit 0 when none is failing or \
            corrupting, 1 otherwise.
            """
    )

    @OptionGroup var configOption: ConfigOption

    @Option(help: "Check only this backend.")
    var backend: String?

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let (configuration, _) = try self.configOption.load()
        let logger = try self.logging.bootstrap()
        let entries = try ConfigOption.backends(of: configuration, named: self.backend)
        let rows = try await CompatibilityReport.run(entries, instance: configuration.instance, logger: logger)
        print(self.json ? try CompatibilityReport.json(rows) : CompatibilityReport.table(rows))
        if rows.contains(where: { $0.verdict == .failing || $0.verdict == .corrupting }) { throw ExitCode(1) }
    }
}

struct Probe: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "probe",
        abstract: "Run one canary cycle per backend now: exit 0 when all pass, 1 when any fails."
    )

    @OptionGroup var configOption: ConfigOption

    @Option(help: "Probe only this backend.")
    var backend: String?

    @Flag(help: "Print JSON instead of a table.")
    var json = false

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let (configuration, _) = try self.configOption.load()
        let logger = try self.logging.bootstrap()
        let entries = try ConfigOption.backends(of: configuration, named: self.backend)
        let results = try await OneShotProbe.run(entries, instance: configuration.instance, logger: logger)
        if self.json {
            do {
                print(try OneShotProbe.json(results))
            } catch {
                FileHandle.standardError.write(
                    Data("error: cannot encode the results as JSON (\(error)); run without --json for the table\n".utf8)
                )
                throw ExitCode(2)
            }
        } else {
            print(OneShotProbe.table(results))
        }
        if results.contains(where: { $0.status != .success }) { throw ExitCode(1) }
    }
}

struct DurabilityCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "durability",
        abstract: "The durability corpus (backends[].durability).",
        subcommands: [DurabilityResetCommand.self]
    )
}

struct DurabilityResetCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "reset",
        abstract: """
            Read a backend's durability corpus back, list what is missing or corrupted, and with --yes write those \
            objects again. Exit 0 when nothing is left to rewrite, 1 when something is (or failed), 2 on bad input.
            """
    )

    @OptionGroup var configOption: ConfigOption

    @Option(help: "The backend whose corpus to reset.")
    var backend: String

    @Flag(help: "Rewrite the missing and corrupted objects (without it, only say which).")
    var yes = false

    @OptionGroup var logging: LoggingOptions

    func run() async throws {
        let (configuration, _) = try self.configOption.load()
        let logger = try self.logging.bootstrap()
        guard let entry = try ConfigOption.backends(of: configuration, named: self.backend).first else {
            throw ExitCode(2)
        }
        let outcome = try await DurabilityReset.run(
            entry, instance: configuration.instance, confirmed: self.yes, logger: logger)
        for line in outcome.lines { print(line) }
        if outcome.exitCode != 0 { throw ExitCode(outcome.exitCode) }
    }
}
