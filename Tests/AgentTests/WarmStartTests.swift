import ControlProtocol
import Engine
import Exchange
import Foundation
import Logging
import Testing

@testable import AgentCLI
@testable import AgentConfig
@testable import AgentSupport
@testable import Daemon
@testable import Research
@testable import Simulator

/// A warm start from the exchange's history: the plan (which minutes come from candles, which from trades), the
/// client against the simulator's Bybit endpoints, and the engine's recovery with it.
@Suite(.tags(.integration)) struct WarmStartTests {
    static let m = millisPerMinute
    /// A minute boundary in 2026.
    static let base: Int64 = 1_767_225_600_000

    static func bar(_ minute: Int64) -> KlineBar {
        KlineBar(ts: base + minute * m, open: 1000, high: 1002, low: 999, close: 1001, volume: 10)
    }

    static func trade(_ ts: Int64) -> TradeEvent { TradeEvent(ts: ts, price: 1000, size: 1, side: .buy) }

    @Test func aFirstStartTakesCandlesUntilTheRecentTradesCoverWholeMinutes() {
        let now = Self.base + 300 * Self.m + 20_000
        let bars = (0..<300).map { Self.bar($0) }
        // The recent trades begin inside minute 297: that minute is partial, 298 on are exact.
        let recent = [
            Self.base + 297 * Self.m + 30_000, Self.base + 298 * Self.m + 5, Self.base + 299 * Self.m, now - 1,
        ].map(Self.trade)
        let plan = WarmPlan.make(now: now, neededMinutes: 242, storedLastTs: nil, klines: bars, recent: recent)
        #expect(plan.klines.first?.ts == Self.base + 58 * Self.m)
        #expect(plan.klines.last?.ts == Self.base + 297 * Self.m)
        #expect(plan.klines.count == 240)
        #expect(plan.trades.map(\.ts) == Array(recent.dropFirst().map(\.ts)))
        #expect(plan.firstExactMinute == Self.base + 298 * Self.m)
    }

    @Test func recentTradesAllInTheOpenMinuteLeaveEveryClosedMinuteToCandles() {
        let now = Self.base + 300 * Self.m + 20_000
        let recent = [now - 10_000, now - 5].map(Self.trade)
        let plan = WarmPlan.make(
            now: now, neededMinutes: 10, storedLastTs: nil, klines: (0..<301).map { Self.bar($0) }, recent: recent)
        // The open minute's candle is still forming: never taken.
        #expect(plan.klines.map(\.ts) == (290..<300).map { Self.base + $0 * Self.m })
        #expect(plan.trades.isEmpty && plan.firstExactMinute == nil)
    }

    @Test func storedDataIsContinuedNotOverlapped() {
        let now = Self.base + 300 * Self.m + 20_000
        let lastStored = Self.base + 250 * Self.m + 40_000
        #expect(
            WarmPlan.missing(now: now, neededMinutes: 242, storedLastTs: lastStored)! == (
                Self.base + 251 * Self.m, Self.base + 300 * Self.m
            ))
        let plan = WarmPlan.make(
            now: now, neededMinutes: 242, storedLastTs: lastStored, klines: (0..<300).map { Self.bar($0) },
            recent: [Self.trade(now - 100)])
        #expect(plan.klines.map(\.ts) == (251..<300).map { Self.base + $0 * Self.m })
        // Recent trades reaching back over the stored end continue it exactly: no candle, the stored minute completed.
        let reaching = [lastStored - 5, lastStored, lastStored + 1, Self.base + 260 * Self.m].map(Self.trade)
        let exact = WarmPlan.make(
            now: now, neededMinutes: 242, storedLastTs: lastStored, klines: (0..<300).map { Self.bar($0) },
            recent: reaching)
        #expect(exact.klines.isEmpty)
        #expect(exact.trades.map(\.ts) == [lastStored + 1, Self.base + 260 * Self.m])
        // Nothing missing: stored data up to the open minute.
        #expect(WarmPlan.missing(now: now, neededMinutes: 242, storedLastTs: now - 30_000) == nil)
    }

    /// The simulator holding `minutes` of generated history, as an exchange would.
    static func venue(minutes: Int, seed: UInt64 = 3) throws -> (SimVenue, SimHTTPServer, end: Int64) {
        var config = SimVenueConfig()
        config.rateLimitPerSecond = 10_000
        let venue = SimVenue(config: config)
        var market = MarketGeneratorConfig()
        market.seed = seed
        market.startMs = base
        market.hours = Double(minutes) / 60
        var source = GeneratedMarket(config: market)
        while let e = source.next() { venue.onMarket(e) }
        let server = venue.makeServer()
        try server.start()
        return (venue, server, base + Int64(minutes) * m)
    }

    @Test func klinesArePagedBackwardsAndMatchTheTrades() throws {
        let (venue, server, end) = try Self.venue(minutes: 1_300)
        defer { server.stop() }
        let client = BybitRESTClient(
            config: BybitRESTConfig(baseURL: "http://127.0.0.1:\(server.port)"),
            credentials: BybitCredentials(apiKey: "", apiSecret: ""))
        let history = BybitMarketHistory(client: client, instrument: .btcusdt)
        let from = end - 1_250 * Self.m
        let bars = try history.klines(from: from, to: end)
        // Two pages (1000 + 250), oldest first, no minute twice or missing.
        #expect(bars.count == 1_250)
        #expect(zip(bars, bars.dropFirst()).allSatisfy { $1.ts == $0.ts + Self.m })
        #expect(bars.first?.ts == from)
        // Each candle is what its minute's trades say, VWAP included (from the turnover).
        let candle = try #require(venue.candles.first { $0.start == from })
        #expect(bars[0].volume == candle.volume && bars[0].high == candle.h && bars[0].low == candle.l)
        #expect(bars.allSatisfy { $0.volume == 0 || $0.tickLots != nil })
        let recent = try history.recentTrades()
        #expect(recent.count == 1_000)
        #expect(zip(recent, recent.dropFirst()).allSatisfy { $0.ts <= $1.ts })
        #expect(recent.last == venue.recentTrades.last)
    }

    @Test func theSimulatorRefusesWhatBybitRefuses() throws {
        let (_, server, end) = try Self.venue(minutes: 3)
        defer { server.stop() }
        let client = BybitRESTClient(
            config: BybitRESTConfig(baseURL: "http://127.0.0.1:\(server.port)"),
            credentials: BybitCredentials(apiKey: "", apiSecret: ""))
        #expect(throws: BybitError.self) { try client.klines(interval: "1", start: Self.base, end: end, limit: 1001) }
        #expect(throws: BybitError.self) { try client.klines(interval: "1", start: end, end: Self.base) }
    }

    /// A paper engine on a fresh database at market time `now`, warmed from `history`.
    static func engine(dir: String, now: Int64, history: (any MarketHistory)?, overrides: [String] = []) throws
        -> AgentEngine
    {
        let resolved = try ConfigLoader.load(
            ConfigSelection(
                environment: "paper", directory: packageRoot.appendingPathComponent("config/environments").path,
                overrides: [
                    "value_area.rolling_window_minutes=30", "value_area.warmup_minutes=30", "value_area.min_va_bins=5",
                    "agent.require_manual_activation=false",
                ] + overrides))
        let settings = AgentConfiguration(resolved, environment: "warm-test")
        let sink = LogSink(output: .jsonLines, fd: open("/dev/null", O_WRONLY), environment: [:])
        let logger = Logger(label: "warm") { AgentLogHandler(label: $0, sink: sink) }
        let store = try AgentStore(directory: dir, instrument: settings.instrument)
        let engine = AgentEngine(
            settings: settings, store: store, board: StatusBoard(), logger: logger, sink: sink, webhook: nil,
            clock: MarketClock(speed: 1, anchorMarket: now, anchorWall: .now), version: "test",
            startedWall: .now)
        engine.marketHistory = history
        return engine
    }

    struct Recorded: MarketHistory {
        let bars: [KlineBar]
        let trades: [TradeEvent]
        func klines(from: Int64, to: Int64) throws -> [KlineBar] { bars.filter { $0.ts >= from && $0.ts < to } }
        func recentTrades() throws -> [TradeEvent] { trades }
    }

    struct Unreachable: MarketHistory {
        func klines(from: Int64, to: Int64) throws -> [KlineBar] { throw CommandError("connection refused") }
        func recentTrades() throws -> [TradeEvent] { [] }
    }

    /// Candles and trades of a generated market: one bar per minute, the last `recentMinutes` also as trades.
    static func recorded(minutes: Int, recentFrom: Int64) -> (Recorded, end: Int64) {
        var market = MarketGeneratorConfig()
        market.seed = 5
        market.startMs = base
        market.hours = Double(minutes) / 60
        var source = GeneratedMarket(config: market)
        var byMinute: [Int64: [TradeEvent]] = [:]
        var recent: [TradeEvent] = []
        while let e = source.next() {
            guard case .trade(let t) = e else { continue }
            byMinute[minuteStart(of: t.ts), default: []].append(t)
            if t.ts >= recentFrom { recent.append(t) }
        }
        let bars = byMinute.keys.sorted().compactMap { KlineBar(minute: $0, trades: byMinute[$0]!) }
        return (Recorded(bars: bars, trades: recent), base + Int64(minutes) * m)
    }

    @Test func aFirstStartIsWarmAtOnceVetoesEntriesAndARestartReplaysTheCandles() throws {
        let base = Self.base, m = Self.m
        let dir = NSTemporaryDirectory() + "warm-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (history, end) = Self.recorded(minutes: 60, recentFrom: base + 50 * m + 30_000)
        let now = end + 10_000
        let engine = try Self.engine(dir: dir, now: now, history: history)
        let restored = try engine.recover(wall: .now)
        #expect(restored.contains("warm start: "), "\(restored)")
        // Minutes 28–50 from candles (50 is only partly in the recent trades), 51–59 from trades: warm at once.
        #expect(engine.supervisor.state == .active)
        let f = try #require(engine.lastFeatures)
        #expect(f.ts == base + 59 * m)
        #expect(f.approximateMinutes == 21)  // the 30-minute window holds 30–59
        #expect(f.approximateShare > 0.5 && f.approximateShare < 1)
        // Entries wait while the share is above agent.max_approximate_va_share (0.5).
        #expect(engine.entryVeto == .approximateVA)
        let va = try #require(engine.valueAreaReport())
        #expect(va.approximateMinutes == 21 && va.approximateShare == f.approximateShare)
        // The features rows say where each minute came from; the candles and trades are stored for a restart.
        let rows = try engine.store.featureRows(from: 0)
        #expect(rows.count == 32)
        #expect(rows.filter { $0.source == "kline" }.map(\.ts) == (28...50).map { base + $0 * m })
        #expect(try engine.store.count("kline_minutes") == 23)
        #expect(try engine.store.count("trades") == history.trades.filter { $0.ts >= base + 51 * m }.count)

        let again = try Self.engine(dir: dir, now: now + 1_000, history: nil)
        let second = try again.recover(wall: .now)
        #expect(second.contains("23 stored kline minutes"), "\(second)")
        #expect(again.lastFeatures?.approximateShare == f.approximateShare)
        #expect(again.lastFeatures?.valueArea == f.valueArea)

        // A higher limit lets entries through.
        let lenient = try Self.engine(
            dir: dir, now: now + 2_000, history: nil, overrides: ["agent.max_approximate_va_share=0.9"])
        try lenient.recover(wall: .now)
        #expect(lenient.entryVeto == nil)
    }

    @Test func anUnreachableExchangeIsAlertedAndTheWindowWarmsFromLiveData() throws {
        let dir = NSTemporaryDirectory() + "warm-\(UUID().uuidString)"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let engine = try Self.engine(dir: dir, now: Self.base, history: Unreachable())
        let restored = try engine.recover(wall: .now)
        #expect(restored.contains("warm start failed"), "\(restored)")
        #expect(engine.supervisor.state == .warming)
        #expect(try engine.store.count("alerts") == 1)
    }
}

