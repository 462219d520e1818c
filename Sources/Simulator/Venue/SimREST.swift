import Engine
import Exchange
import Foundation

/// An HTTP request as the simulator's server hands it over.
public struct SimRequest: Sendable {
    public var method: String
    public var path: String
    /// The raw query string, exactly as sent (it is what a GET signs).
    public var query: String
    /// Header names lower-cased.
    public var headers: [String: String]
    public var body: [UInt8]

    public init(method: String, path: String, query: String, headers: [String: String], body: [UInt8]) {
        self.method = method
        self.path = path
        self.query = query
        self.headers = headers
        self.body = body
    }
}

/// The simulator's HTTP reply.
public struct SimReply: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]
    /// Wait this long before replying (fault injection).
    public var delayMs: Int64 = 0
    /// Do not reply at all: close the connection (fault injection).
    public var drop = false
    /// Hold the reply until released or its time has passed (fault injection: a hung reply).
    public var hold: ReplyHold?
}

/// A reply held back (`SimFaults.holdCreateRepliesCount`): the server's connection thread waits on it until
/// `POST /sim/release` or `ms` has passed.
public final class ReplyHold: @unchecked Sendable {
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var released = false
    private var over = false
    let ms: Int64

    init(ms: Int64) { self.ms = ms }

    /// Blocks the calling (connection) thread until released or timed out.
    public func wait() {
        condition.lock()
        let end = Date(timeIntervalSinceNow: Double(ms) / 1000)
        while !released && Date() < end { _ = condition.wait(until: end) }
        over = true
        condition.unlock()
    }

    public func release() {
        condition.lock()
        released = true
        condition.broadcast()
        condition.unlock()
    }

    /// Not yet sent.
    public var isPending: Bool { condition.withLock { !released && !over } }
}

extension SimVenue {
    /// Serves one REST request: signature and recv window checked as the exchange does, rate-limit headers on every
    /// reply, injected faults first.
    public func handle(_ request: SimRequest, wallClock: Int64) -> SimReply {
        lock.withLock { handleLocked(request, wallClock: wallClock) }
    }

    private func handleLocked(_ r: SimRequest, wallClock: Int64) -> SimReply {
        // Controls are never subject to the faults they set.
        if r.path.hasPrefix("/sim/") { return control(r) }
        let serverTime = wallClock + faults.clockSkewMs
        var reply = route(r, serverTime: serverTime)
        reply.delayMs = faults.replyDelayMs
        if faults.dropRepliesCount > 0 {
            faults.dropRepliesCount -= 1
            reply.drop = true
        } else if faults.dropCreateRepliesCount > 0 && r.path == "/v5/order/create" {
            faults.dropCreateRepliesCount -= 1
            reply.drop = true
        } else if faults.holdCreateRepliesCount > 0 && r.path == "/v5/order/create" {
            faults.holdCreateRepliesCount -= 1
            let hold = ReplyHold(ms: faults.holdReplyMs)
            heldReplies.removeAll { !$0.isPending }
            heldReplies.append(hold)
            reply.hold = hold
        }
        return reply
    }

