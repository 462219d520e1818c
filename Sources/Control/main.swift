import ArgumentParser
import ControlProtocol
import Foundation
import Synchronization

let atctlVersion = "0.2.0"

/// `atctl`: the operator's client of the agent's control socket.
struct ATCtl: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "atctl",
        abstract: "Operator's client of the auction-agent control socket.",
        discussion: """
            Talks to a running `auction-agent run` over its Unix socket: --socket PATH, or --env NAME, which \
            uses /run/auction-agent/NAME/control.sock when it exists (the systemd unit's RuntimeDirectory) and \
            ./run/NAME/control.sock otherwise (an agent started by hand). Without either, --env comes from \
            $AUCTION_ENV, else `sim`.

            Tables for people; --json prints the agent's reply line as is, for scripts.
            Exit status: 0 done, 1 refused or failed (the reason is printed), 2 usage, 3 agent unreachable, \
            4 timeout.
            """,
        version: atctlVersion,
        subcommands: [
            Status.self, Health.self, Positions.self, Orders.self, PnL.self, VA.self, Signals.self, Alerts.self,
            Activate.self, Pause.self, Resume.self, Flatten.self, KillSwitch.self, Reload.self, Version.self,
        ]
    )

    /// Exit statuses of our own: 2 for usage errors (ArgumentParser's is 64), then 1, 3 and 4 from the outcome.
    static func main() {
        do {
            var command = try parseAsRoot(hoistingGlobalOptions(Array(CommandLine.arguments.dropFirst())))
            try command.run()
            Foundation.exit(0)
        } catch let f as ClientFailure {
            FileHandle.standardError.write(Data("atctl: \(f.message)\n".utf8))
            Foundation.exit(f.outcome.rawValue)
        } catch let code as ExitCode {
            Foundation.exit(code.rawValue)
        } catch {
            let text = fullMessage(for: error)
            if exitCode(for: error) == .success {
                print(text)
                Foundation.exit(0)
            }
            FileHandle.standardError.write(Data("\(text)\n".utf8))
            Foundation.exit(Outcome.usage.rawValue)
        }
    }
}

/// `atctl --env sim status` and `atctl status --env sim` mean the same: the global options written before the
/// command move behind it (ArgumentParser reads a subcommand's options only after its name).
func hoistingGlobalOptions(_ args: [String]) -> [String] {
    let valued: Set<String> = ["--env", "--socket", "--timeout"]
    var moved: [String] = []
    var rest: [String] = []
    var i = 0
    var seenCommand = false
    while i < args.count {
        let a = args[i]
        if !seenCommand, valued.contains(a), i + 1 < args.count {
            moved += [a, args[i + 1]]
            i += 2
            continue
        }
        if !seenCommand, a == "--json" || valued.contains(where: { a.hasPrefix($0 + "=") }) {
            moved.append(a)
        } else {
            if !a.hasPrefix("-") { seenCommand = true }
            rest.append(a)
        }
        i += 1
    }
    return seenCommand ? rest + moved : args
}

/// `--env`, `--socket`, `--json`, `--timeout`, on every command.
struct GlobalOptions: ParsableArguments {
    @Option(name: .customLong("env"), help: ArgumentHelp("Environment whose agent to talk to.", valueName: "name"))
    var environment: String?

    @Option(help: ArgumentHelp("Control socket path (instead of --env).", valueName: "path"))
    var socket: String?

    @Flag(help: "Print the agent's reply as JSON.")
    var json = false

    @Option(help: ArgumentHelp("Seconds to wait for the agent.", valueName: "seconds"))
    var timeout: Double = 10

    func validate() throws {
        guard timeout > 0 else { throw ValidationError("--timeout must be positive") }
        if environment != nil && socket != nil { throw ValidationError("give --env or --socket, not both") }
    }

    var path: String {
        if let socket { return socket }
        let env = environment ?? ProcessInfo.processInfo.environment["AUCTION_ENV"] ?? "sim"
        return ControlSocketPath.forClient(environment: env) { FileManager.default.fileExists(atPath: $0) }
    }

