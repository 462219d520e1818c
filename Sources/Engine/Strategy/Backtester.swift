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

/// The backtest loop: the feature pipeline, the trader and the paper fill model fed from one ordered event stream,
/// exactly as the agent will feed them live. Deterministic: the same events and config give the same records.
public struct Backtester: Sendable {
    /// Computes features from the events; nil when replaying features computed before.
    private var pipeline: FeaturePipeline?
    private var replay: [MinuteFeatures] = []
    private var replayNext = 0
    private var latestQuote: QuoteEvent?
    public private(set) var trader: Trader
    private var venue: PaperFillModel

    public private(set) var features: [MinuteFeatures] = []
    public private(set) var signals: [SignalRecord] = []
    public private(set) var fills: [Fill] = []
    public private(set) var equity: [EquityRow] = []
    /// Keep every minute's features (the report needs them; a grid run does not).
    public var keepFeatures = true
    private var lastTs: Millis = 0

    public init(features: FeatureConfig, strategy: StrategyConfig, instrument: Instrument) {
        pipeline = FeaturePipeline(config: features)
        trader = Trader(config: strategy, instrument: instrument)
        venue = PaperFillModel(config: strategy, instrument: instrument)
    }

    /// Replays features computed earlier from the same events (a grid search shares them between runs that
    /// differ only in strategy parameters). Feed the same events: each minute closes at the first event at or after
    /// its decision time, exactly as the pipeline would close it.
    public init(precomputed: [MinuteFeatures], strategy: StrategyConfig, instrument: Instrument) {
        replay = precomputed
        trader = Trader(config: strategy, instrument: instrument)
        venue = PaperFillModel(config: strategy, instrument: instrument)
    }

    /// The trader and the paper venue together: what the agent snapshots and restores. Setting it replaces both.
    public var strategyState: (trader: Trader, venue: PaperFillModel) {
        get { (trader, venue) }
        set { (trader, venue) = newValue }
    }

    /// Feeds one event.
    public mutating func process(_ event: MarketEvent) {
        let ts = event.ts
        lastTs = ts
        trader.advanceTime(to: ts)
        if pipeline != nil {
            pipeline!.process(event)
            if pipeline!.closed.count > 0 {
                for f in pipeline!.takeClosed() { close(f) }
            }
        } else {
            while replayNext < replay.count && replay[replayNext].decisionTs <= ts {
                close(replay[replayNext])
                replayNext += 1
            }
        }
        switch event {
        case .quote(let q):
            latestQuote = q
            trader.onQuote(q)
            apply(venue.onQuote(q))
        case .trade(let t):
            apply(venue.onTrade(t))
            execute(trader.onTrade(t), at: t.ts)
        }
    }

    /// End of data: closes the last minute, and whatever is still open at the last quote.
    public mutating func finish() {
        if pipeline != nil {
            pipeline!.finish()
            for f in pipeline!.takeClosed() { close(f) }
        } else {
            while replayNext < replay.count {
                close(replay[replayNext])
                replayNext += 1
            }
        }
        let open = trader.position != nil
        execute(trader.closeAtEnd(at: lastTs), at: lastTs)
        // Fill the closing order at the last quote known (there is no later one).
        if let q = latestQuote {
            var last = q
            last.ts = lastTs + 1
            apply(venue.onQuote(last))
        }
        // The curve ends after the close: its last equity is the initial equity plus the round trips' net P&L.
        if open { equity.append(trader.equityRow(at: lastTs + 1)) }
    }

    private mutating func close(_ f: MinuteFeatures) {
        // The last minute closes at `finish`, at its decision time, after the last event: the end of the data is
        // then that decision time, so that an order it sends is filled by the end-of-data quote.
        lastTs = max(lastTs, f.decisionTs)
        let (record, actions) = trader.onMinuteClose(f)
        execute(actions, at: f.decisionTs)
        signals.append(record)
        if keepFeatures { features.append(f) }
        equity.append(trader.equityRow(at: f.decisionTs))
    }

    private mutating func execute(_ actions: [OrderAction], at ts: Millis) {
        for a in actions {
            switch a {
            case .submit(let intent): venue.submit(intent, at: ts)
            case .cancel(let id): if venue.cancel(id: id) { trader.onOrderGone(id: id) }
            }
        }
    }

    private mutating func apply(_ new: [Fill]) {
        for var fill in new {
            // Reduce-only: never more than the open position, and nothing when flat.
            if fill.purpose.isEntry == false {
                let open = trader.position?.qty ?? 0
                guard open > 0 else {
                    trader.onOrderGone(id: fill.orderId)
                    continue
                }
                if fill.qty > open {
                    fill.fee = fill.fee * Double(open) / Double(fill.qty)
                    fill.qty = open
                }
            }
            trader.onFill(fill)
            fills.append(fill)
        }
    }
}
