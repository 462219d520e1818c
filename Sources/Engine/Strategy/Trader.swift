/// The six raw setup detections of one minute (docs/SPEC.md §8, `signals.csv`).
public struct Detections: Sendable, Hashable {
    public var breakInLong = false
    public var breakInShort = false
    public var failedBreakoutLong = false
    public var failedBreakoutShort = false
    public var breakoutLong = false
    public var breakoutShort = false
}

/// What the Engine did at a minute close, and why: one row of `signals.csv`.
/// What a minute's decision did: the `action` column of signals.csv, the `signal.action` log event and
/// `atctl signals` (docs/STRATEGY.md). Its description is the raw value, so interpolation writes the same bytes.
public enum SignalAction: String, Sendable, Hashable, CaseIterable, CustomStringConvertible {
    case enterLong = "ENTER_LONG"
    case enterShort = "ENTER_SHORT"
    case flipLong = "FLIP_LONG"
    case flipShort = "FLIP_SHORT"
    case exit = "EXIT"
    case hold = "HOLD"

    public var description: String { rawValue }

    /// An entry (or a flip's entry) in `direction`.
    static func entry(_ direction: Direction, flip: Bool) -> SignalAction {
        switch (direction, flip) {
        case (.long, false): .enterLong
        case (.short, false): .enterShort
        case (.long, true): .flipLong
        case (.short, true): .flipShort
        }
    }
}

public struct SignalRecord: Sendable, Hashable {
    public var ts: Millis
    public var detections: Detections
    public var action: SignalAction
    /// The setup of an entry, the reason of an exit, or the reason code of a HOLD.
    public var reason: SignalReason
    public var above: AcceptanceSide
    public var below: AcceptanceSide
    /// A breakout waiting for its retest: direction and level.
    public var pendingRetest: (direction: Direction, level: Ticks)?

    public static func == (a: SignalRecord, b: SignalRecord) -> Bool {
        a.ts == b.ts && a.detections == b.detections && a.action == b.action && a.reason == b.reason
            && a.above == b.above
            && a.below == b.below && a.pendingRetest?.direction == b.pendingRetest?.direction
            && a.pendingRetest?.level == b.pendingRetest?.level
    }

    public func hash(into h: inout Hasher) {
        h.combine(ts)
        h.combine(action)
        h.combine(reason)
    }
}

/// A breakout waiting for its retest (docs/SPEC.md §8, retest mode).
struct PendingRetest: Sendable, Codable {
    var direction: Direction
    var level: Ticks
    var deadline: Millis
    var setAt: Millis
}

/// A candidate entry found at a minute close.
struct Candidate: Sendable, Codable {
    var setup: Setup
    var direction: Direction
    var stop: Ticks
    var tp1Twice: HalfTicks?
    var tp2Twice: HalfTicks?
    var breakoutLevel: Ticks?
    var fromRetest = false
    /// Set when the entry is sized.
    var sizing: EntrySizing?
}

/// An entry order on its way: the plan to apply when it fills.
struct WorkingEntry: Sendable, Codable {
    var intent: OrderIntent
    var candidate: Candidate
    var submittedAt: Millis
    var isLimit: Bool
    /// A timed-out limit whose cancel is on its way: a market order replaces it once the venue confirms it gone
    /// with nothing filled (`confirmCancelBeforeReplacing`).
    var replaceOnceGone: Bool?
}

/// The trading decisions of docs/SPEC.md §8–§11 as a state machine: setups, confirmations, vetoes, sizing and position
/// management. It sees closed minutes, trades (for stop and target triggers), quotes (for the mark), fills and the
/// passage of time (funding, the UTC day); it answers with order actions. No clock, no I/O: the backtest and the
/// agent drive the same code.
public struct Trader: Sendable, Codable {
    public private(set) var config: StrategyConfig
    public let instrument: Instrument

    public private(set) var above = AcceptanceSide(direction: .long)
    public private(set) var below = AcceptanceSide(direction: .short)
    private var pendingRetest: PendingRetest?