    private func route(_ r: SimRequest, serverTime: Int64) -> SimReply {
        // Injected HTTP failures and retCodes come before anything else (the request is not processed).
        if faults.failNextHTTPCount > 0, let status = faults.failNextHTTPStatus {
            faults.failNextHTTPCount -= 1
            return SimReply(
                status: status, headers: limitHeaders(key: "ip", path: r.path, serverTime: serverTime, count: false),
                body: Array("<html>\(status)</html>".utf8))
        }
        if faults.failNextCount > 0, let code = faults.failNextRetCode {
            faults.failNextCount -= 1
            return envelope(code, "injected fault", [:], r.path, "injected", serverTime)
        }
        let params = r.method == "GET" ? parseQuery(r.query) : parseBody(r.body)
        let isPrivate = !r.path.hasPrefix("/v5/market/")
        var key = "public"
        if isPrivate {
            switch authenticate(r, serverTime: serverTime) {
            case .failure(let rejection):
                return envelope(rejection.retCode, rejection.message, [:], r.path, "public", serverTime)
            case .success(let k): key = k
            }
        }
        // Rate limit per key and endpoint, per second.
        let window = "\(key) \(r.path)"
        let second = serverTime / 1000
        var w = rateWindows[window] ?? (second, 0)
        if w.second != second { w = (second, 0) }
        w.count += 1
        rateWindows[window] = w
        if w.count > config.rateLimitPerSecond {
            return envelope(10006, "Too many visits!", [:], r.path, key, serverTime)
        }
        if let category = params["category"], category != "linear" {
            return envelope(10001, "category only supports linear here", [:], r.path, key, serverTime)
        }
        if let symbol = params["symbol"], symbol != config.instrument.symbol {
            return envelope(10001, "symbol invalid", [:], r.path, key, serverTime)
        }
        let i = config.instrument
        func price(_ t: Ticks) -> String { formatScaled(t * i.tick.mantissa, scale: i.tick.scale) }
        func size(_ l: Lots) -> String { formatScaled(l * i.qtyStep.mantissa, scale: i.qtyStep.scale) }
        func ok(_ result: [String: Any]) -> SimReply { envelope(0, "OK", result, r.path, key, serverTime) }
        func fail(_ code: Int, _ msg: String) -> SimReply { envelope(code, msg, [:], r.path, key, serverTime) }

        switch (r.method, r.path) {
        case ("GET", "/v5/market/time"):
            return ok(["timeSecond": String(serverTime / 1000), "timeNano": String(serverTime) + "000000"])
        case ("GET", "/v5/market/instruments-info"):
            return ok([
                "category": "linear",
                "list": [
                    [
                        "symbol": i.symbol, "status": "Trading", "contractType": "LinearPerpetual",
                        "priceFilter": [
                            "tickSize": i.tick.description, "minPrice": i.tick.description, "maxPrice": "1999999.8",
                        ],
                        "lotSizeFilter": [
                            "qtyStep": i.qtyStep.description, "minOrderQty": i.minQty.description,
                            "maxOrderQty": size(config.maxOrderQty), "maxMktOrderQty": size(config.maxMarketOrderQty),
                        ],
                    ]
                ],
            ])
        case ("GET", "/v5/market/tickers"):
            guard let q = quote else { return fail(10016, "no market yet") }
            let next = ((marketTime / 28_800_000) + 1) * 28_800_000
            return ok([
                "category": "linear",
                "list": [
                    [
                        "symbol": i.symbol, "bid1Price": price(q.bidPrice), "ask1Price": price(q.askPrice),
                        "bid1Size": size(q.bidSize), "ask1Size": size(q.askSize),
                        "markPrice": formatScaled(
                            (q.bidPrice + q.askPrice) * 5 * i.tick.mantissa, scale: i.tick.scale + 1),
                        "lastPrice": recentTrades.last.map { price($0.price) } ?? price(q.bidPrice),
                        "fundingRate": formatNumber(config.fundingRate8hBps / 10_000), "nextFundingTime": String(next),
                    ]
                ],
            ])
        case ("GET", "/v5/market/orderbook"):
            // The venue's book as its matching sees it: the L1, then one tick worse per level with the top size.
            guard let q = quote else { return fail(10016, "no market yet") }
            let limit = Int(params["limit"] ?? "") ?? 25
            guard limit >= 1 && limit <= 500 else { return fail(10001, "limit must be 1-500") }
            let bids = (0..<Int64(limit)).map { [price(q.bidPrice - $0), size(max(1, q.bidSize))] }
            let asks = (0..<Int64(limit)).map { [price(q.askPrice + $0), size(max(1, q.askSize))] }
            return ok([
                "s": i.symbol, "b": bids, "a": asks, "ts": marketTime, "u": bookUpdateId, "seq": bookUpdateId,
                "cts": q.ts,
            ])
        case ("GET", "/v5/market/funding/history"):
            let start = Int64(params["startTime"] ?? "") ?? .min
            let end = Int64(params["endTime"] ?? "") ?? .max
            let limit = Int(params["limit"] ?? "") ?? 200
            let rows = fundingHistory.filter { $0.ts >= start && $0.ts <= end }.suffix(limit).reversed()
            return ok([
                "category": "linear",
                "list": rows.map {
                    ["symbol": i.symbol, "fundingRate": formatNumber($0.rate), "fundingRateTimestamp": String($0.ts)]
                },
            ])
        case ("GET", "/v5/market/recent-trade"):
            let limit = Int(params["limit"] ?? "") ?? 500
            guard (1...1000).contains(limit) else { return fail(10001, "limit must be 1-1000") }
            let trades = recentTrades.suffix(limit).reversed().enumerated().map { (n, t) -> [String: Any] in
                [
                    "execId": simTradeId(tradeSeq - n), "symbol": i.symbol, "price": price(t.price),
                    "size": size(t.size),
                    "side": t.side == .sell ? "Sell" : "Buy", "time": String(t.ts), "isBlockTrade": false,
                ]
            }
            return ok(["category": "linear", "list": trades])
        case ("GET", "/v5/market/kline"):
            guard params["interval"] == "1" else { return fail(10001, "only interval 1 is simulated") }
            let start = Int64(params["start"] ?? "") ?? .min
            let end = Int64(params["end"] ?? "") ?? .max
            let limit = Int(params["limit"] ?? "") ?? 200
            guard (1...1000).contains(limit) else { return fail(10001, "limit must be 1-1000") }
            guard start <= end else { return fail(10001, "start must not be after end") }
            let rows = candles.filter { $0.start >= start && $0.start <= end }.suffix(limit).reversed().map {
                [
                    String($0.start), price($0.o), price($0.h), price($0.l), price($0.c), size($0.volume),
                    formatNumber($0.turnover),
                ]
            }
            return ok(["category": "linear", "symbol": i.symbol, "list": rows])
        case ("GET", "/v5/account/wallet-balance"):
            return ok(["list": [walletJSON()]])
        case ("GET", "/v5/account/info"):
            return ok([
                "unifiedMarginStatus": 5, "marginMode": marginMode, "isMasterTrader": false,
                "spotHedgingStatus": "OFF", "updatedTime": String(marketTime), "dcpStatus": "OFF", "timeWindow": 10,
                "smpGroup": 0,
            ])
        case ("GET", "/v5/position/list"):
            if hedgeMode {
                // Hedge mode lists one row per side (1 long, 2 short); this venue keeps them flat.
                return ok([
                    "category": "linear",
                    "list": [1, 2].map { idx -> [String: Any] in
                        var row = positionJSON()
                        row["positionIdx"] = idx
                        row["side"] = ""
                        row["size"] = "0"
                        return row
                    },
                ])
            }
            return ok(["category": "linear", "list": [positionJSON()]])
        case ("POST", "/v5/order/create"):
            guard let sideText = params["side"],
                let side = sideText == "Buy" ? Direction.long : sideText == "Sell" ? .short : nil
            else {
                return fail(10001, "side must be Buy or Sell")
            }
            guard let type = params["orderType"].flatMap(SimOrderType.init(rawValue:)) else {
                return fail(10001, "orderType must be Market or Limit")
            }
            guard let qtyText = params["qty"], let qd = ScaledDecimal(qtyText), let qty = i.lots(qd) else {
                return fail(10001, "qty invalid")
            }
            var px: Ticks?
            if let p = params["price"], !p.isEmpty {
                guard let d = ScaledDecimal(p), let t = i.ticks(d) else { return fail(10001, "price invalid") }
                px = t
            }
            let link = params["orderLinkId"] ?? ""
            guard link.count <= 36 else { return fail(10001, "orderLinkId too long") }
            // The position's stop and target carried by the order (Full mode only: the agent's kind).
            var levels: [String: Ticks] = [:]
            for key in ["stopLoss", "takeProfit"] {
                guard let text = params[key], !text.isEmpty, text != "0" else { continue }
                guard let d = ScaledDecimal(text), let t = i.ticks(d) else { return fail(10001, "\(key) invalid") }
                levels[key] = t
            }
            if !levels.isEmpty, let mode = params["tpslMode"], mode != "Full" {
                return fail(10001, "tpslMode \(mode): the simulator keeps Full-mode levels only")
            }
            guard positionIdxFits(params) else { return fail(10001, "position idx not match position mode") }
            do {
                let o = try place(
                    linkId: link.isEmpty ? "auto-\(orderSeq + 1)" : link, side: side, type: type, qty: qty,
                    price: type == .limit ? px : nil, reduceOnly: params["reduceOnly"] == "true",
                    timeInForce: params["timeInForce"], stopLoss: levels["stopLoss"], takeProfit: levels["takeProfit"])
                return ok(["orderId": o.orderId, "orderLinkId": o.orderLinkId])
            } catch {
                return fail(error.retCode, error.message)
            }
        case ("POST", "/v5/order/cancel"):
            do {
                let o = try cancel(linkId: params["orderLinkId"], orderId: params["orderId"])
                return ok(["orderId": o.orderId, "orderLinkId": o.orderLinkId])
            } catch {
                return fail(error.retCode, error.message)
            }
        case ("POST", "/v5/order/cancel-all"):
            return ok([
                "list": cancelAll().map { ["orderId": $0.orderId, "orderLinkId": $0.orderLinkId] }, "success": "1",
            ])
        case ("GET", "/v5/order/realtime"), ("GET", "/v5/order/history"):
            // Realtime: open orders (active and the position's conditional ones, without orderFilter) unless
            // openOnly=1; an order asked for by id is found whatever its state. History: closed ones.
            var list = Array(orders.values)
            let byId = params["orderLinkId"] != nil || params["orderId"] != nil
            if let link = params["orderLinkId"] { list = list.filter { $0.orderLinkId == link } }
            if let id = params["orderId"] { list = list.filter { $0.orderId == id } }
            if r.path == "/v5/order/history" {
                if !byId { list = list.filter { !$0.isOpen } }
            } else if !byId {
                list = list.filter { params["openOnly"] == "1" ? !$0.isOpen : $0.isOpen }
            }
            switch params["orderFilter"] {
            case "Order": list = list.filter { $0.stopOrderType.isEmpty }
            case "StopOrder", "tpslOrder": list = list.filter { !$0.stopOrderType.isEmpty }
            default: break
            }
            list.sort { ($0.createdAt, $0.orderId) > ($1.createdAt, $1.orderId) }
            return page(list.map(orderJSON), params, maxLimit: 50, ok: ok, fail: fail)
        case ("GET", "/v5/execution/list"):
            // Every kind of execution unless execType narrows it; newest first; the last 7 days without a range.
            var list = executions
            if let type = params["execType"] { list = list.filter { $0.execType == type } }
            if let link = params["orderLinkId"] { list = list.filter { $0.orderLinkId == link } }
            if let id = params["orderId"] { list = list.filter { $0.orderId == id } }
            // Bybit: only a start gives the 7 days after it; only an end the 7 days before; neither the last 7 days.
            let startParam = params["startTime"].flatMap { Int64($0) }
            let endParam = params["endTime"].flatMap { Int64($0) }
            let end = endParam ?? startParam.map { $0 + 7 * 86_400_000 } ?? marketTime
            let start = startParam ?? (end - 7 * 86_400_000)
            guard end - start <= 7 * 86_400_000 else {
                return fail(10001, "startTime and endTime must be within 7 days")
            }
            list = list.filter { $0.ts >= start && $0.ts <= end }
            return page(list.reversed().map(executionJSON), params, maxLimit: 100, ok: ok, fail: fail)
        case ("POST", "/v5/position/trading-stop"):
            guard params["tpslMode"] != nil else { return fail(10001, "params error: tpslMode is required") }
            guard params["tpslMode"] == "Full" else { return fail(10001, "only tpslMode Full is simulated") }
            guard params["positionIdx"] != nil else { return fail(10001, "params error: positionIdx is required") }
            guard positionIdxFits(params) else { return fail(10001, "position idx not match position mode") }
            guard positionLots != 0 else { return fail(10001, "can not set tp/sl/ts for zero position") }
            if faults.rejectTradingStop { return fail(10001, "StopLoss refused (injected fault)") }
            func level(_ key: String) -> Ticks?? {
                guard let text = params[key] else { return .some(nil) }
                if text == "0" || text.isEmpty { return .some(nil) }
                guard let d = ScaledDecimal(text), let t = i.ticks(d) else { return nil }
                return .some(t)
            }
            // A level left out keeps its value; "0" removes it.
            guard let sl = params["stopLoss"] == nil ? .some(stopLoss) : level("stopLoss"),
                let tp = params["takeProfit"] == nil ? .some(takeProfit) : level("takeProfit")
            else { return fail(10001, "stopLoss/takeProfit invalid") }
            if let q = quote {
                // The mark must not have passed the levels already.
                let mark2 = q.bidPrice + q.askPrice
                let long = positionLots > 0
                if let sl, long ? 2 * sl >= mark2 : 2 * sl <= mark2 {
                    return fail(
                        10001,
                        "StopLoss:\(price(sl)) set for \(long ? "Buy" : "Sell") position should be \(long ? "lower" : "higher") than base_price"
                    )
                }
                if let tp, long ? 2 * tp <= mark2 : 2 * tp >= mark2 {
                    return fail(
                        10001,
                        "TakeProfit:\(price(tp)) set for \(long ? "Buy" : "Sell") position should be \(long ? "higher" : "lower") than base_price"
                    )
                }
            }
            guard setPositionLevels(stopLoss: sl, takeProfit: tp) else { return fail(34040, "not modified") }
            return ok([:])
        default:
            return SimReply(status: 404, headers: [("Content-Type", "text/plain")], body: Array("not found".utf8))
        }
    }

