public import AgentConfig
import AgentSupport
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
public final class AgentDaemon: Sendable {
    let options: DaemonOptions
    let env: [String: String]

    public init(options: DaemonOptions, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.options = options
        self.env = environment
    }

    public func run() async -> Int32 {
        let sink = LogSink(environment: env)
        LoggingSystem.bootstrap { label in AgentLogHandler(label: label, sink: sink) }
        let logger = Logger(label: "agent")
        do {
            return try await runChecked(sink: sink, logger: logger)
        } catch {
            logger.critical("\(error)", metadata: ["event": "agent.failed"])
            FileHandle.standardError.write(Data("auction-agent: \(error)\n".utf8))
            return 1
        }
    }

    /// The start, one named step after the other (docs/DESIGN.md, "Start-up"), then the services until a stop.
    private func runChecked(sink: LogSink, logger: Logger) async throws -> Int32 {
        let started = WallTime.now
        let (envName, settings, source) = try loadSettings(sink: sink)
        let (store, lock) = try openState(settings, envName: envName, source: source, logger: logger)
        defer { withExtendedLifetime(lock) {} }
        let parts = try makeParts(settings, store: store, sink: sink)
        let endpoints = try MarketEndpoints.resolve(settings) {
            try InProcessSimulator.start(settings: settings, store: store, logger: logger)
        }
        let engine = makeEngine(settings, parts, endpoints, started: started, sink: sink, logger: logger)
        let exchange = try await connectAccount(settings, parts, endpoints, engine: engine)
        try await recover(engine, parts, logger: logger, started: started)
        let http = try await startHTTP(parts.http, logger: logger)
        return try await serve(
            settings, envName: envName, parts, endpoints, engine: engine, exchange: exchange, http: http,
            started: started, logger: logger)
    }

    /// Step 1: the configuration, the log's context and level, the mode's keys.
    /// Returns the environment's name, its settings and the file they came from.
    func loadSettings(sink: LogSink) throws -> (String, AgentConfiguration, String?) {
        let resolved = try ConfigLoader.load(options.selection)
        let envName = options.selection.environment ?? resolved.environment ?? "custom"
        let settings = AgentConfiguration(resolved, environment: envName)
        sink.setContext([("env", envName), ("mode", settings.mode.rawValue)])
        sink.setState(AgentState.starting.rawValue)
        sink.level = LogSink.level(named: settings.agent.logLevel)
        try checkMode(settings, sink: sink)
        return (envName, settings, resolved.source)
    }

    /// Step 2: the state directory (one agent each), its database checked sound, the environment switch rule.
    func openState(
        _ settings: AgentConfiguration, envName: String, source: String?, logger: Logger
    ) throws -> (AgentStore, StateLock) {
        let stateDir = StateLock.stateDirectory(
            explicit: options.stateDirectory, configured: settings.agent.stateDirectory, environment: envName,
            processEnvironment: env)
        // One agent per state directory; offline tools that change it (backfill) wait for it to stop.
        let lock = try StateLock.acquire(directory: stateDir, holder: "auction-agent run --env \(envName)")
        let store = try AgentStore(directory: stateDir, instrument: settings.instrument)
        // A damaged database (a power cut mid-write, a bad disk) is not traded on.
        try store.quickCheck()
        try checkEnvironmentSwitch(store: store, settings: settings)
        logger.notice(
            "starting",
            metadata: [
                "event": "agent.starting", "version": "\(agentVersion)", "state_dir": "\(stateDir)",
                "config": "\(source ?? "defaults")", "pid": "\(getpid())",
            ])
        return (store, lock)
    }

    /// What the steps share: the board, metrics, the engine's queue, the systemd notifier, the webhook and the HTTP
    /// server (refused now, before anything starts, when it would listen beyond loopback without a token).
    struct Parts {
        let store: AgentStore
        let board: StatusBoard
        let metrics: AgentMetrics
        let queue = EventQueue()
        let notifier: SystemdNotifier
        let webhook: WebhookDelivery?
        let http: OperatorHTTP?
        let observeREST: @Sendable (RESTObservation) -> Void
    }

