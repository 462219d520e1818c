public import Engine
import Foundation
import Synchronization

/// API keys. Their description never shows the secret or the key.
public struct BybitCredentials: Sendable, CustomStringConvertible {
    public var apiKey: String
    public var apiSecret: String

    public init(apiKey: String, apiSecret: String) {
        self.apiKey = apiKey
        self.apiSecret = apiSecret
    }

    public var description: String { "BybitCredentials(<redacted>)" }
}

/// One HTTP exchange with the REST API, as the client's observer sees it.
public struct RESTObservation: Sendable {
    public enum Result: String, Sendable {
        /// retCode 0.
        case ok
        /// A Bybit error code (retCode ≠ 0).
        case apiError = "api_error"
        /// HTTP 403 or 429.
        case rateLimited = "rate_limited"
        /// Another HTTP status than 200.
        case httpError = "http_error"
        case timeout
        case transportError = "transport_error"
        /// HTTP 200 without a JSON envelope.
        case malformed
    }

    public var path: String
    public var result: Result
    public var retCode: Int?
    public var seconds: Double
}

/// The client's settings.
public struct BybitRESTConfig: Sendable {
    /// `https://api.bybit.com`, the testnet, or the simulator on loopback.
    public var baseURL: String
    public var recvWindowMs: Int = 5_000
    public var category = "linear"
    public var symbol = "BTCUSDT"
    /// Attempts for a call that meets 5xx, a transport error, 10006/429 (the first try included).
    public var maxAttempts = 4
    /// Exponential back-off for 5xx and transport errors: first delay, cap.
    public var backoffBaseMs = 250
    public var backoffCapMs = 8_000
    /// After HTTP 403 (IP ban), no call for this long.
    public var banBackoffMs: Int64 = 10 * 60_000
    /// Longest wait for a rate-limit reset before the call fails.
    public var maxRateLimitWaitMs: Int64 = 30_000
    /// Calls of each endpoint's window this client leaves to others (the protective lane's): when only these are
    /// left, it waits for the window's reset (`RateBudget`). 0: it may spend the last call.
    public var reserveCalls = 0

    public init(baseURL: String) { self.baseURL = baseURL }
}

/// Rate-limit state from the last reply (`X-Bapi-Limit-Status`, `X-Bapi-Limit`, `X-Bapi-Limit-Reset-Timestamp`).
public struct RateLimitStatus: Sendable, Hashable {
    public var remaining: Int
    public var limit: Int
    public var resetAt: Int64
}

/// Bybit v5 REST over libcurl: signing, server-time sync, retries and back-off, idempotent orders, typed calls.
///
/// - 10002 (timestamp outside the recv window): resync the clock offset, retry once.
/// - Every reply's `X-Bapi-Limit*` headers go into the account's `RateBudget`; a call whose endpoint has no calls
///   left (or only the reserve this client leaves to protective calls) waits for the window's reset before it leaves.
/// - 10006 and HTTP 429: wait until `X-Bapi-Limit-Reset-Timestamp`, retry.
/// - HTTP 403: the IP is banned; every call fails fast for `banBackoffMs` and `onAlert` is told.
/// - 5xx, 10016 and transport errors: exponential back-off with jitter, bounded attempts.
/// - Orders carry the caller's `orderLinkId`; a retry re-sends the same one, and 110072 (duplicate) is answered by
///   querying that order, never by a new id.
public final class BybitRESTClient: Sendable {
    /// What calls share: the clock offset, the rate limits seen, the ban, the jitter's generator, the last success.
    /// Calls themselves may run concurrently; the transport serialises its handle.
    private struct Shared {
        var offsetMs: Int64 = 0
        var bannedUntil: Int64 = 0
        var rng: UInt64 = 0x9E37_79B9_7F4A_7C15
        var lastSuccessAt: Int64?
    }
    private let shared = Mutex(Shared())
    public let config: BybitRESTConfig
    private let transport: any HTTPTransport
    private let credentials: BybitCredentials?
    private let now: @Sendable () -> Int64
    private let sleep: @Sendable (Int64) -> Void
    private let onAlert: @Sendable (String) -> Void
    private let onRateLimitWait: @Sendable (RateLimitWait) -> Void
    /// The account's rate limits as the replies state them (shared with the account's other clients).
    public let budget: RateBudget
    /// When a call last succeeded (local ms).
    public var lastSuccessAt: Int64? { shared.withLock { $0.lastSuccessAt } }

