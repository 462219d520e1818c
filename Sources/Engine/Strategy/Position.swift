/// The open position and the plan it was entered with. Levels are kept in half ticks (`2 × ticks`) because the
/// POC, a target, is the middle of a bin.
public struct Position: Sendable, Hashable, Codable {
    public var direction: Direction
    public var setup: Setup
    /// Open quantity.
    public var qty: Lots
    /// Quantity at entry.
    public var entryQty: Lots
    public var entryPrice: Ticks
    public var entryTs: Millis
    public var entryDecisionTs: Millis
    public var stopTwice: HalfTicks
    public var tp1Twice: HalfTicks?
    public var tp2Twice: HalfTicks?
    /// Lots to close at TP1 (nil: a one-step position, or a breakout).
    public var tp1Lots: Lots?
    /// The breakout's locked level, for the close-inside exit.
    public var breakoutLevel: Ticks?
    public var tp1Triggered = false
    public var tp1Done = false
    /// The first minute close after the entry fill starts the time stop's clock.
    public var holdStartTs: Millis?
    /// A whole-position exit order is working.
    public var closing = false
    // Accounting of the round trip.
    public var fees = 0.0
    public var funding = 0.0
    public var grossPnL = 0.0
    /// `sum(price ticks × lots)` of the exits: the mean exit price, exactly.
    public var exitTickLots: Int64 = 0
    public var exitedQty: Lots = 0
    public var exitReasons: [ExitReason] = []
    public var lastExitTs: Millis = 0
    /// The stop at entry (before any move to breakeven); nil in positions restored from before it was kept.
    public var initialStopTwice: HalfTicks?
    /// How the entry was sized (docs/SPEC.md §11), for the audit columns of trades.csv.
    public var entrySizing: EntrySizing?
}

/// How an entry was sized (docs/SPEC.md §11): `risk = available_margin × risk_pct`, `qty = risk / |entry − stop|`, capped at
/// `available_margin × max_leverage` of notional.
public struct EntrySizing: Sendable, Hashable, Codable {
    public var availableMargin: Double
    public var risk: Double
    /// The leverage cap, not the risk, set the size.
    public var leverageCapHit: Bool

    public init(availableMargin: Double, risk: Double, leverageCapHit: Bool) {
        self.availableMargin = availableMargin
        self.risk = risk
        self.leverageCapHit = leverageCapHit
    }
}

/// One finished round trip (docs/SPEC.md §12).
public struct RoundTrip: Sendable, Hashable, Codable {
    public var setup: Setup
    public var direction: Direction
    public var entryTs: Millis
    public var entryPrice: Ticks
    public var qty: Lots
    public var exitTs: Millis
    /// `sum(price ticks × lots)` of the exits; the mean exit price is this over `qty`.
    public var exitTickLots: Int64
    /// Every reason a part was closed for, in order (`tp1+stop`).
    public var exitReasons: [ExitReason]
    public var fees: Double
    public var funding: Double
    public var grossPnL: Double
    /// The plan, for auditing the trade: the stop at entry, the targets, the stop when it ended (after a move to
    /// breakeven) and how it was sized. nil where not known (positions from older snapshots, no target).
    public var initialStopTwice: HalfTicks? = nil
    public var tp1Twice: HalfTicks? = nil
    public var tp2Twice: HalfTicks? = nil
    public var exitStopTwice: HalfTicks? = nil
    public var entrySizing: EntrySizing? = nil
    /// Gross minus fees minus funding.
    public var netPnL: Double { grossPnL - fees - funding }
}
