import Exchange
import Foundation
import Simulator
import Testing

/// The simulated venue in this process on a loopback port, fed a generated market on a background thread.
final class InProcessVenue: @unchecked Sendable {
    let venue = SimVenue()
    let server: SimHTTPServer
    let driver: SimMarketDriver
    var port: UInt16 { server.port }

    init(speed: Double = 60) throws {
        var market = MarketGeneratorConfig()
        market.hours = 24
        market.startMs = wallClockMillis() - 30 * 60_000
        driver = SimMarketDriver(venue: venue, source: GeneratedMarket(config: market), speed: speed)
        driver.prefill(until: market.startMs + 30 * 60_000)
        server = venue.makeServer()
        try server.start()
        driver.start()
    }

    deinit {
        driver.stop()
        server.stop()
    }

    var settings: [String] { exchangeSettings(port: Int(port)) }
}

/// `--set` overrides pointing every exchange URL at a venue on loopback.
func exchangeSettings(port: Int) -> [String] {
    [
        "--set", "exchange.rest_url=http://127.0.0.1:\(port)", "--set",
        "exchange.public_ws_url=ws://127.0.0.1:\(port)/v5/public/linear",
        "--set", "exchange.private_ws_url=ws://127.0.0.1:\(port)/v5/private",
    ]
}