    public init(
        config: BybitRESTConfig,
        credentials: BybitCredentials?,
        transport: any HTTPTransport = CurlTransport(),
        now: @escaping @Sendable () -> Int64 = wallClockMillis,
        sleep: @escaping @Sendable (Int64) -> Void = sleepMillis,
        onAlert: @escaping @Sendable (String) -> Void = { _ in },
        observer: (@Sendable (RESTObservation) -> Void)? = nil,
        budget: RateBudget = RateBudget(),
        onRateLimitWait: @escaping @Sendable (RateLimitWait) -> Void = { _ in }
    ) {
        self.budget = budget
        self.onRateLimitWait = onRateLimitWait
        self.config = config
        self.credentials = credentials
        self.transport = transport
        self.now = now
        self.sleep = sleep
        self.onAlert = onAlert
        self.observer = observer
    }

    /// Told of every HTTP exchange (each attempt), for metrics.
    private let observer: (@Sendable (RESTObservation) -> Void)?

    /// Server time minus local time, from the last sync.
    public var clockOffsetMs: Int64 { shared.withLock { $0.offsetMs } }

    /// The last rate-limit status seen for an endpoint path.
    public func rateLimit(for path: String) -> RateLimitStatus? { budget.status(path) }

    // MARK: - Calls

    /// `GET /v5/market/time`; also measures the clock offset (server minus local, at the request's midpoint).
    @discardableResult
    public func syncTime() throws(BybitError) -> Int64 {
        let sent = now()
        let result = try call("GET", "/v5/market/time", [], signed: false, allowResync: false)
        let received = now()
        let nano = try result.string("timeNano")
        let serverMs: Int64
        if let n = Int64(nano), nano.count >= 13 {
            serverMs = n / 1_000_000
        } else {
            serverMs = try result.int64("timeSecond") * 1000
        }
        let offset = serverMs - (sent + received) / 2
        shared.withLock { $0.offsetMs = offset }
        return offset
    }

    public func instrumentInfo() throws(BybitError) -> InstrumentInfo {
        let r = try call(
            "GET", "/v5/market/instruments-info", [("category", config.category), ("symbol", config.symbol)],
            signed: false)
        guard let item = try r.list("list").first else {
            throw r.fail("list", "is empty: unknown symbol \(config.symbol)")
        }
        let price = try item.object("priceFilter")
        let lot = try item.object("lotSizeFilter")
        return InstrumentInfo(
            symbol: try item.string("symbol"), status: try item.string("status"),
            tickSize: try price.decimal("tickSize"),
            qtyStep: try lot.decimal("qtyStep"), minOrderQty: try lot.decimal("minOrderQty"),
            maxOrderQty: try lot.decimal("maxOrderQty"), maxMarketOrderQty: try lot.optionalDecimal("maxMktOrderQty")
        )
    }

    public func ticker() throws(BybitError) -> Ticker {
        let r = try call(
            "GET", "/v5/market/tickers", [("category", config.category), ("symbol", config.symbol)], signed: false)
        guard let t = try r.list("list").first else { throw r.fail("list", "is empty") }
        return Ticker(
            symbol: try t.string("symbol"), bid1Price: try t.decimal("bid1Price"),
            ask1Price: try t.decimal("ask1Price"),
            markPrice: try t.decimal("markPrice"), fundingRate: try t.optionalDecimal("fundingRate"),
            nextFundingTime: t.optionalString("nextFundingTime").flatMap { Int64($0) }
        )
    }

    /// The order book's best `limit` levels on each side (1-500 for linear; 25 by default).
    public func orderBook(limit: Int = 25) throws(BybitError) -> OrderBook {
        let r = try call(
            "GET", "/v5/market/orderbook",
            [("category", config.category), ("symbol", config.symbol), ("limit", String(limit))],
            signed: false)
        func levels(_ key: String) throws(BybitError) -> [OrderBook.Level] {
            var out: [OrderBook.Level] = []
            for (n, row) in try r.rows(key).enumerated() {
                guard row.count >= 2, let p = ScaledDecimal(row[0]), let s = ScaledDecimal(row[1]) else {
                    throw r.fail("\(key)[\(n)]", "is not [price, size]")
                }
                out.append(OrderBook.Level(price: p, size: s))
            }
            return out
        }
        return OrderBook(
            bids: try levels("b"), asks: try levels("a"), updateId: try r.int64("u"), ts: try r.int64("ts"))
    }

