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

    private func runChecked(sink: LogSink, logger: Logger) async throws -> Int32 {
        let started = wallClockMillis()
        let resolved = try ConfigLoader.load(options.selection)
        let envName = options.selection.environment ?? resolved.environment ?? "custom"
        let settings = AgentConfiguration(resolved, environment: envName)
        sink.setContext([("env", envName), ("mode", settings.mode.rawValue)])
        sink.setState(AgentState.starting.rawValue)
        sink.level = LogSink.level(named: settings.agent.logLevel)
        try checkMode(settings, sink: sink)

        let stateDir = StateLock.stateDirectory(
            explicit: options.stateDirectory, configured: settings.agent.stateDirectory, environment: envName,
            processEnvironment: env)
        // One agent per state directory; offline tools that change it (backfill) wait for it to stop.
        let lock = try StateLock.acquire(directory: stateDir, holder: "auction-agent run --env \(envName)")
        defer { withExtendedLifetime(lock) {} }
        let store = try AgentStore(directory: stateDir, instrument: settings.instrument)
        // A damaged database (a power cut mid-write, a bad disk) is not traded on.
        try store.quickCheck()
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
        if settings.agent.httpListen != "off", let address = ListenAddress(settings.agent.httpListen) {
            let token = env[settings.agent.httpTokenEnv]
            if let token, !token.isEmpty { sink.redact([token]) }
            http = try OperatorHTTP(
                address: address, token: token, board: board, store: store, metrics: metrics,
                instrument: settings.instrument, logger: Logger(label: "http"))
        }
        let queue = EventQueue()
        var webhook: WebhookDelivery?
        if let url = env[settings.agent.alertWebhookEnv], !url.isEmpty {
            webhook = WebhookDelivery(url: url, logger: Logger(label: "alerts"))
        }

        // The market: the built-in simulator for mode sim, or wherever a URL says "sim"; else the configured ones.
        var clock = MarketClock.realTime()
        var sim: InProcessSimulator?
        var publicURL = settings.exchange.publicStreamURL
        // The public market history for a warm start: the same venue as the public stream.
        var marketREST = settings.exchange.account.restURL
        // The account orders go to: the testnet in shadow, the exchange in live.
        let account = settings.account(for: settings.mode)
        var venueREST = account.restURL
        var venuePrivate = account.privateStreamURL
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
        if settings.agent.warmFromExchange && marketREST != "sim" {
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
            let credentials = BybitCredentials(
                apiKey: env[account.apiKeyEnv] ?? "", apiSecret: env[account.apiSecretEnv] ?? "")
            var rest = BybitRESTConfig(baseURL: venueREST)
            rest.symbol = settings.instrument.symbol
            rest.recvWindowMs = settings.exchange.recvWindowMs
            let restLogger = Logger(label: "venue")
            // A ban or a rate-limit storm: alerted through the engine (logged, stored, webhook).
            let alert: @Sendable (String) -> Void = { message in
                queue.put(.venue(.failed(what: .rest, reason: message), wall: wallClockMillis()))
            }
            // Both lanes' clients count against one budget (Bybit limits per account and endpoint); the order lane
            // leaves the last calls of each window to the protective lane.
            let budget = RateBudget()
            let waits = RateLimitLog(logger: restLogger)
            let onWait: @Sendable (RateLimitWait) -> Void = { w in
                metrics.rateLimitWait(endpoint: w.path, reason: w.reason.rawValue)
                waits.note(w)
            }
            var orderRest = rest
            orderRest.reserveCalls = RateLimitLog.protectiveReserve
            let client = BybitRESTClient(
                config: orderRest, credentials: credentials, onAlert: alert, observer: observeREST, budget: budget,
                onRateLimitWait: onWait)
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
                observer: observeREST, budget: budget, onRateLimitWait: onWait)
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
        // The HTTP group's end: its error ("" when none).
        var httpEnded: Task<String, Never>?
        if let http {
            let g = ServiceGroup(
                configuration: ServiceGroupConfiguration(
                    services: [.init(service: http.service(), serviceName: "http")],
                    logger: Logger(label: "lifecycle")))
            let ended = Task {
                do {
                    try await g.run()
                    return ""
                } catch {
                    return "\(error)"
                }
            }
            let stopped = StoppedFlag()
            Task {
                _ = await ended.value
                stopped.set()
            }
            // Listening, or the group ended (a port it cannot bind): whichever comes first.
            while http.port == nil && !stopped.isSet { try await Task.sleep(for: .milliseconds(5)) }
            guard let port = http.port else {
                let why = await ended.value
                throw CommandError(
                    "the HTTP server cannot listen on \(http.address) (agent.http_listen): \(why.isEmpty ? "it stopped" : why)"
                )
            }
            httpGroup = g
            httpEnded = ended
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
                pid: getpid()), metrics: metrics)
        try await server.start()
        if let sim { engine.clock = sim.startPacing() }

        // Graceful shutdown runs in reverse order: the engine first (no new orders, a working entry cancelled, the
        // last snapshot), then market data, the venue (its queued calls, the cancel included, finish), the control
        // socket, the watchdog, persistence (raw data flushed) and alert delivery last.
        let engineService = EngineService(engine: engine, queue: queue, notifier: notifier, logger: logger)
        var market = MarketDataService(url: publicURL, instrument: settings.instrument, queue: queue)
        if let dir = settings.agent.recordDirectory {
            market.recorder = try MarketRecorder(
                directory: dir, instrument: settings.instrument, logger: Logger(label: "recorder"))
        }
        let watchdog = WatchdogService(board: board, notifier: notifier)
        let stopBudgetMs = Int64(settings.agent.gracefulStopSeconds) * 500
        var services: [ServiceGroupConfiguration.ServiceConfiguration] = []
        if let webhook {
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
            "event": "agent.ready", "socket": "\(socketPath)", "ready_ms": "\(wallClockMillis() - started)",
        ]
        if let http { readyMeta["dashboard"] = "\(http.url)" }
        let text = "ready" + (http.map { "; dashboard at \($0.url)" } ?? "")
        logger.notice("\(text)", metadata: readyMeta)
        let failure = await stoppedOn
        // The HTTP server goes last: pages see the agent stopping until the end.
        if let httpGroup, let httpEnded {
            await httpGroup.triggerGracefulShutdown()
            _ = await httpEnded.value
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
