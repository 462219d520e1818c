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

    public init() {}

    public struct EquitySample: Sendable, Hashable {
        public var ts: Int64
        public var equity: Double
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
    }

    mutating func update(trips all: [RoundTrip], position p: Position?) {
        if trips.last != all.last { trips = Array(all.suffix(50)) }
        if position != p { position = p }
    }
}
