public import Engine
public import Exchange
import Foundation

/// A parsed public-stream message.
public enum PublicMessage: Sendable, Hashable {
    case trades([TradeEvent])
    /// An L1 snapshot; `updateId == 1` means the service restarted.
    case quote(QuoteEvent, updateId: Int64)
    /// An ack or pong.
    case control(op: String, success: Bool, message: String)
}

/// Parses Bybit public messages (`publicTrade.*`, `orderbook.1.*`, acks, pongs) into Engine events.
public struct PublicMessageParser: Sendable {
    public let instrument: Instrument

    public init(instrument: Instrument) { self.instrument = instrument }

    public func parse(_ text: String) throws(BybitError) -> PublicMessage {
        guard let json = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] else {
            throw BybitError(.decoding, endpoint: "public stream", message: "not a JSON object: \(text.prefix(120))")
        }
        let m = JSONFields(json, path: "message", endpoint: "public stream")
        if let op = m.optionalString("op") {
            return .control(op: op, success: (try? m.bool("success")) ?? false, message: m.optionalString("ret_msg") ?? "")
        }
        let topic = try m.string("topic")
        if topic.hasPrefix("publicTrade.") {
            var trades: [TradeEvent] = []
            for t in try m.list("data") {
                let p = try t.decimal("p")
                let v = try t.decimal("v")
                guard let ticks = instrument.ticks(p), let lots = instrument.lots(v) else { throw t.fail("p", "out of range") }
                let side: TakerSide = t.optionalString("S") == "Buy" ? .buy : t.optionalString("S") == "Sell" ? .sell : .unknown
                trades.append(TradeEvent(ts: try t.int64("T"), price: ticks, size: lots, side: side))
            }
            return .trades(trades)
        }
        if topic.hasPrefix("orderbook.") {
            let d = try m.object("data")
            guard let bids = d.object["b"] as? [[String]], let asks = d.object["a"] as? [[String]],
                let bid = bids.first, let ask = asks.first, bid.count >= 2, ask.count >= 2,
                let bp = ScaledDecimal(bid[0]), let bs = ScaledDecimal(bid[1]), let ap = ScaledDecimal(ask[0]), let asz = ScaledDecimal(ask[1]),
                let bpt = instrument.ticks(bp), let bsl = instrument.lots(bs), let apt = instrument.ticks(ap), let asl = instrument.lots(asz)
            else { throw d.fail("b/a", "is not a [[price, size]] level on both sides") }
            let ts: Int64
            if let cts = try? m.int64("cts") { ts = cts } else { ts = try m.int64("ts") }
            return .quote(QuoteEvent(ts: ts, bidPrice: bpt, bidSize: bsl, askPrice: apt, askSize: asl), updateId: try d.int64("u"))
        }
        throw m.fail("topic", "'\(topic)' is not a subscribed topic")
    }
}

/// A parsed private-stream message.
public enum PrivateMessage: Sendable, Hashable {
    case orders([OrderInfo])
    case executions([Execution])
    case positions([PositionInfo])
    case wallet([WalletBalance])
    case control(op: String, success: Bool, message: String)
}

/// Parses Bybit private messages (`order`, `execution`, `position`, `wallet`, acks, pongs).
public struct PrivateMessageParser: Sendable {
    public init() {}

    public func parse(_ text: String) throws(BybitError) -> PrivateMessage {
        guard let json = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] else {
            throw BybitError(.decoding, endpoint: "private stream", message: "not a JSON object: \(text.prefix(120))")
        }
        let m = JSONFields(json, path: "message", endpoint: "private stream")
        if let op = m.optionalString("op") {
            return .control(op: op, success: (try? m.bool("success")) ?? (op == "pong"), message: m.optionalString("ret_msg") ?? "")
        }
        let data = try m.list("data")
        switch try m.string("topic") {
        case "order": return .orders(try data.map { d throws(BybitError) in try OrderInfo(d) })
        case "execution": return .executions(try data.map { d throws(BybitError) in try Execution(d) })
        case "position": return .positions(try data.map { d throws(BybitError) in try PositionInfo(d) })
        case "wallet": return .wallet(try data.map { d throws(BybitError) in try WalletBalance(d) })
        case let other: throw m.fail("topic", "'\(other)' is not a private topic")
        }
    }
}