    /// One page of a list: `limit` rows (20 by default, at most `maxLimit`) from the opaque `cursor`, and the
    /// `nextPageCursor` of the next page (empty on the last).
    private func page(
        _ rows: [[String: Any]], _ params: [String: String], maxLimit: Int, ok: ([String: Any]) -> SimReply,
        fail: (Int, String) -> SimReply
    ) -> SimReply {
        let limit = Int(params["limit"] ?? "") ?? 20
        guard limit >= 1 && limit <= maxLimit else { return fail(10001, "limit must be 1-\(maxLimit)") }
        var offset = 0
        if let c = params["cursor"], !c.isEmpty {
            guard c.hasPrefix("page:"), let n = Int(c.dropFirst(5)), n >= 0 else {
                return fail(10001, "cursor invalid")
            }
            offset = n
        }
        let slice = Array(rows.dropFirst(offset).prefix(limit))
        let next = offset + slice.count < rows.count ? "page:\(offset + slice.count)" : ""
        return ok(["category": "linear", "list": slice, "nextPageCursor": next])
    }

    /// Whether `positionIdx` fits the account's mode: 0 in one-way mode, 1 or 2 in hedge mode (Bybit refuses the rest).
    private func positionIdxFits(_ params: [String: String]) -> Bool {
        let idx = Int(params["positionIdx"] ?? "0") ?? -1
        return hedgeMode ? (idx == 1 || idx == 2) : idx == 0
    }

