/// One minute's footprint: the volume traded at each base bin, split by the sign the Engine gave each trade
/// (docs/SPEC.md §3: the sign `side_source` counts in the order flow), for the dashboard. Levels are sorted by bin.
public struct FootprintMinute: Sendable, Hashable {
    public struct Level: Sendable, Hashable {
        /// Base bin (`floor(price / base_bin_ticks)`).
        public var bin: Int64
        /// Buyer-initiated lots (sign +1).
        public var buy: Lots
        /// Seller-initiated lots (sign −1).
        public var sell: Lots
        /// Lots the classifier could not sign (ambiguous, no tick-rule fallback).
        public var unsigned: Lots

        public init(bin: Int64, buy: Lots, sell: Lots, unsigned: Lots) {
            self.bin = bin
            self.buy = buy
            self.sell = sell
            self.unsigned = unsigned
        }

        public var total: Lots { buy + sell + unsigned }
    }

    public var ts: Millis
    public var baseBinTicks: Int64
    public var levels: [Level]

    public init(ts: Millis, baseBinTicks: Int64, levels: [Level]) {
        self.ts = ts
        self.baseBinTicks = baseBinTicks
        self.levels = levels
    }

    /// Sums signed trades (price, lots, sign) into levels.
    public init(ts: Millis, baseBinTicks: Int64, trades: [SignedTrade]) {
        var byBin: [Int64: Level] = [:]
        for t in trades {
            let bin = floorDiv(t.price, baseBinTicks)
            var level = byBin[bin] ?? Level(bin: bin, buy: 0, sell: 0, unsigned: 0)
            switch t.sign {
            case 1: level.buy += t.lots
            case -1: level.sell += t.lots
            default: level.unsigned += t.lots
            }
            byBin[bin] = level
        }
        self.init(ts: ts, baseBinTicks: baseBinTicks, levels: byBin.values.sorted { $0.bin < $1.bin })
    }

    public var volume: Lots { levels.reduce(0) { $0 + $1.total } }
}

/// One trade with the sign the order-flow classifier gave it.
public struct SignedTrade: Sendable, Hashable {
    public var price: Ticks
    public var lots: Lots
    /// +1 buyer-initiated, −1 seller-initiated, 0 not signed.
    public var sign: Int8

    public init(price: Ticks, lots: Lots, sign: Int8) {
        self.price = price
        self.lots = lots
        self.sign = sign
    }
}
