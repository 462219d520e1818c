/// The feature pipeline of SPEC §1–§7 as an incremental state machine: feed it one event at a time in the
/// Engine's order (timestamp, quote before trade) and collect each minute's features as it closes.
///
/// It owns no clock and does no I/O: a backtest feeds it from files, the agent from the exchange and its
/// clock (`close(through:)`). Events older than the open minute cannot change a closed bar: they are counted in
/// `lateEvents` and dropped.
public struct FeaturePipeline: Sendable {
    public let config: FeatureConfig

    // The open minute.
    private var minute: Millis = 0
    private var started = false
    private var barOpen: Ticks = 0
    private var barHigh: Ticks = 0
    private var barLow: Ticks = 0
    private var barClose: Ticks = 0
    private var barVolume: Lots = 0
    private var barTickLots: Int64 = 0
    private var barTrades = 0
    /// Price and lots of the open minute's trades: the crossing test reads the prices, and the compacted
    /// base-histogram entries leave the window later.
    private var barPrints: [(price: Ticks, lots: Lots)] = []

    private var lastQuote: QuoteEvent?
    private var orderFlow: OrderFlowClassifier
    private var qimb: QuoteImbalanceEMA
    private var volatility = MidReturnVolatility()
    private var binWidth: BinWidthPolicy
    private var histogram = BaseHistogram()
    /// Closed minutes still inside the window, oldest first, each as its compacted base-histogram entries.
    private var window: Ring<[(key: Int64, lots: Lots)]>
    private var spreads: Ring<Int64?>
    private var spreadSum: Int64 = 0
    private var spreadCount = 0
    private var aggregated: [Lots] = []
    private var barsClosed = 0

    /// Minutes closed and not yet taken.
    public private(set) var closed: [MinuteFeatures] = []
    /// Events dropped because their minute had already closed.
    public private(set) var lateEvents = 0
    /// Order-flow totals of the whole run.
    public private(set) var runOrderFlow = OrderFlowTotals()

    public init(config: FeatureConfig) {
        precondition(config.baseBinTicks >= 1 && config.binWidthMaxTicks >= config.baseBinTicks)
        precondition(config.rollingWindowMinutes >= 1 && config.rebucketIntervalMinutes >= 1)
        self.config = config
        orderFlow = OrderFlowClassifier(config: config)
        qimb = QuoteImbalanceEMA(tauSeconds: config.qimbEmaSpanSeconds)
        binWidth = BinWidthPolicy(config: config)
        window = Ring(capacity: config.rollingWindowMinutes)
        spreads = Ring(capacity: FeatureConfig.spreadAverageMinutes)
    }

    /// Whether a trade has opened the first row.
    public var hasStarted: Bool { started }
    /// Start of the open minute (meaningful once started).
    public var openMinute: Millis { minute }
    /// The latest quote seen.
    public var latestQuote: QuoteEvent? { lastQuote }

    /// Feeds one event.
    @inline(__always)
    public mutating func process(_ event: MarketEvent) {
        switch event {
        case .quote(let q): onQuote(q)
        case .trade(let t): onTrade(t)
        }
    }

    /// Feeds an L1 quote.
    @inline(__always)
    public mutating func onQuote(_ q: QuoteEvent) {
        if started {
            if q.ts < minute {
                lateEvents += 1
                return
            }
            if q.ts >= minute + millisPerMinute { closeMinutes(before: minuteStart(of: q.ts)) }
        }
        lastQuote = q
        orderFlow.onQuote(q)
        qimb.update(imbalance: q.imbalance, at: q.ts)
    }

    /// Feeds a trade.
    @inline(__always)
    public mutating func onTrade(_ t: TradeEvent) {
        if !started {
            started = true
            minute = minuteStart(of: t.ts)
            barOpen = t.price
            barHigh = t.price
            barLow = t.price
        } else if t.ts < minute {
            lateEvents += 1
            return
        } else if t.ts >= minute + millisPerMinute {
            closeMinutes(before: minuteStart(of: t.ts))
        }
        if barTrades == 0 {
            barOpen = t.price
            barHigh = t.price
            barLow = t.price
        } else {
            if t.price > barHigh { barHigh = t.price }
            if t.price < barLow { barLow = t.price }
        }
        barClose = t.price
        barTrades += 1
        barVolume += t.size
        barTickLots += t.price * t.size
        let key = floorDiv(t.price, config.baseBinTicks)
        histogram.add(t.size, at: key)
        barPrints.append((t.price, t.size))
        orderFlow.onTrade(t)
    }