    public private(set) var position: Position?
    private var workingEntry: WorkingEntry?
    /// Exit orders working, by id.
    private var workingExits: [String: OrderIntent] = [:]

    // Account (docs/SPEC.md §11): cash holds realised P&L net of fees and funding.
    public private(set) var cash: Double
    public private(set) var feesPaid = 0.0
    public private(set) var fundingPaid = 0.0
    public private(set) var realizedGross = 0.0
    public private(set) var roundTrips: [RoundTrip] = []
    public private(set) var alerts: [EngineAlert] = []
    /// A veto from outside the rules (the agent's state: `observing`, `paused`, `halted`, `stale_feed`): setups are
    /// still detected and recorded with this reason, no entry is taken. Exits are managed as always.
    public var entryVeto: EntryVeto?
    /// Live: size entries from at most this equity (the smaller of the allocation and the exchange wallet); nil
    /// sizes from the books' own equity, as the backtest does.
    public var sizingEquityCap: Double?
    /// Live: funding is what the exchange charged (`bookFunding`), not the model of docs/SPEC.md §10; nil or false models it.
    public var fundingFromVenue: Bool?
    /// Live: a timed-out limit entry is replaced only once the venue confirms its cancel with nothing filled (a
    /// partial fill becomes the position instead). nil or false: replaced at once, as the paper venue allows.
    public var confirmCancelBeforeReplacing: Bool?

    private var markMidTwice: HalfTicks?
    private var cooldownUntil: Millis = .min
    public private(set) var killSwitchActive = false
    public private(set) var dayStartEquity: Double
    /// Cash at 00:00 UTC: the UTC day's realised P&L (fees and funding included) is `cash` less this. Optional so that
    /// a snapshot written before it existed reads back (nil: measured from `dayStartEquity`).
    private var dayStartCashValue: Double?
    /// `risk.max_daily_loss` reached today: entries are blocked until 00:00 UTC.
    private var dailyLossBlocked: Bool?
    private var lastTs: Millis?
    private var orderSeq = 0

    public init(config: StrategyConfig, instrument: Instrument) {
        self.config = config
        self.instrument = instrument
        cash = config.initialEquity
        dayStartEquity = config.initialEquity
    }

    // MARK: - Account

    /// Unrealised P&L of the open position at the mark (mid).
    public var unrealized: Double {
        guard let p = position, let mid = markMidTwice else { return 0 }
        return Double(mid - 2 * p.entryPrice) / 2 * Double(p.direction.sign) * lotTickValue * Double(p.qty)
    }

    /// Cash plus unrealised P&L at mid.
    public var equity: Double { cash + unrealized }

    /// Equity less the initial margin of the position and working orders (notional / max_leverage).
    public var availableMargin: Double {
        equity - initialMargin(includePosition: true)
    }

    private func initialMargin(includePosition: Bool) -> Double {
        var notional = 0.0
        if includePosition, let p = position { notional += instrument.price(p.entryPrice) * instrument.size(p.qty) }
        if let w = workingEntry, let mid = markMidTwice {
            let price: Double
            if case .limit(let px) = w.intent.type {
                price = instrument.price(px)
            } else {
                price = instrument.price(mid, over: 2)
            }
            notional += price * instrument.size(w.intent.qty)
        }
        return notional / config.maxLeverage
    }

    /// Heat (docs/SPEC.md §11): `|mark − stop| × qty` of the open position over the available margin it was sized
    /// from (the original's `sum(position_risk) / available_margin`, taken before the position reserved its own
    /// margin). Always a number: 0 when flat or before a quote; the margin is positive by construction (sizing refuses
    /// without it); a position restored without its sizing is measured against the equity.
    public var heat: Double {
        guard let p = position, let mid = markMidTwice else { return 0 }
        let risk = Double(abs(mid - p.stopTwice)) / 2 * lotTickValue * Double(p.qty)
        let base = p.entrySizing?.availableMargin ?? equity
        return base > 0 ? risk / base : 0
    }

