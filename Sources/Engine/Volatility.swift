import Foundation

/// `sigma_240`: sample standard deviation of the last 240 one-minute log returns of `mid_close` (docs/SPEC.md §5).
public struct MidReturnVolatility: Sendable, Hashable {
    public let capacity: Int
    private var returns: [Double] = []
    private var next = 0
    private var previousMidTwice: HalfTicks?

    public init(capacity: Int = FeatureConfig.sigmaReturns) {
        self.capacity = capacity
        returns.reserveCapacity(capacity)
    }

    /// Records a minute's mid (as `bid + ask` ticks, twice the mid) and returns the updated sigma.
    /// A minute without a quote yet passes nil and adds no return.
    public mutating func add(midTwiceTicks: Int64?) -> Double {
        if let mid = midTwiceTicks {
            if let previous = previousMidTwice {
                let r = log(Double(mid) / Double(previous))
                if returns.count < capacity {
                    returns.append(r)
                } else {
                    returns[next] = r
                    next = (next + 1) % capacity
                }
            }
            previousMidTwice = mid
        }
        return sigma
    }

    /// The current estimate: 0 with fewer than two returns.
    public var sigma: Double {
        let n = returns.count
        guard n >= 2 else { return 0 }
        // Two passes over at most 240 values: exact enough and free of running-sum drift.
        var sum = 0.0
        for r in returns { sum += r }
        let mean = sum / Double(n)
        var squares = 0.0
        for r in returns {
            let d = r - mean
            squares += d * d
        }
        return (squares / Double(n - 1)).squareRoot()
    }
}

/// The volatility-scaled bin width and the rebucketing rule (docs/SPEC.md §5).
public struct BinWidthPolicy: Sendable, Hashable {
    public let config: FeatureConfig
    /// The width the profile uses now, in ticks; nil before the first minute.
    public private(set) var appliedTicks: Int64?

    public init(config: FeatureConfig) {
        self.config = config
    }

    /// `clamp(round(alpha * mid * sigma / tick), 1, max)` rounded to a multiple of `base_bin_ticks` (at least one).
    public func computedTicks(midTicks: Double, sigma: Double) -> Int64 {
        let raw = config.alphaBin * midTicks * sigma
        let rounded = raw.isFinite ? roundHalfAway(raw) : 1
        let clamped = Int64(min(max(rounded, 1), Double(config.binWidthMaxTicks)))
        let base = config.baseBinTicks
        return max(roundedDiv(clamped, base), 1) * base
    }

    /// Applies the rule at the close of minute `minute` (its start, ms) and returns the applied width.
    public mutating func update(minute: Millis, computed: Int64) -> Int64 {
        guard let applied = appliedTicks else {
            appliedTicks = computed
            return computed
        }
        let change = Double(abs(computed - applied)) / Double(applied)
        let onSchedule = (minute / millisPerMinute) % Int64(config.rebucketIntervalMinutes) == 0
        if change >= config.rebucketChangePct || onSchedule {
            appliedTicks = computed
            return computed
        }
        return applied
    }
}
