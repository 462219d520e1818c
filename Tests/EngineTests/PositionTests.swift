import AgentConfig
import Engine
import Foundation
import Testing

/// Enters long with the break-in example and fills it at 49950.1; returns the trader.
func longBreakIn(config: StrategyConfig = StrategyConfig.defaults, index: Int = warm) -> Trader {
    var trader = Trader(config: config, instrument: btc)
    let (_, actions) = trader.onMinuteClose(
        bar(index, o: "49850", h: "49920", l: "49820", c: "49950", crossVAL: true, of: "3", qimb: 0.3))
    trader.onFill(fill(submitted(actions)[0], at: "49950.1", ts: t0 + Millis(index + 1) * 60_000 + 5, config: config))
    return trader
}

@Suite(.tags(.unit)) struct SizingTests {
    @Test func riskBasedSizeExample() throws {
        // 10,000 margin, 2 %, entry 50,000, stop 49,500 → 0.4 BTC, 20,000 notional (2x).
        let r = try #require(
            Sizing.size(
                direction: .long, entry: px("50000"), stop: px("49500"), availableMargin: 10_000,
                config: StrategyConfig.defaults, instrument: btc))
        #expect(r.lots == sz("0.4") && !r.leverageCapHit)
    }

    @Test func leverageCapBinds() throws {
        // Stop 10 USDT away: 200 / 10 = 20 BTC = 1,000,000 notional; the cap is 100,000 → 2 BTC.
        let r = try #require(
            Sizing.size(
                direction: .long, entry: px("50000"), stop: px("49990"), availableMargin: 10_000,
                config: StrategyConfig.defaults, instrument: btc))
        #expect(r.lots == sz("2") && r.leverageCapHit)
    }

    @Test func sizeRoundsDownToTheStep() throws {
        // 200 / 333 = 0.6006 BTC → 0.6.
        let r = try #require(
            Sizing.size(
                direction: .short, entry: px("50000"), stop: px("50333"), availableMargin: 10_000,
                config: StrategyConfig.defaults, instrument: btc))
        #expect(r.lots == 600)
        #expect(
            Sizing.size(
                direction: .long, entry: px("50000"), stop: px("50001"), availableMargin: 10_000,
                config: StrategyConfig.defaults, instrument: btc) == nil)
    }

    @Test func belowMinimumQuantityHolds() {
        var config = StrategyConfig.defaults
        config.riskPct = 0.000001
        var trader = Trader(config: config, instrument: btc)
        let (record, actions) = trader.onMinuteClose(
            bar(warm, o: "49850", h: "49920", l: "49820", c: "49950", crossVAL: true, of: "3", qimb: 0.3))
        #expect(record.reason == .hold(.sizeBelowMin) && actions.isEmpty)
    }

    @Test func leverageCapRaisesAnAlert() {
        var config = StrategyConfig.defaults
        config.riskPct = 0.5
        var trader = Trader(config: config, instrument: btc)
        _ = trader.onMinuteClose(
            bar(warm, o: "49850", h: "49920", l: "49820", c: "49950", crossVAL: true, of: "3", qimb: 0.3))
        #expect(trader.alerts.map(\.kind.rawValue) == ["leverage_cap_hit"])
    }

    @Test func tp1QuantityRoundsToNearestStepWithinThePosition() {
        #expect(Sizing.tp1Lots(1, pct: 0.5) == nil, "one step: skips TP1")
        #expect(Sizing.tp1Lots(2, pct: 0.5) == 1)
        #expect(Sizing.tp1Lots(3, pct: 0.5) == 2, "1.5 rounds half away from zero")
        #expect(Sizing.tp1Lots(5, pct: 0.1) == 1, "at least one step")
        #expect(Sizing.tp1Lots(4, pct: 0.99) == 3, "never the whole position")
    }
}

