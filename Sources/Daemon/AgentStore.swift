import AgentConfig
import AgentSupport
import Dispatch
public import Engine
import Foundation
import GRDB
public import Logging
import Synchronization

/// A snapshot of the trading state (docs/DESIGN.md, "Recovery and persistence"): what a restart resumes from.
public struct SnapshotRow: Sendable {
    public var id: Int64
    public var wallTs: Int64
    /// Market time of the last event the state had seen.
    public var marketTs: Int64
    public var state: AgentState
    public var reason: String
    public var activated: Bool
    /// The last minute the trader decided (its start).
    public var lastMinute: Int64?
    public var trader: Trader
    /// The paper book: the working orders.
    public var venue: PaperFillModel
}

/// The versions of the stored snapshot's payload (the `trader` and `venue` JSON). A change to what `Trader` or
/// `PaperFillModel` encode is a new version with an upgrade step here, and a fixture of the old version in the tests
/// (SnapshotFormatTests): an agent upgraded with a position open must restore it.
///
/// - 0: rows written before the version was stored (the encodings of `Trader` and `PaperFillModel` as of 2026-12).
/// - 1: the same payload, its version stored with it.
enum SnapshotFormat {
    static let current = 1

    /// The payload of `version` brought to the current one.
    static func upgrade(trader: Data, venue: Data, from version: Int) -> (trader: Data, venue: Data) {
        // 0 → 1: the payload did not change; only its version is now stored.
        (trader, venue)
    }

    /// The stored trader and book of `row` (a snapshot, a run-log row), upgraded from `format`; one this build
    /// cannot read is an error naming the row.
    static func decode(trader: Data, venue: Data, format: Int, row: String) throws -> (Trader, PaperFillModel) {
        guard format <= current else {
            throw CommandError(
                "\(row) has format \(format), written by a newer auction-agent; this one reads "
                    + "formats up to \(current). Run the newer version again (downgrading needs a flat position and the "
                    + "state directory moved away)")
        }
        let payload = upgrade(trader: trader, venue: venue, from: format)
        let decoder = JSONDecoder()
        do {
            return (
                try decoder.decode(Trader.self, from: payload.trader),
                try decoder.decode(PaperFillModel.self, from: payload.venue)
            )
        } catch {
            throw CommandError("\(row) (format \(format)) does not decode: \(error)")
        }
    }
}

/// One row of the run log: from `marketTs` on, the agent ran with `config` (each parameter's value as text, a JSON
/// object) and resumed with this trader
/// and book. `openMinute`: at a start, the minute the rebuilt window had reached (the minutes before it, since the
/// last one decided, were closed without a decision while the agent was down).
public struct RunRow: Sendable {
    public var wallTs: Int64
    public var marketTs: Int64
    public var openMinute: Int64?
    /// The last event of the agent's arrival order before this row (nil: none recorded).
    public var seq: Int64?
    /// `start`, `reload`, or `command <name>`.
    public var cause: String
    public var config: String
    public var trader: Trader
    public var venue: PaperFillModel

    public init(
        wallTs: Int64, marketTs: Int64, openMinute: Int64?, seq: Int64? = nil, cause: String, config: String,
        trader: Trader, venue: PaperFillModel
    ) {
        (self.wallTs, self.marketTs, self.openMinute, self.seq, self.cause) = (wallTs, marketTs, openMinute, seq, cause)
        (self.config, self.trader, self.venue) = (config, trader, venue)
    }
}

struct RunRecord: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "run_log"

    var id: Int64?
    var wallTs: Int64
    var marketTs: Int64
    var openMinute: Int64?
    var seq: Int64?
    var cause: String
    var config: String
    var trader: Data
    var venue: Data
    var format: Int

    enum CodingKeys: String, CodingKey {
        case id, seq, cause, config, trader, venue, format
        case wallTs = "wall_ts"
        case marketTs = "market_ts"
        case openMinute = "open_minute"
    }

    init(_ r: RunRow) throws {
        let encoder = JSONEncoder()
        (wallTs, marketTs, openMinute, seq, cause, config) = (
            r.wallTs, r.marketTs, r.openMinute, r.seq, r.cause, r.config
        )
        trader = try encoder.encode(r.trader)
        venue = try encoder.encode(r.venue)
        format = SnapshotFormat.current
    }

    /// The row, its state upgraded as snapshots are; one this build cannot read is an error naming the database and row.
    func decoded(in path: String) throws -> RunRow {
        let (t, v) = try SnapshotFormat.decode(
            trader: trader, venue: venue, format: format, row: "run_log row \(id ?? 0) in \(path)")
        return RunRow(
            wallTs: wallTs, marketTs: marketTs, openMinute: openMinute, seq: seq, cause: cause, config: config,
            trader: t, venue: v)
    }
}

/// A row of `snapshots` as stored.
struct SnapshotRecord: Codable, FetchableRecord, PersistableRecord {
    static let databaseTableName = "snapshots"

    var id: Int64?
    var wallTs: Int64
    var marketTs: Int64
    var state: String
    var reason: String
    var activated: Bool
    var lastMinute: Int64?
    var trader: Data
    var venue: Data
    var format: Int

    enum CodingKeys: String, CodingKey {
        case id, state, reason, activated, trader, venue, format
        case wallTs = "wall_ts"
        case marketTs = "market_ts"
        case lastMinute = "last_minute"
    }

