import AgentConfig
public import AgentSupport
import Engine
import Exchange
import Logging

/// The engine's side of its venue (docs/DESIGN.md, "Venues"): commands go out, `VenueEvent`s come back and are
/// applied here. Only here do the venue's reports change the trader, the paper book or the supervisor, and the
/// `VenueRole` says how: shadow compares and alerts, live books what the exchange did.
extension AgentEngine {
    /// Shadow and live: the orders go to the Bybit account behind `gateway` (the testnet in shadow, the exchange in
    /// live), before `recover`.
    public func trade(on gateway: ExchangeMirror) { attach(gateway) }

    func attach(_ gateway: any ExchangeGateway) {
        let role: VenueRole =
            settings.mode == .live ? .live(maxUnprotectedSeconds: settings.live.maxUnprotectedSeconds) : .shadow
        venue = ExchangeVenue(role: role, gateway: gateway, settings: settings, logger: logger, metrics: metrics)
        kernel.fillsOnBook = role.fillsOnPaperBook
        applyFillRules(&trader, exchangeFills: role.exchangeFills)
    }

    /// What the venue is shown of the books, now.
    var venueView: VenueView {
        VenueView(
            position: trader.position, signedQty: trader.signedQty, workingOrders: kernel.book.workingOrders,
            lastMarketTs: lastMarketTs, flattening: supervisor.state == .flattening)
    }

    /// A report from the exchange: its events applied, then the venue settles against the books as they are now.
    func onVenueReport(_ r: VenueReport, wall: WallTime) {
        applyVenue(venue.report(r, view: venueView, wall: wall), wall: wall)
        applyVenue(venue.settle(venueView, wall: wall), wall: wall)
    }

    /// Before READY: the venue reconciled against the restored state, its events applied in two steps (what the
    /// exchange's reports explain, then what still disagrees).
    func reconcileVenue(wall: WallTime) {
        let store = store
        applyVenue(
            venue.reconcile(
                venueView, bookedIds: { try store.bookedExecutionIds(since: $0) }, retryForMs: startRetryMs, wall: wall),
            wall: wall)
        applyVenue(venue.finishReconcile(venueView, wall: wall), wall: wall)
    }

    /// What the venue reported, applied in order.
    func applyVenue(_ events: [VenueEvent], wall: WallTime) {
        for e in events {
            switch e {
            case .alert(let a):
                raise(a, wall: wall)
            case .executionsSeen(let rows):
                batch.executions += rows
            case .orderOver(let over):
                // Shadow: the paper book decides; the venue compared the testnet's fill already.
                if venue.role.exchangeFills { bookOrderOver(over, wall: wall) }
            case .foreignExecution(let e, let lots, let ticks):
                if venue.role.exchangeFills {
                    bookForeign(e, lots: lots, ticks: ticks, wall: wall)
                } else {
                    logger.warning(
                        "testnet execution of an order not in flight",
                        metadata: [
                            "event": "venue.foreign_execution", "order_link_id": "\(e.orderLinkId)",
                            "order_id": "\(e.orderId)", "exec_type": "\(e.execType)",
                            "stop_order_type": "\(e.stopOrderType)", "qty": "\(sizeText(lots))",
                            "price": "\(priceText(ticks))",
                        ])
                }
            case .funding(let e, let paid):
                if venue.role.exchangeFills {
                    trader.bookFunding(paid)
                    logger.notice(
                        "funding charged by the exchange",
                        metadata: ["event": "funding.booked", "fee": "\(formatNumber(paid))", "exec_id": "\(e.execId)"])
                } else {
                    logger.info(
                        "testnet funding",
                        metadata: [
                            "event": "funding.venue", "fee": "\(formatNumber(paid))",
                            "paper_funding_total": "\(formatNumber(trader.fundingPaid))",
                        ])
                }
            case .wallet(let equity):
                if venue.role.readsWallet { walletRead(equity, wall: wall) }
            case .positionsDisagree(let text):
                if venue.role.exchangeFills && supervisor.state != .flattening {
                    note(supervisor.halt(.positionMismatch, text), wall: wall)
                }
            case .executionsWhileDown(let executions, let venuePosition):
                if venue.role.exchangeFills {
                    bookWhileDown(executions, venuePosition: venuePosition, wall: wall)
                }
            case .reconciliationFailed(let problems):
                // Alerted and halted; nothing changed.
                raise(alerts.reconciliationMismatch(problems), wall: wall)
                note(supervisor.halt(.positionMismatch, problems.joined(separator: "; ")), wall: wall)
            case .unreachableAtStart(let seconds, let error):
                raise(alerts.venueUnreachableAtStart(seconds: seconds, error: error), wall: wall)
                note(supervisor.halt(.venueUnreachable, error), wall: wall)
            case .flattened(let steps):
                flattenSteps.append(contentsOf: steps)
                progressFlatten(wall: wall)
            case .unprotectedTooLong(let position, let seconds):
                raise(
                    alerts.unprotectedPosition(
                        position: position, seconds: seconds, limitSeconds: settings.live.maxUnprotectedSeconds),
                    wall: wall)
                if supervisor.state != .flattening { startFlatten(.unprotectedPosition, wall: wall) }
            }
        }
    }

