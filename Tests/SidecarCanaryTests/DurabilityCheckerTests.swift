import Foundation
import NIOCore
import ObjectStorage
import Synchronization
import Testing

@testable import SidecarCanary
@testable import SidecarConfig

/// The durability corpus over a MemoryBackend: written once, checked, never rewritten but by a reset.
@Suite("Durability corpus over MemoryBackend")
struct DurabilityCheckerTests {
    static func settings(objects: Int = 40, size: Int = 100) -> CanaryConfiguration.Durability {
        var settings = CanaryConfiguration.Durability()
        settings.objects = objects
        settings.objectSize = size
        settings.prefix = "corpus/"
        settings.requestsPerSecond = 100_000
        return settings
    }

    static func checker(
        _ store: MemoryBackend, instance: String = "a", settings: CanaryConfiguration.Durability = Self.settings(),
        reports: ReportSink = ReportSink()
    ) -> DurabilityChecker<ContinuousClock> {
        var checker = DurabilityChecker(
            target: DurabilityTarget(name: "mem", instance: instance, settings: settings, backend: store),
            clock: ContinuousClock(), now: { Date() }, log: { _ in }, observe: { reports.append($0) })
        checker.step = 16
        return checker
    }

    final class ReportSink: Sendable {
        private let reports = Mutex<[DurabilityReport]>([])
        func append(_ report: DurabilityReport) { self.reports.withLock { $0.append(report) } }
        var all: [DurabilityReport] { self.reports.withLock { $0 } }
    }

    /// A whole full pass from the start, as `run` does it.
    static func fullPass(
        _ checker: DurabilityChecker<ContinuousClock>, beforePass: () -> Void = {}
    ) async throws -> DurabilityChecker<ContinuousClock>.Run {
        var report = DurabilityReport(backend: "mem", phase: .creating, prefix: "corpus/", objects: 0)
        let settings = checker.target.settings
        let corpus = DurabilityCorpus(
            prefix: settings.prefix, objects: settings.objects, objectSize: settings.objectSize)
        let manifest = try await checker.establish(corpus, &report)
        var run = DurabilityChecker<ContinuousClock>.Run(
            corpus: DurabilityCorpus(prefix: corpus.prefix, objects: manifest.objects, objectSize: manifest.objectSize),
            progress: try await checker.loadProgress(corpus), report: report, lastSaved: Date())
        run.report.phase = .verifying
        run.report.objects = manifest.objects
        run.report.damaged = run.progress.damaged
        run.progress.position = 0
        beforePass()
        let stop = StopSignal()
        while run.progress.position != nil { _ = await checker.passStep(&run, stop) }
        return run
    }

    @Test func theContentRuleIsDeterministicPerKeyAndExactInSize() {
        let a = DurabilityCorpus.content(forKey: "corpus/objects/00000001", size: 13)
        #expect(a.readableBytes == 13)
        #expect(a == DurabilityCorpus.content(forKey: "corpus/objects/00000001", size: 13))
        #expect(a != DurabilityCorpus.content(forKey: "corpus/objects/00000002", size: 13))
        // A shorter object is a prefix of a longer one of the same key: the stream does not depend on the size.
        let long = DurabilityCorpus.content(forKey: "corpus/objects/00000001", size: 64)
        #expect(long.getSlice(at: 0, length: 13) == a)
        let corpus = DurabilityCorpus(prefix: "p/", objects: 100, objectSize: 10)
        #expect(corpus.key(7) == "p/objects/00000007" && corpus.index(of: "p/objects/00000007") == 7)
        #expect(corpus.index(of: "p/objects/00000100") == nil && corpus.index(of: "p/manifest.json") == nil)
    }

    @Test func theCorpusIsWrittenOnceAndASecondInstanceUsesItsManifest() async throws {
        let store = MemoryBackend()
        var report = DurabilityReport(backend: "mem", phase: .creating, prefix: "corpus/", objects: 40)
        let first = Self.checker(store, instance: "a")
        let corpus = DurabilityCorpus(prefix: "corpus/", objects: 40, objectSize: 100)
        let manifest = try await first.establish(corpus, &report)
        #expect(manifest.objects == 40 && manifest.objectSize == 100 && manifest.createdBy == "a")
        #expect(report.written == 40)
        #expect(store.keys.filter { $0.hasPrefix("corpus/objects/") }.count == 40)
        for index in [0, 17, 39] {
            let body = try await store.getObject(key: corpus.key(index), range: nil).body
            #expect(corpus.holds(body, at: index))
        }
        let puts = store.callCount(.put)
        // Another instance, configured for another corpus: the manifest's corpus wins, nothing is written.
        var other = DurabilityReport(backend: "mem", phase: .creating, prefix: "corpus/", objects: 99)
        let second = Self.checker(store, instance: "b", settings: Self.settings(objects: 99, size: 7))
        let theirs = try await second.establish(
            DurabilityCorpus(prefix: "corpus/", objects: 99, objectSize: 7), &other)
        #expect(theirs == manifest)
        #expect(store.callCount(.put) == puts, "a corpus with a manifest is never written again")
    }