    /// Test and operator controls (loopback only): `POST /sim/faults` with any of the `SimFaults` fields as JSON,
    /// `POST /sim/restart` (next book message `u = 1`), `GET /sim/state`.
    private func control(_ r: SimRequest) -> SimReply {
        func json(_ o: [String: Any]) -> SimReply {
            SimReply(
                status: 200, headers: [("Content-Type", "application/json")],
                body: [UInt8]((try? JSONSerialization.data(withJSONObject: o, options: [.sortedKeys])) ?? Data()))
        }
        switch (r.method, r.path) {
        case ("POST", "/sim/faults"):
            let p = parseBody(r.body)
            var f = SimFaults()
            f.failNextRetCode = p["failNextRetCode"].flatMap { Int($0) }
            f.failNextCount = p["failNextCount"].flatMap { Int($0) } ?? 0
            f.failNextHTTPStatus = p["failNextHTTPStatus"].flatMap { Int($0) }
            f.failNextHTTPCount = p["failNextHTTPCount"].flatMap { Int($0) } ?? 0
            f.replyDelayMs = p["replyDelayMs"].flatMap { Int64($0) } ?? 0
            f.dropRepliesCount = p["dropRepliesCount"].flatMap { Int($0) } ?? 0
            f.rejectOrders = p["rejectOrders"] == "true"
            f.duplicateExecutions = p["duplicateExecutions"] == "true"
            f.clockSkewMs = p["clockSkewMs"].flatMap { Int64($0) } ?? 0
            f.stallWebSockets = p["stallWebSockets"] == "true"
            f.cutPrivateStreams = p["cutPrivateStreams"] == "true"
            f.failPrivateAuth = p["failPrivateAuth"] == "true"
            f.stallPrivateStreams = p["stallPrivateStreams"] == "true"
            f.rejectTradingStop = p["rejectTradingStop"] == "true"
            f.dropCreateRepliesCount = p["dropCreateRepliesCount"].flatMap { Int($0) } ?? 0
            f.thinBookLots = p["thinBookLots"].flatMap { Int64($0) }
            f.thinBookCount = p["thinBookCount"].flatMap { Int($0) } ?? 0
            f.holdCreateRepliesCount = p["holdCreateRepliesCount"].flatMap { Int($0) } ?? 0
            f.holdReplyMs = p["holdReplyMs"].flatMap { Int64($0) } ?? 15_000
            if p["dropWebSockets"] == "true" { webSocketDropGeneration += 1 }
            if p["dropPrivateWebSockets"] == "true" { privateDropGeneration += 1 }
            faults = f
            return json(["ok": true])
        case ("POST", "/sim/adl"):
            // {"qty": "0.5", "execType": "AdlTrade" | "BustTrade"}: the exchange closes part of the position.
            let p = parseBody(r.body)
            var lots: Lots?
            if let text = p["qty"] {
                guard let d = ScaledDecimal(text), let l = config.instrument.lots(d) else {
                    return json(["ok": false, "error": "qty invalid"])
                }
                lots = l
            }
            let type = p["execType"] ?? "AdlTrade"
            guard ["AdlTrade", "BustTrade"].contains(type) else {
                return json(["ok": false, "error": "execType must be AdlTrade or BustTrade"])
            }
            guard let e = forceCloseLocked(lots: lots, execType: type) else {
                return json(["ok": false, "error": "no position"])
            }
            return json([
                "ok": true, "execId": e.execId,
                "qty": formatScaled(e.qty * config.instrument.qtyStep.mantissa, scale: config.instrument.qtyStep.scale),
            ])
        case ("POST", "/sim/account"):
            // {"hedgeMode": true}: the account's position mode; {"marginMode": "ISOLATED_MARGIN"}: its margin mode.
            let p = parseBody(r.body)
            if let h = p["hedgeMode"] { hedgeMode = h == "true" }
            if let m = p["marginMode"] {
                guard ["REGULAR_MARGIN", "ISOLATED_MARGIN", "PORTFOLIO_MARGIN"].contains(m) else {
                    return json([
                        "ok": false, "error": "marginMode must be REGULAR_MARGIN, ISOLATED_MARGIN or PORTFOLIO_MARGIN",
                    ])
                }
                marginMode = m
            }
            return json(["ok": true, "hedgeMode": hedgeMode, "marginMode": marginMode])
        case ("POST", "/sim/restart"):
            restartPending = true
            bookUpdateId = 0
            return json(["ok": true])
        case ("POST", "/sim/release"):
            // Sends every held reply now.
            let n = pendingHeldReplies
            for h in heldReplies { h.release() }
            heldReplies.removeAll()
            return json(["ok": true, "released": n])
        case ("GET", "/sim/state"):
            return json([
                "heldReplies": pendingHeldReplies,
                "marketTime": marketTime, "positionLots": positionLots, "orders": orders.count,
                "openOrders": orders.values.filter(\.isOpen).count, "executions": executions.count, "balance": balance,
                "stopLoss": stopLoss.map {
                    formatScaled($0 * config.instrument.tick.mantissa, scale: config.instrument.tick.scale)
                } ?? "",
            ])
        default:
            return SimReply(status: 404, headers: [], body: Array("not found".utf8))
        }
    }