    public func fundingHistory(startTime: Int64, endTime: Int64, limit: Int = 200) throws(BybitError) -> [FundingRecord]
    {
        let r = try call(
            "GET", "/v5/market/funding/history",
            [
                ("category", config.category), ("symbol", config.symbol), ("startTime", String(startTime)),
                ("endTime", String(endTime)), ("limit", String(limit)),
            ], signed: false)
        var out: [FundingRecord] = []
        for f in try r.list("list") {
            out.append(FundingRecord(rate: try f.decimal("fundingRate"), ts: try f.int64("fundingRateTimestamp")))
        }
        return out
    }

    public func recentTrades(limit: Int = 1000) throws(BybitError) -> [RecentTrade] {
        let r = try call(
            "GET", "/v5/market/recent-trade",
            [("category", config.category), ("symbol", config.symbol), ("limit", String(min(limit, 1000)))],
            signed: false)
        var out: [RecentTrade] = []
        for t in try r.list("list") {
            out.append(
                RecentTrade(
                    execId: try t.string("execId"), price: try t.decimal("price"), size: try t.decimal("size"),
                    side: try parseSide(try t.string("side"), t, "side"), time: try t.int64("time")))
        }
        return out
    }

    /// Candles, newest first as Bybit sends them.
    public func klines(interval: String, start: Int64, end: Int64, limit: Int = 200) throws(BybitError) -> [Kline] {
        let r = try call(
            "GET", "/v5/market/kline",
            [
                ("category", config.category), ("symbol", config.symbol), ("interval", interval),
                ("start", String(start)),
                ("end", String(end)), ("limit", String(limit)),
            ], signed: false)
        var out: [Kline] = []
        for (i, row) in try r.rows("list").enumerated() {
            guard row.count >= 7, let start = Int64(row[0]) else {
                throw r.fail("list[\(i)]", "is not [start, o, h, l, c, volume, turnover]")
            }
            let d = row[1...6].compactMap { ScaledDecimal($0) }
            guard d.count == 6 else { throw r.fail("list[\(i)]", "has a value that is not a decimal") }
            out.append(
                Kline(start: start, open: d[0], high: d[1], low: d[2], close: d[3], volume: d[4], turnover: d[5]))
        }
        return out
    }

    public func walletBalance() throws(BybitError) -> WalletBalance {
        let r = try call("GET", "/v5/account/wallet-balance", [("accountType", "UNIFIED")], signed: true)
        guard let w = try r.list("list").first else { throw r.fail("list", "is empty") }
        return try WalletBalance(w)
    }

    /// The account's settings; the agent reads its margin mode (docs/EXCHANGE.md).
    public func accountInfo() throws(BybitError) -> AccountInfo {
        try AccountInfo(try call("GET", "/v5/account/info", [], signed: true))
    }

    public func positions() throws(BybitError) -> [PositionInfo] {
        let r = try call(
            "GET", "/v5/position/list", [("category", config.category), ("symbol", config.symbol)], signed: true)
        var out: [PositionInfo] = []
        for p in try r.list("list") { out.append(try PositionInfo(p)) }
        return out
    }

