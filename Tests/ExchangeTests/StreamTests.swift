import Engine
import Exchange
import ExchangeStreams
import Foundation
import Simulator
import Testing

/// Collects what a stream delivers, for the test to wait on.
final class Inbox<Message: Sendable>: @unchecked Sendable {
    // Guarded by `lock`.
    private let lock = NSLock()
    private var messages: [Message] = []
    private var statuses: [StreamStatus] = []

    func add(_ m: Message) { lock.withLock { messages.append(m) } }
    func add(status s: StreamStatus) { lock.withLock { statuses.append(s) } }
    var all: [Message] { lock.withLock { messages } }
    var allStatuses: [StreamStatus] { lock.withLock { statuses } }

    /// Waits (polling every 10 ms) until `condition` holds, at most `seconds` (generous: the whole suite runs in
    /// parallel on two cores); returns whether it did.
    func wait(seconds: Double = 30, _ condition: (Inbox) -> Bool) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if condition(self) { return true }
            try? await Task.sleep(for: .milliseconds(10))
        }
        return condition(self)
    }
}

/// Feeds the venue a generated market, a few events every millisecond, until cancelled (on a thread of its own: the
/// suite's other tests may hold the shared pool).
func feed(_ venue: SimVenue, seed: UInt64) -> Task<Void, Never> {
    Task(executorPreference: DedicatedExecutor(label: "test-feed")) {
        var config = MarketGeneratorConfig()
        config.seed = seed
        config.hours = 24
        config.startMs = venue.marketTime + 1
        var g = MarketGenerator(config: config)
        while !Task.isCancelled, let e = g.next() {
            venue.onMarket(e)
            if e.ts % 7 == 0 { try? await Task.sleep(for: .milliseconds(1)) }
        }
    }
}

func quickSettings(_ url: String) -> StreamSettings {
    var s = StreamSettings(url: url)
    s.reconnectBaseMs = 50
    s.reconnectCapMs = 200
    s.pingIntervalMs = 200
    s.deadAfterMs = 800
    return s
}

/// Runs the public stream against the fixture's venue, delivering into `inbox`, until the task is cancelled.
func startPublicStream(_ sim: SimFixture, into inbox: Inbox<PublicMessage>) -> Task<Void, Never> {
    let stream = BybitPublicStream(
        settings: quickSettings("ws://127.0.0.1:\(sim.server.port)/v5/public/linear"), instrument: .btcusdt)
    return Task(executorPreference: DedicatedExecutor(label: "test-public-stream")) {
        await stream.run(onMessage: { inbox.add($0) }, onStatus: { inbox.add(status: $0) })
    }
}

/// Runs the private stream against the fixture's venue (key `sim-key`), delivering into the returned inbox, until the
/// task is cancelled.
func startPrivateStream(
    _ sim: SimFixture, secret: String = "sim-secret", now: @escaping @Sendable () -> Int64 = wallClockMillis
)
    -> (Inbox<PrivateMessage>, Task<Void, Never>)
{
    let inbox = Inbox<PrivateMessage>()
    let stream = BybitPrivateStream(
        settings: quickSettings("ws://127.0.0.1:\(sim.server.port)/v5/private"),
        credentials: BybitCredentials(apiKey: "sim-key", apiSecret: secret), now: now)
    let task = Task(executorPreference: DedicatedExecutor(label: "test-private-stream")) {
        await stream.run(onMessage: { inbox.add($0) }, onStatus: { inbox.add(status: $0) })
    }
    return (inbox, task)
}

