import AgentConfig
import Engine
import Testing

@Suite(.tags(.unit)) struct BarBacktestTests {
    /// Enters long with the break-in example; the entry fills 1 ms after the close at that close's ask + 1 tick.
    func enteredLong() -> BarBacktester {
        var bt = BarBacktester(strategy: StrategyConfig.defaults, instrument: btc)
        bt.process(bar(warm, o: "49850", h: "49920", l: "49820", c: "49950", crossVAL: true, of: "3", qimb: 0.3))
        bt.process(bar(warm + 1, o: "49950", h: "49960", l: "49940", c: "49955"))
        return bt
    }

    @Test func marketEntryFillsAtTheDecisionQuote() throws {
        let bt = enteredLong()
        let entry = try #require(bt.fills.first)
        #expect(entry.price == px("49950") + 1, "ask 49950 at the close + 1 tick")
        #expect(entry.ts == entry.decisionTs + 1)
        #expect(bt.trader.position?.qty == entry.qty)
    }

    @Test func curveEndsAfterTheEndOfDataClose() throws {
        var bt = enteredLong()
        let rows = bt.equity.count
        bt.finish()
        #expect(bt.equity.count == rows + 1, "one row after the close")
        expectCurveEndsAtTheRoundTrips(bt.equity, bt.trader)
    }

    @Test func barReachingStopAndTargetTakesTheStop() throws {
        var bt = enteredLong()
        // Reaches both the stop (49819.8) and TP2 (50100).
        bt.process(bar(warm + 2, o: "49950", h: "50150", l: "49800", c: "49900"))
        let exit = try #require(bt.fills.last)
        #expect(exit.purpose == .exit(.stop))
        #expect(exit.price == px("49819.8") - 1, "at the level less exit slippage")
        #expect(bt.trader.position == nil)
    }

    @Test func gapBeyondTheStopFillsAtTheOpen() throws {
        var bt = enteredLong()
        bt.process(bar(warm + 2, o: "49700", h: "49750", l: "49650", c: "49700"))
        #expect(bt.fills.last?.price == px("49700") - 1)
    }

    @Test func targetsInOrder() throws {
        var bt = enteredLong()
        let qty = try #require(bt.trader.position?.qty)
        bt.process(bar(warm + 2, o: "49960", h: "50010", l: "49950", c: "50000"))
        #expect(bt.fills.last?.purpose == .exit(.tp1))
        #expect(bt.trader.position?.qty == qty - Sizing.tp1Lots(qty, pct: 0.3)!)
        bt.process(bar(warm + 3, o: "50000", h: "50120", l: "49990", c: "50110"))
        #expect(bt.fills.last?.purpose == .exit(.tp2))
        #expect(bt.trader.position == nil && bt.trader.roundTrips.count == 1)
    }

    @Test func limitEntryFillsOnlyThroughItsPrice() {
        var config = StrategyConfig.defaults
        config.useLimitForEntry = true
        config.limitOrderTimeoutMinutes = 5
        var bt = BarBacktester(strategy: config, instrument: btc)
        // The close 49950 is the ask: a buy limit there would be marketable; use a bar whose close is the bid side.
        var f = bar(warm, o: "49850", h: "49920", l: "49820", c: "49950", crossVAL: true, of: "3", qimb: 0.3)
        f.quote = QuoteAtClose(
            bidPrice: px("49950"), bidSize: 1, askPrice: px("49950.1"), askSize: 1, ts: f.decisionTs - 1)
        bt.process(f)
        bt.process(bar(warm + 1, o: "49960", h: "49970", l: "49950", c: "49960"))
        #expect(bt.fills.isEmpty, "a low at the limit is not through it")
        bt.process(bar(warm + 2, o: "49960", h: "49970", l: "49949.9", c: "49960"))
        #expect(bt.fills.count == 1 && bt.fills[0].liquidity == .maker && bt.fills[0].price == px("49950"))
    }

    /// Live: a timed-out limit entry is cancelled first; the market order replaces it only once the venue confirms
    /// the cancel with nothing filled, and a partial fill of the limit becomes the position instead.
    @Test func timedOutLimitIsReplacedOnlyOnceItsCancelIsConfirmed() throws {
        var config = StrategyConfig.defaults
        config.useLimitForEntry = true
        config.limitOrderTimeoutMinutes = 1
        func started() throws -> (Trader, OrderIntent) {
            var t = Trader(config: config, instrument: btc)
            t.confirmCancelBeforeReplacing = true
            var f = bar(warm, o: "49850", h: "49920", l: "49820", c: "49950", crossVAL: true, of: "3", qimb: 0.3)
            f.quote = QuoteAtClose(
                bidPrice: px("49950"), bidSize: 1, askPrice: px("49950.1"), askSize: 1, ts: f.decisionTs - 1)
            let (_, first) = t.onMinuteClose(f)
            guard case .submit(let limit)? = first.first, case .limit = limit.type else { throw CancellationError() }
            let (_, second) = t.onMinuteClose(bar(warm + 1, o: "49960", h: "49970", l: "49955", c: "49960"))
            #expect(second.count == 1, "only the cancel: \(second)")
            guard case .cancel(let id)? = second.first else { throw CancellationError() }
            #expect(id == limit.id && t.workingEntryOrder?.id == limit.id, "still working until the venue says")
            return (t, limit)
        }
        var (gone, limit) = try started()
        let replaced = gone.onOrderGone(id: limit.id)
        guard case .submit(let market)? = replaced.first else {
            Issue.record("no replacement: \(replaced)")
            return
        }
        #expect(market.type == .market && market.qty == limit.qty && gone.workingEntryOrder?.id == market.id)
        var (partial, limit2) = try started()
        partial.onFill(
            Fill(
                orderId: limit2.id, side: limit2.side, qty: 1, price: px("49950"), ts: 0, decisionTs: limit2.decisionTs,
                liquidity: .maker, fee: 0, purpose: limit2.purpose, referenceMidTwice: nil))
        #expect(
            partial.position?.qty == 1 && partial.workingEntryOrder == nil,
            "the partial fill is the position; nothing replaces it")
    }
}