    @Test func aPassFindsWhatIsMissingAndCorruptedAndRewritesNothing() async throws {
        let store = MemoryBackend()
        let checker = Self.checker(store)
        _ = try await Self.fullPass(checker)
        let corpus = DurabilityCorpus(prefix: "corpus/", objects: 40, objectSize: 100)
        _ = try await store.deleteObject(key: corpus.key(3))
        _ = try await store.deleteObject(key: corpus.key(30))
        var junk = corpus.content(12)
        junk.setInteger(UInt8(0xFF) ^ (junk.getInteger(at: 50, as: UInt8.self) ?? 0), at: 50)
        _ = try await store.putObject(key: corpus.key(12), body: junk, contentType: nil, metadata: [:])
        let run = try await Self.fullPass(checker)
        let counts = run.report.counts
        #expect(counts.ok == 37 && counts.missing == 2 && counts.corrupted == 1)
        #expect(run.progress.damaged.map(\.index) == [3, 12, 30])
        #expect(run.progress.lastFullPass != nil && run.progress.position == nil)
        // Nothing rewritten: the two are still gone, the flipped byte still there.
        await #expect(throws: ObjectStorageError.self) { try await store.headObject(key: corpus.key(3)) }
        #expect(try await store.getObject(key: corpus.key(12), range: nil).body == junk)
    }

    @Test func aRestartKnowsWhatItFoundAndDoesNotAnnounceItAgain() async throws {
        let store = MemoryBackend()
        let reports = ReportSink()
        let checker = Self.checker(store, reports: reports)
        _ = try await Self.fullPass(checker)
        let corpus = DurabilityCorpus(prefix: "corpus/", objects: 40, objectSize: 100)
        _ = try await store.deleteObject(key: corpus.key(5))
        let first = try await Self.fullPass(checker)
        #expect(first.progress.damaged.map(\.index) == [5])
        #expect(reports.all.flatMap(\.newlyDamaged).map(\.index) == [5], "announced once")
        // A new process: the progress record in the bucket holds the loss, so the next pass announces nothing.
        let restarted = Self.checker(store, reports: reports)
        let second = try await Self.fullPass(restarted)
        #expect(second.progress.damaged.map(\.index) == [5])
        #expect(reports.all.flatMap(\.newlyDamaged).map(\.index) == [5], "not announced again after a restart")
        #expect(store.keys.contains(corpus.progressKey(instance: "a")))
    }

    @Test func aResetRewritesOnlyWhatIsDamagedAndThePassThenFindsItIntact() async throws {
        let store = MemoryBackend()
        let checker = Self.checker(store)
        _ = try await Self.fullPass(checker)
        let corpus = DurabilityCorpus(prefix: "corpus/", objects: 40, objectSize: 100)
        _ = try await store.deleteObject(key: corpus.key(8))
        _ = try await store.putObject(
            key: corpus.key(9), body: ByteBuffer(string: "not the corpus"), contentType: nil, metadata: [:])
        _ = try await Self.fullPass(checker)
        let audit = try await checker.audit()
        #expect(audit.missing == [8] && audit.corrupted == [9] && audit.unreadable.isEmpty)
        let puts = store.callCount(.put)
        #expect(await checker.rewrite(audit.missing + audit.corrupted, of: audit.corpus).isEmpty)
        #expect(store.callCount(.put) == puts + 2, "exactly the two damaged objects are written")
        let after = try await Self.fullPass(checker)
        #expect(after.progress.damaged.isEmpty)
        #expect(try await checker.audit().missing.isEmpty)
    }

    @Test func anAuditOfABucketWithoutACorpusSaysSo() async throws {
        let checker = Self.checker(MemoryBackend())
        await #expect(throws: DurabilityError.self) { try await checker.audit() }
    }

    @Test func aLostManifestIsDamageNotANewCorpus() async throws {
        let store = MemoryBackend()
        let checker = Self.checker(store)
        _ = try await Self.fullPass(checker)
        let corpus = DurabilityCorpus(prefix: "corpus/", objects: 40, objectSize: 100)
        _ = try await store.deleteObject(key: corpus.manifestKey)
        _ = try await store.deleteObject(key: corpus.key(4))
        let puts = store.callCount(.put)
        var report = DurabilityReport(backend: "mem", phase: .creating, prefix: "corpus/", objects: 40)
        await #expect(throws: DurabilityError.self) { try await checker.establish(corpus, &report) }
        #expect(store.callCount(.put) == puts, "nothing is written: the corpus does not heal itself unseen")
        // The reset audits the configured corpus, and with --yes writes the missing object and the manifest.
        let audit = try await checker.audit()
        #expect(audit.manifest == nil && audit.missing == [4])
        #expect(await checker.rewrite(audit.missing, of: audit.corpus).isEmpty)
        try await checker.writeManifest(audit.corpus)
        #expect(try await checker.establish(corpus, &report).objects == 40)
    }

    @Test func aPassThatCouldNotReadEverythingIsNotAFullPass() async throws {
        let store = MemoryBackend()
        let checker = Self.checker(store)
        _ = try await Self.fullPass(checker)
        let corpus = DurabilityCorpus(prefix: "corpus/", objects: 40, objectSize: 100)
        // As the record keeps it (whole seconds); a pass that counted would set a new time, to the fraction.
        let passed = try #require(try await checker.loadProgress(corpus).lastFullPass)
        let second = try await Self.fullPass(checker) { store.failNext(3, status: 503, operations: [.get]) }
        #expect(second.progress.lastFullPass == passed, "a pass with unread objects does not count")
        #expect(second.retryPassAt != nil)
        #expect(second.progress.damaged.isEmpty, "a 503 is no verdict")
    }

    @Test func aStoppedStepEndsAtItsPrefixAndResumesThere() async throws {
        let store = MemoryBackend()
        let checker = Self.checker(store)
        _ = try await Self.fullPass(checker)
        let stop = StopSignal()
        stop.stop()
        let read = await checker.map(Array(0..<16), until: stop) { $0 }
        #expect(read.isEmpty, "a stopped map starts nothing")
        let all = await checker.map(Array(0..<16)) { $0 }
        #expect(all == Array(0..<16))
    }
}
