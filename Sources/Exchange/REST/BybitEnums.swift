/// Bybit's enumerations where money moves (https://bybit-exchange.github.io/docs/v5/enum), as types: a typo no longer
/// compiles. Each keeps a value this client does not know as `unknown(text)`, never mapped to a known case; the
/// venue logs and alerts it (`exchange_unknown_value`) the first time it sees it, and treats it conservatively (an
/// order whose status is unknown is neither open nor over: it is asked for again).
public protocol BybitEnum: Sendable, Hashable, CustomStringConvertible {
    /// The known cases and their text, as Bybit spells it.
    static var known: [(Self, String)] { get }
    static func unknown(_ text: String) -> Self
    /// The text of an `unknown` value, nil for a known one.
    var unknownText: String? { get }
}

extension BybitEnum {
    /// The value Bybit's text names (`unknown(text)` when none does).
    public init(bybit text: String) {
        self = Self.known.first { $0.1 == text }?.0 ?? Self.unknown(text)
    }

    /// Bybit's text.
    public var text: String { unknownText ?? Self.known.first { $0.0 == self }?.1 ?? "" }
    public var description: String { text }
    public var isUnknown: Bool { unknownText != nil }
}

/// `orderStatus`.
public enum BybitOrderStatus: BybitEnum {
    case created, new, partiallyFilled, untriggered, triggered, active
    case filled, cancelled, rejected, deactivated, partiallyFilledCanceled
    case unknown(String)

    public static let known: [(Self, String)] = [
        (.created, "Created"), (.new, "New"), (.partiallyFilled, "PartiallyFilled"), (.untriggered, "Untriggered"),
        (.triggered, "Triggered"),
        (.active, "Active"), (.filled, "Filled"), (.cancelled, "Cancelled"), (.rejected, "Rejected"),
        (.deactivated, "Deactivated"), (.partiallyFilledCanceled, "PartiallyFilledCanceled"),
    ]
    public var unknownText: String? { if case .unknown(let t) = self { t } else { nil } }

    /// Accepted or working at the exchange: it may still execute.
    public var isOpen: Bool {
        switch self {
        case .created, .new, .partiallyFilled, .untriggered, .triggered, .active: true
        default: false
        }
    }

    /// Over: nothing more will execute (its executions say how much did).
    public var isFinal: Bool {
        switch self {
        case .filled, .cancelled, .rejected, .deactivated, .partiallyFilledCanceled: true
        default: false
        }
    }
}

/// `execType`.
public enum BybitExecType: BybitEnum {
    /// An order's fill (or a conditional order's, such as the position's stop).
    case trade
    /// The 8-hourly funding: money, not the position.
    case funding
    /// Auto-deleveraging, liquidation, delivery and settlement, block trades and moved positions: the exchange
    /// changed the position.
    case adlTrade, bustTrade, delivery, settle, blockTrade, movePosition
    case unknown(String)

    public static let known: [(Self, String)] = [
        (.trade, "Trade"), (.funding, "Funding"), (.adlTrade, "AdlTrade"), (.bustTrade, "BustTrade"),
        (.delivery, "Delivery"), (.settle, "Settle"), (.blockTrade, "BlockTrade"), (.movePosition, "MovePosition"),
    ]
    public var unknownText: String? { if case .unknown(let t) = self { t } else { nil } }
}

/// `stopOrderType`: empty for an ordinary order; Bybit also sends `UNKNOWN` on some executions (ADL), read as none.
public enum BybitStopOrderType: BybitEnum {
    case none
    case stopLoss, takeProfit, partialStopLoss, partialTakeProfit, trailingStop, stop, tpslOrder, ocoOrder
    case mmRateClose, bidirectionalTpslOrder
    case unknown(String)

    public static let known: [(Self, String)] = [
        (.none, ""), (.stopLoss, "StopLoss"), (.takeProfit, "TakeProfit"), (.partialStopLoss, "PartialStopLoss"),
        (.partialTakeProfit, "PartialTakeProfit"), (.trailingStop, "TrailingStop"), (.stop, "Stop"),
        (.tpslOrder, "tpslOrder"), (.ocoOrder, "OcoOrder"), (.mmRateClose, "MmRateClose"),
        (.bidirectionalTpslOrder, "BidirectionalTpslOrder"),
    ]
    public var unknownText: String? { if case .unknown(let t) = self { t } else { nil } }

    /// Reads Bybit's text: `""`, a missing field and `UNKNOWN` are no stop order.
    public init(field text: String?) {
        guard let text, text != "UNKNOWN" else {
            self = .none
            return
        }
        self.init(bybit: text)
    }

    /// A conditional order (not an ordinary one).
    public var isConditional: Bool { self != .none }
    /// The position's stop, whole or partial.
    public var isStopLoss: Bool { self == .stopLoss || self == .partialStopLoss }
    /// The position's target, whole or partial.
    public var isTakeProfit: Bool { self == .takeProfit || self == .partialTakeProfit }
}

/// `orderType`.
public enum BybitOrderType: BybitEnum {
    case market, limit
    case unknown(String)

    public static let known: [(Self, String)] = [(.market, "Market"), (.limit, "Limit")]
    public var unknownText: String? { if case .unknown(let t) = self { t } else { nil } }
}

/// `timeInForce`.
public enum BybitTimeInForce: BybitEnum {
    case gtc, ioc, fok, postOnly, rpi
    case unknown(String)

    public static let known: [(Self, String)] = [
        (.gtc, "GTC"), (.ioc, "IOC"), (.fok, "FOK"), (.postOnly, "PostOnly"), (.rpi, "RPI"),
    ]
    public var unknownText: String? { if case .unknown(let t) = self { t } else { nil } }
}
