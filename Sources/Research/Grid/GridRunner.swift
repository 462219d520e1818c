public import AgentConfig
import AgentSupport
public import Engine
import Foundation
public import MarketData
import Synchronization

/// One finished grid run.
public struct GridOutcome: Sendable {
    /// Position in the cartesian product (0-based).
    public var index: Int
    public var parameters: [(key: String, value: ParameterValue)]
    public var metrics: BacktestMetrics

    public var summary: GridSummary { GridSummary(metrics) }
    public var row: GridRow { GridRow(index: index, parameters: parameters, summary: summary) }
}

/// A run as results.csv and the ranking see it: its index, parameters and summary figures.
public struct GridRow: Sendable {
    public var index: Int
    public var parameters: [(key: String, value: ParameterValue)]
    public var summary: GridSummary
}

/// The figures of a run that results.csv prints and the ranking reads, kept exactly (the shard databases store
/// them as text that reads back to the same doubles, so a merge ranks and prints what one machine would).
public struct GridSummary: Sendable, Equatable {
    public var trades: Int
    public var netPnL: Double
    public var grossPnL: Double
    public var fees: Double
    public var funding: Double
    public var winRate: Double?
    public var profitFactor: Double?
    public var maxDrawdown: Double
    public var maxDrawdownPct: Double
    public var sharpe: Double?
    public var finalEquity: Double

    public init(_ m: BacktestMetrics) {
        trades = m.overall.trades
        netPnL = m.overall.netPnL
        grossPnL = m.overall.grossPnL
        fees = m.fees
        funding = m.funding
        winRate = m.overall.winRate
        profitFactor = m.overall.profitFactor
        maxDrawdown = m.maxDrawdown
        maxDrawdownPct = m.maxDrawdownPct
        sharpe = m.sharpe
        finalEquity = m.finalEquity
    }

    /// One line of `name=value` pairs; each double as Swift prints it, which reads back to the same bits (absent
    /// figures are left out).
    public var text: String {
        var pairs = ["trades=\(trades)"]
        func add(_ name: String, _ value: Double?) { if let value { pairs.append("\(name)=\(value.description)") } }
        add("net_pnl", netPnL)
        add("gross_pnl", grossPnL)
        add("fees", fees)
        add("funding", funding)
        add("win_rate", winRate)
        add("profit_factor", profitFactor)
        add("max_drawdown", maxDrawdown)
        add("max_drawdown_pct", maxDrawdownPct)
        add("sharpe", sharpe)
        add("final_equity", finalEquity)
        return pairs.joined(separator: " ")
    }

    /// Reads `text` back; nil when a figure is missing or does not parse.
    public init?(text: String) {
        var values: [String: String] = [:]
        for pair in text.split(separator: " ") {
            guard let eq = pair.firstIndex(of: "=") else { return nil }
            values[String(pair[..<eq])] = String(pair[pair.index(after: eq)...])
        }
        func number(_ name: String) -> Double? { values[name].flatMap(Double.init) }
        guard let t = values["trades"].flatMap(Int.init), let net = number("net_pnl"), let gross = number("gross_pnl"),
            let fees = number("fees"), let funding = number("funding"), let dd = number("max_drawdown"),
            let ddPct = number("max_drawdown_pct"), let equity = number("final_equity")
        else { return nil }
        trades = t
        netPnL = net
        grossPnL = gross
        self.fees = fees
        self.funding = funding
        winRate = number("win_rate")
        profitFactor = number("profit_factor")
        maxDrawdown = dd
        maxDrawdownPct = ddPct
        sharpe = number("sharpe")
        finalEquity = equity
    }
}

/// The grid's shared state between worker threads: the next run to take and the runs finished.
final class GridState: Sendable {
    private struct Progress {
        var next = 0
        var outcomes: [GridOutcome] = []
        var failures: [String] = []
    }
    private let progress = Mutex(Progress())
    private let total: Int

    init(total: Int) { self.total = total }

    func take() -> Int? {
        progress.withLock { p in
            guard p.next < total else { return nil }
            p.next += 1
            return p.next - 1
        }
    }

    func finish(_ outcome: GridOutcome) -> Int {
        progress.withLock {
            $0.outcomes.append(outcome)
            return $0.outcomes.count
        }
    }

    func fail(_ message: String) { progress.withLock { $0.failures.append(message) } }

    var outcomes: [GridOutcome] { progress.withLock { $0.outcomes } }
    var failures: [String] { progress.withLock { $0.failures } }
    var finishedCount: Int { progress.withLock { $0.outcomes.count } }
}

