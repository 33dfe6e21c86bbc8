import Foundation
public import Logging
import ObjectStorage
import SidecarBreaker
public import SidecarCanary
public import SidecarConfig
import SidecarServer

/// `s3-canary probe`: one cycle per backend, concurrently, then a table or JSON.
public enum OneShotProbe {
    /// Runs one cycle of each entry, all at once; results are in the order of `entries`.
    public static func run(
        _ entries: [CanaryConfiguration.Backend],
        instance: String,
        factory: BackendFactory = .s3,
        logger: Logger
    ) async throws -> [CycleResult] {
        try await factory.withEach(entries, logger: logger) { entry, backend in
            let target = CanaryTarget(entry, instance: instance, wrapping: backend) { _ in }
            return await CanaryCycle(target: target, clock: ContinuousClock()).run()
        }
    }

    /// The results as a text table: one row per backend, one column per operation that ran.
    public static func table(_ results: [CycleResult]) -> String {
        let operations = CanaryConfiguration.Operation.allCases.filter { operation in
            results.contains { $0.steps.contains { $0.operation == operation } }
        }
        var rows: [[String]] = [
            ["BACKEND", "RESULT", "TOTAL ms"] + operations.map { $0.rawValue.uppercased() + " ms" } + ["ERROR"]
        ]
        for result in results {
            var row = [result.backend, result.status.rawValue, String(format: "%.1f", result.duration.seconds * 1000)]
            for operation in operations {
                let step = result.steps.last { $0.operation == operation }
                switch step?.result {
                case .success?: row.append(String(format: "%.1f", (step?.seconds ?? 0) * 1000))
                case .error?: row.append("error")
                case .rejected?: row.append("rejected")
                case .skipped?: row.append("skipped")
                case .unsupported?: row.append("unsupported")
                case nil: row.append("-")
                }
            }
            row.append(result.failure.map { "\($0.operation) \($0.reason.rawValue): \($0.message)" } ?? "")
            rows.append(row)
        }
        return textTable(rows).joined(separator: "\n")
    }

    struct JSONResult: Codable {
        var backend: String
        var status: String
        var durationSeconds: Double
        var operations: [StepResult]
        var error: FailureSummary?
    }

    /// The results as JSON; throws when they cannot be encoded (a non-finite duration), never prints a stand-in.
    public static func json(_ results: [CycleResult]) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        let documents = results.map {
            JSONResult(
                backend: $0.backend, status: $0.status.rawValue, durationSeconds: $0.duration.seconds,
                operations: $0.steps, error: $0.failure)
        }
        return String(decoding: try encoder.encode(documents), as: UTF8.self)
    }
}

/// `rows` as text columns two spaces apart, each as wide as its widest cell; the last column is not padded.
func textTable(_ rows: [[String]]) -> [String] {
    let widths = (0..<(rows.first?.count ?? 0)).map { column in rows.map { $0[column].count }.max() ?? 0 }
    return rows.map { row in
        zip(row, widths).enumerated().map { index, pair in
            index == row.count - 1 ? pair.0 : pair.0.padding(toLength: pair.1, withPad: " ", startingAt: 0)
        }.joined(separator: "  ")
    }
}

extension BackendFactory {
    /// Builds a backend for each entry, runs `body` on all of them at once and returns what each gave, in the order
    /// of `entries`; every backend built is shut down afterwards, also when building a later one fails.
    func withEach<Result: Sendable>(
        _ entries: [CanaryConfiguration.Backend],
        logger: Logger,
        _ body: @escaping @Sendable (CanaryConfiguration.Backend, any ObjectBackend) async -> Result
    ) async throws -> [Result] {
        var owned: [OwnedBackend] = []
        do {
            for entry in entries { owned.append(try self.make(entry, BackendContext(logger: logger))) }
        } catch {
            for backend in owned { await backend.shutdown() }
            throw error
        }
        let results = await withTaskGroup(of: (Int, Result).self) { group in
            for (index, (entry, backend)) in zip(entries, owned).enumerated() {
                let wrapped = backend.backend
                group.addTask { (index, await body(entry, wrapped)) }
            }
            var results: [(Int, Result)] = []
            for await result in group { results.append(result) }
            return results.sorted { $0.0 < $1.0 }.map(\.1)
        }
        for backend in owned { await backend.shutdown() }
        return results
    }
}
