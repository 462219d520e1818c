import AgentConfig
public import AgentSupport
import ControlProtocol
import CoreMetrics
import Foundation
import Prometheus
import Synchronization

/// The agent's Prometheus metrics (docs/OPERATIONS.md lists them), made through swift-metrics with a
/// swift-prometheus registry of its own behind it, so that two agents in one test process never share a number.
///
/// Counters and histograms are counted where things happen (the engine's committed records, the REST client, the
/// control socket); gauges are read from the published board when `/metrics` is scraped, so the engine thread
/// does nothing for a scrape. Every metric carries the `env` and `mode` labels.
public final class AgentMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    private let factory: DescribedPrometheusFactory
    private let base: [(String, String)]
    /// The metric handles made so far, by name and labels, and the orders on their way to the wire.
    private struct Handles {
        var counters: [String: CoreMetrics.Counter] = [:]
        var recorders: [String: CoreMetrics.Recorder] = [:]
        var meters: [String: CoreMetrics.Meter] = [:]
        /// Orders decided at a bar close and not yet on the wire: id → monotonic ns of the minute close.
        var awaitingWire: [String: UInt64] = [:]
    }
    private let cache = Mutex(Handles())

    public init(environment: String, mode: String) {
        registry = PrometheusCollectorRegistry()
        factory = DescribedPrometheusFactory(registry: registry)
        base = [("env", environment), ("mode", mode)]
    }

    // MARK: - Counted where they happen

    /// An order record: `submitted`, or the status it reached (`filled`, `cancelled`, `rejected`, ...).
    public func order(_ outcome: OrderStatus) {
        counter("auction_agent_orders_total", [("outcome", outcome.rawValue)]).increment()
    }

    public func fill(liquidity: String, slippageTicks: Double?) {
        counter("auction_agent_fills_total", [("liquidity", liquidity)]).increment()
        if let slippageTicks { recorder("auction_agent_fill_slippage_ticks").record(slippageTicks) }
    }

    public func alert(kind: String, severity: String) {
        counter("auction_agent_alerts_total", [("kind", kind), ("severity", severity)]).increment()
    }

    public func streamReconnect(_ stream: String) {
        counter("auction_agent_stream_reconnects_total", [("stream", stream)]).increment()
    }
    public func streamGap(_ stream: String) {
        counter("auction_agent_stream_gaps_total", [("stream", stream)]).increment()
    }

    /// One HTTP exchange with the exchange's REST API (each attempt counts).
    public func restCall(result: String, retCode: Int?, seconds: Double) {
        counter("auction_agent_rest_calls_total", [("result", result), ("ret_code", retCode.map(String.init) ?? "")])
            .increment()
        recorder("auction_agent_rest_latency_seconds").record(seconds)
    }

    /// A REST call waited for its endpoint's rate-limit window to reset (`refused`, `exhausted`, `reserve`).
    public func rateLimitWait(endpoint: String, reason: String) {
        counter("auction_agent_rate_limit_waits_total", [("endpoint", endpoint), ("reason", reason)]).increment()
    }

    /// An operator command on the control socket, `ok` or its error code.
    public func command(_ name: String, result: String) {
        counter("auction_agent_commands_total", [("command", name), ("result", result)]).increment()
    }

    /// The engine's work for one closed minute: features, decision, orders, records queued.
    public func minuteClose(nanoseconds: UInt64) {
        recorder("auction_agent_minute_close_seconds").record(Double(nanoseconds) / 1e9)
    }

    /// An order decided at a bar close (`closedAt`: monotonic ns when the minute's step began).
    public func decidedAtBarClose(_ id: String, closedAt: UInt64) { cache.withLock { $0.awaitingWire[id] = closedAt } }

    /// The order's request leaves for the venue (the REST call starts; paper: handed to the paper venue).
    public func onWire(_ id: String) {
        let now = DispatchTime.now().uptimeNanoseconds
        guard let t0 = cache.withLock({ $0.awaitingWire.removeValue(forKey: id) }) else { return }
        recorder("auction_agent_bar_close_to_wire_seconds").record(Double(now &- t0) / 1e9)
    }

    // MARK: - Read at scrape time

    /// Sets the gauges from what the engine last published.
    public func refresh(from board: StatusBoard, wall: WallTime) {
        let state = board.current
        let silent = board.engineSilentMs(wall: wall)
        let heartbeatAgeMs = silent ?? 0
        let status = state?.status
        for s in AgentState.allCases {
            meter("auction_agent_state", [("state", s.rawValue)]).set(status?.state == s.rawValue ? 1.0 : 0.0)
        }
        meter("auction_agent_ready").set(Readiness.reasons(state, engineSilentMs: silent).isEmpty ? 1.0 : 0.0)
        meter("auction_agent_engine_heartbeat_age_seconds").set(Double(heartbeatAgeMs) / 1000)
        guard let status else { return }
        let p = status.pnl
        let signedQty = status.position.map { (Double($0.qty) ?? 0) * ($0.side == "short" ? -1 : 1) } ?? 0
        meter("auction_agent_position_btc").set(signedQty)
        meter("auction_agent_unrealized_pnl_usdt").set(p.unrealizedPnL)
        meter("auction_agent_daily_pnl_usdt").set(p.todayPnL)
        meter("auction_agent_equity_usdt").set(p.equity)
        meter("auction_agent_kill_switch_distance_usdt").set(p.killSwitchDistance ?? .nan)
        meter("auction_agent_daily_loss_distance_usdt").set(p.dailyLossDistance ?? .nan)
        meter("auction_agent_daily_loss_limit_reached").set(p.dailyLossLimitReached == true ? 1.0 : 0.0)
        meter("auction_agent_realized_pnl_today_usdt").set(p.realizedToday ?? .nan)
        meter("auction_agent_kill_switch_active").set(p.killSwitchActive ? 1.0 : 0.0)
        meter("auction_agent_heat").set(status.heat ?? .nan)
        let h = status.health
        // The feed's age keeps growing while the engine loop is stuck.
        meter("auction_agent_data_age_seconds").set(
            h.marketDataAgeMs.map { Double($0 + heartbeatAgeMs) / 1000 } ?? .nan)
        meter("auction_agent_loop_lag_seconds").set(Double(h.loopLagMs) / 1000)
        meter("auction_agent_clock_offset_seconds").set(h.clockOffsetMs.map { Double($0) / 1000 } ?? .nan)
        meter("auction_agent_unprotected_seconds").set(Double(state?.unprotectedMs ?? 0) / 1000)
        meter("auction_agent_disk_free_bytes").set(h.diskFreeBytes.map(Double.init) ?? .nan)
        meter("auction_agent_database_held_records").set(Double(h.heldRecords ?? 0))
        meter("auction_agent_database_writable").set(h.databaseWritable ? 1.0 : 0.0)
        for r in h.rateLimits ?? [] {
            meter("auction_agent_rate_limit_remaining", [("endpoint", r.endpoint)]).set(Double(r.remaining))
        }
        meter("auction_agent_health_status", [("status", "healthy")]).set(h.status == "healthy" ? 1.0 : 0.0)
        meter("auction_agent_health_status", [("status", "degraded")]).set(h.status == "degraded" ? 1.0 : 0.0)
        meter("auction_agent_health_status", [("status", "unhealthy")]).set(h.status == "unhealthy" ? 1.0 : 0.0)
        let va = status.valueArea
        let usable = va?.valid == true
        meter("auction_agent_value_area_price", [("level", "poc")]).set(
            usable ? (va?.poc.flatMap(Double.init) ?? .nan) : .nan)
        meter("auction_agent_value_area_price", [("level", "vah")]).set(
            usable ? (va?.vah.flatMap(Double.init) ?? .nan) : .nan)
        meter("auction_agent_value_area_price", [("level", "val")]).set(
            usable ? (va?.val.flatMap(Double.init) ?? .nan) : .nan)
        meter("auction_agent_value_area_approximate_share").set(va?.approximateShare ?? 0)
        meter("auction_agent_uptime_seconds").set(Double(status.uptimeSeconds))
    }

    /// The Prometheus text exposition of every metric.
    public func exposition() -> [UInt8] {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(16 * 1024)
        registry.emit(into: &bytes)
        return bytes
    }

    // MARK: - Handles

    private func key(_ name: String, _ labels: [(String, String)]) -> String {
        labels.reduce(name) { $0 + "\u{1}" + $1.0 + "=" + $1.1 }
    }

    private func counter(_ name: String, _ labels: [(String, String)] = []) -> CoreMetrics.Counter {
        let k = key(name, labels)
        return cache.withLock {
            if let c = $0.counters[k] { return c }
            let c = CoreMetrics.Counter(label: name, dimensions: base + labels, factory: factory)
            $0.counters[k] = c
            return c
        }
    }

    private func recorder(_ name: String) -> CoreMetrics.Recorder {
        cache.withLock {
            if let r = $0.recorders[name] { return r }
            let r = CoreMetrics.Recorder(label: name, dimensions: base, aggregate: true, factory: factory)
            $0.recorders[name] = r
            return r
        }
    }

    private func meter(_ name: String, _ labels: [(String, String)] = []) -> CoreMetrics.Meter {
        let k = key(name, labels)
        return cache.withLock {
            if let m = $0.meters[k] { return m }
            let m = CoreMetrics.Meter(label: name, dimensions: base + labels, factory: factory)
            $0.meters[k] = m
            return m
        }
    }
}

