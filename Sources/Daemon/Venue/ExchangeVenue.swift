import AgentConfig
import AgentSupport
import ControlProtocol
import Engine
import Exchange
import ExchangeStreams
import Foundation
import Logging

/// The exchange side of shadow and live (docs/EXCHANGE.md): `ExchangeVenue`. The `ExchangeBook` keeps one state machine per order
/// the agent sent, fed by the private stream, the REST worker and the REST re-reads, through one `execId`
/// de-duplication. In live the exchange's books are the truth: an order enters the Trader when it is over, at the
/// quantity that actually executed; what the exchange did on its own (the position's stop, ADL, liquidation,
/// delivery, funding) is booked as reported and alerted when it matters; what stays unexplained halts trading. In
/// shadow the paper venue decides and the testnet's books are compared with it (divergences are alerted).
struct MirrorState {
    var book: ExchangeBook
    /// Shadow: paper fills and testnet averages waiting for their counterpart, by order id.
    var paperFills: [String: Fill] = [:]
    var venueAverages: [String: (lots: Int64, priceTwice: HalfTicks)] = [:]
    var positionDivergent = false
    /// The stop the exchange holds (ticks), as last confirmed; nil: none.
    var stopHeld: Ticks?
    /// A trading-stop call is on its way.
    var stopInFlight = false
    var stopFailures = 0
    var stopRetryWall = WallTime.zero
    /// Since when the exchange's position has had no stop (wall ms).
    var unprotectedSince: WallTime?
    var unprotectedAlerted = false
    var streamState = StreamState.notStarted
    /// Since when the private stream has not been ready (wall ms).
    var streamDownSince: WallTime?
    var streamAlerted = false
    var lastResyncWall = WallTime.zero
    var resyncInFlight = false
    /// Re-reads ask for executions from here (the exchange's time): the market time of the last successful one,
    /// less a margin.
    var resyncFrom: Int64 = 0
    var resyncAskedAt: Int64 = 0
    /// Consecutive re-reads whose position differed from the executions' sum.
    var positionStrikes = 0
    var lastWalletWall = WallTime.zero
    /// The start-up reconciliation could not reach the venue: the first re-read that answers does it.
    var reconcilePending = false
    /// The mirror's flatten: nil while running (or not asked), then its outcome.
    var flattenResult: Bool?
    var flattenAsked = false
    /// Calls waiting for the step's records to be committed (an order is recorded before it is sent).
    var held: [ExchangeMirror.Job] = []
    /// Values of Bybit's enumerations this agent does not know, alerted once each (`field value`).
    var unknownValuesAlerted: Set<String> = []

    init(instrument: Instrument) { book = ExchangeBook(instrument: instrument) }
}

/// What the exchange venue needs of the account it trades: a start-up read, the wallet, and calls queued to a worker
/// whose answers come back as `VenueReport`s through the engine's queue. `ExchangeMirror` (REST and the private
/// stream); a scripted one in the unit tests.
protocol ExchangeGateway: AnyObject {
    /// The venue's position, stop, open orders and the executions since a time (the exchange's), read now.
    func snapshot(executionsSince: Int64?) throws(BybitError) -> VenueResync
    /// The account's total equity (USDT), read now.
    func walletEquity() throws(BybitError) -> Double
    /// Queues a call; its outcome comes back as a report.
    func send(_ job: ExchangeMirror.Job)
    func setStop(ticks: Int64?)
    func flatten(wall: WallTime)
    func resync(ids: [String], since: Int64, reason: String)
    func readWallet()
    /// Wall time of the last call that succeeded.
    var lastSuccessWall: WallTime? { get }
    /// The account's rate limits per endpoint, and the last waits for them.
    func rateLimits(wall: WallTime) -> [RateLimitReport]
}

extension ExchangeGateway {
    func rateLimits(wall: WallTime) -> [RateLimitReport] { [] }
}

extension ExchangeMirror: ExchangeGateway {
    func send(_ job: Job) { enqueue(job) }
}

