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
    func flatten(wall: Int64)
    func resync(ids: [String], since: Int64, reason: String)
    func readWallet()
    /// Wall time of the last call that succeeded.
    var lastSuccessWall: Int64? { get }
    /// The account's rate limits per endpoint, and the last waits for them.
    func rateLimits(wall: Int64) -> [RateLimitReport]
}

extension ExchangeGateway {
    func rateLimits(wall: Int64) -> [RateLimitReport] { [] }
}

extension ExchangeMirror: ExchangeGateway {
    func send(_ job: Job) { enqueue(job) }
}

/// Shadow and live: the orders go to a Bybit account through an `ExchangeGateway`; its reports keep the exchange's
/// books (`ExchangeBook`), the stop it holds and the private stream's state. What differs is who is right:
/// `ShadowVenue` (the paper model fills, the testnet is compared and divergences alerted) and `LiveVenue` (the
/// exchange's executions are the fills; what stays unexplained halts). The methods marked "Shadow and live differ"
/// are the ones the two override.
class ExchangeVenue: TradingVenue {
    unowned let engine: AgentEngine
    let gateway: any ExchangeGateway
    var state: MirrorState
    /// When the engine's flatten began (wall ms).
    var flattenStartedWall: Int64?

    init(engine: AgentEngine, gateway: any ExchangeGateway) {
        self.engine = engine
        self.gateway = gateway
        state = MirrorState(instrument: engine.settings.instrument)
    }

    // MARK: - Shadow and live differ

    var name: String { "exchange" }
    func adapt(_ trader: inout Trader) {}
    var keepsActivationAcrossRestarts: Bool { false }
    var fillsOnPaperBook: Bool { false }
    func progressFlatten(wall: Int64) {}
    func unconfirmedFlattenText(steps: [String]) -> String { "" }
    /// At start, after the working orders' reports: what the exchange did on its own while the agent was down.
    func reconcileOwnExecutions(_ venue: VenueResync, workingIds: Set<String>, wall: Int64) {}
    /// At start, the wallet.
    func readWalletAtStart(wall: Int64) throws(BybitError) {}
    /// Whether the `n`-th refusal in a row to set the stop is alerted.
    func alertsStopRefusal(_ n: Int) -> Bool { n == 1 }
    /// An execution of no order in flight.
    func foreignExecution(_ e: Execution, lots: Lots, ticks: Ticks, wall: Int64) {}
    /// A funding charge (or payment) the exchange booked.
    func funding(_ e: Execution, paid: Double, wall: Int64) {}
    /// One of our orders is over at the exchange, `lots` of it executed at `tickLots` (logged already; a rejection
    /// is alerted after it).
    func orderOver(
        _ intent: OrderIntent, lots: Lots, tickLots: Int64, fee: Double, isMaker: Bool, ts: Int64,
        status: BybitOrderStatus,
        reason: String, wall: Int64
    ) {}
    /// The agent's and the exchange's positions differ with nothing in flight (alerted already).
    func positionsDisagree(_ text: String, wall: Int64) {}
    /// The exchange's position has been without a stop since `since` (wall ms).
    func unprotected(since: Int64, wall: Int64) {}
    /// The wallet's equity, reported.
    func onWallet(_ equity: Double, wall: Int64) { state.lastWalletWall = wall }
    /// Every tick, after the re-read: the wallet's own clock.
    func tickWallet(wall: Int64) {}

    // MARK: - Flatten

