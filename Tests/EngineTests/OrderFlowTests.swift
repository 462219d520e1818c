import AgentConfig
import Engine
import Testing

@Suite(.tags(.unit)) struct OrderFlowTests {
    /// docs/SPEC.md §3 / issue example: bid 50000 / ask 50001.
    @Test func workedExample() {
        let rows = run([
            quote(t0, bid: "50000", "1", ask: "50001", "1"),
            trade(t0 + 1, "50001", "0.1"),
            trade(t0 + 2, "50000", "0.2"),
            trade(t0 + 3, "50000.5", "0.15"),
            trade(t0 + 4, "50001", "0.25"),
        ])
        let m = rows[0]
        #expect(m.orderFlow.signedVolume == sz("0.3"))
        #expect(formatNumber(btc.size(m.orderFlow.signedVolume)) == "0.3")
        #expect(isClose(m.ofNorm, 0.3 / 0.7))
        #expect(formatNumber(m.ofNorm).hasPrefix("0.4285"))
        #expect(isClose(m.ambiguousFraction, 0.15 / 0.7))
        #expect(formatNumber(m.ambiguousFraction).hasPrefix("0.2142"))
        #expect(m.orderFlow.prints == 4)
    }

    @Test func tradesWithOneTimestampAreOnePrint() {
        // Split fill: 50000.1 x 0.1 and 50000.3 x 0.1 → print price 50000.2, inside a 50000.0 / 50000.4 quote.
        // One print, classified once: ambiguous, and with no predecessor the tick rule gives 0.
        let rows = run([
            quote(t0, bid: "50000", "1", ask: "50000.4", "1"),
            trade(t0 + 5, "50000.1", "0.1"),
            trade(t0 + 5, "50000.3", "0.1"),
        ])
        #expect(rows[0].orderFlow.prints == 1)
        #expect(rows[0].orderFlow.ambiguousVolume == sz("0.2"))
        #expect(rows[0].orderFlow.signedVolume == 0)
    }

    /// docs/SPEC.md §1: at equal timestamps the quote goes before the trade, in whatever order they arrive (the live
    /// streams deliver trades and the book on separate topics).
    @Test func aQuoteArrivingAfterTradesOfItsMillisecondStillGoesFirst() {
        let inOrder = run([
            quote(t0, bid: "50000", "1", ask: "50000.4", "1"),
            quote(t0 + 5, bid: "50000.3", "1", ask: "50000.5", "1"),
            trade(t0 + 5, "50000.1", "0.1"),
            trade(t0 + 5, "50000.2", "0.1"),
            trade(t0 + 9, "50000.5", "0.2"),
        ])
        let arrived = run([
            quote(t0, bid: "50000", "1", ask: "50000.4", "1"),
            trade(t0 + 5, "50000.1", "0.1"),
            quote(t0 + 5, bid: "50000.3", "1", ask: "50000.5", "1"),
            trade(t0 + 5, "50000.2", "0.1"),
            trade(t0 + 9, "50000.5", "0.2"),
        ])
        // The print at t0 + 5 (50000.15) is a sell against the quote of its millisecond (bid 50000.3), ambiguous
        // against the one before.
        #expect(inOrder[0].orderFlow == arrived[0].orderFlow)
        #expect(inOrder[0].orderFlow.signedVolume == 0 && inOrder[0].orderFlow.ambiguousVolume == 0)
    }

    @Test func printPriceIsTheSizeWeightedMean() {
        // 50000 x 0.3 + 50001 x 0.1 → 50000.25 < ask 50001, > bid 50000: ambiguous. Against a quote whose ask is
        // 50000.2 it is a buy (price >= ask), compared exactly in integers.
        let rows = run([
            quote(t0, bid: "49999.9", "1", ask: "50000.2", "1"),
            trade(t0 + 5, "50000", "0.3"),
            trade(t0 + 5, "50001", "0.1"),
        ])
        #expect(rows[0].orderFlow.signedVolume == sz("0.4"))
        #expect(rows[0].orderFlow.ambiguousVolume == 0)
    }

    @Test func priceAtTheAskIsABuyAndAtTheBidASell() {
        let rows = run([
            quote(t0, bid: "50000", "1", ask: "50000.1", "1"),
            trade(t0 + 1, "50000.1", "1"),
            trade(t0 + 2, "50000.2", "2"),
            trade(t0 + 3, "50000", "4"),
            trade(t0 + 4, "49999", "8"),
        ])
        #expect(rows[0].orderFlow.signedVolume == sz("1") + sz("2") - sz("4") - sz("8"))
    }

    @Test func noQuoteYetIsAmbiguousAndTheFirstPrintHasNoTickSign() {
        let rows = run([
            trade(t0 + 1, "50000", "1"),
            trade(t0 + 2, "50001", "2"),
            trade(t0 + 3, "50000.5", "4"),
        ])
        // First: 0 (no previous print); second: up tick +2; third: down tick -4.
        #expect(rows[0].orderFlow.signedVolume == sz("2") - sz("4"))
        #expect(rows[0].orderFlow.ambiguousVolume == sz("7"))
        #expect(rows[0].ambiguousFraction == 1)
    }

    @Test func zeroTickContinuesThePreviousFinalSign() {
        let rows = run([
            quote(t0, bid: "49990", "1", ask: "50010", "1"),
            trade(t0 + 1, "50010", "1"),  // at ask: +1
            trade(t0 + 2, "50000", "1"),  // inside, down tick: -1
            trade(t0 + 3, "50000", "1"),  // inside, zero tick: previous final sign -1
            trade(t0 + 4, "49990", "1"),  // at bid: -1
            trade(t0 + 5, "49990", "1"),  // at bid: -1
            trade(t0 + 6, "50000", "1"),  // inside, up tick: +1
            trade(t0 + 7, "50000", "1"),  // inside, zero tick: +1
        ])
        #expect(rows[0].orderFlow.signedVolume == sz("1") * (1 - 1 - 1 - 1 - 1 + 1 + 1))
        #expect(rows[0].orderFlow.ambiguousVolume == sz("4"))
    }

    @Test func zeroTickAfterAQuoteRuleSignUsesIt() {
        let rows = run([
            quote(t0, bid: "49990", "1", ask: "50000", "1"),
            trade(t0 + 1, "50000", "1"),  // at ask: +1
            quote(t0 + 2, bid: "49990", "1", ask: "50010", "1"),
            trade(t0 + 3, "50000", "1"),  // inside now, same price as before: +1
        ])
        #expect(rows[0].orderFlow.signedVolume == sz("2"))
    }

    @Test func withoutFallbackAmbiguousPrintsStayUnsigned() {
        var config = FeatureConfig.defaults
        config.useTickRuleFallback = false
        let rows = run(
            [
                quote(t0, bid: "49990", "1", ask: "50010", "1"),
                trade(t0 + 1, "50010", "1"),
                trade(t0 + 2, "50005", "1"),
            ],
            config: config
        )
        #expect(rows[0].orderFlow.signedVolume == sz("1"))
        #expect(rows[0].orderFlow.ambiguousVolume == sz("1"))
    }

    @Test func staleQuotesAreStillUsedAndCounted() {
        let rows = run([
            quote(t0, bid: "50000", "1", ask: "50000.1", "1"),
            trade(t0 + 250, "50000.1", "1"),  // exactly at the limit: not stale
            trade(t0 + 251, "50000", "1"),  // stale, still a sell
        ])
        #expect(rows[0].orderFlow.staleAlignedPrints == 1)
        #expect(rows[0].orderFlow.signedVolume == 0)
        #expect(rows[0].orderFlow.ambiguousVolume == 0)
    }

    @Test func quoteWithTheSameTimestampComesFirst() {
        var p = FeaturePipeline(config: FeatureConfig.defaults)
        let quotes = [
            QuoteEvent(ts: t0, bidPrice: px("50000"), bidSize: 1, askPrice: px("50000.1"), askSize: 1),
            QuoteEvent(ts: t0 + 7, bidPrice: px("50001"), bidSize: 1, askPrice: px("50001.1"), askSize: 1),
        ]
        let trades = [TradeEvent(ts: t0 + 7, price: px("50001"), size: sz("1"))]
        mergeEvents(trades: trades, quotes: quotes) { p.process($0) }
        p.finish()
        // Aligned to the quote at t0 + 7 (bid 50001): a sell. Against the earlier quote it would be a buy.
        #expect(p.takeClosed()[0].orderFlow.signedVolume == -sz("1"))
    }

    @Test func exchangeSideAndInferenceAccuracy() {
        let events = [
            quote(t0, bid: "50000", "1", ask: "50000.1", "1"),
            trade(t0 + 1, "50000.1", "1", .buy),  // inferred +1, agrees
            trade(t0 + 2, "50000", "2", .buy),  // inferred -1, disagrees
            trade(t0 + 3, "50000", "3", .sell),  // inferred -1, agrees
        ]
        var config = FeatureConfig.defaults
        config.sideSource = .inferred
        let inferred = run(events, config: config)[0]
        #expect(inferred.orderFlow.signedVolume == sz("1") - sz("5"))
        config.sideSource = .exchange
        let exchange = run(events, config: config)[0]
        #expect(exchange.orderFlow.signedVolume == sz("3") - sz("3"))
        config.sideSource = .auto
        let auto = run(events, config: config)[0]
        #expect(auto.orderFlow.signedVolume == 0)
        #expect(auto.orderFlow.inferredSignedVolume == sz("1") - sz("5"))
        #expect(auto.orderFlow.inferenceAccuracy == 4.0 / 6.0)
    }

    @Test func autoFallsBackToInferenceWhereTheFeedHasNoSide() {
        let rows = run([
            quote(t0, bid: "50000", "1", ask: "50000.1", "1"),
            trade(t0 + 1, "50000", "1", .buy),  // exchange says buy (counts +1 under auto)
            trade(t0 + 2, "50000", "2"),  // no side: inferred -1
        ])
        #expect(rows[0].orderFlow.signedVolume == sz("1") - sz("2"))
        #expect(rows[0].orderFlow.inferenceAccuracy == 0)
    }
}

