import AgentConfig
public import AgentSupport
public import ControlProtocol
public import Engine
public import Exchange
public import ExchangeStreams
import Foundation
public import Logging

/// What the REST re-read found: every execution since a time, the orders the agent asked about, the open orders
/// (the position's own conditional stop among them) and the position.
public struct VenueResync: Sendable {
    public var executions: [Execution]
    public var asked: [OrderInfo]
    public var openOrders: [OrderInfo]
    /// Signed lots.
    public var position: Lots
    /// The stop the exchange holds on the position, in ticks.
    public var stopTicks: Ticks?
    public var reason: String
}

/// Which kind of call to the exchange failed (`VenueReport.failed`); the raw value is the `what` of the
/// `venue.failed` log event.
public enum VenueCall: String, Sendable, CustomStringConvertible {
    /// A REST call refused by a ban or a rate-limit storm (the REST client's alert).
    case rest
    /// The periodic read of the wallet.
    case wallet

    public var description: String { rawValue }
}

/// What the exchange said, on its way into the engine's queue.
public enum VenueReport: Sendable {
    case acknowledged(id: String, orderId: String, latencyMs: Int64)
    /// A definite refusal (a retCode), or an order the exchange never received after its create reply was lost.
    case rejected(id: String, reason: String)
    /// The create call ended without an answer: the order may exist; it is being queried by its `orderLinkId`.
    case outcomeUnknown(id: String, reason: String)
    /// A cancel call failed (already filled or gone is normal; the order's own report says which).
    case cancelFailed(id: String, reason: String)
    /// An `order` report, from the private stream or a REST query.
    case order(OrderInfo)
    case execution(Execution)
    /// The exchange holds this stop now (`changed` false: it already did, 34040).
    case stopSet(ticks: Int64?, changed: Bool)
    case stopFailed(ticks: Int64?, reason: String)
    case resync(VenueResync)
    case resyncFailed(reason: String)
    /// The account's total equity (USDT).
    case wallet(equity: Double)
    case failed(what: VenueCall, reason: String)
    /// The mirror's own flatten: every order cancelled, the venue's whole position closed, flat confirmed (or not).
    case flattened(ok: Bool, steps: [String])
    case stream(StreamStatus)
}

/// Orders sent to a Bybit account (the testnet in shadow mode, the exchange in live) through the REST client, and
/// that account's `order` and `execution` reports from the private stream. Nothing here blocks the engine: jobs
/// queue, results come back as `EngineInput.venue` reports.
///
/// Calls run on two lanes, each its own thread and connection (docs/EXCHANGE.md, "Protective calls never wait"):
/// the protective lane (stops, cancels, reduce-only exits, flatten) and the order lane (entries, the queries that
/// resolve them, re-reads, the wallet). A hung entry create therefore never holds up a stop or a flatten. The one
/// exception is a cancel of an entry whose create is still queued or on its way: it follows that create on the
/// order lane, since the exchange cannot cancel what it has not received. Order ids are the Engine's deterministic
/// ids, so a retry after a timeout or a restart can never place an order twice; a create whose reply was lost is
/// queried by its id until the exchange says whether it exists.
public final class ExchangeMirror: @unchecked Sendable {
    enum Job {
        case submit(OrderIntent)
        case cancel(String)
        case stop(Int64?)
        case flatten(WallTime)
        /// Query an order whose create outcome is unknown; `since` is when that began (wall ms).
        case resolve(String, since: Int64, protective: Bool)
        case resync(ids: [String], since: Int64, reason: String)
        case wallet

        /// Protective calls run on their own lane (and, within the order lane, go first).
        var isProtective: Bool {
            switch self {
            case .submit(let i): i.reduceOnly
            case .cancel, .stop, .flatten: true
            case .resolve(_, _, let protective): protective
            case .resync, .wallet: false
            }
        }
    }

    /// One worker thread and its queue of jobs. Due jobs run in order; protective ones go ahead of the rest.
    final class Lane: @unchecked Sendable {
        let name: String
        private let condition = NSCondition()
        // Guarded by `condition`.
        private var jobs: [(job: Job, notBefore: Int64)] = []
        private var stopping = false
        private var idle = true
        private let done = DispatchSemaphore(value: 0)

        init(name: String) { self.name = name }

