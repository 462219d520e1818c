/// Risk-based position size (docs/SPEC.md §11).
public enum Sizing {
    /// The result: lots, and whether the leverage cap bound.
    public struct Result: Sendable, Hashable {
        public var lots: Lots
        public var leverageCapHit: Bool
    }

    /// `qty = available_margin * risk_pct / |entry - stop|`, capped at `available_margin * max_leverage` of
    /// notional, rounded down to the qty step. Returns nil when the stop is not on the losing side of the entry.
    ///
    /// A tolerance of 1e-9 lot absorbs binary rounding in the division, so 200 / 500 is 400 lots, not 399.
    public static func size(
        direction: Direction,
        entry: Ticks,
        stop: Ticks,
        availableMargin: Double,
        config: StrategyConfig,
        instrument: Instrument
    ) -> Result? {
        let distance = (entry - stop) * direction.sign
        guard distance > 0, availableMargin > 0, entry > 0 else { return nil }
        let risk = availableMargin * config.riskPct
        let lotValuePerTick = instrument.tick.doubleValue * instrument.qtyStep.doubleValue
        var lots = Lots((risk / (Double(distance) * lotValuePerTick) + 1e-9).rounded(.down))
        let entryPrice = instrument.price(entry)
        let maxLots = Lots(
            (availableMargin * config.maxLeverage / (entryPrice * instrument.qtyStep.doubleValue) + 1e-9).rounded(.down)
        )
        var capped = false
        if lots > maxLots {
            lots = maxLots
            capped = true
        }
        return Result(lots: max(lots, 0), leverageCapHit: capped)
    }

    /// Lots closed at TP1: `round(qty * tp1_pct)`, at least one step, and at most all but one step.
    /// Nil for a one-step position, which skips TP1 and exits whole at TP2.
    public static func tp1Lots(_ qty: Lots, pct: Double) -> Lots? {
        guard qty > 1 else { return nil }
        let lots = Lots(roundHalfAway(Double(qty) * pct))
        return min(max(lots, 1), qty - 1)
    }
}
