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
        let (tradeEvents, quoteEvents, gaps) = try inputs.readIntoMemory(instrument: base.instrument)
        let day: Millis = 86_400_000
        let first = min(tradeEvents[0].ts, quoteEvents[0].ts)
        let last = max(tradeEvents[tradeEvents.count - 1].ts, quoteEvents[quoteEvents.count - 1].ts)
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
        let result = try runWalkForward(
            spec, base: base, plan: plan, trades: tradeEvents, quotes: quoteEvents, gaps: gaps, workers: workerCount
        ) { w in
            let params = w.parameters.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
            FileHandle.standardError.write(
                Data(
                    ("walkforward: window \(w.window.number)/\(windows.count) test \(isoTime(w.window.testFrom)) to "
                        + "\(isoTime(w.window.testTo)): run \(w.run + 1) (\(params)), in sample "
                        + "\(spec.rankBy.rawValue) \(String(format: "%.4g", spec.rankBy.score(w.inSample))), out of sample "
                        + "\(w.outOfSample.overall.trades) trades, net \(String(format: "%.2f", w.outOfSample.overall.netPnL))\n")
                        .utf8))
        }
        try writeWalkForward(
            result, spec: spec, plan: plan, instrument: base.instrument,
            title: "Walk-forward: \(URL(fileURLWithPath: grid).lastPathComponent), train \(train), test \(test)",
            to: out)
        try writeRunConfiguration(base, to: out, command: "walkforward")
        let files = try inputs.files()
        try writeAtomically(
            Array(try InputIdentity.csv(trades: files.trades, quotes: files.quotes).utf8), to: "\(out)/inputs.csv")
        let s = result.stitched
        FileHandle.standardError.write(
            Data(
                ("walkforward: out of sample, \(windows.count) windows stitched: \(s.overall.trades) trades, net "
                    + String(format: "%.2f", s.overall.netPnL) + ", max drawdown "
                    + String(format: "%.1f %%", s.maxDrawdownPct * 100) + ", Sharpe "
                    + (s.sharpe.map { String(format: "%.2f", $0) } ?? "–") + "; written to \(out) in "
                    + String(format: "%.1f s", Date().timeIntervalSince(started)) + "\n").utf8))
    }
}
