import Foundation
import ObjectStorage
import SidecarBreaker
import SidecarCanary
import SidecarConfig
import SidecarTelemetry

/// The on-call status page at `GET /`: one self-contained page (no external assets), readable on a phone, refreshed
/// every 10 s. Per backend: breaker state in colour, time since the last success, the last cycle per operation
/// with latency and error reason, a sparkline of recent cycle durations (inline SVG), and the recent transitions.
/// Every value is escaped: backend names and error messages are input.
enum StatusPage {
    static func escape(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.count)
        for character in text {
            switch character {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.append(character)
            }
        }
        return out
    }

    static func stateColour(_ state: String) -> String {
        switch BreakerState(rawValue: state) {
        case .closed: "#1a7f37"
        case .open: "#cf222e"
        default: "#bf8700"
        }
    }

    static func milliseconds(_ seconds: Double?) -> String {
        guard let seconds else { return "–" }
        return seconds < 0.01 ? String(format: "%.2f ms", seconds * 1000) : String(format: "%.0f ms", seconds * 1000)
    }

    static func ago(_ seconds: Double?) -> String {
        guard let seconds else { return "never" }
        if seconds < 90 { return String(format: "%.0f s ago", seconds) }
        if seconds < 5400 { return String(format: "%.0f min ago", seconds / 60) }
        return String(format: "%.1f h ago", seconds / 3600)
    }

    /// A small line chart of recent cycle durations, scaled to its own maximum.
    static func sparkline(_ values: [Double]) -> String {
        guard values.count >= 2, let maximum = values.max(), maximum > 0 else {
            return #"<svg class="spark" viewBox="0 0 120 24" role="img" aria-label="not enough cycles yet"></svg>"#
        }
        let step = 120.0 / Double(values.count - 1)
        let points = values.enumerated().map { index, value in
            String(format: "%.1f,%.1f", Double(index) * step, 22 - value / maximum * 20)
        }.joined(separator: " ")
        let label = "recent cycle durations, up to \(milliseconds(maximum))"
        return """
            <svg class="spark" viewBox="0 0 120 24" role="img" aria-label="\(escape(label))">\
            <polyline fill="none" stroke="#0969da" stroke-width="1.5" points="\(points)"/></svg>
            """
    }

    static func render(_ document: StatusDocument) -> String {
        var cards = ""
        for backend in document.backends {
            let state = backend.breaker.state
            var operations = ""
            for operation in backend.lastCycle?.operations ?? [] {
                let error = [operation.reason, operation.message].compactMap { $0 }.joined(separator: ": ")
                operations += """
                    <tr class="\(operation.result == StepResult.Result.success.rawValue ? "ok" : "bad")">\
                    <td>\(escape(operation.operation))</td>\
                    <td>\(escape(operation.result))</td><td>\(milliseconds(operation.latencySeconds))</td>\
                    <td>\(escape(error))</td><td class="id">\(escape(operation.requestID ?? ""))</td></tr>\n
                    """
            }
            let cycle =
                backend.lastCycle.map { "\($0.status) in \(milliseconds($0.durationSeconds))" } ?? "no cycle yet"
            let lastError = backend.breaker.lastError.map { "\($0.operation) \($0.reason.rawValue): \($0.message)" }
            cards += """
                <section class="backend" data-backend="\(escape(backend.name))" data-state="\(escape(state))">
                <h2><span class="name">\(escape(backend.name))</span> \
                <span class="state" style="background:\(stateColour(state))">\
                \(escape(state.replacingOccurrences(of: "_", with: "-")))</span></h2>
                <p>last success <b>\(escape(ago(backend.secondsSinceLastSuccess)))</b> · \
                last cycle \(escape(cycle)) · \
                failures \(backend.breaker.consecutiveFailures)/\(backend.breaker.failureThreshold) \
                \(sparkline(backend.recentCycleSeconds))</p>
                \(lastError.map { "<p class=\"error\">last error: \(escape($0))</p>" } ?? "")
                <table><thead><tr><th>operation</th><th>result</th><th>latency</th><th>error</th><th>request id</th></tr></thead>
                <tbody>
                \(operations)</tbody></table>
                </section>\n
                """
        }
        var transitions = ""
        for record in document.transitions.suffix(20).reversed() {
            let when = ISO8601DateFormatter().string(from: record.at)
            transitions +=
                "<li><time>\(escape(when))</time> <b>\(escape(record.backend))</b> "
                + "\(escape(record.from)) → \(escape(record.to)) "
                + "(\(record.consecutiveFailures)/\(record.threshold) failures)</li>\n"
        }
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <meta http-equiv="refresh" content="10">
            <title>s3-canary · \(escape(document.instance))</title>
            <style>
            body{font-family:system-ui,-apple-system,sans-serif;\
            margin:0 auto;padding:1rem;max-width:60rem;color:#1f2328}
            h1{font-size:1.3rem}h2{font-size:1.1rem;margin:.2rem 0}
            .backend{border:1px solid #d0d7de;border-radius:.5rem;padding:.6rem .8rem;margin:.8rem 0}
            .state{color:#fff;border-radius:.3rem;padding:.05rem .45rem;font-size:.9rem}
            .id{font-family:ui-monospace,monospace;font-size:.8rem;word-break:break-all}
            table{border-collapse:collapse;width:100%;font-size:.9rem}\
            td,th{border-bottom:1px solid #eaeef2;padding:.25rem;text-align:left}
            tr.bad td{color:#cf222e}.error{color:#cf222e;overflow-wrap:anywhere}
            .spark{width:120px;height:24px;vertical-align:middle}
            footer{margin-top:1rem;font-size:.9rem}
            </style></head>
            <body><h1>s3-canary on \(escape(document.instance)) \
            \(document.ready ? "" : "· <span class=\"error\">not ready</span>")</h1>
            \(cards)<h2>Recent transitions</h2>
            <ul class="transitions">
            \(transitions.isEmpty ? "<li>none yet</li>" : transitions)</ul>
            <footer><a href="\(Route.metrics.path)">\(Route.metrics.path)</a> · \
            <a href="\(Route.status.path)">\(Route.status.path)</a> · refreshes every 10 s</footer>
            </body></html>
            """
    }
}
