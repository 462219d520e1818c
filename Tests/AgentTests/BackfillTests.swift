import ControlProtocol
import Engine
import Exchange
import Foundation
import Testing

@testable import AgentCLI
@testable import AgentConfig
@testable import AgentSupport
@testable import Daemon
@testable import Research

/// `auction-agent backfill`: recorded files into an environment's store; the next start is exact.
@Suite(.tags(.e2e), .serialized) struct BackfillTests {
    /// A recorded span ending `endBeforeNow` before now, as simulate writes it (trades gzipped, as Bybit's dumps are).
    static func recorded(hours: Double, endBeforeNowMinutes: Int64, in dir: URL) throws -> (
        trades: String, quotes: String
    ) {
        let end = minuteStart(of: wallClockMillis()) - endBeforeNowMinutes * millisPerMinute
        let start = end - Int64(hours * 60) * millisPerMinute
        let out = dir.appendingPathComponent("market").path
        let sim = try agent([
            "simulate", "--hours", "\(hours)", "--seed", "11", "--start",
            ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: Double(start) / 1000)), "--out", out,
        ])
        #expect(sim.status == 0, "\(sim.stderr)")
        let gz = try runProcess("/usr/bin/gzip", ["-f", out + "/trades.csv"])
        #expect(gz.status == 0, "\(gz.stderr)")
        return (out + "/trades.csv.gz", out + "/quotes.csv")
    }

    @Test func aBackfilledSpanGivesTheFeaturesOfTheFilesAndTheAgentIsLockedOut() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
            "backfill-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: dir) }
        // A one-hour window over 1.5 hours of data: the window fills, slides and rebuckets, quickly.
        let window = [
            "--set", "value_area.rolling_window_minutes=60", "--set", "value_area.warmup_minutes=60", "--set",
            "value_area.min_va_bins=10",
        ]
        let files = try Self.recorded(hours: 1.5, endBeforeNowMinutes: 30, in: dir)
        let featuresPath = dir.appendingPathComponent("features.csv").path
        let features = try agent(
            ["features", "--env", "paper", "--trades", files.trades, "--quotes", files.quotes, "--out", featuresPath]
                + window)
        #expect(features.status == 0, "\(features.stderr)")

        let agentProcess = try AgentProcess(directory: dir)
        let imported = try agent(
            [
                "backfill", "--env", "paper", "--state-dir", agentProcess.stateDir, "--trades", files.trades,
                "--quotes", files.quotes,
            ] + window)
        #expect(imported.status == 0, "\(imported.stderr)")
        #expect(
            imported.stdout.contains("trades.csv.gz:") && imported.stdout.contains(" minutes before now")
                && imported.stdout.contains("from the exchange's klines"), "\(imported.stdout)")

        // The agent: no market stream, no warm start, so the stored data is all it has.
        try agentProcess.start(
            env: "paper",
            ["--set", "exchange.public_ws_url=ws://127.0.0.1:9/v5/public/linear", "--set", "agent.warm_start=off"]
                + window)
        #expect(agentProcess.waitForState("observing", seconds: 60), "\(agentProcess.log.suffix(2_000))")
        // While it runs, its state directory is locked.
        let refused = try agent([
            "backfill", "--env", "paper", "--state-dir", agentProcess.stateDir, "--trades", files.trades,
        ])
        #expect(refused.status != 0)
        #expect(
            refused.stderr.contains("is in use (auction-agent run --env paper pid")
                && refused.stderr.contains("stop the agent first"),
            "\(refused.stderr)")
        #expect(agentProcess.terminate() == 0)

        // Every minute of the files has the row `features` wrote, byte for byte.
        let expected = try String(contentsOfFile: featuresPath, encoding: .utf8).split(separator: "\n").dropFirst().map(
            String.init)
        let store = try AgentStore(directory: agentProcess.stateDir, instrument: .btcusdt)
        let firstTs = try #require(Int64(expected.first?.split(separator: ",").first ?? ""))
        let stored = try store.featureRows(from: firstTs).prefix(expected.count)
        #expect(stored.count == expected.count)
        let mismatches = zip(stored.map(\.row), expected).enumerated().filter { $0.element.0 != $0.element.1 }
        #expect(
            mismatches.isEmpty,
            "first differing minute: \(mismatches.first.map { "\($0.element.0)\nvs\n\($0.element.1)" } ?? "")")
        #expect(stored.allSatisfy { $0.source == "trades" })
    }

    @Test func badInputIsNamedAndNothingIsImported() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent(
            "backfill-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: dir) }
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let state = dir.appendingPathComponent("state").path
        let now = wallClockMillis() - 3_600_000
        let good = dir.appendingPathComponent("good.csv").path
        try "timestamp,symbol,side,size,price\n\(now),BTCUSDT,Buy,0.01,50000\n\(now + 1000),BTCUSDT,Sell,0.02,50000.5\n"
            .write(toFile: good, atomically: true, encoding: .utf8)
        let bad = dir.appendingPathComponent("bad.csv").path
        try
            "timestamp,symbol,side,size,price\n\(now + 5000),BTCUSDT,Buy,0.01,50000\n\(now + 6000),BTCUSDT,Buy,zero,50000\n"
            .write(toFile: bad, atomically: true, encoding: .utf8)
        let run = try agent(["backfill", "--env", "paper", "--state-dir", state, "--trades", good, bad])
        #expect(run.status != 0)
        #expect(run.stderr.contains("bad.csv:3:") && run.stderr.contains("size"), "\(run.stderr)")
        #expect(
            !FileManager.default.fileExists(atPath: state + "/agent.sqlite"),
            "nothing is written before every file is read")

        let other = dir.appendingPathComponent("eth.csv").path
        try "timestamp,symbol,side,size,price\n\(now),ETHUSDT,Buy,0.01,3000\n".write(
            toFile: other, atomically: true, encoding: .utf8)
        let wrongSymbol = try agent(["backfill", "--env", "paper", "--state-dir", state, "--trades", other])
        #expect(
            wrongSymbol.stderr.contains("eth.csv:2:") && wrongSymbol.stderr.contains("ETHUSDT"), "\(wrongSymbol.stderr)"
        )

        let overlap = try agent(["backfill", "--env", "paper", "--state-dir", state, "--trades", good, good])
        #expect(overlap.status != 0 && overlap.stderr.contains("overlap"), "\(overlap.stderr)")

        // Imported twice: the second replaces the first, nothing is counted twice.
        #expect(try agent(["backfill", "--env", "paper", "--state-dir", state, "--trades", good]).status == 0)
        let again = try agent(["backfill", "--env", "paper", "--state-dir", state, "--trades", good])
        #expect(again.stdout.contains("2 trades") && again.stdout.contains("replacing 2 stored"), "\(again.stdout)")
        let store = try AgentStore(directory: state, instrument: .btcusdt)
        #expect(try store.count("trades") == 2)
    }
}
