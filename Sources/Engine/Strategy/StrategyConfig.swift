/// Order-flow thresholds of one setup, stated for a long (docs/SPEC.md §9; shorts mirror them).
public struct ConfirmationThresholds: Sendable, Hashable, Codable {
    /// `of_1m` above this (BTC).
    public var ofMin: Double
    /// or `of_norm_1m` above this.
    public var ofMinNorm: Double
    /// or quote imbalance above this.
    public var qimbMin: Double

    public init(ofMin: Double, ofMinNorm: Double, qimbMin: Double) {
        self.ofMin = ofMin
        self.ofMinNorm = ofMinNorm
        self.qimbMin = qimbMin
    }
}

/// Which quote imbalance confirms a setup.
public enum QimbSignal: String, Sendable, Hashable, Codable {
    case ema, close
}

/// The parameters of signals, sizing, risk, execution and the backtest (docs/SPEC.md §8–§12). Defaults are the spec's, and
/// docs/FEATURES.md lists those the spec leaves open.
public struct StrategyConfig: Sendable, Hashable, Codable {
    // §8
    public var acceptOutsideK = 3
    public var stopBufferTicks: Int64 = 2
    public var enableRetestMode = true
    public var retestTimeoutMinutes = 30
    public var enableFlipOnSignal = true
    public var warmupMinutes = 240
    // §9
    public var qimbSignal: QimbSignal = .ema
    public var useQimb = true
    public var ambiguousTradeFracMax = 0.35
    public var entry = ConfirmationThresholds(ofMin: 0, ofMinNorm: 0.1, qimbMin: 0.1)
    public var breakout = ConfirmationThresholds(ofMin: 0, ofMinNorm: 0.1, qimbMin: 0.1)
    /// Stated for the reversal's direction: a failed-breakout short needs OF at or below these.
    public var fail = ConfirmationThresholds(ofMin: 0, ofMinNorm: -0.1, qimbMin: -0.1)
    // §11
    public var riskPct = 0.02
    public var maxLeverage = 10.0
    public var tp1Pct = 0.3
    public var moveStopToBreakevenAfterTP1 = true
    /// The original's kill switch (docs/SPEC.md §11): the UTC day's realised loss (fees and funding included), in
    /// USDT, at which new entries stop until 00:00 UTC; the open position keeps its exits. nil: off.
    public var maxDailyLoss: Double?
    /// The halting kill switch: the day's loss with unrealised P&L over the equity at 00:00 UTC at which the
    /// position is closed and trading halts until the operator resets it. nil: off.
    public var maxDailyLossPct: Double?
    public var cooldownMinutes = 3
    public var maxHoldMinutes = 60
    public var extendIfProfitable = true
    public var staleFeedSeconds = 10
    // §10
    public var useLimitForEntry = true
    public var limitOrderTimeoutMinutes = 1
    public var takerFeeBps = 5.5
    public var makerFeeBps = 2.0
    // backtest
    public var initialEquity = 10_000.0
    public var entrySlippageTicks: Int64 = 1
    public var exitSlippageTicks: Int64 = 1
    public var fundingRate8hBps = 1.0

    public init() {}
}
