public import Engine
import Exchange
import Foundation

/// Bybit's `orderStatus` values, as the simulated venue moves its orders through them.
public enum SimOrderStatus: String, Sendable, Hashable {
    case new = "New"
    case partiallyFilled = "PartiallyFilled"
    case filled = "Filled"
    case cancelled = "Cancelled"
    /// A conditional order (the position's stop or target) waiting for its trigger.
    case untriggered = "Untriggered"
    case triggered = "Triggered"
    /// A conditional order removed before it triggered.
    case deactivated = "Deactivated"
}

/// Bybit's `orderType`.
public enum SimOrderType: String, Sendable, Hashable {
    case market = "Market"
    case limit = "Limit"
}

/// An order resting or done at the simulated venue.
public struct SimOrder: Sendable, Hashable {
    public var orderId: String
    public var orderLinkId: String
    public var side: Direction
    public var orderType: SimOrderType
    public var price: Ticks?
    public var qty: Lots
    public var filled: Lots = 0
    /// Sum of price × lots of the fills.
    public var filledTickLots: Int64 = 0
    public var status: SimOrderStatus
    public var reduceOnly: Bool
    public var timeInForce: String
    public var createdAt: Int64
    public var updatedAt: Int64
    /// Empty for an ordinary order; `StopLoss` / `TakeProfit` for the position's own conditional orders, which the
    /// exchange creates for `trading-stop` (with an empty `orderLinkId`).
    public var stopOrderType = ""
    /// The trigger of a conditional order.
    public var triggerPrice: Ticks?
    public var closeOnTrigger = false
    /// Why the exchange cancelled it (`""` when it did not).
    public var cancelType = ""
    /// The position's stop and target this order carries (`stopLoss`, `takeProfit` on create, `tpslMode` Full):
    /// set on the whole position when it fills, in the same matching step.
    public var attachedStopLoss: Ticks?
    public var attachedTakeProfit: Ticks?

    public var leaves: Lots { status == .new || status == .partiallyFilled ? qty - filled : 0 }
    /// `New`, `PartiallyFilled`, `Untriggered`: what `/v5/order/realtime` lists by default.
    public var isOpen: Bool { status == .new || status == .partiallyFilled || status == .untriggered }
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
    /// `Trade`, `Funding`, `AdlTrade`, `BustTrade`.
    public var execType: String
    /// Set when a conditional order (the position's stop) executed.
    public var stopOrderType = ""
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
    /// Slippage protection of market orders: they take liquidity at most this many ticks beyond the best price;
    /// what cannot fill there is cancelled (`Cancelled` with `cumExecQty` > 0), as Bybit does.
    public var marketProtectionTicks: Ticks = 200
    /// The account's margin mode at start (`GET /v5/account/info`): `REGULAR_MARGIN` (cross), `ISOLATED_MARGIN` or
    /// `PORTFOLIO_MARGIN`.
    public var marginMode = "REGULAR_MARGIN"

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
    /// Wall ms between each position opening from flat and its stop being set (0: set in the same matching step, by
    /// the opening order's attached stop), the soak's measure of time without protection (`make chaos`).
    public internal(set) var protectionDelaysMs: [Int64] = []
    private var openedUnprotectedAtWall: Int64?
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
    /// Replies held by the hung-reply fault (`holdCreateRepliesCount`).
    var heldReplies: [ReplyHold] = []
    /// Held replies not yet sent.
    public var pendingHeldReplies: Int { heldReplies.filter(\.isPending).count }
    /// Set when a restart was injected: the next order-book message carries `u = 1`.
    public internal(set) var restartPending = false
    /// Order-book update id.
    var bookUpdateId: Int64 = 0
    /// Raised to drop every open WebSocket once.
    public internal(set) var webSocketDropGeneration = 0
    /// Raised to drop the private WebSockets once.
    public internal(set) var privateDropGeneration = 0
    /// The account's position mode: one-way (`positionIdx` 0) unless switched to hedge mode (`/sim/account`).
    public internal(set) var hedgeMode = false
    /// The account's margin mode as `GET /v5/account/info` names it: cross (`REGULAR_MARGIN`) unless switched
    /// (`/sim/account`) or configured.
    public internal(set) var marginMode = "REGULAR_MARGIN"