    /// The key that signed the request, or the retCode the exchange would answer.
    private func authenticate(_ r: SimRequest, serverTime: Int64) -> Result<String, Rejection> {
        guard let key = r.headers["x-bapi-api-key"], let secret = config.keys[key] else {
            return .failure(Rejection(retCode: 10003, message: "API key is invalid."))
        }
        guard let tsText = r.headers["x-bapi-timestamp"], let ts = Int64(tsText) else {
            return .failure(Rejection(retCode: 10002, message: "invalid request, please check your timestamp"))
        }
        let recv = Int64(r.headers["x-bapi-recv-window"] ?? "5000") ?? 5000
        guard serverTime - recv <= ts && ts < serverTime + 1000 else {
            return .failure(
                Rejection(
                    retCode: 10002,
                    message:
                        "invalid request, please check your server timestamp or recv_window param. req_timestamp[\(ts)],server_timestamp[\(serverTime)],recv_window[\(recv)]"
                ))
        }
        let payload = r.method == "GET" ? r.query : String(decoding: r.body, as: UTF8.self)
        let expected = BybitSigner.restSignature(
            timestamp: ts, apiKey: key, recvWindow: Int(recv), payload: payload, secret: secret)
        guard r.headers["x-bapi-sign"] == expected else {
            return .failure(
                Rejection(retCode: 10004, message: "error sign! origin_string[\(tsText)\(key)\(recv)\(payload)]"))
        }
        return .success(key)
    }