/// A first start of paper against the built-in simulator: warm from its klines at once, the approximate share
/// falling as live minutes arrive, entries vetoed meanwhile.
@Suite(.tags(.e2e), .serialized) struct WarmStartProcessTests {
    @Test func aFirstPaperStartIsReadyWithAValueAreaAndItsApproximateShareFalls() throws {
        let agent = try AgentProcess()
        // The default window (240 minutes) from 250 minutes of simulated history; the market at 120x.
        try agent.start(env: "paper", ["--set", "exchange.public_ws_url=sim", "--set", "sim.speed=120"])
        #expect(agent.waitForState("observing", seconds: 60), "\(agent.log.suffix(2_000))")
        let first = try #require(try agent.json(["va"], as: ValueAreaReport.self))
        #expect(first.minutesInWindow == 240 && first.poc != nil, "\(first)")
        #expect(first.approximateShare > 0.9 && first.approximateMinutes > 200, "\(first)")
        let ready = try #require(agent.events("agent.ready").first)
        let warm = try #require(agent.events("warm.exchange").first)
        #expect((warm["klines"] as? String).flatMap(Int.init) ?? 0 >= 240, "\(warm)")
        print("first paper start: ready after \(ready["ready_ms"] ?? "?") ms, warm start \(warm["ms"] ?? "?") ms")
        // Live minutes replace the klines' minutes one by one.
        #expect(
            agent.wait(seconds: 60) {
                ((try? agent.json(["va"], as: ValueAreaReport.self))?.approximateMinutes ?? 999) <= first
                    .approximateMinutes - 5
            })
        let later = try #require(try agent.json(["va"], as: ValueAreaReport.self))
        #expect(later.approximateShare < first.approximateShare)
        let status = try agent.ctl(["status"])
        #expect(status.stdout.contains("from klines"), "\(status.stdout)")
        #expect(agent.terminate() == 0)
        // Restarted, the klines' minutes are replayed from the store: still approximate, no new warm start needed.
        let again = try AgentProcess(directory: agent.directory)
        try again.start(env: "paper", ["--set", "exchange.public_ws_url=sim", "--set", "sim.speed=120"])
        #expect(again.waitForState("observing", seconds: 60), "\(again.log.suffix(2_000))")
        let replayed = try #require(try again.json(["va"], as: ValueAreaReport.self))
        #expect(
            replayed.approximateMinutes > 0 && replayed.approximateMinutes <= later.approximateMinutes, "\(replayed)")
        #expect(again.terminate() == 0)
    }
}
