public import Foundation
import Synchronization

/// Temporary credentials from a source that must be asked again before they expire (STS, container endpoint,
/// instance metadata).
public protocol CredentialsFetcher: Sendable {
    /// A name for logs and errors, such as `web identity` or `IMDSv2`.
    var sourceName: String { get }
    /// Fetches fresh credentials; they carry their `expiration`.
    func fetch() async throws -> Credentials
}

/// Caches a fetcher's credentials and fetches new ones `refreshBefore` their expiry.
///
/// A failed refresh is reported to `onRefreshFailure` (a metric, a log line) and the cached credentials stay in use
/// until they really expire; only then does the request fail. Refreshes are serialized: concurrent requests wait for
/// one fetch instead of each starting their own.
public final class RefreshingCredentialsProvider: CredentialsProvider {
    private let fetcher: any CredentialsFetcher
    private let refreshBefore: Duration
    private let now: @Sendable () -> Date
    private let onRefreshFailure: @Sendable (any Error) -> Void
    private let cached = Mutex<Credentials?>(nil)
    private let gate = RefreshGate()

    /// A provider caching `fetcher`'s credentials; failed refreshes go to `onRefreshFailure`.
    public init(
        _ fetcher: any CredentialsFetcher,
        refreshBefore: Duration = .seconds(300),
        now: @escaping @Sendable () -> Date = { Date() },
        onRefreshFailure: @escaping @Sendable (any Error) -> Void = { _ in }
    ) {
        self.fetcher = fetcher
        self.refreshBefore = refreshBefore
        self.now = now
        self.onRefreshFailure = onRefreshFailure
    }

    private func isFresh(_ credentials: Credentials?) -> Bool {
        guard let credentials else { return false }
        guard let expiration = credentials.expiration else { return true }
        return expiration.timeIntervalSince(self.now()) > self.refreshBefore.seconds
    }

    /// The cached credentials while fresh; otherwise one fetch shared by every waiting caller.
    public func credentials() async throws -> Credentials {
        if let current = self.cached.withLock({ $0 }), self.isFresh(current) { return current }
        return try await self.gate.run {
            // Another caller may have refreshed while this one waited.
            let current = self.cached.withLock { $0 }
            if self.isFresh(current), let current { return current }
            do {
                let fresh = try await self.fetcher.fetch()
                self.cached.withLock { $0 = fresh }
                return fresh
            } catch {
                self.onRefreshFailure(error)
                if let current, let expiration = current.expiration, expiration > self.now() {
                    return current
                }
                throw error
            }
        }
    }
}

/// Lets one async operation run at a time.
final class RefreshGate: Sendable {
    private let state = Mutex<(busy: Bool, waiters: [CheckedContinuation<Void, Never>])>((false, []))

    func run<T: Sendable>(_ body: () async throws -> T) async throws -> T {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let proceed = self.state.withLock { state -> Bool in
                if state.busy {
                    state.waiters.append(continuation)
                    return false
                }
                state.busy = true
                return true
            }
            if proceed { continuation.resume() }
        }
        defer {
            let next = self.state.withLock { state -> CheckedContinuation<Void, Never>? in
                if state.waiters.isEmpty {
                    state.busy = false
                    return nil
                }
                return state.waiters.removeFirst()
            }
            next?.resume()
        }
        return try await body()
    }
}