/// `/readyz`'s verdict, which the ready gauge and the dashboard repeat: healthy (no reason `atctl health` would
/// give), past recovery, and the engine loop running.
enum Readiness {
    /// The engine loop silent this long: not ready, and the dashboard hides its numbers.
    static let engineSilentLimitMs: Int64 = 5_000

    /// Why the agent is not ready; empty when it is. `engineSilentMs`: nil before the loop's first step.
    static func reasons(_ state: PublishedState?, engineSilentMs: Int64?) -> [String] {
        guard let s = state?.status else { return ["starting: recovery not finished"] }
        var reasons: [String] = []
        if ["starting", "recovering", "stopping"].contains(s.state) { reasons.append("state \(s.state)") }
        reasons += s.health.reasons
        if let silent = engineSilentMs {
            if silent > engineSilentLimitMs { reasons.append("engine loop silent for \(silent / 1000) s") }
        } else {
            reasons.append("engine loop not started yet")
        }
        return reasons
    }
}

/// What each metric means (`# HELP`) and its histogram buckets. swift-metrics has no help text, and
/// `promtool check metrics` wants one on every family: this factory supplies it from one table.
struct DescribedPrometheusFactory: CoreMetrics.MetricsFactory {
    let registry: PrometheusCollectorRegistry

    static let help: [String: String] = [
        "auction_agent_orders_total":
            "Order records by outcome: submitted, or the status reached (filled, cancelled, rejected, ...).",
        "auction_agent_fills_total": "Fills (executions applied to the position) by liquidity (maker, taker).",
        "auction_agent_fill_slippage_ticks":
            "Fill price against the mid at the decision, in ticks; positive when it cost.",
        "auction_agent_alerts_total": "Alerts raised, by kind and severity.",
        "auction_agent_stream_reconnects_total":
            "WebSocket reconnection attempts after the first, by stream (public, private).",
        "auction_agent_stream_gaps_total": "Market-data gaps detected on the public stream.",
        "auction_agent_rest_calls_total":
            "HTTP exchanges with the exchange's REST API by result and Bybit retCode (each attempt).",
        "auction_agent_rest_latency_seconds": "Round trip of one REST exchange with the exchange.",
        "auction_agent_commands_total": "Operator commands on the control socket by command and result.",
        "auction_agent_rate_limit_waits_total":
            "REST calls that waited for their endpoint's rate-limit window to reset, by endpoint and reason (refused: "
            + "the exchange answered 10006/429; exhausted: none left; reserve: the last calls kept for protective ones).",
        "auction_agent_rate_limit_remaining":
            "Calls left in the endpoint's current rate-limit window at the exchange, as its replies state them.",
        "auction_agent_minute_close_seconds":
            "Engine time for one closed minute: features, decision, orders, records queued.",
        "auction_agent_bar_close_to_wire_seconds":
            "From the minute close to the entry order's request leaving for the venue.",
        "auction_agent_state": "Supervisor state, one-hot by state name.",
        "auction_agent_ready": "1 when healthy and past recovery (the /readyz verdict).",
        "auction_agent_health_status": "Health verdict, one-hot: healthy, degraded, unhealthy (atctl health).",
        "auction_agent_engine_heartbeat_age_seconds": "Time since the engine loop last ran.",
        "auction_agent_position_btc": "Open position in BTC, negative when short.",
        "auction_agent_unrealized_pnl_usdt": "Unrealised P&L of the open position, USDT.",
        "auction_agent_daily_pnl_usdt": "P&L since the UTC day began (equity change), USDT.",
        "auction_agent_equity_usdt": "Equity: cash plus unrealised P&L, USDT.",
        "auction_agent_kill_switch_distance_usdt":
            "How much more may be lost today before the kill switch trips, USDT.",
        "auction_agent_kill_switch_active": "1 while the daily-loss kill switch is active.",
        "auction_agent_heat": "Open risk as a fraction of equity (NaN when flat).",
        "auction_agent_data_age_seconds": "Age of the newest market-data message (NaN before the first).",
        "auction_agent_loop_lag_seconds": "How late the engine loop's last 100 ms tick ran.",
        "auction_agent_clock_offset_seconds": "Market time minus the newest event's timestamp (NaN before the first).",
        "auction_agent_disk_free_bytes":
            "Free space on the disk of the agent's state directory (statvfs, unprivileged), bytes; read every 10 s.",
        "auction_agent_database_held_records":
            "Records the database refused, held in memory until it takes them (0 while it takes writes).",
        "auction_agent_database_writable": "1 while the agent's database takes its writes, 0 while it refuses them.",
        "auction_agent_unprotected_seconds":
            "How long the open position has had no exchange-held stop (0 when protected).",
        "auction_agent_value_area_price":
            "Value area of the rolling window by level (poc, vah, val), USDT; NaN while invalid.",
        "auction_agent_value_area_approximate_share":
            "Share of the value area's volume that comes from klines (warm start).",
        "auction_agent_uptime_seconds": "Seconds since the agent started.",
    ]

