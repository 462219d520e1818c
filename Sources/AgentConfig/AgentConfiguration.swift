import AgentSupport
public import Engine
import Foundation

/// Where orders go (docs/DESIGN.md, "Modes").
public enum AgentMode: String, Sendable, Codable {
    case sim, paper, shadow, live
}

/// The agent's configuration, typed and grouped like the file (config/environments/*.yaml; `auction-agent config` prints it), built once from a resolved
/// configuration. Dotted keys are for parsing, `--set`, `config check` and reload only: code reads these fields.
public struct AgentConfiguration: Sendable {
    /// The environment's name (`--env`, else the file's, else "custom").
    public var environment: String
    public var instrument: Instrument
    public var features: FeatureConfig
    public var strategy: StrategyConfig
    public var agent: Agent
    public var exchange: Exchange
    public var shadow: Shadow
    public var live: Live
    public var sim: Sim
    /// The resolved configuration it was built from (reload compares against it).
    public var resolved: ResolvedConfig

    /// `agent.mode`.
    public var mode: AgentMode { agent.mode }

    /// `agent.*`: the daemon itself.
    public struct Agent: Sendable {
        public var mode: AgentMode
        /// `agent.state_dir`; nil when empty (then $STATE_DIRECTORY, else ./state/ENV).
        public var stateDirectory: String?
        public var requireManualActivation: Bool
        public var rawRetentionHours: Int
        /// `agent.min_free_disk_mb`: below this much free space on the state directory's disk, a warning (0: off).
        public var minFreeDiskMB: Int
        /// `agent.record_dir`: the public market also recorded into daily files there (`record`'s); nil when empty.
        public var recordDirectory: String?
        public var gracefulStopSeconds: Int
        /// `agent.log_level`: `debug`, `info` or `warning`.
        public var logLevel: String
        public var ambiguousAlertFrac: Double
        /// `agent.warm_start`: fill a short window from the exchange's klines and recent trades at start.
        public var warmFromExchange: Bool
        /// `agent.max_approximate_va_share`: entries wait while a larger share of the window's volume is from klines.
        public var maxApproximateVAShare: Double
        /// The environment variable holding the alert webhook's URL.
        public var alertWebhookEnv: String
        /// `agent.http_listen`: an address, or "off".
        public var httpListen: String
        /// The environment variable holding the HTTP bearer token.
        public var httpTokenEnv: String
    }

    /// A Bybit account: where its orders and private stream go and which variables hold its keys.
    public struct Account: Sendable {
        public var restURL: String
        public var privateStreamURL: String
        public var apiKeyEnv: String
        public var apiSecretEnv: String
    }

    /// `exchange.*`: the exchange (market data in every mode, orders in live).
    public struct Exchange: Sendable {
        public var account: Account
        public var publicStreamURL: String
        public var recvWindowMs: Int
    }

    /// `shadow.*`: the testnet account of mode shadow.
    public struct Shadow: Sendable {
        public var account: Account
        public var priceToleranceTicks: Int
    }

    /// `live.*`.
    public struct Live: Sendable {
        public var armed: Bool
        public var allocatedEquity: Double
        public var maxUnprotectedSeconds: Int
        public var walletTolerancePct: Double
    }

    /// `sim.*`: the built-in simulator.
    public struct Sim: Sendable {
        public var speed: Double
        public var warmMinutes: Int
        public var seed: UInt64
    }

    /// The account orders go to in `mode`: the exchange in live, the testnet otherwise (shadow).
    public func account(for mode: AgentMode) -> Account { mode == .live ? exchange.account : shadow.account }

    public init(_ c: ResolvedConfig, environment: String) {
        self.environment = environment
        instrument = c.instrument
        features = c.features
        strategy = c.strategy
        let stateDir = c.text("agent.state_dir")
        agent = Agent(
            mode: AgentMode(rawValue: c.text("agent.mode"))!, stateDirectory: stateDir.isEmpty ? nil : stateDir,
            requireManualActivation: c.boolean("agent.require_manual_activation"),
            rawRetentionHours: c.integer("agent.raw_retention_hours"),
            minFreeDiskMB: c.integer("agent.min_free_disk_mb"),
            recordDirectory: c.text("agent.record_dir").isEmpty ? nil : c.text("agent.record_dir"),
            gracefulStopSeconds: c.integer("agent.graceful_stop_seconds"), logLevel: c.text("agent.log_level"),
            ambiguousAlertFrac: c.real("agent.ambiguous_alert_frac"),
            warmFromExchange: c.text("agent.warm_start") == "exchange",
            maxApproximateVAShare: c.real("agent.max_approximate_va_share"),
            alertWebhookEnv: c.text("agent.alert_webhook_env"), httpListen: c.text("agent.http_listen"),
            httpTokenEnv: c.text("agent.http_token_env"))
        exchange = Exchange(
            account: Account(
                restURL: c.text("exchange.rest_url"), privateStreamURL: c.text("exchange.private_ws_url"),
                apiKeyEnv: c.text("exchange.api_key_env"), apiSecretEnv: c.text("exchange.api_secret_env")),
            publicStreamURL: c.text("exchange.public_ws_url"), recvWindowMs: c.integer("exchange.recv_window_ms"))
        shadow = Shadow(
            account: Account(
                restURL: c.text("shadow.rest_url"), privateStreamURL: c.text("shadow.private_ws_url"),
                apiKeyEnv: c.text("shadow.api_key_env"), apiSecretEnv: c.text("shadow.api_secret_env")),
            priceToleranceTicks: c.integer("shadow.price_tolerance_ticks"))
        live = Live(
            armed: c.boolean("live.armed"), allocatedEquity: c.real("live.allocated_equity"),
            maxUnprotectedSeconds: c.integer("live.max_unprotected_seconds"),
            walletTolerancePct: c.real("live.wallet_tolerance_pct"))
        sim = Sim(
            speed: c.real("sim.speed"), warmMinutes: c.integer("sim.warm_minutes"), seed: UInt64(c.integer("sim.seed")))
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
    package static func classify(from old: ResolvedConfig, to new: ResolvedConfig) -> (
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
