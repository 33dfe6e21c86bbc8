import Crypto
import Foundation
import ObjectStorage
import SidecarBreaker
import SidecarCanary
import SidecarConfig
import SidecarTelemetry

/// The on-call status page at `GET /`: one self-contained page (no external assets, no script), refreshed every
/// 10 s, light or dark as the reader's system prefers, readable on a phone.
///
/// A summary line for the fleet of backends this instance probes; per backend its breaker state, an availability
/// bar of its last cycles (colour plus shape: a failed cycle is striped, a skipped one short; each mark's title
/// says when, what and which request id), availability and p50/p99 per operation over what this process has
/// seen (labelled with that span), its objectives' budget on the same counts, and its breaker's timeline.
/// Every value is escaped: backend names and error messages are input.
enum StatusPage {
    /// How a backend is doing, for the summary line and its card: one of these, in this order of precedence.
    enum Health: String, CaseIterable {
        case open
        case halfOpen = "half_open"
        /// The breaker is closed but the last cycle failed.
        case failing
        /// The last cycle succeeded but one of the recent ones did not, or an objective's budget is spent.
        case degraded
        case healthy
        /// No cycle yet.
        case waiting

        var title: String {
            switch self {
            case .open: "open"
            case .halfOpen: "half-open"
            case .failing: "failing"
            case .degraded: "degraded"
            case .healthy: "healthy"
            case .waiting: "waiting"
            }
        }
    }

    static func health(_ backend: StatusDocument.Backend) -> Health {
        switch BreakerState(rawValue: backend.breaker.state) {
        case .open: return .open
        case .halfOpen: return .halfOpen
        default: break
        }
        guard let last = backend.recentCycles.last else { return .waiting }
        if last.status != CycleResult.Status.success.rawValue { return .failing }
        let spent = backend.objectives.contains { ($0.budgetRemaining ?? 1) < 0 }
        if spent || backend.network.degraded || backend.recentCycles.contains(where: { $0.status != CycleResult.Status.success.rawValue }) {
            return .degraded
        }
        return .healthy
    }

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

    static func milliseconds(_ seconds: Double?) -> String {
        guard let seconds else { return "–" }
        return seconds < 0.01 ? String(format: "%.2f ms", seconds * 1000) : String(format: "%.0f ms", seconds * 1000)
    }

    static func percent(_ ratio: Double?) -> String {
        guard let ratio else { return "–" }
        if ratio >= 0.9995 && ratio < 1 { return String(format: "%.3f %%", ratio * 100) }
        return String(format: "%.1f %%", ratio * 100)
    }

    static func ago(_ seconds: Double?) -> String {
        guard let seconds else { return "never" }
        if seconds < 90 { return String(format: "%.0f s ago", seconds) }
        if seconds < 5400 { return String(format: "%.0f min ago", seconds / 60) }
        return String(format: "%.1f h ago", seconds / 3600)
    }

    static func span(_ seconds: Double) -> String {
        if seconds < 90 { return String(format: "%.0f s", seconds) }
        if seconds < 5400 { return String(format: "%.0f min", seconds / 60) }
        if seconds < 172_800 { return String(format: "%.1f h", seconds / 3600) }
        return String(format: "%.1f days", seconds / 86400)
    }

    /// `10:02:03` (UTC) for a mark's title; the full time goes in `datetime`.
    static func clock(_ date: Date) -> String {
        let seconds = Int(date.timeIntervalSince1970.rounded(.down)) % 86400
        return String(format: "%02d:%02d:%02d", seconds / 3600, seconds / 60 % 60, seconds % 60)
    }

    static func iso(_ date: Date) -> String {
        date.formatted(.iso8601)
    }

    /// The availability bar: one mark per cycle, oldest first.
    static func bar(_ marks: [StatusBoard.CycleMark]) -> String {
        var items = ""
        for mark in marks {
            let kind: String
            switch CycleResult.Status(rawValue: mark.status) {
            case .success: kind = "ok"
            case .skipped: kind = "skip"
            default: kind = "fail"
            }
            var title = "\(clock(mark.at)) UTC · \(mark.status) · \(milliseconds(mark.seconds))"
            if let operation = mark.operation, let reason = mark.reason { title += " · \(operation) \(reason)" }
            if let id = mark.requestID { title += " · request id \(id)" }
            items +=
                "<li class=\"mark \(kind)\" data-status=\"\(escape(mark.status))\" title=\"\(escape(title))\">"
                + "<span class=\"sr\">\(escape(title))</span></li>"
        }
        return """
            <figure class="bar"><ol class="marks" data-cycles="\(marks.count)" \
            aria-label="last \(marks.count) cycles, oldest first">\(items)</ol>
            <figcaption>last \(marks.count) cycles, oldest first · <span class="key ok"></span> success \
            <span class="key fail"></span> failed (striped) <span class="key skip"></span> skipped, breaker open \
            (short) · hover a mark for its time, error and request id</figcaption></figure>
            """
    }