@Suite(.tags(.unit)) struct PositionManagementTests {
    @Test func stopTriggersOnTheFirstTradeAtTheLevel() throws {
        var trader = longBreakIn()
        #expect(trader.onTrade(TradeEvent(ts: t0 + 20_000_000, price: px("49819.9"), size: 1)).isEmpty)
        let exits = submitted(trader.onTrade(TradeEvent(ts: t0 + 20_000_001, price: px("49819.8"), size: 1)))
        #expect(exits.count == 1 && exits[0].purpose == .exit(.stop) && exits[0].qty == trader.position?.qty)
        // Nothing more while the exit is working.
        #expect(trader.onTrade(TradeEvent(ts: t0 + 20_000_002, price: px("49000"), size: 1)).isEmpty)
    }

    @Test func tp1ClosesPartAndMovesTheStopToBreakeven() throws {
        var trader = longBreakIn()
        let qty = try #require(trader.position?.qty)
        let tp1 = submitted(trader.onTrade(TradeEvent(ts: t0 + 20_000_000, price: px("50000"), size: 1)))
        #expect(tp1.count == 1 && tp1[0].purpose == .exit(.tp1) && tp1[0].qty == Sizing.tp1Lots(qty, pct: 0.3))
        trader.onFill(fill(tp1[0], at: "49999.9", ts: t0 + 20_000_010))
        let p = try #require(trader.position)
        #expect(p.qty == qty - tp1[0].qty && p.tp1Done)
        #expect(p.stopTwice == 2 * px("49950.1"))
        // TP2 closes the rest.
        let tp2 = submitted(trader.onTrade(TradeEvent(ts: t0 + 20_000_020, price: px("50100"), size: 1)))
        #expect(tp2.count == 1 && tp2[0].purpose == .exit(.tp2) && tp2[0].qty == p.qty)
        trader.onFill(fill(tp2[0], at: "50099.9", ts: t0 + 20_000_030))
        #expect(trader.position == nil)
        #expect(trader.roundTrips.count == 1 && trader.roundTrips[0].exitReasons == [.tp1, .tp2])
    }

    @Test func oneStepPositionSkipsTP1() {
        var config = StrategyConfig.defaults
        config.riskPct = 0.0014  // 14 USDT over a 130.3 USDT stop: 0.107 BTC... scaled below to one step
        config.initialEquity = 100
        var trader = Trader(config: config, instrument: btc)
        let (_, actions) = trader.onMinuteClose(
            bar(warm, o: "49850", h: "49920", l: "49820", c: "49950", crossVAL: true, of: "3", qimb: 0.3))
        let entry = submitted(actions)
        #expect(entry.count == 1 && entry[0].qty == 1, "a one-step position: \(entry.map(\.qty))")
        guard let e = entry.first else { return }
        trader.onFill(fill(e, at: "49950.1", ts: t0 + 18_060_005, config: config))
        #expect(trader.position?.tp1Lots == nil && trader.position?.tp1Twice == nil)
        #expect(trader.onTrade(TradeEvent(ts: t0 + 20_000_000, price: px("50000"), size: 1)).isEmpty)
        #expect(
            submitted(trader.onTrade(TradeEvent(ts: t0 + 20_000_001, price: px("50100"), size: 1)))[0].purpose
                == .exit(.tp2))
    }

    @Test func timeStopAfterMaxHoldUnlessProfitAboveFees() {
        var config = StrategyConfig.defaults
        config.maxHoldMinutes = 3
        // Losing position: exits at the third close after the clock started.
        var losing = longBreakIn(config: config)
        for k in 1...3 {
            let (record, _) = losing.onMinuteClose(bar(warm + k, o: "49940", h: "49950", l: "49930", c: "49940"))
            #expect(record.action == .hold, "minute \(k)")
        }
        let (exit, actions) = losing.onMinuteClose(bar(warm + 4, o: "49940", h: "49950", l: "49930", c: "49940"))
        #expect(exit.action == .exit && exit.reason == .exit(.timeStop) && submitted(actions).count == 1)

        // Profitable beyond the round-trip fees: extended.
        var winning = longBreakIn(config: config)
        for k in 1...4 { _ = winning.onMinuteClose(bar(warm + k, o: "50050", h: "50055", l: "50045", c: "50050")) }
        #expect(winning.position?.closing == false)
        // Profit below the fees (0.2 BTC-ish at ~10 bps round trip ≈ 11 USDT): exits.
        config.extendIfProfitable = false
        var strict = longBreakIn(config: config)
        for k in 1...3 { _ = strict.onMinuteClose(bar(warm + k, o: "49990", h: "49995", l: "49985", c: "49990")) }
        let (r, _) = strict.onMinuteClose(bar(warm + 4, o: "49990", h: "49995", l: "49985", c: "49990"))
        #expect(r.reason == .exit(.timeStop))
    }

    @Test func sameDirectionSignalIsIgnoredAndOppositeFlips() throws {
        var trader = longBreakIn()
        let (same, none) = trader.onMinuteClose(
            bar(warm + 1, o: "49850", h: "49920", l: "49820", c: "49950", crossVAL: true, of: "3", qimb: 0.3))
        #expect(same.reason == .hold(.inPosition) && none.isEmpty)
        let (flip, actions) = trader.onMinuteClose(
            bar(warm + 2, o: "50150", h: "50180", l: "50080", c: "50050", crossVAH: true, of: "-3", qimb: -0.3))
        #expect(flip.action == .flipShort)
        let orders = submitted(actions)
        #expect(orders.map(\.purpose) == [.exit(.flip), .entry(.breakIn)])
        #expect(orders[0].reduceOnly && orders[0].side == .short && !orders[1].reduceOnly && orders[1].side == .short)
        let ts = t0 + Millis(warm + 3) * 60_000 + 1
        trader.onFill(fill(orders[0], at: "50049.9", ts: ts))
        trader.onFill(fill(orders[1], at: "50049.9", ts: ts))
        #expect(trader.position?.direction == .short)
        // A flip is not a close: no cooldown.
        #expect(trader.roundTrips.count == 1)
    }

    @Test func noFlipWhenDisabled() {
        var config = StrategyConfig.defaults
        config.enableFlipOnSignal = false
        var trader = longBreakIn(config: config)
        let (r, a) = trader.onMinuteClose(
            bar(warm + 2, o: "50150", h: "50180", l: "50080", c: "50050", crossVAH: true, of: "-3", qimb: -0.3))
        #expect(r.reason == .hold(.inPosition) && a.isEmpty)
    }

    @Test func signalIsIgnoredWhileAnEntryIsWorking() {
        var trader = Trader(config: StrategyConfig.defaults, instrument: btc)
        _ = trader.onMinuteClose(
            bar(warm, o: "49850", h: "49920", l: "49820", c: "49950", crossVAL: true, of: "3", qimb: 0.3))
        let (r, a) = trader.onMinuteClose(
            bar(warm + 1, o: "50150", h: "50180", l: "50080", c: "50050", crossVAH: true, of: "-3", qimb: -0.3))
        #expect(r.reason == .hold(.entryWorking) && a.isEmpty)
    }

    @Test func cooldownAfterAClose() throws {
        var trader = longBreakIn()
        let stop = submitted(
            trader.onTrade(TradeEvent(ts: t0 + Millis(warm + 2) * 60_000 + 100, price: px("49800"), size: 1)))
        trader.onFill(fill(stop[0], at: "49799.9", ts: t0 + Millis(warm + 2) * 60_000 + 200))
        #expect(trader.position == nil)
        // Decision at (warm + 3) * 60 s: within 3 minutes of the close at (warm + 2) min + 200 ms.
        let (r1, a1) = trader.onMinuteClose(
            bar(warm + 2, o: "49850", h: "49920", l: "49820", c: "49950", crossVAL: true, of: "3", qimb: 0.3))
        #expect(r1.reason == .hold(.cooldown) && a1.isEmpty)
        let (r2, _) = trader.onMinuteClose(
            bar(warm + 4, o: "49850", h: "49920", l: "49820", c: "49950", crossVAL: true, of: "3", qimb: 0.3))
        #expect(r2.reason == .hold(.cooldown))
        let (r3, a3) = trader.onMinuteClose(
            bar(warm + 5, o: "49850", h: "49920", l: "49820", c: "49950", crossVAL: true, of: "3", qimb: 0.3))
        #expect(r3.action == .enterLong && !a3.isEmpty)
    }

    @Test func targetAlreadyPassedIsNoTrade() {
        var trader = Trader(config: StrategyConfig.defaults, instrument: btc)
        // VAH (TP2) below the close: the target is behind the entry.
        let (r, a) = trader.onMinuteClose(
            bar(
                warm, o: "49850", h: "49960", l: "49820", c: "49950", val: "49900", vah: "49940", poc: "49920",
                crossVAL: true, of: "3", qimb: 0.3))
        #expect(r.detections.breakInLong && r.reason == .hold(.targetBehindEntry) && a.isEmpty)
    }
}

