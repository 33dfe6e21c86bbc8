public import Foundation
public import NIOCore
import ObjectStorage
import SidecarConfig

extension DurabilityChecker {
    // MARK: The corpus

    /// The manifest, or (none yet) the corpus written and then the manifest, created once for every instance. Once
    /// this instance has a progress record, a missing manifest is damage, not a new corpus: nothing is written.
    func establish(
        _ corpus: DurabilityCorpus, _ report: inout DurabilityReport, _ stop: StopSignal? = nil
    ) async throws -> DurabilityManifest {
        if let manifest = try await self.readManifest(corpus) { return manifest }
        if try await self.exists(corpus.progressKey(instance: self.target.instance)) {
            throw DurabilityError(
                "\(corpus.manifestKey) is gone while this instance's progress record is there: the corpus is not "
                    + "written again; find out what deleted it, then s3-canary durability reset --yes writes what is "
                    + "missing and the manifest")
        }
        self.log("durability: no manifest at \(corpus.manifestKey); writing \(corpus.objects) objects")
        // Every object that is not there yet: another instance may be writing too, with the same bytes. Each HEAD
        // and each PUT takes its own slot of the pace.
        var index = 0
        while index < corpus.objects {
            let indices = Array(index..<min(corpus.objects, index + self.step))
            let missing = try await self.missing(indices, of: corpus, stop)
            if let failure = await self.write(missing, of: corpus, until: stop).first {
                throw DurabilityError(failure.error)
            }
            if stop?.isStopped == true { throw CancellationError() }
            index += indices.count
            report.written = index
            self.observe(report)
        }
        return try await self.writeManifest(corpus)
    }

    /// Which of `indices` are not there (HEAD answered 404); throws the first other failure.
    func missing(_ indices: [Int], of corpus: DurabilityCorpus, _ stop: StopSignal?) async throws -> [Int] {
        let heads = await self.map(indices, until: stop) { index -> Result<Bool, DurabilityError> in
            do {
                _ = try await self.target.backend.headObject(key: corpus.key(index))
                return .success(true)
            } catch  where ObjectStorageError.isNotFound(error) {
                return .success(false)
            } catch {
                return .failure(DurabilityError(Self.describe(error)))
            }
        }
        if stop?.isStopped == true { throw CancellationError() }
        var missing: [Int] = []
        for (index, head) in zip(indices, heads) {
            if try !head.get() { missing.append(index) }
        }
        return missing
    }

    /// Writes the manifest once (or reads the one another instance wrote first).
    @discardableResult
    public func writeManifest(_ corpus: DurabilityCorpus) async throws -> DurabilityManifest {
        let manifest = DurabilityManifest(
            // Whole seconds: what the manifest's ISO 8601 text keeps, so every reader sees the same time.
            objects: corpus.objects, objectSize: corpus.objectSize,
            created: Date(timeIntervalSince1970: self.now().timeIntervalSince1970.rounded(.down)),
            createdBy: self.target.instance)
        let body = ByteBuffer(bytes: try DurabilityManifest.encoder.encode(manifest))
        if try await self.createOnce(key: corpus.manifestKey, body: body) {
            self.log("durability: corpus of \(corpus.objects) objects complete; manifest written")
            return manifest
        }
        // Another instance finished first: its manifest is the corpus's.
        guard let theirs = try await self.readManifest(corpus) else {
            throw DurabilityError("the manifest was there a moment ago and is gone")
        }
        return theirs
    }

    func exists(_ key: String) async throws -> Bool {
        do {
            _ = try await self.target.backend.headObject(key: key)
            return true
        } catch  where ObjectStorageError.isNotFound(error) {
            return false
        }
    }

    func readManifest(_ corpus: DurabilityCorpus) async throws -> DurabilityManifest? {
        let answer: GetObjectResult
        do {
            answer = try await self.target.backend.getObject(key: corpus.manifestKey, range: nil)
        } catch  where ObjectStorageError.isNotFound(error) {
            return nil
        }
        do {
            let manifest = try DurabilityManifest.decoder.decode(
                DurabilityManifest.self, from: Data(answer.body.readableBytesView))
            guard manifest.content == DurabilityCorpus.contentRule else {
                throw DurabilityError("content rule \(manifest.content), not \(DurabilityCorpus.contentRule)")
            }
            return manifest
        } catch let error as DurabilityError {
            throw DurabilityError("\(corpus.manifestKey) is not a manifest this version reads: \(error.message)")
        } catch {
            throw DurabilityError("\(corpus.manifestKey) is not a manifest this version reads: \(error)")
        }
    }

