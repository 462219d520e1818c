import AgentConfig
import AgentSupport
import ControlProtocol
import Engine
import Logging

/// Where the engine's orders go (docs/DESIGN.md, "Venues"). The engine loop steps its inputs and calls its venue at
/// fixed points; it never asks which mode it runs in. `PaperVenue` fills orders on the paper model (sim and paper);
/// `ShadowVenue` does the same and mirrors every order to the testnet, comparing the two; `LiveVenue` sends the
/// orders to the exchange, whose executions are the fills.
///
/// A venue is created for one engine and steps on its thread: it reads and changes the engine's books through
/// `engine` (the trader, the records of the step, the supervisor, alerts).
protocol TradingVenue: AnyObject {
    var engine: AgentEngine { get }
    /// "paper", "testnet" or "exchange": how logs and alerts name it.
    var name: String { get }
    /// Whether the kernel's paper book fills the orders at market data (sim, paper, shadow); live: the exchange's
    /// executions are the fills.
    var fillsOnPaperBook: Bool { get }
    /// The trader's rules that depend on who fills (live: the exchange's funding, cancels confirmed before a
    /// timed-out entry is replaced).
    func adapt(_ trader: inout Trader)
    /// Whether the operator's activation survives a restart (live asks again after every start).
    var keepsActivationAcrossRestarts: Bool { get }

    /// Before READY: the venue's books against the restored state (halts on a mismatch).
    func reconcile(wall: Int64)
    /// An order entered the book and its record is in the step's batch; it leaves once the batch is committed.
    func submitted(_ intent: OrderIntent, wall: Int64)
    /// The trader cancels a working order; `removedFromBook`: the paper book took it off already (sim, paper,
    /// shadow).
    func cancel(_ id: String, removedFromBook: Bool, wall: Int64)
    /// A fill was booked by the trader.
    func filled(_ fill: Fill, wall: Int64)
    /// The step's records are committed: what was held for them may leave.
    func committed(_ batch: StoreBatch)
    /// The database refuses writes: what protects or reduces the position leaves now, before its record is
    /// committed (it waits in the journal); entries stay held.
    func sendProtective(wall: Int64)
    /// A report from the exchange (shadow and live).
    func report(_ r: VenueReport, wall: Int64)
    /// Every tick: the venue's own clocks.
    func tick(wall: Int64)

    /// The engine's flatten began (after the trader's close orders were handed over).
    func startFlatten(wall: Int64)
    /// While flattening: whatever the venue does to finish (a close filled at the last quote, the rest of a
    /// partly filled exit, books corrected to an exchange confirmed flat).
    func progressFlatten(wall: Int64)
    /// The venue's own side of the flatten.
    var flattenOutcome: VenueFlattenOutcome { get }
    /// The flatten is over.
    func flattenFinished()
    /// The reply to an operator whose flatten ended with the venue not confirmed flat.
    func unconfirmedFlattenText(steps: [String]) -> String

    /// Why entries are vetoed now because of the venue (nil: not vetoed).
    var entryVeto: EntryVeto? { get }
    /// Why `resume` is refused because of the venue (nil: not refused).
    var resumeBlocker: String? { get }
    /// The venue's part of `health`.
    func degradedReasons(wall: Int64) -> [String]
    /// Wall time of the venue's last successful call (nil: none, or a paper venue).
    var lastSuccessWall: Int64? { get }
    /// How long the position has been without an exchange-held stop (ms; nil: protected, or a paper venue).
    func unprotectedMs(wall: Int64) -> Int64?
    /// Whether the outcome of an order's create call is unknown (being queried).
    func outcomeUnknown(_ id: String) -> Bool
    /// The position's own conditional orders the venue holds.
    var heldOrders: [OrderReport] { get }
    /// The exchange's rate limits per endpoint and the last waits for them (empty: a paper venue).
    func rateLimits(wall: Int64) -> [RateLimitReport]
}

/// The venue's own side of a flatten.
enum VenueFlattenOutcome: Equatable {
    /// Not asked, or confirmed flat.
    case confirmed
    case pending
    /// The venue could not confirm its flat (alerted).
    case failed
}

extension TradingVenue {
    /// The working orders, in every mode; in sim, paper and shadow also the fill model (the kernel's book).
    /// Snapshotted and restored with the trader.
    var book: PaperFillModel {
        get { engine.kernel.book }
        set { engine.kernel.book = newValue }
    }
}

