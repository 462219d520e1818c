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
        guard let mirror else { return }
        mirrorState.pending[intent.id] = intent
        mirror.submit(intent)
    }

    func mirrorCancel(_ id: String) {
        guard let mirror, mirrorState.pending[id] != nil else { return }
        mirror.cancel(id: id)
    }

    /// A paper fill: compare with the venue's when both are known.
    func mirrorPaperFill(_ fill: Fill, wall: Int64) {
        guard mirror != nil else { return }
        mirrorState.paperFills[fill.orderId] = fill
        compareFill(fill.orderId, wall: wall)
        syncVenueStop()
        checkPositionDivergence(wall: wall)
    }

    func onVenue(_ r: VenueReport, wall: Int64) {
        switch r {
        case .acknowledged(let id, let latency):
            logger.info("order acknowledged by the testnet", metadata: ["event": "order.acknowledged", "order_link_id": "\(id)",
                                                                         "venue": "testnet", "latency_ms": "\(latency)"])
        case .rejected(let id, let reason):
            mirrorState.pending.removeValue(forKey: id)
            logger.warning("order rejected by the testnet", metadata: ["event": "order.rejected", "order_link_id": "\(id)",
                                                                        "venue": "testnet", "reason": "\(reason)"])
            raise("shadow_divergence", .warning, "testnet rejected \(id): \(reason)", wall: wall)
            checkPositionDivergence(wall: wall)
        case .cancelled(let id):
            mirrorState.pending.removeValue(forKey: id)
            logger.info("order cancelled on the testnet", metadata: ["event": "order.cancelled", "order_link_id": "\(id)", "venue": "testnet"])
            checkPositionDivergence(wall: wall)
        case .execution(let e):
            onVenueExecution(e, wall: wall)
        case .stopSet(let ticks):
            logger.info("exchange-held stop set", metadata: ["event": "venue.stop_set", "stop": "\(ticks.map(settings.instrument.priceText) ?? "none")"])
        case .failed(let what, let reason):
            logger.warning("testnet call failed: \(what)", metadata: ["event": "venue.failed", "what": "\(what)", "reason": "\(reason)"])
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
        mirrorState.position += lots * e.side.sign
        guard let intent = mirrorState.pending[e.orderLinkId] else {
            // Not one of ours in flight: the exchange-held stop, or an order from elsewhere.
            logger.warning("testnet execution of an order not in flight", metadata: [
                "event": "venue.foreign_execution", "order_link_id": "\(e.orderLinkId)", "order_id": "\(e.orderId)",
                "qty": "\(instrument.sizeText(lots))", "price": "\(instrument.priceText(ticks))",
            ])
            if mirrorState.position == 0 { mirrorState.stopTicks = nil }
            checkPositionDivergence(wall: wall)
            return
        }
        var f = mirrorState.filled[e.orderLinkId] ?? (0, 0)
        f.lots += lots
        f.tickLots += ticks * lots
        mirrorState.filled[e.orderLinkId] = f
        if f.lots >= intent.qty {
            mirrorState.pending.removeValue(forKey: e.orderLinkId)
            mirrorState.filled.removeValue(forKey: e.orderLinkId)
            let priceTwice = roundedDiv(2 * f.tickLots, f.lots)
            mirrorState.venueAverages[e.orderLinkId] = (f.lots, priceTwice)
            logger.notice("order filled on the testnet", metadata: [
                "event": "order.filled", "venue": "testnet", "order_link_id": "\(e.orderLinkId)", "qty": "\(instrument.sizeText(f.lots))",
                "price": "\(instrument.halfTickText(priceTwice))", "latency_ms": "\(e.execTime - intent.decisionTs)",
            ])
            compareFill(e.orderLinkId, wall: wall)
        }
        if mirrorState.position == 0 { mirrorState.stopTicks = nil }
        syncVenueStop()
        checkPositionDivergence(wall: wall)
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
                raise("shadow_divergence", .warning, "position: paper \(settings.instrument.sizeText(paperQty)), "
                    + "testnet \(settings.instrument.sizeText(mirrorState.position))", wall: wall)
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
