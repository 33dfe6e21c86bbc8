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
        /// The phase of the HTTP request the operation failed in.
        var phase: String?
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

    /// An operation over what this process has seen: its steps that reached the backend since `since` (their
    /// availability), and its recent latencies (oldest first, at most 100) with their percentiles.
    struct Latency: Codable, Sendable {
        var operation: String
        var steps: Int
        var successes: Int
        var availability: Double?
        var samples: Int
        var p50Seconds: Double?
        var p99Seconds: Double?
        var recentSeconds: [Double]
    }

    /// Cycles by result since `since` (when this process started probing the backend).
    struct Availability: Codable, Sendable {
        var since: Date?
        var cycles: Int
        var success: Int
        var failure: Int
        var skipped: Int
        /// Successful cycles over all (skipped ones count against it, as in the availability objective).
        var ratio: Double?
    }

    /// An objective and how this process's own counts meet it since `since` (Prometheus holds the 28-day figures).
    struct Objective: Codable, Sendable {
        /// `availability`, or `latency` of `operation`.
        var kind: String
        var operation: String?
        var objective: Double
        var thresholdSeconds: Double?
        /// Good events over all since `since`.
        var attainment: Double?
        /// The share of the error budget left over that span: 1 - (bad share / (1 - objective)); below 0 when spent.
        var budgetRemaining: Double?
        var events: Int
    }

    struct Backend: Codable, Sendable {
        var name: String
        var breaker: Breaker
        var lastCycle: Cycle?
        var lastSuccess: Date?
        var secondsSinceLastSuccess: Double?
        var recentCycleSeconds: [Double]
        var latencies: [Latency]
        /// The last cycles, oldest first: the status page's availability bar.
        var recentCycles: [StatusBoard.CycleMark]
        var availability: Availability
        var objectives: [Objective]
        /// The last verdict of each feature operation, in cycle order (empty when none runs).
        var features: [StatusBoard.FeatureStatus] = []
        var network = Network.none
        /// The durability corpus (`durability:`); absent when the backend has none.
        var durability: Durability?
    }

    /// The endpoint name's answer and what each of its addresses showed.
    struct Network: Codable, Sendable {
        struct DNSError: Codable, Sendable {
            var code: String
            var server: String
            var detail: String?
        }

        struct TLS: Codable, Sendable {
            var version: String
            var cipher: String
            var fingerprintSHA256: String
            var notAfter: Date?
        }

        struct Address: Codable, Sendable {
            var address: String
            var family: String
            /// With `addresses: all`, whether its last cycle succeeded.
            var up: Bool?
            var since: Date?
            var lastSuccess: Date?
            var lastError: Operation?
            /// The last request's phases in seconds, by phase name.
            var phases: [String: Double]
            var lastRequest: Date?
            var tls: TLS?
        }

        /// Some addresses fail while another works.
        var degraded: Bool
        /// The addresses presented different leaf certificates.
        var certificatesDiffer: Bool
        /// The last answer: its addresses, TTL (own DNS client only) and the server that gave it.
        var answer: [String]
        var ttlSeconds: Double?
        var resolver: String?
        var resolvedAt: Date?
        var dnsError: DNSError?
        var addresses: [Address]

        /// Nothing seen yet (or a backend without addresses, such as the demo's).
        static let none = Network(degraded: false, certificatesDiffer: false, answer: [], addresses: [])
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
                                requestID: $0.requestID,
                                phase: $0.phase?.rawValue
                            )
                        },
                        error: cycle.failure
                    )
                },
                lastSuccess: status.lastSuccess,
                secondsSinceLastSuccess: status.lastSuccess.map { now.timeIntervalSince($0) },
                recentCycleSeconds: status.recentDurations,
                latencies: Set(status.recentLatencies.keys).union(status.totals.operations.keys).sorted().map {
                    operation in
                    let samples = status.recentLatencies[operation] ?? []
                    let totals = status.totals.operations[operation] ?? StatusBoard.OperationTotals()
                    return Latency(
                        operation: operation, steps: totals.steps, successes: totals.successes,
                        availability: Self.ratio(totals.successes, totals.steps), samples: samples.count,
                        p50Seconds: Self.percentile(samples, 0.5), p99Seconds: Self.percentile(samples, 0.99),
                        recentSeconds: samples)
                },
                recentCycles: status.recentCycles,
                availability: Availability(
                    since: status.totals.since, cycles: status.totals.cycles, success: status.totals.success,
                    failure: status.totals.failure, skipped: status.totals.skipped,
                    ratio: Self.ratio(status.totals.success, status.totals.cycles)),
                objectives: Self.objectives(status),
                features: status.features,
                network: Self.network(status.network),
                durability: status.durability.map(Durability.init)
            )
        }
    }

    static func network(_ network: NetworkStatus) -> Network {
        Network(
            degraded: network.isDegraded, certificatesDiffer: network.certificatesDiffer,
            answer: network.resolution?.addresses ?? [], ttlSeconds: network.resolution?.ttl?.seconds,
            resolver: network.resolution?.server ?? network.dnsFailure?.server, resolvedAt: network.resolvedAt,
            dnsError: network.dnsFailure.map { Network.DNSError(code: $0.code, server: $0.server, detail: $0.detail) },
            addresses: network.addresses.map { status in
                Network.Address(
                    address: status.address, family: status.family, up: status.up, since: status.since,
                    lastSuccess: status.lastSuccess,
                    lastError: status.lastError.map {
                        Operation(
                            operation: $0.operation.label, result: $0.result.rawValue, reason: $0.reason?.rawValue,
                            message: $0.message, phase: $0.phase?.rawValue)
                    },
                    phases: Dictionary(
                        status.phases.map { ($0.phase.rawValue, $0.duration.seconds) }, uniquingKeysWith: { $1 }),
                    lastRequest: status.lastRequest,
                    tls: status.tls.map {
                        Network.TLS(
                            version: $0.version, cipher: $0.cipher, fingerprintSHA256: $0.fingerprint,
                            notAfter: $0.notAfter)
                    })
            })
    }

    static func ratio(_ good: Int, _ total: Int) -> Double? {
        total > 0 ? Double(good) / Double(total) : nil
    }

    /// The backend's objectives against this process's counts.
    static func objectives(_ status: StatusBoard.BackendStatus) -> [Objective] {
        func budget(_ attainment: Double?, _ objective: Double) -> Double? {
            attainment.map { 1 - (1 - $0) / (1 - objective) }
        }
        var out: [Objective] = []
        if let objective = status.slo.availability {
            let attainment = Self.ratio(status.totals.success, status.totals.cycles)
            out.append(
                Objective(
                    kind: "availability", operation: nil, objective: objective, thresholdSeconds: nil,
                    attainment: attainment, budgetRemaining: budget(attainment, objective),
                    events: status.totals.cycles))
        }
        for (operation, latency) in status.slo.latency.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            let totals = status.totals.operations[operation.label] ?? StatusBoard.OperationTotals()
            let attainment = Self.ratio(totals.successes - totals.misses, totals.successes)
            out.append(
                Objective(
                    kind: "latency", operation: operation.label, objective: latency.objective,
                    thresholdSeconds: latency.threshold.seconds, attainment: attainment,
                    budgetRemaining: budget(attainment, latency.objective), events: totals.successes))
        }
        return out
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
