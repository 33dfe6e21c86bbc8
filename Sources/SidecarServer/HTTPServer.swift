import Foundation
public import Hummingbird
import NIOCore
import ObjectStorage
import PrometheusExposition
import SidecarBreaker
import SidecarCanary
import SidecarConfig
import SidecarTelemetry

/// The HTTP endpoint (docs/design.md, "Routes"): one handler per ``Route``.
public enum HTTPServer {
    /// The router of every ``Route``, behind the guard that checks methods, sizes and credentials.
    public static func router(
        serving service: some EndpointModel,
        maxBodyBytes: Int,
        scrapeClock: some Clock<Duration> = ContinuousClock()
    ) -> Router<BasicRequestContext> {
        let router = Router(options: .autoGenerateHeadEndpoints)
        router.add(middleware: EndpointGuard(access: service.access, maxBodyBytes: maxBodyBytes))

        let metrics = service.metrics
        let scrapes = ScrapeCache(clock: scrapeClock) { format in metrics.render(format: format) }
        router.get(RouterPath(Route.metrics.path)) { request, _ -> Response in
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

        router.get(RouterPath(Route.healthz.path)) { _, _ -> Response in
            Self.text(.ok, "ok\n")
        }

        router.get(RouterPath(Route.readyz.path)) { _, _ -> Response in
            let board = service.board
            if board.isShuttingDown { return Self.text(.serviceUnavailable, "shutting down\n") }
            let readiness = board.readiness
            if readiness.ready { return Self.text(.ok, "ready\n") }
            return Self.text(
                .serviceUnavailable,
                "waiting for a first cycle of: \(readiness.waitingFor.joined(separator: ", "))\n"
            )
        }

        router.get(RouterPath(Route.status.path)) { _, _ -> Response in
            let data = try StatusDocument(serving: service).json()
            return Response(
                status: .ok,
                headers: [.contentType: "application/json"],
                body: .init(byteBuffer: ByteBuffer(bytes: data))
            )
        }

        router.get(RouterPath(Route.statusPage.path)) { _, _ -> Response in
            let html = StatusPage.render(StatusDocument(serving: service))
            var headers: HTTPFields = [.contentType: "text/html; charset=utf-8"]
            headers[.contentSecurityPolicy] = StatusPage.contentSecurityPolicy
            headers[.xContentTypeOptions] = "nosniff"
            return Response(status: .ok, headers: headers, body: .init(byteBuffer: ByteBuffer(string: html)))
        }

        router.get(RouterPath(Route.probe.path)) { request, _ -> Response in
            guard let name = request.uri.queryParameters.get("backend"), !name.isEmpty else {
                return Self.text(.badRequest, "missing query parameter backend; use \(Route.probe.path)?backend=NAME\n")
            }
            let debug = request.uri.queryParameters.get("debug").map { $0 == "true" || $0 == "1" } ?? false
            guard let (result, lines) = await service.probe(backend: name) else {
                return Self.text(.notFound, "no backend named \(String(name.prefix(128))) is configured\n")
            }
            if debug {
                var text =
                    "Probe of \(result.backend): \(result.status.rawValue) "
                    + "in \(String(format: "%.3f", result.duration.seconds)) s\n"
                text += lines.map { "  \($0)\n" }.joined()
                if let failure = result.failure {
                    text += "Error: \(failure.operation) \(failure.reason.rawValue): \(failure.message)\n"
                }
                if let network = service.board.backends.first(where: { $0.name == name })?.network {
                    text += StatusPage.networkLines(network)
                }
                text += "\nMetrics of this probe:\n" + (try CanaryMetrics.renderProbe(result))
                return Self.text(.ok, text)
            }
            return Response(
                status: .ok,
                headers: [.contentType: ExpositionFormat.text004.contentType],
                body: .init(byteBuffer: ByteBuffer(string: try CanaryMetrics.renderProbe(result)))
            )
        }

        router.post(RouterPath(Route.reload.path)) { _, _ -> Response in
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
