import ControlProtocol
import Engine
import Exchange
import ExchangeStreams
import Foundation
import Logging
import Testing

@testable import AgentCLI
@testable import AgentConfig
@testable import AgentSupport
@testable import Daemon
@testable import Research
@testable import Simulator

/// Live (or shadow) mode in one process: an `AgentEngine` and its `ExchangeMirror` (REST worker and private
/// stream, the daemon's own code) against a `SimVenue` on loopback. The test feeds the generated market to the venue
/// and the engine in lockstep and steps the engine with whatever the venue reported, as the daemon's loop does. A
/// restart is a new engine on the same database and the same venue, which the built-in simulator of a process
/// cannot offer (it starts afresh with the agent). Waiting never blocks the test's thread (it sleeps as a task), so
/// the async tests that share the process keep the cooperative pool.
final class LiveHarness: @unchecked Sendable {
    let venue: SimVenue
    let server: SimHTTPServer
    let dir: String
    let logPath: String
    let mode: String
    let overrides: [String]
    var market: GeneratedMarket
    var engine: AgentEngine!
    var mirror: ExchangeMirror!
    /// The engine's exchange venue (its books, its stream state).
    var exchange: ExchangeVenue { engine.venue as! ExchangeVenue }
    var queue = EventQueue()
    private var logFD: Int32 = -1
    /// How long a start retries an unreachable venue (nil: the engine's default).
    var startRetryMs: Int64?
    /// Activate whenever the agent waits in observing while the market runs.
    var autoActivate = true
    /// Market ms per wall ms while running (nil: as fast as the engine goes). The chaos soak paces the market so
    /// that the wall-clock limits (stream death, re-reads, the unprotected limit) mean what they mean in production.
    var speed: Double?
    private var paceAnchor: (market: Int64, wall: Int64)?
    /// Called after every market second (the chaos soak's schedule and measurements).
    var everySecond: ((LiveHarness) async -> Void)?
    /// Market time of the last event fed.
    private(set) var marketTs: Int64 = 0

    /// The configuration every harness run uses: a 30-minute window, short holds, live armed, the venue's URLs.
    let streamDeadAfterMs: Int64

    init(mode: String = "live", seed: UInt64 = 7, overrides: [String] = [], streamDeadAfterMs: Int64 = 2_000) throws {
        self.streamDeadAfterMs = streamDeadAfterMs
        var venueConfig = SimVenueConfig()
        venueConfig.rateLimitPerSecond = 10_000
        venue = SimVenue(config: venueConfig)
        server = venue.makeServer()
        try server.start()
        dir = NSTemporaryDirectory() + "live-harness-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        logPath = dir + "/agent.log"
        self.mode = mode
        self.overrides = overrides
        var config = MarketGeneratorConfig()
        config.seed = seed
        config.hours = 24 * 30
        config.startMs = minuteStart(of: wallClockMillis()) - 100 * 60_000
        market = GeneratedMarket(config: config)
    }

    deinit {
        server.stop()
        // AUCTION_KEEP_HARNESS keeps the database and the log for reading after a failed soak.
        if ProcessInfo.processInfo.environment["AUCTION_KEEP_HARNESS"] == nil {
            try? FileManager.default.removeItem(atPath: dir)
        }
    }

    var restURL: String { "http://127.0.0.1:\(server.port)" }

