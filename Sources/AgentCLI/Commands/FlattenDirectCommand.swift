import AgentConfig
import AgentSupport
import ArgumentParser
import ControlProtocol
import Daemon
import Engine
import Exchange
import Foundation
import Research

/// `auction-agent flatten-direct`: the emergency path when the agent does not answer.
struct FlattenDirectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "flatten-direct",
        abstract: "Emergency: cancel every order and close the position directly at the exchange, without the agent.",
        discussion: """
            For when the agent is unresponsive: stop the unit first (systemctl stop auction-agent), then run this \
            with the environment's keys (the same environment variables the agent uses: exchange.* for live, \
            shadow.* for shadow). It cancels every open order of the symbol, closes the whole position with a \
            reduce-only market order for the exchange's own size, and confirms flat from the exchange (three \
            attempts). It refuses while the agent's control socket answers (use `atctl flatten`), unless --force.

            When the agent's state directory is readable (--state-dir, else agent.state_dir, else \
            $STATE_DIRECTORY, else /var/lib/auction-agent/ENV when it holds a database, else \
            /var/lib/auction-agent/main when its database belongs to ENV, else ./state/ENV), the close is \
            also booked there and the state set to halted (operator_flatten_direct), so the next start \
            reconciles cleanly and stays halted until `atctl resume`. Otherwise the next start halts with \
            position_mismatch, as it must. Exit 0 only when the exchange confirms flat.
            """
    )

    @OptionGroup var config: ConfigOptions

    @Option(help: ArgumentHelp("The agent's state directory.", valueName: "dir"))
    var stateDir: String?

    @Option(help: ArgumentHelp("The agent's control socket (to check that it is not running).", valueName: "path"))
    var socket: String?

    @Flag(help: "Proceed even though the agent's control socket answers.")
    var force = false

    func run() throws {
        let resolved = try ConfigLoader.load(config.selection)
        let envName = config.environment ?? resolved.environment ?? "custom"
        let configuration = AgentConfiguration(resolved, environment: envName)
        let mode = configuration.mode
        guard mode == .live || mode == .shadow else {
            throw CommandError(
                "environment \(envName) is mode \(mode.rawValue): its position lives only in the agent's state, not at an exchange; "
                    + "start the agent and run `atctl --env \(envName) flatten`")
        }
        let env = ProcessInfo.processInfo.environment
        let socketPath =
            socket ?? ControlSocketPath.forClient(environment: envName) { FileManager.default.fileExists(atPath: $0) }
        if !force, ControlServer.isAlive(socketPath) {
            throw CommandError(
                "the agent answers on \(socketPath): use `atctl --env \(envName) flatten` (or stop it first, or --force)"
            )
        }
        let account = configuration.account(for: mode)
        let (keyName, secretName) = (account.apiKeyEnv, account.apiSecretEnv)
        guard let key = env[keyName], !key.isEmpty, let secret = env[secretName], !secret.isEmpty else {
            throw CommandError(
                "the keys are missing: set \(keyName) and \(secretName) (the agent's EnvironmentFile has them)")
        }
        var rest = BybitRESTConfig(baseURL: account.restURL)
        rest.symbol = configuration.instrument.symbol
        rest.recvWindowMs = configuration.exchange.recvWindowMs
        let client = BybitRESTClient(config: rest, credentials: BybitCredentials(apiKey: key, apiSecret: secret))
        let instrument = resolved.instrument
        func say(_ s: String) { print(s) }
        _ = try client.syncTime()
        let cancelled = try client.cancelAll()
        say("cancelled \(cancelled.count) open order(s)")
        func position() throws -> Lots {
            var signed: Lots = 0
            for p in try client.positions() where p.symbol == instrument.symbol {
                if let side = p.side, let lots = instrument.lots(p.size) { signed += lots * side.sign }
            }
            return signed
        }
        var closed: (id: String, side: Direction, lots: Lots)?
        let wall = wallClockMillis()
        for attempt in 1...3 {
            let pos = try position()
            if pos == 0 {
                say("flat confirmed by the exchange")
                if let closed { try bookInAgentState(resolved, envName: envName, client: client, closed: closed) }
                return
            }
            let side: Direction = pos > 0 ? .short : .long
            let id = "at-d-\(wall)-\(attempt)"
            do {
                _ = try client.createOrder(
                    OrderRequest(
                        side: side, orderType: .market,
                        qty: ScaledDecimal(
                            mantissa: abs(pos) * instrument.qtyStep.mantissa, scale: instrument.qtyStep.scale),
                        orderLinkId: id, reduceOnly: true))
                closed = (id, side, abs(pos))
                say(
                    "close order \(id): \(side) \(ScaledDecimal(mantissa: abs(pos) * instrument.qtyStep.mantissa, scale: instrument.qtyStep.scale)) market reduce-only"
                )
            } catch {
                say("close attempt \(attempt) failed: \(error)")
            }
            for _ in 0..<10 where try position() != 0 { sleepMillis(300) }
        }
        if try position() == 0 {
            say("flat confirmed by the exchange")
            if let closed { try bookInAgentState(resolved, envName: envName, client: client, closed: closed) }
            return
        }
        throw CommandError("NOT flat after three attempts: close the position in the exchange's web interface now")
    }

    /// Books the close in the agent's last snapshot (a flatten exit at the exchange's average price) and halts it.
    private func bookInAgentState(
        _ resolved: ResolvedConfig, envName: String, client: BybitRESTClient,
        closed: (id: String, side: Direction, lots: Lots)
    ) throws {
        let dir = agentStateDirectory(explicit: stateDir, resolved: resolved, environment: envName)
        guard FileManager.default.fileExists(atPath: (dir as NSString).appendingPathComponent("agent.sqlite")) else {
            print(
                "no agent state in \(dir): the next start will halt with position_mismatch until the state is set aside"
            )
            return
        }
        let store = try AgentStore(directory: dir, instrument: resolved.instrument)
        guard
            let booked = try store.bookDirectFlatten(
                closedOrderId: closed.id, side: closed.side,
                executions: { (try? client.executions(linkId: closed.id)) ?? [] }, wall: .now)
        else { return }
        if let exit = booked.exitPrice {
            print(
                "booked in \(dir): exit at \(resolved.instrument.priceText(exit)) (\(booked.fromExecutions ? "the exchange's average" : "no executions found: entry price"))"
            )
        }
        print(
            "agent state set to halted (operator_flatten_direct); after the start, `atctl --env \(envName) resume` to trade again"
        )
    }
}
