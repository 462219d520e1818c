/// The value area of a volume profile (docs/SPEC.md §6), in exact integer units.
public struct ValueArea: Sendable, Hashable {
    /// Lower edge of the lowest included bin, in ticks.
    public var valTicks: Ticks
    /// Upper edge of the highest included bin, in ticks.
    public var vahTicks: Ticks
    /// Twice the middle of the POC bin, in ticks (the middle can fall on a half tick).
    public var pocTwiceTicks: Int64
    /// Volume inside the value area, in lots.
    public var covered: Lots
    /// Volume of the whole profile, in lots.
    public var total: Lots
    /// Bins included in the value area.
    public var binCount: Int
    /// Bins with volume in the profile.
    public var profileBins: Int
    /// Bin width in ticks.
    public var binTicks: Int64

    /// `covered / total`.
    public var coverage: Double { total == 0 ? 0 : Double(covered) / Double(total) }

    /// Whether signals may use it: `profile_bins >= min_va_bins` and volume > 0.
    public func isValid(minBins: Int) -> Bool { profileBins >= minBins && total > 0 }

    public init(
        valTicks: Ticks, vahTicks: Ticks, pocTwiceTicks: Int64, covered: Lots, total: Lots, binCount: Int,
        profileBins: Int, binTicks: Int64
    ) {
        self.valTicks = valTicks
        self.vahTicks = vahTicks
        self.pocTwiceTicks = pocTwiceTicks
        self.covered = covered
        self.total = total
        self.binCount = binCount
        self.profileBins = profileBins
        self.binTicks = binTicks
    }

    /// Computes the value area of aggregated bins.
    ///
    /// - Parameters:
    ///   - bins: volume per bin from the lowest to the highest bin with volume; zero bins inside take part.
    ///   - firstBin: index of `bins[0]`; its lower edge is `firstBin * binTicks` ticks.
    ///   - binTicks: bin width in ticks.
    ///   - fraction: share of the volume to cover (`va_fraction`).
    /// - Returns: nil when the profile holds no volume.
    public static func compute(
        bins: UnsafeBufferPointer<Lots>,
        firstBin: Int64,
        binTicks: Int64,
        fraction: Double
    ) -> ValueArea? {
        let n = bins.count
        guard n > 0 else { return nil }
        var total: Lots = 0
        var profileBins = 0
        for v in bins {
            total += v
            if v > 0 { profileBins += 1 }
        }
        guard total > 0 else { return nil }

        // POC: highest volume; ties to the bin nearest the range's middle, then to the lower price.
        // Distance to the middle, doubled to stay in integers: |2i - (n - 1)|.
        var poc = 0
        var pocVolume = bins[0]
        var pocDistance = abs(0 - (n - 1))
        for i in 1..<n {
            let v = bins[i]
            if v < pocVolume { continue }
            let distance = abs(2 * i - (n - 1))
            if v > pocVolume || distance < pocDistance {
                poc = i
                pocVolume = v
                pocDistance = distance
            }
        }

        // Expansion: add the heavier neighbour (ties: the one above) until the coverage is reached.
        var lo = poc
        var hi = poc
        var covered = pocVolume
        while Double(covered) / Double(total) < fraction {
            let canUp = hi + 1 < n
            let canDown = lo > 0
            if canUp && (!canDown || bins[hi + 1] >= bins[lo - 1]) {
                hi += 1
                covered += bins[hi]
            } else if canDown {
                lo -= 1
                covered += bins[lo]
            } else {
                break
            }
        }
        let lowestEdge = firstBin * binTicks
        return ValueArea(
            valTicks: lowestEdge + Int64(lo) * binTicks,
            vahTicks: lowestEdge + Int64(hi + 1) * binTicks,
            pocTwiceTicks: 2 * (lowestEdge + Int64(poc) * binTicks) + binTicks,
            covered: covered,
            total: total,
            binCount: hi - lo + 1,
            profileBins: profileBins,
            binTicks: binTicks
        )
    }

    /// Convenience over an array.
    public static func compute(bins: [Lots], firstBin: Int64, binTicks: Int64, fraction: Double) -> ValueArea? {
        bins.withUnsafeBufferPointer { compute(bins: $0, firstBin: firstBin, binTicks: binTicks, fraction: fraction) }
    }
}