    /// A fresh engine on the harness's database, recovered and reconciled against the venue; the mirror started.
    func start() throws {
        let port = server.port
        let all =
            [
                "agent.mode=\(mode)", "live.armed=true", "value_area.rolling_window_minutes=30",
                "value_area.warmup_minutes=30",
                "value_area.min_va_bins=5", "risk.max_hold_minutes=5", "risk.extend_if_profitable=false",
                "agent.require_manual_activation=false", "exchange.rest_url=http://127.0.0.1:\(port)",
                "exchange.private_ws_url=ws://127.0.0.1:\(port)/v5/private", "shadow.rest_url=http://127.0.0.1:\(port)",
                "shadow.private_ws_url=ws://127.0.0.1:\(port)/v5/private",
            ] + overrides
        let resolved = try ConfigLoader.load(
            ConfigSelection(
                environment: mode, directory: packageRoot.appendingPathComponent("config/environments").path,
                overrides: all))
        let settings = AgentConfiguration(resolved, environment: "harness")
        logFD = open(logPath, O_WRONLY | O_CREAT | O_APPEND, 0o644)
        let sink = LogSink(output: .jsonLines, fd: logFD, environment: [:])
        let logger = Logger(label: "harness") { AgentLogHandler(label: $0, sink: sink) }
        let store = try AgentStore(directory: dir, instrument: settings.instrument)
        queue = EventQueue()
        engine = AgentEngine(
            settings: settings, store: store, board: StatusBoard(), logger: logger, sink: sink, webhook: nil,
            clock: MarketClock(speed: 1, anchorMarket: marketTs == 0 ? 0 : marketTs, anchorWall: .now),
            version: "test", startedWall: .now)
        var rest = BybitRESTConfig(baseURL: restURL)
        rest.backoffBaseMs = 10
        // As the daemon has them: the order lane's client waits 10 s for a reply, the protective lane's (stops, cancels,
        // exits, flatten) has its own connection and a short timeout.
        let (client, protective) = ExchangeMirror.laneClients(
            rest: rest, credentials: BybitCredentials(apiKey: "sim-key", apiSecret: "sim-secret"),
            orderTransport: CurlTransport(connectTimeoutMs: 1_000, totalTimeoutMs: 10_000),
            protectiveTransport: CurlTransport(connectTimeoutMs: 1_000, totalTimeoutMs: 1_000), logger: logger,
            onAlert: { _ in })
        var stream = StreamSettings(url: "ws://127.0.0.1:\(port)/v5/private")
        stream.pingIntervalMs = 500
        stream.deadAfterMs = streamDeadAfterMs
        stream.reconnectBaseMs = 100
        stream.reconnectCapMs = 500
        mirror = ExchangeMirror(
            client: client, protectiveClient: protective, instrument: settings.instrument, privateSettings: stream,
            credentials: BybitCredentials(apiKey: "sim-key", apiSecret: "sim-secret"), queue: queue, logger: logger)
        mirror.notReceivedAfterMs = 2_000
        engine.trade(on: mirror)
        if let startRetryMs { engine.startRetryMs = startRetryMs }
        try engine.recover(wall: .now)
        mirror.start()
    }

    /// Graceful stop (snapshot written), as SIGTERM does.
    func stop() {
        let stopped = OneShot<Data>()
        _ = engine.step([.stop(reason: "test", done: { stopped.set(Data()) })], wall: .now)
        #expect(stopped.value != nil)
        mirror.stop(deadlineMs: 2_000)
        close(logFD)
    }

    /// A crash: the mirror's worker and stream stop, nothing more is written.
    func kill() {
        mirror.stop(deadlineMs: 0)
        close(logFD)
    }

    /// Feeds `minutes` of market to the venue and the engine, stepping the engine with the venue's reports after
    /// every market second, and waiting for the venue whenever an order or a stop is on its way.
    func run(minutes: Double, until done: (LiveHarness) -> Bool = { _ in false }) async {
        guard let first = market.peek() else { return }
        let end = (marketTs == 0 ? first.ts : marketTs) + Int64(minutes * 60_000)
        var inputs: [EngineInput] = []
        var trades: [TradeEvent] = []
        var second = first.ts / 1000
        while let e = market.peek(), e.ts < end {
            _ = market.next()
            venue.onMarket(e)
            marketTs = e.ts
            switch e {
            case .trade(let t): trades.append(t)
            case .quote(let q):
                if !trades.isEmpty { inputs.append(.trades(trades, wall: .now)); trades = [] }
                inputs.append(.quote(q, wall: .now))
            }
            if e.ts / 1000 != second {
                second = e.ts / 1000
                if !trades.isEmpty { inputs.append(.trades(trades, wall: .now)); trades = [] }
                inputs.append(.tick(wall: .now))
                _ = engine.step(inputs + queue.takeAll(timeoutMs: 0), wall: .now)
                inputs = []
                await settle()
                await pace()
                await everySecond?(self)
                // The operator activates once the window is warm (live always waits for it).
                if autoActivate && engine.supervisor.state == .observing { await command(.activate) }
                if done(self) { return }
                await Task.yield()
            }
        }
        if !trades.isEmpty { inputs.append(.trades(trades, wall: .now)) }
        _ = engine.step(inputs + queue.takeAll(timeoutMs: 0), wall: .now)
        await settle()
    }

