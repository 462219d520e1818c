import Engine
import Exchange
import ExchangeStreams
import Foundation
import Logging

/// Shadow mode: the paper venue decides; every order also goes to the testnet through the `ExchangeMirror`.
/// Each order's testnet fill is compared with its paper fill (price beyond `shadow.price_tolerance_ticks` is a
/// divergence), the testnet position with the paper position whenever neither side has an order in flight, and a
/// rejected order is a divergence too. Divergences are alerted; trading continues on the paper side. The testnet
/// position carries the exchange-held stop (trading-stop), moved with the paper position's stop.
struct MirrorState {
    /// Orders sent and not yet finished on the venue.
    var pending: [String: OrderIntent] = [:]
    /// Executions per order: lots and `sum(price ticks × lots)`.
    var filled: [String: (lots: Int64, tickLots: Int64)] = [:]
    /// Paper fills waiting for their venue counterpart (or the other way round), by order id.
    var paperFills: [String: Fill] = [:]
    var venueAverages: [String: (lots: Int64, priceTwice: Int64)] = [:]
    /// The venue's position in signed lots, from reconciliation and executions since.
    var position: Lots = 0
    /// The stop the venue holds, in ticks (nil: none).
    var stopTicks: Int64?
    var positionDivergent = false
    var streamState = "not started"
    /// The mirror's flatten: nil while running (or not asked), then its outcome.
    var flattenResult: Bool?
    var flattenAsked = false
    /// Calls waiting for the step's records to be committed (an order is recorded before it is sent).
    var held: [ExchangeMirror.Job] = []
}

extension AgentEngine {
    /// At start-up, before READY: the venue's position and open orders against the restored paper state.
    /// A mismatch is alerted and halts trading; it is never fixed automatically.
    func reconcileWithVenue(wall: Int64) {
        guard let mirror else { return }
        do {
            let (position, open) = try mirror.snapshot()
            mirrorState.position = position
            let paperOrders = Set(paper.workingOrders.map(\.id))
            let foreign = open.filter { !paperOrders.contains($0.orderLinkId) }
            let paperQty = trader.signedQty
            var problems: [String] = []
            if position != paperQty {
                problems.append("position: paper \(settings.instrument.sizeText(paperQty)), venue \(settings.instrument.sizeText(position))")
            }
            if isLive {
                // Sizing uses the agent's equity: it must not exceed what the account holds.
                let wallet = try mirror.walletEquity()
                if trader.equity > wallet * 1.01 {
                    problems.append("agent equity \(formatNumber(trader.equity)) USDT exceeds the exchange wallet's \(formatNumber(wallet)) USDT "
                        + "(backtest.initial_equity too high for this account); orders would be sized too large")
                }
            }
            if !foreign.isEmpty {
                problems.append("venue orders unknown to the agent: " + foreign.map { "\($0.orderLinkId.isEmpty ? $0.orderId : $0.orderLinkId)" }.joined(separator: ", "))
            }
            if problems.isEmpty {
                logger.notice("reconciled with the venue: position \(settings.instrument.sizeText(position)), \(open.count) open order(s)",
                              metadata: ["event": "reconcile.ok"])
                for o in open { mirrorState.pending[o.orderLinkId] = paper.workingOrders.first { $0.id == o.orderLinkId } }
            } else {
                let text = problems.joined(separator: "; ")
                raise("position_mismatch", .critical, "reconciliation: \(text); trading halted, nothing was changed", wall: wall)
                note(supervisor.halt("position_mismatch: \(text)"), wall: wall)
            }
        } catch {
            raise("position_mismatch", .critical, "reconciliation impossible, venue unreachable: \(error); trading halted", wall: wall)
            note(supervisor.halt("position_mismatch: venue unreachable at start"), wall: wall)
        }
    }

    func mirrorSubmit(_ intent: OrderIntent) {
        guard mirror != nil else { return }
        mirrorState.pending[intent.id] = intent
        mirrorState.held.append(.submit(intent))
    }

