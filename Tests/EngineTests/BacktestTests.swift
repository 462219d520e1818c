import AgentConfig
import Engine
import Foundation
import Testing

@Suite(.tags(.unit)) struct FillModelTests {
    let config = StrategyConfig.defaults

    func intent(
        _ side: Direction, _ type: OrderType = .market, purpose: OrderPurpose = .entry(.breakIn), at ts: Millis = 1_000
    ) -> OrderIntent {
        OrderIntent(
            id: "o", side: side, qty: sz("0.4"), type: type, reduceOnly: !purpose.isEntry, purpose: purpose,
            decisionTs: ts)
    }

    @Test func marketFillsAtTheFirstLaterQuoteWithSlippage() {
        var venue = PaperFillModel(config: config, instrument: btc)
        venue.submit(intent(.long), at: 1_000)
        // A quote at the decision time itself is not later.
        #expect(
            venue.onQuote(QuoteEvent(ts: 1_000, bidPrice: px("50000"), bidSize: 1, askPrice: px("50000.1"), askSize: 1))
                .isEmpty)
        let fills = venue.onQuote(
            QuoteEvent(ts: 1_001, bidPrice: px("50000"), bidSize: 1, askPrice: px("50000.1"), askSize: 1))
        #expect(fills.count == 1)
        #expect(fills[0].price == px("50000.2"), "ask + 1 tick of entry slippage")
        #expect(fills[0].liquidity == .taker)
        #expect(isClose(fills[0].fee, 50000.2 * 0.4 * 5.5 / 10_000, tolerance: 1e-9))
        #expect(fills[0].ts > fills[0].decisionTs)
    }

    @Test func sellsFillAtTheBidLessExitSlippage() {
        var c = config
        c.exitSlippageTicks = 3
        var venue = PaperFillModel(config: c, instrument: btc)
        venue.submit(intent(.short, purpose: .exit(.stop)), at: 1_000)
        let fills = venue.onQuote(
            QuoteEvent(ts: 2_000, bidPrice: px("50000"), bidSize: 1, askPrice: px("50000.1"), askSize: 1))
        #expect(fills[0].price == px("49999.7"))
    }

    @Test func limitFillsOnlyWhenATradePrintsThrough() {
        var venue = PaperFillModel(config: config, instrument: btc)
        _ = venue.onQuote(QuoteEvent(ts: 500, bidPrice: px("50000"), bidSize: 1, askPrice: px("50000.1"), askSize: 1))
        venue.submit(intent(.long, .limit(px("50000"))), at: 1_000)
        #expect(
            venue.onQuote(QuoteEvent(ts: 1_001, bidPrice: px("50000"), bidSize: 1, askPrice: px("50000.1"), askSize: 1))
                .isEmpty)
        #expect(
            venue.onTrade(TradeEvent(ts: 1_002, price: px("50000"), size: 1)).isEmpty, "at the price is not through")
        let fills = venue.onTrade(TradeEvent(ts: 1_003, price: px("49999.9"), size: 1))
        #expect(fills.count == 1 && fills[0].price == px("50000") && fills[0].liquidity == .maker)
        #expect(isClose(fills[0].fee, 50000 * 0.4 * 2.0 / 10_000, tolerance: 1e-9))
    }

    @Test func marketableLimitIsAMarketOrder() {
        var venue = PaperFillModel(config: config, instrument: btc)
        _ = venue.onQuote(QuoteEvent(ts: 500, bidPrice: px("50000"), bidSize: 1, askPrice: px("50000.1"), askSize: 1))
        venue.submit(intent(.long, .limit(px("50000.1"))), at: 1_000)
        let fills = venue.onQuote(
            QuoteEvent(ts: 1_001, bidPrice: px("50000"), bidSize: 1, askPrice: px("50000.1"), askSize: 1))
        #expect(fills.count == 1 && fills[0].liquidity == .taker)
    }

    @Test func cancelledOrdersDoNotFill() {
        var venue = PaperFillModel(config: config, instrument: btc)
        venue.submit(intent(.long), at: 1_000)
        let first = venue.cancel(id: "o")
        let second = venue.cancel(id: "o")
        #expect(first && !second)
        #expect(venue.onQuote(QuoteEvent(ts: 2_000, bidPrice: 1, bidSize: 1, askPrice: 2, askSize: 1)).isEmpty)
    }
}

