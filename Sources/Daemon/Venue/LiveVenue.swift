import AgentConfig
import AgentSupport
import Engine
import Exchange
import Logging

/// Live: the exchange's books are the truth (docs/EXCHANGE.md). Its executions are the fills, at the quantity that
/// executed; what it did on its own (the position's stop, ADL, liquidation, delivery, funding) is booked as
/// reported; the wallet caps sizing; a position left without an exchange-held stop too long is flattened; and
/// what stays unexplained halts trading. The paper book only keeps the working orders.
final class LiveVenue: ExchangeVenue {
    override var name: String { "exchange" }
    /// Live asks the operator again after every start.
    override var keepsActivationAcrossRestarts: Bool { false }

    /// Funding as the exchange charges it, not the model's; a timed-out limit entry is replaced only once the
    /// exchange confirms its cancel.
    override func adapt(_ trader: inout Trader) { applyFillRules(&trader, exchangeFills: true) }

    override func progressFlatten(wall: Int64) {
        let trader = engine.trader
        let flat = trader.position == nil && book.workingOrders.isEmpty && trader.workingEntryOrder == nil
        if state.flattenResult == true, !flat, !state.book.hasOrdersInFlight, let p = trader.position {
            // The exchange is confirmed flat, yet the agent's books still hold a position: they were wrong. The
            // exchange is the truth; the rest is booked closed at the last mid, loudly, so that the flatten ends.
            let mid = engine.lastQuote.map { ($0.bidPrice + $0.askPrice) / 2 } ?? p.entryPrice
            engine.raise(
                engine.alerts.exchangeFlatBooksWereNot(qty: p.qty, direction: p.direction, lastMid: mid), wall: wall)
            engine.flattenSteps.append(
                "books corrected: \(engine.sizeText(p.qty)) the exchange no longer held, closed at the last mid")
            for w in trader.workingExitOrders { engine.trader.onOrderGone(id: w.id) }
            let now = engine.clock.now(wall: wall)
            engine.apply(
                [
                    Fill(
                        orderId: "venue-flat-\(wall)", side: p.direction.opposite, qty: p.qty, price: mid, ts: now,
                        decisionTs: now, liquidity: .taker, fee: 0, purpose: .exit(.flatten), referenceMidTwice: nil)
                ],
                wall: wall)
            for w in book.workingOrders { _ = book.cancel(id: w.id) }
        }
        if let p = engine.trader.position, !p.closing, state.flattenResult == nil, !state.book.hasOrdersInFlight {
            // An exit that filled only in part: close the rest.
            let now = max(engine.lastMarketTs, engine.clock.now(wall: wall))
            engine.execute(engine.trader.closeAll(.flatten, at: now), at: engine.lastMarketTs, wall: wall)
        }
    }

    override func unconfirmedFlattenText(steps: [String]) -> String {
        "the agent's books are flat and trading is halted, but the exchange position is NOT confirmed flat: "
            + steps.joined(separator: "; ")
    }

    /// What the exchange did on its own while the agent was down, as far as it explains the gap.
    override func reconcileOwnExecutions(_ venue: VenueResync, workingIds: Set<String>, wall: Int64) {
        for e in venue.executions
        where !workingIds.contains(e.orderLinkId) && e.changesPosition && !state.book.hasSeen(e.execId) {
            guard engine.trader.signedQty != venue.position,
                let lots = engine.settings.instrument.lots(e.execQty),
                let ticks = engine.settings.instrument.ticks(e.execPrice), let p = engine.trader.position,
                e.side != p.direction,
                abs(engine.trader.signedQty - lots * p.direction.sign - venue.position)
                    < abs(engine.trader.signedQty - venue.position)
            else { continue }
            state.book.alreadyBooked([e.execId])
            engine.batch.executions.append(ExecutionRow(execId: e.execId, execTime: e.execTime))
            applyForeign(e, lots: lots, ticks: ticks, wall: wall)
        }
    }

    override func readWalletAtStart(wall: Int64) throws(BybitError) {
        onWallet(try gateway.walletEquity(), wall: wall)
    }

    /// The first refusal and every fifth.
    override func alertsStopRefusal(_ n: Int) -> Bool { n == 1 || n % 5 == 0 }

    override func foreignExecution(_ e: Execution, lots: Lots, ticks: Ticks, wall: Int64) {
        applyForeign(e, lots: lots, ticks: ticks, wall: wall)
    }

    override func funding(_ e: Execution, paid: Double, wall: Int64) {
        engine.trader.bookFunding(paid)
        engine.logger.notice(
            "funding charged by the exchange",
            metadata: [
                "event": "funding.booked", "fee": "\(formatNumber(paid))",
                "exec_id": "\(e.execId)",
            ])
    }

    /// The order leaves the book; what executed is the fill.
    override func orderOver(
        _ intent: OrderIntent, lots: Lots, tickLots: Int64, fee: Double, isMaker: Bool, ts: Int64,
        status: BybitOrderStatus,
        reason: String, wall: Int64
    ) {
        let partial = lots > 0 && lots < intent.qty
        _ = book.cancel(id: intent.id)
        if lots == 0 {
            engine.batch.orderUpdates.append(
                OrderUpdate(id: intent.id, status: status == .rejected ? .rejected : .cancelled, wallTs: wall))
            // A timed-out limit entry confirmed gone with nothing filled: its market replacement goes now.
            engine.execute(engine.trader.onOrderGone(id: intent.id), at: max(engine.lastMarketTs, ts), wall: wall)
            return
        }
        // The exchange's fill: the quantity that executed, at its volume-weighted price rounded to the tick.
        let fill = Fill(
            orderId: intent.id, side: intent.side, qty: lots, price: roundedDiv(tickLots, lots), ts: ts,
            decisionTs: intent.decisionTs, liquidity: isMaker ? .maker : .taker, fee: fee, purpose: intent.purpose,
            referenceMidTwice: engine.lastQuote.map { $0.bidPrice + $0.askPrice })
        engine.apply([fill], wall: wall)
        if partial {
            engine.batch.orderUpdates.append(
                OrderUpdate(id: intent.id, status: .partiallyFilledCancelled, wallTs: wall))
        }
    }

