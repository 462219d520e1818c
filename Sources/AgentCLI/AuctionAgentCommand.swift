import AgentConfig
import AgentSupport
public import ArgumentParser
import Daemon
import Foundation
import MarketData
import Research

/// `auction-agent`: the trading agent's executable and its offline tools.
public struct AuctionAgentCommand: AsyncParsableCommand {
    public static let configuration = CommandConfiguration(
        commandName: "auction-agent",
        abstract: "Auction Market Theory trading agent for Bybit BTC perpetuals.",
        discussion: """
            Configuration: --env NAME finds NAME.yaml in --config-dir, $AUCTION_CONFIG_DIR, \
            /etc/auction-agent/environments, then ./config/environments; --config FILE names a file; \
            --set group.key=value overrides any parameter (repeatable). Each command's --help says more; the \
            operator's pages are in runbooks/.
            """,
        version: agentVersion,
        // The parser lists each group's commands with their own abstracts, wrapped to the terminal.
        groupedSubcommands: [
            CommandGroup(
                name: "Agent",
                subcommands: [
                    RunCommand.self, FlattenDirectCommand.self, PreflightCommand.self, ConfigCommand.self,
                    BackupCommand.self, RecordCommand.self, BackfillCommand.self, ExportCommand.self,
                    ReplayCommand.self,
                ]),
            CommandGroup(
                name: "Research",
                subcommands: [
                    FeaturesCommand.self, BacktestCommand.self, GridCommand.self, WalkForwardCommand.self,
                    SimulateCommand.self, SimExchangeCommand.self,
                ]),
        ]
    )

    public init() {}
}

/// The entry point of the `auction-agent` executable (call `unblockStopSignals()` first, on the main thread).
public func runAuctionAgent() async {
    await AuctionAgentCommand.main()
}

/// `--env`, `--config`, `--config-dir` and `--set`, shared by every command that reads configuration.
struct ConfigOptions: ParsableArguments {
    @Option(
        name: .customLong("env"),
        help: ArgumentHelp("Environment name: NAME.yaml on the search path.", valueName: "name"))
    var environment: String?

    @Option(
        name: .customLong("config"), help: ArgumentHelp("A configuration file (instead of --env).", valueName: "file"))
    var configFile: String?

    @Option(
        name: .customLong("config-dir"), help: ArgumentHelp("First directory searched for --env.", valueName: "dir"))
    var configDirectory: String?

    @Option(
        name: .customLong("set"),
        help: ArgumentHelp(
            "Override one parameter, e.g. --set value_area.va_fraction=0.68 (repeatable).", valueName: "group.key=value"
        )
    )
    var overrides: [String] = []

    var selection: ConfigSelection {
        ConfigSelection(environment: environment, file: configFile, directory: configDirectory, overrides: overrides)
    }
}

/// `config.yaml` in a research run's output directory: every parameter with its value and where it came from, and
/// the version that ran; `--config DIR/config.yaml` on the same inputs runs it again.
func writeRunConfiguration(_ resolved: ResolvedConfig, to directory: String, command: String) throws {
    try writeRunConfiguration(
        resolved, toFile: (directory as NSString).appendingPathComponent("config.yaml"), command: command)
}

/// The configuration of a run written to `path` (`features` writes it beside its file).
func writeRunConfiguration(_ resolved: ResolvedConfig, toFile path: String, command: String) throws {
    let name = (path as NSString).lastPathComponent
    let text =
        "# auction-agent \(agentVersion) \(command): the configuration of this run. Run it again on the same inputs\n"
        + "# with --config \(name) (comments say where each value came from).\n" + ConfigLoader.render(resolved)
    try writeAtomically(Array(text.utf8), to: path)
}

/// `--from` / `--to` of the research commands: a date, an ISO 8601 time or epoch milliseconds; `to` after `from`.
/// The state directory of an environment's agent for the commands that open its database while it is stopped or
/// beside it (backfill, export, flatten-direct): --state-dir, else agent.state_dir, else the systemd and local rules
/// of `StateLock.stateDirectory`.
func agentStateDirectory(explicit: String?, resolved: ResolvedConfig, environment: String) -> String {
    StateLock.stateDirectory(
        explicit: explicit, configured: AgentConfiguration(resolved, environment: environment).agent.stateDirectory,
        environment: environment, processEnvironment: ProcessInfo.processInfo.environment, lookForPackaged: true)
}

func timeRange(from: String?, to: String?) throws -> TimeRange {
    var range = TimeRange()
    for (name, text) in [("--from", from), ("--to", to)] {
        guard let text else { continue }
        guard let ms = TimeRange.parseTime(text) else {
            throw ValidationError(
                "\(name) \(text): expected a date (2024-03-01), an ISO 8601 time (2024-03-01T12:00:00Z) or epoch milliseconds"
            )
        }
        if name == "--from" { range.from = ms } else { range.to = ms }
    }
    if let f = range.from, let t = range.to, t <= f { throw ValidationError("--to must be after --from") }
    return range
}
