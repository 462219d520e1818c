/// Where the sign of a trade comes from (docs/SPEC.md §3).
public enum SideSource: String, Sendable, Hashable, CaseIterable {
    /// The feed's taker side where every trade of a print carries one, else the inferred side.
    case auto
    /// Always the quote rule with tick-rule fallback.
    case inferred
    /// Always the feed's taker side; a trade without one counts as unsigned.
    case exchange
}

/// How a minute's order flow (`of_1m`) is measured (docs/SPEC.md §3).
public enum OrderFlowMethod: String, Sendable, Hashable, CaseIterable {
    /// Each print signed by the quote rule (tick-rule fallback) or the feed's side: the default.
    case quoteRule = "quote_rule"
    /// Bulk volume classification from the bar alone: the original's manual fallback (its §5.9), never engaged by
    /// itself.
    case bvc
}

/// The parameters of the feature pipeline (docs/SPEC.md §1–§7). Their defaults have one home, the configuration schema
/// (`ConfigSchema` in AgentConfig, `FeatureConfig.defaults`); every value here comes from a resolved configuration.
public struct FeatureConfig: Sendable, Hashable {
    /// Bars in the rolling profile window, the current one included.
    public var rollingWindowMinutes: Int
    /// Share of the window's volume the value area covers.
    public var vaFraction: Double
    /// Bins with volume needed for a valid value area.
    public var minVABins: Int
    /// Largest share of the window's minutes with missing data (a recorded gap) for a valid value area.
    public var maxMissingShare: Double
    /// Bin width as a multiple of `mid * sigma_240` (docs/FEATURES.md).
    public var alphaBin: Double
    /// Width of the base histogram's bins in ticks; aggregated widths are multiples of it.
    public var baseBinTicks: Int64
    /// Largest bin width in ticks; a multiple of `baseBinTicks`.
    public var binWidthMaxTicks: Int64
    /// Relative change of the computed width that replaces the applied one.
    public var rebucketChangePct: Double
    /// The applied width is also replaced on every minute divisible by this.
    public var rebucketIntervalMinutes: Int
    /// A print aligned to an older quote than this counts as `stale_aligned`.
    public var maxQuoteStalenessMs: Millis
    /// Ambiguous prints take the tick-rule sign.
    public var useTickRuleFallback: Bool
    /// Which side signs the order flow.
    public var sideSource: SideSource
    /// Time constant of the quote-imbalance EMA in seconds.
    public var qimbEmaSpanSeconds: Double
    /// How `of_1m` is measured.
    public var orderFlowMethod: OrderFlowMethod
    /// BVC: close-to-close changes in the standard deviation.
    public var bvcLookbackMinutes: Int
    /// Live: a minute closes when the clock passes its end by this much.
    public var closeGraceMs: Millis

    /// Bars in the spread average (`spread_avg_60m`).
    public static let spreadAverageMinutes = 60
    /// Returns in the volatility estimate (`sigma_240`).
    public static let sigmaReturns = 240

    public init(
        rollingWindowMinutes: Int,
        vaFraction: Double,
        minVABins: Int,
        maxMissingShare: Double,
        alphaBin: Double,
        baseBinTicks: Int64,
        binWidthMaxTicks: Int64,
        rebucketChangePct: Double,
        rebucketIntervalMinutes: Int,
        maxQuoteStalenessMs: Millis,
        useTickRuleFallback: Bool,
        sideSource: SideSource,
        qimbEmaSpanSeconds: Double,
        orderFlowMethod: OrderFlowMethod,
        bvcLookbackMinutes: Int,
        closeGraceMs: Millis
    ) {
        self.rollingWindowMinutes = rollingWindowMinutes
        self.vaFraction = vaFraction
        self.minVABins = minVABins
        self.maxMissingShare = maxMissingShare
        self.alphaBin = alphaBin
        self.baseBinTicks = baseBinTicks
        self.binWidthMaxTicks = binWidthMaxTicks
        self.rebucketChangePct = rebucketChangePct
        self.rebucketIntervalMinutes = rebucketIntervalMinutes
        self.maxQuoteStalenessMs = maxQuoteStalenessMs
        self.useTickRuleFallback = useTickRuleFallback
        self.sideSource = sideSource
        self.qimbEmaSpanSeconds = qimbEmaSpanSeconds
        self.orderFlowMethod = orderFlowMethod
        self.bvcLookbackMinutes = bvcLookbackMinutes
        self.closeGraceMs = closeGraceMs
    }
}
