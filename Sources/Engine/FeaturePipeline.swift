import Foundation

/// The feature pipeline of docs/SPEC.md §1–§7 as an incremental state machine: feed it one event at a time in the
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
    /// The open minute came from a candle (`addKline`): its volume is spread over its range, not from trades.
    private var barApproximate = false
    /// Approximate volume in the window's closed minutes.
    private var approximateInWindow: Lots = 0
    private var approximateMinutesInWindow = 0
    /// Candles have been taken: a minute without a quote uses its close where a mid is needed (σ, bin width).
    private var closesStandInForMids = false
    /// Spans of missing data (`markMissing`) the open minute has not passed yet, in time order.
    private var missingSpans: [(from: Millis, to: Millis)] = []
    /// Closed minutes in the window with missing data.
    private var missingMinutesInWindow = 0

    private var lastQuote: QuoteEvent?
    private var orderFlow: OrderFlowClassifier
    private var qimb: QuoteImbalanceEMA
    private var volatility = MidReturnVolatility()
    private var binWidth: BinWidthPolicy
    private var histogram = BaseHistogram()
    /// Closed minutes still inside the window, oldest first, each as its compacted base-histogram entries.
    private var window: Ring<(entries: [(key: Int64, lots: Lots)], approximate: Bool, missing: Bool)>
    private var spreads: Ring<Int64?>
    private var spreadSum: Int64 = 0
    private var spreadCount = 0
    private var aggregated: [Lots] = []
    private var aggregatedFirstBin: Int64 = 0
    private var aggregatedBinTicks: Int64 = 1
    private var barsClosed = 0
    /// BVC: the last `bvc_lookback_minutes` close-to-close changes (ticks) and the previous close.
    private var bvcChanges: [Int64] = []
    private var bvcNext = 0
    private var bvcPreviousClose: Ticks?

    /// The window's volume per bin at the last close (empty before the first): the bins its value area came from.
    public var profile: VolumeProfile {
        VolumeProfile(firstBin: aggregatedFirstBin, binTicks: aggregatedBinTicks, volumes: aggregated)
    }

    /// Minutes closed and not yet taken.
    public private(set) var closed: [MinuteFeatures] = []
    /// Events dropped because their minute had already closed, or because a candle already gave their minute.
    public private(set) var lateEvents = 0
    /// Candles dropped because their minute had closed or already held trades (exact data wins).
    public private(set) var droppedKlines = 0
    /// Order-flow totals of the whole run.
    public private(set) var runOrderFlow = OrderFlowTotals()
    /// Keep every minute's profile in `profileHistory` (report.html's profile at any minute); off unless asked.
    public var recordsProfiles = false
    /// Each closed minute's profile, while `recordsProfiles`.
    public private(set) var profileHistory = ProfileHistory()

    /// The profile frames recorded since the last call (`ProfileHistory.takeFrames`).
    public mutating func takeProfileFrames() -> [ProfileHistory.Frame] { profileHistory.takeFrames() }
    /// Footprints of the minutes closed and not yet taken, while `recordsFootprint`.
    public private(set) var closedFootprints: [FootprintMinute] = []

    /// Keep each minute's footprint (volume per base bin by the sign that counts); the agent turns it on for the
    /// dashboard, a backtest leaves it off. A minute from a candle has none (its trades' signs are not known).
    public var recordsFootprint: Bool {
        get { orderFlow.recordsTrades }
        set { orderFlow.recordsTrades = newValue }
    }

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
        } else if barApproximate {
            // The candle already holds this minute's volume.
            lateEvents += 1
            return
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

    /// Feeds a minute known only from its candle (a warm-up from the exchange's klines): the bar is exact, its
    /// volume is spread over the base bins of its range `[low, high]` as a triangle whose mean is the candle's VWAP
    /// (an approximation: the profile's shape inside one minute is not known; docs/FEATURES.md compares it with an
    /// even spread), it has no order flow, and the closes stand in for mids where no
    /// quote is known. Minutes before it close as usual; the window reports how much of its volume is
    /// approximate (`MinuteFeatures.approximateLots`). Returns false, and changes nothing, when the minute has
    /// already closed or holds trades: exact data wins. A later trade in the same minute is dropped as late.
    @discardableResult
    public mutating func addKline(_ k: KlineBar) -> Bool {
        precondition(k.low <= k.high && k.volume >= 0, "a candle with low above high or negative volume")
        let m = minuteStart(of: k.ts)
        if !started {
            started = true
            minute = m
        } else if m < minute {
            droppedKlines += 1
            return false
        } else if m >= minute + millisPerMinute {
            closeMinutes(before: m)
        }
        guard barTrades == 0 && !barApproximate else {
            droppedKlines += 1
            return false
        }
        // A quote older than a candle's minute says nothing about it or what follows.
        lastQuote = nil
        closesStandInForMids = true
        barApproximate = true
        barOpen = k.open
        barHigh = k.high
        barLow = k.low
        barClose = k.close
        barVolume = k.volume
        barTickLots = k.tickLots ?? roundedDiv((k.high + k.low) * k.volume, 2)
        let lowKey = floorDiv(k.low, config.baseBinTicks)
        let highKey = floorDiv(k.high, config.baseBinTicks)
        let n = highKey - lowKey + 1
        // Weights: a triangle over the ticks low…high (half a tick beyond each end, so both ends traded) whose mean
        // is the candle's VWAP, summed per base bin; whole lots by cumulative rounding, summing to V.
        let lo = Double(k.low) - 0.5, hi = Double(k.high) + 0.5
        let vwap = min(max(Double(barTickLots) / Double(max(k.volume, 1)), Double(k.low)), Double(k.high))
        let mode = min(max(3 * vwap - lo - hi, lo), hi)
        var weights = [Double](repeating: 0, count: Int(n))
        for price in k.low...k.high {
            let x = Double(price)
            let w = x <= mode ? (x - lo) / (mode - lo) : (hi - x) / (hi - mode)
            weights[Int(floorDiv(price, config.baseBinTicks) - lowKey)] += w
        }
        let total = weights.reduce(0, +)
        var cumulative = 0.0
        var previous: Int64 = 0
        for i in 0..<Int(n) {
            cumulative += weights[i]
            let upTo = i == Int(n) - 1 ? k.volume : Int64((Double(k.volume) * cumulative / total).rounded())
            let lots = upTo - previous
            previous = upTo
            if lots > 0 {
                histogram.add(lots, at: lowKey + Int64(i))
                barPrints.append((price: (lowKey + Int64(i)) * config.baseBinTicks, lots: lots))
            }
        }
        return true
    }

    /// Volume in the window's profile at one base bin (key `floor(ticks / base_bin_ticks)`), the open minute included.
    public func volume(atBaseBin key: Int64) -> Lots { histogram.volume(at: key) }

    /// Data is missing from `from` to `to` (inclusive, ms): a recorded gap, a disconnection, the agent or the recorder
    /// down. Every minute that overlaps the span counts as missing, not quiet: closed minutes still in the window are
    /// marked at once, later ones as they close. While more than `max_missing_share` of the window is missing the
    /// value area is not valid (docs/FEATURES.md, "Gaps").
    public mutating func markMissing(from: Millis, to: Millis) {
        guard to >= from else { return }
        let first = minuteStart(of: from)
        let last = minuteStart(of: to)
        if started {
            // Closed minutes still in the window: the newest closed one began a minute before the open one.
            for i in 0..<window.count {
                let ts = minute - Millis(window.count - i) * millisPerMinute
                if ts >= first && ts <= last && !window[i].missing {
                    window[i].missing = true
                    missingMinutesInWindow += 1
                }
            }
        }
        guard !started || last >= minute else { return }
        let at = missingSpans.firstIndex { $0.from > first } ?? missingSpans.count
        missingSpans.insert((first, last), at: at)
    }

    /// After a start closed the minutes up to now (`advanceClock`): nothing was received from the last data known
    /// (`lastData`, 0: none) to the open minute, so that time is missing.
    public mutating func markMissingSince(_ lastData: Millis) {
        guard lastData > 0, started else { return }
        markMissing(from: lastData + 1, to: max(minute, lastData + 1))
    }

    /// Whether the open minute lies in a span of `markMissing`; spans it has passed are dropped.
    private mutating func openMinuteIsMissing() -> Bool {
        while let s = missingSpans.first, s.to < minute { missingSpans.removeFirst() }
        return missingSpans.contains { $0.from <= minute && minute <= $0.to }
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

    /// Returns the footprints of the minutes closed since the last call (empty unless `recordsFootprint`).
    public mutating func takeFootprints() -> [FootprintMinute] {
        defer { closedFootprints.removeAll(keepingCapacity: true) }
        return closedFootprints
    }

    /// Returns the minutes closed since the last call.
    public mutating func takeClosed() -> [MinuteFeatures] {
        defer { closed.removeAll(keepingCapacity: true) }
        return closed
    }

    /// Closes the open minute and every empty minute after it that starts before `next`, then opens `next`.
    /// BVC (docs/SPEC.md §3, the original's §5.9): the minute's buy share is the normal distribution function at the
    /// close-to-close change over the sample standard deviation of the last `bvc_lookback_minutes` changes (this
    /// one included); `of_1m = volume × (2 × buy share − 1)`, rounded to the nearest lot. Fewer than two changes, or
    /// a deviation of 0: a share of one half (no order flow).
    private mutating func bvcSignedVolume() -> Lots {
        defer { bvcPreviousClose = barClose }
        guard let previous = bvcPreviousClose else { return 0 }
        let change = barClose - previous
        if bvcChanges.count < config.bvcLookbackMinutes {
            bvcChanges.append(change)
        } else {
            bvcChanges[bvcNext] = change
            bvcNext = (bvcNext + 1) % config.bvcLookbackMinutes
        }
        let buyShare = Self.bvcBuyShare(change: change, changes: bvcChanges)
        return Lots((Double(barVolume) * (2 * buyShare - 1)).rounded())
    }

    /// The BVC buy share of a close-to-close `change` among `changes` (ticks; this one included).
    public static func bvcBuyShare(change: Int64, changes: [Int64]) -> Double {
        guard changes.count >= 2 else { return 0.5 }
        let n = Double(changes.count)
        let mean = changes.reduce(0.0) { $0 + Double($1) } / n
        let variance = changes.reduce(0.0) { $0 + (Double($1) - mean) * (Double($1) - mean) } / (n - 1)
        guard variance > 0 else { return 0.5 }
        // Φ(z) = erfc(−z/√2) / 2.
        return 0.5 * erfc(-Double(change) / variance.squareRoot() / 2.0.squareRoot())
    }

    private mutating func closeMinutes(before next: Millis) {
        while minute < next {
            closeOpenMinute()
            minute += millisPerMinute
        }
    }

    private mutating func closeOpenMinute() {
        // Bar (an empty minute repeats the previous close).
        if barTrades == 0 && !barApproximate {
            barOpen = barClose
            barHigh = barClose
            barLow = barClose
        }
        var flow = orderFlow.takeTotals()
        if config.orderFlowMethod == .bvc { flow.signedVolume = bvcSignedVolume() }
        runOrderFlow.add(flow)
        if orderFlow.recordsTrades {
            closedFootprints.append(
                FootprintMinute(ts: minute, baseBinTicks: config.baseBinTicks, trades: orderFlow.takeSignedTrades()))
        }

        // Quote state at the close.
        let quote = lastQuote.map {
            QuoteAtClose(
                bidPrice: $0.bidPrice, bidSize: $0.bidSize, askPrice: $0.askPrice, askSize: $0.askSize, ts: $0.ts)
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
        // After candles, a minute without a quote uses its close for the mid (approximate).
        let midTwice = quote?.midTwiceTicks ?? (closesStandInForMids ? 2 * barClose : nil)
        let sigma = volatility.add(midTwiceTicks: midTwice)
        let midTicks = midTwice.map { Double($0) / 2 } ?? 0
        let computed = binWidth.computedTicks(midTicks: midTicks, sigma: sigma)
        let applied = binWidth.update(minute: minute, computed: computed)

        // Profile and value area of the window, this minute included.
        let k = applied / config.baseBinTicks
        let firstBin = histogram.aggregate(binsOf: k, into: &aggregated)
        aggregatedFirstBin = firstBin
        aggregatedBinTicks = applied
        if recordsProfiles { profileHistory.append(ts: minute, profile) }
        let va = ValueArea.compute(bins: aggregated, firstBin: firstBin, binTicks: applied, fraction: config.vaFraction)
        let missing = openMinuteIsMissing()
        let missingMinutes = missingMinutesInWindow + (missing ? 1 : 0)
        let complete = Double(missingMinutes) <= config.maxMissingShare * Double(config.rollingWindowMinutes)
        var crossesVAH = false
        var crossesVAL = false
        if let va, barApproximate {
            // Trades are taken to have printed anywhere in the candle's range.
            crossesVAH = rangeWithinCrossingDistance(of: va.vahTicks)
            crossesVAL = rangeWithinCrossingDistance(of: va.valTicks)
        } else if let va {
            for t in barPrints {
                if !crossesVAH && crossingDistanceHolds(abs(t.price - va.vahTicks), spreadSum, spreadCount) {
                    crossesVAH = true
                }
                if !crossesVAL && crossingDistanceHolds(abs(t.price - va.valTicks), spreadSum, spreadCount) {
                    crossesVAL = true
                }
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
                valueAreaValid: complete && (va?.isValid(minBins: config.minVABins) ?? false),
                crossesVAH: crossesVAH,
                crossesVAL: crossesVAL,
                orderFlow: flow,
                qimbEma: qimb.value(at: minute + millisPerMinute),
                approximate: barApproximate,
                approximateLots: approximateInWindow + (barApproximate ? barVolume : 0),
                approximateMinutes: approximateMinutesInWindow + (barApproximate ? 1 : 0),
                missing: missing, missingMinutes: missingMinutes, orderFlowMethod: config.orderFlowMethod
            )
        )
        barsClosed += 1

        // Window: this minute joins as compacted entries; once it holds `rolling_window_minutes` closed minutes,
        // the oldest leaves, so the next minute's trades complete a window of exactly that many bars.
        _ = window.push((compact(barPrints), barApproximate, missing))
        if missing { missingMinutesInWindow += 1 }
        if barApproximate {
            approximateInWindow += barVolume
            approximateMinutesInWindow += 1
        }
        barPrints.removeAll(keepingCapacity: true)
        if window.count >= config.rollingWindowMinutes, let oldest = window.popFirst() {
            var lots: Lots = 0
            for e in oldest.entries {
                histogram.add(-e.lots, at: e.key)
                lots += e.lots
            }
            if oldest.approximate {
                approximateInWindow -= lots
                approximateMinutesInWindow -= 1
            }
            if oldest.missing { missingMinutesInWindow -= 1 }
        }

        // Reset the bar.
        barVolume = 0
        barTickLots = 0
        barTrades = 0
        barApproximate = false
    }

    /// Some price in `[low, high]` of the open bar lies within the crossing distance of `level`.
    private func rangeWithinCrossingDistance(of level: Ticks) -> Bool {
        let distance = level < barLow ? barLow - level : level > barHigh ? level - barHigh : 0
        return crossingDistanceHolds(distance, spreadSum, spreadCount)
    }

    /// A minute's prints as (base bin, lots) per bin present, bins ascending.
    private func compact(_ trades: [(price: Ticks, lots: Lots)]) -> [(key: Int64, lots: Lots)] {
        let entries = trades.map { (key: floorDiv($0.price, config.baseBinTicks), lots: $0.lots) }
        guard entries.count > 1 else { return entries }
        var low = Int64.max
        var high = Int64.min
        for e in entries {
            low = min(low, e.key)
            high = max(high, e.key)
        }
        // A minute spans a few bins: summed in place by bin, no sort (the same bins and sums as the sort below).
        if high - low < 4_096 {
            var lots = [Lots](repeating: 0, count: Int(high - low) + 1)
            var present = [Bool](repeating: false, count: lots.count)
            for e in entries {
                lots[Int(e.key - low)] += e.lots
                present[Int(e.key - low)] = true
            }
            var out: [(key: Int64, lots: Lots)] = []
            out.reserveCapacity(16)
            for i in lots.indices where present[i] { out.append((key: low + Int64(i), lots: lots[i])) }
            return out
        }
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
