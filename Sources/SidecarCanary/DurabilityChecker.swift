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
        /// Before this instance's first pass: when the corpus was made.
        var firstPassBase: Date?
        /// The checks of the pass under way.
        var pass = DurabilityReport.Checks()
        /// After a pass that could not read every object: when the next one may start.
        var retryPassAt: Date?
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
                manifest = try await self.establish(corpus, &report, stop)
            } catch {
                if stop.isStopped { return }
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
        // 2. Where this instance's pass was, and what it had found: a record that cannot be read now (5xx, timeout)
        // is read again later, never replaced by an empty one.
        var progress: DurabilityProgress?
        while progress == nil {
            do {
                progress = try await self.loadProgress(corpus)
            } catch {
                report.lastError = Self.describe(error)
                self.log("durability: \(report.lastError ?? "")")
                self.observe(report)
                guard await self.sleep(for: self.retry, stop) else { return }
            }
        }
        guard var progress else { return }
        if let position = progress.position, position >= corpus.objects { progress.position = nil }
        progress.damaged = progress.damaged.filter { $0.index < corpus.objects }
        report.damaged = progress.damaged
        // The alert's baseline: this instance's last pass, or, before its first, when it started checking (never
        // an old corpus's creation, which would make a new instance's first pass overdue).
        report.lastFullPass = progress.lastFullPass ?? max(manifest.created, self.now())
        report.passPosition = progress.position
        report.lastError = nil
        var run = Run(corpus: corpus, progress: progress, report: report, lastSaved: self.now())
        // The first pass of an instance is due `full_every` after the corpus was made.
        run.firstPassBase = progress.lastFullPass == nil ? manifest.created : nil
        self.publish(&run)
        // Written at once: the bucket shows every instance that checks the corpus, before its first pass.
        await self.saveProgress(&run)
        // 3. Samples and full passes until stopped.
        var nextSample = self.clock.now
        while !stop.isStopped {
            let passDue = self.fullPassDue(run)
            if passDue <= self.now() || run.progress.position != nil {
                if run.progress.position == nil {
                    run.progress.position = 0
                    run.progress.passStarted = self.now()
                    run.pass = DurabilityReport.Checks()
                    self.log("durability: full pass of \(corpus.objects) objects starts")
                }
                guard await self.passStep(&run, stop) else { break }
                if self.clock.now >= nextSample {
                    await self.sample(&run, stop)
                    nextSample = self.clock.now.advanced(by: settings.sampleEvery)
                }
                continue
            }
            if self.clock.now >= nextSample {
                await self.sample(&run, stop)
                nextSample = self.clock.now.advanced(by: settings.sampleEvery)
            }
            let untilPass = Duration.seconds(max(0, passDue.timeIntervalSince(self.now())))
            let untilSample = self.clock.now.duration(to: nextSample)
            guard await self.sleep(for: max(.zero, min(untilPass, untilSample)), stop) else { break }
        }
        await self.saveProgress(&run)
    }

    /// When the next full pass starts: `full_every` after the last one ended (or the corpus was made, before this
    /// instance's first), and not before a pass that could not read everything is due again.
    func fullPassDue(_ run: Run) -> Date {
        let last = run.progress.lastFullPass ?? run.firstPassBase ?? self.now()
        let due = last.addingTimeInterval(self.target.settings.fullEvery.seconds)
        return max(due, run.retryPassAt ?? due)
    }

    // MARK: Checks

    /// One part of the full pass: up to `step` objects from its position. False when stopped.
    func passStep(_ run: inout Run, _ stop: StopSignal) async -> Bool {
        guard let position = run.progress.position else { return true }
        let indices = Array(position..<min(run.corpus.objects, position + self.step))
        let checked = await self.check(indices, &run, stop, inPass: true)
        let next = position + checked
        if next >= run.corpus.objects {
            let started = run.progress.passStarted ?? self.now()
            let pass = run.pass
            let seconds = String(format: "%.0f", self.now().timeIntervalSince(started))
            run.progress.position = nil
            run.progress.passStarted = nil
            if pass.error == 0 {
                run.progress.lastFullPass = self.now()
                run.report.lastFullPass = run.progress.lastFullPass
                run.retryPassAt = nil
                self.log(
                    "durability: full pass done in \(seconds) s: \(pass.ok) ok, \(pass.missing) missing, "
                        + "\(pass.corrupted) corrupted")
            } else {
                // Not a full pass: some objects were not read. The next one starts after a while, not at once.
                let pause = min(self.target.settings.fullEvery.seconds, 3600)
                run.retryPassAt = self.now().addingTimeInterval(pause)
                self.log(
                    "durability: pass ended in \(seconds) s without reading \(pass.error) objects (no verdict); not "
                        + "counted as a full pass, the next starts in \(Int(pause)) s")
            }
        } else {
            run.progress.position = next
        }
        await self.saveProgress(&run)
        run.report.passPosition = run.progress.position
        self.publish(&run)
        return !stop.isStopped
    }

    /// A random sample of `sample_size` objects.
    func sample(_ run: inout Run, _ stop: StopSignal) async {
        var chosen = Set<Int>()
        let size = min(self.target.settings.sampleSize, run.corpus.objects)
        while chosen.count < size { chosen.insert(Int.random(in: 0..<run.corpus.objects)) }
        _ = await self.check(chosen.sorted(), &run, stop, inPass: false)
        run.report.lastSample = self.now()
        if !run.report.newlyDamaged.isEmpty || !run.report.restored.isEmpty {
            await self.saveProgress(&run)
        }
        self.publish(&run)
    }

    /// Reads each of `indices` back (until stopped) and records what it found; returns how many it read.
    @discardableResult
    func check(_ indices: [Int], _ run: inout Run, _ stop: StopSignal? = nil, inPass: Bool) async -> Int {
        let corpus = run.corpus
        let outcomes = await self.map(indices, until: stop) { index -> Outcome in
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
            if inPass {
                switch outcome {
                case .ok: run.pass.ok += 1
                case .missing: run.pass.missing += 1
                case .corrupted: run.pass.corrupted += 1
                case .error: run.pass.error += 1
                }
            }
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
        return outcomes.count
    }

    /// Sends the report and starts the next one.
    func publish(_ run: inout Run) {
        self.observe(run.report)
        run.report.newlyDamaged = []
        run.report.restored = []
        run.report.checks = DurabilityReport.Checks()
    }

    // MARK: Progress

    /// This instance's progress record: none (404) or one that does not decode is a fresh start; a failed read
    /// throws, to be tried again.
    func loadProgress(_ corpus: DurabilityCorpus) async throws -> DurabilityProgress {
        let key = corpus.progressKey(instance: self.target.instance)
        let answer: GetObjectResult
        do {
            answer = try await self.target.backend.getObject(key: key, range: nil)
        } catch  where ObjectStorageError.isNotFound(error) {
            return DurabilityProgress()
        }
        do {
            return try DurabilityManifest.decoder.decode(
                DurabilityProgress.self, from: Data(answer.body.readableBytesView))
        } catch {
            self.log("durability: \(key) is not a progress record this version reads (\(error)); starting afresh")
            return DurabilityProgress()
        }
    }

    /// Saves the progress record (after each step of a pass, new damage, and on stopping).
    func saveProgress(_ run: inout Run) async {
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

    // MARK: Pacing

    /// Runs `body` for each of `items`, at most `concurrency` at once and `requests_per_second` in all, and returns
    /// what each returned, in order; once `stop` is signalled it starts no more (the result is then shorter).
    func map<T: Sendable>(
        _ items: [Int], until stop: StopSignal? = nil, _ body: @escaping @Sendable (Int) async -> T
    ) async -> [T] {
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
                if stop?.isStopped == true { break }
                next = max(next, self.clock.now).advanced(by: gap)
                group.addTask { (position, await body(item)) }
                inFlight += 1
            }
            for await (at, value) in group { results[at] = value }
            // The first ones in order: a stop leaves a prefix done.
            var ordered: [T] = []
            for index in items.indices {
                guard let value = results[index] else { break }
                ordered.append(value)
            }
            return ordered
        }
    }

    /// Sleeps `duration` or until stopped; false when stopped.
    func sleep(for duration: Duration, _ stop: StopSignal) async -> Bool {
        await stop.sleep(until: self.clock.now.advanced(by: duration), on: self.clock)
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
