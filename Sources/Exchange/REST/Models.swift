public import Engine

/// `GET /v5/market/instruments-info`: the rules that drive price and quantity rounding.
public struct InstrumentInfo: Sendable, Hashable {
    public var symbol: String
    public var status: String
    public var tickSize: ScaledDecimal
    public var qtyStep: ScaledDecimal
    public var minOrderQty: ScaledDecimal
    public var maxOrderQty: ScaledDecimal
    public var maxMarketOrderQty: ScaledDecimal?

    /// The Engine's instrument.
    public var instrument: Instrument {
        Instrument(symbol: symbol, tick: tickSize, qtyStep: qtyStep, minQty: minOrderQty)
    }
}

/// `GET /v5/market/tickers`.
public struct Ticker: Sendable, Hashable {
    public var symbol: String
    public var bid1Price: ScaledDecimal
    public var ask1Price: ScaledDecimal
    public var markPrice: ScaledDecimal
    public var fundingRate: ScaledDecimal?
    public var nextFundingTime: Int64?
}

/// `GET /v5/market/orderbook`: levels best first.
public struct OrderBook: Sendable, Hashable {
    public struct Level: Sendable, Hashable {
        public var price: ScaledDecimal
        public var size: ScaledDecimal
    }
    public var bids: [Level]
    public var asks: [Level]
    /// Update id (`u`); 1 after a service restart.
    public var updateId: Int64
    public var ts: Int64
}

/// One funding rate from `GET /v5/market/funding/history`.
public struct FundingRecord: Sendable, Hashable {
    public var rate: ScaledDecimal
    public var ts: Int64
}

/// One trade from `GET /v5/market/recent-trade`.
public struct RecentTrade: Sendable, Hashable {
    public var execId: String
    public var price: ScaledDecimal
    public var size: ScaledDecimal
    /// Taker side.
    public var side: Direction
    public var time: Int64
}

/// One candle from `GET /v5/market/kline`.
public struct Kline: Sendable, Hashable {
    public var start: Int64
    public var open, high, low, close, volume, turnover: ScaledDecimal
}

/// `GET /v5/account/wallet-balance` (UNIFIED).
public struct WalletBalance: Sendable, Hashable {
    public var totalEquity: ScaledDecimal
    public var totalAvailableBalance: ScaledDecimal
}

/// A unified account's margin mode (`marginMode` of `GET /v5/account/info`).
public enum MarginMode: String, Sendable, Hashable, CaseIterable {
    /// Cross margin: the whole balance backs every position. The only mode the agent trades.
    case regular = "REGULAR_MARGIN"
    case isolated = "ISOLATED_MARGIN"
    case portfolio = "PORTFOLIO_MARGIN"

    /// The name Bybit's web interface gives it.
    public var displayName: String {
        switch self {
        case .regular: "Cross Margin"
        case .isolated: "Isolated Margin"
        case .portfolio: "Portfolio Margin"
        }
    }
}

/// `GET /v5/account/info`.
public struct AccountInfo: Sendable, Hashable {
    /// nil when the exchange names a mode this client does not know (its text is in `marginModeText`).
    public var marginMode: MarginMode?
    public var marginModeText: String
    /// 1 classic, 3 and 4 UTA 1.0, 5 and 6 UTA 2.0.
    public var unifiedMarginStatus: Int64?
}

/// One entry of `GET /v5/position/list`.
public struct PositionInfo: Sendable, Hashable {
    public var symbol: String
    /// nil when flat (`side: ""`).
    public var side: Direction?
    public var size: ScaledDecimal
    public var avgPrice: ScaledDecimal?
    public var markPrice: ScaledDecimal?
    public var unrealisedPnl: ScaledDecimal?
    public var positionIdx: Int64
    public var stopLoss: ScaledDecimal?
    public var takeProfit: ScaledDecimal?
}

/// `POST /v5/order/create` and `/cancel` acceptance.
public struct OrderAck: Sendable, Hashable {
    public var orderId: String
    public var orderLinkId: String
}

