/// The rolling window's volume per price bin at a minute's close: the bins the value area is computed on
/// (docs/SPEC.md §5–§6), at the bin width applied then. Bin `i` holds the trades priced in
/// `[lowTicks(i), lowTicks(i) + binTicks)`. What the dashboard's volume profile draws.
public struct VolumeProfile: Sendable, Hashable {
    /// The lowest bin's index at this width (`floor(price / binTicks)`).
    public var firstBin: Int64
    /// Bin width in ticks.
    public var binTicks: Int64
    /// Volume per bin, lowest price first.
    public var volumes: [Lots]

    public init(firstBin: Int64, binTicks: Int64, volumes: [Lots]) {
        self.firstBin = firstBin
        self.binTicks = binTicks
        self.volumes = volumes
    }

    /// The lower edge of bin `i`, in ticks.
    public func lowTicks(ofBin i: Int) -> Ticks { (firstBin + Int64(i)) * binTicks }

    /// The value area of this profile (the pipeline's own computation over the same bins).
    public func valueArea(fraction: Double) -> ValueArea? {
        ValueArea.compute(bins: volumes, firstBin: firstBin, binTicks: binTicks, fraction: fraction)
    }

    /// The bin that holds the value area's POC (nil: no value area).
    public func pocBin(of va: ValueArea) -> Int? {
        let low = (va.pocTwiceTicks - va.binTicks) / 2
        let i = Int((low - firstBin * binTicks) / binTicks)
        return va.binTicks == binTicks && volumes.indices.contains(i) ? i : nil
    }
}
