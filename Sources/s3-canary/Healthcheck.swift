import ArgumentParser
import Foundation
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import SidecarServer

/// `s3-canary healthcheck`: the container's HEALTHCHECK. An image built `FROM scratch` has no shell and no curl, so
/// the binary asks its own endpoint: exit 0 when the URL answers 2xx within the timeout, 1 otherwise (with why).
/// One connection, one attempt: a refused connection fails at once (an HTTP client with a pool would retry it until
/// the deadline, and the container runtime would kill the check instead of reading its answer).
struct Healthcheck: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "healthcheck",
        abstract: "GET the service's own health route: exit 0 on a 2xx answer within --timeout, 1 otherwise."
    )

    /// The service's own liveness route on the default listen address.
    static let defaultURL = "http://127.0.0.1:9340\(Route.healthz.path)"

    @Option(
        help: ArgumentHelp(
            "The URL to ask: \(Route.healthz.path) (alive) or \(Route.readyz.path) (ready) of the running service. "
                + "https is not verified: the check asks its own process."))
    var url: String = Self.defaultURL

    @Option(help: "Seconds to wait for the answer (0.1 to 60).")
    var timeout: Double = 3

    func validate() throws {
        guard (0.1...60).contains(self.timeout) else {
            throw ValidationError("--timeout \(self.timeout) is out of range: give 0.1 to 60 seconds")
        }
        _ = try self.target()
    }

    func run() async throws {
        let (host, port, path, https) = try self.target()
        do {
            let code = try await withThrowingTaskGroup(of: UInt?.self) { group in
                group.addTask { try await Self.get(host: host, port: port, path: path, https: https) }
                group.addTask {
                    try await Task.sleep(for: .milliseconds(Int(self.timeout * 1000)))
                    return nil
                }
                let first = try await group.next() ?? nil
                group.cancelAll()
                return first
            }
            guard let code else {
                FileHandle.standardError.write(
                    Data("unhealthy: \(self.url) did not answer in \(self.timeout) s\n".utf8))
                throw ExitCode(1)
            }
            guard (200..<300).contains(code) else {
                FileHandle.standardError.write(Data("unhealthy: \(self.url) answered \(code)\n".utf8))
                throw ExitCode(1)
            }
            print("\(self.url): \(code)")
        } catch let exit as ExitCode {
            throw exit
        } catch {
            FileHandle.standardError.write(Data("unhealthy: \(self.url) did not answer: \(error)\n".utf8))
            throw ExitCode(1)
        }
    }

    private func target() throws -> (host: String, port: Int, path: String, https: Bool) {
        guard let components = URLComponents(string: self.url), let scheme = components.scheme,
            scheme == "http" || scheme == "https", let host = components.host, !host.isEmpty
        else {
            throw ValidationError(
                "--url \(self.url) is not an http(s) URL; give it such as \(Self.defaultURL)")
        }
        let path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        let query = components.percentEncodedQuery.map { "?\($0)" } ?? ""
        return (host, components.port ?? (scheme == "https" ? 443 : 80), path + query, scheme == "https")
    }

    /// The status code of one GET, or an error when the connection or the exchange fails.
    private static func get(host: String, port: Int, path: String, https: Bool) async throws -> UInt {
        var tls: NIOSSLContext?
        if https {
            var configuration = TLSConfiguration.makeClientConfiguration()
            configuration.certificateVerification = .none
            tls = try NIOSSLContext(configuration: configuration)
        }
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .connect(host: host, port: port) { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(
                            try NIOSSLClientHandler(context: tls, serverHostname: nil))
                    }
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    return try NIOAsyncChannel<HTTPClientResponsePart, HTTPClientRequestPart>(
                        wrappingChannelSynchronously: channel)
                }
            }
        return try await channel.executeThenClose { inbound, outbound in
            var headers = HTTPHeaders()
            headers.add(name: "Host", value: host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)")
            headers.add(name: "Connection", value: "close")
            try await outbound.write(
                .head(HTTPRequestHead(version: .http1_1, method: .GET, uri: path, headers: headers)))
            try await outbound.write(.end(nil))
            for try await part in inbound {
                if case .head(let head) = part { return head.status.code }
            }
            throw HealthcheckError.closedWithoutAnswer
        }
    }
}

enum HealthcheckError: Error, CustomStringConvertible {
    case closedWithoutAnswer
    var description: String { "the connection closed before an HTTP answer" }
}
