import Engine
import Exchange
import ExchangeStreams
import Foundation
import Logging

/// The exchange side of shadow and live (docs/EXCHANGE.md). The `ExchangeBook` keeps one state machine per order
/// the agent sent, fed by the private stream, the REST worker and the REST re-reads, through one `execId`
/// de-duplication. In live the exchange's books are the truth: an order enters the Trader when it is over, at the
/// quantity that actually executed; what the exchange did on its own (the position's stop, ADL, liquidation,
/// delivery, funding) is booked as reported and alerted when it matters; what stays unexplained halts trading. In
/// shadow the paper venue decides and the testnet's books are compared with it (divergences are alerted).
struct MirrorState {
    var book: ExchangeBook
    /// Shadow: paper fills and testnet averages waiting for their counterpart, by order id.
    var paperFills: [String: Fill] = [:]
    var venueAverages: [String: (lots: Int64, priceTwice: Int64)] = [:]
    var positionDivergent = false
    /// The stop the exchange holds (ticks), as last confirmed; nil: none.
    var stopHeld: Ticks?
    /// A trading-stop call is on its way.
    var stopInFlight = false
    var stopFailures = 0
    var stopRetryWall: Int64 = 0
    /// Since when the exchange's position has had no stop (wall ms).
    var unprotectedSince: Int64?
    var unprotectedAlerted = false
    var streamState = StreamState.notStarted
    /// Since when the private stream has not been ready (wall ms).
    var streamDownSince: Int64?
    var streamAlerted = false
    var lastResyncWall: Int64 = 0
    var resyncInFlight = false
    /// Re-reads ask for executions from here (the exchange's time): the market time of the last successful one,
    /// less a margin.
    var resyncFrom: Int64 = 0
    var resyncAskedAt: Int64 = 0
    /// Consecutive re-reads whose position differed from the executions' sum.
    var positionStrikes = 0
    var lastWalletWall: Int64 = 0
    /// The start-up reconciliation could not reach the venue: the first re-read that answers does it.
    var reconcilePending = false
    var walletAlerted = false
    /// The mirror's flatten: nil while running (or not asked), then its outcome.
    var flattenResult: Bool?
    var flattenAsked = false
    /// Calls waiting for the step's records to be committed (an order is recorded before it is sent).
    var held: [ExchangeMirror.Job] = []

    init(instrument: Instrument) { book = ExchangeBook(instrument: instrument) }
}

extension AgentEngine {
    var venueName: String { isLive ? "exchange" : "testnet" }

    // MARK: - Start-up reconciliation

