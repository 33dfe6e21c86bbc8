import Hummingbird
import NIOCore

/// Runs before routing: wrong methods get 405 with `Allow`, oversized bodies 413, missing or wrong credentials
/// 401 (except on `/healthz`). The router answers `HEAD` as `GET` without a body.
struct EndpointGuard<Context: RequestContext>: RouterMiddleware {
    /// Every route and the methods it answers; anything else on a known path is 405.
    static var routes: [String: [HTTPRequest.Method]] {
        let read: [HTTPRequest.Method] = [.get, .head]
        return [
            "/metrics": read, "/healthz": read, "/readyz": read, "/status": read, "/": read, "/probe": read,
            "/-/reload": [.post],
        ]
    }

    let access: EndpointAccess
    let maxBodyBytes: Int

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        let path = request.uri.path
        guard let allowed = Self.routes[path] else {
            return HTTPServer.text(.notFound, "no such page; try /, /metrics, /status, /healthz, /readyz or /probe?backend=NAME\n")
        }
        guard allowed.contains(request.method) else {
            var response = HTTPServer.text(.methodNotAllowed, "\(path) answers \(allowed.map(\.rawValue).joined(separator: ", ")) only\n")
            response.headers[.allow] = allowed.map(\.rawValue).joined(separator: ", ")
            return response
        }
        if let length = request.headers[.contentLength] {
            guard let bytes = Int(length), bytes >= 0 else {
                return HTTPServer.text(.badRequest, "Content-Length is not a number\n")
            }
            if bytes > self.maxBodyBytes {
                return HTTPServer.text(.contentTooLarge, "request bodies are limited to \(self.maxBodyBytes) bytes\n")
            }
        } else if request.headers[.transferEncoding] != nil {
            return HTTPServer.text(.lengthRequired, "send a Content-Length; chunked request bodies are not accepted\n")
        }
        if path != "/healthz", case .denied(let challenge) = await self.access.authorize(request.headers[.authorization]) {
            var response = HTTPServer.text(.unauthorized, "authentication required\n")
            response.headers[.wwwAuthenticate] = challenge
            return response
        }
        return try await next(request, context)
    }
}