    public init(config: SimVenueConfig = SimVenueConfig()) {
        self.config = config
        balance = config.initialBalance
        marginMode = config.marginMode
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
    public func injectRestart() {
        lock.withLock {
            restartPending = true; bookUpdateId = 0
        }
    }

    /// Takes the restart flag (the public stream reports it once).
    public func takeRestart() -> Bool {
        lock.withLock {
            defer { restartPending = false }; return restartPending
        }
    }

    /// The order-book update id for the next snapshot.
    public var currentBookUpdateId: Int64 { lock.withLock { bookUpdateId } }

    private func addToCandle(_ t: TradeEvent) {
        let start = minuteStart(of: t.ts)
        let value = config.instrument.price(t.price) * config.instrument.size(t.size)
        if let last = candles.last, last.start == start {
            candles[candles.count - 1] = (
                start, last.o, max(last.h, t.price), min(last.l, t.price), t.price, last.volume + t.size,
                last.turnover + value
            )
        } else {
            // Bybit lists a candle for every minute: one without trades is flat at the previous close.
            if let last = candles.last {
                var m = last.start + 60_000
                while m < start {
                    candles.append((m, last.c, last.c, last.c, last.c, 0, 0))
                    m += 60_000
                }
            }
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
    func place(
        linkId: String, side: Direction, type: SimOrderType, qty: Lots, price: Ticks?, reduceOnly: Bool,
        timeInForce: String?, stopLoss sl: Ticks? = nil, takeProfit tp: Ticks? = nil
    ) throws(Rejection) -> SimOrder {
        if let existing = orderIdsByLink[linkId], !linkId.isEmpty {
            throw Rejection(retCode: 110072, message: "OrderLinkedID is duplicate (existing orderId \(existing))")
        }
        if faults.rejectOrders { throw Rejection(retCode: 110007, message: "ab not enough for new order") }
        guard qty > 0, qty <= (type == .market ? config.maxMarketOrderQty : config.maxOrderQty) else {
            throw Rejection(retCode: 10001, message: "qty out of range")
        }
        if type == .limit && price == nil {
            throw Rejection(retCode: 10001, message: "price is required for a limit order")
        }
        // An attached stop or target must lie on the protective side of the base price (the limit price, else the
        // last trade), as Bybit checks at creation: a Buy's stop below it and its target above, a Sell's the reverse.
        if sl != nil || tp != nil,
            let base = price ?? recentTrades.last?.price ?? quote.map({ side == .long ? $0.askPrice : $0.bidPrice })
        {
            for (name, level, below) in [("StopLoss", sl, side == .long), ("TakeProfit", tp, side != .long)] {
                guard let level, below ? level >= base : level <= base else { continue }
                let i = config.instrument
                func text(_ t: Ticks) -> String { formatScaled(t * i.tick.mantissa, scale: i.tick.scale) }
                throw Rejection(
                    retCode: 10001,
                    message:
                        "\(name):\(text(level)) set for \(side == .long ? "Buy" : "Sell") position should be "
                        + "\(below ? "lower" : "higher") than base_price:\(text(base))??LastPrice")
            }
        }
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
            if notional / 10 > availableBalance() {
                throw Rejection(retCode: 110007, message: "ab not enough for new order")
            }
        }
        orderSeq += 1
        let id = String(format: "sim-%08d", orderSeq)
        var order = SimOrder(
            orderId: id, orderLinkId: linkId, side: side, orderType: type, price: price, qty: qty, status: .new,
            reduceOnly: reduceOnly, timeInForce: timeInForce ?? (type == .market ? "IOC" : "GTC"),
            createdAt: marketTime,
            updatedAt: marketTime
        )
        order.attachedStopLoss = sl
        order.attachedTakeProfit = tp
        orderIdsByLink[linkId] = id
        emit(.order(order))
        if let q = quote {
            // Takes liquidity at once: a market order, or a limit that crosses the L1.
            let crosses = type == .market || (side == .long ? price! >= q.askPrice : price! <= q.bidPrice)
            if crosses { takeLiquidity(&order, q) }
        }
        if order.orderType == .market || order.timeInForce == "IOC" {
            // On derivatives an IOC order that could not fill in full ends `Cancelled`, with or without fills
            // (`PartiallyFilledCanceled` is spot only).
            if order.filled < order.qty {
                order.status = .cancelled
                order.cancelType = "CancelByProtection"
            }
        }
        if order.filled == order.qty { order.status = .filled }
        orders[id] = order
        if order.status != .new { emit(.order(order)) }
        return order
    }

    /// Fills against the L1: the top level's size at the best price, then one tick worse per further top-size
    /// chunk (a thin book behind the top), up to the limit price for a limit order and within the slippage
    /// protection for a market order. The `thinBookLots` fault caps what the whole book holds for one order.
    private func takeLiquidity(_ order: inout SimOrder, _ q: QuoteEvent) {
        let best = order.side == .long ? q.askPrice : q.bidPrice
        let depth = max(1, order.side == .long ? q.askSize : q.bidSize)
        var available = faults.thinBookLots.map { max(0, $0) } ?? Lots.max
        if faults.thinBookLots != nil && faults.thinBookCount > 0 {
            faults.thinBookCount -= 1
            if faults.thinBookCount == 0 { faults.thinBookLots = nil }
        }
        var level: Ticks = 0
        while order.filled < order.qty && available > 0 {
            let price = best + level * order.side.sign
            if let limit = order.price, (price - limit) * order.side.sign > 0 { break }
            if order.price == nil && level > config.marketProtectionTicks { break }
            let lots = min(depth, order.qty - order.filled, available)
            let before = order.filled
            fill(&order, price: price, lots: lots, maker: false)
            if order.filled == before { break }
            available -= order.filled - before
            level += 1
            if level > 1_000 { break }
        }
    }

    private func matchRestingAgainstQuote() {
        guard let q = quote else { return }
        for id in orders.keys.sorted() {
            guard var o = orders[id], o.leaves > 0, o.orderType == .limit, let limit = o.price else { continue }
            let crosses = o.side == .long ? q.askPrice <= limit : q.bidPrice >= limit
            guard crosses else { continue }
            // The book moved through a resting limit: it fills at its price as maker, up to the top size.
            fill(
                &o, price: limit, lots: min(o.qty - o.filled, max(1, o.side == .long ? q.askSize : q.bidSize)),
                maker: true)
            o.status = o.filled == o.qty ? .filled : .partiallyFilled
            orders[id] = o
            emit(.order(o))
        }
    }

    private func matchRestingAgainstTrade(_ t: TradeEvent) {
        for id in orders.keys.sorted() {
            guard var o = orders[id], o.leaves > 0, o.orderType == .limit, let limit = o.price else { continue }
            // A trade strictly through the price fills it, up to the trade's size.
            let through = o.side == .long ? t.price < limit : t.price > limit
            guard through else { continue }
            fill(&o, price: limit, lots: min(o.qty - o.filled, t.size), maker: true)
            o.status = o.filled == o.qty ? .filled : .partiallyFilled
            orders[id] = o
            emit(.order(o))
        }
    }

    /// Records one execution: position, wallet (fee and realised P&L), streams.
    private func fill(_ o: inout SimOrder, price: Ticks, lots: Lots, maker: Bool, execType: String = "Trade") {
        var lots = lots
        if o.reduceOnly {
            let reducible = o.side == .long ? max(0, -positionLots) : max(0, positionLots)
            lots = min(lots, reducible)
            if lots == 0 {
                o.status = .cancelled
                return
            }
        }
        o.filled += lots
        o.filledTickLots += price * lots
        o.updatedAt = marketTime
        let i = config.instrument
        // ADL closes at the bankruptcy price without a fee; everything else pays the maker or taker rate.
        let fee =
            execType == "AdlTrade"
            ? 0 : i.price(price) * i.size(lots) * (maker ? config.makerFeeBps : config.takerFeeBps) / 10_000
        balance -= fee
        let wasFlat = positionLots == 0
        // Position: a fill against the position realises P&L on the closed part at the average entry.
        let signed = lots * o.side.sign
        if positionLots != 0 && (positionLots > 0) != (signed > 0) {
            let closing = min(abs(signed), abs(positionLots))
            let avg = Double(positionTickLots) / Double(abs(positionLots))
            let pnl =
                (Double(price) - avg) * Double(positionLots.signum()) * Double(closing) * i.tick.doubleValue
                * i.qtyStep.doubleValue
            balance += pnl
            let remaining = abs(positionLots) - closing
            positionTickLots = remaining == 0 ? 0 : Int64((avg * Double(remaining)).rounded())
            positionLots += closing * signed.signum()
            let opening = abs(signed) - closing
            if opening > 0 {
                positionLots += opening * signed.signum()
                positionTickLots = price * opening
            }
            if positionLots == 0 { positionClosed() }
        } else {
            positionLots += signed
            positionTickLots += price * lots
        }
        execSeq += 1
        let e = SimExecution(
            execId: String(format: "exec-%010d", execSeq), orderId: o.orderId, orderLinkId: o.orderLinkId, side: o.side,
            price: price, qty: lots, fee: fee, isMaker: maker, ts: marketTime, execType: execType,
            stopOrderType: o.stopOrderType
        )
        executions.append(e)
        if executions.count > 20_000 { executions.removeFirst(10_000) }
        emit(.execution(e))
        if faults.duplicateExecutions { emit(.execution(e)) }
        // The order's attached stop and target now hold the whole position (Full mode), in this matching step.
        if o.attachedStopLoss != nil || o.attachedTakeProfit != nil, positionLots * o.side.sign > 0 {
            let sl = o.attachedStopLoss ?? stopLoss
            let tp = o.attachedTakeProfit ?? takeProfit
            if !setPositionLevels(stopLoss: sl, takeProfit: tp) {
                // Same levels: the conditional orders follow the grown position.
                updateConditional("StopLoss", trigger: sl)
                updateConditional("TakeProfit", trigger: tp)
            }
        }
        if wasFlat && positionLots != 0 {
            if stopLoss != nil {
                protectionDelaysMs.append(0)
            } else {
                openedUnprotectedAtWall = wallClockMillis()
            }
        }
        emit(.position)
        emit(.wallet)
    }

    func cancel(linkId: String?, orderId: String?) throws(Rejection) -> SimOrder {
        let id = orderId ?? linkId.flatMap { orderIdsByLink[$0] }
        guard let id, var o = orders[id], o.leaves > 0, o.stopOrderType.isEmpty else {
            throw Rejection(retCode: 110001, message: "order not exists or too late to cancel")
        }
        o.status = .cancelled
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

    // MARK: - The position's own stop and target (trading-stop)

    /// `trading-stop` in Full mode: the exchange keeps one conditional order per level (`StopLoss`, `TakeProfit`)
    /// with an empty `orderLinkId`, `Untriggered` until a trade reaches it; `nil` removes it (`Deactivated`).
    /// Returns false when nothing changed (the exchange answers 34040).
    func setPositionLevels(stopLoss sl: Ticks?, takeProfit tp: Ticks?) -> Bool {
        guard sl != stopLoss || tp != takeProfit else { return false }
        if sl != nil, let since = openedUnprotectedAtWall {
            protectionDelaysMs.append(wallClockMillis() - since)
            openedUnprotectedAtWall = nil
        }
        stopLoss = sl
        takeProfit = tp
        updateConditional("StopLoss", trigger: sl)
        updateConditional("TakeProfit", trigger: tp)
        emit(.position)
        return true
    }

    private func conditional(_ type: String) -> String? {
        orders.values.first { $0.stopOrderType == type && $0.status == .untriggered }?.orderId
    }

    private func updateConditional(_ type: String, trigger: Ticks?) {
        let existing = conditional(type)
        if let id = existing, var o = orders[id] {
            if let trigger {
                guard o.triggerPrice != trigger || o.qty != abs(positionLots) else { return }
                o.triggerPrice = trigger
                o.qty = abs(positionLots)
            } else {
                o.status = .deactivated
            }
            o.updatedAt = marketTime
            orders[id] = o
            emit(.order(o))
            return
        }
        guard let trigger, positionLots != 0 else { return }
        orderSeq += 1
        let o = SimOrder(
            orderId: String(format: "sim-%08d", orderSeq), orderLinkId: "", side: positionLots > 0 ? .short : .long,
            orderType: .market, price: nil, qty: abs(positionLots), status: .untriggered, reduceOnly: true,
            timeInForce: "IOC", createdAt: marketTime, updatedAt: marketTime, stopOrderType: type,
            triggerPrice: trigger,
            closeOnTrigger: true
        )
        orders[o.orderId] = o
        emit(.order(o))
    }

    /// The position is flat: its conditional orders are deactivated and its levels cleared.
    private func positionClosed() {
        if let since = openedUnprotectedAtWall {
            // Closed before any stop was set: unprotected all along.
            protectionDelaysMs.append(wallClockMillis() - since)
            openedUnprotectedAtWall = nil
        }
        stopLoss = nil
        takeProfit = nil
        for id in orders.keys.sorted() {
            guard var o = orders[id], !o.stopOrderType.isEmpty, o.status == .untriggered else { continue }
            o.status = .deactivated
            o.updatedAt = marketTime
            orders[id] = o
            emit(.order(o))
        }
    }

    /// The position's conditional orders: a trade at or beyond a trigger fires it (`Triggered`), it closes the whole
    /// position at market (executions with its `orderId`, its `stopOrderType` and an empty `orderLinkId`), then
    /// `Filled`.
    private func checkProtectiveStops(_ t: TradeEvent) {
        guard positionLots != 0, let q = quote else { return }
        let long = positionLots > 0
        for id in orders.keys.sorted() {
            guard var o = orders[id], !o.stopOrderType.isEmpty, o.status == .untriggered, let trigger = o.triggerPrice
            else { continue }
            let isStop = o.stopOrderType == "StopLoss"
            let hit =
                isStop
                ? (long ? t.price <= trigger : t.price >= trigger) : (long ? t.price >= trigger : t.price <= trigger)
            guard hit, positionLots != 0 else { continue }
            o.status = .triggered
            o.qty = abs(positionLots)
            o.side = long ? .short : .long
            o.updatedAt = marketTime
            orders[id] = o
            emit(.order(o))
            takeLiquidity(&o, q)
            o.status = o.filled == o.qty ? .filled : .cancelled
            orders[id] = o
            emit(.order(o))
            // One level fires per trade; what the protection band could not close stays open with its levels.
            break
        }
    }

    // MARK: - Events the account did not order

    /// Auto-deleveraging (`AdlTrade`) or liquidation (`BustTrade`): the exchange closes `lots` of the position at
    /// the mark, reported only as executions (empty `orderLinkId`) and position and wallet updates.
    /// Returns the execution, or nil when flat.
    public func forceClose(lots: Lots?, execType: String) -> SimExecution? {
        lock.withLock { forceCloseLocked(lots: lots, execType: execType) }
    }

    func forceCloseLocked(lots: Lots?, execType: String) -> SimExecution? {
        guard positionLots != 0, let q = quote else { return nil }
        let qty = min(abs(positionLots), max(1, lots ?? abs(positionLots)))
        orderSeq += 1
        var o = SimOrder(
            orderId: String(format: "sim-%08d", orderSeq), orderLinkId: "", side: positionLots > 0 ? .short : .long,
            orderType: .market, price: nil, qty: qty, status: .filled, reduceOnly: true, timeInForce: "IOC",
            createdAt: marketTime, updatedAt: marketTime
        )
        fill(&o, price: (q.bidPrice + q.askPrice) / 2, lots: qty, maker: false, execType: execType)
        orders[o.orderId] = o
        return executions.last
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
                    execId: String(format: "exec-%010d", execSeq), orderId: "", orderLinkId: "",
                    side: positionLots > 0 ? .long : .short,
                    price: (q.bidPrice + q.askPrice) / 2, qty: abs(positionLots), fee: payment, isMaker: false,
                    ts: boundary,
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
