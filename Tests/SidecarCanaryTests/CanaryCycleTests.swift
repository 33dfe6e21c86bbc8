import Foundation
import NIOCore
import ObjectStorage
import TestSupport
import Testing

@testable import SidecarBreaker
@testable import SidecarCanary
@testable import SidecarConfig

/// Helpers to build a target over a MemoryBackend.
enum Fixtures {
    static func probe(
        operations: [CanaryConfiguration.Operation] = CanaryConfiguration.Operation.allCases,
        interval: Duration = .seconds(15),
        timeout: Duration = .seconds(5)
    ) -> CanaryConfiguration.Probe {
        var probe = CanaryConfiguration.Probe()
        probe.operations = operations
        probe.interval = interval
        probe.timeout = timeout
        probe.objectSize = 1000
        return probe
    }

    /// The probe of the tests that run cycles on the real clock: deadlines far beyond what a MemoryBackend needs, so
    /// a test process whose cooperative threads are busy with other suites (the main phase runs everything at once)
    /// cannot turn a slow schedule into a timeout. The tests of timeouts give their own.
    static let realClockProbe = Fixtures.probe(interval: .seconds(600), timeout: .seconds(60))

    static func target(
        _ name: String = "mem",
        store: MemoryBackend,
        probe: CanaryConfiguration.Probe = Fixtures.realClockProbe,
        threshold: Int = 3,
        onTransition: @escaping @Sendable (BreakerTransitionEvent) -> Void = { _ in }
    ) -> CanaryTarget {
        let breaker = CircuitBreakerBackend(
            name: name,
            wrapping: store,
            configuration: .init(failureThreshold: threshold, openTimeout: .seconds(30)),
            onTransition: onTransition
        )
        return CanaryTarget(name: name, instance: "test", probe: probe, backend: breaker)
    }
}