@Suite(.tags(.unit)) struct AccountTests {
    @Test func feesAndPnLArithmetic() throws {
        var trader = longBreakIn()
        let p = try #require(trader.position)
        let entryFee = 49950.1 * btc.size(p.qty) * 5.5 / 10_000
        #expect(isClose(trader.feesPaid, entryFee, tolerance: 1e-9))
        trader.onQuote(QuoteEvent(ts: 0, bidPrice: px("50000"), bidSize: 1, askPrice: px("50000.2"), askSize: 1))
        #expect(isClose(trader.unrealized, (50000.1 - 49950.1) * btc.size(p.qty), tolerance: 1e-9))
        #expect(isClose(trader.equity, 10_000 - entryFee + (50000.1 - 49950.1) * btc.size(p.qty), tolerance: 1e-9))
    }

    @Test func fundingEveryEightHoursLongPaysWhenPositive() throws {
        var trader = longBreakIn()
        let qty = btc.size(trader.position!.qty)
        trader.onQuote(QuoteEvent(ts: 0, bidPrice: px("50000"), bidSize: 1, askPrice: px("50000.2"), askSize: 1))
        let day: Millis = 86_400_000
        let midnight = (t0 / day + 1) * day
        trader.advanceTime(to: midnight - 1)
        let before = trader.cash
        trader.advanceTime(to: midnight)  // 00:00
        #expect(isClose(before - trader.cash, 50000.1 * qty * 1.0 / 10_000, tolerance: 1e-9))
        trader.advanceTime(to: midnight + 16 * 3_600_000 + 5)  // 08:00 and 16:00
        #expect(isClose(trader.fundingPaid, 3 * 50000.1 * qty / 10_000, tolerance: 1e-9))
    }

    @Test func killSwitchFlattensAndHoldsUntilTheNextUTCDay() throws {
        var config = StrategyConfig.defaults
        config.maxDailyLossPct = 0.01
        var trader = longBreakIn(config: config)
        let day: Millis = 86_400_000
        trader.advanceTime(to: t0)
        // A 3 % drop of BTC on 0.4 BTC-ish costs more than 1 % of 10,000.
        let (r, actions) = trader.onMinuteClose(bar(warm + 1, o: "48500", h: "48500", l: "48400", c: "48450"))
        #expect(r.reason == .exit(.killSwitch) && r.action == .exit)
        #expect(trader.killSwitchActive && trader.alerts.contains { $0.kind == .killSwitch })
        // Money in cents, the limit and what it is a share of: no raw floating point in what the operator reads.
        let text = try #require(trader.alerts.first { $0.kind == .killSwitch }?.message)
        #expect(text.contains("reached the daily loss limit of -100 USDT (1% of 10000 USDT)"), "\(text)")
        #expect(text.firstMatch(of: /\d\.\d{3,}/) == nil, "\(text)")
        let exit = submitted(actions)[0]
        trader.onFill(fill(exit, at: "48449.9", ts: t0 + Millis(warm + 2) * 60_000 + 1, config: config))
        let (veto, none) = trader.onMinuteClose(
            bar(warm + 10, o: "49850", h: "49920", l: "49820", c: "49950", crossVAL: true, of: "3", qimb: 0.3))
        #expect(veto.reason == .hold(.killSwitch) && none.isEmpty)
        // The next UTC midnight clears it.
        let nextMidnight = (t0 / day + 1) * day
        trader.advanceTime(to: nextMidnight)
        #expect(!trader.killSwitchActive)
        let index = Int((nextMidnight - t0) / 60_000) + 5
        let (after, entry) = trader.onMinuteClose(
            bar(index, o: "49850", h: "49920", l: "49820", c: "49950", crossVAL: true, of: "3", qimb: 0.3))
        #expect(after.action == .enterLong && !entry.isEmpty)
    }
}

