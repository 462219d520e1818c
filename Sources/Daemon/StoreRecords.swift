import AgentConfig
import AgentSupport
public import Engine
import Foundation
import GRDB

// The rows of the agent's database (docs/DESIGN.md, "Recovery and persistence") as GRDB records: each type is
// one table, its properties the columns (snake_case in SQL). `AgentStore.record` writes a step's rows in one
// transaction; the reads use the query interface.

/// A status change of a recorded order (`filled`, `cancelled`, `rejected`, `partially_filled_cancelled`).
public struct OrderUpdate: Sendable, Hashable {
    public var id: String
    public var status: OrderStatus
    public var wallTs: Int64

    public init(id: String, status: OrderStatus, wallTs: Int64) {
        self.id = id
        self.status = status
        self.wallTs = wallTs
    }
}

/// One minute's features row (`features`): the line of features.csv and where its data came from.
public struct FeatureRow: Sendable, Hashable, Codable {
    public var ts: Int64
    public var row: String
    /// `trades`, or `klines` for a minute known only from the exchange's candles.
    public var source: String

    public init(ts: Int64, row: String, source: String) {
        self.ts = ts
        self.row = row
        self.source = source
    }
}

/// One minute's decision as stored (`signals`) and shown by `atctl signals` and the dashboard.
public struct SignalRow: Sendable, Hashable, Codable {
    public var ts: Int64
    public var action: String
    public var reason: String
    /// The setups detected, space-separated (`breakin_long breakout_short`).
    public var detected: String
    public var above: String
    public var below: String

    public init(_ s: SignalRecord, instrument: Instrument) {
        ts = s.ts
        action = s.action.rawValue
        reason = s.reason.description
        detected = detectedNames(s.detections).joined(separator: " ")
        above = describeAcceptance(s.above, instrument)
        below = describeAcceptance(s.below, instrument)
    }
}

/// A move of the supervisor's state (`transitions`).
public struct TransitionRow: Sendable, Hashable, Codable {
    public var id: Int64?
    public var wallTs: Int64
    public var fromState: String
    public var toState: String
    public var reason: String

    public init(wallTs: Int64, _ t: Transition) {
        self.wallTs = wallTs
        fromState = t.from.rawValue
        toState = t.to.rawValue
        reason = t.reason
    }
}

/// An alert as raised (`alerts`; also the webhook's body, the log and `atctl alerts`).
public struct AlertRow: Sendable, Hashable, Codable {
    public var id: Int64?
    public var wallTs: Int64
    /// An `AlertKind`'s raw value.
    public var kind: String
    public var severity: String
    public var message: String

    public init(wallTs: Int64, kind: String, severity: String, message: String) {
        self.wallTs = wallTs
        self.kind = kind
        self.severity = severity
        self.message = message
    }
}

/// An operator command that changed something, and its outcome (`commands`).
public struct CommandRow: Sendable, Hashable, Codable {
    public var id: Int64?
    public var wallTs: Int64
    /// The caller's uid (SO_PEERCRED).
    public var uid: Int64
    public var cmd: String
    /// The arguments as JSON.
    public var args: String
    public var ok: Bool
    public var result: String

    public init(wallTs: Int64, uid: UInt32, cmd: String, args: String, ok: Bool, result: String) {
        self.wallTs = wallTs
        self.uid = Int64(uid)
        self.cmd = cmd
        self.args = args
        self.ok = ok
        self.result = result
    }
}

/// A span of market time missing from the store (`gaps`): one the public stream may have missed, or one whose
/// records a storage fault lost (`cause` "storage": the database refused them and they were dropped).
public struct GapRow: Sendable, Hashable, Codable {
    public var id: Int64?
    public var wallTs: Int64
    public var fromTs: Int64
    public var toTs: Int64
    /// The last event of the agent's arrival order before it heard of the gap (nil: not recorded).
    public var seq: Int64?
    /// Why the span is missing: nil for the public stream, `storage` for records a storage fault dropped.
    public var cause: String?

