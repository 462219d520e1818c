public import AgentConfig
import AgentSupport
public import Engine
import Foundation
public import MarketData

/// Walk-forward evaluation of a grid: on each window the grid is ranked on the training span and its best parameter
/// set is run on the test span that follows; the test spans, chained, are the out-of-sample record.
///
/// Windows start at `start` and advance by `step`: window k trains on [start + k·step, + train) and tests on the
/// `test` that follows; only windows whose test span ends by `end` count. Each test run starts `warmup_minutes` (of
/// the chosen parameters) before its span, on the data before it, so that it is warm when the span opens and trades
/// only inside it; it starts from the equity the previous test span ended with (the first from
/// backtest.initial_equity), so the stitched curve compounds as one account would.
public struct WalkForwardPlan: Sendable, Equatable {
    public var start: Millis
    public var end: Millis
    public var train: Millis
    public var test: Millis
    public var step: Millis

    public init(start: Millis, end: Millis, train: Millis, test: Millis, step: Millis) {
        self.start = start
        self.end = end
        self.train = train
        self.test = test
        self.step = step
    }

    public struct Window: Sendable, Equatable {
        public var number: Int
        public var trainFrom: Millis
        public var trainTo: Millis
        public var testFrom: Millis
        public var testTo: Millis
    }

    public var windows: [Window] {
        var out: [Window] = []
        var from = start
        while from + train + test <= end {
            out.append(
                Window(
                    number: out.count + 1, trainFrom: from, trainTo: from + train, testFrom: from + train,
                    testTo: from + train + test))
            from += step
        }
        return out
    }

    /// `14d`, `36h`, `90m` (or a combination such as `1d12h`): a whole number of minutes.
    public static func parseDuration(_ text: String, option: String) throws -> Millis {
        var total: Millis = 0
        var digits = ""
        var sawUnit = false
        for c in text {
            if c.isASCII, c.isNumber {
                digits.append(c)
                continue
            }
            let unit: Millis
            switch c {
            case "w": unit = 7 * 24 * 60 * millisPerMinute
            case "d": unit = 24 * 60 * millisPerMinute
            case "h": unit = 60 * millisPerMinute
            case "m": unit = millisPerMinute
            default: throw CommandError("\(option) \(text): expected a duration such as 14d, 36h or 90m")
            }
            guard let n = Millis(digits) else {
                throw CommandError("\(option) \(text): expected a duration such as 14d, 36h or 90m")
            }
            total += n * unit
            digits = ""
            sawUnit = true
        }
        guard digits.isEmpty, sawUnit, total > 0 else {
            throw CommandError("\(option) \(text): expected a positive duration such as 14d, 36h or 90m")
        }
        return total
    }
}

/// One window's outcome.
public struct WalkForwardWindow: Sendable {
    public var window: WalkForwardPlan.Window
    /// The chosen run (index into the grid's combinations) and its parameters.
    public var run: Int
    public var parameters: [(key: String, value: ParameterValue)]
    /// The chosen run on the training span.
    public var inSample: GridSummary
    /// The chosen run on the test span.
    public var outOfSample: BacktestMetrics
    /// Runs of the grid that finished on the training span.
    public var runsRanked: Int
}

/// A finished walk-forward: each window, and the test spans stitched into one record.
public struct WalkForwardResult: Sendable {
    public var windows: [WalkForwardWindow]
    public var stitched: BacktestMetrics
    public var equity: [EquityRow]
    public var trips: [RoundTrip]
    public var minutes: [MinuteFeatures]
    public var initialEquity: Double
}

/// Runs the walk-forward over events in memory (sorted by time).
public func runWalkForward(
    _ spec: GridSpec, base: ResolvedConfig, plan: WalkForwardPlan, trades: [TradeEvent], quotes: [QuoteEvent],
    gaps: [RecordedGap] = [], workers: Int, onWindow: (WalkForwardWindow) -> Void = { _ in }
) throws -> WalkForwardResult {
    let grid = try GridPlan(spec, base: base)
    func slice<T>(_ events: [T], _ from: Millis, _ to: Millis, _ ts: (T) -> Millis) -> ArraySlice<T> {
        func lower(_ t: Millis) -> Int {
            var lo = 0
            var hi = events.count
            while lo < hi {
                let mid = (lo + hi) / 2
                if ts(events[mid]) < t { lo = mid + 1 } else { hi = mid }
            }
            return lo
        }
        return events[lower(from)..<lower(to)]
    }
    return try walkForward(
        spec, base: base, grid: grid, plan: plan,
        train: { from, to in
            try runGrid(
                grid, trades: Array(slice(trades, from, to, \.ts)), quotes: Array(slice(quotes, from, to, \.ts)),
                gaps: gaps, workers: workers)
        },
        test: { config, from, to in
            runBacktest(
                trades: Array(slice(trades, from, to, \.ts)), quotes: Array(slice(quotes, from, to, \.ts)),
                features: config.features, strategy: config.strategy, instrument: config.instrument, gaps: gaps)
        }, onWindow: onWindow)
}

