import Foundation

/// The buckets of a native (exponential) histogram, as Prometheus defines them: with schema `s`, bucket `i` holds
/// the observations in (2^((i-1)·2^-s), 2^(i·2^-s)], so every power of two is split into 2^s buckets and 1 is
/// always a boundary; observations at or below the zero threshold go to the zero bucket. Only populated buckets
/// are kept, in index order.
///
/// Pure value type: the registry owns one per series under its lock.
struct NativeBuckets: Sendable, Equatable {
    /// Prometheus's clients' default zero threshold, 2^-128: positive, so a histogram with no observation yet is
    /// still recognisable as native, and far below any latency.
    static let zeroThreshold = 2.938735877055719e-39

    /// The current schema (lowered from the configured one when the bucket limit was reached).
    private(set) var schema: Int
    /// Most populated buckets before the resolution halves.
    let maxBuckets: Int
    private(set) var zeroCount: UInt64 = 0
    /// Populated bucket indices, ascending, and their counts.
    private(set) var indices: [Int32] = []
    private(set) var counts: [UInt64] = []

    init(schema: Int, maxBuckets: Int) {
        self.schema = min(8, max(-4, schema))
        self.maxBuckets = max(1, maxBuckets)
    }

    mutating func observe(_ value: Double) {
        guard value > Self.zeroThreshold, value.isFinite else {
            // Durations are never negative; a zero (or a NaN) is counted in the zero bucket.
            self.zeroCount += 1
            return
        }
        let index = Self.index(of: value, schema: self.schema)
        let position = Self.firstPosition(notBelow: index, in: self.indices)
        if position < self.indices.count, self.indices[position] == index {
            self.counts[position] += 1
            return
        }
        self.indices.insert(index, at: position)
        self.counts.insert(1, at: position)
        while self.indices.count > self.maxBuckets, self.schema > -4 {
            self.halveResolution()
        }
    }

    /// The first position in `sorted` whose element is not below `value` (binary search).
    private static func firstPosition<T: Comparable>(notBelow value: T, in sorted: [T]) -> Int {
        var low = 0
        var high = sorted.count
        while low < high {
            let middle = (low + high) / 2
            if sorted[middle] < value { low = middle + 1 } else { high = middle }
        }
        return low
    }

    /// Lowers the schema by one: bucket i of the coarser schema covers buckets 2i-1 and 2i of the finer one.
    mutating func halveResolution() {
        var indices: [Int32] = []
        var counts: [UInt64] = []
        for (index, count) in zip(self.indices, self.counts) {
            let merged = (index + 1) >> 1
            if indices.last == merged {
                counts[counts.count - 1] += count
            } else {
                indices.append(merged)
                counts.append(count)
            }
        }
        self.indices = indices
        self.counts = counts
        self.schema -= 1
    }

    /// The index of the bucket holding `value` (> 0, finite) at `schema`, computed from the value's binary exponent
    /// so that powers of two land exactly on their bucket's upper (inclusive) bound.
    static func index(of value: Double, schema: Int) -> Int32 {
        let (fraction, exponent) = frexp(value)  // value = fraction · 2^exponent, fraction in [0.5, 1)
        if schema > 0 {
            let bounds = Self.bounds[schema - 1]
            // The first bound at or above the fraction.
            let position = Self.firstPosition(notBelow: fraction, in: bounds)
            return Int32(clamping: position + (exponent - 1) * bounds.count)
        }
        var key = exponent
        if fraction == 0.5 { key -= 1 }
        let offset = (1 << -schema) - 1
        return Int32(clamping: (key + offset) >> -schema)
    }

    /// For schemas 1...8, the upper bounds of the buckets within one power of two, scaled to [0.5, 1):
    /// 2^(j/2^s - 1) for j in 0..<2^s.
    private static let bounds: [[Double]] = (1...8).map { schema in
        let count = 1 << schema
        return (0..<count).map { exp2(Double($0) / Double(count) - 1) }
    }

    /// The upper bound of bucket `index` at `schema`.
    static func upperBound(of index: Int32, schema: Int) -> Double {
        exp2(Double(index) * exp2(Double(-schema)))
    }

    /// Runs of consecutive populated indices as (offset, length): the first offset is the first index, each later
    /// one the gap since the previous run.
    var spans: [(offset: Int32, length: UInt32)] {
        var spans: [(offset: Int32, length: UInt32)] = []
        var previous: Int32?
        for index in self.indices {
            if let last = previous, index == last + 1 {
                spans[spans.count - 1].length += 1
            } else {
                spans.append((offset: previous.map { index - $0 - 1 } ?? index, length: 1))
            }
            previous = index
        }
        return spans
    }

    /// Each bucket's count as the difference from the previous one (the first from zero).
    var deltas: [Int64] {
        var previous: Int64 = 0
        return self.counts.map { count in
            let value = Int64(clamping: count)
            defer { previous = value }
            return value - previous
        }
    }
}
