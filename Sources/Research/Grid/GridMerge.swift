import AgentConfig
import AgentSupport
import Engine
import Foundation

/// Shards of one grid combined: every stored run with its figures, and what is missing.
public struct GridMerge {
    public var spec: GridSpec
    public var identity: GridIdentity
    public var shardCount: Int
    public var runsTotal: Int
    /// The runs found, by run index.
    public var rows: [GridRow]
    /// Shards given no input (0-based).
    public var missingShards: [Int]
    /// Shards present but without all their runs: the database, the runs stored and the runs given.
    public var incompleteShards: [(shard: GridShard, path: String, stored: Int, given: Int, interrupted: Bool)]
    var stored: [Int: (params: String, metrics: String, summary: String)]
    var inputs: [StoredGrid]

    public var isComplete: Bool { rows.count == runsTotal }

    /// The databases read.
    public var inputPaths: [String] { inputs.map(\.path) }

    /// What the merge found, for the operator: one line per problem, then a total.
    public var lines: [String] {
        var out: [String] = []
        if !missingShards.isEmpty {
            out.append(
                "grid merge: missing shard\(missingShards.count == 1 ? "" : "s") "
                    + missingShards.map { GridShard(index: $0, count: shardCount).description }.joined(separator: ", ")
                    + " (no database given for them)")
        }
        for s in incompleteShards {
            out.append(
                "grid merge: shard \(s.shard) (\(s.path)) has \(s.stored) of its \(s.given) runs"
                    + (s.interrupted ? " (interrupted)" : " (not finished)"))
        }
        out.append(
            "grid merge: \(inputs.count) of \(shardCount) shard\(shardCount == 1 ? "" : "s"), \(rows.count) of "
                + "\(runsTotal) runs")
        return out
    }

    /// Reads the latest grid of each input (a shard's --out directory or its database) and checks that they are
    /// shards of one grid over the same configuration and data, each given once.
    public init(inputs paths: [String]) throws {
        guard !paths.isEmpty else { throw CommandError("grid merge: no shard databases given") }
        var grids: [StoredGrid] = []
        for p in paths {
            var isDir: ObjCBool = false
            let db =
                FileManager.default.fileExists(atPath: p, isDirectory: &isDir) && isDir.boolValue
                ? "\(p)/grid.sqlite" : p
            grids.append(try StoredGrid.latest(in: db))
        }
        let first = grids[0]
        for g in grids.dropFirst() {
            func refuse(_ what: String, _ a: String, _ b: String) throws -> Never {
                throw CommandError(
                    "grid merge: \(g.path) is a shard of \(what) than \(first.path): "
                        + GridIdentity.firstDifference(b, a))
            }
            if g.identity.grid != first.identity.grid {
                try refuse("another grid", first.identity.grid, g.identity.grid)
            }
            if g.identity.config != first.identity.config {
                try refuse("a grid with another configuration", first.identity.config, g.identity.config)
            }
            if g.identity.data != first.identity.data {
                try refuse("a grid over other data", first.identity.data, g.identity.data)
            }
            if g.shard.count != first.shard.count {
                throw CommandError(
                    "grid merge: \(g.path) is shard \(g.shard) but \(first.path) is shard \(first.shard): the grid was "
                        + "cut into different numbers of shards")
            }
        }
        var byShard: [Int: StoredGrid] = [:]
        for g in grids {
            if let other = byShard[g.shard.index] {
                throw CommandError("grid merge: shard \(g.shard) given twice: \(other.path) and \(g.path)")
            }
            byShard[g.shard.index] = g
        }
        let spec = try GridSpec.parse(yaml: first.identity.grid, source: "\(first.path) (grid_meta.grid)")
        let combinations = spec.combinations
        guard combinations.count == first.runsTotal else {
            throw CommandError(
                "grid merge: \(first.path) says \(first.runsTotal) runs but its grid has \(combinations.count)")
        }
        var stored: [Int: (params: String, metrics: String, summary: String)] = [:]
        var owner: [Int: String] = [:]
        var incomplete: [(shard: GridShard, path: String, stored: Int, given: Int, interrupted: Bool)] = []
        for g in grids.sorted(by: { $0.shard.index < $1.shard.index }) {
            var found = 0
            for run in g.runs {
                guard run >= 0, run < combinations.count else {
                    throw CommandError(
                        "grid merge: \(g.path) lists run \(run + 1), beyond the grid's \(combinations.count)")
                }
                if let other = owner[run] {
                    throw CommandError("grid merge: run \(run + 1) belongs to both \(other) and \(g.path)")
                }
                owner[run] = g.path
                guard let r = g.results[run] else { continue }
                guard let summary = r.summary, GridSummary(text: summary) != nil else {
                    throw CommandError("grid merge: \(g.path): run \(run + 1) has no readable summary")
                }
                stored[run] = (r.params, r.metrics, summary)
                found += 1
            }
            if found < g.runs.count {
                incomplete.append((g.shard, g.path, found, g.runs.count, g.interrupted))
            }
        }
        self.spec = spec
        identity = first.identity
        shardCount = first.shard.count
        runsTotal = first.runsTotal
        rows = stored.keys.sorted().map {
            GridRow(index: $0, parameters: combinations[$0], summary: GridSummary(text: stored[$0]!.summary)!)
        }
        missingShards = (0..<first.shard.count).filter { byShard[$0] == nil }
        incompleteShards = incomplete
        self.stored = stored
        inputs = grids
    }

    /// Writes the merged database: one grid (shard 1/1) holding every run found, naming the shards it came from.
    public func write(to store: GridStore, at time: String) throws {
        try store.begin(
            shard: .whole, runsTotal: runsTotal, runs: rows.map(\.index), identity: identity, startedAt: time,
            mergedFrom: inputs.sorted { $0.shard.index < $1.shard.index }
                .map { "\($0.shard) \($0.path) \($0.gridId)" }.joined(separator: "\n"))
        for row in rows {
            let s = stored[row.index]!
            try store.insert(
                runIndex: row.index, params: s.params, metrics: s.metrics, summary: s.summary, createdAt: time)
        }
        try store.finish(at: time, interrupted: !isComplete)
    }
}

/// The best runs as lines for the terminal: "#1 run 3: net_pnl sizing.risk_pct=0.02 = 123.4 (12 trades)".
public func gridTopLines(_ ranked: [GridRow], rankBy: RankMetric, count: Int = 5) -> [String] {
    ranked.prefix(count).enumerated().map { n, o in
        let params = o.parameters.map { "\($0.key)=\($0.value)" }.joined(separator: " ")
        return "  #\(n + 1) run \(o.index + 1): \(rankBy.rawValue) \(params) = "
            + "\(formatNumber(rankBy.score(o.summary))) (\(o.summary.trades) trades)"
    }
}