/// Sim and paper: orders fill on the paper model (docs/SPEC.md §9), at the market data the agent receives.
final class PaperVenue: TradingVenue {
    unowned let engine: AgentEngine
    /// When no quote arrives to fill a flatten's close, it fills at the last quote after this long (wall ms; paper
    /// and shadow).
    static let flattenQuoteWaitMs: Int64 = 2_000
    private var flattenStartedWall: Int64?

    init(engine: AgentEngine) {
        self.engine = engine
    }

    var name: String { "paper" }
    func adapt(_ trader: inout Trader) { applyFillRules(&trader, exchangeFills: false) }
    var keepsActivationAcrossRestarts: Bool { true }
    func reconcile(wall: Int64) {}
    var fillsOnPaperBook: Bool { true }

    func submitted(_ intent: OrderIntent, wall: Int64) { engine.acknowledgedOnPaper(intent) }

    func cancel(_ id: String, removedFromBook: Bool, wall: Int64) {
        if removedFromBook { engine.cancelledOnPaper(id, wall: wall) }
    }
    func filled(_ fill: Fill, wall: Int64) {}
    func committed(_ batch: StoreBatch) {
        // The order reaches its venue (the paper book) once recorded.
        for o in batch.orders { engine.metrics.onWire(o.intent.id) }
    }
    /// The paper book takes every order at once; nothing is held.
    func sendProtective(wall: Int64) {}
    func report(_ r: VenueReport, wall: Int64) {}
    func tick(wall: Int64) {}

    func startFlatten(wall: Int64) { flattenStartedWall = wall }

    func progressFlatten(wall: Int64) {
        // The close fills at the next quote; with market data down, at the last quote known.
        fillAtLastQuote(engine: engine, startedWall: flattenStartedWall, wall: wall)
    }
    var flattenOutcome: VenueFlattenOutcome { .confirmed }
    func flattenFinished() {}
    func unconfirmedFlattenText(steps: [String]) -> String { "" }

    var entryVeto: EntryVeto? { nil }
    var resumeBlocker: String? { nil }
    func degradedReasons(wall: Int64) -> [String] { [] }
    var lastSuccessWall: Int64? { nil }
    func unprotectedMs(wall: Int64) -> Int64? { nil }
    func outcomeUnknown(_ id: String) -> Bool { false }
    var heldOrders: [OrderReport] { [] }
    func rateLimits(wall: Int64) -> [RateLimitReport] { [] }
}

/// Who fills decides two of the trader's rules: with the exchange's fills (live), funding is booked as the exchange
/// charges it and a timed-out limit entry is replaced only once the exchange confirms its cancel; with paper fills,
/// the backtest's rules.
func applyFillRules(_ trader: inout Trader, exchangeFills: Bool) {
    trader.fundingFromVenue = exchangeFills ? true : nil
    trader.confirmCancelBeforeReplacing = exchangeFills ? true : nil
}

extension AgentEngine {
    /// An order on the paper book (paper and shadow) is acknowledged at once.
    func acknowledgedOnPaper(_ intent: OrderIntent) {
        logger.info(
            "order acknowledged by the paper venue", metadata: orderMetadata(intent, event: "order.acknowledged"))
    }

    /// A cancel on the paper book (paper and shadow): the order is gone at once (the kernel told the trader).
    func cancelledOnPaper(_ id: String, wall: Int64) {
        batch.orderUpdates.append(OrderUpdate(id: id, status: .cancelled, wallTs: wall))
        logger.notice("order cancelled", metadata: ["event": "order.cancelled", "order_link_id": "\(id)"])
    }
}

/// A flatten's close that no fresh quote filled within `PaperVenue.flattenQuoteWaitMs` fills at the last quote
/// known (paper and shadow).
func fillAtLastQuote(engine: AgentEngine, startedWall: Int64?, wall: Int64) {
    guard let started = startedWall, wall - started >= PaperVenue.flattenQuoteWaitMs, let q = engine.lastQuote else {
        return
    }
    let ts = max(engine.lastMarketTs, engine.clock.now(wall: wall)) + 1
    let outcomes = engine.kernel.fillAtLatestQuote(q, ts: ts)
    guard !outcomes.isEmpty else { return }
    engine.flattenSteps.append(
        "no fresh quote: paper close filled at the last quote (\(isoTime(q.ts, milliseconds: true)))")
    engine.logger.warning("flatten filled at the last known quote", metadata: ["event": "flatten.stale_quote"])
    engine.handle(outcomes, wall: wall)
}