@Suite(.tags(.unit)) struct ConfirmationTests {
    let f = bar(warm, o: "1", h: "1", l: "1", c: "1", of: "1", volume: "10", ambiguous: "5", qimb: 0.05)

    @Test func ofOrQimbConfirms() {
        var config = StrategyConfig.defaults
        config.ambiguousTradeFracMax = 0.6
        let t = ConfirmationThresholds(ofMin: 0.5, ofMinNorm: 0.5, qimbMin: 0.1)
        #expect(Confirmation.confirms(.long, f, thresholds: t, config: config, instrument: btc), "of 1 > 0.5")
        #expect(!Confirmation.confirms(.short, f, thresholds: t, config: config, instrument: btc))
        let strict = ConfirmationThresholds(ofMin: 2, ofMinNorm: 0.5, qimbMin: 0.01)
        #expect(
            Confirmation.confirms(.long, f, thresholds: strict, config: config, instrument: btc), "qimb 0.05 > 0.01")
    }

    @Test func highAmbiguityNeedsBoth() {
        let config = StrategyConfig.defaults  // 0.35 < 5 / 10
        let ofOnly = ConfirmationThresholds(ofMin: 0.5, ofMinNorm: 0.5, qimbMin: 0.1)
        #expect(!Confirmation.confirms(.long, f, thresholds: ofOnly, config: config, instrument: btc))
        let both = ConfirmationThresholds(ofMin: 0.5, ofMinNorm: 0.5, qimbMin: 0.01)
        #expect(Confirmation.confirms(.long, f, thresholds: both, config: config, instrument: btc))
    }

    @Test func withoutQimbOnlyOrderFlowCounts() {
        var config = StrategyConfig.defaults
        config.useQimb = false
        let t = ConfirmationThresholds(ofMin: 2, ofMinNorm: 0.5, qimbMin: -1)
        #expect(!Confirmation.confirms(.long, f, thresholds: t, config: config, instrument: btc))
    }

    @Test func qimbSignalCanBeTheClose() {
        var config = StrategyConfig.defaults
        config.qimbSignal = .close
        config.ambiguousTradeFracMax = 1
        let g = bar(warm, o: "1", h: "1", l: "1", c: "1", of: "0", qimb: 0.9, qimbClose: ("1", "3"))
        let t = ConfirmationThresholds(ofMin: 1, ofMinNorm: 1, qimbMin: 0.1)
        #expect(!Confirmation.confirms(.long, g, thresholds: t, config: config, instrument: btc), "close qimb is -0.5")
        #expect(Confirmation.confirms(.short, g, thresholds: t, config: config, instrument: btc))
    }

    @Test func failThresholdsAreForTheReversal() {
        let config = StrategyConfig.defaults
        let selling = bar(warm, o: "1", h: "1", l: "1", c: "1", of: "-0.5", qimb: 0)
        #expect(Confirmation.confirmsFailure(.short, selling, config: config, instrument: btc))
        #expect(!Confirmation.confirmsFailure(.long, selling, config: config, instrument: btc))
        let buying = bar(warm, o: "1", h: "1", l: "1", c: "1", of: "0.5", qimb: 0)
        #expect(!Confirmation.confirmsFailure(.short, buying, config: config, instrument: btc))
        #expect(Confirmation.confirmsFailure(.long, buying, config: config, instrument: btc))
    }
}

