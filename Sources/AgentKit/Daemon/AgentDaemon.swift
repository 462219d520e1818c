import ControlProtocol
import Engine
import Exchange
import ExchangeStreams
public import Foundation
import Logging
import ServiceLifecycle
import Simulator
import UnixSignals

/// The version the agent and `atctl version` report.
public let agentVersion = "0.2.0"

/// What `auction-agent run` was asked to do.
public struct DaemonOptions: Sendable {
    public var selection: ConfigSelection
    public var socketPath: String?
    public var stateDirectory: String?

    public init(selection: ConfigSelection, socketPath: String? = nil, stateDirectory: String? = nil) {
        self.selection = selection
        self.socketPath = socketPath
        self.stateDirectory = stateDirectory
    }
}

/// `auction-agent run`: recovery, then the services (engine loop, market data, control socket, watchdog) under
/// swift-service-lifecycle until SIGTERM or SIGINT, then a graceful stop. Returns the exit status.
public final class AgentDaemon: @unchecked Sendable {
    let options: DaemonOptions
    let env: [String: String]

    public init(options: DaemonOptions, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.options = options
        self.env = environment
    }

    public func run() -> Int32 {
        let sink = LogSink(environment: env)
        LoggingSystem.bootstrap { label in AgentLogHandler(label: label, sink: sink) }
        let logger = Logger(label: "agent")
        do {
            return try runChecked(sink: sink, logger: logger)
        } catch {
            logger.critical("\(error)", metadata: ["event": "agent.failed"])
            FileHandle.standardError.write(Data("auction-agent: \(error)\n".utf8))
            return 1
        }
    }

