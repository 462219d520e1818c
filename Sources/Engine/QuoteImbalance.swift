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

    public init(tauSeconds: Double) {
        precondition(tauSeconds > 0)
        self.tauSeconds = tauSeconds
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
        let dt = Double(b - a) / 1000
        return -expm1(-dt / tauSeconds)
    }
}
