import Foundation
import NIOCore
import ObjectStorage
import Testing

@Suite("S3Backend against a real Ceph RGW (strict SigV4)")
struct S3BackendRGWTests {
    static let addressings: [S3Backend.Configuration.Addressing] = [.path, .virtualHost]

    static let awkwardKeys = [
        "plain.txt",
        "with space/and  two spaces.txt",
        "unicodé/日本語/😀.bin",
        "reserved +=~!*'()&$@,;:.txt",
        "more?#[]%{}^|`\"<>.txt",
        "double//slash/./dot/../x",
    ]

    @Test(arguments: addressings)
    func everyOperationWithAwkwardKeys(addressing: S3Backend.Configuration.Addressing) async throws {
        let rgw = try RGWEnvironment.load()
        try await rgw.withBackend(rgw.configuration(addressing)) { backend in
            let prefix = uniquePrefix("ops-\(addressing.rawValue)")
            for name in Self.awkwardKeys {
                let key = prefix + name
                let body = randomBytes(1024)
                let put = try await backend.putObject(
                    key: key, body: body, contentType: "application/octet-stream", metadata: ["canary": "yes"]
                )
                #expect(put.etag?.isEmpty == false, "\(name)")
                let head = try await backend.headObject(key: key)
                #expect(head.size == 1024, "\(name)")
                #expect(head.metadata["canary"] == "yes", "\(name)")
                #expect(head.etag == put.etag, "\(name)")
                let get = try await backend.getObject(key: key, range: nil)
                #expect(get.body == body, "\(name): GET returned other bytes")
                #expect(get.contentRange == nil)
            }
            let listed = try await backend.listAllObjects(prefix: prefix).map(\.key)
            #expect(Set(listed) == Set(Self.awkwardKeys.map { prefix + $0 }))
            for name in Self.awkwardKeys {
                try await backend.deleteObject(key: prefix + name)
                await #expect { try await backend.headObject(key: prefix + name) } throws: {
                    ObjectStorageError.isNotFound($0)
                }
            }
            #expect(try await backend.listAllObjects(prefix: prefix).isEmpty)
        }
    }

    @Test(arguments: addressings)
    func rangedGetReturns206AndTheRightBytes(addressing: S3Backend.Configuration.Addressing) async throws {
        let rgw = try RGWEnvironment.load()
        try await rgw.withBackend(rgw.configuration(addressing)) { backend in
            let key = uniquePrefix("range") + "object"
            let body = randomBytes(100)
            _ = try await backend.putObject(key: key, body: body, contentType: nil, metadata: [:])
            let ranged = try await backend.getObject(key: key, range: "bytes=10-19")
            #expect(ranged.contentRange == "bytes 10-19/100")
            #expect(ranged.size == 10)
            #expect(ranged.body == body.getSlice(at: 10, length: 10))
            let suffix = try await backend.getObject(key: key, range: "bytes=-5")
            #expect(suffix.body == body.getSlice(at: 95, length: 5))
            await #expect { try await backend.getObject(key: key, range: "bytes=500-600") } throws: {
                ($0 as? ObjectStorageError)?.httpStatus == 416
            }
            try await backend.deleteObject(key: key)
        }
    }

    @Test(arguments: addressings)
    func copyReplacesOrKeepsMetadata(addressing: S3Backend.Configuration.Addressing) async throws {
        let rgw = try RGWEnvironment.load()
        try await rgw.withBackend(rgw.configuration(addressing)) { backend in
            let prefix = uniquePrefix("copy")
            let source = prefix + "source é+.txt"
            let body = randomBytes(300)
            _ = try await backend.putObject(
                key: source, body: body, contentType: "text/plain", metadata: ["origin": "a"])

            _ = try await backend.copyObject(
                source: source, destination: prefix + "kept", contentType: nil, metadata: nil)
            let kept = try await backend.headObject(key: prefix + "kept")
            #expect(kept.metadata == ["origin": "a"])
            #expect(kept.contentType == "text/plain")

            _ = try await backend.copyObject(
                source: source, destination: prefix + "replaced", contentType: "application/json",
                metadata: ["origin": "b"]
            )
            let replaced = try await backend.headObject(key: prefix + "replaced")
            #expect(replaced.metadata == ["origin": "b"])
            #expect(replaced.contentType == "application/json")
            #expect(try await backend.getObject(key: prefix + "replaced", range: nil).body == body)

            do {
                _ = try await backend.copyObject(
                    source: prefix + "missing", destination: prefix + "x", contentType: nil, metadata: nil)
                Issue.record("copying a missing source succeeded")
            } catch let error as CopyError {
                #expect(error.phase == .read)
                #expect(error.underlying.s3Code == "NoSuchKey")
            }
            for key in [source, prefix + "kept", prefix + "replaced"] { try await backend.deleteObject(key: key) }
        }
    }

    @Test(arguments: addressings)
    func listingOfManyPagesReturnsEveryKeyOnce(addressing: S3Backend.Configuration.Addressing) async throws {
        let rgw = try RGWEnvironment.load()
        try await rgw.withBackend(rgw.configuration(addressing)) { backend in
            let prefix = uniquePrefix("list")
            let keys = (0..<23).map { prefix + "obj \($0) +=é" }
            try await withThrowingTaskGroup(of: Void.self) { group in
                for key in keys {
                    group.addTask {
                        _ = try await backend.putObject(
                            key: key, body: ByteBuffer(string: key), contentType: nil, metadata: [:])
                    }
                }
                try await group.waitForAll()
            }
            var pages = 0
            var seen: [String] = []
            try await backend.listObjects(prefix: prefix, pageSize: 5) { page in
                pages += 1
                seen += page.objects.map(\.key)
                #expect(page.objects.count <= 5)
                return true
            }
            #expect(pages == 5)
            #expect(seen.count == keys.count)
            #expect(Set(seen) == Set(keys))
            for key in keys { try await backend.deleteObject(key: key) }
        }
    }

    @Test func missingKeysAndDeletes() async throws {
        let rgw = try RGWEnvironment.load()
        try await rgw.withBackend(rgw.configuration(.path, bucket: RGWEnvironment.miscBucket)) { backend in
            let key = uniquePrefix("missing") + "never-written"
            do {
                _ = try await backend.headObject(key: key)
                Issue.record("HEAD of a missing key succeeded")
            } catch let error as ObjectStorageError {
                #expect(error.isNotFound && error.code == .notFound && error.httpStatus == 404)
            }
            await #expect { try await backend.getObject(key: key, range: nil) } throws: {
                ($0 as? ObjectStorageError)?.s3Code == "NoSuchKey"
            }
            try await backend.deleteObject(key: key)
        }
    }

    @Test func wrongSecretIsAnAuthFailure() async throws {
        let rgw = try RGWEnvironment.load()
        let wrong = StaticCredentialsProvider(
            Credentials(accessKeyID: rgw.accessKey, secretAccessKey: "not-the-secret"))
        try await rgw.withBackend(rgw.configuration(.path), credentials: wrong) { backend in
            do {
                _ = try await backend.putObject(
                    key: "x", body: ByteBuffer(string: "x"), contentType: nil, metadata: [:])
                Issue.record("a wrong secret was accepted")
            } catch let error as ObjectStorageError {
                #expect(error.httpStatus == 403)
                #expect(error.s3Code == "SignatureDoesNotMatch")
                #expect(error.isAuthFailure)
                #expect(!error.description.contains("not-the-secret"))
            }
        }
    }

    @Test func unknownAccessKeyIsAnAuthFailure() async throws {
        let rgw = try RGWEnvironment.load()
        let unknown = StaticCredentialsProvider(Credentials(accessKeyID: "NOSUCHKEY00000000000", secretAccessKey: "x"))
        try await rgw.withBackend(rgw.configuration(.path), credentials: unknown) { backend in
            await #expect { try await backend.getObject(key: "x", range: nil) } throws: {
                let error = $0 as? ObjectStorageError
                return error?.s3Code == "InvalidAccessKeyId" && error?.isAuthFailure == true
            }
        }
    }

    @Test func missingBucketIsNoSuchBucket() async throws {
        let rgw = try RGWEnvironment.load()
        try await rgw.withBackend(
            rgw.configuration(.path, bucket: "no-such-bucket-\(UUID().uuidString.prefix(6).lowercased())")
        ) { backend in
            await #expect { try await backend.listAllObjects(prefix: "") } throws: {
                let error = $0 as? ObjectStorageError
                return error?.s3Code == "NoSuchBucket" && error?.httpStatus == 404
            }
            await #expect {
                try await backend.putObject(key: "k", body: ByteBuffer(string: "x"), contentType: nil, metadata: [:])
            } throws: {
                ($0 as? ObjectStorageError)?.s3Code == "NoSuchBucket"
            }
            // Deleting from a missing bucket is not "already absent": the bucket itself is gone.
            await #expect { try await backend.deleteObject(key: "k") } throws: {
                ($0 as? ObjectStorageError)?.s3Code == "NoSuchBucket"
            }
        }
    }

    @Test func closedPortIsAConnectErrorWithoutStatus() async throws {
        let rgw = try RGWEnvironment.load()
        var configuration = rgw.configuration(.path)
        configuration.endpoint = "http://127.0.0.1:1"
        // A long deadline, so "refused at once" is told apart from "failed at the deadline" even on a loaded machine.
        configuration.timeouts = .init(connect: .seconds(30), request: .seconds(60))
        try await rgw.withBackend(configuration) { backend in
            let started = ContinuousClock.now
            do {
                _ = try await backend.headObject(key: "x")
                Issue.record("a closed port answered")
            } catch let error as ObjectStorageError {
                #expect(error.code == .connect, "\(error)")
                #expect(error.httpStatus == nil)
                #expect(error.message.contains("refused"), "\(error)")
            }
            // Refused at once, not after the pool's reconnect backoff or the request deadline.
            #expect(ContinuousClock.now - started < .seconds(20))
        }
    }

    @Test func requestTimeoutIsATimeout() async throws {
        // A listener that accepts and never answers: the request deadline must end the wait.
        let rgw = try RGWEnvironment.load()
        let silent = try SilentServer.start()
        defer { silent.stop() }
        var configuration = rgw.configuration(.path)
        configuration.endpoint = "http://127.0.0.1:\(silent.port)"
        configuration.timeouts.request = .milliseconds(300)
        try await rgw.withBackend(configuration) { backend in
            await #expect { try await backend.headObject(key: "x") } throws: {
                ($0 as? ObjectStorageError)?.code == .timeout
            }
        }
    }
}
