/// Acceptance outside the value area on one side (docs/SPEC.md §8): a sequence of closes beyond a level locked when it
/// started. `above` tracks closes above VAH; `below` mirrors it with closes below VAL.
public struct AcceptanceSide: Sendable, Hashable, Codable {
    /// Which side: `.long` tracks above VAH (a breakout long), `.short` below VAL.
    public let direction: Direction
    public private(set) var running = false
    /// The locked level `L` (VAH or VAL of the bar that started the sequence).
    public private(set) var level: Ticks = 0
    public private(set) var count = 0
    /// The breakout of this sequence has fired.
    public var used = false
    /// Lowest low and highest high of the sequence's bars.
    public private(set) var lowestLow: Ticks = 0
    public private(set) var highestHigh: Ticks = 0
    /// Decision time of the bar that started the sequence.
    public private(set) var startedAt: Millis = 0

    public init(direction: Direction) {
        self.direction = direction
    }

    /// `count >= k`.
    public func isAccepted(k: Int) -> Bool { running && count >= k }

    /// Updates with a bar that has a valid value area.
    public mutating func update(_ f: MinuteFeatures) {
        guard let va = f.valueArea else { return }
        let direction = self.direction
        let beyond = { (close: Ticks, level: Ticks) -> Bool in
            direction == .long ? close > level : close < level
        }
        if running {
            if beyond(f.close, level) {
                count += 1
                lowestLow = min(lowestLow, f.low)
                highestHigh = max(highestHigh, f.high)
            } else {
                // A bar that ends a sequence does not start a new one.
                reset()
            }
            return
        }
        let edge = direction == .long ? va.vahTicks : va.valTicks
        let crosses = direction == .long ? f.crossesVAH : f.crossesVAL
        if beyond(f.close, edge) && crosses {
            running = true
            level = edge
            count = 1
            used = false
            lowestLow = f.low
            highestHigh = f.high
            startedAt = f.decisionTs
        }
    }

    /// Ends the sequence (count 0, lock freed).
    public mutating func reset() {
        running = false
        level = 0
        count = 0
        used = false
        lowestLow = 0
        highestHigh = 0
        startedAt = 0
    }
}
