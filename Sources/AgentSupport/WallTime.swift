import Engine
import Foundation

/// A moment on this machine's wall clock, in milliseconds since the Unix epoch (UTC). Market time (`Millis`: the
/// exchange's timestamps, the simulator's accelerated clock, the minutes the Engine closes) is another quantity of
/// the same unit; the two are distinct types so that the compiler keeps them apart. `MarketClock.now(wall:)` is the
/// one place one becomes the other. A difference of two wall times is a duration in milliseconds (`Int64`).
public struct WallTime: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var millis: Int64

    @inlinable public init(_ millis: Int64) { self.millis = millis }

    /// The system clock now.
    public static var now: WallTime { WallTime(Int64(Date().timeIntervalSince1970 * 1000)) }
    /// The epoch: "never" for a last-done time that has not happened yet.
    public static let zero = WallTime(0)

    @inlinable public static func < (a: WallTime, b: WallTime) -> Bool { a.millis < b.millis }
    /// How long from `b` to `a` (ms).
    @inlinable public static func - (a: WallTime, b: WallTime) -> Int64 { a.millis - b.millis }
    @inlinable public static func + (a: WallTime, ms: Int64) -> WallTime { WallTime(a.millis + ms) }
    @inlinable public static func - (a: WallTime, ms: Int64) -> WallTime { WallTime(a.millis - ms) }
    @inlinable public static func += (a: inout WallTime, ms: Int64) { a.millis += ms }

    public var description: String { "\(millis)" }
}