    private func envelope(
        _ code: Int, _ message: String, _ result: [String: Any], _ path: String, _ key: String, _ serverTime: Int64
    ) -> SimReply {
        let object: [String: Any] = [
            "retCode": code, "retMsg": message, "result": result, "retExtInfo": [String: Any](), "time": serverTime,
        ]
        let body = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data("{}".utf8)
        return SimReply(
            status: 200,
            headers: [("Content-Type", "application/json")]
                + limitHeaders(key: key, path: path, serverTime: serverTime, count: false), body: [UInt8](body))
    }

    private func limitHeaders(key: String, path: String, serverTime: Int64, count: Bool) -> [(String, String)] {
        let used = rateWindows["\(key) \(path)"].map { $0.second == serverTime / 1000 ? $0.count : 0 } ?? 0
        return [
            ("X-Bapi-Limit-Status", String(max(0, config.rateLimitPerSecond - used))),
            ("X-Bapi-Limit", String(config.rateLimitPerSecond)),
            ("X-Bapi-Limit-Reset-Timestamp", String((serverTime / 1000 + 1) * 1000)),
        ]
    }

    func walletJSON() -> [String: Any] {
        let eq = equity()
        return [
            "accountType": "UNIFIED", "totalEquity": formatNumber(eq), "totalWalletBalance": formatNumber(balance),
            "totalAvailableBalance": formatNumber(availableBalance()),
            "coin": [
                [
                    "coin": "USDT", "equity": formatNumber(eq), "walletBalance": formatNumber(balance),
                    "unrealisedPnl": formatNumber(unrealised()),
                ]
            ],
        ]
    }