/// A synthetic market with many setups: a deterministic random walk with balance and trend spells.
func syntheticMarket(minutes: Int, seed: UInt64) -> (trades: [TradeEvent], quotes: [QuoteEvent]) {
    var rng = SplitMix(state: seed)
    var trades: [TradeEvent] = []
    var quotes: [QuoteEvent] = []
    var mid: Int64 = 500_000
    var drift: Int64 = 0
    for m in 0..<minutes {
        if m % 47 == 0 { drift = Int64.random(in: -3...3, using: &rng) }
        for s in 0..<20 {
            let ts = t0 + Millis(m) * 60_000 + Millis(s) * 3_000
            mid += drift + Int64.random(in: -12...12, using: &rng)
            quotes.append(
                QuoteEvent(
                    ts: ts, bidPrice: mid, bidSize: Lots.random(in: 1...3000, using: &rng), askPrice: mid + 1,
                    askSize: Lots.random(in: 1...3000, using: &rng)))
            for k in 0..<2 {
                let buy = Int.random(in: 0..<100, using: &rng) < 50 + Int(drift) * 5
                trades.append(
                    TradeEvent(
                        ts: ts + 100 + Millis(k) * 1_000, price: buy ? mid + 1 : mid,
                        size: Lots.random(in: 1...800, using: &rng), side: buy ? .buy : .sell))
            }
        }
    }
    return (trades, quotes)
}

