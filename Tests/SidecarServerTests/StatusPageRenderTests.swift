import Foundation
import Testing

@testable import SidecarBreaker
@testable import SidecarCanary
@testable import SidecarConfig
@testable import SidecarServer
@testable import SidecarTelemetry

@Suite("Status page rendering")
struct StatusPageRenderTests {
    @Test func everyValueIsEscaped() throws {
        let hostile = "<script>alert(1)</script>"
        let feature = try #require(
            StatusBoard.FeatureStatus(
                StepResult(
                    operation: .checksum, result: .unsupported, message: "<img src=x>", requestID: "<b>id",
                    s3Code: "<i>Code"), at: Date()))
        let document = StatusDocument(
            instance: "i\"><b>", ready: true, shuttingDown: false,
            backends: [
                .init(
                    name: hostile,
                    breaker: .init(
                        state: "open", consecutiveFailures: 3, failureThreshold: 3, openTimeoutSeconds: 30,
                        lastError: FailureSummary(
                            operation: "GetObject", reason: .http5xx, message: "<img src=x onerror=alert(2)>")),
                    lastCycle: .init(
                        status: "failure", startedAt: Date(), durationSeconds: 0.2,
                        operations: [
                            .init(
                                operation: "put", result: "error", latencySeconds: 0.1, reason: "http_5xx",
                                message: "'\"&", requestID: "tx\"<i>")
                        ],
                        error: nil),
                    lastSuccess: nil, secondsSinceLastSuccess: nil, recentCycleSeconds: [0.1, 0.3, 0.2],
                    latencies: [
                        .init(
                            operation: "put", steps: 2, successes: 1, availability: 0.5, samples: 1, p50Seconds: 0.1,
                            p99Seconds: 0.1, recentSeconds: [0.1])
                    ],
                    recentCycles: [
                        .init(
                            at: Date(), status: "failure", seconds: 0.2, operation: "put", reason: "http_5xx",
                            requestID: "<id onmouseover=x>")
                    ],
                    availability: .init(
                        since: Date(), cycles: 2, success: 1, failure: 1, skipped: 0, ratio: 0.5),
                    objectives: [],
                    features: [feature]
                )
            ],
            transitions: [
                .init(backend: hostile, from: "closed", to: "open", at: Date(), consecutiveFailures: 3, threshold: 3)
            ]
        )
        let html = StatusPage.render(document)
        #expect(!html.contains("<script>") && !html.contains("<img") && !html.contains("i\"><b>"))
        #expect(html.contains("i&quot;&gt;&lt;b&gt;"))
        #expect(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        #expect(html.contains("&#39;&quot;&amp;"))
        #expect(html.contains("tx&quot;&lt;i&gt;"))
        #expect(html.contains("request id &lt;id onmouseover=x&gt;"))
        #expect(html.contains("&lt;i&gt;Code · &lt;img src=x&gt;</td><td>&lt;b&gt;id</td>"))
        #expect(html.contains("data-feature=\"checksum\" data-verdict=\"unsupported\""))
        // No style attribute anywhere: the Content-Security-Policy allows the one style element by hash only.
        #expect(!html.contains(" style="))
        #expect(html.contains("<style>\(StatusPage.css)</style>"))
    }

    @Test func theContentSecurityPolicyNamesTheStyleByItsHash() {
        let policy = StatusPage.contentSecurityPolicy
        #expect(policy.hasPrefix("default-src 'none'; style-src 'sha256-"))
        #expect(!policy.contains("unsafe-inline") && !policy.contains("script-src"))
    }

    @Test(arguments: [
        ("open", ["success"], StatusPage.Health.open),
        ("half_open", ["failure"], .halfOpen),
        ("closed", ["success", "failure"], .failing),
        ("closed", ["failure", "success"], .degraded),
        ("closed", ["skipped", "success"], .degraded),
        ("closed", ["success", "success"], .healthy),
        ("closed", [], .waiting),
    ])
    func healthFollowsTheBreakerThenTheRecentCycles(state: String, marks: [String], expected: StatusPage.Health) {
        let backend = StatusDocument.Backend(
            name: "b",
            breaker: .init(
                state: state, consecutiveFailures: 0, failureThreshold: 3, openTimeoutSeconds: 30, lastError: nil),
            lastCycle: nil, lastSuccess: nil, secondsSinceLastSuccess: nil, recentCycleSeconds: [], latencies: [],
            recentCycles: marks.map { .init(at: Date(), status: $0, seconds: 0.1) },
            availability: .init(since: nil, cycles: 0, success: 0, failure: 0, skipped: 0, ratio: nil),
            objectives: [])
        #expect(StatusPage.health(backend) == expected)
    }
}
