import AgentConfig
import Engine
import Foundation
import Testing

@Suite(.tags(.unit)) struct VolatilityTests {
    @Test func sigmaIsTheSampleDeviationOfLogReturns() {
        var v = MidReturnVolatility()
        #expect(v.add(midTwiceTicks: 1000) == 0)
        #expect(v.add(midTwiceTicks: 1010) == 0, "one return: 0")
        let s = v.add(midTwiceTicks: 1000)
        let r1 = log(1010.0 / 1000)
        let r2 = log(1000.0 / 1010)
        let mean = (r1 + r2) / 2
        let expected = (((r1 - mean) * (r1 - mean) + (r2 - mean) * (r2 - mean)) / 1).squareRoot()
        #expect(isClose(s, expected))
    }

    @Test func minutesWithoutAQuoteAddNoReturnAndRepeatedMidsAddZero() {
        var v = MidReturnVolatility()
        _ = v.add(midTwiceTicks: nil)
        _ = v.add(midTwiceTicks: 1000)
        _ = v.add(midTwiceTicks: 1000)
        #expect(v.add(midTwiceTicks: 1000) == 0, "two zero returns: sigma 0")
    }

    @Test func onlyTheLast240ReturnsCount() {
        var v = MidReturnVolatility(capacity: 240)
        var mid: Int64 = 1_000_000
        _ = v.add(midTwiceTicks: mid)
        // 240 alternating large returns, then 240 tiny alternating ones: the large ones must be gone.
        for i in 0..<240 {
            mid += i % 2 == 0 ? 10_000 : -10_000
            _ = v.add(midTwiceTicks: mid)
        }
        var last = 0.0
        for i in 0..<240 {
            mid += i % 2 == 0 ? 1 : -1
            last = v.add(midTwiceTicks: mid)
        }
        #expect(last < 2e-6)
        #expect(last > 0)
    }

    @Test func binWidthClampsAndRoundsToTheBase() {
        var config = FeatureConfig.defaults
        config.alphaBin = 0.1
        config.baseBinTicks = 5
        config.binWidthMaxTicks = 500
        let policy = BinWidthPolicy(config: config)
        // 0.1 * 500000 * 0.0005 = 25 ticks → 25.
        #expect(policy.computedTicks(midTicks: 500_000, sigma: 0.0005) == 25)
        // 27.4 → 27 → nearest multiple of 5 is 25; 27.5 → 28 → 30.
        #expect(policy.computedTicks(midTicks: 500_000, sigma: 0.000548) == 25)
        #expect(policy.computedTicks(midTicks: 500_000, sigma: 0.00055) == 30)
        // 12.5 → 13 → 15 (halves of the base go up); 2 → 2 → 0 → at least one base.
        #expect(policy.computedTicks(midTicks: 500_000, sigma: 0.00025) == 15)
        #expect(policy.computedTicks(midTicks: 500_000, sigma: 0.00004) == 5)
        // Sigma 0: clamped up to 1 tick, then one base.
        #expect(policy.computedTicks(midTicks: 500_000, sigma: 0) == 5)
        // Huge: clamped to the maximum.
        #expect(policy.computedTicks(midTicks: 500_000, sigma: 0.5) == 500)
    }

    @Test func rebucketsOnAQuarterChangeOrEveryFifteenMinutes() {
        var config = FeatureConfig.defaults
        config.baseBinTicks = 1
        var policy = BinWidthPolicy(config: config)
        let m1 = t0 + 60_000  // t0 is on the 15-minute schedule, t0 + 1..14 min are not
        #expect(policy.update(minute: m1, computed: 20) == 20, "the first computed width applies")
        #expect(policy.update(minute: m1 + 60_000, computed: 24) == 20, "20 % change: kept")
        #expect(policy.update(minute: m1 + 120_000, computed: 15) == 15, "25 % change: replaced")
        #expect(policy.update(minute: m1 + 180_000, computed: 12) == 15, "20 % change: kept")
        #expect(policy.update(minute: t0 + 15 * 60_000, computed: 12) == 12, "on the 15-minute schedule: replaced")
        #expect(policy.update(minute: t0 + 16 * 60_000, computed: 14) == 12)
    }
}
