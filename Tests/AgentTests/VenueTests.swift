import ControlProtocol
import Engine
import Foundation
import Logging
import Testing

@testable import AgentCLI
@testable import AgentConfig
@testable import AgentSupport
@testable import Daemon
@testable import Exchange
@testable import Research

/// An exchange account scripted by the test: what the start-up read returns, and every call the venue makes.
final class ScriptedGateway: ExchangeGateway {
    var position: Lots
    var stopTicks: Ticks?
    var sent: [ExchangeMirror.Job] = []
    var flattens = 0
    var stops: [Int64?] = []
    var resyncs = 0

    init(position: Lots, stopTicks: Ticks?) {
        self.position = position
        self.stopTicks = stopTicks
    }

    func snapshot(executionsSince: Int64?) throws(BybitError) -> VenueResync {
        VenueResync(
            executions: [], asked: [], openOrders: [], position: position, stopTicks: stopTicks, reason: "start")
    }
    func walletEquity() throws(BybitError) -> Double { 10_000 }
    func send(_ job: ExchangeMirror.Job) { sent.append(job) }
    func setStop(ticks: Int64?) { stops.append(ticks) }
    func flatten(wall: WallTime) { flattens += 1 }
    func resync(ids: [String], since: Int64, reason: String) { resyncs += 1 }
    func readWallet() {}
    var lastSuccessWall: WallTime? { nil }

    /// The orders sent, in order.
    var submitted: [OrderIntent] { sent.compactMap { if case .submit(let i) = $0 { i } else { nil } } }
}