        /// Queues a job; `after` (an entry's id) keeps a cancel behind that entry's own create.
        func enqueue(_ job: Job, notBefore: Int64 = 0, after linkId: String? = nil) {
            condition.lock()
            var at = jobs.count
            if job.isProtective, let i = jobs.firstIndex(where: { !$0.job.isProtective }) { at = i }
            if let linkId,
                let i = jobs.lastIndex(where: { if case .submit(let s) = $0.job { s.id == linkId } else { false } })
            {
                at = max(at, i + 1)
            }
            jobs.insert((job, notBefore), at: at)
            condition.broadcast()
            condition.unlock()
        }

        func start(_ run: @escaping @Sendable (Job) -> Void) {
            let t = Thread { [self] in work(run) }
            t.name = name
            t.start()
        }

        /// Waits until no due job is queued or running (or `end`, wall ms), then stops the worker.
        func drainAndStop(until end: Int64) {
            condition.lock()
            while (jobs.contains { $0.notBefore <= wallClockMillis() } || !idle) && wallClockMillis() < end {
                _ = condition.wait(until: Date(timeIntervalSinceNow: 0.05))
            }
            stopping = true
            condition.broadcast()
            condition.unlock()
        }

        /// Waits for the worker's end (at most until `end`, wall ms).
        func join(until end: Int64) {
            _ = done.wait(timeout: .now() + .milliseconds(Int(max(100, end - wallClockMillis()))))
        }

        private func work(_ run: @Sendable (Job) -> Void) {
            defer { done.signal() }
            while true {
                condition.lock()
                var next: Job?
                while next == nil {
                    if stopping { break }
                    let now = wallClockMillis()
                    if let i = jobs.firstIndex(where: { $0.notBefore <= now }) {
                        next = jobs.remove(at: i).job
                    } else if let soonest = jobs.map(\.notBefore).min() {
                        _ = condition.wait(until: Date(timeIntervalSince1970: Double(soonest) / 1000))
                    } else {
                        condition.wait()
                    }
                }
                guard let job = next else {
                    condition.unlock()
                    return
                }
                idle = false
                condition.unlock()
                run(job)
                condition.lock()
                idle = true
                condition.broadcast()
                condition.unlock()
            }
        }
    }

    let client: BybitRESTClient
    /// The same account through its own connection with shorter timeouts: stops, cancels, exits and flatten.
    let protective: BybitRESTClient
    let instrument: Instrument
    let privateSettings: StreamSettings
    let credentials: BybitCredentials
    let queue: EventQueue
    let logger: Logger
    /// How long an order not found after a lost create reply may still appear (Bybit: 110001 for a while).
    var notReceivedAfterMs: Int64 = 10_000
    let protectiveLane = Lane(name: "venue-protective")
    let orderLane = Lane(name: "venue-orders")
    private let lock = NSLock()
    // Guarded by `lock`.
    private var lastSuccess: Int64?
    /// Entries queued or on their way on the order lane, by id: a cancel of one of them follows its create.
    private var entriesOnTheirWay: Set<String> = []
    private var streamTask: Task<Void, Never>?
    /// The private stream runs on its own thread: the account's news must not wait for the shared pool.
    private let streamExecutor = DedicatedExecutor(label: "venue-private-stream")

    /// Told when an order's create request is about to leave (metrics: bar close → order on the wire).
    let onSubmit: @Sendable (String) -> Void

    public init(
        client: BybitRESTClient, protectiveClient: BybitRESTClient? = nil, instrument: Instrument,
        privateSettings: StreamSettings,
        credentials: BybitCredentials, queue: EventQueue, logger: Logger,
        onSubmit: @escaping @Sendable (String) -> Void = { _ in }
    ) {
        self.onSubmit = onSubmit
        self.client = client
        protective = protectiveClient ?? client
        self.instrument = instrument
        self.privateSettings = privateSettings
        self.credentials = credentials
        self.queue = queue
        self.logger = logger
    }

    /// Wall time of the last REST call that succeeded.
    public var lastSuccessWall: WallTime? { lock.withLock { lastSuccess.map(WallTime.init) } }

    /// The account's two REST clients, as the agent runs them: one rate-limit budget for both (Bybit counts per
    /// account and endpoint), its waits logged (`RateLimitLog`) and told to `onWait`; the order lane leaves the last
    /// calls of each window to the protective lane, which retries 3 times from a 100 ms back-off on its own connection.
    /// Calls of each endpoint's window the order lane leaves to the protective lane (stops, cancels, exits,
    /// flatten): with Bybit's default 10 a second for orders, entries and reads use 8.
    static let protectiveReserve = 2