    /// Before READY: the venue's position, stop and open orders against the restored state. What the exchange's
    /// own reports explain (executions of orders that were working when the agent stopped, the position's stop or
    /// an ADL while it was down) is booked; a mismatch that stays is alerted and halts trading, never fixed.
    func reconcileWithVenue(wall: Int64) {
        guard let mirror else { return }
        do {
            // Executions since the last market data the agent stored (less a margin) may explain a difference; the
            // exchange's own time runs in its market data, so the span is measured there.
            let since: Int64? = lastMarketTs > 0 ? lastMarketTs - 5 * 60_000 : nil
            // A rate-limit storm or a short outage at start is waited out (up to `startRetryMs`), not a halt.
            var attempt = 0
            var venue: VenueResync
            while true {
                attempt += 1
                do {
                    venue = try mirror.snapshot(executionsSince: since)
                    break
                } catch {
                    guard wallClockMillis() - wall < startRetryMs else { throw error }
                    logger.warning(
                        "\(venueName) not answering at start; retrying",
                        metadata: [
                            "event": "reconcile.retry", "attempt": "\(attempt)", "reason": "\(error)",
                        ])
                    sleepMillis(min(5_000, 500 * Int64(attempt)))
                }
            }
            mirrorState.book.reconciled(position: venue.position, openOrders: venue.openOrders)
            // What was booked before the restart is never booked again (the ids are written with their fills).
            mirrorState.book.alreadyBooked(
                try store.bookedExecutionIds(since: (since ?? lastMarketTs) - 8 * 86_400_000))
            mirrorState.stopHeld = venue.stopTicks
            for w in paper.workingOrders {
                mirrorState.book.track(w)
                mirrorState.book.acknowledged(w.id)
            }
            // Orders that were working: their executions and final state, as the exchange has them.
            let workingIds = Set(paper.workingOrders.map(\.id))
            for e in venue.executions where workingIds.contains(e.orderLinkId) {
                handleOutcomes(mirrorState.book.onExecution(e), wall: wall)
            }
            for o in venue.openOrders where workingIds.contains(o.orderLinkId) {
                handleOutcomes(mirrorState.book.onOrder(o), wall: wall)
            }
            mirrorState.book.position = venue.position
            // In live, what the exchange did on its own while the agent was down, as far as it explains the gap.
            if isLive {
                for e in venue.executions
                where !workingIds.contains(e.orderLinkId) && e.changesPosition && !mirrorState.book.hasSeen(e.execId) {
                    guard trader.signedQty != venue.position, let lots = settings.instrument.lots(e.execQty),
                        let ticks = settings.instrument.ticks(e.execPrice), let p = trader.position,
                        e.side != p.direction,
                        abs(trader.signedQty - lots * p.direction.sign - venue.position)
                            < abs(trader.signedQty - venue.position)
                    else { continue }
                    mirrorState.book.alreadyBooked([e.execId])
                    batch.executions.append((e.execId, e.execTime))
                    applyForeign(e, lots: lots, ticks: ticks, wall: wall)
                }
            }
            let problems = reconciliationProblems(position: venue.position, openOrders: venue.openOrders)
            if isLive {
                let equity = try mirror.walletEquity()
                onWallet(equity, wall: wall)
            }
            if problems.isEmpty {
                let held = mirrorState.stopHeld.map { ", stop \(priceText($0)) held" } ?? ""
                let own = venue.openOrders.filter(\.isConditional).count
                let text =
                    "reconciled with the \(venueName): position \(sizeText(venue.position))\(held), "
                    + "\(venue.openOrders.count) open order(s) (\(own) the position's own)"
                logger.notice("\(text)", metadata: ["event": "reconcile.ok"])
            } else {
                haltOnMismatch(problems, wall: wall)
            }
            mirrorState.lastResyncWall = wall
            mirrorState.resyncFrom = since ?? 0
            mirrorState.streamDownSince = wall
            syncVenueStop(wall: wall)
        } catch {
            // Nothing is known to be wrong, only nothing is known: halted until a re-read answers and agrees.
            mirrorState.reconcilePending = true
            raise(
                alerts.venueUnreachableAtStart(seconds: (wallClockMillis() - wall) / 1000, error: "\(error)"),
                wall: wall)
            note(supervisor.halt(.venueUnreachable, "\(error)"), wall: wall)
        }
    }

    /// After a start that could not reconcile: the first re-read that answers does it.
    private func reconcileLate(_ r: VenueResync, wall: Int64) {
        mirrorState.reconcilePending = false
        let problems = reconciliationProblems(position: r.position, openOrders: r.openOrders)
        if problems.isEmpty {
            raise(alerts.venueAnswersAgain(position: r.position), wall: wall)
        } else {
            haltOnMismatch(problems, wall: wall)
        }
    }

    /// What the venue's position and open orders say that the agent's books do not: a position that differs with
    /// nothing in flight, open orders that are neither the agent's nor the position's own conditional ones.
    private func reconciliationProblems(position: Lots, openOrders: [OrderInfo]) -> [String] {
        let known = Set(paper.workingOrders.map(\.id))
        let foreign = openOrders.filter { !$0.isConditional && !known.contains($0.orderLinkId) }
        var problems: [String] = []
        if position != trader.signedQty && !mirrorState.book.hasOrdersInFlight {
            problems.append(alerts.positionProblem(agent: trader.signedQty, venue: position))
        }
        if !foreign.isEmpty {
            problems.append(
                alerts.unknownOrdersProblem(foreign.map { $0.orderLinkId.isEmpty ? $0.orderId : $0.orderLinkId }))
        }
        return problems
    }

    /// A reconciliation that found problems: alerted, halted, nothing changed.
    private func haltOnMismatch(_ problems: [String], wall: Int64) {
        let text = problems.joined(separator: "; ")
        raise(alerts.reconciliationMismatch(problems), wall: wall)
        note(supervisor.halt(.positionMismatch, text), wall: wall)
    }