    // MARK: - Live: the exchange's books are the truth

    /// One of our orders is over at the exchange (live): it leaves the book, and what executed is the fill.
    private func bookOrderOver(_ over: VenueOrderOver, wall: WallTime) {
        let intent = over.intent
        let partial = over.lots > 0 && over.lots < intent.qty
        _ = kernel.book.cancel(id: intent.id)
        if over.lots == 0 {
            batch.orderUpdates.append(
                OrderUpdate(
                    id: intent.id, status: over.status == .rejected ? .rejected : .cancelled, wallTs: wall.millis))
            // A timed-out limit entry confirmed gone with nothing filled: its market replacement goes now.
            execute(trader.onOrderGone(id: intent.id), at: max(lastMarketTs, over.ts), wall: wall)
            return
        }
        // The exchange's fill: the quantity that executed, at its volume-weighted price rounded to the tick.
        let fill = Fill(
            orderId: intent.id, side: intent.side, qty: over.lots, price: roundedDiv(over.tickLots, over.lots),
            ts: over.ts, decisionTs: intent.decisionTs, liquidity: over.isMaker ? .maker : .taker, fee: over.fee,
            purpose: intent.purpose, referenceMidTwice: lastQuote.map { $0.bidPrice + $0.askPrice })
        apply([fill], wall: wall)
        if partial {
            batch.orderUpdates.append(
                OrderUpdate(id: intent.id, status: .partiallyFilledCancelled, wallTs: wall.millis))
        }
    }

    /// At start (live): what the exchange did on its own while the agent was down, as far as it explains the gap
    /// between the restored position and the exchange's.
    private func bookWhileDown(_ executions: [Execution], venuePosition: Lots, wall: WallTime) {
        for e in executions {
            guard trader.signedQty != venuePosition, let lots = settings.instrument.lots(e.execQty),
                let ticks = settings.instrument.ticks(e.execPrice), let p = trader.position, e.side != p.direction,
                abs(trader.signedQty - lots * p.direction.sign - venuePosition) < abs(trader.signedQty - venuePosition),
                venue.claimExecution(e.execId)
            else { continue }
            batch.executions.append(ExecutionRow(execId: e.execId, execTime: e.execTime))
            bookForeign(e, lots: lots, ticks: ticks, wall: wall)
        }
    }

