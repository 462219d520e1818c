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

/// `auction-agent grid`: a parameter grid over recorded data, whole or one shard of it, and `grid merge`.
struct GridCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "grid",
        abstract: "Grid-search strategy and feature parameters on recorded data (whole, or in shards to merge).",
        discussion: """
            `grid [run] --trades ... --quotes ... --grid GRID.yaml --out DIR` runs the grid (see `grid run --help`); \
            `grid run --shard K/N` runs shard K of N and `grid merge DIR...` combines the shards' databases into one \
            ranked results.csv, results.html and grid.sqlite.
            """,
        subcommands: [GridRunCommand.self, GridMergeCommand.self],
        defaultSubcommand: GridRunCommand.self
    )
}

/// `auction-agent grid run` (the default): the grid, or one shard of it.
struct GridRunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a parameter grid (or one shard of it) on recorded data.",
        discussion: """
            Runs the backtest for every combination of the values listed in the grid file:

                rank_by: net_pnl        # or sharpe, profit_factor, win_rate, final_equity, trades, max_drawdown_pct
                parameters:
                  value_area.va_fraction: [0.68, 0.70, 0.72]
                  signal.accept_outside_k: [2, 3, 4]

            Features are computed once per distinct set of feature parameters and shared by the runs that differ \
            only in strategy parameters. Each finished run is stored at once in --db (SQLite table grid_results: \
            run id, params JSON, metrics JSON, summary, created at; grid_meta describes the grid); results.csv in \
            --out ranks the runs, and results.html beside it browses them (a table that sorts on any column, a heat \
            map of any metric over any two parameters; one file, no network). --keep-reports N runs the best N again \
            with every output of `backtest` (report.html, trades.csv, ...) in --out/runs/RUN/ and links each from \
            results.html. Ctrl-C stops taking new runs, keeps the finished ones and writes results.csv and \
            results.html for them (exit status 130).

            --shard K/N runs the K-th of N deterministic slices, balanced by run count (the runs sharing a feature \
            set stay in one slice unless the set alone exceeds a slice); --shard auto takes K and N from a Slurm job \
            array (SLURM_ARRAY_TASK_ID, SLURM_ARRAY_TASK_COUNT), --shard auto/N takes K from a Kubernetes Indexed \
            Job (JOB_COMPLETION_INDEX). Give each shard its own --out; `grid merge` combines them.

            --trades and --quotes take files, directories and quoted glob patterns as for `backtest`, and --from/--to \
            select a time range; the grid holds the selected events in memory (every run reads them: 32 bytes a \
            trade, 40 a quote) when they fit --memory-budget (default: half the machine's memory, or of its cgroup's \
            limit; estimated from the files' sizes and first rows, before reading), else, or with --stream, the files \
            are read once in chunks, each chunk going through every feature set and then every run at once: one \
            chunk and one file of each kind in memory, and the same results.csv comes out. The summary says which.
            """
    )

    @OptionGroup var inputs: RecordedInputOptions

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

    @Option(
        help: ArgumentHelp(
            "Run shard K of N (K from 1), or auto (Slurm job array) or auto/N (Kubernetes Indexed Job).",
            valueName: "K/N"))
    var shard: String?

    @Flag(
        help: ArgumentHelp(
            "Read the files in chunks, every run at once, instead of holding every event in memory (for more "
                + "days than fit; Ctrl-C keeps no run)."))
    var stream = false

    @OptionGroup var budget: MemoryBudgetOption

    @Option(
        help: ArgumentHelp(
            "Run the best N runs again with every output of a backtest (report.html, trades.csv, ...) in "
                + "<out>/runs/RUN/, linked from results.html.", valueName: "N"))
    var keepReports = 0

    @OptionGroup var config: ConfigOptions

    func validate() throws {
        if let workers, workers < 1 { throw ValidationError("--workers must be at least 1") }
        if keepReports < 0 { throw ValidationError("--keep-reports must be 0 or more") }
        if let shard {
            do { _ = try GridShard.parse(shard, environment: ProcessInfo.processInfo.environment) } catch {
                throw ValidationError("\(error)")
            }
        }
        _ = try rankMetric(rankBy)
    }

    func run() throws {
        let started = Date()
        let base = try ConfigLoader.load(config.selection)
        let spec = try loadGridSpec(grid, rankBy: rankBy)
        let instrument = base.instrument
        var inMemory: (trades: [TradeEvent], quotes: [QuoteEvent], gaps: [RecordedGap])?
        let files = try inputs.files()
        let makeMarket = { try inputs.market(files, instrument: instrument) }
        // Held in memory when the events fit the budget; otherwise streamed (the same results, read once in chunks).
        let (streaming, memoryLine) = try budget.decide(
            files, stream: stream, command: "grid", streamed: "streaming the files")
        FileHandle.standardError.write(Data((memoryLine + "\n").utf8))
        if streaming {
            var probe = try makeMarket()
            guard try probe.next() != nil else { throw try inputs.nothingSelected() }
        } else {
            inMemory = try inputs.readIntoMemory(instrument: instrument)
        }
        do { try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true) } catch {
            throw CommandError(description: "\(out): cannot create the directory: \(error.localizedDescription)")
        }
        // The base every run's grid parameters override.
        try writeRunConfiguration(base, to: out, command: "grid")
        try writeAtomically(
            Array(try InputIdentity.csv(trades: files.trades, quotes: files.quotes).utf8), to: "\(out)/inputs.csv")
        let plan = try GridPlan(spec, base: base)
        let slice =
            try shard.map { try GridShard.parse($0, environment: ProcessInfo.processInfo.environment) } ?? .whole
        let runs = plan.runs(of: slice)
        let gridId = "grid-\(Int64(Date().timeIntervalSince1970 * 1000))-\(getpid())"
        let dbPath = db ?? "\(out)/grid.sqlite"
        let store = try GridStore(path: dbPath, gridId: gridId)
        let now: @Sendable () -> String = { isoTime(Int64(Date().timeIntervalSince1970 * 1000), milliseconds: true) }
        // Streaming, the data's identity is known after the first pass; until then the row says so.
        let identity =
            inMemory.map { GridIdentity(spec: spec, base: base, trades: $0.trades, quotes: $0.quotes) }
            ?? GridIdentity(grid: spec.canonicalText, config: GridIdentity.researchConfig(base), data: "(being read)")
        try store.begin(
            shard: slice, runsTotal: plan.runCount, runs: runs, identity: identity, startedAt: now())
        let workerCount = workers ?? max(1, ProcessInfo.processInfo.activeProcessorCount / 2)
        let total = runs.count
        FileHandle.standardError.write(
            Data(
                ("grid: \(total) runs" + (slice == .whole ? "" : " (shard \(slice) of a grid of \(plan.runCount))")
                    + ", \(workerCount) workers, grid id \(gridId)\n").utf8))

        unblockStopSignals()
        signal(SIGINT) { _ in gridInterrupted = 1 }
        let bar = ProgressBar("grid")
        let onFinish: @Sendable (GridOutcome) -> Void = { o in
            let metrics = BacktestOutputs.metricsJSON(o.metrics, alerts: [])
            do {
                try store.insert(
                    runIndex: o.index, params: parametersJSON(o.parameters), metrics: metrics,
                    summary: o.summary.text, createdAt: now())
            } catch {
                FileHandle.standardError.write(Data("grid: run \(o.index + 1) not stored: \(error)\n".utf8))
            }
        }
        let outcomes: [GridOutcome]
        if let inMemory {
            outcomes = try runGrid(
                plan, trades: inMemory.trades, quotes: inMemory.quotes, gaps: inMemory.gaps, workers: workerCount,
                runs: runs,
                onFinish: onFinish, progress: { done, all in bar.update(Double(done) / Double(all)) },
                shouldStop: { gridInterrupted != 0 })
        } else {
            let streamed = try runGridStreaming(
                plan, makeMarket: makeMarket, workers: workerCount, runs: runs, spillDirectory: out,
                onFinish: onFinish, shouldStop: { gridInterrupted != 0 })
            outcomes = streamed.outcomes
            try store.setData(streamed.data)
            FileHandle.standardError.write(Data((streamed.coverage.lines.joined(separator: "\n") + "\n").utf8))
        }
        try store.finish(at: now(), interrupted: gridInterrupted != 0)
        let ranked = rank(outcomes.map(\.row), by: spec.rankBy)
        try writeAtomically(Array(gridResultsCSV(ranked, spec: spec).utf8), to: "\(out)/results.csv")
        // The best runs again, with every output (an interrupted grid keeps none: its ranking is partial).
        var reports: [Int: String] = [:]
        if keepReports > 0 && gridInterrupted == 0 {
            reports = try keepGridReports(ranked, count: keepReports, plan: plan, directory: out) { c in
                if let inMemory {
                    return runBacktest(
                        trades: inMemory.trades, quotes: inMemory.quotes, features: c.features, strategy: c.strategy,
                        instrument: c.instrument, gaps: inMemory.gaps, keepProfiles: true)
                }
                var market = try makeMarket()
                return try runBacktest(
                    market: &market, features: c.features, strategy: c.strategy, instrument: c.instrument,
                    keepProfiles: true)
            }
        }
        try writeAtomically(
            Array(
                gridResultsHTML(ranked, spec: spec, rankBy: spec.rankBy, title: "grid \(gridId)", reports: reports).utf8
            ),
            to: "\(out)/results.html")
        let lines =
            [
                "grid: \(outcomes.count) of \(total) runs finished in "
                    + String(format: "%.1f s", Date().timeIntervalSince(started))
                    + "; results in \(out)/results.csv, \(out)/results.html and \(dbPath) (grid_results, grid_id \(gridId))",
                memoryLine,
            ] + gridTopLines(ranked, rankBy: spec.rankBy)
            + (reports.isEmpty
                ? [] : ["grid: the best \(reports.count) runs' reports in \(out)/runs/ (linked from results.html)"])
        FileHandle.standardError.write(Data((lines.joined(separator: "\n") + "\n").utf8))
        if gridInterrupted != 0 {
            FileHandle.standardError.write(Data("grid: interrupted; the finished runs are kept\n".utf8))
            throw ExitCode(130)
        }
    }
}