    /// Places an order. Idempotent: transport failures and 5xx are retried with the same `orderLinkId`, and a
    /// duplicate (110072) is resolved by querying the order that already exists.
    public func createOrder(_ o: OrderRequest) throws(BybitError) -> OrderAck {
        guard o.hasValidLinkId else {
            throw BybitError(
                .api(retCode: BybitRetCode.badParameter, retMsg: "orderLinkId"), endpoint: "POST /v5/order/create",
                message: "orderLinkId '\(o.orderLinkId)' is not 1-36 of [A-Za-z0-9_-]")
        }
        var body: [(String, JSONScalar)] = [
            ("category", .string(config.category)), ("symbol", .string(config.symbol)),
            ("side", .string(o.side.bybitSide)),
            ("orderType", .string(o.orderType.text)), ("qty", .string(o.qty.description)),
        ]
        if let p = o.price { body.append(("price", .string(p.description))) }
        if let tif = o.timeInForce { body.append(("timeInForce", .string(tif.text))) }
        body.append(("orderLinkId", .string(o.orderLinkId)))
        body.append(("reduceOnly", .bool(o.reduceOnly)))
        if o.closeOnTrigger { body.append(("closeOnTrigger", .bool(true))) }
        if let sl = o.stopLoss {
            // The same stop `setTradingStop` keeps: the whole position, last price, market on trigger.
            body += [
                ("stopLoss", .string(sl.description)), ("tpslMode", .string("Full")),
                ("slTriggerBy", .string(Self.stopTrigger)), ("slOrderType", .string(BybitOrderType.market.text)),
            ]
        }
        body.append(("positionIdx", .int(0)))
        do {
            let r = try call("POST", "/v5/order/create", body: body)
            return OrderAck(orderId: try r.string("orderId"), orderLinkId: try r.string("orderLinkId"))
        } catch  where error.retCode == BybitRetCode.duplicateOrderLinkId {
            // A retry of an order that already exists: it was accepted; report the existing one.
            guard let existing = try order(linkId: o.orderLinkId) else { throw error }
            return OrderAck(orderId: existing.orderId, orderLinkId: existing.orderLinkId)
        }
    }

    public func cancelOrder(linkId: String) throws(BybitError) -> OrderAck {
        let r = try call(
            "POST", "/v5/order/cancel",
            body: [
                ("category", .string(config.category)), ("symbol", .string(config.symbol)),
                ("orderLinkId", .string(linkId)),
            ])
        return OrderAck(orderId: try r.string("orderId"), orderLinkId: try r.string("orderLinkId"))
    }

    public func cancelAll() throws(BybitError) -> [OrderAck] {
        let r = try call(
            "POST", "/v5/order/cancel-all",
            body: [("category", .string(config.category)), ("symbol", .string(config.symbol))])
        var out: [OrderAck] = []
        for a in try r.list("list") {
            out.append(OrderAck(orderId: try a.string("orderId"), orderLinkId: try a.string("orderLinkId")))
        }
        return out
    }

    /// Orders of the symbol, every page (`nextPageCursor` followed): by default the open ones, active and
    /// conditional (the position's own stop among them); `openOnly: false` the recently closed ones instead; an
    /// order asked for by `linkId` in whatever state.
    public func orders(openOnly: Bool = true, linkId: String? = nil) throws(BybitError) -> [OrderInfo] {
        var q: [(String, String)] = [("category", config.category), ("symbol", config.symbol)]
        if let linkId { q.append(("orderLinkId", linkId)) } else { q.append(("openOnly", openOnly ? "0" : "1")) }
        return try orderPages("/v5/order/realtime", q)
    }

    /// Closed orders of the symbol (filled, cancelled, rejected, deactivated), newest first, every page: where the
    /// orders that ended while the private stream was down are found.
    public func orderHistory(linkId: String? = nil) throws(BybitError) -> [OrderInfo] {
        var q: [(String, String)] = [("category", config.category), ("symbol", config.symbol)]
        if let linkId { q.append(("orderLinkId", linkId)) }
        return try orderPages("/v5/order/history", q)
    }

    /// One order by its client id, open or closed; nil when the exchange does not know it (yet).
    public func order(linkId: String) throws(BybitError) -> OrderInfo? {
        try orders(linkId: linkId).first
    }

    /// Executions of every kind (trades, a stop's, funding, ADL, liquidation), oldest first, every page: since
    /// `startTime` (the exchange allows a span of 7 days), or of one order.
    public func executions(linkId: String? = nil, orderId: String? = nil, startTime: Int64? = nil) throws(BybitError)
        -> [Execution]
    {
        var q: [(String, String)] = [("category", config.category), ("symbol", config.symbol)]
        if let linkId { q.append(("orderLinkId", linkId)) }
        if let orderId { q.append(("orderId", orderId)) }
        // With only a start, the exchange answers the 7 days that follow it.
        if let startTime { q.append(("startTime", String(startTime))) }
        q.append(("limit", "100"))
        var out: [Execution] = []
        try forEachPage("/v5/execution/list", q) { (item: JSONFields) throws(BybitError) in
            out.append(try Execution(item))
        }
        return out.sorted { ($0.execTime, $0.execId) < ($1.execTime, $1.execId) }
    }

