public import Engine
import Foundation

/// Settings of the synthetic market.
public struct MarketGeneratorConfig: Sendable {
    /// First event time (default 2026-01-01T00:00:00Z).
    public var startMs: Millis = 1_767_225_600_000
    /// Length of the market in hours.
    public var hours: Double = 24
    public var seed: UInt64 = 1
    /// Starting price in ticks (default 50,000.0 at tick 0.1).
    public var startPriceTicks: Ticks = 500_000
    /// Average trades per second (each fill of a split print counts).
    public var tradesPerSecond: Double = 20
    /// Average L1 quote updates per second.
    public var quotesPerSecond: Double = 50

    public init() {}
}

/// A synthetic BTC-perpetual-like market: L1 quotes and trades with realistic microstructure.
///
/// - Spreads of one tick most of the time, wider spells now and then.
/// - Trades at the bid or ask (a buyer lifts the ask, a seller hits the bid), some inside wide spreads, some at a
///   quote that has just moved (stale prints), and split fills: several trades at one timestamp walking the book.
/// - Regimes: balance (price mean-reverts around a value) and trend (drift with more aggressive buying or
///   selling), switching at random; the volatility is of the order of BTC's (about 5 bp a minute).
///
/// Deterministic: the same config gives the same events. Events come in the Engine's order.
public struct MarketGenerator: Sendable {
    public let config: MarketGeneratorConfig
    private var rng: Xoshiro256
    private let endMs: Double

    private var nextQuoteAt: Double
    private var nextPrintAt: Double
    private var fair: Double
    private var center: Double
    private var drift = 0.0
    private var regimeEndsAt: Double
    private var wideSpread = false
    private var spread: Int64 = 1
    private var bid: Ticks
    private var ask: Ticks
    private var bidSize: Lots = 2000
    private var askSize: Lots = 2000
    private var pending: [MarketEvent] = []
    private var pendingIndex = 0

    private let printRate: Double
    private static let meanFillsPerPrint = 1.615  // measured: 70 % single fills, the rest 2–5

    public init(config: MarketGeneratorConfig) {
        self.config = config
        rng = Xoshiro256(seed: config.seed)
        let start = Double(config.startMs)
        endMs = start + config.hours * 3_600_000
        nextQuoteAt = start
        printRate = config.tradesPerSecond / Self.meanFillsPerPrint
        nextPrintAt = start + 1
        fair = Double(config.startPriceTicks)
        center = fair
        regimeEndsAt = start
        bid = config.startPriceTicks
        ask = config.startPriceTicks + 1
    }

    /// The next event, or nil at the end of the market.
    public mutating func next() -> MarketEvent? {
        if pendingIndex < pending.count {
            defer { pendingIndex += 1 }
            return pending[pendingIndex]
        }
        pending.removeAll(keepingCapacity: true)
        pendingIndex = 0
        let now = min(nextQuoteAt, nextPrintAt)
        guard now < endMs else { return nil }
        if now >= regimeEndsAt { switchRegime(at: now) }
        // Compare whole milliseconds so a quote and a print in the same millisecond come quote first.
        if nextQuoteAt.rounded(.down) <= nextPrintAt.rounded(.down) {
            nextQuoteAt += rng.exponential(mean: 1000 / config.quotesPerSecond)
            return .quote(moveQuote(ts: Millis(now)))
        }
        nextPrintAt += rng.exponential(mean: 1000 / printRate)
        makePrint(ts: Millis(now))
        pendingIndex = 1
        return pending[0]
    }

    /// Generates the whole market into two arrays (trades, quotes).
    public mutating func generateAll() -> (trades: [TradeEvent], quotes: [QuoteEvent]) {
        var trades: [TradeEvent] = []
        var quotes: [QuoteEvent] = []
        let seconds = config.hours * 3600
        trades.reserveCapacity(Int(seconds * config.tradesPerSecond * 1.1))
        quotes.reserveCapacity(Int(seconds * config.quotesPerSecond * 1.1))
        while let e = next() {
            switch e {
            case .trade(let t): trades.append(t)
            case .quote(let q): quotes.append(q)
            }
        }
        return (trades, quotes)
    }

