package import Engine
import Foundation

// How times, numbers, prices, sizes and a minute's detections are written in logs, replies, files and reports.

/// Percent with one decimal.
package func percent(_ x: Double) -> String { String(format: "%.1f %%", x * 100) }

/// Integer with thousands separators.
package func grouped(_ n: Int) -> String {
    let s = String(n.magnitude)
    var out = ""
    for (i, c) in s.enumerated() {
        if i > 0 && (s.count - i) % 3 == 0 { out.append(",") }
        out.append(c)
    }
    return (n < 0 ? "-" : "") + out
}

/// `breakin_long breakout_short`: the setups a minute detected.
package func detectedNames(_ d: Detections) -> [String] {
    var out: [String] = []
    if d.breakInLong { out.append("breakin_long") }
    if d.breakInShort { out.append("breakin_short") }
    if d.failedBreakoutLong { out.append("failbreak_long") }
    if d.failedBreakoutShort { out.append("failbreak_short") }
    if d.breakoutLong { out.append("breakout_long") }
    if d.breakoutShort { out.append("breakout_short") }
    return out
}

/// `running 2 at 64100.1`, `used`, `-`: one side's acceptance state.
package func describeAcceptance(_ a: AcceptanceSide, _ instrument: Instrument) -> String {
    if a.running { return "running \(a.count) at \(instrument.priceText(a.level))\(a.used ? " used" : "")" }
    return a.used ? "used" : "-"
}

extension Instrument {
    /// A price in ticks as a decimal in the tick's precision (`64250.1`).
    package func priceText(_ ticks: Int64) -> String {
        ScaledDecimal(mantissa: ticks * tick.mantissa, scale: tick.scale).description
    }

    /// A price in half ticks (a POC between two ticks: `64250.15`).
    package func halfTickText(_ twice: Int64) -> String {
        if twice % 2 == 0 { return priceText(twice / 2) }
        return ScaledDecimal(mantissa: twice * tick.mantissa * 5, scale: tick.scale + 1).description
    }

    /// A quantity in lots as a decimal (`0.125`).
    package func sizeText(_ lots: Int64) -> String {
        ScaledDecimal(mantissa: lots * qtyStep.mantissa, scale: qtyStep.scale).description
    }
}
