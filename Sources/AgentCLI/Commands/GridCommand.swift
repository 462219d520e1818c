import AgentConfig
import AgentSupport
import ArgumentParser
import Daemon
import Engine
import Foundation
import MarketData
import Research

/// Set by SIGINT; the grid stops taking new runs when it is.
nonisolated(unsafe) private var gridInterrupted: sig_atomic_t = 0

/// `auction-agent grid`: a parameter grid over one data set.
struct GridCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grid",
        abstract: "Grid-search strategy and feature parameters on recorded data.",
        discussion: """
            Runs the backtest for every combination of the values listed in the grid file:

                rank_by: net_pnl        # or sharpe, profit_factor, win_rate, final_equity, trades, max_drawdown_pct
                parameters:
                  value_area.va_fraction: [0.68, 0.70, 0.72]
                  signal.accept_outside_k: [2, 3, 4]

            Features are computed once per distinct set of feature parameters and shared by the runs that differ \
            only in strategy parameters. Each finished run is stored at once in --db (SQLite table grid_results: \
            run id, params JSON, metrics JSON, created at); results.csv in --out ranks the runs. Ctrl-C stops \
            taking new runs, keeps the finished ones and writes results.csv for them (exit status 130).

            --trades and --quotes take files, directories and quoted glob patterns as for `backtest`, and --from/--to \
            select a time range; the grid holds the selected events in memory (every run reads them).
            """
    )

    @Option(
        parsing: .upToNextOption,
        help: ArgumentHelp("Trades CSV files (or .csv.gz), directories or quoted glob patterns.", valueName: "file"))
    var trades: [String]

    @Option(
        parsing: .upToNextOption,
        help: ArgumentHelp("L1 quotes CSV files (or .csv.gz), directories or patterns.", valueName: "file"))
    var quotes: [String]

    @Option(
        help: ArgumentHelp("Start of the time range (a date, ISO 8601 time or epoch ms; inclusive).", valueName: "time")
    )
    var from: String?

    @Option(help: ArgumentHelp("End of the time range (exclusive).", valueName: "time"))
    var to: String?

    @Option(help: ArgumentHelp("The grid file (YAML).", valueName: "file"))
    var grid: String

    @Option(help: "Worker threads (default: cores / 2, at least 1).")
    var workers: Int?

    @Option(help: ArgumentHelp("Directory for results.csv (created if missing).", valueName: "dir"))
    var out: String

    @Option(help: ArgumentHelp("SQLite database for grid_results (default: <out>/grid.sqlite).", valueName: "file"))
    var db: String?

    @Option(help: ArgumentHelp("Rank by this metric instead of the grid file's rank_by.", valueName: "metric"))
    var rankBy: String?

    @OptionGroup var config: ConfigOptions

    func validate() throws {
        if let workers, workers < 1 { throw ValidationError("--workers must be at least 1") }
        _ = try timeRange(from: from, to: to)
        if let rankBy, RankMetric(rawValue: rankBy) == nil {
            throw ValidationError(
                "--rank-by must be one of \(RankMetric.allCases.map(\.rawValue).joined(separator: ", "))")
        }
    }

    func run() throws {
        let started = Date()
        let base = try ConfigLoader.load(config.selection)
        let text: String
        do { text = try String(contentsOfFile: grid, encoding: .utf8) } catch {
            throw ConfigError(source: grid, message: "cannot be read")
        }
        var spec = try GridSpec.parse(yaml: text, source: grid)
        if let rankBy { spec.rankBy = RankMetric(rawValue: rankBy)! }
        let instrument = base.instrument
        let range = try timeRange(from: from, to: to)
        var tradeSeries = try RecordedSeries.trades(
            RecordedInputs.expand(trades, what: "--trades"), instrument: instrument, range: range)
        var quoteSeries = try RecordedSeries.quotes(
            RecordedInputs.expand(quotes, what: "--quotes"), instrument: instrument, range: range)
        let tradeEvents = try tradeSeries.readAll()
        let quoteEvents = try quoteSeries.readAll()
        guard !tradeEvents.isEmpty, !quoteEvents.isEmpty else {
            throw CommandError(
                description: "\((trades + quotes).joined(separator: " ")): need trades and quotes"
                    + (range == .all ? "" : " in the range"))
        }
        let coverage = Coverage(trades: tradeSeries.spans, quotes: quoteSeries.spans, range: range)
        FileHandle.standardError.write(Data((coverage.lines.joined(separator: "\n") + "\n").utf8))
        do { try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true) } catch {
            throw CommandError(description: "\(out): cannot create the directory: \(error.localizedDescription)")
        }
        let gridId = "grid-\(Int64(Date().timeIntervalSince1970 * 1000))-\(getpid())"
        let store = try GridStore(path: db ?? "\(out)/grid.sqlite", gridId: gridId)
        let workerCount = workers ?? max(1, ProcessInfo.processInfo.activeProcessorCount / 2)
        let total = spec.combinations.count
        FileHandle.standardError.write(Data("grid: \(total) runs, \(workerCount) workers, grid id \(gridId)\n".utf8))

        unblockStopSignals()
        signal(SIGINT) { _ in gridInterrupted = 1 }
        let bar = ProgressBar("grid")
        let outcomes = try runGrid(
            spec, base: base, trades: tradeEvents, quotes: quoteEvents, workers: workerCount,
            onFinish: { o in
                let metrics = BacktestOutputs.metricsJSON(o.metrics, alerts: [])
                do {
                    try store.insert(
                        runIndex: o.index, params: parametersJSON(o.parameters), metrics: metrics,
                        createdAt: isoTime(Int64(Date().timeIntervalSince1970 * 1000), milliseconds: true))
                } catch {
                    FileHandle.standardError.write(Data("grid: run \(o.index + 1) not stored: \(error)\n".utf8))
                }
            },
            progress: { done, all in bar.update(Double(done) / Double(all)) },
            shouldStop: { gridInterrupted != 0 }
        )
        let ranked = rank(outcomes, by: spec.rankBy)
        try writeAtomically(Array(gridResultsCSV(ranked, spec: spec).utf8), to: "\(out)/results.csv")
        var lines = [
            "grid: \(outcomes.count) of \(total) runs finished in "
                + String(format: "%.1f s", Date().timeIntervalSince(started))
                + "; results in \(out)/results.csv and \(db ?? "\(out)/grid.sqlite") (grid_results, grid_id \(gridId))"
        ]
        for (n, o) in ranked.prefix(5).enumerated() {
            let params = o.parameters.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            lines.append(
                String(
                    format: "  #%d run %d: %@ %@ = %@ (%d trades)", n + 1, o.index + 1, spec.rankBy.rawValue,
                    params, formatNumber(spec.rankBy.score(o.metrics)), o.metrics.overall.trades))
        }
        FileHandle.standardError.write(Data((lines.joined(separator: "\n") + "\n").utf8))
        if gridInterrupted != 0 {
            FileHandle.standardError.write(Data("grid: interrupted; the finished runs are kept\n".utf8))
            throw ExitCode(130)
        }
    }
}