    private func runChecked(sink: LogSink, logger: Logger) throws -> Int32 {
        let started = wallClockMillis()
        let resolved = try ConfigLoader.load(options.selection)
        let envName = options.selection.environment ?? resolved.environment ?? "custom"
        let settings = AgentSettings(resolved, environment: envName)
        sink.setContext([("env", envName), ("mode", settings.mode.rawValue)])
        sink.setState(AgentState.starting.rawValue)
        try checkMode(settings, sink: sink)

        let stateDir = StateLock.stateDirectory(
            explicit: options.stateDirectory, resolved: resolved, environment: envName,
            processEnvironment: env)
        // One agent per state directory; offline tools that change it (backfill) wait for it to stop.
        let lock = try StateLock.acquire(directory: stateDir, holder: "auction-agent run --env \(envName)")
        defer { withExtendedLifetime(lock) {} }
        let store = try AgentStore(directory: stateDir, instrument: settings.instrument)
        try checkEnvironmentSwitch(store: store, settings: settings)
        logger.notice(
            "starting",
            metadata: [
                "event": "agent.starting", "version": "\(agentVersion)", "state_dir": "\(stateDir)",
                "config": "\(resolved.source ?? "defaults")", "pid": "\(getpid())",
            ])

        let notifier = SystemdNotifier(environment: env)
        let board = StatusBoard()
        let metrics = AgentMetrics(environment: envName, mode: settings.mode.rawValue)
        let observeREST: @Sendable (RESTObservation) -> Void = { o in
            metrics.restCall(result: o.result.rawValue, retCode: o.retCode, seconds: o.seconds)
        }
        // The read-only HTTP server: refused now (before anything starts) when it would listen beyond loopback
        // without a token.
        var http: OperatorHTTP?
        let listen = resolved.text("agent.http_listen")
        if listen != "off", let address = ListenAddress(listen) {
            let token = env[resolved.text("agent.http_token_env")]
            if let token, !token.isEmpty { sink.redact([token]) }
            http = try OperatorHTTP(
                address: address, token: token, board: board, store: store, metrics: metrics,
                instrument: settings.instrument, logger: Logger(label: "http"))
        }
        let queue = EventQueue()
        var webhook: WebhookDelivery?
        if let url = env[settings.alertWebhookEnv], !url.isEmpty {
            webhook = WebhookDelivery(url: url, logger: Logger(label: "alerts"))
        }

        // The market: the built-in simulator for mode sim, or wherever a URL says "sim"; else the configured ones.
        var clock = MarketClock.realTime()
        var sim: InProcessSimulator?
        var publicURL = resolved.text("exchange.public_ws_url")
        // The public market history for a warm start: the same venue as the public stream.
        var marketREST = resolved.text("exchange.rest_url")
        // The venue orders go to: the testnet in shadow, the exchange in live.
        var venueREST = resolved.text(settings.mode == .live ? "exchange.rest_url" : "shadow.rest_url")
        var venuePrivate = resolved.text(settings.mode == .live ? "exchange.private_ws_url" : "shadow.private_ws_url")
        if settings.mode == .sim || [publicURL, venueREST, venuePrivate].contains("sim") {
            let s = try InProcessSimulator.start(settings: settings, store: store, logger: logger)
            clock = s.clock
            if settings.mode == .sim || publicURL == "sim" {
                publicURL = s.publicURL
                marketREST = "http://127.0.0.1:\(s.server.port)"
            }
            if venueREST == "sim" { venueREST = "http://127.0.0.1:\(s.server.port)" }
            if venuePrivate == "sim" { venuePrivate = "ws://127.0.0.1:\(s.server.port)/v5/private" }
            sim = s
        }

        let engine = AgentEngine(
            settings: settings, store: store, board: board, logger: logger, sink: sink, webhook: webhook,
            clock: clock, version: agentVersion, startedWall: started, metrics: metrics)
        if settings.warmFromExchange && marketREST != "sim" {
            var rest = BybitRESTConfig(baseURL: marketREST)
            rest.symbol = settings.instrument.symbol
            rest.maxAttempts = 2
            // Public data only: a slow or unreachable exchange delays the start by seconds, not minutes.
            let client = BybitRESTClient(
                config: rest, credentials: BybitCredentials(apiKey: "", apiSecret: ""),
                transport: CurlTransport(connectTimeoutMs: 2_000, totalTimeoutMs: 5_000), observer: observeREST)
            engine.marketHistory = BybitMarketHistory(client: client, instrument: settings.instrument)
        }
        let selection = options.selection
        engine.reloadSource = { try ConfigLoader.load(selection) }
        // Shadow and live: the Bybit account the orders go to.
        var exchange: ExchangeMirror?
        if settings.mode == .shadow || settings.mode == .live {
            let group = settings.mode == .live ? "exchange" : "shadow"
            let credentials = BybitCredentials(
                apiKey: env[resolved.text("\(group).api_key_env")] ?? "",
                apiSecret: env[resolved.text("\(group).api_secret_env")] ?? "")
            var rest = BybitRESTConfig(baseURL: venueREST)
            rest.symbol = settings.instrument.symbol
            rest.recvWindowMs = resolved.integer("exchange.recv_window_ms")
            let restLogger = Logger(label: "venue")
            // A ban or a rate-limit storm: alerted through the engine (logged, stored, webhook).
            let alert: @Sendable (String) -> Void = { message in
                queue.put(.venue(.failed(what: .rest, reason: message), wall: wallClockMillis()))
            }
            let client = BybitRESTClient(config: rest, credentials: credentials, onAlert: alert, observer: observeREST)
            // Instrument rules and the position mode come from the exchange: a configuration that disagrees refuses to start.
            do {
                try VenueRules.check(
                    client, settings.instrument, venue: settings.mode == .live ? "exchange" : "testnet")
            } catch let error as CommandError {
                throw error
            } catch {
                throw CommandError("cannot read the instrument's rules from \(venueREST): \(error)")
            }
            // Protective calls (stops, cancels, exits, flatten) on their own connection, with shorter timeouts.
            var protectiveRest = rest
            protectiveRest.maxAttempts = 3
            protectiveRest.backoffBaseMs = 100
            let protective = BybitRESTClient(
                config: protectiveRest, credentials: credentials,
                transport: CurlTransport(connectTimeoutMs: 1_500, totalTimeoutMs: 3_000), onAlert: alert,
                observer: observeREST)
            let mirror = ExchangeMirror(
                client: client, protectiveClient: protective, instrument: settings.instrument,
                privateSettings: StreamSettings(url: venuePrivate), credentials: credentials, queue: queue,
                logger: restLogger, onSubmit: { metrics.onWire($0) })
            engine.trade(on: mirror)
            exchange = mirror
        }
        if let usec = notifier.watchdogUsec {
            engine.watchdogDescription = "systemd watchdog every \(usec / 1000) ms"
        } else if notifier.enabled {
            engine.watchdogDescription = "under systemd, no watchdog"
        }
        notifier.notify("STATUS=recovering")
        let restored = try engine.recover(wall: wallClockMillis())
        logger.notice(
            "recovered: \(restored)",
            metadata: ["event": "agent.recovered", "recovery_ms": "\(wallClockMillis() - started)"])

        // The HTTP server listens before the market and venue connections start (its own service group, stopped
        // after the main one): a port it cannot bind refuses the start, and its channel set-up never races the
        // WebSocket clients' first connections on the shared event loops.
        var httpGroup: ServiceGroup?
        // The HTTP group's end: nil while it runs, then its error ("" when none).
        let httpEnded = OneShot<String>()
        if let http {
            let g = ServiceGroup(
                configuration: ServiceGroupConfiguration(
                    services: [.init(service: http.service(), serviceName: "http")],
                    logger: Logger(label: "lifecycle")))
            Task.detached {
                var why = ""
                do { try await g.run() } catch { why = "\(error)" }
                httpEnded.set(why)
            }
            while http.waitUntilListening(ms: 200) == nil && httpEnded.value == nil {}
            guard let port = http.port else {
                let why = httpEnded.value ?? ""
                throw CommandError(
                    "the HTTP server cannot listen on \(http.address) (agent.http_listen): \(why.isEmpty ? "it stopped" : why)"
                )
            }
            httpGroup = g
            logger.notice(
                "dashboard at \(http.url), metrics at \(http.url)metrics",
                metadata: [
                    "event": "http.listening", "address": "\(http.address)", "port": "\(port)", "url": "\(http.url)",
                    "token_required": "\(!http.address.isLoopback)",
                ])
        }

        let socketPath = options.socketPath ?? ControlSocketPath.forAgent(environment: envName, processEnvironment: env)
        let server = ControlServer(
            path: socketPath, board: board, store: store, queue: queue, logger: Logger(label: "control"),
            versionInfo: VersionReport(
                version: agentVersion, environment: envName, mode: settings.mode.rawValue,
                pid: getpid()))
        server.metrics = metrics
        try server.start()
        if let sim { engine.clock = sim.startPacing() }

        // Graceful shutdown runs in reverse order: the engine first (no new orders, a working entry cancelled, the
        // last snapshot), then market data, the venue (its queued calls, the cancel included, finish), the control
        // socket, the watchdog, persistence (raw data flushed) and alert delivery last.
        let engineService = EngineService(engine: engine, queue: queue, notifier: notifier, logger: logger)
        let market = MarketDataService(url: publicURL, instrument: settings.instrument, queue: queue)
        let control = ClosureService {
            try? await gracefulShutdown(); server.stop()
        }
        let watchdog = WatchdogService(board: board, notifier: notifier)
        let persistence = ClosureService {
            try? await gracefulShutdown(); store.flushRaw()
        }
        let stopBudgetMs = Int64(settings.gracefulStopSeconds) * 500
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let webhook {
            services.append(
                .init(
                    service: ClosureService {
                        webhook.start(); try? await gracefulShutdown(); webhook.stop()
                    }, serviceName: "alerts"))
        }
        services += [
            .init(service: persistence, serviceName: "persistence"), .init(service: watchdog, serviceName: "watchdog"),
            .init(service: control, serviceName: "control"),
        ]
        if let mirror = exchange {
            services.append(
                .init(
                    service: ClosureService {
                        mirror.start(); try? await gracefulShutdown(); mirror.stop(deadlineMs: stopBudgetMs)
                    },
                    serviceName: "venue"))
        }
        services += [
            .init(service: market, serviceName: "market-data"), .init(service: engineService, serviceName: "engine"),
        ]
        var config = ServiceGroupConfiguration(
            services: services,
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: Logger(label: "lifecycle")
        )
        config.maximumGracefulShutdownDuration = .seconds(settings.gracefulStopSeconds)
        let group = ServiceGroup(configuration: config)
        let done = DispatchSemaphore(value: 0)
        let failure = FailureBox()
        Task.detached {
            do {
                try await group.run()
            } catch {
                failure.set("\(error)")
            }
            done.signal()
        }
        notifier.notify("READY=1\nSTATUS=\(board.systemdStatus)")
        var readyMeta: Logger.Metadata = [
            "event": "agent.ready", "socket": "\(socketPath)", "ready_ms": "\(wallClockMillis() - started)",
        ]
        if let http { readyMeta["dashboard"] = "\(http.url)" }
        let text = "ready" + (http.map { "; dashboard at \($0.url)" } ?? "")
        logger.notice("\(text)", metadata: readyMeta)
        done.wait()
        // The HTTP server goes last: pages see the agent stopping until the end.
        if let httpGroup {
            Task.detached { await httpGroup.triggerGracefulShutdown() }
            _ = httpEnded.wait()
        }
        sim?.stop()
        if let f = failure.value {
            logger.critical("stopped on an error: \(f)", metadata: ["event": "agent.failed"])
            return 1
        }
        logger.notice("exit", metadata: ["event": "agent.exit"])
        return 0
    }

