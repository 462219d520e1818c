public import Engine
import Foundation

/// An order resting or done at the simulated venue.
public struct SimOrder: Sendable, Hashable {
    public var orderId: String
    public var orderLinkId: String
    public var side: Direction
    /// `Market` or `Limit`.
    public var orderType: String
    public var price: Ticks?
    public var qty: Lots
    public var filled: Lots = 0
    /// Sum of price × lots of the fills.
    public var filledTickLots: Int64 = 0
    public var status: String
    public var reduceOnly: Bool
    public var timeInForce: String
    public var createdAt: Int64
    public var updatedAt: Int64

    public var leaves: Lots { status == "New" || status == "PartiallyFilled" ? qty - filled : 0 }
}

/// One simulated execution.
public struct SimExecution: Sendable, Hashable {
    public var execId: String
    public var orderId: String
    public var orderLinkId: String
    public var side: Direction
    public var price: Ticks
    public var qty: Lots
    public var fee: Double
    public var isMaker: Bool
    public var ts: Int64
    /// `Trade` or `Funding`.
    public var execType: String
}

/// What the private streams publish, in order.
public enum SimPrivateEvent: Sendable, Hashable {
    case order(SimOrder)
    case execution(SimExecution)
    case position
    case wallet
}

/// Settings of the simulated venue.
public struct SimVenueConfig: Sendable {
    public var instrument = Instrument.btcusdt
    /// API key → secret pairs the venue accepts.
    public var keys: [String: String] = ["sim-key": "sim-secret"]
    public var initialBalance = 100_000.0
    public var takerFeeBps = 5.5
    public var makerFeeBps = 2.0
    public var fundingRate8hBps = 1.0
    /// Requests per second per key and endpoint before retCode 10006.
    public var rateLimitPerSecond = 50
    public var maxOrderQty: Lots = 100_000
    public var maxMarketOrderQty: Lots = 100_000

    public init() {}
}

/// A Bybit-compatible venue: one linear symbol, its L1 and trades from a market generator or a recording, a
/// matching engine for market and limit orders against that L1, a one-way position, a wallet, fees and funding.
///
/// Pure state and rules; the HTTP and WebSocket servers are adapters around it. Thread-safe: every entry point
/// takes `lock`.
public final class SimVenue: @unchecked Sendable {
    // All mutable state below is guarded by `lock`.
    let lock = NSLock()
    public let config: SimVenueConfig
    var quote: QuoteEvent?
    var recentTrades: [TradeEvent] = []
    var tradeSeq = 0
    /// One-minute candles: start, o, h, l, c, volume lots, turnover.
    var candles: [(start: Int64, o: Ticks, h: Ticks, l: Ticks, c: Ticks, volume: Lots, turnover: Double)] = []
    var orders: [String: SimOrder] = [:]
    var orderIdsByLink: [String: String] = [:]
    var orderSeq = 0
    var executions: [SimExecution] = []
    var execSeq = 0
    /// Signed position in lots and its average entry in ticks (as tick-lots for exactness).
    var positionLots: Lots = 0
    var positionTickLots: Int64 = 0
    var stopLoss: Ticks?
    var takeProfit: Ticks?
    var balance: Double
    var fundingHistory: [(ts: Int64, rate: Double)] = []
    var lastFundingBoundary: Int64?
    /// Private-stream events with their sequence number (bounded; each stream keeps its own cursor).
    var privateLog: [(seq: Int, event: SimPrivateEvent)] = []
    var privateSeq = 0
    var rateWindows: [String: (second: Int64, count: Int)] = [:]
    /// The venue's clock: market time (event timestamps), advanced by the driver.
    public private(set) var marketTime: Int64 = 0
    public var faults = SimFaults()
    /// Set when a restart was injected: the next order-book message carries `u = 1`.
    public internal(set) var restartPending = false
    /// Order-book update id.
    var bookUpdateId: Int64 = 0
    /// Raised to drop every open WebSocket once.
    public internal(set) var webSocketDropGeneration = 0

    public init(config: SimVenueConfig = SimVenueConfig()) {
        self.config = config
        balance = config.initialBalance
    }

    // MARK: - Market

    /// Feeds a market event (the driver calls this in time order).
    public func onMarket(_ event: MarketEvent) {
        lock.withLock {
            marketTime = max(marketTime, event.ts)
            applyFunding(upTo: event.ts)
            switch event {
            case .quote(let q):
                quote = q
                bookUpdateId += 1
                matchRestingAgainstQuote()
            case .trade(let t):
                tradeSeq += 1
                recentTrades.append(t)
                if recentTrades.count > 20_000 { recentTrades.removeFirst(recentTrades.count - 10_000) }
                addToCandle(t)
                matchRestingAgainstTrade(t)
                checkProtectiveStops(t)
            }
        }
    }

