import AgentConfig
import AgentSupport
import Engine
import Exchange

/// Where one of the agent's orders stands at the exchange (docs/EXCHANGE.md, "Order states").
enum VenueOrderState: String, Sendable {
    /// Handed to the REST worker, no answer yet.
    case sending
    /// The create call ended without an answer (lost reply, timeout, 5xx): the order may exist; it is queried by
    /// `orderLinkId` until the exchange says.
    case unknown
    /// Accepted: working at the exchange (what executed so far is in `TrackedOrder.lots`).
    case working
}

/// One of the agent's orders at the exchange: what it asked for and what executed so far.
struct TrackedOrder: Sendable {
    var intent: OrderIntent
    var state: VenueOrderState
    /// Executed lots and `sum(price ticks × lots)`, from executions (de-duplicated by `execId`).
    var lots: Lots = 0
    var tickLots: Int64 = 0
    /// The exchange's fees of those executions (USDT).
    var fee = 0.0
    var isMaker = false
    var lastExecTime: Int64 = 0
    /// The executions counted, booked together when the order is done.
    var executions: [(execId: String, execTime: Int64)] = []
    /// The exchange said the order is over (`Filled`, `Cancelled`, `Rejected`, `Deactivated`) with this many lots
    /// executed (`cumExecQty`); the order is done once its executions add up to it.
    var finalStatus: BybitOrderStatus?
    var finalLots: Lots?
    var rejectReason = ""
}

/// What the exchange's reports mean for the agent's books.
enum BookOutcome: Sendable {
    /// One of our orders is over: it executed `lots` (0: nothing) at `tickLots / lots`, with the exchange's fees.
    /// Its status is the exchange's (`Filled`, `Cancelled`, `Rejected`, ...).
    case done(
        OrderIntent, lots: Lots, tickLots: Int64, fee: Double, isMaker: Bool, ts: Int64, status: BybitOrderStatus,
        reason: String,
        executions: [(execId: String, execTime: Int64)])
    /// An execution of no order in flight: the position's own stop, the exchange acting on its own (ADL,
    /// liquidation, delivery), the venue flatten's close, or a hand on the account.
    case foreign(Execution, lots: Lots, ticks: Ticks)
    /// Funding the exchange charged (`execFee`: positive paid, negative received).
    case funding(Execution)
    /// A final report says more executed than the executions seen: they must be read over REST.
    case missingExecutions(linkId: String)
}

/// The exchange's side of the books in shadow and live: one state machine per order the agent sent, fed by the
/// private stream's `order` and `execution` topics, the REST worker's answers and the REST re-reads after every
/// reconnect, all through one `execId` de-duplication, so the same fill read twice (stream and REST) counts once.
///
/// An order is done when the exchange said it is over and its executions add up to what it says executed, or
/// when its executions reach its quantity. Only then does the agent's Trader hear of it, with the quantity actually
/// filled at the volume-weighted price: a market order that partly filled before the exchange cancelled the rest
/// enters the Trader at its real size. Pure state: no I/O, no clock; unit-tested by feeding it reports.
struct ExchangeBook: Sendable {
    let instrument: Instrument
    /// Our orders not yet done, by `orderLinkId`.
    private(set) var orders: [String: TrackedOrder] = [:]
    /// The exchange's position (signed lots): the reconciled start plus every position-changing execution since.
    var position: Lots = 0
    /// The latest `execTime` seen: REST re-reads start from it (less a margin).
    private(set) var lastExecTime: Int64 = 0
    /// The position's own conditional orders (stop, target) the exchange holds, by `orderId`.
    private(set) var conditionals: [String: OrderInfo] = [:]
    private var seenExecIds = RecentIds()
    /// Ids of orders done recently: a late or repeated report of them is not news.
    private var doneIds = RecentIds(capacity: 1_000)

    init(instrument: Instrument) { self.instrument = instrument }

    /// Whether any order of ours is in flight.
    var hasOrdersInFlight: Bool { !orders.isEmpty }

    /// Orders whose create call has no answer yet (`sending`, `unknown`); a `working` one rests at the exchange (a
    /// limit entry waiting for its price) and waits for the market, not for a reply.
    var hasUnansweredOrders: Bool { orders.values.contains { $0.state != .working } }

    /// Orders whose create outcome is unknown.
    var unknownIds: [String] { orders.values.filter { $0.state == .unknown }.map(\.intent.id).sorted() }

    func isTracked(_ id: String) -> Bool { orders[id] != nil }

    /// The stop an order in flight carries to the exchange (an entry's `stopLoss`), if any.
    func attachedStop(of id: String) -> Ticks? { orders[id]?.intent.stopLoss }

    /// Whether this execution was counted already (in this run, or booked before a restart).
    func hasSeen(_ execId: String) -> Bool { seenExecIds.contains(execId) }

    /// Ids of the orders in flight.
    var trackedIds: [String] { orders.keys.sorted() }

    // MARK: - Our side

    /// An order on its way to the exchange.
    mutating func track(_ intent: OrderIntent) {
        guard orders[intent.id] == nil, !doneIds.contains(intent.id) else { return }
        orders[intent.id] = TrackedOrder(intent: intent, state: .sending)
    }

