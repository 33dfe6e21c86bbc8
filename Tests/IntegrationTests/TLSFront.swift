import Foundation
import TestSupport

/// TLS in front of local HTTP servers (RGW, moto, the server matrix), with a certificate for localhost and
/// 127.0.0.1 signed by a CA this helper makes: nginx from Debian (`.http`), or Tests/Fixtures/tls_front.py
/// (`.bytes`), which copies the decrypted stream unchanged. nginx streams bodies unbuffered, but reads a small
/// chunked body whole and forwards it with a Content-Length; where the framing matters (aws-chunked uploads in the
/// server matrix) the front must be `.bytes`.
struct TLSFront {
    let work: URL
    /// The CA to trust (`tls.ca_bundle`, boto3's `verify`).
    let caBundle: String
    /// The server certificate.
    let certificate: String
    /// One HTTPS port per upstream, in order.
    let ports: [Int]
    let daemon: Daemon

    enum Kind {
        /// nginx as an HTTP reverse proxy.
        case http
        /// TLS terminated, the bytes passed on unchanged.
        case bytes
    }

    func stop() { self.daemon.signal(SIGKILL) }

    static func openssl(_ arguments: [String]) throws {
        let result = try Harness.run("/usr/bin/env", ["openssl"] + arguments)
        if result.status != 0 { throw HarnessError("openssl \(arguments.first ?? ""): \(result.stderr)") }
    }

    /// Makes the CA and certificate, starts the front with a TLS listener per upstream port and waits until it
    /// answers.
    static func start(_ name: String, upstreams: [Int], kind: Kind = .http) async throws -> TLSFront {
        let work = try Harness.temporaryDirectory(name)
        func path(_ name: String) -> String { work.appendingPathComponent(name).path }
        try Self.openssl([
            "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "365", "-subj", "/CN=s3-canary test CA",
            "-keyout", path("ca.key"), "-out", path("ca.pem"),
        ])
        try Self.openssl([
            "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", path("server.key"), "-out",
            path("server.csr"),
        ])
        try Data("subjectAltName=DNS:localhost,IP:127.0.0.1\n".utf8).write(to: work.appendingPathComponent("san.ext"))
        try Self.openssl([
            "x509", "-req", "-in", path("server.csr"), "-CA", path("ca.pem"), "-CAkey", path("ca.key"),
            "-CAcreateserial", "-days", "30", "-extfile", path("san.ext"), "-out", path("server.pem"),
        ])
        if kind == .bytes {
            return try await Self.startBytes(work: work, upstreams: upstreams)
        }
        var ports: [Int] = []
        var servers = ""
        for upstream in upstreams {
            let port = try Harness.freePort()
            ports.append(port)
            servers += """
                  server {
                    listen 127.0.0.1:\(port) ssl;
                    ssl_certificate \(path("server.pem"));
                    ssl_certificate_key \(path("server.key"));
                    location / {
                      proxy_pass http://127.0.0.1:\(upstream);
                      proxy_set_header Host $http_host;
                      proxy_http_version 1.1;
                      proxy_request_buffering off;
                    }
                  }

                """
        }
        try Data(
            """
            daemon off;
            user root;
            worker_processes 1;
            pid \(path("nginx.pid"));
            error_log \(path("nginx-error.log"));
            events { worker_connections 256; }
            http {
              access_log off;
              client_max_body_size 0;
              client_body_temp_path \(path("body"));
              proxy_temp_path \(path("proxy"));
            \(servers)}
            """.utf8
        ).write(to: work.appendingPathComponent("nginx.conf"))
        let nginx = try Daemon(
            "/usr/sbin/nginx", ["-c", path("nginx.conf"), "-p", work.path],
            log: work.appendingPathComponent("nginx.out"))
        let front = TLSFront(
            work: work, caBundle: path("ca.pem"), certificate: path("server.pem"), ports: ports, daemon: nginx)
        do {
            for port in ports {
                try await Harness.waitUntil(.seconds(10), "nginx listening on \(port)") {
                    guard nginx.isRunning else {
                        throw HarnessError(
                            """
                            nginx exited: \(nginx.log) \
                            \((try? String(contentsOfFile: path("nginx-error.log"), encoding: .utf8)) ?? "")
                            """
                        )
                    }
                    return try Harness.run(
                        "/usr/bin/env",
                        ["curl", "-s", "-o", "/dev/null", "--cacert", path("ca.pem"), "https://localhost:\(port)/"]
                    ).status == 0
                }
            }
        } catch {
            front.stop()
            throw error
        }
        return front
    }

    /// Tests/Fixtures/tls_front.py on a free port per upstream, with the certificate `start` made.
    private static func startBytes(work: URL, upstreams: [Int]) async throws -> TLSFront {
        func path(_ name: String) -> String { work.appendingPathComponent(name).path }
        var ports: [Int] = []
        for _ in upstreams { ports.append(try Harness.freePort()) }
        let pairs = zip(ports, upstreams).map { "\($0)=\($1)" }
        let daemon = try Daemon(
            "/usr/bin/env",
            [
                "python3", "-u", Harness.root.appendingPathComponent("Tests/Fixtures/tls_front.py").path,
                path("server.pem"), path("server.key"),
            ] + pairs,
            log: work.appendingPathComponent("tls-front.log"))
        let front = TLSFront(
            work: work, caBundle: path("ca.pem"), certificate: path("server.pem"), ports: ports, daemon: daemon)
        do {
            try await Harness.waitUntil(.seconds(10), "tls_front.py listening") {
                guard daemon.isRunning else { throw HarnessError("tls_front.py exited: \(daemon.log)") }
                return ports.allSatisfy { Harness.accepts(port: $0) }
            }
        } catch {
            front.stop()
            throw error
        }
        return front
    }
}