    private var lotTickValue: Double { instrument.tick.doubleValue * instrument.qtyStep.doubleValue }

    /// The account at `ts`, as one row of the equity curve.
    public func equityRow(at ts: Millis) -> EquityRow {
        EquityRow(
            ts: ts, equity: equity, cash: cash, unrealized: unrealized, positionLots: signedQty, fees: feesPaid,
            funding: fundingPaid, heat: heat
        )
    }

    /// Whether an entry order is working.
    public var hasWorkingEntry: Bool { workingEntry != nil }

    /// Signed open quantity (positive long).
    public var signedQty: Lots { position.map { $0.qty * $0.direction.sign } ?? 0 }

    /// Cash at 00:00 UTC (or at the start): the reference of the day's realised P&L.
    public var dayStartCash: Double { dayStartCashValue ?? dayStartEquity }

    /// The UTC day's realised P&L, fees and funding included (the original kill switch's measure).
    public var dayRealizedPnL: Double { cash - dayStartCash }

    /// Whether `risk.max_daily_loss` blocks entries (until 00:00 UTC).
    public var dailyLossLimitReached: Bool { dailyLossBlocked == true }

    // MARK: - Time

    /// Applies what happens at fixed UTC times up to `ts` (exclusive of events at `ts`): funding at 00:00, 08:00,
    /// 16:00 and the new day's equity reference at 00:00, which also clears the kill switch.
    public mutating func advanceTime(to ts: Millis) {
        guard let last = lastTs else {
            lastTs = ts
            return
        }
        guard ts > last else { return }
        let eight: Millis = 8 * 3_600_000
        var boundary = (floorDiv(last, eight) + 1) * eight
        while boundary <= ts {
            if floorDiv(boundary, 86_400_000) * 86_400_000 == boundary {
                dayStartEquity = equity
                dayStartCashValue = cash
                killSwitchActive = false
                if dailyLossBlocked == true {
                    dailyLossBlocked = false
                    alerts.append(.dailyLossLimitLifted(ts: boundary))
                }
            }
            if fundingFromVenue != true, var p = position, let mid = markMidTwice {
                // Long pays when the rate is positive.
                let notional = instrument.price(mid, over: 2) * instrument.size(p.qty)
                let payment = notional * config.fundingRate8hBps / 10_000 * Double(p.direction.sign)
                cash -= payment
                fundingPaid += payment
                p.funding += payment
                position = p
            }
            boundary += eight
        }
        lastTs = ts
    }

    /// Updates the mark.
    public mutating func onQuote(_ q: QuoteEvent) {
        markMidTwice = q.bidPrice + q.askPrice
    }

    // MARK: - Triggers

    /// Stop and target triggers: the first trade at or beyond a level (docs/SPEC.md §10).
    public mutating func onTrade(_ t: TradeEvent) -> [OrderAction] {
        guard var p = position, !p.closing else { return [] }
        let px2 = 2 * t.price
        let d = p.direction.sign
        // Stop first; then TP2 (the whole rest); then TP1.
        if (px2 - p.stopTwice) * d <= 0 {
            return [exitAll(&p, .stop, at: t.ts)]
        }
        if let tp2 = p.tp2Twice, (px2 - tp2) * d >= 0 {
            return [exitAll(&p, .tp2, at: t.ts)]
        }
        if let tp1 = p.tp1Twice, let lots = p.tp1Lots, !p.tp1Triggered, (px2 - tp1) * d >= 0 {
            p.tp1Triggered = true
            let intent = exitIntent(p.direction, lots, .tp1, at: t.ts)
            workingExits[intent.id] = intent
            position = p
            return [.submit(intent)]
        }
        return []
    }

    private mutating func exitAll(_ p: inout Position, _ reason: ExitReason, at ts: Millis) -> OrderAction {
        p.closing = true
        let intent = exitIntent(p.direction, p.qty, reason, at: ts)
        workingExits[intent.id] = intent
        position = p
        return .submit(intent)
    }