@Suite("Footprint", .tags(.unit))
struct FootprintTests {
    private func config(_ source: SideSource) -> FeatureConfig {
        var c = FeatureConfig.defaults
        c.sideSource = source
        c.baseBinTicks = 5
        return c
    }

    @Test("each trade lands in its base bin with the sign the order flow counts; off by default")
    func signedByTheCountingRule() {
        var p = FeaturePipeline(config: config(.inferred))
        #expect(!p.recordsFootprint)
        p.recordsFootprint = true
        let m: Int64 = 60_000
        p.onQuote(QuoteEvent(ts: m, bidPrice: 1000, bidSize: 5, askPrice: 1001, askSize: 5))
        // A print of two trades at the ask (buyer), one at the bid (seller), one between (ambiguous, tick rule up).
        p.onTrade(TradeEvent(ts: m + 1, price: 1001, size: 3, side: .sell))
        p.onTrade(TradeEvent(ts: m + 1, price: 1001, size: 2, side: .sell))
        p.onTrade(TradeEvent(ts: m + 2, price: 1000, size: 4))
        p.onQuote(QuoteEvent(ts: m + 3, bidPrice: 990, bidSize: 5, askPrice: 1010, askSize: 5))
        p.onTrade(TradeEvent(ts: m + 4, price: 1003, size: 1))
        p.finish()
        let prints = p.takeFootprints()
        #expect(prints.count == 1)
        let f = prints[0]
        #expect(f.ts == m)
        #expect(f.baseBinTicks == 5)
        // 1000, 1001 and 1003 are all in bin 200; inferred signs: +5 (ask), −4 (bid), +1 (tick rule: up).
        #expect(f.levels == [FootprintMinute.Level(bin: 200, buy: 6, sell: 4, unsigned: 0)])
        #expect(f.volume == 10)
    }

