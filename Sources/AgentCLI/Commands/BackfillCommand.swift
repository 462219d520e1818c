import AgentConfig
import AgentSupport
import ArgumentParser
import Daemon
import Engine
import Exchange
import Foundation
import MarketData
import Research

/// `auction-agent backfill`: recorded trades (and quotes) into an environment's store, for an exact first start.
struct BackfillCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backfill",
        abstract: "Import recorded trades (Bybit's daily dumps as they are) and quotes into an environment's database.",
        discussion: """
            For a first start (or after the state directory was lost) with an exact window instead of waiting four \
            hours: the next `run` rebuilds the window from the imported data as from its own recordings, and writes \
            the features rows of every imported minute (the same rows `auction-agent features` gives on the files). \
            Where the files end before now, the start fills the rest from the exchange's 1-minute klines \
            (agent.warm_start: exchange), marked as approximate.

            Files: any number, in any order, .csv or .csv.gz, with the columns `features` accepts; a `symbol` column \
            must name the environment's symbol. Files that overlap in time are refused (a day given twice). Inside \
            each file's time span its prints replace the stored ones (the agent's own recording of them, or klines), \
            so nothing is counted twice; outside it nothing stored changes. One transaction per file.

            Refuses while the environment's agent is running (its state directory is locked): stop it first. The \
            state directory is --state-dir, else agent.state_dir, else $STATE_DIRECTORY, else \
            /var/lib/auction-agent/ENV when it holds a database, else /var/lib/auction-agent/main when its \
            database belongs to ENV (the default unit's), else ./state/ENV.
            """
    )

    @Option(parsing: .upToNextOption, help: ArgumentHelp("Trades CSV files (or .csv.gz).", valueName: "file"))
    var trades: [String] = []

    @Option(parsing: .upToNextOption, help: ArgumentHelp("L1 quotes CSV files (or .csv.gz).", valueName: "file"))
    var quotes: [String] = []

    @Option(help: ArgumentHelp("The agent's state directory.", valueName: "dir"))
    var stateDir: String?

    @Flag(help: "Count and report malformed rows instead of stopping at the first.")
    var skipBadRows = false

    @OptionGroup var config: ConfigOptions

    func validate() throws {
        guard !trades.isEmpty || !quotes.isEmpty else {
            throw ValidationError("give --trades FILE... (and/or --quotes FILE...)")
        }
    }

    func run() throws {
        let resolved = try ConfigLoader.load(config.selection)
        let envName = config.environment ?? resolved.environment ?? "custom"
        let dir = agentStateDirectory(explicit: stateDir, resolved: resolved, environment: envName)
        let report = try Backfill.run(
            trades: trades, quotes: quotes, stateDirectory: dir, resolved: resolved, environment: envName,
            options: ReadOptions(skipBadRows: skipBadRows, expectedSymbol: resolved.instrument.symbol),
            now: wallClockMillis())
        print(report)
    }
}

/// The work of `backfill`, callable from tests.
enum Backfill {
    struct Loaded<Event> {
        var file: String
        var events: [Event]
        var report: LoadReport
        var first: Int64
        var last: Int64
    }

