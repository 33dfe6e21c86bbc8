import Foundation
import NIOCore
import ObjectStorage
import Synchronization
import Testing

@testable import SidecarBreaker
@testable import SidecarCanary
@testable import SidecarConfig

/// A name with addresses, each its own MemoryBackend (so one can fail alone), and an answer the test sets.
final class AddressedMemory: AddressedBackend {
    let stores: [String: MemoryBackend]
    let answer: Mutex<Result<NameResolution, DNSFailure>>
    let cycles = Atomic<Int>(0)

    init(_ addresses: [String]) {
        self.stores = Dictionary(uniqueKeysWithValues: addresses.map { ($0, MemoryBackend(name: $0)) })
        self.answer = Mutex(.success(NameResolution(addresses: addresses, ttl: .seconds(30), server: "test")))
    }

    func resolveAddresses() async throws -> NameResolution { try self.answer.withLock { $0 }.get() }
    func pinned(to address: String) -> any ObjectBackend { self.stores[address] ?? MemoryBackend() }
    func beginConnectionCycle() { self.cycles.add(1, ordering: .relaxed) }

    // Unpinned, it is its first address (as `addresses: first` would be).
    private var first: MemoryBackend { self.stores.values.first ?? MemoryBackend() }
    func headObject(key: String) async throws -> HeadObjectResult { try await self.first.headObject(key: key) }
    func putObject(
        key: String, body: ByteBuffer, contentType: String?, metadata: [String: String]
    ) async throws
        -> PutObjectResult
    {
        try await self.first.putObject(key: key, body: body, contentType: contentType, metadata: metadata)
    }
    func getObject(key: String, range: String?) async throws -> GetObjectResult {
        try await self.first.getObject(key: key, range: range)
    }
    func deleteObject(key: String) async throws -> DeleteObjectResult { try await self.first.deleteObject(key: key) }
    func listObjects(prefix: String, pageSize: Int, page: (ListObjectsPage) async throws -> Bool) async throws {
        try await self.first.listObjects(prefix: prefix, pageSize: pageSize, page: page)
    }
}

@Suite("addresses: all over MemoryBackends")
struct AddressCycleTests {
    static let addresses = ["10.0.0.1", "10.0.0.2", "fd00::3"]

    static func target(_ backend: AddressedMemory, threshold: Int = 2, maxAddresses: Int = 8) -> CanaryTarget {
        var target = Fixtures.target(store: MemoryBackend(), threshold: threshold)
        target.backend = CircuitBreakerBackend(
            name: "mem", wrapping: backend,
            configuration: .init(failureThreshold: threshold, openTimeout: .seconds(600)),
            onTransition: { _ in })
        target.addresses = .all
        target.maxAddresses = maxAddresses
        return target
    }

    static let refused = ObjectStorageError(code: .connect, message: "connection refused")

    @Test func oneFailingAddressOfThreeIsDegradedAndTheBreakerCountsNothing() async {
        let backend = AddressedMemory(Self.addresses)
        backend.stores["10.0.0.2"]?.failAlways(with: Self.refused)
        let target = Self.target(backend)
        for _ in 0..<3 {
            let result = await CanaryCycle(target: target, clock: ContinuousClock()).run()
            #expect(result.status == .success)
            #expect(result.addresses.isDegraded)
            #expect(result.addresses.results.map(\.address) == Self.addresses)
            #expect(result.addresses.results.map(\.status) == [.success, .failure, .success])
            #expect(result.addresses.results[1].failure?.reason == .connect)
            #expect(result.addresses.results.map(\.family) == ["ipv4", "ipv4", "ipv6"])
        }
        #expect(target.backend.snapshot.state == .closed && target.backend.snapshot.consecutiveFailures == 0)
        #expect(backend.cycles.load(ordering: .relaxed) == 3, "one new-connection round per cycle, not per address")
        // Every address cleaned up after itself.
        for store in backend.stores.values { #expect(store.keys.isEmpty) }
    }

    @Test func everyAddressFailingIsOneFailureOfTheBackendUntilItsBreakerOpens() async {
        let backend = AddressedMemory(Self.addresses)
        for store in backend.stores.values { store.failAlways(with: Self.refused) }
        let target = Self.target(backend, threshold: 2)
        let first = await CanaryCycle(target: target, clock: ContinuousClock()).run()
        #expect(first.status == .failure && !first.addresses.isDegraded)
        #expect(first.failure?.reason == .connect)
        #expect(
            first.failure?.message.hasPrefix("every address failed; 10.0.0.1: ") == true,
            "\(String(describing: first.failure))")
        #expect(target.backend.snapshot.consecutiveFailures == 1 && target.backend.snapshot.state == .closed)
        _ = await CanaryCycle(target: target, clock: ContinuousClock()).run()
        #expect(target.backend.snapshot.state == .open)
        // Open: the next cycle sends nothing to any address.
        let skipped = await CanaryCycle(target: target, clock: ContinuousClock()).run()
        #expect(skipped.status == .skipped && skipped.addresses.results.isEmpty)
        #expect(skipped.steps.map(\.result) == [.rejected])
    }

    @Test func aNameThatDoesNotResolveFailsWithReasonDNS() async {
        let backend = AddressedMemory(Self.addresses)
        backend.answer.withLock { $0 = .failure(DNSFailure(code: "SERVFAIL", name: "s3.test", server: "10.0.0.53:53")) }
        let target = Self.target(backend)
        let result = await CanaryCycle(target: target, clock: ContinuousClock()).run()
        #expect(result.status == .failure && result.failure?.reason == .dns)
        #expect(result.failure?.message.contains("SERVFAIL from 10.0.0.53:53") == true)
        #expect(result.steps.first?.phase == .dns)
        #expect(result.addresses.dnsFailure?.code == "SERVFAIL" && result.addresses.results.isEmpty)
        #expect(target.backend.snapshot.consecutiveFailures == 1)
    }

    @Test func onlyTheFirstMaxAddressesAreProbed() async {
        let backend = AddressedMemory(Self.addresses)
        let result = await CanaryCycle(target: Self.target(backend, maxAddresses: 2), clock: ContinuousClock()).run()
        #expect(result.addresses.results.map(\.address) == Array(Self.addresses.prefix(2)))
        #expect(result.addresses.skipped == 1)
        #expect(backend.stores["fd00::3"]?.callCount(.put) == 0)
    }
}
