import Foundation

/// `slo:` (top level, defaults for every backend) and `backends[].slo:` (overrides): the objectives a backend's
/// canary results are held to, exported as gauges so one set of generic burn-rate rules serves every backend.
///
/// Opt-in: a backend without objectives exports no SLO series and no SLO alert can fire for it. The window is fixed
/// at 28 days (the rules' budget window), as the SRE workbook's examples use.
public struct SLOConfiguration: Sendable, Equatable {
    /// A latency objective for one operation: `objective` of its successful steps within `threshold`.
    public struct Latency: Sendable, Equatable {
        public var threshold: Duration
        public var objective: Double

        public init(threshold: Duration, objective: Double) {
            self.threshold = threshold
            self.objective = objective
        }
    }

    /// The share of cycles that must succeed (a cycle skipped because the breaker was open counts as failed);
    /// `nil`: no availability objective.
    public var availability: Double?
    /// Latency objectives by operation.
    public var latency: [CanaryConfiguration.Operation: Latency] = [:]

    public init(availability: Double? = nil, latency: [CanaryConfiguration.Operation: Latency] = [:]) {
        self.availability = availability
        self.latency = latency
    }

    /// Whether any objective is set.
    public var isEmpty: Bool { self.availability == nil && self.latency.isEmpty }

    /// `self` with `override`'s objectives in place of these (per operation for latency).
    public func overridden(by override: SLOConfiguration) -> SLOConfiguration {
        SLOConfiguration(
            availability: override.availability ?? self.availability,
            latency: self.latency.merging(override.latency) { _, new in new }
        )
    }

    /// The window every objective is measured over, which the rules' budget figures read.
    public static let window: Duration = .seconds(28 * 86_400)
}
