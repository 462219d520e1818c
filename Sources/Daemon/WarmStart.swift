import AgentConfig
import AgentSupport
public import Engine
public import Exchange
import Foundation

/// The exchange's public market history a warm start reads: 1-minute candles and the most recent trades.
public protocol MarketHistory: Sendable {
    /// Candles with a start in `[from, to)`, oldest first.
    func klines(from: Int64, to: Int64) throws -> [KlineBar]
    /// The most recent trades the exchange publishes (Bybit: up to 1000), oldest first.
    func recentTrades() throws -> [TradeEvent]
}

/// `MarketHistory` over Bybit's public REST (`/v5/market/kline`, 1000 candles a page, and `/v5/market/recent-trade`).
public struct BybitMarketHistory: MarketHistory {
    let client: BybitRESTClient
    let instrument: Instrument

    public init(client: BybitRESTClient, instrument: Instrument) {
        self.client = client
        self.instrument = instrument
    }

    public func klines(from: Int64, to: Int64) throws -> [KlineBar] {
        guard from < to else { return [] }
        var out: [KlineBar] = []
        var end = to - 1
        // Each page holds the newest candles of [from, end]: walk back until the oldest one is reached.
        while end >= from {
            let page = try client.klines(interval: "1", start: from, end: end, limit: 1000)
            guard !page.isEmpty else { break }
            var oldest = Int64.max
            for k in page {
                oldest = min(oldest, k.start)
                if k.start >= from && k.start < to { out.append(try bar(k)) }
            }
            if page.count < 1000 || oldest <= from { break }
            end = oldest - 1
        }
        out.sort { $0.ts < $1.ts }
        // A page boundary never repeats a candle, but a candle twice would count its volume twice.
        var unique: [KlineBar] = []
        for k in out where unique.last?.ts != k.ts { unique.append(k) }
        return unique
    }

    /// One candle in ticks and lots; the turnover gives the VWAP when it lies inside the range.
    func bar(_ k: Kline) throws -> KlineBar {
        func ticks(_ d: ScaledDecimal, _ field: String) throws -> Ticks {
            guard let t = instrument.ticks(d) else {
                throw CommandError("kline \(k.start): \(field) \(d) is not a multiple of the tick \(instrument.tick)")
            }
            return t
        }
        let o = try ticks(k.open, "open"), h = try ticks(k.high, "high"), l = try ticks(k.low, "low"),
            c = try ticks(k.close, "close")
        guard let v = instrument.lots(k.volume) else {
            throw CommandError(
                "kline \(k.start): volume \(k.volume) is not a multiple of the quantity step \(instrument.qtyStep)")
        }
        guard l <= min(o, c) && h >= max(o, c) && v >= 0 else {
            throw CommandError("kline \(k.start): open/close outside [low, high] or a negative volume")
        }
        var tickLots: Int64?
        let perUnit = instrument.tick.doubleValue * instrument.qtyStep.doubleValue
        let raw = (k.turnover.doubleValue / perUnit).rounded()
        if v > 0, raw.isFinite, raw >= Double(l) * Double(v), raw <= Double(h) * Double(v) { tickLots = Int64(raw) }
        return KlineBar(ts: k.start, open: o, high: h, low: l, close: c, volume: v, tickLots: tickLots)
    }

    public func recentTrades() throws -> [TradeEvent] {
        // Newest first as Bybit sends them: reversed, prints at one millisecond keep their order.
        var out: [TradeEvent] = []
        for t in try client.recentTrades(limit: 1000).reversed() {
            guard let p = instrument.ticks(t.price), let s = instrument.lots(t.size) else {
                throw CommandError(
                    "recent trade \(t.execId): price \(t.price) or size \(t.size) is off the instrument's grid")
            }
            out.append(TradeEvent(ts: t.time, price: p, size: s, side: t.side == .long ? .buy : .sell))
        }
        return out
    }
}

/// What a warm start adds to the window: candles for the minutes no stored or recent trade covers completely,
/// then the recent trades that follow them exactly.
public struct WarmPlan: Sendable, Equatable {
    public var klines: [KlineBar]
    public var trades: [TradeEvent]
    /// The first minute built from trades (nil: none).
    public var firstExactMinute: Int64?

    /// The minutes a window needs, the stored data's end and the exchange's history decide the plan:
    /// - minutes missing: from `max(now's minute - needed, the minute after the stored data)` to now's minute;
    /// - the recent trades cover a minute exactly only from the minute after their oldest one (that one may have
    ///   begun earlier), or from the stored data's last event when they reach back over it;
    /// - candles fill the missing minutes before that; trades after the stored data's last event follow.
    public static func make(
        now: Int64, neededMinutes: Int, storedLastTs: Int64?, klines: [KlineBar], recent: [TradeEvent]
    ) -> WarmPlan {
        let current = minuteStart(of: now)
        let from = firstMissingMinute(now: now, neededMinutes: neededMinutes, storedLastTs: storedLastTs)
        var exactFrom = Int64.max
        var tradeFrom = Int64.max
        if let oldest = recent.first?.ts {
            if let last = storedLastTs, oldest <= last {
                // The trades continue the stored data without a hole: no candle needed.
                exactFrom = minuteStart(of: last)
                tradeFrom = exactFrom
            } else {
                exactFrom = minuteStart(of: oldest) + millisPerMinute
                tradeFrom = max(exactFrom, from)
            }
        }
        let bars = klines.filter { $0.ts >= from && $0.ts < min(exactFrom, current) }
        let trades = recent.filter { $0.ts >= tradeFrom && $0.ts > (storedLastTs ?? .min) && $0.ts < now }
        let firstExact = trades.first.map { minuteStart(of: $0.ts) }
        return WarmPlan(klines: bars, trades: trades, firstExactMinute: firstExact)
    }

    /// The missing minutes' range `[from, to)` for which candles are worth asking (nil: nothing missing).
    public static func missing(now: Int64, neededMinutes: Int, storedLastTs: Int64?) -> (from: Int64, to: Int64)? {
        let from = firstMissingMinute(now: now, neededMinutes: neededMinutes, storedLastTs: storedLastTs)
        return from < minuteStart(of: now) ? (from, minuteStart(of: now)) : nil
    }

    /// The oldest minute the window needs and the stored data lacks: `needed` minutes before now's, or the minute
    /// after the stored data's last event when that is later.
    static func firstMissingMinute(now: Int64, neededMinutes: Int, storedLastTs: Int64?) -> Int64 {
        let from = minuteStart(of: now) - Int64(neededMinutes) * millisPerMinute
        guard let last = storedLastTs else { return from }
        return max(from, minuteStart(of: last) + millisPerMinute)
    }
}