/// Shadow and live: the orders go to a Bybit account through an `ExchangeGateway`; its reports keep the exchange's
/// books (`ExchangeBook`), the stop it holds and the private stream's state, and come back to the engine as
/// `VenueEvent`s. What differs between shadow (the paper model fills, the testnet is compared and divergences
/// alerted) and live (the exchange's executions are the fills; what stays unexplained halts) is the `VenueRole`; the
/// engine decides what each event does to its books (`AgentEngine+Venue.swift`).
final class ExchangeVenue: TradingVenue {
    let role: VenueRole
    let gateway: any ExchangeGateway
    var state: MirrorState
    let instrument: Instrument
    let mode: AgentMode
    /// Shadow: a testnet fill further than this from the paper one is a divergence (ticks).
    let priceToleranceTicks: Int
    let logger: Logger
    let metrics: AgentMetrics
    /// The start-up reconciliation's read, for `finishReconcile`.
    private var startRead: VenueResync?
    private var startSince: Int64?

    init(
        role: VenueRole, gateway: any ExchangeGateway, settings: AgentConfiguration, logger: Logger,
        metrics: AgentMetrics
    ) {
        self.role = role
        self.gateway = gateway
        instrument = settings.instrument
        mode = settings.mode
        priceToleranceTicks = settings.shadow.priceToleranceTicks
        self.logger = logger
        self.metrics = metrics
        state = MirrorState(instrument: settings.instrument)
    }

    var name: String { role.name }
    private var alerts: AlertWording { AlertWording(instrument: instrument, isLive: role.exchangeFills) }
    private func priceText(_ ticks: Int64) -> String { instrument.priceText(ticks) }
    private func sizeText(_ lots: Int64) -> String { instrument.sizeText(lots) }

    // MARK: - Flatten

    func startFlatten(wall: WallTime) {
        // After the trader's close above: cancel everything on the venue, close its own position, confirm flat.
        state.flattenResult = nil
        gateway.flatten(wall: wall)
        state.flattenAsked = true
    }

    var flattenOutcome: VenueFlattenOutcome {
        switch state.flattenResult {
        case .some(true): .confirmed
        case .some(false): .failed
        case .none: state.flattenAsked ? .pending : .confirmed
        }
    }

    func flattenFinished() { state.flattenAsked = false }

    // MARK: - What the engine reads

    var hasOrdersInFlight: Bool { state.book.hasOrdersInFlight }

    var entryVeto: EntryVeto? {
        // No entry while the exchange's private stream is not authenticated.
        state.streamState != .ready ? .privateStream : nil
    }

    var resumeBlocker: String? {
        state.reconcilePending
            ? "the \(name) has not answered since the start; trading resumes only once it is reconciled" : nil
    }

    func degradedReasons(wall: WallTime) -> [String] {
        var degraded: [String] = []
        if state.streamState != .ready { degraded.append("\(name) private stream \(state.streamState)") }
        if state.positionDivergent { degraded.append("agent and \(name) positions differ") }
        if let since = state.unprotectedSince {
            degraded.append("position without an exchange-held stop for \((wall - since) / 1000) s")
        }
        let unknown = state.book.unknownIds
        if !unknown.isEmpty { degraded.append("order outcome unknown: \(unknown.joined(separator: ", "))") }
        return degraded
    }

    func rateLimits(wall: WallTime) -> [RateLimitReport] { gateway.rateLimits(wall: wall) }

    var lastSuccessWall: WallTime? { gateway.lastSuccessWall }
    func unprotectedMs(wall: WallTime) -> Int64? { state.unprotectedSince.map { wall - $0 } }
    func outcomeUnknown(_ id: String) -> Bool { state.book.unknownIds.contains(id) }

    var heldOrders: [OrderReport] {
        state.book.conditionals.values.sorted { $0.orderId < $1.orderId }.map { o in
            OrderReport(
                id: o.orderId, side: "\(o.side)", qty: o.qty.description, type: "stop-market",
                price: o.triggerPrice?.description,
                reduceOnly: true, purpose: "\(name)-held \(o.stopOrderType)", decidedAt: "")
        }
    }

    // MARK: - Start-up reconciliation

