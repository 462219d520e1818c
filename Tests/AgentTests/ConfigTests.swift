import AgentCLI
import AgentConfig
import AgentSupport
import Daemon
import Engine
import Foundation
import Research
import Testing

/// The package root (tests run from anywhere).
let packageRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    .deletingLastPathComponent()

func temporaryDirectory() throws -> URL {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("at-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    return dir
}

func expectConfigError(_ expected: String, _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("expected an error containing '\(expected)'")
    } catch {
        #expect(error is ConfigError)
        #expect("\(error)".contains(expected), "\(error)")
    }
}

@Suite(.tags(.unit)) struct ConfigTests {
    let backtest = packageRoot.appendingPathComponent("config/environments/backtest.yaml").path

    @Test func backtestEnvironmentListsEveryParameterAtItsDefault() throws {
        let config = try ConfigLoader.loadFile(backtest, environment: "backtest")
        for p in ConfigSchema.parameters {
            guard case .file = config.origins[p.key] else {
                Issue.record("\(p.key) is missing from backtest.yaml")
                continue
            }
            #expect(config.values[p.key] == p.defaultValue, "\(p.key)")
        }
        #expect(config.instrument == Instrument.btcusdt)
        #expect(config.features == FeatureConfig.defaults)
    }

    @Test func everyEnvironmentValidatesAndDiffersFromBacktestOnlyWhereItMust() throws {
        let dir = packageRoot.appendingPathComponent("config/environments").path
        let base = try ConfigLoader.load(ConfigSelection(environment: "backtest", directory: dir))
        let allowed: Set<String> = ["agent.mode", "agent.require_manual_activation"]
        // The agents that trade the real market set both kill switches; research and sim keep the original's (off).
        let killSwitches: Set<String> = ["risk.max_daily_loss", "risk.max_daily_loss_pct"]
        // The simulator's state is a throwaway on whatever disk runs it: no free-space warning.
        let simOnly: Set<String> = ["agent.min_free_disk_mb"]
        for env in ["sim", "paper", "shadow", "live"] {
            let c = try ConfigLoader.load(ConfigSelection(environment: env, directory: dir))
            #expect(c.text("agent.mode") == env, "\(env)")
            let differing = ConfigSchema.parameters.map(\.key).filter { c.values[$0] != base.values[$0] }
            #expect(
                Set(differing).isSubset(of: env == "sim" ? allowed.union(simOnly) : allowed.union(killSwitches)),
                "\(env): \(differing)")
            if env != "sim" {
                #expect(
                    c.realOrOff("risk.max_daily_loss") != nil && c.realOrOff("risk.max_daily_loss_pct") != nil, "\(env)"
                )
            }
        }
        #expect(base.realOrOff("risk.max_daily_loss") == nil && base.realOrOff("risk.max_daily_loss_pct") == nil)
        #expect(
            try ConfigLoader.load(ConfigSelection(environment: "live", directory: dir)).boolean("live.armed") == false)
    }

    /// The environments extend backtest.yaml and hold only what differs (two lines aside: each file names its mode,
    /// and live's `armed: false` is the line an operator flips on purpose); every other value comes from
    /// backtest.yaml, named as such.
    @Test func environmentsExtendBacktestAndHoldOnlyTheirDifferences() throws {
        let dir = packageRoot.appendingPathComponent("config/environments").path
        for env in ["sim", "paper", "shadow", "live"] {
            let c = try ConfigLoader.load(ConfigSelection(environment: env, directory: dir))
            let own = ConfigSchema.parameters.filter {
                if case .file(let path, _) = c.origins[$0.key] { path.hasSuffix("/\(env).yaml") } else { false }
            }
            for p in own where !["live.armed", "agent.mode"].contains(p.key) {
                #expect(c.values[p.key] != p.defaultValue, "\(env).yaml sets \(p.key) to its default")
            }
            let inherited = ConfigSchema.parameters.filter {
                if case .file(let path, _) = c.origins[$0.key] { path.hasSuffix("/backtest.yaml") } else { false }
            }
            #expect(inherited.count + own.count == ConfigSchema.parameters.count, "\(env)")
            let diff = ConfigLoader.render(c, differencesOnly: true)
            #expect(diff.contains("mode: \"\(env)\"") || env == "paper", "\(diff)")
            #expect(!diff.contains("rolling_window_minutes"), "only what differs")
            #expect(ConfigLoader.render(c).contains("[backtest.yaml line "))
        }
    }

    @Test func extendsNamesItsBaseAndRefusesCyclesAndMissingFiles() throws {
        let dir = NSTemporaryDirectory() + "extends-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func write(_ name: String, _ text: String) throws {
            try text.write(toFile: "\(dir)/\(name).yaml", atomically: true, encoding: .utf8)
        }
        try write("base", "risk:\n  cooldown_minutes: 7\nsizing:\n  tp1_pct: 0.4\n  tp2_pct: 0.6\n")
        // TP1 set over a base that sets both: TP2 follows (a file is a level above the file it extends).
        try write("child", "extends: base\nsizing:\n  tp1_pct: 0.3\n")
        let c = try ConfigLoader.load(ConfigSelection(environment: "child", directory: dir))
        #expect(
            c.integer("risk.cooldown_minutes") == 7
                && c.origins["risk.cooldown_minutes"] == .file("\(dir)/base.yaml", line: 2))
        #expect(c.real("sizing.tp1_pct") == 0.3 && abs(c.real("sizing.tp2_pct") - 0.7) < 1e-12)
        // A chain of two.
        try write("grandchild", "extends: child.yaml\nrisk:\n  cooldown_minutes: 9\n")
        let g = try ConfigLoader.load(ConfigSelection(environment: "grandchild", directory: dir))
        #expect(g.integer("risk.cooldown_minutes") == 9 && g.real("sizing.tp1_pct") == 0.3)
        try write("a", "extends: b\n")
        try write("b", "extends: a\n")
        expectConfigError("extends, directly or not, this file") {
            _ = try ConfigLoader.load(ConfigSelection(environment: "a", directory: dir))
        }
        try write("orphan", "\nextends: nowhere\n")
        expectConfigError("orphan.yaml:2: extends: \(dir)/nowhere.yaml: no such file") {
            _ = try ConfigLoader.load(ConfigSelection(environment: "orphan", directory: dir))
        }
    }

    @Test func unknownKeysNameFileLineAndKey() {
        expectConfigError("x.yaml:3: value_area.va_fractoin: unknown key") {
            _ = try ConfigLoader.parse(
                yaml: "value_area:\n  va_fraction: 0.7\n  va_fractoin: 0.6\n", source: "x.yaml", environment: nil)
        }
        expectConfigError("x.yaml:1: valu_area: unknown group") {
            _ = try ConfigLoader.parse(yaml: "valu_area:\n  va_fraction: 0.7\n", source: "x.yaml", environment: nil)
        }
    }

    @Test func wrongTypesAndRangesAreErrors() {
        expectConfigError("x.yaml:2: value_area.min_va_bins: expected an integer, got 'many'") {
            _ = try ConfigLoader.parse(yaml: "value_area:\n  min_va_bins: many\n", source: "x.yaml", environment: nil)
        }
        expectConfigError("x.yaml:2: value_area.va_fraction: 1.5 is out of range (0, 1]") {
            _ = try ConfigLoader.parse(yaml: "value_area:\n  va_fraction: 1.5\n", source: "x.yaml", environment: nil)
        }
        expectConfigError("x.yaml:2: order_flow.side_source: expected one of auto, inferred, exchange, got 'taker'") {
            _ = try ConfigLoader.parse(yaml: "order_flow:\n  side_source: taker\n", source: "x.yaml", environment: nil)
        }
        expectConfigError("x.yaml:2: signal.use_qimb: expected true or false") {
            _ = try ConfigLoader.parse(yaml: "signal:\n  use_qimb: 1\n", source: "x.yaml", environment: nil)
        }
        expectConfigError("x.yaml:2: instrument.tick_size: has no value") {
            _ = try ConfigLoader.parse(yaml: "instrument:\n  tick_size:\n", source: "x.yaml", environment: nil)
        }
    }

    @Test func overridesApplyAndAreChecked() throws {
        let dir = packageRoot.appendingPathComponent("config/environments").path
        let config = try ConfigLoader.load(
            ConfigSelection(
                environment: "backtest", directory: dir,
                overrides: ["value_area.va_fraction=0.68", "order_flow.side_source=inferred"])
        )
        #expect(config.features.vaFraction == 0.68)
        #expect(config.features.sideSource == .inferred)
        #expect(config.origins["value_area.va_fraction"] == .override)
        expectConfigError("--set: value_area.nope: unknown key") {
            _ = try ConfigLoader.load(
                ConfigSelection(environment: "backtest", directory: dir, overrides: ["value_area.nope=1"]))
        }
        expectConfigError("--set: 'value_area.va_fraction' is not group.key=value") {
            _ = try ConfigLoader.load(
                ConfigSelection(environment: "backtest", directory: dir, overrides: ["value_area.va_fraction"]))
        }
        expectConfigError(
            "--set: value_area.bin_width_max_ticks: 12 must be a multiple of value_area.base_bin_ticks (5)"
        ) {
            _ = try ConfigLoader.load(
                ConfigSelection(
                    environment: "backtest", directory: dir,
                    overrides: ["value_area.base_bin_ticks=5", "value_area.bin_width_max_ticks=12"]))
        }
    }

    @Test func environmentSearchOrder() throws {
        let first = try temporaryDirectory()
        let second = try temporaryDirectory()
        defer {
            try? FileManager.default.removeItem(at: first)
            try? FileManager.default.removeItem(at: second)
        }
        try "value_area:\n  min_va_bins: 7\n".write(
            to: first.appendingPathComponent("lab.yaml"), atomically: true, encoding: .utf8)
        try "value_area:\n  min_va_bins: 9\n".write(
            to: second.appendingPathComponent("lab.yaml"), atomically: true, encoding: .utf8)
        let env = ["AUCTION_CONFIG_DIR": second.path]
        let fromDir = try ConfigLoader.load(
            ConfigSelection(environment: "lab", directory: first.path), processEnvironment: env)
        #expect(fromDir.features.minVABins == 7)
        let fromEnv = try ConfigLoader.load(ConfigSelection(environment: "lab"), processEnvironment: env)
        #expect(fromEnv.features.minVABins == 9)
        #expect(fromEnv.source == second.appendingPathComponent("lab.yaml").path)
        expectConfigError(
            "--env: no ghost.yaml in \(first.path), \(second.path), /etc/auction-agent/environments, config/environments"
        ) {
            _ = try ConfigLoader.load(
                ConfigSelection(environment: "ghost", directory: first.path), processEnvironment: env)
        }
        expectConfigError("is not an environment name") {
            _ = try ConfigLoader.load(ConfigSelection(environment: "../etc/passwd"), processEnvironment: env)
        }
        expectConfigError("give either --env or --config") {
            _ = try ConfigLoader.load(ConfigSelection(environment: "lab", file: "x.yaml"), processEnvironment: env)
        }
    }

    @Test func renderPrintsEveryParameterWithItsOrigin() throws {
        var config = try ConfigLoader.parse(
            yaml: "value_area:\n  va_fraction: 0.7\n", source: "x.yaml", environment: "x")
        try ConfigLoader.applyOverrides(["sizing.risk_pct=0.01"], to: &config)
        let text = ConfigLoader.render(config)
        for p in ConfigSchema.parameters { #expect(text.contains("  \(p.name): "), "\(p.key)") }
        #expect(text.contains("va_fraction: 0.7"))
        #expect(text.contains("[line 2]"))
        #expect(text.contains("risk_pct: 0.01"))
        #expect(text.contains("[--set]"))
        #expect(text.contains("min_va_bins: 20"))
    }
}
