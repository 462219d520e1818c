public import Engine
public import Exchange
public import ExchangeStreams
import Foundation
public import Logging

/// What the exchange said, on its way into the engine's queue.
public enum VenueReport: Sendable {
    case acknowledged(id: String, latencyMs: Int64)
    case rejected(id: String, reason: String)
    case cancelled(id: String)
    case execution(Execution)
    case stopSet(ticks: Int64?)
    case failed(what: String, reason: String)
    /// The mirror's own flatten: every order cancelled, the venue's whole position closed, flat confirmed (or not).
    case flattened(ok: Bool, steps: [String])
    case stream(StreamStatus)
}

/// Orders sent to a Bybit account (the testnet in shadow mode) through the REST client on a worker thread, and
/// that account's executions from the private stream. Nothing here blocks the engine: jobs queue, results come
/// back as `EngineInput.venue` reports. Order ids are the Engine's deterministic ids, so a retry after a timeout
/// or a restart can never place an order twice (the client resolves Bybit's duplicate-id answer to the order that
/// exists).
public final class ExchangeMirror: @unchecked Sendable {
    enum Job {
        case submit(OrderIntent)
        case cancel(String)
        case stop(Int64?)
        case flatten(Int64)
    }

    let client: BybitRESTClient
    let instrument: Instrument
    let privateSettings: StreamSettings
    let credentials: BybitCredentials
    let queue: EventQueue
    let logger: Logger
    private let condition = NSCondition()
    // Guarded by `condition`.
    private var jobs: [Job] = []
    private var stopping = false
    private var idle = true
    private var lastSuccess: Int64?
    private var streamTask: Task<Void, Never>?
    private let done = DispatchSemaphore(value: 0)

    public init(client: BybitRESTClient, instrument: Instrument, privateSettings: StreamSettings, credentials: BybitCredentials,
                queue: EventQueue, logger: Logger) {
        self.client = client
        self.instrument = instrument
        self.privateSettings = privateSettings
        self.credentials = credentials
        self.queue = queue
        self.logger = logger
    }

    /// Wall time of the last REST call that succeeded.
    public var lastSuccessWall: Int64? { condition.lock(); defer { condition.unlock() }; return lastSuccess }

    // MARK: - Start-up reconciliation (synchronous, before the engine runs)

    /// The venue's position (signed lots) and open orders, from REST.
    public func snapshot() throws(BybitError) -> (position: Lots, openOrders: [OrderInfo]) {
        _ = try client.syncTime()
        let positions = try client.positions()
        var signed: Lots = 0
        for p in positions where p.symbol == instrument.symbol {
            guard let side = p.side, let lots = instrument.lots(p.size) else { continue }
            signed += lots * side.sign
        }
        let open = try client.orders(openOnly: true)
        markSuccess()
        return (signed, open)
    }

    /// The account's total equity (USDT), from REST.
    public func walletEquity() throws(BybitError) -> Double {
        let w = try client.walletBalance()
        markSuccess()
        return Double(w.totalEquity.description) ?? 0
    }

    // MARK: - Running

    public func start() {
        let t = Thread { [self] in work() }
        t.name = "venue-mirror"
        t.start()
        let settings = privateSettings
        let credentials = credentials
        let queue = queue
        streamTask = Task.detached {
            let stream = BybitPrivateStream(settings: settings, credentials: credentials, logger: Logger(label: "stream.private"))
            await stream.run(
                onMessage: { m in
                    if case .executions(let list) = m {
                        for e in list where e.execType == "Trade" { queue.put(.venue(.execution(e), wall: wallClockMillis())) }
                    }
                },
                onStatus: { s in queue.put(.venue(.stream(s), wall: wallClockMillis())) }
            )
        }
    }

    /// Finishes the queued jobs (up to `deadlineMs`), then stops the worker and the stream.
    public func stop(deadlineMs: Int64) {
        let end = wallClockMillis() + deadlineMs
        condition.lock()
        while (!jobs.isEmpty || !idle) && wallClockMillis() < end { _ = condition.wait(until: Date(timeIntervalSinceNow: 0.05)) }
        stopping = true
        condition.broadcast()
        condition.unlock()
        _ = done.wait(timeout: .now() + .milliseconds(Int(max(100, end - wallClockMillis()))))
        streamTask?.cancel()
    }

