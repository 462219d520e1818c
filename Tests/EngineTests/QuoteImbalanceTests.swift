import AgentConfig
import Engine
import Foundation
import Testing

@Suite(.tags(.unit)) struct QuoteImbalanceTests {
    @Test func imbalanceIsZeroWhenBothSidesAreEmpty() {
        #expect(QuoteEvent(ts: 0, bidPrice: 1, bidSize: 0, askPrice: 2, askSize: 0).imbalance == 0)
        #expect(QuoteEvent(ts: 0, bidPrice: 1, bidSize: 3, askPrice: 2, askSize: 1).imbalance == 0.5)
        #expect(QuoteEvent(ts: 0, bidPrice: 1, bidSize: 0, askPrice: 2, askSize: 5).imbalance == -1)
    }

    @Test func emaIsAStepFunctionOfTime() {
        var ema = QuoteImbalanceEMA(tauSeconds: 60)
        ema.update(imbalance: 0.5, at: 0)
        #expect(ema.value == 0.5)
        // 30 s later a new quote: the EMA moved towards the previous quote's 0.5 (no change, it is 0.5).
        ema.update(imbalance: -0.5, at: 30_000)
        #expect(ema.value == 0.5)
        // 15 s later: moves towards -0.5 by 1 - exp(-15/60).
        ema.update(imbalance: 1, at: 45_000)
        let afterThird = 0.5 + (1 - exp(-0.25)) * (-0.5 - 0.5)
        #expect(isClose(ema.value, afterThird))
        // Carried to 60 s with 1 held: 15 s more.
        let carried = afterThird + (1 - exp(-0.25)) * (1 - afterThird)
        #expect(isClose(ema.value(at: 60_000)!, carried))
        #expect(ema.value == afterThird, "carrying forward does not change the state")
    }

    @Test func minuteValueIsCarriedToTheMinutesEnd() {
        let rows = run([
            quote(t0, bid: "50000", "3", ask: "50000.1", "1"),  // qimb 0.5
            trade(t0 + 1, "50000", "1"),
            quote(t0 + 30_000, bid: "50000", "1", ask: "50000.1", "3"),  // qimb -0.5
        ])
        let expected = 0.5 + (1 - exp(-30.0 / 60)) * (-0.5 - 0.5)
        #expect(isClose(rows[0].qimbEma!, expected))
        #expect(rows[0].quote?.imbalance == -0.5)
    }

    @Test func spanIsConfigurable() {
        var config = FeatureConfig.defaults
        config.qimbEmaSpanSeconds = 10
        let rows = run(
            [
                quote(t0, bid: "50000", "1", ask: "50000.1", "0"),  // qimb 1
                trade(t0 + 1, "50000", "1"),
                quote(t0 + 50_000, bid: "50000", "0", ask: "50000.1", "1"),  // qimb -1
            ],
            config: config
        )
        let expected = 1 + (1 - exp(-1.0)) * (-1 - 1)
        #expect(isClose(rows[0].qimbEma!, expected))
    }

    /// The weights kept for short gaps are the formula's own values: the EMA is bit for bit the direct computation,
    /// over gaps both shorter and longer than the table.
    @Test func theEMAEqualsTheFormulaBitForBit() {
        let tau = 60.0
        var ema = QuoteImbalanceEMA(tauSeconds: tau)
        var value = 0.0
        var last = 0.0
        var ts: Millis = 1_767_225_600_000
        var random = SystemRandomNumberGenerator()
        for n in 0..<20_000 {
            let imbalance = Double.random(in: -1...1, using: &random)
            let gap = Int64([1, 7, 23, 2_047, 2_048, 2_049, 9_000, Int64.random(in: 1...3_000, using: &random)][n % 8])
            ts += gap
            if n == 0 {
                value = imbalance
            } else {
                value += -expm1(-(Double(gap) / 1000) / tau) * (last - value)
            }
            last = imbalance
            ema.update(imbalance: imbalance, at: ts)
            #expect(ema.value.bitPattern == value.bitPattern)
        }
        // Copies compare by state, not by the table they carry.
        #expect(QuoteImbalanceEMA(tauSeconds: tau) == QuoteImbalanceEMA(tauSeconds: tau))
    }
}
