import Foundation

/// The on-call status page at `GET /`: one self-contained HTML page, every value escaped.
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

    static func render(_ document: StatusDocument) -> String {
        var rows = ""
        for backend in document.backends {
            let state = backend.breaker.state
            let colour = state == "closed" ? "#1a7f37" : state == "open" ? "#cf222e" : "#bf8700"
            let last = backend.lastCycle.map { "\($0.status) in \(String(format: "%.1f", $0.durationSeconds * 1000)) ms" } ?? "no cycle yet"
            let error = backend.lastCycle?.error.map { "\($0.operation) \($0.reason.rawValue): \($0.message)" } ?? ""
            rows += """
                <tr><td>\(escape(backend.name))</td>\
                <td><span class="state" style="background:\(colour)">\(escape(state))</span></td>\
                <td>\(escape(last))</td><td>\(escape(error))</td></tr>\n
                """
        }
        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8">
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <meta http-equiv="refresh" content="10">
            <title>s3-canary \(escape(document.instance))</title>
            <style>body{font-family:system-ui,sans-serif;margin:1rem}table{border-collapse:collapse;width:100%}
            td,th{border-bottom:1px solid #ddd;padding:.4rem;text-align:left}
            .state{color:#fff;border-radius:.3rem;padding:.1rem .4rem}</style></head>
            <body><h1>s3-canary on \(escape(document.instance))</h1>
            <table><thead><tr><th>backend</th><th>breaker</th><th>last cycle</th><th>last error</th></tr></thead>
            <tbody>
            \(rows)</tbody></table>
            <p><a href="/metrics">/metrics</a> · <a href="/status">/status</a></p>
            </body></html>
            """
    }
}