/// The original's kill switch (`risk.max_daily_loss`, docs/STRATEGY.md): the UTC day's realised P&L with fees and
/// funding; entries blocked until 00:00 UTC, the open position managed as always.
@Suite(.tags(.unit)) struct DailyLossLimitTests {
    /// A break-in setup on bar `index` (a long entry when allowed).
    func setup(_ index: Int) -> MinuteFeatures {
        bar(index, o: "49850", h: "49920", l: "49820", c: "49950", crossVAL: true, of: "3", qimb: 0.3)
    }

    @Test func offByDefault() {
        #expect(StrategyConfig.defaults.maxDailyLoss == nil && StrategyConfig.defaults.maxDailyLossPct == nil)
    }

    @Test func blocksEntriesWhileThePositionKeepsItsStopAndTimeStop() throws {
        var config = StrategyConfig.defaults
        config.maxDailyLoss = 10
        config.maxHoldMinutes = 3
        var trader = longBreakIn(config: config)
        // The entry's taker fee alone is a realised loss of more than 10 USDT.
        #expect(isClose(trader.dayRealizedPnL, -trader.feesPaid, tolerance: 1e-9) && trader.feesPaid > 10)
        let (blocked, none) = trader.onMinuteClose(bar(warm + 1, o: "49940", h: "49950", l: "49930", c: "49940"))
        #expect(trader.dailyLossLimitReached && blocked.action == .hold && none.isEmpty, "the position is kept")
        let alert = try #require(trader.takeAlerts().first { $0.kind == .dailyLossLimit })
        #expect(alert.message.contains("reached the daily loss limit of -10 USDT"), "\(alert.message)")
        #expect(alert.message.firstMatch(of: /\d\.\d{3,}/) == nil, "\(alert.message)")
        // A setup is recorded and vetoed.
        let (vetoed, nothing) = trader.onMinuteClose(
            bar(warm + 2, o: "49850", h: "49920", l: "49820", c: "49950", crossVAL: true, of: "3", qimb: 0.3))
        #expect(vetoed.detections.breakInLong && vetoed.reason == .hold(.dailyLossLimit) && nothing.isEmpty)
        // The time stop still runs (the clock started at warm + 1).
        _ = trader.onMinuteClose(bar(warm + 3, o: "49940", h: "49950", l: "49930", c: "49940"))
        let (timeStop, exit) = trader.onMinuteClose(bar(warm + 4, o: "49940", h: "49950", l: "49930", c: "49940"))
        #expect(timeStop.reason == .exit(.timeStop) && submitted(exit).count == 1)
        // And so does the stop, on a position that is not closing yet.
        var other = longBreakIn(config: config)
        _ = other.onMinuteClose(bar(warm + 1, o: "49940", h: "49950", l: "49930", c: "49940"))
        #expect(other.dailyLossLimitReached)
        let stop = submitted(other.onTrade(TradeEvent(ts: t0 + 20_000_000, price: px("49819.8"), size: 1)))
        #expect(stop.count == 1 && stop[0].purpose == .exit(.stop) && stop[0].reduceOnly)
    }

    @Test func unrealisedLossDoesNotCount() {
        var config = StrategyConfig.defaults
        config.maxDailyLoss = 100
        var trader = longBreakIn(config: config)
        // 120 USDT under the entry on ~1.5 BTC: unrealised about -180, realised only the entry fee.
        _ = trader.onMinuteClose(bar(warm + 1, o: "49840", h: "49850", l: "49830", c: "49830"))
        #expect(trader.unrealized < -100 && trader.dayRealizedPnL > -100 && !trader.dailyLossLimitReached)
    }

    @Test func fundingCountsAsRealised() {
        var config = StrategyConfig.defaults
        var trader = longBreakIn(config: config)
        let fee = trader.feesPaid
        // A limit just above the entry fee: not reached until the 08:00 UTC funding is paid.
        config.maxDailyLoss = fee + 1
        trader.reconfigure(config)
        trader.advanceTime(to: t0 + Millis(warm + 1) * 60_000)
        _ = trader.onMinuteClose(bar(warm + 1, o: "49940", h: "49950", l: "49930", c: "49940"))
        #expect(!trader.dailyLossLimitReached)
        trader.advanceTime(to: t0 + 8 * 3_600_000 + 1)
        #expect(trader.fundingPaid > 1)
        _ = trader.onMinuteClose(bar(8 * 60 + 1, o: "49940", h: "49950", l: "49930", c: "49940"))
        #expect(
            trader.dailyLossLimitReached && isClose(trader.dayRealizedPnL, -fee - trader.fundingPaid, tolerance: 1e-9))
    }

    @Test func liftsItselfAtMidnightUTCAndSaysSo() throws {
        var config = StrategyConfig.defaults
        config.maxDailyLoss = 10
        var trader = longBreakIn(config: config)
        trader.advanceTime(to: t0 + Millis(warm + 1) * 60_000)
        _ = trader.onMinuteClose(bar(warm + 1, o: "49940", h: "49950", l: "49930", c: "49940"))
        #expect(trader.dailyLossLimitReached)
        // Close the position so that a new entry is possible.
        let exit = submitted(trader.closeAll(.timeStop, at: t0 + Millis(warm + 2) * 60_000))
        trader.onFill(fill(exit[0], at: "49940", ts: t0 + Millis(warm + 2) * 60_000 + 1, config: config))
        #expect(trader.position == nil)
        let (stillBlocked, _) = trader.onMinuteClose(setup(warm + 10))
        #expect(stillBlocked.reason == .hold(.dailyLossLimit))
        _ = trader.takeAlerts()
        let day: Millis = 86_400_000
        let midnight = (t0 / day + 1) * day
        trader.advanceTime(to: midnight - 1)
        #expect(trader.dailyLossLimitReached, "still the same UTC day")
        trader.advanceTime(to: midnight)
        #expect(!trader.dailyLossLimitReached && trader.dayRealizedPnL == 0)
        #expect(trader.takeAlerts().map(\.kind) == [.dailyLossLimitLifted])
        let (entered, entry) = trader.onMinuteClose(setup(Int((midnight - t0) / 60_000) + 5))
        #expect(entered.action == .enterLong && submitted(entry).count == 1)
    }
}