    public static func laneClients(
        rest: BybitRESTConfig, credentials: BybitCredentials, orderTransport: any HTTPTransport,
        protectiveTransport: any HTTPTransport, logger: Logger, onAlert: @escaping @Sendable (String) -> Void,
        observer: (@Sendable (RESTObservation) -> Void)? = nil,
        onWait: @escaping @Sendable (RateLimitWait) -> Void = { _ in }
    ) -> (orders: BybitRESTClient, protective: BybitRESTClient) {
        let budget = RateBudget()
        let waits = RateLimitLog(logger: logger)
        let onRateLimitWait: @Sendable (RateLimitWait) -> Void = { w in
            onWait(w)
            waits.note(w)
        }
        var orderRest = rest
        orderRest.reserveCalls = protectiveReserve
        var protectiveRest = rest
        protectiveRest.maxAttempts = 3
        protectiveRest.backoffBaseMs = 100
        return (
            BybitRESTClient(
                config: orderRest, credentials: credentials, transport: orderTransport, onAlert: onAlert,
                observer: observer, budget: budget, onRateLimitWait: onRateLimitWait),
            BybitRESTClient(
                config: protectiveRest, credentials: credentials, transport: protectiveTransport, onAlert: onAlert,
                observer: observer, budget: budget, onRateLimitWait: onRateLimitWait)
        )
    }

    /// The account's rate limits (the budget both lanes' clients share), each endpoint's remaining calls as of now
    /// (a window whose reset has passed is whole again), with its last wait.
    public func rateLimits(wall: WallTime) -> [RateLimitReport] {
        let serverNow = wall.millis + client.clockOffsetMs
        let waits = Dictionary(client.budget.waits.map { ($0.path, $0) }, uniquingKeysWith: { a, _ in a })
        return client.budget.all.sorted { $0.key < $1.key }.map { path, status in
            let w = waits[path]
            return RateLimitReport(
                endpoint: path, remaining: status.left(at: serverNow),
                limit: status.limit, lastWait: w?.reason.rawValue, lastWaitMs: w?.waitMs,
                lastWaitAgoMs: w.map { wall.millis - $0.at })
        }
    }

    // MARK: - Start-up reconciliation (synchronous, before the engine runs)

    /// The venue's position (signed lots), the stop it holds, its open orders and the executions since
    /// `executionsSince` (the exchange's time, as its market data carries it), from REST.
    public func snapshot(executionsSince: Int64? = nil) throws(BybitError) -> VenueResync {
        _ = try client.syncTime()
        let (position, stop) = try readPosition()
        let open = try client.orders(openOnly: true)
        let executions =
            try executionsSince.map { since throws(BybitError) in try client.executions(startTime: since) } ?? []
        markSuccess()
        return VenueResync(
            executions: executions, asked: [], openOrders: open, position: position, stopTicks: stop, reason: "start")
    }

    /// The position (signed lots) and its stop, read through `via` (the order lane's client unless given).
    private func readPosition(via: BybitRESTClient? = nil) throws(BybitError) -> (Lots, Ticks?) {
        var signed: Lots = 0
        var stop: Ticks?
        for p in try (via ?? client).positions() where p.symbol == instrument.symbol {
            guard let side = p.side, let lots = instrument.lots(p.size) else { continue }
            signed += lots * side.sign
            if let s = p.stopLoss, s.mantissa != 0 { stop = instrument.ticks(s) }
        }
        return (signed, stop)
    }

    /// The account's total equity (USDT), from REST.
    public func walletEquity() throws(BybitError) -> Double {
        let w = try client.walletBalance()
        markSuccess()
        return Double(w.totalEquity.description) ?? 0
    }

    // MARK: - Running

    public func start() {
        protectiveLane.start { [self] in run($0) }
        orderLane.start { [self] in run($0) }
        let settings = privateSettings
        let credentials = credentials
        let queue = queue
        let client = client
        streamTask = Task(executorPreference: streamExecutor) {
            // `expires` of the auth is checked against the exchange's clock: local time plus the REST offset.
            let stream = BybitPrivateStream(
                settings: settings, credentials: credentials, logger: Logger(label: "stream.private"),
                now: { wallClockMillis() + client.clockOffsetMs })
            await stream.run(
                onMessage: { m in
                    switch m {
                    case .executions(let list):
                        for e in list { queue.put(.venue(.execution(e), wall: .now)) }
                    case .orders(let list): for o in list { queue.put(.venue(.order(o), wall: .now)) }
                    default: break
                    }
                },
                onStatus: { s in queue.put(.venue(.stream(s), wall: .now)) }
            )
        }
    }