    func mirrorCancel(_ id: String) {
        guard mirror != nil, mirrorState.pending[id] != nil else { return }
        mirrorState.held.append(.cancel(id))
    }

    /// Hands the held calls to the venue worker (after the batch that records them is committed).
    func releaseVenueJobs() {
        guard let mirror, !mirrorState.held.isEmpty else { return }
        for job in mirrorState.held { mirror.enqueue(job) }
        mirrorState.held.removeAll()
    }

    /// A paper fill: compare with the venue's when both are known.
    func mirrorPaperFill(_ fill: Fill, wall: Int64) {
        guard mirror != nil else { return }
        if !isLive {
            mirrorState.paperFills[fill.orderId] = fill
            compareFill(fill.orderId, wall: wall)
        }
        syncVenueStop()
        checkPositionDivergence(wall: wall)
    }

    func onVenue(_ r: VenueReport, wall: Int64) {
        switch r {
        case .acknowledged(let id, let latency):
            logger.info("order acknowledged by the \(venueName)", metadata: ["event": "order.acknowledged", "order_link_id": "\(id)",
                                                                               "venue": "\(venueName)", "latency_ms": "\(latency)"])
        case .rejected(let id, let reason):
            let intent = mirrorState.pending.removeValue(forKey: id)
            logger.warning("order rejected by the \(venueName)", metadata: ["event": "order.rejected", "order_link_id": "\(id)",
                                                                              "venue": "\(venueName)", "reason": "\(reason)"])
            if isLive {
                venueOrderGone(id, status: "rejected", wall: wall)
                let exposed = intent.map { !$0.purpose.isEntry } ?? false
                raise("order_rejected", exposed ? .critical : .warning,
                      "the exchange rejected \(id)\(exposed ? " (an exit: the exchange-held stop still protects the position)" : ""): \(reason)",
                      wall: wall)
            } else {
                raise("shadow_divergence", .warning, "testnet rejected \(id): \(reason)", wall: wall)
            }
            checkPositionDivergence(wall: wall)
        case .cancelled(let id):
            mirrorState.pending.removeValue(forKey: id)
            logger.info("order cancelled on the \(venueName)", metadata: ["event": "order.cancelled", "order_link_id": "\(id)",
                                                                           "venue": "\(venueName)"])
            if isLive { venueOrderGone(id, status: "cancelled", wall: wall) }
            checkPositionDivergence(wall: wall)
        case .execution(let e):
            onVenueExecution(e, wall: wall)
        case .stopSet(let ticks):
            logger.info("exchange-held stop set", metadata: ["event": "venue.stop_set", "stop": "\(ticks.map(settings.instrument.priceText) ?? "none")"])
        case .failed(let what, let reason):
            logger.warning("testnet call failed: \(what)", metadata: ["event": "venue.failed", "what": "\(what)", "reason": "\(reason)"])
            if what == "rest" {
                raise("rate_limited_or_banned", .critical, "\(venueName) REST: \(reason)", wall: wall)
            }
            if what == "trading-stop" {
                raise("shadow_divergence", .warning, "the testnet refused the protective stop: \(reason)", wall: wall)
                mirrorState.stopTicks = nil
            }
        case .flattened(let ok, let steps):
            mirrorState.flattenResult = ok
            flattenSteps.append(contentsOf: steps)
            progressFlatten(wall: wall)
        case .stream(let s):
            switch s {
            case .ready: mirrorState.streamState = "ready"
            case .connected: mirrorState.streamState = "connected"
            case .connecting(let n): mirrorState.streamState = "connecting (attempt \(n))"
            case .disconnected: mirrorState.streamState = "disconnected"
            case .gap, .malformed: break
            }
        }
    }

