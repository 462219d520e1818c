import AgentConfig
import Engine
import Testing

/// A closed minute built from literal values, for the strategy's tests. Prices are text in USDT (tick 0.1).
/// By default: a valid value area, a fresh one-tick quote at the close, 10 BTC of volume, neutral order flow.
func bar(
    _ index: Int,
    o: String, h: String, l: String, c: String,
    val: String = "49900", vah: String = "50100", poc: String = "50000",
    crossVAL: Bool = false, crossVAH: Bool = false,
    of: String = "0", volume: String = "10", ambiguous: String = "0",
    qimb: Double? = 0, qimbClose: (bid: String, ask: String) = ("1", "1"),
    valid: Bool = true, quoteAge: Millis = 1_000
) -> MinuteFeatures {
    let ts = t0 + Millis(index) * 60_000
    var flow = OrderFlowTotals()
    flow.signedVolume = of.hasPrefix("-") ? -sz(String(of.dropFirst())) : sz(of)
    flow.ambiguousVolume = sz(ambiguous)
    let close = px(c)
    let va = ValueArea(
        valTicks: px(val), vahTicks: px(vah), pocTwiceTicks: 2 * px(poc), covered: 700, total: 1000, binCount: 10,
        profileBins: 30, binTicks: 10
    )
    return MinuteFeatures(
        ts: ts, index: index, open: px(o), high: px(h), low: px(l), close: close, volume: sz(volume),
        tickLots: close * sz(volume), tradeCount: 10,
        quote: QuoteAtClose(
            bidPrice: close - 1, bidSize: sz(qimbClose.bid), askPrice: close, askSize: sz(qimbClose.ask),
            ts: ts + 60_000 - quoteAge),
        spreadSumTicks: 60, spreadCount: 60, sigma240: 0.0004, binTicks: 10, valueArea: va, valueAreaValid: valid,
        crossesVAH: crossVAH, crossesVAL: crossVAL, orderFlow: flow, qimbEma: qimb
    )
}

/// The intents among actions.
func submitted(_ actions: [OrderAction]) -> [OrderIntent] {
    actions.compactMap { if case .submit(let i) = $0 { i } else { nil } }
}

/// A market fill of `intent` at `price`, with the fee the default taker rate gives.
func fill(_ intent: OrderIntent, at price: String, ts: Millis, config: StrategyConfig = StrategyConfig.defaults) -> Fill
{
    let notional = btc.price(px(price)) * btc.size(intent.qty)
    return Fill(
        orderId: intent.id, side: intent.side, qty: intent.qty, price: px(price), ts: ts, decisionTs: intent.decisionTs,
        liquidity: .taker, fee: notional * config.takerFeeBps / 10_000, purpose: intent.purpose, referenceMidTwice: nil
    )
}

let warm = 300

/// The curve ends after the end-of-data close: its last equity is the initial equity plus the round trips' net P&L.
func expectCurveEndsAtTheRoundTrips(
    _ equity: [EquityRow], _ trader: Trader, sourceLocation: SourceLocation = #_sourceLocation
) {
    guard let last = equity.last else { return }
    #expect(trader.position == nil, sourceLocation: sourceLocation)
    let net = trader.roundTrips.reduce(0) { $0 + $1.netPnL }
    #expect(
        abs(last.equity - (trader.config.initialEquity + net)) < 1e-6, "last row \(last.equity), trips \(net)",
        sourceLocation: sourceLocation)
}
