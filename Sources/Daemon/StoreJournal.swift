import AgentConfig
import AgentSupport
import Engine
import Foundation
import Logging

/// The records of the steps whose commit the database refused, oldest first, held in memory until it takes them
/// (docs/OPERATIONS.md, "Storage faults"). Nothing in it is lost while the process lives. Of the snapshots only the
/// newest is kept: it holds everything the older ones did. Past `limitRows` the engine flattens and halts; from then
/// on the market's records (features, signals, clock closes) are dropped, and their minutes are recorded as a gap
/// once the database takes writes again; orders, fills, alerts, transitions and commands are always kept.
struct StoreJournal {
    /// The bound: this many records held (about 12 days of minutes; a few hundred bytes each).
    static let defaultLimitRows = 50_000

    private(set) var batches: [StoreBatch] = []
    /// Records held now (rows of every table).
    private(set) var rows = 0
    var limitRows = Self.defaultLimitRows
    /// Wall time of the first refused commit of this outage (nil: the database takes writes).
    var failingSince: WallTime?
    /// What the database said, the first time.
    var error = ""
    var lastAttemptWall = WallTime.zero
    var lastLogWall = WallTime.zero
    /// Records this outage held (written once the database is back).
    var heldThisOutage = 0
    /// The bound was reached in this outage: the agent flattened and market records are dropped.
    var full = false
    /// Market-time spans whose records were dropped (past the bound, or raw data the database refused), to record
    /// as gaps once it takes writes again.
    private(set) var dropped: [(from: Int64, to: Int64)] = []
    /// Minutes whose features were dropped past the bound, this outage.
    var droppedMinutes = 0

    var isEmpty: Bool { batches.isEmpty }

    /// Holds `b` after the others.
    mutating func append(_ b: StoreBatch) {
        var b = b
        if full {
            if let first = b.features.map(\.ts).min(), let last = b.features.map(\.ts).max() {
                drop(from: first, to: last + millisPerMinute - 1)
                droppedMinutes += b.features.count
            }
            b.features = []
            b.signals = []
            b.clockCloses = []
        }
        if b.snapshot != nil {
            for i in batches.indices where batches[i].snapshot != nil {
                batches[i].snapshot = nil
                rows -= 1
                if failingSince != nil { heldThisOutage -= 1 }
            }
        }
        guard !b.isEmpty else { return }
        rows += b.rowCount
        if failingSince != nil { heldThisOutage += b.rowCount }
        batches.append(b)
    }

    /// The oldest batch was committed.
    mutating func removeFirst() {
        rows -= batches[0].rowCount
        batches.removeFirst()
    }

    /// A span whose records were lost, merged with the one before when they touch.
    mutating func drop(from: Int64, to: Int64) {
        if let last = dropped.last, from <= last.to + millisPerMinute {
            dropped[dropped.count - 1] = (min(last.from, from), max(last.to, to))
        } else {
            dropped.append((from, to))
        }
    }

    /// The dropped spans, each once.
    mutating func takeDropped() -> [(from: Int64, to: Int64)] {
        defer { dropped = [] }
        return dropped
    }

    /// The outage is over: counters back to zero.
    mutating func recovered() {
        failingSince = nil
        error = ""
        heldThisOutage = 0
        full = false
        droppedMinutes = 0
    }
}

extension StoreBatch {
    /// Records in the batch, every table's rows and the snapshot.
    var rowCount: Int {
        orders.count + orderUpdates.count + fills.count + features.count + signals.count + transitions.count
            + alerts.count + commands.count + gaps.count + executions.count + runs.count + clockCloses.count
            + (snapshot == nil ? 0 : 1)
    }
}

extension AgentEngine {
    /// While the database refuses writes, the journal is retried this often (wall ms), and at every step once it
    /// takes them.
    static let journalRetryMs: Int64 = 5_000

    /// Commits the step's records after those the journal holds, in order; once committed, what they hold for the
    /// venue leaves (orders leave only once recorded). A refused commit keeps them (`storeRefused`).
    func writeBatch(snapshot: Bool, wall: WallTime) {
        if snapshot && batch.snapshot == nil { batch.snapshot = makeSnapshot(wall: wall) }
        if !batch.isEmpty {
            if batch.snapshot != nil { lastSnapshotWall = wall }
            journal.append(batch)
            batch = StoreBatch()
        }
        guard !journal.isEmpty else { return }
        if journal.failingSince != nil && wall - journal.lastAttemptWall < Self.journalRetryMs {
            storeStillRefusing(wall: wall)
            return
        }
        journal.lastAttemptWall = wall
        while let b = journal.batches.first {
            do {
                try commit(b)
            } catch {
                storeRefused(error, wall: wall)
                return
            }
            journal.removeFirst()
        }
        if journal.failingSince != nil { storeRecovered(wall: wall) }
    }

    /// The start's commit: it must succeed (a database that cannot be written at start is not started on).
    func writeBatchOrThrow(snapshot: Bool, wall: WallTime) throws {
        if snapshot && batch.snapshot == nil { batch.snapshot = makeSnapshot(wall: wall) }
        guard !batch.isEmpty else { return }
        try commit(batch)
        if batch.snapshot != nil { lastSnapshotWall = wall }
        batch = StoreBatch()
    }

    /// Writes one batch; once committed, its metrics count and what the venue held for it leaves (an order leaves
    /// only once recorded).
    private func commit(_ b: StoreBatch) throws {
        try store.record(b)
        databaseWritable = true
        countRecords(b)
        venue.committed(b)
    }

