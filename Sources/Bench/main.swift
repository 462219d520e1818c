import AgentConfig
import AgentSupport
import ControlProtocol
import Daemon
import Engine
import Exchange
import ExchangeStreams
import Foundation
import Logging
import MarketData
import Research
import Simulator
import Synchronization

// `bench`: the speed figures of docs/BENCHMARKS.md. Build in release and run on an idle machine:
//     swift run -c release bench [--hours H] [--seed S] [--repeat N]
// Everything runs on one thread (one core).

var hours = 24.0
var seed: UInt64 = 1
var repeats = 3
/// `--dashboard`: only the operator window's figures (section 12).
var dashboardOnly = false
var arguments = CommandLine.arguments.dropFirst()
while let flag = arguments.popFirst() {
    if flag == "--dashboard" {
        dashboardOnly = true
        continue
    }
    if flag == "--report-month" {
        // Only the report budget (issue 27): a month of minutes in report.html, opened in Chromium.
        try reportMonthBench(days: 30)
        exit(0)
    }
    guard let value = arguments.popFirst() else {
        FileHandle.standardError.write(Data("bench: \(flag) needs a value\n".utf8))
        exit(2)
    }
    switch flag {
    case "--hours": hours = Double(value) ?? hours
    case "--seed": seed = UInt64(value) ?? seed
    case "--repeat": repeats = max(1, Int(value) ?? repeats)
    default:
        FileHandle.standardError.write(
            Data("usage: bench [--hours H] [--seed S] [--repeat N] [--dashboard | --report-month]\n".utf8))
        exit(2)
    }
}

func now() -> Double {
    var t = timespec()
    clock_gettime(CLOCK_MONOTONIC, &t)
    return Double(t.tv_sec) + Double(t.tv_nsec) / 1e9
}

func report(_ name: String, _ value: String) {
    // Written at once, so a run cut short still shows what it measured.
    FileHandle.standardOutput.write(Data("| \(name) | \(value) |\n".utf8))
}

var settings = MarketGeneratorConfig()
settings.hours = hours
settings.seed = seed
var generator = MarketGenerator(config: settings)
let (trades, quotes) = generator.generateAll()
var events: [MarketEvent] = []
events.reserveCapacity(trades.count + quotes.count)
mergeEvents(trades: trades, quotes: quotes) { events.append($0) }
FileHandle.standardOutput.write(
    Data(
        "bench: \(formatNumber(hours)) h synthetic market, seed \(seed): \(trades.count) trades, \(quotes.count) quotes\n\n| measure | figure |\n| --- | --- |\n"
            .utf8))

/// The market as the daemon feeds the engine: the trades between two quotes in one input, batches of 8 inputs.
/// With `ticking`, a tick every 100 ms of wall time joins the batch, with that engine's market time set to the data
/// (the replay runs faster than real time). `each` sees every event first; `body` gets each batch and the event that
/// completed it.
@MainActor func daemonBatches(
    ticking engine: AgentEngine? = nil, each: (MarketEvent) -> Void = { _ in },
    _ body: (_ batch: [EngineInput], _ last: MarketEvent) -> Void
) {
    var batch: [EngineInput] = []
    var pendingTrades: [TradeEvent] = []
    var lastTick = now()
    for e in events {
        each(e)
        switch e {
        case .trade(let t): pendingTrades.append(t)
        case .quote(let q):
            if !pendingTrades.isEmpty {
                batch.append(.trades(pendingTrades, wall: .zero)); pendingTrades.removeAll(keepingCapacity: true)
            }
            batch.append(.quote(q, wall: .now))
        }
        if batch.count >= 8 {
            if let engine, now() - lastTick >= 0.1 {
                lastTick = now()
                engine.clock = MarketClock(speed: 1, anchorMarket: e.ts, anchorWall: .now)
                batch.append(.tick(wall: .now))
            }
            body(batch, e)
            batch.removeAll(keepingCapacity: true)
        }
    }
}

