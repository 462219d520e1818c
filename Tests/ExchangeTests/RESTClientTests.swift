import Engine
import Exchange
import Foundation
import Simulator
import Testing

/// Records the sleeps the client asks for, without sleeping.
final class SleepLog: @unchecked Sendable {
    // Guarded by `lock`.
    private let lock = NSLock()
    private var values: [Int64] = []
    func add(_ ms: Int64) { lock.withLock { values.append(ms) } }
    var all: [Int64] { lock.withLock { values } }
}

/// A simulated venue on a loopback port with a warm market.
final class SimFixture: @unchecked Sendable {
    let venue: SimVenue
    let server: SimHTTPServer

    init(minutes: Double = 20, config: SimVenueConfig = SimVenueConfig()) throws {
        venue = SimVenue(config: config)
        server = venue.makeServer()
        try server.start()
        var config = MarketGeneratorConfig()
        config.hours = minutes / 60
        config.seed = 3
        var g = MarketGenerator(config: config)
        while let e = g.next() { venue.onMarket(e) }
    }

    deinit { server.stop() }

    var baseURL: String { "http://127.0.0.1:\(server.port)" }

    func client(
        secret: String = "sim-secret", timeoutMs: Int = 2_000, sleeps: SleepLog = SleepLog(),
        alerts: SleepLog = SleepLog()
    ) -> BybitRESTClient {
        var config = BybitRESTConfig(baseURL: baseURL)
        config.backoffBaseMs = 1
        return BybitRESTClient(
            config: config, credentials: BybitCredentials(apiKey: "sim-key", apiSecret: secret),
            transport: CurlTransport(connectTimeoutMs: 1_000, totalTimeoutMs: timeoutMs),
            sleep: { sleeps.add($0) }, onAlert: { _ in alerts.add(1) }
        )
    }

    /// Faults through the control endpoint, as a test or an operator would set them at run time.
    func setFaults(_ json: String) throws {
        let reply = try CurlTransport().send(
            method: "POST", url: baseURL + "/sim/faults", headers: ["Content-Type: application/json"],
            body: Array(json.utf8))
        #expect(reply.status == 200)
    }
}