/// What a grid will run: every combination resolved against the base configuration (a bad one stops the grid before
/// any work), and the feature set each run reads. Runs whose feature parameters agree share one feature set.
public struct GridPlan: Sendable {
    public let combinations: [[(key: String, value: ParameterValue)]]
    let configs: [ResolvedConfig]
    /// For each run, the index of its feature set in `featureKeys`.
    public let featureSetOfRun: [Int]
    let featureKeys: [FeatureKey]

    struct FeatureKey: Hashable, Sendable {
        var features: FeatureConfig
        var instrument: Instrument
    }

    public init(_ spec: GridSpec, base: ResolvedConfig) throws {
        combinations = spec.combinations
        var configs: [ResolvedConfig] = []
        for combo in combinations {
            var c = base
            try ConfigLoader.applyOverrides(combo.map { "\($0.key)=\($0.value)" }, to: &c)
            try ConfigLoader.check(c)
            configs.append(c)
        }
        var keys: [FeatureKey] = []
        var index: [FeatureKey: Int] = [:]
        var ofRun: [Int] = []
        for c in configs {
            let k = FeatureKey(features: c.features, instrument: c.instrument)
            if let i = index[k] {
                ofRun.append(i)
            } else {
                index[k] = keys.count
                keys.append(k)
                ofRun.append(keys.count - 1)
            }
        }
        self.configs = configs
        featureKeys = keys
        featureSetOfRun = ofRun
    }

    public var runCount: Int { configs.count }

    /// The feature sets `runs` read, in order of first use (each computed once), and for each set its position in
    /// that list.
    func featureSets(of runs: [Int]) -> (sets: [Int], slot: [Int: Int]) {
        var sets: [Int] = []
        var slot: [Int: Int] = [:]
        for run in runs where slot[featureSetOfRun[run]] == nil {
            slot[featureSetOfRun[run]] = sets.count
            sets.append(featureSetOfRun[run])
        }
        return (sets, slot)
    }
    public var featureSetCount: Int { featureKeys.count }

    /// The runs of one shard, in run order. Shards are deterministic and balanced by run count: each feature set's
    /// runs go to one shard whole (computed once there), except a set with more runs than a shard's fair share
    /// (runs / shards, rounded up), which is cut into pieces of that size so that no shard idles while another
    /// runs it all; each piece then computes the features once more.
    public func runs(of shard: GridShard) -> [Int] {
        Self.slices(featureSetOfRun: featureSetOfRun, count: shard.count)[shard.index]
    }

    /// Every shard's runs (see `runs(of:)`).
    static func slices(featureSetOfRun: [Int], count: Int) -> [[Int]] {
        let total = featureSetOfRun.count
        guard count > 1 else { return [Array(0..<total)] }
        var groups: [[Int]] = []
        var groupOf: [Int: Int] = [:]
        for (run, set) in featureSetOfRun.enumerated() {
            if let g = groupOf[set] {
                groups[g].append(run)
            } else {
                groupOf[set] = groups.count
                groups.append([run])
            }
        }
        let fair = max(1, (total + count - 1) / count)
        var pieces: [[Int]] = []
        for g in groups {
            stride(from: 0, to: g.count, by: fair).forEach { pieces.append(Array(g[$0..<min($0 + fair, g.count)])) }
        }
        // Largest piece first (ties: the earlier run), each to the shard with the fewest runs (ties: the lower shard).
        pieces.sort { $0.count != $1.count ? $0.count > $1.count : $0[0] < $1[0] }
        var shards = Array(repeating: [Int](), count: count)
        for piece in pieces {
            var target = 0
            for k in 1..<count where shards[k].count < shards[target].count { target = k }
            shards[target].append(contentsOf: piece)
        }
        return shards.map { $0.sorted() }
    }
}

/// One slice of a grid: shard `index` (0-based; shown 1-based, "2/4") of `count`.
public struct GridShard: Sendable, Equatable, CustomStringConvertible {
    public var index: Int
    public var count: Int

    public init(index: Int, count: Int) {
        self.index = index
        self.count = count
    }

    public static let whole = GridShard(index: 0, count: 1)

    public var description: String { "\(index + 1)/\(count)" }