    /// Before READY: the venue's position, stop and open orders against the restored state. What the exchange's
    /// own reports explain (executions of orders that were working when the agent stopped; live: the position's
    /// stop or an ADL while it was down) is reported for the engine to book; `finishReconcile` then compares what
    /// is left. A venue that does not answer within `retryForMs` is reported unreachable (the engine halts).
    func reconcile(_ view: VenueView, bookedIds: (Int64) throws -> [String], retryForMs: Int64, wall: WallTime)
        -> [VenueEvent]
    {
        startRead = nil
        do {
            // Executions since the last market data the agent stored (less a margin) may explain a difference; the
            // exchange's own time runs in its market data, so the span is measured there.
            let since: Int64? = view.lastMarketTs > 0 ? view.lastMarketTs - 5 * 60_000 : nil
            // A rate-limit storm or a short outage at start is waited out (up to `retryForMs`), not a halt.
            var attempt = 0
            var venue: VenueResync
            while true {
                attempt += 1
                do {
                    venue = try gateway.snapshot(executionsSince: since)
                    break
                } catch {
                    guard WallTime.now - wall < retryForMs else { throw error }
                    logger.warning(
                        "\(name) not answering at start; retrying",
                        metadata: [
                            "event": "reconcile.retry", "attempt": "\(attempt)", "reason": "\(error)",
                        ])
                    sleepMillis(min(5_000, 500 * Int64(attempt)))
                }
            }
            var events: [VenueEvent] = []
            state.book.reconciled(position: venue.position, openOrders: venue.openOrders)
            // What was booked before the restart is never booked again (the ids are written with their fills).
            state.book.alreadyBooked(try bookedIds((since ?? view.lastMarketTs) - 8 * 86_400_000))
            state.stopHeld = venue.stopTicks
            for e in venue.executions { events += unknownValues(e) }
            for o in venue.openOrders { events += unknownValues(o) }
            for w in view.workingOrders {
                state.book.track(w)
                state.book.acknowledged(w.id)
            }
            // Orders that were working: their executions and final state, as the exchange has them.
            let workingIds = Set(view.workingOrders.map(\.id))
            for e in venue.executions where workingIds.contains(e.orderLinkId) {
                events += outcomes(state.book.onExecution(e), view: view, wall: wall)
            }
            for o in venue.openOrders where workingIds.contains(o.orderLinkId) {
                events += outcomes(state.book.onOrder(o), view: view, wall: wall)
            }
            state.book.position = venue.position
            let own = venue.executions.filter {
                !workingIds.contains($0.orderLinkId) && $0.changesPosition && !state.book.hasSeen($0.execId)
            }
            if !own.isEmpty { events.append(.executionsWhileDown(own, venuePosition: venue.position)) }
            startRead = venue
            startSince = since
            return events
        } catch {
            return unreachable(error, wall: wall)
        }
    }

    /// Nothing is known to be wrong, only nothing is known: the engine halts until a re-read answers and agrees.
    private func unreachable(_ error: any Error, wall: WallTime) -> [VenueEvent] {
        state.reconcilePending = true
        return [.unreachableAtStart(seconds: (WallTime.now - wall) / 1000, error: "\(error)")]
    }

    func claimExecution(_ execId: String) -> Bool {
        guard !state.book.hasSeen(execId) else { return false }
        state.book.alreadyBooked([execId])
        return true
    }

    func finishReconcile(_ view: VenueView, wall: WallTime) -> [VenueEvent] {
        guard let venue = startRead else { return [] }
        startRead = nil
        var events: [VenueEvent] = []
        let problems = reconciliationProblems(view, position: venue.position, openOrders: venue.openOrders)
        if role.readsWallet {
            do {
                events.append(.wallet(equity: try gateway.walletEquity()))
                state.lastWalletWall = wall
            } catch {
                return events + unreachable(error, wall: wall)
            }
        }
        if problems.isEmpty {
            let held = state.stopHeld.map { ", stop \(priceText($0)) held" } ?? ""
            let own = venue.openOrders.filter(\.isConditional).count
            let text =
                "reconciled with the \(name): position \(sizeText(venue.position))\(held), "
                + "\(venue.openOrders.count) open order(s) (\(own) the position's own)"
            logger.notice("\(text)", metadata: ["event": "reconcile.ok"])
        } else {
            events.append(.reconciliationFailed(problems))
        }
        state.lastResyncWall = wall
        state.resyncFrom = startSince ?? 0
        state.streamDownSince = wall
        syncVenueStop(view, wall: wall)
        return events
    }

    /// After a start that could not reconcile: the first re-read that answers does it.
    private func reconcileLate(_ r: VenueResync, view: VenueView) -> [VenueEvent] {
        state.reconcilePending = false
        let problems = reconciliationProblems(view, position: r.position, openOrders: r.openOrders)
        return problems.isEmpty
            ? [.alert(alerts.venueAnswersAgain(position: r.position))] : [.reconciliationFailed(problems)]
    }

