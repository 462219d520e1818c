import AgentConfig
import Engine
import Foundation
import MarketData
import Research
import Testing

@Suite(.tags(.integration)) struct SpilledBacktestTests {
    /// `backtest` writes each minute's records out as it goes; its files are the bytes the in-memory run writes.
    @Test func aRunWrittenAsItGoesWritesTheBytesOfOneHeldInMemory() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        // Two hours of the default market: about 500 000 events, two batches of the spilled run.
        let sim = try agent([
            "simulate", "--hours", "2", "--seed", "6", "--start", "2026-03-01T23:00:00Z", "--out", dir.path,
        ])
        #expect(sim.status == 0, "\(sim.stderr)")
        let tradesFile = dir.appendingPathComponent("trades.csv").path
        let quotesFile = dir.appendingPathComponent("quotes.csv").path
        // A one-hour value area, so that two hours trade.
        let config = try ConfigLoader.load(
            ConfigSelection(
                environment: "backtest",
                overrides: [
                    "value_area.rolling_window_minutes=60", "value_area.warmup_minutes=60", "value_area.min_va_bins=10",
                ]))
        let i = config.instrument

        let held = dir.appendingPathComponent("held").path
        let trades = try readTrades(path: tradesFile, instrument: i).trades
        let quotes = try readQuotes(path: quotesFile, instrument: i).quotes
        let inMemory = runBacktest(
            trades: trades, quotes: quotes, features: config.features, strategy: config.strategy, instrument: i,
            keepProfiles: true)
        try writeBacktest(
            inMemory, to: held, instrument: i, initialEquity: config.strategy.initialEquity, title: "run")

        let spilled = dir.appendingPathComponent("spilled").path
        var market = RecordedMarket(
            trades: try .trades([tradesFile], instrument: i), quotes: try .quotes([quotesFile], instrument: i))
        let spill = try BacktestSpill(
            directory: spilled, instrument: i, initialEquity: config.strategy.initialEquity, profiles: true,
            keepFeatures: true)
        let result = try runSpilledBacktest(
            market: &market, features: config.features, strategy: config.strategy, instrument: i, spill: spill)
        try writeSpilledBacktest(result, spill: spill, to: spilled, instrument: i, title: "run")

        #expect(inMemory.roundTrips.count > 0, "the market trades, so the trades and fills are compared too")
        #expect(result.metrics == inMemory.metrics)
        #expect(spill.keptFeatures == inMemory.features)
        for name in ["trades.csv", "fills.csv", "signals.csv", "equity.csv", "metrics.json", "report.html"] {
            let a = FileManager.default.contents(atPath: "\(held)/\(name)")
            let b = FileManager.default.contents(atPath: "\(spilled)/\(name)")
            #expect(a != nil && a == b, "\(name)")
        }
        // The report's parts were temporary.
        #expect(try FileManager.default.contentsOfDirectory(atPath: spilled).allSatisfy { !$0.hasPrefix(".") })
    }
}
