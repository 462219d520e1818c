import AgentConfig
import AgentSupport
import Foundation
import GRDB

/// Grid results in SQLite. `grid_results` holds one row per finished run (run id, params JSON, metrics JSON, the
/// exact summary figures, created at), committed as it finishes, so an interrupted grid keeps every finished run.
/// `grid_meta` describes each grid written to the file: its shard, the runs the shard was given, and the texts
/// that identify the grid, configuration and data (`GridIdentity`), so that `grid merge` can check its inputs.
public final class GridStore: Sendable {
    private let queue: DatabaseQueue
    /// Identifies one `grid` invocation among the rows of the tables.
    public let gridId: String
    public let path: String

    public init(path: String, gridId: String) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        queue = try DatabaseQueue(path: path, configuration: configuration)
        self.gridId = gridId
        self.path = path
        try Self.migrator.migrate(queue)
    }

    /// Opens an existing database to read (a merge's input); a missing file is an error naming it.
    static func openForReading(_ path: String) throws -> DatabaseQueue {
        guard FileManager.default.fileExists(atPath: path) else {
            throw CommandError("\(path): no such file (a shard's --out directory holds grid.sqlite)")
        }
        var configuration = Configuration()
        configuration.readonly = true
        configuration.busyMode = .timeout(5)
        do { return try DatabaseQueue(path: path, configuration: configuration) } catch {
            throw CommandError("\(path): not a grid database: \(error)")
        }
    }

    /// Named, append-only migration steps.
    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1_grid_results") { db in
            try db.create(table: "grid_results") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("grid_id", .text).notNull()
                t.column("run_index", .integer).notNull()
                t.column("params", .text).notNull()
                t.column("metrics", .text).notNull()
                t.column("created_at", .text).notNull()
            }
            try db.create(index: "grid_results_by_grid", on: "grid_results", columns: ["grid_id", "run_index"])
        }
        m.registerMigration("v2_grid_meta") { db in
            try db.alter(table: "grid_results") { t in t.add(column: "summary", .text) }
            try db.create(table: "grid_meta") { t in
                t.primaryKey("grid_id", .text)
                t.column("shard_index", .integer).notNull()
                t.column("shard_count", .integer).notNull()
                t.column("runs_total", .integer).notNull()
                t.column("shard_runs", .text).notNull()
                t.column("grid", .text).notNull()
                t.column("config", .text).notNull()
                t.column("data", .text).notNull()
                t.column("merged_from", .text)
                t.column("started_at", .text).notNull()
                t.column("finished_at", .text)
                t.column("interrupted", .boolean).notNull().defaults(to: false)
            }
        }
        return m
    }

    /// Records the grid this store writes, before its first run.
    public func begin(
        shard: GridShard, runsTotal: Int, runs: [Int], identity: GridIdentity, startedAt: String,
        mergedFrom: String? = nil
    ) throws {
        try queue.write { db in
            try db.execute(
                sql: """
                    INSERT INTO grid_meta (grid_id, shard_index, shard_count, runs_total, shard_runs, grid, config, data,
                        merged_from, started_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                    """,
                arguments: [
                    gridId, shard.index + 1, shard.count, runsTotal, runs.map(String.init).joined(separator: ","),
                    identity.grid, identity.config, identity.data, mergedFrom, startedAt,
                ])
        }
    }

    /// Records the data's identity once it is known (a streaming grid learns it on its first pass).
    public func setData(_ data: String) throws {
        try queue.write { db in
            try db.execute(sql: "UPDATE grid_meta SET data = ? WHERE grid_id = ?", arguments: [data, gridId])
        }
    }

    /// Marks the grid finished (every run of the shard done) or interrupted.
    public func finish(at finishedAt: String, interrupted: Bool) throws {
        try queue.write { db in
            try db.execute(
                sql: "UPDATE grid_meta SET finished_at = ?, interrupted = ? WHERE grid_id = ?",
                arguments: [finishedAt, interrupted, gridId])
        }
    }

    /// Stores one finished run.
    public func insert(runIndex: Int, params: String, metrics: String, summary: String? = nil, createdAt: String) throws
    {
        try queue.write { db in
            try db.execute(
                sql: """
                    INSERT INTO grid_results (grid_id, run_index, params, metrics, summary, created_at)
                    VALUES (?, ?, ?, ?, ?, ?)
                    """,
                arguments: [gridId, runIndex, params, metrics, summary, createdAt]
            )
        }
    }

    /// Runs stored for this grid, by run index.
    func storedRuns() throws -> [(runIndex: Int, params: String, metrics: String)] {
        try queue.read { db in
            try Row.fetchAll(
                db, sql: "SELECT run_index, params, metrics FROM grid_results WHERE grid_id = ? ORDER BY run_index",
                arguments: [gridId]
            )
            .map { (runIndex: $0["run_index"], params: $0["params"], metrics: $0["metrics"]) }
        }
    }
}

/// One grid as a database holds it: its description and its stored runs (a merge's input).
struct StoredGrid {
    var path: String
    var gridId: String
    var shard: GridShard
    var runsTotal: Int
    var runs: [Int]
    var identity: GridIdentity
    var finished: Bool
    var interrupted: Bool
    /// Run index → (params JSON, metrics JSON, summary text).
    var results: [Int: (params: String, metrics: String, summary: String?)]

    /// The latest grid written to the database at `path`.
    static func latest(in path: String) throws -> StoredGrid {
        let queue = try GridStore.openForReading(path)
        return try queue.read { db in
            guard try db.tableExists("grid_meta"), try db.tableExists("grid_results") else {
                throw CommandError(
                    "\(path): no grid description (grid_meta): written by an agent older than grid sharding; run the "
                        + "grid again")
            }
            guard
                let meta = try Row.fetchOne(
                    db, sql: "SELECT * FROM grid_meta ORDER BY started_at DESC, rowid DESC LIMIT 1")
            else { throw CommandError("\(path): holds no grid") }
            let gridId: String = meta["grid_id"]
            let runsText: String = meta["shard_runs"]
            var results: [Int: (params: String, metrics: String, summary: String?)] = [:]
            for row in try Row.fetchAll(
                db, sql: "SELECT run_index, params, metrics, summary FROM grid_results WHERE grid_id = ?",
                arguments: [gridId])
            {
                results[row["run_index"]] = (row["params"], row["metrics"], row["summary"])
            }
            return StoredGrid(
                path: path, gridId: gridId,
                shard: GridShard(index: meta["shard_index"] - 1, count: meta["shard_count"]),
                runsTotal: meta["runs_total"],
                runs: runsText.split(separator: ",").compactMap { Int($0) },
                identity: GridIdentity(grid: meta["grid"], config: meta["config"], data: meta["data"]),
                finished: (meta["finished_at"] as String?) != nil, interrupted: meta["interrupted"],
                results: results)
        }
    }
}