    /// What the venue's position and open orders say that the agent's books do not: a position that differs with
    /// nothing in flight, open orders that are neither the agent's nor the position's own conditional ones.
    private func reconciliationProblems(_ view: VenueView, position: Lots, openOrders: [OrderInfo]) -> [String] {
        let known = Set(view.workingOrders.map(\.id))
        let foreign = openOrders.filter { !$0.isConditional && !known.contains($0.orderLinkId) }
        var problems: [String] = []
        if position != view.signedQty && !state.book.hasOrdersInFlight {
            problems.append(alerts.positionProblem(agent: view.signedQty, venue: position))
        }
        if !foreign.isEmpty {
            problems.append(
                alerts.unknownOrdersProblem(foreign.map { $0.orderLinkId.isEmpty ? $0.orderId : $0.orderLinkId }))
        }
        return problems
    }

    // MARK: - Orders out

    func submitted(_ intent: OrderIntent, wall: WallTime) {
        state.book.track(intent)
        state.held.append(.submit(intent))
    }

    func cancel(_ id: String, view: VenueView, wall: WallTime) -> [VenueEvent] {
        // An order not sent yet is cancelled by not sending it (an entry withdrawn while the database refuses
        // writes): over, nothing executed.
        let unsent = state.held.firstIndex {
            if case .submit(let i) = $0 { i.id == id } else { false }
        }
        if let index = unsent, case .submit(let intent) = state.held[index] {
            state.held.remove(at: index)
            state.book.forget(id)
            logger.notice(
                "order cancelled before it was sent to the \(name)",
                metadata: ["event": "order.cancelled", "order_link_id": "\(id)", "venue": "\(name)"])
            return [
                .orderOver(
                    VenueOrderOver(
                        intent: intent, lots: 0, tickLots: 0, fee: 0, isMaker: false, ts: view.lastMarketTs,
                        status: .cancelled, reason: "not sent"))
            ]
        }
        if state.book.isTracked(id) { state.held.append(.cancel(id)) }
        return []
    }

    /// Hands the held calls to the venue worker (after the batch that records them is committed).
    func committed(_ batch: StoreBatch) {
        guard !state.held.isEmpty else { return }
        for job in state.held { gateway.send(job) }
        state.held.removeAll()
    }

    /// The database refuses writes: what protects or reduces the position (exits, cancels) leaves now, its record
    /// held in the journal; entries wait (the engine withdraws them).
    func sendProtective() {
        let now = state.held.filter(\.isProtective)
        guard !now.isEmpty else { return }
        for job in now { gateway.send(job) }
        state.held.removeAll { $0.isProtective }
    }

    /// A fill booked by the trader: shadow compares a paper fill with the testnet's; the stop follows the position;
    /// the positions must agree.
    func filled(_ fill: Fill, view: VenueView, wall: WallTime) -> [VenueEvent] {
        var events: [VenueEvent] = []
        if role.fillsOnPaperBook {
            state.paperFills[fill.orderId] = fill
            events += compareFill(fill.orderId)
        }
        return events + settle(view, wall: wall)
    }

    // MARK: - Reports in

