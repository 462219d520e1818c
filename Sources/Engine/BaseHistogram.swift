/// Volume per base bin (key `floor(ticks / base_bin_ticks)`), in whole lots, over the rolling window (docs/SPEC.md §6).
///
/// Stored densely: an array of counts and the key of its first slot, grown and re-centred as prices move.
/// Integer keys and integer volumes, so adding a minute and later subtracting it leaves no residue.
public struct BaseHistogram: Sendable, Equatable {
    private var counts: [Lots] = []
    private var origin: Int64 = 0
    /// Lowest key with volume (meaningless when `total == 0`).
    public private(set) var minKey: Int64 = 0
    /// Highest key with volume (meaningless when `total == 0`).
    public private(set) var maxKey: Int64 = 0
    /// Sum of all volume.
    public private(set) var total: Lots = 0

    public init() {}

    /// Volume at one key.
    @inlinable
    public func volume(at key: Int64) -> Lots {
        let i = key - originKey
        return i >= 0 && i < Int64(slotCount) ? slot(Int(i)) : 0
    }

    @usableFromInline var originKey: Int64 { origin }
    @usableFromInline var slotCount: Int { counts.count }
    @usableFromInline func slot(_ i: Int) -> Lots { counts[i] }

    /// Adds `lots` (which may be negative) at `key`.
    @inline(__always)
    public mutating func add(_ lots: Lots, at key: Int64) {
        if lots == 0 { return }
        var i = key - origin
        if i < 0 || i >= Int64(counts.count) {
            grow(toInclude: key)
            i = key - origin
        }
        let wasEmpty = total == 0
        counts[Int(i)] += lots
        total += lots
        precondition(counts[Int(i)] >= 0, "histogram volume below zero at key \(key)")
        if lots > 0 {
            if wasEmpty {
                minKey = key
                maxKey = key
            } else {
                if key < minKey { minKey = key }
                if key > maxKey { maxKey = key }
            }
        } else if total == 0 {
            minKey = 0
            maxKey = 0
        } else if counts[Int(i)] == 0 {
            if key == minKey {
                var k = minKey - origin
                while counts[Int(k)] == 0 { k += 1 }
                minKey = k + origin
            }
            if key == maxKey {
                var k = maxKey - origin
                while counts[Int(k)] == 0 { k -= 1 }
                maxKey = k + origin
            }
        }
    }

    /// Re-allocates so `key` has a slot, keeping the occupied range in the middle with room either side.
    private mutating func grow(toInclude key: Int64) {
        let lo = total == 0 ? key : min(minKey, key)
        let hi = total == 0 ? key : max(maxKey, key)
        let span = hi - lo + 1
        let pad = max(span / 2, 256)
        let newOrigin = lo - pad
        var fresh = [Lots](repeating: 0, count: Int(span + 2 * pad))
        if total != 0 {
            for k in minKey...maxKey {
                fresh[Int(k - newOrigin)] = counts[Int(k - origin)]
            }
        }
        counts = fresh
        origin = newOrigin
    }

    /// Sums the base bins into bins of `k` base bins each, from the bin holding `minKey` to the one holding `maxKey`.
    /// `into` is cleared and reused; returns the index of the first aggregated bin (`floor(minKey / k)`).
    public func aggregate(binsOf k: Int64, into bins: inout [Lots]) -> Int64 {
        bins.removeAll(keepingCapacity: true)
        guard total > 0 else { return 0 }
        let first = floorDiv(minKey, k)
        let last = floorDiv(maxKey, k)
        bins.append(contentsOf: repeatElement(0, count: Int(last - first + 1)))
        counts.withUnsafeBufferPointer { src in
            bins.withUnsafeMutableBufferPointer { dst in
                let offset = Int(minKey - origin)
                if k == 1 {
                    for j in 0..<dst.count { dst[j] = src[offset + j] }
                } else {
                    // Walk the base keys once; the aggregated index steps up every k keys.
                    var j = 0
                    var used = Int(minKey - first * k)  // base keys of bin 0 that lie below minKey
                    for s in offset...Int(maxKey - origin) {
                        if used == Int(k) {
                            j += 1
                            used = 0
                        }
                        dst[j] += src[s]
                        used += 1
                    }
                }
            }
        }
        return first
    }
}
