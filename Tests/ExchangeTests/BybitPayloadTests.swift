import Engine
import Exchange
import ExchangeStreams
import Testing

/// Replies and private-stream messages shaped as Bybit's v5 sends them (every field, the empty strings and nulls
/// included), decoded into the typed enumerations (docs/BYBIT.md, "What the real exchange does"). Written for these
/// tests from the v5 documentation's field lists; each payload is one situation the agent meets.
@Suite(.tags(.unit)) struct BybitPayloadTests {
    /// One order object as `/v5/order/realtime` and the `order` topic carry it, with the fields that vary.
    static func order(
        status: String, type: String = "Limit", stopOrderType: String = "", linkId: String = "at-e-42-1",
        avgPrice: String = "", cumExecQty: String = "0", leavesQty: String = "0.012", tif: String = "GTC",
        triggerPrice: String = "0", reduceOnly: Bool = false, cancelType: String = "UNKNOWN",
        rejectReason: String = "EC_NoError"
    ) -> String {
        """
        {"orderId":"5f3c8a2e-7b1d-4c0e-9a55-2d8e6f1b3c47","orderLinkId":"\(linkId)","blockTradeId":"","symbol":"BTCUSDT",\
        "price":"64210.5","qty":"0.012","side":"Buy","isLeverage":"","positionIdx":0,"orderStatus":"\(status)",\
        "createType":"CreateByUser","cancelType":"\(cancelType)","rejectReason":"\(rejectReason)","avgPrice":"\(avgPrice)",\
        "leavesQty":"\(leavesQty)","leavesValue":"770.526","cumExecQty":"\(cumExecQty)","cumExecValue":"0",\
        "cumExecFee":"0","timeInForce":"\(tif)","orderType":"\(type)","stopOrderType":"\(stopOrderType)",\
        "orderIv":"","marketUnit":"","triggerPrice":"\(triggerPrice)","takeProfit":"0","stopLoss":"63900.0",\
        "tpslMode":"Full","ocoTriggerBy":"","tpLimitPrice":"0","slLimitPrice":"0","tpTriggerBy":"",\
        "slTriggerBy":"LastPrice","triggerDirection":0,"triggerBy":"","lastPriceOnCreated":"64215.0",\
        "reduceOnly":\(reduceOnly),"closeOnTrigger":false,"smpType":"None","smpGroup":0,"smpOrderId":"",\
        "placeType":"","createdTime":"1764979200123","updatedTime":"1764979200456"}
        """
    }

    static func execution(
        type: String, linkId: String = "at-e-42-1", stopOrderType: String = "", qty: String = "0.012",
        fee: String = "0.4623"
    ) -> String {
        """
        {"symbol":"BTCUSDT","orderId":"5f3c8a2e-7b1d-4c0e-9a55-2d8e6f1b3c47","orderLinkId":"\(linkId)","side":"Buy",\
        "orderPrice":"64210.5","orderQty":"0.012","leavesQty":"0","createType":"CreateByUser","orderType":"Limit",\
        "stopOrderType":"\(stopOrderType)","execFee":"\(fee)","execId":"e1c2d3f4-0a1b-4c2d-8e3f-9a0b1c2d3e4f",\
        "execPrice":"64210.5","execQty":"\(qty)","execType":"\(type)","execValue":"770.526","execTime":"1764979200456",\
        "feeCurrency":"USDT","isMaker":true,"feeRate":"0.0002","tradeIv":"","markIv":"","markPrice":"64208.1",\
        "indexPrice":"","underlyingPrice":"","blockTradeId":"","closedSize":"0","seq":9173412345,"extraFees":""}
        """
    }

    func orders(_ objects: [String]) throws -> [OrderInfo] {
        let text =
            #"{"topic":"order","id":"1","creationTime":1764979200460,"data":["# + objects.joined(separator: ",") + "]}"
        guard case .orders(let list) = try PrivateMessageParser().parse(text) else { throw Mismatch() }
        return list
    }

    func executions(_ objects: [String]) throws -> [Execution] {
        let text =
            #"{"topic":"execution","id":"2","creationTime":1764979200460,"data":["# + objects.joined(separator: ",")
            + "]}"
        guard case .executions(let list) = try PrivateMessageParser().parse(text) else { throw Mismatch() }
        return list
    }

    struct Mismatch: Error {}

    @Test func aRestingLimitEntryWithItsAttachedStop() throws {
        let o = try #require(try orders([Self.order(status: "New")]).first)
        #expect(o.orderStatus == .new && o.orderType == .limit && o.stopOrderType == .none)
        #expect(o.isOpen && !o.isFinal && !o.isConditional)
        #expect(o.avgPrice == nil, "an empty avgPrice before a fill")
        #expect(o.cancelType == "UNKNOWN" && o.triggerPrice == nil)
    }

    @Test func thePositionsStopIsAConditionalOrderWithoutALinkId() throws {
        let o = try #require(
            try orders([
                Self.order(
                    status: "Untriggered", type: "Market", stopOrderType: "StopLoss", linkId: "", tif: "IOC",
                    triggerPrice: "63900.0", reduceOnly: true)
            ]).first)
        #expect(o.orderStatus == .untriggered && o.stopOrderType == .stopLoss && o.stopOrderType.isStopLoss)
        #expect(o.isOpen && o.isConditional && o.orderLinkId.isEmpty)
        #expect(o.triggerPrice == ScaledDecimal("63900.0"))
    }

    @Test func aMarketOrderCancelledAfterAPartialFillIsOverWithWhatExecuted() throws {
        let list = try orders([
            Self.order(
                status: "Cancelled", type: "Market", avgPrice: "64211.0", cumExecQty: "0.004", leavesQty: "0",
                tif: "IOC", cancelType: "CancelByUser"),
            Self.order(status: "PartiallyFilledCanceled", avgPrice: "64211.0", cumExecQty: "0.004"),
            Self.order(status: "Deactivated", type: "Market", stopOrderType: "StopLoss", linkId: ""),
            Self.order(status: "Rejected", rejectReason: "EC_PostOnlyWillTakeLiquidity"),
        ])
        #expect(list.map(\.orderStatus) == [.cancelled, .partiallyFilledCanceled, .deactivated, .rejected])
        #expect(list.allSatisfy { $0.isFinal && !$0.isOpen })
        #expect(list[0].cumExecQty == ScaledDecimal("0.004") && list[0].avgPrice == ScaledDecimal("64211.0"))
    }

    @Test func executionsOfTheExchangesOwnDoing() throws {
        let list = try executions([
            Self.execution(type: "Trade"),
            Self.execution(type: "Trade", linkId: "", stopOrderType: "StopLoss"),
            // ADL: no order of ours, and Bybit's stopOrderType "UNKNOWN" means none.
            Self.execution(type: "AdlTrade", linkId: "", stopOrderType: "UNKNOWN", fee: "0"),
            Self.execution(type: "BustTrade", linkId: ""),
            // Funding: the position's size in execQty, the money in execFee (negative: received).
            Self.execution(type: "Funding", linkId: "", qty: "0.012", fee: "-0.0771"),
        ])
        #expect(list.map(\.execType) == [.trade, .trade, .adlTrade, .bustTrade, .funding])
        #expect(list.map(\.stopOrderType) == [.none, .stopLoss, .none, .none, .none])
        #expect(list.map(\.changesPosition) == [true, true, true, true, false])
        #expect(list[4].execFee == ScaledDecimal("-0.0771"))
    }

    /// A value this client does not know is kept as it came, never mapped to a known one; an order in such a state is
    /// neither open nor over (the venue alerts it and reads the order again).
    @Test func anUnknownValueStaysUnknown() throws {
        let o = try #require(
            try orders([Self.order(status: "PendingReview", type: "Iceberg", stopOrderType: "ChaseOrder")]).first)
        #expect(o.orderStatus == .unknown("PendingReview") && o.orderStatus.unknownText == "PendingReview")
        #expect(!o.isOpen && !o.isFinal)
        #expect(o.orderType == .unknown("Iceberg") && o.stopOrderType == .unknown("ChaseOrder") && o.isConditional)
        let e = try #require(try executions([Self.execution(type: "Liquidation2026")]).first)
        #expect(
            e.execType == .unknown("Liquidation2026") && e.changesPosition, "unknown: counted as moving the position")
        #expect("\(o.orderStatus)" == "PendingReview" && BybitOrderStatus(bybit: "Filled") == .filled)
    }

    @Test func everyKnownValueReadsBackToItsText() {
        for (value, text) in BybitOrderStatus.known {
            #expect(BybitOrderStatus(bybit: text) == value && value.text == text)
        }
        for (value, text) in BybitExecType.known { #expect(BybitExecType(bybit: text) == value && value.text == text) }
        for (value, text) in BybitStopOrderType.known {
            #expect(BybitStopOrderType(bybit: text) == value && value.text == text)
        }
        for (value, text) in BybitOrderType.known {
            #expect(BybitOrderType(bybit: text) == value && value.text == text)
        }
        for (value, text) in BybitTimeInForce.known {
            #expect(BybitTimeInForce(bybit: text) == value && value.text == text)
        }
    }
}