@Suite(.tags(.integration), .serialized) struct RESTClientTests {
    @Test func publicEndpointsDecodeIntoEngineTypes() throws {
        let sim = try SimFixture()
        let client = sim.client()
        let offset = try client.syncTime()
        #expect(abs(offset) < 2_000)
        let info = try client.instrumentInfo()
        #expect(info.instrument == Instrument.btcusdt && info.status == "Trading")
        let ticker = try client.ticker()
        let q = try #require(sim.venue.currentQuote)
        #expect(Instrument.btcusdt.ticks(ticker.bid1Price) == q.bidPrice)
        #expect(Instrument.btcusdt.ticks(ticker.ask1Price) == q.askPrice)
        #expect(ticker.markPrice.doubleValue == Double(q.bidPrice + q.askPrice) / 20, "the mark is the mid")
        let trades = try client.recentTrades(limit: 50)
        #expect(trades.count == 50 && trades[0].time >= trades[49].time)
        let klines = try client.klines(interval: "1", start: 0, end: .max, limit: 10)
        #expect(klines.count == 10 && klines[0].start > klines[1].start, "newest first")
        #expect(klines.allSatisfy { $0.low.doubleValue <= $0.high.doubleValue })
        let limit = try #require(client.rateLimit(for: "/v5/market/kline"))
        #expect(limit.limit == 50 && limit.remaining < 50)
    }

    @Test func privateEndpointsAndAMarketRoundTrip() throws {
        let sim = try SimFixture()
        let client = sim.client()
        let wallet = try client.walletBalance()
        #expect(wallet.totalEquity.doubleValue == 100_000)
        #expect(try client.positions().first?.side == nil)
        let ack = try client.createOrder(
            OrderRequest(side: .long, orderType: .market, qty: ScaledDecimal("0.5")!, orderLinkId: "at-e-1-1"))
        #expect(ack.orderLinkId == "at-e-1-1")
        let position = try #require(client.positions().first)
        #expect(position.side == .long && position.size == ScaledDecimal("0.5"))
        let fills = try client.executions(linkId: "at-e-1-1")
        #expect(fills.reduce(0) { $0 + $1.execQty.doubleValue } == 0.5)
        #expect(fills.allSatisfy { !$0.isMaker && $0.execFee.doubleValue > 0 })
        // A protective stop held by the exchange.
        let stop = ScaledDecimal(mantissa: sim.venue.currentQuote!.bidPrice - 5_000, scale: 1)
        try client.setTradingStop(stopLoss: stop, takeProfit: nil)
        #expect(try client.positions().first?.stopLoss == stop)
        // Close reduce-only; a second reduce-only close has nothing to reduce (110017).
        _ = try client.createOrder(
            OrderRequest(
                side: .short, orderType: .market, qty: ScaledDecimal("0.5")!, orderLinkId: "at-x-1-2", reduceOnly: true
            ))
        #expect(try client.positions().first?.side == nil)
        #expect(throws: BybitError.self) {
            _ = try client.createOrder(
                OrderRequest(
                    side: .short, orderType: .market, qty: ScaledDecimal("0.5")!, orderLinkId: "at-x-1-3",
                    reduceOnly: true))
        }
        let order = try #require(try client.order(linkId: "at-x-1-2"))
        #expect(order.orderStatus == .filled && order.reduceOnly)
    }

    @Test func limitOrdersRestAndCancel() throws {
        let sim = try SimFixture()
        let client = sim.client()
        let bid = sim.venue.currentQuote!.bidPrice
        let price = ScaledDecimal(mantissa: bid - 2_000, scale: 1)  // 200 USDT under the bid: rests
        _ = try client.createOrder(
            OrderRequest(
                side: .long, orderType: .limit, qty: ScaledDecimal("0.01")!, price: price, timeInForce: .gtc,
                orderLinkId: "lim-1"))
        _ = try client.createOrder(
            OrderRequest(
                side: .long, orderType: .limit, qty: ScaledDecimal("0.01")!, price: price, timeInForce: .gtc,
                orderLinkId: "lim-2"))
        let open = try client.orders(openOnly: true)
        #expect(Set(open.map(\.orderLinkId)) == ["lim-1", "lim-2"] && open.allSatisfy(\.isOpen))
        _ = try client.cancelOrder(linkId: "lim-1")
        #expect(try client.orders(openOnly: true).map(\.orderLinkId) == ["lim-2"])
        #expect(try client.cancelAll().map(\.orderLinkId) == ["lim-2"])
        #expect(try client.orders(openOnly: true).isEmpty)
        do {
            _ = try client.cancelOrder(linkId: "lim-1")
            Issue.record("cancelling a cancelled order must fail")
        } catch {
            #expect(error.retCode == BybitRetCode.orderNotFound)
        }
    }

    @Test func badSignatureAndUnknownKeyAreRefused() throws {
        let sim = try SimFixture()
        do {
            _ = try sim.client(secret: "wrong").walletBalance()
            Issue.record("a wrong secret must be refused")
        } catch {
            #expect(error.retCode == BybitRetCode.badSignature)
            #expect(!error.description.contains("wrong"), "the secret never appears in an error")
        }
    }

    @Test func timestampOutsideTheWindowResyncsAndRetriesOnce() throws {
        let sim = try SimFixture()
        let client = sim.client()
        try sim.setFaults(#"{"clockSkewMs": 60000}"#)
        // The first signed call is 60 s behind the server: 10002, resync, retry with the new offset.
        let wallet = try client.walletBalance()
        #expect(wallet.totalEquity.doubleValue == 100_000)
        #expect(abs(client.clockOffsetMs - 60_000) < 2_000)
    }

    @Test func tooManyVisitsWaitsForTheReset() throws {
        let sim = try SimFixture()
        let sleeps = SleepLog()
        let client = sim.client(sleeps: sleeps)
        try sim.setFaults(#"{"failNextRetCode": 10006, "failNextCount": 2}"#)
        _ = try client.ticker()
        #expect(sleeps.all.count == 2)
        #expect(sleeps.all.allSatisfy { $0 > 0 && $0 <= 1_001 })
    }

    @Test func serverErrorsBackOffThenSucceedOrGiveUp() throws {
        let sim = try SimFixture()
        let sleeps = SleepLog()
        let client = sim.client(sleeps: sleeps)
        try sim.setFaults(#"{"failNextHTTPStatus": 503, "failNextHTTPCount": 2}"#)
        _ = try client.ticker()
        #expect(sleeps.all.count == 2)
        try sim.setFaults(#"{"failNextHTTPStatus": 500, "failNextHTTPCount": 10}"#)
        do {
            _ = try client.ticker()
            Issue.record("four 500s must fail")
        } catch {
            #expect(error.kind == .http(500))
        }
    }

    @Test func forbiddenBansTheClientAndAlerts() throws {
        let sim = try SimFixture()
        let alerts = SleepLog()
        let client = sim.client(alerts: alerts)
        try sim.setFaults(#"{"failNextHTTPStatus": 403, "failNextHTTPCount": 1}"#)
        #expect(throws: BybitError.self) { _ = try client.ticker() }
        #expect(alerts.all.count == 1)
        // Further calls fail fast without reaching the server, though it would answer now.
        do {
            _ = try client.ticker()
            Issue.record("banned")
        } catch {
            guard case .ipBanned = error.kind else { Issue.record("expected ipBanned, got \(error)"); return }
        }
    }

    @Test func lostReplyRetriesTheSameOrderAndNeverPlacesItTwice() throws {
        let sim = try SimFixture()
        let client = sim.client(timeoutMs: 300)
        // The venue processes the order but the reply is lost; the client times out and re-sends the same
        // orderLinkId; the venue answers 110072 and the client reports the existing order.
        try sim.setFaults(#"{"dropRepliesCount": 1}"#)
        let ack = try client.createOrder(
            OrderRequest(side: .long, orderType: .market, qty: ScaledDecimal("0.1")!, orderLinkId: "at-e-9-1"))
        #expect(ack.orderLinkId == "at-e-9-1")
        let all = try client.orders(openOnly: false)
        #expect(all.filter { $0.orderLinkId == "at-e-9-1" }.count == 1)
        #expect(try client.positions().first?.size == ScaledDecimal("0.1"))
    }

    @Test func fundingHistoryComesFromTheVenuesEightHourBoundaries() throws {
        let sim = try SimFixture(minutes: 20)
        // Push the venue's market across two funding times.
        let t = sim.venue.marketTime
        let q = sim.venue.currentQuote!
        for h in [8, 16] {
            var next = q
            next.ts = (t / 28_800_000 + Int64(h / 8)) * 28_800_000 + 1
            sim.venue.onMarket(.quote(next))
        }
        let history = try sim.client().fundingHistory(startTime: 0, endTime: .max)
        #expect(history.count >= 2)
        #expect(history.allSatisfy { $0.rate == ScaledDecimal("0.0001") && $0.ts % 28_800_000 == 0 })
    }

    @Test func slowRepliesTimeOutAndAreRetried() throws {
        let sim = try SimFixture()
        let sleeps = SleepLog()
        let client = sim.client(timeoutMs: 200, sleeps: sleeps)
        try sim.setFaults(#"{"replyDelayMs": 400}"#)
        do {
            _ = try client.ticker()
            Issue.record("every reply is later than the timeout")
        } catch {
            #expect(error.kind == .transport(timedOut: true))
            #expect(sleeps.all.count == 3, "four attempts, three back-offs")
        }
        try sim.setFaults("{}")
        _ = try client.ticker()
    }

    @Test func rejectedOrdersCarryTheRetCode() throws {
        let sim = try SimFixture()
        try sim.setFaults(#"{"rejectOrders": true}"#)
        do {
            _ = try sim.client().createOrder(
                OrderRequest(side: .long, orderType: .market, qty: ScaledDecimal("0.1")!, orderLinkId: "x-1"))
            Issue.record("rejected")
        } catch {
            #expect(error.retCode == BybitRetCode.insufficientBalance)
            #expect(error.description.contains("POST /v5/order/create: retCode 110007"))
        }
    }

    @Test func invalidLinkIdIsRefusedBeforeSending() {
        let client = BybitRESTClient(config: BybitRESTConfig(baseURL: "http://127.0.0.1:9"), credentials: nil)
        #expect(throws: BybitError.self) {
            _ = try client.createOrder(
                OrderRequest(side: .long, orderType: .market, qty: ScaledDecimal("1")!, orderLinkId: "has space"))
        }
    }
}

/// A transport that answers from a table, for decoding tests.
struct CannedTransport: HTTPTransport {
    var body: String
    func send(method: String, url: String, headers: [String], body: [UInt8]?) throws(TransportError) -> HTTPReply {
        HTTPReply(status: 200, headers: [:], body: Array(self.body.utf8))
    }
}

@Suite(.tags(.unit)) struct DecodingTests {
    @Test func missingFieldIsNamed() {
        let body =
            #"{"retCode":0,"retMsg":"OK","result":{"category":"linear","list":[{"symbol":"BTCUSDT","bid1Price":"1","markPrice":"1"}]}}"#
        let client = BybitRESTClient(
            config: BybitRESTConfig(baseURL: "http://x"), credentials: nil, transport: CannedTransport(body: body))
        do {
            _ = try client.ticker()
            Issue.record("must fail")
        } catch {
            #expect(error.description == "GET /v5/market/tickers: result.list[0].ask1Price is missing")
        }
    }

    @Test func badNumberIsNamed() {
        let body =
            #"{"retCode":0,"retMsg":"OK","result":{"list":[{"totalEquity":"lots","totalAvailableBalance":"1"}]}}"#
        let client = BybitRESTClient(
            config: BybitRESTConfig(baseURL: "http://x"), credentials: BybitCredentials(apiKey: "k", apiSecret: "s"),
            transport: CannedTransport(body: body))
        do {
            _ = try client.walletBalance()
            Issue.record("must fail")
        } catch {
            #expect(error.description.contains("result.list[0].totalEquity 'lots' is not a decimal number"))
        }
    }

    @Test func unknownFieldsAreIgnoredAndMalformedJSONIsAnError() throws {
        let ok =
            #"{"retCode":0,"retMsg":"OK","result":{"timeSecond":"1700000000","timeNano":"1700000000123456789","extra":[1,2]},"new":true}"#
        let client = BybitRESTClient(
            config: BybitRESTConfig(baseURL: "http://x"), credentials: nil, transport: CannedTransport(body: ok),
            now: { 1_700_000_000_000 })
        #expect(try client.syncTime() == 123)
        let bad = BybitRESTClient(
            config: BybitRESTConfig(baseURL: "http://x"), credentials: nil,
            transport: CannedTransport(body: "{\"retCode\":0,"))
        #expect(throws: BybitError.self) { try bad.syncTime() }
    }

    @Test func credentialsNeverPrint() {
        let c = BybitCredentials(apiKey: "AKIA", apiSecret: "SECRET")
        #expect(!"\(c)".contains("AKIA") && !"\(c)".contains("SECRET"))
    }
}