    /// Step 3.
    func makeParts(_ settings: AgentConfiguration, store: AgentStore, sink: LogSink) throws -> Parts {
        let metrics = AgentMetrics(environment: settings.environment, mode: settings.mode.rawValue)
        let board = StatusBoard()
        var http: OperatorHTTP?
        if settings.agent.httpListen != "off", let address = ListenAddress(settings.agent.httpListen) {
            let token = env[settings.agent.httpTokenEnv]
            if let token, !token.isEmpty { sink.redact([token]) }
            http = try OperatorHTTP(
                address: address, token: token, board: board, store: store, metrics: metrics,
                instrument: settings.instrument, thresholds: DashboardThresholds(strategy: settings.strategy),
                logger: Logger(label: "http"))
        }
        var webhook: WebhookDelivery?
        if let url = env[settings.agent.alertWebhookEnv], !url.isEmpty {
            webhook = WebhookDelivery(url: url, logger: Logger(label: "alerts"))
        }
        return Parts(
            store: store, board: board, metrics: metrics, notifier: SystemdNotifier(environment: env),
            webhook: webhook, http: http,
            observeREST: { o in metrics.restCall(result: o.result.rawValue, retCode: o.retCode, seconds: o.seconds) })
    }

    /// Step 5: the engine, its public market history for the warm start, its configuration reload.
    func makeEngine(
        _ settings: AgentConfiguration, _ parts: Parts, _ endpoints: MarketEndpoints, started: WallTime, sink: LogSink,
        logger: Logger
    ) -> AgentEngine {
        let engine = AgentEngine(
            settings: settings, store: parts.store, board: parts.board, logger: logger, sink: sink,
            webhook: parts.webhook, clock: endpoints.clock, version: agentVersion, startedWall: started,
            metrics: parts.metrics)
        if settings.agent.warmFromExchange && endpoints.marketREST != "sim" {
            var rest = BybitRESTConfig(baseURL: endpoints.marketREST)
            rest.symbol = settings.instrument.symbol
            rest.maxAttempts = 2
            // Public data only: a slow or unreachable exchange delays the start by seconds, not minutes.
            let client = BybitRESTClient(
                config: rest, credentials: BybitCredentials(apiKey: "", apiSecret: ""),
                transport: CurlTransport(connectTimeoutMs: 2_000, totalTimeoutMs: 5_000), observer: parts.observeREST)
            engine.marketHistory = BybitMarketHistory(client: client, instrument: settings.instrument)
        }
        let selection = options.selection
        engine.reloadSource = { try ConfigLoader.load(selection) }
        if let usec = parts.notifier.watchdogUsec {
            engine.watchdogDescription = "systemd watchdog every \(usec / 1000) ms"
        } else if parts.notifier.enabled {
            engine.watchdogDescription = "under systemd, no watchdog"
        }
        return engine
    }