    // MARK: - Orders out

    func mirrorSubmit(_ intent: OrderIntent) {
        guard mirror != nil else { return }
        mirrorState.book.track(intent)
        mirrorState.held.append(.submit(intent))
    }

    func mirrorCancel(_ id: String) {
        guard mirror != nil, mirrorState.book.isTracked(id) else { return }
        mirrorState.held.append(.cancel(id))
    }

    /// Hands the held calls to the venue worker (after the batch that records them is committed).
    func releaseVenueJobs() {
        guard let mirror, !mirrorState.held.isEmpty else { return }
        for job in mirrorState.held { mirror.enqueue(job) }
        mirrorState.held.removeAll()
    }

    /// A paper fill (shadow): compare with the testnet's when both are known.
    func mirrorPaperFill(_ fill: Fill, wall: Int64) {
        guard mirror != nil else { return }
        if !isLive {
            mirrorState.paperFills[fill.orderId] = fill
            compareFill(fill.orderId, wall: wall)
        }
        syncVenueStop(wall: wall)
        checkPositionDivergence(wall: wall)
    }

    // MARK: - Reports in

    func onVenue(_ r: VenueReport, wall: Int64) {
        switch r {
        case .acknowledged(let id, let orderId, let latency):
            mirrorState.book.acknowledged(id)
            logger.info(
                "order acknowledged by the \(venueName)",
                metadata: [
                    "event": "order.acknowledged", "order_link_id": "\(id)",
                    "order_id": "\(orderId)", "venue": "\(venueName)",
                    "latency_ms": "\(latency)",
                ])
        case .rejected(let id, let reason):
            handleOutcomes(mirrorState.book.rejected(id, reason: reason), wall: wall)
        case .outcomeUnknown(let id, let reason):
            mirrorState.book.outcomeUnknown(id)
            logger.warning(
                "order create got no answer; querying it by its id",
                metadata: [
                    "event": "order.unknown", "order_link_id": "\(id)", "venue": "\(venueName)", "reason": "\(reason)",
                ])
        case .cancelFailed(let id, let reason):
            logger.info(
                "cancel not done (filled or gone already?); its state is read back",
                metadata: [
                    "event": "order.cancel_failed", "order_link_id": "\(id)", "venue": "\(venueName)",
                    "reason": "\(reason)",
                ])
        case .order(let info):
            handleOutcomes(mirrorState.book.onOrder(info), wall: wall)
        case .execution(let e):
            handleOutcomes(mirrorState.book.onExecution(e), wall: wall)
        case .stopSet(let ticks, let changed):
            mirrorState.stopInFlight = false
            mirrorState.stopHeld = ticks
            mirrorState.stopFailures = 0
            logger.info(
                changed ? "exchange-held stop set" : "exchange-held stop already in place (34040)",
                metadata: [
                    "event": "venue.stop_set", "stop": "\(ticks.map(priceText) ?? "none")", "venue": "\(venueName)",
                ])
            syncVenueStop(wall: wall)
        case .stopFailed(let ticks, let reason):
            mirrorState.stopInFlight = false
            mirrorState.stopFailures += 1
            let n = mirrorState.stopFailures
            mirrorState.stopRetryWall = wall + min(30_000, 1_000 << min(n - 1, 5))
            // Live: the first refusal and every fifth; shadow: the first.
            if n == 1 || (isLive && n % 5 == 0) {
                raise(alerts.stopRefused(stop: ticks, attempt: n, reason: reason), wall: wall)
            }
        case .resync(let r):
            onResync(r, wall: wall)
        case .resyncFailed(let reason):
            mirrorState.resyncInFlight = false
            // Try again in 10 s rather than a minute.
            mirrorState.lastResyncWall = wall - 50_000
            logger.warning(
                "\(venueName) re-read failed", metadata: ["event": "venue.resync_failed", "reason": "\(reason)"])
        case .wallet(let equity):
            onWallet(equity, wall: wall)
        case .failed(let what, let reason):
            logger.warning(
                "\(venueName) call failed: \(what)",
                metadata: ["event": "venue.failed", "what": "\(what)", "reason": "\(reason)"])
            if what == "rest" { raise(alerts.restRefused(reason), wall: wall) }
        case .flattened(let ok, let steps):
            mirrorState.flattenResult = ok
            flattenSteps.append(contentsOf: steps)
            progressFlatten(wall: wall)
        case .stream(let s):
            onPrivateStream(s, wall: wall)
        }
        checkPositionDivergence(wall: wall)
    }