    /// An execution of no order in flight (live). A reduction of the position by the position's stop, the venue
    /// flatten's close, ADL, liquidation or delivery is booked as the exchange reports it; ADL, liquidation and
    /// delivery halt entries until `atctl resume`. Anything else is a mismatch that halts.
    func bookForeign(_ e: Execution, lots: Lots, ticks: Ticks, wall: WallTime) {
        let reason: ExitReason?
        switch e.execType {
        case .adlTrade: reason = .adl
        case .bustTrade: reason = .liquidation
        case .delivery, .settle: reason = .delivery
        case .trade:
            if e.orderLinkId.hasPrefix("at-f-") {
                reason = .flatten
            } else if e.stopOrderType.isConditional {
                reason = e.stopOrderType.isTakeProfit ? .tp2 : .stop
            } else {
                reason = nil
            }
        // A block trade, a moved position or a kind this client does not know: unexplained, a mismatch.
        case .blockTrade, .movePosition, .funding, .unknown: reason = nil
        }
        let text =
            "\(e.execType)\(e.stopOrderType.isConditional ? " (\(e.stopOrderType))" : "") \(e.side) \(sizeText(lots)) at \(priceText(ticks))"
        if let reason, let p = trader.position, e.side != p.direction {
            let booked = min(lots, p.qty)
            logger.warning(
                "position reduced by the exchange: \(text)",
                metadata: [
                    "event": "order.filled", "venue": "exchange", "order_id": "\(e.orderId)", "exec_id": "\(e.execId)",
                    "exec_type": "\(e.execType)", "qty": "\(sizeText(booked))", "price": "\(priceText(ticks))",
                    "purpose": "exit:\(reason.rawValue)",
                ])
            apply(
                [
                    Fill(
                        orderId: "venue-\(e.orderId)", side: e.side, qty: booked, price: ticks, ts: e.execTime,
                        decisionTs: e.execTime, liquidity: e.isMaker ? .maker : .taker,
                        fee: Double(e.execFee.description) ?? 0, purpose: .exit(reason), referenceMidTwice: nil)
                ], wall: wall)
            if let cause = HaltCause(closedByExchange: reason) {
                raise(alerts.closedByExchange(cause, qty: booked, execution: text), wall: wall)
                if supervisor.state != .flattening && supervisor.state != .halted {
                    note(supervisor.halt(cause, text), wall: wall)
                }
                if let w = trader.workingEntryOrder {
                    execute([.cancel(id: w.id)], at: lastMarketTs, wall: wall)
                }
            }
            if booked < lots {
                raise(alerts.closedMoreThanHeld(closed: lots, held: booked), wall: wall)
                note(supervisor.halt(.positionMismatch, text), wall: wall)
            }
            return
        }
        if reason == .stop || reason == .flatten || reason == .tp2 {
            // The position's own stop or the venue flatten closing what the agent already booked closed: nothing to do.
            logger.notice(
                "exchange execution after the agent's position was closed",
                metadata: ["event": "venue.late_execution", "exec_id": "\(e.execId)", "detail": "\(text)"])
            return
        }
        raise(alerts.foreignExecution(text, orderId: e.orderId), wall: wall)
        note(supervisor.halt(.positionMismatch, "foreign execution \(e.orderId)"), wall: wall)
    }

    /// The wallet's equity caps sizing (with `live.allocated_equity`); an agent richer than the wallet is alerted.
    private func walletRead(_ equity: Double, wall: WallTime) {
        let live = settings.live
        let cap = live.allocatedEquity > 0 ? min(live.allocatedEquity, equity) : equity
        trader.sizingEquityCap = cap
        if trader.equity > equity * (1 + live.walletTolerancePct) {
            if !walletAlerted {
                walletAlerted = true
                raise(alerts.walletMismatch(agentEquity: trader.equity, wallet: equity, sizedFrom: cap), wall: wall)
            }
        } else {
            walletAlerted = false
        }
    }

    // MARK: - Flatten

