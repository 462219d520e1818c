import AgentCLI
import AgentConfig
import AgentSupport
import Daemon
import Engine
import Exchange
import Foundation
import Research
import Simulator
import Testing

/// `flatten-direct` against the simulated venue: a position and a resting order at the "exchange", no agent.
@Suite(.tags(.e2e)) struct FlattenDirectTests {
    @Test func cancelsEverythingAndClosesTheVenuesPosition() throws {
        let sim = try InProcessVenue()
        let client = BybitRESTClient(
            config: BybitRESTConfig(baseURL: "http://127.0.0.1:\(sim.port)"),
            credentials: BybitCredentials(apiKey: "sim-key", apiSecret: "sim-secret"))
        _ = try client.createOrder(
            OrderRequest(
                side: .long, orderType: .market, qty: ScaledDecimal(mantissa: 250, scale: 3), orderLinkId: "manual-1"))
        _ = try client.createOrder(
            OrderRequest(
                side: .long, orderType: .limit, qty: ScaledDecimal(mantissa: 100, scale: 3),
                price: ScaledDecimal(mantissa: 100_000, scale: 1), timeInForce: .gtc, orderLinkId: "manual-2"))
        #expect(try client.positions().contains { $0.size.mantissa > 0 })
        let run = try agent(
            [
                "flatten-direct", "--env", "shadow", "--set", "shadow.rest_url=http://127.0.0.1:\(sim.port)",
                "--state-dir", NSTemporaryDirectory() + "none-\(UUID())", "--socket",
                NSTemporaryDirectory() + "none.sock",
            ],
            environment: ["BYBIT_TESTNET_API_KEY": "sim-key", "BYBIT_TESTNET_API_SECRET": "sim-secret"])
        #expect(run.status == 0, "\(run.stdout) \(run.stderr)")
        #expect(run.stdout.contains("cancelled 1 open order(s)"), "\(run.stdout)")
        #expect(run.stdout.contains("flat confirmed by the exchange"))
        #expect(try client.positions().allSatisfy { $0.size.mantissa == 0 })
        #expect(try client.orders(openOnly: true).isEmpty)
        #expect(!run.stdout.contains("sim-secret") && !run.stderr.contains("sim-secret"))
    }

    @Test func refusesPaperAndMissingKeysAndARunningAgent() throws {
        let paper = try agent(["flatten-direct", "--env", "paper"])
        #expect(paper.status == 1 && paper.stderr.contains("atctl --env paper flatten"), "\(paper.stderr)")
        let keys = try agent(
            ["flatten-direct", "--env", "live", "--socket", NSTemporaryDirectory() + "none.sock"],
            environment: ["BYBIT_API_KEY": "", "BYBIT_API_SECRET": ""])
        #expect(keys.status == 1 && keys.stderr.contains("BYBIT_API_KEY"), "\(keys.stderr)")
        let running = try AgentProcess()
        try running.start(env: "sim", quickSim)
        #expect(running.waitForState("active"))
        let refused = try agent(
            ["flatten-direct", "--env", "shadow", "--socket", running.socket],
            environment: ["BYBIT_TESTNET_API_KEY": "k", "BYBIT_TESTNET_API_SECRET": "s"])
        #expect(refused.status == 1 && refused.stderr.contains("the agent answers"), "\(refused.stderr)")
        #expect(running.terminate() == 0)
    }
}
