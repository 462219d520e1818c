public import Engine
import Exchange
import Foundation

/// Feeds the venue with market events on a background thread, pacing them by the wall clock times `speed`
/// (speed 60: an hour of market a minute). Events come from the generator or from a recording.
public final class SimMarketDriver: @unchecked Sendable {
    // `stopped` is guarded by `lock`; the source is touched only by the driver thread.
    private let lock = NSLock()
    private var stopped = false
    private let venue: SimVenue
    private let speed: Double
    private var source: any SimEventSource

    public init(venue: SimVenue, source: any SimEventSource, speed: Double) {
        self.venue = venue
        self.source = source
        self.speed = max(speed, 0.001)
    }

    /// Feeds everything up to `ts` at once (a warm history before the paced part), returning the last timestamp.
    @discardableResult
    public func prefill(until ts: Int64) -> Int64 {
        var last: Int64 = 0
        while let e = source.peek(), e.ts < ts {
            venue.onMarket(source.next()!)
            last = e.ts
        }
        return last
    }

    /// Starts the paced feed.
    public func start() {
        let thread = Thread { [self] in run() }
        thread.name = "sim-market"
        thread.start()
    }

    public func stop() { lock.withLock { stopped = true } }

    private func run() {
        guard let first = source.peek() else { return }
        let wallStart = wallClockMillis()
        let marketStart = first.ts
        while !lock.withLock({ stopped }) {
            guard let e = source.peek() else { return }
            let due = wallStart + Int64(Double(e.ts - marketStart) / speed)
            let now = wallClockMillis()
            if due > now {
                usleep(UInt32(min(due - now, 50)) * 1000)
                continue
            }
            venue.onMarket(source.next()!)
        }
    }
}

/// A time-ordered source of market events.
public protocol SimEventSource {
    mutating func peek() -> MarketEvent?
    mutating func next() -> MarketEvent?
}

/// The market generator as a source.
public struct GeneratedMarket: SimEventSource {
    private var generator: MarketGenerator
    private var buffered: MarketEvent?

    public init(config: MarketGeneratorConfig) { generator = MarketGenerator(config: config) }

    public mutating func peek() -> MarketEvent? {
        if buffered == nil { buffered = generator.next() }
        return buffered
    }

    public mutating func next() -> MarketEvent? {
        defer { buffered = nil }
        return peek()
    }
}

/// A recording (trades and quotes already read) as a source, in the Engine's order.
public struct RecordedMarket: SimEventSource {
    private let trades: [TradeEvent]
    private let quotes: [QuoteEvent]
    private var ti = 0
    private var qi = 0

    public init(trades: [TradeEvent], quotes: [QuoteEvent]) {
        self.trades = trades
        self.quotes = quotes
    }

    public mutating func peek() -> MarketEvent? {
        if qi < quotes.count && (ti >= trades.count || quotes[qi].ts <= trades[ti].ts) { return .quote(quotes[qi]) }
        if ti < trades.count { return .trade(trades[ti]) }
        return nil
    }

    public mutating func next() -> MarketEvent? {
        guard let e = peek() else { return nil }
        if case .quote = e { qi += 1 } else { ti += 1 }
        return e
    }
}