/// Runs the walk-forward over recorded files without holding their events: each window's training grid streams its
/// span (`runGridStreaming`, the files read twice) and its test run reads the span after it, each from the files
/// afresh (`market(from, to)` opens them over that range). The same results as `runWalkForward` on the same events;
/// memory: one file of each kind and the runs' state, whatever the number of days.
public func runWalkForwardStreaming(
    _ spec: GridSpec, base: ResolvedConfig, plan: WalkForwardPlan,
    market: @escaping (Millis, Millis) throws -> RecordedMarket,
    workers: Int, onWindow: (WalkForwardWindow) -> Void = { _ in }
) throws -> WalkForwardResult {
    let grid = try GridPlan(spec, base: base)
    return try walkForward(
        spec, base: base, grid: grid, plan: plan,
        train: { from, to in
            try runGridStreaming(grid, makeMarket: { try market(from, to) }, workers: workers).outcomes
        },
        test: { config, from, to in
            var m = try market(from, to)
            return try runBacktest(
                market: &m, features: config.features, strategy: config.strategy, instrument: config.instrument)
        }, onWindow: onWindow)
}

/// The walk-forward's windows, whatever holds the events: `train(from, to)` runs the grid on a span, `test(config,
/// from, to)` backtests one configuration on a span.
func walkForward(
    _ spec: GridSpec, base: ResolvedConfig, grid: GridPlan, plan: WalkForwardPlan,
    train: (Millis, Millis) throws -> [GridOutcome],
    test: (ResolvedConfig, Millis, Millis) throws -> BacktestResult,
    onWindow: (WalkForwardWindow) -> Void
) throws -> WalkForwardResult {
    let combinations = spec.combinations
    var equity = base.strategy.initialEquity
    var out: [WalkForwardWindow] = []
    var rows: [EquityRow] = []
    var trips: [RoundTrip] = []
    var fills: [Fill] = []
    var minutes: [MinuteFeatures] = []
    var fees = 0.0
    var funding = 0.0
    for w in plan.windows {
        let outcomes = try train(w.trainFrom, w.trainTo)
        guard let best = rank(outcomes.map(\.row), by: spec.rankBy).first else {
            throw CommandError("walkforward: window \(w.number): no grid run finished")
        }
        var config = base
        try ConfigLoader.applyOverrides(
            combinations[best.index].map { "\($0.key)=\($0.value)" } + ["backtest.initial_equity=\(equity)"],
            to: &config)
        let lead = Millis(config.strategy.warmupMinutes) * millisPerMinute
        let result = try test(config, w.testFrom - lead, w.testTo)
        // The lead-in only warms the test run: its minutes, flat and before the span, are not part of the record.
        let spanRows = result.equity.filter { $0.ts > w.testFrom }
        let spanMinutes = result.features.filter { $0.ts >= w.testFrom }
        let metrics = BacktestMetrics(
            initialEquity: equity, finalEquity: result.metrics.finalEquity, equity: spanRows,
            trips: result.roundTrips, fills: result.fills,
            ambiguous: spanMinutes.filter { $0.volume > 0 }.map(\.ambiguousFraction), fees: result.metrics.fees,
            funding: result.metrics.funding, instrument: config.instrument, minuteCount: spanMinutes.count)
        let window = WalkForwardWindow(
            window: w, run: best.index, parameters: best.parameters, inSample: best.summary, outOfSample: metrics,
            runsRanked: outcomes.count)
        onWindow(window)
        out.append(window)
        rows += spanRows
        trips += result.roundTrips
        fills += result.fills
        minutes += spanMinutes
        fees += result.metrics.fees
        funding += result.metrics.funding
        equity = result.metrics.finalEquity
    }
    let initial = base.strategy.initialEquity
    let stitched = BacktestMetrics(
        initialEquity: initial, finalEquity: equity, equity: rows, trips: trips, fills: fills,
        ambiguous: minutes.filter { $0.volume > 0 }.map(\.ambiguousFraction), fees: fees, funding: funding,
        instrument: base.instrument, minuteCount: minutes.count)
    return WalkForwardResult(
        windows: out, stitched: stitched, equity: rows, trips: trips, minutes: minutes, initialEquity: initial)
}