    /// `live` needs `live.armed: true` and both keys; nothing else needs keys yet.
    private func checkMode(_ s: AgentSettings, sink: LogSink) throws {
        let keyEnv = s.resolved.text("exchange.api_key_env")
        let secretEnv = s.resolved.text("exchange.api_secret_env")
        let testKeyEnv = s.resolved.text("shadow.api_key_env")
        let testSecretEnv = s.resolved.text("shadow.api_secret_env")
        // Whatever the mode, a key in the environment is never logged.
        sink.redact([env[keyEnv], env[secretEnv], env[testKeyEnv], env[testSecretEnv]].compactMap { $0 })
        switch s.mode {
        case .sim, .paper: return
        case .shadow:
            guard let k = env[testKeyEnv], !k.isEmpty, let v = env[testSecretEnv], !v.isEmpty else {
                throw CommandError(
                    "mode shadow needs the testnet API keys in the environment variables \(testKeyEnv) and \(testSecretEnv)"
                )
            }
        case .live:
            if !s.liveArmed {
                throw CommandError(
                    "mode live needs live.armed: true in the environment's configuration (and the keys in \(keyEnv)/\(secretEnv))"
                )
            }
            guard let k = env[keyEnv], !k.isEmpty, let v = env[secretEnv], !v.isEmpty else {
                throw CommandError("mode live needs API keys in the environment variables \(keyEnv) and \(secretEnv)")
            }
        }
    }