    /// What triggers the position's stop, on `trading-stop` and on an order's attached `stopLoss`: the last traded price
    /// (the price the agent's own stop rule watches, docs/SPEC.md §10).
    public static let stopTrigger = "LastPrice"

    /// The protective stop (and optional take-profit) held by the exchange on the whole position, in Full mode on a
    /// one-way position (`tpslMode=Full`, `positionIdx=0`, both required). The same levels again (34040, not
    /// modified) is success. Returns false when nothing changed.
    @discardableResult
    public func setTradingStop(stopLoss: ScaledDecimal?, takeProfit: ScaledDecimal?) throws(BybitError) -> Bool {
        let body: [(String, JSONScalar)] = [
            ("category", .string(config.category)), ("symbol", .string(config.symbol)), ("tpslMode", .string("Full")),
            ("positionIdx", .int(0)), ("stopLoss", .string(stopLoss?.description ?? "0")),
            ("takeProfit", .string(takeProfit?.description ?? "0")), ("slTriggerBy", .string(Self.stopTrigger)),
        ]
        do {
            _ = try call("POST", "/v5/position/trading-stop", body: body)
            return true
        } catch  where error.retCode == BybitRetCode.tpslNotModified {
            return false
        }
    }

    /// Every order a paginated order list answers, 50 a page.
    private func orderPages(_ path: String, _ query: [(String, String)]) throws(BybitError) -> [OrderInfo] {
        var out: [OrderInfo] = []
        try forEachPage(path, query + [("limit", "50")]) { (item: JSONFields) throws(BybitError) in
            out.append(try OrderInfo(item))
        }
        return out
    }

    /// Calls a paginated list endpoint until `nextPageCursor` is empty (at most 100 pages).
    private func forEachPage(
        _ path: String, _ query: [(String, String)], _ body: (JSONFields) throws(BybitError) -> Void
    ) throws(BybitError) {
        var cursor = ""
        for _ in 0..<100 {
            var q = query
            if !cursor.isEmpty { q.append(("cursor", cursor)) }
            let r = try call("GET", path, q, signed: true)
            for item in try r.list("list") { try body(item) }
            cursor = r.optionalString("nextPageCursor") ?? ""
            if cursor.isEmpty { return }
        }
        throw BybitError(.decoding, endpoint: "GET \(path)", message: "more than 100 pages")
    }

    // MARK: - Transport, signing, retries

    private func call(_ method: String, _ path: String, body: [(String, JSONScalar)]) throws(BybitError) -> JSONFields {
        try call(method, path, [], body: renderJSON(body), signed: true)
    }