    func connect(timeout seconds: Double? = nil) throws(ClientFailure) -> ControlConnection {
        try ControlConnection(path: path, timeoutSeconds: seconds ?? timeout)
    }

    /// One request; prints the result as a table (or the reply as JSON).
    func show<R: Codable & Sendable>(
        _ cmd: String, args: [String: ControlArg] = [:], _ type: R.Type, render: (R?) -> String
    ) throws {
        let connection = try connect()
        if json {
            let line = try connection.call(cmd, args: args)
            print(String(decoding: line, as: UTF8.self))
            try ControlConnection.check(line)
            return
        }
        let (result, _) = try connection.request(cmd, args: args, as: type)
        print(render(result), terminator: "")
    }

    /// A command that changes something: prints what the agent did.
    func act(_ cmd: String, args: [String: ControlArg] = [:], timeout seconds: Double? = nil) throws {
        let connection = try connect(timeout: seconds)
        if json {
            let line = try connection.call(cmd, args: args)
            print(String(decoding: line, as: UTF8.self))
            try ControlConnection.check(line)
            return
        }
        let (result, _) = try connection.request(cmd, args: args, as: ActionReport.self)
        guard let r = result else { return }
        print("\(r.message) (state \(Style.state(r.state)))")
        for s in r.steps { print("  - \(s)") }
    }
}