@Suite(.tags(.unit)) struct BacktestTests {
    func backtest(
        _ market: (trades: [TradeEvent], quotes: [QuoteEvent]), strategy: StrategyConfig = StrategyConfig.defaults
    )
        -> Backtester
    {
        var features = FeatureConfig.defaults
        features.minVABins = 10
        var bt = Backtester(features: features, strategy: strategy, instrument: btc)
        mergeEvents(trades: market.trades, quotes: market.quotes) { bt.process($0) }
        bt.finish()
        expectCurveEndsAtTheRoundTrips(bt.equity, bt.trader)
        return bt
    }

    @Test func tradesHappenAndEveryFillIsLaterThanItsDecision() {
        let bt = backtest(syntheticMarket(minutes: 1_500, seed: 11))
        #expect(bt.trader.roundTrips.count >= 3, "the market should produce trades: \(bt.trader.roundTrips.count)")
        #expect(bt.fills.allSatisfy { $0.ts > $0.decisionTs })
        #expect(bt.trader.position == nil, "closed at the end")
    }

    @Test func pnlIdentity() {
        let bt = backtest(syntheticMarket(minutes: 1_500, seed: 12))
        let net = bt.trader.roundTrips.reduce(0) { $0 + $1.netPnL }
        #expect(isClose(10_000 + net, bt.trader.equity, tolerance: 1e-6))
        #expect(isClose(bt.trader.roundTrips.reduce(0) { $0 + $1.fees }, bt.trader.feesPaid, tolerance: 1e-6))
        #expect(isClose(bt.trader.roundTrips.reduce(0) { $0 + $1.funding }, bt.trader.fundingPaid, tolerance: 1e-6))
    }

    /// An exit decided at the last minute's close (which happens at the end of the data, after the last event) is
    /// filled by the end-of-data quote: nothing stays open and the curve ends at the round trips. On this market the
    /// last minute's decision is a time stop of a short opened an hour earlier.
    @Test func anExitDecidedAtTheLastCloseIsFilledAtTheEnd() throws {
        var features = FeatureConfig.defaults
        (features.alphaBin, features.baseBinTicks, features.binWidthMaxTicks) = (0.25, 1, 200)
        features.minVABins = 10
        var bt = Backtester(features: features, strategy: StrategyConfig.defaults, instrument: btc)
        let market = syntheticMarket(minutes: 600, seed: 13)
        mergeEvents(trades: market.trades, quotes: market.quotes) { bt.process($0) }
        bt.finish()
        let lastDecision = t0 + 600 * 60_000
        let exit = try #require(bt.fills.last)
        #expect(exit.decisionTs == lastDecision && exit.purpose == .exit(.timeStop) && exit.ts > lastDecision)
        #expect(bt.trader.position == nil && bt.trader.workingExitOrders.isEmpty)
        expectCurveEndsAtTheRoundTrips(bt.equity, bt.trader)
    }

    @Test func sameInputsSameRecords() {
        let market = syntheticMarket(minutes: 600, seed: 13)
        let a = backtest(market)
        let b = backtest(market)
        #expect(
            a.fills == b.fills && a.signals == b.signals && a.equity == b.equity
                && a.trader.roundTrips == b.trader.roundTrips)
    }

    @Test func featuresOfAMinuteUseNothingAfterIt() {
        let market = syntheticMarket(minutes: 300, seed: 14)
        var full = FeaturePipeline(config: FeatureConfig.defaults)
        mergeEvents(trades: market.trades, quotes: market.quotes) { full.process($0) }
        full.finish()
        let all = full.takeClosed()
        // Cut the stream at the first event of minute 200: minutes 0...199 must come out the same.
        let cut = t0 + 200 * 60_000
        var partial = FeaturePipeline(config: FeatureConfig.defaults)
        mergeEvents(trades: market.trades.filter { $0.ts <= cut }, quotes: market.quotes.filter { $0.ts <= cut }) {
            partial.process($0)
        }
        let early = partial.takeClosed()
        #expect(early.count == 200)
        #expect(Array(all.prefix(200)) == early)
    }

    @Test func signalsAndEquityHaveOneRowPerMinute() {
        let bt = backtest(syntheticMarket(minutes: 400, seed: 15))
        // Equity: one row per minute, and one after the end-of-data close when a position was open at the end.
        let closedAtEnd = bt.fills.last?.purpose == .exit(.endOfData)
        #expect(bt.signals.count == 400 && bt.equity.count == 400 + (closedAtEnd ? 1 : 0))
        expectCurveEndsAtTheRoundTrips(bt.equity, bt.trader)
        #expect(
            bt.signals.prefix(239).allSatisfy {
                $0.reason == .hold(.warmup) || $0.reason == .hold(.invalidVA) || $0.action == .exit
            })
    }
}

