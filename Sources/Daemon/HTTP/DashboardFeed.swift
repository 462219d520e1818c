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
    let thresholds: DashboardThresholds

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

    public init(board: StatusBoard, store: AgentStore, instrument: Instrument, thresholds: DashboardThresholds) {
        self.board = board
        self.store = store
        self.instrument = instrument
        self.thresholds = thresholds
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
        var signals: [SignalLine]
        var alerts: [AlertReport]
        var ready: Bool
        var thresholds: DashboardThresholds
    }

    /// One line of the signal feed: an entry, an exit, a veto (a setup detected and not taken, with the reason),
    /// or a run of quiet minutes folded into one (`count` HOLDs from `minute` to `until`).
    struct SignalLine: Encodable, Equatable {
        var minute: String
        var until: String?
        var count: Int
        var action: String
        var reason: String
        var detected: [String]
        /// entry, exit, veto or hold.
        var kind: String
    }

    struct ChartsFrame: Encodable {
        var decimals: Int
        var bars: [ChartData.Bar]
        var trips: [ChartData.Trip]
        var position: ChartData.OpenPosition?
        var profile: ChartData.Profile?
        var footprint: [ChartData.FootprintColumn]
        var equity: [[Double]]
        var performance: PerformanceFrame
    }

    struct SetupFigures: Encodable {
        var setup: String
        var trips: Int
        var wins: Int
        var winRate: Double?
        var profitFactor: Double?
        var net: Double
    }

    struct PerformanceFrame: Encodable {
        var overall: SetupFigures
        var bySetup: [SetupFigures]
        var maxDrawdown: Double
        var peakEquity: Double?
    }

    private func statusJSON(_ state: PublishedState?, wall: WallTime) -> [UInt8] {
        let silentMs = board.engineSilentMs(wall: wall)
        let silent = silentMs ?? 0
        // Engine silent too long: the page says so instead of showing the last numbers as current.
        var frame = StatusFrame(
            generated: isoTime(wall.millis, milliseconds: true), engineSilentMs: silent,
            engineStalled: silent > Readiness.engineSilentLimitMs,
            status: state?.status, orders: state?.orders ?? [], signals: [], alerts: [],
            ready: Readiness.reasons(state, engineSilentMs: silentMs).isEmpty, thresholds: thresholds)
        if state != nil {
            frame.signals = Self.fold((try? store.recentSignals(Self.signalRowsRead)) ?? [], lines: Self.signalLines)
            frame.alerts = ((try? store.recentAlerts(8)) ?? []).map {
                AlertReport(
                    time: isoTime($0.wallTs, milliseconds: true), kind: $0.kind, severity: $0.severity,
                    message: $0.message)
            }
        }
        return Self.encode(frame)
    }

    /// Signal rows read for the feed (newest first), and the lines shown after folding.
    static let signalRowsRead = 240
    static let signalLines = 15

    /// The feed's lines from the newest signal rows (newest first): each entry, exit and veto on its own line;
    /// consecutive HOLDs with nothing detected folded into one line.
    static func fold(_ rows: [SignalRow], lines: Int) -> [SignalLine] {
        var out: [SignalLine] = []
        for r in rows {
            let detected = r.detected.split(separator: " ").map(String.init)
            let kind: String
            switch r.action {
            case "HOLD": kind = detected.isEmpty ? "hold" : "veto"
            case "EXIT": kind = "exit"
            default: kind = "entry"
            }
            // Rows come newest first: a quiet minute extends the line above it back in time.
            if kind == "hold", var last = out.last, last.kind == "hold", last.reason == r.reason {
                last.count += 1
                last.until = last.until ?? last.minute
                last.minute = isoTime(r.ts)
                out[out.count - 1] = last
                continue
            }
            if out.count == lines { break }
            out.append(
                SignalLine(
                    minute: isoTime(r.ts), until: nil, count: 1, action: r.action, reason: r.reason,
                    detected: detected, kind: kind))
        }
        return out
    }

    private func chartsJSON(_ state: PublishedState) -> [UInt8] {
        let t = state.tape
        let i = instrument
        let byTs = Dictionary(t.minutes.map { ($0.ts, $0) }, uniquingKeysWith: { _, b in b })
        // The tape keeps the last trips: number them as trades since the start.
        let first = max(0, t.performance.overall.trades - t.trips.count)
        func figures(_ name: String, _ s: TradeStats) -> SetupFigures {
            SetupFigures(
                setup: name, trips: s.trades, wins: s.wins, winRate: s.winRate, profitFactor: s.profitFactor,
                net: s.netPnL)
        }
        let perf = PerformanceFrame(
            overall: figures("all", t.performance.overall),
            bySetup: Setup.allCases.map { figures($0.rawValue, t.performance.bySetup[$0] ?? TradeStats([])) },
            maxDrawdown: t.maxDrawdown, peakEquity: t.peakEquity)
        let frame = ChartsFrame(
            decimals: i.tick.scale,
            bars: t.minutes.map { ChartData.Bar($0, i) },
            trips: t.trips.enumerated().map { ChartData.Trip($0.element, n: first + $0.offset + 1, i) },
            position: t.position.map { ChartData.OpenPosition($0, i) },
            profile: t.profile.flatMap { p in t.minutes.last.flatMap { ChartData.Profile(p, minute: $0, i) } },
            footprint: t.footprints.map { ChartData.FootprintColumn($0, minute: byTs[$0.ts], i) },
            equity: ChartData.points(t.equity.map { (ts: $0.ts, value: $0.equity) }),
            performance: perf)
        return Self.encode(frame)
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

/// What the page needs of the configuration to colour its numbers.
public struct DashboardThresholds: Sendable, Encodable {
    /// `signal.ambiguous_trade_frac_max`: above it a setup needs both order flow and quote imbalance.
    public var ambiguousMax: Double
    /// `sizing.risk_pct`: the heat of a position just entered.
    public var riskPct: Double

    public init(strategy: StrategyConfig) {
        ambiguousMax = strategy.ambiguousTradeFracMax
        riskPct = strategy.riskPct
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
