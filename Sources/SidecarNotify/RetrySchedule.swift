import Foundation

/// When to retry a webhook delivery.
///
/// Exponential backoff with equal jitter: retry `n` (from 1) waits between half and all of
/// `min(maximum, base × 2^(n-1))`. With the defaults (base 1 s, maximum 60 s) that is about
/// 1, 2, 4, 8, 16, 32, 60, 60... seconds, so eight retries span roughly two to three minutes. A `Retry-After`
/// from the receiver replaces the computed delay (capped at `retryAfterCap`).
public struct RetrySchedule: Sendable, Equatable {
    var base: Duration = .seconds(1)
    var maximum: Duration = .seconds(60)
    var retryAfterCap: Duration = .seconds(300)

    /// The default schedule: 1 s base, 60 s maximum, `Retry-After` capped at 300 s.
    public init() {}

    /// The delay before retry `retry` (1 = the first retry); `jitter` is a draw in `0..<1`.
    func delay(retry: Int, jitter: Double, retryAfter: Duration? = nil) -> Duration {
        if let retryAfter { return min(max(retryAfter, .zero), self.retryAfterCap) }
        let exponent = min(max(retry - 1, 0), 30)
        let full = min(self.maximum, self.base * Double(1 << exponent))
        return full * (0.5 + 0.5 * min(max(jitter, 0), 1))
    }

    /// Parses `Retry-After`: delta seconds or an HTTP date.
    static func parseRetryAfter(_ value: String?, now: Date = Date()) -> Duration? {
        guard let value = value?.trimmingCharacters(in: .whitespaces), !value.isEmpty else { return nil }
        if let seconds = Int(value), seconds >= 0 { return .seconds(seconds) }
        let formatter = DateFormatter()
        formatter.locale = Locale(identifier: "en_US_POSIX")
        formatter.timeZone = TimeZone(identifier: "GMT")
        formatter.dateFormat = "EEE, dd MMM yyyy HH:mm:ss zzz"
        guard let date = formatter.date(from: value) else { return nil }
        return .milliseconds(Int64(max(0, date.timeIntervalSince(now)) * 1000))
    }
}

/// What a delivery attempt's answer means.
enum DeliveryVerdict: Sendable, Equatable {
    case delivered
    /// 410: the receiver is gone for good; drop the event.
    case gone
    /// Another 4xx (but 408 and 429): retrying the same request cannot help.
    case rejected
    case retry(after: Duration?)

    static func of(status: Int?, retryAfter: Duration?) -> DeliveryVerdict {
        guard let status else { return .retry(after: nil) }
        switch status {
        case 200..<300: return .delivered
        case 410: return .gone
        case 408, 429: return .retry(after: retryAfter)
        case 400..<500: return .rejected
        default: return .retry(after: retryAfter)
        }
    }
}
