import Engine
import Exchange
import Foundation
import Testing

@testable import Simulator

@Suite(.tags(.unit)) struct SimVenueTests {
    let t0: Millis = 1_767_225_600_000

    func venue(bid: Ticks = 500_000, bidSize: Lots = 1_000, askSize: Lots = 1_000) -> SimVenue {
        let v = SimVenue()
        v.onMarket(.quote(QuoteEvent(ts: t0, bidPrice: bid, bidSize: bidSize, askPrice: bid + 1, askSize: askSize)))
        return v
    }

    @Test func marketOrderBeyondTheTopLevelFillsInParts() throws {
        let v = venue(askSize: 1_000)
        let o = try v.lock.withLock {
            try v.place(
                linkId: "a", side: .long, type: .market, qty: 2_500, price: nil, reduceOnly: false, timeInForce: nil)
        }
        #expect(o.status == .filled && o.filled == 2_500)
        let fills = v.lock.withLock { v.executions }
        #expect(fills.map(\.qty) == [1_000, 1_000, 500])
        #expect(fills.map(\.price) == [500_001, 500_002, 500_003])
        #expect(v.lock.withLock { v.positionLots } == 2_500)
    }

    @Test func limitOrderRestsAndFillsWhenATradePrintsThrough() throws {
        let v = venue()
        let o = try v.lock.withLock {
            try v.place(
                linkId: "l", side: .long, type: .limit, qty: 300, price: 499_990, reduceOnly: false, timeInForce: "GTC"
            )
        }
        #expect(o.status == .new)
        v.onMarket(.trade(TradeEvent(ts: t0 + 1, price: 499_990, size: 500)))
        #expect(v.lock.withLock { v.orders[o.orderId]!.filled } == 0, "at the price is not through")
        v.onMarket(.trade(TradeEvent(ts: t0 + 2, price: 499_989, size: 100)))
        let after = v.lock.withLock { v.orders[o.orderId]! }
        #expect(after.filled == 100 && after.status == .partiallyFilled)
        #expect(v.lock.withLock { v.executions.last!.isMaker })
        // The book moves through the limit: the rest fills.
        v.onMarket(.quote(QuoteEvent(ts: t0 + 3, bidPrice: 499_980, bidSize: 1_000, askPrice: 499_981, askSize: 1_000)))
        #expect(v.lock.withLock { v.orders[o.orderId]!.status } == .filled)
    }

    @Test func reduceOnlyIsClampedToThePositionAndRefusedWhenFlat() throws {
        let v = venue()
        #expect(throws: SimVenue.Rejection.self) {
            _ = try v.lock.withLock {
                try v.place(
                    linkId: "r0", side: .short, type: .market, qty: 100, price: nil, reduceOnly: true, timeInForce: nil
                )
            }
        }
        _ = try v.lock.withLock {
            try v.place(
                linkId: "b", side: .long, type: .market, qty: 200, price: nil, reduceOnly: false, timeInForce: nil)
        }
        let close = try v.lock.withLock {
            try v.place(
                linkId: "r1", side: .short, type: .market, qty: 500, price: nil, reduceOnly: true, timeInForce: nil)
        }
        #expect(close.qty == 200 && close.filled == 200)
        #expect(v.lock.withLock { v.positionLots } == 0)
    }

    @Test func duplicateLinkIdIsRefused() throws {
        let v = venue()
        _ = try v.lock.withLock {
            try v.place(
                linkId: "same", side: .long, type: .market, qty: 1, price: nil, reduceOnly: false, timeInForce: nil)
        }
        do {
            _ = try v.lock.withLock {
                try v.place(
                    linkId: "same", side: .long, type: .market, qty: 1, price: nil, reduceOnly: false, timeInForce: nil
                )
            }
            Issue.record("duplicate")
        } catch {
            #expect((error as? SimVenue.Rejection)?.retCode == 110072)
        }
    }

    @Test func fundingChargesTheLongEveryEightHours() throws {
        let v = venue()
        _ = try v.lock.withLock {
            try v.place(
                linkId: "b", side: .long, type: .market, qty: 1_000, price: nil, reduceOnly: false, timeInForce: nil)
        }
        let before = v.lock.withLock { v.balance }
        v.onMarket(
            .quote(QuoteEvent(ts: t0 + 8 * 3_600_000, bidPrice: 500_000, bidSize: 1, askPrice: 500_001, askSize: 1)))
        let paid = before - v.lock.withLock { v.balance }
        // 1 BTC at mid 50000.05, 1 bp.
        #expect(abs(paid - 50000.05 * 0.0001) < 1e-9)
        #expect(v.lock.withLock { v.executions.last!.execType } == "Funding")
    }

    @Test func exchangeHeldStopClosesThePosition() throws {
        let v = venue()
        _ = try v.lock.withLock {
            try v.place(
                linkId: "b", side: .long, type: .market, qty: 100, price: nil, reduceOnly: false, timeInForce: nil)
        }
        #expect(v.lock.withLock { v.setPositionLevels(stopLoss: 499_900, takeProfit: nil) })
        #expect(
            !v.lock.withLock { v.setPositionLevels(stopLoss: 499_900, takeProfit: nil) },
            "the same stop again: not modified")
        let stopOrder = try #require(v.lock.withLock { v.orders.values.first { $0.stopOrderType == "StopLoss" } })
        #expect(
            stopOrder.status == .untriggered && stopOrder.orderLinkId.isEmpty && stopOrder.isOpen
                && stopOrder.closeOnTrigger)
        v.onMarket(.trade(TradeEvent(ts: t0 + 5, price: 499_950, size: 1)))
        #expect(v.lock.withLock { v.positionLots } == 100)
        v.onMarket(.trade(TradeEvent(ts: t0 + 6, price: 499_900, size: 1)))
        #expect(v.lock.withLock { v.positionLots } == 0)
        let statuses = v.takePrivateEvents().compactMap { e -> SimOrderStatus? in
            if case .order(let o) = e, o.orderId == stopOrder.orderId { o.status } else { nil }
        }
        #expect(statuses == [.untriggered, .triggered, .filled])
        let last = try #require(v.lock.withLock { v.executions.last })
        #expect(last.orderId == stopOrder.orderId && last.orderLinkId.isEmpty && last.stopOrderType == "StopLoss")
    }

    @Test func marketOrderBeyondTheProtectionBandIsCancelledWithItsFills() throws {
        var config = SimVenueConfig()
        config.marketProtectionTicks = 2
        let v = SimVenue(config: config)
        v.onMarket(.quote(QuoteEvent(ts: t0, bidPrice: 500_000, bidSize: 100, askPrice: 500_001, askSize: 100)))
        let o = try v.lock.withLock {
            try v.place(
                linkId: "a", side: .long, type: .market, qty: 1_000, price: nil, reduceOnly: false, timeInForce: nil)
        }
        #expect(o.status == .cancelled && o.filled == 300, "three levels of 100 within 2 ticks of the best")
        #expect(v.lock.withLock { v.positionLots } == 300)
    }

    @Test func adlClosesPartOfThePositionAsAnExecutionOnly() throws {
        let v = venue()
        _ = try v.lock.withLock {
            try v.place(
                linkId: "b", side: .long, type: .market, qty: 100, price: nil, reduceOnly: false, timeInForce: nil)
        }
        let e = try #require(v.forceClose(lots: 40, execType: "AdlTrade"))
        #expect(e.execType == "AdlTrade" && e.qty == 40 && e.orderLinkId.isEmpty && e.fee == 0 && e.side == .short)
        #expect(v.lock.withLock { v.positionLots } == 60)
    }

    @Test func duplicateExecutionsFaultReportsEachFillTwice() throws {
        let v = venue()
        v.faults.duplicateExecutions = true
        _ = try v.lock.withLock {
            try v.place(
                linkId: "b", side: .long, type: .market, qty: 10, price: nil, reduceOnly: false, timeInForce: nil)
        }
        let executions = v.takePrivateEvents().compactMap { if case .execution(let e) = $0 { e } else { nil } }
        #expect(executions.count == 2 && executions[0] == executions[1])
    }
}
