import AgentConfig
import Engine
import Foundation
import Testing

@Suite(.tags(.unit)) struct SetupTests {
    /// The example: VAL 49900, VAH 50100, POC 50000; bar O 49850 H 49920 L 49820 C 49950 with positive OF and
    /// qimb → long, stop 49819.8 (2 ticks of 0.1), TP1 POC, TP2 VAH.
    @Test func breakInLongExample() throws {
        var trader = Trader(config: StrategyConfig.defaults, instrument: btc)
        let (record, actions) = trader.onMinuteClose(
            bar(warm, o: "49850", h: "49920", l: "49820", c: "49950", crossVAL: true, of: "3", qimb: 0.3))
        #expect(record.detections.breakInLong)
        #expect(record.action == .enterLong && record.reason == .entry(.breakIn))
        let entry = try #require(submitted(actions).first)
        #expect(entry.side == .long && entry.type == .market && !entry.reduceOnly)
        trader.onFill(fill(entry, at: "49950.1", ts: t0 + Millis(warm + 1) * 60_000 + 5))
        let p = try #require(trader.position)
        #expect(p.stopTwice == 2 * px("49819.8"))
        #expect(p.tp1Twice == 2 * px("50000"))
        #expect(p.tp2Twice == 2 * px("50100"))
        #expect(p.setup == .breakIn)
    }

    @Test func breakInNeedsCrossing() {
        var trader = Trader(config: StrategyConfig.defaults, instrument: btc)
        let (record, actions) = trader.onMinuteClose(
            bar(warm, o: "49850", h: "49920", l: "49820", c: "49950", crossVAL: false, of: "3", qimb: 0.3))
        #expect(!record.detections.breakInLong && actions.isEmpty && record.reason == .hold(.noSignal))
    }

    @Test func breakInNeedsConfirmation() {
        var trader = Trader(config: StrategyConfig.defaults, instrument: btc)
        let (record, _) = trader.onMinuteClose(
            bar(warm, o: "49850", h: "49920", l: "49820", c: "49950", crossVAL: true, of: "-3", qimb: -0.3))
        #expect(!record.detections.breakInLong)
    }

    @Test func breakInNeedsTheCloseBackInside() {
        var trader = Trader(config: StrategyConfig.defaults, instrument: btc)
        let (record, _) = trader.onMinuteClose(
            bar(warm, o: "49850", h: "49920", l: "49820", c: "49900", crossVAL: true, of: "3", qimb: 0.3))
        #expect(!record.detections.breakInLong, "close == VAL is not above it")
    }

    @Test func breakInShortMirrors() throws {
        var trader = Trader(config: StrategyConfig.defaults, instrument: btc)
        let (record, actions) = trader.onMinuteClose(
            bar(warm, o: "50150", h: "50180", l: "50080", c: "50050", crossVAH: true, of: "-3", qimb: -0.3))
        #expect(record.detections.breakInShort && record.action == .enterShort)
        let entry = try #require(submitted(actions).first)
        trader.onFill(fill(entry, at: "50049.9", ts: t0 + Millis(warm + 1) * 60_000 + 5))
        #expect(trader.position?.stopTwice == 2 * px("50180.2"))
        #expect(trader.position?.tp2Twice == 2 * px("49900"))
    }

    @Test func noBreakInWhileASequenceBelowRuns() {
        var trader = Trader(config: StrategyConfig.defaults, instrument: btc)
        // Sequence below starts: close < VAL with a crossing.
        _ = trader.onMinuteClose(bar(warm, o: "49910", h: "49910", l: "49850", c: "49860", crossVAL: true))
        #expect(trader.below.running && trader.below.count == 1)
        // Would be a break-in long, but a sequence below was running before this bar: a failed breakdown instead.
        let (record, _) = trader.onMinuteClose(
            bar(warm + 1, o: "49860", h: "49920", l: "49820", c: "49950", crossVAL: true, of: "3", qimb: 0.3))
        #expect(!record.detections.breakInLong)
        #expect(record.detections.failedBreakoutLong)
        #expect(record.reason == .entry(.failedBreakout))
    }

    @Test func warmUpAndInvalidValueAreaVeto() {
        var trader = Trader(config: StrategyConfig.defaults, instrument: btc)
        let early = trader.onMinuteClose(
            bar(238, o: "49850", h: "49920", l: "49820", c: "49950", crossVAL: true, of: "3", qimb: 0.3))
        #expect(early.0.reason == .hold(.warmup) && early.1.isEmpty && !early.0.detections.breakInLong)
        let invalid = trader.onMinuteClose(
            bar(239, o: "49850", h: "49920", l: "49820", c: "49950", crossVAL: true, of: "3", qimb: 0.3, valid: false))
        #expect(invalid.0.reason == .hold(.invalidVA) && invalid.1.isEmpty)
        // Index 239 = warmup - 1 is the first warm bar.
        let first = trader.onMinuteClose(
            bar(239, o: "49850", h: "49920", l: "49820", c: "49950", crossVAL: true, of: "3", qimb: 0.3))
        #expect(first.0.action == .enterLong)
    }

    @Test func staleDataVetoesEntries() {
        var trader = Trader(config: StrategyConfig.defaults, instrument: btc)
        let (record, actions) = trader.onMinuteClose(
            bar(
                warm, o: "49850", h: "49920", l: "49820", c: "49950", crossVAL: true, of: "3", qimb: 0.3,
                quoteAge: 10_001))
        #expect(record.detections.breakInLong && record.reason == .hold(.staleData) && actions.isEmpty)
    }
}