    func positionJSON() -> [String: Any] {
        let i = config.instrument
        let size = formatScaled(abs(positionLots) * i.qtyStep.mantissa, scale: i.qtyStep.scale)
        var avg = "0"
        if positionLots != 0 {
            avg = formatNumber(Double(positionTickLots) / Double(abs(positionLots)) * i.tick.doubleValue)
        }
        let mark =
            quote.map { formatScaled(($0.bidPrice + $0.askPrice) * 5 * i.tick.mantissa, scale: i.tick.scale + 1) }
            ?? "0"
        return [
            "symbol": i.symbol, "side": positionLots > 0 ? "Buy" : positionLots < 0 ? "Sell" : "", "size": size,
            "avgPrice": avg, "entryPrice": avg, "markPrice": mark, "unrealisedPnl": formatNumber(unrealised()),
            "positionIdx": 0,
            "stopLoss": stopLoss.map { formatScaled($0 * i.tick.mantissa, scale: i.tick.scale) } ?? "",
            "takeProfit": takeProfit.map { formatScaled($0 * i.tick.mantissa, scale: i.tick.scale) } ?? "",
            "leverage": "10", "updatedTime": String(marketTime),
        ]
    }

    func orderJSON(_ o: SimOrder) -> [String: Any] {
        let i = config.instrument
        func size(_ l: Lots) -> String { formatScaled(l * i.qtyStep.mantissa, scale: i.qtyStep.scale) }
        return [
            "orderId": o.orderId, "orderLinkId": o.orderLinkId, "symbol": i.symbol, "side": o.side.bybitSide,
            "orderType": o.orderType.rawValue, "orderStatus": o.status.rawValue,
            "price": o.price.map { formatScaled($0 * i.tick.mantissa, scale: i.tick.scale) } ?? "0",
            "qty": size(o.qty), "cumExecQty": size(o.filled), "leavesQty": size(o.leaves),
            "avgPrice": o.filled == 0
                ? "" : formatNumber(Double(o.filledTickLots) / Double(o.filled) * i.tick.doubleValue),
            "timeInForce": o.timeInForce, "reduceOnly": o.reduceOnly, "closeOnTrigger": o.closeOnTrigger,
            "positionIdx": 0,
            "stopOrderType": o.stopOrderType,
            "triggerPrice": o.triggerPrice.map { formatScaled($0 * i.tick.mantissa, scale: i.tick.scale) } ?? "",
            "stopLoss": o.attachedStopLoss.map { formatScaled($0 * i.tick.mantissa, scale: i.tick.scale) } ?? "",
            "takeProfit": o.attachedTakeProfit.map { formatScaled($0 * i.tick.mantissa, scale: i.tick.scale) } ?? "",
            "tpslMode": o.attachedStopLoss != nil || o.attachedTakeProfit != nil ? "Full" : "",
            "cancelType": o.cancelType.isEmpty ? "UNKNOWN" : o.cancelType, "rejectReason": "EC_NoError",
            "createdTime": String(o.createdAt), "updatedTime": String(o.updatedAt),
        ]
    }