    /// A state directory belongs to one environment and mode; changing either needs a flat position.
    private func checkEnvironmentSwitch(store: AgentStore, settings: AgentSettings) throws {
        let previousEnv = try store.meta("environment")
        let previousMode = try store.meta("mode")
        if (previousEnv != nil && previousEnv != settings.environment)
            || (previousMode != nil && previousMode != settings.mode.rawValue),
            let snap = try store.lastSnapshot()
        {
            let (trader, venue) = (snap.trader, snap.venue)
            if trader.position != nil || !venue.workingOrders.isEmpty {
                throw CommandError(
                    "the state in \(store.path) belongs to environment \(previousEnv ?? "?") in mode \(previousMode ?? "?") "
                        + "and shows an open position or working orders; start it again in that environment and run `atctl flatten`, "
                        + "then switch")
            }
        }
        try store.setMeta("environment", settings.environment)
        try store.setMeta("mode", settings.mode.rawValue)
    }
}

final class FailureBox: @unchecked Sendable {
    private let lock = NSLock()
    private var text: String?
    func set(_ s: String) { lock.withLock { text = s } }
    var value: String? { lock.withLock { text } }
}

/// The engine loop on its own thread: inputs from the queue, a clock tick every 100 ms.
struct EngineService: Service {
    let engine: AgentEngine
    let queue: EventQueue
    let notifier: SystemdNotifier
    let logger: Logger