// 12. The operator's window: the minute-close step with no page and with ten pages on the dashboard's event stream
//     (the HTTP server on the engine's board, each page a socket reading every frame), the engine fed as the daemon
//     feeds it with a tick every 100 ms of wall time (each tick publishes); then `/metrics` scrape time and size.
@MainActor func dashboardFigures() throws {
    func eventStream(_ port: Int) -> Int32 {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var addr = sockaddr_in()
        addr.sin_family = sa_family_t(AF_INET)
        addr.sin_port = in_port_t(UInt16(port).bigEndian)
        addr.sin_addr.s_addr = inet_addr("127.0.0.1")
        _ = withUnsafePointer(to: &addr) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        let request = Array("GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".utf8)
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        return fd
    }
    for pages in [0, 10, 0, 10] {
        let dir = NSTemporaryDirectory() + "bench-dash-\(getpid())-\(pages)"
        try? FileManager.default.removeItem(atPath: dir)
        let board = StatusBoard()
        let (engine, store, logger) = try benchEngine(
            dir, overrides: ["agent.mode=paper", "agent.require_manual_activation=false"], board: board)
        try engine.recover(wall: .now)
        var http: OperatorHTTP?
        var server: Task<Void, any Error>?
        var readers: [Thread] = []
        var fds: [Int32] = []
        let received = ManagedCounter()
        if pages > 0 {
            let h = try OperatorHTTP(
                address: ListenAddress("127.0.0.1:0")!, token: nil, board: board, store: store, metrics: engine.metrics,
                instrument: engine.settings.instrument,
                thresholds: DashboardThresholds(strategy: engine.settings.strategy), logger: logger)
            server = h.serveInBackground()
            guard let port = h.waitUntilListening(ms: 10_000) else {
                throw CommandError("the bench's HTTP server did not listen")
            }
            for _ in 0..<pages {
                let fd = eventStream(port)
                fds.append(fd)
                let t = Thread {
                    var buffer = [UInt8](repeating: 0, count: 1 << 16)
                    while true {
                        let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
                        if n <= 0 { return }
                        received.add(n)
                    }
                }
                t.start()
                readers.append(t)
            }
            http = h
        }
        var closeTimes: [Double] = []
        let t0 = now()
        daemonBatches(ticking: engine) { batch, _ in
            let minute = engine.lastMinute
            let s = now()
            _ = engine.step(batch, wall: .now)
            if engine.lastMinute != minute { closeTimes.append(now() - s) }
        }
        let seconds = now() - t0
        closeTimes.sort()
        report(
            "dashboard: minute-close step with \(pages) page\(pages == 1 ? "" : "s") on the event stream",
            String(
                format: "p50 %.2f ms, p99 %.2f ms over %d minutes (%.0f s run; pages received %.1f MB)",
                Distribution.quantile(closeTimes, 0.5) * 1e3, Distribution.quantile(closeTimes, 0.99) * 1e3,
                closeTimes.count, seconds,
                Double(received.value) / 1e6))
        if let h = http, pages == 10, let port = h.port {
            let transport = CurlTransport(connectTimeoutMs: 1_000, totalTimeoutMs: 5_000)
            var times: [Double] = []
            var size = 0
            for _ in 0..<1_000 {
                let s = now()
                let r = try transport.send(
                    method: "GET", url: "http://127.0.0.1:\(port)/metrics", headers: [], body: nil)
                times.append(now() - s)
                size = r.body.count
            }
            times.sort()
            report(
                "/metrics scrape (loopback, libcurl, one connection)",
                String(
                    format: "p50 %.2f ms, p99 %.2f ms over %d scrapes; %d bytes, %d lines",
                    Distribution.quantile(times, 0.5) * 1e3,
                    Distribution.quantile(times, 0.99) * 1e3, times.count, size,
                    (try transport.send(method: "GET", url: "http://127.0.0.1:\(port)/metrics", headers: [], body: nil))
                        .body.filter { $0 == 0x0A }.count))
        }
        for fd in fds { shutdown(fd, Int32(SHUT_RDWR)); close(fd) }
        server?.cancel()
        _ = engine.step([.stop(reason: "bench", done: {})], wall: .now)
        store.flushRaw()
        try? FileManager.default.removeItem(atPath: dir)
    }
}

