import Engine
import Exchange
import ExchangeStreams
import Foundation
import Logging
import Testing

@testable import AgentSupport
@testable import Daemon
@testable import Simulator

/// Protective calls never wait (docs/EXCHANGE.md): the mirror's two lanes against the simulator, through the real
/// REST clients. The simulator holds an entry's create reply (the order is live at the exchange, its call hangs) while
/// a stop correction and a flatten go out and come back on the protective lane.
@Suite(.tags(.integration), .serialized) struct ProtectiveLaneTests {
    final class Fixture: @unchecked Sendable {
        let venue: SimVenue
        let server: SimHTTPServer
        let queue = EventQueue()
        let mirror: ExchangeMirror
        /// Every report taken from the queue so far.
        var reports: [VenueReport] = []

        init() throws {
            var config = SimVenueConfig()
            config.rateLimitPerSecond = 10_000
            venue = SimVenue(config: config)
            server = venue.makeServer()
            try server.start()
            var market = MarketGeneratorConfig()
            market.hours = 0.2
            market.seed = 5
            var g = MarketGenerator(config: market)
            while let e = g.next() { venue.onMarket(e) }
            let credentials = BybitCredentials(apiKey: "sim-key", apiSecret: "sim-secret")
            var rest = BybitRESTConfig(baseURL: "http://127.0.0.1:\(server.port)")
            rest.backoffBaseMs = 10
            // The order lane waits a minute for a reply; the protective lane's client has its own connection.
            let orders = BybitRESTClient(
                config: rest, credentials: credentials,
                transport: CurlTransport(connectTimeoutMs: 1_000, totalTimeoutMs: 60_000))
            let protective = BybitRESTClient(
                config: rest, credentials: credentials,
                transport: CurlTransport(connectTimeoutMs: 1_000, totalTimeoutMs: 3_000))
            mirror = ExchangeMirror(
                client: orders, protectiveClient: protective, instrument: .btcusdt,
                privateSettings: StreamSettings(url: "ws://127.0.0.1:\(server.port)/v5/private"),
                credentials: credentials, queue: queue, logger: Logger(label: "test"))
            mirror.start()
        }

        deinit {
            venue.lock.withLock { for h in venue.heldReplies { h.release() } }
            mirror.stop(deadlineMs: 1_000)
            server.stop()
        }

        /// A control call of the simulator (`/sim/release`).
        func post(_ path: String) throws {
            let reply = try CurlTransport().send(
                method: "POST", url: "http://127.0.0.1:\(server.port)" + path, headers: [], body: nil)
            #expect(reply.status == 200)
        }

        func setFaults(_ json: String) throws {
            let reply = try CurlTransport().send(
                method: "POST", url: "http://127.0.0.1:\(server.port)/sim/faults",
                headers: ["Content-Type: application/json"], body: Array(json.utf8))
            #expect(reply.status == 200)
        }

        /// Takes reports until one satisfies `match` (at most 60 s; the last look is after the deadline, so a test
        /// task resumed late on a busy machine still sees what arrived).
        func await(_ match: (VenueReport) -> Bool) async -> Bool {
            await until { reports.contains(where: match) }
        }

        /// Takes reports until `condition` holds (at most 60 s, looked at once more after the deadline).
        func until(_ condition: () -> Bool) async -> Bool {
            let deadline = wallClockMillis() + 60_000
            while true {
                for input in queue.takeAll(timeoutMs: 0) {
                    if case .venue(let r, _) = input { reports.append(r) }
                }
                if condition() { return true }
                if wallClockMillis() >= deadline { return false }
                try? await Task.sleep(for: .milliseconds(10))
            }
        }

        var heldReplies: Int { venue.lock.withLock { venue.pendingHeldReplies } }
        var bid: Ticks { venue.lock.withLock { venue.quote!.bidPrice } }

        func entry(_ id: String, qty: Lots, type: OrderType = .market, stop: Ticks?) -> OrderIntent {
            OrderIntent(
                id: id, side: .long, qty: qty, type: type, reduceOnly: false, purpose: .entry(.breakIn),
                decisionTs: 1, stopLoss: stop)
        }
    }

    static func acknowledged(_ id: String) -> (VenueReport) -> Bool {
        { if case .acknowledged(let i, _, _) = $0 { i == id } else { false } }
    }

    @Test func aStopCorrectionAndAFlattenProceedWhileAnEntrysCreateReplyIsHeld() async throws {
        let f = try Fixture()
        // A position, protected by its attached stop.
        f.mirror.send(.submit(f.entry("at-e-1-1", qty: 10, stop: f.bid - 2_000)))
        #expect(await f.await(Self.acknowledged("at-e-1-1")))
        #expect(f.venue.lock.withLock { f.venue.positionLots } == 10)
        // The next entry's create is made at the exchange and its reply held for a minute.
        try f.setFaults(#"{"holdCreateRepliesCount":"1","holdReplyMs":"60000"}"#)
        f.mirror.send(.submit(f.entry("at-e-2-1", qty: 5, stop: f.bid - 2_000)))
        let held = await f.until { f.heldReplies == 1 }
        #expect(held, "the simulator holds the create's reply")
        #expect(f.venue.lock.withLock { f.venue.positionLots } == 15, "the held entry executed")
        // The stop correction and the flatten go out on the protective lane and come back while the create hangs.
        let corrected = f.bid - 1_000
        f.mirror.setStop(ticks: corrected)
        f.mirror.flatten(wall: .now)
        #expect(await f.await { if case .stopSet(let t, _) = $0 { t == corrected } else { false } })
        #expect(await f.await { if case .flattened(let ok, _) = $0 { ok } else { false } })
        #expect(f.heldReplies == 1, "both were done with the entry's reply still held")
        #expect(!f.reports.contains(where: Self.acknowledged("at-e-2-1")))
        #expect(f.venue.lock.withLock { f.venue.positionLots } == 0)
        // Released, the entry's call ends as it would have.
        try f.post("/sim/release")
        #expect(await f.await(Self.acknowledged("at-e-2-1")))
    }

    @Test func aCancelOfAnEntryOnItsWayFollowsItsCreate() async throws {
        let f = try Fixture()
        try f.setFaults(#"{"holdCreateRepliesCount":"1","holdReplyMs":"60000"}"#)
        // A resting limit entry, its create's reply held.
        let price = f.bid - 3_000
        f.mirror.send(.submit(f.entry("at-e-3-1", qty: 5, type: .limit(price), stop: price - 2_000)))
        #expect(await f.until { f.heldReplies == 1 })
        f.mirror.send(.cancel("at-e-3-1"))
        // A stop call still goes ahead of both.
        f.mirror.setStop(ticks: nil)
        #expect(
            await f.await {
                switch $0 {
                case .stopSet, .stopFailed: true
                default: false
                }
            }, "answered (refused: no position) with the create still held")
        #expect(f.heldReplies == 1)
        try f.post("/sim/release")
        #expect(await f.await(Self.acknowledged("at-e-3-1")))
        // The cancel left after the create's answer: the exchange cancelled the order, no failed cancel.
        #expect(
            await f.until {
                f.venue.lock.withLock { f.venue.orders.values.first { $0.orderLinkId == "at-e-3-1" }?.status }
                    == .cancelled
            })
        #expect(!f.reports.contains { if case .cancelFailed = $0 { true } else { false } })
    }
}
