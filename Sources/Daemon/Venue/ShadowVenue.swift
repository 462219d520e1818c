import AgentConfig
import AgentSupport
import Engine
import Exchange
import Logging

/// Shadow: the paper model fills the orders (as in paper mode) and the testnet gets the same orders; each fill and
/// the positions are compared, and a difference is alerted (`shadow_divergence`), never halted on
/// (docs/EXCHANGE.md).
final class ShadowVenue: ExchangeVenue {
    override var name: String { "testnet" }
    override var keepsActivationAcrossRestarts: Bool { true }

    override func adapt(_ trader: inout Trader) { applyFillRules(&trader, exchangeFills: false) }

    override var fillsOnPaperBook: Bool { true }

    override func submitted(_ intent: OrderIntent, wall: Int64) {
        engine.acknowledgedOnPaper(intent)
        super.submitted(intent, wall: wall)
    }

    override func cancel(_ id: String, removedFromBook: Bool, wall: Int64) {
        super.cancel(id, removedFromBook: removedFromBook, wall: wall)
        if removedFromBook { engine.cancelledOnPaper(id, wall: wall) }
    }

    /// A paper fill: compared with the testnet's once both are known.
    override func filled(_ fill: Fill, wall: Int64) {
        state.paperFills[fill.orderId] = fill
        compareFill(fill.orderId, wall: wall)
        super.filled(fill, wall: wall)
    }

    override func progressFlatten(wall: Int64) {
        // The close fills at the next quote; with market data down, at the last quote known.
        fillAtLastQuote(engine: engine, startedWall: flattenStartedWall, wall: wall)
    }

    override func unconfirmedFlattenText(steps: [String]) -> String {
        "paper flat and halted, but the testnet position is NOT confirmed flat: " + steps.joined(separator: "; ")
    }

    override func foreignExecution(_ e: Execution, lots: Lots, ticks: Ticks, wall: Int64) {
        engine.logger.warning(
            "testnet execution of an order not in flight",
            metadata: [
                "event": "venue.foreign_execution", "order_link_id": "\(e.orderLinkId)",
                "order_id": "\(e.orderId)",
                "exec_type": "\(e.execType)", "stop_order_type": "\(e.stopOrderType)",
                "qty": "\(engine.sizeText(lots))",
                "price": "\(engine.priceText(ticks))",
            ])
    }

    override func funding(_ e: Execution, paid: Double, wall: Int64) {
        engine.logger.info(
            "testnet funding",
            metadata: [
                "event": "funding.venue", "fee": "\(formatNumber(paid))",
                "paper_funding_total": "\(formatNumber(engine.trader.fundingPaid))",
            ])
    }

    /// The testnet's fill is compared with the paper one; the paper books are not changed.
    override func orderOver(
        _ intent: OrderIntent, lots: Lots, tickLots: Int64, fee: Double, isMaker: Bool, ts: Int64,
        status: BybitOrderStatus,
        reason: String, wall: Int64
    ) {
        if lots > 0 {
            let priceTwice = roundedDiv(2 * tickLots, lots)
            state.venueAverages[intent.id] = (lots, priceTwice)
            engine.logger.notice(
                "order filled on the testnet",
                metadata: [
                    "event": "order.filled", "venue": "testnet", "order_link_id": "\(intent.id)",
                    "qty": "\(engine.sizeText(lots))",
                    "price": "\(engine.halfTickText(priceTwice))", "latency_ms": "\(ts - intent.decisionTs)",
                ])
            compareFill(intent.id, wall: wall)
        }
    }
}