    /// Encoding failures are errors: a snapshot that cannot be written is not written as something else.
    init(_ s: SnapshotRow) throws {
        let encoder = JSONEncoder()
        (wallTs, marketTs, state, reason, activated, lastMinute) = (
            s.wallTs, s.marketTs, s.state.rawValue, s.reason, s.activated, s.lastMinute
        )
        trader = try encoder.encode(s.trader)
        venue = try encoder.encode(s.venue)
        format = SnapshotFormat.current
    }

    /// The snapshot, upgraded from its version; one this build cannot read is an error naming the database and row.
    func decoded(in path: String) throws -> SnapshotRow {
        let row = id ?? 0
        let (t, v) = try SnapshotFormat.decode(
            trader: trader, venue: venue, format: format, row: "snapshot \(row) in \(path)")
        guard let kept = AgentState(rawValue: state) else {
            throw CommandError("snapshot \(row) in \(path): unknown state '\(state)'")
        }
        return SnapshotRow(
            id: row, wallTs: wallTs, marketTs: marketTs, state: kept, reason: reason, activated: activated,
            lastMinute: lastMinute, trader: t, venue: v)
    }
}

/// An order as stored: recorded before it is sent, updated as the venue reports.
public struct OrderRow: Sendable, Hashable {
    public var intent: OrderIntent
    public var status: OrderStatus
    public var wallTs: Int64
}

/// Where a recorded order ended, as the `orders` table and `auction_agent_orders_total{outcome}` say it.
public enum OrderStatus: String, Sendable, Hashable, CaseIterable {
    /// Recorded, and handed to the venue once committed.
    case submitted
    case filled
    case cancelled
    case rejected
    /// Live: the exchange ended it (a market order at its slippage band) after part of it executed.
    case partiallyFilledCancelled = "partially_filled_cancelled"
}

/// Everything the engine records in one step, written in one transaction (so a crash leaves all or nothing).
public struct StoreBatch: Sendable {
    /// Orders recorded (submitted) in this step.
    public var orders: [OrderRow] = []
    /// Status changes of recorded orders (`filled`, `cancelled`, `rejected`), applied after `orders`; an id with no
    /// row (a fill the agent did not order) changes nothing.
    public var orderUpdates: [OrderUpdate] = []
    public var fills: [Fill] = []
    public var features: [FeatureRow] = []
    public var signals: [SignalRecord] = []
    public var transitions: [TransitionRow] = []
    public var alerts: [AlertRow] = []
    public var commands: [CommandRow] = []
    public var gaps: [GapRow] = []
    /// The exchange's executions this step booked (shadow and live): written with the fills they made, so that a
    /// restart neither books one twice nor loses one.
    public var executions: [ExecutionRow] = []
    public var snapshot: SnapshotRow?
    /// The configuration and the state the agent ran with from this step on (a start, a reload, an operator's
    /// command): where `replay` takes over the agent's state.
    public var runs: [RunRow] = []
    /// Minutes the clock closed in this step: after the event `seq` of the arrival order, through `through`.
    public var clockCloses: [(seq: Int64, through: Int64)] = []

    public init() {}

    public var isEmpty: Bool {
        orders.isEmpty && orderUpdates.isEmpty && fills.isEmpty && features.isEmpty && signals.isEmpty
            && transitions.isEmpty && alerts.isEmpty
            && commands.isEmpty && gaps.isEmpty && executions.isEmpty && snapshot == nil && runs.isEmpty
            && clockCloses.isEmpty
    }
}

/// The agent's SQLite database, one per environment: `<state_dir>/agent.sqlite` in WAL mode.
///
/// Raw trades and quotes arrive in batches from the engine and are written off its thread; everything else
/// (orders, fills, signals, snapshots, transitions, alerts, operator commands) is written synchronously, in one
/// transaction per engine step, before the step's orders are sent.
public final class AgentStore: Sendable {
    public let path: String
    private let pool: DatabasePool
    private let rawQueue = DispatchQueue(label: "auction.store.raw")
    /// The raw writes queued and not yet done, and the last one's failure (its description).
    private struct RawWrites {
        var pending = 0
        var error: String?
        /// The market-time spans of raw batches the database refused (dropped), oldest first.
        var dropped: [(from: Int64, to: Int64)] = []
    }
    private let raw = Mutex(RawWrites())

    /// Formats prices in stored signal rows.
    public let instrument: Instrument

    public init(directory: String, instrument: Instrument) throws {
        self.instrument = instrument
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        path = (directory as NSString).appendingPathComponent("agent.sqlite")
        var configuration = Configuration()
        configuration.busyMode = .timeout(10)
        configuration.prepareDatabase { db in
            // WAL survives a killed process without loss; NORMAL skips the fsync per commit, which only a power
            // cut could make matter.
            try db.execute(sql: "PRAGMA synchronous = NORMAL")
        }
        do {
            pool = try DatabasePool(path: path, configuration: configuration)
            try Self.migrator.migrate(pool)
        } catch {
            throw StoreOpenError.classify(error, path: path)
        }
    }

