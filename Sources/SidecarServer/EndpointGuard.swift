import Hummingbird
import ObjectStorage

/// Runs before routing: wrong methods get 405 with `Allow`, oversized bodies 413, missing or wrong credentials
/// 401 (except where the ``Route`` table says none are needed). The router answers `HEAD` as `GET` without a body.
struct EndpointGuard<Context: RequestContext>: RouterMiddleware {
    let access: EndpointAccess
    let maxBodyBytes: Int

    func handle(
        _ request: Request, context: Context, next: (Request, Context) async throws -> Response
    ) async throws -> Response {
        let path = request.uri.path
        guard let route = Route.matching(path) else {
            return HTTPServer.text(.notFound, "no such page; \(Route.suggestion)\n")
        }
        let allowed = route.methods
        guard allowed.contains(request.method) else {
            var response = HTTPServer.text(
                .methodNotAllowed, "\(path) answers \(allowed.map(\.rawValue).joined(separator: ", ")) only\n")
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
        if route.requiresCredentials,
            case .denied(let challenge) = await self.access.authorize(request.headers[.authorization])
        {
            var response = HTTPServer.text(.unauthorized, "authentication required\n")
            response.headers[.wwwAuthenticate] = challenge
            return response
        }
        return try await next(request, context)
    }
}