    private mutating func exitIntent(_ direction: Direction, _ lots: Lots, _ reason: ExitReason, at ts: Millis)
        -> OrderIntent
    {
        OrderIntent(
            id: nextId("x", ts), side: direction.opposite, qty: lots, type: .market, reduceOnly: true,
            purpose: .exit(reason), decisionTs: ts
        )
    }

    /// `at-<kind>-<decision ms>-<sequence>`: deterministic, unique in a run, ≤ 36 characters of `[A-Za-z0-9-]`.
    private mutating func nextId(_ kind: String, _ ts: Millis) -> String {
        orderSeq += 1
        return "at-\(kind)-\(ts)-\(orderSeq)"
    }

    // MARK: - Fills

    /// Applies a fill to the position and the account.
    public mutating func onFill(_ fill: Fill) {
        cash -= fill.fee
        feesPaid += fill.fee
        switch fill.purpose {
        case .entry:
            guard let w = workingEntry, w.intent.id == fill.orderId else { return }
            workingEntry = nil
            let c = w.candidate
            let tp1Lots = c.tp1Twice == nil ? nil : Sizing.tp1Lots(fill.qty, pct: config.tp1Pct)
            position = Position(
                direction: fill.side, setup: c.setup, qty: fill.qty, entryQty: fill.qty, entryPrice: fill.price,
                entryTs: fill.ts, entryDecisionTs: fill.decisionTs, stopTwice: 2 * c.stop,
                tp1Twice: tp1Lots == nil ? nil : c.tp1Twice, tp2Twice: c.tp2Twice, tp1Lots: tp1Lots,
                breakoutLevel: c.breakoutLevel, fees: fill.fee, initialStopTwice: 2 * c.stop, entrySizing: c.sizing
            )
        case .exit(let reason):
            let exit = workingExits.removeValue(forKey: fill.orderId)
            guard var p = position else { return }
            // A whole-position exit that filled only in part (the exchange cancelled the rest): the position is no
            // longer closing, so its stop and targets trigger again for what is left.
            if let exit, fill.qty < exit.qty, reason != .tp1 { p.closing = false }
            let lots = min(fill.qty, p.qty)
            let gross = Double((fill.price - p.entryPrice) * p.direction.sign) * lotTickValue * Double(lots)
            cash += gross
            realizedGross += gross
            p.grossPnL += gross
            p.fees += fill.fee
            p.qty -= lots
            p.exitedQty += lots
            p.exitTickLots += fill.price * lots
            p.exitReasons.append(reason)
            p.lastExitTs = fill.ts
            if reason == .tp1 {
                p.tp1Done = true
                if config.moveStopToBreakevenAfterTP1 { p.stopTwice = 2 * p.entryPrice }
            }
            if p.qty == 0 {
                roundTrips.append(
                    RoundTrip(
                        setup: p.setup, direction: p.direction, entryTs: p.entryTs, entryPrice: p.entryPrice,
                        qty: p.entryQty, exitTs: fill.ts, exitTickLots: p.exitTickLots,
                        exitReasons: p.exitReasons, fees: p.fees, funding: p.funding, grossPnL: p.grossPnL,
                        initialStopTwice: p.initialStopTwice, tp1Twice: p.tp1Twice, tp2Twice: p.tp2Twice,
                        exitStopTwice: p.stopTwice,
                        entrySizing: p.entrySizing
                    )
                )
                position = nil
                // Cooldown after a position is fully closed; a flip re-enters at once.
                if reason != .flip { cooldownUntil = fill.ts + Millis(config.cooldownMinutes) * millisPerMinute }
            } else {
                position = p
            }
        }
    }

    /// Funding the exchange charged (positive paid, negative received), booked on the account and the position.
    public mutating func bookFunding(_ payment: Double) {
        cash -= payment
        fundingPaid += payment
        if var p = position {
            p.funding += payment
            position = p
        }
    }