/// One order from `GET /v5/order/realtime`.
public struct OrderInfo: Sendable, Hashable {
    public var orderId: String
    public var orderLinkId: String
    public var symbol: String
    public var side: Direction
    public var orderType: BybitOrderType
    public var orderStatus: BybitOrderStatus
    public var price: ScaledDecimal?
    public var qty: ScaledDecimal
    public var cumExecQty: ScaledDecimal
    public var leavesQty: ScaledDecimal
    public var avgPrice: ScaledDecimal?
    public var reduceOnly: Bool
    /// `.none` for an ordinary order; `StopLoss`, `TakeProfit`, `TrailingStop`, ... for a conditional order, such as
    /// the ones the exchange creates for a position's `trading-stop` (with an empty `orderLinkId`).
    public var stopOrderType: BybitStopOrderType = .none
    public var triggerPrice: ScaledDecimal?
    public var closeOnTrigger: Bool = false
    public var cancelType: String = ""
    public var rejectReason: String = ""
    public var updatedTime: Int64 = 0

    /// `New`, `PartiallyFilled`, `Untriggered`, `Triggered`, `Active`.
    public var isOpen: Bool { orderStatus.isOpen }
    /// Filled, cancelled (possibly with fills), rejected or deactivated: nothing more will execute.
    public var isFinal: Bool { orderStatus.isFinal }
    /// A conditional order (the position's stop or target, or another stop order).
    public var isConditional: Bool { stopOrderType.isConditional }
}

/// One execution from `GET /v5/execution/list` (and the private `execution` stream).
public struct Execution: Sendable, Hashable {
    public var execId: String
    public var orderId: String
    public var orderLinkId: String
    public var side: Direction
    public var execPrice: ScaledDecimal
    public var execQty: ScaledDecimal
    public var execFee: ScaledDecimal
    public var execType: BybitExecType
    public var isMaker: Bool
    public var execTime: Int64
    /// Set when a conditional order (a position's stop) executed.
    public var stopOrderType: BybitStopOrderType = .none

    /// Every kind but `Funding` changes the position.
    public var changesPosition: Bool { execType != .funding }
}

/// An order to place.
public struct OrderRequest: Sendable, Hashable {
    public var side: Direction
    public var orderType: BybitOrderType
    public var qty: ScaledDecimal
    public var price: ScaledDecimal?
    /// nil lets the exchange choose (IOC for market).
    public var timeInForce: BybitTimeInForce?
    /// Deterministic client id (≤ 36 of `[A-Za-z0-9_-]`): a retry re-sends the same one.
    public var orderLinkId: String
    public var reduceOnly: Bool
    public var closeOnTrigger: Bool
    /// The position's stop the exchange sets when the order fills (`stopLoss`, `tpslMode` Full, triggered by the last
    /// price, closed at market): the whole position, in the same matching step as the fill.
    public var stopLoss: ScaledDecimal?

    public init(
        side: Direction, orderType: BybitOrderType, qty: ScaledDecimal, price: ScaledDecimal? = nil,
        timeInForce: BybitTimeInForce? = nil,
        orderLinkId: String, reduceOnly: Bool = false, closeOnTrigger: Bool = false, stopLoss: ScaledDecimal? = nil
    ) {
        self.stopLoss = stopLoss
        self.side = side
        self.orderType = orderType
        self.qty = qty
        self.price = price
        self.timeInForce = timeInForce
        self.orderLinkId = orderLinkId
        self.reduceOnly = reduceOnly
        self.closeOnTrigger = closeOnTrigger
    }

    /// Whether `orderLinkId` is one Bybit accepts.
    public var hasValidLinkId: Bool {
        !orderLinkId.isEmpty && orderLinkId.count <= 36
            && orderLinkId.unicodeScalars.allSatisfy { CharacterSetASCII.isLinkIdCharacter($0) }
    }
}

enum CharacterSetASCII {
    static func isLinkIdCharacter(_ u: Unicode.Scalar) -> Bool {
        (u >= "a" && u <= "z") || (u >= "A" && u <= "Z") || (u >= "0" && u <= "9") || u == "-" || u == "_"
    }
}

