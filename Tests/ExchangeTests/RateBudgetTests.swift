import Exchange
import Foundation
import Synchronization
import Testing

/// Pacing to the exchange's rate limits (runbooks/rate-limits.md): the budget per endpoint from the replies'
/// headers, the reserve the order lane leaves to protective calls, and the wait for the reset timestamp after a
/// refusal, shared by both lanes' clients. A scripted exchange and a clock that only moves when the client sleeps make
/// every wait exact.
@Suite(.tags(.unit)) struct RateBudgetTests {
    final class Waits: Sendable {
        let list = Mutex<[RateLimitWait]>([])
    }

    /// The exchange's side: each reply states the window (`remaining` of 10, resetting at `resetAt`); `refuse` answers
    /// 10006. The clock advances only by the client's sleeps.
    final class Exchange: HTTPTransport, @unchecked Sendable {
        struct State {
            var now: Int64 = 1_000_000
            var resetAt: Int64 = 1_001_000
            var remaining = 10
            var refuse = 0
            var sent: [String] = []
            var sleeps: [Int64] = []
        }
        let state = Mutex(State())

        func send(method: String, url: String, headers: [String], body: [UInt8]?) throws(TransportError) -> HTTPReply {
            state.withLock { s in
                // A new window once the clock passes its reset.
                if s.now >= s.resetAt {
                    s.resetAt += 1_000 * ((s.now - s.resetAt) / 1_000 + 1)
                    s.remaining = 10
                }
                s.sent.append(url)
                let limits = [
                    "x-bapi-limit": "10", "x-bapi-limit-reset-timestamp": "\(s.resetAt)",
                    "x-bapi-limit-status": "\(max(0, s.remaining - 1))",
                ]
                if s.refuse > 0 || s.remaining == 0 {
                    s.refuse = max(0, s.refuse - 1)
                    return HTTPReply(
                        status: 200, headers: limits.merging(["x-bapi-limit-status": "0"]) { $1 },
                        body: Array(#"{"retCode":10006,"retMsg":"Too many visits!","result":{}}"#.utf8))
                }
                s.remaining -= 1
                return HTTPReply(
                    status: 200, headers: limits,
                    body: Array(#"{"retCode":0,"retMsg":"OK","result":{"list":[],"nextPageCursor":""}}"#.utf8))
            }
        }

        func client(
            reserve: Int, budget: RateBudget, waits: Waits,
            config base: BybitRESTConfig = BybitRESTConfig(baseURL: "http://exchange")
        ) -> BybitRESTClient {
            var config = base
            config.reserveCalls = reserve
            return BybitRESTClient(
                config: config, credentials: BybitCredentials(apiKey: "k", apiSecret: "s"), transport: self,
                now: { [self] in state.withLock { $0.now } },
                sleep: { [self] ms in
                    state.withLock {
                        $0.now += ms; $0.sleeps.append(ms)
                    }
                },
                budget: budget, onRateLimitWait: { w in waits.list.withLock { $0.append(w) } })
        }
    }

    @Test func theOrderLaneLeavesTheReserveToProtectiveCalls() throws {
        let exchange = Exchange()
        let budget = RateBudget()
        let waits = Waits()
        let orders = exchange.client(reserve: 2, budget: budget, waits: waits)
        let protective = exchange.client(reserve: 0, budget: budget, waits: waits)
        // Eight calls of the window's ten go; the ninth waits for the reset.
        for _ in 0..<8 { _ = try orders.orders() }
        #expect(exchange.state.withLock { $0.sleeps }.isEmpty)
        #expect(budget.status("/v5/order/realtime")?.remaining == 2)
        // The protective lane spends the reserve without waiting.
        for _ in 0..<2 { _ = try protective.orders() }
        #expect(exchange.state.withLock { $0.sleeps }.isEmpty)
        _ = try orders.orders()
        let slept = exchange.state.withLock { $0.sleeps }
        #expect(slept == [1_001], "waited until the reset timestamp (1 001 000), from 1 000 000")
        #expect(waits.list.withLock { $0.map(\.reason) } == [.exhausted])
        #expect(exchange.state.withLock { $0.sent.count } == 11, "no call was refused: every one was sent once")
    }

    @Test func theOrderLaneWaitsAtItsReserve() throws {
        let exchange = Exchange()
        let budget = RateBudget()
        let waits = Waits()
        let orders = exchange.client(reserve: 2, budget: budget, waits: waits)
        for _ in 0..<9 { _ = try orders.orders() }
        #expect(exchange.state.withLock { $0.sleeps } == [1_001])
        #expect(waits.list.withLock { $0.map(\.reason) } == [.reserve])
        #expect(waits.list.withLock { $0.first?.remaining } == 2)
    }

    @Test func aRefusalWaitsForTheResetTimestamp() throws {
        let exchange = Exchange()
        let waits = Waits()
        let orders = exchange.client(reserve: 2, budget: RateBudget(), waits: waits)
        // Another program on the same key spent the window: the exchange refuses (10006) with the reset timestamp.
        exchange.state.withLock { $0.refuse = 1 }
        _ = try orders.orders()
        #expect(exchange.state.withLock { $0.sleeps } == [1_001], "waited exactly until the reset timestamp, once")
        #expect(exchange.state.withLock { $0.sent.count } == 2, "refused once, then sent after the reset")
        #expect(waits.list.withLock { $0.map(\.reason) } == [.refused])
    }

    @Test func aRefusalOnOneLaneMakesTheOtherWaitRatherThanBeRefused() throws {
        let exchange = Exchange()
        let budget = RateBudget()
        let waits = Waits()
        var config = BybitRESTConfig(baseURL: "http://exchange")
        config.maxAttempts = 1
        let orders = exchange.client(reserve: 2, budget: budget, waits: waits, config: config)
        let protective = exchange.client(reserve: 0, budget: budget, waits: waits)
        exchange.state.withLock { $0.refuse = 1 }
        #expect(throws: BybitError.self) { _ = try orders.orders() }
        #expect(exchange.state.withLock { $0.sent.count } == 1)
        // In the same window, the protective lane's call waits for the reset, then is sent once and answered.
        _ = try protective.orders()
        #expect(exchange.state.withLock { $0.sleeps } == [1_001])
        #expect(exchange.state.withLock { $0.sent.count } == 2)
        #expect(waits.list.withLock { $0.map(\.reason) } == [.exhausted])
    }
}