    /// The create call was accepted.
    mutating func acknowledged(_ id: String) {
        guard var o = orders[id] else { return }
        o.state = .working
        orders[id] = o
    }

    /// The create call ended without an answer: the order may exist.
    mutating func outcomeUnknown(_ id: String) {
        guard var o = orders[id], o.state == .sending else { return }
        o.state = .unknown
        orders[id] = o
    }

    /// An order withdrawn before it was sent: forgotten, as if never tracked (a later report of it is not news).
    mutating func forget(_ id: String) {
        guard orders.removeValue(forKey: id) != nil else { return }
        _ = doneIds.insert(id)
    }

    /// The exchange refused the order (a definite answer, or not found long after a lost reply).
    mutating func rejected(_ id: String, reason: String) -> [BookOutcome] {
        guard var o = orders[id] else { return [] }
        o.finalStatus = .rejected
        o.finalLots = o.lots
        o.rejectReason = reason
        orders[id] = o
        return settle(id)
    }

    // MARK: - The exchange's reports

    /// An `order` report (stream or REST).
    mutating func onOrder(_ info: OrderInfo) -> [BookOutcome] {
        if info.isConditional && info.orderLinkId.isEmpty {
            // The position's own stop or target: held while it is open, forgotten once it is over.
            if info.isOpen { conditionals[info.orderId] = info } else { conditionals.removeValue(forKey: info.orderId) }
            return []
        }
        guard var o = orders[info.orderLinkId] else { return [] }
        // Any report of it means the exchange has it.
        o.state = .working
        if info.isFinal {
            o.finalStatus = info.orderStatus == .partiallyFilledCanceled ? .cancelled : info.orderStatus
            o.finalLots = instrument.lots(info.cumExecQty) ?? o.lots
            o.rejectReason = info.rejectReason == "EC_NoError" ? "" : info.rejectReason
        }
        orders[info.orderLinkId] = o
        var out = settle(info.orderLinkId)
        if out.isEmpty, let finalLots = o.finalLots, finalLots > o.lots {
            out.append(.missingExecutions(linkId: info.orderLinkId))
        }
        return out
    }

    /// An execution (stream or REST); a repeated `execId` is ignored.
    mutating func onExecution(_ e: Execution) -> [BookOutcome] {
        guard remember(e.execId) else { return [] }
        lastExecTime = max(lastExecTime, e.execTime)
        if !e.changesPosition { return [.funding(e)] }
        guard let lots = instrument.lots(e.execQty), let ticks = instrument.ticks(e.execPrice) else {
            // Off the instrument's grid: still the exchange's truth for the position, in whole lots.
            let approx = Int64((e.execQty.doubleValue / instrument.qtyStep.doubleValue).rounded())
            position += approx * e.side.sign
            return [
                .foreign(
                    e, lots: approx, ticks: Int64((e.execPrice.doubleValue / instrument.tick.doubleValue).rounded()))
            ]
        }
        position += lots * e.side.sign
        guard e.execType == .trade, !e.orderLinkId.isEmpty, var o = orders[e.orderLinkId] else {
            return [.foreign(e, lots: lots, ticks: ticks)]
        }
        o.lots += lots
        o.tickLots += ticks * lots
        o.fee += Double(e.execFee.description) ?? 0
        o.isMaker = e.isMaker
        o.lastExecTime = max(o.lastExecTime, e.execTime)
        o.executions.append((e.execId, e.execTime))
        o.state = .working
        orders[e.orderLinkId] = o
        return settle(e.orderLinkId)
    }

    /// Ends an order that is over: it executed its whole quantity, or the exchange said it is over and every
    /// execution it reported is in.
    private mutating func settle(_ id: String) -> [BookOutcome] {
        guard let o = orders[id] else { return [] }
        let complete = o.lots >= o.intent.qty
        let reported = o.finalLots.map { o.lots >= $0 } ?? false
        guard complete || reported else { return [] }
        orders.removeValue(forKey: id)
        _ = doneIds.insert(id)
        let status: BybitOrderStatus = complete ? .filled : (o.finalStatus ?? .cancelled)
        return [
            .done(
                o.intent, lots: o.lots, tickLots: o.tickLots, fee: o.fee, isMaker: o.isMaker, ts: o.lastExecTime,
                status: status, reason: o.rejectReason, executions: o.executions)
        ]
    }

    private mutating func remember(_ execId: String) -> Bool { seenExecIds.insert(execId) }

    // MARK: - Reconciliation

    /// Executions booked before a restart (from the database): never counted again.
    mutating func alreadyBooked(_ execIds: [String]) {
        for id in execIds { _ = remember(id) }
    }

    /// Start-up: the exchange's position and its own conditional orders as REST lists them.
    mutating func reconciled(position: Lots, openOrders: [OrderInfo]) {
        self.position = position
        conditionals = [:]
        for o in openOrders where o.isConditional && o.orderLinkId.isEmpty { conditionals[o.orderId] = o }
    }

    /// The conditional stop order the exchange holds for the position, if any (its trigger in ticks).
    var heldStopTicks: Ticks? {
        conditionals.values.first { $0.stopOrderType.isStopLoss }?
            .triggerPrice.flatMap { instrument.ticks($0) }
    }
}
