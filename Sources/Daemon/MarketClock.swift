import AgentConfig
public import AgentSupport
public import Engine
import Foundation

/// Market time from the wall clock: `anchorMarket + (wall − anchorWall) × speed`. Live and paper run at speed 1
/// with the anchors equal (market time is wall time); the simulator runs faster.
public struct MarketClock: Sendable {
    public var speed: Double
    public var anchorMarket: Millis
    public var anchorWall: WallTime

    public init(speed: Double, anchorMarket: Millis, anchorWall: WallTime) {
        self.speed = speed
        self.anchorMarket = anchorMarket
        self.anchorWall = anchorWall
    }

    public static func realTime() -> MarketClock { MarketClock(speed: 1, anchorMarket: 0, anchorWall: .zero) }

    public func now(wall: WallTime) -> Millis { anchorMarket + Int64((Double(wall - anchorWall) * speed).rounded()) }

    /// How far behind the market clock a minute may close: 250 ms of delivery delay in wall time, in market time.
    public var deliveryAllowanceMs: Int64 { speed > 1 ? Int64(speed * 250) : 0 }
}