    func startFlatten(wall: Int64) {
        flattenStartedWall = wall
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

    var entryVeto: EntryVeto? {
        // No entry while the exchange's private stream is not authenticated.
        state.streamState != .ready ? .privateStream : nil
    }

    var resumeBlocker: String? {
        state.reconcilePending
            ? "the \(name) has not answered since the start; trading resumes only once it is reconciled" : nil
    }

    func degradedReasons(wall: Int64) -> [String] {
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

    func rateLimits(wall: Int64) -> [RateLimitReport] { gateway.rateLimits(wall: wall) }

    var lastSuccessWall: Int64? { gateway.lastSuccessWall }
    func unprotectedMs(wall: Int64) -> Int64? { state.unprotectedSince.map { wall - $0 } }
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
    /// own reports explain (executions of orders that were working when the agent stopped, the position's stop or
    /// an ADL while it was down) is booked; a mismatch that stays is alerted and halts trading, never fixed.
    func reconcile(wall: Int64) {
        do {
            // Executions since the last market data the agent stored (less a margin) may explain a difference; the
            // exchange's own time runs in its market data, so the span is measured there.
            let since: Int64? = engine.lastMarketTs > 0 ? engine.lastMarketTs - 5 * 60_000 : nil
            // A rate-limit storm or a short outage at start is waited out (up to `startRetryMs`), not a halt.
            var attempt = 0
            var venue: VenueResync
            while true {
                attempt += 1
                do {
                    venue = try gateway.snapshot(executionsSince: since)
                    break
                } catch {
                    guard wallClockMillis() - wall < engine.startRetryMs else { throw error }
                    engine.logger.warning(
                        "\(name) not answering at start; retrying",
                        metadata: [
                            "event": "reconcile.retry", "attempt": "\(attempt)", "reason": "\(error)",
                        ])
                    sleepMillis(min(5_000, 500 * Int64(attempt)))
                }
            }
            state.book.reconciled(position: venue.position, openOrders: venue.openOrders)
            // What was booked before the restart is never booked again (the ids are written with their fills).
            state.book.alreadyBooked(
                try engine.store.bookedExecutionIds(since: (since ?? engine.lastMarketTs) - 8 * 86_400_000))
            state.stopHeld = venue.stopTicks
            for e in venue.executions { noteUnknownValues(e, wall: wall) }
            for o in venue.openOrders { noteUnknownValues(o, wall: wall) }
            for w in book.workingOrders {
                state.book.track(w)
                state.book.acknowledged(w.id)
            }
            // Orders that were working: their executions and final state, as the exchange has them.
            let workingIds = Set(book.workingOrders.map(\.id))
            for e in venue.executions where workingIds.contains(e.orderLinkId) {
                handleOutcomes(state.book.onExecution(e), wall: wall)
            }
            for o in venue.openOrders where workingIds.contains(o.orderLinkId) {
                handleOutcomes(state.book.onOrder(o), wall: wall)
            }
            state.book.position = venue.position
            reconcileOwnExecutions(venue, workingIds: workingIds, wall: wall)
            let problems = reconciliationProblems(position: venue.position, openOrders: venue.openOrders)
            try readWalletAtStart(wall: wall)
            if problems.isEmpty {
                let held = state.stopHeld.map { ", stop \(engine.priceText($0)) held" } ?? ""
                let own = venue.openOrders.filter(\.isConditional).count
                let text =
                    "reconciled with the \(name): position \(engine.sizeText(venue.position))\(held), "
                    + "\(venue.openOrders.count) open order(s) (\(own) the position's own)"
                engine.logger.notice("\(text)", metadata: ["event": "reconcile.ok"])
            } else {
                haltOnMismatch(problems, wall: wall)
            }
            state.lastResyncWall = wall
            state.resyncFrom = since ?? 0
            state.streamDownSince = wall
            syncVenueStop(wall: wall)
        } catch {
            // Nothing is known to be wrong, only nothing is known: halted until a re-read answers and agrees.
            state.reconcilePending = true
            engine.raise(
                engine.alerts.venueUnreachableAtStart(seconds: (wallClockMillis() - wall) / 1000, error: "\(error)"),
                wall: wall)
            engine.note(engine.supervisor.halt(.venueUnreachable, "\(error)"), wall: wall)
        }
    }

    /// After a start that could not reconcile: the first re-read that answers does it.
    private func reconcileLate(_ r: VenueResync, wall: Int64) {
        state.reconcilePending = false
        let problems = reconciliationProblems(position: r.position, openOrders: r.openOrders)
        if problems.isEmpty {
            engine.raise(engine.alerts.venueAnswersAgain(position: r.position), wall: wall)
        } else {
            haltOnMismatch(problems, wall: wall)
        }
    }

    /// What the venue's position and open orders say that the agent's books do not: a position that differs with
    /// nothing in flight, open orders that are neither the agent's nor the position's own conditional ones.
    private func reconciliationProblems(position: Lots, openOrders: [OrderInfo]) -> [String] {
        let known = Set(book.workingOrders.map(\.id))
        let foreign = openOrders.filter { !$0.isConditional && !known.contains($0.orderLinkId) }
        var problems: [String] = []
        if position != engine.trader.signedQty && !state.book.hasOrdersInFlight {
            problems.append(engine.alerts.positionProblem(agent: engine.trader.signedQty, venue: position))
        }
        if !foreign.isEmpty {
            problems.append(
                engine.alerts.unknownOrdersProblem(foreign.map { $0.orderLinkId.isEmpty ? $0.orderId : $0.orderLinkId })
            )
        }
        return problems
    }

    /// A reconciliation that found problems: alerted, halted, nothing changed.
    private func haltOnMismatch(_ problems: [String], wall: Int64) {
        let text = problems.joined(separator: "; ")
        engine.raise(engine.alerts.reconciliationMismatch(problems), wall: wall)
        engine.note(engine.supervisor.halt(.positionMismatch, text), wall: wall)
    }

    // MARK: - Orders out

    func submitted(_ intent: OrderIntent, wall: Int64) {
        state.book.track(intent)
        state.held.append(.submit(intent))
    }

    func cancel(_ id: String, removedFromBook: Bool, wall: Int64) {
        // An order not sent yet is cancelled by not sending it (an entry withdrawn while the database refuses
        // writes): over, nothing executed.
        let unsent = state.held.firstIndex {
            if case .submit(let i) = $0 { i.id == id } else { false }
        }
        if let index = unsent, case .submit(let intent) = state.held[index] {
            state.held.remove(at: index)
            state.book.forget(id)
            engine.logger.notice(
                "order cancelled before it was sent to the \(name)",
                metadata: ["event": "order.cancelled", "order_link_id": "\(id)", "venue": "\(name)"])
            orderOver(
                intent, lots: 0, tickLots: 0, fee: 0, isMaker: false, ts: engine.lastMarketTs, status: .cancelled,
                reason: "not sent", wall: wall)
            return
        }
        if state.book.isTracked(id) { state.held.append(.cancel(id)) }
    }

    /// Hands the held calls to the venue worker (after the batch that records them is committed).
    func committed(_ batch: StoreBatch) {
        guard !state.held.isEmpty else { return }
        for job in state.held { gateway.send(job) }
        state.held.removeAll()
    }

    /// The database refuses writes: what protects or reduces the position (exits, cancels) leaves now, its record
    /// held in the journal; entries wait (the engine withdraws them).
    func sendProtective(wall: Int64) {
        let now = state.held.filter(\.isProtective)
        guard !now.isEmpty else { return }
        for job in now { gateway.send(job) }
        state.held.removeAll { $0.isProtective }
    }

    /// A fill booked: the stop follows the position; the positions must agree.
    func filled(_ fill: Fill, wall: Int64) {
        syncVenueStop(wall: wall)
        checkPositionDivergence(wall: wall)
    }

    // MARK: - Reports in

    func report(_ r: VenueReport, wall: Int64) {
        switch r {
        case .acknowledged(let id, let orderId, let latency):
            state.book.acknowledged(id)
            engine.logger.info(
                "order acknowledged by the \(name)",
                metadata: [
                    "event": "order.acknowledged", "order_link_id": "\(id)",
                    "order_id": "\(orderId)", "venue": "\(name)",
                    "latency_ms": "\(latency)",
                ])
        case .rejected(let id, let reason):
            handleOutcomes(state.book.rejected(id, reason: reason), wall: wall)
        case .outcomeUnknown(let id, let reason):
            state.book.outcomeUnknown(id)
            engine.logger.warning(
                "order create got no answer; querying it by its id",
                metadata: [
                    "event": "order.unknown", "order_link_id": "\(id)", "venue": "\(name)", "reason": "\(reason)",
                ])
        case .cancelFailed(let id, let reason):
            engine.logger.info(
                "cancel not done (filled or gone already?); its state is read back",
                metadata: [
                    "event": "order.cancel_failed", "order_link_id": "\(id)", "venue": "\(name)",
                    "reason": "\(reason)",
                ])
        case .order(let info):
            noteUnknownValues(info, wall: wall)
            handleOutcomes(state.book.onOrder(info), wall: wall)
        case .execution(let e):
            noteUnknownValues(e, wall: wall)
            // An entry that carried its stop (`stopLoss` on create) opens the position: the exchange sets that stop in
            // the same matching step. Held from now; a REST re-read verifies it, and the stop is corrected with
            // trading-stop if the exchange holds another.
            let opening = state.book.position == 0 && !state.book.hasSeen(e.execId)
            if let sl = state.book.attachedStop(of: e.orderLinkId), opening, state.stopHeld == nil,
                !state.stopInFlight
            {
                state.stopHeld = sl
                engine.logger.info(
                    "the entry's attached stop protects the position from its first fill",
                    metadata: [
                        "event": "venue.stop_attached", "order_link_id": "\(e.orderLinkId)",
                        "stop": "\(engine.priceText(sl))", "venue": "\(name)",
                    ])
                requestResync("verify the entry's attached stop", wall: wall)
            }
            handleOutcomes(state.book.onExecution(e), wall: wall)
        case .stopSet(let ticks, let changed):
            state.stopInFlight = false
            state.stopHeld = ticks
            state.stopFailures = 0
            engine.logger.info(
                changed ? "exchange-held stop set" : "exchange-held stop already in place (34040)",
                metadata: [
                    "event": "venue.stop_set", "stop": "\(ticks.map(engine.priceText) ?? "none")", "venue": "\(name)",
                ])
            syncVenueStop(wall: wall)
        case .stopFailed(let ticks, let reason):
            state.stopInFlight = false
            if engine.supervisor.state == .flattening {
                // The flatten is closing the position: a stop refused meanwhile (Bybit: 10001, "can not set tp/sl/ts
                // for zero position") is how a flatten goes, not a failure to protect. Tried again while it lasts.
                state.stopRetryWall = wall + 1_000
                engine.logger.notice(
                    "stop refused while flattening (the position is being closed)",
                    metadata: [
                        "event": "venue.stop_refused_flattening", "stop": "\(ticks.map(engine.priceText) ?? "none")",
                        "venue": "\(name)", "reason": "\(reason)",
                    ])
                break
            }
            state.stopFailures += 1
            let n = state.stopFailures
            state.stopRetryWall = wall + min(30_000, 1_000 << min(n - 1, 5))
            if alertsStopRefusal(n) {
                engine.raise(engine.alerts.stopRefused(stop: ticks, attempt: n, reason: reason), wall: wall)
            }
        case .resync(let r):
            onResync(r, wall: wall)
        case .resyncFailed(let reason):
            state.resyncInFlight = false
            // Try again in 10 s rather than a minute.
            state.lastResyncWall = wall - 50_000
            engine.logger.warning(
                "\(name) re-read failed", metadata: ["event": "venue.resync_failed", "reason": "\(reason)"])
        case .wallet(let equity):
            onWallet(equity, wall: wall)
        case .failed(let what, let reason):
            engine.logger.warning(
                "\(name) call failed: \(what)",
                metadata: ["event": "venue.failed", "what": "\(what)", "reason": "\(reason)"])
            if what == .rest { engine.raise(engine.alerts.restRefused(reason), wall: wall) }
        case .flattened(let ok, let steps):
            state.flattenResult = ok
            engine.flattenSteps.append(contentsOf: steps)
            engine.progressFlatten(wall: wall)
        case .stream(let s):
            onPrivateStream(s, wall: wall)
        }
        checkPositionDivergence(wall: wall)
    }

    private func onPrivateStream(_ s: StreamStatus, wall: Int64) {
        switch s {
        case .ready:
            state.streamState = .ready
            state.streamDownSince = nil
            if state.streamAlerted {
                state.streamAlerted = false
                engine.logger.notice(
                    "\(name) private stream authenticated again", metadata: ["event": "venue.stream_ready"])
            }
            // The stream does not replay: whatever happened while it was down is only in REST.
            requestResync("private stream (re)connected", wall: wall)
        case .connected: setStreamDown(.unauthenticated, wall: wall)
        case .connecting(let n):
            if n > 1 { engine.metrics.streamReconnect("private") }
            setStreamDown(.connecting(attempt: n), wall: wall)
        case .disconnected(let reason):
            setStreamDown(.disconnected, wall: wall)
            engine.logger.warning(
                "\(name) private stream down", metadata: ["event": "venue.stream_down", "reason": "\(reason)"])
        case .gap, .malformed: break
        }
    }

    private func setStreamDown(_ down: StreamState, wall: Int64) {
        state.streamState = down
        if state.streamDownSince == nil { state.streamDownSince = wall }
    }

    /// What the exchange's reports mean for the agent's books.
    func handleOutcomes(_ outcomes: [BookOutcome], wall: Int64) {
        for o in outcomes {
            switch o {
            case .done(
                let intent, let lots, let tickLots, let fee, let isMaker, let ts, let status, let reason, let executions
            ):
                engine.batch.executions += executions.map { ExecutionRow(execId: $0.execId, execTime: $0.execTime) }
                orderDone(
                    intent, lots: lots, tickLots: tickLots, fee: fee, isMaker: isMaker, ts: ts, status: status,
                    reason: reason, wall: wall)
            case .foreign(let e, let lots, let ticks):
                engine.batch.executions.append(ExecutionRow(execId: e.execId, execTime: e.execTime))
                foreignExecution(e, lots: lots, ticks: ticks, wall: wall)
            case .funding(let e):
                engine.batch.executions.append(ExecutionRow(execId: e.execId, execTime: e.execTime))
                let paid = Double(e.execFee.description) ?? 0
                funding(e, paid: paid, wall: wall)
            case .missingExecutions(let id):
                requestResync("executions of \(id) missing", wall: wall)
            }
        }
        syncVenueStop(wall: wall)
    }

    /// One of our orders is over at the exchange.
    private func orderDone(
        _ intent: OrderIntent, lots: Lots, tickLots: Int64, fee: Double, isMaker: Bool, ts: Int64,
        status: BybitOrderStatus,
        reason: String, wall: Int64
    ) {
        let partial = lots > 0 && lots < intent.qty
        if lots == 0 || partial {
            let m: Logger.Metadata = [
                "event": "order.\(lots == 0 ? status.text.lowercased() : "partially_filled")",
                "order_link_id": "\(intent.id)",
                "venue": "\(name)", "status": "\(status)", "filled": "\(engine.sizeText(lots))",
                "qty": "\(engine.sizeText(intent.qty))", "reason": "\(reason)",
            ]
            if partial {
                engine.logger.warning(
                    "order filled \(engine.sizeText(lots)) of \(engine.sizeText(intent.qty)) before the \(name) ended it (\(status))",
                    metadata: m)
            } else {
                engine.logger.notice("order \(status.text.lowercased()) by the \(name)", metadata: m)
            }
        }
        orderOver(
            intent, lots: lots, tickLots: tickLots, fee: fee, isMaker: isMaker, ts: ts, status: status,
            reason: reason, wall: wall)
        if lots == 0 && status == .rejected {
            if Self.isExpectedFlattenRefusal(
                mode: engine.settings.mode, flattening: engine.supervisor.state == .flattening, intent: intent,
                reason: reason)
            {
                // Shadow's flatten: the testnet's own flatten closed its position first, so the mirrored close finds
                // nothing to reduce. The expected end, not a divergence.
                engine.logger.notice(
                    "the testnet was already flat: its copy of the close was refused (110017), as a flatten expects",
                    metadata: ["event": "shadow.flatten_close_refused", "order_link_id": "\(intent.id)"])
                return
            }
            engine.raise(
                engine.alerts.orderRejected(id: intent.id, isExit: !intent.purpose.isEntry, reason: reason), wall: wall)
        }
    }

    /// Shadow, flattening: a reduce-only close the testnet refuses with 110017 (nothing to reduce: the testnet position
    /// is already flat) is how a flatten ends there.
    static func isExpectedFlattenRefusal(mode: AgentMode, flattening: Bool, intent: OrderIntent, reason: String) -> Bool
    {
        mode == .shadow && flattening && intent.reduceOnly
            && reason.contains(String(BybitRetCode.reduceOnlyNotSatisfied))
    }

    // MARK: - Values this agent does not know

    /// An order report's enumerations: one this agent does not know is logged and alerted the first time.
    func noteUnknownValues(_ o: OrderInfo, wall: Int64) {
        let what = "order \(o.orderLinkId.isEmpty ? o.orderId : o.orderLinkId)"
        noteUnknown("orderStatus", o.orderStatus.unknownText, what, wall: wall)
        noteUnknown("orderType", o.orderType.unknownText, what, wall: wall)
        noteUnknown("stopOrderType", o.stopOrderType.unknownText, what, wall: wall)
    }

    func noteUnknownValues(_ e: Execution, wall: Int64) {
        let what = "execution \(e.execId)"
        noteUnknown("execType", e.execType.unknownText, what, wall: wall)
        noteUnknown("stopOrderType", e.stopOrderType.unknownText, what, wall: wall)
    }

    private func noteUnknown(_ field: String, _ value: String?, _ what: String, wall: Int64) {
        guard let value, state.unknownValuesAlerted.insert("\(field) \(value)").inserted else { return }
        engine.raise(engine.alerts.exchangeUnknownValue(field: field, value: value, of: what), wall: wall)
    }

    // MARK: - Re-reads

    func requestResync(_ reason: String, wall: Int64) {
        guard !state.resyncInFlight else { return }
        state.resyncInFlight = true
        state.lastResyncWall = wall
        state.resyncAskedAt = engine.lastMarketTs
        let ids = state.book.trackedIds
        // From the last successful re-read (or the last execution seen, if earlier), less a minute; never before a day
        // ago in the market's time.
        var from = state.resyncFrom > 0 ? state.resyncFrom : engine.lastMarketTs - 10 * 60_000
        if state.book.lastExecTime > 0 { from = min(from, state.book.lastExecTime) }
        from = max(from - 60_000, engine.lastMarketTs - 86_400_000)
        gateway.resync(ids: ids, since: from, reason: reason)
    }

    /// A REST re-read: every execution (de-duplicated), the asked orders and the open ones through the book; then
    /// the position the executions add up to must equal the exchange's (twice in a row unexplained: halt).
    private func onResync(_ r: VenueResync, wall: Int64) {
        state.resyncInFlight = false
        for e in r.executions { noteUnknownValues(e, wall: wall) }
        for o in r.asked + r.openOrders { noteUnknownValues(o, wall: wall) }
        if state.resyncAskedAt > 0 { state.resyncFrom = state.resyncAskedAt }
        if state.reconcilePending {
            state.book.position = r.position
            reconcileLate(r, wall: wall)
        }
        for e in r.executions { handleOutcomes(state.book.onExecution(e), wall: wall) }
        for o in r.asked { handleOutcomes(state.book.onOrder(o), wall: wall) }
        for o in r.openOrders { handleOutcomes(state.book.onOrder(o), wall: wall) }
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
                    "the \(name) holds \(engine.sizeText(r.position)), its executions add up to \(engine.sizeText(state.book.position))"
                engine.raise(
                    engine.alerts.executionsDisagree(held: r.position, executionsSum: state.book.position), wall: wall)
                state.book.position = r.position
                state.positionStrikes = 0
                positionsDisagree(text, wall: wall)
            } else {
                // Once more shortly: an execution may have landed between the reads.
                state.lastResyncWall = wall - 58_000
            }
        } else {
            state.positionStrikes = 0
        }
        engine.logger.info(
            "\(name) re-read (\(r.reason))",
            metadata: [
                "event": "venue.resync", "executions": "\(r.executions.count)", "open_orders": "\(r.openOrders.count)",
                "position": "\(engine.sizeText(r.position))", "stop": "\(r.stopTicks.map(engine.priceText) ?? "none")",
            ])
        syncVenueStop(wall: wall)
    }

