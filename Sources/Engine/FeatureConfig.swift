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

/// The parameters of the feature pipeline (docs/SPEC.md §1–§7). Defaults are the spec's.
public struct FeatureConfig: Sendable, Hashable {
    /// Bars in the rolling profile window, the current one included (240).
    public var rollingWindowMinutes = 240
    /// Share of the window's volume the value area covers (0.70).
    public var vaFraction = 0.70
    /// Bins with volume needed for a valid value area (20).
    public var minVABins = 20
    /// Largest share of the window's minutes with missing data (a recorded gap) for a valid value area (0.1).
    public var maxMissingShare = 0.1
    /// Bin width as a multiple of `mid * sigma_240` (0.25, the original system's default; docs/FEATURES.md).
    public var alphaBin = 0.25
    /// Width of the base histogram's bins in ticks; aggregated widths are multiples of it (1).
    public var baseBinTicks: Int64 = 1
    /// Largest bin width in ticks (200); a multiple of `baseBinTicks`.
    public var binWidthMaxTicks: Int64 = 200
    /// Relative change of the computed width that replaces the applied one (0.25).
    public var rebucketChangePct = 0.25
    /// The applied width is also replaced on every minute divisible by this (15).
    public var rebucketIntervalMinutes = 15
    /// A print aligned to an older quote than this counts as `stale_aligned` (250 ms).
    public var maxQuoteStalenessMs: Millis = 250
    /// Ambiguous prints take the tick-rule sign (true).
    public var useTickRuleFallback = true
    /// Which side signs the order flow (auto).
    public var sideSource: SideSource = .auto
    /// Time constant of the quote-imbalance EMA in seconds (60).
    public var qimbEmaSpanSeconds = 60.0
    /// How `of_1m` is measured (quote_rule).
    public var orderFlowMethod: OrderFlowMethod = .quoteRule
    /// BVC: close-to-close changes in the standard deviation (240).
    public var bvcLookbackMinutes = 240
    /// Live: a minute closes when the clock passes its end by this much (250 ms).
    public var closeGraceMs: Millis = 250

    /// Bars in the spread average (`spread_avg_60m`).
    public static let spreadAverageMinutes = 60
    /// Returns in the volatility estimate (`sigma_240`).
    public static let sigmaReturns = 240

    public init() {}
}
