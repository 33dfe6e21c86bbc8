import Foundation
import NIOCore
import PrometheusExposition
import TestSupport
import Testing

@testable import SidecarServer

@Suite("Scrape cache")
struct ScrapeCacheTests {
    final class Counter: @unchecked Sendable {
        private let lock = NSLock()
        private var value = 0
        func next() -> Int {
            self.lock.lock()
            defer { self.lock.unlock() }
            self.value += 1
            return self.value
        }
    }

    @Test func rendersOncePerAgeFormatEncodingAndReload() async throws {
        let renders = Counter()
        let cache = ScrapeCache(maxAge: .seconds(3600), clock: ContinuousClock()) { _ in
            Array("metric_total \(renders.next())\n".utf8)
        }
        let first = await cache.body(format: .text004, gzip: false)
        let second = await cache.body(format: .text004, gzip: false)
        #expect(String(buffer: first.body) == "metric_total 1\n")
        #expect(String(buffer: second.body) == "metric_total 1\n", "a scrape within the age shares the rendering")
        let zipped = await cache.body(format: .text004, gzip: true)
        #expect(zipped.gzipped && zipped.body.readableBytes > 0)
        #expect(String(buffer: await cache.body(format: .openMetrics, gzip: false).body) == "metric_total 3\n")
        // A reload makes the next scrape render again.
        #expect(
            String(buffer: await cache.body(format: .text004, gzip: false, generation: 1).body) == "metric_total 4\n")
        // Freshness is measured on the injected clock: no real time passes here.
        let clock = ManualClock()
        let expiring = ScrapeCache(maxAge: .seconds(1), clock: clock) { _ in
            Array("metric_total \(renders.next())\n".utf8)
        }
        let a = await expiring.body(format: .text004, gzip: false)
        clock.advance(by: .milliseconds(999))
        let stillFresh = await expiring.body(format: .text004, gzip: false)
        #expect(String(buffer: a.body) == String(buffer: stillFresh.body), "younger than max age: the same copy")
        clock.advance(by: .milliseconds(1))
        let b = await expiring.body(format: .text004, gzip: false)
        #expect(String(buffer: a.body) != String(buffer: b.body), "at max age: rendered again")
    }

    @Test func concurrentFirstScrapesShareOneRendering() async {
        let renders = Counter()
        let cache = ScrapeCache(maxAge: .seconds(3600), clock: ContinuousClock()) { _ in
            Thread.sleep(forTimeInterval: 0.05)  // a slow rendering, so the others arrive while it runs
            return Array("metric_total \(renders.next())\n".utf8)
        }
        let bodies = await withTaskGroup(of: String.self) { group in
            for _ in 0..<20 { group.addTask { String(buffer: await cache.body(format: .text004, gzip: true).body) } }
            return await group.reduce(into: [String]()) { $0.append($1) }
        }
        #expect(bodies.count == 20)
        #expect(renders.next() == 2, "one rendering served all twenty")
    }
}
