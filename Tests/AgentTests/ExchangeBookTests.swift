import Engine
import Foundation
import Testing

@testable import AgentCLI
@testable import AgentConfig
@testable import AgentSupport
@testable import Daemon
@testable import Exchange
@testable import Research

/// The exchange's side of the books, fed report by report (docs/EXCHANGE.md, "Order states").
@Suite(.tags(.unit)) struct ExchangeBookTests {
    let instrument = Instrument.btcusdt

    func intent(_ id: String = "at-e-1-1", qty: Lots = 10, side: Direction = .long, reduceOnly: Bool = false)
        -> OrderIntent
    {
        OrderIntent(
            id: id, side: side, qty: qty, type: .market, reduceOnly: reduceOnly,
            purpose: reduceOnly ? .exit(.stop) : .entry(.breakIn),
            decisionTs: 1_000)
    }

    func order(
        _ link: String, _ status: String, cum: String, orderId: String = "o-1", stopOrderType: String = "",
        trigger: String = ""
    ) throws -> OrderInfo {
        try OrderInfo(
            JSONFields(
                [
                    "orderId": orderId, "orderLinkId": link, "symbol": "BTCUSDT", "side": "Buy", "orderType": "Market",
                    "orderStatus": status,
                    "qty": "0.010", "cumExecQty": cum, "leavesQty": "0", "avgPrice": "",
                    "reduceOnly": !stopOrderType.isEmpty,
                    "stopOrderType": stopOrderType, "triggerPrice": trigger,
                ], path: "order", endpoint: "test"))
    }

    func execution(
        _ id: String, link: String, qty: String, price: String = "50000.0", side: String = "Buy",
        type: String = "Trade",
        stopOrderType: String = "", fee: String = "0.01", time: Int64 = 2_000
    ) throws -> Execution {
        try Execution(
            JSONFields(
                [
                    "execId": id, "orderId": "o-1", "orderLinkId": link, "side": side, "execPrice": price,
                    "execQty": qty, "execFee": fee,
                    "execType": type, "stopOrderType": stopOrderType, "isMaker": false, "execTime": String(time),
                ], path: "execution", endpoint: "test"))
    }

    @Test func marketOrderPartlyFilledThenCancelledEndsAtWhatExecuted() throws {
        var book = ExchangeBook(instrument: instrument)
        book.track(intent())
        book.acknowledged("at-e-1-1")
        #expect(try book.onOrder(order("at-e-1-1", "New", cum: "0")).isEmpty)
        #expect(try book.onExecution(execution("x1", link: "at-e-1-1", qty: "0.003", price: "50000.0")).isEmpty)
        #expect(try book.onExecution(execution("x2", link: "at-e-1-1", qty: "0.001", price: "50000.4")).isEmpty)
        let out = try book.onOrder(order("at-e-1-1", "Cancelled", cum: "0.004"))
        guard case .done(let i, let lots, let tickLots, let fee, _, _, let status, _, _)? = out.first else {
            Issue.record("not done: \(out)")
            return
        }
        #expect(i.id == "at-e-1-1" && lots == 4 && status == .cancelled)
        #expect(tickLots == 500_000 * 3 + 500_004, "the volume-weighted price comes from the executions")
        #expect(abs(fee - 0.02) < 1e-12)
        #expect(!book.hasOrdersInFlight && book.position == 4)
    }

    @Test func finalReportBeforeItsExecutionsWaitsForThem() throws {
        var book = ExchangeBook(instrument: instrument)
        book.track(intent())
        let first = try book.onOrder(order("at-e-1-1", "Filled", cum: "0.010"))
        guard case .missingExecutions(let id)? = first.first else {
            Issue.record("expected a request for the missing executions: \(first)")
            return
        }
        #expect(id == "at-e-1-1" && book.hasOrdersInFlight)
        #expect(try book.onExecution(execution("x1", link: "at-e-1-1", qty: "0.006")).isEmpty)
        let out = try book.onExecution(execution("x2", link: "at-e-1-1", qty: "0.004"))
        guard case .done(_, let lots, _, _, _, _, let status, _, _)? = out.first else {
            Issue.record("not done: \(out)")
            return
        }
        #expect(lots == 10 && status == .filled)
    }

    @Test func anExecutionReadTwiceCountsOnce() throws {
        var book = ExchangeBook(instrument: instrument)
        book.track(intent(qty: 10))
        _ = try book.onExecution(execution("x1", link: "at-e-1-1", qty: "0.005"))
        // The same fill from the REST re-read after the stream delivered it.
        #expect(try book.onExecution(execution("x1", link: "at-e-1-1", qty: "0.005")).isEmpty)
        #expect(book.position == 5 && book.hasOrdersInFlight)
    }

    @Test func thePositionsOwnStopIsRecognisedNotForeign() throws {
        var book = ExchangeBook(instrument: instrument)
        let stop = try order(
            "", "Untriggered", cum: "0", orderId: "sl-1", stopOrderType: "StopLoss", trigger: "49000.0")
        #expect(book.onOrder(stop).isEmpty)
        #expect(book.heldStopTicks == 490_000)
        book.reconciled(position: 10, openOrders: [stop])
        #expect(book.heldStopTicks == 490_000)
        // It fires: its executions carry its stopOrderType and no orderLinkId; the order ends.
        let out = try book.onExecution(
            execution("x9", link: "", qty: "0.010", price: "48999.0", side: "Sell", stopOrderType: "StopLoss"))
        guard case .foreign(let e, let lots, let ticks)? = out.first else {
            Issue.record("expected a foreign execution: \(out)")
            return
        }
        #expect(e.stopOrderType == .stopLoss && lots == 10 && ticks == 489_990)
        _ = try book.onOrder(
            order("", "Filled", cum: "0.010", orderId: "sl-1", stopOrderType: "StopLoss", trigger: "49000.0"))
        #expect(book.heldStopTicks == nil && book.position == 0)
    }

    @Test func fundingLeavesThePositionAdlChangesIt() throws {
        var book = ExchangeBook(instrument: instrument)
        book.reconciled(position: 10, openOrders: [])
        let funding = try book.onExecution(execution("f1", link: "", qty: "0.010", type: "Funding", fee: "0.5"))
        guard case .funding? = funding.first else {
            Issue.record("expected funding: \(funding)")
            return
        }
        #expect(book.position == 10)
        let adl = try book.onExecution(execution("a1", link: "", qty: "0.004", side: "Sell", type: "AdlTrade"))
        guard case .foreign(let e, _, _)? = adl.first else {
            Issue.record("expected a foreign execution: \(adl)")
            return
        }
        #expect(e.execType == .adlTrade && book.position == 6)
    }

    @Test func rejectedWithNothingExecutedIsDoneAtZero() throws {
        var book = ExchangeBook(instrument: instrument)
        book.track(intent())
        let out = book.rejected("at-e-1-1", reason: "retCode 110007")
        guard case .done(_, let lots, _, _, _, _, let status, let reason, _)? = out.first else {
            Issue.record("not done: \(out)")
            return
        }
        #expect(lots == 0 && status == .rejected && reason.contains("110007"))
    }

    @Test func anUnknownOutcomeStaysInFlightUntilTheExchangeSays() throws {
        var book = ExchangeBook(instrument: instrument)
        book.track(intent())
        book.outcomeUnknown("at-e-1-1")
        #expect(book.unknownIds == ["at-e-1-1"] && book.hasOrdersInFlight)
        book.acknowledged("at-e-1-1")
        #expect(book.unknownIds.isEmpty && book.hasOrdersInFlight)
        _ = try book.onExecution(execution("x1", link: "at-e-1-1", qty: "0.010"))
        #expect(!book.hasOrdersInFlight)
        // A late report of an order already done is not news, and does not track it again.
        #expect(try book.onOrder(order("at-e-1-1", "Filled", cum: "0.010")).isEmpty)
        book.track(intent())
        #expect(!book.hasOrdersInFlight)
    }

    @Test func venueRulesNameBothValues() throws {
        let info = InstrumentInfo(
            symbol: "BTCUSDT", status: "Trading", tickSize: ScaledDecimal("0.5")!, qtyStep: ScaledDecimal("0.001")!,
            minOrderQty: ScaledDecimal("0.001")!, maxOrderQty: ScaledDecimal("100")!, maxMarketOrderQty: nil)
        #expect(VenueRules.differences(info, instrument) == ["instrument.tick_size: exchange 0.5, configuration 0.1"])
    }

    @Test func createFailuresThatLeaveTheOutcomeUnknown() {
        func e(_ k: BybitError.Kind) -> BybitError { BybitError(k, endpoint: "POST /v5/order/create", message: "") }
        #expect(!ExchangeMirror.isDefinite(e(.transport(timedOut: true))))
        #expect(!ExchangeMirror.isDefinite(e(.http(503))))
        #expect(!ExchangeMirror.isDefinite(e(.api(retCode: BybitRetCode.serverError, retMsg: ""))))
        #expect(!ExchangeMirror.isDefinite(e(.decoding)))
        #expect(ExchangeMirror.isDefinite(e(.api(retCode: BybitRetCode.insufficientBalance, retMsg: ""))))
        #expect(ExchangeMirror.isDefinite(e(.api(retCode: BybitRetCode.badParameter, retMsg: ""))))
    }
}