    private func onPrivateStream(_ s: StreamStatus, wall: Int64) {
        switch s {
        case .ready:
            mirrorState.streamState = .ready
            mirrorState.streamDownSince = nil
            if mirrorState.streamAlerted {
                mirrorState.streamAlerted = false
                logger.notice(
                    "\(venueName) private stream authenticated again", metadata: ["event": "venue.stream_ready"])
            }
            // The stream does not replay: whatever happened while it was down is only in REST.
            requestResync("private stream (re)connected", wall: wall)
        case .connected: setStreamDown(.unauthenticated, wall: wall)
        case .connecting(let n):
            if n > 1 { metrics.streamReconnect("private") }
            setStreamDown(.connecting(attempt: n), wall: wall)
        case .disconnected(let reason):
            setStreamDown(.disconnected, wall: wall)
            logger.warning(
                "\(venueName) private stream down", metadata: ["event": "venue.stream_down", "reason": "\(reason)"])
        case .gap, .malformed: break
        }
    }

    private func setStreamDown(_ state: StreamState, wall: Int64) {
        mirrorState.streamState = state
        if mirrorState.streamDownSince == nil { mirrorState.streamDownSince = wall }
    }

    /// What the exchange's reports mean for the agent's books.
    func handleOutcomes(_ outcomes: [BookOutcome], wall: Int64) {
        for o in outcomes {
            switch o {
            case .done(
                let intent, let lots, let tickLots, let fee, let isMaker, let ts, let status, let reason, let executions
            ):
                batch.executions += executions
                orderDone(
                    intent, lots: lots, tickLots: tickLots, fee: fee, isMaker: isMaker, ts: ts, status: status,
                    reason: reason, wall: wall)
            case .foreign(let e, let lots, let ticks):
                batch.executions.append((e.execId, e.execTime))
                if isLive {
                    applyForeign(e, lots: lots, ticks: ticks, wall: wall)
                } else {
                    logger.warning(
                        "testnet execution of an order not in flight",
                        metadata: [
                            "event": "venue.foreign_execution", "order_link_id": "\(e.orderLinkId)",
                            "order_id": "\(e.orderId)",
                            "exec_type": "\(e.execType)", "stop_order_type": "\(e.stopOrderType)",
                            "qty": "\(sizeText(lots))",
                            "price": "\(priceText(ticks))",
                        ])
                }
            case .funding(let e):
                batch.executions.append((e.execId, e.execTime))
                let paid = Double(e.execFee.description) ?? 0
                if isLive {
                    trader.bookFunding(paid)
                    logger.notice(
                        "funding charged by the exchange",
                        metadata: [
                            "event": "funding.booked", "fee": "\(formatNumber(paid))",
                            "exec_id": "\(e.execId)",
                        ])
                } else {
                    logger.info(
                        "testnet funding",
                        metadata: [
                            "event": "funding.venue", "fee": "\(formatNumber(paid))",
                            "paper_funding_total": "\(formatNumber(trader.fundingPaid))",
                        ])
                }
            case .missingExecutions(let id):
                requestResync("executions of \(id) missing", wall: wall)
            }
        }
        syncVenueStop(wall: wall)
    }

