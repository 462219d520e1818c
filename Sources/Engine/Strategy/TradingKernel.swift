/// What the kernel did with an order or a fill, in the order it did it. The driver (the backtester, the agent)
/// records it, logs it and, in the agent, tells its venue; it decides nothing more about it.
public enum KernelOutcome: Sendable, Hashable {
    /// An order entered the book, decided at `at` (market time).
    case submitted(OrderIntent, at: Millis)
    /// The trader cancels a working order. `removedFromBook`: the paper book held it and took it off, and the trader
    /// knows it is gone; false where the exchange fills (live), which confirms the cancel later.
    case cancelled(id: String, removedFromBook: Bool)
    /// A fill booked by the trader (a reduce-only exit capped at the open position).
    case filled(Fill)
    /// A fill not booked, and why.
    case refused(Fill, FillRefusal)
}

/// Why a fill was not booked.
public enum FillRefusal: Sendable, Hashable {
    /// A reduce-only exit found no position to reduce; the trader is told the order is gone.
    case nothingToReduce
    /// An entry in the direction of a position already open: never stacked (docs/SPEC.md §7, one position).
    case stacking
}

/// The one step of trading (docs/ARCHITECTURE.md, "One kernel"): the feature pipeline, the trader and the paper book
/// stepped in one documented order, free of I/O, clocks and threads. The backtester and the agent both drive it, so
/// what the agent decides on a stream of events is what a backtest of the same events decides.
///
/// For each market event, in this order:
/// 1. `take(_:)`: market time moves to the event (funding, the day's kill-switch reset) and the pipeline takes
///    it; it returns the minutes the event closed (an event of a later minute closes the ones before it).
/// 2. `decide(_:veto:)` for each of those minutes, oldest first: the trader's decision at the close; its orders
///    enter the book. The driver may act between two decisions (the agent flattens on the kill switch).
/// 3. `deliver(_:)`: the event itself reaches the trader and the book: a quote marks the position and fills
///    market orders, a trade fills limit orders and triggers stops and targets.
/// Minutes also close on the clock (`advanceClock(to:)`, the agent's tick) and at the end of the data
/// (`finishData()`); they are decided the same way. Orders and fills that do not come from market data (the
/// operator's flatten, the exchange's executions in live) go through `execute(_:at:)` and `book(_:)`.
public struct TradingKernel: Sendable {
    /// Computes the minutes from the events; nil when they are replayed from features computed before.
    public var pipeline: FeaturePipeline?
    private var precomputed: [MinuteFeatures] = []
    private var precomputedNext = 0
    public var trader: Trader
    /// The working orders; where `fillsOnBook`, also the paper fill model of docs/SPEC.md §10.
    public var book: PaperFillModel
    /// Whether the book fills the orders at market data (backtest, sim, paper, shadow). Live sets it false: the
    /// exchange's executions are the fills, booked with `book(_:)`.
    public var fillsOnBook = true
    /// The latest market time taken.
    public private(set) var marketTs: Millis = .min
    /// The latest quote delivered.
    public private(set) var latestQuote: QuoteEvent?
    /// Minutes returned by `take`, `advanceClock` or `finishData` and not decided yet: `deliver` refuses to run
    /// before they are, so that no driver can apply an event ahead of the decisions it closed.
    private var undecided = 0

    public init(features: FeatureConfig, strategy: StrategyConfig, instrument: Instrument) {
        pipeline = FeaturePipeline(config: features)
        trader = Trader(config: strategy, instrument: instrument)
        book = PaperFillModel(config: strategy, instrument: instrument)
    }

    /// Replays features computed earlier from the same events (a grid search shares them between runs that differ
    /// only in strategy parameters). Feed the same events: each minute closes at the first event at or after its
    /// decision time, exactly as the pipeline would close it.
    public init(precomputed: [MinuteFeatures], strategy: StrategyConfig, instrument: Instrument) {
        self.precomputed = precomputed
        trader = Trader(config: strategy, instrument: instrument)
        book = PaperFillModel(config: strategy, instrument: instrument)
    }

    /// Adds minutes to replay, computed from events not taken yet (a streamed grid computes each chunk's minutes
    /// just before its runs take the chunk): every minute that an event about to be taken closes must be here
    /// before it is taken. The minutes already replayed are let go of.
    public mutating func supply(_ minutes: [MinuteFeatures]) {
        precondition(pipeline == nil, "minutes supplied to a kernel that computes its own")
        if precomputedNext > 0 {
            precomputed.removeFirst(precomputedNext)
            precomputedNext = 0
        }
        precomputed += minutes
    }

    // MARK: - 1. Market time and minutes

    /// Step 1: market time moves to the event and the pipeline takes it. Returns the minutes it closed, to decide.
    public mutating func take(_ event: MarketEvent) -> [MinuteFeatures] {
        precondition(undecided == 0, "a market event was taken before the minutes closed earlier were decided")
        marketTs = max(marketTs, event.ts)
        trader.advanceTime(to: marketTs)
        if pipeline != nil {
            pipeline!.process(event)
            return pending(pipeline!.closed.isEmpty ? [] : pipeline!.takeClosed())
        }
        var closed: [MinuteFeatures] = []
        while precomputedNext < precomputed.count && precomputed[precomputedNext].decisionTs <= event.ts {
            closed.append(precomputed[precomputedNext])
            precomputedNext += 1
        }
        return pending(closed)
    }

