import AgentConfig
import AgentSupport
import ArgumentParser
import Engine
import Foundation
import MarketData
import Research

/// `auction-agent walkforward`: the grid ranked on each training span, its best run tried on the span after.
struct WalkForwardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "walkforward",
        abstract: "Walk-forward a grid: rank it on each training span, run the best on the test span that follows.",
        discussion: """
            Windows start at --from (default: midnight UTC of the first event) and move by --step (default: --test). \
            On each, every run of the grid is backtested on the training span and ranked by the grid's rank_by (or \
            --rank-by); the best parameter set is then backtested on the test span, starting warmup_minutes before \
            it on the data before it (so that it trades from the span's first minute) and from the equity the \
            previous test span ended with. Only windows whose test span ends by --to (default: the end of the last event's minute) run.

            --out receives windows.csv (per window: spans, chosen run and parameters, in-sample and out-of-sample \
            figures), equity.csv and trades.csv (the test spans chained: the out-of-sample record), walkforward.json \
            and report.html. The same inputs write the same bytes. Durations: 14d, 36h, 90m, 1w, or sums (1d12h).

            The events are held in memory when they fit --memory-budget (default: half the machine's memory, or of \
            its cgroup's limit; estimated from the files before reading); else, or with --stream, each window's \
            training grid streams its span from the files (as `grid --stream`) and its test run reads \
            the span after it: the same outputs, one file of each kind in memory. The summary says which.
            """
    )

    @OptionGroup var inputs: RecordedInputOptions

    @Option(help: ArgumentHelp("The grid file (YAML).", valueName: "file"))
    var grid: String

    @Option(help: ArgumentHelp("Length of each training span (e.g. 14d).", valueName: "duration"))
    var train: String

    @Option(help: ArgumentHelp("Length of each test span (e.g. 7d).", valueName: "duration"))
    var test: String

    @Option(help: ArgumentHelp("How far each window moves (default: the test length).", valueName: "duration"))
    var step: String?

    @Option(help: "Worker threads for each training grid (default: cores / 2, at least 1).")
    var workers: Int?

    @Option(help: ArgumentHelp("Rank by this metric instead of the grid file's rank_by.", valueName: "metric"))
    var rankBy: String?

    @Option(help: ArgumentHelp("Directory for the outputs (created if missing).", valueName: "dir"))
    var out: String

    @Flag(
        help: ArgumentHelp(
            "Read each window's spans from the files instead of holding every event in memory (the same outputs)."))
    var stream = false

    @OptionGroup var budget: MemoryBudgetOption

    @OptionGroup var config: ConfigOptions

    func durations() throws -> (train: Millis, test: Millis, step: Millis) {
        let train = try WalkForwardPlan.parseDuration(self.train, option: "--train")
        let test = try WalkForwardPlan.parseDuration(self.test, option: "--test")
        let step = try step.map { try WalkForwardPlan.parseDuration($0, option: "--step") } ?? test
        return (train, test, step)
    }

    func validate() throws {
        if let workers, workers < 1 { throw ValidationError("--workers must be at least 1") }
        let d: (train: Millis, test: Millis, step: Millis)
        do { d = try durations() } catch { throw ValidationError("\(error)") }
        if d.step < d.test {
            throw ValidationError(
                "--step \(step ?? test) is shorter than --test \(test): the test spans would overlap, and the "
                    + "out-of-sample record must not count a minute twice")
        }
        _ = try rankMetric(rankBy)
    }

    func run() throws {
        let started = Date()
        let base = try ConfigLoader.load(config.selection)
        let spec = try loadGridSpec(grid, rankBy: rankBy)
        let range = try inputs.range()
        let files = try inputs.files()
        let instrument = base.instrument
        // Held in memory when the events fit the budget; otherwise each window's spans are read from the files.
        let (streaming, memoryLine) = try budget.decide(
            files, stream: stream, command: "walkforward", streamed: "reading each window's spans from the files")
        FileHandle.standardError.write(Data((memoryLine + "\n").utf8))
        var inMemory: (trades: [TradeEvent], quotes: [QuoteEvent], gaps: [RecordedGap])?
        let first: Millis
        let last: Millis
        if streaming {
            (first, last) = try inputs.firstAndLastTimes(files, instrument: instrument)
        } else {
            let events = try inputs.readIntoMemory(instrument: instrument)
            inMemory = events
            first = min(events.trades[0].ts, events.quotes[0].ts)
            last = max(events.trades[events.trades.count - 1].ts, events.quotes[events.quotes.count - 1].ts)
        }
        let day: Millis = 86_400_000
        let d = try durations()
        let plan = WalkForwardPlan(
            start: range.from ?? (first - ((first % day) + day) % day),
            end: range.to ?? (last / millisPerMinute + 1) * millisPerMinute, train: d.train,
            test: d.test, step: d.step)
        let windows = plan.windows
        guard !windows.isEmpty else {
            throw CommandError(
                description:
                    "walkforward: the data runs from \(isoTime(plan.start)) to \(isoTime(plan.end)); one window needs "
                    + "--train \(train) + --test \(test) = \(formatNumber(Double(d.train + d.test) / Double(day))) days"
            )
        }
        let workerCount = workers ?? max(1, ProcessInfo.processInfo.activeProcessorCount / 2)
        FileHandle.standardError.write(
            Data(
                ("walkforward: \(windows.count) windows of \(train) + \(test) every \(step ?? test), "
                    + "\(spec.combinations.count) runs each, ranked by \(spec.rankBy.rawValue), \(workerCount) "
                    + (workerCount == 1 ? "worker\n" : "workers\n"))
                    .utf8))
        let onWindow = { (w: WalkForwardWindow) in
            let params = w.parameters.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            FileHandle.standardError.write(
                Data(
                    ("walkforward: window \(w.window.number)/\(windows.count) test \(isoTime(w.window.testFrom)) to "
                        + "\(isoTime(w.window.testTo)): run \(w.run + 1) (\(params)), in sample "
                        + "\(spec.rankBy.rawValue) \(String(format: "%.4g", spec.rankBy.score(w.inSample))), out of sample "
                        + "\(w.outOfSample.overall.trades) trades, net \(String(format: "%.2f", w.outOfSample.overall.netPnL))\n")
                        .utf8))
        }
        // The stitched test spans' minutes and equity rows go to --out as the windows end (equity.csv, the report's
        // parts), whether the events are held or streamed.
        let record = try BacktestSpill(
            directory: out, instrument: base.instrument, initialEquity: base.strategy.initialEquity, profiles: false,
            keepFeatures: false, signals: false)
        let result: WalkForwardResult
        if let inMemory {
            result = try runWalkForward(
                spec, base: base, plan: plan, trades: inMemory.trades, quotes: inMemory.quotes, gaps: inMemory.gaps,
                workers: workerCount, record: record, onWindow: onWindow)
        } else {
            result = try runWalkForwardStreaming(
                spec, base: base, plan: plan,
                market: { from, to in try inputs.market(files, instrument: instrument, from: from, to: to) },
                workers: workerCount, record: record, spillDirectory: out, onWindow: onWindow)
        }
        try writeWalkForward(
            result, record: record, spec: spec, plan: plan, instrument: base.instrument,
            title: "Walk-forward: \(URL(fileURLWithPath: grid).lastPathComponent), train \(train), test \(test)",
            to: out)
        try writeRunConfiguration(base, to: out, command: "walkforward")
        try writeAtomically(
            Array(try InputIdentity.csv(trades: files.trades, quotes: files.quotes).utf8), to: "\(out)/inputs.csv")
        let s = result.stitched
        FileHandle.standardError.write(
            Data(
                ("walkforward: out of sample, \(windows.count) windows stitched: \(s.overall.trades) trades, net "
                    + String(format: "%.2f", s.overall.netPnL) + ", max drawdown "
                    + String(format: "%.1f %%", s.maxDrawdownPct * 100) + ", Sharpe "
                    + (s.sharpe.map { String(format: "%.2f", $0) } ?? "–") + "; written to \(out) in "
                    + String(format: "%.1f s", Date().timeIntervalSince(started)) + "\n" + memoryLine + "\n").utf8))
    }
}
