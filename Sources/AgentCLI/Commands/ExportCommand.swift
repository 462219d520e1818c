import AgentConfig
import AgentSupport
import ArgumentParser
import Daemon
import Engine
import Exchange
import Foundation
import MarketData

/// `auction-agent export`: the raw market data an agent stored, as daily files the research commands read.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract:
            "Write the trades and quotes an agent stored as daily files (Bybit's dump format, quotes-DAY.csv.gz).",
        discussion: """
            Reads the environment's database (also while its agent runs: reading takes no lock) and writes into DIR \
            one file per UTC day and kind, as `record` does: trades as Bybit's daily dumps \
            (SYMBOLYYYY-MM-DD.csv.gz; trdMatchID is empty, the store keeps no trade ids) and quotes as \
            quotes-YYYY-MM-DD.csv.gz, plus gaps.csv with the gaps the agent recorded (the public stream's, and \
            market data a full disk made it drop). `backtest`, \
            `features`, `grid` and `walkforward` take DIR as both --trades and --quotes.

            The agent keeps raw data for agent.raw_retention_hours (48 by default; 0 keeps it): export before it \
            is purged. Files already in DIR are never overwritten or appended to: a day whose file exists stops \
            the export before anything is written. The state directory is found as for `backfill`.
            """
    )

    @Option(help: ArgumentHelp("First time to export (inclusive): a date, ISO 8601 or epoch ms.", valueName: "time"))
    var from: String?

    @Option(help: ArgumentHelp("End of the export (exclusive).", valueName: "time"))
    var to: String?

    @Option(help: ArgumentHelp("Directory to write the daily files into (created if missing).", valueName: "dir"))
    var out: String

    @Option(help: ArgumentHelp("The agent's state directory.", valueName: "dir"))
    var stateDir: String?

    @OptionGroup var config: ConfigOptions

    func run() throws {
        let range = try timeRange(from: from, to: to)
        let resolved = try ConfigLoader.load(config.selection)
        let envName = config.environment ?? resolved.environment ?? "custom"
        let dir = agentStateDirectory(explicit: stateDir, resolved: resolved, environment: envName)
        let report = try Export.run(
            stateDirectory: dir, environment: envName, instrument: resolved.instrument, range: range, out: out)
        FileHandle.standardError.write(Data((report + "\n").utf8))
    }
}

/// The database of an environment's agent, for the commands that read it beside the agent (export, replay): it
/// must exist and belong to `environment`.
func openAgentStore(directory dir: String, environment: String, instrument: Instrument) throws -> AgentStore {
    let path = (dir as NSString).appendingPathComponent("agent.sqlite")
    guard FileManager.default.fileExists(atPath: path) else {
        throw CommandError("\(path): no agent database (give --env or --state-dir of an agent that has run)")
    }
    let store = try AgentStore(directory: dir, instrument: instrument)
    if let owner = try store.meta("environment"), owner != environment {
        throw CommandError(
            "the database in \(dir) belongs to environment \(owner), not \(environment): give that environment or --state-dir"
        )
    }
    return store
}

/// The work of `export`, callable from tests.
enum Export {
    static func run(
        stateDirectory dir: String, environment: String, instrument: Instrument, range: TimeRange, out: String
    ) throws -> String {
        let store = try openAgentStore(directory: dir, environment: environment, instrument: instrument)
        let from = range.from ?? .min
        let to = range.to ?? .max
        // Every day the export would write, checked before anything is: existing files are never touched.
        var days = Set<String>()
        _ = try store.replayRaw(from: from, to: to) { e in days.insert(MarketDayNames.day(of: e.ts)) }
        guard !days.isEmpty else {
            throw CommandError(
                "\(store.path): no raw trades or quotes"
                    + (range == .all ? "" : " in the range")
                    + " (kept for agent.raw_retention_hours; 0 keeps them)")
        }
        for day in days.sorted() {
            for name in [MarketDayNames.trades(symbol: instrument.symbol, day: day), MarketDayNames.quotes(day: day)] {
                let target = (out as NSString).appendingPathComponent(name)
                if FileManager.default.fileExists(atPath: target) {
                    throw CommandError(
                        "\(target): exists; export writes new files only (remove it or choose another --out)")
                }
            }
        }
        let files = try MarketDayFiles(directory: out, instrument: instrument)
        let counts = try store.replayRaw(from: from, to: to) { e in
            switch e {
            case .trade(let t): try files.write(t, id: "")
            case .quote(let q): try files.write(q)
            }
        }
        try files.close()
        let gaps = try store.gaps(from: from, to: to).map {
            RecordedGap(
                from: max($0.fromTs, from), to: min($0.toTs, to),
                cause: $0.cause == "storage" ? "records lost to a storage fault (agent)" : "public stream gap (agent)")
        }
        try GapsFile.append(gaps, to: out)
        return "export: \(grouped(counts.trades)) trades and \(grouped(counts.quotes)) quotes of \(store.path) "
            + "(environment \(environment)) into \(files.opened.count) files in \(out), \(days.count) day"
            + (days.count == 1 ? "" : "s") + " (\(days.min()!) .. \(days.max()!))"
            + (gaps.isEmpty ? "" : "; \(gaps.count) gaps in \(out)/gaps.csv")
    }
}
