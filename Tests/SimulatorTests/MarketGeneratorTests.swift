import AgentConfig
import Engine
import Simulator
import Testing

@Suite(.tags(.unit)) struct MarketGeneratorTests {
    func market(seed: UInt64, hours: Double = 1) -> (trades: [TradeEvent], quotes: [QuoteEvent]) {
        var config = MarketGeneratorConfig()
        config.seed = seed
        config.hours = hours
        var g = MarketGenerator(config: config)
        return g.generateAll()
    }

    @Test func sameSeedSameMarket() {
        let a = market(seed: 9)
        let b = market(seed: 9)
        #expect(a.trades == b.trades && a.quotes == b.quotes)
        #expect(market(seed: 10).trades != a.trades)
    }

    @Test func densityAndMicrostructureAreRealistic() {
        let (trades, quotes) = market(seed: 3, hours: 2)
        let seconds = 2.0 * 3600
        // About 20 trades and 50 quotes a second.
        #expect(abs(Double(trades.count) / seconds - 20) < 3)
        #expect(abs(Double(quotes.count) / seconds - 50) < 3)
        // One-tick spreads mostly, wider at times.
        let oneTick = quotes.filter { $0.askPrice - $0.bidPrice == 1 }.count
        #expect(Double(oneTick) / Double(quotes.count) > 0.8)
        #expect(quotes.contains { $0.askPrice - $0.bidPrice >= 3 })
        // Split fills: several trades at one timestamp.
        var sameTs = 0
        for i in trades.indices.dropFirst() where trades[i].ts == trades[i - 1].ts { sameTs += 1 }
        #expect(sameTs > trades.count / 10)
        // Both sides trade; time never goes back; quotes are never crossed.
        #expect(trades.contains { $0.side == .buy } && trades.contains { $0.side == .sell })
        #expect(zip(trades, trades.dropFirst()).allSatisfy { $0.ts <= $1.ts })
        #expect(zip(quotes, quotes.dropFirst()).allSatisfy { $0.ts <= $1.ts })
        #expect(quotes.allSatisfy { $0.bidPrice < $0.askPrice && $0.bidSize > 0 && $0.askSize > 0 })
    }

    @Test func someTradesPrintInsideTheSpread() {
        let (trades, quotes) = market(seed: 5, hours: 3)
        var pipeline = FeaturePipeline(config: FeatureConfig.defaults)
        mergeEvents(trades: trades, quotes: quotes) { pipeline.process($0) }
        pipeline.finish()
        let flow = pipeline.runOrderFlow
        #expect(flow.ambiguousVolume > 0)
        #expect(flow.inferenceAccuracy! > 0.7 && flow.inferenceAccuracy! < 1)
    }
}