    private mutating func switchRegime(at now: Double) {
        let u = rng.unit()
        if u < 0.55 {
            drift = 0  // balance around the current price
            center = fair
        } else {
            // Trend: 150 to 600 USDT an hour at BTC prices, either way, spread over the quotes of an hour.
            let perHour = (1500 + 4500 * rng.unit()) * (rng.unit() < 0.5 ? -1 : 1)
            drift = perHour / (config.quotesPerSecond * 3600)
        }
        regimeEndsAt = now + rng.exponential(mean: 90 * 60_000) + 20 * 60_000
    }

    private mutating func moveQuote(ts: Millis) -> QuoteEvent {
        // Price: mean reversion in balance, drift in trend, and noise (~5 bp a minute at 50 quotes a second).
        let kappa = drift == 0 ? 1.2e-5 : 0
        fair += kappa * (center - fair) + drift + 3.2 * rng.gaussian()
        if drift != 0 { center = fair }
        // Spread: one tick mostly; wide spells now and then.
        if wideSpread {
            if rng.unit() < 0.03 { wideSpread = false }
        } else if rng.unit() < 0.0015 {
            wideSpread = true
        }
        spread = wideSpread ? 2 + Int64(rng.unit() * 5) : 1
        let newBid = Int64((fair - Double(spread) / 2).rounded(.down))
        bid = max(newBid, 1)
        ask = bid + spread
        bidSize = depth()
        askSize = depth()
        return QuoteEvent(ts: ts, bidPrice: bid, bidSize: bidSize, askPrice: ask, askSize: askSize)
    }

    /// Resting size at the top of book: log-normal around 2 BTC.
    private mutating func depth() -> Lots {
        max(1, Lots(exp(log(2000.0) + rng.gaussian())))
    }

    private mutating func makePrint(ts: Millis) {
        // Aggressor: tilted by the regime (trend followers, buyers below value in balance).
        var buyProbability = 0.5
        if drift > 0 {
            buyProbability = 0.58
        } else if drift < 0 {
            buyProbability = 0.42
        } else {
            buyProbability = 0.5 + 0.12 * max(-1, min(1, (center - fair) / 600))
        }
        let buy = rng.unit() < buyProbability
        // Size of the aggressive order: log-normal, median 0.02 BTC, heavy tail, at most 50 BTC.
        let total = max(1, min(50_000, Lots(exp(log(20.0) + 1.5 * rng.gaussian()))))
        let u = rng.unit()
        if wideSpread && u < 0.2 {
            // Inside the spread: a hidden order or a midpoint fill.
            let price = bid + 1 + Int64(rng.unit() * Double(spread - 1))
            pending.append(.trade(TradeEvent(ts: ts, price: price, size: total, side: buy ? .buy : .sell)))
            return
        }
        if u < 0.08 {
            // Stale print: the trade happened at the price of a quote that has just moved by a tick.
            let price = buy ? ask - 1 : bid + 1
            pending.append(.trade(TradeEvent(ts: ts, price: price, size: total, side: buy ? .buy : .sell)))
            return
        }
        // Split fills: 70 % one fill, else 2–5 fills walking the book one tick at a time.
        let fills = rng.unit() < 0.7 ? 1 : 2 + Int(rng.unit() * 4)
        var left = total
        var level: Int64 = 0
        for i in 0..<fills where left > 0 {
            let size = i == fills - 1 ? left : max(1, left / Lots(fills - i) + Lots(rng.unit() * 3) - 1)
            let fill = min(size, left)
            left -= fill
            let price = buy ? ask + level : bid - level
            pending.append(.trade(TradeEvent(ts: ts, price: price, size: fill, side: buy ? .buy : .sell)))
            if rng.unit() < 0.4 { level += 1 }
        }
    }
}
