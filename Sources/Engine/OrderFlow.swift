/// Per-minute totals of the order-flow classification (docs/SPEC.md §3).
public struct OrderFlowTotals: Sendable, Hashable {
    /// `sum(sign * size)` with the sign chosen by `side_source`, in lots.
    public var signedVolume: Lots = 0
    /// `sum(sign * size)` with the inferred sign, in lots.
    public var inferredSignedVolume: Lots = 0
    /// Volume of prints the quote rule could not sign, in lots.
    public var ambiguousVolume: Lots = 0
    /// Volume of trades that carried an exchange side, in lots.
    public var exchangeSidedVolume: Lots = 0
    /// Of those, volume whose inferred sign equals the exchange's, in lots.
    public var agreeingVolume: Lots = 0
    /// Prints classified.
    public var prints = 0
    /// Prints aligned to a quote older than `max_quote_staleness_ms`.
    public var staleAlignedPrints = 0

    public init() {}

    /// Share of exchange-sided volume whose inferred sign matched, or nil when no trade carried a side.
    public var inferenceAccuracy: Double? {
        exchangeSidedVolume == 0 ? nil : Double(agreeingVolume) / Double(exchangeSidedVolume)
    }

    public mutating func add(_ other: OrderFlowTotals) {
        signedVolume += other.signedVolume
        inferredSignedVolume += other.inferredSignedVolume
        ambiguousVolume += other.ambiguousVolume
        exchangeSidedVolume += other.exchangeSidedVolume
        agreeingVolume += other.agreeingVolume
        prints += other.prints
        staleAlignedPrints += other.staleAlignedPrints
    }
}

/// Groups trades into prints and signs each print once (docs/SPEC.md §3).
///
/// Trades with the same timestamp form one print: a split fill of one aggressive order. Its price is the
/// size-weighted mean in ticks, kept as the exact ratio `tickLots / lots` so comparisons never round.
public struct OrderFlowClassifier: Sendable {
    public let config: FeatureConfig

    /// The quote a print at the current timestamp aligns to.
    private var quoteBid: Ticks = 0
    private var quoteAsk: Ticks = 0
    private var quoteTs: Millis = 0
    private var hasQuote = false

    // The print being accumulated.
    private var printTs: Millis = 0
    private var printTickLots: Int64 = 0
    private var printLots: Lots = 0
    private var printBuyLots: Lots = 0
    private var printSellLots: Lots = 0
    private var printUnsidedTrades = 0
    private var printOpen = false
    // The aligned quote, captured at the print's first trade.
    private var printHasQuote = false
    private var printBid: Ticks = 0
    private var printAsk: Ticks = 0
    private var printQuoteTs: Millis = 0

    // The previous print, for the tick rule.
    private var previousTickLots: Int64 = 0
    private var previousLots: Lots = 0
    private var previousSign: Int64 = 0
    private var hasPrevious = false

    /// Totals of the prints finished since the last `takeTotals()`.
    public private(set) var totals = OrderFlowTotals()

    /// Keep every trade with the sign that counts (the dashboard's footprint); off in backtests.
    public var recordsTrades = false
    /// The open print's trades, while `recordsTrades`.
    private var printTrades: [(price: Ticks, lots: Lots, side: TakerSide)] = []
    /// Trades of the prints finished since the last `takeSignedTrades()`, while `recordsTrades`.
    public private(set) var signedTrades: [SignedTrade] = []

    public init(config: FeatureConfig) {
        self.config = config
    }

    /// Records the latest L1 quote; prints after it align to it. At equal timestamps the quote goes before the trade
    /// (docs/SPEC.md §1): a quote that arrives after trades of its own millisecond (the live streams do not order
    /// their topics) realigns the print still open at that millisecond, so arrival order and file order classify
    /// alike.
    @inline(__always)
    public mutating func onQuote(_ q: QuoteEvent) {
        quoteBid = q.bidPrice
        quoteAsk = q.askPrice
        quoteTs = q.ts
        hasQuote = true
        if printOpen && printTs == q.ts {
            printHasQuote = true
            printBid = q.bidPrice
            printAsk = q.askPrice
            printQuoteTs = q.ts
        }
    }

