import AgentSupport
public import Engine
import Foundation
import Yams

/// Where a value came from.
public enum ValueOrigin: Sendable, Hashable {
    case defaulted
    case file(String, line: Int?)
    case override
}

extension ValueOrigin {
    /// Precedence: a default, then a file, then `--set`.
    var rank: Int {
        switch self {
        case .defaulted: 0
        case .file: 1
        case .override: 2
        }
    }

    /// Whether this origin is a level below `other`: a lower rank, or another file (the one `other`'s file extends;
    /// a file is always read after the file it extends).
    func isEarlierLevel(than other: ValueOrigin) -> Bool {
        if case .file(let a, _) = self, case .file(let b, _) = other { return a != b }
        return rank < other.rank
    }
}

/// A validated configuration: every parameter with its value and where it came from.
/// One parameter of a research run as its report shows it.
public struct ResearchParameter: Sendable, Hashable {
    public var key: String
    public var value: String
    /// The value differs from the built-in default.
    public var changed: Bool
    public var summary: String
}

public struct ResolvedConfig: Sendable {
    /// The file read, or nil for built-in defaults only.
    public let source: String?
    public let environment: String?
    public private(set) var values: [String: ParameterValue]
    public private(set) var origins: [String: ValueOrigin]

    init(source: String?, environment: String?) {
        self.source = source
        self.environment = environment
        values = Dictionary(uniqueKeysWithValues: ConfigSchema.parameters.map { ($0.key, $0.defaultValue) })
        origins = Dictionary(uniqueKeysWithValues: ConfigSchema.parameters.map { ($0.key, ValueOrigin.defaulted) })
    }

    /// This configuration read from `source`, over `base` (the file it extends).
    init(source: String, environment: String?, over base: ResolvedConfig) {
        self.source = source
        self.environment = environment
        values = base.values
        origins = base.origins
    }

    mutating func set(_ key: String, _ value: ParameterValue, origin: ValueOrigin) {
        values[key] = value
        origins[key] = origin
        // TP2 closes what TP1 left: sizing.tp2_pct follows sizing.tp1_pct unless it was given at the same level or a
        // later one (a `--set sizing.tp1_pct` over a file that lists both, as a grid over tp1_pct does, moves both; so
        // does a file's tp1_pct over the file it extends).
        if key == "sizing.tp1_pct", let tp2Origin = origins["sizing.tp2_pct"], tp2Origin.isEarlierLevel(than: origin),
            case .real(let tp1) = value
        {
            values["sizing.tp2_pct"] = .real(1 - tp1)
            origins["sizing.tp2_pct"] = origin
        }
    }

    public func integer(_ key: String) -> Int {
        guard case .integer(let v) = values[key] else { preconditionFailure("\(key) is not an integer parameter") }
        return v
    }

    public func real(_ key: String) -> Double {
        guard case .real(let v) = values[key] else { preconditionFailure("\(key) is not a real parameter") }
        return v
    }

    /// A `realOrOff` parameter: nil when it is `off`.
    public func realOrOff(_ key: String) -> Double? {
        switch values[key] {
        case .real(let v): return v
        case .text("off"): return nil
        default: preconditionFailure("\(key) is not a real-or-off parameter")
        }
    }

    public func boolean(_ key: String) -> Bool {
        guard case .boolean(let v) = values[key] else { preconditionFailure("\(key) is not a boolean parameter") }
        return v
    }

    public func text(_ key: String) -> String {
        guard case .text(let v) = values[key] else { preconditionFailure("\(key) is not a text parameter") }
        return v
    }

    public func decimal(_ key: String) -> ScaledDecimal {
        guard case .decimal(let v) = values[key] else { preconditionFailure("\(key) is not a decimal parameter") }
        return v
    }

    /// The instrument's rules.
    public var instrument: Instrument {
        Instrument(
            symbol: text("instrument.symbol"),
            tick: decimal("instrument.tick_size"),
            qtyStep: decimal("instrument.qty_step"),
            minQty: decimal("instrument.min_qty")
        )
    }