final class ManagedCounter: Sendable {
    private let n = Mutex(0)
    func add(_ k: Int) { n.withLock { $0 += k } }
    var value: Int { n.withLock { $0 } }
}

if dashboardOnly {
    try dashboardFigures()
    exit(0)
}

// 1. Feature pipeline throughput on in-memory events, and 2. the minute close: the event that closes a minute pays
// for the bar, profile update, rebucket and value area. Both with the default value-area parameters (alpha_bin
// 0.25, base_bin_ticks 1, bin_width_max_ticks 200) and with the coarser 0.1 / 5 / 500 of docs/FEATURES.md's tuning
// note, whose base histogram has a fifth of the bins.
var coarse = FeatureConfig.defaults
(coarse.alphaBin, coarse.baseBinTicks, coarse.binWidthMaxTicks) = (0.1, 5, 500)
for (label, featureConfig) in [("", FeatureConfig.defaults), (", value area 0.1 / 5 / 500", coarse)] {
    var best = Double.infinity
    var widths: [Int64] = []
    for _ in 0..<repeats {
        var pipeline = FeaturePipeline(config: featureConfig)
        let t0 = now()
        for e in events { pipeline.process(e) }
        pipeline.finish()
        let dt = now() - t0
        let closed = pipeline.takeClosed()
        precondition(closed.count >= Int(hours * 60))
        widths = closed.map(\.binTicks).sorted()
        best = min(best, dt)
    }
    report(
        "feature pipeline, in-memory events\(label)",
        String(
            format: "%.2f M events/s (%d events in %.3f s, best of %d; median bin width %d ticks)",
            Double(events.count) / best / 1e6, events.count, best, repeats, widths[widths.count / 2]))

    var closes: [Double] = []
    var pipeline = FeaturePipeline(config: featureConfig)
    for e in events {
        if pipeline.hasStarted && e.ts >= pipeline.openMinute + millisPerMinute {
            let t0 = now()
            pipeline.process(e)
            closes.append(now() - t0)
            _ = pipeline.takeClosed()
        } else {
            pipeline.process(e)
        }
    }
    closes.sort()
    report(
        "minute close (profile update, rebucket, value area)\(label)",
        String(
            format: "p50 %.1f µs, p99 %.1f µs, max %.1f µs over %d closes", Distribution.quantile(closes, 0.5) * 1e6,
            Distribution.quantile(closes, 0.99) * 1e6, closes.last! * 1e6, closes.count))
}

// 3. CSV ingestion and 4. the whole day from CSV to the features file.
let dir = FileManager.default.temporaryDirectory.appendingPathComponent("auction-bench-\(getpid())")
try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
defer { try? FileManager.default.removeItem(at: dir) }
let tradesPath = dir.appendingPathComponent("trades.csv").path
let quotesPath = dir.appendingPathComponent("quotes.csv").path
var tw = try RecordingWriter(path: tradesPath, header: RecordingWriter.tradesHeader, instrument: .btcusdt)
for t in trades { try tw.write(t) }
try tw.close()
var qw = try RecordingWriter(path: quotesPath, header: RecordingWriter.quotesHeader, instrument: .btcusdt)
for q in quotes { try qw.write(q) }
try qw.close()
let bytes = Double(
    (try FileManager.default.attributesOfItem(atPath: tradesPath)[.size] as! Int)
        + (try FileManager.default.attributesOfItem(atPath: quotesPath)[.size] as! Int))

var bestRead = Double.infinity
for _ in 0..<repeats {
    let t0 = now()
    let t = try readTrades(path: tradesPath, instrument: .btcusdt)
    let q = try readQuotes(path: quotesPath, instrument: .btcusdt)
    bestRead = min(bestRead, now() - t0)
    precondition(t.trades.count == trades.count && q.quotes.count == quotes.count)
}
report(
    "CSV ingestion (read + parse + sort check)",
    String(format: "%.0f MB/s (%.1f MB in %.3f s, best of %d)", bytes / bestRead / 1e6, bytes / 1e6, bestRead, repeats))

