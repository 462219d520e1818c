/// The backtest on stored one-minute features without ticks (`backtest --bars-only`, docs/SPEC.md §10's bar rule).
///
/// Without ticks the fill model becomes:
/// - a market order decided at a close fills 1 ms later at that close's quote (ask or bid) moved by the slippage,
///   the nearest stand-in for "the first quote after the decision";
/// - a limit order fills at its price, as maker, in the first later bar that trades strictly through it;
/// - stops and targets trigger when a later bar's range reaches them and fill at the level (at the open when the
///   bar opened beyond it) moved by the exit slippage; when a bar reaches both the stop and a target, the stop
///   comes first. Intra-bar fills are stamped at the bar's middle (`ts + 30 s`).
/// The trader, its setups, sizing and position management are the same code as on ticks.
public struct BarBacktester: Sendable {
    public private(set) var trader: Trader
    public let config: StrategyConfig
    public let instrument: Instrument
    private var pending: [OrderIntent] = []
    private var previous: MinuteFeatures?

    public private(set) var features: [MinuteFeatures] = []
    public private(set) var signals: [SignalRecord] = []
    public private(set) var fills: [Fill] = []
    public private(set) var equity: [EquityRow] = []

    public init(strategy: StrategyConfig, instrument: Instrument) {
        trader = Trader(config: strategy, instrument: instrument)
        config = strategy
        self.instrument = instrument
    }

    /// Feeds the next minute.
    public mutating func process(_ f: MinuteFeatures) {
        trader.advanceTime(to: f.ts)
        let middle = f.ts + 30_000

        // Orders decided at the previous close.
        var keep: [OrderIntent] = []
        for intent in pending {
            switch intent.type {
            case .market:
                guard let q = previous?.quote else {
                    keep.append(intent)
                    continue
                }
                let slip = intent.purpose.isEntry ? config.entrySlippageTicks : config.exitSlippageTicks
                let price = intent.side == .long ? q.askPrice + slip : q.bidPrice - slip
                record(intent, price: price, at: intent.decisionTs + 1, liquidity: .taker, mid: q.midTwiceTicks)
            case .limit(let price):
                let through = intent.side == .long ? f.low < price : f.high > price
                if through && f.ts >= intent.decisionTs {
                    record(intent, price: price, at: middle, liquidity: .maker, mid: f.quote?.midTwiceTicks)
                } else {
                    keep.append(intent)
                }
            }
        }
        pending = keep

        // Stops and targets reached by this bar's range: the stop first.
        if let p = trader.position, !p.closing {
            let d = p.direction.sign
            let stop = p.stopTwice
            let reachedStop = p.direction == .long ? 2 * f.low <= stop : 2 * f.high >= stop
            var triggers: [Ticks] = []
            if reachedStop {
                // The level, or the open when the bar opened beyond it (rounded towards the loss).
                let level = d > 0 ? floorDiv(stop, 2) : (stop + 1) / 2
                triggers.append(d > 0 ? min(f.open, level) : max(f.open, level))
            } else {
                let extreme = p.direction == .long ? f.high : f.low
                for target in [p.tp2Twice, p.tp1Twice].compactMap({ $0 }) where (2 * extreme - target) * d >= 0 {
                    let level = d > 0 ? (target + 1) / 2 : floorDiv(target, 2)
                    triggers.append(d > 0 ? max(f.open, level) : min(f.open, level))
                    break
                }
            }
            for price in triggers {
                for case .submit(let exit) in trader.onTrade(TradeEvent(ts: middle, price: price, size: 1)) {
                    let fillPrice =
                        exit.side == .long ? price + config.exitSlippageTicks : price - config.exitSlippageTicks
                    record(exit, price: fillPrice, at: middle, liquidity: .taker, mid: nil)
                }
            }
        }

        // The close.
        if let q = f.quote {
            trader.onQuote(
                QuoteEvent(
                    ts: f.decisionTs, bidPrice: q.bidPrice, bidSize: q.bidSize, askPrice: q.askPrice, askSize: q.askSize
                ))
        }
        let (signal, actions) = trader.onMinuteClose(f)
        for a in actions {
            switch a {
            case .submit(let intent): pending.append(intent)
            case .cancel(let id):
                if let i = pending.firstIndex(where: { $0.id == id }) {
                    pending.remove(at: i)
                    trader.onOrderGone(id: id)
                }
            }
        }
        signals.append(signal)
        features.append(f)
        equity.append(trader.equityRow(at: f.decisionTs))
        previous = f
    }

    /// End of data: what is still open is closed at the last close's quote.
    public mutating func finish() {
        guard let last = previous else { return }
        for a in trader.closeAtEnd(at: last.decisionTs) {
            if case .submit(let intent) = a { pending.append(intent) }
        }
        let open = trader.position != nil
        for intent in pending where !intent.purpose.isEntry {
            guard let q = last.quote else { continue }
            let price =
                intent.side == .long ? q.askPrice + config.exitSlippageTicks : q.bidPrice - config.exitSlippageTicks
            record(intent, price: price, at: last.decisionTs + 1, liquidity: .taker, mid: q.midTwiceTicks)
        }
        pending.removeAll()
        // The curve ends after the close, as in the tick backtest.
        if open { equity.append(trader.equityRow(at: last.decisionTs + 1)) }
    }

    private mutating func record(_ o: OrderIntent, price: Ticks, at ts: Millis, liquidity: Liquidity, mid: Int64?) {
        var qty = o.qty
        if o.reduceOnly {
            qty = min(qty, trader.position?.qty ?? 0)
            guard qty > 0 else {
                trader.onOrderGone(id: o.id)
                return
            }
        }
        let fill = PaperFillModel.fill(
            o, qty: qty, price: price, at: ts, liquidity: liquidity, mid: mid, config: config,
            instrument: instrument)
        trader.onFill(fill)
        fills.append(fill)
    }
}
