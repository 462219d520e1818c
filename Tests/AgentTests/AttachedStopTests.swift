import ControlProtocol
import Engine
import Exchange
import Foundation
import Testing

@testable import AgentConfig
@testable import AgentSupport
@testable import Control
@testable import Daemon
@testable import Simulator

/// The entry carries its stop (docs/EXCHANGE.md, "The stop rides with the entry"): the exchange protects a fill in
/// the same matching step, so neither a lost reply nor a refused or delayed `trading-stop` leaves a position bare.
/// Each test refuses every `trading-stop` call: only the stop attached to the entry can protect the position.
@Suite(.tags(.integration), .serialized) struct AttachedStopTests {
    /// Trades until the exchange holds a position, then reads what it holds at that moment.
    func firstPosition(_ h: LiveHarness) async -> (lots: Lots, stop: Ticks?) {
        await h.run(minutes: 600) { h in h.venuePosition != 0 }
        return h.venue.lock.withLock { (h.venue.positionLots, h.venue.stopLoss) }
    }

    @Test func theEntrysFirstFillIsProtectedWithoutATradingStopCall() async throws {
        let h = try LiveHarness()
        try h.start()
        try h.fault(#"{"rejectTradingStop":true}"#)
        let first = await firstPosition(h)
        #expect(first.lots != 0)
        let stop = try #require(first.stop, "the exchange set the entry's stop with its fill")
        let entry = try #require(
            h.venue.lock.withLock {
                h.venue.orders.values.first { $0.orderLinkId.hasPrefix("at-e-") && $0.filled > 0 }
            })
        #expect(entry.attachedStopLoss == stop)
        #expect(await h.wait { $0.engine.trader.position != nil && !$0.exchange.state.book.hasOrdersInFlight })
        #expect(h.engine.trader.position.map { Int64($0.stopTwice / 2) } == stop, "the agent's stop is the exchange's")
        #expect(h.exchange.state.stopHeld == stop)
        #expect(h.engine.venue.unprotectedMs(wall: .now) == nil)
        #expect(h.alerts("stop_refused").isEmpty, "no trading-stop was needed")
        #expect(!h.events("venue.stop_attached").isEmpty)
        // The REST re-read asked for by the fill confirms it.
        #expect(
            await h.wait {
                $0.events("venue.resync").contains { ($0["message"] as? String)?.contains("attached") == true }
            })
        h.stop()
    }

    @Test func anEntryWhoseCreateReplyIsLostIsProtectedAtOnce() async throws {
        let h = try LiveHarness()
        try h.start()
        try h.fault(#"{"rejectTradingStop":true,"dropCreateRepliesCount":"10"}"#)
        let first = await firstPosition(h)
        #expect(first.lots != 0 && first.stop != nil, "protected while the agent still waits for the create's answer")
        #expect(await h.wait { $0.engine.trader.signedQty == $0.venuePosition })
        #expect(!h.events("order.unknown").isEmpty)
        #expect(h.alerts("unprotected_position").isEmpty && h.alerts("stop_refused").isEmpty)
        h.stop()
    }

    /// A 60 s storm of 10006 (rate limit) on every call right after the fill: the position stays protected (its stop
    /// came with the entry) and is not flattened, though the storm lasts twice `live.max_unprotected_seconds`; the
    /// clients wait for each reset timestamp, and the log, `health` and the rate-limit report say so.
    @Test func aMinuteOfRateLimitStormAfterTheFillLeavesThePositionProtectedAndOpen() async throws {
        let h = try LiveHarness()
        try h.start()
        #expect(h.engine.settings.live.maxUnprotectedSeconds == 30)
        try h.fault(#"{"rejectTradingStop":true}"#)
        let first = await firstPosition(h)
        #expect(first.lots != 0 && first.stop != nil)
        try h.fault(#"{"failNextRetCode":10006,"failNextCount":"100000"}"#)
        // Sixty wall seconds of storm, the market going on.
        var sawRefusalInHealth = false
        let end = wallClockMillis() + 60_000
        while wallClockMillis() < end {
            // A market second at a time: each may wait for the venue (the harness settles up to 20 s).
            await h.run(minutes: 1.0 / 60)
            let health = h.engine.healthReport(wall: .now)
            sawRefusalInHealth =
                sawRefusalInHealth || health.reasons.contains { $0.contains("for its rate limit") }
        }
        #expect(h.venuePosition == first.lots && h.venueStop != nil, "still open and protected at the exchange")
        #expect(h.alerts("unprotected_position").isEmpty)
        #expect(h.state != "flattening" && h.state != "halted", "\(h.engine.supervisor.reason)")
        #expect(sawRefusalInHealth, "atctl health said the exchange refused calls for its rate limit")
        let waits = h.events("rest.rate_limit_wait")
        #expect(!waits.isEmpty && waits.allSatisfy { $0["reason"] as? String == "refused" })
        let report = h.engine.healthReport(wall: .now)
        #expect((report.rateLimits ?? []).contains { $0.lastWait == "refused" })
        // What `atctl health` prints of it.
        let text = renderHealth(report)
        #expect(text.contains("rate limits    fewest left /v5/") && text.contains("(refused)"), "\(text)")
        try h.fault("{}")
        h.stop()
    }

    @Test func theSimulatorRefusesAStopOnTheWrongSideAsBybitDoes() throws {
        let venue = SimVenue()
        venue.onMarket(.quote(QuoteEvent(ts: 1_000, bidPrice: 500_000, bidSize: 100, askPrice: 500_001, askSize: 100)))
        venue.onMarket(.trade(TradeEvent(ts: 1_001, price: 500_001, size: 1, side: .buy)))
        let wrong = #expect(throws: SimVenue.Rejection.self) {
            try venue.lock.withLock {
                try venue.place(
                    linkId: "e-1", side: .long, type: .market, qty: 10, price: nil, reduceOnly: false,
                    timeInForce: nil, stopLoss: 500_500)
            }
        }
        #expect(
            wrong?.retCode == 10001 && wrong?.message.contains("StopLoss:50050") == true, "\(String(describing: wrong))"
        )
        let limit = try venue.lock.withLock {
            try venue.place(
                linkId: "e-2", side: .short, type: .limit, qty: 10, price: 500_000, reduceOnly: false,
                timeInForce: "GTC", stopLoss: 500_400)
        }
        #expect(limit.filled == 10 && venue.lock.withLock { venue.stopLoss } == 500_400)
        let conditional = venue.lock.withLock { venue.orders.values.first { $0.stopOrderType == "StopLoss" } }
        #expect(conditional?.qty == 10 && conditional?.side == .long && conditional?.status == .untriggered)
    }

    /// Shadow's flatten: the testnet's own flatten closes its position first, and the mirrored close it then refuses
    /// (110017) is the expected end, not a divergence.
    @Test func shadowFlattenRaisesNoDivergenceForTheRefusedMirrorClose() throws {
        #expect(
            ExchangeVenue.isExpectedFlattenRefusal(
                mode: .shadow, flattening: true,
                intent: OrderIntent(
                    id: "at-x-1-2", side: .short, qty: 5, type: .market, reduceOnly: true, purpose: .exit(.flatten),
                    decisionTs: 1),
                reason: "retCode 110017: reduce-only rule not satisfied"))
        for (mode, flattening) in [(AgentMode.live, true), (.shadow, false)] {
            #expect(
                !ExchangeVenue.isExpectedFlattenRefusal(
                    mode: mode, flattening: flattening,
                    intent: OrderIntent(
                        id: "at-x-1-2", side: .short, qty: 5, type: .market, reduceOnly: true,
                        purpose: .exit(.flatten), decisionTs: 1),
                    reason: "retCode 110017: reduce-only rule not satisfied"))
        }
    }

    @Test func shadowFlattenEndsWithoutADivergence() async throws {
        let h = try LiveHarness(mode: "shadow")
        try h.start()
        await h.run(minutes: 600) { h in h.engine.trader.position != nil && h.venuePosition != 0 }
        #expect(h.venuePosition != 0)
        let before = h.alerts("shadow_divergence").count
        _ = await h.command(.flatten)
        #expect(await h.wait { $0.state == "halted" && $0.venuePosition == 0 })
        #expect(h.alerts("shadow_divergence").count == before, "\(h.alerts("shadow_divergence"))")
        h.stop()
    }
}

/// A crash (the engine abandoned, `kill -9`) while a position is open, after a full-database phase: the new engine
/// recovers it from the database and the exchange, without a mismatch, and trades on.
@Suite(.tags(.integration), .serialized) struct CrashWithAPositionTests {
    @Test func aCrashWithAPositionOpenRecoversWithoutAMismatch() async throws {
        let h = try LiveHarness()
        try h.start()
        #expect(await h.tradeUntilPositionIsProtected())
        try h.engine.store.setPageLimit(try h.engine.store.pageCount())
        await h.run(minutes: 3)
        try h.engine.store.setPageLimit(nil)
        #expect(await h.wait { $0.engine.journal.isEmpty })
        let qty = h.engine.trader.signedQty
        #expect(qty != 0 && qty == h.venuePosition)
        h.kill()
        try h.start()
        #expect(h.engine.trader.signedQty == h.venuePosition, "\(h.engine.trader.signedQty) vs \(h.venuePosition)")
        await h.run(minutes: 30)
        #expect(h.alerts("position_mismatch").isEmpty, "\(h.alerts("position_mismatch"))")
        #expect(h.engine.trader.signedQty == h.venuePosition)
        h.stop()
    }
}