    /// The market order that replaces a timed-out limit entry; it becomes the working entry.
    private mutating func replacement(of w: WorkingEntry, at now: Millis) -> OrderIntent {
        var market = w.intent
        market.id = nextId("e", now)
        market.type = .market
        market.decisionTs = now
        workingEntry = WorkingEntry(intent: market, candidate: w.candidate, submittedAt: now, isLimit: false)
        return market
    }

    /// The venue refused or cancelled an order (reduce-only with nothing to reduce, a cancel that won). Returns the
    /// market replacement of a timed-out limit entry whose cancel this confirms (`confirmCancelBeforeReplacing`).
    @discardableResult
    public mutating func onOrderGone(id: String) -> [OrderAction] {
        if let w = workingEntry, w.intent.id == id {
            workingEntry = nil
            if w.replaceOnceGone == true, position == nil, entryVeto == nil, !killSwitchBlocksEntries {
                return [.submit(replacement(of: w, at: lastTs ?? w.submittedAt))]
            }
        }
        if let exit = workingExits.removeValue(forKey: id), var p = position {
            if case .exit(let reason) = exit.purpose, reason != .tp1 { p.closing = false }
            if case .exit(.tp1) = exit.purpose { p.tp1Triggered = false }
            position = p
        }
        return []
    }

    // MARK: - Minute close

