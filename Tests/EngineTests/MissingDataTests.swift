import AgentConfig
import Engine
import Testing

/// A recorded gap is missing data, not a quiet market (docs/FEATURES.md, "Gaps"): its minutes count against the
/// window, and the value area is not valid while more than `max_missing_share` of the window is missing.
@Suite(.tags(.unit)) struct MissingDataTests {
    /// A 10-minute window, one trade a minute at the same five prices, a valid value area from the first minute.
    func config(maxMissingShare: Double = 0.1) -> FeatureConfig {
        var c = FeatureConfig.defaults
        c.rollingWindowMinutes = 10
        c.baseBinTicks = 1
        c.binWidthMaxTicks = 1
        c.minVABins = 1
        c.maxMissingShare = maxMissingShare
        return c
    }

    func events(minutes: Int) -> [MarketEvent] {
        (0..<minutes).map { m in trade(t0 + Millis(m) * 60_000 + 1, "\(100 + m % 5)", "1") }
    }

    @Test func aGapMarkedBeforehandMakesItsMinutesMissingAndTheValueAreaInvalidUntilItLeaves() {
        var p = FeaturePipeline(config: config())
        // Minutes 3 and 4 missing: 2 of a 10-minute window is more than 10 %.
        p.markMissing(from: t0 + 3 * 60_000 + 500, to: t0 + 4 * 60_000 + 10)
        for e in events(minutes: 20) { p.process(e) }
        p.finish()
        let rows = p.takeClosed()
        #expect(rows.map(\.missing) == (0..<20).map { $0 == 3 || $0 == 4 })
        #expect(rows[2].missingMinutes == 0 && rows[2].valueAreaValid)
        #expect(rows[3].missingMinutes == 1 && rows[3].valueAreaValid, "1 of 10 is within 10 %")
        #expect(rows[4].missingMinutes == 2 && !rows[4].valueAreaValid)
        // Minute 3 leaves the window with minute 13's close (the window holds minutes 4...13), minute 4 with 14's.
        #expect(rows[12].missingMinutes == 2 && !rows[12].valueAreaValid)
        #expect(rows[13].missingMinutes == 1 && rows[13].valueAreaValid)
        #expect(rows[14].missingMinutes == 0 && rows[14].valueAreaValid)
        // The same trades with no gap marked: every value area valid, the profiles equal.
        let plain = run(events(minutes: 20), config: config())
        #expect(plain.allSatisfy { $0.valueAreaValid && $0.missingMinutes == 0 })
        #expect(plain.map(\.valueArea) == rows.map(\.valueArea))
    }

    @Test func aGapHeardAfterItsMinutesClosedCountsFromThen() {
        var p = FeaturePipeline(config: config())
        let all = events(minutes: 12)
        for e in all[..<8] { p.process(e) }
        _ = p.takeClosed()
        // Minutes 5 and 6 closed already (minute 7 is open): they are marked in the window; minute 7 too.
        p.markMissing(from: t0 + 5 * 60_000, to: t0 + 7 * 60_000 + 2)
        for e in all[8...] { p.process(e) }
        p.finish()
        let rows = p.takeClosed()
        #expect(rows.first?.ts == t0 + 7 * 60_000)
        #expect(rows[0].missing && rows[0].missingMinutes == 3 && !rows[0].valueAreaValid)
        #expect(!rows[1].missing && rows[1].missingMinutes == 3)
    }

    @Test func theShareIsAParameter() {
        var p = FeaturePipeline(config: config(maxMissingShare: 0.5))
        p.markMissing(from: t0 + 2 * 60_000, to: t0 + 6 * 60_000)
        for e in events(minutes: 10) { p.process(e) }
        p.finish()
        let rows = p.takeClosed()
        #expect(rows[6].missingMinutes == 5 && rows[6].valueAreaValid, "5 of 10 is within 50 %")
        var none = FeaturePipeline(config: config(maxMissingShare: 0))
        none.markMissing(from: t0 + 2 * 60_000, to: t0 + 2 * 60_000)
        for e in events(minutes: 4) { none.process(e) }
        none.finish()
        #expect(none.takeClosed().map(\.valueAreaValid) == [true, true, false, false])
    }

    @Test func theBacktestHoldsOnAWindowWithTooMuchMissing() {
        let market = syntheticMarket(minutes: 600, seed: 5)
        var features = FeatureConfig.defaults
        features.minVABins = 10
        features.rollingWindowMinutes = 120
        var strategy = StrategyConfig.defaults
        strategy.warmupMinutes = 120
        var gapped = Backtester(features: features, strategy: strategy, instrument: btc)
        let start = market.trades[0].ts
        gapped.markMissing(from: start + 200 * 60_000, to: start + 260 * 60_000)
        mergeEvents(trades: market.trades, quotes: market.quotes) { gapped.process($0) }
        gapped.finish()
        // 13 of the window's 120 minutes are missing from minute 212 on (more than 10 %), until minute 260 has left.
        let gapMinutes = gapped.features.filter { $0.ts >= start + 213 * 60_000 && $0.ts < start + 300 * 60_000 }
        #expect(!gapMinutes.isEmpty && gapMinutes.allSatisfy { !$0.valueAreaValid })
        let decided = gapped.signals.filter { $0.ts >= start + 213 * 60_000 && $0.ts < start + 300 * 60_000 }
        #expect(decided.contains { $0.reason == .hold(.invalidVA) })
        #expect(
            !gapped.fills.contains {
                $0.purpose.isEntry && $0.decisionTs > start + 213 * 60_000 && $0.decisionTs < start + 300 * 60_000
            })
    }
}
