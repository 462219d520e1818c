public import AgentConfig
import AgentSupport
import Charts
public import Engine
import Foundation
import Synchronization

/// One finished grid run.
public struct GridOutcome: Sendable {
    /// Position in the cartesian product (0-based).
    public var index: Int
    public var parameters: [(key: String, value: ParameterValue)]
    public var metrics: BacktestMetrics
}

/// Keys whose value changes the features (and so cannot share them).
func affectsFeatures(_ key: String) -> Bool {
    key.hasPrefix("instrument.") || key.hasPrefix("order_flow.") || key == "execution.close_grace_ms"
        || (key.hasPrefix("value_area.") && key != "value_area.warmup_minutes")
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

/// Runs every combination of a grid on the same events with `workers` threads.
///
/// Features are computed once per distinct feature-affecting parameter set and shared by the runs that differ only
/// in strategy parameters. `onFinish` sees each run as it ends (to store it); `shouldStop` is polled between runs,
/// and an interrupted grid returns the runs that finished.
public func runGrid(
    _ spec: GridSpec,
    base: ResolvedConfig,
    trades: [TradeEvent],
    quotes: [QuoteEvent],
    workers: Int,
    onFinish: @escaping @Sendable (GridOutcome) -> Void = { _ in },
    progress: @escaping @Sendable (Int, Int) -> Void = { _, _ in },
    shouldStop: @escaping @Sendable () -> Bool = { false }
) throws -> [GridOutcome] {
    // Resolve every combination first, so a bad one stops the grid before any work.
    let combinations = spec.combinations
    var configs: [ResolvedConfig] = []
    for combo in combinations {
        var c = base
        try ConfigLoader.applyOverrides(combo.map { "\($0.key)=\($0.value)" }, to: &c)
        try ConfigLoader.check(c)
        configs.append(c)
    }

    // Distinct feature sets.
    struct FeatureKey: Hashable {
        var features: FeatureConfig
        var instrument: Instrument
    }
    var keys: [FeatureKey] = []
    var keyOfRun: [Int] = []
    for c in configs {
        let k = FeatureKey(features: c.features, instrument: c.instrument)
        if let i = keys.firstIndex(of: k) {
            keyOfRun.append(i)
        } else {
            keys.append(k)
            keyOfRun.append(keys.count - 1)
        }
    }
    let featureState = GridState(total: keys.count)
    let featureSets = FeatureSets(count: keys.count)
    let featureKeys = keys
    DispatchQueue.concurrentPerform(iterations: max(1, min(workers, keys.count))) { _ in
        while !shouldStop(), let i = featureState.take() {
            var pipeline = FeaturePipeline(config: featureKeys[i].features)
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

    let state = GridState(total: configs.count)
    let runConfigs = configs
    let runKeys = keyOfRun
    DispatchQueue.concurrentPerform(iterations: max(1, min(workers, configs.count))) { _ in
        while !shouldStop(), let i = state.take() {
            guard let rows = featureSets.get(runKeys[i]) else { continue }
            let config = runConfigs[i]
            var bt = Backtester(precomputed: rows, strategy: config.strategy, instrument: config.instrument)
            bt.keepFeatures = false
            mergeEvents(trades: trades, quotes: quotes) { bt.process($0) }
            bt.finish()
            let metrics = BacktestMetrics(trader: bt.trader, equity: bt.equity, fills: bt.fills, minutes: rows)
            let outcome = GridOutcome(index: i, parameters: combinations[i], metrics: metrics)
            onFinish(outcome)
            progress(state.finish(outcome), runConfigs.count)
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
    outcomes.sorted {
        let a = metric.score($0.metrics)
        let b = metric.score($1.metrics)
        return a != b ? a > b : $0.index < $1.index
    }
}

/// `results.csv`: rank, run, each varied parameter, and the headline metrics.
public func gridResultsCSV(_ ranked: [GridOutcome], spec: GridSpec) -> String {
    let keys = spec.parameters.map(\.key)
    var out =
        (["rank", "run"] + keys + [
            "trades", "net_pnl", "gross_pnl", "fees", "funding", "win_rate", "profit_factor",
            "max_drawdown", "max_drawdown_pct", "sharpe", "final_equity",
        ]).joined(separator: ",") + "\n"
    func opt(_ d: Double?) -> String { d.map(formatNumber) ?? "" }
    for (n, o) in ranked.enumerated() {
        let m = o.metrics
        var fields = [String(n + 1), String(o.index + 1)]
        fields += o.parameters.map { $0.value.description }
        fields += [
            String(m.overall.trades), formatNumber(m.overall.netPnL), formatNumber(m.overall.grossPnL),
            formatNumber(m.fees),
            formatNumber(m.funding), opt(m.overall.winRate), opt(m.overall.profitFactor), formatNumber(m.maxDrawdown),
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