    /// The decision at a minute's close: position management, then setups, vetoes and sizing.
    public mutating func onMinuteClose(_ f: MinuteFeatures) -> (SignalRecord, [OrderAction]) {
        let now = f.decisionTs
        if let q = f.quote { markMidTwice = q.midTwiceTicks }
        var actions: [OrderAction] = []
        var exitReason: ExitReason?

        // The original's kill switch: the UTC day's realised loss blocks new entries until 00:00 UTC; the open
        // position keeps its stop, targets and time stop. A working entry, not yet a position, is cancelled.
        if let limit = config.maxDailyLoss, dailyLossBlocked != true, dayRealizedPnL <= -limit {
            dailyLossBlocked = true
            alerts.append(.dailyLossLimit(ts: now, realized: dayRealizedPnL, limit: limit))
            if let w = workingEntry, w.replaceOnceGone != true {
                actions.append(.cancel(id: w.intent.id))
                workingEntry = nil
            }
        }

        // The halting kill switch: day P&L with unrealised against equity at 00:00 UTC, fees and funding included.
        if let pct = config.maxDailyLossPct, !killSwitchActive, equity - dayStartEquity <= -pct * dayStartEquity {
            killSwitchActive = true
            alerts.append(
                .killSwitch(
                    ts: now, dayPnL: equity - dayStartEquity, maxDailyLossPct: pct, dayStartEquity: dayStartEquity))
            if let w = workingEntry {
                actions.append(.cancel(id: w.intent.id))
                workingEntry = nil
            }
            if var p = position, !p.closing {
                actions.append(exitAll(&p, .killSwitch, at: now))
                exitReason = .killSwitch
            }
        }

        // Position management: the time stop's clock, the breakout's close-inside exit, the time stop.
        if var p = position, !p.closing {
            if p.holdStartTs == nil { p.holdStartTs = now }
            position = p
            if let level = p.breakoutLevel, (f.close - level) * p.direction.sign <= 0 {
                actions.append(exitAll(&p, .closeInside, at: now))
                exitReason = .closeInside
            } else if let start = p.holdStartTs, now - start >= Millis(config.maxHoldMinutes) * millisPerMinute,
                !(config.extendIfProfitable && unrealized > roundTripFeeEstimate(p))
            {
                actions.append(exitAll(&p, .timeStop, at: now))
                exitReason = .timeStop
            }
        }

        // A limit entry unfilled after its timeout becomes a market order.
        if var w = workingEntry, w.isLimit, w.replaceOnceGone != true,
            now >= w.submittedAt + Millis(config.limitOrderTimeoutMinutes) * millisPerMinute
        {
            actions.append(.cancel(id: w.intent.id))
            if confirmCancelBeforeReplacing == true {
                w.replaceOnceGone = true
                workingEntry = w
            } else {
                actions.append(.submit(replacement(of: w, at: now)))
            }
        }

        // Setups.
        var detections = Detections()
        var candidates: [Candidate] = []
        let warm = f.index >= config.warmupMinutes - 1
        if f.valueAreaValid, let va = f.valueArea {
            let wasAbove = above.running
            let wasBelow = below.running
            let aboveLevel = above.level
            let belowLevel = below.level
            let buffer = config.stopBufferTicks
            if warm {
                // A. Break-in.
                if f.low < va.valTicks && f.close > va.valTicks && !wasBelow && f.crossesVAL
                    && confirms(.long, f, config.entry)
                {
                    detections.breakInLong = true
                    candidates.append(
                        Candidate(
                            setup: .breakIn, direction: .long, stop: f.low - buffer,
                            tp1Twice: va.pocTwiceTicks, tp2Twice: 2 * va.vahTicks))
                }
                if f.high > va.vahTicks && f.close < va.vahTicks && !wasAbove && f.crossesVAH
                    && confirms(.short, f, config.entry)
                {
                    detections.breakInShort = true
                    candidates.append(
                        Candidate(
                            setup: .breakIn, direction: .short, stop: f.high + buffer,
                            tp1Twice: va.pocTwiceTicks, tp2Twice: 2 * va.valTicks))
                }
                // C. Failed breakout (against the state before this bar).
                if wasAbove && f.close <= aboveLevel && f.high > aboveLevel
                    && Confirmation.confirmsFailure(.short, f, config: config, instrument: instrument)
                {
                    detections.failedBreakoutShort = true
                    candidates.append(
                        Candidate(
                            setup: .failedBreakout, direction: .short,
                            stop: max(above.highestHigh, f.high) + buffer,
                            tp1Twice: va.pocTwiceTicks, tp2Twice: 2 * va.valTicks))
                }
                if wasBelow && f.close >= belowLevel && f.low < belowLevel
                    && Confirmation.confirmsFailure(.long, f, config: config, instrument: instrument)
                {
                    detections.failedBreakoutLong = true
                    candidates.append(
                        Candidate(
                            setup: .failedBreakout, direction: .long,
                            stop: min(below.lowestLow, f.low) - buffer,
                            tp1Twice: va.pocTwiceTicks, tp2Twice: 2 * va.vahTicks))
                }
            }

            // Acceptance, every valid minute regardless of position.
            above.update(f)
            below.update(f)

            // A pending retest: cancelled by a close back inside (the sequence ended) or the timeout; entered on a
            // bar that comes back within N of the level and closes beyond it.
            if let r = pendingRetest, r.setAt < now {
                let side = r.direction == .long ? above : below
                let d = r.direction.sign
                if !side.running || side.level != r.level || (f.close - r.level) * d <= 0 || now > r.deadline {
                    pendingRetest = nil
                } else if warm {
                    let touched =
                        r.direction == .long
                        ? f.isAtMostCrossingDistance(above: r.level, f.low)
                        : f.isAtMostCrossingDistance(above: -r.level, -f.high)
                    if touched {
                        pendingRetest = nil
                        let stop = r.direction == .long ? f.low - buffer : f.high + buffer
                        candidates.append(
                            Candidate(
                                setup: .breakout, direction: r.direction, stop: stop,
                                breakoutLevel: r.level, fromRetest: true))
                    }
                }
            }

            // B. Breakout: accepted, not yet used, confirmed on this bar.
            if warm {
                for direction in [Direction.long, .short] {
                    let side = direction == .long ? above : below
                    guard side.isAccepted(k: config.acceptOutsideK), !side.used,
                        confirms(direction, f, config.breakout)
                    else { continue }
                    if direction == .long {
                        above.used = true
                        detections.breakoutLong = true
                    } else {
                        below.used = true
                        detections.breakoutShort = true
                    }
                    if config.enableRetestMode {
                        pendingRetest = PendingRetest(
                            direction: direction, level: side.level,
                            deadline: now + Millis(config.retestTimeoutMinutes) * millisPerMinute, setAt: now)
                    } else {
                        let stop = direction == .long ? side.lowestLow - buffer : side.highestHigh + buffer
                        candidates.append(
                            Candidate(
                                setup: .breakout, direction: direction, stop: stop,
                                breakoutLevel: side.level))
                    }
                }
            }
        }

        // Choose: A > C > B; both directions of the winning setup → no trade.
        var action: SignalAction = exitReason == nil ? .hold : .exit
        var reason = exitReason.map(SignalReason.exit) ?? .hold(.noSignal)
        if !f.valueAreaValid {
            if exitReason == nil { reason = .hold(.invalidVA) }
        } else if !warm {
            if exitReason == nil { reason = .hold(.warmup) }
        } else if detections.breakoutLong || detections.breakoutShort, candidates.isEmpty, exitReason == nil {
            reason = .hold(.retestPending)
        }
        let chosen = [Setup.breakIn, .failedBreakout, .breakout].lazy
            .map { s in candidates.filter { $0.setup == s } }
            .first { !$0.isEmpty }
        if let group = chosen {
            let (a, r, more) = decideEntry(group, f, exitIssued: exitReason != nil)
            actions.append(contentsOf: more)
            if a != nil || exitReason == nil {
                action = a ?? .hold
                reason = r
            }
        }

        let record = SignalRecord(
            ts: f.ts, detections: detections, action: action, reason: reason, above: above, below: below,
            pendingRetest: pendingRetest.map { ($0.direction, $0.level) }
        )
        return (record, actions)
    }