@Suite(.tags(.e2e), .serialized) struct PreflightTests {
    @Test func preflightPassesAgainstTheSimulator() throws {
        let sim = try InProcessVenue()
        let run = try agent(
            ["preflight", "--env", "backtest", "--json", "--stream-timeout", "30"] + sim.settings,
            environment: ["BYBIT_API_KEY": "sim-key", "BYBIT_API_SECRET": "sim-secret"])
        #expect(run.status == 0, "\(run.stdout) \(run.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as! [String: Any]
        #expect(json["ok"] as? Bool == true)
        let names = (json["checks"] as! [[String: Any]]).map { $0["name"] as! String }
        #expect(
            names == [
                "config", "venue", "keys", "rest", "clock", "instrument", "wallet", "margin mode", "position mode",
                "position", "orders",
                "public stream", "private stream",
            ])
        #expect(!run.stdout.contains("sim-secret"), "the secret is never printed")
    }

    /// Shadow sends its orders to the testnet: preflight checks the testnet's keys and URLs, not the mainnet's.
    @Test func shadowPreflightChecksTheTestnetKeysAndURLs() throws {
        let sim = try InProcessVenue()
        let testnet = [
            "--set", "shadow.rest_url=http://127.0.0.1:\(sim.port)", "--set",
            "shadow.private_ws_url=ws://127.0.0.1:\(sim.port)/v5/private",
            "--set", "exchange.rest_url=http://127.0.0.1:9", "--set",
            "exchange.private_ws_url=ws://127.0.0.1:9/v5/private",
            "--set", "exchange.public_ws_url=ws://127.0.0.1:\(sim.port)/v5/public/linear",
        ]
        // Mainnet keys alone do not make shadow ready.
        let mainnetOnly = try agent(
            ["preflight", "--env", "shadow", "--stream-timeout", "3"] + testnet,
            environment: [
                "BYBIT_API_KEY": "sim-key", "BYBIT_API_SECRET": "sim-secret",
                "BYBIT_TESTNET_API_KEY": "", "BYBIT_TESTNET_API_SECRET": "",
            ])
        #expect(mainnetOnly.status == 1)
        #expect(
            mainnetOnly.stdout.contains("FAIL keys: missing: set BYBIT_TESTNET_API_KEY and BYBIT_TESTNET_API_SECRET"),
            "\(mainnetOnly.stdout)")
        let run = try agent(
            ["preflight", "--env", "shadow", "--stream-timeout", "30"] + testnet,
            environment: ["BYBIT_TESTNET_API_KEY": "sim-key", "BYBIT_TESTNET_API_SECRET": "sim-secret"])
        #expect(run.status == 0, "\(run.stdout) \(run.stderr)")
        #expect(run.stdout.contains("ok   venue: testnet (mode shadow): http://127.0.0.1:\(sim.port)"), "\(run.stdout)")
        #expect(run.stdout.contains("ok   position mode: one-way"))
        #expect(run.stdout.contains("ok   margin mode: cross (REGULAR_MARGIN)"), "\(run.stdout)")
    }

    /// An account in isolated or portfolio margin fails preflight, and live refuses to start on it, naming the
    /// setting and how to change it (the agent trades cross margin only, as the original system does).
    @Test func marginModeOtherThanCrossIsRefused() throws {
        let sim = try InProcessVenue()
        for mode in ["ISOLATED_MARGIN", "PORTFOLIO_MARGIN"] {
            let reply = try CurlTransport().send(
                method: "POST", url: "http://127.0.0.1:\(sim.port)/sim/account", headers: [],
                body: Array(#"{"marginMode":"\#(mode)"}"#.utf8))
            #expect(reply.status == 200)
            let run = try agent(
                ["preflight", "--env", "backtest", "--stream-timeout", "3"] + sim.settings,
                environment: ["BYBIT_API_KEY": "sim-key", "BYBIT_API_SECRET": "sim-secret"])
            #expect(run.status == 1)
            #expect(
                run.stdout.contains("FAIL margin mode: the account's margin mode is")
                    && run.stdout.contains(mode)
                    && run.stdout.contains("set the unified trading account's margin mode to Cross Margin"),
                "\(run.stdout)")
        }
        let dir = NSTemporaryDirectory() + "margin-\(UUID())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let live = try agent(
            ["run", "--env", "live", "--state-dir", dir, "--socket", dir + "/c.sock", "--set", "live.armed=true"]
                + sim.settings,
            environment: ["BYBIT_API_KEY": "sim-key", "BYBIT_API_SECRET": "sim-secret"])
        #expect(live.status == 1)
        #expect(live.stderr.contains("margin mode is Portfolio Margin, PORTFOLIO_MARGIN"), "\(live.stderr)")
    }

    /// Hedge mode and instrument rules that differ from the configuration fail, naming what differs.
    @Test func hedgeModeAndDifferentInstrumentRulesFail() throws {
        let sim = try InProcessVenue()
        let reply = try CurlTransport().send(
            method: "POST", url: "http://127.0.0.1:\(sim.port)/sim/account", headers: [],
            body: Array(#"{"hedgeMode":true}"#.utf8))
        #expect(reply.status == 200)
        let run = try agent(
            ["preflight", "--env", "backtest", "--stream-timeout", "3", "--set", "instrument.tick_size=0.5"]
                + sim.settings,
            environment: ["BYBIT_API_KEY": "sim-key", "BYBIT_API_SECRET": "sim-secret"])
        #expect(run.status == 1)
        #expect(run.stdout.contains("instrument.tick_size: exchange 0.1, configuration 0.5"), "\(run.stdout)")
        #expect(run.stdout.contains("FAIL position mode: the account is in hedge mode"), "\(run.stdout)")
    }

    /// The agent itself refuses to start live when the exchange's rules differ from the configuration.
    @Test func liveRefusesToStartOnDifferentInstrumentRules() throws {
        let sim = try InProcessVenue()
        let dir = NSTemporaryDirectory() + "rules-\(UUID())"
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let run = try agent(
            [
                "run", "--env", "live", "--state-dir", dir, "--socket", dir + "/c.sock", "--set", "live.armed=true",
                "--set", "instrument.qty_step=0.01", "--set", "instrument.min_qty=0.01",
            ] + sim.settings,
            environment: ["BYBIT_API_KEY": "sim-key", "BYBIT_API_SECRET": "sim-secret"])
        #expect(run.status == 1)
        #expect(run.stderr.contains("instrument.qty_step: exchange 0.001, configuration 0.01"), "\(run.stderr)")
    }

    @Test func missingKeysAndBadSecretFailWithReasons() throws {
        let sim = try InProcessVenue()
        let none = try agent(
            ["preflight", "--env", "backtest", "--stream-timeout", "3"] + sim.settings,
            environment: ["BYBIT_API_KEY": "", "BYBIT_API_SECRET": ""])
        #expect(none.status == 1)
        #expect(none.stdout.contains("FAIL keys: missing: set BYBIT_API_KEY and BYBIT_API_SECRET"), "\(none.stdout)")
        let bad = try agent(
            ["preflight", "--env", "backtest", "--stream-timeout", "5"] + sim.settings,
            environment: ["BYBIT_API_KEY": "sim-key", "BYBIT_API_SECRET": "wrong-secret-value"])
        #expect(bad.status == 1)
        #expect(bad.stdout.contains("FAIL wallet: GET /v5/account/wallet-balance: retCode 10004"), "\(bad.stdout)")
        #expect(bad.stdout.contains("FAIL private stream"), "\(bad.stdout)")
        #expect(!bad.stdout.contains("wrong-secret-value") && !bad.stderr.contains("wrong-secret-value"))
    }

    /// `sim-exchange` as its own process: it serves, writes its port, passes preflight, and stops on SIGTERM.
    @Test(.timeLimit(.minutes(2))) func simExchangeProcessServesPreflight() async throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let portFile = dir.appendingPathComponent("port").path
        let process = Process()
        process.executableURL = agentBinary()
        process.arguments = [
            "sim-exchange", "--port", "0", "--port-file", portFile, "--speed", "60", "--warm-minutes", "30",
        ]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { if process.isRunning { kill(process.processIdentifier, SIGKILL) } }
        var port: Int?
        for _ in 0..<600 where port == nil {
            port = (try? String(contentsOfFile: portFile, encoding: .utf8)).flatMap {
                Int($0.trimmingCharacters(in: .whitespacesAndNewlines))
            }
            if port == nil { try await Task.sleep(for: .milliseconds(50)) }
        }
        let p = try #require(port, "sim-exchange never wrote its port")
        let run = try agent(
            ["preflight", "--env", "backtest", "--stream-timeout", "30"] + exchangeSettings(port: p),
            environment: ["BYBIT_API_KEY": "sim-key", "BYBIT_API_SECRET": "sim-secret"])
        #expect(run.status == 0, "\(run.stdout)")
        process.terminate()
        for _ in 0..<200 where process.isRunning { try await Task.sleep(for: .milliseconds(50)) }
        #expect(!process.isRunning, "sim-exchange stops on SIGTERM")
        #expect(process.isRunning || process.terminationStatus == 0)
    }

    @Test func unreachableExchangeFails() throws {
        let run = try agent(
            ["preflight", "--env", "backtest", "--stream-timeout", "1"] + exchangeSettings(port: 9),
            environment: ["BYBIT_API_KEY": "k", "BYBIT_API_SECRET": "s"])
        #expect(run.status == 1)
        #expect(run.stdout.contains("FAIL rest: GET /v5/market/time"), "\(run.stdout)")
        #expect(run.stdout.contains("FAIL public stream: no data within 1 s"))
    }
}