    /// One of our orders is over at the exchange.
    private func orderDone(
        _ intent: OrderIntent, lots: Lots, tickLots: Int64, fee: Double, isMaker: Bool, ts: Int64, status: String,
        reason: String, wall: Int64
    ) {
        let partial = lots > 0 && lots < intent.qty
        if lots == 0 || partial {
            let m: Logger.Metadata = [
                "event": "order.\(lots == 0 ? status.lowercased() : "partially_filled")",
                "order_link_id": "\(intent.id)",
                "venue": "\(venueName)", "status": "\(status)", "filled": "\(sizeText(lots))",
                "qty": "\(sizeText(intent.qty))", "reason": "\(reason)",
            ]
            if partial {
                logger.warning(
                    "order filled \(sizeText(lots)) of \(sizeText(intent.qty)) before the \(venueName) ended it (\(status))",
                    metadata: m)
            } else {
                logger.notice("order \(status.lowercased()) by the \(venueName)", metadata: m)
            }
        }
        guard isLive else {
            if lots > 0 {
                let priceTwice = roundedDiv(2 * tickLots, lots)
                mirrorState.venueAverages[intent.id] = (lots, priceTwice)
                logger.notice(
                    "order filled on the testnet",
                    metadata: [
                        "event": "order.filled", "venue": "testnet", "order_link_id": "\(intent.id)",
                        "qty": "\(sizeText(lots))",
                        "price": "\(halfTickText(priceTwice))", "latency_ms": "\(ts - intent.decisionTs)",
                    ])
                compareFill(intent.id, wall: wall)
            } else if status == "Rejected" {
                raise(alerts.orderRejected(id: intent.id, isExit: !intent.purpose.isEntry, reason: reason), wall: wall)
            }
            return
        }
        _ = paper.cancel(id: intent.id)
        if lots == 0 {
            batch.orderUpdates.append((intent.id, status == "Rejected" ? .rejected : .cancelled, wall))
            // A timed-out limit entry confirmed gone with nothing filled: its market replacement goes now.
            execute(trader.onOrderGone(id: intent.id), at: max(lastMarketTs, ts), wall: wall)
            if status == "Rejected" {
                raise(alerts.orderRejected(id: intent.id, isExit: !intent.purpose.isEntry, reason: reason), wall: wall)
            }
            return
        }
        // The exchange's fill: the quantity that executed, at its volume-weighted price rounded to the tick.
        let fill = Fill(
            orderId: intent.id, side: intent.side, qty: lots, price: roundedDiv(tickLots, lots), ts: ts,
            decisionTs: intent.decisionTs, liquidity: isMaker ? .maker : .taker, fee: fee, purpose: intent.purpose,
            referenceMidTwice: lastQuote.map { $0.bidPrice + $0.askPrice })
        apply([fill], wall: wall)
        if partial { batch.orderUpdates.append((intent.id, .partiallyFilledCancelled, wall)) }
    }