@Suite("Canary cycle over MemoryBackend")
struct CanaryCycleTests {
    @Test func aHealthyCycleRunsEveryOperationAndLeavesNothing() async {
        let store = MemoryBackend()
        let target = Fixtures.target(store: store)
        let result = await CanaryCycle(target: target, clock: ContinuousClock()).run()
        #expect(result.status == .success)
        #expect(result.steps.map(\.operation) == CanaryConfiguration.Operation.allCases)
        // MemoryBackend has no S3 features: the feature operations are skipped, never failed.
        #expect(
            result.steps.allSatisfy {
                $0.operation.isFeature
                    ? $0.result == .skipped && $0.message == "backend has no S3 features"
                    : $0.result == .success && $0.seconds != nil
            })
        #expect(store.keys.isEmpty)
        #expect(result.failure == nil && !result.integrityFailure)
    }

    @Test func keysFollowPrefixInstanceBackend() async {
        let store = MemoryBackend()
        store.hangNext(1, operations: [.head])
        let target = Fixtures.target("ceph-a", store: store, probe: Fixtures.probe(timeout: .milliseconds(50)))
        _ = await CanaryCycle(target: target, clock: ContinuousClock()).run()
        #expect(store.callCount(.put) == 1)
        #expect(target.keyPrefix == ".s3-canary/test/ceph-a/")
    }

    @Test func aFailedOperationEndsTheCycleAndCleansUp() async {
        let store = MemoryBackend()
        store.failNext(1, status: 500, operations: [.get])
        let result = await CanaryCycle(target: Fixtures.target(store: store), clock: ContinuousClock()).run()
        #expect(result.status == .failure)
        #expect(result.steps.map(\.operation) == [.put, .head, .get])
        #expect(result.steps.last?.reason == .http5xx)
        #expect(
            result.failure?.operation == "get", "failures are named by the canary operation, as webhooks report them")
        #expect(store.keys.isEmpty, "the written canary must be deleted after a failure")
    }

    @Test func corruptedReadIsAnIntegrityFailureCountedByTheBreaker() async {
        let store = MemoryBackend()
        store.corruptNextReads(1)
        let target = Fixtures.target(store: store)
        let result = await CanaryCycle(target: target, clock: ContinuousClock()).run()
        #expect(result.status == .failure)
        #expect(result.integrityFailure)
        #expect(result.steps.last?.operation == .get && result.steps.last?.reason == .integrity)
        #expect(target.backend.snapshot.consecutiveFailures == 1)
        #expect(store.keys.isEmpty)
    }

    @Test func aHungOperationTimesOut() async {
        let store = MemoryBackend()
        store.hangNext(1, operations: [.head])
        let target = Fixtures.target(store: store, probe: Fixtures.probe(timeout: .milliseconds(100)))
        // Time moves only once the HEAD hangs, so no other step can time out however busy the machine is.
        let clock = ManualClock()
        async let cycle = CanaryCycle(target: target, clock: clock).run()
        var hanging = false
        for _ in 0..<5000 where !hanging {
            hanging = store.callCount(.head) == 1
            if !hanging { try? await Task.sleep(for: .milliseconds(2)) }
        }
        #expect(hanging, "the HEAD never started")
        clock.advance(by: .milliseconds(100))
        let result = await cycle
        #expect(result.status == .failure)
        #expect(
            result.steps.last?.operation == .head && result.steps.last?.reason == .timeout,
            "\(result.steps.map { "\($0.operation) \($0.result) \($0.reason?.rawValue ?? "-")" })")
        #expect(target.backend.snapshot.consecutiveFailures == 1)
        #expect(store.keys.isEmpty)
    }

    @Test func anOpenBreakerSkipsTheCycleWithoutIO() async {
        let store = MemoryBackend()
        store.failAlways(with: ObjectStorageError(code: .connection, message: "refused"))
        let target = Fixtures.target(store: store, threshold: 2)
        for _ in 0..<2 { _ = await CanaryCycle(target: target, clock: ContinuousClock()).run() }
        #expect(target.backend.snapshot.state == .open)
        let callsBefore = store.callCount(.put)
        let deletesBefore = store.callCount(.delete)
        let skipped = await CanaryCycle(target: target, clock: ContinuousClock()).run()
        #expect(skipped.status == .skipped)
        #expect(skipped.steps.map(\.result) == [.rejected])
        #expect(store.callCount(.put) == callsBefore)
        #expect(store.callCount(.delete) == deletesBefore, "an open breaker means no I/O, cleanup included")
    }

    @Test func aBackendWhoseGETAlwaysFailsTripsTheBreakerAlthoughItsPUTWorks() async {
        let store = MemoryBackend()
        store.failAlways(
            with: ObjectStorageError(code: .httpError, httpStatus: 500, message: "boom"), operations: [.get])
        let target = Fixtures.target(store: store, threshold: 3)
        for _ in 0..<3 { _ = await CanaryCycle(target: target, clock: ContinuousClock()).run() }
        #expect(target.backend.snapshot.state == .open)
        store.clearFaults()
        let healthy = Fixtures.target("healthy", store: MemoryBackend(), threshold: 3)
        for _ in 0..<5 { _ = await CanaryCycle(target: healthy, clock: ContinuousClock()).run() }
        #expect(healthy.backend.snapshot.consecutiveFailures == 0)
    }

    @Test func notFoundDuringACycleIsAnErrorButNotABreakerFailure() async {
        let store = MemoryBackend()
        store.failNext(1, status: 404, s3Code: "NoSuchKey", operations: [.head])
        let target = Fixtures.target(store: store)
        let result = await CanaryCycle(target: target, clock: ContinuousClock()).run()
        #expect(result.status == .failure)
        #expect(result.steps.last?.reason == .notFound)
        #expect(target.backend.snapshot.consecutiveFailures == 0)
    }

    @Test func backendWithoutCopySkipsTheCopyStep() async {
        /// A backend that stores but cannot copy.
        final class NoCopy: ObjectBackend {
            let inner = MemoryBackend()
            func headObject(key: String) async throws -> HeadObjectResult { try await self.inner.headObject(key: key) }
            func putObject(
                key: String, body: ByteBuffer, contentType: String?, metadata: [String: String]
            ) async throws -> PutObjectResult {
                try await self.inner.putObject(key: key, body: body, contentType: contentType, metadata: metadata)
            }
            func getObject(key: String, range: String?) async throws -> GetObjectResult {
                try await self.inner.getObject(key: key, range: range)
            }
            func deleteObject(key: String) async throws -> DeleteObjectResult {
                try await self.inner.deleteObject(key: key)
            }
            func listObjects(prefix: String, pageSize: Int, page: (ListObjectsPage) async throws -> Bool) async throws {
                try await self.inner.listObjects(prefix: prefix, pageSize: pageSize, page: page)
            }
        }
        let backend = NoCopy()
        let breaker = CircuitBreakerBackend(name: "nocopy", wrapping: backend, configuration: .init()) { _ in }
        let target = CanaryTarget(name: "nocopy", instance: "t", probe: Fixtures.realClockProbe, backend: breaker)
        let result = await CanaryCycle(target: target, clock: ContinuousClock()).run()
        #expect(result.status == .success)
        #expect(result.steps.first { $0.operation == .copy }?.result == .skipped)
        #expect(backend.inner.keys.isEmpty)
    }

    @Test func sweeperDeletesOnlyOldCanariesOfItsOwnPrefix() async throws {
        let store = MemoryBackend()
        let target = Fixtures.target(store: store)
        let now = Date()
        let old = target.newKey(now: now.addingTimeInterval(-3600))
        let fresh = target.newKey(now: now)
        let foreign = ".s3-canary/other-instance/mem/1-abc"
        for key in [old, fresh, foreign] {
            _ = try await store.putObject(key: key, body: ByteBuffer(string: "x"), contentType: nil, metadata: [:])
        }
        let deleted = await Sweeper(target: target, minimumAge: .seconds(45)).sweep(now: now)
        #expect(deleted == Sweeper.Outcome(deleted: 1))
        #expect(Set(store.keys) == [fresh, foreign])
        #expect(target.backend.snapshot.consecutiveFailures == 0)
        // After a restart, a canary written a second before this process started is a leftover too.
        let killed = target.newKey(now: now.addingTimeInterval(-1))
        _ = try await store.putObject(key: killed, body: ByteBuffer(string: "x"), contentType: nil, metadata: [:])
        let swept = await Sweeper(target: target, minimumAge: .seconds(45)).sweep(
            now: now, processStartedAt: now.addingTimeInterval(-0.5))
        #expect(swept == Sweeper.Outcome(deleted: 1))
        #expect(Set(store.keys) == [fresh, foreign])
    }
}

@Suite("Verification requests of a cycle")
struct CycleVerificationTests {
    @Test func aFailingHEADAfterDELETEIsTheDeleteStepsErrorAndNotItsTime() async {
        let store = MemoryBackend()
        // No head step: the only HEAD of the cycle is the one that must answer 404 after DELETE.
        var probe = Fixtures.realClockProbe
        probe.operations = [.put, .get, .delete]
        let target = Fixtures.target(store: store, probe: probe)
        store.failNext(1, status: 500, operations: [.head])
        let result = await CanaryCycle(target: target, clock: ContinuousClock()).run()
        #expect(result.status == .failure)
        #expect(result.steps.map(\.operation) == [.put, .get, .delete, .delete])
        #expect(result.steps.map(\.result) == [.success, .success, .success, .error])
        #expect(result.steps.last?.reason == .http5xx && result.steps.last?.seconds == nil)
        #expect(result.failure?.operation == "delete")
        #expect(target.backend.snapshot.consecutiveFailures == 1, "counted by the breaker")
        #expect(store.keys.isEmpty)
    }
}
