public import Foundation
public import Logging
public import SidecarCanary
public import SidecarConfig

/// `s3-canary durability reset`: reads a backend's corpus back, says what it would rewrite, and rewrites it only when
/// told `--yes`. The only writer of a corpus object once the corpus exists.
public enum DurabilityReset {
    /// How it ended: the exit code and what was printed.
    public struct Outcome: Sendable {
        public var exitCode: Int32
        public var lines: [String]
    }

    public static func run(
        _ entry: CanaryConfiguration.Backend, instance: String, confirmed: Bool, factory: BackendFactory = .s3,
        logger: Logger
    ) async throws -> Outcome {
        guard let settings = entry.durability else {
            return Outcome(
                exitCode: 2, lines: ["backend \(entry.name) has no durability: section; nothing to reset"])
        }
        return try await factory.withEach([entry], logger: logger) { entry, backend in
            let checker = DurabilityChecker(
                target: DurabilityTarget(name: entry.name, instance: instance, settings: settings, backend: backend),
                clock: ContinuousClock(), now: { Date() }, log: { _ in }, observe: { _ in })
            let audit: DurabilityChecker<ContinuousClock>.Audit
            do {
                audit = try await checker.audit()
            } catch {
                return Outcome(exitCode: 2, lines: ["cannot reset the corpus of \(entry.name): \(error)"])
            }
            let corpus = audit.corpus
            var lines = [
                "corpus \(corpus.prefix) of backend \(entry.name): \(corpus.objects) objects of \(corpus.objectSize) "
                    + "bytes, "
                    + (audit.manifest.map {
                        "created \(ISO8601DateFormatter().string(from: $0.created)) by \($0.createdBy)"
                    } ?? "its manifest \(corpus.manifestKey) missing")
            ]
            let damaged = (audit.missing + audit.corrupted).sorted()
            for index in damaged {
                lines.append("  \(audit.missing.contains(index) ? "missing  " : "corrupted") \(corpus.key(index))")
            }
            for (index, error) in audit.unreadable {
                lines.append("  unread    \(corpus.key(index)): \(error) (not rewritten; run again)")
            }
            let manifestMissing = audit.manifest == nil
            guard !damaged.isEmpty || manifestMissing else {
                lines.append("nothing to rewrite: every object read back intact")
                return Outcome(exitCode: audit.unreadable.isEmpty ? 0 : 1, lines: lines)
            }
            let summary =
                "\(audit.missing.count) missing and \(audit.corrupted.count) corrupted"
                + (manifestMissing ? ", and the manifest" : "")
            guard confirmed else {
                lines.append(
                    "would rewrite \(damaged.count) objects (\(summary)); run again with --yes to rewrite them")
                return Outcome(exitCode: 1, lines: lines)
            }
            let failures = await checker.rewrite(damaged, of: corpus)
            for (index, error) in failures { lines.append("  failed    \(corpus.key(index)): \(error)") }
            if manifestMissing && failures.isEmpty {
                do {
                    try await checker.writeManifest(corpus)
                } catch {
                    lines.append("  failed    \(corpus.manifestKey): \(error)")
                    return Outcome(exitCode: 1, lines: lines)
                }
            }
            lines.append("rewrote \(damaged.count - failures.count) of \(damaged.count) objects (\(summary))")
            return Outcome(exitCode: failures.isEmpty ? 0 : 1, lines: lines)
        }[0]
    }
}