    func run() async throws {
        let finished = Completion()
        let thread = Thread {
            var lastTick = wallClockMillis()
            var running = true
            while running {
                var inputs = queue.takeAll(timeoutMs: 100)
                let wall = wallClockMillis()
                if wall - lastTick >= 100 {
                    engine.loopLagMs = max(0, wall - lastTick - 100)
                    lastTick = wall
                    inputs.append(.tick(wall: wall))
                }
                running = engine.step(inputs, wall: wall)
            }
            finished.finish()
        }
        thread.name = "engine"
        thread.stackSize = 4 << 20
        thread.start()
        try? await gracefulShutdown()
        notifier.notify("STOPPING=1\nSTATUS=stopping")
        logger.notice("stop requested", metadata: ["event": "agent.stopping"])
        queue.put(.stop(reason: "SIGTERM: graceful stop", done: {}))
        await finished.wait()
    }
}

/// Bybit's public stream into the engine's queue.
struct MarketDataService: Service {
    let url: String
    let instrument: Instrument
    let queue: EventQueue

    func run() async throws {
        let stream = BybitPublicStream(
            settings: StreamSettings(url: url), instrument: instrument, logger: Logger(label: "stream.public"))
        let queue = self.queue
        await cancelWhenGracefulShutdown {
            await stream.run(
                onMessage: { m in
                    switch m {
                    case .trades(let t): queue.put(.trades(t, wall: wallClockMillis()))
                    case .quote(let q, _): queue.put(.quote(q, wall: wallClockMillis()))
                    case .control: break
                    }
                },
                onStatus: { s in queue.put(.stream(s, wall: wallClockMillis())) }
            )
        }
    }
}

/// `WATCHDOG=1` only while the engine loop has run within half the watchdog interval; `STATUS=` as it changes.
struct WatchdogService: Service {
    let board: StatusBoard
    let notifier: SystemdNotifier

    func run() async throws {
        guard notifier.enabled else {
            try? await gracefulShutdown()
            return
        }
        let halfMs = notifier.watchdogUsec.map { Int64($0 / 2_000) } ?? 0
        let periodMs = halfMs > 0 ? max(50, min(halfMs / 2, 1_000)) : 1_000
        try? await cancelWhenGracefulShutdown {
            var last = ""
            while !Task.isCancelled {
                let status = board.systemdStatus
                if status != last {
                    notifier.notify("STATUS=\(status)")
                    last = status
                }
                if halfMs > 0, !AgentTestHooks.watchdogSuppressed, wallClockMillis() - board.lastBeat < halfMs {
                    notifier.notify("WATCHDOG=1")
                }
                try await Task.sleep(for: .milliseconds(periodMs))
            }
        }
    }
}

/// Hooks for the end-to-end tests; each is inert unless its signal arrives.
public enum AgentTestHooks {
    nonisolated(unsafe) static var suppressWatchdog: sig_atomic_t = 0

    /// SIGUSR2 stops the watchdog pings, as a hung engine loop would (systemd then restarts the agent).
    public static func install() {
        signal(SIGUSR2) { _ in AgentTestHooks.suppressWatchdog = 1 }
    }

    static var watchdogSuppressed: Bool { suppressWatchdog != 0 }
}

/// A one-shot completion an async caller can await.
final class Completion: @unchecked Sendable {
    private let lock = NSLock()
    private var done = false
    private var waiters: [CheckedContinuation<Void, Never>] = []

    func finish() {
        let w = lock.withLock { () -> [CheckedContinuation<Void, Never>] in
            done = true
            defer { waiters = [] }
            return waiters
        }
        for c in w { c.resume() }
    }

    func wait() async {
        await withCheckedContinuation { (c: CheckedContinuation<Void, Never>) in
            let now = lock.withLock { () -> Bool in
                if done { return true }
                waiters.append(c)
                return false
            }
            if now { c.resume() }
        }
    }
}