    override func positionsDisagree(_ text: String, wall: Int64) {
        if engine.supervisor.state != .flattening {
            engine.note(engine.supervisor.halt(.positionMismatch, text), wall: wall)
        }
    }

    /// Past `live.max_unprotected_seconds` without an exchange-held stop: alerted and flattened.
    override func unprotected(since: Int64, wall: Int64) {
        let limit = Int64(engine.settings.live.maxUnprotectedSeconds) * 1000
        guard wall - since >= limit, !state.unprotectedAlerted else { return }
        state.unprotectedAlerted = true
        engine.raise(
            engine.alerts.unprotectedPosition(
                position: state.book.position, seconds: (wall - since) / 1000,
                limitSeconds: engine.settings.live.maxUnprotectedSeconds), wall: wall)
        if engine.supervisor.state != .flattening { engine.startFlatten(.unprotectedPosition, wall: wall) }
    }

    /// The wallet's equity caps sizing (with `live.allocated_equity`); an agent richer than the wallet is alerted.
    override func onWallet(_ equity: Double, wall: Int64) {
        super.onWallet(equity, wall: wall)
        let cap = engine.settings.live.allocatedEquity > 0 ? min(engine.settings.live.allocatedEquity, equity) : equity
        engine.trader.sizingEquityCap = cap
        if engine.trader.equity > equity * (1 + engine.settings.live.walletTolerancePct) {
            if !state.walletAlerted {
                state.walletAlerted = true
                engine.raise(
                    engine.alerts.walletMismatch(agentEquity: engine.trader.equity, wallet: equity, sizedFrom: cap),
                    wall: wall)
            }
        } else {
            state.walletAlerted = false
        }
    }

    /// The wallet is read every minute.
    override func tickWallet(wall: Int64) {
        guard wall - state.lastWalletWall >= 60_000 else { return }
        state.lastWalletWall = wall
        gateway.readWallet()
    }

    /// An execution of no order in flight (live). A reduction of the position by the position's stop, the venue
    /// flatten's close, ADL, liquidation or delivery is booked as the exchange reports it; ADL, liquidation and
    /// delivery halt entries until `atctl resume`. Anything else is a mismatch that halts.
    func applyForeign(_ e: Execution, lots: Lots, ticks: Ticks, wall: Int64) {
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
            "\(e.execType)\(e.stopOrderType.isConditional ? " (\(e.stopOrderType))" : "") \(e.side) \(engine.sizeText(lots)) at \(engine.priceText(ticks))"
        if let reason, let p = engine.trader.position, e.side != p.direction {
            let booked = min(lots, p.qty)
            engine.logger.warning(
                "position reduced by the exchange: \(text)",
                metadata: [
                    "event": "order.filled", "venue": "exchange", "order_id": "\(e.orderId)", "exec_id": "\(e.execId)",
                    "exec_type": "\(e.execType)", "qty": "\(engine.sizeText(booked))",
                    "price": "\(engine.priceText(ticks))",
                    "purpose": "exit:\(reason.rawValue)",
                ])
            engine.apply(
                [
                    Fill(
                        orderId: "venue-\(e.orderId)", side: e.side, qty: booked, price: ticks, ts: e.execTime,
                        decisionTs: e.execTime,
                        liquidity: e.isMaker ? .maker : .taker, fee: Double(e.execFee.description) ?? 0,
                        purpose: .exit(reason),
                        referenceMidTwice: nil)
                ], wall: wall)
            if let cause = HaltCause(closedByExchange: reason) {
                engine.raise(engine.alerts.closedByExchange(cause, qty: booked, execution: text), wall: wall)
                if engine.supervisor.state != .flattening && engine.supervisor.state != .halted {
                    engine.note(engine.supervisor.halt(cause, text), wall: wall)
                }
                if let w = engine.trader.workingEntryOrder {
                    engine.execute([.cancel(id: w.id)], at: engine.lastMarketTs, wall: wall)
                }
            }
            if booked < lots {
                engine.raise(engine.alerts.closedMoreThanHeld(closed: lots, held: booked), wall: wall)
                engine.note(engine.supervisor.halt(.positionMismatch, text), wall: wall)
            }
            return
        }
        if reason == .stop || reason == .flatten || reason == .tp2 {
            // The position's own stop or the venue flatten closing what the agent already booked closed: nothing to do.
            engine.logger.notice(
                "exchange execution after the agent's position was closed",
                metadata: [
                    "event": "venue.late_execution", "exec_id": "\(e.execId)", "detail": "\(text)",
                ])
            return
        }
        engine.raise(engine.alerts.foreignExecution(text, orderId: e.orderId), wall: wall)
        engine.note(engine.supervisor.halt(.positionMismatch, "foreign execution \(e.orderId)"), wall: wall)
    }
}
