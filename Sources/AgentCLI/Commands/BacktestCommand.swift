import AgentConfig
import AgentSupport
import ArgumentParser
import Daemon
import Engine
import Foundation
import MarketData
import Research

/// `auction-agent backtest`: the Engine over recorded data, with the paper fill model.
struct BacktestCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "backtest",
        abstract: "Backtest the strategy on recorded trades and quotes.",
        discussion: """
            Runs the same Engine the agent runs (features, setups, sizing, position management) with the paper fill \
            model of docs/SPEC.md §10 and writes into --out: trades.csv (one row per round trip), fills.csv (every fill), \
            signals.csv (per minute: the six setup flags, action, reason code, acceptance state), equity.csv (per \
            minute), metrics.json (docs/SPEC.md §12, overall and per setup), report.html (a self-contained page) and \
            config.yaml (every parameter and where it came from; --config OUT/config.yaml runs it again). \
            A position still open at the end is closed at the last quote (exit reason end_of_data). \
            --bars-only --features FILE replays a stored features file without ticks: market orders fill at the \
            decision's close quote, stops and targets at their level when a later bar reaches it (the stop first when \
            a bar reaches both); see docs/STRATEGY.md. \
            The same inputs and configuration always write the same bytes. Input formats as for `features`.

            Months of data: --trades and --quotes each take several files, directories (their .csv and .csv.gz \
            files) and quoted glob patterns ('data/trades/*.csv.gz'), daily dumps in any order. They are read as one \
            time-ordered stream (each kind on its own thread, a file that runs forward in time streamed in chunks, \
            a newest-first one such as Bybit's dumps reversed through a temporary file in TMPDIR, default /tmp, 32 \
            bytes a trade) and each minute's signals, equity and report data are written to DIR as they are produced, so memory \
            does not grow with the number of days. A file overlapping the one before it stops the run naming both; days in the range with no file \
            are listed in the summary; inputs.csv lists every file read with its first and last time, rows, size and SHA-256. \
            --from and --to (a date, ISO 8601 time or epoch milliseconds; --to exclusive) select a time range.
            """
    )

    @Option(
        parsing: .upToNextOption,
        help: ArgumentHelp("Trades CSV files (or .csv.gz), directories or quoted glob patterns.", valueName: "file"))
    var trades: [String] = []

    @Option(
        parsing: .upToNextOption,
        help: ArgumentHelp(
            "L1 quotes CSV files (or .csv.gz), directories or patterns. Needed for fills.", valueName: "file"))
    var quotes: [String] = []

    @Option(
        help: ArgumentHelp("Start of the time range (a date, ISO 8601 time or epoch ms; inclusive).", valueName: "time")
    )
    var from: String?

    @Option(help: ArgumentHelp("End of the time range (exclusive).", valueName: "time"))
    var to: String?

    @Flag(help: "Replay a stored features file (--features) without ticks, with the bar fill rule of docs/SPEC.md §10.")
    var barsOnly = false

    @Option(
        help: ArgumentHelp("With --bars-only: a features CSV written by `auction-agent features`.", valueName: "file"))
    var features: String?

    @Option(help: ArgumentHelp("Directory for the outputs (created if missing).", valueName: "dir"))
    var out: String

    @Flag(
        help: ArgumentHelp(
            "Also compare, every --warm-every minutes, the value area an agent would warm from this data's 1-minute klines alone with "
                + "the exact one: warm_from_klines.csv and p50/p99 in the summary (docs/FEATURES.md, \"Warm start from klines\")."
        ))
    var warmFromKlines = false

    @Option(help: ArgumentHelp("With --warm-from-klines: minutes between compared minutes.", valueName: "minutes"))
    var warmEvery = 10

    @Flag(help: "Count and report malformed rows instead of stopping at the first.")
    var skipBadRows = false

    @OptionGroup var config: ConfigOptions

    func validate() throws {
        guard warmEvery >= 1 else { throw ValidationError("--warm-every must be at least 1") }
        if barsOnly {
            guard features != nil else { throw ValidationError("--bars-only needs --features FILE") }
            guard trades.isEmpty && quotes.isEmpty && from == nil && to == nil else {
                throw ValidationError("--bars-only replays --features; drop --trades/--quotes/--from/--to")
            }
            guard !warmFromKlines else {
                throw ValidationError("--warm-from-klines needs the trades (not --bars-only)")
            }
        } else {
            guard !trades.isEmpty && !quotes.isEmpty else {
                throw ValidationError("give --trades and --quotes (or --bars-only --features FILE)")
            }
            guard features == nil else { throw ValidationError("--features is for --bars-only") }
            _ = try timeRange(from: from, to: to)
        }
    }

    func run() throws {
        let resolved = try ConfigLoader.load(config.selection)
        let instrument = resolved.instrument
        let started = Date()
        if barsOnly, let features {
            let minutes = try readFeatures(path: features, instrument: instrument)
            guard !minutes.isEmpty else { throw CommandError(description: "\(features): no minutes") }
            let result = runBarBacktest(minutes, strategy: resolved.strategy, instrument: instrument)
            try writeBacktest(
                result, to: out, instrument: instrument, initialEquity: resolved.strategy.initialEquity,
                title: "auction-trader backtest (bars only): \(URL(fileURLWithPath: features).lastPathComponent)",
                parameters: ConfigLoader.researchParameters(resolved))
            try writeRunConfiguration(resolved, to: out, command: "backtest --bars-only")
            let summary =
                result.render(directory: out) + String(format: "\ntime: %.2f s", Date().timeIntervalSince(started))
            FileHandle.standardError.write(Data((summary + "\n").utf8))
            return
        }
        let options = ReadOptions(skipBadRows: skipBadRows)
        let range = try timeRange(from: from, to: to)
        var market = RecordedMarket(
            trades: try .trades(
                RecordedInputs.expand(trades, what: "--trades"), instrument: instrument, options: options, range: range),
            quotes: try .quotes(
                RecordedInputs.expand(quotes, what: "--quotes"), instrument: instrument, options: options, range: range)
        )
        let bar = ProgressBar("backtest")
        // Each minute's records go to the output directory as the run goes: memory stays flat over any number of days.
        let spill = try BacktestSpill(
            directory: out, instrument: instrument, initialEquity: resolved.strategy.initialEquity, profiles: true,
            keepFeatures: warmFromKlines)
        let result = try runSpilledBacktest(
            market: &market, features: resolved.features, strategy: resolved.strategy, instrument: instrument,
            spill: spill, progress: bar.update)
        let coverage = market.coverage
        guard coverage.trades.contains(where: { $0.rows > 0 }) else {
            throw CommandError(
                description: "\(trades.joined(separator: " ")): no trades\(range == .all ? "" : " in the range")")
        }
        guard coverage.quotes?.contains(where: { $0.rows > 0 }) == true else {
            throw CommandError(
                description:
                    "\(quotes.joined(separator: " ")): no quotes\(range == .all ? "" : " in the range"); fills need quotes"
            )
        }
        for report in market.trades.reports + (market.quotes?.reports ?? []) where report.skippedRows > 0 {
            FileHandle.standardError.write(Data("\(report.file): \(report.skippedRows) bad rows skipped\n".utf8))
        }
        let name =
            trades.count == 1 && coverage.trades.count == 1
            ? URL(fileURLWithPath: trades[0]).lastPathComponent : "\(coverage.trades.count) trades files"
        try writeSpilledBacktest(
            result, spill: spill, to: out, instrument: instrument, title: "auction-trader backtest: \(name)",
            coverage: coverage, parameters: ConfigLoader.researchParameters(resolved))
        try writeRunConfiguration(resolved, to: out, command: "backtest")
        var summary = ([result.render(directory: out)] + coverage.lines).joined(separator: "\n")
        if warmFromKlines {
            summary +=
                "\n"
                + (try WarmFromKlinesReport.write(
                    minutes: spill.keptFeatures ?? [], config: resolved.features, everyMinutes: warmEvery,
                    instrument: instrument, directory: out))
        }
        summary += String(format: "\ntime: %.2f s", Date().timeIntervalSince(started))
        FileHandle.standardError.write(Data((summary + "\n").utf8))
    }
}