    func report(_ r: VenueReport, view: VenueView, wall: WallTime) -> [VenueEvent] {
        switch r {
        case .acknowledged(let id, let orderId, let latency):
            state.book.acknowledged(id)
            logger.info(
                "order acknowledged by the \(name)",
                metadata: [
                    "event": "order.acknowledged", "order_link_id": "\(id)",
                    "order_id": "\(orderId)", "venue": "\(name)",
                    "latency_ms": "\(latency)",
                ])
            return []
        case .rejected(let id, let reason):
            return outcomes(state.book.rejected(id, reason: reason), view: view, wall: wall)
        case .outcomeUnknown(let id, let reason):
            state.book.outcomeUnknown(id)
            logger.warning(
                "order create got no answer; querying it by its id",
                metadata: [
                    "event": "order.unknown", "order_link_id": "\(id)", "venue": "\(name)", "reason": "\(reason)",
                ])
            return []
        case .cancelFailed(let id, let reason):
            logger.info(
                "cancel not done (filled or gone already?); its state is read back",
                metadata: [
                    "event": "order.cancel_failed", "order_link_id": "\(id)", "venue": "\(name)",
                    "reason": "\(reason)",
                ])
            return []
        case .order(let info):
            return unknownValues(info) + outcomes(state.book.onOrder(info), view: view, wall: wall)
        case .execution(let e):
            let events = unknownValues(e)
            // An entry that carried its stop (`stopLoss` on create) opens the position: the exchange sets that stop in
            // the same matching step. Held from now; a REST re-read verifies it, and the stop is corrected with
            // trading-stop if the exchange holds another.
            let opening = state.book.position == 0 && !state.book.hasSeen(e.execId)
            if let sl = state.book.attachedStop(of: e.orderLinkId), opening, state.stopHeld == nil,
                !state.stopInFlight
            {
                state.stopHeld = sl
                logger.info(
                    "the entry's attached stop protects the position from its first fill",
                    metadata: [
                        "event": "venue.stop_attached", "order_link_id": "\(e.orderLinkId)",
                        "stop": "\(priceText(sl))", "venue": "\(name)",
                    ])
                requestResync("verify the entry's attached stop", view: view, wall: wall)
            }
            return events + outcomes(state.book.onExecution(e), view: view, wall: wall)
        case .stopSet(let ticks, let changed):
            state.stopInFlight = false
            state.stopHeld = ticks
            state.stopFailures = 0
            logger.info(
                changed ? "exchange-held stop set" : "exchange-held stop already in place (34040)",
                metadata: [
                    "event": "venue.stop_set", "stop": "\(ticks.map(priceText) ?? "none")", "venue": "\(name)",
                ])
            return []
        case .stopFailed(let ticks, let reason):
            state.stopInFlight = false
            if view.flattening {
                // The flatten is closing the position: a stop refused meanwhile (Bybit: 10001, "can not set tp/sl/ts
                // for zero position") is how a flatten goes, not a failure to protect. Tried again while it lasts.
                state.stopRetryWall = wall + 1_000
                logger.notice(
                    "stop refused while flattening (the position is being closed)",
                    metadata: [
                        "event": "venue.stop_refused_flattening", "stop": "\(ticks.map(priceText) ?? "none")",
                        "venue": "\(name)", "reason": "\(reason)",
                    ])
                return []
            }
            state.stopFailures += 1
            let n = state.stopFailures
            state.stopRetryWall = wall + min(30_000, 1_000 << min(n - 1, 5))
            return role.alertsStopRefusal(n)
                ? [.alert(alerts.stopRefused(stop: ticks, attempt: n, reason: reason))] : []
        case .resync(let r):
            return onResync(r, view: view, wall: wall)
        case .resyncFailed(let reason):
            state.resyncInFlight = false
            // Try again in 10 s rather than a minute.
            state.lastResyncWall = wall - 50_000
            logger.warning("\(name) re-read failed", metadata: ["event": "venue.resync_failed", "reason": "\(reason)"])
            return []
        case .wallet(let equity):
            state.lastWalletWall = wall
            return [.wallet(equity: equity)]
        case .failed(let what, let reason):
            logger.warning(
                "\(name) call failed: \(what)",
                metadata: ["event": "venue.failed", "what": "\(what)", "reason": "\(reason)"])
            return what == .rest ? [.alert(alerts.restRefused(reason))] : []
        case .flattened(let ok, let steps):
            state.flattenResult = ok
            return [.flattened(steps: steps)]
        case .stream(let s):
            onPrivateStream(s, view: view, wall: wall)
            return []
        }
    }

    /// After the engine applied a report's events (or booked a fill): the stop follows the position, and with
    /// nothing in flight the positions must agree.
    func settle(_ view: VenueView, wall: WallTime) -> [VenueEvent] {
        syncVenueStop(view, wall: wall)
        return checkPositionDivergence(view)
    }

    private func onPrivateStream(_ s: StreamStatus, view: VenueView, wall: WallTime) {
        switch s {
        case .ready:
            state.streamState = .ready
            state.streamDownSince = nil
            if state.streamAlerted {
                state.streamAlerted = false
                logger.notice("\(name) private stream authenticated again", metadata: ["event": "venue.stream_ready"])
            }
            // The stream does not replay: whatever happened while it was down is only in REST.
            requestResync("private stream (re)connected", view: view, wall: wall)
        case .connected: setStreamDown(.unauthenticated, wall: wall)
        case .connecting(let n):
            if n > 1 { metrics.streamReconnect("private") }
            setStreamDown(.connecting(attempt: n), wall: wall)
        case .disconnected(let reason):
            setStreamDown(.disconnected, wall: wall)
            logger.warning(
                "\(name) private stream down", metadata: ["event": "venue.stream_down", "reason": "\(reason)"])
        case .gap, .malformed: break
        }
    }

