import Foundation
import ObjectStorage
import SidecarBreaker
import SidecarConfig

/// What one sweep of a backend did, for its metrics.
public struct SweepReport: Sendable, Equatable {
    public var backend: String
    /// Leftover canary objects deleted.
    public var removedCanaries: Int
    /// Leftover multipart uploads aborted.
    public var abortedUploads: Int
    /// Leftovers that could not be listed or deleted (the next sweep tries again).
    public var errors: Int
}

/// Deletes canaries a crash left behind: objects under this replica's prefix of a backend that were written
/// before this process started (no cycle of ours wrote them: a killed predecessor did) or more than a few
/// intervals ago. Works through the unwrapped backend, so it never counts against the breaker.
struct Sweeper: Sendable {
    var target: CanaryTarget
    /// Objects at least this old are leftovers; a live cycle's object is younger than one interval.
    var minimumAge: Duration

    /// What one sweep did.
    struct Outcome: Sendable, Equatable {
        var deleted = 0
        /// Multipart uploads a crashed cycle left open, now aborted.
        var aborted = 0
        /// Leftovers that could not be deleted (the next sweep tries again).
        var failedKeys: [String] = []
        /// Why the first delete failed, or why the listing failed.
        var firstError: String?
        /// Whether listing the prefix failed (then nothing was deleted).
        var listingFailed = false
        var errors: Int { self.failedKeys.count + (self.listingFailed ? 1 : 0) }
    }

    /// Lists the leftovers and deletes each; a failed delete does not stop the others. `processStartedAt`: objects
    /// older than this are leftovers whatever their age, so a restart right after a SIGKILL cleans up at once.
    func sweep(
        now: Date = Date(), processStartedAt: Date = .distantPast, log: (@Sendable (String) -> Void)? = nil
    )
        async -> Outcome
    {
        let raw = self.target.backend.unwrap()
        let cutoff = max(now.addingTimeInterval(-self.minimumAge.seconds), processStartedAt)
        var stale: [String] = []
        var outcome = Outcome()
        do {
            try await raw.listObjects(prefix: self.target.keyPrefix, pageSize: 1000) { page in
                for object in page.objects
                where Self.createdAt(key: object.key, prefix: self.target.keyPrefix).map({ $0 < cutoff }) ?? true {
                    stale.append(object.key)
                }
                return stale.count < 10_000
            }
        } catch {
            outcome.listingFailed = true
            outcome.firstError = CircuitBreakerBackend.message(of: error)
            return outcome
        }
        for key in stale {
            do {
                try await raw.deleteObject(key: key)
                outcome.deleted += 1
            } catch {
                outcome.failedKeys.append(key)
                if outcome.firstError == nil { outcome.firstError = CircuitBreakerBackend.message(of: error) }
            }
        }
        await self.abortUploads(cutoff: cutoff, into: &outcome)
        if outcome.deleted > 0 { log?("swept \(outcome.deleted) leftover canaries under \(self.target.keyPrefix)") }
        if outcome.aborted > 0 {
            log?("aborted \(outcome.aborted) leftover multipart uploads under \(self.target.keyPrefix)")
        }
        return outcome
    }

    /// Aborts this replica's multipart uploads older than `cutoff` (ListMultipartUploads under its prefix), when
    /// the backend runs the multipart canary: a process killed between create and complete leaves one behind, and
    /// its parts cost storage until aborted.
    private func abortUploads(cutoff: Date, into outcome: inout Outcome) async {
        guard self.target.probe.operations.contains(.multipart),
            let raw = self.target.backend.unwrap() as? any FeatureBackend
        else { return }
        let uploads: [MultipartUpload]
        do {
            uploads = try await raw.listMultipartUploads(prefix: self.target.keyPrefix, limit: 1000)
        } catch {
            outcome.listingFailed = true
            if outcome.firstError == nil { outcome.firstError = CircuitBreakerBackend.message(of: error) }
            return
        }
        for upload in uploads
        where Self.createdAt(key: upload.key, prefix: self.target.keyPrefix).map({ $0 < cutoff }) ?? true {
            do {
                try await raw.abortMultipartUpload(upload)
                outcome.aborted += 1
            } catch {
                outcome.failedKeys.append(upload.key)
                if outcome.firstError == nil { outcome.firstError = CircuitBreakerBackend.message(of: error) }
            }
        }
    }

    /// The creation time encoded in a canary key (`<prefix><millis>-<random>[.copy]`).
    static func createdAt(key: String, prefix: String) -> Date? {
        guard key.hasPrefix(prefix) else { return nil }
        let name = key.dropFirst(prefix.count)
        guard let dash = name.firstIndex(of: "-"), let millis = Int64(name[..<dash]) else { return nil }
        return Date(timeIntervalSince1970: Double(millis) / 1000)
    }
}