    static let buckets: [String: [Double]] = [
        "auction_agent_fill_slippage_ticks": [-20, -10, -5, -2, -1, 0, 1, 2, 5, 10, 20, 50, 100],
        "auction_agent_rest_latency_seconds": [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
        "auction_agent_minute_close_seconds": [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1],
        "auction_agent_bar_close_to_wire_seconds": [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5],
    ]

    private func text(_ label: String) -> String { Self.help[label] ?? label }

    func makeCounter(label: String, dimensions: [(String, String)]) -> any CounterHandler {
        registry.makeCounter(name: label, labels: dimensions, help: text(label))
    }

    func makeFloatingPointCounter(label: String, dimensions: [(String, String)]) -> any FloatingPointCounterHandler {
        registry.makeCounter(name: label, labels: dimensions, help: text(label))
    }

    func makeRecorder(label: String, dimensions: [(String, String)], aggregate: Bool) -> any RecorderHandler {
        guard aggregate else { return registry.makeGauge(name: label, labels: dimensions, help: text(label)) }
        return registry.makeValueHistogram(
            name: label, labels: dimensions, buckets: Self.buckets[label] ?? [0.001, 0.01, 0.1, 1, 10],
            help: text(label))
    }

    func makeMeter(label: String, dimensions: [(String, String)]) -> any MeterHandler {
        registry.makeGauge(name: label, labels: dimensions, help: text(label))
    }

    func makeTimer(label: String, dimensions: [(String, String)]) -> any TimerHandler {
        registry.makeDurationHistogram(
            name: label, labels: dimensions,
            buckets: [.milliseconds(1), .milliseconds(10), .milliseconds(100), .seconds(1)],
            help: text(label))
    }

    func destroyCounter(_ handler: any CounterHandler) {
        if let c = handler as? Prometheus.Counter { registry.unregisterCounter(c) }
    }

    func destroyFloatingPointCounter(_ handler: any FloatingPointCounterHandler) {
        if let c = handler as? Prometheus.Counter { registry.unregisterCounter(c) }
    }

    func destroyRecorder(_ handler: any RecorderHandler) {
        if let g = handler as? Prometheus.Gauge { registry.unregisterGauge(g) }
        if let h = handler as? ValueHistogram { registry.unregisterValueHistogram(h) }
    }

    func destroyMeter(_ handler: any MeterHandler) {
        if let g = handler as? Prometheus.Gauge { registry.unregisterGauge(g) }
    }

    func destroyTimer(_ handler: any TimerHandler) {
        if let h = handler as? DurationHistogram { registry.unregisterDurationHistogram(h) }
    }
}
