public import NIOCore

extension Duration {
    /// The duration in seconds, as metrics and JSON carry it.
    public var seconds: Double {
        let (seconds, attoseconds) = self.components
        return Double(seconds) + Double(attoseconds) / 1e18
    }

    /// The same span as SwiftNIO's `TimeAmount`, which AsyncHTTPClient and bootstraps take.
    public var timeAmount: TimeAmount {
        let (seconds, attoseconds) = self.components
        return .nanoseconds(seconds * 1_000_000_000 + attoseconds / 1_000_000_000)
    }
}
