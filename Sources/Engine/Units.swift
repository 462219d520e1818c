import Foundation

/// Milliseconds since the Unix epoch, UTC. Every timestamp in the Engine is one of these.
public typealias Millis = Int64

/// A price counted in whole ticks of the instrument (`round(price / tick)`).
public typealias Ticks = Int64

/// A price counted in half ticks (`2 × price / tick`): where a price can fall between two ticks (a mid, a
/// value-area edge, a stop half a bin away, an average fill), it is kept exactly this way. Names ending in `Twice`
/// hold one.
public typealias HalfTicks = Int64

/// A size counted in whole quantity steps of the instrument (`round(size / qty_step)`).
public typealias Lots = Int64

/// One minute in milliseconds.
public let millisPerMinute: Millis = 60_000

/// The start of the minute that holds `ts`: `floor(ts / 60000) * 60000`.
@inlinable
public func minuteStart(of ts: Millis) -> Millis {
    floorDiv(ts, millisPerMinute) * millisPerMinute
}

/// Integer division rounding towards negative infinity.
@inlinable
public func floorDiv(_ a: Int64, _ b: Int64) -> Int64 {
    let q = a / b
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q
}

/// `numerator / denominator` rounded to the nearest integer, halves away from zero (docs/SPEC.md §1).
@inlinable
public func roundedDiv(_ numerator: Int64, _ denominator: Int64) -> Int64 {
    precondition(denominator != 0)
    let q = numerator / denominator
    let r = numerator % denominator
    if r == 0 { return q }
    let twiceR = r.magnitude * 2
    if twiceR >= denominator.magnitude {
        return (numerator < 0) != (denominator < 0) ? q - 1 : q + 1
    }
    return q
}

/// `x` rounded to the nearest integer, halves away from zero (docs/SPEC.md §1).
@inlinable
public func roundHalfAway(_ x: Double) -> Double {
    x.rounded(.toNearestOrAwayFromZero)
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
public func civilFromDays(_ z0: Int) -> (Int, Int, Int) {
    let z = z0 + 719_468
    let era = (z >= 0 ? z : z - 146_096) / 146_097
    let doe = z - era * 146_097
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
    let y = yoe + era * 400
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
    let mp = (5 * doy + 2) / 153
    let d = doy - (153 * mp + 2) / 5 + 1
    let m = mp < 10 ? mp + 3 : mp - 9
    return (m <= 2 ? y + 1 : y, m, d)
}

/// ISO 8601 of a timestamp, to the minute or millisecond, UTC.
public func isoTime(_ ts: Millis, milliseconds: Bool = false) -> String {
    let days = floorDiv(ts, 86_400_000)
    let msOfDay = ts - days * 86_400_000
    let (y, m, d) = civilFromDays(Int(days))
    let h = msOfDay / 3_600_000
    let mi = msOfDay / 60_000 % 60
    let s = msOfDay / 1000 % 60
    let ms = msOfDay % 1000
    func two(_ v: Int64) -> String { v < 10 ? "0\(v)" : "\(v)" }
    var text = "\(y)-\(two(Int64(m)))-\(two(Int64(d)))T\(two(h)):\(two(mi))"
    if milliseconds {
        text += ":\(two(s)).\(String(format: "%03d", ms))"
    }
    return text + "Z"
}