    private func setStreamDown(_ down: StreamState, wall: WallTime) {
        state.streamState = down
        if state.streamDownSince == nil { state.streamDownSince = wall }
    }

    /// What the exchange's reports mean for the agent's books, as events.
    private func outcomes(_ outcomes: [BookOutcome], view: VenueView, wall: WallTime) -> [VenueEvent] {
        var events: [VenueEvent] = []
        for o in outcomes {
            switch o {
            case .done(
                let intent, let lots, let tickLots, let fee, let isMaker, let ts, let status, let reason, let executions
            ):
                events.append(
                    .executionsSeen(executions.map { ExecutionRow(execId: $0.execId, execTime: $0.execTime) }))
                events += orderDone(
                    VenueOrderOver(
                        intent: intent, lots: lots, tickLots: tickLots, fee: fee, isMaker: isMaker, ts: ts,
                        status: status, reason: reason),
                    view: view)
            case .foreign(let e, let lots, let ticks):
                events.append(.executionsSeen([ExecutionRow(execId: e.execId, execTime: e.execTime)]))
                events.append(.foreignExecution(e, lots: lots, ticks: ticks))
            case .funding(let e):
                events.append(.executionsSeen([ExecutionRow(execId: e.execId, execTime: e.execTime)]))
                events.append(.funding(e, paid: Double(e.execFee.description) ?? 0))
            case .missingExecutions(let id):
                requestResync("executions of \(id) missing", view: view, wall: wall)
            }
        }
        return events
    }

    /// One of our orders is over at the exchange: logged; shadow compares its fill with the paper one; a rejection
    /// is alerted after the event.
    private func orderDone(_ over: VenueOrderOver, view: VenueView) -> [VenueEvent] {
        let (intent, lots, status, reason) = (over.intent, over.lots, over.status, over.reason)
        let partial = lots > 0 && lots < intent.qty
        if lots == 0 || partial {
            let m: Logger.Metadata = [
                "event": "order.\(lots == 0 ? status.text.lowercased() : "partially_filled")",
                "order_link_id": "\(intent.id)",
                "venue": "\(name)", "status": "\(status)", "filled": "\(sizeText(lots))",
                "qty": "\(sizeText(intent.qty))", "reason": "\(reason)",
            ]
            if partial {
                logger.warning(
                    "order filled \(sizeText(lots)) of \(sizeText(intent.qty)) before the \(name) ended it (\(status))",
                    metadata: m)
            } else {
                logger.notice("order \(status.text.lowercased()) by the \(name)", metadata: m)
            }
        }
        var events: [VenueEvent] = [.orderOver(over)]
        if role.fillsOnPaperBook && lots > 0 {
            // Shadow: the testnet's fill is compared with the paper one once both are known.
            let priceTwice = roundedDiv(2 * over.tickLots, lots)
            state.venueAverages[intent.id] = (lots, priceTwice)
            logger.notice(
                "order filled on the testnet",
                metadata: [
                    "event": "order.filled", "venue": "testnet", "order_link_id": "\(intent.id)",
                    "qty": "\(sizeText(lots))",
                    "price": "\(instrument.halfTickText(priceTwice))", "latency_ms": "\(over.ts - intent.decisionTs)",
                ])
            events += compareFill(intent.id)
        }
        if lots == 0 && status == .rejected {
            if Self.isExpectedFlattenRefusal(
                mode: mode, flattening: view.flattening, intent: intent, reason: reason)
            {
                // Shadow's flatten: the testnet's own flatten closed its position first, so the mirrored close finds
                // nothing to reduce. The expected end, not a divergence.
                logger.notice(
                    "the testnet was already flat: its copy of the close was refused (110017), as a flatten expects",
                    metadata: ["event": "shadow.flatten_close_refused", "order_link_id": "\(intent.id)"])
            } else {
                events.append(
                    .alert(alerts.orderRejected(id: intent.id, isExit: !intent.purpose.isEntry, reason: reason)))
            }
        }
        return events
    }

