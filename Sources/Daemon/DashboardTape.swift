import AgentConfig
import AgentSupport
public import Engine

/// What the dashboard draws besides the status (issue 12): the window's last minutes, their footprints, the
/// equity since the start and the recent round trips. The engine keeps it up to date at each minute close and
/// publishes it with the status; the HTTP side only reads it.
public struct DashboardTape: Sendable {
    /// Minutes the price chart shows (the value area's window: 4 h).
    public static let priceMinutes = 240
    /// Minutes the footprint shows.
    public static let footprintMinutes = 30
    /// Equity samples kept; when full, every other one is dropped (the curve keeps its shape at half the detail).
    public static let equitySamples = 4_000

    public internal(set) var minutes: [MinuteFeatures] = []
    public internal(set) var footprints: [FootprintMinute] = []
    /// (market ms, equity) once per closed minute since the agent started.
    public internal(set) var equity: [EquitySample] = []
    /// The last round trips (the price chart marks those inside its span).
    public internal(set) var trips: [RoundTrip] = []
    /// The open position (entry, stop, targets), if any.
    public internal(set) var position: Position?
    /// The window's volume profile at the last minute's close (the bins its value area came from).
    public internal(set) var profile: VolumeProfile?
    /// Every round trip since the agent started, overall and per setup.
    public internal(set) var performance = Performance(trips: [])
    /// The deepest fall of the equity from its running peak since the agent started (USDT), and that peak.
    public internal(set) var maxDrawdown = 0.0
    public internal(set) var peakEquity: Double?

    public init() {}

    public struct EquitySample: Sendable, Hashable {
        public var ts: Int64
        public var equity: Double
    }

    /// Round trips since the agent started: all of them and per setup.
    public struct Performance: Sendable, Hashable {
        public var overall: TradeStats
        public var bySetup: [Setup: TradeStats]

        init(trips: [RoundTrip]) {
            overall = TradeStats(trips)
            bySetup = TradeStats.bySetup(trips)
        }
    }

    mutating func add(_ f: MinuteFeatures) {
        if minutes.count >= Self.priceMinutes { minutes.removeFirst(minutes.count - Self.priceMinutes + 1) }
        minutes.append(f)
    }

    mutating func add(_ prints: [FootprintMinute]) {
        guard !prints.isEmpty else { return }
        footprints.append(contentsOf: prints)
        if footprints.count > Self.footprintMinutes { footprints.removeFirst(footprints.count - Self.footprintMinutes) }
    }

    mutating func sample(ts: Int64, equity value: Double) {
        if equity.count >= Self.equitySamples {
            equity = equity.enumerated().filter { $0.offset % 2 == 0 }.map(\.element)
        }
        equity.append(EquitySample(ts: ts, equity: value))
        let peak = max(peakEquity ?? value, value)
        peakEquity = peak
        maxDrawdown = max(maxDrawdown, peak - value)
    }

    mutating func set(profile p: VolumeProfile) { profile = p }

    mutating func update(trips all: [RoundTrip], position p: Position?) {
        if trips.last != all.last || performance.overall.trades != all.count {
            trips = Array(all.suffix(50))
            performance = Performance(trips: all)
        }
        if position != p { position = p }
    }
}
