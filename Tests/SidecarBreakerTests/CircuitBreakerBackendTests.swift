import Foundation
import NIOCore
import ObjectStorage
import Synchronization
import Testing

@testable import SidecarBreaker

@Suite("CircuitBreakerBackend decorator")
struct CircuitBreakerBackendTests {
    /// A monotonic clock the test moves by hand.
    final class Offset: Sendable {
        let base = ContinuousClock.now
        let offset = Mutex(Duration.zero)
        func advance(_ by: Duration) { self.offset.withLock { $0 += by } }
        var now: ContinuousClock.Instant { self.base.advanced(by: self.offset.withLock { $0 }) }
    }

    static func make(_ store: MemoryBackend, _ clock: Offset) -> (CircuitBreakerBackend, Events) {
        let recorded = Events()
        let breaker = CircuitBreakerBackend(
            name: "b",
            wrapping: store,
            configuration: .init(
                failureThreshold: 3, openTimeout: .seconds(30), jitterFraction: 0, probeTimeout: .seconds(10)),
            now: { clock.now },
            onTransition: { event in recorded.append(event) }
        )
        return (breaker, recorded)
    }

    final class Events: Sendable {
        let events = Mutex<[BreakerTransitionEvent]>([])
        func append(_ event: BreakerTransitionEvent) { self.events.withLock { $0.append(event) } }
        var all: [BreakerTransitionEvent] { self.events.withLock { $0 } }
    }

    @Test func exactlyOneOfManyConcurrentCallersIsAdmittedAsTheProbe() async throws {
        let store = MemoryBackend()
        let clock = Offset()
        let (breaker, events) = Self.make(store, clock)
        _ = try await store.putObject(key: "k", body: ByteBuffer(string: "x"), contentType: nil, metadata: [:])
        store.failNext(3, status: 500, operations: [.head])
        for _ in 0..<3 { _ = try? await breaker.headObject(key: "k") }
        #expect(breaker.snapshot.state == .open)
        let callsBefore = store.callCount(.head)
        // While open: rejected without reaching the store.
        await #expect { try await breaker.headObject(key: "k") } throws: {
            ($0 as? ObjectStorageError)?.code == .backendUnavailable
        }
        #expect(store.callCount(.head) == callsBefore)

        clock.advance(.seconds(31))
        store.setLatency(.milliseconds(200), operations: [.head])
        let outcomes = await withTaskGroup(of: Bool.self) { group in
            for _ in 0..<50 {
                group.addTask { (try? await breaker.headObject(key: "k")) != nil }
            }
            var admitted = 0
            for await ok in group where ok { admitted += 1 }
            return admitted
        }
        #expect(outcomes == 1, "exactly one caller is the half-open probe")
        #expect(store.callCount(.head) == callsBefore + 1)
        #expect(breaker.snapshot.state == .closed)
        #expect(events.all.map(\.transition.to) == [.open, .halfOpen, .closed])
        #expect(events.all.allSatisfy { $0.backend == "b" })
    }

    @Test func copyIsForwardedAndItsFailuresCount() async throws {
        let store = MemoryBackend()
        let (breaker, _) = Self.make(store, Offset())
        _ = try await store.putObject(key: "a", body: ByteBuffer(string: "x"), contentType: nil, metadata: [:])
        _ = try await breaker.copyObject(source: "a", destination: "b", contentType: nil, metadata: nil)
        #expect(store.keys == ["a", "b"])
        store.failNext(3, status: 503, operations: [.copy])
        for _ in 0..<3 {
            await #expect(throws: CopyError.self) {
                try await breaker.copyObject(source: "a", destination: "c", contentType: nil, metadata: nil)
            }
        }
        #expect(breaker.snapshot.state == .open)
        #expect(breaker.unwrap() is MemoryBackend)
    }

    @Test func cancellationLeavesTheCountAlone() async throws {
        let store = MemoryBackend()
        let (breaker, _) = Self.make(store, Offset())
        store.failNext(2, status: 500, operations: [.head])
        for _ in 0..<2 { _ = try? await breaker.headObject(key: "k") }
        store.hangNext(1, operations: [.head])
        let task = Task { try await breaker.headObject(key: "k") }
        try await Task.sleep(for: .milliseconds(50))
        task.cancel()
        _ = await task.result
        #expect(breaker.snapshot.consecutiveFailures == 2, "a cancelled call neither resets nor adds")
    }

    @Test func lastErrorMessagesCarryNoSecrets() async throws {
        let store = MemoryBackend()
        let (breaker, events) = Self.make(store, Offset())
        store.failNext(3, status: 403, s3Code: "SignatureDoesNotMatch", operations: [.put])
        for _ in 0..<3 {
            _ = try? await breaker.putObject(key: "k", body: ByteBuffer(), contentType: nil, metadata: [:])
        }
        let transition = try #require(events.all.first?.transition)
        #expect(transition.lastFailure?.reason == .auth)
        #expect(transition.lastFailure?.operation == "PutObject")
        #expect(transition.consecutiveFailures == 3 && transition.threshold == 3)
    }
}
