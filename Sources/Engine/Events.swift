/// The aggressor (taker) side of a trade as the feed reports it.
public enum TakerSide: Int8, Sendable, Hashable, BitwiseCopyable {
    case sell = -1
    case unknown = 0
    case buy = 1
}

/// One trade: a fill between an aggressive order and a resting one.
public struct TradeEvent: Sendable, Hashable, BitwiseCopyable {
    public var ts: Millis
    public var price: Ticks
    public var size: Lots
    /// The feed's taker side where it carries one (Bybit `S`), else `.unknown`.
    public var side: TakerSide

    public init(ts: Millis, price: Ticks, size: Lots, side: TakerSide = .unknown) {
        self.ts = ts
        self.price = price
        self.size = size
        self.side = side
    }
}

/// One top-of-book (L1) quote.
public struct QuoteEvent: Sendable, Hashable, Codable, BitwiseCopyable {
    public var ts: Millis
    public var bidPrice: Ticks
    public var bidSize: Lots
    public var askPrice: Ticks
    public var askSize: Lots

    public init(ts: Millis, bidPrice: Ticks, bidSize: Lots, askPrice: Ticks, askSize: Lots) {
        self.ts = ts
        self.bidPrice = bidPrice
        self.bidSize = bidSize
        self.askPrice = askPrice
        self.askSize = askSize
    }

    /// `(bid_sz - ask_sz) / (bid_sz + ask_sz)`, 0 when both are 0 (docs/SPEC.md §3).
    @inlinable
    public var imbalance: Double { quoteImbalance(bidSize: bidSize, askSize: askSize) }
}

/// A market-data event in the one ordered stream the Engine consumes.
public enum MarketEvent: Sendable, Hashable {
    case quote(QuoteEvent)
    case trade(TradeEvent)

    public var ts: Millis {
        switch self {
        case .quote(let q): q.ts
        case .trade(let t): t.ts
        }
    }
}

/// Merges two time-ordered streams into the Engine's order: by timestamp, a quote before a trade with the same
/// timestamp, and arrival order inside each source (docs/SPEC.md §1).
public func mergeEvents(
    trades: [TradeEvent],
    quotes: [QuoteEvent],
    _ body: (MarketEvent) throws -> Void
) rethrows {
    var ti = 0
    var qi = 0
    while ti < trades.count || qi < quotes.count {
        if qi < quotes.count && (ti >= trades.count || quotes[qi].ts <= trades[ti].ts) {
            try body(.quote(quotes[qi]))
            qi += 1
        } else {
            try body(.trade(trades[ti]))
            ti += 1
        }
    }
}

/// `(bid_sz - ask_sz) / (bid_sz + ask_sz)`, 0 when both are 0 (docs/SPEC.md §3).
@inlinable
public func quoteImbalance(bidSize: Lots, askSize: Lots) -> Double {
    let total = bidSize + askSize
    return total == 0 ? 0 : Double(bidSize - askSize) / Double(total)
}

/// A one-minute bar known only from the exchange's candles (Bybit `GET /v5/market/kline`), not from its trades.
///
/// Open, high, low, close and volume are exact; where inside the range the volume traded, who was the aggressor
/// and what the quotes were is not known. The pipeline takes such a minute as approximate (`addKline`).
public struct KlineBar: Sendable, Hashable, Codable {
    /// Start of the minute.
    public var ts: Millis
    public var open: Ticks
    public var high: Ticks
    public var low: Ticks
    public var close: Ticks
    public var volume: Lots
    /// `sum(ticks * lots)` of the minute's trades (from the candle's turnover), nil when unknown: the VWAP.
    public var tickLots: Int64?

    public init(ts: Millis, open: Ticks, high: Ticks, low: Ticks, close: Ticks, volume: Lots, tickLots: Int64? = nil) {
        self.ts = ts
        self.open = open
        self.high = high
        self.low = low
        self.close = close
        self.volume = volume
        self.tickLots = tickLots
    }

    /// The bar of a minute's trades (all in the same minute, in time order): what a candle of them says.
    public init?(minute: Millis, trades: some Sequence<TradeEvent>) {
        var it = trades.makeIterator()
        guard let first = it.next() else { return nil }
        var bar = KlineBar(
            ts: minute, open: first.price, high: first.price, low: first.price, close: first.price, volume: first.size,
            tickLots: first.price * first.size)
        while let t = it.next() {
            bar.high = max(bar.high, t.price)
            bar.low = min(bar.low, t.price)
            bar.close = t.price
            bar.volume += t.size
            bar.tickLots! += t.price * t.size
        }
        self = bar
    }
}
