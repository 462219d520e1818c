import AgentConfig
public import AgentSupport
import Charts
import ControlProtocol
public import Engine
public import Exchange
import Foundation
import Synchronization

/// What the dashboard's page receives (server-sent events, at most one of each kind a second): `status` every
/// second with the agent's state, the signal feed and the alerts; `charts` when a chart changed (a minute closed,
/// a trade, the position). Built once a second for all connected pages together, from the published board and the
/// database: the engine thread never waits for a page, and ten pages cost what one does.
public final class DashboardFeed: Sendable {
    let board: StatusBoard
    let store: AgentStore
    let instrument: Instrument

    /// The events built last, and the pages.
    private struct Built {
        var statusEvent: [UInt8] = []
        var statusBuiltWall = WallTime.zero
        var chartsEvent: [UInt8] = []
        var chartsKey: ChartsKey?
        var chartsVersion = 0
        var stopping = false
        var clients = 0
    }
    private let built = Mutex(Built())

    public init(board: StatusBoard, store: AgentStore, instrument: Instrument) {
        self.board = board
        self.store = store
        self.instrument = instrument
    }

    /// Pages connected now.
    var connectedPages: Int { built.withLock { $0.clients } }
    public var isStopping: Bool { built.withLock { $0.stopping } }
    /// Ends every page's stream (graceful stop).
    public func stop() { built.withLock { $0.stopping = true } }
    func connect() { built.withLock { $0.clients += 1 } }
    func disconnect() { built.withLock { $0.clients -= 1 } }

    /// The current `status` event and the `charts` event with its version, rebuilt when over a second old.
    public func events(wall: WallTime = .now) -> (status: [UInt8], charts: [UInt8], chartsVersion: Int) {
        built.withLock { b in
            if wall - b.statusBuiltWall >= 1_000 || b.statusEvent.isEmpty {
                b.statusBuiltWall = wall
                let state = board.current
                b.statusEvent = Self.event("status", statusJSON(state, wall: wall))
                let key = state.map { ChartsKey($0.tape) }
                if let state, key != b.chartsKey {
                    b.chartsKey = key
                    b.chartsVersion += 1
                    b.chartsEvent = Self.event("charts", chartsJSON(state))
                }
            }
            return (b.statusEvent, b.chartsEvent, b.chartsVersion)
        }
    }

    /// The `status` payload alone (for `/api/status`).
    public func statusJSON(wall: WallTime = .now) -> [UInt8] { statusJSON(board.current, wall: wall) }

    // MARK: - Payloads

    struct StatusFrame: Encodable {
        var generated: String
        /// Since the engine loop last ran (ms): over 5 s the page shows the agent as not responding.
        var engineSilentMs: Int64
        var engineStalled: Bool
        /// nil while the agent is starting (recovery not finished).
        var status: StatusReport?
        var orders: [OrderReport]
        var signals: [SignalReport]
        var alerts: [AlertReport]
        var ready: Bool
    }

    struct ChartsFrame: Encodable {
        var price: String
        var flow: String
        var footprint: String
        var equity: String
    }

    private func statusJSON(_ state: PublishedState?, wall: WallTime) -> [UInt8] {
        let silentMs = board.engineSilentMs(wall: wall)
        let silent = silentMs ?? 0
        // Engine silent too long: the page says so instead of showing the last numbers as current.
        var frame = StatusFrame(
            generated: isoTime(wall.millis, milliseconds: true), engineSilentMs: silent,
            engineStalled: silent > Readiness.engineSilentLimitMs,
            status: state?.status, orders: state?.orders ?? [], signals: [], alerts: [],
            ready: Readiness.reasons(state, engineSilentMs: silentMs).isEmpty)
        if state != nil {
            frame.signals = ((try? store.recentSignals(15)) ?? []).map {
                SignalReport(
                    minute: isoTime($0.ts), action: $0.action, reason: $0.reason,
                    detected: $0.detected.split(separator: " ").map(String.init), acceptanceAbove: $0.above,
                    acceptanceBelow: $0.below)
            }
            frame.alerts = ((try? store.recentAlerts(8)) ?? []).map {
                AlertReport(
                    time: isoTime($0.wallTs, milliseconds: true), kind: $0.kind, severity: $0.severity,
                    message: $0.message)
            }
        }
        return Self.encode(frame)
    }

    private func chartsJSON(_ state: PublishedState) -> [UInt8] {
        let t = state.tape
        let last = t.minutes.last?.ts ?? 0
        let frame = SVGChart.Frame(
            from: last - Int64(DashboardTape.priceMinutes - 1) * millisPerMinute, to: last + millisPerMinute,
            width: 1200)
        let equity = t.equity.map { (ts: $0.ts, value: $0.equity) }
        let eqFrame = SVGChart.Frame(
            from: equity.first?.ts ?? 0, to: max(equity.last?.ts ?? 1, (equity.first?.ts ?? 0) + millisPerMinute),
            width: 480)
        let charts = ChartsFrame(
            price: SVGChart.price(
                minutes: t.minutes, trips: t.trips, position: t.position, instrument: instrument, frame: frame,
                height: 380),
            flow: SVGChart.flow(minutes: t.minutes, frame: frame, height: 120),
            footprint: SVGChart.footprint(
                t.footprints, minutes: t.minutes.suffix(DashboardTape.footprintMinutes), instrument: instrument,
                width: 480, height: 320),
            equity: SVGChart.line(equity, frame: eqFrame, height: 320, cssClass: "eq", decimals: 2))
        return Self.encode(charts)
    }

    static func encode<T: Encodable>(_ value: T) -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? Array(encoder.encode(value))) ?? Array(#"{"error":"could not encode"}"#.utf8)
    }

    /// One server-sent event: `event: NAME`, the JSON on one `data:` line, a blank line.
    static func event(_ name: String, _ json: [UInt8]) -> [UInt8] {
        Array("event: \(name)\ndata: ".utf8) + json + Array("\n\n".utf8)
    }
}

/// What the charts depend on: they are redrawn only when one of these moved.
struct ChartsKey: Equatable {
    var lastMinute: Int64?
    var footprints: Int64?
    var trips: Int
    var lastTripExit: Int64?
    var position: Position?
    var equitySamples: Int

    init(_ t: DashboardTape) {
        lastMinute = t.minutes.last?.ts
        footprints = t.footprints.last?.ts
        trips = t.trips.count
        lastTripExit = t.trips.last?.exitTs
        position = t.position
        equitySamples = t.equity.count
    }
}
