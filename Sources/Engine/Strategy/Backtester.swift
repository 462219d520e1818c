/// One row of the equity curve, at a minute's decision time.
public struct EquityRow: Sendable, Hashable {
    public var ts: Millis
    public var equity: Double
    public var cash: Double
    public var unrealized: Double
    public var positionLots: Lots
    public var fees: Double
    public var funding: Double
    public var heat: Double
}

/// What a backtest recorded since it was last asked (`Backtester.takeRecords`).
public struct BacktestRecords: Sendable {
    public var features: [MinuteFeatures]
    public var signals: [SignalRecord]
    public var equity: [EquityRow]
    public var profileFrames: [ProfileHistory.Frame]

    public init(
        features: [MinuteFeatures], signals: [SignalRecord], equity: [EquityRow],
        profileFrames: [ProfileHistory.Frame]
    ) {
        self.features = features
        self.signals = signals
        self.equity = equity
        self.profileFrames = profileFrames
    }
}

/// The backtest loop: the trading kernel (`TradingKernel`) fed from one ordered event stream, exactly as the agent
/// feeds it live, with every minute, fill and equity row kept. Deterministic: the same events and config give the
/// same records.
public struct Backtester: Sendable {
    private var kernel: TradingKernel
    public var trader: Trader { kernel.trader }

    public private(set) var features: [MinuteFeatures] = []
    public private(set) var signals: [SignalRecord] = []
    public private(set) var fills: [Fill] = []
    public private(set) var equity: [EquityRow] = []
    /// Keep every minute's features (the report needs them; a grid run does not).
    public var keepFeatures = true
    /// Keep every minute's volume profile (report.html shows the profile at any minute); off unless asked.
    public var keepProfiles: Bool {
        get { kernel.pipeline?.recordsProfiles ?? false }
        set { kernel.pipeline?.recordsProfiles = newValue }
    }
    /// Every closed minute's profile, while `keepProfiles`.
    public var profiles: ProfileHistory? { kernel.pipeline?.profileHistory }
    /// A veto on entries from outside the rules at every decision (the agent's state), nil in a plain backtest.
    public var entryVeto: EntryVeto?
    private var lastTs: Millis = 0

    public init(features: FeatureConfig, strategy: StrategyConfig, instrument: Instrument) {
        kernel = TradingKernel(features: features, strategy: strategy, instrument: instrument)
    }

    /// Replays features computed earlier from the same events (`TradingKernel.init(precomputed:strategy:instrument:)`).
    public init(precomputed: [MinuteFeatures], strategy: StrategyConfig, instrument: Instrument) {
        kernel = TradingKernel(precomputed: precomputed, strategy: strategy, instrument: instrument)
    }

    /// Adds minutes to replay (`TradingKernel.supply`): a run built with `init(precomputed:...)` fed its minutes a
    /// chunk at a time, ahead of the events that close them.
    public mutating func supply(_ minutes: [MinuteFeatures]) {
        kernel.supply(minutes)
    }

    /// The trader and the paper book together: what the agent snapshots and restores. Setting it replaces both.
    public var strategyState: (trader: Trader, venue: PaperFillModel) {
        get { (kernel.trader, kernel.book) }
        set { (kernel.trader, kernel.book) = newValue }
    }

    /// Data is missing from `from` to `to` (a recorded gap): see `TradingKernel.markMissing`.
    public mutating func markMissing(from: Millis, to: Millis) {
        kernel.markMissing(from: from, to: to)
    }

    /// Feeds one event: the minutes it closes are decided, then the event reaches the trader and the book.
    public mutating func process(_ event: MarketEvent) {
        lastTs = event.ts
        for f in kernel.take(event) { close(f) }
        record(kernel.deliver(event))
    }

    /// End of data: closes the last minute, and whatever is still open at the last quote.
    public mutating func finish() {
        for f in kernel.finishData() { close(f) }
        let open = kernel.trader.position != nil
        record(kernel.closeAll(.endOfData, at: lastTs))
        // Fill the closing order at the last quote known (there is no later one).
        if let q = kernel.latestQuote { record(kernel.fillAtLatestQuote(q, ts: lastTs + 1)) }
        // The curve ends after the close: its last equity is the initial equity plus the round trips' net P&L.
        if open { equity.append(kernel.trader.equityRow(at: lastTs + 1)) }
    }

    /// Hands over the minutes recorded since the last call (kept features, signals, equity rows, profile frames) and
    /// forgets them, so that a long run writes them out as it goes; the fills and trips stay.
    public mutating func takeRecords() -> BacktestRecords {
        defer {
            features = []
            signals = []
            equity = []
        }
        return BacktestRecords(
            features: features, signals: signals, equity: equity,
            profileFrames: kernel.pipeline?.takeProfileFrames() ?? [])
    }

    private mutating func close(_ f: MinuteFeatures) {
        // The last minute closes at `finish`, at its decision time, after the last event: the end of the data is
        // then that decision time, so that an order it sends is filled by the end-of-data quote.
        lastTs = max(lastTs, f.decisionTs)
        let (signal, outcomes) = kernel.decide(f, veto: entryVeto)
        record(outcomes)
        signals.append(signal)
        if keepFeatures { features.append(f) }
        equity.append(kernel.trader.equityRow(at: f.decisionTs))
    }

    private mutating func record(_ outcomes: [KernelOutcome]) {
        for case .filled(let fill) in outcomes { fills.append(fill) }
    }
}