    /// Finishes the queued jobs that are due on both lanes (up to `deadlineMs`), then stops the workers and the
    /// stream.
    public func stop(deadlineMs: Int64) {
        let end = wallClockMillis() + deadlineMs
        protectiveLane.drainAndStop(until: end)
        orderLane.drainAndStop(until: end)
        protectiveLane.join(until: end)
        orderLane.join(until: end)
        streamTask?.cancel()
    }

    /// Queues a call on its lane: protective calls on theirs, except a cancel of an entry still on its way.
    func enqueue(_ job: Job, notBefore: Int64 = 0) {
        let lane: Lane
        var after: String?
        switch job {
        case .submit(let intent) where !intent.reduceOnly:
            lock.withLock { _ = entriesOnTheirWay.insert(intent.id) }
            lane = orderLane
        case .cancel(let id) where lock.withLock({ entriesOnTheirWay.contains(id) }):
            lane = orderLane
            after = id
        default:
            lane = job.isProtective ? protectiveLane : orderLane
        }
        lane.enqueue(job, notBefore: notBefore, after: after)
    }

    /// The exchange-held stop on the whole position (nil clears it).
    public func setStop(ticks: Int64?) { enqueue(.stop(ticks)) }
    /// Cancel everything, close the venue's position by its own size, confirm flat.
    public func flatten(wall: WallTime) { enqueue(.flatten(wall)) }
    /// Read executions since `since` (the exchange's ms), the orders `ids` and the open orders and position.
    public func resync(ids: [String], since: Int64, reason: String) {
        enqueue(.resync(ids: ids, since: since, reason: reason))
    }
    public func readWallet() { enqueue(.wallet) }

    private func markSuccess() {
        lock.withLock { lastSuccess = wallClockMillis() }
    }

    private func report(_ r: VenueReport) { queue.put(.venue(r, wall: .now)) }

    private func run(_ job: Job) {
        switch job {
        case .submit(let intent):
            defer { if !intent.reduceOnly { lock.withLock { _ = entriesOnTheirWay.remove(intent.id) } } }
            var price: ScaledDecimal?
            if case .limit(let p) = intent.type {
                price = ScaledDecimal(mantissa: p * instrument.tick.mantissa, scale: instrument.tick.scale)
            }
            let request = OrderRequest(
                side: intent.side, orderType: price == nil ? .market : .limit,
                qty: ScaledDecimal(mantissa: intent.qty * instrument.qtyStep.mantissa, scale: instrument.qtyStep.scale),
                price: price, timeInForce: price == nil ? nil : .gtc, orderLinkId: intent.id,
                reduceOnly: intent.reduceOnly,
                stopLoss: intent.stopLoss.map {
                    ScaledDecimal(mantissa: $0 * instrument.tick.mantissa, scale: instrument.tick.scale)
                })
            let t0 = wallClockMillis()
            onSubmit(intent.id)
            do {
                let ack = try (intent.reduceOnly ? protective : client).createOrder(request)
                markSuccess()
                report(.acknowledged(id: intent.id, orderId: ack.orderId, latencyMs: wallClockMillis() - t0))
            } catch  where Self.isDefinite(error) {
                report(.rejected(id: intent.id, reason: "\(error)"))
            } catch {
                // No answer: the order may have reached the matching engine. Never a rejection until the exchange says.
                report(.outcomeUnknown(id: intent.id, reason: "\(error)"))
                enqueue(
                    .resolve(intent.id, since: wallClockMillis(), protective: intent.reduceOnly),
                    notBefore: wallClockMillis() + 250)
            }
        case .resolve(let id, let since, let onProtectiveLane):
            do {
                if let info = try (onProtectiveLane ? protective : client).order(linkId: id) {
                    markSuccess()
                    report(.acknowledged(id: id, orderId: info.orderId, latencyMs: wallClockMillis() - since))
                    report(.order(info))
                } else if wallClockMillis() - since >= notReceivedAfterMs {
                    markSuccess()
                    report(
                        .rejected(
                            id: id,
                            reason:
                                "not received by the exchange (\(notReceivedAfterMs / 1000) s after the create's reply was lost)"
                        ))
                } else {
                    markSuccess()
                    enqueue(
                        .resolve(id, since: since, protective: onProtectiveLane), notBefore: wallClockMillis() + 500)
                }
            } catch {
                // The query itself failed: keep asking (the periodic re-read asks too).
                enqueue(.resolve(id, since: since, protective: onProtectiveLane), notBefore: wallClockMillis() + 1_000)
            }
        case .cancel(let id):
            do {
                _ = try protective.cancelOrder(linkId: id)
                markSuccess()
            } catch {
                // Already filled or gone: the order's own report says which.
                report(.cancelFailed(id: id, reason: "\(error)"))
                enqueue(.resolve(id, since: wallClockMillis() - notReceivedAfterMs + 2_000, protective: true))
            }
        case .stop(let ticks):
            do {
                let price = ticks.map {
                    ScaledDecimal(mantissa: $0 * instrument.tick.mantissa, scale: instrument.tick.scale)
                }
                let changed = try protective.setTradingStop(stopLoss: price, takeProfit: nil)
                markSuccess()
                report(.stopSet(ticks: ticks, changed: changed))
            } catch {
                report(.stopFailed(ticks: ticks, reason: "\(error)"))
            }
        case .flatten(let wall):
            report(flattenVenue(wall: wall))
        case .resync(let ids, let since, let reason):
            do {
                // Executions first: what executed before the orders and position were read is then in them.
                let executions = try client.executions(startTime: since)
                // An order the exchange does not know is left to its `.resolve` query.
                var asked: [OrderInfo] = []
                for id in ids {
                    if let o = try client.order(linkId: id) { asked.append(o) }
                }
                let open = try client.orders(openOnly: true)
                let (position, stop) = try readPosition()
                markSuccess()
                report(
                    .resync(
                        VenueResync(
                            executions: executions, asked: asked, openOrders: open, position: position, stopTicks: stop,
                            reason: reason)))
            } catch {
                report(.resyncFailed(reason: "\(error)"))
            }
        case .wallet:
            do {
                report(.wallet(equity: try walletEquity()))
            } catch {
                report(.failed(what: .wallet, reason: "\(error)"))
            }
        }
    }