    private func call(
        _ method: String, _ path: String, _ query: [(String, String)], body: String? = nil, signed: Bool = true,
        allowResync: Bool = true
    ) throws(BybitError) -> JSONFields {
        let endpoint = "\(method) \(path)"
        let queryString = query.map { "\($0.0)=\(percentEncode($0.1))" }.joined(separator: "&")
        var resynced = !allowResync
        var attempt = 0
        /// Set after waiting for a refusal's reset: the retry leaves without asking the budget again.
        var waitedForReset = false
        while true {
            attempt += 1
            let banned = shared.withLock { $0.bannedUntil }
            if now() < banned {
                throw BybitError(
                    .ipBanned(until: banned), endpoint: endpoint,
                    message: "IP banned (HTTP 403); no calls until \(banned)")
            }
            if !waitedForReset { try pace(path, endpoint) }
            waitedForReset = false
            var headers = ["Content-Type: application/json"]
            if signed {
                guard let credentials else {
                    throw BybitError(.missingCredentials, endpoint: endpoint, message: "API key and secret are not set")
                }
                let ts = now() + clockOffsetMs
                let payload = method == "GET" ? queryString : (body ?? "")
                let sign = BybitSigner.restSignature(
                    timestamp: ts, apiKey: credentials.apiKey, recvWindow: config.recvWindowMs,
                    payload: payload, secret: credentials.apiSecret)
                headers += [
                    "X-BAPI-API-KEY: \(credentials.apiKey)", "X-BAPI-TIMESTAMP: \(ts)",
                    "X-BAPI-RECV-WINDOW: \(config.recvWindowMs)", "X-BAPI-SIGN: \(sign)", "X-BAPI-SIGN-TYPE: 2",
                ]
            }
            let url = config.baseURL + path + (queryString.isEmpty ? "" : "?" + queryString)
            let reply: HTTPReply
            let sentAt = DispatchTime.now().uptimeNanoseconds
            /// One observation per exchange with the server.
            func observe(_ result: RESTObservation.Result, _ retCode: Int? = nil) {
                observer?(
                    RESTObservation(
                        path: path, result: result, retCode: retCode,
                        seconds: Double(DispatchTime.now().uptimeNanoseconds - sentAt) / 1e9))
            }
            do {
                reply = try transport.send(
                    method: method, url: url, headers: headers, body: body.map { Array($0.utf8) })
            } catch {
                observe(error.timedOut ? .timeout : .transportError)
                if attempt < config.maxAttempts {
                    sleep(backoff(attempt))
                    continue
                }
                throw BybitError(.transport(timedOut: error.timedOut), endpoint: endpoint, message: error.message)
            }
            recordLimits(reply, path: path)
            if reply.status != 200 { observe(reply.status == 403 || reply.status == 429 ? .rateLimited : .httpError) }
            switch reply.status {
            case 200:
                break
            case 403:
                let until = now() + config.banBackoffMs
                shared.withLock { $0.bannedUntil = until }
                onAlert(
                    "Bybit answered HTTP 403 (IP rate limit or ban) on \(endpoint); no REST calls for \(config.banBackoffMs / 60_000) min"
                )
                throw BybitError(.ipBanned(until: until), endpoint: endpoint, message: "HTTP 403: IP rate limit or ban")
            case 429:
                let reset = refused(reply, path)
                if attempt < config.maxAttempts, waitForReset(reset, path) {
                    waitedForReset = true
                    continue
                }
                throw BybitError(.http(429), endpoint: endpoint, message: "too many requests")
            case 500...599:
                if attempt < config.maxAttempts {
                    sleep(backoff(attempt))
                    continue
                }
                throw BybitError(.http(reply.status), endpoint: endpoint, message: "server error")
            default:
                throw BybitError(
                    .http(reply.status), endpoint: endpoint,
                    message: String(decoding: reply.body.prefix(200), as: UTF8.self))
            }
            guard let json = (try? JSONSerialization.jsonObject(with: Data(reply.body))) as? [String: Any] else {
                observe(.malformed)
                throw BybitError(.decoding, endpoint: endpoint, message: "reply is not a JSON object")
            }
            let envelope = JSONFields(json, path: "reply", endpoint: endpoint)
            let code: Int
            do {
                code = Int(try envelope.int64("retCode"))
            } catch {
                observe(.malformed)
                throw error
            }
            observe(code == 0 ? .ok : .apiError, code)
            if code == 0 {
                let at = now()
                shared.withLock { $0.lastSuccessAt = at }
                return JSONFields((json["result"] as? [String: Any]) ?? [:], path: "result", endpoint: endpoint)
            }
            let message = envelope.optionalString("retMsg") ?? ""
            switch code {
            case BybitRetCode.timestampOutsideWindow where !resynced:
                resynced = true
                attempt -= 1
                _ = try syncTime()
                continue
            case BybitRetCode.tooManyVisits:
                let reset = refused(reply, path)
                if attempt < config.maxAttempts, waitForReset(reset, path) {
                    waitedForReset = true
                    continue
                }
            case BybitRetCode.serverError where attempt < config.maxAttempts:
                sleep(backoff(attempt))
                continue
            default:
                break
            }
            throw BybitError(.api(retCode: code, retMsg: message), endpoint: endpoint, message: "")
        }
    }

