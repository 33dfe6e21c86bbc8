
/// Runs `body` with a deadline on `clock`: when time runs out the body's task is cancelled and
/// ``DeadlineExceeded`` is thrown. The body is awaited after cancellation, so it must honour cancellation (every
/// backend here does).
package func withTimeout<C: Clock, T: Sendable>(
    _ timeout: Duration,
    clock: C,
    operation: String,
    _ body: @escaping @Sendable () async throws -> T
) async throws -> T where C.Duration == Duration {
    try await withThrowingTaskGroup(of: T?.self) { group in
        group.addTask { try await body() }
        group.addTask {
            try? await clock.sleep(for: timeout)
            return nil
        }
        defer { group.cancelAll() }
        while let next = try await group.next() {
            if let value = next { return value }
            if Task.isCancelled { throw CancellationError() }
            throw DeadlineExceeded(operation: operation, timeout: timeout)
        }
        throw CancellationError()
    }
}

/// Our own deadline ran out (as opposed to a timeout the HTTP client reported): the call was cancelled, so the
/// breaker never saw its end, and the caller reports it to the breaker as a timeout failure.
public struct DeadlineExceeded: Error, Sendable, CustomStringConvertible {
    /// The operation that ran out of time.
    public var operation: String
    var timeout: Duration

    /// The operation and the deadline it missed, for logs and failure summaries.
    public var description: String { "\(self.operation): no answer within \(self.timeout)" }
}