    /// Step 6 (shadow and live): the Bybit account the orders go to, its instrument rules and position mode checked
    /// (REST, off the cooperative pool), the exchange mirror's two lanes on one rate-limit budget.
    func connectAccount(
        _ settings: AgentConfiguration, _ parts: Parts, _ endpoints: MarketEndpoints, engine: AgentEngine
    ) async throws -> ExchangeMirror? {
        guard settings.mode == .shadow || settings.mode == .live else { return nil }
        let account = settings.account(for: settings.mode)
        let queue = parts.queue
        let metrics = parts.metrics
        let credentials = BybitCredentials(
            apiKey: env[account.apiKeyEnv] ?? "", apiSecret: env[account.apiSecretEnv] ?? "")
        var rest = BybitRESTConfig(baseURL: endpoints.venueREST)
        rest.symbol = settings.instrument.symbol
        rest.recvWindowMs = settings.exchange.recvWindowMs
        let restLogger = Logger(label: "venue")
        // A ban or a rate-limit storm: alerted through the engine (logged, stored, webhook).
        let alert: @Sendable (String) -> Void = { message in
            queue.put(.venue(.failed(what: .rest, reason: message), wall: .now))
        }
        // The order lane's client and the protective lane's (stops, cancels, exits, flatten: its own connection,
        // shorter timeouts), on one rate-limit budget.
        let (client, protective) = ExchangeMirror.laneClients(
            rest: rest, credentials: credentials, orderTransport: CurlTransport(),
            protectiveTransport: CurlTransport(connectTimeoutMs: 1_500, totalTimeoutMs: 3_000), logger: restLogger,
            onAlert: alert, observer: parts.observeREST,
            onWait: { metrics.rateLimitWait(endpoint: $0.path, reason: $0.reason.rawValue) })
        // Instrument rules and the position mode come from the exchange: a configuration that disagrees refuses to start.
        let venue = settings.mode == .live ? "exchange" : "testnet"
        try await offPool("venue-rules") {
            do {
                try VenueRules.check(client, settings.instrument, venue: venue)
            } catch let error as CommandError {
                throw error
            } catch {
                throw CommandError("cannot read the instrument's rules from \(endpoints.venueREST): \(error)")
            }
        }
        let mirror = ExchangeMirror(
            client: client, protectiveClient: protective, instrument: settings.instrument,
            privateSettings: StreamSettings(url: endpoints.venuePrivate), credentials: credentials, queue: queue,
            logger: restLogger, onSubmit: { metrics.onWire($0) })
        engine.trade(on: mirror)
        return mirror
    }

    /// Step 7: the last snapshot, the window rebuilt, the warm start and the venue's reconciliation (REST and the
    /// database, off the cooperative pool).
    func recover(_ engine: AgentEngine, _ parts: Parts, logger: Logger, started: WallTime) async throws {
        parts.notifier.notify("STATUS=recovering")
        let restored = try await offPool("recovery") { try engine.recover(wall: .now) }
        logger.notice(
            "recovered: \(restored)",
            metadata: ["event": "agent.recovered", "recovery_ms": "\(WallTime.now - started)"])
    }

    /// The HTTP server, running in its own service group (stopped after the main one).
    struct RunningHTTP {
        let server: OperatorHTTP
        let group: ServiceGroup
        /// The group's end: its error ("" when none).
        let ended: Task<String, Never>
    }

    /// Step 8: the HTTP server listens before the market and venue connections start: a port it cannot bind refuses
    /// the start, and its channel set-up never races the WebSocket clients' first connections on the shared event
    /// loops. Waits for the server to say it listens, or for its group to end, whichever is first.
    func startHTTP(_ http: OperatorHTTP?, logger: Logger) async throws -> RunningHTTP? {
        guard let http else { return nil }
        let g = ServiceGroup(
            configuration: ServiceGroupConfiguration(
                services: [.init(service: http.service(), serviceName: "http")], logger: Logger(label: "lifecycle")))
        let ended = Task {
            do {
                try await g.run()
                return ""
            } catch {
                return "\(error)"
            }
        }
        let settled = http.listening
        Task {
            _ = await ended.value
            settled.finish()
        }
        await settled.wait()
        guard let port = http.port else {
            let why = await ended.value
            throw CommandError(
                "the HTTP server cannot listen on \(http.address) (agent.http_listen): \(why.isEmpty ? "it stopped" : why)"
            )
        }
        logger.notice(
            "dashboard at \(http.url), metrics at \(http.url)metrics",
            metadata: [
                "event": "http.listening", "address": "\(http.address)", "port": "\(port)", "url": "\(http.url)",
                "token_required": "\(!http.address.isLoopback)",
            ])
        return RunningHTTP(server: http, group: g, ended: ended)
    }