let config = try ConfigLoader.load(ConfigSelection(), defaultEnvironment: nil)
var bestDay = Double.infinity
for _ in 0..<repeats {
    let t0 = now()
    _ = try runFeatures(
        tradesPath: tradesPath, quotesPath: quotesPath, outPath: dir.appendingPathComponent("features.csv").path,
        config: config, options: ReadOptions())
    bestDay = min(bestDay, now() - t0)
}
report("CSV to features file, whole run", String(format: "%.2f s wall (best of %d)", bestDay, repeats))

// 5. Full backtest (features + signals + fills) on in-memory events, and from CSV to every output file.
var bestBacktest = Double.infinity
var roundTrips = 0
for _ in 0..<repeats {
    var bt = Backtester(features: FeatureConfig.defaults, strategy: StrategyConfig.defaults, instrument: .btcusdt)
    let t0 = now()
    for e in events { bt.process(e) }
    bt.finish()
    bestBacktest = min(bestBacktest, now() - t0)
    roundTrips = bt.trader.roundTrips.count
}
report(
    "full backtest, in-memory events",
    String(
        format: "%.2f M events/s (%d events in %.3f s, %d round trips, best of %d)",
        Double(events.count) / bestBacktest / 1e6, events.count, bestBacktest, roundTrips, repeats))

var bestBacktestDay = Double.infinity
for _ in 0..<repeats {
    let t0 = now()
    let t = try readTrades(path: tradesPath, instrument: .btcusdt)
    let q = try readQuotes(path: quotesPath, instrument: .btcusdt)
    let result = runBacktest(
        trades: t.trades, quotes: q.quotes, features: FeatureConfig.defaults, strategy: StrategyConfig.defaults,
        instrument: .btcusdt)
    try writeBacktest(
        result, to: dir.appendingPathComponent("bt").path, instrument: .btcusdt, initialEquity: 10_000, title: "bench")
    bestBacktestDay = min(bestBacktestDay, now() - t0)
}
report("CSV to backtest outputs, whole run", String(format: "%.2f s wall (best of %d)", bestBacktestDay, repeats))

// 6. Grid search scaling: the same 8-run grid (2 feature sets x 4 strategy variants) with 1 and 2 workers.
let gridSpec = try GridSpec.parse(
    yaml: "parameters:\n  value_area.va_fraction: [0.68, 0.72]\n  sizing.risk_pct: [0.01, 0.015, 0.02, 0.025]\n",
    source: "bench")
var gridTimes: [Int: Double] = [:]
for workers in [1, 2] {
    var best = Double.infinity
    for _ in 0..<repeats {
        let t0 = now()
        let outcomes = try runGrid(gridSpec, base: config, trades: trades, quotes: quotes, workers: workers)
        precondition(outcomes.count == 8)
        best = min(best, now() - t0)
    }
    gridTimes[workers] = best
}
report(
    "grid search, 8 runs (2 feature sets)",
    String(
        format: "1 worker %.2f s, 2 workers %.2f s: %.2fx (best of %d)", gridTimes[1]!, gridTimes[2]!,
        gridTimes[1]! / gridTimes[2]!, repeats))

// 7. Bybit stream decoding: publicTrade messages (1-3 trades each, as the exchange batches them at this rate).
do {
    let venue = SimVenue()
    var texts: [String] = []
    var k = 0
    var i = 0
    while texts.count < 200_000 {
        let n = 1 + (k % 3)
        k += 1
        let batch = Array(trades[i..<min(i + n, trades.count)])
        i = (i + n) % (trades.count - 4)
        texts.append(venue.publicTradeMessage(batch, now: batch[0].ts))
    }
    let parser = PublicMessageParser(instrument: .btcusdt)
    var bestDecode = Double.infinity
    for _ in 0..<repeats {
        let t0 = now()
        var count = 0
        for t in texts { if case .trades(let batch, _) = try parser.parse(t) { count += batch.count } }
        bestDecode = min(bestDecode, now() - t0)
        precondition(count > 0)
    }
    report(
        "publicTrade message decode",
        String(
            format: "%.0f k messages/s (%d messages in %.3f s, best of %d)", Double(texts.count) / bestDecode / 1e3,
            texts.count, bestDecode, repeats))
}