    /// `K/N` (1 ≤ K ≤ N), or `auto` / `auto/N`: the index from a Slurm job array (`SLURM_ARRAY_TASK_ID` less
    /// `SLURM_ARRAY_TASK_MIN`, the count `SLURM_ARRAY_TASK_COUNT`) or a Kubernetes Indexed Job
    /// (`JOB_COMPLETION_INDEX`, which comes without a count: give it as `auto/N`).
    public static func parse(_ text: String, environment: [String: String]) throws -> GridShard {
        let parts = text.split(separator: "/", omittingEmptySubsequences: false).map(String.init)
        guard parts.count <= 2, !parts[0].isEmpty else {
            throw CommandError("--shard \(text): expected K/N (shard K of N, from 1), auto or auto/N")
        }
        var count: Int?
        if parts.count == 2 {
            guard let n = Int(parts[1]), n >= 1 else {
                throw CommandError("--shard \(text): the shard count \(parts[1]) is not a whole number of at least 1")
            }
            count = n
        }
        if parts[0] != "auto" {
            guard let k = Int(parts[0]), let count else {
                throw CommandError("--shard \(text): expected K/N (shard K of N, from 1), auto or auto/N")
            }
            guard (1...count).contains(k) else {
                throw CommandError("--shard \(text): K must be between 1 and \(count)")
            }
            return GridShard(index: k - 1, count: count)
        }
        func number(_ name: String) throws -> Int? {
            guard let raw = environment[name], !raw.isEmpty else { return nil }
            guard let n = Int(raw) else { throw CommandError("--shard auto: \(name)=\(raw) is not a whole number") }
            return n
        }
        if let id = try number("SLURM_ARRAY_TASK_ID") {
            guard let slurmCount = try number("SLURM_ARRAY_TASK_COUNT") else {
                throw CommandError("--shard auto: SLURM_ARRAY_TASK_ID is set but SLURM_ARRAY_TASK_COUNT is not")
            }
            let index = id - (try number("SLURM_ARRAY_TASK_MIN") ?? 0)
            if let count, count != slurmCount {
                throw CommandError("--shard \(text): the job array has \(slurmCount) tasks (SLURM_ARRAY_TASK_COUNT)")
            }
            guard index >= 0, index < slurmCount else {
                throw CommandError(
                    "--shard auto: task \(id) of an array of \(slurmCount) is not one of 0..<\(slurmCount) after "
                        + "SLURM_ARRAY_TASK_MIN: use a contiguous array such as --array=0-\(slurmCount - 1)")
            }
            return GridShard(index: index, count: slurmCount)
        }
        if let index = try number("JOB_COMPLETION_INDEX") {
            guard let count else {
                throw CommandError(
                    "--shard auto: JOB_COMPLETION_INDEX=\(index) comes without a count: give --shard auto/N with N the "
                        + "Job's completions")
            }
            guard index >= 0, index < count else {
                throw CommandError("--shard \(text): JOB_COMPLETION_INDEX=\(index) is not one of 0..<\(count)")
            }
            return GridShard(index: index, count: count)
        }
        throw CommandError(
            "--shard auto: neither SLURM_ARRAY_TASK_ID (a Slurm job array) nor JOB_COMPLETION_INDEX (a Kubernetes "
                + "Indexed Job) is set: give --shard K/N")
    }
}

/// Runs every combination of a grid (or the `runs` of one shard) on the same events with `workers` threads.
///
/// Features are computed once per distinct feature-affecting parameter set and shared by the runs that differ only
/// in strategy parameters. `onFinish` sees each run as it ends (to store it); `shouldStop` is polled between runs,
/// and an interrupted grid returns the runs that finished.
public func runGrid(
    _ spec: GridSpec,
    base: ResolvedConfig,
    trades: [TradeEvent],
    quotes: [QuoteEvent],
    gaps: [RecordedGap] = [],
    workers: Int,
    runs: [Int]? = nil,
    onFinish: @escaping @Sendable (GridOutcome) -> Void = { _ in },
    progress: @escaping @Sendable (Int, Int) -> Void = { _, _ in },
    shouldStop: @escaping @Sendable () -> Bool = { false }
) throws -> [GridOutcome] {
    try runGrid(
        GridPlan(spec, base: base), trades: trades, quotes: quotes, gaps: gaps, workers: workers, runs: runs,
        onFinish: onFinish, progress: progress, shouldStop: shouldStop)
}