    /// The minutes whose decision time has passed at `now` with no event to close them (a quiet or dead feed).
    public mutating func advanceClock(to now: Millis) -> [MinuteFeatures] {
        precondition(undecided == 0, "the clock moved before the minutes closed earlier were decided")
        guard pipeline?.hasStarted == true else { return [] }
        pipeline!.advanceClock(to: now)
        return pending(pipeline!.closed.isEmpty ? [] : pipeline!.takeClosed())
    }

    /// End of data: the minute still open, and every precomputed minute not closed yet.
    public mutating func finishData() -> [MinuteFeatures] {
        precondition(undecided == 0, "the data ended before the minutes closed earlier were decided")
        if pipeline != nil {
            pipeline!.finish()
            return pending(pipeline!.takeClosed())
        }
        let rest = Array(precomputed[precomputedNext...])
        precomputedNext = precomputed.count
        return pending(rest)
    }

    private mutating func pending(_ minutes: [MinuteFeatures]) -> [MinuteFeatures] {
        undecided = minutes.count
        return minutes
    }

    /// Data is missing from `from` to `to`: its minutes count as missing in the window, not quiet
    /// (`FeaturePipeline.markMissing`). Nothing with precomputed features (they were computed with the gaps).
    public mutating func markMissing(from: Millis, to: Millis) {
        pipeline?.markMissing(from: from, to: to)
    }

    // MARK: - 2. Decisions

    /// Step 2: the trader's decision at `f`'s close, with the driver's entry veto (nil in a backtest); its orders
    /// enter the book at the decision time.
    public mutating func decide(_ f: MinuteFeatures, veto: EntryVeto?) -> (SignalRecord, [KernelOutcome]) {
        if undecided > 0 { undecided -= 1 }
        trader.entryVeto = veto
        let (record, actions) = trader.onMinuteClose(f)
        return (record, execute(actions, at: f.decisionTs))
    }

    // MARK: - 3. The event

    /// Step 3: the event reaches the trader and the book, after the minutes it closed were decided.
    public mutating func deliver(_ event: MarketEvent) -> [KernelOutcome] {
        precondition(undecided == 0, "an event was delivered before the minutes it closed were decided")
        switch event {
        case .quote(let q):
            latestQuote = q
            trader.onQuote(q)
            return fillsOnBook ? book(book.onQuote(q)) : []
        case .trade(let t):
            var out = fillsOnBook ? book(book.onTrade(t)) : []
            out += execute(trader.onTrade(t), at: t.ts)
            return out
        }
    }

    // MARK: - Orders and fills

    /// The trader's orders: a submit enters the book; a cancel takes the order off the paper book (and tells the
    /// trader it is gone) where the book fills.
    public mutating func execute(_ actions: [OrderAction], at ts: Millis) -> [KernelOutcome] {
        var out: [KernelOutcome] = []
        for a in actions {
            switch a {
            case .submit(let intent):
                book.submit(intent, at: ts)
                out.append(.submitted(intent, at: ts))
            case .cancel(let id):
                let removed = fillsOnBook && book.cancel(id: id)
                out.append(.cancelled(id: id, removedFromBook: removed))
                if removed { out += execute(trader.onOrderGone(id: id), at: ts) }
            }
        }
        return out
    }

    /// Books fills with the trader: a reduce-only exit never more than the open position and nothing when flat; an
    /// entry never on a position already open in its direction.
    public mutating func book(_ fills: [Fill]) -> [KernelOutcome] {
        var out: [KernelOutcome] = []
        for var fill in fills {
            if !fill.purpose.isEntry {
                let open = trader.position?.qty ?? 0
                guard open > 0 else {
                    trader.onOrderGone(id: fill.orderId)
                    out.append(.refused(fill, .nothingToReduce))
                    continue
                }
                if fill.qty > open {
                    fill.fee = fill.fee * Double(open) / Double(fill.qty)
                    fill.qty = open
                }
            } else if let p = trader.position, p.direction == fill.side {
                out.append(.refused(fill, .stacking))
                continue
            }
            trader.onFill(fill)
            out.append(.filled(fill))
        }
        return out
    }

    /// Closes everything at `ts` (the operator's flatten, the end of the data): the working entry cancelled, the
    /// position closed at market.
    public mutating func closeAll(_ reason: ExitReason, at ts: Millis) -> [KernelOutcome] {
        execute(trader.closeAll(reason, at: ts), at: ts)
    }

    /// Fills what the book holds at the last quote known, restamped at `ts` (the end of the data; a flatten with
    /// market data down). The trader's mark stays where it was.
    public mutating func fillAtLatestQuote(_ q: QuoteEvent, ts: Millis) -> [KernelOutcome] {
        var last = q
        last.ts = ts
        return book(book.onQuote(last))
    }
}
