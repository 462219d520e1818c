package import AgentSupport
package import Engine
package import Exchange
import Foundation

/// `auction-agent flatten-direct` closed the position at the exchange without the agent: the agent's state learns it.
extension AgentStore {
    /// What `bookDirectFlatten` booked: the exit price (nil when the books held no position) and whether it is the
    /// exchange's average over the close's executions (else the entry price, when none were found).
    package struct DirectFlattenBooking: Sendable {
        package var exitPrice: Ticks?
        package var fromExecutions: Bool
    }

    /// Books a close made at the exchange in the last snapshot: working orders cancelled, the position closed as a
    /// flatten exit at the average of the close's executions (read only when a position is open), the state
    /// halted with `operator_flatten_direct`, so that the next start reconciles cleanly and stays halted until
    /// `atctl resume`. Nil when the database holds no snapshot.
    package func bookDirectFlatten(
        closedOrderId: String, side: Direction, executions: () -> [Execution], wall: WallTime
    ) throws -> DirectFlattenBooking? {
        guard let snap = try lastSnapshot() else { return nil }
        var (trader, venue) = (snap.trader, snap.venue)
        for o in venue.workingOrders {
            _ = venue.cancel(id: o.id)
            trader.onOrderGone(id: o.id)
        }
        var batch = StoreBatch()
        var booking = DirectFlattenBooking(exitPrice: nil, fromExecutions: false)
        if let position = trader.position {
            var lots: Int64 = 0
            var tickLots: Int64 = 0
            var fee = 0.0
            for e in executions() {
                guard let l = instrument.lots(e.execQty), let t = instrument.ticks(e.execPrice) else { continue }
                lots += l
                tickLots += l * t
                fee += Double(e.execFee.description) ?? 0
            }
            let price = lots > 0 ? roundedDiv(tickLots, lots) : position.entryPrice
            // With the agent stopped there is no market clock: live runs at market time = wall time.
            let fill = Fill(
                orderId: closedOrderId, side: side, qty: position.qty, price: price, ts: wall.millis,
                decisionTs: wall.millis,
                liquidity: .taker, fee: fee, purpose: .exit(.flatten), referenceMidTwice: nil)
            trader.onFill(fill)
            batch.fills.append(fill)
            booking = DirectFlattenBooking(exitPrice: price, fromExecutions: lots > 0)
        }
        let reason = HaltCause.operatorFlattenDirect.reason()
        batch.transitions.append(
            TransitionRow(wallTs: wall.millis, Transition(from: snap.state, to: .halted, reason: reason)))
        batch.snapshot = SnapshotRow(
            id: 0, wallTs: wall.millis, marketTs: snap.marketTs, state: .halted, reason: reason,
            activated: snap.activated,
            lastMinute: snap.lastMinute, trader: trader, venue: venue)
        try record(batch)
        return booking
    }
}
