import AgentConfig
import AgentSupport
import Charts
import Foundation
import GRDB

/// Grid results in SQLite (`grid_results`: run id, params JSON, metrics JSON, created at). Each run is committed
/// as it finishes, so an interrupted grid keeps every finished run.
public final class GridStore: Sendable {
    private let queue: DatabaseQueue
    /// Identifies one `grid` invocation among the rows of the table.
    public let gridId: String

    public init(path: String, gridId: String) throws {
        var configuration = Configuration()
        configuration.busyMode = .timeout(5)
        queue = try DatabaseQueue(path: path, configuration: configuration)
        self.gridId = gridId
        try Self.migrator.migrate(queue)
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
        return m
    }

    /// Stores one finished run.
    public func insert(runIndex: Int, params: String, metrics: String, createdAt: String) throws {
        try queue.write { db in
            try db.execute(
                sql:
                    "INSERT INTO grid_results (grid_id, run_index, params, metrics, created_at) VALUES (?, ?, ?, ?, ?)",
                arguments: [gridId, runIndex, params, metrics, createdAt]
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