    static var migrator: DatabaseMigrator {
        var m = DatabaseMigrator()
        m.registerMigration("v1_agent") { db in
            try db.create(table: "meta") { t in
                t.primaryKey("key", .text)
                t.column("value", .text).notNull()
            }
            try db.create(table: "trades") { t in
                t.column("ts", .integer).notNull()
                t.column("price", .integer).notNull()
                t.column("size", .integer).notNull()
                t.column("side", .integer).notNull()
            }
            try db.create(index: "trades_by_ts", on: "trades", columns: ["ts"])
            try db.create(table: "quotes") { t in
                t.column("ts", .integer).notNull()
                t.column("bid", .integer).notNull()
                t.column("bid_size", .integer).notNull()
                t.column("ask", .integer).notNull()
                t.column("ask_size", .integer).notNull()
            }
            try db.create(index: "quotes_by_ts", on: "quotes", columns: ["ts"])
            try db.create(table: "features") { t in
                t.primaryKey("ts", .integer)
                t.column("row", .text).notNull()
            }
            try db.create(table: "signals") { t in
                t.primaryKey("ts", .integer)
                t.column("action", .text).notNull()
                t.column("reason", .text).notNull()
                t.column("detected", .text).notNull()
                t.column("above", .text).notNull()
                t.column("below", .text).notNull()
            }
            try db.create(table: "orders") { t in
                t.primaryKey("id", .text)
                t.column("decision_ts", .integer).notNull()
                t.column("side", .text).notNull()
                t.column("qty", .integer).notNull()
                t.column("type", .text).notNull()
                t.column("price", .integer)
                t.column("reduce_only", .boolean).notNull()
                t.column("purpose", .text).notNull()
                t.column("status", .text).notNull()
                t.column("intent", .text).notNull()
                t.column("updated_wall", .integer).notNull()
            }
            try db.create(table: "fills") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("order_id", .text).notNull()
                t.column("ts", .integer).notNull()
                t.column("decision_ts", .integer).notNull()
                t.column("side", .text).notNull()
                t.column("qty", .integer).notNull()
                t.column("price", .integer).notNull()
                t.column("fee", .double).notNull()
                t.column("liquidity", .text).notNull()
                t.column("purpose", .text).notNull()
                t.column("reference_mid_twice", .integer)
            }
            try db.create(index: "fills_by_order", on: "fills", columns: ["order_id"])
            try db.create(table: "snapshots") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("wall_ts", .integer).notNull()
                t.column("market_ts", .integer).notNull()
                t.column("state", .text).notNull()
                t.column("reason", .text).notNull()
                t.column("activated", .boolean).notNull()
                t.column("last_minute", .integer)
                t.column("trader", .blob).notNull()
                t.column("venue", .blob).notNull()
            }
            try db.create(table: "transitions") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("wall_ts", .integer).notNull()
                t.column("from_state", .text).notNull()
                t.column("to_state", .text).notNull()
                t.column("reason", .text).notNull()
            }
            try db.create(table: "alerts") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("wall_ts", .integer).notNull()
                t.column("kind", .text).notNull()
                t.column("severity", .text).notNull()
                t.column("message", .text).notNull()
            }
            try db.create(table: "commands") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("wall_ts", .integer).notNull()
                t.column("uid", .integer).notNull()
                t.column("cmd", .text).notNull()
                t.column("args", .text).notNull()
                t.column("ok", .boolean).notNull()
                t.column("result", .text).notNull()
            }
            try db.create(table: "gaps") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("wall_ts", .integer).notNull()
                t.column("from_ts", .integer).notNull()
                t.column("to_ts", .integer).notNull()
            }
        }
        m.registerMigration("v2_venue_executions") { db in
            try db.create(table: "venue_executions") { t in
                t.primaryKey("exec_id", .text)
                t.column("exec_time", .integer).notNull()
            }
            try db.create(index: "venue_executions_by_time", on: "venue_executions", columns: ["exec_time"])
        }
        m.registerMigration("v3_kline_minutes") { db in
            // Minutes known only from the exchange's candles (a warm start): replayed with the raw data.
            try db.create(table: "kline_minutes") { t in
                t.primaryKey("ts", .integer)
                t.column("open", .integer).notNull()
                t.column("high", .integer).notNull()
                t.column("low", .integer).notNull()
                t.column("close", .integer).notNull()
                t.column("volume", .integer).notNull()
                t.column("tick_lots", .integer)
            }
            try db.alter(table: "features") { t in
                t.add(column: "source", .text).notNull().defaults(to: "trades")
            }
        }
        m.registerMigration("v4_snapshot_format") { db in
            // Rows before this carry format 0 (SnapshotFormat).
            try db.alter(table: "snapshots") { t in t.add(column: "format", .integer).notNull().defaults(to: 0) }
        }
        m.registerMigration("v5_run_log") { db in
            // What the agent ran with from each start, reload and operator command on, kept for `replay`.
            try db.create(table: "run_log") { t in
                t.autoIncrementedPrimaryKey("id")
                t.column("wall_ts", .integer).notNull()
                t.column("market_ts", .integer).notNull()
                t.column("open_minute", .integer)
                t.column("cause", .text).notNull()
                t.column("config", .text).notNull()
                t.column("trader", .blob).notNull()
                t.column("venue", .blob).notNull()
                t.column("format", .integer).notNull()
            }
        }
        m.registerMigration("v6_arrival_order") { db in
            // The order the agent received its market data in (`seq`, one count over trades and quotes), and the
            // points in it where its clock closed minutes: `replay` steps the kernel exactly as the agent did.
            try db.alter(table: "trades") { t in t.add(column: "seq", .integer) }
            try db.alter(table: "quotes") { t in t.add(column: "seq", .integer) }
            try db.alter(table: "gaps") { t in t.add(column: "seq", .integer) }
            try db.alter(table: "run_log") { t in t.add(column: "seq", .integer) }
            try db.create(table: "clock_closes") { t in
                t.column("seq", .integer).notNull()
                t.column("through_ts", .integer).notNull()
            }
        }
        m.registerMigration("v7_storage_gaps") { db in
            // Spans whose records a storage fault dropped (raw data refused by a full disk) are gaps too.
            try db.alter(table: "gaps") { t in t.add(column: "cause", .text) }
        }
        return m
    }

    // MARK: - Storage health (docs/OPERATIONS.md, "Storage faults")

    /// `PRAGMA quick_check` (the agent's start): throws, naming the file and the runbook, unless the database is
    /// sound. Reads every page: seconds for a database of gigabytes (docs/BENCHMARKS.md).
    public func quickCheck() throws {
        let path = path
        do {
            try pool.read { db in try Self.requireSound(db, path: path) }
        } catch let e as StoreOpenError {
            throw e
        } catch {
            throw StoreOpenError.classify(error, path: path)
        }
    }

    /// `PRAGMA quick_check` on `db`: throws `corrupt` with its first problems unless it answers `ok`.
    private static func requireSound(_ db: Database, path: String) throws {
        let problems = try String.fetchAll(db, sql: "PRAGMA quick_check")
        guard problems != ["ok"] else { return }
        throw StoreOpenError.corrupt(
            path: path, detail: problems.prefix(3).joined(separator: "; ") + (problems.count > 3 ? "; …" : ""))
    }

    /// A copy made by `backup`, read without changing it: `PRAGMA quick_check` (throws as `quickCheck` does) and
    /// its newest snapshot's wall time and state (nil: none).
    public static func checkCopy(_ path: String) throws -> (wallTs: Int64, state: String)? {
        var configuration = Configuration()
        configuration.readonly = true
        do {
            let q = try DatabaseQueue(path: path, configuration: configuration)
            defer { try? q.close() }
            return try q.read { db in
                try requireSound(db, path: path)
                return try Row.fetchOne(db, sql: "SELECT wall_ts, state FROM snapshots ORDER BY id DESC LIMIT 1").map {
                    (wallTs: $0["wall_ts"], state: $0["state"])
                }
            }
        } catch let e as StoreOpenError {
            throw e
        } catch {
            throw StoreOpenError.classify(error, path: path)
        }
    }

    /// The most pages the database may grow to (`PRAGMA max_page_count` of the writing connection); nil lifts the
    /// limit. A way to fill the database without filling a disk (tests, `make chaos`).
    public func setPageLimit(_ pages: Int?) throws {
        try pool.write { db in
            if let pages {
                try db.execute(sql: "PRAGMA max_page_count = \(pages)")
            } else {
                try db.execute(sql: "PRAGMA max_page_count = 4294967294")
            }
        }
    }

    /// Refuses every write from now on (`PRAGMA query_only` of the writing connection), as a filesystem remounted
    /// read-only would; false takes writes again (tests, `make chaos`).
    public func setRefusingWrites(_ refusing: Bool) throws {
        try pool.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA query_only = \(refusing ? 1 : 0)") }
    }

    /// Pages the database holds now.
    public func pageCount() throws -> Int {
        try pool.read { db in try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0 }
    }

    /// Moves the write-ahead log into the database and truncates it, off the caller's thread (after the raw writes
    /// queued before it), so the WAL cannot grow without bound. A failure is reported like a raw write's.
    public func checkpointLater() {
        onRawQueue { [self] in
            try pool.writeWithoutTransaction { db in _ = try db.checkpoint(.truncate) }
        } failed: {
            $0.error = "checkpoint: \($1)"
        }
    }

    /// Runs `work` on the raw writer's queue, counted as pending until done; a failure is kept by `failed` (for
    /// `takeRawError`, `takeRawDrops`).
    private func onRawQueue(
        _ work: @escaping @Sendable () throws -> Void, failed: @escaping @Sendable (inout RawWrites, any Error) -> Void
    ) {
        raw.withLock { $0.pending += 1 }
        rawQueue.async { [self] in
            var failure: (any Error)?
            do { try work() } catch { failure = error }
            raw.withLock {
                if let failure { failed(&$0, failure) }
                $0.pending -= 1
            }
        }
    }

    /// A consistent copy of the database at `destination` (SQLite's online backup: safe while the agent writes;
    /// the copy is written beside and renamed, so a failure leaves no half file). Returns the pages copied.
    @discardableResult
    public func backup(to destination: String) throws -> Int {
        let partial = destination + ".partial"
        try? FileManager.default.removeItem(atPath: partial)
        do {
            let copy = try DatabaseQueue(path: partial)
            try pool.backup(to: copy)
            let pages = try copy.read { db in try Int.fetchOne(db, sql: "PRAGMA page_count") ?? 0 }
            // One file: the copy leaves WAL mode's side files behind.
            try copy.writeWithoutTransaction { db in try db.execute(sql: "PRAGMA journal_mode = DELETE") }
            try copy.close()
            guard rename(partial, destination) == 0 else {
                throw CommandError("cannot move \(partial) to \(destination): \(String(cString: strerror(errno)))")
            }
            return pages
        } catch {
            try? FileManager.default.removeItem(atPath: partial)
            throw error
        }
    }

    // MARK: - Meta

    public func meta(_ key: String) throws -> String? {
        try pool.read { db in try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = ?", arguments: [key]) }
    }

    public func setMeta(_ key: String, _ value: String) throws {
        try pool.write { db in
            try db.execute(
                sql:
                    "INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                arguments: [key, value])
        }
    }

    // MARK: - Raw market data

    /// Queues raw events for writing off the caller's thread. A failure is kept and reported by `takeRawError`.
    /// `seqs`: each event's place in the order the agent received them (`replay`), trades' then quotes'.
    public func appendRaw(
        trades: [TradeEvent], quotes: [QuoteEvent], seqs: (trades: [Int64], quotes: [Int64])? = nil
    ) {
        guard !trades.isEmpty || !quotes.isEmpty else { return }
        onRawQueue { [self] in
            try writeRaw(trades: trades, quotes: quotes, seqs: seqs)
        } failed: { r, error in
            r.error = "\(error)"
            let times = trades.map(\.ts) + quotes.map(\.ts)
            if let from = times.min(), let to = times.max() { r.dropped.append((from, to)) }
        }
    }

    /// Writes raw events now, on the caller's thread.
    public func writeRaw(
        trades: [TradeEvent], quotes: [QuoteEvent], seqs: (trades: [Int64], quotes: [Int64])? = nil
    ) throws {
        try pool.write { db in
            try Self.insert(trades, seqs: seqs?.trades, db)
            try Self.insert(quotes, seqs: seqs?.quotes, db)
            // The high-water mark of the arrival order, with the rows (a start reads it instead of scanning them).
            let last = max(seqs?.trades.last ?? 0, seqs?.quotes.last ?? 0)
            if last > 0 {
                try db.execute(
                    sql: "INSERT INTO meta (key, value) VALUES ('raw_seq', ?) "
                        + "ON CONFLICT(key) DO UPDATE SET value = MAX(CAST(value AS INTEGER), excluded.value)",
                    arguments: [last])
            }
        }
    }

    private static func insert(_ trades: [TradeEvent], seqs: [Int64]? = nil, _ db: Database) throws {
        guard !trades.isEmpty else { return }
        let s = try db.makeStatement(sql: "INSERT INTO trades (ts, price, size, side, seq) VALUES (?, ?, ?, ?, ?)")
        for (i, t) in trades.enumerated() {
            try s.execute(arguments: [t.ts, t.price, t.size, Int(t.side.rawValue), seqs?[i]])
        }
    }

    /// The last place in the agent's arrival order anything refers to (0: none recorded): the raw data's mark, and the
    /// clock closes, gaps and run-log rows committed with the steps (a crash can lose the last second of raw data
    /// but not those, and their places are never given again).
    public func lastRawSeq() throws -> Int64 {
        try pool.read { db in
            var last =
                try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'raw_seq'").flatMap { Int64($0) } ?? 0
            // Each of these grows with the arrival order: its newest row holds its largest seq.
            for table in ["clock_closes", "gaps", "run_log"] {
                let seq = try Int64.fetchOne(
                    db, sql: "SELECT seq FROM \(table) WHERE seq IS NOT NULL ORDER BY rowid DESC LIMIT 1")
                last = max(last, seq ?? 0)
            }
            return last
        }
    }

    /// The stored trades and quotes with `after < seq <= through` in the order the agent received them; `from` and
    /// `to` bound their times (any event of the span lies inside). Returns how many.
    public func replayArrivals(
        after: Int64, through: Int64, from: Int64, to: Int64, _ body: (_ seq: Int64, MarketEvent) throws -> Void
    ) throws -> Int {
        try pool.read { db in
            let tc = try Row.fetchCursor(
                db,
                sql: "SELECT seq, ts, price, size, side FROM trades WHERE ts >= ? AND ts < ? AND seq > ? AND seq <= ? "
                    + "ORDER BY seq", arguments: [from, to, after, through])
            let qc = try Row.fetchCursor(
                db,
                sql: "SELECT seq, ts, bid, bid_size, ask, ask_size FROM quotes WHERE ts >= ? AND ts < ? AND seq > ? "
                    + "AND seq <= ? ORDER BY seq", arguments: [from, to, after, through])
            func nextTrade() throws -> (Int64, MarketEvent)? {
                try tc.next().map {
                    (
                        $0[0],
                        .trade(
                            TradeEvent(
                                ts: $0[1], price: $0[2], size: $0[3], side: TakerSide(rawValue: $0[4]) ?? .unknown))
                    )
                }
            }
            func nextQuote() throws -> (Int64, MarketEvent)? {
                try qc.next().map {
                    (
                        $0[0],
                        .quote(QuoteEvent(ts: $0[1], bidPrice: $0[2], bidSize: $0[3], askPrice: $0[4], askSize: $0[5]))
                    )
                }
            }
            var t = try nextTrade()
            var q = try nextQuote()
            var n = 0
            while let next = [t, q].compactMap({ $0 }).min(by: { $0.0 < $1.0 }) {
                try body(next.0, next.1)
                n += 1
                if case .trade = next.1 { t = try nextTrade() } else { q = try nextQuote() }
            }
            return n
        }
    }

    /// Where the agent's clock closed minutes: after the event `seq`, through the market time `through_ts`.
    public func clockCloses() throws -> [(seq: Int64, through: Int64)] {
        try pool.read { db in
            try Row.fetchAll(db, sql: "SELECT seq, through_ts FROM clock_closes ORDER BY rowid").map { ($0[0], $0[1]) }
        }
    }

    private static func insert(_ quotes: [QuoteEvent], seqs: [Int64]? = nil, _ db: Database) throws {
        guard !quotes.isEmpty else { return }
        let s = try db.makeStatement(
            sql: "INSERT INTO quotes (ts, bid, bid_size, ask, ask_size, seq) VALUES (?, ?, ?, ?, ?, ?)")
        for (i, q) in quotes.enumerated() {
            try s.execute(arguments: [q.ts, q.bidPrice, q.bidSize, q.askPrice, q.askSize, seqs?[i]])
        }
    }

    /// Queues a purge behind the raw writes (off the engine's thread); the outcome is logged.
    public func purgeRawLater(before ts: Int64, logger: Logger) {
        rawQueue.async { [self] in
            do {
                let n = try purgeRaw(before: ts)
                if n > 0 { logger.info("purged raw market data", metadata: ["event": "store.purged", "rows": "\(n)"]) }
            } catch {
                logger.error("purge failed", metadata: ["event": "store.purge_failed", "error": "\(error)"])
            }
        }
    }

    /// Waits until the queued raw writes are done.
    public func flushRaw() { rawQueue.sync {} }

    /// Batches queued and not yet written (backlog shows as degraded health).
    public var rawBacklog: Int { raw.withLock { $0.pending } }

    /// The market-time spans of raw batches the database refused since the last call, oldest first (each once).
    public func takeRawDrops() -> [(from: Int64, to: Int64)] {
        raw.withLock { r in
            defer { r.dropped = [] }
            return r.dropped
        }
    }

    /// The last failure of a raw write, once (its description).
    public func takeRawError() -> String? {
        raw.withLock { r in
            defer { r.error = nil }
            return r.error
        }
    }

    /// The newest stored market time, trades or quotes.
    public func lastRawTs() throws -> Int64? {
        try pool.read { db in
            let t = try Int64.fetchOne(db, sql: "SELECT MAX(ts) FROM trades")
            let q = try Int64.fetchOne(db, sql: "SELECT MAX(ts) FROM quotes")
            switch (t, q) {
            case let (a?, b?): return max(a, b)
            case let (a?, nil): return a
            case let (nil, b?): return b
            default: return nil
            }
        }
    }

    /// The last stored trade (its price continues a simulated market).
    public func lastTrade() throws -> TradeEvent? {
        try pool.read { db in
            try Row.fetchOne(db, sql: "SELECT ts, price, size, side FROM trades ORDER BY ts DESC, rowid DESC LIMIT 1")
                .map {
                    TradeEvent(
                        ts: $0["ts"], price: $0["price"], size: $0["size"],
                        side: TakerSide(rawValue: $0["side"]) ?? .unknown)
                }
        }
    }

    /// Replays stored trades and quotes from `ts` on, merged in time order (a quote before a trade at the same
    /// millisecond, as `mergeEvents` orders them), straight from two cursors: memory stays flat however long the
    /// window. Returns the counts and the last trade and quote.
    public func replayRaw(from ts: Int64, to end: Int64 = .max, _ body: (MarketEvent) throws -> Void) throws -> (
        trades: Int, quotes: Int, lastTrade: TradeEvent?, lastQuote: QuoteEvent?
    ) {
        try pool.read { db in
            let tc = try Row.fetchCursor(
                db, sql: "SELECT ts, price, size, side FROM trades WHERE ts >= ? AND ts < ? ORDER BY ts, rowid",
                arguments: [ts, end])
            let qc = try Row.fetchCursor(
                db,
                sql: "SELECT ts, bid, bid_size, ask, ask_size FROM quotes WHERE ts >= ? AND ts < ? ORDER BY ts, rowid",
                arguments: [ts, end])
            func nextTrade() throws -> TradeEvent? {
                try tc.next().map {
                    TradeEvent(ts: $0[0], price: $0[1], size: $0[2], side: TakerSide(rawValue: $0[3]) ?? .unknown)
                }
            }
            func nextQuote() throws -> QuoteEvent? {
                try qc.next().map {
                    QuoteEvent(ts: $0[0], bidPrice: $0[1], bidSize: $0[2], askPrice: $0[3], askSize: $0[4])
                }
            }
            var t = try nextTrade()
            var q = try nextQuote()
            var counts = (trades: 0, quotes: 0, lastTrade: TradeEvent?.none, lastQuote: QuoteEvent?.none)
            while t != nil || q != nil {
                if let quote = q, t == nil || quote.ts <= t!.ts {
                    try body(.quote(quote))
                    counts.quotes += 1
                    counts.lastQuote = quote
                    q = try nextQuote()
                } else if let trade = t {
                    try body(.trade(trade))
                    counts.trades += 1
                    counts.lastTrade = trade
                    t = try nextTrade()
                }
            }
            return counts
        }
    }

    /// A start's window as the agent rebuilds it, and `replay` after it: the stream gaps stored from `from` marked
    /// missing in `pipeline`, then the raw events `events` yields (from `from`, in time order) with the stored candle
    /// minutes put in at their times, and the candles after the last event; `closed` takes the minutes as they close.
    /// Gaps and candles after `through` (later than the start) are left out. Returns the candle minutes fed.
    package func feedWindow(
        _ pipeline: inout FeaturePipeline, from: Int64, through: Int64 = .max,
        events: ((MarketEvent) throws -> Void) throws -> Void, closed: (inout FeaturePipeline) -> Void
    ) throws -> Int {
        for g in try gaps(from: from, to: .max) where g.fromTs <= through {
            pipeline.markMissing(from: g.fromTs, to: g.toTs)
        }
        let candles = try klines(from: from).filter { $0.ts <= through }
        var rest = candles[...]
        try withoutActuallyEscaping(closed) { closed in
            try events { e in
                while let k = rest.first, k.ts <= e.ts {
                    pipeline.addKline(k)
                    rest.removeFirst()
                }
                pipeline.process(e)
                if !pipeline.closed.isEmpty { closed(&pipeline) }
            }
        }
        for k in rest { pipeline.addKline(k) }
        return candles.count
    }

    /// The public stream's gaps the agent recorded, overlapping `[from, to)`, in time order.
    public func gaps(from: Int64, to: Int64) throws -> [GapRow] {
        try pool.read { db in
            try GapRow.filter(Column("to_ts") >= from && Column("from_ts") < to).order(Column("from_ts")).fetchAll(db)
        }
    }

    /// What importing recorded data changed (`backfill`).
    public struct ImportCount: Sendable, Equatable {
        public var inserted = 0
        /// Stored rows inside the imported span, replaced by the file's.
        public var replaced = 0
        /// Minutes known only from candles that the file's trades now give exactly.
        public var klineMinutesReplaced = 0
    }

    /// Imports recorded trades (in time order) into the raw data: inside their span `[first.ts, last.ts]` they replace
    /// what is stored (the agent's own recording of the same prints, or candles), so nothing is counted twice; outside
    /// it nothing changes. Features rows of replaced candle minutes are dropped, so the next start writes them again
    /// from the trades. One transaction: a failure leaves the database as it was.
    public func importTrades(_ trades: [TradeEvent]) throws -> ImportCount {
        guard let first = trades.first?.ts, let last = trades.last?.ts else { return ImportCount() }
        return try pool.write { db in
            var c = ImportCount()
            try db.execute(sql: "DELETE FROM trades WHERE ts >= ? AND ts <= ?", arguments: [first, last])
            c.replaced = db.changesCount
            let from = minuteStart(of: first)
            try db.execute(sql: "DELETE FROM kline_minutes WHERE ts >= ? AND ts <= ?", arguments: [from, last])
            c.klineMinutesReplaced = db.changesCount
            try db.execute(
                sql: "DELETE FROM features WHERE source = 'kline' AND ts >= ? AND ts <= ?", arguments: [from, last])
            try Self.insert(trades, db)
            c.inserted = trades.count
            try Self.askReplay(from: first, db)
            return c
        }
    }

    /// Imports recorded quotes (in time order): inside their span they replace what is stored, as `importTrades`.
    public func importQuotes(_ quotes: [QuoteEvent]) throws -> ImportCount {
        guard let first = quotes.first?.ts, let last = quotes.last?.ts else { return ImportCount() }
        return try pool.write { db in
            var c = ImportCount()
            try db.execute(sql: "DELETE FROM quotes WHERE ts >= ? AND ts <= ?", arguments: [first, last])
            c.replaced = db.changesCount
            try Self.insert(quotes, db)
            c.inserted = quotes.count
            try Self.askReplay(from: first, db)
            return c
        }
    }

    /// The next start replays the raw data from `ts` (or earlier, if asked already) and writes the missing features rows.
    private static func askReplay(from ts: Int64, _ db: Database) throws {
        let asked = try String.fetchOne(db, sql: "SELECT value FROM meta WHERE key = 'replay_from'").flatMap {
            Int64($0)
        }
        let value = String(min(ts, asked ?? .max))
        try db.execute(
            sql:
                "INSERT INTO meta (key, value) VALUES ('replay_from', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            arguments: [value])
    }

    /// Stores minutes known only from candles (a warm start); a minute already stored is replaced.
    public func writeKlines(_ bars: [KlineBar]) throws {
        guard !bars.isEmpty else { return }
        try pool.write { db in
            let s = try db.makeStatement(
                sql: """
                    INSERT OR REPLACE INTO kline_minutes (ts, open, high, low, close, volume, tick_lots) VALUES (?, ?, ?, ?, ?, ?, ?)
                    """)
            for k in bars { try s.execute(arguments: [k.ts, k.open, k.high, k.low, k.close, k.volume, k.tickLots]) }
        }
    }

    /// The start of the newest stored candle minute.
    public func lastKlineTs() throws -> Int64? {
        try pool.read { db in try Int64.fetchOne(db, sql: "SELECT MAX(ts) FROM kline_minutes") }
    }

    /// The stored candle minutes from `ts` on, oldest first.
    public func klines(from ts: Int64) throws -> [KlineBar] {
        try pool.read { db in
            try Row.fetchAll(
                db,
                sql:
                    "SELECT ts, open, high, low, close, volume, tick_lots FROM kline_minutes WHERE ts >= ? ORDER BY ts",
                arguments: [ts]
            ).map {
                KlineBar(ts: $0[0], open: $0[1], high: $0[2], low: $0[3], close: $0[4], volume: $0[5], tickLots: $0[6])
            }
        }
    }

    /// Features rows stored for minutes from `from` up to `to` (exclusive), oldest first: (minute, row, source).
    func featureRows(from: Int64, to: Int64 = .max) throws -> [FeatureRow] {
        try pool.read { db in
            try FeatureRow.filter(Column("ts") >= from && Column("ts") < to).order(Column("ts")).fetchAll(db)
        }
    }

    /// The minutes from `from` on that have a features row.
    public func featureMinutes(from: Int64) throws -> Set<Int64> {
        try pool.read { db in
            Set(try Int64.fetchAll(db, sql: "SELECT ts FROM features WHERE ts >= ?", arguments: [from]))
        }
    }

    /// Deletes raw rows older than `ts` in batches of `batch` rows (each its own short transaction, so the engine's
    /// writes are never held up long). Returns the rows deleted.
    @discardableResult
    public func purgeRaw(before ts: Int64, batch: Int = 5_000) throws -> Int {
        // Said first, so that `replay` never takes a window this purge is emptying for a whole one.
        if ts > (try rawPurgedBefore() ?? .min) { try setMeta("raw_purged_before", "\(ts)") }
        var total = 0
        for table in ["trades", "quotes", "kline_minutes"] {
            while true {
                let n = try pool.write { db -> Int in
                    try db.execute(
                        sql: "DELETE FROM \(table) WHERE rowid IN (SELECT rowid FROM \(table) WHERE ts < ? LIMIT ?)",
                        arguments: [ts, batch])
                    return db.changesCount
                }
                total += n
                if n < batch { break }
            }
        }
        return total
    }

    /// Raw data before this market time was purged (nil: never purged).
    public func rawPurgedBefore() throws -> Int64? {
        try meta("raw_purged_before").flatMap { Int64($0) }
    }

    // MARK: - The engine's records

    /// Writes one step's records in one transaction.
    public func record(_ b: StoreBatch) throws {
        guard !b.isEmpty else { return }
        let orders = try b.orders.map(OrderRecord.init)
        try pool.write { db in
            for o in orders {
                // The same id again (a restart re-recording an order in flight) keeps the row and takes the status.
                _ = try o.upsertAndFetch(db, onConflict: ["id"]) { excluded in
                    [
                        Column("status").set(to: excluded["status"]),
                        Column("updated_wall").set(to: excluded["updated_wall"]),
                    ]
                }
            }
            for u in b.orderUpdates {
                try OrderRecord.filter(key: u.id).updateAll(
                    db, Column("status").set(to: u.status.rawValue), Column("updated_wall").set(to: u.wallTs))
            }
            for f in b.fills { try FillRecord(f).insert(db) }
            for f in b.features { try f.insert(db, onConflict: .replace) }
            for s in b.signals { try SignalRow(s, instrument: instrument).insert(db, onConflict: .replace) }
            for t in b.transitions { try t.insert(db) }
            for a in b.alerts { try a.insert(db) }
            for c in b.commands { try c.insert(db) }
            for g in b.gaps { try g.insert(db) }
            for e in b.executions { try e.insert(db, onConflict: .ignore) }
            for r in b.runs { try RunRecord(r).insert(db) }
            for c in b.clockCloses {
                try db.execute(
                    sql: "INSERT INTO clock_closes (seq, through_ts) VALUES (?, ?)", arguments: [c.seq, c.through])
            }
            if let s = b.snapshot {
                try SnapshotRecord(s).insert(db)
                // Keep the recent history of snapshots, not every minute's forever.
                try db.execute(sql: "DELETE FROM snapshots WHERE id < (SELECT MAX(id) FROM snapshots) - 2000")
            }
        }
    }

    // MARK: - Reads

    /// The newest snapshot, upgraded to the current format.
    public func lastSnapshot() throws -> SnapshotRow? {
        try pool.read { db in try SnapshotRecord.order(Column("id").desc).fetchOne(db) }?.decoded(in: path)
    }

    public func count(_ table: String) throws -> Int {
        try pool.read { db in try Int.fetchOne(db, sql: "SELECT COUNT(*) FROM \(table)") ?? 0 }
    }

    /// The newest signals, newest first.
    public func recentSignals(_ n: Int) throws -> [SignalRow] {
        try pool.read { db in try SignalRow.order(Column("ts").desc).limit(n).fetchAll(db) }
    }

    /// The newest alerts, newest first.
    public func recentAlerts(_ n: Int) throws -> [AlertRow] {
        try pool.read { db in try AlertRow.order(Column("id").desc).limit(n).fetchAll(db) }
    }

    /// The exchange's executions already booked since `execTime` (the REST re-reads after a restart skip them).
    public func bookedExecutionIds(since execTime: Int64) throws -> [String] {
        try pool.read { db in
            try ExecutionRow.filter(Column("exec_time") >= execTime).select(Column("exec_id"), as: String.self)
                .fetchAll(db)
        }
    }

    /// Audit: the lots booked per order id (`fills`), for comparing with the exchange's executions.
    func filledLotsByOrder() throws -> [String: Int64] {
        try pool.read { db in
            let rows = try FillRecord.select(Column("order_id"), sum(Column("qty")).forKey("lots"))
                .group(Column("order_id")).asRequest(of: Row.self).fetchAll(db)
            return Dictionary(uniqueKeysWithValues: rows.map { ($0["order_id"], $0["lots"]) })
        }
    }

    /// Audit: the reasons of every move into `state`, oldest first.
    func transitionReasons(to state: String) throws -> [String] {
        try pool.read { db in
            try TransitionRow.filter(Column("to_state") == state).order(Column("id"))
                .select(Column("reason"), as: String.self).fetchAll(db)
        }
    }

    /// The run log, oldest first (`replay`).
    public func runLog() throws -> [RunRow] {
        let path = path
        return try pool.read { db in try RunRecord.order(Column("id")).fetchAll(db) }.map { try $0.decoded(in: path) }
    }

    /// The stored signals of the minutes in `from...to`, oldest first.
    public func signals(from: Int64, to: Int64) throws -> [SignalRow] {
        try pool.read { db in
            try SignalRow.filter(Column("ts") >= from && Column("ts") <= to).order(Column("ts")).fetchAll(db)
        }
    }

    /// The operator's commands, oldest first.
    public func commands() throws -> [CommandRow] {
        try pool.read { db in try CommandRow.order(Column("id")).fetchAll(db) }
    }

    /// Stored orders (of one status), in decision order.
    public func orders(status: OrderStatus? = nil) throws -> [OrderRow] {
        let path = path
        return try pool.read { db in
            var request = OrderRecord.order(Column("decision_ts"), Column("id"))
            if let status { request = request.filter(Column("status") == status.rawValue) }
            return try request.fetchAll(db).map { try $0.decoded(in: path) }
        }
    }
}
