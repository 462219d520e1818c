import AgentConfig
import Engine
import Testing

/// Three closes above VAH 50100 (crossing on the first): an accepted sequence above.
func acceptedAbove(_ trader: inout Trader, from index: Int = warm, confirmLast: Bool = true) -> (
    SignalRecord, [OrderAction]
) {
    _ = trader.onMinuteClose(bar(index, o: "50090", h: "50150", l: "50080", c: "50140", crossVAH: true))
    _ = trader.onMinuteClose(bar(index + 1, o: "50140", h: "50180", l: "50120", c: "50170"))
    return trader.onMinuteClose(
        bar(
            index + 2, o: "50170", h: "50220", l: "50150", c: "50210", of: confirmLast ? "5" : "-5",
            qimb: confirmLast ? 0.4 : -0.4))
}

@Suite(.tags(.unit)) struct BreakoutTests {
    /// Retest mode off: a breakout enters on its accepting bar (docs/SPEC.md §8); the default waits for the retest.
    var enteringOnTheAcceptingBar: StrategyConfig {
        var c = StrategyConfig.defaults
        c.enableRetestMode = false
        return c
    }

    @Test func breakoutEntersOnTheAcceptingBarWithItsStopUnderTheSequence() throws {
        var trader = Trader(config: enteringOnTheAcceptingBar, instrument: btc)
        let (record, actions) = acceptedAbove(&trader)
        #expect(record.detections.breakoutLong && record.action == .enterLong && record.reason == .entry(.breakout))
        let entry = try #require(submitted(actions).first)
        trader.onFill(fill(entry, at: "50210.1", ts: t0 + Millis(warm + 3) * 60_000 + 3))
        let p = try #require(trader.position)
        #expect(p.stopTwice == 2 * (px("50080") - 2))
        #expect(p.tp1Twice == nil && p.tp2Twice == nil)
        #expect(p.breakoutLevel == px("50100"))
    }

    @Test func breakoutFiresOncePerSequenceOnTheFirstConfirmedBar() {
        var trader = Trader(config: enteringOnTheAcceptingBar, instrument: btc)
        let (unconfirmed, _) = acceptedAbove(&trader, confirmLast: false)
        #expect(!unconfirmed.detections.breakoutLong && trader.above.isAccepted(k: 3))
        let (later, _) = trader.onMinuteClose(
            bar(warm + 3, o: "50210", h: "50230", l: "50200", c: "50220", of: "5", qimb: 0.4))
        #expect(later.detections.breakoutLong)
        let (again, _) = trader.onMinuteClose(
            bar(warm + 4, o: "50220", h: "50240", l: "50200", c: "50230", of: "5", qimb: 0.4))
        #expect(!again.detections.breakoutLong, "used")
    }

    @Test func breakoutExitsOnTheFirstCloseBackInside() throws {
        var trader = Trader(config: enteringOnTheAcceptingBar, instrument: btc)
        let (_, actions) = acceptedAbove(&trader)
        trader.onFill(fill(submitted(actions)[0], at: "50210.1", ts: t0 + Millis(warm + 3) * 60_000 + 3))
        _ = trader.onMinuteClose(bar(warm + 3, o: "50210", h: "50230", l: "50150", c: "50160"))
        // Buyers still in control (no failed-breakout short), but the close is back at the level.
        let (record, exits) = trader.onMinuteClose(
            bar(warm + 4, o: "50160", h: "50170", l: "50090", c: "50100", of: "2", qimb: 0.3))
        #expect(record.action == .exit && record.reason == .exit(.closeInside))
        let exit = try #require(submitted(exits).first)
        #expect(exit.reduceOnly && exit.side == .short && exit.qty == trader.position?.qty)
    }

    @Test func retestEntersOnAPullbackToTheLevel() throws {
        var config = StrategyConfig.defaults
        config.enableRetestMode = true
        var trader = Trader(config: config, instrument: btc)
        let (accepting, none) = acceptedAbove(&trader)
        #expect(accepting.detections.breakoutLong && accepting.reason == .hold(.retestPending) && none.isEmpty)
        #expect(accepting.pendingRetest?.level == px("50100"))
        // Not back to the level yet (low 50150 > 50100 + N of 0.1).
        let (wait, _) = trader.onMinuteClose(bar(warm + 3, o: "50210", h: "50230", l: "50150", c: "50200"))
        #expect(wait.action == .hold && wait.pendingRetest != nil)
        // Low within N of the level, close above it: enter; stop under this bar's low.
        let (retest, actions) = trader.onMinuteClose(bar(warm + 4, o: "50200", h: "50210", l: "50100.1", c: "50150"))
        #expect(retest.action == .enterLong && retest.reason == .breakoutRetest)
        #expect(!retest.detections.breakoutLong, "the flag marks the accepting bar, not the retest")
        trader.onFill(fill(submitted(actions)[0], at: "50150.1", ts: t0 + Millis(warm + 5) * 60_000 + 1))
        #expect(trader.position?.stopTwice == 2 * (px("50100.1") - 2))
    }

    @Test func retestIsCancelledByACloseInside() {
        var config = StrategyConfig.defaults
        config.enableRetestMode = true
        var trader = Trader(config: config, instrument: btc)
        _ = acceptedAbove(&trader)
        let (record, actions) = trader.onMinuteClose(
            bar(warm + 3, o: "50200", h: "50210", l: "50050", c: "50100", of: "2", qimb: 0.3))
        #expect(record.pendingRetest == nil && actions.isEmpty && !trader.above.running)
    }

    @Test func retestTimesOut() {
        var config = StrategyConfig.defaults
        config.enableRetestMode = true
        config.retestTimeoutMinutes = 2
        var trader = Trader(config: config, instrument: btc)
        _ = acceptedAbove(&trader)
        _ = trader.onMinuteClose(bar(warm + 3, o: "50210", h: "50230", l: "50150", c: "50200"))
        _ = trader.onMinuteClose(bar(warm + 4, o: "50210", h: "50230", l: "50150", c: "50200"))
        // Three minutes after the accepting bar: past the 2-minute wait, even though this bar is a retest.
        let (late, actions) = trader.onMinuteClose(bar(warm + 5, o: "50200", h: "50210", l: "50100", c: "50150"))
        #expect(late.pendingRetest == nil && actions.isEmpty && late.action == .hold)
    }

    @Test func failedBreakoutShort() throws {
        var trader = Trader(config: StrategyConfig.defaults, instrument: btc)
        _ = trader.onMinuteClose(bar(warm, o: "50090", h: "50150", l: "50080", c: "50140", crossVAH: true))
        _ = trader.onMinuteClose(bar(warm + 1, o: "50140", h: "50250", l: "50120", c: "50170"))
        // Closes back at or below L with a high above it, order flow selling.
        let (record, actions) = trader.onMinuteClose(
            bar(warm + 2, o: "50170", h: "50190", l: "50040", c: "50060", of: "-2", qimb: -0.3))
        #expect(
            record.detections.failedBreakoutShort && record.action == .enterShort
                && record.reason == .entry(.failedBreakout))
        trader.onFill(fill(submitted(actions)[0], at: "50059.9", ts: t0 + Millis(warm + 3) * 60_000 + 1))
        let p = try #require(trader.position)
        #expect(p.stopTwice == 2 * (px("50250") + 2), "highest high since the sequence started + buffer")
        #expect(p.tp1Twice == 2 * px("50000") && p.tp2Twice == 2 * px("49900"))
        #expect(!trader.above.running)
    }

    @Test func failedBreakoutNeedsTheHighAboveTheLevel() {
        var trader = Trader(config: StrategyConfig.defaults, instrument: btc)
        _ = trader.onMinuteClose(bar(warm, o: "50090", h: "50150", l: "50080", c: "50140", crossVAH: true))
        let (record, _) = trader.onMinuteClose(
            bar(warm + 1, o: "50100", h: "50100", l: "50040", c: "50060", of: "-2", qimb: -0.3))
        #expect(!record.detections.failedBreakoutShort)
    }

    @Test func priorityBreakInOverFailedBreakout() {
        var trader = Trader(config: StrategyConfig.defaults, instrument: btc)
        // A sequence above runs; then one bar both breaks in from below VAL (A long)... and fails above (C short):
        // opposite directions, but A wins by priority and C is not taken.
        _ = trader.onMinuteClose(bar(warm, o: "50090", h: "50150", l: "50080", c: "50140", crossVAH: true))
        let (record, actions) = trader.onMinuteClose(
            bar(
                warm + 1, o: "50140", h: "50150", l: "49850", c: "49950", crossVAL: true, of: "3", ambiguous: "0",
                qimb: -0.3))
        #expect(record.detections.breakInLong && record.detections.failedBreakoutShort)
        #expect(record.action == .enterLong && record.reason == .entry(.breakIn))
        #expect(submitted(actions).count == 1)
    }
}
