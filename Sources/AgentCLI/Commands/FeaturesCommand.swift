import AgentConfig
import AgentSupport
import ArgumentParser
import Daemon
import Engine
import Foundation
import MarketData
import Research

/// `auction-agent features`: trades (and quotes) in, the features CSV of docs/SPEC.md §7 out.
struct FeaturesCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "features",
        abstract: "Compute per-minute features (bars, order flow, rolling value area) from recorded data.",
        discussion: """
            Trades CSV: columns found by header name: timestamp|ts|ts_ms|time|T, price|p, size|qty|v|volume and an \
            optional side|S (taker side). Bybit's public trade dumps work as they are. Quotes CSV: timestamp, \
            bid_px|bid_price|bid, bid_sz|bid_size, ask_px|ask_price|ask, ask_sz|ask_size. Timestamps in seconds \
            (with or without a fraction), milliseconds, microseconds, nanoseconds or ISO 8601, detected from the \
            first row. Files ending in .gz are read directly; unsorted files are sorted (stable).
            --trades and --quotes take several files, directories (their .csv and .csv.gz files) and quoted glob \
            patterns, such as a month of daily dumps in any order: read one file of each kind at a time, in time \
            order; a file overlapping another stops the run naming both, and days without a file are reported. \
            --from/--to select a time range.
            A malformed row stops the run naming the file and line, unless --skip-bad-rows.
            Beside the output: FILE.config.yaml (every parameter and where it came from; --config FILE.config.yaml \
            makes the same file again) and FILE.inputs.csv (each input file with its span, size and SHA-256). \
            --set order_flow.method=bvc measures order flow by bulk volume classification (a last column of_method).
            A summary goes to standard error.
            """
    )

    @Option(
        parsing: .upToNextOption,
        help: ArgumentHelp("Trades CSV files (or .csv.gz), directories or quoted glob patterns.", valueName: "file"))
    var trades: [String]

    @Option(
        parsing: .upToNextOption,
        help: ArgumentHelp(
            "L1 quotes CSV files (or .csv.gz), directories or patterns. Without them every print is ambiguous.",
            valueName: "file"))
    var quotes: [String] = []

    @Option(
        help: ArgumentHelp("Start of the time range (a date, ISO 8601 time or epoch ms; inclusive).", valueName: "time")
    )
    var from: String?

    @Option(help: ArgumentHelp("End of the time range (exclusive).", valueName: "time"))
    var to: String?

    @Option(help: ArgumentHelp("Where to write the features CSV.", valueName: "file"))
    var out: String

    @Option(
        help: ArgumentHelp(
            "Also write per-minute order-flow diagnostics: prints, stale-aligned prints, ambiguous volume, and the "
                + "inferred side's accuracy against the exchange's side.",
            valueName: "file"
        )
    )
    var orderFlowOut: String?

    @Flag(help: "Count and report malformed rows instead of stopping at the first.")
    var skipBadRows = false

    @OptionGroup var config: ConfigOptions

    func validate() throws { _ = try timeRange(from: from, to: to) }

    func run() throws {
        let resolved = try ConfigLoader.load(config.selection)
        let range = try timeRange(from: from, to: to)
        let options = ReadOptions(skipBadRows: skipBadRows)
        var market = RecordedMarket(
            trades: try RecordedSeries.trades(
                RecordedInputs.expand(trades, what: "--trades"), instrument: resolved.instrument, options: options,
                range: range),
            quotes: quotes.isEmpty
                ? nil
                : try RecordedSeries.quotes(
                    RecordedInputs.expand(quotes, what: "--quotes"), instrument: resolved.instrument, options: options,
                    range: range))
        let summary = try runFeatures(market: &market, outPath: out, config: resolved, orderFlowPath: orderFlowOut)
        // Beside the file: the configuration that made it and the inputs' identity (docs/SPEC.md §12).
        try writeRunConfiguration(resolved, toFile: out + ".config.yaml", command: "features")
        try writeAtomically(Array(try InputIdentity.csv(market.coverage).utf8), to: out + ".inputs.csv")
        FileHandle.standardError.write(
            Data((summary.render(outPath: out, instrument: resolved.instrument) + "\n").utf8))
    }
}