    // MARK: - Every tick

    /// The venue's clocks: the stop's retries and the unprotected limit, the private stream's alert, the periodic
    /// re-read and the wallet.
    func tick(wall: Int64) {
        syncVenueStop(wall: wall)
        // Unprotected: the exchange holds a position and no stop.
        if state.book.position != 0 && state.stopHeld == nil {
            let since = state.unprotectedSince ?? wall
            state.unprotectedSince = since
            unprotected(since: since, wall: wall)
        } else {
            state.unprotectedSince = nil
            state.unprotectedAlerted = false
        }
        if let since = state.streamDownSince, wall - since >= 10_000, !state.streamAlerted {
            state.streamAlerted = true
            engine.raise(
                engine.alerts.privateStream(seconds: (wall - since) / 1000, state: "\(state.streamState)"), wall: wall)
        }
        // Every minute while quiet; every 5 s while the private stream is down (REST is then the only news).
        let quietFor = state.streamState == .ready ? 60_000 : 5_000
        if wall - state.lastResyncWall >= Int64(quietFor) { requestResync("periodic", wall: wall) }
        tickWallet(wall: wall)
    }

    // MARK: - Comparisons

    /// Shadow: both fills of one order known: a price or quantity difference beyond the tolerance is a divergence.
    func compareFill(_ id: String, wall: Int64) {
        guard let paperFill = state.paperFills[id], let venue = state.venueAverages[id] else { return }
        state.paperFills.removeValue(forKey: id)
        state.venueAverages.removeValue(forKey: id)
        let diffTwice = abs(venue.priceTwice - 2 * paperFill.price)
        let tolerance = Int64(engine.settings.shadow.priceToleranceTicks)
        if diffTwice > 2 * tolerance || venue.lots != paperFill.qty {
            engine.raise(
                engine.alerts.fillDiverges(
                    id: id, paperQty: paperFill.qty, paperPrice: paperFill.price, testnetQty: venue.lots,
                    testnetPriceTwice: venue.priceTwice, toleranceTicks: engine.settings.shadow.priceToleranceTicks),
                wall: wall
            )
        }
    }

