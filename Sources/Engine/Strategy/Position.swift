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
    public var stopTwice: Int64
    public var tp1Twice: Int64?
    public var tp2Twice: Int64?
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
}

/// One finished round trip (SPEC §12).
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
    /// Gross minus fees minus funding.
    public var netPnL: Double { grossPnL - fees - funding }
}