    func executionJSON(_ e: SimExecution) -> [String: Any] {
        let i = config.instrument
        return [
            "execId": e.execId, "orderId": e.orderId, "orderLinkId": e.orderLinkId, "symbol": i.symbol,
            "side": e.side.bybitSide,
            "execPrice": formatScaled(e.price * i.tick.mantissa, scale: i.tick.scale),
            "execQty": formatScaled(e.qty * i.qtyStep.mantissa, scale: i.qtyStep.scale), "execFee": formatNumber(e.fee),
            "execType": e.execType, "stopOrderType": e.stopOrderType, "isMaker": e.isMaker, "execTime": String(e.ts),
        ]
    }
}

/// `a=1&b=2` → dictionary (values percent-decoded).
func parseQuery(_ q: String) -> [String: String] {
    var out: [String: String] = [:]
    for pair in q.split(separator: "&") {
        let parts = pair.split(separator: "=", maxSplits: 1)
        let key = String(parts[0]).removingPercentEncoding ?? String(parts[0])
        let value = parts.count > 1 ? (String(parts[1]).removingPercentEncoding ?? String(parts[1])) : ""
        out[key] = value
    }
    return out
}

/// A JSON object body → string values (booleans and numbers printed).
func parseBody(_ body: [UInt8]) -> [String: String] {
    guard let o = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] else { return [:] }
    var out: [String: String] = [:]
    for (k, v) in o {
        if let s = v as? String {
            out[k] = s
        } else if let n = v as? NSNumber {
            // JSON true/false arrive as NSNumber of type char; any other number prints as itself.
            out[k] = String(cString: n.objCType) == "c" ? (n.boolValue ? "true" : "false") : n.stringValue
        } else {
            out[k] = "\(v)"
        }
    }
    return out
}
