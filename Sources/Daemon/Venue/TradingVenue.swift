import AgentConfig
import AgentSupport
import ControlProtocol
import Engine
import Exchange
import Logging

/// Where the engine's orders go (docs/DESIGN.md, "Venues"). A venue takes commands (an order submitted, a cancel, a
/// flatten) and reports what happened as `VenueEvent` values; the engine applies them and alone changes the trader,
/// the paper book or the supervisor. A venue never holds the engine: what it needs of the engine's books comes with
/// each call as a `VenueView`, and what it knows of its own (the stop it holds, whether it is confirmed flat) the
/// engine reads through the queries below.
///
/// `PaperVenue` (sim and paper): the kernel's paper book fills the orders and there is nothing to report.
/// `ExchangeVenue` (shadow and live): the orders also go to a Bybit account. What differs between shadow and live is
/// data, `VenueRole`, not a subclass.
protocol TradingVenue: AnyObject {
    /// Who fills and what the differences between modes are.
    var role: VenueRole { get }

    /// Before READY: the venue's books against the restored state. The engine applies the events (executions of
    /// orders that were working, and, live, what the exchange did while the agent was down), then calls
    /// `finishReconcile` with its books as they are then.
    func reconcile(_ view: VenueView, bookedIds: (Int64) throws -> [String], retryForMs: Int64, wall: WallTime)
        -> [VenueEvent]
    /// After `reconcile`'s events were applied: what still disagrees (alerted, halted), the wallet, the stop.
    func finishReconcile(_ view: VenueView, wall: WallTime) -> [VenueEvent]
    /// An execution the exchange made while the agent was down is booked by the engine: true the first time (the
    /// venue never reports it again), false if it was booked already.
    func claimExecution(_ execId: String) -> Bool

    /// An order entered the book and its record is in the step's batch; it leaves once the batch is committed.
    func submitted(_ intent: OrderIntent, wall: WallTime)
    /// The trader cancels a working order.
    func cancel(_ id: String, view: VenueView, wall: WallTime) -> [VenueEvent]
    /// A fill was booked by the trader (the stop follows the position; shadow compares it with the testnet's).
    func filled(_ fill: Fill, view: VenueView, wall: WallTime) -> [VenueEvent]
    /// The step's records are committed: what was held for them may leave.
    func committed(_ batch: StoreBatch)
    /// The database refuses writes: what protects or reduces the position leaves now, before its record is
    /// committed (it waits in the journal); entries stay held.
    func sendProtective()
    /// A report from the exchange (shadow and live).
    func report(_ r: VenueReport, view: VenueView, wall: WallTime) -> [VenueEvent]
    /// After the engine applied a report's events: the stop follows the position, the positions are compared.
    func settle(_ view: VenueView, wall: WallTime) -> [VenueEvent]
    /// Every tick: the venue's own clocks.
    func tick(_ view: VenueView, wall: WallTime) -> [VenueEvent]

    /// The engine's flatten began (after the trader's close orders were handed over).
    func startFlatten(wall: WallTime)
    /// The venue's own side of the flatten.
    var flattenOutcome: VenueFlattenOutcome { get }
    /// The flatten is over.
    func flattenFinished()

    /// Whether orders sent are not yet known to be over or acknowledged (their reports still to come).
    var hasOrdersInFlight: Bool { get }
    /// Why entries are vetoed now because of the venue (nil: not vetoed).
    var entryVeto: EntryVeto? { get }
    /// Why `resume` is refused because of the venue (nil: not refused).
    var resumeBlocker: String? { get }
    /// The venue's part of `health`.
    func degradedReasons(wall: WallTime) -> [String]
    /// Wall time of the venue's last successful call (nil: none, or a paper venue).
    var lastSuccessWall: WallTime? { get }
    /// How long the position has been without an exchange-held stop (ms; nil: protected, or a paper venue).
    func unprotectedMs(wall: WallTime) -> Int64?
    /// Whether the outcome of an order's create call is unknown (being queried).
    func outcomeUnknown(_ id: String) -> Bool
    /// The position's own conditional orders the venue holds.
    var heldOrders: [OrderReport] { get }
    /// The exchange's rate limits per endpoint and the last waits for them (empty: a paper venue).
    func rateLimits(wall: WallTime) -> [RateLimitReport]
}

