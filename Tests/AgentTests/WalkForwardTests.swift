import Engine
import Foundation
import Simulator
import Testing

@testable import AgentConfig
@testable import AgentSupport
@testable import Research

@Suite(.tags(.unit)) struct WalkForwardTests {
    static let minute: Millis = 60_000

    @Test func windowsAdvanceByTheStepAndEndWithTheData() throws {
        let h: Millis = 60 * Self.minute
        let plan = WalkForwardPlan(start: 0, end: 10 * h, train: 3 * h, test: 2 * h, step: 2 * h)
        #expect(plan.windows.map(\.trainFrom) == [0, 2 * h, 4 * h])
        #expect(plan.windows.map(\.testFrom) == [3 * h, 5 * h, 7 * h])
        #expect(plan.windows.last!.testTo == 9 * h, "a window whose test would pass the end does not run")
        #expect(WalkForwardPlan(start: 0, end: 4 * h, train: 3 * h, test: 2 * h, step: 2 * h).windows.isEmpty)
        #expect(try WalkForwardPlan.parseDuration("14d", option: "--train") == 14 * 24 * h)
        #expect(try WalkForwardPlan.parseDuration("1w", option: "--train") == 7 * 24 * h)
        #expect(try WalkForwardPlan.parseDuration("1d12h", option: "--train") == 36 * h)
        #expect(try WalkForwardPlan.parseDuration("90m", option: "--test") == 90 * Self.minute)
        for bad in ["", "14", "d", "14x", "-1d", "0d", "1.5d"] {
            #expect(throws: CommandError.self, "\(bad)") { try WalkForwardPlan.parseDuration(bad, option: "--train") }
        }
    }

    @Test func eachWindowRunsTheBestOfItsTrainingSpanOnTheSpanAfter() throws {
        var generator = MarketGeneratorConfig()
        generator.hours = 4
        generator.seed = 12
        var g = MarketGenerator(config: generator)
        let (trades, quotes) = g.generateAll()
        var base = try ConfigLoader.load(ConfigSelection(), defaultEnvironment: nil)
        try ConfigLoader.applyOverrides(
            ["value_area.rolling_window_minutes=30", "value_area.warmup_minutes=30", "value_area.min_va_bins=10"],
            to: &base)
        let spec = try GridSpec.parse(
            yaml: "parameters:\n  value_area.va_fraction: [0.6, 0.7]\n  sizing.risk_pct: [0.01, 0.02]\n",
            source: "g.yaml")
        let start = trades[0].ts - trades[0].ts % (60 * Self.minute)
        let plan = WalkForwardPlan(
            start: start, end: start + 4 * 60 * Self.minute, train: 90 * Self.minute, test: 60 * Self.minute,
            step: 60 * Self.minute)
        #expect(plan.windows.count == 2)
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let record = try BacktestSpill(
            directory: dir.path, instrument: base.instrument, initialEquity: base.strategy.initialEquity,
            profiles: false, keepFeatures: false, signals: false)
        let result = try runWalkForward(
            spec, base: base, plan: plan, trades: trades, quotes: quotes, workers: 2, record: record)
        #expect(result.windows.count == 2)
        var equity = base.strategy.initialEquity
        for w in result.windows {
            // The choice: the grid ranked on the training span alone.
            let train = (
                trades.filter { $0.ts >= w.window.trainFrom && $0.ts < w.window.trainTo },
                quotes.filter { $0.ts >= w.window.trainFrom && $0.ts < w.window.trainTo }
            )
            let ranked = rank(try runGrid(spec, base: base, trades: train.0, quotes: train.1, workers: 1), by: .netPnL)
            #expect(w.run == ranked[0].index)
            #expect(w.inSample == ranked[0].summary)
            // The test: that parameter set from the equity so far, warm from the minutes before the span.
            var c = base
            try ConfigLoader.applyOverrides(
                spec.combinations[w.run].map { "\($0.key)=\($0.value)" } + ["backtest.initial_equity=\(equity)"],
                to: &c)
            let from = w.window.testFrom - 30 * Self.minute
            let single = runBacktest(
                trades: trades.filter { $0.ts >= from && $0.ts < w.window.testTo },
                quotes: quotes.filter { $0.ts >= from && $0.ts < w.window.testTo }, features: c.features,
                strategy: c.strategy, instrument: c.instrument)
            #expect(w.outOfSample.finalEquity == single.metrics.finalEquity)
            #expect(w.outOfSample.overall == single.metrics.overall)
            #expect(single.roundTrips.allSatisfy { $0.entryTs >= w.window.testFrom }, "no trade in the warm-up lead")
            equity = single.metrics.finalEquity
        }
        #expect(result.stitched.finalEquity == equity)
        #expect(result.stitched.overall.trades == result.windows.map(\.outOfSample.overall.trades).reduce(0, +))
        // The stitched record: the test spans' minutes and equity rows only, written out as the windows ended.
        try writeWalkForward(
            result, record: record, spec: spec, plan: plan, instrument: base.instrument, title: "t", to: dir.path)
        let rows = try String(contentsOf: dir.appendingPathComponent("equity.csv"), encoding: .utf8)
            .split(separator: "\n").dropFirst().map { Millis($0.prefix { $0 != "," })! }
        #expect(rows.first! > plan.windows[0].testFrom && rows.last! <= plan.windows[1].testTo + 1)
        #expect(
            (record.count...record.count + 2).contains(rows.count),
            "a row a minute, and one after a window's end-of-data close when a position was open")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).allSatisfy { !$0.hasPrefix(".") })
    }
}