// 8. Signed REST round trip to the simulator on loopback (wallet balance: signature checked by the venue).
//    The venue's rate limit is lifted: this measures the round trip, not waits for a limit reset.
var unlimited = SimVenueConfig()
unlimited.rateLimitPerSecond = 1_000_000
do {
    let venue = SimVenue(config: unlimited)
    for e in events.prefix(100_000) { venue.onMarket(e) }
    let server = venue.makeServer()
    try server.start()
    defer { server.stop() }
    let client = BybitRESTClient(
        config: BybitRESTConfig(baseURL: "http://127.0.0.1:\(server.port)"),
        credentials: BybitCredentials(apiKey: "sim-key", apiSecret: "sim-secret"))
    var times: [Double] = []
    for n in 0..<2_000 {
        let t0 = now()
        if n % 2 == 0 { _ = try client.walletBalance() } else { _ = try client.positions() }
        times.append(now() - t0)
    }
    times.sort()
    report(
        "signed REST round trip to the simulator (loopback)",
        String(
            format: "p50 %.0f µs, p99 %.0f µs over %d calls", Distribution.quantile(times, 0.5) * 1e6,
            Distribution.quantile(times, 0.99) * 1e6, times.count))
}

/// An agent engine over a fresh database in `dir` (config `sim` plus `overrides`), logging to /dev/null, its clock
/// at the bench market's end (so no tick closes minutes the market has not reached).
@MainActor func benchEngine(_ dir: String, overrides: [String], board: StatusBoard = StatusBoard()) throws -> (
    AgentEngine, AgentStore, Logger
) {
    let resolved = try ConfigLoader.load(
        ConfigSelection(environment: "sim", directory: "config/environments", overrides: overrides))
    let settings = AgentConfiguration(resolved, environment: "bench")
    let sink = LogSink(output: .jsonLines, fd: open("/dev/null", O_WRONLY), environment: [:])
    let logger = Logger(label: "bench") { AgentLogHandler(label: $0, sink: sink) }
    let store = try AgentStore(directory: dir, instrument: settings.instrument)
    let engine = AgentEngine(
        settings: settings, store: store, board: board, logger: logger, sink: sink, webhook: nil,
        clock: MarketClock(speed: 1, anchorMarket: events.last?.ts ?? 0, anchorWall: .now),
        version: agentVersion, startedWall: .now)
    return (engine, store, logger)
}

