import AgentConfig
import AgentSupport
import ArgumentParser
import Daemon
import Foundation
import Research

/// `auction-agent run`: the trading daemon.
struct RunCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run the trading agent for one environment until SIGTERM (the systemd service's command).",
        discussion: """
            Start-up: load the configuration, open the environment's database (agent.state_dir, else \
            $STATE_DIRECTORY under systemd, else ./state/ENV; a damaged one, PRAGMA quick_check, or one another \
            process holds locked is refused, naming the file and the runbook), load the last snapshot, rebuild the 240-minute window \
            from stored trades, quotes and kline minutes, fill what it lacks from the exchange's 1-minute klines and \
            recent trades (agent.warm_start: exchange; entries wait while more than agent.max_approximate_va_share \
            of the value area's volume is from klines, reason approximate_va), then report READY (sd_notify) and serve the control socket \
            (--socket, else $RUNTIME_DIRECTORY/control.sock under systemd, else ./run/ENV/control.sock).

            States: starting → recovering → warming → observing → active ↔ paused → flattening → halted → stopping. \
            With agent.require_manual_activation (the default) trading starts only after `atctl activate`. A halt \
            (kill switch, `atctl flatten`) survives restarts until `atctl resume`.

            Modes (agent.mode): sim runs the built-in simulator in-process on loopback at sim.speed (no keys, no \
            network; on a first start the simulator holds sim.warm_minutes of generated history, served as Bybit \
            serves klines and recent trades, so the warm start finds a window at once); \
            paper reads the configured public stream and fills orders with the paper fill model; nothing is sent \
            anywhere. shadow trades like paper and sends every order to the testnet too (shadow.* URLs, keys in \
            the variables shadow.api_key_env/api_secret_env), compares fills and positions, alerts divergence, \
            keeps an exchange-held stop, and reconciles at start (a mismatch halts). live sends orders to \
            exchange.rest_url and keeps the exchange's books: each order enters the books when the exchange says \
            it is over, at what executed; REST re-reads after every private-stream reconnect and every minute; \
            every entry carries its stop (stopLoss on the order), so the exchange protects the first fill; the \
            position's stop held by the exchange (tpslMode Full), moved and corrected by trading-stop, retried when refused, the position \
            flattened after live.max_unprotected_seconds without one; stops, cancels, exits and flatten run on \
            their own connection and never wait behind an entry's call; REST calls pace to the exchange's rate-limit \
            headers, keep the last calls of each window for protective ones and wait for the reset timestamp after \
            a refusal (runbooks/rate-limits.md); ADL, liquidation and funding booked as \
            reported (ADL and liquidation halt); sizing from the smaller of live.allocated_equity and the wallet \
            (docs/EXCHANGE.md). It needs live.armed: true and the keys in exchange.api_key_env/api_secret_env, \
            refuses to start when the exchange's instrument rules or position mode disagree with the \
            configuration, and waits for `atctl activate` after every start. A URL set to "sim" uses the built-in \
            simulator.

            HTTP (read-only; docs/OPERATIONS.md): the dashboard at http://127.0.0.1:9464/, /metrics (Prometheus), \
            /healthz and /readyz on agent.http_listen (default 127.0.0.1:9464; off disables it). Beyond loopback it \
            needs a bearer token in the variable agent.http_token_env names (default AUCTION_HTTP_TOKEN) and refuses \
            to start without one. Control stays on the socket.

            Logs: one JSON object per line on stdout; under journald native fields (EVENT=, ORDER_LINK_ID=, ...). \
            SIGTERM or SIGINT: no new orders, a working entry cancelled, the last snapshot written, exit 0.

            Storage (docs/OPERATIONS.md, "Storage faults"): when the database refuses writes (a full disk, a \
            read-only filesystem), records wait in memory in order and are written when it takes them again; \
            exits, stops and cancels still go out, entries are vetoed (database), alert database_unwritable; at \
            50 000 held records the agent flattens and halts. agent.min_free_disk_mb warns before. Copy the \
            database while the agent runs with `auction-agent backup`.

            Example:  auction-agent run --env sim        then, in another shell:  atctl --env sim status
            """
    )

    @OptionGroup var config: ConfigOptions

    @Option(help: ArgumentHelp("Control socket path.", valueName: "path"))
    var socket: String?

    @Option(help: ArgumentHelp("Database directory (overrides agent.state_dir).", valueName: "dir"))
    var stateDir: String?

    func validate() throws {
        guard config.environment != nil || config.configFile != nil else {
            throw ValidationError("name the environment: --env sim (or --config FILE)")
        }
    }

    func run() async throws {
        // A parent may start us with SIGTERM/SIGINT blocked (Foundation's Process does); threads inherit the mask.
        // The executable unblocks them before any thread starts; this covers a caller of the command itself.
        unblockStopSignals()
        AgentTestHooks.install()
        let code = await AgentDaemon(
            options: DaemonOptions(selection: config.selection, socketPath: socket, stateDirectory: stateDir)
        ).run()
        if code != 0 { throw ExitCode(code) }
    }
}