    /// Step 9: the control socket, then the services under swift-service-lifecycle until SIGTERM or SIGINT; READY
    /// once they run. Returns the exit status.
    func serve(
        _ settings: AgentConfiguration, envName: String, _ parts: Parts, _ endpoints: MarketEndpoints,
        engine: AgentEngine, exchange: ExchangeMirror?, http: RunningHTTP?, started: WallTime, logger: Logger
    ) async throws -> Int32 {
        let (board, store, queue, notifier) = (parts.board, parts.store, parts.queue, parts.notifier)
        let socketPath = options.socketPath ?? ControlSocketPath.forAgent(environment: envName, processEnvironment: env)
        let server = ControlServer(
            path: socketPath, board: board, store: store, queue: queue, logger: Logger(label: "control"),
            versionInfo: VersionReport(
                version: agentVersion, environment: envName, mode: settings.mode.rawValue,
                pid: getpid()), metrics: parts.metrics)
        try await server.start()
        let sim = endpoints.simulator
        if let sim { engine.clock = sim.startPacing() }

        // Graceful shutdown runs in reverse order: the engine first (no new orders, a working entry cancelled, the
        // last snapshot), then market data, the venue (its queued calls, the cancel included, finish), the control
        // socket, the watchdog, persistence (raw data flushed) and alert delivery last.
        let engineService = EngineService(engine: engine, queue: queue, notifier: notifier, logger: logger)
        var market = MarketDataService(url: endpoints.publicURL, instrument: settings.instrument, queue: queue)
        if let dir = settings.agent.recordDirectory {
            market.recorder = try MarketRecorder(
                directory: dir, instrument: settings.instrument, logger: Logger(label: "recorder"))
        }
        let watchdog = WatchdogService(board: board, notifier: notifier)
        let stopBudgetMs = Int64(settings.agent.gracefulStopSeconds) * 500
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let webhook = parts.webhook {
            services.append(.init(service: AlertDeliveryService(webhook: webhook), serviceName: "alerts"))
        }
        services += [
            .init(service: PersistenceService(store: store), serviceName: "persistence"),
            .init(service: watchdog, serviceName: "watchdog"), .init(service: server, serviceName: "control"),
        ]
        if let mirror = exchange {
            services.append(
                .init(service: VenueService(mirror: mirror, stopBudgetMs: stopBudgetMs), serviceName: "venue"))
        }
        services += [
            .init(service: market, serviceName: "market-data"), .init(service: engineService, serviceName: "engine"),
        ]
        var config = ServiceGroupConfiguration(
            services: services,
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: Logger(label: "lifecycle")
        )
        config.maximumGracefulShutdownDuration = .seconds(settings.agent.gracefulStopSeconds)
        let group = ServiceGroup(configuration: config)
        async let stoppedOn: String? = {
            do {
                try await group.run()
                return nil
            } catch {
                return "\(error)"
            }
        }()
        notifier.notify("READY=1\nSTATUS=\(board.systemdStatus)")
        var readyMeta: Logger.Metadata = [
            "event": "agent.ready", "socket": "\(socketPath)", "ready_ms": "\(WallTime.now - started)",
        ]
        if let http { readyMeta["dashboard"] = "\(http.server.url)" }
        let text = "ready" + (http.map { "; dashboard at \($0.server.url)" } ?? "")
        logger.notice("\(text)", metadata: readyMeta)
        let failure = await stoppedOn
        // The HTTP server goes last: pages see the agent stopping until the end.
        if let http {
            await http.group.triggerGracefulShutdown()
            _ = await http.ended.value
        }
        sim?.stop()
        if let f = failure {
            logger.critical("stopped on an error: \(f)", metadata: ["event": "agent.failed"])
            return 1
        }
        logger.notice("exit", metadata: ["event": "agent.exit"])
        return 0
    }