/// `Buy` / `Sell` ↔ direction.
func parseSide(_ s: String, _ fields: JSONFields, _ key: String) throws(BybitError) -> Direction {
    switch s {
    case "Buy": return .long
    case "Sell": return .short
    default: throw fields.fail(key, "'\(s)' is not Buy or Sell")
    }
}

extension Direction {
    /// Bybit's `Buy` / `Sell`.
    public var bybitSide: String { self == .long ? "Buy" : "Sell" }
}

// Decoding from Bybit's JSON, shared by REST replies and private stream messages.

extension WalletBalance {
    public init(_ w: JSONFields) throws(BybitError) {
        self.init(
            totalEquity: try w.decimal("totalEquity"), totalAvailableBalance: try w.decimal("totalAvailableBalance"))
    }
}

extension AccountInfo {
    public init(_ a: JSONFields) throws(BybitError) {
        let text = try a.string("marginMode")
        self.init(
            marginMode: MarginMode(rawValue: text), marginModeText: text,
            unifiedMarginStatus: a.optionalString("unifiedMarginStatus").flatMap { Int64($0) })
    }
}

extension PositionInfo {
    /// Bybit reports a position without a stop or target as `"0"` (an empty string on some accounts): both read as nil.
    public init(_ p: JSONFields) throws(BybitError) {
        let sideText = p.optionalString("side")
        self.init(
            symbol: try p.string("symbol"),
            side: try sideText.map { s throws(BybitError) in try parseSide(s, p, "side") },
            size: try p.decimal("size"), avgPrice: try p.optionalDecimal("avgPrice"),
            markPrice: try p.optionalDecimal("markPrice"),
            unrealisedPnl: try p.optionalDecimal("unrealisedPnl"), positionIdx: try p.int64("positionIdx"),
            stopLoss: try p.optionalDecimal("stopLoss").flatMap { $0.mantissa == 0 ? nil : $0 },
            takeProfit: try p.optionalDecimal("takeProfit").flatMap { $0.mantissa == 0 ? nil : $0 }
        )
    }
}

extension OrderInfo {
    public init(_ o: JSONFields) throws(BybitError) {
        self.init(
            orderId: try o.string("orderId"), orderLinkId: try o.string("orderLinkId"), symbol: try o.string("symbol"),
            side: try parseSide(try o.string("side"), o, "side"),
            orderType: BybitOrderType(bybit: try o.string("orderType")),
            orderStatus: BybitOrderStatus(bybit: try o.string("orderStatus")), price: try o.optionalDecimal("price"),
            qty: try o.decimal("qty"),
            cumExecQty: try o.decimal("cumExecQty"), leavesQty: try o.decimal("leavesQty"),
            avgPrice: try o.optionalDecimal("avgPrice"), reduceOnly: (try? o.bool("reduceOnly")) ?? false,
            stopOrderType: BybitStopOrderType(field: o.optionalString("stopOrderType")),
            triggerPrice: try o.optionalDecimal("triggerPrice").flatMap { $0.mantissa == 0 ? nil : $0 },
            closeOnTrigger: (try? o.bool("closeOnTrigger")) ?? false, cancelType: o.optionalString("cancelType") ?? "",
            rejectReason: o.optionalString("rejectReason") ?? "",
            updatedTime: o.optionalString("updatedTime").flatMap { Int64($0) } ?? 0
        )
    }
}

extension Execution {
    public init(_ e: JSONFields) throws(BybitError) {
        self.init(
            execId: try e.string("execId"), orderId: try e.string("orderId"),
            orderLinkId: e.optionalString("orderLinkId") ?? "",
            side: try parseSide(try e.string("side"), e, "side"), execPrice: try e.decimal("execPrice"),
            execQty: try e.decimal("execQty"), execFee: try e.decimal("execFee"),
            execType: BybitExecType(bybit: try e.string("execType")),
            isMaker: (try? e.bool("isMaker")) ?? false, execTime: try e.int64("execTime"),
            stopOrderType: BybitStopOrderType(field: e.optionalString("stopOrderType"))
        )
    }
}
