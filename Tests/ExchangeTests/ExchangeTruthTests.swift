import Engine
import Exchange
import Foundation
import Simulator
import Testing

/// What the real exchange does that a simulator easily leaves out (docs/BYBIT.md, "What the real exchange does"),
/// through the real client code against the simulated venue.
@Suite(.tags(.integration), .serialized) struct ExchangeTruthTests {
    func long(_ client: BybitRESTClient, _ qty: String, id: String) throws(BybitError) {
        _ = try client.createOrder(
            OrderRequest(side: .long, orderType: .market, qty: ScaledDecimal(qty)!, orderLinkId: id))
    }

    @Test func positionStopIsAConditionalOrderAndTheSameStopAgainIsNotModified() throws {
        let sim = try SimFixture()
        let client = sim.client()
        try long(client, "0.2", id: "at-e-1-1")
        let stop = ScaledDecimal(mantissa: sim.venue.currentQuote!.bidPrice - 3_000, scale: 1)
        #expect(try client.setTradingStop(stopLoss: stop, takeProfit: nil) == true)
        #expect(
            try client.setTradingStop(stopLoss: stop, takeProfit: nil) == false, "34040 is success: nothing changed")
        let open = try client.orders(openOnly: true)
        let conditional = try #require(open.first { $0.isConditional })
        #expect(conditional.stopOrderType == .stopLoss && conditional.orderLinkId.isEmpty)
        #expect(conditional.orderStatus == .untriggered && conditional.triggerPrice == stop)
        #expect(conditional.reduceOnly && conditional.closeOnTrigger)
        // Closing the position deactivates it.
        _ = try client.createOrder(
            OrderRequest(
                side: .short, orderType: .market, qty: ScaledDecimal("0.2")!, orderLinkId: "at-x-1-2",
                reduceOnly: true))
        #expect(try client.orders(openOnly: true).isEmpty)
        #expect(
            try client.orders(openOnly: false).contains {
                $0.orderId == conditional.orderId && $0.orderStatus == .deactivated
            })
    }

    @Test func stopOnTheWrongSideOfTheMarkIsRefused() throws {
        let sim = try SimFixture()
        let client = sim.client()
        try long(client, "0.1", id: "at-e-1-1")
        let above = ScaledDecimal(mantissa: sim.venue.currentQuote!.askPrice + 1_000, scale: 1)
        do {
            try client.setTradingStop(stopLoss: above, takeProfit: nil)
            Issue.record("a long's stop above the mark must be refused")
        } catch {
            #expect(error.retCode == BybitRetCode.badParameter)
        }
    }

    @Test func triggeredStopExecutesWithItsOrderIdAndNoLinkId() throws {
        let sim = try SimFixture()
        let client = sim.client()
        try long(client, "0.1", id: "at-e-1-1")
        let bid = sim.venue.currentQuote!.bidPrice
        try client.setTradingStop(stopLoss: ScaledDecimal(mantissa: bid - 10, scale: 1), takeProfit: nil)
        let t = sim.venue.marketTime + 1
        sim.venue.onMarket(.trade(TradeEvent(ts: t, price: bid - 10, size: 1)))
        #expect(try client.positions().first?.side == nil)
        let stopFills = try client.executions(startTime: t - 60_000).filter { $0.stopOrderType == .stopLoss }
        #expect(stopFills.count >= 1 && stopFills.allSatisfy { $0.orderLinkId.isEmpty && $0.execType == .trade })
        let order = try #require(try client.orders(openOnly: false).first { $0.orderId == stopFills[0].orderId })
        #expect(order.orderStatus == .filled && order.stopOrderType == .stopLoss)
    }

    @Test func marketOrderOnAThinBookPartlyFillsAndEndsCancelled() throws {
        let sim = try SimFixture()
        let client = sim.client()
        try sim.setFaults(#"{"thinBookLots":"300","thinBookCount":"1"}"#)
        try long(client, "1", id: "at-e-1-1")
        let order = try #require(try client.order(linkId: "at-e-1-1"))
        #expect(order.orderStatus == .cancelled, "derivatives: Cancelled, not PartiallyFilledCanceled")
        #expect(order.cumExecQty == ScaledDecimal("0.3") && order.isFinal)
        #expect(try client.positions().first?.size == ScaledDecimal("0.3"))
        // The fault was for one order: the next fills in full.
        try long(client, "0.5", id: "at-e-1-2")
        #expect(try client.order(linkId: "at-e-1-2")?.orderStatus == .filled)
    }

    @Test func listsArePagedAndTheClientReadsEveryPage() throws {
        var config = SimVenueConfig()
        config.rateLimitPerSecond = 10_000
        let sim = try SimFixture(config: config)
        let client = sim.client()
        let bid = sim.venue.currentQuote!.bidPrice
        for n in 0..<55 {
            _ = try client.createOrder(
                OrderRequest(
                    side: .long, orderType: .limit, qty: ScaledDecimal("0.001")!,
                    price: ScaledDecimal(mantissa: bid - 5_000 - Int64(n), scale: 1), timeInForce: .gtc,
                    orderLinkId: "lim-\(n)"))
        }
        #expect(try client.orders(openOnly: true).count == 55, "two pages of at most 50")
        let start = sim.venue.marketTime
        for n in 0..<105 {
            _ = try client.createOrder(
                OrderRequest(
                    side: n % 2 == 0 ? .long : .short, orderType: .market, qty: ScaledDecimal("0.001")!,
                    orderLinkId: "m-\(n)"))
        }
        let executions = try client.executions(startTime: start)
        #expect(executions.count == 105, "two pages of at most 100")
        #expect(Set(executions.map(\.execId)).count == 105)
        #expect(zip(executions, executions.dropFirst()).allSatisfy { $0.execTime <= $1.execTime }, "oldest first")
    }

    @Test func adlAndLiquidationAreExecutionsWithoutAnOrderOfOurs() throws {
        let sim = try SimFixture()
        let client = sim.client()
        try long(client, "0.4", id: "at-e-1-1")
        let reply = try CurlTransport().send(
            method: "POST", url: sim.baseURL + "/sim/adl", headers: [], body: Array(#"{"qty":"0.1"}"#.utf8))
        #expect(reply.status == 200)
        #expect(try client.positions().first?.size == ScaledDecimal("0.3"))
        let adl = try #require(
            try client.executions(startTime: sim.venue.marketTime - 60_000).first { $0.execType == .adlTrade })
        #expect(
            adl.orderLinkId.isEmpty && adl.execQty == ScaledDecimal("0.1") && adl.side == .short && adl.changesPosition)
        _ = sim.venue.forceClose(lots: nil, execType: "BustTrade")
        #expect(try client.positions().first?.side == nil)
        #expect(try client.executions(startTime: sim.venue.marketTime - 60_000).contains { $0.execType == .bustTrade })
    }

    @Test func fundingIsAnExecutionThatLeavesThePositionAlone() throws {
        let sim = try SimFixture()
        let client = sim.client()
        try long(client, "0.1", id: "at-e-1-1")
        let q = sim.venue.currentQuote!
        let boundary = (sim.venue.marketTime / 28_800_000 + 1) * 28_800_000
        sim.venue.onMarket(
            .quote(
                QuoteEvent(
                    ts: boundary + 1, bidPrice: q.bidPrice, bidSize: q.bidSize, askPrice: q.askPrice, askSize: q.askSize
                )))
        let funding = try #require(
            try client.executions(startTime: boundary - 1_000).first { $0.execType == .funding })
        #expect(!funding.changesPosition && funding.execFee.doubleValue > 0 && funding.orderLinkId.isEmpty)
        #expect(try client.positions().first?.size == ScaledDecimal("0.1"))
    }

    @Test func hedgeModeRefusesOneWayOrdersAndListsTwoPositions() throws {
        let sim = try SimFixture()
        let client = sim.client()
        let reply = try CurlTransport().send(
            method: "POST", url: sim.baseURL + "/sim/account", headers: [], body: Array(#"{"hedgeMode":true}"#.utf8))
        #expect(reply.status == 200)
        #expect(try client.positions().map(\.positionIdx) == [1, 2])
        do {
            try long(client, "0.1", id: "at-e-1-1")
            Issue.record("positionIdx 0 must fail in hedge mode")
        } catch {
            #expect(error.retCode == BybitRetCode.badParameter)
        }
    }

    @Test func accountInfoNamesTheMarginModeAndAPositionWithoutStopReadsAsNone() throws {
        let sim = try SimFixture()
        let client = sim.client()
        let cross = try client.accountInfo()
        #expect(cross.marginMode == .regular && cross.unifiedMarginStatus == 5)
        // Bybit lists a flat position, or one without a stop, with stopLoss "0".
        #expect(try client.positions().first?.stopLoss == nil)
        let reply = try CurlTransport().send(
            method: "POST", url: sim.baseURL + "/sim/account", headers: [],
            body: Array(#"{"marginMode":"ISOLATED_MARGIN"}"#.utf8))
        #expect(reply.status == 200)
        let isolated = try client.accountInfo()
        #expect(isolated.marginMode == .isolated && isolated.marginModeText == "ISOLATED_MARGIN")
    }

    @Test func lostCreateReplyIsFoundByItsLinkId() throws {
        let sim = try SimFixture()
        let client = sim.client(timeoutMs: 500)
        // Every attempt's reply is lost: the client cannot know, but the order exists and a query finds it.
        try sim.setFaults(#"{"dropRepliesCount":"4"}"#)
        do {
            try long(client, "0.1", id: "at-e-1-1")
            Issue.record("with every reply lost the create cannot succeed")
        } catch {
            #expect(error.retCode != BybitRetCode.insufficientBalance)
        }
        let found = try #require(try client.order(linkId: "at-e-1-1"))
        #expect(found.orderStatus == .filled)
        #expect(
            try client.orders(openOnly: false).filter { $0.orderLinkId == "at-e-1-1" }.count == 1, "one order, not two")
    }

    @Test func orderHistoryListsClosedOrders() throws {
        let sim = try SimFixture()
        let client = sim.client()
        try long(client, "0.1", id: "at-e-1-1")
        #expect(
            try client.orders(openOnly: false).contains { $0.orderLinkId == "at-e-1-1" && $0.orderStatus == .filled })
        let history = try client.orderHistory()
        #expect(history.map(\.orderLinkId) == ["at-e-1-1"] && history[0].isFinal)
        #expect(try client.orderHistory(linkId: "at-e-1-1").first?.cumExecQty == ScaledDecimal("0.1"))
    }

    @Test func orderBookListsLevelsBestFirst() throws {
        let sim = try SimFixture()
        let book = try sim.client().orderBook(limit: 5)
        let q = try #require(sim.venue.currentQuote)
        #expect(book.bids.count == 5 && book.asks.count == 5)
        #expect(
            Instrument.btcusdt.ticks(book.bids[0].price) == q.bidPrice
                && Instrument.btcusdt.ticks(book.asks[0].price) == q.askPrice)
        #expect(zip(book.bids, book.bids.dropFirst()).allSatisfy { $0.price.doubleValue > $1.price.doubleValue })
        #expect(zip(book.asks, book.asks.dropFirst()).allSatisfy { $0.price.doubleValue < $1.price.doubleValue })
    }
}