    static func operations(_ backend: StatusDocument.Backend, now: Date) -> String {
        let last = Dictionary(
            (backend.lastCycle?.operations ?? []).map { ($0.operation, $0) }, uniquingKeysWith: { first, _ in first })
        var rows = ""
        // In the cycle's order (put, head, get, ...), not the alphabet's.
        let order = CanaryConfiguration.Operation.allCases.map(\.label)
        let latencies = backend.latencies.sorted {
            (order.firstIndex(of: $0.operation) ?? order.count) < (order.firstIndex(of: $1.operation) ?? order.count)
        }
        for latency in latencies {
            let step = last[latency.operation]
            let result = step.map { [$0.result, $0.reason].compactMap { $0 }.joined(separator: ": ") } ?? "–"
            let bad = step.map { $0.result != StepResult.Result.success.rawValue } ?? false
            rows += """
                <tr data-operation="\(escape(latency.operation))"\(bad ? " class=\"bad\"" : "")>\
                <td>\(escape(latency.operation))</td><td>\(percent(latency.availability))</td>\
                <td>\(milliseconds(latency.p50Seconds))</td><td>\(milliseconds(latency.p99Seconds))</td>\
                <td>\(latency.steps)</td><td title="\(escape(step?.message ?? ""))">\(escape(result))</td>\
                <td class="id">\(escape(step?.requestID ?? ""))</td></tr>\n
                """
        }
        let since = backend.availability.since.map { "since \(clock($0)) UTC (\(span(now.timeIntervalSince($0))))" }
        let samples = backend.latencies.map(\.samples).max() ?? 0
        return """
            <div class="scroll"><table class="ops"><caption>per operation \(escape(since ?? "")); p50 and p99 of \
            the last \(samples) steps</caption>
            <thead><tr><th>operation</th><th>availability</th><th>p50</th><th>p99</th><th>steps</th>\
            <th>last result</th><th>last request id</th></tr></thead>
            <tbody>
            \(rows)</tbody></table></div>
            """
    }

    static func objectives(_ backend: StatusDocument.Backend) -> String {
        guard !backend.objectives.isEmpty else { return "" }
        var rows = ""
        for objective in backend.objectives {
            let name =
                objective.kind == "latency"
                ? "\(objective.operation ?? "") within \(milliseconds(objective.thresholdSeconds))" : "availability"
            let spent = (objective.budgetRemaining ?? 1) < 0
            rows += """
                <tr data-objective="\(escape(objective.kind))\(objective.operation.map { ":" + escape($0) } ?? "")"\
                \(spent ? " class=\"bad\"" : "")><td>\(escape(name))</td><td>\(percent(objective.objective))</td>\
                <td>\(percent(objective.attainment)) of \(objective.events)</td>\
                <td>\(percent(objective.budgetRemaining))</td></tr>\n
                """
        }
        return """
            <div class="scroll"><table class="slo"><caption>objectives on this process's counts (the 28-day figures \
            are in Prometheus)</caption>
            <thead><tr><th>objective</th><th>target</th><th>met</th><th>error budget left</th></tr></thead>
            <tbody>
            \(rows)</tbody></table></div>
            """
    }

    /// The features' last verdicts: what a client's SDK can rely on here. A verdict other than ok is red unless the
    /// server simply does not implement the feature.
    static func features(_ backend: StatusDocument.Backend) -> String {
        guard !backend.features.isEmpty else { return "" }
        var rows = ""
        for feature in backend.features {
            let evidence = [
                feature.httpStatus.map { "HTTP \($0)" }, feature.s3Code, feature.message,
            ].compactMap { $0 }.joined(separator: " · ")
            let bad = feature.verdict == .failing || feature.verdict == .corrupting
            rows += """
                <tr data-feature="\(escape(feature.feature))" data-verdict="\(feature.verdict.rawValue)"\
                \(bad ? " class=\"bad\"" : "")><td>\(escape(feature.feature))</td>\
                <td>\(feature.verdict.rawValue)</td><td>\(clock(feature.since)) UTC</td>\
                <td>\(escape(evidence))</td><td>\(escape(feature.requestID ?? ""))</td></tr>\n
                """
        }
        return """
            <div class="scroll"><table class="slo"><caption>S3 features clients use (unsupported: the server does \
            not implement it, which never pages)</caption>
            <thead><tr><th>feature</th><th>verdict</th><th>since</th><th>evidence</th><th>request id</th></tr>\
            </thead>
            <tbody>
            \(rows)</tbody></table></div>
            """
    }

