import Daemon
import Engine
import Foundation
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
}
