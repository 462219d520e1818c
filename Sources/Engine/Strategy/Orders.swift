/// The three setups of docs/SPEC.md §8.
public enum Setup: String, Sendable, Hashable, Codable, CaseIterable {
    case breakIn = "breakin"
    case failedBreakout = "failbreak"
    case breakout = "breakout"
}

/// Why a position (or part of it) was closed.
public enum ExitReason: String, Sendable, Hashable, Codable {
    case stop, tp1, tp2
    case timeStop = "time_stop"
    case closeInside = "close_inside"
    case flip
    case killSwitch = "kill_switch"
    case flatten
    case endOfData = "end_of_data"
    /// The exchange closed part of the position itself: auto-deleveraging, liquidation, delivery or settlement
    /// (live only; the backtest never produces them).
    case adl
    case liquidation
    case delivery
}

/// What an order is for.
public enum OrderPurpose: Sendable, Hashable, Codable {
    case entry(Setup)
    case exit(ExitReason)

    public var isEntry: Bool { if case .entry = self { true } else { false } }

    /// `entry:breakin`, `exit:stop`, ...
    public var label: String {
        switch self {
        case .entry(let s): "entry:\(s.rawValue)"
        case .exit(let r): "exit:\(r.rawValue)"
        }
    }
}

/// Market, or limit at a price in ticks.
public enum OrderType: Sendable, Hashable, Codable {
    case market
    case limit(Ticks)
}

/// An order the Engine wants on the venue. Its `id` is deterministic (it becomes Bybit's `orderLinkId`), so a
/// retry or a restart can never place it twice.
public struct OrderIntent: Sendable, Hashable, Codable {
    public var id: String
    /// `.long` buys, `.short` sells.
    public var side: Direction
    public var qty: Lots
    public var type: OrderType
    public var reduceOnly: Bool
    public var purpose: OrderPurpose
    /// When the Engine decided it.
    public var decisionTs: Millis
    /// An entry's initial stop (whole ticks), which a venue that can attach it sends with the order (Bybit's
    /// `stopLoss` on create), so that a fill is protected by the exchange in the same matching step. nil for exits
    /// and for an entry that flips a position (whose stop is set once the old one is closed).
    public var stopLoss: Ticks?

    public init(
        id: String, side: Direction, qty: Lots, type: OrderType, reduceOnly: Bool, purpose: OrderPurpose,
        decisionTs: Millis, stopLoss: Ticks? = nil
    ) {
        self.id = id
        self.side = side
        self.qty = qty
        self.type = type
        self.reduceOnly = reduceOnly
        self.purpose = purpose
        self.decisionTs = decisionTs
        self.stopLoss = stopLoss
    }
}

/// What the Engine asks of the venue.
public enum OrderAction: Sendable, Hashable {
    case submit(OrderIntent)
    case cancel(id: String)
}

/// Maker or taker.
public enum Liquidity: String, Sendable, Hashable, Codable {
    case maker, taker
}

/// An execution reported by the venue.
public struct Fill: Sendable, Hashable, Codable {
    public var orderId: String
    public var side: Direction
    public var qty: Lots
    public var price: Ticks
    public var ts: Millis
    public var decisionTs: Millis
    public var liquidity: Liquidity
    /// Fee in quote currency (negative is a rebate).
    public var fee: Double
    public var purpose: OrderPurpose
    /// `bid + ask` of the quote the fill was measured against, for the spread paid.
    public var referenceMidTwice: HalfTicks?

    public init(
        orderId: String, side: Direction, qty: Lots, price: Ticks, ts: Millis, decisionTs: Millis, liquidity: Liquidity,
        fee: Double, purpose: OrderPurpose, referenceMidTwice: HalfTicks?
    ) {
        self.orderId = orderId
        self.side = side
        self.qty = qty
        self.price = price
        self.ts = ts
        self.decisionTs = decisionTs
        self.liquidity = liquidity
        self.fee = fee
        self.purpose = purpose
        self.referenceMidTwice = referenceMidTwice
    }
}

/// An alert the Engine raises for the operator. Its wording is written here, once; the agent adds its own alerts
/// (the Daemon's `Alert`) and passes these on unchanged.
public struct EngineAlert: Sendable, Hashable, Codable {
    /// The raw values are the strings written to the outputs (metrics.json counts, the agent's alerts table).
    public enum Kind: String, Sendable, Hashable, Codable, CaseIterable {
        case killSwitch = "kill_switch"
        case leverageCapHit = "leverage_cap_hit"
        case dailyLossLimit = "daily_loss_limit"
        case dailyLossLimitLifted = "daily_loss_limit_lifted"
    }

    public var ts: Millis
    public var kind: Kind
    public var message: String

    /// The day's loss reached `max_daily_loss_pct` of the equity at 00:00 UTC (docs/SPEC.md §11).
    public static func killSwitch(ts: Millis, dayPnL: Double, maxDailyLossPct: Double, dayStartEquity: Double)
        -> EngineAlert
    {
        let limit = maxDailyLossPct * dayStartEquity
        return EngineAlert(
            ts: ts, kind: .killSwitch,
            message: "day P&L \(money(dayPnL)) USDT reached the daily loss limit of "
                + "\(money(-limit)) USDT (\(formatNumber(maxDailyLossPct * 100))% of \(money(dayStartEquity)) USDT); position closed, trading halted"
        )
    }

    /// The UTC day's realised P&L reached `risk.max_daily_loss` (docs/SPEC.md §11): no new entry until 00:00 UTC.
    public static func dailyLossLimit(ts: Millis, realized: Double, limit: Double) -> EngineAlert {
        EngineAlert(
            ts: ts, kind: .dailyLossLimit,
            message: "realised P&L today \(money(realized)) USDT (fees and funding included) reached the daily loss "
                + "limit of \(money(-limit)) USDT; no new entries until 00:00 UTC, the open position keeps its exits")
    }

    /// 00:00 UTC lifted the daily loss limit.
    public static func dailyLossLimitLifted(ts: Millis) -> EngineAlert {
        EngineAlert(
            ts: ts, kind: .dailyLossLimitLifted,
            message: "a new UTC day: the daily loss limit is lifted, entries allowed")
    }

    /// An entry's risk-based size was cut to `max_leverage` (docs/SPEC.md §11).
    public static func leverageCapHit(ts: Millis, setup: Setup, direction: Direction, maxLeverage: Double)
        -> EngineAlert
    {
        EngineAlert(
            ts: ts, kind: .leverageCapHit,
            message: "\(setup.rawValue) \(direction): size capped at \(formatNumber(maxLeverage))x leverage")
    }
}