    @Test("side_source exchange: the feed's own sides; an unsided trade without a quote stays unsigned")
    func exchangeSides() {
        var c = config(.exchange)
        c.useTickRuleFallback = false
        var p = FeaturePipeline(config: c)
        p.recordsFootprint = true
        let m: Int64 = 60_000
        p.onTrade(TradeEvent(ts: m + 1, price: 1001, size: 3, side: .sell))
        p.onTrade(TradeEvent(ts: m + 2, price: 1012, size: 2, side: .buy))
        p.onTrade(TradeEvent(ts: m + 3, price: 1012, size: 7))
        p.finish()
        let f = p.takeFootprints()[0]
        #expect(
            f.levels == [
                FootprintMinute.Level(bin: 200, buy: 0, sell: 3, unsigned: 0),
                FootprintMinute.Level(bin: 202, buy: 2, sell: 0, unsigned: 7),
            ])
    }

    @Test("recording changes no feature")
    func sameFeatures() {
        var a = FeaturePipeline(config: config(.auto))
        var b = FeaturePipeline(config: config(.auto))
        b.recordsFootprint = true
        for i in 0..<500 {
            let ts: Int64 = 60_000 + Int64(i) * 397
            let shift = Int64(i % 7)
            let q = QuoteEvent(ts: ts, bidPrice: 1000 + shift, bidSize: 3, askPrice: 1001 + shift, askSize: 4)
            let side: TakerSide = i % 3 == 0 ? .unknown : (i % 2 == 0 ? .buy : .sell)
            let t = TradeEvent(ts: ts + 1, price: 1000 + Int64(i % 9), size: Int64(1 + i % 4), side: side)
            a.onQuote(q); b.onQuote(q); a.onTrade(t); b.onTrade(t)
        }
        a.finish(); b.finish()
        #expect(a.takeClosed() == b.takeClosed())
        let prints = b.takeFootprints()
        #expect(prints.count == 4)
        let recorded = prints.map(\.volume).reduce(0, +)
        let traded = (0..<500).map { Int64(1 + $0 % 4) }.reduce(0, +)
        #expect(recorded == traded)
    }
}

