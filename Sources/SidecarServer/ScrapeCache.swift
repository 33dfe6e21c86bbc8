import CompressNIO
import NIOCore
import NIOPosix
import ObjectStorage
import PrometheusExposition
import SidecarBreaker
import SidecarTelemetry
import Synchronization

/// Renders `/metrics` at most once per `maxAge` per format and encoding, and never more often than every two
/// renderings' time, so rendering takes at most half a core however many scrapers there are.
///
/// With a thousand backends a rendering is megabytes of text. Without this, fifty concurrent scrapers (or one
/// misbehaving dashboard) render fifty copies at once on the same threads the canaries run on, and the probes
/// that measure the storage start measuring us. Prometheus scrapes every 15 s or so: a copy up to a second old
/// is as good as a new one. While one request renders a fresh copy, the others get the previous one
/// (stale-while-revalidate) instead of queueing behind it.
final class ScrapeCache<C: Clock>: Sendable where C.Duration == Duration {
    struct Key: Hashable {
        var format: ExpositionFormat
        var gzip: Bool
    }

    private struct Entry {
        var body: ByteBuffer
        var gzipped: Bool
        var renderedAt: C.Instant
        /// Good for this long: `maxAge`, or twice what rendering it took.
        var lifetime: Duration
        var generation: Int
    }

    private struct State {
        var entries: [Key: Entry] = [:]
        var rendering: Set<Key> = []
    }

    private enum Plan {
        case serve(ByteBuffer, gzipped: Bool)
        case render
        /// Another request is rendering and there is no copy to serve yet (first scrape, or just after a reload).
        case wait
    }

    private let maxAge: Duration
    private let clock: C
    private let render: @Sendable (ExpositionFormat) -> [UInt8]
    private let state = Mutex(State())

    /// - Parameter clock: what freshness is measured on (tests pass a manual clock).
    init(maxAge: Duration = .seconds(1), clock: C, render: @escaping @Sendable (ExpositionFormat) -> [UInt8]) {
        self.maxAge = maxAge
        self.clock = clock
        self.render = render
    }

    /// The body for a scrape; `gzip` when the scraper accepts it (falls back to plain when compression fails).
    /// `generation` changes on every reload: a rendering from before a reload is never served after it.
    func body(format: ExpositionFormat, gzip: Bool, generation: Int = 0) async -> (body: ByteBuffer, gzipped: Bool) {
        let key = Key(format: format, gzip: gzip)
        var now = self.clock.now
        // Waits for another request's first rendering rather than rendering the same megabytes beside it; gives up
        // waiting after a few seconds (a rendering that never ends) and renders itself.
        for _ in 0..<500 {
            let plan: Plan = self.state.withLock { state in
                let usable = state.entries[key].flatMap { $0.generation == generation ? $0 : nil }
                if let entry = usable,
                    entry.renderedAt.duration(to: now) < entry.lifetime || state.rendering.contains(key)
                {
                    return .serve(entry.body, gzipped: entry.gzipped)
                }
                if state.rendering.contains(key) { return .wait }
                state.rendering.insert(key)
                return .render
            }
            switch plan {
            case .serve(let body, let gzipped): return (body, gzipped)
            case .render:
                return await self.renderOffThePool(
                    key: key, format: format, gzip: gzip, generation: generation, started: now)
            case .wait:
                try? await self.clock.sleep(for: .milliseconds(10))
                now = self.clock.now
            }
        }
        self.state.withLock { _ = $0.rendering.insert(key) }
        return await self.renderOffThePool(key: key, format: format, gzip: gzip, generation: generation, started: now)
    }

    /// Renders on NIO's blocking thread pool: a rendering of a thousand backends takes a CPU for a fifth of a
    /// second, which on the two threads of the cooperative pool would hold up request handling and canaries.
    private func renderOffThePool(
        key: Key, format: ExpositionFormat, gzip: Bool, generation: Int, started now: C.Instant
    )
        async -> (body: ByteBuffer, gzipped: Bool)
    {
        do {
            return try await NIOThreadPool.singleton.runIfActive {
                self.renderAndStore(key: key, format: format, gzip: gzip, generation: generation, started: now)
            }
        } catch {
            // The pool is shutting down: render here.
            return self.renderAndStore(key: key, format: format, gzip: gzip, generation: generation, started: now)
        }
    }

    private func renderAndStore(
        key: Key, format: ExpositionFormat, gzip: Bool, generation: Int, started now: C.Instant
    )
        -> (body: ByteBuffer, gzipped: Bool)
    {
        var body = ByteBuffer(bytes: self.render(format))
        var gzipped = false
        // Level 1: the exposition is so repetitive that the fastest level still shrinks it about 25-fold, at a
        // fraction of the default level's time, which a 2-core sidecar pays once a second per scraped format.
        if gzip, let compressed = try? body.compress(with: .gzip(configuration: .init(compressionLevel: 1))) {
            body = compressed
            gzipped = true
        }
        let done = self.clock.now
        let entry = Entry(
            body: body, gzipped: gzipped, renderedAt: done, lifetime: max(self.maxAge, now.duration(to: done) * 2),
            generation: generation
        )
        self.state.withLock { state in
            state.entries[key] = entry
            state.rendering.remove(key)
        }
        return (body, gzipped)
    }
}