    /// Whether a failed create is known not to have placed the order (a retCode that refuses it); a transport
    /// failure, a 5xx, a server-error retCode or a rate limit that outlasted the retries leave it unknown.
    static func isDefinite(_ error: BybitError) -> Bool {
        switch error.kind {
        case .api(let code, _): return code != BybitRetCode.serverError && code != BybitRetCode.tooManyVisits
        case .ipBanned, .missingCredentials: return true
        case .http(let status): return status < 500 && status != 429 && status != 408
        case .transport, .decoding: return false
        }
    }

    /// Cancels every order, closes the position with a reduce-only market order for the venue's own size, and
    /// confirms flat from the venue; a failed or partial close is retried (five attempts, each with its own id).
    private func flattenVenue(wall: WallTime) -> VenueReport {
        var steps: [String] = []
        do {
            let cancelled = try protective.cancelAll()
            steps.append("venue: cancelled \(cancelled.count) order(s)")
        } catch {
            steps.append("venue: cancel-all failed: \(error)")
        }
        for attempt in 1...5 {
            do {
                let (position, _) = try readPosition(via: protective)
                if position == 0 {
                    steps.append("venue: flat confirmed")
                    return .flattened(ok: true, steps: steps)
                }
                let side: Direction = position > 0 ? .short : .long
                let qty = abs(position)
                let id = "at-f-\(wall)-\(attempt)"
                _ = try protective.createOrder(
                    OrderRequest(
                        side: side, orderType: .market,
                        qty: ScaledDecimal(
                            mantissa: qty * instrument.qtyStep.mantissa, scale: instrument.qtyStep.scale),
                        orderLinkId: id, reduceOnly: true))
                markSuccess()
                steps.append("venue: close order \(id): \(side) \(instrument.sizeText(qty)) market reduce-only")
                for _ in 0..<10 {
                    if try readPosition(via: protective).0 == 0 {
                        steps.append("venue: flat confirmed")
                        return .flattened(ok: true, steps: steps)
                    }
                    sleepMillis(100)
                }
                steps.append("venue: not flat after close attempt \(attempt)")
            } catch {
                steps.append("venue: close attempt \(attempt) failed: \(error)")
                sleepMillis(Int64(200 * attempt))
            }
        }
        return .flattened(ok: false, steps: steps)
    }
}
