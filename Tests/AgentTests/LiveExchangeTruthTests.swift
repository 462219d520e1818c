import ControlProtocol
import Engine
import Exchange
import Foundation
import Testing

@testable import AgentCLI
@testable import AgentConfig
@testable import AgentSupport
@testable import Daemon
@testable import Research
@testable import Simulator

/// Live and shadow against a venue that behaves as Bybit documents (docs/EXCHANGE.md): each scenario of the
/// exchange-truth work on its own, through the daemon's engine, mirror, REST client and private stream.
@Suite(.tags(.integration), .serialized) struct LiveExchangeTruthTests {
    /// A restart with a position and its exchange-held stop: the stop is the position's own conditional order, not
    /// a foreign one; the agent comes back observing (live asks the operator again), not halted.
    @Test func restartWithAPositionAndItsExchangeStopIsNotAMismatch() async throws {
        let h = try LiveHarness()
        try h.start()
        #expect(
            await h.tradeUntilPositionIsProtected(),
            "\(h.events("signal.action").count) signals \(h.state) \(h.engine.lastSignal.map { "\($0.action) \($0.reason)" } ?? "-") \(h.engine.lastFeatures?.index ?? -1) \(h.marketTs)"
        )
        let qty = h.engine.trader.signedQty
        #expect(qty == h.venuePosition)
        #expect(
            h.venue.lock.withLock {
                h.venue.orders.values.contains { $0.stopOrderType == "StopLoss" && $0.status == .untriggered }
            })
        h.stop()
        try h.start()
        #expect(h.state == "observing", "\(h.engine.supervisor.reason)")
        #expect(h.alerts("position_mismatch").isEmpty)
        #expect(h.engine.trader.signedQty == qty && h.exchange.state.stopHeld != nil)
        // Setting the same stop again answers 34040: success, not an alert.
        let held = try #require(h.exchange.state.stopHeld)
        h.mirror.setStop(ticks: held)
        #expect(
            await h.wait {
                $0.events("venue.stop_set").contains { ($0["message"] as? String)?.contains("34040") == true }
            })
        #expect(h.alerts("stop_refused").isEmpty)
        h.stop()
    }

    /// A market entry the exchange fills in part and cancels: the agent's position is what executed, and the
    /// exchange holds its stop.
    @Test func partialFillThenCancelLeavesTheAgentEqualToTheExchangeAndProtected() async throws {
        let h = try LiveHarness()
        try h.start()
        try h.fault(#"{"thinBookLots":"2","thinBookCount":"1"}"#)
        #expect(await h.tradeUntilPositionIsProtected())
        let p = try #require(h.engine.trader.position)
        #expect(p.qty == 2, "the two lots that executed, not the order's quantity")
        #expect(h.venuePosition == h.engine.trader.signedQty)
        #expect(
            h.engine.trader.workingEntryOrder == nil && h.engine.kernel.book.workingOrders.isEmpty, "the entry is over")
        #expect(!h.events("order.partially_filled").isEmpty)
        #expect(h.state == "active")
        h.stop()
    }

    /// The private stream stalls (connected, silent): an entry fills unseen; the REST re-read finds it, books it at
    /// its real size and the exchange gets its stop.
    @Test func fillDuringAPrivateStreamOutageIsBookedAndProtected() async throws {
        // The stall is noticed after 30 s without data or pong, as in production.
        let h = try LiveHarness(streamDeadAfterMs: 30_000)
        try h.start()
        await h.run(minutes: 40)
        #expect(await h.wait { $0.exchange.state.streamState == .ready })
        try h.fault(#"{"stallPrivateStreams":true}"#)
        // Trade until an order executes at the venue while the stream is silent (the agent still believes it).
        await h.run(minutes: 600) { h in h.venuePosition != 0 || h.exchange.state.streamState != .ready }
        #expect(h.venuePosition != 0)
        #expect(
            await h.wait(seconds: 90) { $0.engine.trader.signedQty == $0.venuePosition && $0.venueStop != nil },
            "agent \(h.engine.trader.signedQty), venue \(h.venuePosition), stream \(h.exchange.state.streamState)")
        #expect(h.events("venue.resync").count >= 1)
        #expect(h.state == "active", "\(h.engine.supervisor.reason)")
        #expect(await h.wait { !$0.alerts("private_stream").isEmpty }, "the silent stream is alerted after 10 s")
        #expect(h.engine.entryVeto == .staleFeed || h.engine.entryVeto == .privateStream)
        try h.fault("{}")
        #expect(await h.wait { $0.exchange.state.streamState == .ready })
        h.stop()
    }

    /// Every reply to the entry's create is lost: the order is queried by its id, found, and booked once.
    @Test func lostCreateReplyEndsInOneOrder() async throws {
        let h = try LiveHarness()
        try h.start()
        // libcurl retries a dead kept-alive connection once by itself: ten drops cover the client's four attempts.
        try h.fault(#"{"dropCreateRepliesCount":"10"}"#)
        #expect(await h.tradeUntilPositionIsProtected())
        #expect(
            !h.events("order.unknown").isEmpty, "the create's outcome was unknown: \(h.events("order.acknowledged"))")
        #expect(h.alerts("order_rejected").isEmpty && h.alerts("position_mismatch").isEmpty)
        let entry = try #require(
            h.events("order.submitted").first { ($0["purpose"] as? String)?.hasPrefix("entry") == true })
        let id = try #require(entry["order_link_id"] as? String)
        #expect(
            h.venue.lock.withLock { h.venue.orders.values.filter { $0.orderLinkId == id }.count } == 1,
            "one order, not zero or two")
        #expect(h.venuePosition == h.engine.trader.signedQty)
        h.stop()
    }

    /// ADL closes half the position: booked as the exchange reports it, entries halted until resume, the exchange
    /// still holds the stop; a flatten then ends flat at the exchange.
    @Test func adlReducesThePositionAndHaltsEntries() async throws {
        let h = try LiveHarness()
        try h.start()
        #expect(await h.tradeUntilPositionIsProtected())
        let before = try #require(h.engine.trader.position).qty
        let e = try #require(h.venue.forceClose(lots: max(1, before / 2), execType: "AdlTrade"))
        #expect(await h.wait { $0.state == "halted" }, "\(h.state)")
        #expect(h.engine.trader.position?.qty == before - e.qty)
        #expect(h.venuePosition == h.engine.trader.signedQty)
        #expect(!h.alerts("adl").isEmpty && h.alerts("position_mismatch").isEmpty)
        #expect(h.engine.supervisor.reason.hasPrefix("adl"))
        let reply = await h.command(.flatten, args: ["timeout": .number(30)])
        #expect(reply.contains(#""ok":true"#), "\(reply)")
        #expect(h.venuePosition == 0 && h.engine.trader.position == nil && h.state == "halted")
        h.stop()
    }

    /// The issue's story: ADL of half the position while the private stream is down for 15 s. The re-read books it
    /// within seconds; `flatten` closes what the exchange holds and returns.
    @Test func adlDuringAnOutageIsFoundAndFlattenEnds() async throws {
        let h = try LiveHarness()
        try h.start()
        #expect(await h.tradeUntilPositionIsProtected())
        try h.fault(#"{"cutPrivateStreams":true}"#)
        #expect(await h.wait { $0.exchange.state.streamState != .ready })
        #expect(
            h.state == "active" && h.engine.entryVeto == .privateStream,
            "no entry while the stream is not authenticated")
        let before = try #require(h.engine.trader.position).qty
        _ = h.venue.forceClose(lots: max(1, before / 2), execType: "AdlTrade")
        #expect(
            await h.wait { $0.engine.trader.signedQty == $0.venuePosition },
            "agent \(h.engine.trader.signedQty), venue \(h.venuePosition)")
        #expect(h.state == "halted" && !h.alerts("adl").isEmpty)
        let reply = await h.command(.flatten, args: ["timeout": .number(30)])
        #expect(reply.contains(#""ok":true"#), "\(reply)")
        #expect(h.venuePosition == 0 && h.engine.trader.position == nil)
        try h.fault("{}")
        h.stop()
    }

    /// A refused stop is critical in live, retried, and a position left without one past the limit is flattened.
    @Test func refusedStopIsRetriedAndAnUnprotectedPositionIsFlattened() async throws {
        let h = try LiveHarness(overrides: ["live.max_unprotected_seconds=3"])
        try h.start()
        #expect(await h.tradeUntilPositionIsProtected())
        // The exchange loses the stop (cleared by hand, say) and refuses every new one.
        _ = h.venue.lock.withLock { h.venue.setPositionLevels(stopLoss: nil, takeProfit: nil) }
        try h.fault(#"{"rejectTradingStop":true}"#)
        h.exchange.state.lastResyncWall = .zero
        #expect(await h.wait { !$0.alerts("unprotected_position").isEmpty }, "\(h.events("venue.resync").count)")
        #expect(
            await h.wait { $0.venuePosition == 0 && $0.engine.trader.position == nil && $0.state == "halted" },
            "\(h.state)")
        #expect(!h.alerts("stop_refused").isEmpty)
        #expect(h.alerts("stop_refused").allSatisfy { $0["alert.severity"] as? String == "critical" })
        h.stop()
    }

    /// Funding executions are what live books, not the model.
    @Test func liveBooksTheExchangesFunding() async throws {
        let h = try LiveHarness()
        try h.start()
        #expect(await h.tradeUntilPositionIsProtected())
        #expect(h.engine.trader.fundingFromVenue == true)
        let paidBefore = h.engine.trader.fundingPaid
        // Jump the venue's market past the next 8-hour boundary.
        let boundary = (h.marketTs / 28_800_000 + 1) * 28_800_000
        let q = try #require(h.venue.currentQuote)
        h.venue.onMarket(
            .quote(
                QuoteEvent(
                    ts: boundary + 1, bidPrice: q.bidPrice, bidSize: q.bidSize, askPrice: q.askPrice, askSize: q.askSize
                )))
        let charged = try #require(h.venue.lock.withLock { h.venue.executions.last { $0.execType == "Funding" } })
        #expect(await h.wait { !$0.events("funding.booked").isEmpty })
        #expect(abs(h.engine.trader.fundingPaid - paidBefore - charged.fee) < 1e-6)
        h.stop()
    }

    /// The venue does not answer at start: retried, then halted as unreachable (not a mismatch); `resume` waits
    /// until a re-read answers and agrees.
    @Test func unreachableVenueAtStartHaltsUntilItAnswersAndAgrees() async throws {
        let h = try LiveHarness()
        h.startRetryMs = 1_500
        try h.fault(#"{"failNextHTTPStatus":503,"failNextHTTPCount":"100000"}"#)
        try h.start()
        #expect(
            h.state == "halted" && h.engine.supervisor.reason.hasPrefix("venue_unreachable"),
            "\(h.engine.supervisor.reason)")
        #expect(!h.events("reconcile.retry").isEmpty)
        #expect(h.alerts("position_mismatch").isEmpty)
        let refused = await h.command(.resume)
        #expect(refused.contains("has not answered"), "\(refused)")
        try h.fault("{}")
        #expect(await h.wait { $0.alerts("venue_unreachable").contains { $0["alert.severity"] as? String == "info" } })
        let resumed = await h.command(.resume)
        #expect(resumed.contains(#""ok":true"#), "\(resumed)")
        h.stop()
    }

    // MARK: - Shadow: the paper venue decides, the testnet's books are compared

    /// Shadow restarts with a testnet position and its stop: the testnet's own stop order is recognised.
    @Test func shadowRestartWithATestnetPositionAndItsStopIsNotAMismatch() async throws {
        let h = try LiveHarness(mode: "shadow")
        try h.start()
        #expect(await h.tradeUntilPositionIsProtected())
        #expect(h.venuePosition == h.engine.trader.signedQty)
        h.stop()
        try h.start()
        #expect(h.state != "halted", "\(h.engine.supervisor.reason)")
        #expect(h.alerts("position_mismatch").isEmpty && h.alerts("shadow_divergence").isEmpty)
        h.stop()
    }

    /// A testnet entry that partly fills is a divergence to alert; the paper side trades on.
    @Test func shadowPartialTestnetFillIsADivergenceNotAHalt() async throws {
        let h = try LiveHarness(mode: "shadow")
        try h.start()
        try h.fault(#"{"thinBookLots":"1","thinBookCount":"1"}"#)
        await h.run(minutes: 600) { h in h.engine.trader.position != nil && h.venuePosition != 0 }
        #expect(h.venuePosition == 1 && (h.engine.trader.position?.qty ?? 0) > 1)
        #expect(await h.wait { !$0.alerts("shadow_divergence").isEmpty })
        #expect(h.state == "active")
        h.stop()
    }

    /// The engine raises the stale-feed alert with the words AlertWording gives it (before any quote came).
    @Test func staleFeedAlertSaysWhatHappened() throws {
        let h = try LiveHarness()
        try h.start()
        let started = h.engine.startedWall
        h.engine.lastQuoteWall = nil
        h.engine.staleAlerted = false
        h.engine.onTick(wall: started + 12_000)
        let raised = h.engine.batch.alerts.filter { $0.kind == "stale_feed" }.map(\.message)
        #expect(raised == ["no quote received yet, 12 s after start (limit 10 s); entries vetoed"])
        h.stop()
    }
}