    static func timeline(_ transitions: [StatusBoard.TransitionRecord]) -> String {
        guard !transitions.isEmpty else { return "<p class=\"muted\">no breaker transitions since start</p>" }
        var items = ""
        for record in transitions.suffix(10).reversed() {
            let error = record.lastError.map { ": \($0.operation) \($0.reason.rawValue)" } ?? ""
            items += """
                <li><time datetime="\(iso(record.at))">\(clock(record.at))</time> \
                \(escape(record.from.replacingOccurrences(of: "_", with: "-"))) → \
                \(escape(record.to.replacingOccurrences(of: "_", with: "-"))) \
                <span class="muted">(\(record.consecutiveFailures)/\(record.threshold) failures\(escape(error)))\
                </span></li>\n
                """
        }
        return "<ol class=\"timeline\" aria-label=\"breaker transitions, newest first\">\n\(items)</ol>"
    }

    static func render(_ document: StatusDocument, now: Date = Date()) -> String {
        var counts: [Health: Int] = [:]
        var cards = ""
        for backend in document.backends {
            let health = Self.health(backend)
            counts[health, default: 0] += 1
            let state = backend.breaker.state
            let availability = backend.availability
            let lastError = backend.breaker.lastError.map { "\($0.operation) \($0.reason.rawValue): \($0.message)" }
            cards += """
                <section class="backend" data-backend="\(escape(backend.name))" data-state="\(escape(state))" \
                data-health="\(health.rawValue)">
                <h2><span class="name">\(escape(backend.name))</span> \
                <span class="state s-\(escape(state))">\(escape(state.replacingOccurrences(of: "_", with: "-")))</span> \
                <span class="health h-\(health.rawValue)">\(health.title)</span></h2>
                <p>last success <b>\(escape(ago(backend.secondsSinceLastSuccess)))</b> · availability \
                <b>\(percent(availability.ratio))</b> of \(availability.cycles) cycles\
                \(availability.since.map { " since \(clock($0)) UTC" } ?? "") · \
                failures \(backend.breaker.consecutiveFailures)/\(backend.breaker.failureThreshold)</p>
                \(lastError.map { "<p class=\"error\">last error: \(escape($0))</p>" } ?? "")
                \(bar(backend.recentCycles))
                \(operations(backend, now: now))
                \(objectives(backend))
                \(features(backend))
                \(addresses(backend.network))
                <h3>breaker</h3>
                \(timeline(document.transitions.filter { $0.backend == backend.name }))
                </section>\n
                """
        }
        let summary = Health.allCases.filter { $0 != .healthy && $0 != .waiting || counts[$0, default: 0] > 0 }
            .map {
                let count = counts[$0, default: 0]
                return "<span class=\"count \(count > 0 ? "h-\($0.rawValue)" : "muted")\">\(count) \($0.title)</span>"
            }
            .joined(separator: " · ")
        let attributes = Health.allCases.map {
            "data-\($0.rawValue.replacingOccurrences(of: "_", with: "-"))=\"\(counts[$0, default: 0])\""
        }
        .joined(separator: " ")
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <meta name="color-scheme" content="light dark">
            <meta http-equiv="refresh" content="10">
            <title>s3-canary · \(escape(document.instance))</title>
            <style>\(Self.css)</style></head>
            <body><header><h1>s3-canary on \(escape(document.instance)) \
            \(document.ready ? "" : "· <span class=\"error\">not ready</span>")</h1>
            <p class="summary" data-backends="\(document.backends.count)" \(attributes)>\
            <b>\(document.backends.count) backends</b>: \(summary)</p></header>
            <main>
            \(cards)</main>
            <footer><a href="\(Route.metrics.path)">\(Route.metrics.path)</a> · \
            <a href="\(Route.status.path)">\(Route.status.path)</a> · refreshes every 10 s · times in UTC</footer>
            </body></html>
            """
    }

    /// The page's only style, in one `<style>` element so the Content-Security-Policy can name it by hash instead of
    /// allowing inline styles; no `style` attribute anywhere.
    static let css = """
        :root{color-scheme:light dark;--bg:#ffffff;--fg:#1f2328;--muted:#59636e;--line:#d1d9e0;--card:#f6f8fa;\
        --ok:#1a7f37;--bad:#cf222e;--warn:#9a6700;--skip:#818b98;--link:#0969da}
        @media (prefers-color-scheme:dark){:root{--bg:#0d1117;--fg:#e6edf3;--muted:#9198a1;--line:#3d444d;\
        --card:#151b23;--ok:#3fb950;--bad:#f85149;--warn:#d29922;--skip:#656c76;--link:#4493f8}}
        html{background:var(--bg)}
        body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;margin:0 auto;padding:.8rem;max-width:72rem;\
        color:var(--fg);background:var(--bg);line-height:1.4}
        a{color:var(--link)}h1{font-size:1.25rem;margin:.2rem 0}h2{font-size:1.1rem;margin:.1rem 0 .3rem}
        h3{font-size:.95rem;margin:.6rem 0 .2rem}p{margin:.3rem 0}
        .summary{font-size:1rem}.count{white-space:nowrap}
        .backend{border:1px solid var(--line);border-radius:.5rem;padding:.6rem .8rem;margin:.8rem 0;\
        background:var(--card)}
        .name{overflow-wrap:anywhere}
        .state,.health{border-radius:.3rem;padding:.05rem .45rem;font-size:.85rem;font-weight:600;white-space:nowrap}
        .state{color:#fff;background:var(--warn)}.s-closed{background:#1a7f37}.s-open{background:#cf222e}
        .s-half_open{background:#9a6700}
        .health{border:1px solid var(--line);color:var(--fg)}
        .h-open,.h-failing{color:var(--bad)}.h-half_open,.h-degraded{color:var(--warn)}.h-healthy{color:var(--ok)}
        .muted{color:var(--muted)}.error{color:var(--bad);overflow-wrap:anywhere}
        .bar{margin:.5rem 0}
        .marks{display:flex;gap:1px;align-items:flex-end;height:1.6rem;list-style:none;margin:0;padding:0}
        .mark{flex:1 1 0;min-width:2px;max-width:.9rem;height:100%;border-radius:1px}
        .mark.ok{background:var(--ok)}
        .mark.fail{background:repeating-linear-gradient(45deg,var(--bad) 0 3px,var(--bg) 3px 5px)}
        .mark.skip{background:var(--skip);height:40%}
        figcaption{font-size:.8rem;color:var(--muted)}
        .key{display:inline-block;width:.7rem;height:.7rem;vertical-align:middle}
        .key.ok{background:var(--ok)}
        .key.fail{background:repeating-linear-gradient(45deg,var(--bad) 0 2px,var(--bg) 2px 4px)}
        .key.skip{background:var(--skip);height:.35rem}
        .sr{position:absolute;width:1px;height:1px;overflow:hidden;clip-path:inset(50%);white-space:nowrap}
        .scroll{overflow-x:auto}
        table{border-collapse:collapse;width:100%;font-size:.88rem;margin:.4rem 0}
        caption{text-align:left;color:var(--muted);font-size:.8rem}
        td,th{border-bottom:1px solid var(--line);padding:.2rem .35rem;text-align:left;white-space:nowrap}
        tr.bad td{color:var(--bad)}
        .id{font-family:ui-monospace,monospace;font-size:.78rem;white-space:normal;word-break:break-all}
        .timeline{margin:.2rem 0;padding-left:1.2rem;font-size:.88rem}
        footer{margin-top:1rem;font-size:.85rem;color:var(--muted)}
        @media (max-width:40rem){body{padding:.5rem}.backend{padding:.5rem}table{font-size:.8rem}}
        """

    /// `Content-Security-Policy` of the page: nothing may load or run; the one style element is allowed by hash.
    static let contentSecurityPolicy: String = {
        let digest = Data(SHA256.hash(data: Data(css.utf8))).base64EncodedString()
        return
            "default-src 'none'; style-src 'sha256-\(digest)'; img-src 'none'; base-uri 'none'; form-action 'none'; "
            + "frame-ancestors 'none'"
    }()
}
