public import AgentConfig
import AgentSupport
public import Engine
import Foundation

extension GridPlan {
    /// The configuration of run `index` (0-based): the base with the run's grid values.
    public func configuration(ofRun index: Int) -> ResolvedConfig { configs[index] }
}

/// `grid --keep-reports N`: the best `count` runs of `ranked` run again, each with every output of a backtest
/// (report.html, trades.csv, fills.csv, signals.csv, equity.csv, metrics.json, config.yaml) in
/// `directory/runs/RUN/`. `backtest` runs one configuration over the grid's data. Returns each kept run's report,
/// by run number (from 1), as a path relative to `directory` (what results.html links).
public func keepGridReports(
    _ ranked: [GridRow], count: Int, plan: GridPlan, directory: String,
    backtest: (ResolvedConfig) throws -> BacktestResult
) throws -> [Int: String] {
    var reports: [Int: String] = [:]
    for row in ranked.prefix(count) {
        let run = row.index + 1
        let config = plan.configuration(ofRun: row.index)
        let result = try backtest(config)
        let relative = "runs/\(run)"
        try writeBacktest(
            result, to: "\(directory)/\(relative)", instrument: config.instrument,
            initialEquity: config.strategy.initialEquity,
            title: "auction-trader grid run \(run): "
                + row.parameters.map { "\($0.key)=\($0.value)" }.joined(separator: " "),
            parameters: ConfigLoader.researchParameters(config))
        let text =
            "# auction-agent grid run \(run) (--keep-reports): the configuration of this run. Run it again on the same "
            + "inputs\n# with `backtest --config config.yaml`.\n" + ConfigLoader.render(config)
        try writeAtomically(Array(text.utf8), to: "\(directory)/\(relative)/config.yaml")
        reports[run] = "\(relative)/report.html"
    }
    return reports
}

/// The reports the shards of a merged grid kept (`runs/RUN/report.html` in a shard's directory), by run number, as
/// absolute paths (the merged results.html lies elsewhere).
public func keptGridReports(inShards inputs: [String], runs: [Int]) -> [Int: String] {
    var found: [Int: String] = [:]
    for input in inputs {
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: input, isDirectory: &isDirectory)
        let dir = URL(
            fileURLWithPath: exists && isDirectory.boolValue ? input : (input as NSString).deletingLastPathComponent
        )
        .standardizedFileURL.path
        for run in runs where found[run] == nil {
            let path = "\(dir)/runs/\(run)/report.html"
            if FileManager.default.fileExists(atPath: path) { found[run] = path }
        }
    }
    return found
}