/// `auction-agent grid merge DIR...`: the shards of one grid as one ranked results.csv and grid.sqlite.
struct GridMergeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "merge",
        abstract: "Combine the shards of a grid into one ranked results.csv, results.html and grid.sqlite.",
        discussion: """
            Each input is a shard's --out directory (its grid.sqlite is read) or a database; the latest grid in \
            each is taken. Shards of different grids, configurations or data are refused, naming the first \
            difference, as is a shard given twice. Missing shards and shards without all their runs (interrupted or \
            still running) are reported: the runs found are merged and written, and the exit status is 3. The \
            merged results.csv has the bytes a single `grid` run of the same grid would write; results.html browses \
            the merged runs and links the reports the shards kept (--keep-reports) where they lie.
            """
    )

    @Argument(help: ArgumentHelp("Shard output directories (or their grid.sqlite files).", valueName: "dir"))
    var shards: [String]

    @Option(help: ArgumentHelp("Directory for results.csv and grid.sqlite (created if missing).", valueName: "dir"))
    var out: String

    @Option(help: ArgumentHelp("Rank by this metric instead of the grid's rank_by.", valueName: "metric"))
    var rankBy: String?

    func validate() throws {
        if shards.isEmpty { throw ValidationError("give the shards' output directories") }
        _ = try rankMetric(rankBy)
    }

    func run() throws {
        let merge = try GridMerge(inputs: shards)
        do { try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true) } catch {
            throw CommandError(description: "\(out): cannot create the directory: \(error.localizedDescription)")
        }
        let dbPath = "\(out)/grid.sqlite"
        let target = URL(fileURLWithPath: dbPath).standardizedFileURL.resolvingSymlinksInPath().path
        for input in merge.inputPaths
        where URL(fileURLWithPath: input).standardizedFileURL.resolvingSymlinksInPath().path == target {
            throw CommandError(description: "\(out): is a shard's own directory; merge into another --out")
        }
        let metric = try rankMetric(rankBy) ?? merge.spec.rankBy
        let ranked = rank(merge.rows, by: metric)
        try writeAtomically(Array(gridResultsCSV(ranked, spec: merge.spec).utf8), to: "\(out)/results.csv")
        let gridId = "merge-\(Int64(Date().timeIntervalSince1970 * 1000))-\(getpid())"
        // Reports the shards kept (grid --keep-reports) are linked where they lie.
        let reports = keptGridReports(inShards: merge.inputPaths, runs: ranked.map { $0.index + 1 })
        try writeAtomically(
            Array(
                gridResultsHTML(ranked, spec: merge.spec, rankBy: metric, title: "grid \(gridId)", reports: reports)
                    .utf8),
            to: "\(out)/results.html")
        try merge.write(
            to: GridStore(path: dbPath, gridId: gridId),
            at: isoTime(Int64(Date().timeIntervalSince1970 * 1000), milliseconds: true))
        let lines =
            merge.lines + [
                "grid merge: results in \(out)/results.csv, \(out)/results.html and \(dbPath) (grid_id \(gridId))"
            ]
            + gridTopLines(ranked, rankBy: metric)
        FileHandle.standardError.write(Data((lines.joined(separator: "\n") + "\n").utf8))
        if !merge.isComplete { throw ExitCode(3) }
    }
}