    private func confirms(_ d: Direction, _ f: MinuteFeatures, _ t: ConfirmationThresholds) -> Bool {
        Confirmation.confirms(d, f, thresholds: t, config: config, instrument: instrument)
    }

    /// Taker fees of opening and closing the position (docs/SPEC.md §11, time-stop extension).
    private func roundTripFeeEstimate(_ p: Position) -> Double {
        guard let mid = markMidTwice else { return 0 }
        let qty = instrument.size(p.qty)
        let notional = instrument.price(p.entryPrice) * qty + instrument.price(mid, over: 2) * qty
        return notional * config.takerFeeBps / 10_000
    }

    /// Vetoes, position rules and sizing for the winning setup's candidates. Returns the action label (nil: HOLD),
    /// the reason and the order actions.
    private mutating func decideEntry(_ group: [Candidate], _ f: MinuteFeatures, exitIssued: Bool) -> (
        SignalAction?, SignalReason, [OrderAction]
    ) {
        if Set(group.map(\.direction)).count > 1 { return (nil, .hold(.conflictingSignals), []) }
        var c = group[0]
        let now = f.decisionTs
        if killSwitchActive { return (nil, .hold(.killSwitch), []) }
        if dailyLossBlocked == true { return (nil, .hold(.dailyLossLimit), []) }
        if let veto = entryVeto { return (nil, .vetoed(veto), []) }
        guard let q = f.quote, now - q.ts <= Millis(config.staleFeedSeconds) * 1000 else {
            return (nil, .hold(.staleData), [])
        }
        if workingEntry != nil { return (nil, .hold(.entryWorking), []) }
        var flip = false
        if let p = position {
            if p.direction == c.direction { return (nil, .hold(exitIssued ? .exiting : .inPosition), []) }
            guard config.enableFlipOnSignal else { return (nil, .hold(.inPosition), []) }
            flip = true
        } else if now < cooldownUntil {
            return (nil, .hold(.cooldown), [])
        }

        // Expected fill: the quote beyond slippage for a market order, the trigger bar's close for a limit.
        let slip = config.entrySlippageTicks
        let marketPrice = c.direction == .long ? q.askPrice + slip : q.bidPrice - slip
        let limitMarketable = c.direction == .long ? f.close >= q.askPrice : f.close <= q.bidPrice
        let useLimit = config.useLimitForEntry && !limitMarketable
        let expected = useLimit ? f.close : marketPrice
        // Targets are fixed at entry from this bar's value area; one that the entry already passed is no target.
        if let tp2 = c.tp2Twice, (tp2 - 2 * expected) * c.direction.sign <= 0 {
            return (nil, .hold(.targetBehindEntry), [])
        }
        if let tp1 = c.tp1Twice, (tp1 - 2 * expected) * c.direction.sign <= 0 { c.tp1Twice = nil }
        let margin = min(equity, sizingEquityCap ?? .infinity) - initialMargin(includePosition: !flip)
        guard
            let size = Sizing.size(
                direction: c.direction, entry: expected, stop: c.stop, availableMargin: margin,
                config: config, instrument: instrument)
        else { return (nil, .hold(.invalidStop), []) }
        if size.leverageCapHit {
            alerts.append(
                .leverageCapHit(ts: now, setup: c.setup, direction: c.direction, maxLeverage: config.maxLeverage))
        }
        let minLots = instrument.minQty.count(of: instrument.qtyStep) ?? 1
        guard size.lots >= max(minLots, 1) else { return (nil, .hold(.sizeBelowMin), []) }
        c.sizing = EntrySizing(
            availableMargin: margin, risk: margin * config.riskPct, leverageCapHit: size.leverageCapHit)

        var actions: [OrderAction] = []
        if flip, var p = position, !p.closing {
            actions.append(exitAll(&p, .flip, at: now))
        }
        let intent = OrderIntent(
            id: nextId("e", now), side: c.direction, qty: size.lots, type: useLimit ? .limit(f.close) : .market,
            reduceOnly: false, purpose: .entry(c.setup), decisionTs: now, stopLoss: flip ? nil : c.stop
        )
        workingEntry = WorkingEntry(intent: intent, candidate: c, submittedAt: now, isLimit: useLimit)
        actions.append(.submit(intent))
        return (.entry(c.direction, flip: flip), c.fromRetest ? .breakoutRetest : .entry(c.setup), actions)
    }