/// BVC, the original's manual fallback (docs/SPEC.md §3): worked example with a three-minute lookback.
@Suite(.tags(.unit)) struct BVCTests {
    @Test func workedExample() {
        // Closes 50000.0, 50000.2, 50000.1, 50000.4, 50000.0: changes +2, -1, +3, -4 ticks.
        var config = FeatureConfig.defaults
        config.orderFlowMethod = .bvc
        config.bvcLookbackMinutes = 3
        let rows = run(
            [
                quote(t0, bid: "49999.9", "1", ask: "50000", "1"),
                trade(t0 + 1, "50000", "1"),
                trade(t0 + 60_001, "50000.2", "1"),
                trade(t0 + 120_001, "50000.1", "1"),
                trade(t0 + 180_001, "50000.4", "10"),
                trade(t0 + 240_001, "50000", "2"),
                trade(t0 + 300_001, "50000", "1"),
            ], config: config)
        let of = rows.map { $0.orderFlow.signedVolume }
        // Minute 0: no change yet; minute 1: one change, no deviation: a share of one half.
        #expect(of[0] == 0 && of[1] == 0)
        // Minute 2: changes {+2, -1}, sd 2.1213; z = -0.4714, Φ = 0.31868; 1 BTC × (2Φ - 1) = -0.36265 → -0.363.
        #expect(of[2] == sz("-0.363"))
        // Minute 3: changes {+2, -1, +3}, sd 2.0817; z = 1.44115, Φ = 0.92523; 10 BTC × 0.85046 = 8.50459 → 8.505.
        #expect(of[3] == sz("8.505"))
        // Minute 4: the oldest change leaves: {-1, +3, -4}, sd 3.5119; z = -1.13899, Φ = 0.12736; 2 BTC → -1.491.
        #expect(of[4] == sz("-1.491"))
        #expect(rows.allSatisfy { $0.orderFlowMethod == .bvc })
        #expect(FeaturesCSV.row(rows[3], instrument: btc).hasSuffix(",bvc"))
        #expect(FeaturesCSV.header(method: .bvc) == FeaturesCSV.header + ",of_method")
        #expect(FeaturesCSV.header(method: .quoteRule) == FeaturesCSV.header)
    }

    @Test func buyShareIsTheNormalDistributionOfTheStandardisedChange() {
        #expect(FeaturePipeline.bvcBuyShare(change: 0, changes: [1, -1]) == 0.5)
        #expect(FeaturePipeline.bvcBuyShare(change: 5, changes: [5]) == 0.5, "one change: no deviation")
        #expect(FeaturePipeline.bvcBuyShare(change: 0, changes: [0, 0, 0]) == 0.5, "a flat market")
        #expect(
            isClose(FeaturePipeline.bvcBuyShare(change: 3, changes: [2, -1, 3]), 0.9252293227076924, tolerance: 1e-12))
    }
}