/// The recorded inputs of the research commands that read every event many times (grid, walkforward): trades and
/// quotes as files, directories or patterns, and a time range.
struct RecordedInputOptions: ParsableArguments {
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

    func validate() throws { _ = try range() }

    func range() throws -> TimeRange { try timeRange(from: from, to: to) }

    /// The files the inputs name (directories and patterns expanded).
    func files() throws -> (trades: [String], quotes: [String]) {
        (try RecordedInputs.expand(trades, what: "--trades"), try RecordedInputs.expand(quotes, what: "--quotes"))
    }

    /// The files as two series over the range, each in time order.
    func series(_ files: (trades: [String], quotes: [String]), instrument: Instrument) throws -> (
        trades: RecordedSeries<TradeEvent>, quotes: RecordedSeries<QuoteEvent>
    ) {
        let range = try range()
        return (
            try RecordedSeries.trades(files.trades, instrument: instrument, range: range),
            try RecordedSeries.quotes(files.quotes, instrument: instrument, range: range)
        )
    }

    /// The files as one merged stream (opened afresh on each call).
    func market(_ files: (trades: [String], quotes: [String]), instrument: Instrument) throws -> RecordedMarket {
        let s = try series(files, instrument: instrument)
        return RecordedMarket(trades: s.trades, quotes: s.quotes)
    }