    /// Shadow, flattening: a reduce-only close the testnet refuses with 110017 (nothing to reduce: the testnet position
    /// is already flat) is how a flatten ends there.
    static func isExpectedFlattenRefusal(mode: AgentMode, flattening: Bool, intent: OrderIntent, reason: String) -> Bool
    {
        mode == .shadow && flattening && intent.reduceOnly
            && reason.contains(String(BybitRetCode.reduceOnlyNotSatisfied))
    }

    // MARK: - Values this agent does not know

    /// An order report's enumerations: one this agent does not know is alerted the first time.
    func unknownValues(_ o: OrderInfo) -> [VenueEvent] {
        let what = "order \(o.orderLinkId.isEmpty ? o.orderId : o.orderLinkId)"
        return [
            unknown("orderStatus", o.orderStatus.unknownText, what),
            unknown("orderType", o.orderType.unknownText, what),
            unknown("stopOrderType", o.stopOrderType.unknownText, what),
        ].compactMap { $0 }
    }

    func unknownValues(_ e: Execution) -> [VenueEvent] {
        let what = "execution \(e.execId)"
        return [
            unknown("execType", e.execType.unknownText, what),
            unknown("stopOrderType", e.stopOrderType.unknownText, what),
        ].compactMap { $0 }
    }

    private func unknown(_ field: String, _ value: String?, _ what: String) -> VenueEvent? {
        guard let value, state.unknownValuesAlerted.insert("\(field) \(value)").inserted else { return nil }
        return .alert(alerts.exchangeUnknownValue(field: field, value: value, of: what))
    }

    // MARK: - Re-reads

    func requestResync(_ reason: String, view: VenueView, wall: WallTime) {
        guard !state.resyncInFlight else { return }
        state.resyncInFlight = true
        state.lastResyncWall = wall
        state.resyncAskedAt = view.lastMarketTs
        let ids = state.book.trackedIds
        // From the last successful re-read (or the last execution seen, if earlier), less a minute; never before a day
        // ago in the market's time.
        var from = state.resyncFrom > 0 ? state.resyncFrom : view.lastMarketTs - 10 * 60_000
        if state.book.lastExecTime > 0 { from = min(from, state.book.lastExecTime) }
        from = max(from - 60_000, view.lastMarketTs - 86_400_000)
        gateway.resync(ids: ids, since: from, reason: reason)
    }

    /// A REST re-read: every execution (de-duplicated), the asked orders and the open ones through the book; then
    /// the position the executions add up to must equal the exchange's (twice in a row unexplained: reported).
    private func onResync(_ r: VenueResync, view: VenueView, wall: WallTime) -> [VenueEvent] {
        state.resyncInFlight = false
        var events: [VenueEvent] = []
        for e in r.executions { events += unknownValues(e) }
        for o in r.asked + r.openOrders { events += unknownValues(o) }
        if state.resyncAskedAt > 0 { state.resyncFrom = state.resyncAskedAt }
        if state.reconcilePending {
            state.book.position = r.position
            events += reconcileLate(r, view: view)
        }
        for e in r.executions { events += outcomes(state.book.onExecution(e), view: view, wall: wall) }
        for o in r.asked { events += outcomes(state.book.onOrder(o), view: view, wall: wall) }
        for o in r.openOrders { events += outcomes(state.book.onOrder(o), view: view, wall: wall) }
        // The stop as the exchange holds it.
        if r.position == 0 {
            state.stopHeld = nil
        } else if !state.stopInFlight {
            state.stopHeld = r.stopTicks
        }
        if r.position != state.book.position && !state.book.hasOrdersInFlight {
            state.positionStrikes += 1
            if state.positionStrikes >= 2 {
                let text =
                    "the \(name) holds \(sizeText(r.position)), its executions add up to \(sizeText(state.book.position))"
                events.append(.alert(alerts.executionsDisagree(held: r.position, executionsSum: state.book.position)))
                state.book.position = r.position
                state.positionStrikes = 0
                events.append(.positionsDisagree(text))
            } else {
                // Once more shortly: an execution may have landed between the reads.
                state.lastResyncWall = wall - 58_000
            }
        } else {
            state.positionStrikes = 0
        }
        logger.info(
            "\(name) re-read (\(r.reason))",
            metadata: [
                "event": "venue.resync", "executions": "\(r.executions.count)", "open_orders": "\(r.openOrders.count)",
                "position": "\(sizeText(r.position))", "stop": "\(r.stopTicks.map(priceText) ?? "none")",
            ])
        return events
    }

