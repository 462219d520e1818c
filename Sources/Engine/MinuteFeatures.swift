/// The L1 quote in force at a minute's close.
public struct QuoteAtClose: Sendable, Hashable {
    public init(bidPrice: Ticks, bidSize: Lots, askPrice: Ticks, askSize: Lots, ts: Millis) {
        self.bidPrice = bidPrice
        self.bidSize = bidSize
        self.askPrice = askPrice
        self.askSize = askSize
        self.ts = ts
    }

    public var bidPrice: Ticks
    public var bidSize: Lots
    public var askPrice: Ticks
    public var askSize: Lots
    /// Timestamp of the quote.
    public var ts: Millis

    /// `bid + ask` in ticks: twice the mid, exact.
    public var midTwiceTicks: Int64 { bidPrice + askPrice }
    /// `ask - bid` in ticks.
    public var spreadTicks: Int64 { askPrice - bidPrice }
    /// `(bid_sz - ask_sz) / (bid_sz + ask_sz)`, 0 when both are 0.
    public var imbalance: Double { quoteImbalance(bidSize: bidSize, askSize: askSize) }
}

/// Everything the pipeline knows about one closed minute: the bar, order flow, quote state, volatility and the
/// rolling value area (docs/SPEC.md §2–§7). Prices are in ticks and sizes in lots; `Instrument` turns them into numbers.
public struct MinuteFeatures: Sendable, Hashable {
    /// Start of the minute (`ts_min`).
    public var ts: Millis
    /// Position of this bar counted from the first row (0-based).
    public var index: Int
    public var open: Ticks
    public var high: Ticks
    public var low: Ticks
    public var close: Ticks
    public var volume: Lots
    /// `sum(ticks * lots)`; vwap = `tickLots / volume` ticks (the previous close when the minute is empty).
    public var tickLots: Int64
    public var tradeCount: Int
    /// The latest quote with `ts <= minute + 59999`, however old; nil until the first quote.
    public var quote: QuoteAtClose?
    /// Sum of `spread_close` ticks over the bars in the 60-minute average, and how many bars had a quote.
    public var spreadSumTicks: Int64
    public var spreadCount: Int
    public var sigma240: Double
    /// The applied bin width in ticks.
    public var binTicks: Int64
    /// The value area of the window; nil when the window holds no volume.
    public var valueArea: ValueArea?
    /// `va_valid`: enough bins with volume.
    public var valueAreaValid: Bool
    /// One of the minute's trades printed within the crossing distance of this minute's VAH (docs/SPEC.md §8).
    public var crossesVAH: Bool
    /// One of the minute's trades printed within the crossing distance of this minute's VAL (docs/SPEC.md §8).
    public var crossesVAL: Bool
    public var orderFlow: OrderFlowTotals
    /// The quote-imbalance EMA carried to the minute's end; nil until the first quote.
    public var qimbEma: Double?
    /// The minute is known only from its candle (`source=kline`): its bar is exact, its profile is spread over its
    /// range, it has no order flow.
    public var approximate: Bool
    /// Volume of the window (this minute included) that came from candles.
    public var approximateLots: Lots
    /// Minutes of the window (this one included) known only from candles.
    public var approximateMinutes: Int
    /// The minute lies in a recorded gap (a disconnection, the recorder or the agent down): its data is missing,
    /// not quiet.
    public var missing: Bool
    /// Minutes of the window (this one included) with missing data; above `value_area.max_missing_share` of the
    /// window the value area is not valid.
    public var missingMinutes: Int
    /// How `orderFlow.signedVolume` was measured: the quote rule, or BVC (`order_flow.method`).
    public var orderFlowMethod: OrderFlowMethod = .quoteRule