    /// Every parameter at its default: the schema's values, nothing read.
    public static let defaults = ResolvedConfig(source: nil, environment: nil)

    /// The feature pipeline's parameters.
    public var features: FeatureConfig {
        FeatureConfig(
            rollingWindowMinutes: integer("value_area.rolling_window_minutes"),
            vaFraction: real("value_area.va_fraction"),
            minVABins: integer("value_area.min_va_bins"),
            maxMissingShare: real("value_area.max_missing_share"),
            alphaBin: real("value_area.alpha_bin"),
            baseBinTicks: Int64(integer("value_area.base_bin_ticks")),
            binWidthMaxTicks: Int64(integer("value_area.bin_width_max_ticks")),
            rebucketChangePct: real("value_area.rebucket_change_pct"),
            rebucketIntervalMinutes: integer("value_area.rebucket_interval_minutes"),
            maxQuoteStalenessMs: Millis(integer("order_flow.max_quote_staleness_ms")),
            useTickRuleFallback: boolean("order_flow.use_tick_rule_fallback"),
            sideSource: SideSource(rawValue: text("order_flow.side_source"))!,
            qimbEmaSpanSeconds: real("order_flow.qimb_ema_span_seconds"),
            orderFlowMethod: OrderFlowMethod(rawValue: text("order_flow.method"))!,
            bvcLookbackMinutes: integer("order_flow.bvc_lookback_minutes"),
            closeGraceMs: Millis(integer("execution.close_grace_ms")))
    }

    /// The strategy's parameters (signals, sizing, risk, execution, backtest).
    public var strategy: StrategyConfig {
        StrategyConfig(
            acceptOutsideK: integer("signal.accept_outside_k"),
            stopBufferTicks: Int64(integer("signal.stop_buffer_ticks")),
            enableRetestMode: boolean("signal.enable_retest_mode"),
            retestTimeoutMinutes: integer("signal.retest_timeout_minutes"),
            enableFlipOnSignal: boolean("signal.enable_flip_on_signal"),
            warmupMinutes: integer("value_area.warmup_minutes"),
            qimbSignal: QimbSignal(rawValue: text("signal.qimb_signal"))!,
            useQimb: boolean("signal.use_qimb"),
            ambiguousTradeFracMax: real("signal.ambiguous_trade_frac_max"),
            entry: ConfirmationThresholds(
                ofMin: real("signal.of_entry_min"), ofMinNorm: real("signal.of_entry_min_norm"),
                qimbMin: real("signal.qimb_entry_min")),
            breakout: ConfirmationThresholds(
                ofMin: real("signal.of_breakout_min"), ofMinNorm: real("signal.of_breakout_min_norm"),
                qimbMin: real("signal.qimb_breakout_min")),
            fail: ConfirmationThresholds(
                ofMin: real("signal.of_fail_min"), ofMinNorm: real("signal.of_fail_min_norm"),
                qimbMin: real("signal.qimb_fail_min")),
            riskPct: real("sizing.risk_pct"),
            maxLeverage: real("sizing.max_leverage"),
            tp1Pct: real("sizing.tp1_pct"),
            moveStopToBreakevenAfterTP1: boolean("sizing.move_stop_to_breakeven_after_tp1"),
            maxDailyLoss: realOrOff("risk.max_daily_loss"),
            maxDailyLossPct: realOrOff("risk.max_daily_loss_pct"),
            cooldownMinutes: integer("risk.cooldown_minutes"),
            maxHoldMinutes: integer("risk.max_hold_minutes"),
            extendIfProfitable: boolean("risk.extend_if_profitable"),
            staleFeedSeconds: integer("risk.stale_feed_seconds"),
            useLimitForEntry: boolean("execution.use_limit_for_entry"),
            limitOrderTimeoutMinutes: integer("execution.limit_order_timeout_minutes"),
            takerFeeBps: real("execution.taker_fee_bps"),
            makerFeeBps: real("execution.maker_fee_bps"),
            initialEquity: real("backtest.initial_equity"),
            entrySlippageTicks: Int64(integer("backtest.entry_slippage_ticks")),
            exitSlippageTicks: Int64(integer("backtest.exit_slippage_ticks")),
            fundingRate8hBps: real("backtest.funding_rate_8h_bps"))
    }
}

