import NIOCore
import Testing

@testable import ObjectStorage

@Suite("MemoryBackend: S3 semantics and fault injection")
struct MemoryBackendTests {
    static func bytes(_ text: String) -> ByteBuffer { ByteBuffer(string: text) }

    @Test func roundTripWithRangesCopyAndListing() async throws {
        let backend = MemoryBackend()
        _ = try await backend.putObject(
            key: "a/1", body: Self.bytes("0123456789"), contentType: "text/plain", metadata: ["m": "1"])
        let head = try await backend.headObject(key: "a/1")
        #expect(head.size == 10 && head.contentType == "text/plain" && head.metadata == ["m": "1"])
        let ranged = try await backend.getObject(key: "a/1", range: "bytes=2-4")
        #expect(String(buffer: ranged.body) == "234" && ranged.contentRange == "bytes 2-4/10")
        #expect(String(buffer: try await backend.getObject(key: "a/1", range: "bytes=-3").body) == "789")
        #expect(String(buffer: try await backend.getObject(key: "a/1", range: "bytes=8-").body) == "89")
        await #expect(throws: ObjectStorageError.self) { try await backend.getObject(key: "a/1", range: "bytes=20-30") }

        _ = try await backend.copyObject(source: "a/1", destination: "a/2", contentType: nil, metadata: nil)
        #expect(try await backend.headObject(key: "a/2").metadata == ["m": "1"])
        _ = try await backend.copyObject(source: "a/1", destination: "a/3", contentType: "x/y", metadata: ["n": "2"])
        #expect(try await backend.headObject(key: "a/3").metadata == ["n": "2"])

        for index in 0..<10 {
            _ = try await backend.putObject(key: "p/\(index)", body: Self.bytes("x"), contentType: nil, metadata: [:])
        }
        var pages = 0
        var keys: [String] = []
        try await backend.listObjects(prefix: "p/", pageSize: 3) { page in
            pages += 1
            keys += page.objects.map(\.key)
            return true
        }
        #expect(pages == 4 && keys == (0..<10).map { "p/\($0)" })

        try await backend.deleteObject(key: "a/1")
        try await backend.deleteObject(key: "a/1")  // absent: still fine
        await #expect { try await backend.headObject(key: "a/1") } throws: { ObjectStorageError.isNotFound($0) }
    }

    @Test func copyOfAMissingSourceIsAReadFailure() async throws {
        let backend = MemoryBackend()
        do {
            _ = try await backend.copyObject(source: "nope", destination: "x", contentType: nil, metadata: nil)
            Issue.record("expected a CopyError")
        } catch let error as CopyError {
            #expect(error.phase == .read)
            #expect(ObjectStorageError.isNotFound(error))
        }
    }

    @Test func failNextCountsDownPerOperation() async throws {
        let backend = MemoryBackend()
        backend.failNext(2, status: 503, s3Code: "SlowDown", operations: [.put])
        for _ in 0..<2 {
            await #expect {
                try await backend.putObject(key: "k", body: Self.bytes("x"), contentType: nil, metadata: [:])
            } throws: {
                guard let error = $0 as? ObjectStorageError else { return false }
                return error.httpStatus == 503 && error.isThrottled && error.operation == "PutObject"
            }
        }
        _ = try await backend.putObject(key: "k", body: Self.bytes("x"), contentType: nil, metadata: [:])
        #expect(backend.callCount(.put) == 3)
    }

    @Test func failNextOnlyTouchesTheChosenOperations() async throws {
        let backend = MemoryBackend()
        backend.failNext(1, with: ObjectStorageError(code: .connection, message: "boom"), operations: [.get])
        _ = try await backend.putObject(key: "k", body: Self.bytes("x"), contentType: nil, metadata: [:])
        #expect(try await backend.headObject(key: "k").size == 1)
        await #expect(throws: ObjectStorageError.self) { try await backend.getObject(key: "k", range: nil) }
        #expect(String(buffer: try await backend.getObject(key: "k", range: nil).body) == "x")
        #expect(backend.callCount(.get) == 2)
    }

    @Test func persistentFailureLastsUntilCleared() async throws {
        let backend = MemoryBackend()
        backend.failAlways(with: ObjectStorageError(code: .timeout, message: "slow"))
        for _ in 0..<5 {
            await #expect(throws: ObjectStorageError.self) { try await backend.deleteObject(key: "k") }
        }
        backend.clearFaults()
        try await backend.deleteObject(key: "k")
    }

    @Test func hangWaitsUntilCancelled() async throws {
        let backend = MemoryBackend()
        backend.hangNext(1, operations: [.head])
        let task = Task { try await backend.headObject(key: "k") }
        try await Task.sleep(for: .milliseconds(50))
        task.cancel()
        let result = await task.result
        #expect(throws: ObjectStorageError.self) { try result.get() }
        if case .failure(let error as ObjectStorageError) = result { #expect(error.code == .cancelled) }
    }

    @Test func latencyIsAdded() async throws {
        let backend = MemoryBackend()
        backend.setLatency(.milliseconds(60), operations: [.head])
        _ = try await backend.putObject(key: "k", body: Self.bytes("x"), contentType: nil, metadata: [:])
        let elapsed = try await ContinuousClock().measure { _ = try await backend.headObject(key: "k") }
        #expect(elapsed >= .milliseconds(60))
    }

    @Test func corruptReadFlipsTheNextBodyOnly() async throws {
        let backend = MemoryBackend()
        _ = try await backend.putObject(key: "k", body: Self.bytes("abc"), contentType: nil, metadata: [:])
        backend.corruptNextReads(1)
        #expect(String(buffer: try await backend.getObject(key: "k", range: nil).body) != "abc")
        #expect(String(buffer: try await backend.getObject(key: "k", range: nil).body) == "abc")
    }

    @Test(
        arguments: [
            ("bytes=0-0", 10, (0, 0)), ("bytes=5-100", 10, (5, 9)), ("bytes=-20", 10, (0, 9)),
        ] as [(String, Int, (Int, Int))])
    func rangesParse(header: String, size: Int, expected: (Int, Int)) {
        let parsed = MemoryBackend.parseRange(header, size: size)
        #expect(parsed?.0 == expected.0 && parsed?.1 == expected.1)
    }

    @Test(arguments: ["bytes=10-", "bytes=3-2", "items=0-1", "bytes=0-1,3-4", "bytes=-0", "bytes=x-y"])
    func unsatisfiableRanges(header: String) {
        #expect(MemoryBackend.parseRange(header, size: 10) == nil)
    }
}