    func enqueue(_ job: Job) {
        condition.lock()
        jobs.append(job)
        condition.broadcast()
        condition.unlock()
    }

    public func submit(_ intent: OrderIntent) { enqueue(.submit(intent)) }
    public func cancel(id: String) { enqueue(.cancel(id)) }
    /// The exchange-held stop on the whole position (nil clears it).
    public func setStop(ticks: Int64?) { enqueue(.stop(ticks)) }
    /// Cancel everything, close the venue's position by its own size, confirm flat.
    public func flatten(wall: Int64) { enqueue(.flatten(wall)) }

    private func markSuccess() {
        condition.lock()
        lastSuccess = wallClockMillis()
        condition.unlock()
    }

    private func report(_ r: VenueReport) { queue.put(.venue(r, wall: wallClockMillis())) }

    private func work() {
        defer { done.signal() }
        while true {
            condition.lock()
            while jobs.isEmpty && !stopping { condition.wait() }
            if jobs.isEmpty && stopping {
                condition.unlock()
                return
            }
            let job = jobs.removeFirst()
            idle = false
            condition.unlock()
            run(job)
            condition.lock()
            idle = true
            condition.broadcast()
            condition.unlock()
        }
    }

    private func run(_ job: Job) {
        switch job {
        case .submit(let intent):
            var price: ScaledDecimal?
            if case .limit(let p) = intent.type { price = ScaledDecimal(mantissa: p * instrument.tick.mantissa, scale: instrument.tick.scale) }
            let request = OrderRequest(
                side: intent.side, orderType: price == nil ? "Market" : "Limit",
                qty: ScaledDecimal(mantissa: intent.qty * instrument.qtyStep.mantissa, scale: instrument.qtyStep.scale),
                price: price, timeInForce: price == nil ? nil : "GTC", orderLinkId: intent.id, reduceOnly: intent.reduceOnly)
            let t0 = wallClockMillis()
            do {
                _ = try client.createOrder(request)
                markSuccess()
                report(.acknowledged(id: intent.id, latencyMs: wallClockMillis() - t0))
            } catch {
                report(.rejected(id: intent.id, reason: "\(error)"))
            }
        case .cancel(let id):
            do {
                _ = try client.cancelOrder(linkId: id)
                markSuccess()
                report(.cancelled(id: id))
            } catch {
                // Already filled or gone: not a failure of the mirror.
                report(.failed(what: "cancel \(id)", reason: "\(error)"))
            }
        case .stop(let ticks):
            do {
                let price = ticks.map { ScaledDecimal(mantissa: $0 * instrument.tick.mantissa, scale: instrument.tick.scale) }
                try client.setTradingStop(stopLoss: price, takeProfit: nil)
                markSuccess()
                report(.stopSet(ticks: ticks))
            } catch {
                report(.failed(what: "trading-stop", reason: "\(error)"))
            }
        case .flatten(let wall):
            report(flattenVenue(wall: wall))
        }
    }

    /// Cancels every order, closes the position with a reduce-only market order for the venue's own size, and
    /// confirms flat from the venue; a failed close is retried (three attempts, each with its own id).
    private func flattenVenue(wall: Int64) -> VenueReport {
        var steps: [String] = []
        do {
            let cancelled = try client.cancelAll()
            steps.append("venue: cancelled \(cancelled.count) order(s)")
        } catch {
            steps.append("venue: cancel-all failed: \(error)")
        }
        for attempt in 1...3 {
            do {
                let (position, _) = try snapshot()
                if position == 0 {
                    steps.append("venue: flat confirmed")
                    return .flattened(ok: true, steps: steps)
                }
                let side: Direction = position > 0 ? .short : .long
                let qty = abs(position)
                let id = "at-f-\(wall)-\(attempt)"
                _ = try client.createOrder(OrderRequest(
                    side: side, orderType: "Market",
                    qty: ScaledDecimal(mantissa: qty * instrument.qtyStep.mantissa, scale: instrument.qtyStep.scale),
                    orderLinkId: id, reduceOnly: true))
                markSuccess()
                steps.append("venue: close order \(id): \(side) \(qty) lots market reduce-only")
                // Confirm from the venue.
                for _ in 0..<10 {
                    if try snapshot().position == 0 {
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