@Suite(.tags(.unit)) struct HeatTests {
    /// docs/SPEC.md §11: heat is the risk to the stop over the margin the position was sized from, a number also when
    /// a leverage-capped position has used all the available margin (which made the quotient infinite before).
    @Test func heatIsANumberInEveryRow() throws {
        var trader = Trader(config: StrategyConfig.defaults, instrument: btc)
        #expect(trader.heat == 0, "flat")
        // Break-in with a stop half a dollar from the entry: the risk-based size is capped at 10x.
        let (_, actions) = trader.onMinuteClose(
            bar(warm, o: "49950", h: "49960", l: "49899.9", c: "49900.1", crossVAL: true, of: "3", qimb: 0.3))
        let entry = try #require(submitted(actions).first)
        trader.onFill(fill(entry, at: "49900.2", ts: t0 + Millis(warm + 1) * 60_000 + 5))
        let p = try #require(trader.position)
        let sizing = try #require(p.entrySizing)
        #expect(
            sizing.leverageCapHit && trader.availableMargin <= 1, "the cap used the margin: \(trader.availableMargin)")
        // Mark 49900.05 (bid 49900.0, ask 49900.1), stop 49899.7: 0.35 USDT per BTC at risk.
        let expected = 0.35 * btc.size(p.qty) / sizing.availableMargin
        #expect(
            trader.heat.isFinite && isClose(trader.heat, expected, tolerance: 1e-9), "\(trader.heat) vs \(expected)")
        #expect(trader.equityRow(at: t0 + Millis(warm + 2) * 60_000).heat == trader.heat)
    }
}
