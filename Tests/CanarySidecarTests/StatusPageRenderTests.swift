import Foundation
import Testing

@testable import CanarySidecar
@testable import SidecarBreaker
@testable import SidecarCanary
@testable import SidecarConfig
@testable import SidecarNotify
@testable import SidecarServer
@testable import SidecarTelemetry

@Suite("Status page rendering")
struct StatusPageRenderTests {
    @Test func everyValueIsEscaped() {
        let hostile = "<script>alert(1)</script>"
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
                                message: "'\"&")
                        ],
                        error: nil),
                    lastSuccess: nil, secondsSinceLastSuccess: nil, recentCycleSeconds: [0.1, 0.3, 0.2],
                    latencies: []
                )
            ],
            transitions: [
                .init(backend: hostile, from: "closed", to: "open", at: Date(), consecutiveFailures: 3, threshold: 3)
            ]
        )
        let html = StatusPage.render(document)
        #expect(!html.contains("<script>") && !html.contains("<img") && !html.contains("\"><b>"))
        #expect(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"))
        #expect(html.contains("&#39;&quot;&amp;"))
        #expect(html.contains("<polyline"))
    }
}