@Suite(.tags(.unit)) struct AcceptanceTests {
    @Test func sequenceStartsOnlyWithACrossing() {
        var trader = Trader(config: StrategyConfig.defaults, instrument: btc)
        // Gap above VAH without a crossing: nothing starts.
        _ = trader.onMinuteClose(bar(warm, o: "50150", h: "50200", l: "50140", c: "50190"))
        #expect(!trader.above.running)
        _ = trader.onMinuteClose(bar(warm + 1, o: "50090", h: "50200", l: "50090", c: "50150", crossVAH: true))
        #expect(trader.above.running && trader.above.count == 1 && trader.above.level == px("50100"))
    }

    @Test func lockedLevelIgnoresAMovingValueArea() {
        var trader = Trader(config: StrategyConfig.defaults, instrument: btc)
        _ = trader.onMinuteClose(bar(warm, o: "50090", h: "50200", l: "50090", c: "50150", crossVAH: true))
        // The VA moves up (VAH 50300): the close 50200 is below the new VAH but above the locked 50100.
        _ = trader.onMinuteClose(
            bar(warm + 1, o: "50150", h: "50210", l: "50140", c: "50200", val: "50000", vah: "50300", poc: "50150"))
        #expect(trader.above.running && trader.above.count == 2 && trader.above.level == px("50100"))
        _ = trader.onMinuteClose(
            bar(warm + 2, o: "50200", h: "50210", l: "50140", c: "50150", val: "50000", vah: "50300", poc: "50150"))
        #expect(trader.above.isAccepted(k: 3))
    }

    @Test func closeAtTheLevelEndsTheSequenceAndStartsNothing() {
        var trader = Trader(config: StrategyConfig.defaults, instrument: btc)
        _ = trader.onMinuteClose(bar(warm, o: "50090", h: "50200", l: "50090", c: "50150", crossVAH: true))
        _ = trader.onMinuteClose(bar(warm + 1, o: "50150", h: "50160", l: "50090", c: "50100", crossVAH: true))
        #expect(!trader.above.running && trader.above.count == 0 && trader.above.level == 0)
        // The next bar may start a new one.
        _ = trader.onMinuteClose(bar(warm + 2, o: "50100", h: "50160", l: "50090", c: "50120", crossVAH: true))
        #expect(trader.above.running && trader.above.count == 1)
    }

    @Test func invalidValueAreaLeavesTheStateAsItWas() {
        var trader = Trader(config: StrategyConfig.defaults, instrument: btc)
        _ = trader.onMinuteClose(bar(warm, o: "50090", h: "50200", l: "50090", c: "50150", crossVAH: true))
        _ = trader.onMinuteClose(bar(warm + 1, o: "50150", h: "50160", l: "50000", c: "50050", valid: false))
        #expect(trader.above.running && trader.above.count == 1)
    }

    @Test func acceptanceIsTrackedDuringWarmUp() {
        var trader = Trader(config: StrategyConfig.defaults, instrument: btc)
        _ = trader.onMinuteClose(bar(5, o: "50090", h: "50200", l: "50090", c: "50150", crossVAH: true))
        #expect(trader.above.running)
    }
}

/// The reason codes are a closed set, written as docs/STRATEGY.md lists them ("Actions and reason codes").
@Suite(.tags(.unit)) struct SignalReasonTests {
    /// The codes docs/STRATEGY.md lists after `label:` in its reason-code paragraph.
    func documented(_ label: String) throws -> [String] {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let text = try String(contentsOf: root.appending(path: "docs/STRATEGY.md"), encoding: .utf8)
        let section = try #require(text.components(separatedBy: "## Actions and reason codes").last)
        let paragraph = section.components(separatedBy: "\n\n").dropFirst(2).first ?? ""
        let flat = paragraph.replacingOccurrences(of: "\n", with: " ")
        let after = try #require(flat.components(separatedBy: label + ":").dropFirst().first)
        let list = after.components(separatedBy: ".").first ?? ""
        return list.components(separatedBy: "`").enumerated().filter { $0.offset % 2 == 1 }.map(\.element)
    }

    @Test func everyHoldCodeIsDocumentedAndNoOther() throws {
        #expect(Set(HoldReason.allCases.map(\.rawValue)) == Set(try documented("HOLD")))
    }

    @Test func everyEntryCodeIsDocumented() throws {
        let entries =
            Setup.allCases.map { SignalReason.entry($0).description } + [SignalReason.breakoutRetest.description]
        #expect(Set(entries) == Set(try documented("Entries")))
    }

    @Test func everyAgentVetoIsDocumented() throws {
        #expect(
            Set(EntryVeto.allCases.map(\.rawValue))
                == Set(try documented("Vetoed by the agent (HOLD; `EntryVeto`, never in a backtest)")))
    }

    @Test func descriptionsAreTheStoredCodes() {
        #expect(SignalReason.entry(.failedBreakout).description == "failbreak")
        #expect(SignalReason.exit(.timeStop).description == "time_stop")
        #expect(SignalReason.hold(.invalidVA).description == "invalid_va")
        #expect(SignalReason.vetoed(.privateStream).description == "private_stream")
        #expect("\(SignalReason.breakoutRetest)" == "breakout_retest")
    }
}