    /// Private-stream events after `cursor`, and the new cursor.
    public func privateEvents(after cursor: Int) -> (events: [SimPrivateEvent], cursor: Int) {
        lock.withLock {
            let events = privateLog.filter { $0.seq > cursor }.map(\.event)
            return (events, privateSeq)
        }
    }

    /// Every private event so far (tests).
    public func takePrivateEvents() -> [SimPrivateEvent] { privateEvents(after: 0).events }

    /// Trades after `cursor` (a trade sequence number), at most `limit`, and the new cursor.
    public func trades(after cursor: Int, limit: Int = 1024) -> (trades: [TradeEvent], cursor: Int) {
        lock.withLock {
            let missing = tradeSeq - cursor
            guard missing > 0 else { return ([], tradeSeq) }
            let available = min(missing, recentTrades.count, limit)
            let slice = recentTrades[(recentTrades.count - missing)...].prefix(available)
            return (Array(slice), cursor + available)
        }
    }

    /// The current trade sequence number (a new stream starts here).
    public var tradeCursor: Int { lock.withLock { tradeSeq } }

    func emit(_ e: SimPrivateEvent) {
        privateSeq += 1
        privateLog.append((privateSeq, e))
        if privateLog.count > 20_000 { privateLog.removeFirst(10_000) }
    }

    /// The current L1, if any.
    public var currentQuote: QuoteEvent? { lock.withLock { quote } }

    /// Injects a service restart: the next order-book message says `u = 1`.
    public func injectRestart() { lock.withLock { restartPending = true; bookUpdateId = 0 } }

    /// Takes the restart flag (the public stream reports it once).
    public func takeRestart() -> Bool { lock.withLock { defer { restartPending = false }; return restartPending } }

    /// The order-book update id for the next snapshot.
    public var currentBookUpdateId: Int64 { lock.withLock { bookUpdateId } }

    private func addToCandle(_ t: TradeEvent) {
        let start = minuteStart(of: t.ts)
        let value = config.instrument.price(t.price) * config.instrument.size(t.size)
        if let last = candles.last, last.start == start {
            candles[candles.count - 1] = (start, last.o, max(last.h, t.price), min(last.l, t.price), t.price, last.volume + t.size, last.turnover + value)
        } else {
            candles.append((start, t.price, t.price, t.price, t.price, t.size, value))
            if candles.count > 5_000 { candles.removeFirst(1_000) }
        }
    }

    // MARK: - Orders

    /// Why an order was refused: a Bybit retCode and message.
    public struct Rejection: Error, Sendable {
        public var retCode: Int
        public var message: String
    }

    /// Places an order (the REST handler's `order/create`).
    func place(linkId: String, side: Direction, type: String, qty: Lots, price: Ticks?, reduceOnly: Bool, timeInForce: String?) throws(Rejection) -> SimOrder {
        if let existing = orderIdsByLink[linkId], !linkId.isEmpty {
            throw Rejection(retCode: 110072, message: "OrderLinkedID is duplicate (existing orderId \(existing))")
        }
        if faults.rejectOrders { throw Rejection(retCode: 110007, message: "ab not enough for new order") }
        guard qty > 0, qty <= (type == "Market" ? config.maxMarketOrderQty : config.maxOrderQty) else {
            throw Rejection(retCode: 10001, message: "qty out of range")
        }
        if type == "Limit" && price == nil { throw Rejection(retCode: 10001, message: "price is required for a limit order") }
        var qty = qty
        if reduceOnly {
            // Reduce-only: only against the position, never beyond it.
            let reducible = side == .long ? max(0, -positionLots) : max(0, positionLots)
            guard reducible > 0 else { throw Rejection(retCode: 110017, message: "reduce-only rule not satisfied") }
            qty = min(qty, reducible)
        } else if let q = quote {
            // Margin check at 10x: notional / 10 must fit the available balance.
            let px = price ?? (side == .long ? q.askPrice : q.bidPrice)
            let notional = config.instrument.price(px) * config.instrument.size(qty)
            if notional / 10 > availableBalance() { throw Rejection(retCode: 110007, message: "ab not enough for new order") }
        }
        orderSeq += 1
        let id = String(format: "sim-%08d", orderSeq)
        var order = SimOrder(
            orderId: id, orderLinkId: linkId, side: side, orderType: type, price: price, qty: qty, status: "New",
            reduceOnly: reduceOnly, timeInForce: timeInForce ?? (type == "Market" ? "IOC" : "GTC"), createdAt: marketTime,
            updatedAt: marketTime
        )
        orderIdsByLink[linkId] = id
        emit(.order(order))
        if let q = quote {
            // Takes liquidity at once: a market order, or a limit that crosses the L1.
            let crosses = type == "Market" || (side == .long ? price! >= q.askPrice : price! <= q.bidPrice)
            if crosses { takeLiquidity(&order, q) }
        }
        if order.orderType == "Market" || order.timeInForce == "IOC" {
            if order.filled < order.qty { order.status = order.filled > 0 ? "PartiallyFilledCanceled" : "Cancelled" }
        }
        if order.filled == order.qty { order.status = "Filled" }
        orders[id] = order
        if order.status != "New" { emit(.order(order)) }
        return order
    }

