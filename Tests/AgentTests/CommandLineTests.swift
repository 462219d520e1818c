import Charts
import Engine
import Foundation
import Testing

/// Runs the built `auction-agent` as a process, from the package root.
struct Run {
    var status: Int32
    var stdout: String
    var stderr: String
}

func agentBinary() -> URL {
    let beside = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent().appendingPathComponent(
        "auction-agent")
    if FileManager.default.isExecutableFile(atPath: beside.path) { return beside }
    return packageRoot.appendingPathComponent(".build/debug/auction-agent")
}

func agent(_ arguments: [String], environment: [String: String] = [:], in directory: URL = packageRoot) throws -> Run {
    let process = Process()
    process.executableURL = agentBinary()
    process.arguments = arguments
    process.currentDirectoryURL = directory
    var env = ProcessInfo.processInfo.environment
    env.removeValue(forKey: "AUCTION_CONFIG_DIR")
    for (k, v) in environment { env[k] = v }
    process.environment = env
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    try process.run()
    // Read both pipes to the end before waiting, so a full pipe never blocks the child.
    let outData = out.fileHandleForReading.readDataToEndOfFile()
    let errData = err.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return Run(
        status: process.terminationStatus,
        stdout: String(decoding: outData, as: UTF8.self),
        stderr: String(decoding: errData, as: UTF8.self)
    )
}

/// Runs a system tool and returns its standard output.
func runTool(_ path: String, _ arguments: [String]) throws -> String {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: path)
    process.arguments = arguments
    let out = Pipe()
    process.standardOutput = out
    try process.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    process.waitUntilExit()
    return String(decoding: data, as: UTF8.self)
}