    /// While flattening, what the books need beyond the trader's close. Paper fills: a close no fresh quote filled
    /// within `flattenQuoteWaitMs` fills at the last quote known. Exchange fills: books the exchange confirmed flat
    /// are corrected, and an exit that filled only in part is closed.
    func progressVenueFlatten(wall: WallTime) {
        if venue.role.fillsOnPaperBook {
            fillAtLastQuote(wall: wall)
            return
        }
        let flat = trader.position == nil && kernel.book.workingOrders.isEmpty && trader.workingEntryOrder == nil
        if venue.flattenOutcome == .confirmed, !flat, !venue.hasOrdersInFlight, let p = trader.position {
            // The exchange is confirmed flat, yet the agent's books still hold a position: they were wrong. The
            // exchange is the truth; the rest is booked closed at the last mid, loudly, so that the flatten ends.
            let mid = lastQuote.map { ($0.bidPrice + $0.askPrice) / 2 } ?? p.entryPrice
            raise(alerts.exchangeFlatBooksWereNot(qty: p.qty, direction: p.direction, lastMid: mid), wall: wall)
            flattenSteps.append(
                "books corrected: \(sizeText(p.qty)) the exchange no longer held, closed at the last mid")
            for w in trader.workingExitOrders { trader.onOrderGone(id: w.id) }
            let now = clock.now(wall: wall)
            apply(
                [
                    Fill(
                        orderId: "venue-flat-\(wall)", side: p.direction.opposite, qty: p.qty, price: mid, ts: now,
                        decisionTs: now, liquidity: .taker, fee: 0, purpose: .exit(.flatten), referenceMidTwice: nil)
                ],
                wall: wall)
            for w in kernel.book.workingOrders { _ = kernel.book.cancel(id: w.id) }
        }
        if let p = trader.position, !p.closing, venue.flattenOutcome == .pending, !venue.hasOrdersInFlight {
            // An exit that filled only in part: close the rest.
            let now = max(lastMarketTs, clock.now(wall: wall))
            execute(trader.closeAll(.flatten, at: now), at: lastMarketTs, wall: wall)
        }
    }

    /// When no quote arrives to fill a flatten's close, it fills at the last quote after this long (wall ms; paper
    /// and shadow).
    static let flattenQuoteWaitMs: Int64 = 2_000

    /// A flatten's close that no fresh quote filled within `flattenQuoteWaitMs` fills at the last quote known.
    private func fillAtLastQuote(wall: WallTime) {
        guard let started = flattenStartedWall, wall - started >= Self.flattenQuoteWaitMs, let q = lastQuote else {
            return
        }
        let ts = max(lastMarketTs, clock.now(wall: wall)) + 1
        let outcomes = kernel.fillAtLatestQuote(q, ts: ts)
        guard !outcomes.isEmpty else { return }
        flattenSteps.append(
            "no fresh quote: paper close filled at the last quote (\(isoTime(q.ts, milliseconds: true)))")
        logger.warning("flatten filled at the last known quote", metadata: ["event": "flatten.stale_quote"])
        handle(outcomes, wall: wall)
    }

    /// The reply to an operator whose flatten ended with the venue not confirmed flat.
    func unconfirmedFlattenText(steps: [String]) -> String {
        let head =
            venue.role.exchangeFills
            ? "the agent's books are flat and trading is halted, but the exchange position is NOT confirmed flat: "
            : "paper flat and halted, but the testnet position is NOT confirmed flat: "
        return head + steps.joined(separator: "; ")
    }

    // MARK: - The paper book

    /// An order on the paper book (sim, paper and shadow) is acknowledged at once.
    func acknowledgedOnPaper(_ intent: OrderIntent) {
        logger.info(
            "order acknowledged by the paper venue", metadata: orderMetadata(intent, event: "order.acknowledged"))
    }

    /// A cancel on the paper book (sim, paper and shadow): the order is gone at once (the kernel told the trader).
    func cancelledOnPaper(_ id: String, wall: WallTime) {
        batch.orderUpdates.append(OrderUpdate(id: id, status: .cancelled, wallTs: wall.millis))
        logger.notice("order cancelled", metadata: ["event": "order.cancelled", "order_link_id": "\(id)"])
    }
}
