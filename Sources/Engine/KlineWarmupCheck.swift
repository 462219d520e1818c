/// How far a value area warmed from 1-minute candles lies from the exact one (docs/FEATURES.md, "Warm start").
///
/// Fed the exact minutes of a run (each minute's bar is exactly what the exchange's candle says), it warms a fresh
/// pipeline from the candles of the `warmMinutes` minutes up to a minute, every `everyMinutes` minutes once the exact
/// window is full, and compares that value area with the exact one of the same minute: the error an agent makes
/// when it starts from klines alone, at the moment it is ready.
public struct KlineWarmupCheck: Sendable {
    public struct Sample: Sendable, Hashable {
        /// The minute compared (its start).
        public var minute: Millis
        public var exact: ValueArea
        public var warmed: ValueArea
        public var exactBinTicks: Int64
        public var warmedBinTicks: Int64

        /// `warmed - exact` in ticks.
        public var pocTicks: Double { Double(warmed.pocTwiceTicks - exact.pocTwiceTicks) / 2 }
        public var vahTicks: Int64 { warmed.vahTicks - exact.vahTicks }
        public var valTicks: Int64 { warmed.valTicks - exact.valTicks }
    }

    public let config: FeatureConfig
    public let warmMinutes: Int
    public let everyMinutes: Int
    private var bars: Ring<KlineBar>
    public private(set) var samples: [Sample] = []

    public init(config: FeatureConfig, warmMinutes: Int? = nil, everyMinutes: Int = 30) {
        precondition(everyMinutes >= 1)
        self.config = config
        self.warmMinutes = warmMinutes ?? config.rollingWindowMinutes
        self.everyMinutes = everyMinutes
        bars = Ring(capacity: self.warmMinutes)
    }

    /// Takes the next exact minute (in order).
    public mutating func add(_ f: MinuteFeatures) {
        bars.push(
            KlineBar(
                ts: f.ts, open: f.open, high: f.high, low: f.low, close: f.close, volume: f.volume, tickLots: f.tickLots
            ))
        // Compare once the exact window is full, on every `everyMinutes`-th minute.
        guard f.index + 1 >= max(config.rollingWindowMinutes, warmMinutes), (f.index + 1) % everyMinutes == 0,
            let exact = f.valueArea
        else { return }
        var warm = FeaturePipeline(config: config)
        for k in bars.elements { warm.addKline(k) }
        warm.finish()
        guard let last = warm.takeClosed().last, last.ts == f.ts, let warmed = last.valueArea else { return }
        samples.append(
            Sample(minute: f.ts, exact: exact, warmed: warmed, exactBinTicks: f.binTicks, warmedBinTicks: last.binTicks)
        )
    }

    /// `p`-quantile (nearest rank) of the absolute differences, in ticks: POC, VAH, VAL.
    public func quantile(_ p: Double) -> (poc: Double, vah: Double, val: Double)? {
        guard !samples.isEmpty else { return nil }
        func q(_ xs: [Double]) -> Double {
            let sorted = xs.sorted()
            let rank = Int((p * Double(sorted.count)).rounded(.up)) - 1
            return sorted[min(max(rank, 0), sorted.count - 1)]
        }
        return (
            q(samples.map { abs($0.pocTicks) }), q(samples.map { Double(abs($0.vahTicks)) }),
            q(samples.map { Double(abs($0.valTicks)) })
        )
    }
}