@Suite(.tags(.integration), .serialized) struct StreamTests {
    @Test func publicStreamDeliversTradesAndQuotes() async throws {
        let sim = try SimFixture(minutes: 2)
        let inbox = Inbox<PublicMessage>()
        let task = startPublicStream(sim, into: inbox)
        defer { task.cancel() }
        #expect(await inbox.wait { $0.allStatuses.contains(.ready) })
        let market = feed(sim.venue, seed: 5)
        defer { market.cancel() }
        let flowing = await inbox.wait { box in
            let m = box.all
            return m.contains { if case .trades(let t, _) = $0 { !t.isEmpty } else { false } }
                && m.contains { if case .quote = $0 { true } else { false } }
        }
        #expect(flowing)
        // Every trade delivered is one the venue printed, in order.
        let trades: [TradeEvent] = inbox.all.flatMap { m -> [TradeEvent] in
            if case .trades(let t, _) = m { t } else { [] }
        }
        #expect(zip(trades, trades.dropFirst()).allSatisfy { $0.ts <= $1.ts })
        #expect(trades.allSatisfy { $0.size > 0 && $0.price > 0 && $0.side != .unknown })
    }

    @Test func droppedConnectionReconnectsAndReportsTheGap() async throws {
        let sim = try SimFixture(minutes: 2)
        let market = feed(sim.venue, seed: 6)
        defer { market.cancel() }
        let inbox = Inbox<PublicMessage>()
        let task = startPublicStream(sim, into: inbox)
        defer { task.cancel() }
        #expect(await inbox.wait { $0.all.count > 20 })
        try sim.setFaults(#"{"dropWebSockets": true}"#)
        let reconnected = await inbox.wait { box in
            box.allStatuses.contains { if case .gap(let from, let to) = $0 { from <= to } else { false } }
        }
        #expect(reconnected, "statuses: \(inbox.allStatuses)")
        #expect(inbox.allStatuses.filter { $0 == .ready }.count >= 2, "resubscribed after the reconnect")
    }

    @Test func silentConnectionIsDeclaredDead() async throws {
        let sim = try SimFixture(minutes: 2)
        let inbox = Inbox<PublicMessage>()
        let task = startPublicStream(sim, into: inbox)
        defer { task.cancel() }
        #expect(await inbox.wait { $0.allStatuses.contains(.ready) })
        try sim.setFaults(#"{"stallWebSockets": true}"#)
        let dead = await inbox.wait { box in
            box.allStatuses.contains {
                if case .disconnected(let reason) = $0 { reason.contains("no data or pong") } else { false }
            }
        }
        #expect(dead, "statuses: \(inbox.allStatuses)")
        try sim.setFaults("{}")
        #expect(await inbox.wait { $0.allStatuses.filter { $0 == .ready }.count >= 2 })
    }

    @Test func serviceRestartIsVisible() async throws {
        let sim = try SimFixture(minutes: 2)
        let market = feed(sim.venue, seed: 7)
        defer { market.cancel() }
        let inbox = Inbox<PublicMessage>()
        let task = startPublicStream(sim, into: inbox)
        defer { task.cancel() }
        #expect(await inbox.wait { $0.allStatuses.contains(.ready) })
        sim.venue.injectRestart()
        #expect(
            await inbox.wait { box in box.all.contains { if case .quote(_, let u) = $0 { u == 1 } else { false } } })
    }

    @Test func privateStreamAuthenticatesAndDeduplicatesExecutions() async throws {
        let sim = try SimFixture(minutes: 2)
        try sim.setFaults(#"{"duplicateExecutions": true}"#)
        let (inbox, task) = startPrivateStream(sim)
        defer { task.cancel() }
        #expect(await inbox.wait { $0.allStatuses.contains(.ready) })
        _ = try sim.client().createOrder(
            OrderRequest(side: .long, orderType: .market, qty: ScaledDecimal("0.2")!, orderLinkId: "ws-1"))
        let got = await inbox.wait { box in
            box.all.contains { if case .positions(let p) = $0 { p.first?.size == ScaledDecimal("0.2") } else { false } }
        }
        #expect(got)
        let executions: [Execution] = inbox.all.flatMap { m -> [Execution] in
            if case .executions(let e) = m { e } else { [] }
        }
        #expect(!executions.isEmpty && Set(executions.map(\.execId)).count == executions.count, "no execution twice")
        #expect(
            await inbox.wait { box in
                box.all.contains {
                    if case .orders(let o) = $0 {
                        o.contains { $0.orderLinkId == "ws-1" && $0.orderStatus == .filled }
                    } else {
                        false
                    }
                }
            })
    }

    @Test func wrongKeyIsRefused() async throws {
        let sim = try SimFixture(minutes: 1)
        let (inbox, task) = startPrivateStream(sim, secret: "nope")
        defer { task.cancel() }
        #expect(
            await inbox.wait { box in
                box.allStatuses.contains {
                    if case .disconnected(let r) = $0 { r.contains("authentication refused") } else { false }
                }
            })
        #expect(!inbox.allStatuses.contains(.ready))
    }

    @Test func refusedAuthClosesAndReconnectsThenAuthenticates() async throws {
        // Bybit leaves a socket whose auth failed open and silent: the client must close it and try again.
        let sim = try SimFixture(minutes: 1)
        try sim.setFaults(#"{"failPrivateAuth": true}"#)
        let (inbox, task) = startPrivateStream(sim)
        defer { task.cancel() }
        #expect(
            await inbox.wait { box in
                box.allStatuses.contains {
                    if case .disconnected(let r) = $0 { r.contains("authentication refused") } else { false }
                }
            })
        try sim.setFaults("{}")
        #expect(await inbox.wait { $0.allStatuses.contains(.ready) }, "a new connection authenticates")
    }

    @Test func expiresFollowsTheExchangeClock() async throws {
        // The exchange's clock is 30 s ahead: `expires` from the local clock would be in its past.
        let sim = try SimFixture(minutes: 1)
        try sim.setFaults(#"{"clockSkewMs": 30000}"#)
        let (inbox, task) = startPrivateStream(sim, now: { wallClockMillis() + 30_000 })
        defer { task.cancel() }
        #expect(await inbox.wait { $0.allStatuses.contains(.ready) })
    }

    @Test func malformedMessagesAreErrorsNotCrashes() {
        let parser = PublicMessageParser(instrument: .btcusdt)
        #expect(throws: BybitError.self) { _ = try parser.parse("{not json") }
        #expect(throws: BybitError.self) {
            _ = try parser.parse(#"{"topic":"publicTrade.BTCUSDT","data":[{"T":1,"p":"x","v":"1"}]}"#)
        }
        #expect(throws: BybitError.self) {
            _ = try parser.parse(#"{"topic":"orderbook.1.BTCUSDT","data":{"b":[],"a":[],"u":3},"ts":1}"#)
        }
        #expect(throws: BybitError.self) {
            _ = try PrivateMessageParser().parse(#"{"topic":"order","data":[{"orderId":"1"}]}"#)
        }
    }

    @Test func reconnectDelaysGrowAndCap() {
        let s = StreamSettings(url: "ws://x")
        #expect(s.reconnectDelay(attempt: 1, random: 1) == 500)
        #expect(s.reconnectDelay(attempt: 1, random: 0) == 250)
        #expect(s.reconnectDelay(attempt: 3, random: 1) == 2_000)
        #expect(s.reconnectDelay(attempt: 20, random: 1) == 60_000)
    }
}

@Suite(.tags(.unit)) struct FastParserTests {
    @Test func fastAndGeneralParsersAgree() throws {
        let venue = SimVenue()
        var config = MarketGeneratorConfig()
        config.hours = 0.05
        var g = MarketGenerator(config: config)
        let (trades, quotes) = g.generateAll()
        let parser = PublicMessageParser(instrument: .btcusdt)
        var checked = 0
        for k in stride(from: 0, to: trades.count - 3, by: 3) {
            let text = venue.publicTradeMessage(Array(trades[k..<(k + 1 + k % 3)]), now: trades[k].ts)
            var copy = text
            let fast = copy.withUTF8 { parser.fastParse($0) }
            #expect(fast != nil)
            #expect(fast == (try parser.slowParse(text)))
            checked += 1
        }
        for (n, q) in quotes.prefix(500).enumerated() {
            let text = venue.bookMessage(q, updateId: Int64(n + 1), now: q.ts + 3)
            var copy = text
            #expect(copy.withUTF8 { parser.fastParse($0) } == (try parser.slowParse(text)))
        }
        #expect(checked > 100)
        // What the fast path does not read (escapes, acks, truncation) goes to the general parser.
        var ack = #"{"success":true,"ret_msg":"","conn_id":"c","op":"subscribe"}"#
        #expect(ack.withUTF8 { parser.fastParse($0) } == nil)
        #expect(try parser.parse(ack) == .control(op: "subscribe", success: true, message: ""))
        var truncated = #"{"topic":"publicTrade.BTCUSDT","data":[{"T":1,"p":"1","v":"1"}"#
        #expect(truncated.withUTF8 { parser.fastParse($0) } == nil)
        #expect(throws: BybitError.self) { _ = try parser.parse(truncated) }
    }
}