// 10. The agent's engine in-process: the whole market through `AgentEngine.step` as the daemon feeds it (batches
//     of WebSocket-sized inputs), SQLite writes included. Minute-close steps (features, decision, records written
//     before anything is sent) and those that placed an order; resident memory after the whole market; a restart
//     (snapshot + full window rebuilt from the store); `status` round trips over the control socket.
do {
    let dir = NSTemporaryDirectory() + "bench-agent-\(getpid())"
    try? FileManager.default.removeItem(atPath: dir)
    let overrides = ["agent.mode=paper", "agent.require_manual_activation=false"]
    let board = StatusBoard()
    let (engine, store, logger) = try benchEngine(dir, overrides: overrides, board: board)
    try engine.recover(wall: .now)
    var closeTimes: [Double] = []
    var orderTimes: [Double] = []
    let t0 = now()
    daemonBatches { batch, _ in
        let minute = engine.lastMinute
        let submitted = engine.trader.workingEntryOrder?.id
        let s = now()
        _ = engine.step(batch, wall: .now)
        let dt = now() - s
        if engine.lastMinute != minute {
            closeTimes.append(dt)
            if let id = engine.trader.workingEntryOrder?.id ?? engine.trader.position.map({ _ in "pos" }),
                id != submitted,
                engine.lastSignal?.action != .hold
            {
                orderTimes.append(dt)
            }
        }
    }
    let engineSeconds = now() - t0
    store.flushRaw()
    closeTimes.sort()
    orderTimes.sort()
    report(
        "agent engine: \(formatNumber(hours)) h market through AgentEngine.step (paper, SQLite writes)",
        String(format: "%.1f s (%.0f events/s)", engineSeconds, Double(events.count) / engineSeconds))
    report(
        "agent engine: minute-close step (features, decision, records committed)",
        String(
            format: "p50 %.2f ms, p99 %.2f ms over %d minutes", Distribution.quantile(closeTimes, 0.5) * 1e3,
            Distribution.quantile(closeTimes, 0.99) * 1e3, closeTimes.count))
    if !orderTimes.isEmpty {
        report(
            "agent engine: bar close → order recorded and handed to the venue",
            String(
                format: "p50 %.2f ms, p99 %.2f ms over %d orders", Distribution.quantile(orderTimes, 0.5) * 1e3,
                Distribution.quantile(orderTimes, 0.99) * 1e3, orderTimes.count))
    }

    // Restart: a new engine on the same database, as after kill -9.
    _ = engine.step([.stop(reason: "bench", done: {})], wall: .now)
    let r0 = now()
    let (restarted, _, _) = try benchEngine(dir, overrides: overrides)
    let restored = try restarted.recover(wall: .now)
    report(
        "agent restart: snapshot + window rebuilt from the store → ready",
        String(format: "%.0f ms (%@)", (now() - r0) * 1e3, restored))

    // Control socket: status round trips on one connection.
    let sockPath = dir + "/c.sock"
    let server = ControlServer(
        path: sockPath, board: board, store: store, queue: EventQueue(), logger: logger,
        versionInfo: VersionReport(version: agentVersion, environment: "bench", mode: "paper", pid: getpid()))
    try await server.start()
    let serving = server.serveInBackground()
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    var addr = unixSocketAddress(sockPath)!
    _ = withUnsafePointer(to: &addr) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
            connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
        }
    }
    let request = Array(#"{"id":1,"cmd":"status"}"#.utf8) + [0x0A]
    var buffer = [UInt8](repeating: 0, count: 1 << 16)
    var rtt: [Double] = []
    for _ in 0..<5_000 {
        let s = now()
        _ = request.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        var got = 0
        while true {
            let n = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress! + got, $0.count - got, 0) }
            if n <= 0 { break }
            got += n
            if buffer[got - 1] == 0x0A { break }
        }
        rtt.append(now() - s)
    }
    close(fd)
    rtt.sort()
    report(
        "control socket: status request → reply",
        String(
            format: "p50 %.0f µs, p99 %.0f µs over %d requests",
            Distribution.quantile(rtt, 0.5) * 1e6, Distribution.quantile(rtt, 0.99) * 1e6, rtt.count))
    server.stop()
    _ = try? await serving.value
    try? FileManager.default.removeItem(atPath: dir)
}

