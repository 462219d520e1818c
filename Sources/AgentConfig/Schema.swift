import AgentSupport
import Engine

/// Every configuration key with its default, grouped as docs/SPEC.md groups the rules. Environment files may list any
/// subset; what they leave out takes the default here. Order is the order `config check` prints.
public enum ConfigSchema {
    public static let groups = [
        "instrument", "value_area", "order_flow", "signal", "sizing", "risk", "execution", "backtest", "exchange",
        "agent", "shadow", "live", "sim",
    ]

    public static let parameters: [Parameter] = [
        // instrument (docs/SPEC.md, introduction: from the exchange live, from here in research)
        Parameter("instrument.symbol", .text, .text("BTCUSDT"), "Bybit linear perpetual"),
        Parameter(
            "instrument.tick_size", .positiveDecimal, .decimal(.init(mantissa: 1, scale: 1)), "price increment (USDT)"),
        Parameter(
            "instrument.qty_step", .positiveDecimal, .decimal(.init(mantissa: 1, scale: 3)), "quantity increment (BTC)"),
        Parameter(
            "instrument.min_qty", .positiveDecimal, .decimal(.init(mantissa: 1, scale: 3)),
            "smallest order quantity (BTC)"),

        // value_area (docs/SPEC.md §5–§6)
        Parameter(
            "value_area.rolling_window_minutes", .integer(2...10_080), .integer(240), "bars in the rolling profile"),
        Parameter(
            "value_area.va_fraction", .real(lower: 0, upper: 1, openLower: true), .real(0.70),
            "share of volume in the value area"),
        Parameter(
            "value_area.min_va_bins", .integer(1...100_000), .integer(20), "bins with volume for a valid value area"),
        Parameter(
            "value_area.max_missing_share", .real(lower: 0, upper: 1, openLower: false), .real(0.1),
            "largest share of the window's minutes in a data gap for a valid value area"),
        Parameter("value_area.warmup_minutes", .integer(0...10_080), .integer(240), "history before signals may fire"),
        Parameter(
            "value_area.alpha_bin", .real(lower: 0, upper: 1_000, openLower: true), .real(0.25),
            "bin width = alpha * mid * sigma_240"),
        Parameter(
            "value_area.base_bin_ticks", .integer(1...1_000_000), .integer(1), "base histogram bin width (ticks)"),
        Parameter(
            "value_area.bin_width_max_ticks", .integer(1...10_000_000), .integer(200), "largest bin width (ticks)"),
        Parameter(
            "value_area.rebucket_change_pct", .real(lower: 0, upper: 100, openLower: true), .real(0.25),
            "relative width change that rebuckets"),
        Parameter(
            "value_area.rebucket_interval_minutes", .integer(1...10_080), .integer(15),
            "rebucket on minutes divisible by this"),

        // order_flow (docs/SPEC.md §3–§4)
        Parameter(
            "order_flow.side_source", .choice(["auto", "inferred", "exchange"]), .text("auto"),
            "where a trade's sign comes from"),
        Parameter(
            "order_flow.use_tick_rule_fallback", .boolean, .boolean(true), "ambiguous prints take the tick-rule sign"),
        Parameter(
            "order_flow.max_quote_staleness_ms", .integer(0...3_600_000), .integer(250),
            "older aligned quote counts as stale"),
        Parameter(
            "order_flow.method", .choice(["quote_rule", "bvc"]), .text("quote_rule"),
            "how of_1m is measured: each print's side, or bulk volume classification of the bar (manual fallback)"),
        Parameter(
            "order_flow.bvc_lookback_minutes", .integer(2...10_080), .integer(240),
            "BVC: close-to-close changes in its standard deviation"),
        Parameter(
            "order_flow.qimb_ema_span_seconds", .real(lower: 0, upper: 86_400, openLower: true), .real(60),
            "quote imbalance EMA time constant"),

        // signal (docs/SPEC.md §8–§9)
        Parameter("signal.accept_outside_k", .integer(1...1_000), .integer(3), "closes outside that make acceptance"),
        Parameter(
            "signal.stop_buffer_ticks", .integer(0...100_000), .integer(2), "stop distance beyond the structure (ticks)"
        ),
        Parameter("signal.enable_retest_mode", .boolean, .boolean(true), "breakouts wait for a retest of the level"),
        Parameter(
            "signal.retest_timeout_minutes", .integer(1...10_080), .integer(30),
            "how long a breakout waits for its retest"),
        Parameter("signal.enable_flip_on_signal", .boolean, .boolean(true), "an opposite signal flips the position"),
        Parameter("signal.qimb_signal", .choice(["ema", "close"]), .text("ema"), "which quote imbalance confirms"),
        Parameter("signal.use_qimb", .boolean, .boolean(true), "quote imbalance may confirm a setup"),
        Parameter(
            "signal.ambiguous_trade_frac_max", .real(lower: 0, upper: 1), .real(0.35),
            "above it, OF and qimb must both confirm"),
        Parameter(
            "signal.of_entry_min", .real(lower: 0, upper: 1e9), .real(0), "break-in: order flow above this (BTC)"),
        Parameter(
            "signal.of_entry_min_norm", .real(lower: -1, upper: 1), .real(0.1),
            "break-in: or normalised order flow above this"),
        Parameter(
            "signal.qimb_entry_min", .real(lower: -1, upper: 1), .real(0.1), "break-in: or quote imbalance above this"),
        Parameter(
            "signal.of_breakout_min", .real(lower: 0, upper: 1e9), .real(0), "breakout: order flow above this (BTC)"),
        Parameter(
            "signal.of_breakout_min_norm", .real(lower: -1, upper: 1), .real(0.1),
            "breakout: or normalised order flow above this"),
        Parameter(
            "signal.qimb_breakout_min", .real(lower: -1, upper: 1), .real(0.1),
            "breakout: or quote imbalance above this"),
        Parameter(
            "signal.of_fail_min", .real(lower: -1e9, upper: 1e9), .real(0),
            "failed breakout short: order flow at or below this (BTC)"),
        Parameter(
            "signal.of_fail_min_norm", .real(lower: -1, upper: 1), .real(-0.1),
            "failed breakout short: or normalised OF at or below"),
        Parameter(
            "signal.qimb_fail_min", .real(lower: -1, upper: 1), .real(-0.1),
            "failed breakout short: or qimb at or below"),

        // sizing (docs/SPEC.md §11)
        Parameter(
            "sizing.risk_pct", .real(lower: 0, upper: 1, openLower: true), .real(0.02),
            "share of available margin risked per trade"),
        Parameter(
            "sizing.max_leverage", .real(lower: 0, upper: 100, openLower: true), .real(10),
            "notional cap as a multiple of available margin"),
        Parameter(
            "sizing.tp1_pct", .real(lower: 0, upper: 1, openLower: true), .real(0.3),
            "share of the position closed at TP1"),
        Parameter(
            "sizing.tp2_pct", .real(lower: 0, upper: 1), .real(0.7),
            "share closed at TP2: the rest, 1 - tp1_pct (checked)"),
        Parameter("sizing.move_stop_to_breakeven_after_tp1", .boolean, .boolean(true), "stop to entry after TP1"),

        // risk (docs/SPEC.md §11, DESIGN)
        Parameter(
            "risk.max_daily_loss", .realOrOff(lower: 0, upper: 1e12, openLower: true), .text("off"),
            "kill switch (USDT): the UTC day's realised loss that blocks entries until 00:00 | off"),
        Parameter(
            "risk.max_daily_loss_pct", .realOrOff(lower: 0, upper: 1, openLower: true), .text("off"),
            "kill switch: day loss with unrealised over equity at 00:00 UTC; flattens, halts | off"),
        Parameter(
            "risk.cooldown_minutes", .integer(0...10_080), .integer(3), "no entries this long after a position closes"),
        Parameter("risk.max_hold_minutes", .integer(1...100_000), .integer(60), "time stop"),
        Parameter(
            "risk.extend_if_profitable", .boolean, .boolean(true), "time stop waits while P&L covers round-trip fees"),
        Parameter(
            "risk.stale_feed_seconds", .integer(1...3_600), .integer(10),
            "no quote for this long: stale data, entries vetoed"),

        // execution (docs/SPEC.md §10, §1)
        Parameter(
            "execution.use_limit_for_entry", .boolean, .boolean(true), "enter with a limit at the trigger bar's close"),
        Parameter(
            "execution.limit_order_timeout_minutes", .integer(1...1_440), .integer(1),
            "unfilled entry limit becomes a market order"),
        Parameter("execution.taker_fee_bps", .real(lower: -100, upper: 100), .real(5.5), "taker fee (bps of notional)"),
        Parameter(
            "execution.maker_fee_bps", .real(lower: -100, upper: 100), .real(2.0),
            "maker fee (bps; negative is a rebate)"),
        Parameter(
            "execution.close_grace_ms", .integer(0...60_000), .integer(250),
            "live: a minute closes this long after its end"),

        // backtest (docs/SPEC.md §10, §12)
        Parameter(
            "backtest.initial_equity", .real(lower: 0, upper: 1e12, openLower: true), .real(10_000),
            "starting equity (USDT)"),
        Parameter(
            "backtest.entry_slippage_ticks", .integer(0...100_000), .integer(1),
            "market entries fill this far beyond the quote"),
        Parameter(
            "backtest.exit_slippage_ticks", .integer(0...100_000), .integer(1),
            "market exits fill this far beyond the quote"),
        Parameter(
            "backtest.funding_rate_8h_bps", .real(lower: -1_000, upper: 1_000), .real(1.0),
            "funding paid by longs every 8 h (bps)"),

        // exchange (docs/BYBIT.md): where to connect and which environment variables hold the keys
        Parameter("exchange.rest_url", .text, .text("https://api.bybit.com"), "REST base URL"),
        Parameter(
            "exchange.public_ws_url", .text, .text("wss://stream.bybit.com/v5/public/linear"), "public WebSocket"),
        Parameter("exchange.private_ws_url", .text, .text("wss://stream.bybit.com/v5/private"), "private WebSocket"),
        Parameter("exchange.api_key_env", .text, .text("BYBIT_API_KEY"), "environment variable holding the API key"),
        Parameter(
            "exchange.api_secret_env", .text, .text("BYBIT_API_SECRET"), "environment variable holding the API secret"),
        Parameter("exchange.recv_window_ms", .integer(1_000...60_000), .integer(5_000), "X-BAPI-RECV-WINDOW"),

        // agent (docs/DESIGN.md, "Modes", "States", "Recovery and persistence"): the daemon `auction-agent run`
        Parameter(
            "agent.mode", .choice(["sim", "paper", "shadow", "live"]), .text("paper"),
            "where orders go (docs/DESIGN.md, Modes)"),
        Parameter(
            "agent.require_manual_activation", .boolean, .boolean(true),
            "stay observing after warm-up until `atctl activate`"),
        Parameter(
            "agent.state_dir", .text, .text(""), "database directory (empty: $STATE_DIRECTORY, else ./state/<env>)"),
        Parameter(
            "agent.raw_retention_hours", .integer(0...100_000), .integer(48),
            "raw trades and quotes kept this long (0: kept; ~265 MB of SQLite a busy day)"),
        Parameter(
            "agent.min_free_disk_mb", .integer(0...10_000_000), .integer(2048),
            "warn when the state directory's disk has less free (0: off; a week of raw data at 265 MB a busy day)"),
        Parameter(
            "agent.record_dir", .text, .text(""),
            "also record the public market into daily files here, as `record` does (empty: off)"),
        Parameter(
            "agent.graceful_stop_seconds", .integer(1...600), .integer(20),
            "SIGTERM: budget for cancelling and the last snapshot"),
        Parameter(
            "agent.log_level", .choice(["debug", "info", "warning"]), .text("info"),
            "lowest level logged; debug adds each order's steps and each veto's inputs (reloadable)"),
        Parameter(
            "agent.ambiguous_alert_frac", .real(lower: 0, upper: 1), .real(0.35),
            "alert when a minute's ambiguous share exceeds this"),
        Parameter(
            "agent.warm_start", .choice(["exchange", "off"]), .text("exchange"),
            "a short stored window is filled at start from the exchange's 1-minute klines and recent trades"),
        Parameter(
            "agent.max_approximate_va_share", .real(lower: 0, upper: 1), .real(0.5),
            "no entry while more of the value area's volume than this comes from klines"),
        Parameter(
            "agent.alert_webhook_env", .text, .text("AUCTION_ALERT_WEBHOOK"),
            "environment variable holding the alert webhook URL"),
        Parameter(
            "agent.http_listen", .listenAddress, .text("127.0.0.1:9464"),
            "dashboard, /metrics, /healthz and /readyz (read-only) on host:port, or off; not loopback needs a token"),
        Parameter(
            "agent.http_token_env", .text, .text("AUCTION_HTTP_TOKEN"),
            "environment variable holding the bearer token the HTTP server requires when it listens beyond loopback"),

        // shadow (docs/DESIGN.md, "Modes"): the same orders on the testnet, fills and position compared
        Parameter(
            "shadow.rest_url", .text, .text("https://api-testnet.bybit.com"),
            "testnet REST (sim: the built-in simulator)"),
        Parameter(
            "shadow.private_ws_url", .text, .text("wss://stream-testnet.bybit.com/v5/private"),
            "testnet private WebSocket (sim: built-in)"),
        Parameter(
            "shadow.api_key_env", .text, .text("BYBIT_TESTNET_API_KEY"),
            "environment variable holding the testnet API key"),
        Parameter(
            "shadow.api_secret_env", .text, .text("BYBIT_TESTNET_API_SECRET"),
            "environment variable holding the testnet secret"),
        Parameter(
            "shadow.price_tolerance_ticks", .integer(0...1_000_000), .integer(20),
            "fill price difference that is a divergence"),

        // live (docs/DESIGN.md, "Modes": live starts only when armed and keys are present)
        Parameter("live.armed", .boolean, .boolean(false), "allow mode live to start"),
        Parameter(
            "live.allocated_equity", .real(lower: 0, upper: 1e12), .real(0),
            "USDT the agent may size from; the smaller of this and the wallet's equity (0: the wallet's)"),
        Parameter(
            "live.max_unprotected_seconds", .integer(1...3_600), .integer(30),
            "a position without a stop held by the exchange this long is flattened"),
        Parameter(
            "live.wallet_tolerance_pct", .real(lower: 0, upper: 1), .real(0.01),
            "agent equity above the wallet's by more than this share is alerted"),

        // sim (the built-in simulator, mode sim)
        Parameter(
            "sim.speed", .real(lower: 0, upper: 10_000, openLower: true), .real(60),
            "market minutes per wall-clock minute"),
        Parameter(
            "sim.warm_minutes", .integer(0...10_080), .integer(250), "history generated before the paced market starts"),
        Parameter("sim.seed", .integer(0...Int(Int32.max)), .integer(1), "market generator seed"),
    ]

    public static let byKey: [String: Parameter] = Dictionary(uniqueKeysWithValues: parameters.map { ($0.key, $0) })
}
