import CompressNIO
import Foundation
import Hummingbird
import Logging
import NIOCore

/// The HTTP endpoint (DESIGN §7): `/metrics`, `/healthz`, `/readyz`, `/status`, `/`, `/probe`, `POST /-/reload`.
enum HTTPServer {
    static func router(service: CanaryService) -> Router<BasicRequestContext> {
        let router = Router(options: .autoGenerateHeadEndpoints)
        router.add(middleware: EndpointGuard(access: service.access, maxBodyBytes: service.configuration.server.maxBodyBytes))

        let metrics = service.metrics
        let scrapes = ScrapeCache { format in metrics.render(format: format) }
        router.get("metrics") { request, _ -> Response in
            let format = ExpositionFormat.negotiate(accept: request.headers[.accept])
            let (body, gzipped) = await scrapes.body(
                format: format,
                gzip: Self.acceptsGzip(request.headers[.acceptEncoding]),
                generation: service.reloadGeneration
            )
            var headers: HTTPFields = [.contentType: format.contentType]
            if gzipped { headers[.contentEncoding] = "gzip" }
            headers[.vary] = "Accept, Accept-Encoding"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: body))
        }

        router.get("healthz") { _, _ -> Response in
            Self.text(.ok, "ok\n")
        }

        router.get("readyz") { _, _ -> Response in
            let board = service.board
            if board.isShuttingDown { return Self.text(.serviceUnavailable, "shutting down\n") }
            let readiness = board.readiness
            if readiness.ready { return Self.text(.ok, "ready\n") }
            return Self.text(
                .serviceUnavailable,
                "waiting for a first cycle of: \(readiness.waitingFor.joined(separator: ", "))\n"
            )
        }

        router.get("status") { _, _ -> Response in
            let data = try StatusDocument(service: service).json()
            return Response(
                status: .ok,
                headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(bytes: data))
            )
        }

        router.get("/") { _, _ -> Response in
            let html = StatusPage.render(StatusDocument(service: service))
            return Response(
                status: .ok,
                headers: [.contentType: "text/html; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: html))
            )
        }

        router.get("probe") { request, _ -> Response in
            guard let name = request.uri.queryParameters.get("backend"), !name.isEmpty else {
                return Self.text(.badRequest, "missing query parameter backend; use /probe?backend=NAME\n")
            }
            let debug = request.uri.queryParameters.get("debug").map { $0 == "true" || $0 == "1" } ?? false
            guard let (result, lines) = await service.probeNow(backend: name) else {
                return Self.text(.notFound, "no backend named \(String(name.prefix(128))) is configured\n")
            }
            if debug {
                var text = "Probe of \(result.backend): \(result.status.rawValue) in \(String(format: "%.3f", result.duration.seconds)) s\n"
                text += lines.map { "  \($0)\n" }.joined()
                if let failure = result.failure {
                    text += "Error: \(failure.operation) \(failure.reason.rawValue): \(failure.message)\n"
                }
                text += "\nMetrics of this probe:\n" + ProbeMetrics.render(result)
                return Self.text(.ok, text)
            }
            return Response(
                status: .ok,
                headers: [.contentType: ExpositionFormat.text004.contentType],
                body: .init(byteBuffer: ByteBuffer(string: ProbeMetrics.render(result)))
            )
        }

        router.post("-/reload") { _, _ -> Response in
            switch await service.reload() {
            case .success(let count):
                return Self.text(.ok, "reloaded: \(count) backends\n")
            case .failure(let error):
                return Self.text(.badRequest, "reload failed; the running configuration stays:\n\(error.description)\n")
            }
        }
        return router
    }

    static func text(_ status: HTTPResponse.Status, _ text: String) -> Response {
        Response(
            status: status,
            headers: [.contentType: "text/plain; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: text))
        )
    }

    static func acceptsGzip(_ header: String?) -> Bool {
        guard let header else { return false }
        return header.split(separator: ",").contains { part in
            let fields = part.split(separator: ";").map { $0.trimmingCharacters(in: .whitespaces) }
            guard fields.first?.lowercased() == "gzip" else { return false }
            return !fields.dropFirst().contains { $0.replacingOccurrences(of: " ", with: "") == "q=0" }
        }
    }
}

/// The metrics `/probe` answers with, as blackbox_exporter does: one cycle, its operations.
enum ProbeMetrics {
    static func render(_ result: CycleResult) -> String {
        var out = ""
        out += "# HELP s3canary_probe_success Whether this probe succeeded.\n# TYPE s3canary_probe_success gauge\n"
        out += "s3canary_probe_success \(result.status == .success ? 1 : 0)\n"
        out += "# HELP s3canary_probe_duration_seconds Duration of this probe.\n# TYPE s3canary_probe_duration_seconds gauge\n"
        out += "s3canary_probe_duration_seconds \(result.duration.seconds)\n"
        out += "# HELP s3canary_probe_operation_duration_seconds Duration of each operation of this probe.\n"
        out += "# TYPE s3canary_probe_operation_duration_seconds gauge\n"
        for step in result.steps {
            if let seconds = step.seconds {
                out += "s3canary_probe_operation_duration_seconds{operation=\"\(step.operation.rawValue)\"} \(seconds)\n"
            }
        }
        out += "# HELP s3canary_probe_operation_success Whether each operation of this probe succeeded.\n"
        out += "# TYPE s3canary_probe_operation_success gauge\n"
        for step in result.steps {
            out += "s3canary_probe_operation_success{operation=\"\(step.operation.rawValue)\"} \(step.result == .success ? 1 : 0)\n"
        }
        return out
    }
}