    // MARK: - Every tick

    /// The venue's clocks: the stop's retries and the unprotected limit, the private stream's alert, the periodic
    /// re-read and the wallet.
    func tick(_ view: VenueView, wall: WallTime) -> [VenueEvent] {
        var events: [VenueEvent] = []
        syncVenueStop(view, wall: wall)
        // Unprotected: the exchange holds a position and no stop.
        if state.book.position != 0 && state.stopHeld == nil {
            let since = state.unprotectedSince ?? wall
            state.unprotectedSince = since
            if let limit = role.maxUnprotectedMs, wall - since >= limit, !state.unprotectedAlerted {
                state.unprotectedAlerted = true
                events.append(.unprotectedTooLong(position: state.book.position, seconds: (wall - since) / 1000))
            }
        } else {
            state.unprotectedSince = nil
            state.unprotectedAlerted = false
        }
        if let since = state.streamDownSince, wall - since >= 10_000, !state.streamAlerted {
            state.streamAlerted = true
            events.append(
                .alert(alerts.privateStream(seconds: (wall - since) / 1000, state: "\(state.streamState)")))
        }
        // Every minute while quiet; every 5 s while the private stream is down (REST is then the only news).
        let quietFor = state.streamState == .ready ? 60_000 : 5_000
        if wall - state.lastResyncWall >= Int64(quietFor) { requestResync("periodic", view: view, wall: wall) }
        // The wallet is read every minute.
        if role.readsWallet && wall - state.lastWalletWall >= 60_000 {
            state.lastWalletWall = wall
            gateway.readWallet()
        }
        return events
    }

    // MARK: - Comparisons

    /// Shadow: both fills of one order known: a price or quantity difference beyond the tolerance is a divergence.
    private func compareFill(_ id: String) -> [VenueEvent] {
        guard let paperFill = state.paperFills[id], let venue = state.venueAverages[id] else { return [] }
        state.paperFills.removeValue(forKey: id)
        state.venueAverages.removeValue(forKey: id)
        let diffTwice = abs(venue.priceTwice - 2 * paperFill.price)
        let tolerance = Int64(priceToleranceTicks)
        guard diffTwice > 2 * tolerance || venue.lots != paperFill.qty else { return [] }
        return [
            .alert(
                alerts.fillDiverges(
                    id: id, paperQty: paperFill.qty, paperPrice: paperFill.price, testnetQty: venue.lots,
                    testnetPriceTwice: venue.priceTwice, toleranceTicks: priceToleranceTicks))
        ]
    }

    /// With nothing in flight on either side, the positions must agree.
    private func checkPositionDivergence(_ view: VenueView) -> [VenueEvent] {
        guard !state.book.hasOrdersInFlight, view.workingOrders.isEmpty else { return [] }
        let venueQty = state.book.position
        if view.signedQty != venueQty {
            if !state.positionDivergent {
                state.positionDivergent = true
                return [
                    .alert(alerts.positionsDiffer(agent: view.signedQty, venue: venueQty)),
                    .positionsDisagree("agent and exchange positions differ"),
                ]
            }
        } else if state.positionDivergent {
            state.positionDivergent = false
            logger.notice("agent and \(name) positions agree again", metadata: ["event": "shadow.converged"])
        }
        return []
    }

    /// The venue holds the position's stop (rounded away from the position to a whole tick), set again whenever it
    /// moves, retried with back-off after a refusal.
    private func syncVenueStop(_ view: VenueView, wall: WallTime) {
        let venueQty = state.book.position
        guard venueQty != 0 else {
            state.stopHeld = nil
            return
        }
        guard let p = view.position, p.direction.sign * venueQty > 0 else { return }
        let ticks = p.direction == .long ? floorDiv(p.stopTwice, 2) : -floorDiv(-p.stopTwice, 2)
        guard ticks != state.stopHeld, !state.stopInFlight, wall >= state.stopRetryWall else {
            return
        }
        state.stopInFlight = true
        gateway.setStop(ticks: ticks)
    }
}