@Suite(.tags(.unit)) struct ReplayTests {
    @Test func replayingPrecomputedFeaturesGivesTheSameBacktest() {
        // A market where the default strategy trades, resting limit entries filling among its entries.
        let market = syntheticMarket(minutes: 900, seed: 6)
        var features = FeatureConfig.defaults
        features.minVABins = 10
        var live = Backtester(features: features, strategy: StrategyConfig.defaults, instrument: btc)
        mergeEvents(trades: market.trades, quotes: market.quotes) { live.process($0) }
        live.finish()
        expectCurveEndsAtTheRoundTrips(live.equity, live.trader)
        var replayed = Backtester(precomputed: live.features, strategy: StrategyConfig.defaults, instrument: btc)
        mergeEvents(trades: market.trades, quotes: market.quotes) { replayed.process($0) }
        replayed.finish()
        expectCurveEndsAtTheRoundTrips(replayed.equity, replayed.trader)
        #expect(live.trader.roundTrips.count > 0 && live.fills.contains { $0.liquidity == .maker })
        #expect(live.fills == replayed.fills && live.signals == replayed.signals && live.equity == replayed.equity)
    }

    /// The streamed grid computes a chunk's minutes and supplies them just before its runs take the chunk: any chunk
    /// size gives the backtest of the minutes supplied all at once.
    @Test func minutesSuppliedChunkByChunkGiveTheSameBacktest() {
        let market = syntheticMarket(minutes: 900, seed: 6)
        var features = FeatureConfig.defaults
        features.minVABins = 10
        var events: [MarketEvent] = []
        mergeEvents(trades: market.trades, quotes: market.quotes) { events.append($0) }
        var live = Backtester(features: features, strategy: StrategyConfig.defaults, instrument: btc)
        for e in events { live.process(e) }
        live.finish()
        for chunkSize in [1, 97, 5_000] {
            var pipeline = FeaturePipeline(config: features)
            var run = Backtester(precomputed: [], strategy: StrategyConfig.defaults, instrument: btc)
            for start in stride(from: 0, to: events.count, by: chunkSize) {
                let chunk = events[start..<min(start + chunkSize, events.count)]
                for e in chunk { pipeline.process(e) }
                run.supply(pipeline.takeClosed())
                for e in chunk { run.process(e) }
            }
            pipeline.finish()
            run.supply(pipeline.takeClosed())
            run.finish()
            #expect(live.fills == run.fills && live.signals == run.signals, "chunks of \(chunkSize)")
            #expect(live.equity == run.equity, "chunks of \(chunkSize)")
        }
    }
}

@Suite(.tags(.unit)) struct SnapshotTests {
    /// The agent snapshots the trader and the paper venue as JSON and restores them after a restart: a run that is
    /// snapshotted and restored midway must decide exactly as one that never stopped.
    @Test func restoredStateDecidesAsIfNeverStopped() throws {
        let market = syntheticMarket(minutes: 1_500, seed: 11)
        var features = FeatureConfig.defaults
        features.minVABins = 10
        var straight = Backtester(features: features, strategy: StrategyConfig.defaults, instrument: btc)
        var restored = Backtester(features: features, strategy: StrategyConfig.defaults, instrument: btc)
        var n = 0
        var snapshots = 0
        mergeEvents(trades: market.trades, quotes: market.quotes) { e in
            straight.process(e)
            restored.process(e)
            n += 1
            // Snapshot often, so some land mid-position and with orders working.
            if n % 5_000 == 0 {
                let (trader, venue) = restored.strategyState
                let data = try! JSONEncoder().encode(trader)
                let venueData = try! JSONEncoder().encode(venue)
                restored.strategyState = (
                    try! JSONDecoder().decode(Trader.self, from: data),
                    try! JSONDecoder().decode(PaperFillModel.self, from: venueData)
                )
                snapshots += 1
            }
        }
        straight.finish()
        expectCurveEndsAtTheRoundTrips(straight.equity, straight.trader)
        restored.finish()
        expectCurveEndsAtTheRoundTrips(restored.equity, restored.trader)
        #expect(snapshots > 10)
        #expect(straight.trader.roundTrips.count >= 3)
        #expect(straight.fills == restored.fills)
        #expect(straight.signals == restored.signals)
        #expect(straight.equity == restored.equity)
    }

    @Test func entryVetoRecordsTheSignalAndTakesNoEntry() {
        let market = syntheticMarket(minutes: 1_500, seed: 11)
        var features = FeatureConfig.defaults
        features.minVABins = 10
        var bt = Backtester(features: features, strategy: StrategyConfig.defaults, instrument: btc)
        bt.entryVeto = .observing
        mergeEvents(trades: market.trades, quotes: market.quotes) { bt.process($0) }
        bt.finish()
        expectCurveEndsAtTheRoundTrips(bt.equity, bt.trader)
        #expect(bt.fills.isEmpty)
        #expect(bt.signals.contains { $0.reason == .vetoed(.observing) })
    }
}