    public init(wallTs: Int64, fromTs: Int64, toTs: Int64, seq: Int64? = nil, cause: String? = nil) {
        self.wallTs = wallTs
        self.fromTs = fromTs
        self.toTs = toTs
        self.seq = seq
        self.cause = cause
    }
}

/// An exchange execution booked (shadow and live; `venue_executions`): written with the fills it made, so that a
/// restart neither books one twice nor loses one.
public struct ExecutionRow: Sendable, Hashable, Codable {
    public var execId: String
    public var execTime: Int64

    public init(execId: String, execTime: Int64) {
        self.execId = execId
        self.execTime = execTime
    }
}

/// One row of `orders`: the intent's columns for SQL readers, the intent itself as JSON for the agent.
struct OrderRecord: Codable {
    var id: String
    var decisionTs: Int64
    var side: String
    var qty: Int64
    var type: String
    var price: Int64?
    var reduceOnly: Bool
    var purpose: String
    var status: String
    var intent: String
    var updatedWall: Int64

    init(_ o: OrderRow) throws {
        let i = o.intent
        id = i.id
        decisionTs = i.decisionTs
        side = i.side.description
        qty = i.qty
        if case .limit(let p) = i.type {
            type = "limit"
            price = p
        } else {
            type = "market"
        }
        reduceOnly = i.reduceOnly
        purpose = i.purpose.label
        status = o.status.rawValue
        intent = String(decoding: try JSONEncoder().encode(i), as: UTF8.self)
        updatedWall = o.wallTs
    }

    /// The stored order; an unknown status or an intent that does not decode is an error naming the database.
    func decoded(in path: String) throws -> OrderRow {
        guard let known = OrderStatus(rawValue: status) else {
            throw CommandError("\(path): order \(id) has an unknown status '\(status)'")
        }
        do {
            return OrderRow(
                intent: try JSONDecoder().decode(OrderIntent.self, from: Data(intent.utf8)), status: known,
                wallTs: updatedWall)
        } catch {
            throw CommandError("\(path): order \(id) does not decode: \(error)")
        }
    }
}

/// One row of `fills`.
struct FillRecord: Codable {
    var id: Int64?
    var orderId: String
    var ts: Int64
    var decisionTs: Int64
    var side: String
    var qty: Int64
    var price: Int64
    var fee: Double
    var liquidity: String
    var purpose: String
    var referenceMidTwice: HalfTicks?

    init(_ f: Fill) {
        orderId = f.orderId
        ts = f.ts
        decisionTs = f.decisionTs
        side = f.side.description
        qty = f.qty
        price = f.price
        fee = f.fee
        liquidity = f.liquidity.rawValue
        purpose = f.purpose.label
        referenceMidTwice = f.referenceMidTwice
    }
}

/// Snake-case columns for every record.
protocol SnakeCaseRecord: FetchableRecord, PersistableRecord {}
extension SnakeCaseRecord {
    static var databaseColumnDecodingStrategy: DatabaseColumnDecodingStrategy { .convertFromSnakeCase }
    static var databaseColumnEncodingStrategy: DatabaseColumnEncodingStrategy { .convertToSnakeCase }
}

extension FeatureRow: SnakeCaseRecord { public static let databaseTableName = "features" }
extension SignalRow: SnakeCaseRecord { public static let databaseTableName = "signals" }
extension TransitionRow: SnakeCaseRecord { public static let databaseTableName = "transitions" }
extension AlertRow: SnakeCaseRecord { public static let databaseTableName = "alerts" }
extension CommandRow: SnakeCaseRecord { public static let databaseTableName = "commands" }
extension GapRow: SnakeCaseRecord { public static let databaseTableName = "gaps" }
extension ExecutionRow: SnakeCaseRecord { public static let databaseTableName = "venue_executions" }
extension OrderRecord: SnakeCaseRecord { static let databaseTableName = "orders" }
extension FillRecord: SnakeCaseRecord { static let databaseTableName = "fills" }