    /// A commit refused: said once (log, journald, webhook, metrics; the alert itself waits in the journal), new
    /// entries vetoed and any not yet sent withdrawn, what protects or reduces the position sent at once, and past
    /// the journal's bound, a flatten and a halt.
    private func storeRefused(_ error: any Error, wall: WallTime) {
        databaseWritable = false
        if journal.failingSince == nil {
            journal.failingSince = wall
            journal.error = "\(error)"
            journal.heldThisOutage = journal.rows
            journal.lastLogWall = wall
            logger.critical(
                "cannot write to the database; records held in memory",
                metadata: ["event": "store.failed", "error": "\(error)", "held_records": "\(journal.rows)"])
            raise(alerts.databaseUnwritable(journal.error, rows: journal.rows), wall: wall)
        }
        storeStillRefusing(wall: wall)
    }

    /// While the journal waits: no entry leaves, protective calls do, the bound is watched, and a line a minute.
    private func storeStillRefusing(wall: WallTime) {
        // No replacement entry either, before the next decision sets the veto.
        trader.entryVeto = .database
        withdrawUnsentEntries(wall: wall)
        if journal.rows > journal.limitRows && !journal.full {
            journal.full = true
            raise(
                alerts.databaseJournalFull(
                    rows: journal.rows, minutes: (wall - (journal.failingSince ?? wall)) / millisPerMinute),
                wall: wall)
            if supervisor.state != .flattening && supervisor.state != .halted {
                startFlatten(.databaseUnwritable, wall: wall)
            }
        }
        if !batch.isEmpty {
            journal.append(batch)
            batch = StoreBatch()
        }
        venue.sendProtective()
        if wall - journal.lastLogWall >= millisPerMinute {
            journal.lastLogWall = wall
            logger.warning(
                "the database still refuses writes",
                metadata: [
                    "event": "store.retry", "held_records": "\(journal.rows)",
                    "since": "\(isoTime((journal.failingSince ?? wall).millis, milliseconds: true))",
                ])
        }
    }

    /// Entries whose record is not committed and that are still working are cancelled before they leave: nothing
    /// opens a position the database does not know of.
    private func withdrawUnsentEntries(wall: WallTime) {
        let unsent = Set(journal.batches.flatMap { $0.orders.map(\.intent.id) } + batch.orders.map(\.intent.id))
        let working = kernel.book.workingOrders.filter { $0.purpose.isEntry && unsent.contains($0.id) }
        guard !working.isEmpty else { return }
        for o in working {
            logger.warning(
                "entry withdrawn before it was sent: the database cannot record it",
                metadata: ["event": "order.withdrawn", "order_link_id": "\(o.id)"])
            execute([.cancel(id: o.id)], at: max(lastMarketTs, clock.now(wall: wall)), wall: wall)
        }
    }

    /// Everything held is written: the gaps of what was dropped, the recovery alert, entries allowed again.
    private func storeRecovered(wall: WallTime) {
        let since = journal.failingSince ?? wall
        recordDroppedSpans(wall: wall)
        raise(
            alerts.databaseRecovered(
                rows: journal.heldThisOutage, seconds: (wall - since) / 1000, droppedMinutes: journal.droppedMinutes),
            wall: wall)
        logger.notice(
            "the database takes writes again",
            metadata: [
                "event": "store.recovered", "held_records": "\(journal.heldThisOutage)",
                "seconds": "\((wall - since) / 1000)", "dropped_minutes": "\(journal.droppedMinutes)",
            ])
        journal.recovered()
        trader.entryVeto = entryVeto
    }

    /// Raw batches the database refused: their spans become gaps once it takes writes (at once if it does now).
    func noteRawDrops(wall: WallTime) {
        let drops = store.takeRawDrops()
        guard !drops.isEmpty else { return }
        for d in drops { journal.drop(from: d.from, to: d.to) }
        if journal.failingSince == nil && journal.isEmpty { recordDroppedSpans(wall: wall) }
    }

    /// The spans the journal dropped, as gaps with cause `storage` in the step's records.
    private func recordDroppedSpans(wall: WallTime) {
        for d in journal.takeDropped() {
            batch.gaps.append(GapRow(wallTs: wall.millis, fromTs: d.from, toTs: d.to, seq: nil, cause: "storage"))
        }
    }

    /// Free space on the state directory's disk, read every 10 s; a warning under `agent.min_free_disk_mb`,
    /// once until it is above again.
    func checkDisk(wall: WallTime) {
        guard wall - lastDiskCheckWall >= 10_000 else { return }
        lastDiskCheckWall = wall
        let dir = (store.path as NSString).deletingLastPathComponent
        diskFreeBytes = freeDiskBytes(dir)
        guard settings.agent.minFreeDiskMB > 0, let free = diskFreeBytes else { return }
        if isDiskLow && !diskLowAlerted {
            diskLowAlerted = true
            raise(
                alerts.diskSpaceLow(freeBytes: free, limitMB: settings.agent.minFreeDiskMB, directory: dir), wall: wall)
        } else if !isDiskLow {
            diskLowAlerted = false
        }
    }

    /// Whether the last reading of the state directory's disk is under `agent.min_free_disk_mb` (never when 0).
    var isDiskLow: Bool {
        guard settings.agent.minFreeDiskMB > 0, let free = diskFreeBytes else { return false }
        return free < Int64(settings.agent.minFreeDiskMB) * 1_048_576
    }
}
