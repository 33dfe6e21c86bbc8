public import Foundation
import NIOCore
public import ObjectStorage
import SidecarConfig
import Synchronization

/// Writes a backend's durability corpus once and checks it for ever (docs/design.md, 4.15): a random sample every
/// `sample_every`, the whole corpus every `full_every`, at most `concurrency` requests in flight and
/// `requests_per_second`. A missing or damaged object is reported (``DurabilityReport``) and never rewritten: only
/// `s3-canary durability reset` writes a corpus object once its manifest exists.
///
/// Its only task is the caller's (the scheduler runs it beside the backend's cycles); its requests go on a client
/// of its own, never through the breaker.
public struct DurabilityChecker<C: Clock>: Sendable where C.Duration == Duration {
    public typealias Observer = @Sendable (DurabilityReport) -> Void

    var target: DurabilityTarget
    var clock: C
    var now: @Sendable () -> Date
    var log: @Sendable (String) -> Void
    var observe: Observer
    /// Objects per step of a full pass (progress is saved and reported between steps).
    var step = 200
    /// How long before a failed read of the manifest (or write of the corpus) is tried again.
    var retry: Duration = .seconds(30)

    public init(
        target: DurabilityTarget, clock: C, now: @escaping @Sendable () -> Date,
        log: @escaping @Sendable (String) -> Void, observe: @escaping Observer
    ) {
        self.target = target
        self.clock = clock
        self.now = now
        self.log = log
        self.observe = observe
    }

    /// What one check of one object found.
    enum Outcome: Sendable, Equatable {
        case ok, missing, corrupted
        case error(String)
    }

    /// The state a run carries between steps: the corpus as the manifest says, this instance's progress record and
    /// the report being built.
    struct Run: Sendable {
        var corpus: DurabilityCorpus
        var progress: DurabilityProgress
        var report: DurabilityReport
        var lastSaved: Date
    }

    /// Runs until `stop` is signalled.
    func run(until stop: StopSignal) async {
        let settings = self.target.settings
        var corpus = DurabilityCorpus(
            prefix: settings.prefix, objects: settings.objects, objectSize: settings.objectSize)
        var report = DurabilityReport(
            backend: self.target.name, phase: .creating, prefix: settings.prefix, objects: settings.objects)
        // 1. The corpus: its manifest, or write it.
        var manifest: DurabilityManifest?
        while manifest == nil {
            do {
                manifest = try await self.establish(corpus, &report)
            } catch {
                report.lastError = Self.describe(error)
                self.log("durability: \(report.lastError ?? "")")
                self.observe(report)
                guard await self.sleep(for: self.retry, stop) else { return }
            }
            if stop.isStopped { return }
        }
        guard let manifest else { return }
        if manifest.objects != corpus.objects || manifest.objectSize != corpus.objectSize {
            report.mismatch =
                "the corpus holds \(manifest.objects) objects of \(manifest.objectSize) bytes; the configuration asks "
                + "for \(corpus.objects) of \(corpus.objectSize): the corpus is kept as it is"
            corpus.objects = manifest.objects
            corpus.objectSize = manifest.objectSize
        }
        report.phase = .verifying
        report.manifest = manifest
        report.objects = corpus.objects
        report.lastError = nil
        // 2. Where this instance's pass was, and what it had found.
        let progress = await self.loadProgress(corpus)
        report.damaged = progress.damaged.filter { $0.index < corpus.objects }
        report.lastFullPass = progress.lastFullPass ?? manifest.created
        report.passPosition = progress.position
        var run = Run(corpus: corpus, progress: progress, report: report, lastSaved: self.now())
        run.progress.lastFullPass = report.lastFullPass
        self.publish(&run)
        // Written at once: the bucket shows every instance that checks the corpus, before its first pass.
        await self.saveProgress(&run, force: true)
        // 3. Samples and full passes until stopped.
        var nextSample = self.clock.now
        while !stop.isStopped {
            let passDue = self.fullPassDue(run)
            if passDue <= self.now() || run.progress.position != nil {
                if run.progress.position == nil {
                    run.progress.position = 0
                    run.progress.passStarted = self.now()
                    self.log("durability: full pass of \(corpus.objects) objects starts")
                }
                guard await self.passStep(&run, stop) else { break }
                if self.clock.now >= nextSample {
                    await self.sample(&run)
                    nextSample = self.clock.now.advanced(by: settings.sampleEvery)
                }
                continue
            }
            if self.clock.now >= nextSample {
                await self.sample(&run)
                nextSample = self.clock.now.advanced(by: settings.sampleEvery)
            }
            let untilPass = Duration.seconds(max(0, passDue.timeIntervalSince(self.now())))
            let untilSample = self.clock.now.duration(to: nextSample)
            guard await self.sleep(for: max(.zero, min(untilPass, untilSample)), stop) else { break }
        }
        await self.saveProgress(&run, force: true)
    }