    static func run(
        trades tradeFiles: [String], quotes quoteFiles: [String], stateDirectory dir: String, resolved: ResolvedConfig,
        environment: String, options: ReadOptions, now: Int64
    ) throws -> String {
        let instrument = resolved.instrument
        let lock = try lockOrExplain(dir, environment: environment)
        defer { withExtendedLifetime(lock) {} }
        // Read and check everything before the database changes.
        var loadedTrades: [Loaded<TradeEvent>] = []
        for f in tradeFiles {
            let (events, report) = try readTrades(path: f, instrument: instrument, options: options)
            guard let first = events.first?.ts, let last = events.last?.ts else {
                throw CommandError("\(f): no trades")
            }
            loadedTrades.append(Loaded(file: f, events: events, report: report, first: first, last: last))
        }
        var loadedQuotes: [Loaded<QuoteEvent>] = []
        for f in quoteFiles {
            let (events, report) = try readQuotes(path: f, instrument: instrument, options: options)
            guard let first = events.first?.ts, let last = events.last?.ts else {
                throw CommandError("\(f): no quotes")
            }
            loadedQuotes.append(Loaded(file: f, events: events, report: report, first: first, last: last))
        }
        loadedTrades.sort { $0.first < $1.first }
        loadedQuotes.sort { $0.first < $1.first }
        try refuseOverlaps(loadedTrades.map { ($0.file, $0.first, $0.last) }, what: "trades")
        try refuseOverlaps(loadedQuotes.map { ($0.file, $0.first, $0.last) }, what: "quotes")
        if let late = (loadedTrades.map(\.last) + loadedQuotes.map(\.last)).max(), late > now {
            throw CommandError(
                "the files reach \(isoTime(late)), after now (\(isoTime(now))): check their timestamps' unit")
        }

        let store = try AgentStore(directory: dir, instrument: instrument)
        if let owner = try store.meta("environment"), owner != environment {
            throw CommandError(
                "the database in \(dir) belongs to environment \(owner), not \(environment): give that environment or --state-dir"
            )
        }
        var lines = ["backfill into \(store.path) (environment \(environment))"]
        for l in loadedTrades {
            let c = try store.importTrades(l.events)
            lines.append(
                "  \(l.file): \(c.inserted) trades \(isoTime(l.first, milliseconds: true)) … \(isoTime(l.last, milliseconds: true))"
                    + (c.replaced > 0 ? ", replacing \(c.replaced) stored" : "")
                    + (c.klineMinutesReplaced > 0 ? ", \(c.klineMinutesReplaced) kline minutes now exact" : "")
                    + (l.report.reversed ? " (newest first in the file: read in reverse)" : "")
                    + (l.report.skippedRows > 0 ? ", \(l.report.skippedRows) bad rows skipped" : ""))
        }
        for l in loadedQuotes {
            let c = try store.importQuotes(l.events)
            lines.append(
                "  \(l.file): \(c.inserted) quotes \(isoTime(l.first, milliseconds: true)) … \(isoTime(l.last, milliseconds: true))"
                    + (c.replaced > 0 ? ", replacing \(c.replaced) stored" : ""))
        }
        for (a, b) in zip(loadedTrades, loadedTrades.dropFirst())
        where minuteStart(of: b.first) - minuteStart(of: a.last) > millisPerMinute {
            lines.append(
                "  no trades between \(isoTime(a.last, milliseconds: true)) and \(isoTime(b.first, milliseconds: true)) "
                    + "(\((b.first - a.last) / millisPerMinute) minutes): a missing file?")
        }
        if let end = loadedTrades.map(\.last).max() {
            let configuration = AgentConfiguration(resolved, environment: environment)
            let window = max(configuration.features.rollingWindowMinutes, configuration.strategy.warmupMinutes)
            let gap = (minuteStart(of: now) - minuteStart(of: end)) / millisPerMinute - 1
            if gap > 0 {
                let fill =
                    configuration.agent.warmFromExchange
                    ? "the next start fills the last \(min(Int64(window + 2), gap)) of them from the exchange's klines (approximate, reported)"
                    : "agent.warm_start is off: they stay empty and the window warms from live data"
                lines.append("  the files end \(gap) minutes before now (\(isoTime(end))): \(fill)")
            } else {
                lines.append("  the files reach the current minute: the next start is exact")
            }
            let retention = Int64(configuration.agent.rawRetentionHours) * 3_600_000
            if let start = loadedTrades.map(\.first).min(), start < now - retention {
                lines.append(
                    "  data older than agent.raw_retention_hours (\(configuration.agent.rawRetentionHours) h) is purged by the "
                        + "running agent after its features rows are written at the next start")
            }
        }
        return lines.joined(separator: "\n")
    }

    static func lockOrExplain(_ dir: String, environment: String) throws -> StateLock {
        do {
            return try StateLock.acquire(directory: dir, holder: "auction-agent backfill --env \(environment)")
        } catch let e as CommandError {
            throw CommandError(
                "\(e.description); stop the agent first (systemctl stop auction-agent or auction-agent@\(environment)), "
                    + "then run backfill again")
        }
    }

    static func refuseOverlaps(_ spans: [(file: String, first: Int64, last: Int64)], what: String) throws {
        for (a, b) in zip(spans, spans.dropFirst()) where b.first <= a.last {
            throw CommandError(
                "\(what) files overlap: \(a.file) runs to \(isoTime(a.last, milliseconds: true)) and \(b.file) starts at "
                    + "\(isoTime(b.first, milliseconds: true)); give each day once")
        }
    }
}
