public import Engine
import Foundation

/// Where orders go (docs/DESIGN.md, "Modes").
public enum AgentMode: String, Sendable, Codable {
    case sim, paper, shadow, live
}

/// The daemon's view of its configuration: the Engine's parameters plus the agent group.
public struct AgentSettings: Sendable {
    public var environment: String
    public var mode: AgentMode
    public var instrument: Instrument
    public var features: FeatureConfig
    public var strategy: StrategyConfig
    public var requireManualActivation: Bool
    public var rawRetentionHours: Int
    public var gracefulStopSeconds: Int
    public var ambiguousAlertFrac: Double
    /// `agent.warm_start`: fill a short window from the exchange's klines and recent trades at start.
    public var warmFromExchange: Bool
    /// `agent.max_approximate_va_share`: entries wait while a larger share of the window's volume is from klines.
    public var maxApproximateVAShare: Double
    public var alertWebhookEnv: String
    public var liveArmed: Bool
    public var liveAllocatedEquity: Double
    public var maxUnprotectedSeconds: Int
    public var walletTolerancePct: Double
    public var shadowPriceToleranceTicks: Int
    public var simSpeed: Double
    public var simWarmMinutes: Int
    public var simSeed: UInt64
    /// The resolved configuration (reload compares against it).
    public var resolved: ResolvedConfig

    public init(_ c: ResolvedConfig, environment: String) {
        self.environment = environment
        mode = AgentMode(rawValue: c.text("agent.mode"))!
        instrument = c.instrument
        features = c.features
        strategy = c.strategy
        requireManualActivation = c.boolean("agent.require_manual_activation")
        rawRetentionHours = c.integer("agent.raw_retention_hours")
        gracefulStopSeconds = c.integer("agent.graceful_stop_seconds")
        ambiguousAlertFrac = c.real("agent.ambiguous_alert_frac")
        warmFromExchange = c.text("agent.warm_start") == "exchange"
        maxApproximateVAShare = c.real("agent.max_approximate_va_share")
        alertWebhookEnv = c.text("agent.alert_webhook_env")
        liveArmed = c.boolean("live.armed")
        liveAllocatedEquity = c.real("live.allocated_equity")
        maxUnprotectedSeconds = c.integer("live.max_unprotected_seconds")
        walletTolerancePct = c.real("live.wallet_tolerance_pct")
        shadowPriceToleranceTicks = c.integer("shadow.price_tolerance_ticks")
        simSpeed = c.real("sim.speed")
        simWarmMinutes = c.integer("sim.warm_minutes")
        simSeed = UInt64(c.integer("sim.seed"))
        resolved = c
    }

    /// Groups and keys whose change needs a restart, whatever the position.
    static let restartKeys: Set<String> = [
        "agent.mode", "agent.state_dir", "live.armed", "agent.http_listen", "agent.http_token_env",
    ]
    static let restartGroups: Set<String> = ["instrument", "exchange", "sim", "shadow"]
    /// Groups whose change rebuilds the window, which is refused while a position is open.
    static let flatGroups: Set<String> = ["value_area", "order_flow"]

    /// What a reload to `new` would change, sorted into what it needs.
    static func classify(from old: ResolvedConfig, to new: ResolvedConfig) -> (
        restart: [String], flat: [String], live: [String]
    ) {
        var restart: [String] = []
        var flat: [String] = []
        var live: [String] = []
        for p in ConfigSchema.parameters where old.values[p.key] != new.values[p.key] {
            let group = String(p.group)
            if restartKeys.contains(p.key) || restartGroups.contains(group) {
                restart.append(p.key)
            } else if flatGroups.contains(group) || p.key == "value_area.warmup_minutes" {
                flat.append(p.key)
            } else {
                live.append(p.key)
            }
        }
        return (restart, flat, live)
    }
}

/// Market time from the wall clock: `anchorMarket + (wall − anchorWall) × speed`. Live and paper run at speed 1
/// with the anchors equal (market time is wall time); the simulator runs faster.
public struct MarketClock: Sendable {
    public var speed: Double
    public var anchorMarket: Int64
    public var anchorWall: Int64

    public init(speed: Double, anchorMarket: Int64, anchorWall: Int64) {
        self.speed = speed
        self.anchorMarket = anchorMarket
        self.anchorWall = anchorWall
    }

    public static func realTime() -> MarketClock { MarketClock(speed: 1, anchorMarket: 0, anchorWall: 0) }

    public func now(wall: Int64) -> Int64 { anchorMarket + Int64((Double(wall - anchorWall) * speed).rounded()) }

    /// How far behind the market clock a minute may close: 250 ms of delivery delay in wall time, in market time.
    public var deliveryAllowanceMs: Int64 { speed > 1 ? Int64(speed * 250) : 0 }
}