    /// Live clock: closes every minute whose end plus `close_grace_ms` is at or before `now`.
    public mutating func advanceClock(to now: Millis) {
        guard started else { return }
        let through = now - config.closeGraceMs
        if through >= minute + millisPerMinute { closeMinutes(before: minuteStart(of: through)) }
    }

    /// End of input: closes the open minute (the minute of the last event).
    public mutating func finish() {
        guard started else { return }
        closeMinutes(before: minute + millisPerMinute)
    }

    /// Returns the minutes closed since the last call.
    public mutating func takeClosed() -> [MinuteFeatures] {
        defer { closed.removeAll(keepingCapacity: true) }
        return closed
    }

    /// Closes the open minute and every empty minute after it that starts before `next`, then opens `next`.
    private mutating func closeMinutes(before next: Millis) {
        while minute < next {
            closeOpenMinute()
            minute += millisPerMinute
        }
    }

    private mutating func closeOpenMinute() {
        // Bar (an empty minute repeats the previous close).
        if barTrades == 0 {
            barOpen = barClose
            barHigh = barClose
            barLow = barClose
        }
        let flow = orderFlow.takeTotals()
        runOrderFlow.add(flow)

        // Quote state at the close.
        let quote = lastQuote.map {
            QuoteAtClose(bidPrice: $0.bidPrice, bidSize: $0.bidSize, askPrice: $0.askPrice, askSize: $0.askSize, ts: $0.ts)
        }
        let spread = quote?.spreadTicks
        if let leaving = spreads.push(spread), let old = leaving {
            spreadSum -= old
            spreadCount -= 1
        }
        if let s = spread {
            spreadSum += s
            spreadCount += 1
        }

        // Volatility and bin width.
        let sigma = volatility.add(midTwiceTicks: quote?.midTwiceTicks)
        let midTicks = quote.map { Double($0.midTwiceTicks) / 2 } ?? 0
        let computed = binWidth.computedTicks(midTicks: midTicks, sigma: sigma)
        let applied = binWidth.update(minute: minute, computed: computed)

        // Profile and value area of the window, this minute included.
        let k = applied / config.baseBinTicks
        let firstBin = histogram.aggregate(binsOf: k, into: &aggregated)
        let va = ValueArea.compute(bins: aggregated, firstBin: firstBin, binTicks: applied, fraction: config.vaFraction)
        var crossesVAH = false
        var crossesVAL = false
        if let va {
            for t in barPrints {
                if !crossesVAH && crossingDistanceHolds(abs(t.price - va.vahTicks), spreadSum, spreadCount) { crossesVAH = true }
                if !crossesVAL && crossingDistanceHolds(abs(t.price - va.valTicks), spreadSum, spreadCount) { crossesVAL = true }
                if crossesVAH && crossesVAL { break }
            }
        }

        closed.append(
            MinuteFeatures(
                ts: minute,
                index: barsClosed,
                open: barOpen,
                high: barHigh,
                low: barLow,
                close: barClose,
                volume: barVolume,
                tickLots: barTickLots,
                tradeCount: barTrades,
                quote: quote,
                spreadSumTicks: spreadSum,
                spreadCount: spreadCount,
                sigma240: sigma,
                binTicks: applied,
                valueArea: va,
                valueAreaValid: va?.isValid(minBins: config.minVABins) ?? false,
                crossesVAH: crossesVAH,
                crossesVAL: crossesVAL,
                orderFlow: flow,
                qimbEma: qimb.value(at: minute + millisPerMinute)
            )
        )
        barsClosed += 1

        // Window: this minute joins as compacted entries; once it holds `rolling_window_minutes` closed minutes,
        // the oldest leaves, so the next minute's trades complete a window of exactly that many bars.
        _ = window.push(compact(barPrints))
        barPrints.removeAll(keepingCapacity: true)
        if window.count >= config.rollingWindowMinutes, let oldest = window.popFirst() {
            for e in oldest { histogram.add(-e.lots, at: e.key) }
        }

        // Reset the bar.
        barVolume = 0
        barTickLots = 0
        barTrades = 0
    }

    private func compact(_ trades: [(price: Ticks, lots: Lots)]) -> [(key: Int64, lots: Lots)] {
        let entries = trades.map { (key: floorDiv($0.price, config.baseBinTicks), lots: $0.lots) }
        guard entries.count > 1 else { return entries }
        let sorted = entries.sorted { $0.key < $1.key }
        var out: [(key: Int64, lots: Lots)] = []
        out.reserveCapacity(16)
        for e in sorted {
            if let last = out.last, last.key == e.key {
                out[out.count - 1].lots += e.lots
            } else {
                out.append(e)
            }
        }
        return out
    }
}
