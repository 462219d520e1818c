import AgentConfig
import Engine
import Testing

@Suite(.tags(.unit)) struct BarTests {
    @Test func barHoldsTheMinutesTrades() {
        let rows = run([
            quote(t0, bid: "50000", "1", ask: "50000.1", "2"),
            trade(t0 + 100, "50000.1", "0.5"),
            trade(t0 + 200, "50000.5", "0.1"),
            trade(t0 + 300, "49999.5", "0.2"),
            trade(t0 + 59_999, "50000", "0.2"),
        ])
        #expect(rows.count == 1)
        let b = rows[0]
        #expect(b.ts == t0)
        #expect(b.open == px("50000.1"))
        #expect(b.high == px("50000.5"))
        #expect(b.low == px("49999.5"))
        #expect(b.close == px("50000"))
        #expect(b.volume == sz("1"))
        #expect(b.tradeCount == 4)
        // vwap = (50000.1*0.5 + 50000.5*0.1 + 49999.5*0.2 + 50000*0.2) / 1
        #expect(isClose(btc.price(b.tickLots, over: b.volume), 50000.0))
        #expect(isClose(b.vwapTicks, 500_000.0))
    }

    @Test func barIsFinalOnTheFirstEventOfALaterMinute() {
        var p = FeaturePipeline(config: FeatureConfig.defaults)
        p.process(trade(t0 + 10, "50000", "1"))
        p.process(trade(t0 + 59_999, "50001", "1"))
        #expect(p.takeClosed().isEmpty)
        p.process(quote(t0 + 60_000, bid: "50000", "1", ask: "50000.1", "1"))
        let closed = p.takeClosed()
        #expect(closed.count == 1)
        #expect(closed[0].close == px("50001"))
        // The quote at m + 60000 belongs to the next minute, not to the closed one.
        #expect(closed[0].quote == nil)
    }

    @Test func emptyMinuteRepeatsThePreviousClose() {
        let rows = run([
            trade(t0 + 1_000, "50000", "1"),
            trade(t0 + 2_000, "50010", "1"),
            trade(t0 + 180_500, "50020", "1"),
        ])
        #expect(rows.map(\.ts) == [t0, t0 + 60_000, t0 + 120_000, t0 + 180_000])
        for empty in rows[1...2] {
            #expect(empty.open == px("50010") && empty.high == px("50010"))
            #expect(empty.low == px("50010") && empty.close == px("50010"))
            #expect(empty.vwapTicks == Double(px("50010")))
            #expect(empty.volume == 0 && empty.tradeCount == 0)
            #expect(empty.ofNorm == 0 && empty.ambiguousFraction == 0)
        }
        #expect(rows[3].open == px("50020"))
        #expect(rows.map(\.index) == [0, 1, 2, 3])
    }

    @Test func rowsRunFromTheFirstTradeToTheLastEvent() {
        let rows = run([
            quote(t0 - 120_000, bid: "49999", "1", ask: "49999.1", "1"),
            trade(t0 + 5, "50000", "1"),
            quote(t0 + 150_000, bid: "50000", "1", ask: "50000.1", "1"),
        ])
        // No rows for the quote-only minutes before the first trade; a row for the quote-only last minute.
        #expect(rows.map(\.ts) == [t0, t0 + 60_000, t0 + 120_000])
        // The early quote is carried forward however old.
        #expect(rows[0].quote?.bidPrice == px("49999"))
        #expect(rows[0].quoteAgeMs == 180_000)
        #expect(rows[2].quote?.bidPrice == px("50000"))
    }

    @Test func quoteFieldsAreEmptyUntilTheFirstQuote() {
        let rows = run([
            trade(t0 + 5, "50000", "1"),
            quote(t0 + 70_000, bid: "50000", "3", ask: "50000.2", "1"),
            trade(t0 + 70_001, "50000", "1"),
        ])
        #expect(rows[0].quote == nil && rows[0].qimbEma == nil && rows[0].spreadAverageTicks == nil)
        let line = FeaturesCSV.row(rows[0], instrument: btc).split(separator: ",", omittingEmptySubsequences: false)
        #expect(line[8...14].allSatisfy { $0.isEmpty })
        #expect(line[28] == "" && line[29] == "")
        #expect(rows[1].quote?.spreadTicks == 2)
        #expect(rows[1].quote?.imbalance == 0.5)
    }

    @Test func spreadAverageCoversTheLastSixtyBars() {
        var events: [MarketEvent] = []
        // Spread 1 tick for 60 minutes, then 3 ticks for 30 minutes.
        for i in 0..<90 {
            let m = t0 + Millis(i) * 60_000
            let ask = i < 60 ? "50000.1" : "50000.3"
            events.append(quote(m, bid: "50000", "1", ask: ask, "1"))
            events.append(trade(m + 1, "50000", "1"))
        }
        let rows = run(events)
        #expect(rows[0].spreadAverageTicks == 1)
        #expect(rows[59].spreadAverageTicks == 1)
        #expect(rows[60].spreadAverageTicks == Double(59 + 3) / 60)
        #expect(rows[89].spreadSumTicks == 30 * 1 + 30 * 3 && rows[89].spreadCount == 60)
    }

    @Test func lateEventsAreDroppedAndCounted() {
        var p = FeaturePipeline(config: FeatureConfig.defaults)
        p.process(trade(t0 + 10, "50000", "1"))
        p.process(trade(t0 + 60_010, "50001", "1"))
        p.process(trade(t0 + 20, "49000", "5"))
        p.finish()
        let rows = p.takeClosed()
        #expect(p.lateEvents == 1)
        #expect(rows[0].volume == sz("1") && rows[1].low == px("50001"))
    }

    @Test func liveClockClosesAfterTheGrace() {
        var p = FeaturePipeline(config: FeatureConfig.defaults)
        p.process(trade(t0 + 10, "50000", "1"))
        p.advanceClock(to: t0 + 60_000 + 249)
        #expect(p.takeClosed().isEmpty)
        p.advanceClock(to: t0 + 60_000 + 250)
        #expect(p.takeClosed().map(\.ts) == [t0])
        p.advanceClock(to: t0 + 180_250)
        #expect(p.takeClosed().map(\.ts) == [t0 + 60_000, t0 + 120_000])
    }
}
