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
            minute), metrics.json (docs/SPEC.md §12, overall and per setup) and report.html (a self-contained page). \
            A position still open at the end is closed at the last quote (exit reason end_of_data). \
            --bars-only --features FILE replays a stored features file without ticks: market orders fill at the \
            decision's close quote, stops and targets at their level when a later bar reaches it (the stop first when \
            a bar reaches both); see docs/STRATEGY.md. \
            The same inputs and configuration always write the same bytes. Input formats as for `features`.
            """
    )

    @Option(help: ArgumentHelp("Trades CSV (or .csv.gz).", valueName: "file"))
    var trades: String?

    @Option(help: ArgumentHelp("L1 quotes CSV (or .csv.gz). Needed for fills.", valueName: "file"))
    var quotes: String?

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
            guard trades == nil && quotes == nil else {
                throw ValidationError("--bars-only replays --features; drop --trades/--quotes")
            }
            guard !warmFromKlines else {
                throw ValidationError("--warm-from-klines needs the trades (not --bars-only)")
            }
        } else {
            guard trades != nil && quotes != nil else {
                throw ValidationError("give --trades and --quotes (or --bars-only --features FILE)")
            }
            guard features == nil else { throw ValidationError("--features is for --bars-only") }
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
                title: "auction-trader backtest (bars only): \(URL(fileURLWithPath: features).lastPathComponent)")
            let summary =
                result.render(directory: out) + String(format: "\ntime: %.2f s", Date().timeIntervalSince(started))
            FileHandle.standardError.write(Data((summary + "\n").utf8))
            return
        }
        guard let trades, let quotes else { return }
        let options = ReadOptions(skipBadRows: skipBadRows)
        let (tradeEvents, tradesReport) = try readTrades(path: trades, instrument: instrument, options: options)
        let (quoteEvents, quotesReport) = try readQuotes(path: quotes, instrument: instrument, options: options)
        guard !tradeEvents.isEmpty else { throw CommandError(description: "\(trades): no trades") }
        guard !quoteEvents.isEmpty else { throw CommandError(description: "\(quotes): no quotes; fills need quotes") }
        for report in [tradesReport, quotesReport] where report.skippedRows > 0 {
            FileHandle.standardError.write(Data("\(report.file): \(report.skippedRows) bad rows skipped\n".utf8))
        }
        let bar = ProgressBar("backtest")
        let result = runBacktest(
            trades: tradeEvents, quotes: quoteEvents, features: resolved.features, strategy: resolved.strategy,
            instrument: instrument, progress: bar.update
        )
        try writeBacktest(
            result, to: out, instrument: instrument, initialEquity: resolved.strategy.initialEquity,
            title: "auction-trader backtest: \(URL(fileURLWithPath: trades).lastPathComponent)")
        var summary = result.render(directory: out)
        if warmFromKlines {
            summary +=
                "\n"
                + (try WarmFromKlinesReport.write(
                    minutes: result.features, config: resolved.features, everyMinutes: warmEvery,
                    instrument: instrument, directory: out))
        }
        summary += String(format: "\ntime: %.2f s", Date().timeIntervalSince(started))
        FileHandle.standardError.write(Data((summary + "\n").utf8))
    }
}