    /// The exchange refused a call for its rate limit (10006, 429): no call of the endpoint leaves before the reply's
    /// reset time (the exchange's ms), the account's other clients included.
    private func refused(_ reply: HTTPReply, _ path: String) -> Int64 {
        let reset =
            reply.headers["x-bapi-limit-reset-timestamp"].flatMap { Int64($0) } ?? (now() + clockOffsetMs + 1_000)
        budget.exhausted(path, until: reset)
        return reset
    }

    /// Waits until a refusal's reset time; false when it is too far away to wait for.
    private func waitForReset(_ reset: Int64, _ path: String) -> Bool {
        let wait = max(0, reset - now() - clockOffsetMs)
        guard wait <= config.maxRateLimitWaitMs else { return false }
        noteWait(path, .refused, wait)
        sleep(wait + 1)
        return true
    }

    /// Before a call leaves: takes one from its endpoint's budget, or waits for the window's reset when none is left
    /// (or only this client's reserve). A wait beyond `maxRateLimitWaitMs` fails the call unsent, as 10006 would.
    private func pace(_ path: String, _ endpoint: String) throws(BybitError) {
        let wait = budget.take(path, reserve: config.reserveCalls, now: now() + clockOffsetMs)
        guard wait > 0 else { return }
        guard wait <= config.maxRateLimitWaitMs else {
            throw BybitError(
                .api(retCode: BybitRetCode.tooManyVisits, retMsg: "rate-limit budget spent"), endpoint: endpoint,
                message: "not sent: the endpoint's rate limit resets in \(wait) ms")
        }
        let left = budget.status(path)?.remaining ?? 0
        noteWait(path, left > 0 ? .reserve : .exhausted, wait)
        sleep(wait + 1)
        // The window has reset: this call is its first.
        _ = budget.take(path, reserve: 0, now: now() + clockOffsetMs)
    }

    private func noteWait(_ path: String, _ reason: RateLimitWait.Reason, _ waitMs: Int64) {
        let status = budget.status(path)
        let wait = RateLimitWait(
            path: path, reason: reason, waitMs: waitMs, at: now(), remaining: status?.remaining ?? 0,
            limit: status?.limit ?? 0)
        budget.noteWait(wait)
        onRateLimitWait(wait)
    }

    private func recordLimits(_ reply: HTTPReply, path: String) {
        guard let remaining = reply.headers["x-bapi-limit-status"].flatMap({ Int($0) }),
            let limit = reply.headers["x-bapi-limit"].flatMap({ Int($0) }),
            let reset = reply.headers["x-bapi-limit-reset-timestamp"].flatMap({ Int64($0) })
        else { return }
        budget.record(path, RateLimitStatus(remaining: remaining, limit: limit, resetAt: reset))
    }

    /// `base × 2^(attempt-1)`, capped, with up to 50 % jitter.
    private func backoff(_ attempt: Int) -> Int64 {
        let base = min(config.backoffCapMs, config.backoffBaseMs << min(attempt - 1, 20))
        let jitter = shared.withLock { s -> Int in
            s.rng ^= s.rng << 13
            s.rng ^= s.rng >> 7
            s.rng ^= s.rng << 17
            return Int(s.rng % UInt64(max(1, base / 2)))
        }
        return Int64(base / 2 + jitter)
    }
}

/// A JSON scalar of a request body.
enum JSONScalar {
    case string(String)
    case bool(Bool)
    case int(Int)
}

/// A compact JSON object with keys in the given order: the exact bytes sent and signed.
func renderJSON(_ fields: [(String, JSONScalar)]) -> String {
    var out = "{"
    for (i, (k, v)) in fields.enumerated() {
        if i > 0 { out += "," }
        out += "\"\(k)\":"
        switch v {
        case .string(let s):
            out +=
                "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"")
                + "\""
        case .bool(let b): out += b ? "true" : "false"
        case .int(let n): out += String(n)
        }
    }
    return out + "}"
}

/// Percent-encodes a query value (unreserved characters stay).
func percentEncode(_ s: String) -> String {
    var out = ""
    for b in s.utf8 {
        let c = Character(Unicode.Scalar(b))
        if (b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x5A) || (b >= 0x61 && b <= 0x7A) || "-_.~".contains(c) {
            out.append(c)
        } else {
            out += String(format: "%%%02X", b)
        }
    }
    return out
}