/// The engine loop against a scripted venue (Sources/Daemon/Venue/): the exchange's reports are stepped in
/// as the daemon's queue delivers them, and the books, the state and the alerts are checked, in milliseconds. The
/// restored state is the fixture's: long 1.984 BTC at 49988.6 with its stop at 49931.9 (SnapshotFormatTests).
@Suite(.tags(.unit)) struct VenueTests {
    let wall = WallTime(1_767_230_100_000)
    let market: Int64 = 1_767_230_040_022

    /// An engine in `mode` over the fixture's state directory, on `gateway` (nil: no exchange attached), recovered.
    func engine(_ mode: String, gateway: ScriptedGateway?, recover: Bool = true) throws -> (AgentEngine, URL) {
        let dir = try SnapshotFormatTests().legacyStateDirectory()
        let resolved = try ConfigLoader.load(
            ConfigSelection(
                environment: mode, directory: packageRoot.appendingPathComponent("config/environments").path,
                overrides: ["agent.mode=\(mode)", "live.armed=true", "agent.warm_start=off"]))
        let settings = AgentConfiguration(resolved, environment: "venue-test")
        let sink = LogSink(output: .jsonLines, fd: open("/dev/null", O_WRONLY), environment: [:])
        let logger = Logger(label: "venue") { AgentLogHandler(label: $0, sink: sink) }
        let store = try AgentStore(directory: dir.path, instrument: settings.instrument)
        let engine = AgentEngine(
            settings: settings, store: store, board: StatusBoard(), logger: logger, sink: sink, webhook: nil,
            clock: MarketClock(speed: 1, anchorMarket: market, anchorWall: wall), version: "test", startedWall: wall)
        if let gateway { engine.attach(gateway) }
        if recover { try engine.recover(wall: wall) }
        return (engine, dir)
    }

    func execution(
        _ id: String, link: String, side: String, qty: String, price: String = "49990.0", type: String = "Trade",
        orderId: String = "o-1"
    ) throws -> Execution {
        try Execution(
            JSONFields(
                [
                    "execId": id, "orderId": orderId, "orderLinkId": link, "side": side, "execPrice": price,
                    "execQty": qty, "execFee": "0.01", "execType": type, "stopOrderType": "", "isMaker": false,
                    "execTime": String(market + 1_000),
                ], path: "execution", endpoint: "test"))
    }

    func order(_ link: String, side: String, status: String, qty: String, cum: String) throws -> OrderInfo {
        try OrderInfo(
            JSONFields(
                [
                    "orderId": "o-1", "orderLinkId": link, "symbol": "BTCUSDT", "side": side, "orderType": "Market",
                    "orderStatus": status, "qty": qty, "cumExecQty": cum, "leavesQty": "0", "avgPrice": "",
                    "reduceOnly": true, "stopOrderType": "", "triggerPrice": "",
                ], path: "order", endpoint: "test"))
    }

    func alertKinds(_ engine: AgentEngine) throws -> [String] { try engine.store.recentAlerts(50).map(\.kind) }

    @Test func aShadowOrLiveEngineWithoutAnExchangeRefusesToStart() throws {
        let (engine, dir) = try engine("live", gateway: nil, recover: false)
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(throws: CommandError.self) { try engine.recover(wall: wall) }
    }

    @Test func liveRestoresThePositionTheExchangeHolds() throws {
        let gateway = ScriptedGateway(position: 1984, stopTicks: 499_319)
        let (engine, dir) = try engine("live", gateway: gateway)
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(engine.trader.position?.qty == 1984 && engine.supervisor.state != .halted)
        #expect(gateway.stops.isEmpty, "the exchange already holds the position's stop")
        #expect(engine.venue.entryVeto == .privateStream, "no entry until the private stream is authenticated")
    }

    @Test func liveHaltsOnAPositionTheExchangeDoesNotHold() throws {
        let gateway = ScriptedGateway(position: 0, stopTicks: nil)
        let (engine, dir) = try engine("live", gateway: gateway)
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(engine.supervisor.state == .halted && engine.supervisor.haltCause == .positionMismatch)
        #expect(try alertKinds(engine).contains("position_mismatch"))
    }

    @Test func liveHaltsOnAnExecutionOfNoOrderOfItsOwn() throws {
        let gateway = ScriptedGateway(position: 1984, stopTicks: 499_319)
        let (engine, dir) = try engine("live", gateway: gateway)
        defer { try? FileManager.default.removeItem(at: dir) }
        let foreign = try execution("x-9", link: "", side: "Buy", qty: "0.001", orderId: "manual-1")
        _ = engine.step([.venue(.execution(foreign), wall: wall + 1_000)], wall: wall + 1_000)
        #expect(engine.supervisor.state == .halted && engine.supervisor.haltCause == .positionMismatch)
        #expect(engine.trader.position?.qty == 1984, "nothing unexplained is booked")
    }

    @Test func liveBooksAnADLAndHalts() throws {
        let gateway = ScriptedGateway(position: 1984, stopTicks: 499_319)
        let (engine, dir) = try engine("live", gateway: gateway)
        defer { try? FileManager.default.removeItem(at: dir) }
        let adl = try execution("x-adl", link: "", side: "Sell", qty: "0.500", type: "AdlTrade", orderId: "adl-1")
        _ = engine.step([.venue(.execution(adl), wall: wall + 1_000)], wall: wall + 1_000)
        #expect(engine.trader.position?.qty == 1484, "the exchange's reduction is booked as reported")
        #expect(engine.supervisor.state == .halted && engine.supervisor.haltCause == .adl)
        #expect(try alertKinds(engine).contains("adl"))
    }

    @Test func liveFlattenClosesWhatAPartlyFilledCloseLeft() throws {
        let gateway = ScriptedGateway(position: 1984, stopTicks: 499_319)
        let (engine, dir) = try engine("live", gateway: gateway)
        defer { try? FileManager.default.removeItem(at: dir) }
        var w = wall + 1_000
        engine.startFlatten(.operatorFlatten, wall: w)
        #expect(gateway.submitted.isEmpty, "an order leaves only once its record is committed")
        _ = engine.step([], wall: w)
        let first = try #require(gateway.submitted.first)
        #expect(first.qty == 1984 && first.reduceOnly && first.side == .short && gateway.flattens == 1)

        // The exchange fills 1.000 of it and cancels the rest.
        w += 100
        _ = engine.step(
            [
                .venue(.acknowledged(id: first.id, orderId: "o-1", latencyMs: 5), wall: w),
                .venue(.execution(try execution("x-1", link: first.id, side: "Sell", qty: "1.000")), wall: w),
                .venue(
                    .order(try order(first.id, side: "Sell", status: "Cancelled", qty: "1.984", cum: "1.000")), wall: w),
            ], wall: w)
        #expect(engine.trader.position?.qty == 984, "the part that executed is booked")
        #expect(engine.supervisor.state == .flattening)

        // The next tick closes the rest.
        w += 1_000
        _ = engine.step([.tick(wall: w)], wall: w)
        let second = try #require(gateway.submitted.dropFirst().first)
        #expect(second.qty == 984 && second.reduceOnly && second.id != first.id)

        w += 100
        _ = engine.step(
            [
                .venue(.execution(try execution("x-2", link: second.id, side: "Sell", qty: "0.984")), wall: w),
                .venue(
                    .order(try order(second.id, side: "Sell", status: "Filled", qty: "0.984", cum: "0.984")), wall: w),
                .venue(.flattened(ok: true, steps: ["venue: flat"]), wall: w),
            ], wall: w)
        #expect(engine.trader.position == nil && engine.supervisor.state == .halted)
        let statuses = try engine.store.orders().map { "\($0.intent.id) \($0.status)" }
        #expect(statuses.contains("\(first.id) \(OrderStatus.partiallyFilledCancelled)"))
        #expect(statuses.contains("\(second.id) \(OrderStatus.filled)"))
    }

    /// Live, holding the fixture's long, an operator's flatten begun a second after the start (its close sent).
    func liveFlattening() throws -> (AgentEngine, ScriptedGateway, URL) {
        let gateway = ScriptedGateway(position: 1984, stopTicks: 499_319)
        let (engine, dir) = try engine("live", gateway: gateway)
        engine.startFlatten(.operatorFlatten, wall: wall + 1_000)
        _ = engine.step([], wall: wall + 1_000)
        return (engine, gateway, dir)
    }

    @Test func liveRejectedCloseIsAlertedAndSentAgain() throws {
        let (engine, gateway, dir) = try liveFlattening()
        defer { try? FileManager.default.removeItem(at: dir) }
        var w = wall + 1_000
        let first = try #require(gateway.submitted.first)
        w += 100
        _ = engine.step([.venue(.rejected(id: first.id, reason: "10006 too many visits"), wall: w)], wall: w)
        #expect(try alertKinds(engine).contains("order_rejected"))
        #expect(engine.trader.position?.qty == 1984)
        w += 1_000
        _ = engine.step([.tick(wall: w)], wall: w)
        let again = try #require(gateway.submitted.dropFirst().first)
        #expect(again.qty == 1984 && again.reduceOnly)
    }

    @Test func anUnknownCreateOutcomeIsShownUntilTheExchangeAnswers() throws {
        let (engine, gateway, dir) = try liveFlattening()
        defer { try? FileManager.default.removeItem(at: dir) }
        let w = wall + 1_000
        let close = try #require(gateway.submitted.first)
        _ = engine.step([.venue(.outcomeUnknown(id: close.id, reason: "timeout"), wall: w + 100)], wall: w + 100)
        #expect(engine.healthReport(wall: w + 100).reasons.contains("order outcome unknown: \(close.id)"))
        #expect(
            engine.orderReports().contains { $0.id == close.id && $0.purpose.hasSuffix("(outcome unknown: querying)") })
    }

    /// A value of Bybit's enumerations this agent does not know: alerted once, never mapped. An execution of an
    /// unknown kind is unexplained (a halt in live, nothing booked); an order in an unknown state stays in flight.
    @Test func anUnknownExchangeValueIsAlertedOnceAndNeverMapped() throws {
        let (engine, gateway, dir) = try liveFlattening()
        defer { try? FileManager.default.removeItem(at: dir) }
        let w = wall + 1_000
        let close = try #require(gateway.submitted.first)
        let odd = try order(close.id, side: "Sell", status: "PendingReview", qty: "1.984", cum: "0")
        _ = engine.step([.venue(.order(odd), wall: w + 100), .venue(.order(odd), wall: w + 200)], wall: w + 200)
        #expect(try alertKinds(engine).filter { $0 == "exchange_unknown_value" }.count == 1)
        let alert = try #require(try engine.store.recentAlerts(50).first { $0.kind == "exchange_unknown_value" })
        #expect(alert.message.contains(#"orderStatus "PendingReview""#) && alert.message.contains(close.id))
        #expect(
            (engine.venue as! ExchangeVenue).state.book.isTracked(close.id), "neither open nor over: still in flight")
        #expect(engine.trader.position?.qty == 1984)
        let strange = try execution("x-new", link: "", side: "Sell", qty: "0.500", type: "Liquidation2026")
        _ = engine.step([.venue(.execution(strange), wall: w + 300)], wall: w + 300)
        #expect(try alertKinds(engine).filter { $0 == "exchange_unknown_value" }.count == 2)
        #expect(engine.trader.position?.qty == 1984, "an unknown kind of execution is not booked as any known one")
    }

    @Test func shadowComparesThePaperFillWithTheTestnets() throws {
        let gateway = ScriptedGateway(position: 1984, stopTicks: 499_319)
        let (engine, dir) = try engine("shadow", gateway: gateway)
        defer { try? FileManager.default.removeItem(at: dir) }
        var w = wall + 1_000
        engine.startFlatten(.operatorFlatten, wall: w)
        _ = engine.step([], wall: w)
        let close = try #require(gateway.submitted.first)
        // The paper venue fills the close at the next quote (the bid, 49990.0).
        let quote = QuoteEvent(ts: market + 2_000, bidPrice: 499_900, bidSize: 5_000, askPrice: 499_901, askSize: 5_000)
        w += 100
        _ = engine.step([.quote(quote, wall: w)], wall: w)
        #expect(engine.trader.position == nil, "shadow: the paper fill closes the position")
        #expect(engine.supervisor.state == .flattening, "until the testnet confirms its own flatten")
        // The testnet fills it 40 ticks lower: beyond the tolerance (20).
        w += 100
        _ = engine.step(
            [
                .venue(
                    .execution(try execution("x-1", link: close.id, side: "Sell", qty: "1.984", price: "49986.0")),
                    wall: w),
                .venue(
                    .order(try order(close.id, side: "Sell", status: "Filled", qty: "1.984", cum: "1.984")), wall: w),
                .venue(.flattened(ok: true, steps: ["venue: flat"]), wall: w),
            ], wall: w)
        #expect(try alertKinds(engine).contains("shadow_divergence"))
        #expect(engine.supervisor.state == .halted)
    }
}