    public init(
        ts: Millis, index: Int, open: Ticks, high: Ticks, low: Ticks, close: Ticks, volume: Lots, tickLots: Int64,
        tradeCount: Int, quote: QuoteAtClose?, spreadSumTicks: Int64, spreadCount: Int, sigma240: Double,
        binTicks: Int64,
        valueArea: ValueArea?, valueAreaValid: Bool, crossesVAH: Bool, crossesVAL: Bool, orderFlow: OrderFlowTotals,
        qimbEma: Double?, approximate: Bool = false, approximateLots: Lots = 0,
        approximateMinutes: Int = 0, missing: Bool = false, missingMinutes: Int = 0,
        orderFlowMethod: OrderFlowMethod = .quoteRule
    ) {
        self.ts = ts
        self.index = index
        self.open = open
        self.high = high
        self.low = low
        self.close = close
        self.volume = volume
        self.tickLots = tickLots
        self.tradeCount = tradeCount
        self.quote = quote
        self.spreadSumTicks = spreadSumTicks
        self.spreadCount = spreadCount
        self.sigma240 = sigma240
        self.binTicks = binTicks
        self.valueArea = valueArea
        self.valueAreaValid = valueAreaValid
        self.crossesVAH = crossesVAH
        self.crossesVAL = crossesVAL
        self.orderFlow = orderFlow
        self.qimbEma = qimbEma
        self.approximate = approximate
        self.approximateLots = approximateLots
        self.approximateMinutes = approximateMinutes
        self.missing = missing
        self.missingMinutes = missingMinutes
        self.orderFlowMethod = orderFlowMethod
    }

    /// Share of the window's volume (the profile the value area is drawn from) that came from candles: 0 when
    /// every minute was built from trades.
    public var approximateShare: Double {
        guard let total = valueArea?.total, total > 0 else { return approximateLots > 0 ? 1 : 0 }
        return Double(approximateLots) / Double(total)
    }
    /// `trades` or `kline`: where the minute's bar came from (stored with its features row).
    public var source: String { approximate ? "kline" : "trades" }

    /// Volume-weighted average price in ticks (a ratio; the previous close for an empty minute).
    public var vwapTicks: Double { volume == 0 ? Double(close) : Double(tickLots) / Double(volume) }
    /// Milliseconds between the quote used and the minute's decision time (`ts + 60000`).
    public var quoteAgeMs: Millis? { quote.map { ts + millisPerMinute - $0.ts } }
    /// `spread_avg_60m` in ticks; nil before the first quote.
    public var spreadAverageTicks: Double? {
        spreadCount == 0 ? nil : Double(spreadSumTicks) / Double(spreadCount)
    }
    /// `of_norm_1m`: signed volume over volume, 0 when the minute is empty.
    public var ofNorm: Double { volume == 0 ? 0 : Double(orderFlow.signedVolume) / Double(volume) }
    /// `ambiguous_frac_1m`: ambiguous volume over volume, 0 when the minute is empty.
    public var ambiguousFraction: Double { volume == 0 ? 0 : Double(orderFlow.ambiguousVolume) / Double(volume) }
    /// The decision time of this minute (`ts + 60000`).
    public var decisionTs: Millis { ts + millisPerMinute }

    /// `|p - level| <= N` with `N = max(spread_avg_60m, tick)`, exactly (docs/SPEC.md §8).
    public func isWithinCrossingDistance(_ p: Ticks, of level: Ticks) -> Bool {
        crossingDistanceHolds(abs(p - level), spreadSumTicks, spreadCount)
    }

    /// `p <= level + N`, exactly (the retest test of docs/SPEC.md §8, mirrored with `level - p` for shorts).
    public func isAtMostCrossingDistance(above level: Ticks, _ p: Ticks) -> Bool {
        p <= level || crossingDistanceHolds(p - level, spreadSumTicks, spreadCount)
    }
}

/// `distance <= max(S / n, 1)` ticks as `distance * n <= max(S, n)`, with no spread history meaning one tick.
@inline(__always)
func crossingDistanceHolds(_ distance: Int64, _ spreadSum: Int64, _ spreadCount: Int) -> Bool {
    if spreadCount == 0 { return distance <= 1 }
    let n = Int64(spreadCount)
    return distance * n <= max(spreadSum, n)
}
