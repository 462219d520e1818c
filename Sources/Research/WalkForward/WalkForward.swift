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

/// A finished walk-forward: each window, and the figures of the test spans stitched into one record (their minutes
/// and equity rows went to the `BacktestSpill` the run was given).
public struct WalkForwardResult: Sendable {
    public var windows: [WalkForwardWindow]
    public var stitched: BacktestMetrics
    public var trips: [RoundTrip]
    public var initialEquity: Double
}

/// Runs the walk-forward over events in memory (sorted by time); the stitched out-of-sample minutes and equity rows
/// go to `record` as each window ends (`writeWalkForward` writes them out).
public func runWalkForward(
    _ spec: GridSpec, base: ResolvedConfig, plan: WalkForwardPlan, trades: [TradeEvent], quotes: [QuoteEvent],
    gaps: [RecordedGap] = [], workers: Int, record: BacktestSpill, onWindow: (WalkForwardWindow) -> Void = { _ in }
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
        spec, base: base, grid: grid, plan: plan, record: record,
        train: { from, to in
            try runGrid(
                grid, trades: Array(slice(trades, from, to, \.ts)), quotes: Array(slice(quotes, from, to, \.ts)),
                gaps: gaps, workers: workers)
        },
        test: { config, from, to, each in
            let result = runBacktest(
                trades: Array(slice(trades, from, to, \.ts)), quotes: Array(slice(quotes, from, to, \.ts)),
                features: config.features, strategy: config.strategy, instrument: config.instrument, gaps: gaps)
            try each(BacktestRecords(features: result.features, signals: [], equity: result.equity, profileFrames: []))
            return TestRun(
                finalEquity: result.metrics.finalEquity, fees: result.metrics.fees, funding: result.metrics.funding,
                trips: result.roundTrips, fills: result.fills)
        }, onWindow: onWindow)
}

/// Runs the walk-forward over recorded files without holding their events: each window's training grid streams its
/// span (`runGridStreaming`, what its metrics need of every minute spilled to `spillDirectory`) and its test run
/// reads the span after it, each from the files afresh (`market(from, to)` opens them over that range), handing
/// its minutes to `record` as it goes. The same results as `runWalkForward` on the same events; memory: one file of
/// each kind and the runs' state, whatever the number of days.
public func runWalkForwardStreaming(
    _ spec: GridSpec, base: ResolvedConfig, plan: WalkForwardPlan,
    market: @escaping (Millis, Millis) throws -> RecordedMarket,
    workers: Int, record: BacktestSpill, spillDirectory: String? = nil,
    onWindow: (WalkForwardWindow) -> Void = { _ in }
) throws -> WalkForwardResult {
    let grid = try GridPlan(spec, base: base)
    return try walkForward(
        spec, base: base, grid: grid, plan: plan, record: record,
        train: { from, to in
            try runGridStreaming(
                grid, makeMarket: { try market(from, to) }, workers: workers, spillDirectory: spillDirectory
            ).outcomes
        },
        test: { config, from, to, each in
            var m = try market(from, to)
            let bt = try runBacktestInBatches(
                market: &m, features: config.features, strategy: config.strategy, instrument: config.instrument,
                keepProfiles: false, each: each)
            let trader = bt.trader
            return TestRun(
                finalEquity: trader.equity, fees: trader.feesPaid, funding: trader.fundingPaid,
                trips: trader.roundTrips, fills: bt.fills)
        }, onWindow: onWindow)
}

/// What a window's test run gives besides its minutes: the account after its end-of-data close, and its trades.
struct TestRun {
    var finalEquity: Double
    var fees: Double
    var funding: Double
    var trips: [RoundTrip]
    var fills: [Fill]
}

/// The walk-forward's windows, whatever holds the events: `train(from, to)` runs the grid on a span, `test(config,
/// from, to, each)` backtests one configuration on a span, handing its minutes to `each` in order as it goes.
/// Of each test run's minutes, those of its span (not its warm-up lead) go to `record`, which keeps nothing per
/// minute in memory; a window's own metrics keep its span's equity and ambiguous fractions until it ends.
func walkForward(
    _ spec: GridSpec, base: ResolvedConfig, grid: GridPlan, plan: WalkForwardPlan, record: BacktestSpill,
    train: (Millis, Millis) throws -> [GridOutcome],
    test: (ResolvedConfig, Millis, Millis, @escaping (BacktestRecords) throws -> Void) throws -> TestRun,
    onWindow: (WalkForwardWindow) -> Void
) throws -> WalkForwardResult {
    let combinations = spec.combinations
    var equity = base.strategy.initialEquity
    var out: [WalkForwardWindow] = []
    var trips: [RoundTrip] = []
    var fills: [Fill] = []
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
        // The lead-in only warms the test run: its minutes, flat and before the span, are not part of the record.
        var spanEquity: [Double] = []
        var spanAmbiguous: [Double] = []
        var spanMinutes = 0
        let result = try test(config, w.testFrom - lead, w.testTo) { records in
            let span = BacktestRecords(
                features: records.features.filter { $0.ts >= w.testFrom }, signals: [],
                equity: records.equity.filter { $0.ts > w.testFrom }, profileFrames: [])
            spanEquity += span.equity.map(\.equity)
            for f in span.features where f.volume > 0 { spanAmbiguous.append(f.ambiguousFraction) }
            spanMinutes += span.features.count
            try record.add(span)
        }
        let metrics = BacktestMetrics(
            initialEquity: equity, finalEquity: result.finalEquity, equityValues: spanEquity, trips: result.trips,
            fills: result.fills, ambiguous: spanAmbiguous, fees: result.fees, funding: result.funding,
            instrument: config.instrument, minuteCount: spanMinutes)
        let window = WalkForwardWindow(
            window: w, run: best.index, parameters: best.parameters, inSample: best.summary, outOfSample: metrics,
            runsRanked: outcomes.count)
        onWindow(window)
        out.append(window)
        trips += result.trips
        fills += result.fills
        fees += result.fees
        funding += result.funding
        equity = result.finalEquity
    }
    let initial = base.strategy.initialEquity
    let stitched = BacktestMetrics(
        initialEquity: initial, finalEquity: equity, equityValues: try record.equityValues(), trips: trips,
        fills: fills, ambiguous: try record.ambiguous(), fees: fees, funding: funding, instrument: base.instrument,
        minuteCount: record.count)
    return WalkForwardResult(windows: out, stitched: stitched, trips: trips, initialEquity: initial)
}
