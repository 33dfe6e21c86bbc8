package import Foundation
import Synchronization

/// Paths and small process helpers for tests that drive the real binary and real servers.
package enum Harness {
    package static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent()

    /// The `s3-canary` binary: `$S3CANARY_BINARY`, else the debug build next to the tests.
    package static var binary: String {
        if let path = ProcessInfo.processInfo.environment["S3CANARY_BINARY"], !path.isEmpty { return path }
        return root.appendingPathComponent(".build/debug/s3-canary").path
    }

    package static var outputDirectory: URL {
        let url = root.appendingPathComponent("test-output")
        try? FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    package static func temporaryDirectory(_ name: String) throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent(
            "s3canary-\(name)-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    /// A free loopback port (bound and released; good enough for tests).
    package static func freePort() throws -> Int {
        let result = try run(
            "/usr/bin/env",
            ["python3", "-c", "import socket; s=socket.socket(); s.bind(('127.0.0.1',0)); print(s.getsockname()[1])"])
        guard let port = Int(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw HarnessError("no free port: \(result.stderr)")
        }
        return port
    }

    package struct Output {
        package var status: Int32
        package var stdout: String
        package var stderr: String
    }

    /// Runs a long command (promtool's SLO tests, Chromium, the protobuf decoder) to completion on a thread of its
    /// own, so its wait does not hold one of the two cooperative threads the other tests' real-clock timeouts need.
    @discardableResult
    package static func runDetached(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil, stdin: Data? = nil
    ) async throws -> Output {
        try await withCheckedThrowingContinuation { continuation in
            let thread = Thread {
                continuation.resume(
                    with: Result { try Self.run(executable, arguments, environment: environment, stdin: stdin) })
            }
            thread.start()
        }
    }

    /// Runs a command to completion.
    @discardableResult
    package static func run(
        _ executable: String, _ arguments: [String], environment: [String: String]? = nil, stdin: Data? = nil
    ) throws -> Output {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        if let environment { process.environment = environment }
        let out = Pipe()
        let err = Pipe()
        let input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        try process.run()
        if let stdin { input.fileHandleForWriting.write(stdin) }
        try? input.fileHandleForWriting.close()
        // Read both pipes concurrently so neither fills up and blocks the child.
        let errData = Mutexed(Data())
        let reader = Thread { errData.set(err.fileHandleForReading.readDataToEndOfFile()) }
        reader.start()
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        while !errData.isSet { Thread.sleep(forTimeInterval: 0.001) }
        return Output(
            status: process.terminationStatus,
            stdout: String(decoding: outData, as: UTF8.self),
            stderr: String(decoding: errData.value, as: UTF8.self)
        )
    }

    /// `curl` a URL: status code and body. `nil` status when nothing answered.
    package static func http(
        _ url: String, method: String = "GET", headers: [String] = [], timeout: Double = 5, curl extra: [String] = []
    ) throws -> (status: Int?, body: String) {
        var arguments = ["-s", "-m", String(timeout), "-X", method, "-w", "\n%{http_code}"] + extra
        for header in headers { arguments += ["-H", header] }
        arguments.append(url)
        let output = try run("/usr/bin/env", ["curl"] + arguments)
        var lines = output.stdout.components(separatedBy: "\n")
        let code = Int(lines.popLast() ?? "") ?? 0
        return (code == 0 ? nil : code, lines.joined(separator: "\n"))
    }

    /// Polls `condition` every 100 ms until it holds or `timeout` passes.
    /// Whether something accepts TCP connections on 127.0.0.1:`port` now.
    package static func accepts(port: Int) -> Bool {
        let socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        guard socket >= 0 else { return false }
        defer { close(socket) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(truncatingIfNeeded: port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        return result == 0
    }

    /// Waits until `daemon` (a test server) accepts connections on `port`: its state, not the words it prints.
    package static func waitForPort(
        _ port: Int, of daemon: Daemon, _ what: String, timeout: Duration = .seconds(10)
    )
        async throws
    {
        try await Self.waitUntil(timeout, what) {
            guard daemon.isRunning else { throw HarnessError("\(what) exited: \(daemon.log)") }
            return Self.accepts(port: port)
        }
    }

    package static func waitUntil(_ timeout: Duration, _ what: String, _ condition: () throws -> Bool) async throws {
        let deadline = ContinuousClock.now + timeout
        var lastError: (any Error)?
        while ContinuousClock.now < deadline {
            do {
                if try condition() { return }
                lastError = nil
            } catch {
                lastError = error
            }
            try await Task.sleep(for: .milliseconds(100))
        }
        if try condition() { return }
        // A check that kept throwing (a scrape that timed out) says so: it is not the same as a state not reached.
        let last = lastError.map { " (the last check before the deadline threw: \($0))" } ?? ""
        throw HarnessError("timed out after \(timeout) waiting for \(what)\(last)")
    }
}

package struct HarnessError: Error, CustomStringConvertible {
    package var description: String
    package init(_ description: String) { self.description = description }
}

/// A box for a value a reader thread sets once and the caller then reads.
package final class Mutexed<Value: Sendable>: Sendable {
    private let state: Mutex<(value: Value, isSet: Bool)>
    package init(_ value: Value) { self.state = Mutex((value, false)) }
    package func set(_ value: Value) { self.state.withLock { $0 = (value, true) } }
    package var value: Value { self.state.withLock { $0.value } }
    package var isSet: Bool { self.state.withLock { $0.isSet } }
}

/// A long-running child process whose output goes to a log file; stopped by signal.
package final class Daemon: @unchecked Sendable {
    package let process = Process()
    package let logPath: URL

    package init(_ executable: String, _ arguments: [String], log: URL, environment: [String: String]? = nil) throws {
        self.logPath = log
        FileManager.default.createFile(atPath: log.path, contents: nil)
        let handle = try FileHandle(forWritingTo: log)
        self.process.executableURL = URL(fileURLWithPath: executable)
        self.process.arguments = arguments
        if let environment { self.process.environment = environment }
        self.process.standardOutput = handle
        self.process.standardError = handle
        self.process.standardInput = FileHandle.nullDevice
        try self.process.run()
    }

    package var pid: Int32 { self.process.processIdentifier }
    package var isRunning: Bool { self.process.isRunning }
    package var log: String { (try? String(contentsOf: self.logPath, encoding: .utf8)) ?? "" }

    package func signal(_ signal: Int32) {
        if self.process.isRunning { kill(self.process.processIdentifier, signal) }
    }

    /// Sends `signal` and waits up to `timeout` for the exit; kills it after that. Returns the exit status.
    @discardableResult
    package func stop(_ signal: Int32 = SIGTERM, timeout: Duration = .seconds(20)) async -> Int32 {
        self.signal(signal)
        let deadline = ContinuousClock.now + timeout
        while self.process.isRunning && ContinuousClock.now < deadline {
            try? await Task.sleep(for: .milliseconds(50))
        }
        if self.process.isRunning {
            kill(self.process.processIdentifier, SIGKILL)
            self.process.waitUntilExit()
            return -9
        }
        return self.process.terminationStatus
    }

    deinit {
        if self.process.isRunning { kill(self.process.processIdentifier, SIGKILL) }
    }
}
