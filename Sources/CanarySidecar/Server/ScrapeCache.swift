import CompressNIO
import NIOCore

/// Renders `/metrics` at most once per `maxAge` per format and encoding (and never more often than every two
/// renderings' time, so rendering takes at most half a core however many scrape), one rendering at a time.
///
/// With a thousand backends a rendering is megabytes of text. Without this, fifty concurrent scrapers (or one
/// misbehaving dashboard) render fifty copies at once on the same threads the canaries run on, and the probes
/// that measure the storage start measuring us. Prometheus scrapes every 15 s or so: a copy up to a second old
/// is as good as a new one.
actor ScrapeCache {
    struct Key: Hashable {
        var openMetrics: Bool
        var gzip: Bool
    }

    private struct Entry {
        var body: ByteBuffer
        var renderedAt: ContinuousClock.Instant
        /// Good for this long: `maxAge`, or twice what rendering it took.
        var lifetime: Duration
        var generation: Int
    }

    private let maxAge: Duration
    private let render: @Sendable (ExpositionFormat) -> String
    private var entries: [Key: Entry] = [:]

    init(maxAge: Duration = .seconds(1), render: @escaping @Sendable (ExpositionFormat) -> String) {
        self.maxAge = maxAge
        self.render = render
    }

    /// The body for a scrape; `gzip` when the scraper accepts it (falls back to plain when compression fails).
    /// `generation` changes on every reload: a rendering from before a reload is never served after it.
    func body(format: ExpositionFormat, gzip: Bool, generation: Int = 0) -> (body: ByteBuffer, gzipped: Bool) {
        let key = Key(openMetrics: format == .openMetrics, gzip: gzip)
        let now = ContinuousClock.now
        if let entry = self.entries[key], entry.generation == generation, entry.renderedAt.duration(to: now) < entry.lifetime {
            return (entry.body, gzip)
        }
        var body = ByteBuffer(string: self.render(format))
        if gzip {
            guard let compressed = try? body.compress(with: .gzip()) else { return (body, false) }
            body = compressed
        }
        let done = ContinuousClock.now
        self.entries[key] = Entry(
            body: body, renderedAt: done, lifetime: max(self.maxAge, now.duration(to: done) * 2), generation: generation
        )
        return (body, gzip)
    }
}
