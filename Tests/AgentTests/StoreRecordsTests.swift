import Engine
import Foundation
import GRDB
import Testing

@testable import AgentCLI
@testable import AgentConfig
@testable import AgentSupport
@testable import Daemon
@testable import Research

/// The engine's records land in the columns the schema and every SQL reader (runbooks, `sqlite3`) expect
/// (Sources/Daemon/StoreRecords.swift), and read back as written.
@Suite(.tags(.unit)) struct StoreRecordsTests {
    let limit = OrderIntent(
        id: "at-e-1000-1", side: .long, qty: 25, type: .limit(499_990), reduceOnly: false, purpose: .entry(.breakIn),
        decisionTs: 1_000)
    let close = OrderIntent(
        id: "at-x-2000-1", side: .short, qty: 25, type: .market, reduceOnly: true, purpose: .exit(.timeStop),
        decisionTs: 2_000)

    func store() throws -> (AgentStore, URL) {
        let dir = try temporaryDirectory()
        return (try AgentStore(directory: dir.path, instrument: .btcusdt), dir)
    }

    func rows(_ store: AgentStore, _ sql: String) throws -> [[String]] {
        try DatabaseQueue(path: store.path).read { db in
            try Row.fetchAll(db, sql: sql).map { row in
                row.databaseValues.map { value -> String in
                    switch value.storage {
                    case .null: "NULL"
                    case .int64(let i): "\(i)"
                    case .double(let d): "\(d)"
                    case .string(let s): s
                    case .blob(let b): "\(b.count) bytes"
                    }
                }
            }
        }
    }

    @Test func everyRecordLandsInItsColumns() throws {
        let (store, dir) = try store()
        defer { try? FileManager.default.removeItem(at: dir) }
        var b = StoreBatch()
        b.orders = [
            OrderRow(intent: limit, status: .submitted, wallTs: 10),
            OrderRow(intent: close, status: .submitted, wallTs: 11),
        ]
        b.orderUpdates = [OrderUpdate(id: close.id, status: .partiallyFilledCancelled, wallTs: 12)]
        b.fills = [
            Fill(
                orderId: close.id, side: .short, qty: 10, price: 500_000, ts: 2_005, decisionTs: 2_000,
                liquidity: .taker, fee: 0.275, purpose: .exit(.timeStop), referenceMidTwice: 1_000_001)
        ]
        b.features = [FeatureRow(ts: 60_000, row: "a,b,c", source: "trades")]
        b.transitions = [TransitionRow(wallTs: 13, Transition(from: .observing, to: .active, reason: "operator"))]
        b.alerts = [AlertRow(wallTs: 14, kind: "stale_feed", severity: "warning", message: "no quote")]
        b.commands = [
            CommandRow(wallTs: 15, uid: 1000, cmd: "activate", args: "{}", ok: true, result: "observing → active")
        ]
        b.gaps = [GapRow(wallTs: 16, fromTs: 100, toTs: 200)]
        b.executions = [ExecutionRow(execId: "x-1", execTime: 2_004)]
        try store.record(b)

        #expect(
            try rows(
                store,
                "SELECT id, decision_ts, side, qty, type, price, reduce_only, purpose, status, updated_wall FROM orders ORDER BY id"
            )
                == [
                    [
                        "at-e-1000-1", "1000", "long", "25", "limit", "499990", "0",
                        "entry:breakin", "submitted", "10",
                    ],
                    [
                        "at-x-2000-1", "2000", "short", "25", "market", "NULL", "1",
                        "exit:time_stop", "partially_filled_cancelled", "12",
                    ],
                ])
        #expect(
            try rows(
                store,
                "SELECT order_id, ts, decision_ts, side, qty, price, fee, liquidity, purpose, reference_mid_twice FROM fills"
            )
                == [
                    [
                        "at-x-2000-1", "2005", "2000", "short", "10", "500000",
                        "0.275", "taker", "exit:time_stop", "1000001",
                    ]
                ])
        #expect(try rows(store, "SELECT ts, row, source FROM features") == [["60000", "a,b,c", "trades"]])
        #expect(
            try rows(store, "SELECT wall_ts, from_state, to_state, reason FROM transitions") == [
                ["13", "observing", "active", "operator"]
            ])
        #expect(
            try rows(store, "SELECT wall_ts, kind, severity, message FROM alerts") == [
                ["14", "stale_feed", "warning", "no quote"]
            ])
        #expect(
            try rows(store, "SELECT wall_ts, uid, cmd, args, ok, result FROM commands") == [
                ["15", "1000", "activate", "{}", "1", "observing → active"]
            ])
        #expect(
            try rows(store, "SELECT wall_ts, from_ts, to_ts FROM gaps") == [["16", "100", "200"]])
        #expect(try rows(store, "SELECT exec_id, exec_time FROM venue_executions") == [["x-1", "2004"]])

        // And back.
        #expect(try store.orders().map(\.intent) == [limit, close])
        #expect(try store.orders(status: .partiallyFilledCancelled).map(\.intent.id) == [close.id])
        #expect(try store.recentAlerts(5).map(\.message) == ["no quote"])
        #expect(try store.filledLotsByOrder() == [close.id: 10])
        #expect(try store.transitionReasons(to: "active") == ["operator"])
        #expect(try store.bookedExecutionIds(since: 2_000) == ["x-1"] && store.bookedExecutionIds(since: 3_000).isEmpty)
        #expect(try store.featureRows(from: 0) == [FeatureRow(ts: 60_000, row: "a,b,c", source: "trades")])
    }

    @Test func anOrderRecordedAgainKeepsItsRowAndTakesTheStatus() throws {
        let (store, dir) = try store()
        defer { try? FileManager.default.removeItem(at: dir) }
        var first = StoreBatch()
        first.orders = [OrderRow(intent: limit, status: .submitted, wallTs: 10)]
        try store.record(first)
        var again = StoreBatch()
        again.orders = [OrderRow(intent: limit, status: .cancelled, wallTs: 20)]
        try store.record(again)
        #expect(try store.orders() == [OrderRow(intent: limit, status: .cancelled, wallTs: 20)])
    }

    @Test func anUnknownStoredStatusIsAnErrorNamingTheOrder() throws {
        let (store, dir) = try store()
        defer { try? FileManager.default.removeItem(at: dir) }
        var b = StoreBatch()
        b.orders = [OrderRow(intent: limit, status: .submitted, wallTs: 10)]
        try store.record(b)
        try DatabaseQueue(path: store.path).write { db in try db.execute(sql: "UPDATE orders SET status = 'exploded'") }
        #expect {
            try store.orders()
        } throws: { error in
            "\(error)".contains("order at-e-1000-1 has an unknown status 'exploded'") && "\(error)".contains(store.path)
        }
    }
}