    /// With nothing in flight on either side, the positions must agree.
    func checkPositionDivergence(wall: Int64) {
        guard !state.book.hasOrdersInFlight, book.workingOrders.isEmpty else { return }
        let agentQty = engine.trader.signedQty
        let venueQty = state.book.position
        if agentQty != venueQty {
            if !state.positionDivergent {
                state.positionDivergent = true
                engine.raise(engine.alerts.positionsDiffer(agent: agentQty, venue: venueQty), wall: wall)
                positionsDisagree("agent and exchange positions differ", wall: wall)
            }
        } else if state.positionDivergent {
            state.positionDivergent = false
            engine.logger.notice("agent and \(name) positions agree again", metadata: ["event": "shadow.converged"])
        }
    }

    /// The venue holds the position's stop (rounded away from the position to a whole tick), set again whenever it
    /// moves, retried with back-off after a refusal.
    func syncVenueStop(wall: Int64) {
        let venueQty = state.book.position
        guard venueQty != 0 else {
            state.stopHeld = nil
            return
        }
        guard let p = engine.trader.position, p.direction.sign * venueQty > 0 else { return }
        let ticks = p.direction == .long ? floorDiv(p.stopTwice, 2) : -floorDiv(-p.stopTwice, 2)
        guard ticks != state.stopHeld, !state.stopInFlight, wall >= state.stopRetryWall else {
            return
        }
        state.stopInFlight = true
        gateway.setStop(ticks: ticks)
    }
}
