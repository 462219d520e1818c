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

/// The parameters of signals, sizing, risk, execution and the backtest (docs/SPEC.md §8–§12). Their defaults have one
/// home, the configuration schema (`ConfigSchema` in AgentConfig, `StrategyConfig.defaults`); every value here comes
/// from a resolved configuration.
public struct StrategyConfig: Sendable, Hashable, Codable {
    // §8
    public var acceptOutsideK: Int
    public var stopBufferTicks: Int64
    public var enableRetestMode: Bool
    public var retestTimeoutMinutes: Int
    public var enableFlipOnSignal: Bool
    public var warmupMinutes: Int
    // §9
    public var qimbSignal: QimbSignal
    public var useQimb: Bool
    public var ambiguousTradeFracMax: Double
    public var entry: ConfirmationThresholds
    public var breakout: ConfirmationThresholds
    /// Stated for the reversal's direction: a failed-breakout short needs OF at or below these.
    public var fail: ConfirmationThresholds
    // §11
    public var riskPct: Double
    public var maxLeverage: Double
    public var tp1Pct: Double
    public var moveStopToBreakevenAfterTP1: Bool
    /// The original's kill switch (docs/SPEC.md §11): the UTC day's realised loss (fees and funding included), in
    /// USDT, at which new entries stop until 00:00 UTC; the open position keeps its exits. nil: off.
    public var maxDailyLoss: Double?
    /// The halting kill switch: the day's loss with unrealised P&L over the equity at 00:00 UTC at which the
    /// position is closed and trading halts until the operator resets it. nil: off.
    public var maxDailyLossPct: Double?
    public var cooldownMinutes: Int
    public var maxHoldMinutes: Int
    public var extendIfProfitable: Bool
    public var staleFeedSeconds: Int
    // §10
    public var useLimitForEntry: Bool
    public var limitOrderTimeoutMinutes: Int
    public var takerFeeBps: Double
    public var makerFeeBps: Double
    // backtest
    public var initialEquity: Double
    public var entrySlippageTicks: Int64
    public var exitSlippageTicks: Int64
    public var fundingRate8hBps: Double

    public init(
        acceptOutsideK: Int,
        stopBufferTicks: Int64,
        enableRetestMode: Bool,
        retestTimeoutMinutes: Int,
        enableFlipOnSignal: Bool,
        warmupMinutes: Int,
        qimbSignal: QimbSignal,
        useQimb: Bool,
        ambiguousTradeFracMax: Double,
        entry: ConfirmationThresholds,
        breakout: ConfirmationThresholds,
        fail: ConfirmationThresholds,
        riskPct: Double,
        maxLeverage: Double,
        tp1Pct: Double,
        moveStopToBreakevenAfterTP1: Bool,
        maxDailyLoss: Double?,
        maxDailyLossPct: Double?,
        cooldownMinutes: Int,
        maxHoldMinutes: Int,
        extendIfProfitable: Bool,
        staleFeedSeconds: Int,
        useLimitForEntry: Bool,
        limitOrderTimeoutMinutes: Int,
        takerFeeBps: Double,
        makerFeeBps: Double,
        initialEquity: Double,
        entrySlippageTicks: Int64,
        exitSlippageTicks: Int64,
        fundingRate8hBps: Double
    ) {
        self.acceptOutsideK = acceptOutsideK
        self.stopBufferTicks = stopBufferTicks
        self.enableRetestMode = enableRetestMode
        self.retestTimeoutMinutes = retestTimeoutMinutes
        self.enableFlipOnSignal = enableFlipOnSignal
        self.warmupMinutes = warmupMinutes
        self.qimbSignal = qimbSignal
        self.useQimb = useQimb
        self.ambiguousTradeFracMax = ambiguousTradeFracMax
        self.entry = entry
        self.breakout = breakout
        self.fail = fail
        self.riskPct = riskPct
        self.maxLeverage = maxLeverage
        self.tp1Pct = tp1Pct
        self.moveStopToBreakevenAfterTP1 = moveStopToBreakevenAfterTP1
        self.maxDailyLoss = maxDailyLoss
        self.maxDailyLossPct = maxDailyLossPct
        self.cooldownMinutes = cooldownMinutes
        self.maxHoldMinutes = maxHoldMinutes
        self.extendIfProfitable = extendIfProfitable
        self.staleFeedSeconds = staleFeedSeconds
        self.useLimitForEntry = useLimitForEntry
        self.limitOrderTimeoutMinutes = limitOrderTimeoutMinutes
        self.takerFeeBps = takerFeeBps
        self.makerFeeBps = makerFeeBps
        self.initialEquity = initialEquity
        self.entrySlippageTicks = entrySlippageTicks
        self.exitSlippageTicks = exitSlippageTicks
        self.fundingRate8hBps = fundingRate8hBps
    }
}
