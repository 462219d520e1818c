/// The trading rules of one instrument: tick size, quantity step and minimum quantity.
///
/// They come from the exchange's instrument info at run time and from config in backtests; logic never
/// hard-codes them (docs/SPEC.md, introduction).
public struct Instrument: Sendable, Hashable, Codable {
    public var symbol: String
    /// Price increment (BTCUSDT: 0.1).
    public var tick: ScaledDecimal
    /// Quantity increment (BTCUSDT: 0.001).
    public var qtyStep: ScaledDecimal
    /// Smallest order quantity (BTCUSDT: 0.001).
    public var minQty: ScaledDecimal

    public init(symbol: String, tick: ScaledDecimal, qtyStep: ScaledDecimal, minQty: ScaledDecimal) {
        precondition(tick.mantissa > 0 && qtyStep.mantissa > 0, "tick and qty step must be positive")
        self.symbol = symbol
        self.tick = tick
        self.qtyStep = qtyStep
        self.minQty = minQty
    }

    /// Bybit's linear BTCUSDT perpetual.
    public static let btcusdt = Instrument(
        symbol: "BTCUSDT",
        tick: ScaledDecimal(mantissa: 1, scale: 1),
        qtyStep: ScaledDecimal(mantissa: 1, scale: 3),
        minQty: ScaledDecimal(mantissa: 1, scale: 3)
    )

    /// `round(price / tick)`, exact; nil when it does not fit.
    @inlinable
    public func ticks(_ price: ScaledDecimal) -> Ticks? { price.count(of: tick) }

    /// `round(size / qty_step)`, exact; nil when it does not fit.
    @inlinable
    public func lots(_ size: ScaledDecimal) -> Lots? { size.count(of: qtyStep) }

    /// The price of a whole number of ticks.
    @inlinable
    public func price(_ ticks: Ticks) -> Double { tick.value(ofCount: ticks) }

    /// The price of a fractional number of ticks given as a ratio.
    @inlinable
    public func price(_ numerator: Int64, over denominator: Int64) -> Double {
        tick.value(ofRatio: numerator, denominator)
    }

    /// The size of a whole number of lots.
    @inlinable
    public func size(_ lots: Lots) -> Double { qtyStep.value(ofCount: lots) }
}