    /// Fills against the L1: the top level's size at the best price, then one tick worse per further top-size
    /// chunk (a thin book behind the top), up to the limit price for a limit order.
    private func takeLiquidity(_ order: inout SimOrder, _ q: QuoteEvent) {
        let best = order.side == .long ? q.askPrice : q.bidPrice
        let depth = max(1, order.side == .long ? q.askSize : q.bidSize)
        var level: Ticks = 0
        while order.filled < order.qty {
            let price = best + level * order.side.sign
            if let limit = order.price, (price - limit) * order.side.sign > 0 { break }
            let lots = min(depth, order.qty - order.filled)
            fill(&order, price: price, lots: lots, maker: false)
            level += 1
            if level > 1_000 { break }
        }
    }

    private func matchRestingAgainstQuote() {
        guard let q = quote else { return }
        for id in orders.keys.sorted() {
            guard var o = orders[id], o.leaves > 0, o.orderType == "Limit", let limit = o.price else { continue }
            let crosses = o.side == .long ? q.askPrice <= limit : q.bidPrice >= limit
            guard crosses else { continue }
            // The book moved through a resting limit: it fills at its price as maker, up to the top size.
            fill(&o, price: limit, lots: min(o.qty - o.filled, max(1, o.side == .long ? q.askSize : q.bidSize)), maker: true)
            o.status = o.filled == o.qty ? "Filled" : "PartiallyFilled"
            orders[id] = o
            emit(.order(o))
        }
    }

    private func matchRestingAgainstTrade(_ t: TradeEvent) {
        for id in orders.keys.sorted() {
            guard var o = orders[id], o.leaves > 0, o.orderType == "Limit", let limit = o.price else { continue }
            // A trade strictly through the price fills it, up to the trade's size.
            let through = o.side == .long ? t.price < limit : t.price > limit
            guard through else { continue }
            fill(&o, price: limit, lots: min(o.qty - o.filled, t.size), maker: true)
            o.status = o.filled == o.qty ? "Filled" : "PartiallyFilled"
            orders[id] = o
            emit(.order(o))
        }
    }

    /// Records one execution: position, wallet (fee and realised P&L), streams.
    private func fill(_ o: inout SimOrder, price: Ticks, lots: Lots, maker: Bool) {
        var lots = lots
        if o.reduceOnly {
            let reducible = o.side == .long ? max(0, -positionLots) : max(0, positionLots)
            lots = min(lots, reducible)
            if lots == 0 {
                o.status = "Cancelled"
                return
            }
        }
        o.filled += lots
        o.filledTickLots += price * lots
        o.updatedAt = marketTime
        let i = config.instrument
        let fee = i.price(price) * i.size(lots) * (maker ? config.makerFeeBps : config.takerFeeBps) / 10_000
        balance -= fee
        // Position: a fill against the position realises P&L on the closed part at the average entry.
        let signed = lots * o.side.sign
        if positionLots != 0 && (positionLots > 0) != (signed > 0) {
            let closing = min(abs(signed), abs(positionLots))
            let avg = Double(positionTickLots) / Double(abs(positionLots))
            let pnl = (Double(price) - avg) * Double(positionLots.signum()) * Double(closing) * i.tick.doubleValue * i.qtyStep.doubleValue
            balance += pnl
            let remaining = abs(positionLots) - closing
            positionTickLots = remaining == 0 ? 0 : Int64((avg * Double(remaining)).rounded())
            positionLots += closing * signed.signum()
            let opening = abs(signed) - closing
            if opening > 0 {
                positionLots += opening * signed.signum()
                positionTickLots = price * opening
            }
            if positionLots == 0 {
                stopLoss = nil
                takeProfit = nil
            }
        } else {
            positionLots += signed
            positionTickLots += price * lots
        }
        execSeq += 1
        let e = SimExecution(
            execId: String(format: "exec-%010d", execSeq), orderId: o.orderId, orderLinkId: o.orderLinkId, side: o.side,
            price: price, qty: lots, fee: fee, isMaker: maker, ts: marketTime, execType: "Trade"
        )
        executions.append(e)
        if executions.count > 20_000 { executions.removeFirst(10_000) }
        emit(.execution(e))
        if faults.duplicateExecutions { emit(.execution(e)) }
        emit(.position)
        emit(.wallet)
    }