    /// Writes `key` only if nothing is there: `If-None-Match: *`, or, on a server that does not do conditional
    /// writes, a HEAD and then the write. Returns false when something was there.
    func createOnce(key: String, body: ByteBuffer) async throws -> Bool {
        if let features = self.target.backend as? any FeatureBackend {
            do {
                _ = try await features.putObject(
                    key: key, body: body,
                    options: PutOptions(contentType: "application/json", ifNoneMatch: "*"))
                return true
            } catch let error as ObjectStorageError where error.httpStatus == 412 || error.httpStatus == 409 {
                return false
            } catch let error as ObjectStorageError where FeatureVerdict.isUnsupportedAnswer(error) {
                self.log(
                    "durability: the server does not write conditionally (\(error.httpStatus ?? 0)); HEAD, then PUT")
            }
        }
        do {
            _ = try await self.target.backend.headObject(key: key)
            return false
        } catch  where ObjectStorageError.isNotFound(error) {
            _ = try await self.target.backend.putObject(
                key: key, body: body, contentType: "application/json", metadata: [:])
            return true
        }
    }

    // MARK: Reset (s3-canary durability reset)

    /// The whole corpus read back once, for an operator: what is missing, what is corrupted, what could not be read.
    public struct Audit: Sendable {
        public var corpus: DurabilityCorpus
        /// The corpus's manifest; `nil` when it is gone (a reset writes it again).
        public var manifest: DurabilityManifest?
        public var missing: [Int] = []
        public var corrupted: [Int] = []
        /// Objects whose read failed (no verdict), with the error.
        public var unreadable: [(index: Int, error: String)] = []
    }

    /// Reads every object of the corpus back (paced as configured); without a manifest, the corpus the configuration
    /// describes. Throws when there is no corpus to audit.
    public func audit() async throws -> Audit {
        let settings = self.target.settings
        var corpus = DurabilityCorpus(
            prefix: settings.prefix, objects: settings.objects, objectSize: settings.objectSize)
        let manifest = try await self.readManifest(corpus)
        if let manifest {
            corpus.objects = manifest.objects
            corpus.objectSize = manifest.objectSize
        } else {
            // No manifest: a corpus that was never written, or one whose manifest was lost. Only the second has
            // objects to audit.
            let first = try await self.target.backend.listAllObjects(prefix: "\(corpus.prefix)objects/", pageSize: 1)
            guard !first.isEmpty else {
                throw DurabilityError(
                    "there is no corpus at \(corpus.prefix) (no \(corpus.manifestKey), no objects): nothing to reset")
            }
        }
        let audited = corpus
        var audit = Audit(corpus: corpus, manifest: manifest)
        var start = 0
        while start < corpus.objects {
            let indices = Array(start..<min(corpus.objects, start + self.step))
            let outcomes = await self.map(indices) { index -> Outcome in
                do {
                    let answer = try await self.target.backend.getObject(key: audited.key(index), range: nil)
                    return audited.holds(answer.body, at: index) ? .ok : .corrupted
                } catch  where ObjectStorageError.isNotFound(error) {
                    return .missing
                } catch {
                    return .error(Self.describe(error))
                }
            }
            for (index, outcome) in zip(indices, outcomes) {
                switch outcome {
                case .ok: break
                case .missing: audit.missing.append(index)
                case .corrupted: audit.corrupted.append(index)
                case .error(let message): audit.unreadable.append((index, message))
                }
            }
            start = (indices.last.map { $0 + 1 } ?? 0)
        }
        return audit
    }

    /// Writes objects `indices` of `corpus` again with their content; returns those that failed, with the error.
    public func rewrite(_ indices: [Int], of corpus: DurabilityCorpus) async -> [(index: Int, error: String)] {
        await self.write(indices, of: corpus)
    }

    /// Writes objects `indices` of `corpus` with their content, paced (until stopped); returns those that failed.
    func write(
        _ indices: [Int], of corpus: DurabilityCorpus, until stop: StopSignal? = nil
    ) async -> [(index: Int, error: String)] {
        let outcomes = await self.map(indices, until: stop) { index -> String? in
            do {
                _ = try await self.target.backend.putObject(
                    key: corpus.key(index), body: corpus.content(index), contentType: "application/octet-stream",
                    metadata: ["s3-canary": "durability"])
                return nil
            } catch {
                return Self.describe(error)
            }
        }
        return zip(indices, outcomes).compactMap { index, error in error.map { (index, $0) } }
    }

}
