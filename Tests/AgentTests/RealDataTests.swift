import ControlProtocol
import Daemon
import Engine
import Foundation
import GRDB
import MarketData
import Testing

/// Real market data for research (docs/FEATURES.md, "Recording the market"): what an agent stored, exported as daily
/// files, backtests exactly as the files it came from; gaps are listed and reported.
@Suite(.tags(.e2e)) struct RealDataTests {
    static let settings = [
        "--set", "value_area.rolling_window_minutes=60", "--set", "value_area.warmup_minutes=60",
        "--set", "value_area.min_va_bins=10",
    ]

    static let configDir = packageRoot.appendingPathComponent("config/environments").path

    @Test func exportOfAStoreBacktestsAsTheFilesItCameFromAndListsItsGaps() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let sim = try agent(
            ["simulate", "--hours", "3", "--seed", "12", "--start", "2026-02-01T22:30:00Z", "--out", "sim"], in: dir)
        #expect(sim.status == 0, "\(sim.stderr)")
        // The agent's store, filled as a running agent fills it (the raw tables), and one stream gap it recorded.
        let fill = try agent(
            [
                "backfill", "--env", "paper", "--config-dir", Self.configDir, "--state-dir", "state", "--trades",
                "sim/trades.csv", "--quotes",
                "sim/quotes.csv",
            ], in: dir)
        #expect(fill.status == 0, "\(fill.stderr)")
        let gapFrom = try #require(TimeRange.parseTime("2026-02-01T23:10:00Z"))
        do {
            let store = try AgentStore(directory: dir.appendingPathComponent("state").path, instrument: .btcusdt)
            var batch = StoreBatch()
            batch.gaps.append(GapRow(wallTs: gapFrom, fromTs: gapFrom, toTs: gapFrom + 95_000))
            try store.record(batch)
        }
        let export = try agent(
            ["export", "--env", "paper", "--config-dir", Self.configDir, "--state-dir", "state", "--out", "exported"],
            in: dir)
        #expect(export.status == 0, "\(export.stderr)")
        #expect(export.stderr.contains("into 4 files"), "\(export.stderr)")
        let names = try FileManager.default.contentsOfDirectory(atPath: dir.appendingPathComponent("exported").path)
        #expect(
            names.sorted() == [
                "BTCUSDT2026-02-01.csv.gz", "BTCUSDT2026-02-02.csv.gz", "gaps.csv", "quotes-2026-02-01.csv.gz",
                "quotes-2026-02-02.csv.gz",
            ])
        let gaps = try String(contentsOf: dir.appendingPathComponent("exported/gaps.csv"), encoding: .utf8)
        #expect(
            gaps == "from,to,cause\n2026-02-01T23:10:00.000Z,2026-02-01T23:11:35.000Z,public stream gap (agent)\n")
        for (name, inputs) in [
            ("bt-files", ["--trades", "sim/trades.csv", "--quotes", "sim/quotes.csv"]),
            ("bt-exported", ["--trades", "exported", "--quotes", "exported"]),
        ] {
            let run = try agent(["backtest"] + inputs + ["--out", name] + Self.settings, in: dir)
            #expect(run.status == 0, "\(run.stderr)")
            if name == "bt-exported" {
                #expect(
                    run.stderr.contains(
                        "gaps: 1 in the range (gaps.csv), 1.6 minutes in all; the longest 1.6 min from "
                            + "2026-02-01T23:10:00.000Z (public stream gap (agent))"), "\(run.stderr)")
            }
        }
        for file in ["trades.csv", "fills.csv", "signals.csv", "equity.csv", "metrics.json"] {
            let a = FileManager.default.contents(atPath: dir.appendingPathComponent("bt-files/\(file)").path)
            #expect(
                a != nil
                    && a
                        == FileManager.default.contents(atPath: dir.appendingPathComponent("bt-exported/\(file)").path),
                "\(file) differs")
        }
        // A range: the gap outside it is not reported; the features run reports the same way.
        let features = try agent(
            [
                "features", "--trades", "exported", "--quotes", "exported", "--from", "2026-02-02", "--out",
                "f.csv",
            ] + Self.settings, in: dir)
        #expect(features.status == 0, "\(features.stderr)")
        #expect(features.stderr.contains("gaps: none listed in gaps.csv"), "\(features.stderr)")
        // Exporting again into the same directory touches nothing.
        let before = FileManager.default.contents(atPath: dir.appendingPathComponent("exported/gaps.csv").path)
        let again = try agent(
            ["export", "--env", "paper", "--config-dir", Self.configDir, "--state-dir", "state", "--out", "exported"],
            in: dir)
        #expect(again.status != 0 && again.stderr.contains("exists; export writes new files only"), "\(again.stderr)")
        #expect(FileManager.default.contents(atPath: dir.appendingPathComponent("exported/gaps.csv").path) == before)
    }

    /// Paper = backtest (docs/FEATURES.md, "Replay"): a sim agent trades some hours of market time, is killed with
    /// kill -9 and restarted, paused and resumed by the operator; `replay` of its store runs the kernel on the same
    /// trades and quotes and finds every signal and order the same, or explained. A decision changed in the store
    /// afterwards is an unexplained difference, and the replay says so.
    @Test func replayOfAPaperAgentFindsNoUnexplainedDifference() throws {
        let settings =
            quickSim + [
                "--set", "agent.raw_retention_hours=0", "--set", "risk.max_hold_minutes=5", "--set",
                "risk.extend_if_profitable=false", "--set", "sim.speed=120",
            ]
        let first = try AgentProcess()
        try first.start(env: "sim", settings)
        #expect(first.wait { (first.status()?.pnl.roundTrips ?? 0) >= 1 }, "\(first.log.suffix(3_000))")
        first.kill9()
        let again = try AgentProcess(directory: first.directory)
        try again.start(env: "sim", settings)
        #expect(again.waitForState("active"), "\(again.log.suffix(2_000))")
        #expect(try again.ctl(["pause"]).status == 0)
        #expect(try again.ctl(["resume"]).status == 0)
        #expect(again.wait(seconds: 150) { (again.status()?.pnl.roundTrips ?? 0) >= 2 }, "\(again.log.suffix(3_000))")
        #expect(again.terminate() == 0)

        let replay = try agent(
            ["replay", "--env", "sim", "--config-dir", Self.configDir, "--state-dir", first.stateDir, "--out", "out"],
            in: first.directory)
        #expect(replay.status == 0, "\(replay.stdout) \(replay.stderr)")
        #expect(replay.stdout.contains("unexplained") == false || replay.stdout.contains(", 0 unexplained"))
        let csv = try String(contentsOf: first.directory.appendingPathComponent("out/replay.csv"), encoding: .utf8)
        let rows = csv.split(separator: "\n").dropFirst()
        #expect(rows.allSatisfy { !$0.hasSuffix(",") }, "every difference has a cause: \(csv)")
        let store = try AgentStore(directory: first.stateDir, instrument: .btcusdt)
        let orders = try store.orders()
        #expect(orders.filter { $0.intent.purpose.isEntry }.count >= 2, "the replay compared real trading")
        let compared = try #require(replay.stdout.firstMatch(of: /: ([0-9,]+) minutes and ([0-9,]+) orders/))
        #expect(Int(compared.2.replacing(",", with: ""))! >= orders.count - 2)

        // The same market from the files `export` writes.
        let export = try agent(
            [
                "export", "--env", "sim", "--config-dir", Self.configDir, "--state-dir", first.stateDir, "--out",
                "files",
            ],
            in: first.directory)
        #expect(export.status == 0, "\(export.stderr)")
        let fromFiles = try agent(
            [
                "replay", "--env", "sim", "--config-dir", Self.configDir, "--state-dir", first.stateDir, "--data",
                "files", "--out", "out-files",
            ], in: first.directory)
        // Files keep time order, not the agent's arrival order: they agree exactly when nothing arrived late.
        if !replay.stdout.contains("arrived after the agent's clock") {
            #expect(fromFiles.status == 0, "\(fromFiles.stdout) \(fromFiles.stderr)")
            #expect(fromFiles.stdout.contains("agree exactly"), "\(fromFiles.stdout) vs \(replay.stdout)")
        }

        // From a time after the restart: the replay starts at the restart and compares from then on.
        let later = try #require(try store.runLog().last { $0.cause == "start" }).marketTs + 20 * 60_000
        let part = try agent(
            [
                "replay", "--env", "sim", "--config-dir", Self.configDir, "--state-dir", first.stateDir, "--from",
                "\(later)", "--out", "out-part",
            ], in: first.directory)
        #expect(
            part.status == 0,
            "\(part.stdout) \(part.stderr) \((try? String(contentsOf: first.directory.appendingPathComponent("out-part/replay.csv"), encoding: .utf8)) ?? "")"
        )
        #expect(part.stdout.contains("compared from \(isoTime(later))"), "\(part.stdout)")

        // A decision the agent never made: the replay finds it and has no cause for it.
        let runs = try store.runLog()
        let signals = try store.signals(from: runs[1].marketTs + 10 * 60_000, to: .max)
        let changed = try #require(signals.first { $0.action == "HOLD" })
        let db = try DatabaseQueue(path: store.path)
        try db.write { try $0.execute(sql: "UPDATE signals SET action = 'BUY' WHERE ts = ?", arguments: [changed.ts]) }
        let tampered = try agent(
            ["replay", "--env", "sim", "--config-dir", Self.configDir, "--state-dir", first.stateDir, "--out", "out2"],
            in: first.directory)
        #expect(tampered.status == 1, "\(tampered.stdout) \(tampered.stderr)")
        #expect(
            tampered.stdout.contains(", 1 unexplained"),
            "\(tampered.stdout) \((try? String(contentsOf: first.directory.appendingPathComponent("out2/replay.csv"), encoding: .utf8)) ?? "")"
        )
        let diff = try String(contentsOf: first.directory.appendingPathComponent("out2/replay.csv"), encoding: .utf8)
        #expect(
            diff.contains(
                "\(isoTime(changed.ts, milliseconds: true)),signal,BUY \(changed.reason),HOLD \(changed.reason),\n"),
            "\(diff)")

        // Raw data purged under the window the agent started with: the replay says so instead of comparing.
        _ = try store.purgeRaw(before: runs[0].marketTs + 60_000)
        let purged = try agent(
            ["replay", "--env", "sim", "--config-dir", Self.configDir, "--state-dir", first.stateDir, "--out", "out3"],
            in: first.directory)
        #expect(purged.status != 0 && purged.stderr.contains("was purged"), "\(purged.stdout) \(purged.stderr)")
    }

    /// `record` against the simulator replaying a known market, killed with kill -9 twice and restarted: every
    /// recorded trade is the replayed trade its exchange id names, none is written twice, every replayed trade it
    /// lacks lies in a listed gap, the files rotate at midnight, and a backtest over them reports the gaps.
    @Test func recordSurvivesKillNineWithoutLosingOrRepeatingATrade() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let sim = try agent(
            ["simulate", "--hours", "1.5", "--seed", "21", "--start", "2026-01-01T23:15:00Z", "--out", "sim"], in: dir)
        #expect(sim.status == 0, "\(sim.stderr)")
        let replayed = try readTrades(path: dir.appendingPathComponent("sim/trades.csv").path, instrument: .btcusdt)
            .trades
        let exchange = Background(
            [
                "sim-exchange", "--port", "0", "--port-file", "port", "--speed", "120", "--warm-minutes", "5",
                "--replay-trades", "sim/trades.csv", "--replay-quotes", "sim/quotes.csv",
            ], in: dir, log: "sim.log")
        try exchange.start()
        defer { exchange.stop(SIGKILL) }
        let portFile = dir.appendingPathComponent("port").path
        #expect(poll(seconds: 60) { FileManager.default.fileExists(atPath: portFile) })
        let port = try String(contentsOfFile: portFile, encoding: .utf8).trimmingCharacters(in: .whitespacesAndNewlines)
        let out = dir.appendingPathComponent("out")
        func recorder() -> Background {
            Background(
                [
                    "record", "--env", "paper", "--config-dir", Self.configDir, "--set",
                    "exchange.public_ws_url=ws://127.0.0.1:\(port)/v5/public/linear", "--out", "out",
                    "--flush-seconds", "1",
                ], in: dir, log: "record.log")
        }
        func recordedBytes() -> Int {
            let names = (try? FileManager.default.contentsOfDirectory(atPath: out.path)) ?? []
            return names.filter { $0.hasPrefix("BTCUSDT") }.reduce(0) {
                $0
                    + ((try? FileManager.default.attributesOfItem(atPath: out.appendingPathComponent($1).path)[.size]
                        as? Int) ?? 0)
            }
        }
        func gapLines() -> Int {
            let text = (try? String(contentsOf: out.appendingPathComponent("gaps.csv"), encoding: .utf8)) ?? ""
            return max(0, text.split(separator: "\n").count - 1)
        }
        // Twice: record until something is on disk, kill -9, start again (the second start finds the first's gap).
        for round in 0..<2 {
            let r = recorder()
            try r.start()
            let before = recordedBytes()
            #expect(
                poll(seconds: 90, giveUp: { !r.isRunning }) { gapLines() >= round && recordedBytes() > before + 20_000 }
            )
            r.stop(SIGKILL)
        }
        let last = recorder()
        try last.start()
        // Until the replay's last trade is recorded (the limit only bounds a failure).
        let end = replayed.last!.ts
        #expect(
            poll(seconds: 180, every: 0.5, giveUp: { !last.isRunning }) {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: out.path)) ?? []
                guard let newest = names.filter({ $0.hasPrefix("BTCUSDT") }).max(),
                    let bytes = try? readFileBytes(out.appendingPathComponent(newest).path),
                    let line = String(decoding: bytes, as: UTF8.self).split(separator: "\n").last,
                    let seconds = Double(line.prefix { $0 != "," })
                else { return false }
                return Int64((seconds * 1000).rounded()) == end
            })
        #expect(last.stop(SIGTERM) == 0, "\(last.output)")

        let files = try RecordedInputs.expand([out.path], what: "--trades")
        #expect(
            files.map { ($0 as NSString).lastPathComponent } == [
                "BTCUSDT2026-01-01.csv.gz", "BTCUSDT2026-01-02.csv.gz",
            ])
        var ids: [String] = []
        for f in files {
            let text = String(decoding: try readFileBytes(f), as: UTF8.self)
            for line in text.split(separator: "\n").dropFirst() {
                ids.append(String(line.split(separator: ",", omittingEmptySubsequences: false)[6]))
            }
        }
        var series = try RecordedSeries.trades(
            files, instrument: .btcusdt, options: ReadOptions(expectedSymbol: "BTCUSDT"))
        let recorded = try series.readAll()
        #expect(recorded.count == ids.count && !recorded.isEmpty)
        #expect(Set(ids).count == ids.count, "a trade was written twice")
        // The simulator's n-th trade has id simTradeId(n): the recorded trade must be that replayed trade.
        var seen = Set<Int>()
        for (t, id) in zip(recorded, ids) {
            let seq = try #require(Int(id.split(separator: "-").last!), "\(id)")
            #expect(replayed[seq - 1] == t, "\(id) is not the replayed trade")
            seen.insert(seq - 1)
        }
        let gaps = try GapsFile.read(out.appendingPathComponent("gaps.csv").path)
        #expect(gaps.count >= 2 && gaps.filter { $0.cause == "recorder not running" }.count == 2, "\(gaps)")
        let first = recorded.first!.ts
        let missed = replayed.indices.filter { replayed[$0].ts >= first && !seen.contains($0) }
        for i in missed {
            let ts = replayed[i].ts
            #expect(gaps.contains { $0.from <= ts && ts <= $0.to }, "trade \(i) at \(ts) lost outside a listed gap")
        }
        let backtest = try agent(
            ["backtest", "--trades", "out", "--quotes", "out", "--out", "bt"] + Self.settings, in: dir)
        #expect(backtest.status == 0, "\(backtest.stderr)")
        #expect(backtest.stderr.contains("gaps: \(gaps.count) in the range (gaps.csv)"), "\(backtest.stderr)")
    }
}

/// A command of `auction-agent` in the background, its output in a log file.
final class Background: @unchecked Sendable {
    let process = Process()
    let logPath: String

    init(_ arguments: [String], in directory: URL, log: String) {
        process.executableURL = agentBinary()
        process.arguments = arguments
        process.currentDirectoryURL = directory
        var environment = ProcessInfo.processInfo.environment
        environment.removeValue(forKey: "AUCTION_CONFIG_DIR")
        environment.removeValue(forKey: "JOURNAL_STREAM")
        process.environment = environment
        logPath = directory.appendingPathComponent(log).path
    }

    func start() throws {
        if !FileManager.default.fileExists(atPath: logPath) {
            _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        }
        let log = try FileHandle(forWritingTo: URL(fileURLWithPath: logPath))
        log.seekToEndOfFile()
        process.standardOutput = log
        process.standardError = log
        try process.run()
    }

    var isRunning: Bool { process.isRunning }
    var output: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }

    @discardableResult
    func stop(_ signal: Int32) -> Int32 {
        if process.isRunning { kill(process.processIdentifier, signal) }
        process.waitUntilExit()
        return process.terminationStatus
    }
}