    func cancel(linkId: String?, orderId: String?) throws(Rejection) -> SimOrder {
        let id = orderId ?? linkId.flatMap { orderIdsByLink[$0] }
        guard let id, var o = orders[id], o.leaves > 0 else { throw Rejection(retCode: 110001, message: "order not exists or too late to cancel") }
        o.status = "Cancelled"
        o.updatedAt = marketTime
        orders[id] = o
        emit(.order(o))
        return o
    }

    func cancelAll() -> [SimOrder] {
        var out: [SimOrder] = []
        for id in orders.keys.sorted() {
            if let o = try? cancel(linkId: nil, orderId: id) { out.append(o) }
        }
        return out
    }

    /// The exchange-held stop: a trade at or beyond it closes the whole position at market.
    private func checkProtectiveStops(_ t: TradeEvent) {
        guard positionLots != 0, let q = quote else { return }
        let long = positionLots > 0
        let hitStop = stopLoss.map { long ? t.price <= $0 : t.price >= $0 } ?? false
        let hitTP = takeProfit.map { long ? t.price >= $0 : t.price <= $0 } ?? false
        guard hitStop || hitTP else { return }
        orderSeq += 1
        var o = SimOrder(
            orderId: String(format: "sim-%08d", orderSeq), orderLinkId: "", side: long ? .short : .long, orderType: "Market",
            price: nil, qty: abs(positionLots), status: "Triggered", reduceOnly: true, timeInForce: "IOC",
            createdAt: marketTime, updatedAt: marketTime
        )
        takeLiquidity(&o, q)
        o.status = "Filled"
        orders[o.orderId] = o
        emit(.order(o))
    }

    // MARK: - Account

    func availableBalance() -> Double {
        let i = config.instrument
        let margin = positionLots == 0 ? 0 : Double(positionTickLots) * i.tick.doubleValue * i.qtyStep.doubleValue / 10
        return equity() - margin
    }

    func equity() -> Double {
        balance + unrealised()
    }

    func unrealised() -> Double {
        guard positionLots != 0, let q = quote else { return 0 }
        let i = config.instrument
        let mark = Double(q.bidPrice + q.askPrice) / 2
        let avg = Double(positionTickLots) / Double(abs(positionLots))
        return (mark - avg) * Double(positionLots) * i.tick.doubleValue * i.qtyStep.doubleValue
    }

    /// Funding at 00:00, 08:00, 16:00 UTC of market time: the position pays `notional × rate` (longs when positive).
    private func applyFunding(upTo ts: Int64) {
        let eight: Int64 = 8 * 3_600_000
        guard let last = lastFundingBoundary else {
            lastFundingBoundary = floorDiv(ts, eight) * eight
            return
        }
        var boundary = last + eight
        while boundary <= ts {
            let rate = config.fundingRate8hBps / 10_000
            fundingHistory.append((boundary, rate))
            if positionLots != 0, let q = quote {
                let i = config.instrument
                let notional = Double(q.bidPrice + q.askPrice) / 2 * i.tick.doubleValue * i.size(abs(positionLots))
                let payment = notional * rate * Double(positionLots.signum())
                balance -= payment
                execSeq += 1
                let e = SimExecution(
                    execId: String(format: "exec-%010d", execSeq), orderId: "", orderLinkId: "", side: positionLots > 0 ? .long : .short,
                    price: (q.bidPrice + q.askPrice) / 2, qty: abs(positionLots), fee: payment, isMaker: false, ts: boundary,
                    execType: "Funding"
                )
                executions.append(e)
                emit(.execution(e))
                emit(.wallet)
            }
            lastFundingBoundary = boundary
            boundary += eight
        }
    }
}
