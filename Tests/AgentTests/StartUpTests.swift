import Foundation
import Testing

@testable import AgentConfig
@testable import Daemon

/// The daemon's start as named steps (docs/DESIGN.md, "Start-up"): the steps that decide something without I/O, and
/// the helper that keeps blocking work off the cooperative pool.
@Suite(.tags(.unit)) struct StartUpTests {
    struct NotStarted: Error {}

    func settings(_ mode: String, _ overrides: [String] = []) throws -> AgentConfiguration {
        let resolved = try ConfigLoader.load(
            ConfigSelection(
                environment: mode, directory: packageRoot.appendingPathComponent("config/environments").path,
                overrides: ["agent.mode=\(mode)"] + overrides))
        return AgentConfiguration(resolved, environment: mode)
    }

    @Test func paperUsesTheConfiguredURLsAndNeverStartsTheSimulator() throws {
        let s = try settings("paper")
        let e = try MarketEndpoints.resolve(s) { throw NotStarted() }
        #expect(e.publicURL == s.exchange.publicStreamURL && e.marketREST == s.exchange.account.restURL)
        #expect(e.simulator == nil)
    }

    @Test func aURLSetToSimStartsTheSimulator() throws {
        let s = try settings("shadow", ["shadow.rest_url=sim"])
        #expect(throws: NotStarted.self) { _ = try MarketEndpoints.resolve(s) { throw NotStarted() } }
    }

    @Test func theSimulatorReplacesWhatSaysSimOrEverythingInModeSim() throws {
        var shadow = MarketEndpoints(
            publicURL: "wss://stream.bybit.com/v5/public/linear", marketREST: "https://api.bybit.com",
            venueREST: "sim", venuePrivate: "sim", clock: .realTime(), simulator: nil)
        shadow.apply(simulatorPort: 4321, publicURL: "ws://127.0.0.1:4321/v5/public/linear", simOnly: false)
        #expect(shadow.publicURL == "wss://stream.bybit.com/v5/public/linear", "the real market stays")
        #expect(shadow.venueREST == "http://127.0.0.1:4321" && shadow.venuePrivate == "ws://127.0.0.1:4321/v5/private")
        var sim = MarketEndpoints(
            publicURL: "wss://stream.bybit.com/v5/public/linear", marketREST: "https://api.bybit.com",
            venueREST: "https://api.bybit.com", venuePrivate: "wss://stream.bybit.com/v5/private", clock: .realTime(),
            simulator: nil)
        sim.apply(simulatorPort: 4321, publicURL: "ws://127.0.0.1:4321/v5/public/linear", simOnly: true)
        #expect(sim.publicURL == "ws://127.0.0.1:4321/v5/public/linear" && sim.marketREST == "http://127.0.0.1:4321")
    }

    /// Four blocking bodies at once all get to run together: each has a thread of its own, where on the cooperative
    /// pool (as wide as the machine's cores) they would wait for one another.
    @Test func blockingWorkRunsOnAThreadOfItsOwnAndCarriesItsErrors() async throws {
        let arrived = DispatchSemaphore(value: 0)
        let released = DispatchSemaphore(value: 0)
        let n = max(4, ProcessInfo.processInfo.activeProcessorCount + 2)
        let together = try await withThrowingTaskGroup(of: Bool.self) { group in
            for _ in 0..<n {
                group.addTask {
                    try await offPool("start-step") {
                        arrived.signal()
                        return released.wait(timeout: .now() + 30) == .success
                    }
                }
            }
            // Released only once every body is running.
            for _ in 0..<n { arrived.wait() }
            for _ in 0..<n { released.signal() }
            return try await group.reduce(true) { $0 && $1 }
        }
        #expect(together)
        struct Refused: Error {}
        await #expect(throws: Refused.self) { try await offPool("start-step") { throw Refused() } }
    }
}