    private func onVenueExecution(_ e: Execution, wall: Int64) {
        let instrument = settings.instrument
        guard let lots = instrument.lots(e.execQty), let ticks = instrument.ticks(e.execPrice) else {
            logger.error("testnet execution off the instrument's grid", metadata: ["event": "venue.bad_execution", "exec_id": "\(e.execId)"])
            return
        }
        let before = mirrorState.position
        mirrorState.position += lots * e.side.sign
        guard let intent = mirrorState.pending[e.orderLinkId] else {
            if isLive {
                liveForeignExecution(e, lots: lots, ticks: ticks, venueBefore: before, wall: wall)
                return
            }
            // Not one of ours in flight: the exchange-held stop, or an order from elsewhere.
            logger.warning("testnet execution of an order not in flight", metadata: [
                "event": "venue.foreign_execution", "order_link_id": "\(e.orderLinkId)", "order_id": "\(e.orderId)",
                "qty": "\(instrument.sizeText(lots))", "price": "\(instrument.priceText(ticks))",
            ])
            if mirrorState.position == 0 { mirrorState.stopTicks = nil }
            checkPositionDivergence(wall: wall)
            return
        }
        if isLive { venueFees[e.orderLinkId, default: 0] += Double(e.execFee.description) ?? 0 }
        var f = mirrorState.filled[e.orderLinkId] ?? (0, 0)
        f.lots += lots
        f.tickLots += ticks * lots
        mirrorState.filled[e.orderLinkId] = f
        if f.lots >= intent.qty {
            mirrorState.pending.removeValue(forKey: e.orderLinkId)
            mirrorState.filled.removeValue(forKey: e.orderLinkId)
            let priceTwice = roundedDiv(2 * f.tickLots, f.lots)
            if isLive {
                liveFill(intent, lots: f.lots, tickLots: f.tickLots, e: e, wall: wall)
            } else {
                mirrorState.venueAverages[e.orderLinkId] = (f.lots, priceTwice)
                logger.notice("order filled on the testnet", metadata: [
                    "event": "order.filled", "venue": "testnet", "order_link_id": "\(e.orderLinkId)", "qty": "\(instrument.sizeText(f.lots))",
                    "price": "\(instrument.halfTickText(priceTwice))", "latency_ms": "\(e.execTime - intent.decisionTs)",
                ])
                compareFill(e.orderLinkId, wall: wall)
            }
        }
        if mirrorState.position == 0 { mirrorState.stopTicks = nil }
        syncVenueStop()
        checkPositionDivergence(wall: wall)
    }

    var venueName: String { isLive ? "exchange" : "testnet" }

    // MARK: - Live: the exchange's executions are the fills

    /// One order fully executed on the exchange: its fill, at the volume-weighted price rounded to the tick, with the
    /// exchange's fees, enters the trader like a paper fill.
    private func liveFill(_ intent: OrderIntent, lots: Int64, tickLots: Int64, e: Execution, wall: Int64) {
        let fees = venueFees.removeValue(forKey: intent.id) ?? 0
        let fill = Fill(orderId: intent.id, side: intent.side, qty: lots, price: roundedDiv(tickLots, lots), ts: e.execTime,
                        decisionTs: intent.decisionTs, liquidity: e.isMaker ? .maker : .taker, fee: fees, purpose: intent.purpose,
                        referenceMidTwice: lastQuote.map { $0.bidPrice + $0.askPrice })
        _ = paper.cancel(id: intent.id)
        apply([fill], wall: wall)
    }