/// How the command line names the configuration.
public struct ConfigSelection: Sendable {
    /// `--env NAME`.
    public var environment: String?
    /// `--config FILE`.
    public var file: String?
    /// `--config-dir DIR`.
    public var directory: String?
    /// `--set group.key=value`, in order; later ones win.
    public var overrides: [String] = []

    public init(environment: String? = nil, file: String? = nil, directory: String? = nil, overrides: [String] = []) {
        self.environment = environment
        self.file = file
        self.directory = directory
        self.overrides = overrides
    }
}

/// Finds, reads and validates configuration.
public enum ConfigLoader {
    /// Directories searched for `NAME.yaml`, in order: `--config-dir`, `$AUCTION_CONFIG_DIR`,
    /// `/etc/auction-agent/environments`, `./config/environments`.
    public static func searchPath(directory: String?, environment: [String: String]) -> [String] {
        var dirs: [String] = []
        if let directory { dirs.append(directory) }
        if let fromEnv = environment["AUCTION_CONFIG_DIR"], !fromEnv.isEmpty { dirs.append(fromEnv) }
        dirs.append("/etc/auction-agent/environments")
        dirs.append("config/environments")
        return dirs
    }

    /// Resolves a selection: the file named by `--config` or found for `--env`, then the `--set` overrides.
    public static func load(
        _ selection: ConfigSelection,
        defaultEnvironment: String? = "backtest",
        processEnvironment: [String: String]? = nil
    ) throws(ConfigError) -> ResolvedConfig {
        let processEnvironment = processEnvironment ?? ProcessInfo.processInfo.environment
        if selection.file != nil && selection.environment != nil {
            throw ConfigError(source: "command line", message: "give either --env or --config, not both")
        }
        var config: ResolvedConfig
        if let file = selection.file {
            config = try loadFile(file, environment: nil)
        } else if let name = selection.environment ?? defaultEnvironment {
            guard name.range(of: "^[A-Za-z0-9_-]+$", options: .regularExpression) != nil else {
                throw ConfigError(
                    source: "--env", message: "'\(name)' is not an environment name (letters, digits, - and _)")
            }
            let dirs = searchPath(directory: selection.directory, environment: processEnvironment)
            if let dir = dirs.first(where: { FileManager.default.fileExists(atPath: "\($0)/\(name).yaml") }) {
                config = try loadFile("\(dir)/\(name).yaml", environment: name)
            } else if selection.environment == nil {
                // No --env given and no file for the default one (a research command outside the repository, say):
                // the built-in defaults, which are the backtest environment's, and a word about it.
                FileHandle.standardError.write(
                    Data(
                        ("note: no \(name).yaml in \(dirs.joined(separator: ", ")); "
                            + "using the built-in defaults (give --env or --config to choose)\n").utf8))
                config = ResolvedConfig(source: nil, environment: nil)
            } else {
                throw ConfigError(
                    source: "--env",
                    message:
                        "no \(name).yaml in \(dirs.joined(separator: ", ")) (set --config-dir or AUCTION_CONFIG_DIR)"
                )
            }
        } else {
            config = ResolvedConfig(source: nil, environment: nil)
        }
        try applyOverrides(selection.overrides, to: &config)
        try check(config)
        return config
    }

    /// Reads one YAML file over the defaults (or over the file it `extends`).
    public static func loadFile(_ path: String, environment: String?) throws(ConfigError) -> ResolvedConfig {
        try loadFile(path, environment: environment, extendedBy: [])
    }

