public import AgentConfig
import AgentSupport
package import Engine
import Foundation
import Yams

/// A grid: the values to try for any configuration keys, and the metric that ranks the runs.
///
///     rank_by: net_pnl            # optional: net_pnl (default), sharpe, profit_factor, win_rate,
///                                 #           final_equity, trades, max_drawdown_pct (lower is better)
///     parameters:
///       value_area.va_fraction: [0.68, 0.70, 0.72]
///       signal.accept_outside_k: [2, 3, 4]
public struct GridSpec: Sendable {
    public var rankBy: RankMetric
    /// Keys in file order, each with its values in file order.
    public var parameters: [(key: String, values: [ParameterValue])]

    /// Every combination, the last key varying fastest.
    public var combinations: [[(key: String, value: ParameterValue)]] {
        var out: [[(key: String, value: ParameterValue)]] = [[]]
        for p in parameters {
            out = out.flatMap { prefix in p.values.map { prefix + [(p.key, $0)] } }
        }
        return out
    }

    /// Parses grid YAML; errors name the file, line and key.
    public static func parse(yaml text: String, source: String) throws(ConfigError) -> GridSpec {
        let root: Node?
        do { root = try Yams.compose(yaml: text) } catch {
            throw ConfigError(source: source, message: "not valid YAML: \(error)")
        }
        guard case .mapping(let top)? = root else {
            throw ConfigError(
                source: source, message: "expected a mapping with 'parameters' (and optionally 'rank_by')")
        }
        var rank = RankMetric.netPnL
        var parameters: [(key: String, values: [ParameterValue])] = []
        for (keyNode, value) in top {
            let line = keyNode.mark?.line
            switch keyNode.string {
            case "rank_by":
                guard let name = value.string, let metric = RankMetric(rawValue: name) else {
                    throw ConfigError(
                        source: source, line: line, key: "rank_by",
                        message: "expected one of \(RankMetric.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                rank = metric
            case "parameters":
                guard case .mapping(let entries) = value else {
                    throw ConfigError(
                        source: source, line: line, key: "parameters",
                        message: "expected a mapping of group.key: [values]")
                }
                for (nameNode, valuesNode) in entries {
                    let key = nameNode.string ?? "?"
                    let keyLine = nameNode.mark?.line
                    guard let parameter = ConfigSchema.byKey[key] else {
                        throw ConfigError(source: source, line: keyLine, key: key, message: "unknown key")
                    }
                    let scalars: [Node]
                    switch valuesNode {
                    case .sequence(let seq): scalars = Array(seq)
                    case .scalar: scalars = [valuesNode]
                    default:
                        throw ConfigError(source: source, line: keyLine, key: key, message: "expected a list of values")
                    }
                    guard !scalars.isEmpty else {
                        throw ConfigError(source: source, line: keyLine, key: key, message: "no values")
                    }
                    var values: [ParameterValue] = []
                    for s in scalars {
                        guard let text = s.string else {
                            throw ConfigError(
                                source: source, line: s.mark?.line ?? keyLine, key: key,
                                message: "expected a single value")
                        }
                        switch parameter.parse(text) {
                        case .success(let v): values.append(v)
                        case .failure(let problem):
                            throw ConfigError(
                                source: source, line: s.mark?.line ?? keyLine, key: key, message: problem.description)
                        }
                    }
                    if parameters.contains(where: { $0.key == key }) {
                        throw ConfigError(source: source, line: keyLine, key: key, message: "listed twice")
                    }
                    parameters.append((key, values))
                }
            default:
                throw ConfigError(
                    source: source, line: line, key: keyNode.string,
                    message: "unknown entry (expected parameters, rank_by)")
            }
        }
        guard !parameters.isEmpty else { throw ConfigError(source: source, message: "no parameters to vary") }
        return GridSpec(rankBy: rank, parameters: parameters)
    }
}

/// The metric that ranks grid runs.
public enum RankMetric: String, Sendable, CaseIterable {
    case netPnL = "net_pnl"
    case sharpe
    case profitFactor = "profit_factor"
    case winRate = "win_rate"
    case finalEquity = "final_equity"
    case trades
    case maxDrawdownPct = "max_drawdown_pct"

    /// The value to sort on, larger is better; a run without the figure sorts last.
    package func score(_ m: BacktestMetrics) -> Double { score(GridSummary(m)) }

    /// The value to sort on, larger is better; a run without the figure sorts last.
    public func score(_ s: GridSummary) -> Double {
        switch self {
        case .netPnL: s.netPnL
        case .sharpe: s.sharpe ?? -.infinity
        case .profitFactor: s.profitFactor ?? -.infinity
        case .winRate: s.winRate ?? -.infinity
        case .finalEquity: s.finalEquity
        case .trades: Double(s.trades)
        case .maxDrawdownPct: -s.maxDrawdownPct
        }
    }
}
