public import Foundation
public import ObjectStorage
public import SidecarBreaker
import SidecarConfig

/// What a cycle with `addresses: all` saw of the endpoint's name: the answer (or why there was none) and the cycle
/// each address ran. Empty with `addresses: first`.
public struct AddressSet: Sendable, Equatable {
    /// What the name resolved to; `nil` when it did not (or the cycle probed the first address only).
    public var resolution: NameResolution?
    /// Why the name did not resolve.
    public var dnsFailure: DNSFailure?
    /// How long the lookup took.
    public var dnsSeconds: Double?
    /// Addresses of the answer beyond `max_addresses`, not probed.
    public var skipped: Int = 0
    /// Each probed address's own cycle, in the answer's order.
    public var results: [AddressResult] = []

    /// No lookup happened: the cycle probed one address the usual way.
    public var isEmpty: Bool { self.resolution == nil && self.dnsFailure == nil }
    /// Some addresses failed while at least one worked.
    public var isDegraded: Bool {
        self.results.contains { $0.status == .failure } && self.results.contains { $0.status == .success }
    }

    public init() {}
}

/// One address's part of a cycle.
public struct AddressResult: Sendable, Equatable {
    /// The address (`127.0.0.2`, `::1`).
    public var address: String
    /// `ipv4` or `ipv6`: the `family` label.
    public var family: String
    /// How its cycle ended.
    public var status: CycleResult.Status
    /// Its first failure.
    public var failure: FailureSummary?
    /// The phase of the request that failed (`connect`, `tls`, `first_byte`...), when known.
    public var phase: RequestPhase?

    public init(
        address: String, status: CycleResult.Status, failure: FailureSummary? = nil, phase: RequestPhase? = nil
    ) {
        self.address = address
        self.family = IPFamily(address: address).rawValue
        self.status = status
        self.failure = failure
        self.phase = phase
    }
}

/// `addresses: all`: one cycle against every address the name resolves to, each through a breaker of its own that
/// never opens, and one verdict for the backend's breaker: the cycle succeeds while at least one address works.
/// A name that does not resolve fails the cycle with reason `dns`.
struct AddressCycle<C: Clock>: Sendable where C.Duration == Duration {
    var cycle: CanaryCycle<C>
    var addressed: any AddressedBackend

    func run(deadline: Duration?) async -> CycleResult {
        let target = self.cycle.target
        let startedAt = self.cycle.now()
        let start = self.cycle.clock.now
        let calls = target.backend.beginCycle()
        self.addressed.beginConnectionCycle()
        func result(
            _ status: CycleResult.Status, _ steps: [StepResult], _ failure: FailureSummary?, _ set: AddressSet,
            integrity: Bool = false
        ) -> CycleResult {
            calls.end(failure: failure)
            var result = CycleResult(
                backend: target.name, startedAt: startedAt, duration: start.duration(to: self.cycle.clock.now),
                status: status, steps: steps, failure: failure, integrityFailure: integrity)
            result.addresses = set
            result.paced = Set(target.probe.every.keys)
            return result
        }
        var set = AddressSet()
        // Admission: an open breaker skips the whole cycle, as it would the first request of a single address.
        do {
            try await calls.call(CanaryConfiguration.Operation.put.label) { _ in }
        } catch {
            let message = CircuitBreakerBackend.message(of: error)
            let failure = FailureSummary(
                operation: CanaryConfiguration.Operation.put.label,
                reason: ErrorClassification.classify(error).reason ?? .other, message: message)
            return result(.skipped, [StepResult(operation: .put, result: .rejected, message: message)], failure, set)
        }
        let lookup = self.cycle.clock.now
        let resolution: NameResolution
        do {
            resolution = try await self.addressed.resolveAddresses()
            set.dnsSeconds = lookup.duration(to: self.cycle.clock.now).seconds
        } catch {
            set.dnsSeconds = lookup.duration(to: self.cycle.clock.now).seconds
            let failure = error as? DNSFailure
            set.dnsFailure = failure ?? DNSFailure(code: "error", name: "-", server: "-", detail: "\(error)")
            let summary = FailureSummary(
                operation: CanaryConfiguration.Operation.put.label, reason: .dns,
                message: String("\(error)".prefix(300)))
            self.cycle.log?("dns: \(error)")
            calls.fail(summary)
            let step = StepResult(
                operation: .put, result: .error, reason: .dns, message: summary.message, phase: .dns)
            return result(.failure, [step], summary, set)
        }
        set.resolution = resolution
        // The cycle's operations are chosen once, for every address; the addresses' cycles run them all.
        let probe = {
            var probe = target.probe
            probe.operations = target.pace.operations(of: target.probe, at: startedAt)
            probe.every = [:]
            return probe
        }()
        let probed = Array(resolution.addresses.prefix(target.maxAddresses))
        set.skipped = resolution.addresses.count - probed.count
        self.cycle.log?("\(resolution.addresses.count) addresses: \(probed.joined(separator: ", "))")
        let results: [CycleResult] = await withTaskGroup(of: (Int, CycleResult).self) { group -> [CycleResult] in
            for (index, address) in probed.enumerated() {
                group.addTask {
                    let pinned = self.addressed.pinned(to: address)
                    // Its own breaker, which never opens: only the verdict below reaches the backend's.
                    let breaker = CircuitBreakerBackend(
                        name: target.name, wrapping: pinned,
                        configuration: .init(failureThreshold: Int.max / 4), onTransition: { _ in })
                    var own = target
                    own.backend = breaker
                    own.probe = probe
                    own.addresses = .first
                    var log: (@Sendable (String) -> Void)?
                    if let parent = self.cycle.log {
                        log = { @Sendable message in parent("\(address): \(message)") }
                    }
                    let sub = CanaryCycle(target: own, clock: self.cycle.clock, now: self.cycle.now, log: log)
                    return (index, await sub.run(deadline: deadline))
                }
            }
            var byIndex: [Int: CycleResult] = [:]
            for await (index, result) in group { byIndex[index] = result }
            return probed.indices.compactMap { byIndex[$0] }
        }
        set.results = zip(probed, results).map { address, result in
            AddressResult(
                address: address, status: result.status, failure: result.failure,
                phase: result.steps.last { $0.result == .error }?.phase)
        }
        let steps = results.flatMap(\.steps)
        target.pace.record(steps, of: target.probe, startedAt: startedAt, runs: results.count)
        let integrity = results.contains(where: \.integrityFailure)
        guard !results.contains(where: { $0.status == .success }) else {
            return result(.success, steps, nil, set, integrity: integrity)
        }
        let first = set.results.first { $0.failure != nil }
        let summary = FailureSummary(
            operation: first?.failure?.operation ?? CanaryConfiguration.Operation.put.label,
            reason: first?.failure?.reason ?? .other,
            message: String(
                "every address failed; \(first?.address ?? "-"): \(first?.failure?.message ?? "no answer")".prefix(300))
        )
        calls.fail(summary)
        return result(.failure, steps, summary, set, integrity: integrity)
    }
}