/// What differs between the modes, as data: who fills, how loudly a refused stop is repeated, whether the wallet is
/// read, how long a position may stay without an exchange-held stop.
struct VenueRole: Equatable {
    /// "paper", "testnet" or "exchange": how logs and alerts name the venue.
    var name: String
    /// The kernel's paper book fills the orders at market data (sim, paper, shadow); false (live): the exchange's
    /// executions are the fills, and what the exchange does on its own is booked.
    var fillsOnPaperBook: Bool
    /// Whether the operator's activation survives a restart (live asks again after every start).
    var keepsActivationAcrossRestarts: Bool
    /// A refused stop is alerted the first time, then every `stopRefusalAlertEvery`-th time (0: only the first).
    var stopRefusalAlertEvery: Int
    /// Whether the wallet's equity is read (at start and every minute) to cap sizing.
    var readsWallet: Bool
    /// A position without an exchange-held stop this long is alerted and flattened (nil: never).
    var maxUnprotectedMs: Int64?

    /// Whether the exchange's executions are the fills (live).
    var exchangeFills: Bool { !fillsOnPaperBook }

    static let paper = VenueRole(
        name: "paper", fillsOnPaperBook: true, keepsActivationAcrossRestarts: true, stopRefusalAlertEvery: 0,
        readsWallet: false, maxUnprotectedMs: nil)
    /// Shadow: the paper book fills; the testnet gets the same orders, and its fills and position are compared.
    static let shadow = VenueRole(
        name: "testnet", fillsOnPaperBook: true, keepsActivationAcrossRestarts: true, stopRefusalAlertEvery: 0,
        readsWallet: false, maxUnprotectedMs: nil)

    /// Live: the exchange fills; the operator activates after every start; a refused stop is repeated every fifth
    /// time; the wallet caps sizing; an unprotected position is flattened after `live.max_unprotected_seconds`.
    static func live(maxUnprotectedSeconds: Int) -> VenueRole {
        VenueRole(
            name: "exchange", fillsOnPaperBook: false, keepsActivationAcrossRestarts: false, stopRefusalAlertEvery: 5,
            readsWallet: true, maxUnprotectedMs: Int64(maxUnprotectedSeconds) * 1000)
    }

    /// Whether the `n`-th refusal in a row to set the stop is alerted.
    func alertsStopRefusal(_ n: Int) -> Bool {
        n == 1 || (stopRefusalAlertEvery > 0 && n % stopRefusalAlertEvery == 0)
    }
}

/// What a venue reads of the engine's books, handed over with each call (a value, taken when the call is made).
struct VenueView {
    /// The trader's position (nil: flat) and its signed quantity.
    var position: Position?
    var signedQty: Lots
    /// The working orders (the kernel's book).
    var workingOrders: [OrderIntent]
    /// The market time of the last market event.
    var lastMarketTs: Int64
    /// The supervisor is flattening.
    var flattening: Bool
}

/// What a venue reports, as values. Facts, not orders to the engine: which of them change the books depends on
/// `VenueRole` (shadow compares and alerts; live books), and the engine decides.
enum VenueEvent {
    /// Something the operator must hear about the venue's own books (a stream down, a stop refused, a fill that
    /// diverges, a value the decoder does not know).
    case alert(Alert)
    /// Executions the venue has now taken into account: recorded with the step, so a restart never books them again.
    case executionsSeen([ExecutionRow])
    /// One of the agent's orders is over at the exchange: `lots` of it executed at `tickLots` (the sum of price ×
    /// lots over its executions).
    case orderOver(VenueOrderOver)
    /// An execution of no order in flight: the position's own stop, the venue's flatten, ADL, liquidation, delivery,
    /// or something unexplained.
    case foreignExecution(Execution, lots: Lots, ticks: Ticks)
    /// Funding the exchange booked (paid: positive is a cost).
    case funding(Execution, paid: Double)
    /// The account's equity.
    case wallet(equity: Double)
    /// The venue's and the agent's positions differ with nothing in flight (alerted already); the text says how.
    case positionsDisagree(String)
    /// At start: executions the exchange made on its own while the agent was down (not of a working order, not
    /// booked before), and the position it holds now.
    case executionsWhileDown([Execution], venuePosition: Lots)
    /// At start: the venue's books disagree with the restored state (each problem a sentence).
    case reconciliationFailed([String])
    /// At start: the venue did not answer (retried until the limit).
    case unreachableAtStart(seconds: Int64, error: String)
    /// The venue's own flatten ended; its steps for the operator.
    case flattened(steps: [String])
    /// A position has been without an exchange-held stop longer than `VenueRole.maxUnprotectedMs`.
    case unprotectedTooLong(position: Lots, seconds: Int64)
}