    /// An execution of no order in flight: the exchange-held stop (or a liquidation, or a hand on the account). A
    /// reduction of our position is applied as a stop exit; anything else is a mismatch that halts.
    private func liveForeignExecution(_ e: Execution, lots: Int64, ticks: Int64, venueBefore: Lots, wall: Int64) {
        let fee = Double(e.execFee.description) ?? 0
        if let p = trader.position, e.side != p.direction, lots <= p.qty, venueBefore * p.direction.sign > 0 {
            logger.warning("position reduced by the exchange-held stop", metadata: [
                "event": "order.filled", "venue": "exchange", "order_id": "\(e.orderId)", "qty": "\(settings.instrument.sizeText(lots))",
                "price": "\(settings.instrument.priceText(ticks))", "purpose": "exit:stop",
            ])
            apply([Fill(orderId: "venue-\(e.orderId)", side: e.side, qty: lots, price: ticks, ts: e.execTime, decisionTs: e.execTime,
                        liquidity: e.isMaker ? .maker : .taker, fee: fee, purpose: .exit(.stop), referenceMidTwice: nil)], wall: wall)
            if mirrorState.position == 0 { mirrorState.stopTicks = nil }
            return
        }
        raise("position_mismatch", .critical, "an execution the agent did not order: \(e.side) \(settings.instrument.sizeText(lots)) at "
            + "\(settings.instrument.priceText(ticks)) (order \(e.orderId)); trading halted", wall: wall)
        note(supervisor.halt("position_mismatch: foreign execution \(e.orderId)"), wall: wall)
    }

    /// A live order cancelled or rejected by the exchange: out of the book and the trader.
    private func venueOrderGone(_ id: String, status: String, wall: Int64) {
        batch.orderUpdates.append((id, status, wall))
        _ = paper.cancel(id: id)
        trader.onOrderGone(id: id)
        venueFees.removeValue(forKey: id)
        mirrorState.filled.removeValue(forKey: id)
    }

    /// Both fills of one order known: a price difference beyond the tolerance is a divergence.
    private func compareFill(_ id: String, wall: Int64) {
        guard let paperFill = mirrorState.paperFills[id], let venue = mirrorState.venueAverages[id] else { return }
        mirrorState.paperFills.removeValue(forKey: id)
        mirrorState.venueAverages.removeValue(forKey: id)
        let diffTwice = abs(venue.priceTwice - 2 * paperFill.price)
        let tolerance = Int64(settings.shadowPriceToleranceTicks)
        if diffTwice > 2 * tolerance || venue.lots != paperFill.qty {
            raise("shadow_divergence", .warning,
                  "\(id): paper \(settings.instrument.sizeText(paperFill.qty)) @ \(settings.instrument.priceText(paperFill.price)), "
                      + "testnet \(settings.instrument.sizeText(venue.lots)) @ \(settings.instrument.halfTickText(venue.priceTwice)) "
                      + "(tolerance \(tolerance) ticks)", wall: wall)
        }
    }

    /// With nothing in flight on either side, the positions must agree.
    func checkPositionDivergence(wall: Int64) {
        guard mirror != nil, mirrorState.pending.isEmpty, paper.workingOrders.isEmpty else { return }
        let paperQty = trader.signedQty
        if paperQty != mirrorState.position {
            if !mirrorState.positionDivergent {
                mirrorState.positionDivergent = true
                if isLive {
                    raise("position_mismatch", .critical, "position: agent \(settings.instrument.sizeText(paperQty)), exchange "
                        + "\(settings.instrument.sizeText(mirrorState.position)); trading halted, nothing changed", wall: wall)
                    note(supervisor.halt("position_mismatch: agent and exchange positions differ"), wall: wall)
                } else {
                    raise("shadow_divergence", .warning, "position: paper \(settings.instrument.sizeText(paperQty)), "
                        + "testnet \(settings.instrument.sizeText(mirrorState.position))", wall: wall)
                }
            }
        } else if mirrorState.positionDivergent {
            mirrorState.positionDivergent = false
            logger.notice("paper and testnet positions agree again", metadata: ["event": "shadow.converged"])
        }
    }

    /// The venue holds the paper position's stop (rounded away from the position to a whole tick).
    func syncVenueStop() {
        guard let mirror else { return }
        guard mirrorState.position != 0, let p = trader.position, p.direction.sign * mirrorState.position > 0 else { return }
        let ticks = p.direction == .long ? floorDiv(p.stopTwice, 2) : -floorDiv(-p.stopTwice, 2)
        guard ticks != mirrorState.stopTicks else { return }
        mirrorState.stopTicks = ticks
        mirror.setStop(ticks: ticks)
    }
}
