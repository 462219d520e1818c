import ControlProtocol
import Engine
import Foundation
import GRDB
import Logging
import Testing

@testable import AgentConfig
@testable import AgentSupport
@testable import Daemon

/// A database that refuses writes (docs/OPERATIONS.md, "Storage faults"), filled without filling a disk: the
/// writing connection's page limit (`PRAGMA max_page_count`). The engine keeps every record in its journal, sends
/// what protects the position at once, makes no entry, says so, and writes everything once the limit is lifted.
@Suite(.tags(.unit)) struct StorageFaultTests {
    let venue = VenueTests()
    var wall: WallTime { venue.wall }
    var market: Int64 { venue.market }

    /// One trade and one quote in each of `minutes` minutes after the fixture's market time, stepped one minute
    /// per step (the wall clock moving with it): each closes the minute before.
    func stepMinutes(_ engine: AgentEngine, from first: Int, count minutes: Int) {
        for k in first..<(first + minutes) {
            let ts = market + Int64(k) * 60_000
            let w = wall + Int64(k) * 60_000
            let q = QuoteEvent(ts: ts, bidPrice: 499_900, bidSize: 1_000, askPrice: 499_901, askSize: 1_000)
            let t = TradeEvent(ts: ts + 1, price: 499_901, size: 10, side: .buy)
            _ = engine.step([.quote(q, wall: w), .trades([t], wall: w)], wall: w)
        }
    }

    @Test func aFullDatabaseKeepsEveryRecordSendsTheExitAtOnceAndRecovers() throws {
        let gateway = ScriptedGateway(position: 1984, stopTicks: 499_319)
        let (engine, dir) = try venue.engine("live", gateway: gateway)
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = engine.store
        let signalsBefore = try store.count("signals")
        let alertsBefore = try store.recentAlerts(100).count

        // The database is full from now on.
        try store.setPageLimit(try store.pageCount())
        stepMinutes(engine, from: 1, count: 4)
        #expect(!engine.journal.isEmpty && engine.journal.failingSince != nil)
        #expect(engine.healthReport(wall: wall + 4 * 60_000).status == "unhealthy")
        #expect(
            engine.healthReport(wall: wall + 4 * 60_000).reasons.contains { $0.contains("records held in memory") })
        // Raised once (a small batch such as the alert's alone may still fit in a page's free room).
        let raised =
            engine.journal.batches.flatMap(\.alerts).map(\.kind) + (try store.recentAlerts(100).map(\.kind))
        #expect(raised.filter { $0 == "database_unwritable" }.count == 1, "\(raised)")

        // An exit decided now reaches the exchange at once, its record still in the journal.
        var w = wall + 4 * 60_000 + 500
        engine.startFlatten(.operatorFlatten, wall: w)
        _ = engine.step([], wall: w)
        let close = try #require(gateway.submitted.first, "the flatten's close leaves without its record committed")
        #expect(close.reduceOnly && close.qty == 1984)
        #expect(engine.journal.batches.flatMap(\.orders).map(\.intent.id).contains(close.id))
        #expect(try store.orders().allSatisfy { $0.intent.id != close.id }, "not in the database yet")
        #expect(engine.entryVeto == .database || engine.supervisor.state != .active)

        // More minutes pass while it refuses.
        stepMinutes(engine, from: 5, count: 3)

        // Space comes back: everything held is written, in order, and the recovery is said.
        try store.setPageLimit(nil)
        w = wall + 8 * 60_000
        _ = engine.step([.tick(wall: w)], wall: w)
        _ = engine.step([], wall: w + 1)
        #expect(engine.journal.isEmpty && engine.journal.failingSince == nil)
        #expect(engine.healthReport(wall: w).reasons.allSatisfy { !$0.contains("database") })
        let signals = try store.signals(from: market, to: market + 10 * 60_000)
        #expect(try store.count("signals") - signalsBefore == signals.count)
        let minutes = Set(signals.map(\.ts))
        for k in 2...6 {
            let minute = (market + Int64(k) * 60_000) / 60_000 * 60_000 - 60_000
            #expect(minutes.contains(minute), "the signal of \(isoTime(minute)) was kept")
            #expect(try store.featureMinutes(from: minute).contains(minute), "the features of \(isoTime(minute))")
        }
        #expect(try store.orders().contains { $0.intent.id == close.id })
        let alerts = try store.recentAlerts(100).dropLast(alertsBefore).map(\.kind)
        #expect(alerts.filter { $0 == "database_unwritable" }.count == 1)
        #expect(alerts.contains("database_unwritable") && alerts.contains("database_recovered"))
    }

    @Test func anEntryDecidedAsTheDatabaseFillsIsWithdrawnNotSent() throws {
        let gateway = ScriptedGateway(position: 1984, stopTicks: 499_319)
        let (engine, dir) = try venue.engine("live", gateway: gateway)
        defer { try? FileManager.default.removeItem(at: dir) }
        // As a filesystem remounted read-only: every write refused.
        try engine.store.setRefusingWrites(true)
        let entry = OrderIntent(
            id: "at-e-test-1", side: .long, qty: 100, type: .limit(499_900), reduceOnly: false,
            purpose: .entry(.breakIn), decisionTs: market + 1)
        let w = wall + 1_000
        engine.execute([.submit(entry)], at: market + 1, wall: w)
        _ = engine.step([], wall: w)
        #expect(gateway.submitted.isEmpty, "an entry the database could not record never leaves")
        #expect(!engine.kernel.book.workingOrders.contains { $0.id == entry.id })
        engine.supervisor = Supervisor(requireManualActivation: false)
        _ = engine.supervisor.beginRecovery()
        _ = engine.supervisor.recovered(previous: .active, previousReason: nil, warm: true)
        #expect(engine.supervisor.state == .active)
        #expect(engine.entryVeto == .database, "no new entry until the journal is written")

        try engine.store.setRefusingWrites(false)
        _ = engine.step([], wall: w + AgentEngine.journalRetryMs)
        #expect(engine.journal.isEmpty)
        #expect(engine.entryVeto != .database)
        let stored = try #require(try engine.store.orders().first { $0.intent.id == entry.id })
        #expect(stored.status == .cancelled, "recorded as decided, then cancelled before it was sent")
    }

    @Test func pastItsBoundTheJournalFlattensHaltsAndDropsOnlyMarketRecords() throws {
        let gateway = ScriptedGateway(position: 1984, stopTicks: 499_319)
        let (engine, dir) = try venue.engine("live", gateway: gateway)
        defer { try? FileManager.default.removeItem(at: dir) }
        engine.journal.limitRows = 3
        try engine.store.setPageLimit(try engine.store.pageCount())
        stepMinutes(engine, from: 1, count: 3)
        #expect(engine.journal.full)
        #expect(engine.supervisor.state == .flattening && engine.supervisor.haltCause == .databaseUnwritable)
        let close = try #require(gateway.submitted.first, "the flatten's close left at once")
        #expect(close.reduceOnly)
        stepMinutes(engine, from: 4, count: 3)
        #expect(engine.journal.droppedMinutes > 0)

        try engine.store.setPageLimit(nil)
        let w = wall + 8 * 60_000
        _ = engine.step([.tick(wall: w)], wall: w)
        _ = engine.step([], wall: w + 1)
        #expect(engine.journal.isEmpty)
        #expect(try engine.store.orders().contains { $0.intent.id == close.id }, "orders are never dropped")
        let gaps = try engine.store.gaps(from: market, to: market + 10 * 60_000).filter { $0.cause == "storage" }
        #expect(!gaps.isEmpty, "the dropped minutes are recorded as a gap")
    }

    @Test func aDamagedDatabaseIsRefusedNamingTheFileAndTheRunbook() throws {
        let dir = FileManager.default.temporaryDirectory.appending(path: "corrupt-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try AgentStore(directory: dir.path, instrument: .btcusdt)
        try store.writeRaw(
            trades: (0..<5_000).map { TradeEvent(ts: Int64($0), price: 500_000, size: 1, side: .buy) }, quotes: [])
        let path = store.path
        store.checkpointLater()
        store.flushRaw()
        // Scribble over pages in the middle of the file, as a torn write would.
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        try handle.seek(toOffset: 3 * 4096)
        handle.write(Data(repeating: 0xA5, count: 8 * 4096))
        try handle.close()
        let reopened = Result { try AgentStore(directory: dir.path, instrument: .btcusdt) }
        let message: String
        switch reopened {
        case .failure(let e): message = "\(e)"
        case .success(let s):
            let e = try #require(throws: StoreOpenError.self) { try s.quickCheck() }
            message = "\(e)"
        }
        #expect(message.contains(path) && message.contains("runbooks/backup-and-restore.md"), "\(message)")
    }

    @Test func aLockedDatabaseIsRefusedNamingWhoHoldsIt() throws {
        let dir = FileManager.default.temporaryDirectory.appending(path: "locked-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: dir) }
        _ = try AgentStore(directory: dir.path, instrument: .btcusdt)
        let path = dir.appending(path: "agent.sqlite").path
        // Another process's write transaction (sqlite3 in a shell, say), held while the agent opens the file.
        let sqlite = Process()
        sqlite.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        sqlite.arguments = [
            "-c",
            "import sqlite3,sys,time\nc=sqlite3.connect(sys.argv[1],isolation_level=None)\n"
                + "c.execute('BEGIN EXCLUSIVE')\nprint('locked',flush=True)\ntime.sleep(60)", path,
        ]
        let out = Pipe()
        sqlite.standardOutput = out
        try sqlite.run()
        defer { sqlite.terminate() }
        _ = out.fileHandleForReading.availableData  // "locked"
        let holders = StoreOpenError.openers(of: path)
        #expect(holders.contains("pid \(sqlite.processIdentifier) (python3)"), "\(holders)")
        let e = StoreOpenError.classify(
            DatabaseError(resultCode: .SQLITE_BUSY, message: "database is locked"), path: path)
        #expect("\(e)".contains("pid \(sqlite.processIdentifier) (python3)") && "\(e)".contains(path), "\(e)")
    }

    @Test func aBackupWhileWritingIsWholeAndAnAgentRecoversFromIt() throws {
        let gateway = ScriptedGateway(position: 1984, stopTicks: 499_319)
        let (engine, dir) = try venue.engine("live", gateway: gateway)
        defer { try? FileManager.default.removeItem(at: dir) }
        stepMinutes(engine, from: 1, count: 3)
        let copyDir = dir.appending(path: "restored")
        try FileManager.default.createDirectory(at: copyDir, withIntermediateDirectories: true)
        let copy = copyDir.appending(path: "agent.sqlite").path
        let pages = try engine.store.backup(to: copy)
        #expect(pages > 0)
        stepMinutes(engine, from: 4, count: 1)
        let q = try DatabaseQueue(path: copy)
        #expect(try q.read { try String.fetchAll($0, sql: "PRAGMA integrity_check") } == ["ok"])
        try q.close()
        let restored = try AgentStore(directory: copyDir.path, instrument: engine.settings.instrument)
        try restored.quickCheck()
        #expect(try restored.lastSnapshot()?.trader.position?.qty == 1984)
    }
}