    /// An execution of no order in flight (live). A reduction of the position by the position's stop, the venue
    /// flatten's close, ADL, liquidation or delivery is booked as the exchange reports it; ADL, liquidation and
    /// delivery halt entries until `atctl resume`. Anything else is a mismatch that halts.
    func applyForeign(_ e: Execution, lots: Lots, ticks: Ticks, wall: Int64) {
        let reason: ExitReason?
        switch e.execType {
        case "AdlTrade": reason = .adl
        case "BustTrade": reason = .liquidation
        case "Delivery", "Settle": reason = .delivery
        case "Trade":
            if e.orderLinkId.hasPrefix("at-f-") {
                reason = .flatten
            } else if !e.stopOrderType.isEmpty {
                reason = e.stopOrderType.contains("TakeProfit") ? .tp2 : .stop
            } else {
                reason = nil
            }
        default: reason = nil
        }
        let text =
            "\(e.execType)\(e.stopOrderType.isEmpty ? "" : " (\(e.stopOrderType))") \(e.side) \(sizeText(lots)) at \(priceText(ticks))"
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
                        decisionTs: e.execTime,
                        liquidity: e.isMaker ? .maker : .taker, fee: Double(e.execFee.description) ?? 0,
                        purpose: .exit(reason),
                        referenceMidTwice: nil)
                ], wall: wall)
            if let cause = HaltCause(closedByExchange: reason) {
                raise(alerts.closedByExchange(cause, qty: booked, execution: text), wall: wall)
                if supervisor.state != .flattening && supervisor.state != .halted {
                    note(supervisor.halt(cause, text), wall: wall)
                }
                if let w = trader.workingEntryOrder { execute([.cancel(id: w.id)], at: lastMarketTs, wall: wall) }
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
                metadata: [
                    "event": "venue.late_execution", "exec_id": "\(e.execId)", "detail": "\(text)",
                ])
            return
        }
        raise(alerts.foreignExecution(text, orderId: e.orderId), wall: wall)
        note(supervisor.halt(.positionMismatch, "foreign execution \(e.orderId)"), wall: wall)
    }

    // MARK: - Re-reads

    func requestResync(_ reason: String, wall: Int64) {
        guard let mirror, !mirrorState.resyncInFlight else { return }
        mirrorState.resyncInFlight = true
        mirrorState.lastResyncWall = wall
        mirrorState.resyncAskedAt = lastMarketTs
        let ids = mirrorState.book.trackedIds
        // From the last successful re-read (or the last execution seen, if earlier), less a minute; never before a day
        // ago in the market's time.
        var from = mirrorState.resyncFrom > 0 ? mirrorState.resyncFrom : lastMarketTs - 10 * 60_000
        if mirrorState.book.lastExecTime > 0 { from = min(from, mirrorState.book.lastExecTime) }
        from = max(from - 60_000, lastMarketTs - 86_400_000)
        mirror.resync(ids: ids, since: from, reason: reason)
    }

    /// A REST re-read: every execution (de-duplicated), the asked orders and the open ones through the book; then
    /// the position the executions add up to must equal the exchange's (twice in a row unexplained: halt).
    private func onResync(_ r: VenueResync, wall: Int64) {
        mirrorState.resyncInFlight = false
        if mirrorState.resyncAskedAt > 0 { mirrorState.resyncFrom = mirrorState.resyncAskedAt }
        if mirrorState.reconcilePending {
            mirrorState.book.position = r.position
            reconcileLate(r, wall: wall)
        }
        for e in r.executions { handleOutcomes(mirrorState.book.onExecution(e), wall: wall) }
        for o in r.asked { handleOutcomes(mirrorState.book.onOrder(o), wall: wall) }
        for o in r.openOrders { handleOutcomes(mirrorState.book.onOrder(o), wall: wall) }
        // The stop as the exchange holds it.
        if r.position == 0 {
            mirrorState.stopHeld = nil
        } else if !mirrorState.stopInFlight {
            mirrorState.stopHeld = r.stopTicks
        }
        if r.position != mirrorState.book.position && !mirrorState.book.hasOrdersInFlight {
            mirrorState.positionStrikes += 1
            if mirrorState.positionStrikes >= 2 {
                let text =
                    "the \(venueName) holds \(sizeText(r.position)), its executions add up to \(sizeText(mirrorState.book.position))"
                raise(alerts.executionsDisagree(held: r.position, executionsSum: mirrorState.book.position), wall: wall)
                mirrorState.book.position = r.position
                mirrorState.positionStrikes = 0
                if isLive && supervisor.state != .flattening {
                    note(supervisor.halt(.positionMismatch, text), wall: wall)
                }
            } else {
                // Once more shortly: an execution may have landed between the reads.
                mirrorState.lastResyncWall = wall - 58_000
            }
        } else {
            mirrorState.positionStrikes = 0
        }
        logger.info(
            "\(venueName) re-read (\(r.reason))",
            metadata: [
                "event": "venue.resync", "executions": "\(r.executions.count)", "open_orders": "\(r.openOrders.count)",
                "position": "\(sizeText(r.position))", "stop": "\(r.stopTicks.map(priceText) ?? "none")",
            ])
        syncVenueStop(wall: wall)
    }

    /// Live: the wallet's equity caps sizing (with `live.allocated_equity`); an agent richer than the wallet is alerted.
    func onWallet(_ equity: Double, wall: Int64) {
        mirrorState.lastWalletWall = wall
        guard isLive else { return }
        let cap = settings.liveAllocatedEquity > 0 ? min(settings.liveAllocatedEquity, equity) : equity
        trader.sizingEquityCap = cap
        if trader.equity > equity * (1 + settings.walletTolerancePct) {
            if !mirrorState.walletAlerted {
                mirrorState.walletAlerted = true
                raise(alerts.walletMismatch(agentEquity: trader.equity, wallet: equity, sizedFrom: cap), wall: wall)
            }
        } else {
            mirrorState.walletAlerted = false
        }
    }

    // MARK: - Every tick

    /// The venue's clocks: the stop's retries and the unprotected limit, the private stream's alert, the periodic
    /// re-read and the wallet.
    func venueTick(wall: Int64) {
        guard let mirror else { return }
        syncVenueStop(wall: wall)
        // Unprotected: the exchange holds a position and no stop.
        if mirrorState.book.position != 0 && mirrorState.stopHeld == nil {
            let since = mirrorState.unprotectedSince ?? wall
            mirrorState.unprotectedSince = since
            let limit = Int64(settings.maxUnprotectedSeconds) * 1000
            if isLive && wall - since >= limit && !mirrorState.unprotectedAlerted {
                mirrorState.unprotectedAlerted = true
                raise(
                    alerts.unprotectedPosition(
                        position: mirrorState.book.position, seconds: (wall - since) / 1000,
                        limitSeconds: settings.maxUnprotectedSeconds), wall: wall)
                if supervisor.state != .flattening { startFlatten(.unprotectedPosition, wall: wall) }
            }
        } else {
            mirrorState.unprotectedSince = nil
            mirrorState.unprotectedAlerted = false
        }
        if let since = mirrorState.streamDownSince, wall - since >= 10_000, !mirrorState.streamAlerted {
            mirrorState.streamAlerted = true
            raise(alerts.privateStream(seconds: (wall - since) / 1000, state: "\(mirrorState.streamState)"), wall: wall)
        }
        // Every minute while quiet; every 5 s while the private stream is down (REST is then the only news).
        let quietFor = mirrorState.streamState == .ready ? 60_000 : 5_000
        if wall - mirrorState.lastResyncWall >= Int64(quietFor) { requestResync("periodic", wall: wall) }
        if isLive && wall - mirrorState.lastWalletWall >= 60_000 {
            mirrorState.lastWalletWall = wall
            mirror.readWallet()
        }
    }

    // MARK: - Comparisons

    /// Shadow: both fills of one order known: a price or quantity difference beyond the tolerance is a divergence.
    private func compareFill(_ id: String, wall: Int64) {
        guard let paperFill = mirrorState.paperFills[id], let venue = mirrorState.venueAverages[id] else { return }
        mirrorState.paperFills.removeValue(forKey: id)
        mirrorState.venueAverages.removeValue(forKey: id)
        let diffTwice = abs(venue.priceTwice - 2 * paperFill.price)
        let tolerance = Int64(settings.shadowPriceToleranceTicks)
        if diffTwice > 2 * tolerance || venue.lots != paperFill.qty {
            raise(
                alerts.fillDiverges(
                    id: id, paperQty: paperFill.qty, paperPrice: paperFill.price, testnetQty: venue.lots,
                    testnetPriceTwice: venue.priceTwice, toleranceTicks: settings.shadowPriceToleranceTicks), wall: wall
            )
        }
    }

    /// With nothing in flight on either side, the positions must agree.
    func checkPositionDivergence(wall: Int64) {
        guard mirror != nil, !mirrorState.book.hasOrdersInFlight, paper.workingOrders.isEmpty else { return }
        let agentQty = trader.signedQty
        let venueQty = mirrorState.book.position
        if agentQty != venueQty {
            if !mirrorState.positionDivergent {
                mirrorState.positionDivergent = true
                raise(alerts.positionsDiffer(agent: agentQty, venue: venueQty), wall: wall)
                if isLive && supervisor.state != .flattening {
                    note(supervisor.halt(.positionMismatch, "agent and exchange positions differ"), wall: wall)
                }
            }
        } else if mirrorState.positionDivergent {
            mirrorState.positionDivergent = false
            logger.notice("agent and \(venueName) positions agree again", metadata: ["event": "shadow.converged"])
        }
    }

    /// The venue holds the position's stop (rounded away from the position to a whole tick), set again whenever it
    /// moves, retried with back-off after a refusal.
    func syncVenueStop(wall: Int64) {
        guard let mirror else { return }
        let venueQty = mirrorState.book.position
        guard venueQty != 0 else {
            mirrorState.stopHeld = nil
            return
        }
        guard let p = trader.position, p.direction.sign * venueQty > 0 else { return }
        let ticks = p.direction == .long ? floorDiv(p.stopTwice, 2) : -floorDiv(-p.stopTwice, 2)
        guard ticks != mirrorState.stopHeld, !mirrorState.stopInFlight, wall >= mirrorState.stopRetryWall else {
            return
        }
        mirrorState.stopInFlight = true
        mirror.setStop(ticks: ticks)
    }
}
