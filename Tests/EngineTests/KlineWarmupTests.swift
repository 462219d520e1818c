import AgentConfig
import Engine
import Testing

/// Minutes known only from candles (`FeaturePipeline.addKline`): exact bars, volume spread over the range,
/// no order flow, closes for mids, and a window that says how much of it is approximate.
@Suite(.tags(.unit)) struct KlineWarmupTests {
    static var narrow: FeatureConfig {
        var c = FeatureConfig.defaults
        c.rollingWindowMinutes = 3
        c.baseBinTicks = 1
        c.binWidthMaxTicks = 1
        c.minVABins = 1
        return c
    }

    func bar(_ minute: Int, _ open: String, _ high: String, _ low: String, _ close: String, _ volume: String)
        -> KlineBar
    {
        KlineBar(
            ts: t0 + Int64(minute) * 60_000, open: px(open), high: px(high), low: px(low), close: px(close),
            volume: sz(volume))
    }

    @Test func aCandleMinuteKeepsItsBarAndSpreadsItsVolumeOverItsRange() {
        var p = FeaturePipeline(config: Self.narrow)
        let added1 = p.addKline(bar(0, "100.1", "100.3", "100.0", "100.2", "0.010"))
        #expect(added1)
        p.finish()
        let f = p.takeClosed()[0]
        #expect(
            f.ts == t0 && f.open == px("100.1") && f.high == px("100.3") && f.low == px("100.0")
                && f.close == px("100.2"))
        #expect(f.volume == 10 && f.tradeCount == 0 && f.approximate && f.source == "kline")
        #expect(f.orderFlow == OrderFlowTotals())
        // 10 lots over the 4 one-tick bins 100.0…100.3, every one of them, in whole lots.
        let va = try! #require(f.valueArea)
        #expect(va.total == 10 && va.profileBins == 4)
        #expect(f.approximateLots == 10 && f.approximateShare == 1)
        // Without its turnover, the VWAP is the range's middle.
        #expect(f.vwapTicks == Double(px("100.1")) + 0.5)
    }

    @Test func theSpreadKeepsTheCandlesVWAPAndPeaksNearIt() {
        // VWAP near the high (from the turnover): the volume leans there; VWAP in the middle: symmetric.
        let high = KlineBar(
            ts: t0, open: 1000, high: 1010, low: 1000, close: 1010, volume: 1_000, tickLots: 1_007 * 1_000)
        let spreadHigh = Self.spread(high, config: Self.narrow)
        #expect(spreadHigh.reduce(0, +) == 1_000 && spreadHigh.allSatisfy { $0 > 0 }, "\(spreadHigh)")
        #expect(spreadHigh.firstIndex(of: spreadHigh.max()!)! >= 8, "\(spreadHigh)")
        let mean = zip(spreadHigh, 1000...1010).map { Double($0) * Double($1) }.reduce(0, +) / 1_000
        #expect(abs(mean - 1007) < 0.5, "the spread keeps the candle's VWAP: \(mean)")
        let middle = KlineBar(ts: t0, open: 1000, high: 1010, low: 1000, close: 1010, volume: 1_000)
        let spreadMiddle = Self.spread(middle, config: Self.narrow)
        #expect(spreadMiddle[5] == spreadMiddle.max() && spreadMiddle.reduce(0, +) == 1_000, "\(spreadMiddle)")
        #expect(zip(spreadMiddle, spreadMiddle.reversed()).allSatisfy { abs($0 - $1) <= 1 }, "\(spreadMiddle)")
        // A one-price candle puts everything there.
        #expect(
            Self.spread(
                KlineBar(ts: t0, open: 1000, high: 1000, low: 1000, close: 1000, volume: 7), config: Self.narrow) == [7]
        )
    }

    /// Volume per one-tick bin of a candle minute, low to high.
    static func spread(_ k: KlineBar, config: FeatureConfig) -> [Lots] {
        var p = FeaturePipeline(config: config)
        p.addKline(k)
        return (k.low...k.high).map { p.volume(atBaseBin: floorDiv($0, config.baseBinTicks)) }
    }

    @Test func exactDataWins() {
        var p = FeaturePipeline(config: Self.narrow)
        p.process(trade(t0 + 5, "100", "1"))
        // The minute already holds a trade: its candle is dropped.
        let added2 = p.addKline(bar(0, "100", "101", "99", "100", "5"))
        #expect(!added2)
        #expect(p.droppedKlines == 1)
        let added3 = p.addKline(bar(1, "100", "101", "99", "100", "5"))
        #expect(added3)
        // A trade inside a candle's minute is already in its volume: dropped as late.
        p.process(trade(t0 + 60_010, "100", "1"))
        #expect(p.lateEvents == 1)
        // A candle for a closed minute changes nothing.
        p.process(trade(t0 + 120_010, "100", "1"))
        let added4 = p.addKline(bar(1, "100", "101", "99", "100", "5"))
        #expect(!added4)
        p.finish()
        let rows = p.takeClosed()
        #expect(rows.map(\.volume) == [1000, 5000, 1000])
        #expect(rows.map(\.approximate) == [false, true, false])
    }

    @Test func theApproximateShareFallsAsExactMinutesFillTheWindow() {
        var p = FeaturePipeline(config: Self.narrow)
        p.addKline(bar(0, "100", "100", "100", "100", "1"))
        p.addKline(bar(1, "100", "100.1", "100", "100.1", "1"))
        p.process(trade(t0 + 120_001, "100", "2"))
        p.process(trade(t0 + 180_001, "100", "1"))
        p.process(trade(t0 + 240_001, "100", "1"))
        p.finish()
        let shares = p.takeClosed().map(\.approximateShare)
        // Window of 3 minutes: 1/1, 2/2, 2/4, 1/4 (minute 0 left), 0/4 (both candles left).
        #expect(shares == [1, 1, 0.5, 0.25, 0])
    }

    @Test func anEmptyCandleMinuteRepeatsNothingButItsOwnBar() {
        var p = FeaturePipeline(config: Self.narrow)
        p.addKline(bar(0, "100", "100.2", "99.9", "100.1", "1"))
        // No volume: Bybit still sends the candle, flat at the previous close.
        p.addKline(bar(1, "100.1", "100.1", "100.1", "100.1", "0"))
        p.finish()
        let rows = p.takeClosed()
        #expect(rows[1].volume == 0 && rows[1].close == px("100.1") && rows[1].approximate)
        #expect(rows[1].approximateLots == 1000)
    }

    @Test func closesStandInForMidsAndAnOlderQuoteIsForgotten() {
        var p = FeaturePipeline(config: Self.narrow)
        p.process(quote(t0 - 60_000, bid: "50", "1", ask: "50.1", "1"))
        p.process(trade(t0 - 59_000, "50", "1"))
        p.addKline(bar(0, "100", "100", "100", "100", "1"))
        p.addKline(bar(1, "101", "101", "101", "101", "1"))
        p.addKline(bar(2, "100", "100", "100", "100", "1"))
        p.finish()
        let rows = p.takeClosed()
        // The quote from before the candles is not the quote at their close.
        #expect(rows[1...].allSatisfy { $0.quote == nil })
        // σ from the closes 50.05 (the quote's mid), 100, 101, 100.
        var v = MidReturnVolatility()
        for m in ["100.1", "200", "202", "200"] { _ = v.add(midTwiceTicks: px(m)) }
        #expect(isClose(rows[3].sigma240, v.sigma))
    }

    @Test func crossingUsesTheCandlesRange() {
        var c = Self.narrow
        c.rollingWindowMinutes = 10
        var p = FeaturePipeline(config: c)
        p.process(trade(t0 + 1, "100", "100"))
        p.addKline(bar(1, "100.5", "102", "100.5", "101", "0.001"))
        p.finish()
        let rows = p.takeClosed()
        // The value area sits at 100.0 (all but one lot there): the candle's range 100.5–102 is 5 ticks away.
        #expect(!rows[1].crossesVAL && !rows[1].crossesVAH)
        var q = FeaturePipeline(config: c)
        q.process(trade(t0 + 1, "100", "100"))
        q.addKline(bar(1, "100.1", "102", "99.9", "101", "0.001"))
        q.finish()
        let crossing = q.takeClosed()
        #expect(crossing[1].crossesVAL && crossing[1].crossesVAH)
    }

    @Test func aCandleOfTradesSaysWhatTheyDid() {
        let trades = [
            TradeEvent(ts: t0 + 1, price: 1000, size: 2), TradeEvent(ts: t0 + 2, price: 1003, size: 1),
            TradeEvent(ts: t0 + 3, price: 998, size: 4), TradeEvent(ts: t0 + 4, price: 1001, size: 1),
        ]
        let k = try! #require(KlineBar(minute: t0, trades: trades))
        #expect(
            k
                == KlineBar(
                    ts: t0, open: 1000, high: 1003, low: 998, close: 1001, volume: 8,
                    tickLots: 2000 + 1003 + 3992 + 1001))
        #expect(KlineBar(minute: t0, trades: [TradeEvent]()) == nil)
    }
}
