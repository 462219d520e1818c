/// The fill model of docs/SPEC.md §10, used by the backtest and the paper venue.
///
/// - Market orders fill at the first quote after they were decided: a buy at the ask, a sell at the bid, each
///   moved by the configured slippage (entries and exits apart), taker fee.
/// - A limit order fills at its price when a later trade prints strictly through it (a buy: a trade below the
///   price), maker fee; marketable on arrival (a buy at or above the ask), it is a market order.
/// - Orders fill whole: the model has no depth beyond L1.
public struct PaperFillModel: Sendable, Codable {
    /// An order waiting for its fill.
    struct Working: Sendable, Codable {
        var intent: OrderIntent
        var since: Millis
        var market: Bool
    }
    public private(set) var config: StrategyConfig
    public let instrument: Instrument
    private var working: [Working] = []
    private var lastQuote: QuoteEvent?

    public init(config: StrategyConfig, instrument: Instrument) {
        self.config = config
        self.instrument = instrument
    }

    /// New parameters (fees, slippage), keeping the working orders.
    public mutating func reconfigure(_ config: StrategyConfig) { self.config = config }

    /// Orders not yet filled.
    public var workingOrders: [OrderIntent] { working.map(\.intent) }

    /// Accepts an order decided at `ts`.
    public mutating func submit(_ intent: OrderIntent, at ts: Millis) {
        var market = true
        if case .limit(let price) = intent.type {
            // Marketable on arrival: against the quote in force.
            if let q = lastQuote {
                market = intent.side == .long ? price >= q.askPrice : price <= q.bidPrice
            } else {
                market = false
            }
        }
        working.append(Working(intent: intent, since: ts, market: market))
    }

    /// Cancels a working order; false when it is no longer working (filled or unknown).
    @discardableResult
    public mutating func cancel(id: String) -> Bool {
        guard let i = working.firstIndex(where: { $0.intent.id == id }) else { return false }
        working.remove(at: i)
        return true
    }

    /// Market orders fill at a quote later than their decision.
    public mutating func onQuote(_ q: QuoteEvent) -> [Fill] {
        lastQuote = q
        guard !working.isEmpty else { return [] }
        var fills: [Fill] = []
        var keep: [Working] = []
        for order in working {
            guard order.market, q.ts > order.since else {
                keep.append(order)
                continue
            }
            let slip = order.intent.purpose.isEntry ? config.entrySlippageTicks : config.exitSlippageTicks
            let price = order.intent.side == .long ? q.askPrice + slip : q.bidPrice - slip
            fills.append(fill(order.intent, price: price, at: q.ts, liquidity: .taker, mid: q.bidPrice + q.askPrice))
        }
        working = keep
        return fills
    }

    /// Resting limit orders fill when a later trade prints strictly through their price.
    public mutating func onTrade(_ t: TradeEvent) -> [Fill] {
        guard !working.isEmpty else { return [] }
        var fills: [Fill] = []
        var keep: [Working] = []
        for order in working {
            guard !order.market, case .limit(let price) = order.intent.type, t.ts > order.since,
                order.intent.side == .long ? t.price < price : t.price > price
            else {
                keep.append(order)
                continue
            }
            fills.append(
                fill(
                    order.intent, price: price, at: t.ts, liquidity: .maker,
                    mid: lastQuote.map { $0.bidPrice + $0.askPrice }))
        }
        working = keep
        return fills
    }

    private func fill(_ o: OrderIntent, price: Ticks, at ts: Millis, liquidity: Liquidity, mid: Int64?) -> Fill {
        Self.fill(
            o, qty: o.qty, price: price, at: ts, liquidity: liquidity, mid: mid, config: config, instrument: instrument)
    }

    /// A fill of `qty` of an order, with its fee: `notional × fee_bps / 10000`, taker or maker (docs/SPEC.md §10).
    public static func fill(
        _ o: OrderIntent, qty: Lots, price: Ticks, at ts: Millis, liquidity: Liquidity, mid: Int64?,
        config: StrategyConfig, instrument: Instrument
    ) -> Fill {
        let notional = instrument.price(price) * instrument.size(qty)
        let bps = liquidity == .taker ? config.takerFeeBps : config.makerFeeBps
        return Fill(
            orderId: o.id, side: o.side, qty: qty, price: price, ts: ts, decisionTs: o.decisionTs, liquidity: liquidity,
            fee: notional * bps / 10_000, purpose: o.purpose, referenceMidTwice: mid
        )
    }
}
