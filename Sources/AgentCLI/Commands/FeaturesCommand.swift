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
            A malformed row stops the run naming the file and line, unless --skip-bad-rows.
            A summary goes to standard error.
            """
    )

    @Option(help: ArgumentHelp("Trades CSV (or .csv.gz).", valueName: "file"))
    var trades: String

    @Option(help: ArgumentHelp("L1 quotes CSV (or .csv.gz). Without it every print is ambiguous.", valueName: "file"))
    var quotes: String?

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

    func run() throws {
        let resolved = try ConfigLoader.load(config.selection)
        let summary = try runFeatures(
            tradesPath: trades,
            quotesPath: quotes,
            outPath: out,
            config: resolved,
            options: ReadOptions(skipBadRows: skipBadRows),
            orderFlowPath: orderFlowOut
        )
        FileHandle.standardError.write(
            Data((summary.render(outPath: out, instrument: resolved.instrument) + "\n").utf8))
    }
}