// 11. Live mode against the simulated venue on loopback: bar close → the order's REST request on the wire. The
//     engine, the venue mirror (worker thread, libcurl) and the private stream run as in the daemon; the transport
//     notes when each order-create request starts, and each is matched with the minute-close step that decided it.
final class TimedTransport: HTTPTransport, Sendable {
    let inner = CurlTransport()
    /// When each order-create request started: entries, and every create.
    let times = Mutex((creates: [Double](), allCreates: [Double]()))
    func send(method: String, url: String, headers: [String], body: [UInt8]?) throws(TransportError) -> HTTPReply {
        if url.hasSuffix("/v5/order/create"), let body {
            let t = now()
            // Entries are decided at a minute close (exits mostly on trades): those are timed from the close.
            let entry = String(decoding: body, as: UTF8.self).contains("\"at-e-")
            times.withLock {
                $0.allCreates.append(t)
                if entry { $0.creates.append(t) }
            }
        }
        return try inner.send(method: method, url: url, headers: headers, body: body)
    }
}
do {
    let dir = NSTemporaryDirectory() + "bench-live-\(getpid())"
    try? FileManager.default.removeItem(atPath: dir)
    let venue = SimVenue(config: unlimited)
    let server = venue.makeServer()
    try server.start(port: 0)
    let queue = EventQueue()
    let (engine, _, logger) = try benchEngine(dir, overrides: ["agent.mode=live", "live.armed=true"])
    let transport = TimedTransport()
    let credentials = BybitCredentials(apiKey: "sim-key", apiSecret: "sim-secret")
    let client = BybitRESTClient(
        config: BybitRESTConfig(baseURL: "http://127.0.0.1:\(server.port)"), credentials: credentials,
        transport: transport)
    let mirror = ExchangeMirror(
        client: client, instrument: engine.settings.instrument,
        privateSettings: StreamSettings(url: "ws://127.0.0.1:\(server.port)/v5/private"),
        credentials: credentials, queue: queue, logger: logger)
    engine.trade(on: mirror)
    try engine.recover(wall: .now)
    mirror.start()
    usleep(300_000)  // the private stream authenticates
    var closeStarts: [Double] = []
    var flattenTimes: [Double] = []
    var lastFlattened: Int64 = 0
    daemonBatches(each: { venue.onMarket($0) }) { inputs, e in
        let batch = inputs + queue.takeAll(timeoutMs: 0)
        let minute = engine.lastMinute
        let s = now()
        _ = engine.step(batch, wall: .now)
        if engine.lastMinute != minute { closeStarts.append(s) }
        // Live waits for the operator once warm.
        if engine.supervisor.state == .observing {
            let activate = ControlCall(
                request: ControlRequest(id: 0, cmd: "activate"), command: .activate, peerUid: 0, reply: { _ in })
            _ = engine.step([.command(activate)], wall: .now)
        }
        // Every position: the operator's flatten, timed from the command's arrival at the engine to the close order's
        // request on the wire; then resume.
        if let p = engine.trader.position, engine.supervisor.state == .active, p.entryTs != lastFlattened {
            lastFlattened = p.entryTs
            let mark = transport.times.withLock { $0.allCreates.count }
            let t0 = now()
            let call = ControlCall(
                request: ControlRequest(id: 1, cmd: "flatten", args: ["timeout": .number(5)]), command: .flatten,
                peerUid: 0, reply: { _ in })
            _ = engine.step([.command(call)], wall: .now)
            // The daemon's clock ticks drive the flatten to its end; here market time stands at the current event.
            engine.clock = MarketClock(speed: 1, anchorMarket: e.ts, anchorWall: .now)
            var spins = 0
            while spins < 2_000, engine.supervisor.state != .halted {
                usleep(500)
                spins += 1
                let reports = queue.takeAll(timeoutMs: 0)
                _ = engine.step(reports + [.tick(wall: .now)], wall: .now)
            }
            if let sent = transport.times.withLock({
                $0.allCreates.count > mark ? $0.allCreates[mark] : nil
            }) {
                flattenTimes.append(sent - t0)
            }
            let resume = ControlCall(
                request: ControlRequest(id: 2, cmd: "resume"), command: .resume, peerUid: 0, reply: { _ in })
            _ = engine.step([.command(resume)], wall: .now)
        }
        // Let the venue answer an order in flight before the market moves on (the daemon's market is live).
        if engine.trader.workingEntryOrder != nil || !engine.trader.workingExitOrders.isEmpty {
            var spins = 0
            while spins < 200, engine.trader.workingEntryOrder != nil || !engine.trader.workingExitOrders.isEmpty {
                usleep(1_000)
                spins += 1
                let reports = queue.takeAll(timeoutMs: 0)
                if !reports.isEmpty { _ = engine.step(reports, wall: .now) }
            }
        }
    }
    var wire: [Double] = []
    for t in transport.times.withLock({ $0.creates }) {
        if let s = closeStarts.last(where: { $0 <= t }) { wire.append(t - s) }
    }
    wire.sort()
    if wire.isEmpty {
        report("live: bar close → order request on the wire", "no orders in this market")
    } else {
        report(
            "live: bar close → entry order request on the wire (simulated venue, loopback)",
            String(
                format: "p50 %.2f ms, p99 %.2f ms over %d entries (%d round trips)",
                Distribution.quantile(wire, 0.5) * 1e3,
                Distribution.quantile(wire, 0.99) * 1e3, wire.count, engine.trader.roundTrips.count))
    }
    flattenTimes.sort()
    if !flattenTimes.isEmpty {
        report(
            "live: flatten command at the engine → reduce-only close on the wire (add the atctl process, 10–20 ms)",
            String(
                format: "p50 %.2f ms, p99 %.2f ms over %d flattens", Distribution.quantile(flattenTimes, 0.5) * 1e3,
                Distribution.quantile(flattenTimes, 0.99) * 1e3, flattenTimes.count))
    }
    FileHandle.standardError.write(
        Data(
            "bench live: final state \(engine.supervisor.state.rawValue) (\(engine.supervisor.reason)), last signal \(engine.lastSignal.map { "\($0.reason)" } ?? "-"), position \(engine.trader.position != nil), entry working \(engine.trader.workingEntryOrder?.id ?? "-"), exits \(engine.trader.workingExitOrders.map(\.id))\n"
                .utf8))
    mirror.stop(deadlineMs: 1_000)
    server.stop()
    try? FileManager.default.removeItem(atPath: dir)
}