    /// The files as one merged stream over `from..<to` inside the selected range, passing over the files before it
    /// unread (a walk-forward window).
    func market(_ files: (trades: [String], quotes: [String]), instrument: Instrument, from: Millis, to: Millis)
        throws -> RecordedMarket
    {
        let selected = try range()
        var span = TimeRange()
        span.from = max(from, selected.from ?? from)
        span.to = min(to, selected.to ?? to)
        var trades = try RecordedSeries.trades(files.trades, instrument: instrument, range: span)
        var quotes = try RecordedSeries.quotes(files.quotes, instrument: instrument, range: span)
        trades.skipsFilesBeforeRange = true
        quotes.skipsFilesBeforeRange = true
        return RecordedMarket(trades: trades, quotes: quotes)
    }

    /// The first and last event times of the selection, reading the files from each end only as far as the first
    /// with an event in the range.
    func firstAndLastTimes(_ files: (trades: [String], quotes: [String]), instrument: Instrument) throws -> (
        first: Millis, last: Millis
    ) {
        let selected = try range()
        var trades = try RecordedSeries.trades(files.trades, instrument: instrument, range: selected)
        var quotes = try RecordedSeries.quotes(files.quotes, instrument: instrument, range: selected)
        trades.skipsFilesBeforeRange = true
        quotes.skipsFilesBeforeRange = true
        guard let firstTrade = try trades.next()?.ts, let firstQuote = try quotes.next()?.ts else {
            throw try nothingSelected()
        }
        func last<E>(_ ordered: [String], _ open: (String) throws -> RecordedSeries<E>, _ time: (E) -> Millis) throws
            -> Millis
        {
            // The last file with an event in the range, read through (in time order) keeping only the latest time.
            for f in ordered.reversed() {
                var one = try open(f)
                var latest: Millis?
                while let e = try one.next() { latest = time(e) }
                if let latest { return latest }
            }
            throw try nothingSelected()
        }
        let lastTrade = try last(
            trades.orderedFiles, { try RecordedSeries.trades([$0], instrument: instrument, range: selected) }, \.ts)
        let lastQuote = try last(
            quotes.orderedFiles, { try RecordedSeries.quotes([$0], instrument: instrument, range: selected) }, \.ts)
        return (min(firstTrade, firstQuote), max(lastTrade, lastQuote))
    }

