import Foundation
import ObjectStorage
import SidecarBreaker
import SidecarCanary
import SidecarConfig
import SidecarTelemetry

/// The JSON of `GET /status`: per backend its breaker, last cycle by operation and last success; the recent
/// transitions. Built from the status board and breakers; holds no endpoint, key or URL.
struct StatusDocument: Codable, Sendable {
    struct Operation: Codable, Sendable {
        var operation: String
        var result: String
        var latencySeconds: Double?
        var reason: String?
        var message: String?
        /// The `x-amz-request-id` of the operation's request: what the storage vendor asks for.
        var requestID: String?
    }

    struct Cycle: Codable, Sendable {
        var status: String
        var startedAt: Date
        var durationSeconds: Double
        var operations: [Operation]
        var error: FailureSummary?
    }

    struct Breaker: Codable, Sendable {
        var state: String
        var consecutiveFailures: Int
        var failureThreshold: Int
        var openTimeoutSeconds: Double
        var lastError: FailureSummary?
    }

    /// An operation's recent latencies (the steps that reached the backend, oldest first) and their percentiles.
    struct Latency: Codable, Sendable {
        var operation: String
        var samples: Int
        var p50Seconds: Double?
        var p99Seconds: Double?
        var recentSeconds: [Double]
    }

    struct Backend: Codable, Sendable {
        var name: String
        var breaker: Breaker
        var lastCycle: Cycle?
        var lastSuccess: Date?
        var secondsSinceLastSuccess: Double?
        var recentCycleSeconds: [Double]
        var latencies: [Latency]
    }

    var instance: String
    var ready: Bool
    var shuttingDown: Bool
    var backends: [Backend]
    var transitions: [StatusBoard.TransitionRecord]
}

extension StatusDocument {
    init(serving service: some EndpointModel, now: Date = Date()) {
        let board = service.board
        let targets = Dictionary(service.targets.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
        self.instance = service.instance
        self.ready = board.readiness.ready
        self.shuttingDown = board.isShuttingDown
        self.transitions = board.transitions
        self.backends = board.backends.map { status in
            let target = targets[status.name]
            let snapshot = target?.backend.snapshot
            return Backend(
                name: status.name,
                breaker: Breaker(
                    state: (snapshot?.state ?? .closed).rawValue,
                    consecutiveFailures: snapshot?.consecutiveFailures ?? 0,
                    failureThreshold: snapshot?.threshold ?? 0,
                    openTimeoutSeconds: target?.backend.configuration.openTimeout.seconds ?? 0,
                    lastError: snapshot?.lastFailure
                ),
                lastCycle: status.lastCycle.map { cycle in
                    Cycle(
                        status: cycle.status.rawValue,
                        startedAt: cycle.startedAt,
                        durationSeconds: cycle.duration.seconds,
                        operations: cycle.steps.map {
                            Operation(
                                operation: $0.operation.rawValue,
                                result: $0.result.rawValue,
                                latencySeconds: $0.seconds,
                                reason: $0.reason?.rawValue,
                                message: $0.message,
                                requestID: $0.requestID
                            )
                        },
                        error: cycle.failure
                    )
                },
                lastSuccess: status.lastSuccess,
                secondsSinceLastSuccess: status.lastSuccess.map { now.timeIntervalSince($0) },
                recentCycleSeconds: status.recentDurations,
                latencies: status.recentLatencies.keys.sorted().map { operation in
                    let samples = status.recentLatencies[operation] ?? []
                    return Latency(
                        operation: operation, samples: samples.count, p50Seconds: Self.percentile(samples, 0.5),
                        p99Seconds: Self.percentile(samples, 0.99), recentSeconds: samples)
                }
            )
        }
    }

    /// The nearest-rank percentile: the smallest sample with at least `q` of the samples at or below it.
    static func percentile(_ samples: [Double], _ q: Double) -> Double? {
        guard !samples.isEmpty else { return nil }
        let sorted = samples.sorted()
        let rank = Int((q * Double(sorted.count)).rounded(.up))
        return sorted[min(sorted.count, max(1, rank)) - 1]
    }

    func json() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.dateEncodingStrategy = .iso8601
        encoder.keyEncodingStrategy = .convertToSnakeCase
        return try encoder.encode(self)
    }
}
