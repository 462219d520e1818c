import Engine
import Testing

@Suite(.tags(.unit)) struct ValueAreaTests {
    /// docs/SPEC.md §6 worked check, width 100 (tick 1 for readability: bin index × 100 = price).
    @Test func workedExample() throws {
        let va = try #require(
            ValueArea.compute(bins: [100, 250, 400, 300, 150, 50], firstBin: 498, binTicks: 100, fraction: 0.70)
        )
        #expect(va.valTicks == 49_900)
        #expect(va.vahTicks == 50_200)
        #expect(va.pocTwiceTicks == 2 * 50_050)
        #expect(va.coverage == 0.76)
        #expect(va.binCount == 3)
        #expect(va.profileBins == 6)
        #expect(va.total == 1250)
    }

    @Test func workedExampleInTicksOfBTC() throws {
        // Same profile at tick 0.1: bins of 1000 ticks (100 USDT).
        let va = try #require(
            ValueArea.compute(bins: [100, 250, 400, 300, 150, 50], firstBin: 498, binTicks: 1000, fraction: 0.70)
        )
        #expect(formatNumber(btc.price(va.valTicks)) == "49900")
        #expect(formatNumber(btc.price(va.vahTicks)) == "50200")
        #expect(formatNumber(btc.price(va.pocTwiceTicks, over: 2)) == "50050")
    }

    @Test func pocTiesGoToTheMiddleThenToTheLowerPrice() throws {
        // Peaks at 0 and 3 of 5 bins (middle 2): 3 is nearer.
        let a = try #require(ValueArea.compute(bins: [9, 1, 1, 9, 1], firstBin: 0, binTicks: 1, fraction: 0.1))
        #expect(a.pocTwiceTicks == 7)
        // Peaks at 1 and 3 of 5 bins: equally near the middle → the lower price.
        let b = try #require(ValueArea.compute(bins: [1, 9, 1, 9, 1], firstBin: 0, binTicks: 1, fraction: 0.1))
        #expect(b.pocTwiceTicks == 3)
        // Even count: peaks at 1 and 2 of 4 bins (middle 1.5): equally near → lower.
        let c = try #require(ValueArea.compute(bins: [1, 9, 9, 1], firstBin: 0, binTicks: 1, fraction: 0.1))
        #expect(c.pocTwiceTicks == 3)
    }

    @Test func expansionTiesGoUp() throws {
        let va = try #require(ValueArea.compute(bins: [5, 10, 5], firstBin: 0, binTicks: 1, fraction: 0.7))
        // 10/20 → add above (tie) → 15/20 = 0.75 → stop.
        #expect(va.valTicks == 1 && va.vahTicks == 3)
    }

    @Test func expansionAtAnEdgeTakesTheOtherSide() throws {
        let va = try #require(ValueArea.compute(bins: [50, 30, 10, 10], firstBin: 10, binTicks: 2, fraction: 0.85))
        // POC at the lowest bin; only upward: 50, 80, 90/100 → stop at 0.9.
        #expect(va.valTicks == 20 && va.vahTicks == 26)
        #expect(va.binCount == 3)
    }

    @Test func zeroBinsInsideTheRangeTakePart() throws {
        let va = try #require(ValueArea.compute(bins: [40, 0, 0, 60], firstBin: 0, binTicks: 1, fraction: 0.7))
        // POC bin 3 (60); then below is 0 with nothing above: 0, 0, then 40 → contiguous 0...3.
        #expect(va.valTicks == 0 && va.vahTicks == 4)
        #expect(va.profileBins == 2)
        #expect(va.binCount == 4)
    }

    @Test func coverageExactlyAtTheFractionStops() throws {
        // POC 500, then the heavier neighbour below (375): 875/1250 is exactly 0.7, so 275 is not added.
        let va = try #require(ValueArea.compute(bins: [100, 375, 500, 275], firstBin: 0, binTicks: 1, fraction: 0.7))
        #expect(va.binCount == 2)
        #expect(va.valTicks == 1 && va.vahTicks == 3)
        #expect(va.coverage == 0.7)
    }

    @Test func validityNeedsEnoughBinsWithVolume() throws {
        let few = try #require(
            ValueArea.compute(bins: [Lots](repeating: 1, count: 19), firstBin: 0, binTicks: 1, fraction: 0.7))
        #expect(!few.isValid(minBins: 20))
        let enough = try #require(
            ValueArea.compute(bins: [Lots](repeating: 1, count: 20), firstBin: 0, binTicks: 1, fraction: 0.7))
        #expect(enough.isValid(minBins: 20))
        #expect(ValueArea.compute(bins: [0, 0], firstBin: 0, binTicks: 1, fraction: 0.7) == nil)
        #expect(ValueArea.compute(bins: [], firstBin: 0, binTicks: 1, fraction: 0.7) == nil)
    }

    @Test func histogramAggregatesIntoWiderBins() {
        var h = BaseHistogram()
        h.add(3, at: -1)
        h.add(5, at: 0)
        h.add(7, at: 4)
        h.add(11, at: 9)
        var bins: [Lots] = []
        let first = h.aggregate(binsOf: 4, into: &bins)
        // Keys -1 → bin -1; 0 → 0; 4 → 1; 9 → 2.
        #expect(first == -1)
        #expect(bins == [3, 5, 7, 11])
        let first3 = h.aggregate(binsOf: 3, into: &bins)
        #expect(first3 == -1 && bins == [3, 5, 7, 0, 11])
        let first5 = h.aggregate(binsOf: 5, into: &bins)
        #expect(first5 == -1 && bins == [3, 12, 11])
        h.add(-3, at: -1)
        h.add(-11, at: 9)
        #expect(h.minKey == 0 && h.maxKey == 4 && h.total == 12)
        h.add(-5, at: 0)
        h.add(-7, at: 4)
        #expect(h.total == 0)
        #expect(h.aggregate(binsOf: 1, into: &bins) == 0 && bins.isEmpty)
    }
}