    /// `extendedBy`: the files that extend this one, to refuse a cycle.
    static func loadFile(_ path: String, environment: String?, extendedBy: [String]) throws(ConfigError)
        -> ResolvedConfig
    {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigError(
                source: path, message: FileManager.default.fileExists(atPath: path) ? "cannot be read" : "no such file")
        }
        return try parse(yaml: text, source: path, environment: environment, extendedBy: extendedBy)
    }

    /// Parses YAML text (`source` names it in errors) over the defaults.
    public static func parse(yaml text: String, source: String, environment: String?) throws(ConfigError)
        -> ResolvedConfig
    {
        try parse(yaml: text, source: source, environment: environment, extendedBy: [])
    }

    /// The file an `extends:` names: `NAME` (NAME.yaml beside the extending file) or a path, relative to that file's
    /// directory unless absolute.
    static func extendedPath(_ name: String, from source: String) -> String {
        let file = name.hasSuffix(".yaml") || name.hasSuffix(".yml") ? name : name + ".yaml"
        if file.hasPrefix("/") { return file }
        return ((source as NSString).deletingLastPathComponent as NSString).appendingPathComponent(file)
    }

    static func parse(yaml text: String, source: String, environment: String?, extendedBy: [String])
        throws(ConfigError) -> ResolvedConfig
    {
        var config = ResolvedConfig(source: source, environment: environment)
        let root: Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch {
            throw ConfigError(source: source, message: "not valid YAML: \(error)")
        }
        guard let root else { return config }  // an empty file: all defaults
        guard case .mapping(let groups) = root else {
            throw ConfigError(
                source: source, line: root.mark?.line,
                message: "expected a mapping of groups (\(ConfigSchema.groups.joined(separator: ", ")))")
        }
        // `extends: NAME` first: this file's values go over that file's.
        if let (keyNode, value) = groups.first(where: { $0.0.string == "extends" }) {
            guard case .scalar(let scalar) = value, !scalar.string.isEmpty else {
                throw ConfigError(
                    source: source, line: keyNode.mark?.line, key: "extends",
                    message: "expected the name of the file this one extends (extends: backtest)")
            }
            let basePath = extendedPath(scalar.string, from: source)
            let chain = extendedBy + [source]
            if chain.contains(where: {
                ($0 as NSString).standardizingPath == (basePath as NSString).standardizingPath
            }) {
                throw ConfigError(
                    source: source, line: keyNode.mark?.line, key: "extends",
                    message: "\(basePath) extends, directly or not, this file (\(chain.joined(separator: " → ")))")
            }
            let base: ResolvedConfig
            do {
                base = try loadFile(basePath, environment: nil, extendedBy: chain)
            } catch {
                if error.source == basePath && error.line == nil {
                    throw ConfigError(
                        source: source, line: keyNode.mark?.line, key: "extends",
                        message: "\(basePath): \(error.message)")
                }
                throw error
            }
            config = ResolvedConfig(source: source, environment: environment, over: base)
        }
        for (groupNode, body) in groups where groupNode.string != "extends" {
            guard let group = groupNode.string else {
                throw ConfigError(source: source, line: groupNode.mark?.line, message: "a group name must be text")
            }
            guard ConfigSchema.groups.contains(group) else {
                throw ConfigError(
                    source: source, line: groupNode.mark?.line, key: group,
                    message: "unknown group (known: \(ConfigSchema.groups.joined(separator: ", ")))"
                )
            }
            guard case .mapping(let entries) = body else {
                throw ConfigError(
                    source: source, line: body.mark?.line ?? groupNode.mark?.line, key: group,
                    message: "expected a mapping of parameters")
            }
            for (nameNode, valueNode) in entries {
                let name = nameNode.string ?? "?"
                let key = "\(group).\(name)"
                let line = nameNode.mark?.line
                guard let parameter = ConfigSchema.byKey[key] else {
                    let known = ConfigSchema.parameters.filter { $0.group == group }.map { String($0.name) }
                    throw ConfigError(
                        source: source, line: line, key: key,
                        message: "unknown key (known in \(group): \(known.joined(separator: ", ")))")
                }
                guard case .scalar(let scalar) = valueNode else {
                    throw ConfigError(source: source, line: line, key: key, message: "expected a single value")
                }
                if scalar.style == .plain && (scalar.string.isEmpty || scalar.string == "~" || scalar.string == "null"),
                    !parameter.mayBeOff
                {
                    throw ConfigError(source: source, line: line, key: key, message: "has no value")
                }
                switch parameter.parse(scalar.string) {
                case .success(let value): config.set(key, value, origin: .file(source, line: line))
                case .failure(let problem):
                    throw ConfigError(source: source, line: line, key: key, message: problem.description)
                }
            }
        }
        return config
    }

    /// Applies `group.key=value` overrides.
    public static func applyOverrides(_ overrides: [String], to config: inout ResolvedConfig) throws(ConfigError) {
        for item in overrides {
            guard let eq = item.firstIndex(of: "=") else {
                throw ConfigError(source: "--set", message: "'\(item)' is not group.key=value")
            }
            let key = String(item[..<eq]).trimmingCharacters(in: .whitespaces)
            let text = String(item[item.index(after: eq)...])
            guard let parameter = ConfigSchema.byKey[key] else {
                throw ConfigError(source: "--set", key: key, message: "unknown key")
            }
            switch parameter.parse(text) {
            case .success(let value): config.set(key, value, origin: .override)
            case .failure(let problem): throw ConfigError(source: "--set", key: key, message: problem.description)
            }
        }
    }

    /// Rules that tie parameters together.
    public static func check(_ config: ResolvedConfig) throws(ConfigError) {
        let source = config.source ?? "defaults"
        func fail(_ key: String, _ message: String) -> ConfigError {
            var line: Int?
            if case .file(_, let l) = config.origins[key] { line = l }
            let origin = config.origins[key] == .override ? "--set" : source
            return ConfigError(source: origin, line: line, key: key, message: message)
        }
        let base = config.integer("value_area.base_bin_ticks")
        let maxWidth = config.integer("value_area.bin_width_max_ticks")
        if maxWidth < base || maxWidth % base != 0 {
            throw fail(
                "value_area.bin_width_max_ticks",
                "\(maxWidth) must be a multiple of value_area.base_bin_ticks (\(base))")
        }
        let step = config.decimal("instrument.qty_step")
        let minQty = config.decimal("instrument.min_qty")
        if let lots = minQty.count(of: step),
            ScaledDecimal(mantissa: lots * step.mantissa, scale: step.scale).doubleValue != minQty.doubleValue
        {
            throw fail("instrument.min_qty", "\(minQty) must be a whole number of instrument.qty_step (\(step))")
        }
        let retention = config.integer("agent.raw_retention_hours")
        if retention != 0 && retention * 60 < config.integer("value_area.rolling_window_minutes") + 60 {
            throw fail(
                "agent.raw_retention_hours",
                "\(retention) keeps less than the rolling window and an hour (a restart replays the window from it); "
                    + "0 keeps everything")
        }
        let tp1 = config.real("sizing.tp1_pct")
        let tp2 = config.real("sizing.tp2_pct")
        if abs(tp1 + tp2 - 1) > 1e-9 {
            throw fail(
                "sizing.tp2_pct",
                "sizing.tp1_pct (\(formatNumber(tp1))) and sizing.tp2_pct (\(formatNumber(tp2))) must add up to 1: "
                    + "TP2 closes what TP1 left")
        }
        if config.integer("value_area.warmup_minutes") < config.integer("value_area.rolling_window_minutes") {
            throw fail(
                "value_area.warmup_minutes", "must be at least value_area.rolling_window_minutes (a full window)")
        }
    }

    /// A value as YAML that reads back as the same value: text double-quoted (an empty text, a URL, `host:port`).
    static func yamlScalar(_ v: ParameterValue) -> String {
        guard case .text(let s) = v else { return v.description }
        return "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }

    /// Every parameter's value as text, keyed `group.name`: the form the agent keeps in its run log.
    public static func valueTexts(_ config: ResolvedConfig) -> [String: String] {
        config.values.mapValues(\.description)
    }

    /// A configuration from `valueTexts`, each value checked by its parameter; a key this version does not know or a
    /// value it refuses is an error naming `source` and the key. Parameters missing from `texts` take their defaults.
    public static func fromValueTexts(_ texts: [String: String], source: String, environment: String?)
        throws(ConfigError) -> ResolvedConfig
    {
        var config = ResolvedConfig(source: source, environment: environment)
        for (key, text) in texts.sorted(by: { $0.key < $1.key }) {
            guard let parameter = ConfigSchema.byKey[key] else {
                throw ConfigError(source: source, key: key, message: "unknown key")
            }
            switch parameter.parse(text) {
            case .success(let value): config.set(key, value, origin: .file(source, line: nil))
            case .failure(let problem): throw ConfigError(source: source, key: key, message: problem.description)
            }
        }
        return config
    }

    /// The effective configuration as YAML, each value annotated with where it came from. No value is a secret: keys
    /// live in the environment, and the configuration only names their variables.
    ///
    /// `differencesOnly`: only the parameters whose value is not the built-in default (which backtest.yaml lists):
    /// what makes this environment what it is (`config show --diff`).
    /// The parameters a research run depends on (the groups from `instrument` to `backtest`; not the agent's
    /// operations), each with its value as config.yaml writes it and whether it differs from the built-in default:
    /// report.html's "Parameters" (where each came from is config.yaml's to say: a re-run from it writes the same
    /// report).
    public static func researchParameters(_ config: ResolvedConfig) -> [ResearchParameter] {
        let groups = ConfigSchema.groups.prefix { $0 != "exchange" }
        return ConfigSchema.parameters.filter { groups.contains(String($0.group)) }.map { p in
            ResearchParameter(
                key: p.key, value: yamlScalar(config.values[p.key]!), changed: config.values[p.key] != p.defaultValue,
                summary: p.summary)
        }
    }

    public static func render(_ config: ResolvedConfig, differencesOnly: Bool = false) -> String {
        var out =
            differencesOnly
            ? "# differences from the built-in defaults (config/environments/backtest.yaml)"
            : "# effective configuration"
        if let env = config.environment { out += " of environment '\(env)'" }
        if let source = config.source { out += " (\(source))" } else { out += " (built-in defaults)" }
        out += "\n"
        for group in ConfigSchema.groups {
            let shown = ConfigSchema.parameters.filter {
                $0.group == group && (!differencesOnly || config.values[$0.key] != $0.defaultValue)
            }
            if differencesOnly && shown.isEmpty { continue }
            out += "\(group):\n"
            for p in shown {
                let value = yamlScalar(config.values[p.key]!)
                let origin: String
                switch config.origins[p.key]! {
                case .defaulted: origin = "default"
                case .file(let path, let line):
                    // A value from the file this one extends names that file.
                    let file = path == config.source ? "" : (path as NSString).lastPathComponent + " "
                    origin = file + (line.map { "line \($0)" } ?? "file")
                case .override: origin = "--set"
                }
                let left = "  \(p.name): \(value)"
                out +=
                    left.padding(toLength: max(left.count, 44), withPad: " ", startingAt: 0)
                    + "  # \(p.summary) [\(origin)]\n"
            }
        }
        return out
    }
}

extension FeatureConfig {
    /// The feature pipeline at the schema's defaults (the one home of every default: `ConfigSchema`).
    public static let defaults = ResolvedConfig.defaults.features
}

extension StrategyConfig {
    /// The strategy at the schema's defaults (the one home of every default: `ConfigSchema`).
    public static let defaults = ResolvedConfig.defaults.strategy
}
