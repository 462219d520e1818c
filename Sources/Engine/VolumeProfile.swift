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

/// Every minute's volume profile of a run, kept small (report.html shows the profile at any minute pointed at): a key
/// frame (the whole profile) every `keyEvery` minutes and whenever the bin width changes, otherwise the bins that
/// changed since the minute before. A minute adds a few bins and the one leaving the window removes a few, so a
/// frame is tens of numbers where a profile is hundreds.
public struct ProfileHistory: Sendable, Hashable {
    /// One closed minute's profile.
    public struct Frame: Sendable, Hashable {
        public var ts: Millis
        /// The whole profile (`values` its volumes) or the change from the minute before (`values` pairs of bin
        /// index and change in lots).
        public var isKey: Bool
        public var firstBin: Int64
        public var binTicks: Int64
        /// Bins in this minute's profile.
        public var count: Int
        public var values: [Int64]
    }

    public static let keyEvery = 60
    public private(set) var frames: [Frame] = []
    private var last: VolumeProfile?
    private var sinceKey = 0

    public init() {}

    /// Hands over the frames so far and forgets them (the next frame still follows from the last profile).
    public mutating func takeFrames() -> [Frame] {
        defer { frames = [] }
        return frames
    }

    public mutating func append(ts: Millis, _ p: VolumeProfile) {
        defer { last = p }
        guard let old = last, old.binTicks == p.binTicks, sinceKey + 1 < Self.keyEvery else {
            sinceKey = 0
            frames.append(
                Frame(
                    ts: ts, isKey: true, firstBin: p.firstBin, binTicks: p.binTicks, count: p.volumes.count,
                    values: p.volumes))
            return
        }
        sinceKey += 1
        var changes: [Int64] = []
        let lo = min(old.firstBin, p.firstBin)
        let hi = max(old.firstBin + Int64(old.volumes.count), p.firstBin + Int64(p.volumes.count))
        func volume(_ q: VolumeProfile, _ bin: Int64) -> Lots {
            let i = Int(bin - q.firstBin)
            return q.volumes.indices.contains(i) ? q.volumes[i] : 0
        }
        var bin = lo
        while bin < hi {
            let d = volume(p, bin) - volume(old, bin)
            if d != 0 { changes += [bin, d] }
            bin += 1
        }
        frames.append(
            Frame(
                ts: ts, isKey: false, firstBin: p.firstBin, binTicks: p.binTicks, count: p.volumes.count,
                values: changes)
        )
    }

    /// The profile of frame `index`, rebuilt from the key frame before it.
    public func profile(at index: Int) -> VolumeProfile {
        var k = index
        while !frames[k].isKey { k -= 1 }
        var volumes: [Int64: Lots] = [:]
        for (i, v) in frames[k].values.enumerated() { volumes[frames[k].firstBin + Int64(i)] = v }
        for f in frames[(k + 1)..<(index + 1)] where !f.isKey {
            var i = 0
            while i < f.values.count {
                volumes[f.values[i], default: 0] += f.values[i + 1]
                i += 2
            }
        }
        let f = frames[index]
        return VolumeProfile(
            firstBin: f.firstBin, binTicks: f.binTicks,
            volumes: (0..<f.count).map { volumes[f.firstBin + Int64($0)] ?? 0 })
    }
}