    /// Adds a trade; a trade with a new timestamp first finishes the print before it.
    @inline(__always)
    public mutating func onTrade(_ t: TradeEvent) {
        if printOpen && t.ts != printTs { finishPrint() }
        if !printOpen {
            printOpen = true
            printTs = t.ts
            printTickLots = 0
            printLots = 0
            printBuyLots = 0
            printSellLots = 0
            printUnsidedTrades = 0
            printHasQuote = hasQuote
            printBid = quoteBid
            printAsk = quoteAsk
            printQuoteTs = quoteTs
        }
        printTickLots += t.price * t.size
        printLots += t.size
        if recordsTrades { printTrades.append((t.price, t.size, t.side)) }
        switch t.side {
        case .buy: printBuyLots += t.size
        case .sell: printSellLots += t.size
        case .unknown: printUnsidedTrades += 1
        }
    }

    /// Finishes the open print, if any; call before reading the totals of a minute.
    public mutating func flush() {
        if printOpen { finishPrint() }
    }

    /// The signed trades since the last call (finish the open print first: `takeTotals` does).
    public mutating func takeSignedTrades() -> [SignedTrade] {
        defer { signedTrades.removeAll(keepingCapacity: true) }
        return signedTrades
    }

    /// Returns the totals since the last call and starts new ones.
    public mutating func takeTotals() -> OrderFlowTotals {
        flush()
        let t = totals
        totals = OrderFlowTotals()
        return t
    }

    private mutating func finishPrint() {
        printOpen = false
        let lots = printLots
        guard lots > 0 else { return }
        totals.prints += 1

        // 1–2. Quote rule against the latest quote at or before the print.
        var sign: Int64 = 0
        var ambiguous = true
        if printHasQuote {
            if printTs - printQuoteTs > config.maxQuoteStalenessMs { totals.staleAlignedPrints += 1 }
            let priceTimesLots = Int128(printTickLots)
            if priceTimesLots >= Int128(printAsk) * Int128(lots) {
                sign = 1
                ambiguous = false
            } else if priceTimesLots <= Int128(printBid) * Int128(lots) {
                sign = -1
                ambiguous = false
            }
        }
        // 3. Ambiguous prints: counted, and signed by the tick rule when enabled.
        if ambiguous {
            totals.ambiguousVolume += lots
            if config.useTickRuleFallback && hasPrevious {
                let now = Int128(printTickLots) * Int128(previousLots)
                let before = Int128(previousTickLots) * Int128(lots)
                sign = now > before ? 1 : (now < before ? -1 : previousSign)
            }
        }
        previousTickLots = printTickLots
        previousLots = lots
        previousSign = sign
        hasPrevious = true

        // 4. Exchange side, inference accuracy and the sign that counts.
        let sidedLots = printBuyLots + printSellLots
        totals.exchangeSidedVolume += sidedLots
        totals.agreeingVolume += sign == 1 ? printBuyLots : (sign == -1 ? printSellLots : 0)
        let inferredSigned = sign * lots
        totals.inferredSignedVolume += inferredSigned
        let exchangeSides: Bool
        switch config.sideSource {
        case .inferred: exchangeSides = false
        case .exchange: exchangeSides = true
        case .auto: exchangeSides = printUnsidedTrades == 0
        }
        totals.signedVolume += exchangeSides ? printBuyLots - printSellLots : inferredSigned
        if recordsTrades {
            for t in printTrades {
                signedTrades.append(
                    SignedTrade(price: t.price, lots: t.lots, sign: exchangeSides ? t.side.rawValue : Int8(sign)))
            }
            printTrades.removeAll(keepingCapacity: true)
        }
    }
}