/// An order of the agent's that the exchange ended (filled, cancelled, rejected or expired).
struct VenueOrderOver {
    var intent: OrderIntent
    var lots: Lots
    var tickLots: Int64
    var fee: Double
    var isMaker: Bool
    /// The exchange's time of the last execution (or of the report).
    var ts: Int64
    var status: BybitOrderStatus
    var reason: String
}

/// The venue's own side of a flatten.
enum VenueFlattenOutcome: Equatable {
    /// Not asked, or confirmed flat.
    case confirmed
    case pending
    /// The venue could not confirm its flat (alerted).
    case failed
}

/// Sim and paper: orders fill on the paper model (docs/SPEC.md §9), at the market data the agent receives; nothing to
/// report. The engine acknowledges and cancels on the paper book itself.
final class PaperVenue: TradingVenue {
    let metrics: AgentMetrics

    init(metrics: AgentMetrics) { self.metrics = metrics }

    var role: VenueRole { .paper }
    func reconcile(_ view: VenueView, bookedIds: (Int64) throws -> [String], retryForMs: Int64, wall: WallTime)
        -> [VenueEvent]
    { [] }
    func finishReconcile(_ view: VenueView, wall: WallTime) -> [VenueEvent] { [] }
    func claimExecution(_ execId: String) -> Bool { false }
    func submitted(_ intent: OrderIntent, wall: WallTime) {}
    func cancel(_ id: String, view: VenueView, wall: WallTime) -> [VenueEvent] { [] }
    func filled(_ fill: Fill, view: VenueView, wall: WallTime) -> [VenueEvent] { [] }
    func committed(_ batch: StoreBatch) {
        // The order reaches its venue (the paper book) once recorded.
        for o in batch.orders { metrics.onWire(o.intent.id) }
    }
    /// The paper book takes every order at once; nothing is held.
    func sendProtective() {}
    func report(_ r: VenueReport, view: VenueView, wall: WallTime) -> [VenueEvent] { [] }
    func settle(_ view: VenueView, wall: WallTime) -> [VenueEvent] { [] }
    func tick(_ view: VenueView, wall: WallTime) -> [VenueEvent] { [] }
    func startFlatten(wall: WallTime) {}
    var flattenOutcome: VenueFlattenOutcome { .confirmed }
    func flattenFinished() {}
    var hasOrdersInFlight: Bool { false }
    var entryVeto: EntryVeto? { nil }
    var resumeBlocker: String? { nil }
    func degradedReasons(wall: WallTime) -> [String] { [] }
    var lastSuccessWall: WallTime? { nil }
    func unprotectedMs(wall: WallTime) -> Int64? { nil }
    func outcomeUnknown(_ id: String) -> Bool { false }
    var heldOrders: [OrderReport] { [] }
    func rateLimits(wall: WallTime) -> [RateLimitReport] { [] }
}

/// Who fills decides two of the trader's rules: with the exchange's fills (live), funding is booked as the exchange
/// charges it and a timed-out limit entry is replaced only once the exchange confirms its cancel; with paper fills,
/// the backtest's rules.
func applyFillRules(_ trader: inout Trader, exchangeFills: Bool) {
    trader.fundingFromVenue = exchangeFills ? true : nil
    trader.confirmCancelBeforeReplacing = exchangeFills ? true : nil
}