    /// Waits (stepping the engine with reports and ticks) until the market is no further ahead of the wall clock
    /// than `speed` allows.
    private func pace() async {
        guard let speed else { return }
        let anchor = paceAnchor ?? (marketTs, wallClockMillis())
        paceAnchor = anchor
        let due = anchor.wall + Int64(Double(marketTs - anchor.market) / speed)
        while wallClockMillis() < due {
            _ = engine.step(queue.takeAll(timeoutMs: 0) + [.tick(wall: .now)], wall: .now)
            try? await Task.sleep(for: .milliseconds(min(20, max(1, due - wallClockMillis()))))
        }
    }

    /// Steps the engine with the venue's reports until nothing of ours is on its way (at most 20 s).
    /// Steps the engine until no call to the venue is waiting for its answer (a resting limit order waits for the
    /// market, not for a reply: settling on it would stop the market it waits for), at most 20 s.
    func settle() async {
        let deadline = wallClockMillis() + 20_000
        while wallClockMillis() < deadline {
            let busy =
                exchange.state.book.hasUnansweredOrders || exchange.state.stopInFlight
                || exchange.state.resyncInFlight
                || exchange.state.flattenAsked && exchange.state.flattenResult == nil
            let got = queue.takeAll(timeoutMs: 0)
            _ = engine.step(got + [.tick(wall: .now)], wall: .now)
            if !busy && got.isEmpty { return }
            if got.isEmpty { try? await Task.sleep(for: .milliseconds(5)) }
        }
    }

    /// Steps the engine (ticks and reports, no market) until `condition` holds; false after `seconds`.
    func wait(seconds: Double = 30, _ condition: (LiveHarness) -> Bool) async -> Bool {
        let deadline = wallClockMillis() + Int64(seconds * 1000)
        while wallClockMillis() < deadline {
            if condition(self) { return true }
            _ = engine.step(queue.takeAll(timeoutMs: 0) + [.tick(wall: .now)], wall: .now)
            try? await Task.sleep(for: .milliseconds(10))
        }
        return condition(self)
    }

    /// An operator command, answered synchronously.
    @discardableResult
    func command(_ cmd: ControlCommand, args: [String: ControlArg]? = nil) async -> String {
        let box = OneShot<Data>()
        let call = ControlCall(request: ControlRequest(id: 1, cmd: cmd.rawValue, args: args), command: cmd, peerUid: 0)
        { box.set($0) }
        _ = engine.step([.command(call)], wall: .now)
        _ = await wait(seconds: 30) { _ in box.value != nil }
        return box.value.map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    func fault(_ json: String) throws {
        let reply = try CurlTransport().send(
            method: "POST", url: restURL + "/sim/faults", headers: ["Content-Type: application/json"],
            body: Array(json.utf8))
        #expect(reply.status == 200)
    }

    /// The venue's signed position in lots.
    var venuePosition: Lots { venue.lock.withLock { venue.positionLots } }
    /// The stop the venue holds.
    var venueStop: Ticks? { venue.lock.withLock { venue.stopLoss } }
    var state: String { engine.supervisor.state.rawValue }

    /// Log lines with this `event`.
    func events(_ name: String) -> [[String: Any]] {
        guard let text = try? String(contentsOfFile: logPath, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap { line in
            guard let o = (try? JSONSerialization.jsonObject(with: Data(line.utf8))) as? [String: Any],
                o["event"] as? String == name
            else { return nil }
            return o
        }
    }

    func alerts(_ kind: String) -> [[String: Any]] {
        events("alert.raised").filter { $0["alert.kind"] as? String == kind }
    }

    /// Trades the market (activated) until the agent holds a position that the exchange holds too, with its stop.
    func tradeUntilPositionIsProtected(maxMinutes: Double = 600) async -> Bool {
        await run(minutes: maxMinutes) { h in
            h.engine.trader.position != nil && h.venuePosition != 0 && h.venueStop != nil
                && !h.exchange.state.book.hasOrdersInFlight
        }
        return engine.trader.position != nil && venueStop != nil
    }
}
