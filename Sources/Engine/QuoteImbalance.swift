import Foundation

/// The quote-imbalance EMA as a step function of time (docs/SPEC.md §3).
///
/// The first quote sets it; each later quote moves it towards the previous quote's imbalance by
/// `1 - exp(-dt / tau)`, `dt` being the seconds the previous quote was in force.
public struct QuoteImbalanceEMA: Sendable, Hashable {
    public let tauSeconds: Double
    public private(set) var value = 0.0
    private var lastImbalance = 0.0
    private var lastTs: Millis = 0
    public private(set) var started = false
    /// The weight of each gap under `weights.count` ms, computed once (the same expression, so the same values):
    /// quotes mostly come milliseconds apart, and `expm1` per quote was a visible share of a month's run.
    private let weights: [Double]

    public init(tauSeconds: Double) {
        precondition(tauSeconds > 0)
        self.tauSeconds = tauSeconds
        weights = (0..<2_048).map { Self.weight(ms: Int64($0), tauSeconds: tauSeconds) }
    }

    public static func == (a: Self, b: Self) -> Bool {
        (a.tauSeconds, a.value, a.lastImbalance, a.lastTs, a.started)
            == (b.tauSeconds, b.value, b.lastImbalance, b.lastTs, b.started)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(tauSeconds)
        hasher.combine(value)
        hasher.combine(lastImbalance)
        hasher.combine(lastTs)
        hasher.combine(started)
    }

    /// Feeds a quote's imbalance at its timestamp.
    @inline(__always)
    public mutating func update(imbalance: Double, at ts: Millis) {
        if !started {
            started = true
            value = imbalance
        } else if ts > lastTs {
            value += weight(from: lastTs, to: ts) * (lastImbalance - value)
        }
        lastImbalance = imbalance
        lastTs = max(lastTs, ts)
    }

    /// The EMA carried to `ts` with the last quote's imbalance held constant; nil before the first quote.
    public func value(at ts: Millis) -> Double? {
        guard started else { return nil }
        guard ts > lastTs else { return value }
        return value + weight(from: lastTs, to: ts) * (lastImbalance - value)
    }

    @inline(__always)
    private func weight(from a: Millis, to b: Millis) -> Double {
        let gap = b - a
        return gap < weights.count ? weights[Int(gap)] : Self.weight(ms: gap, tauSeconds: tauSeconds)
    }

    private static func weight(ms: Int64, tauSeconds: Double) -> Double {
        let dt = Double(ms) / 1000
        return -expm1(-dt / tauSeconds)
    }
}