// 9. Soak on loopback: 10,000 orders through the REST client, then 1,000 WebSocket drops and reconnects; open
//    descriptors and resident memory before and after.
func openDescriptors() -> Int { (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").count) ?? -1 }
func residentKB() -> Int {
    guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
        let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
    else { return -1 }
    return Int(line.split(separator: " ").dropFirst().first ?? "") ?? -1
}
if CommandLine.arguments.contains("--soak") || ProcessInfo.processInfo.environment["BENCH_SOAK"] == "1" {
    let venue = SimVenue(config: unlimited)
    for e in events.prefix(200_000) { venue.onMarket(e) }
    let server = venue.makeServer()
    try server.start()
    let client = BybitRESTClient(
        config: BybitRESTConfig(baseURL: "http://127.0.0.1:\(server.port)"),
        credentials: BybitCredentials(apiKey: "sim-key", apiSecret: "sim-secret"))
    _ = try client.walletBalance()
    let fds0 = openDescriptors()
    let rss0 = residentKB()
    let t0 = now()
    for n in 0..<10_000 {
        _ = try client.createOrder(
            OrderRequest(
                side: n % 2 == 0 ? .long : .short, orderType: .market, qty: ScaledDecimal("0.001")!,
                orderLinkId: "soak-\(n)"))
    }
    let orderSeconds = now() - t0
    let fds1 = openDescriptors()
    let rss1 = residentKB()
    report(
        "soak: 10,000 market orders over REST",
        String(
            format: "%.1f s (%.0f orders/s); fds %d → %d; RSS %d → %d kB", orderSeconds, 10_000 / orderSeconds, fds0,
            fds1, rss0, rss1))

    final class Counts: Sendable {
        let ready = Mutex(0)
    }
    let counts = Counts()
    var settings = StreamSettings(url: "ws://127.0.0.1:\(server.port)/v5/public/linear")
    settings.reconnectBaseMs = 1
    settings.reconnectCapMs = 2
    let stream = BybitPublicStream(settings: settings, instrument: .btcusdt)
    let task = Task.detached {
        await stream.run(
            onMessage: { _ in }, onStatus: { s in if s == .ready { counts.ready.withLock { $0 += 1 } } })
    }
    func readyCount() -> Int { counts.ready.withLock { $0 } }
    while readyCount() < 1 { usleep(1_000) }
    let fds2 = openDescriptors()
    let rss2 = residentKB()
    let t1 = now()
    for n in 1...1_000 {
        _ = try CurlTransport().send(
            method: "POST", url: "http://127.0.0.1:\(server.port)/sim/faults", headers: [],
            body: Array(#"{"dropWebSockets": true}"#.utf8))
        let waitStart = now()
        while readyCount() < n + 1 {
            usleep(200)
            if now() - waitStart > 10 {
                FileHandle.standardError.write(
                    Data("soak: reconnect \(n) not ready after 10 s (ready \(readyCount()))\n".utf8));
                exit(1)
            }
        }
    }
    let reconnectSeconds = now() - t1
    task.cancel()
    usleep(200_000)
    let fds3 = openDescriptors()
    let rss3 = residentKB()
    report(
        "soak: 1,000 WebSocket drops and reconnects",
        String(
            format: "%.1f s; fds %d → %d (client and server, after), server connections open %d; RSS %d → %d kB",
            reconnectSeconds, fds2, fds3, server.openConnections, rss2, rss3))
    server.stop()
}