    // MARK: - End

    /// Closes whatever is open at the end of the data (reason `end_of_data`): cancels a working entry and
    /// returns the exit to fill.
    public mutating func closeAtEnd(at ts: Millis) -> [OrderAction] { closeAll(.endOfData, at: ts) }

    /// Cancels a working entry and closes the position with a market order for `reason` (the agent's flatten).
    public mutating func closeAll(_ reason: ExitReason, at ts: Millis) -> [OrderAction] {
        var actions: [OrderAction] = []
        if let w = workingEntry {
            actions.append(.cancel(id: w.intent.id))
            workingEntry = nil
        }
        if var p = position, !p.closing { actions.append(exitAll(&p, reason, at: ts)) }
        return actions
    }

    // MARK: - The agent's levers

    /// Alerts raised since the last call.
    public mutating func takeAlerts() -> [EngineAlert] {
        defer { alerts.removeAll() }
        return alerts
    }

    /// The operator clears the kill switch: trading may resume, and the day's loss is measured from the equity now.
    public mutating func resetKillSwitch() {
        killSwitchActive = false
        dayStartEquity = equity
    }

    /// Whether either kill switch keeps entries out.
    public var killSwitchBlocksEntries: Bool { killSwitchActive || dailyLossBlocked == true }

    /// New parameters (a config reload, or a restart that restores a snapshot); the state is kept.
    public mutating func reconfigure(_ config: StrategyConfig) { self.config = config }

    /// The entry order working, if any.
    public var workingEntryOrder: OrderIntent? { workingEntry?.intent }

    /// The exit orders working.
    public var workingExitOrders: [OrderIntent] { workingExits.values.sorted { $0.id < $1.id } }

    /// Until when new entries wait after an exit (docs/SPEC.md §11 cooldown).
    public var cooldownEnds: Millis? { cooldownUntil == .min ? nil : cooldownUntil }
}

/// USDT rounded to the cent, as alerts show money (the Engine's and the agent's).
public func money(_ v: Double) -> String { formatNumber((v * 100).rounded() / 100) }