extension ATCtl {
    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "One screen: environment, mode, state and why, position, P&L, kill switch, heat, value area, last signal, data age, health."
        )
        @OptionGroup var global: GlobalOptions
        func run() throws { try global.show("status", StatusReport.self) { $0.map(renderStatus) ?? "" } }
    }

    struct Health: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "healthy, degraded or unhealthy, with the reasons: data age, streams, database, loop lag, clock offset, watchdog."
        )
        @OptionGroup var global: GlobalOptions
        func run() throws { try global.show("health", HealthReport.self) { $0.map(renderHealth) ?? "" } }
    }

    struct Positions: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The open position with its stop, targets and unrealized P&L.")
        @OptionGroup var global: GlobalOptions
        func run() throws {
            try global.show("positions", [PositionReport].self) { ps in
                guard let ps, !ps.isEmpty else { return "flat\n" }
                return table(
                    ["SIDE", "QTY", "ENTRY", "STOP", "TP1", "TP2", "SETUP", "UNREALIZED", "SINCE"],
                    ps.map {
                        [
                            $0.side, $0.qty, $0.entryPrice, $0.stop, $0.tp1 ?? "-", $0.tp2 ?? "-", $0.setup,
                            Style.money($0.unrealizedPnL), $0.entryTime,
                        ]
                    })
            }
        }
    }

    struct Orders: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Working orders with their deterministic orderLinkIds.")
        @OptionGroup var global: GlobalOptions
        func run() throws {
            try global.show("orders", [OrderReport].self) { os in
                guard let os, !os.isEmpty else { return "no working orders\n" }
                return table(
                    ["ORDER LINK ID", "SIDE", "QTY", "TYPE", "PRICE", "REDUCE", "PURPOSE", "DECIDED"],
                    os.map {
                        [
                            $0.id, $0.side, $0.qty, $0.type, $0.price ?? "-", $0.reduceOnly ? "yes" : "no", $0.purpose,
                            $0.decidedAt,
                        ]
                    })
            }
        }
    }

    struct PnL: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "pnl", abstract: "Equity, today's P&L, the kill switch's distance, fees, funding.")
        @OptionGroup var global: GlobalOptions
        func run() throws {
            try global.show("pnl", PnLReport.self) { p in
                guard let p else { return "" }
                return table(
                    ["", "USDT"],
                    [
                        ["equity", String(format: "%.2f", p.equity)], ["today", Style.money(p.todayPnL)],
                        ["unrealized", Style.money(p.unrealizedPnL)],
                        ["day start equity", String(format: "%.2f", p.dayStartEquity)],
                        ["realised today", p.realizedToday.map(Style.money) ?? "-"],
                        ["daily loss limit", p.dailyLossLimit.map { String(format: "%.2f", $0) } ?? "off"],
                        [
                            "daily loss limit left",
                            p.dailyLossLimitReached == true
                                ? Style.red("REACHED, no entries until 00:00 UTC")
                                : p.dailyLossDistance.map { String(format: "%.2f", $0) } ?? "-",
                        ],
                        ["kill switch at", p.killSwitchLoss.map { String(format: "%.2f", $0) } ?? "off"],
                        [
                            "kill switch",
                            p.killSwitchActive
                                ? Style.red("ACTIVE")
                                : p.killSwitchDistance.map { "in " + String(format: "%.2f", $0) } ?? "off",
                        ],
                        ["fees paid", String(format: "%.2f", p.feesPaid)],
                        ["funding paid", String(format: "%.2f", p.fundingPaid)],
                        ["net since start", Style.money(p.netPnLAllTime)],
                        ["round trips", "\(p.roundTrips) (\(p.winningRoundTrips) won)"],
                    ])
            }
        }
    }

    struct VA: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "va",
            abstract:
                "The value area of the last closed minute: POC, VAH, VAL, validity, how much of it is from klines, and "
                + "how its order flow was measured (quote_rule or bvc).")
        @OptionGroup var global: GlobalOptions
        func run() throws {
            try global.show("va", ValueAreaReport.self) { v in
                guard let v else { return "" }
                return table(
                    [
                        "MINUTE", "CLOSE", "POC", "VAH", "VAL", "VALID", "BIN", "COVERAGE", "WINDOW", "FROM KLINES",
                        "ORDER FLOW",
                    ],
                    [
                        [
                            v.minute, v.close, v.poc ?? "-", v.vah ?? "-", v.val ?? "-",
                            v.valid ? "yes" : Style.yellow("no"), v.binWidth,
                            v.coverage.map { String(format: "%.3f", $0) } ?? "-", "\(v.minutesInWindow) min",
                            v.approximateShare > 0
                                ? String(format: "%.1f%% (%d min)", v.approximateShare * 100, v.approximateMinutes)
                                : "none",
                            v.orderFlowMethod ?? "-",
                        ]
                    ])
            }
        }
    }

    struct Signals: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "The last minutes' decisions: action, reason code (setup or veto), setups detected, acceptance state.")
        @OptionGroup var global: GlobalOptions
        @Option(help: "How many minutes.") var last = 20
        func validate() throws {
            guard (1...10_000).contains(last) else { throw ValidationError("--last must be 1...10000") }
        }
        func run() throws {
            try global.show("signals", args: ["last": .number(Double(last))], [SignalReport].self) { rows in
                table(
                    ["MINUTE", "ACTION", "REASON", "DETECTED", "ABOVE VAH", "BELOW VAL"],
                    (rows ?? []).map {
                        [
                            $0.minute, $0.action, $0.reason, $0.detected.joined(separator: " "), $0.acceptanceAbove,
                            $0.acceptanceBelow,
                        ]
                    })
            }
        }
    }

    struct Alerts: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "The latest alerts (also sent to the webhook and logged).")
        @OptionGroup var global: GlobalOptions
        @Option(help: "How many alerts.") var last = 20
        func validate() throws {
            guard (1...10_000).contains(last) else { throw ValidationError("--last must be 1...10000") }
        }
        func run() throws {
            try global.show("alerts", args: ["last": .number(Double(last))], [AlertReport].self) { rows in
                guard let rows, !rows.isEmpty else { return "no alerts\n" }
                return table(
                    ["TIME", "SEVERITY", "KIND", "MESSAGE"],
                    rows.map {
                        [
                            $0.time, $0.severity == "critical" ? Style.red($0.severity) : $0.severity, $0.kind,
                            $0.message,
                        ]
                    })
            }
        }
    }

    struct Activate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Start trading after warm-up: observing → active (needed when agent.require_manual_activation is on).")
        @OptionGroup var global: GlobalOptions
        func run() throws { try global.act("activate") }
    }

    struct Pause: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "No new entries; an open position's stop, targets and time stop are still managed.")
        @OptionGroup var global: GlobalOptions
        func run() throws { try global.act("pause") }
    }

    struct Resume: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Leave paused, or halted once its cause is cleared (after a kill switch: kill-switch reset first).")
        @OptionGroup var global: GlobalOptions
        func run() throws { try global.act("resume") }
    }

    struct Flatten: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract:
                "Emergency: cancel every working order, close the whole position with a reduce-only market order, halt.",
            discussion: """
                Returns only when the agent has confirmed the position flat (exit 0) or the flatten failed or timed \
                out (exit 1 or 4; the agent keeps trying). A second flatten while one runs joins it. Asks for \
                confirmation on a terminal unless --yes. The agent stays halted (reason operator_flatten) until \
                `atctl resume`.
                """
        )
        @OptionGroup var global: GlobalOptions
        @Flag(help: "Do not ask for confirmation.") var yes = false
        @Option(name: .customLong("wait"), help: ArgumentHelp("Seconds to wait for flat.", valueName: "seconds"))
        var wait = 120

        func run() throws {
            let path = global.path
            if !yes && isatty(0) == 1 {
                print(
                    "Flatten the agent at \(path): cancel all orders, close the position, halt trading? [y/N] ",
                    terminator: "")
                fflush(nil)
                guard let answer = readLine(), ["y", "yes"].contains(answer.lowercased()) else {
                    print("not flattened")
                    throw ClientFailure(outcome: .refused, message: "cancelled by the operator")
                }
            }
            if !global.json { print("flattening...") }
            let progress = global.json ? nil : ProgressPrinter(options: global)
            progress?.start()
            defer { progress?.stop() }
            try global.act("flatten", args: ["timeout": .number(Double(wait))], timeout: Double(wait) + 15)
        }
    }

    struct KillSwitch: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "kill-switch", abstract: "The daily-loss kill switch.", subcommands: [Reset.self])

        struct Reset: ParsableCommand {
            static let configuration = CommandConfiguration(
                abstract:
                    "Clear a fired kill switch; today's loss is then measured from the equity now. Trading stays halted until `atctl resume`."
            )
            @OptionGroup var global: GlobalOptions
            func run() throws { try global.act("kill-switch-reset") }
        }
    }

    struct Reload: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Re-read the environment's configuration.",
            discussion: """
                Signal, sizing, risk and execution parameters apply at once. value_area and order_flow changes \
                rebuild the window and are refused while a position or order is open. instrument, exchange, sim, \
                agent.mode, agent.state_dir and live.armed need a restart.
                """
        )
        @OptionGroup var global: GlobalOptions
        func run() throws { try global.act("reload") }
    }

    struct Version: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "atctl's version, and the agent's when it answers.")
        @OptionGroup var global: GlobalOptions
        func run() throws {
            print("atctl \(atctlVersion)")
            let connection = try global.connect()
            let (v, line) = try connection.request("version", as: VersionReport.self)
            if global.json {
                print(String(decoding: line, as: UTF8.self))
            } else if let v {
                print("auction-agent \(v.version) (environment \(v.environment), mode \(v.mode), pid \(v.pid))")
            }
        }
    }
}

/// Prints state and position changes while a flatten runs (a second connection polling `status`).
final class ProgressPrinter: Sendable {
    private let options: GlobalOptions
    private let stopped = Mutex(false)
    private let done = DispatchSemaphore(value: 0)

    init(options: GlobalOptions) { self.options = options }

    func start() {
        let t = Thread { [self] in
            defer { done.signal() }
            guard let c = try? options.connect(timeout: 2) else { return }
            var last = ""
            while !stopped.withLock({ $0 }) {
                if let (s, _) = try? c.request("status", as: StatusReport.self), let s {
                    let pos = s.position.map { "\($0.side) \($0.qty)\($0.closing ? " (closing)" : "")" } ?? "flat"
                    let text = "  state \(s.state), position \(pos), \(s.workingOrders) working order(s)"
                    if text != last {
                        print(text)
                        fflush(nil)
                        last = text
                    }
                }
                usleep(250_000)
            }
        }
        t.start()
    }

    func stop() {
        stopped.withLock { $0 = true }
        done.wait()
    }
}

ATCtl.main()