    /// When the next full pass starts: `full_every` after the last one ended.
    func fullPassDue(_ run: Run) -> Date {
        (run.progress.lastFullPass ?? self.now()).addingTimeInterval(self.target.settings.fullEvery.seconds)
    }

    // MARK: The corpus

    /// The manifest, or (none yet) the corpus written and then the manifest, created once for every instance.
    func establish(_ corpus: DurabilityCorpus, _ report: inout DurabilityReport) async throws -> DurabilityManifest {
        if let manifest = try await self.readManifest(corpus) { return manifest }
        self.log("durability: no manifest at \(corpus.manifestKey); writing \(corpus.objects) objects")
        // Every object that is not there yet: another instance may be writing too, with the same bytes.
        var index = 0
        while index < corpus.objects {
            let indices = Array(index..<min(corpus.objects, index + self.step))
            let failures = await self.forEach(indices) { index in
                let key = corpus.key(index)
                do {
                    _ = try await self.target.backend.headObject(key: key)
                    return nil
                } catch  where ObjectStorageError.isNotFound(error) {
                    _ = try await self.target.backend.putObject(
                        key: key, body: corpus.content(index), contentType: "application/octet-stream",
                        metadata: ["s3-canary": "durability"])
                    return nil
                }
            }
            if let failure = failures.first { throw failure }
            index = (indices.last.map { $0 + 1 } ?? 0)
            report.written = index
            self.observe(report)
        }
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

    // MARK: Checks

    /// One part of the full pass: up to `step` objects from its position. False when stopped.
    func passStep(_ run: inout Run, _ stop: StopSignal) async -> Bool {
        guard let position = run.progress.position else { return true }
        let indices = Array(position..<min(run.corpus.objects, position + self.step))
        await self.check(indices, &run)
        if stop.isStopped && (indices.last.map { $0 + 1 } ?? 0) < run.corpus.objects {
            run.progress.position = (indices.last.map { $0 + 1 } ?? 0)
            return false
        }
        if (indices.last.map { $0 + 1 } ?? 0) >= run.corpus.objects {
            let started = run.progress.passStarted ?? self.now()
            run.progress.position = nil
            run.progress.passStarted = nil
            run.progress.lastFullPass = self.now()
            run.report.lastFullPass = run.progress.lastFullPass
            let counts = run.report.counts
            self.log(
                "durability: full pass done in \(String(format: "%.0f", self.now().timeIntervalSince(started))) s: "
                    + "\(counts.ok) ok, \(counts.missing) missing, \(counts.corrupted) corrupted")
            await self.saveProgress(&run, force: true)
        } else {
            run.progress.position = (indices.last.map { $0 + 1 } ?? 0)
            await self.saveProgress(&run, force: true)
        }
        run.report.passPosition = run.progress.position
        self.publish(&run)
        return !stop.isStopped
    }

    /// A random sample of `sample_size` objects.
    func sample(_ run: inout Run) async {
        var chosen = Set<Int>()
        let size = min(self.target.settings.sampleSize, run.corpus.objects)
        while chosen.count < size { chosen.insert(Int.random(in: 0..<run.corpus.objects)) }
        await self.check(chosen.sorted(), &run)
        run.report.lastSample = self.now()
        if !run.report.newlyDamaged.isEmpty || !run.report.restored.isEmpty {
            await self.saveProgress(&run, force: true)
        }
        self.publish(&run)
    }

    /// Reads each of `indices` back and records what it found.
    func check(_ indices: [Int], _ run: inout Run) async {
        let corpus = run.corpus
        let outcomes = await self.map(indices) { index -> Outcome in
            do {
                let answer = try await self.target.backend.getObject(key: corpus.key(index), range: nil)
                return corpus.holds(answer.body, at: index) ? .ok : .corrupted
            } catch  where ObjectStorageError.isNotFound(error) {
                return .missing
            } catch {
                return .error(Self.describe(error))
            }
        }
        let now = self.now()
        for (index, outcome) in zip(indices, outcomes) {
            let known = run.progress.damaged.firstIndex { $0.index == index }
            switch outcome {
            case .ok:
                run.report.checks.ok += 1
                if let known {
                    run.progress.damaged.remove(at: known)
                    run.report.restored.append(index)
                    self.log("durability: \(corpus.key(index)) reads back intact again")
                }
            case .missing, .corrupted:
                let state: DurabilityProgress.Damage.State = outcome == .missing ? .missing : .corrupted
                if state == .missing { run.report.checks.missing += 1 } else { run.report.checks.corrupted += 1 }
                if let known, run.progress.damaged[known].state == state { continue }
                let damage = DurabilityProgress.Damage(index: index, state: state, since: now)
                if let known { run.progress.damaged[known] = damage } else { run.progress.damaged.append(damage) }
                run.report.newlyDamaged.append(damage)
                self.log("durability: \(corpus.key(index)) is \(state.rawValue)")
            case .error(let message):
                run.report.checks.error += 1
                run.report.lastError = message
            }
        }
        run.progress.damaged.sort { $0.index < $1.index }
        run.report.damaged = run.progress.damaged
    }

    /// Sends the report and starts the next one.
    func publish(_ run: inout Run) {
        self.observe(run.report)
        run.report.newlyDamaged = []
        run.report.restored = []
        run.report.checks = DurabilityReport.Checks()
    }

    // MARK: Progress

    func loadProgress(_ corpus: DurabilityCorpus) async -> DurabilityProgress {
        let key = corpus.progressKey(instance: self.target.instance)
        do {
            let answer = try await self.target.backend.getObject(key: key, range: nil)
            return try DurabilityManifest.decoder.decode(
                DurabilityProgress.self, from: Data(answer.body.readableBytesView))
        } catch  where ObjectStorageError.isNotFound(error) {
            return DurabilityProgress()
        } catch {
            self.log("durability: \(key) unreadable (\(Self.describe(error))); starting afresh")
            return DurabilityProgress()
        }
    }

    /// Saves the progress record: when forced, or 30 s after the last save.
    func saveProgress(_ run: inout Run, force: Bool) async {
        guard force || self.now().timeIntervalSince(run.lastSaved) >= 30 else { return }
        let key = run.corpus.progressKey(instance: self.target.instance)
        do {
            let body = ByteBuffer(bytes: try DurabilityManifest.encoder.encode(run.progress))
            _ = try await self.target.backend.putObject(
                key: key, body: body, contentType: "application/json", metadata: [:])
            run.lastSaved = self.now()
        } catch {
            self.log("durability: could not save \(key): \(Self.describe(error))")
        }
    }

    // MARK: Reset (s3-canary durability reset)

    /// The whole corpus read back once, for an operator: what is missing, what is corrupted, what could not be read.
    public struct Audit: Sendable {
        public var corpus: DurabilityCorpus
        public var manifest: DurabilityManifest
        public var missing: [Int] = []
        public var corrupted: [Int] = []
        /// Objects whose read failed (no verdict), with the error.
        public var unreadable: [(index: Int, error: String)] = []
    }

    /// Reads every object of the corpus back (paced as configured). Throws when there is no corpus to audit.
    public func audit() async throws -> Audit {
        let settings = self.target.settings
        var corpus = DurabilityCorpus(
            prefix: settings.prefix, objects: settings.objects, objectSize: settings.objectSize)
        guard let manifest = try await self.readManifest(corpus) else {
            throw DurabilityError("there is no corpus at \(corpus.prefix) (no \(corpus.manifestKey)): nothing to reset")
        }
        corpus.objects = manifest.objects
        corpus.objectSize = manifest.objectSize
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
        let outcomes = await self.map(indices) { index -> String? in
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

    // MARK: Pacing

    /// Runs `body` for each of `items`, at most `concurrency` at once and `requests_per_second` in all, and returns
    /// what each returned, in order.
    func map<T: Sendable>(_ items: [Int], _ body: @escaping @Sendable (Int) async -> T) async -> [T] {
        let settings = self.target.settings
        let gap = Duration.seconds(1.0 / Double(settings.requestsPerSecond))
        return await withTaskGroup(of: (Int, T).self) { group in
            var results: [Int: T] = [:]
            var next = self.clock.now
            var inFlight = 0
            for (position, item) in items.enumerated() {
                if inFlight >= settings.concurrency, let (at, value) = await group.next() {
                    results[at] = value
                    inFlight -= 1
                }
                if next > self.clock.now { try? await self.clock.sleep(until: next, tolerance: nil) }
                next = max(next, self.clock.now).advanced(by: gap)
                group.addTask { (position, await body(item)) }
                inFlight += 1
            }
            for await (at, value) in group { results[at] = value }
            return items.indices.compactMap { results[$0] }
        }
    }

    /// ``map(_:_:)`` for a body that may fail: the errors, in order.
    func forEach(_ items: [Int], _ body: @escaping @Sendable (Int) async throws -> Void?) async -> [any Error] {
        let outcomes = await self.map(items) { item -> (any Error)? in
            do {
                _ = try await body(item)
                return nil
            } catch {
                return error
            }
        }
        return outcomes.compactMap { $0 }
    }

    /// Sleeps `duration` or until stopped; false when stopped.
    func sleep(for duration: Duration, _ stop: StopSignal) async -> Bool {
        if stop.isStopped { return false }
        let deadline = self.clock.now.advanced(by: duration)
        return await withTaskGroup(of: Bool.self) { group in
            group.addTask {
                do {
                    try await self.clock.sleep(until: deadline, tolerance: nil)
                    return true
                } catch {
                    return false
                }
            }
            group.addTask {
                await stop.wait()
                return false
            }
            let first = await group.next() ?? false
            group.cancelAll()
            return first && !stop.isStopped
        }
    }

    static func describe(_ error: any Error) -> String {
        String("\(error)".prefix(300))
    }
}

/// A durability corpus that cannot be used as it is.
struct DurabilityError: Error, CustomStringConvertible {
    var message: String
    init(_ message: String) { self.message = message }
    var description: String { self.message }
}
