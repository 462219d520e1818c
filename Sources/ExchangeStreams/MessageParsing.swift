public import Engine
public import Exchange
import Foundation
import MarketData

/// A parsed public-stream message.
public enum PublicMessage: Sendable, Hashable {
    /// Trades, and their exchange trade ids (`i`) when the parser keeps them (`keepTradeIds`), else empty.
    case trades([TradeEvent], ids: [String])
    /// An L1 snapshot; `updateId == 1` means the service restarted.
    case quote(QuoteEvent, updateId: Int64)
    /// An ack or pong.
    case control(op: String, success: Bool, message: String)
}

/// Parses Bybit public messages (`publicTrade.*`, `orderbook.1.*`, acks, pongs) into Engine events.
public struct PublicMessageParser: Sendable {
    public let instrument: Instrument
    /// Keep each trade's exchange id (`record` de-duplicates by it); off for the agent, which needs none.
    public let keepTradeIds: Bool

    public init(instrument: Instrument, keepTradeIds: Bool = false) {
        self.instrument = instrument
        self.keepTradeIds = keepTradeIds
    }

    public func parse(_ text: String) throws(BybitError) -> PublicMessage {
        var copy = text
        if let fast = copy.withUTF8({ fastParse($0) }) { return fast }
        return try slowParse(text)
    }

    /// Trades and book snapshots without Foundation; nil sends the message to the general parser (which also
    /// produces the error naming what is wrong).
    public func fastParse(_ buffer: UnsafeBufferPointer<UInt8>) -> PublicMessage? {
        var reader = FastJSON(buffer)
        guard let root = reader.parse(), let topic = reader.text(reader.member(root, "topic")) else { return nil }
        func ticks(_ r: Range<Int>) -> Ticks? {
            ScaledDecimal.parse(UnsafeBufferPointer(rebasing: buffer[r])).flatMap { instrument.ticks($0) }
        }
        func lots(_ r: Range<Int>) -> Lots? {
            ScaledDecimal.parse(UnsafeBufferPointer(rebasing: buffer[r])).flatMap { instrument.lots($0) }
        }
        if reader.hasPrefix(topic, "publicTrade.") {
            guard case .array(let items)? = reader.member(root, "data") else { return nil }
            var trades: [TradeEvent] = []
            var ids: [String] = []
            trades.reserveCapacity(items.count)
            for item in items {
                guard let ts = reader.int64(reader.member(item, "T")), let p = reader.text(reader.member(item, "p")),
                    let v = reader.text(reader.member(item, "v")), let price = ticks(p), let size = lots(v)
                else { return nil }
                if keepTradeIds {
                    guard let i = reader.text(reader.member(item, "i")) else { return nil }
                    ids.append(String(decoding: UnsafeBufferPointer(rebasing: buffer[i]), as: UTF8.self))
                }
                var side = TakerSide.unknown
                if let s = reader.text(reader.member(item, "S")) {
                    side = reader.equals(s, "Buy") ? .buy : reader.equals(s, "Sell") ? .sell : .unknown
                }
                trades.append(TradeEvent(ts: ts, price: price, size: size, side: side))
            }
            return .trades(trades, ids: ids)
        }
        if reader.hasPrefix(topic, "orderbook.") {
            guard let data = reader.member(root, "data"), case .array(let b)? = reader.member(data, "b"),
                case .array(let a)? = reader.member(data, "a"), case .array(let bid)? = b.first,
                case .array(let ask)? = a.first,
                bid.count >= 2, ask.count >= 2, let bp = reader.text(bid[0]), let bs = reader.text(bid[1]),
                let ap = reader.text(ask[0]), let asz = reader.text(ask[1]),
                let u = reader.int64(reader.member(data, "u")),
                let ts = reader.int64(reader.member(root, "cts")) ?? reader.int64(reader.member(root, "ts")),
                let bpt = ticks(bp), let bsl = lots(bs), let apt = ticks(ap), let asl = lots(asz)
            else { return nil }
            return .quote(QuoteEvent(ts: ts, bidPrice: bpt, bidSize: bsl, askPrice: apt, askSize: asl), updateId: u)
        }
        return nil
    }

    public func slowParse(_ text: String) throws(BybitError) -> PublicMessage {
        guard let json = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any] else {
            throw BybitError(.decoding, endpoint: "public stream", message: "not a JSON object: \(text.prefix(120))")
        }
        let m = JSONFields(json, path: "message", endpoint: "public stream")
        if let op = m.optionalString("op") {
            return .control(
                op: op, success: (try? m.bool("success")) ?? false, message: m.optionalString("ret_msg") ?? "")
        }
        let topic = try m.string("topic")
        if topic.hasPrefix("publicTrade.") {
            var trades: [TradeEvent] = []
            var ids: [String] = []
            for t in try m.list("data") {
                if keepTradeIds { ids.append(try t.string("i")) }
                let p = try t.decimal("p")
                let v = try t.decimal("v")
                guard let ticks = instrument.ticks(p), let lots = instrument.lots(v) else {
                    throw t.fail("p", "out of range")
                }
                let side: TakerSide =
                    t.optionalString("S") == "Buy" ? .buy : t.optionalString("S") == "Sell" ? .sell : .unknown
                trades.append(TradeEvent(ts: try t.int64("T"), price: ticks, size: lots, side: side))
            }
            return .trades(trades, ids: ids)
        }
        if topic.hasPrefix("orderbook.") {
            let d = try m.object("data")
            guard let bids = d.object["b"] as? [[String]], let asks = d.object["a"] as? [[String]],
                let bid = bids.first, let ask = asks.first, bid.count >= 2, ask.count >= 2,
                let bp = ScaledDecimal(bid[0]), let bs = ScaledDecimal(bid[1]), let ap = ScaledDecimal(ask[0]),
                let asz = ScaledDecimal(ask[1]),
                let bpt = instrument.ticks(bp), let bsl = instrument.lots(bs), let apt = instrument.ticks(ap),
                let asl = instrument.lots(asz)
            else { throw d.fail("b/a", "is not a [[price, size]] level on both sides") }
            let ts: Int64
            if let cts = try? m.int64("cts") { ts = cts } else { ts = try m.int64("ts") }
            return .quote(
                QuoteEvent(ts: ts, bidPrice: bpt, bidSize: bsl, askPrice: apt, askSize: asl), updateId: try d.int64("u")
            )
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
            return .control(
                op: op, success: (try? m.bool("success")) ?? (op == "pong"), message: m.optionalString("ret_msg") ?? "")
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