@Suite(.tags(.e2e), .serialized) struct CommandLineTests {
    /// The top-level help is the parser's: every command listed under its group with its own abstract, wrapped to the
    /// terminal's width (no hand-indented table to fall out of step).
    @Test func topLevelHelpListsEveryCommandWrapped() throws {
        let run = try agent(["--help"], environment: ["COLUMNS": "60"])
        #expect(run.status == 0)
        for name in [
            "run", "flatten-direct", "preflight", "config", "backup", "record", "backfill", "export", "replay",
            "features", "backtest", "grid", "walkforward", "simulate", "sim-exchange",
        ] {
            #expect(run.stdout.contains("\n  \(name) "), "\(name) is listed")
        }
        #expect(run.stdout.contains("AGENT SUBCOMMANDS:") && run.stdout.contains("RESEARCH SUBCOMMANDS:"))
        #expect(run.stdout.split(separator: "\n").allSatisfy { $0.count <= 80 })
    }

    @Test func simulateThenFeaturesEndToEnd() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let sim = try agent(["simulate", "--hours", "1", "--seed", "4", "--out", dir.path])
        #expect(sim.status == 0, "\(sim.stderr)")
        #expect(sim.stderr.contains("trades"))
        let out = dir.appendingPathComponent("features.csv").path
        let run = try agent([
            "features", "--trades", dir.appendingPathComponent("trades.csv").path,
            "--quotes", dir.appendingPathComponent("quotes.csv").path, "--env", "backtest", "--out", out,
        ])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("features: 60 minutes"))
        #expect(run.stderr.contains("inferred side matches the exchange's"))
        let text = try String(contentsOfFile: out, encoding: .utf8)
        let lines = text.split(separator: "\n")
        #expect(lines.count == 61)
        // Beside the file: its configuration, which makes it again, and its inputs with their hashes.
        let inputs = try String(contentsOfFile: out + ".inputs.csv", encoding: .utf8).split(separator: "\n")
        #expect(inputs.count == 3 && inputs[0] == "kind,file,first,last,rows,bytes,sha256", "\(inputs)")
        let remade = dir.appendingPathComponent("remade.csv").path
        let rerun = try agent([
            "features", "--trades", dir.appendingPathComponent("trades.csv").path,
            "--quotes", dir.appendingPathComponent("quotes.csv").path, "--config", out + ".config.yaml", "--out",
            remade,
        ])
        #expect(rerun.status == 0, "\(rerun.stderr)")
        #expect(try String(contentsOfFile: remade, encoding: .utf8) == text)
        // From another directory, with no environment files anywhere: the built-in defaults, said on stderr; the
        // same features as the backtest environment's (whose values are the defaults).
        if !FileManager.default.fileExists(atPath: "/etc/auction-agent/environments/backtest.yaml") {
            let elsewhere = dir.appendingPathComponent("defaults.csv").path
            let outside = try agent(
                [
                    "features", "--trades", dir.appendingPathComponent("trades.csv").path,
                    "--quotes", dir.appendingPathComponent("quotes.csv").path, "--out", elsewhere,
                ], in: dir)
            #expect(outside.status == 0, "\(outside.stderr)")
            #expect(outside.stderr.contains("using the built-in defaults"), "\(outside.stderr)")
            #expect(try String(contentsOfFile: elsewhere, encoding: .utf8) == text)
            let named = try agent(
                [
                    "features", "--env", "backtest", "--trades", dir.appendingPathComponent("trades.csv").path,
                    "--out", elsewhere,
                ], in: dir)
            #expect(
                named.status != 0 && named.stderr.contains("no backtest.yaml"),
                "an environment asked for by name must exist")
        }
        #expect(
            lines[0]
                == "ts_min,open,high,low,close,volume,vwap,trade_count,bid_px_close,ask_px_close,bid_sz_close,ask_sz_close,mid_close,spread_close,spread_avg_60m,sigma_240,bin_width,poc,vah,val,va_coverage,va_bin_count,profile_bins,va_valid,total_volume_4h,of_1m,of_norm_1m,ambiguous_frac_1m,qimb_close,qimb_ema_60s"
        )
        #expect(lines.dropFirst().allSatisfy { $0.split(separator: ",", omittingEmptySubsequences: false).count == 30 })
        #expect(lines[1].hasPrefix("1767225600000,"))

        // Same inputs, same bytes.
        let again = dir.appendingPathComponent("again.csv").path
        let flow = dir.appendingPathComponent("flow.csv").path
        let second = try agent([
            "features", "--trades", dir.appendingPathComponent("trades.csv").path,
            "--quotes", dir.appendingPathComponent("quotes.csv").path, "--out", again, "--order-flow-out", flow,
        ])
        #expect(second.status == 0)
        #expect(FileManager.default.contents(atPath: out) == FileManager.default.contents(atPath: again))

        // Per-minute inference accuracy: the generator's trades carry the taker side.
        let flowLines = try String(contentsOfFile: flow, encoding: .utf8).split(separator: "\n")
        #expect(flowLines.count == 61)
        #expect(flowLines[0].hasSuffix("exchange_sided_volume,agreeing_volume,inference_accuracy"))
        let accuracy = flowLines.dropFirst().compactMap {
            Double($0.split(separator: ",", omittingEmptySubsequences: false)[9])
        }
        #expect(accuracy.count == 60)
        #expect(accuracy.allSatisfy { $0 > 0.5 && $0 <= 1 })
    }

    @Test func malformedRowStopsTheRunAndKeepsTheOldOutput() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let trades = dir.appendingPathComponent("t.csv")
        try "ts,price,size\n1767225600000,50000,1\n1767225600001,5O000,1\n".write(
            to: trades, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("f.csv")
        try "previous results\n".write(to: out, atomically: true, encoding: .utf8)
        let run = try agent(["features", "--trades", trades.path, "--out", out.path])
        #expect(run.status != 0)
        #expect(run.stderr.contains("\(trades.path):3: price '5O000' is not a decimal number"), "\(run.stderr)")
        #expect(try String(contentsOf: out, encoding: .utf8) == "previous results\n")
        // The rows written before the bad one went to a temporary file, removed when the run failed.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).sorted() == ["f.csv", "t.csv"])

        let skipping = try agent(["features", "--trades", trades.path, "--out", out.path, "--skip-bad-rows"])
        #expect(skipping.status == 0, "\(skipping.stderr)")
        #expect(skipping.stderr.contains("1 bad rows skipped"))
        #expect(skipping.stderr.contains("quotes: none given"))
    }

    @Test func configCheckPrintsTheEffectiveConfiguration() throws {
        let ok = try agent(["config", "check", "--env", "backtest", "--set", "sizing.risk_pct=0.01"])
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(ok.stdout.contains("risk_pct: 0.01"))
        #expect(
            ok.stdout.contains(
                "# effective configuration of environment 'backtest' (config/environments/backtest.yaml)"))
        let bad = try agent(["config", "check", "--env", "backtest", "--set", "value_area.va_fraction=2"])
        #expect(bad.status != 0)
        #expect(bad.stderr.contains("--set: value_area.va_fraction: 2 is out of range (0, 1]"), "\(bad.stderr)")
    }

    /// Daily files in any order, some gzipped, given as a directory and a glob, run exactly like the one file they
    /// came from; a missing day is reported, a day given twice refused, and --from/--to select minutes.
    @Test func backtestOverDailyFilesEqualsTheSingleFileRun() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let sim = try agent(
            ["simulate", "--hours", "3", "--seed", "5", "--start", "2026-01-01T23:00:00Z", "--out", dir.path])
        #expect(sim.status == 0, "\(sim.stderr)")
        // Split each file by UTC day: 2026-01-01 (one hour) and 2026-01-02 (two hours).
        var days: [String: [String: [Substring]]] = ["trades": [:], "quotes": [:]]
        var headers: [String: Substring] = [:]
        for kind in ["trades", "quotes"] {
            let lines = try String(contentsOf: dir.appendingPathComponent("\(kind).csv"), encoding: .utf8)
                .split(separator: "\n")
            headers[kind] = lines[0]
            for line in lines.dropFirst() {
                let ms = Int64(line.prefix { $0 != "," })!
                days[kind]![isoTime(ms).prefix(10).description, default: []].append(line)
            }
        }
        #expect(days["trades"]!.keys.sorted() == ["2026-01-01", "2026-01-02"])
        for kind in ["trades", "quotes"] {
            try FileManager.default.createDirectory(
                at: dir.appendingPathComponent(kind), withIntermediateDirectories: true)
            for (day, lines) in days[kind]! {
                let text = ([headers[kind]!] + lines).joined(separator: "\n") + "\n"
                let path = dir.appendingPathComponent("\(kind)/BTCUSDT\(day).csv").path
                FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
                if day == "2026-01-02" {
                    let gz = Process()
                    gz.executableURL = URL(fileURLWithPath: "/usr/bin/env")
                    gz.arguments = ["gzip", path]
                    try gz.run()
                    gz.waitUntilExit()
                }
            }
        }
        let settings = [
            "--set", "value_area.rolling_window_minutes=60", "--set", "value_area.warmup_minutes=60",
            "--set", "value_area.min_va_bins=10",
        ]
        func backtest(_ inputs: [String], _ out: String) throws -> Run {
            try agent(["backtest"] + inputs + ["--out", dir.appendingPathComponent(out).path] + settings)
        }
        let single = try backtest(
            [
                "--trades", dir.appendingPathComponent("trades.csv").path, "--quotes",
                dir.appendingPathComponent("quotes.csv").path,
            ], "single")
        #expect(single.status == 0, "\(single.stderr)")
        let daily = try backtest(
            [
                "--trades", dir.appendingPathComponent("trades").path, "--quotes",
                dir.appendingPathComponent("quotes").path + "/*.csv.gz",
                dir.appendingPathComponent("quotes/BTCUSDT2026-01-01.csv").path,
            ], "daily")
        #expect(daily.status == 0, "\(daily.stderr)")
        #expect(daily.stderr.contains("trades: 2 files"), "\(daily.stderr)")
        for name in ["trades.csv", "fills.csv", "signals.csv", "equity.csv", "metrics.json"] {
            let a = FileManager.default.contents(atPath: dir.appendingPathComponent("single/\(name)").path)
            let b = FileManager.default.contents(atPath: dir.appendingPathComponent("daily/\(name)").path)
            #expect(a != nil && a == b, "\(name): the daily files run as the single file")
        }
        // The features run reads them the same way too: the single file's bytes.
        for (name, inputs) in [
            ("features-single.csv", ["--trades", "trades.csv", "--quotes", "quotes.csv"]),
            (
                "features-daily.csv",
                ["--trades", "trades", "--quotes", "quotes/*.csv.gz", "quotes/BTCUSDT2026-01-01.csv"]
            ),
        ] {
            let run = try agent(["features"] + inputs + ["--out", name] + settings, in: dir)
            #expect(run.status == 0, "\(run.stderr)")
            if name.contains("daily") { #expect(run.stderr.contains("trades: 2 files"), "\(run.stderr)") }
        }
        let featuresSingle = FileManager.default.contents(
            atPath: dir.appendingPathComponent("features-single.csv").path)
        #expect(
            featuresSingle != nil
                && featuresSingle
                    == FileManager.default.contents(
                        atPath: dir.appendingPathComponent("features-daily.csv").path)
        )
        // The grid reads the same inputs the same way: results.csv as from the single files.
        let grid = dir.appendingPathComponent("grid.yaml")
        try "parameters:\n  sizing.risk_pct: [0.01, 0.02]\n".write(to: grid, atomically: true, encoding: .utf8)
        var results: [Data?] = []
        for (name, inputs) in [
            (
                "grid-single",
                [
                    "--trades", dir.appendingPathComponent("trades.csv").path, "--quotes",
                    dir.appendingPathComponent("quotes.csv").path,
                ]
            ),
            (
                "grid-daily",
                [
                    "--trades", dir.appendingPathComponent("trades").path, "--quotes",
                    dir.appendingPathComponent("quotes").path,
                ]
            ),
        ] {
            let run = try agent(
                ["grid"] + inputs + ["--grid", grid.path, "--out", dir.appendingPathComponent(name).path] + settings)
            #expect(run.status == 0, "\(run.stderr)")
            results.append(FileManager.default.contents(atPath: dir.appendingPathComponent("\(name)/results.csv").path))
        }
        #expect(results[0] != nil && results[0] == results[1])
        let inputs = try String(contentsOf: dir.appendingPathComponent("daily/inputs.csv"), encoding: .utf8)
        #expect(inputs.split(separator: "\n").count == 5 && inputs.contains("BTCUSDT2026-01-02.csv.gz"))
        // The inputs' identity: each file's SHA-256, as sha256sum computes it.
        let day2 = dir.appendingPathComponent("trades/BTCUSDT2026-01-02.csv.gz").path
        let sum = try runTool("/usr/bin/sha256sum", [day2])
        let hex = try #require(sum.split(separator: " ").first.map(String.init))
        #expect(hex.count == 64 && inputs.contains(",\(hex)"), "\(inputs)")

        // A day of the range without a file: reported.
        try FileManager.default.removeItem(at: dir.appendingPathComponent("trades/BTCUSDT2026-01-01.csv"))
        let gap = try backtest(
            [
                "--trades", dir.appendingPathComponent("trades").path, "--quotes",
                dir.appendingPathComponent("quotes").path, "--from", "2026-01-01",
            ], "gap")
        #expect(gap.status == 0, "\(gap.stderr)")
        #expect(gap.stderr.contains("missing days (no trades file): 2026-01-01"), "\(gap.stderr)")
        // A day given twice: refused, naming both files.
        let twice = try backtest(
            [
                "--trades", dir.appendingPathComponent("trades").path, dir.appendingPathComponent("trades.csv").path,
                "--quotes", dir.appendingPathComponent("quotes").path,
            ], "twice")
        #expect(twice.status != 0 && twice.stderr.contains("overlaps"), "\(twice.stderr)")
        // --from/--to: only the minutes of the range.
        let ranged = try backtest(
            [
                "--trades", dir.appendingPathComponent("trades.csv").path, "--quotes",
                dir.appendingPathComponent("quotes.csv").path, "--from", "2026-01-02T00:00:00Z", "--to",
                "2026-01-02T01:00:00Z",
            ], "ranged")
        #expect(ranged.status == 0, "\(ranged.stderr)")
        #expect(ranged.stderr.contains("backtest: 60 minutes"), "\(ranged.stderr)")
    }

    @Test func backtestWarmFromKlinesComparesTheWarmedValueAreaWithTheExactOne() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        #expect(try agent(["simulate", "--hours", "3", "--seed", "8", "--out", dir.path]).status == 0)
        let settings = [
            "--set", "value_area.rolling_window_minutes=60", "--set", "value_area.warmup_minutes=60", "--set",
            "value_area.min_va_bins=10",
        ]
        let out = dir.appendingPathComponent("out").path
        let run = try agent(
            [
                "backtest", "--trades", dir.appendingPathComponent("trades.csv").path, "--quotes",
                dir.appendingPathComponent("quotes.csv").path, "--out", out, "--warm-from-klines", "--warm-every", "5",
            ] + settings)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(
            run.stderr.contains("warm from klines: |warmed - exact| in ticks over 25 minutes")
                && run.stderr.contains("p99  POC"), "\(run.stderr)")
        let csv = try String(contentsOfFile: out + "/warm_from_klines.csv", encoding: .utf8).split(separator: "\n")
        #expect(csv.count == 26 && csv[0].hasPrefix("minute,exact_poc,exact_vah,exact_val,warmed_poc"))
        let bars = try agent([
            "backtest", "--bars-only", "--features", out + "/warm_from_klines.csv", "--out", out, "--warm-from-klines",
        ])
        #expect(bars.status != 0 && bars.stderr.contains("--warm-from-klines needs the trades"), "\(bars.stderr)")
    }

    @Test func backtestWritesEveryOutputAndTheSameBytesTwice() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // Three hours in which the default strategy trades, some of its limit entries filling as maker.
        let sim = try agent(["simulate", "--hours", "3", "--seed", "2", "--out", dir.path])
        #expect(sim.status == 0, "\(sim.stderr)")
        let settings = [
            "--set", "value_area.rolling_window_minutes=60", "--set", "value_area.warmup_minutes=60",
            "--set", "value_area.min_va_bins=10",
        ]
        var outputs: [[String: Data]] = []
        for run in ["a", "b"] {
            let out = dir.appendingPathComponent(run).path
            let result = try agent(
                [
                    "backtest", "--trades", dir.appendingPathComponent("trades.csv").path,
                    "--quotes", dir.appendingPathComponent("quotes.csv").path, "--out", out,
                ] + settings)
            #expect(result.status == 0, "\(result.stderr)")
            #expect(result.stderr.contains("backtest: 180 minutes"))
            var files: [String: Data] = [:]
            for name in [
                "trades.csv", "fills.csv", "signals.csv", "equity.csv", "metrics.json", "report.html", "config.yaml",
            ] {
                files[name] = FileManager.default.contents(atPath: "\(out)/\(name)")
                #expect(files[name] != nil, "\(name) missing")
            }
            outputs.append(files)
        }
        #expect(outputs[0] == outputs[1], "same inputs, same bytes")
        #expect(String(decoding: outputs[0]["fills.csv"]!, as: UTF8.self).contains(",maker,"), "a limit entry filled")
        // The run's config.yaml runs it again: every output the same, without the --set options.
        let config = String(decoding: outputs[0]["config.yaml"]!, as: UTF8.self)
        #expect(config.contains("rolling_window_minutes: 60") && config.contains("[--set]"), "\(config)")
        let again = dir.appendingPathComponent("c").path
        let rerun = try agent(
            [
                "backtest", "--trades", dir.appendingPathComponent("trades.csv").path,
                "--quotes", dir.appendingPathComponent("quotes.csv").path, "--out", again, "--config",
                dir.appendingPathComponent("a/config.yaml").path,
            ])
        #expect(rerun.status == 0, "\(rerun.stderr)")
        for name in ["trades.csv", "fills.csv", "signals.csv", "equity.csv", "metrics.json", "report.html"] {
            #expect(FileManager.default.contents(atPath: "\(again)/\(name)") == outputs[0][name], "\(name) differs")
        }
        let signals = String(decoding: outputs[0]["signals.csv"]!, as: UTF8.self).split(separator: "\n")
        #expect(signals.count == 181)
        #expect(
            signals[0].hasPrefix(
                "ts_min,breakin_long,breakin_short,failbreak_long,failbreak_short,breakout_long,breakout_short,action,reason"
            ))
        let equity = String(decoding: outputs[0]["equity.csv"]!, as: UTF8.self).split(separator: "\n")
        // One row per minute, and one after the end-of-data close when a position was open at the end.
        #expect(equity.count == 181 || equity.count == 182)
        let html = String(decoding: outputs[0]["report.html"]!, as: UTF8.self)
        // One file that needs no network: the chart library inline, nothing loaded from elsewhere.
        #expect(html.contains(#"id="report-data""#) && html.contains("Metrics") && html.contains(#"id="parameters""#))
        #expect(html.contains("default-src 'none'") && !html.contains(#"src=""#) && !html.contains("<link"))
        #expect(html.contains(ChartLibrary.script) && html.contains(ChartLayer.script))
        let metrics = try JSONSerialization.jsonObject(with: outputs[0]["metrics.json"]!) as! [String: Any]
        #expect(metrics["initial_equity"] as? Double == 10_000)
        #expect((metrics["by_setup"] as? [String: Any])?.keys.sorted() == ["breakin", "breakout", "failbreak"])
        // P&L identity: initial equity + the trades' net P&L = final equity.
        let tradeLines = String(decoding: outputs[0]["trades.csv"]!, as: UTF8.self).split(separator: "\n")
        let columns = tradeLines[0].split(separator: ",").map(String.init)
        #expect(
            columns.suffix(7) == [
                "initial_stop", "tp1", "tp2", "exit_stop", "available_margin", "risk", "leverage_capped",
            ])
        let rows = tradeLines.dropFirst().map {
            $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        }
        func value(_ row: [String], _ name: String) -> Double? { Double(row[columns.firstIndex(of: name)!]) }
        let net = rows.map { value($0, "net_pnl")! }.reduce(0, +)
        // Every trade can be audited against docs/SPEC.md §11: the risk is the margin's risk_pct (2 %), the stop lies on the
        // losing side of the entry, and an uncapped size risks about that much at the stop.
        #expect(!rows.isEmpty)
        for row in rows {
            let margin = try #require(value(row, "available_margin"))
            let risk = try #require(value(row, "risk"))
            #expect(abs(risk - margin * 0.02) < 1e-6)
            let entry = value(row, "entry_price")!
            let stop = try #require(value(row, "initial_stop"))
            #expect((entry - stop) * (row[columns.firstIndex(of: "side")!] == "long" ? 1 : -1) > 0)
            #expect(value(row, "exit_stop") != nil)
            if row[columns.firstIndex(of: "leverage_capped")!] == "false" {
                let atRisk = value(row, "qty")! * abs(entry - stop)
                #expect(atRisk > risk * 0.5 && atRisk < risk * 1.5, "\(row)")
            }
        }
        #expect(abs(10_000 + net - (metrics["final_equity"] as! Double)) < 1e-6)
        // equity.csv ends where metrics.json does: after the close.
        let header = equity[0].split(separator: ",").map(String.init)
        let lastEquity = Double(
            equity.last!.split(separator: ",", omittingEmptySubsequences: false)[header.firstIndex(of: "equity")!])!
        #expect(abs(lastEquity - (metrics["final_equity"] as! Double)) < 0.01, "\(equity.last!)")

        // The same data as stored features, replayed without ticks.
        let features = dir.appendingPathComponent("features.csv").path
        let f = try agent(
            [
                "features", "--trades", dir.appendingPathComponent("trades.csv").path,
                "--quotes", dir.appendingPathComponent("quotes.csv").path, "--out", features,
            ] + settings)
        #expect(f.status == 0, "\(f.stderr)")
        let bars = try agent(
            ["backtest", "--bars-only", "--features", features, "--out", dir.appendingPathComponent("bars").path]
                + settings)
        #expect(bars.status == 0, "\(bars.stderr)")
        #expect(bars.stderr.contains("backtest: 180 minutes"))
        let misuse = try agent(["backtest", "--bars-only", "--out", dir.path])
        #expect(misuse.status != 0 && misuse.stderr.contains("--bars-only needs --features FILE"))
    }

    @Test func gridWritesRankedResultsAndSQLiteRows() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        _ = try agent(["simulate", "--hours", "2", "--seed", "9", "--out", dir.path])
        let grid = dir.appendingPathComponent("grid.yaml")
        try "rank_by: final_equity\nparameters:\n  sizing.risk_pct: [0.01, 0.02]\n  signal.accept_outside_k: [2, 3]\n"
            .write(to: grid, atomically: true, encoding: .utf8)
        let out = dir.appendingPathComponent("g").path
        let run = try agent([
            "grid", "--trades", dir.appendingPathComponent("trades.csv").path, "--quotes",
            dir.appendingPathComponent("quotes.csv").path,
            "--grid", grid.path, "--workers", "2", "--out", out, "--keep-reports", "2",
            "--set", "value_area.rolling_window_minutes=60", "--set", "value_area.warmup_minutes=60",
        ])
        #expect(run.status == 0, "\(run.stderr)")
        #expect(run.stderr.contains("4 of 4 runs finished"))
        let csv = try String(contentsOfFile: "\(out)/results.csv", encoding: .utf8).split(separator: "\n")
        #expect(csv.count == 5)
        #expect(csv[0].hasPrefix("rank,run,sizing.risk_pct,signal.accept_outside_k,trades"))
        let finals = csv.dropFirst().map { Double($0.split(separator: ",").last!)! }
        #expect(finals == finals.sorted(by: >))
        #expect(FileManager.default.fileExists(atPath: "\(out)/grid.sqlite"))
        // --keep-reports 2: the best two runs again with every output, linked from results.html; each is the run
        // the grid ranked (its final equity the grid's).
        let html = try String(contentsOfFile: "\(out)/results.html", encoding: .utf8)
        for row in csv.dropFirst().prefix(2) {
            let run = row.split(separator: ",")[1]
            let metrics =
                try JSONSerialization.jsonObject(
                    with: Data(contentsOf: URL(fileURLWithPath: "\(out)/runs/\(run)/metrics.json"))) as? [String: Any]
            #expect(metrics?["final_equity"] as? Double == Double(row.split(separator: ",").last!), "run \(run)")
            for file in ["report.html", "trades.csv", "config.yaml"] {
                #expect(FileManager.default.fileExists(atPath: "\(out)/runs/\(run)/\(file)"), "run \(run) \(file)")
            }
            #expect(html.contains(#""report": "runs/\#(run)/report.html""#), "run \(run) linked")
        }
        #expect(html.components(separatedBy: #""report": "#).count == 3, "the best two only")
        #expect(run.stderr.contains("the best 2 runs' reports in \(out)/runs/"))
        // The events fit the default budget: held in memory. Under a budget they do not fit, the files are streamed,
        // said so, and the results are the same.
        #expect(run.stderr.contains("in memory, within the budget of"), "\(run.stderr)")
        let tight = dir.appendingPathComponent("tight").path
        let streamed = try agent([
            "grid", "--trades", dir.appendingPathComponent("trades.csv").path, "--quotes",
            dir.appendingPathComponent("quotes.csv").path,
            "--grid", grid.path, "--workers", "2", "--out", tight, "--memory-budget", "1M",
            "--set", "value_area.rolling_window_minutes=60", "--set", "value_area.warmup_minutes=60",
        ])
        #expect(streamed.status == 0, "\(streamed.stderr)")
        #expect(streamed.stderr.contains("over the budget of 1 MB (--memory-budget): streaming the files instead"))
        #expect(
            FileManager.default.contents(atPath: "\(tight)/results.csv")
                == FileManager.default.contents(atPath: "\(out)/results.csv"))
        let refused = try agent([
            "grid", "--trades", "t", "--quotes", "q", "--grid", "g", "--out", tight, "--memory-budget", "lots",
        ])
        #expect(refused.status != 0 && refused.stderr.contains("--memory-budget lots: expected a size"))
    }

    /// Three shards (one through a Slurm array's variables) merge into the bytes of the single-machine grid; missing
    /// shards are reported and the shards of another grid or other data refused.
    @Test func shardedGridMergesIntoTheSingleMachineResults() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        _ = try agent(["simulate", "--hours", "2", "--seed", "9", "--out", dir.path])
        let grid = dir.appendingPathComponent("grid.yaml")
        try "parameters:\n  value_area.va_fraction: [0.68, 0.7]\n  sizing.risk_pct: [0.01, 0.015, 0.02]\n"
            .write(to: grid, atomically: true, encoding: .utf8)
        let data = [
            "--trades", dir.appendingPathComponent("trades.csv").path, "--quotes",
            dir.appendingPathComponent("quotes.csv").path, "--workers", "1",
            "--set", "value_area.rolling_window_minutes=60", "--set", "value_area.warmup_minutes=60",
        ]
        func path(_ name: String) -> String { dir.appendingPathComponent(name).path }
        func gridRun(_ out: String, _ extra: [String] = [], grid file: URL? = nil, env: [String: String] = [:]) throws
            -> Run
        {
            try agent(["grid"] + data + ["--grid", (file ?? grid).path, "--out", path(out)] + extra, environment: env)
        }
        let whole = try gridRun("whole")
        #expect(whole.status == 0, "\(whole.stderr)")
        for k in 1...2 {
            // Shard 2 streams the files: the same runs, the same data identity, so the merge takes it.
            // Shard 2 also keeps its best run's report (from the stream): the merged results.html links it.
            let shard = try gridRun(
                "s\(k)", ["--shard", "\(k)/3"] + (k == 2 ? ["--stream", "--keep-reports", "1"] : []))
            #expect(shard.status == 0 && shard.stderr.contains("(shard \(k)/3 of a grid of 6)"), "\(shard.stderr)")
        }
        let slurm = ["SLURM_ARRAY_TASK_ID": "2", "SLURM_ARRAY_TASK_MIN": "0", "SLURM_ARRAY_TASK_COUNT": "3"]
        let third = try gridRun("s3", ["--shard", "auto"], env: slurm)
        #expect(third.status == 0 && third.stderr.contains("shard 3/3"), "\(third.stderr)")

        let merged = try agent(["grid", "merge", path("s3"), path("s1"), path("s2"), "--out", path("merged")])
        #expect(merged.status == 0, "\(merged.stderr)")
        #expect(merged.stderr.contains("3 of 3 shards, 6 of 6 runs"), "\(merged.stderr)")
        let single = FileManager.default.contents(atPath: path("whole/results.csv"))
        #expect(single != nil && single == FileManager.default.contents(atPath: path("merged/results.csv")))
        #expect(FileManager.default.fileExists(atPath: path("merged/grid.sqlite")))
        let mergedPage = try String(contentsOfFile: path("merged/results.html"), encoding: .utf8)
        #expect(
            mergedPage.components(separatedBy: #""report": ""#).count == 2
                && mergedPage.contains(URL(fileURLWithPath: path("s2")).standardizedFileURL.path + "/runs/"),
            "the streamed shard's kept report, linked")
        // The merged database merges again (a grid of one shard), to the same bytes.
        let again = try agent(["grid", "merge", path("merged"), "--out", path("again")])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(single == FileManager.default.contents(atPath: path("again/results.csv")))

        // A missing shard: the runs found are written, the gap named, exit status 3.
        let partial = try agent(["grid", "merge", path("s1"), path("s3"), "--out", path("partial")])
        #expect(partial.status == 3 && partial.stderr.contains("missing shard 2/3"), "\(partial.stderr)")
        let rows = try String(contentsOfFile: path("partial/results.csv"), encoding: .utf8).split(separator: "\n")
        #expect(
            rows.count == 1 + 6
                - (try String(contentsOfFile: path("s2/results.csv"), encoding: .utf8))
                .split(separator: "\n").count + 1)
        // Refused: a shard given twice, the shard of another grid, a shard over other data, the merge into a shard.
        let twice = try agent(["grid", "merge", path("s1"), path("s1") + "/grid.sqlite", "--out", path("twice")])
        #expect(twice.status != 0 && twice.stderr.contains("given twice"), "\(twice.stderr)")
        let other = dir.appendingPathComponent("other.yaml")
        try "parameters:\n  value_area.va_fraction: [0.68, 0.72]\n  sizing.risk_pct: [0.01, 0.015, 0.02]\n"
            .write(to: other, atomically: true, encoding: .utf8)
        #expect(try gridRun("o2", ["--shard", "2/3"], grid: other).status == 0)
        let mixed = try agent(["grid", "merge", path("s1"), path("o2"), path("s3"), "--out", path("mixed")])
        #expect(mixed.status != 0 && mixed.stderr.contains("another grid"), "\(mixed.stderr)")
        #expect(mixed.stderr.contains("value_area.va_fraction: [0.68, 0.72]"), "\(mixed.stderr)")
        let firstTrade = try String(contentsOfFile: path("trades.csv"), encoding: .utf8).split(separator: "\n")[1]
        let cut = Int64(firstTrade.prefix { $0 != "," })! + 3_600_000
        #expect(try gridRun("d2", ["--shard", "2/3", "--to", "\(cut)"]).status == 0)
        let otherData = try agent(["grid", "merge", path("s1"), path("d2"), "--out", path("od")])
        #expect(otherData.status != 0 && otherData.stderr.contains("other data"), "\(otherData.stderr)")
        let into = try agent(["grid", "merge", path("s1"), path("s2"), path("s3"), "--out", path("s1")])
        #expect(into.status != 0 && into.stderr.contains("shard's own directory"), "\(into.stderr)")
    }

    @Test func walkforwardWritesItsReportAndTheSameBytesWhateverTheWorkers() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        _ = try agent(["simulate", "--hours", "5", "--seed", "5", "--out", dir.path])
        let grid = dir.appendingPathComponent("grid.yaml")
        try "parameters:\n  value_area.va_fraction: [0.66, 0.72]\n  sizing.risk_pct: [0.01, 0.02]\n"
            .write(to: grid, atomically: true, encoding: .utf8)
        func walk(_ out: String, _ extra: [String]) throws -> Run {
            try agent(
                [
                    "walkforward", "--trades", dir.appendingPathComponent("trades.csv").path, "--quotes",
                    dir.appendingPathComponent("quotes.csv").path, "--grid", grid.path, "--out",
                    dir.appendingPathComponent(out).path, "--set", "value_area.rolling_window_minutes=30", "--set",
                    "value_area.warmup_minutes=30", "--set", "value_area.min_va_bins=10",
                ] + extra)
        }
        let one = try walk("one", ["--train", "2h", "--test", "1h", "--workers", "1"])
        #expect(one.status == 0, "\(one.stderr)")
        #expect(one.stderr.contains("3 windows of 2h + 1h every 1h"), "\(one.stderr)")
        #expect(one.stderr.contains("in memory, within the budget of"), "\(one.stderr)")
        let two = try walk("two", ["--train", "2h", "--test", "1h", "--workers", "2"])
        #expect(two.status == 0, "\(two.stderr)")
        // Streamed (asked, or because the events do not fit the budget): each window reads its spans from the files,
        // and the outputs are the same bytes.
        let streamed = try walk("streamed", ["--train", "2h", "--test", "1h", "--workers", "2", "--stream"])
        #expect(streamed.status == 0 && streamed.stderr.contains("(--stream)"), "\(streamed.stderr)")
        let tight = try walk("tight", ["--train", "2h", "--test", "1h", "--memory-budget", "1M"])
        #expect(tight.status == 0 && tight.stderr.contains("over the budget of 1 MB"), "\(tight.stderr)")
        for name in ["windows.csv", "equity.csv", "trades.csv", "walkforward.json", "report.html"] {
            let a = FileManager.default.contents(atPath: dir.appendingPathComponent("one/\(name)").path)
            for other in ["two", "streamed", "tight"] {
                let b = FileManager.default.contents(atPath: dir.appendingPathComponent("\(other)/\(name)").path)
                #expect(a != nil && a == b, "\(name): the same bytes in \(other)")
            }
        }
        let windows = try String(contentsOf: dir.appendingPathComponent("one/windows.csv"), encoding: .utf8)
            .split(separator: "\n")
        #expect(windows.count == 4)
        #expect(windows[0].hasPrefix("window,train_from,train_to,test_from,test_to,run,value_area.va_fraction"))
        let json =
            try JSONSerialization.jsonObject(
                with: Data(contentsOf: dir.appendingPathComponent("one/walkforward.json"))) as? [String: Any]
        #expect((json?["windows"] as? [Any])?.count == 3 && json?["out_of_sample_stitched"] != nil)
        let html = try String(contentsOf: dir.appendingPathComponent("one/report.html"), encoding: .utf8)
        #expect(html.contains("<h2>Windows") && html.contains("<h2>Equity</h2>"))
        // Overlapping test spans and data too short for one window: refused, saying why.
        let overlap = try walk("x", ["--train", "2h", "--test", "1h", "--step", "30m"])
        #expect(overlap.status != 0 && overlap.stderr.contains("overlap"), "\(overlap.stderr)")
        let short = try walk("y", ["--train", "4h", "--test", "2h"])
        #expect(short.status != 0 && short.stderr.contains("one window needs"), "\(short.stderr)")
    }

    @Test func simulateDailyWritesGzipDaysThatBacktestAsTheSingleFiles() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for (name, extra) in [("single", [String]()), ("daily", ["--daily"])] {
            let run = try agent(
                [
                    "simulate", "--hours", "2", "--seed", "6", "--start", "2026-03-01T23:00:00Z", "--out",
                    dir.appendingPathComponent(name).path,
                ] + extra)
            #expect(run.status == 0, "\(run.stderr)")
        }
        let days = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("daily/trades").path)
        #expect(days.sorted() == ["BTCUSDT2026-03-01.csv.gz", "BTCUSDT2026-03-02.csv.gz"])
        let settings = [
            "--set", "value_area.rolling_window_minutes=60", "--set", "value_area.warmup_minutes=60",
            "--set", "value_area.min_va_bins=10",
        ]
        for (name, inputs) in [
            ("bt-single", ["--trades", "single/trades.csv", "--quotes", "single/quotes.csv"]),
            ("bt-daily", ["--trades", "daily/trades", "--quotes", "daily/quotes"]),
        ] {
            let run = try agent(["backtest"] + inputs + ["--out", name] + settings, in: dir)
            #expect(run.status == 0, "\(run.stderr)")
        }
        for file in ["trades.csv", "equity.csv", "metrics.json"] {
            let a = FileManager.default.contents(atPath: dir.appendingPathComponent("bt-single/\(file)").path)
            #expect(
                a != nil
                    && a == FileManager.default.contents(atPath: dir.appendingPathComponent("bt-daily/\(file)").path))
        }
    }

    /// Bybit's order-book archive as the quotes: daily zips of orderbook.500 messages (snapshots, deltas, a
    /// restart's u=1 snapshot) backtest exactly as the same quotes in CSV; only inputs.csv differs, by the files' names.
    @Test func backtestOnABybitOrderBookArchiveEqualsTheSameQuotesAsCSV() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let sim = try agent(
            [
                "simulate", "--hours", "2", "--seed", "6", "--start", "2026-03-01T23:00:00Z", "--daily",
                "--book-archive", "--out", dir.path,
            ])
        #expect(sim.status == 0, "\(sim.stderr)")
        let zips = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("orderbook").path)
        #expect(zips.sorted() == ["2026-03-01_BTCUSDT_ob500.data.zip", "2026-03-02_BTCUSDT_ob500.data.zip"])
        let settings = [
            "--set", "value_area.rolling_window_minutes=60", "--set", "value_area.warmup_minutes=60",
            "--set", "value_area.min_va_bins=10",
        ]
        for (name, quotes) in [("csv", "quotes"), ("archive", "orderbook")] {
            let run = try agent(
                ["backtest", "--trades", "trades", "--quotes", quotes, "--out", name] + settings, in: dir)
            #expect(run.status == 0, "\(run.stderr)")
            if name == "archive" {
                #expect(run.stderr.contains("Bybit order-book archive orderbook.500.BTCUSDT"), "\(run.stderr)")
            }
        }
        let trades = try String(contentsOf: dir.appendingPathComponent("csv/trades.csv"), encoding: .utf8)
        #expect(trades.split(separator: "\n").count > 1, "the comparison needs round trips")
        for file in ["trades.csv", "fills.csv", "signals.csv", "equity.csv", "metrics.json", "report.html"] {
            let a = FileManager.default.contents(atPath: dir.appendingPathComponent("csv/\(file)").path)
            let b = FileManager.default.contents(atPath: dir.appendingPathComponent("archive/\(file)").path)
            #expect(a != nil && a == b, "\(file) differs")
        }
        func withoutNames(_ run: String) throws -> [String] {
            try String(contentsOf: dir.appendingPathComponent("\(run)/inputs.csv"), encoding: .utf8)
                .split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false) }
                .map { ([$0[0]] + $0[2...4]).joined(separator: ",") }
        }
        #expect(try withoutNames("csv") == withoutNames("archive"))
    }

    @Test func helpListsOnlyWorkingCommands() throws {
        let help = try agent(["--help"])
        #expect(help.status == 0)
        for command in ["features", "backtest", "grid", "simulate", "config"] { #expect(help.stdout.contains(command)) }
    }
}