    /// `live` needs `live.armed: true` and both keys; nothing else needs keys yet.
    private func checkMode(_ s: AgentConfiguration, sink: LogSink) throws {
        let (keyEnv, secretEnv) = (s.exchange.account.apiKeyEnv, s.exchange.account.apiSecretEnv)
        let (testKeyEnv, testSecretEnv) = (s.shadow.account.apiKeyEnv, s.shadow.account.apiSecretEnv)
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
            if !s.live.armed {
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
    private func checkEnvironmentSwitch(store: AgentStore, settings: AgentConfiguration) throws {
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

/// Hooks for the end-to-end tests; each is inert unless its signal arrives.
public enum AgentTestHooks {
    nonisolated(unsafe) static var suppressWatchdog: sig_atomic_t = 0

    /// SIGUSR2 stops the watchdog pings, as a hung engine loop would (systemd then restarts the agent).
    public static func install() {
        signal(SIGUSR2) { _ in AgentTestHooks.suppressWatchdog = 1 }
    }

    static var watchdogSuppressed: Bool { suppressWatchdog != 0 }
}

/// Step 4 of the start: where the market and the account are. The built-in simulator serves mode sim and any URL
/// set to "sim" (its public stream, REST and private stream on one loopback port, and its market clock); otherwise
/// the configured URLs, the real clock.
struct MarketEndpoints {
    var publicURL: String
    /// The public market history for a warm start: the same venue as the public stream.
    var marketREST: String
    /// The account orders go to: the testnet in shadow, the exchange in live.
    var venueREST: String
    var venuePrivate: String
    var clock: MarketClock
    var simulator: InProcessSimulator?

    /// `startSimulator` runs only when the mode or a URL asks for it.
    static func resolve(
        _ settings: AgentConfiguration, startSimulator: () throws -> InProcessSimulator
    ) throws -> MarketEndpoints {
        let account = settings.account(for: settings.mode)
        var e = MarketEndpoints(
            publicURL: settings.exchange.publicStreamURL, marketREST: settings.exchange.account.restURL,
            venueREST: account.restURL, venuePrivate: account.privateStreamURL, clock: .realTime(), simulator: nil)
        guard settings.mode == .sim || [e.publicURL, e.venueREST, e.venuePrivate].contains("sim") else { return e }
        let sim = try startSimulator()
        e.apply(simulatorPort: Int(sim.server.port), publicURL: sim.publicURL, simOnly: settings.mode == .sim)
        e.clock = sim.clock
        e.simulator = sim
        return e
    }

    /// The URLs the simulator on `port` replaces: every one in mode sim (`simOnly`), else those set to "sim".
    mutating func apply(simulatorPort port: Int, publicURL simPublic: String, simOnly: Bool) {
        if simOnly || publicURL == "sim" {
            publicURL = simPublic
            marketREST = "http://127.0.0.1:\(port)"
        }
        if venueREST == "sim" { venueREST = "http://127.0.0.1:\(port)" }
        if venuePrivate == "sim" { venuePrivate = "ws://127.0.0.1:\(port)/v5/private" }
    }
}

/// Runs blocking work (REST over libcurl, SQLite, sleeps between retries) on a thread of its own and awaits it, so
/// that the cooperative pool's two threads on this machine keep serving the async parts of the start.
func offPool<T>(_ name: String, _ body: @escaping @Sendable () throws -> T) async throws -> T {
    let box = UncheckedBox<T>()
    try await withCheckedThrowingContinuation { (c: CheckedContinuation<Void, any Error>) in
        let thread = Thread {
            do {
                box.value = try body()
                c.resume()
            } catch {
                c.resume(throwing: error)
            }
        }
        thread.name = name
        thread.start()
    }
    return box.value!
}

/// Carries a value from the thread that made it to the task that awaited it (the continuation orders the two).
private final class UncheckedBox<T>: @unchecked Sendable {
    var value: T?
}