    /// The error for a selection without trades or quotes, naming the inputs.
    func nothingSelected() throws -> CommandError {
        CommandError(
            description: "\((trades + quotes).joined(separator: " ")): need trades and quotes"
                + (try range() == .all ? "" : " in the range"))
    }

    /// Reads the selected events of every input into memory (the grid and the walk-forward read them many times)
    /// and prints the coverage report; an empty selection is an error naming the inputs.
    func readIntoMemory(instrument: Instrument) throws -> (
        trades: [TradeEvent], quotes: [QuoteEvent], gaps: [RecordedGap]
    ) {
        var (tradeSeries, quoteSeries) = try series(try files(), instrument: instrument)
        let tradeEvents = try tradeSeries.readAll()
        let quoteEvents = try quoteSeries.readAll()
        guard !tradeEvents.isEmpty, !quoteEvents.isEmpty else { throw try nothingSelected() }
        let coverage = Coverage(
            trades: tradeSeries.spans, quotes: quoteSeries.spans, range: try range(),
            gaps: Coverage.union(tradeSeries.gaps, quoteSeries.gaps))
        FileHandle.standardError.write(Data((coverage.lines.joined(separator: "\n") + "\n").utf8))
        return (tradeEvents, quoteEvents, coverage.gaps ?? [])
    }
}

/// The metric `--rank-by` names, nil without one; a name that is not a metric is a usage error listing them.
func rankMetric(_ name: String?) throws -> RankMetric? {
    guard let name else { return nil }
    guard let metric = RankMetric(rawValue: name) else {
        throw ValidationError("--rank-by must be one of \(RankMetric.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    return metric
}

/// The grid file parsed (errors name the file, line and key), ranked by `--rank-by` when given.
func loadGridSpec(_ path: String, rankBy: String?) throws -> GridSpec {
    let text: String
    do { text = try String(contentsOfFile: path, encoding: .utf8) } catch {
        throw ConfigError(source: path, message: "cannot be read")
    }
    var spec = try GridSpec.parse(yaml: text, source: path)
    if let metric = try rankMetric(rankBy) { spec.rankBy = metric }
    return spec
}
