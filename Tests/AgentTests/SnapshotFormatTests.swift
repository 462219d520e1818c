import Engine
import Foundation
import GRDB
import Testing

@testable import AgentCLI
@testable import AgentConfig
@testable import AgentSupport
@testable import Daemon
@testable import Research

/// The stored snapshot across versions: an agent upgraded with a position open restores it; a snapshot from a newer
/// agent is refused with its reason; a snapshot that cannot be encoded is an error, not an empty row.
@Suite(.tags(.unit)) struct SnapshotFormatTests {
    /// Tests/Fixtures/snapshot-format0-*.json: the trader and paper book as the agent encoded them before the
    /// snapshot's format was stored (commit 7db6a7c), with a long position open: 1.984 BTC at 49988.6, a round trip done.
    func fixture(_ part: String) throws -> Data {
        try Data(contentsOf: packageRoot.appending(path: "Tests/Fixtures/snapshot-format0-\(part).json"))
    }

    /// A state directory whose database was made by the agent before the format column (migrations up to v3).
    func legacyStateDirectory() throws -> URL {
        let dir = try temporaryDirectory()
        let queue = try DatabaseQueue(path: dir.appending(path: "agent.sqlite").path)
        try AgentStore.migrator.migrate(queue, upTo: "v3_kline_minutes")
        let trader = try fixture("trader"), venue = try fixture("venue")
        try queue.write { db in
            #expect(try !db.columns(in: "snapshots").contains { $0.name == "format" })
            try db.execute(
                sql: """
                    INSERT INTO snapshots (wall_ts, market_ts, state, reason, activated, last_minute, trader, venue)
                    VALUES (1767230100000, 1767230040022, 'active', '', 1, 1767229980000, ?, ?)
                    """, arguments: [trader, venue])
        }
        return dir
    }

    @Test func aSnapshotFromBeforeTheFormatRestoresItsOpenPosition() throws {
        let dir = try legacyStateDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try AgentStore(directory: dir.path, instrument: .btcusdt)
        let snap = try #require(try store.lastSnapshot())
        #expect(snap.state == .active && snap.activated && snap.lastMinute == 1_767_229_980_000)
        let p = try #require(snap.trader.position)
        #expect(p.direction == .long && p.qty == 1984 && p.entryPrice == 499_886)
        #expect(p.stopTwice == 998_638 && p.tp1Twice == 999_851 && p.tp2Twice == 1_000_480)
        #expect(snap.trader.roundTrips.count == 1 && abs(snap.trader.equity - 9_811.393009680001) < 1e-9)
        #expect(snap.venue.workingOrders.isEmpty)

        // Written again, it carries the current format and reads back the same.
        var batch = StoreBatch()
        batch.snapshot = SnapshotRow(
            id: 0, wallTs: 1_767_230_160_000, marketTs: snap.marketTs, state: snap.state, reason: snap.reason,
            activated: snap.activated, lastMinute: snap.lastMinute, trader: snap.trader, venue: snap.venue)
        try store.record(batch)
        let again = try #require(try store.lastSnapshot())
        #expect(again.id > snap.id && again.trader.position == p && again.trader.equity == snap.trader.equity)
        let formats = try DatabaseQueue(path: store.path).read { db in
            try Int.fetchAll(db, sql: "SELECT format FROM snapshots ORDER BY id")
        }
        #expect(formats == [0, SnapshotFormat.current])
    }

    /// The legacy snapshot changed by `sql` does not load, and the error says `expected` (with the database's path).
    func expectLoadFails(after sql: String, saying expected: (String) -> String) throws {
        let dir = try legacyStateDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try AgentStore(directory: dir.path, instrument: .btcusdt)
        try DatabaseQueue(path: store.path).write { db in try db.execute(sql: sql) }
        #expect {
            _ = try store.lastSnapshot()
        } throws: { error in
            "\(error)".contains(expected(store.path))
        }
    }

    @Test func aSnapshotFromANewerAgentIsRefusedWithItsReason() throws {
        try expectLoadFails(after: "UPDATE snapshots SET format = 99") {
            "snapshot 1 in \($0) has format 99, written by a newer auction-agent"
        }
    }

    @Test func aSnapshotThatDoesNotDecodeNamesTheRow() throws {
        try expectLoadFails(after: "UPDATE snapshots SET trader = X'7B7D'") {
            "snapshot 1 in \($0) (format 0) does not decode"
        }
    }

    /// A trader that cannot be encoded (a non-finite equity) fails the whole batch; the last good snapshot stays.
    @Test func anEncodingFailureIsAnErrorAndKeepsTheLastSnapshot() throws {
        let dir = try legacyStateDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try AgentStore(directory: dir.path, instrument: .btcusdt)
        let snap = try #require(try store.lastSnapshot())
        var broken = snap.trader
        broken.onFill(
            Fill(
                orderId: "x", side: .short, qty: 1, price: 499_900, ts: snap.marketTs + 1, decisionTs: snap.marketTs,
                liquidity: .taker, fee: .nan, purpose: .exit(.flatten), referenceMidTwice: nil))
        var batch = StoreBatch()
        batch.alerts.append(AlertRow(wallTs: 1, kind: "stale_feed", severity: "warning", message: "x"))
        batch.snapshot = SnapshotRow(
            id: 0, wallTs: 1, marketTs: snap.marketTs, state: .active, reason: "", activated: true,
            lastMinute: snap.lastMinute, trader: broken, venue: snap.venue)
        #expect(throws: (any Error).self) { try store.record(batch) }
        #expect(try store.lastSnapshot()?.id == snap.id)
        #expect(try store.count("alerts") == 0, "nothing of the batch was written")
    }
}
