public import Engine
import Exchange
import Foundation
import Synchronization

extension SimVenue {
    /// An HTTP server for this venue: REST, `/v5/public/linear` and `/v5/private` WebSockets, `/sim/*` controls.
    public func makeServer() -> SimHTTPServer {
        let server = SimHTTPServer { r in self.handle(r, wallClock: wallClockMillis()) }
        let ids = ConnectionIds()
        server.webSocketHandler = { request, ws in
            switch request.path {
            case "/v5/public/linear": self.servePublic(ws, connectionId: ids.next())
            case "/v5/private": self.servePrivate(ws, connectionId: ids.next())
            default: ws.close()
            }
        }
        return server
    }

    /// Serves `/v5/public/linear`: `publicTrade.<symbol>` and `orderbook.1.<symbol>`, subscribe acks and pongs in
    /// Bybit's shapes. The book is sent when it changes (every 10 ms at most) and re-sent after 3 s without change.
    public func servePublic(_ ws: WebSocketConnection, connectionId: String) {
        let symbol = config.instrument.symbol
        var trades = false
        var book = false
        var tradeCursor = self.tradeCursor
        var lastBookId: Int64 = -1
        var lastBookSent: Int64 = 0
        streamLoop(ws, connectionId: connectionId) { op, reqId, o in
            switch op {
            case "ping":
                ws.send(
                    #"{"success":true,"ret_msg":"pong","conn_id":"\#(connectionId)","req_id":"\#(reqId)","op":"ping"}"#)
            case "subscribe":
                let args = (o["args"] as? [String]) ?? []
                var ok = !args.isEmpty
                for a in args {
                    if a == "publicTrade.\(symbol)" {
                        trades = true
                    } else if a == "orderbook.1.\(symbol)" {
                        book = true
                    } else {
                        ok = false
                    }
                }
                ws.send(
                    #"{"success":\#(ok),"ret_msg":"\#(ok ? "" : "error:handler not found")","conn_id":"\#(connectionId)","req_id":"\#(reqId)","op":"subscribe"}"#
                )
            default:
                ws.send(
                    #"{"success":false,"ret_msg":"error:unknown op","conn_id":"\#(connectionId)","req_id":"\#(reqId)","op":"\#(op)"}"#
                )
            }
        } push: {
            let now = wallClockMillis()
            if trades {
                let (batch, cursor) = self.trades(after: tradeCursor)
                let firstSeq = tradeCursor + 1
                tradeCursor = cursor
                if !batch.isEmpty, !ws.send(publicTradeMessage(batch, firstSeq: firstSeq, now: now)) { return false }
            }
            if book, let q = currentQuote {
                let restarted = takeRestart()
                let id = currentBookUpdateId
                if restarted || id != lastBookId || now - lastBookSent >= 3_000 {
                    lastBookId = id
                    lastBookSent = now
                    if !ws.send(bookMessage(q, updateId: restarted ? 1 : max(id, 2), now: now)) { return false }
                }
            }
            return true
        }
    }

    /// The loop every simulated stream runs: the drop and stall faults, a read every 10 ms, client ops (JSON with
    /// `op` and `req_id`) to `handle`, then `push` (false ends the stream).
    private func streamLoop(
        _ ws: WebSocketConnection, connectionId: String, isPrivate: Bool = false,
        handle: (String, String, [String: Any]) -> Void,
        push: () -> Bool
    ) {
        let (generation, privateGeneration) = lock.withLock { (webSocketDropGeneration, privateDropGeneration) }
        while true {
            let (dropped, stalled) = lock.withLock {
                (
                    webSocketDropGeneration != generation
                        || (isPrivate && (privateDropGeneration != privateGeneration || faults.cutPrivateStreams)),
                    faults.stallWebSockets || (isPrivate && faults.stallPrivateStreams)
                )
            }
            if dropped {
                ws.drop()
                return
            }
            if stalled {
                usleep(10_000)
                continue
            }
            switch ws.read(timeoutMs: 10) {
            case .close: return
            case .ping, .idle: break
            case .text(let text):
                guard let o = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [String: Any],
                    let op = o["op"] as? String
                else {
                    ws.send(
                        #"{"success":false,"ret_msg":"error:request not valid JSON","conn_id":"\#(connectionId)","op":""}"#
                    )
                    continue
                }
                handle(op, (o["req_id"] as? String) ?? "", o)
            }
            if !push() { return }
        }
    }

    /// `firstSeq` is the first trade's sequence number in the venue: each trade's id (`i`) is made from it, so a
    /// trade has one id on every connection and in `/v5/market/recent-trade`, as Bybit's trade ids.
    public func publicTradeMessage(_ trades: [TradeEvent], firstSeq: Int = 1, now: Int64) -> String {
        let i = config.instrument
        var items: [String] = []
        items.reserveCapacity(trades.count)
        for (n, t) in trades.enumerated() {
            let side = t.side == .sell ? "Sell" : "Buy"
            items.append(
                #"{"T":\#(t.ts),"s":"\#(i.symbol)","S":"\#(side)","v":"\#(formatScaled(t.size * i.qtyStep.mantissa, scale: i.qtyStep.scale))","p":"\#(formatScaled(t.price * i.tick.mantissa, scale: i.tick.scale))","L":"ZeroPlusTick","i":"\#(simTradeId(firstSeq + n))","BT":false}"#
            )
        }
        return
            #"{"topic":"publicTrade.\#(i.symbol)","type":"snapshot","ts":\#(now),"data":[\#(items.joined(separator: ","))]}"#
    }

    public func bookMessage(_ q: QuoteEvent, updateId: Int64, now: Int64) -> String {
        let i = config.instrument
        func px(_ t: Ticks) -> String { formatScaled(t * i.tick.mantissa, scale: i.tick.scale) }
        func sz(_ l: Lots) -> String { formatScaled(l * i.qtyStep.mantissa, scale: i.qtyStep.scale) }
        return
            #"{"topic":"orderbook.1.\#(i.symbol)","type":"snapshot","ts":\#(now),"data":{"s":"\#(i.symbol)","b":[["\#(px(q.bidPrice))","\#(sz(q.bidSize))"]],"a":[["\#(px(q.askPrice))","\#(sz(q.askSize))"]],"u":\#(updateId),"seq":\#(updateId)},"cts":\#(q.ts)}"#
    }

    /// Serves `/v5/private`: `auth` (signature of `GET/realtime<expires>` under the key's secret, expiry in the
    /// future), then `order`, `execution`, `position`, `wallet` as they happen; pongs with `op: pong`.
    public func servePrivate(_ ws: WebSocketConnection, connectionId: String) {
        var authed = false
        var topics: Set<String> = []
        var cursor = 0
        streamLoop(ws, connectionId: connectionId, isPrivate: true) { op, reqId, o in
            let args = (o["args"] as? [Any]) ?? []
            switch op {
            case "ping":
                ws.send(
                    #"{"req_id":"\#(reqId)","op":"pong","args":["\#(wallClockMillis())"],"conn_id":"\#(connectionId)"}"#
                )
            case "auth":
                var message = "Params Error"
                if args.count == 3, let key = args[0] as? String, let secret = config.keys[key],
                    let expires = (args[1] as? NSNumber)?.int64Value ?? (args[1] as? String).flatMap({ Int64($0) }),
                    let signature = args[2] as? String
                {
                    if lock.withLock({ faults.failPrivateAuth }) {
                        message = "Invalid apikey"
                    } else if expires <= wallClockMillis() + lock.withLock({ faults.clockSkewMs }) {
                        message = "Request expired"
                    } else if signature == BybitSigner.websocketSignature(expires: expires, secret: secret) {
                        authed = true
                        cursor = privateEvents(after: Int.max).cursor
                        message = ""
                    } else {
                        message = "Invalid sign"
                    }
                }
                ws.send(
                    #"{"success":\#(authed),"ret_msg":"\#(message)","op":"auth","conn_id":"\#(connectionId)","req_id":"\#(reqId)"}"#
                )
            case "subscribe":
                let names = args.compactMap { $0 as? String }
                let known: Set<String> = ["order", "execution", "position", "wallet"]
                let ok = authed && !names.isEmpty && names.allSatisfy { known.contains($0) }
                if ok { topics.formUnion(names) }
                ws.send(
                    #"{"success":\#(ok),"ret_msg":"\#(ok ? "" : authed ? "error:handler not found" : "Request not authorized")","op":"subscribe","conn_id":"\#(connectionId)","req_id":"\#(reqId)"}"#
                )
            default:
                ws.send(#"{"success":false,"ret_msg":"error:unknown op","op":"\#(op)","conn_id":"\#(connectionId)"}"#)
            }
        } push: {
            guard authed, !topics.isEmpty else { return true }
            let (events, next) = privateEvents(after: cursor)
            cursor = next
            for e in events {
                let (topic, payload): (String, [String: Any])
                switch e {
                case .order(let o): (topic, payload) = ("order", lock.withLock { orderJSON(o) })
                case .execution(let x): (topic, payload) = ("execution", lock.withLock { executionJSON(x) })
                case .position: (topic, payload) = ("position", lock.withLock { positionJSON() })
                case .wallet: (topic, payload) = ("wallet", lock.withLock { walletJSON() })
                }
                guard topics.contains(topic) else { continue }
                let message: [String: Any] = [
                    "id": "\(connectionId)-\(cursor)", "topic": topic, "creationTime": wallClockMillis(),
                    "data": [payload],
                ]
                guard let data = try? JSONSerialization.data(withJSONObject: message, options: [.sortedKeys]),
                    ws.send(String(decoding: data, as: UTF8.self))
                else { return false }
            }
            return true
        }
    }
}

/// Connection ids for acks.
final class ConnectionIds: Sendable {
    private let n = Mutex(0)
    func next() -> String {
        n.withLock {
            $0 += 1
            return "sim-conn-\($0)"
        }
    }
}

/// The simulated venue's id of its `seq`-th trade, shaped as Bybit's (a UUID).
public func simTradeId(_ seq: Int) -> String {
    let digits = String(seq)
    return "00000000-0000-4000-8000-" + String(repeating: "0", count: max(0, 12 - digits.count)) + digits
}