/// Runs a planned grid; see `runGrid(_:base:trades:quotes:workers:runs:onFinish:progress:shouldStop:)`.
public func runGrid(
    _ plan: GridPlan,
    trades: [TradeEvent],
    quotes: [QuoteEvent],
    gaps: [RecordedGap] = [],
    workers: Int,
    runs: [Int]? = nil,
    onFinish: @escaping @Sendable (GridOutcome) -> Void = { _ in },
    progress: @escaping @Sendable (Int, Int) -> Void = { _, _ in },
    shouldStop: @escaping @Sendable () -> Bool = { false }
) throws -> [GridOutcome] {
    let selected = runs ?? Array(0..<plan.runCount)
    let (sets, slot) = plan.featureSets(of: selected)
    let featureState = GridState(total: sets.count)
    let featureSets = FeatureSets(count: sets.count)
    let neededSets = sets
    DispatchQueue.concurrentPerform(iterations: max(1, min(workers, sets.count))) { _ in
        while !shouldStop(), let i = featureState.take() {
            var pipeline = FeaturePipeline(config: plan.featureKeys[neededSets[i]].features)
            for g in gaps { pipeline.markMissing(from: g.from, to: g.to) }
            var rows: [MinuteFeatures] = []
            mergeEvents(trades: trades, quotes: quotes) { e in
                pipeline.process(e)
                if !pipeline.closed.isEmpty { rows.append(contentsOf: pipeline.takeClosed()) }
            }
            pipeline.finish()
            rows.append(contentsOf: pipeline.takeClosed())
            featureSets.set(i, rows)
        }
    }

    let state = GridState(total: selected.count)
    let slots = slot
    DispatchQueue.concurrentPerform(iterations: max(1, min(workers, selected.count))) { _ in
        while !shouldStop(), let n = state.take() {
            let i = selected[n]
            guard let rows = featureSets.get(slots[plan.featureSetOfRun[i]]!) else { continue }
            let config = plan.configs[i]
            var bt = Backtester(precomputed: rows, strategy: config.strategy, instrument: config.instrument)
            bt.keepFeatures = false
            mergeEvents(trades: trades, quotes: quotes) { bt.process($0) }
            bt.finish()
            let metrics = BacktestMetrics(trader: bt.trader, equity: bt.equity, fills: bt.fills, minutes: rows)
            let outcome = GridOutcome(index: i, parameters: plan.combinations[i], metrics: metrics)
            onFinish(outcome)
            progress(state.finish(outcome), selected.count)
        }
    }
    return state.outcomes.sorted { $0.index < $1.index }
}

/// Feature sets computed by the workers, by index.
final class FeatureSets: Sendable {
    private let sets: Mutex<[[MinuteFeatures]?]>

    init(count: Int) { sets = Mutex(Array(repeating: nil, count: count)) }

    func set(_ i: Int, _ rows: [MinuteFeatures]) { sets.withLock { $0[i] = rows } }

    func get(_ i: Int) -> [MinuteFeatures]? { sets.withLock { $0[i] } }
}

/// Ranks outcomes by the metric (best first; ties by run index).
public func rank(_ outcomes: [GridOutcome], by metric: RankMetric) -> [GridOutcome] {
    rank(outcomes, by: metric, summary: \.summary, index: \.index)
}

/// Ranks rows by the metric (best first; ties by run index).
public func rank(_ rows: [GridRow], by metric: RankMetric) -> [GridRow] {
    rank(rows, by: metric, summary: \.summary, index: \.index)
}

private func rank<T>(_ items: [T], by metric: RankMetric, summary: (T) -> GridSummary, index: (T) -> Int) -> [T] {
    items.map { (item: $0, score: metric.score(summary($0)), index: index($0)) }
        .sorted { $0.score != $1.score ? $0.score > $1.score : $0.index < $1.index }
        .map(\.item)
}

/// `results.csv`: rank, run, each varied parameter, and the headline metrics.
public func gridResultsCSV(_ ranked: [GridOutcome], spec: GridSpec) -> String {
    gridResultsCSV(ranked.map(\.row), spec: spec)
}

/// `results.csv` from rows (a single grid's or a merge of shards': the same bytes for the same runs).
public func gridResultsCSV(_ ranked: [GridRow], spec: GridSpec) -> String {
    let keys = spec.parameters.map(\.key)
    var out =
        (["rank", "run"] + keys + [
            "trades", "net_pnl", "gross_pnl", "fees", "funding", "win_rate", "profit_factor",
            "max_drawdown", "max_drawdown_pct", "sharpe", "final_equity",
        ]).joined(separator: ",") + "\n"
    func opt(_ d: Double?) -> String { d.map(formatNumber) ?? "" }
    for (n, o) in ranked.enumerated() {
        let m = o.summary
        var fields = [String(n + 1), String(o.index + 1)]
        fields += o.parameters.map { $0.value.description }
        fields += [
            String(m.trades), formatNumber(m.netPnL), formatNumber(m.grossPnL), formatNumber(m.fees),
            formatNumber(m.funding), opt(m.winRate), opt(m.profitFactor), formatNumber(m.maxDrawdown),
            formatNumber(m.maxDrawdownPct), opt(m.sharpe), formatNumber(m.finalEquity),
        ]
        out += fields.joined(separator: ",") + "\n"
    }
    return out
}

/// The parameters of a run as a JSON object.
package func parametersJSON(_ parameters: [(key: String, value: ParameterValue)]) -> String {
    var o = JSONObject()
    for p in parameters {
        switch p.value {
        case .integer(let i): o[p.key] = .integer(i)
        case .real(let d): o[p.key] = .number(d)
        case .boolean(let b): o[p.key] = .bool(b)
        case .text(let s): o[p.key] = .string(s)
        case .decimal(let d): o[p.key] = .string(d.description)
        }
    }
    return JSONValue.object(o).render(indent: 0)
}
