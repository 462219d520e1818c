public import AgentConfig
public import AgentSupport
public import ControlProtocol
public import Engine
import Exchange
import ExchangeStreams
import Foundation
public import Logging
import Synchronization

/// What the engine publishes after each step for readers on other threads (control socket, watchdog).
public struct PublishedState: Sendable {
    public var status: StatusReport
    public var positions: [PositionReport]
    public var orders: [OrderReport]
    public var valueArea: ValueAreaReport?
    /// The dashboard's charts (minutes, footprints, equity, trades).
    public var tape = DashboardTape()
    /// How long the open position has been without an exchange-held stop (shadow and live), ms.
    public var unprotectedMs: Int64?
    /// Increases with every publish: readers tell a new state from one they have seen.
    public var sequence: UInt64 = 0
}

/// The latest published state and the engine's heartbeat, for readers on other threads.
public final class StatusBoard: Sendable {
    private struct Contents {
        var published: PublishedState?
        var heartbeatWall = WallTime.zero
        var statusLine = ""
    }
    private let contents = Mutex(Contents())

    public init() {}

    public var current: PublishedState? { contents.withLock { $0.published } }
    public func publish(_ p: PublishedState, statusLine line: String) {
        contents.withLock {
            $0.published = p
            $0.statusLine = line
        }
    }
    /// The engine loop ran at this wall time.
    public func beat(_ wall: WallTime) { contents.withLock { $0.heartbeatWall = wall } }
    public var lastBeat: WallTime { contents.withLock { $0.heartbeatWall } }
    /// How long ago the engine loop ran (ms); nil before its first step.
    public func engineSilentMs(wall: WallTime) -> Int64? {
        let beat = lastBeat
        return beat == .zero ? nil : wall - beat
    }
    /// `STATUS=` for systemd: state, mode, position.
    public var systemdStatus: String { contents.withLock { $0.statusLine } }
}

/// The single owner of the trading state (docs/DESIGN.md, "Data flow"): the feature pipeline, the trader, the paper venue
/// and the supervisor, stepped by one thread from one ordered stream of inputs. Everything it decides is recorded
/// (orders before they are sent) and logged; other threads read what it publishes on the `StatusBoard`.
public final class AgentEngine: @unchecked Sendable {
    public internal(set) var settings: AgentConfiguration
    let store: AgentStore
    let board: StatusBoard
    let logger: Logger
    let sink: LogSink
    let webhook: WebhookDelivery?
    public let version: String
    /// Market time from the wall clock (the simulator runs faster; a bench re-anchors it).
    public var clock: MarketClock

    /// The pipeline, the trader and the paper book, stepped in the one order the backtest also uses.
    var kernel: TradingKernel
    var pipeline: FeaturePipeline {
        get { kernel.pipeline! }
        _modify { yield &kernel.pipeline! }
        set { kernel.pipeline = newValue }
    }
    public internal(set) var trader: Trader {
        get { kernel.trader }
        _modify { yield &kernel.trader }
        set { kernel.trader = newValue }
    }
    public internal(set) var supervisor: Supervisor

    // Market data and health.
    var lastQuote: QuoteEvent?
    var lastQuoteWall: WallTime?
    var lastMessageWall: WallTime?
    var lastMarketTs: Int64 = 0
    var lastTrade: TradeEvent?
    var streamState = StreamState.notStarted
    var reconnects = 0
    var gapCount = 0
    var staleAlerted = false
    var loopLagMs: Int64 = 0
    var databaseWritable = true
    /// Records the database refused, held until it takes them (StoreJournal.swift).
    var journal = StoreJournal()
    var lastDiskCheckWall = WallTime.zero
    /// Free space on the state directory's disk at the last check (nil: not read yet, or unreadable).
    var diskFreeBytes: Int64?
    var diskLowAlerted = false
    var lastRawErrorLogWall = WallTime.zero
    var clockOffsetMs: Int64?
    let startedWall: WallTime

    // Records of the current step, written together.
    var batch = StoreBatch()
    var rawTrades: [TradeEvent] = []
    var rawQuotes: [QuoteEvent] = []
    /// Each market event's place in the order received, one count over trades and quotes, stored with the raw
    /// data: `replay` steps the kernel in this order and closes minutes on the clock where the agent did.
    var rawSeq: Int64 = 0
    var rawTradeSeqs: [Int64] = []
    var rawQuoteSeqs: [Int64] = []
    var lastRawFlushWall = WallTime.zero
    var lastPurgeWall = WallTime.zero
    var lastSnapshotWall = WallTime.zero
    var lastFeatures: MinuteFeatures?
    public internal(set) var lastSignal: SignalRecord?
    public internal(set) var lastMinute: Int64?
    var lastAmbiguousAlertTs: Int64?
    var invalidVAAlerted = false
    var stateSinceWall: WallTime
    /// What the dashboard draws, kept at each minute close.
    var tape = DashboardTape()
    var publishSequence: UInt64 = 0
    /// Counters and histograms for `/metrics` (gauges are read from the board at scrape time).
    public let metrics: AgentMetrics
    /// Monotonic ns when the minute being decided began closing (nil outside a minute close).
    var minuteCloseStarted: UInt64?

    // Flatten: who waits for it, since when, and what was done.
    var flattenWaiters: [(call: ControlCall, deadlineWall: WallTime)] = []
    var flattenSteps: [String] = []
    /// Where the orders go: the paper model until `trade(on:)` attaches an exchange (shadow, live).
    lazy var venue: any TradingVenue = PaperVenue(metrics: metrics)
    /// When the current flatten began (wall ms).
    var flattenStartedWall: WallTime?
    /// Live: the agent's equity was found above the wallet's (alerted once until it is not).
    var walletAlerted = false

    /// Re-reads the configuration for `reload` (nil: reload is refused).
    public var reloadSource: (@Sendable () throws -> ResolvedConfig)?
    /// How systemd's watchdog is served, for `health`.
    public var watchdogDescription = "not under systemd"

    /// Where a warm start reads the exchange's 1-minute candles and recent trades (nil: no warm start).
    public var marketHistory: (any MarketHistory)?

    /// Shadow and live: how long the start-up reconciliation retries an unreachable venue before it halts (wall ms).
    public var startRetryMs: Int64 = 60_000

    public init(
        settings: AgentConfiguration, store: AgentStore, board: StatusBoard, logger: Logger, sink: LogSink,
        webhook: WebhookDelivery?, clock: MarketClock, version: String, startedWall: WallTime,
        metrics: AgentMetrics? = nil
    ) {
        self.settings = settings
        self.metrics = metrics ?? AgentMetrics(environment: settings.environment, mode: settings.mode.rawValue)
        self.store = store
        self.board = board
        self.logger = logger
        self.sink = sink
        self.webhook = webhook
        self.clock = clock
        self.version = version
        self.startedWall = startedWall
        stateSinceWall = startedWall
        kernel = TradingKernel(
            features: settings.features, strategy: settings.strategy, instrument: settings.instrument)
        kernel.pipeline!.recordsFootprint = true
        // Live always waits for the operator, whatever the configuration says.
        supervisor = Supervisor(
            requireManualActivation: settings.agent.requireManualActivation || settings.mode == .live)
    }

    // MARK: - Recovery

    /// Loads the last snapshot, rebuilds the window from stored trades and quotes, and moves the supervisor to the
    /// state it may resume. Returns what was restored, for the log.
    @discardableResult
    public func recover(wall: WallTime) throws -> String {
        if settings.mode == .shadow || settings.mode == .live, venue is PaperVenue {
            throw CommandError("mode \(settings.mode.rawValue) needs an exchange to trade on; none is attached")
        }
        note(supervisor.beginRecovery(), wall: wall)
        var restored: [String] = []
        let snapshot = try store.lastSnapshot()
        if let s = snapshot {
            var (t, v) = (s.trader, s.venue)
            guard t.instrument == settings.instrument else {
                throw CommandError(
                    "the snapshot in \(store.path) is for \(t.instrument.symbol) with other instrument rules; "
                        + "the instrument cannot change while state exists (flatten, then move the state directory away)"
                )
            }
            t.reconfigure(settings.strategy)
            v.reconfigure(settings.strategy)
            applyFillRules(&t, exchangeFills: venue.role.exchangeFills)
            trader = t
            kernel.book = v
            // Live asks the operator again after every start; the other modes resume as they were.
            if venue.role.keepsActivationAcrossRestarts { supervisor.restoreActivation(s.activated) }
            lastMinute = s.lastMinute
            restored.append(
                "snapshot \(s.id) from \(isoTime(s.wallTs, milliseconds: true)) (state \(s.state.rawValue))")
        }
        // The arrival order goes on from the last stored event (raw data a crash did not flush is not counted).
        rawSeq = try store.lastRawSeq()
        let window = try rebuildWindow(wall: wall)
        restored.append(window)
        let warm = isWarm
        note(supervisor.recovered(previous: snapshot?.state, previousReason: snapshot?.reason, warm: warm), wall: wall)
        reconcileVenue(wall: wall)
        if supervisor.state == .flattening { startFlatten(nil, wall: wall) }
        batch.runs.append(runRow(cause: "start", wall: wall))
        try writeBatchOrThrow(snapshot: true, wall: wall)
        publish(wall: wall)
        return restored.joined(separator: "; ")
    }

    /// Replays stored market data (trades, quotes and the minutes known only from candles) through a fresh
    /// pipeline: the window comes back without a fresh warm-up when the data gap is shorter than the window. Then,
    /// with `agent.warm_start: exchange`, the minutes missing up to now come from the exchange's history
    /// (`warmFromExchange`). Minutes closed by the replay are not decided again; those without a stored features
    /// row (a backfill, a warm start) get one.
    func rebuildWindow(wall: WallTime) throws -> String {
        let needed = Self.windowMinutes(settings)
        let storedEnd = [try store.lastRawTs(), try store.lastKlineTs().map { $0 + millisPerMinute - 1 }].compactMap {
            $0
        }.max()
        let replayFrom = try store.meta("replay_from").flatMap { Int64($0) }
        var replayed = FeaturePipeline(config: settings.features)
        replayed.recordsFootprint = true
        var lastF: MinuteFeatures?
        var report: [String] = []
        var newRows: [FeatureRow] = []
        var knownRows: Set<Int64> = []
        func take(_ replayed: inout FeaturePipeline) {
            tape.add(replayed.takeFootprints())
            for f in replayed.takeClosed() {
                lastF = f
                tape.add(f)
                if !knownRows.contains(f.ts) {
                    newRows.append(
                        FeatureRow(ts: f.ts, row: FeaturesCSV.row(f, instrument: settings.instrument), source: f.source)
                    )
                }
            }
        }
        if let end = storedEnd {
            var from = Self.windowStart(end: end, settings: settings)
            // A backfill asks for its whole span to be replayed once, so that its minutes get their features rows.
            if let backfilled = replayFrom { from = min(from, minuteStart(of: backfilled)) }
            knownRows = try store.featureMinutes(from: from)
            var counts = (trades: 0, quotes: 0, lastTrade: TradeEvent?.none, lastQuote: QuoteEvent?.none)
            let storedKlines = try store.feedWindow(
                &replayed, from: from, events: { body in counts = try store.replayRaw(from: from, body) },
                closed: take)
            take(&replayed)
            lastQuote = counts.lastQuote
            lastTrade = counts.lastTrade
            lastMarketTs = end
            report.append(
                "window rebuilt from \(counts.trades) trades, \(counts.quotes) quotes"
                    + (storedKlines == 0 ? "" : " and \(storedKlines) stored kline minutes") + " since \(isoTime(from))"
            )
        } else {
            report.append("no stored market data")
        }
        let now = clock.now(wall: wall) - clock.deliveryAllowanceMs
        if settings.agent.warmFromExchange, let history = marketHistory,
            let gap = WarmPlan.missing(now: now, neededMinutes: needed, storedLastTs: storedEnd)
        {
            report.append(
                warmFromExchange(
                    history, gap: gap, neededMinutes: needed, now: now, storedEnd: storedEnd, pipeline: &replayed,
                    wall: wall))
            take(&replayed)
        } else if storedEnd == nil {
            report.append("warming up from live data")
        }
        // Close what lies between the data and now: the agent was down, so those minutes are missing data, not a
        // quiet market (docs/FEATURES.md, "Gaps"); with no data at all there is no window yet.
        replayed.advanceClock(to: now)
        replayed.markMissingSince(lastMarketTs)
        take(&replayed)
        pipeline = replayed
        if lastF != nil { tape.set(profile: replayed.profile) }
        lastFeatures = lastF
        batch.features.append(contentsOf: newRows)
        if replayFrom != nil { try store.setMeta("replay_from", "") }
        let minutes = (lastF?.index ?? -1) + 1
        var text = report.joined(separator: "; ") + " (\(minutes) minutes)"
        if let f = lastF, f.approximateMinutes > 0 {
            text +=
                "; \(f.approximateMinutes) of the window's minutes from klines, \(formatNumber((f.approximateShare * 1000).rounded() / 10))% of its volume"
        }
        return text
    }

    /// The warm start from the exchange (issue "ready in seconds"): the missing minutes' 1-minute candles, then
    /// the recent trades that continue them exactly (`WarmPlan`). What it adds is stored, so a restart replays
    /// it; a failure is alerted and the window warms from live data as it would have.
    func warmFromExchange(
        _ history: any MarketHistory, gap: (from: Int64, to: Int64), neededMinutes: Int, now: Int64, storedEnd: Int64?,
        pipeline p: inout FeaturePipeline, wall: WallTime
    ) -> String {
        let started = WallTime.now
        do {
            let bars = try history.klines(from: gap.from, to: gap.to)
            let recent = try history.recentTrades()
            let plan = WarmPlan.make(
                now: now, neededMinutes: neededMinutes, storedLastTs: storedEnd, klines: bars, recent: recent)
            for k in plan.klines { p.addKline(k) }
            for t in plan.trades { p.onTrade(t) }
            try store.writeKlines(plan.klines)
            try store.writeRaw(trades: plan.trades, quotes: [])
            if let t = plan.trades.last {
                lastTrade = t
                lastMarketTs = max(lastMarketTs, t.ts)
            } else if let k = plan.klines.last {
                lastMarketTs = max(lastMarketTs, k.ts + millisPerMinute - 1)
            }
            let missingBars =
                Int((min(plan.firstExactMinute ?? gap.to, gap.to) - gap.from) / millisPerMinute) - plan.klines.count
            logger.notice(
                "warm start from the exchange",
                metadata: [
                    "event": "warm.exchange", "from": "\(isoTime(gap.from))", "to": "\(isoTime(gap.to))",
                    "klines": "\(plan.klines.count)",
                    "recent_trades": "\(plan.trades.count)",
                    "first_exact_minute": "\(plan.firstExactMinute.map { isoTime($0) } ?? "-")",
                    "missing_klines": "\(max(0, missingBars))", "ms": "\(WallTime.now - started)",
                ])
            return
                "warm start: \(plan.klines.count) minutes from klines since \(isoTime(gap.from)), \(plan.trades.count) recent trades"
                + (plan.firstExactMinute.map { " exact from \(isoTime($0))" } ?? "")
        } catch {
            raise(alerts.warmStartFailed("\(error)"), wall: wall)
            return "warm start failed: \(error)"
        }
    }

    /// Minutes a start replays from the store: the window or the warm-up, whichever is longer, and two more.
    package static func windowMinutes(_ settings: AgentConfiguration) -> Int {
        max(settings.features.rollingWindowMinutes, settings.strategy.warmupMinutes) + 2
    }

    /// Where a start whose stored data ends at `end` replays its window from (`rebuildWindow`, `replay`).
    package static func windowStart(end: Int64, settings: AgentConfiguration) -> Int64 {
        minuteStart(of: end) - Int64(windowMinutes(settings)) * millisPerMinute
    }

    /// Whether the window holds the warm-up's minutes.
    var isWarm: Bool {
        guard let f = lastFeatures else { return false }
        return f.index >= settings.strategy.warmupMinutes - 1
    }

    // MARK: - The loop

    /// Steps every input of one batch, then writes what they recorded. Returns false once stopped.
    public func step(_ inputs: [EngineInput], wall: WallTime) -> Bool {
        var running = true
        for input in inputs {
            switch input {
            case .trades(let ts, let w): for t in ts { onTrade(t, wall: w) }
            case .quote(let q, let w): onQuote(q, wall: w)
            case .stream(let s, let w): onStream(s, wall: w)
            case .tick(let w): onTick(wall: w)
            case .command(let call): onCommand(call, wall: wall)
            case .venue(let r, let w): onVenueReport(r, wall: w)
            case .stop(let reason, let done):
                stop(reason: reason, wall: wall)
                done()
                running = false
            }
        }
        board.beat(wall)
        writeBatch(snapshot: false, wall: wall)
        return running
    }

    /// A trade, in the kernel's order (`TradingKernel`): the minutes it closes are decided, then it reaches the
    /// trader and the book.
    func onTrade(_ t: TradeEvent, wall: WallTime) {
        marketEvent(ts: t.ts, wall: wall)
        rawSeq += 1
        rawTrades.append(t)
        rawTradeSeqs.append(rawSeq)
        lastTrade = t
        decide(kernel.take(.trade(t)), wall: wall)
        handle(kernel.deliver(.trade(t)), wall: wall)
    }

    func onQuote(_ q: QuoteEvent, wall: WallTime) {
        marketEvent(ts: q.ts, wall: wall)
        rawSeq += 1
        rawQuotes.append(q)
        rawQuoteSeqs.append(rawSeq)
        lastQuote = q
        lastQuoteWall = wall
        decide(kernel.take(.quote(q)), wall: wall)
        handle(kernel.deliver(.quote(q)), wall: wall)
        if staleAlerted {
            staleAlerted = false
            logger.notice("market data is back", metadata: ["event": "feed.fresh"])
        }
    }

    private func marketEvent(ts: Int64, wall: WallTime) {
        lastMessageWall = wall
        if ts > lastMarketTs { lastMarketTs = ts }
        clockOffsetMs = clock.now(wall: wall) - ts
    }

    /// Decides the minutes the kernel closed (an event of a later minute closes the ones before it), before the
    /// event itself reaches the trader and the venue, as in the backtest.
    private func decide(_ closed: [MinuteFeatures], wall: WallTime) {
        guard !closed.isEmpty else { return }
        tape.add(pipeline.takeFootprints())
        tape.set(profile: pipeline.profile)
        for f in closed {
            let started = DispatchTime.now().uptimeNanoseconds
            minuteCloseStarted = started
            onMinuteClosed(f, wall: wall)
            minuteCloseStarted = nil
            metrics.minuteClose(nanoseconds: DispatchTime.now().uptimeNanoseconds - started)
        }
    }

    func onStream(_ s: StreamStatus, wall: WallTime) {
        switch s {
        case .connecting(let attempt):
            streamState = .connecting(attempt: attempt)
            if attempt > 1 {
                reconnects += 1
                metrics.streamReconnect("public")
            }
            if attempt == 8 {
                raise(alerts.reconnectStorm(attempts: attempt), wall: wall)
            }
        case .connected: streamState = .connected
        case .ready:
            streamState = .ready
            logger.info("public stream subscribed", metadata: ["event": "stream.ready"])
        case .disconnected(let reason):
            streamState = .disconnected
            logger.warning(
                "public stream disconnected", metadata: ["event": "stream.disconnected", "reason": "\(reason)"])
        case .gap(let from, let to):
            gapCount += 1
            metrics.streamGap("public")
            batch.gaps.append(GapRow(wallTs: wall.millis, fromTs: from, toTs: to, seq: rawSeq))
            kernel.markMissing(from: from, to: to)
            logger.warning(
                "market data gap",
                metadata: [
                    "event": "stream.gap", "gap.from": "\(isoTime(from, milliseconds: true))",
                    "gap.to": "\(isoTime(to, milliseconds: true))", "gap.ms": "\(to - from)",
                ])
        case .malformed(let m):
            logger.warning(
                "malformed stream message", metadata: ["event": "stream.malformed", "detail": "\(m.prefix(200))"])
        }
    }

    func onTick(wall: WallTime) {
        let now = clock.now(wall: wall)
        // Minutes close on the clock too, so a quiet or dead feed still produces decisions (which then veto
        // entries on stale data).
        let through = now - clock.deliveryAllowanceMs
        let closed = kernel.advanceClock(to: through)
        if !closed.isEmpty { batch.clockCloses.append((rawSeq, through)) }
        decide(closed, wall: wall)
        // Stale feed: no quote for stale_feed_seconds.
        if isStale(wall: wall), !staleAlerted, supervisor.state != .recovering {
            staleAlerted = true
            raise(
                alerts.staleFeed(
                    secondsSinceQuote: lastQuoteWall.map { (wall - $0) / 1000 },
                    secondsSinceStart: (wall - startedWall) / 1000,
                    limitSeconds: settings.strategy.staleFeedSeconds), wall: wall)
        }
        applyVenue(venue.tick(venueView, wall: wall), wall: wall)
        progressFlatten(wall: wall)
        // Raw data off the engine thread, once a second; purge hourly.
        if wall - lastRawFlushWall >= 1_000 { flushRaw(wall: wall) }
        // agent.raw_retention_hours 0 keeps everything (export and replay read it).
        if wall - lastPurgeWall >= 3_600_000 {
            lastPurgeWall = wall
            if settings.agent.rawRetentionHours > 0 {
                store.purgeRawLater(
                    before: lastMarketTs - Int64(settings.agent.rawRetentionHours) * 3_600_000, logger: logger)
            }
            // The write-ahead log back into the database, so that it cannot grow without bound.
            store.checkpointLater()
        }
        if let e = store.takeRawError() {
            databaseWritable = false
            // Once a minute at most: a full disk refuses every second's batch.
            if wall - lastRawErrorLogWall >= millisPerMinute {
                lastRawErrorLogWall = wall
                logger.critical(
                    "raw market data write failed; the span is recorded as a gap once the database takes writes",
                    metadata: ["event": "store.raw_failed", "error": "\(e)"])
            }
        }
        noteRawDrops(wall: wall)
        checkDisk(wall: wall)
        if wall - lastSnapshotWall >= 300_000 { batch.snapshot = makeSnapshot(wall: wall) }
        publish(wall: wall)
    }

    func isStale(wall: WallTime) -> Bool {
        guard let w = lastQuoteWall else {
            return wall - startedWall > Int64(settings.strategy.staleFeedSeconds) * 1000
        }
        return wall - w > Int64(settings.strategy.staleFeedSeconds) * 1000
    }

    func flushRaw(wall: WallTime) {
        lastRawFlushWall = wall
        store.appendRaw(trades: rawTrades, quotes: rawQuotes, seqs: (rawTradeSeqs, rawQuoteSeqs))
        rawTrades.removeAll(keepingCapacity: true)
        rawQuotes.removeAll(keepingCapacity: true)
        rawTradeSeqs.removeAll(keepingCapacity: true)
        rawQuoteSeqs.removeAll(keepingCapacity: true)
    }

    // MARK: - Minute close

    /// Why entries are vetoed now, beyond the Engine's own rules.
    var entryVeto: EntryVeto? {
        switch supervisor.state {
        case .active:
            if !journal.isEmpty { return .database }
            if staleAlerted { return .staleFeed }
            // A value area mostly drawn from candles (a warm start) is not traded on.
            if let f = lastFeatures, f.approximateShare > settings.agent.maxApproximateVAShare { return .approximateVA }
            return venue.entryVeto
        case .warming: return .warmup
        case .observing: return .observing
        case .paused: return .paused
        case .flattening, .halted: return .halted
        case .starting: return .starting
        case .recovering: return .recovering
        case .stopping: return .stopping
        }
    }

    func onMinuteClosed(_ f: MinuteFeatures, wall: WallTime) {
        lastFeatures = f
        tape.add(f)
        if f.index >= settings.strategy.warmupMinutes - 1 { note(supervisor.windowWarm(), wall: wall) }
        let veto = entryVeto
        let (record, outcomes) = kernel.decide(f, veto: veto)
        lastSignal = record
        lastMinute = f.ts
        batch.features.append(
            FeatureRow(ts: f.ts, row: FeaturesCSV.row(f, instrument: settings.instrument), source: f.source))
        batch.signals.append(record)
        handle(outcomes, wall: wall)
        logFeatures(f, record)
        for a in trader.takeAlerts() { raise(alerts.engine(a), wall: wall) }
        if trader.killSwitchActive && supervisor.state != .halted && supervisor.state != .flattening {
            startFlatten(.killSwitch, wall: wall)
        }
        if f.volume > 0 && f.ambiguousFraction > settings.agent.ambiguousAlertFrac
            && lastAmbiguousAlertTs.map({ f.ts - $0 >= 15 * millisPerMinute }) ?? true
        {
            lastAmbiguousAlertTs = f.ts
            raise(
                alerts.highAmbiguousFraction(
                    f.ambiguousFraction, limit: settings.agent.ambiguousAlertFrac, minute: f.ts),
                wall: wall)
        }
        if isWarm && !f.valueAreaValid {
            if !invalidVAAlerted {
                invalidVAAlerted = true
                raise(alerts.invalidValueArea(minute: f.ts), wall: wall)
            }
        } else if f.valueAreaValid {
            invalidVAAlerted = false
        }
        tape.sample(ts: f.decisionTs, equity: trader.equity)
        batch.snapshot = makeSnapshot(wall: wall)
    }

    private func logFeatures(_ f: MinuteFeatures, _ r: SignalRecord) {
        var m: Logger.Metadata = [
            "event": "features.minute", "minute": "\(isoTime(f.ts))", "close": "\(priceText(f.close))",
            "volume": "\(sizeText(f.volume))", "trades": "\(f.tradeCount)", "va_valid": "\(f.valueAreaValid)",
            "of_1m": "\(formatNumber(settings.instrument.size(f.orderFlow.signedVolume)))",
            "of_norm": "\(formatNumber(f.ofNorm))",
            "ambiguous_frac": "\(formatNumber(f.ambiguousFraction))", "action": "\(r.action)", "reason": "\(r.reason)",
            "window_minutes": "\(f.index + 1)", "source": "\(f.source)", "of_method": "\(f.orderFlowMethod.rawValue)",
        ]
        if f.approximateLots > 0 {
            m["approximate_share"] = "\(formatNumber((f.approximateShare * 10_000).rounded() / 10_000))"
        }
        if let va = f.valueArea {
            m["poc"] = "\(halfTickText(va.pocTwiceTicks))"
            m["vah"] = "\(priceText(va.vahTicks))"
            m["val"] = "\(priceText(va.valTicks))"
        }
        if let q = f.qimbEma { m["qimb_ema"] = "\(formatNumber(q))" }
        let detected = detectedNames(r.detections)
        if !detected.isEmpty { m["detected"] = "\(detected.joined(separator: " "))" }
        logger.info("minute \(isoTime(f.ts)) closed: \(r.action) (\(r.reason))", metadata: m)
        if r.action == .hold && !detected.isEmpty { logVetoInputs(f, r, detected: detected) }
        if r.action != .hold {
            logger.notice(
                "signal \(r.action) \(r.reason)",
                metadata: [
                    "event": "signal.action", "action": "\(r.action)", "reason": "\(r.reason)",
                    "minute": "\(isoTime(f.ts))",
                ])
        }
    }

    /// The Trader's position as the debug lines name it: `long 0.5`, or `flat`.
    private var positionText: String { trader.position.map { "\($0.direction) \(sizeText($0.qty))" } ?? "flat" }

    /// Debug (`agent.log_level: debug`): a setup that fired without an order, with what decided it: the reason, the
    /// agent's veto, the quote's age, the confirmation inputs against their thresholds, the window's quality and the
    /// position rules in force.
    private func logVetoInputs(_ f: MinuteFeatures, _ r: SignalRecord, detected: [String]) {
        let s = settings.strategy
        var m: Logger.Metadata = [
            "event": "signal.veto", "minute": "\(isoTime(f.ts))", "detected": "\(detected.joined(separator: " "))",
            "reason": "\(r.reason)", "entry_veto": "\(trader.entryVeto?.rawValue ?? "none")",
            "of_1m": "\(formatNumber(settings.instrument.size(f.orderFlow.signedVolume)))",
            "of_norm": "\(formatNumber(f.ofNorm))", "ambiguous_frac": "\(formatNumber(f.ambiguousFraction))",
            "ambiguous_frac_max": "\(formatNumber(s.ambiguousTradeFracMax))",
            "entry_thresholds":
                "of \(formatNumber(s.entry.ofMin)) | norm \(formatNumber(s.entry.ofMinNorm)) | qimb \(formatNumber(s.entry.qimbMin))",
            "breakout_thresholds":
                "of \(formatNumber(s.breakout.ofMin)) | norm \(formatNumber(s.breakout.ofMinNorm)) | qimb \(formatNumber(s.breakout.qimbMin))",
            "position": "\(positionText)",
            "entry_working": "\(trader.hasWorkingEntry)", "kill_switch": "\(trader.killSwitchActive)",
            "daily_loss_limit_reached": "\(trader.dailyLossLimitReached)",
            "approximate_share": "\(formatNumber((f.approximateShare * 10_000).rounded() / 10_000))",
            "max_approximate_va_share": "\(formatNumber(settings.agent.maxApproximateVAShare))",
            "missing_minutes": "\(f.missingMinutes)", "va_valid": "\(f.valueAreaValid)",
        ]
        if let q = f.quote {
            m["quote_age_ms"] = "\(f.decisionTs - q.ts)"
            m["stale_feed_ms"] = "\(s.staleFeedSeconds * 1000)"
        }
        if let q = f.qimbEma { m["qimb_ema"] = "\(formatNumber(q))" }
        logger.debug(
            "minute \(isoTime(f.ts)): \(detected.joined(separator: " ")) without an order (\(r.reason))", metadata: m)
    }

    // MARK: - Orders and fills (paper venue)

    /// The trader's orders (a flatten, a replacement the exchange's cancel confirms) through the kernel.
    func execute(_ actions: [OrderAction], at ts: Int64, wall: WallTime) {
        handle(kernel.execute(actions, at: ts), wall: wall)
    }

    /// Fills from outside the market data (the exchange's executions, a flatten's close at the last quote).
    func apply(_ fills: [Fill], wall: WallTime) {
        handle(kernel.book(fills), wall: wall)
    }

    /// What the kernel did with orders and fills: recorded in the step's batch, logged, handed to the venue.
    func handle(_ outcomes: [KernelOutcome], wall: WallTime) {
        var changed = false
        for o in outcomes {
            switch o {
            case .submitted(let intent, _):
                batch.orders.append(OrderRow(intent: intent, status: .submitted, wallTs: wall.millis))
                if let closing = minuteCloseStarted, intent.purpose.isEntry {
                    metrics.decidedAtBarClose(intent.id, closedAt: closing)
                }
                // The record is written before the order can fill: writeBatch runs before the next input.
                // Live: the book only keeps the working orders (the snapshot restores them); the exchange fills.
                logger.notice("order submitted", metadata: orderMetadata(intent, event: "order.submitted"))
                if venue.role.fillsOnPaperBook { acknowledgedOnPaper(intent) }
                venue.submitted(intent, wall: wall)
                logger.debug(
                    "order \(intent.id): recorded in this step's batch and handed to the \(settings.mode.rawValue) venue",
                    metadata: ["event": "order.step", "step": "handed_to_venue", "order_link_id": "\(intent.id)"])
            case .cancelled(let id, let removed):
                logger.debug(
                    "order \(id): cancel \(removed ? "taken off the paper book" : "sent to the venue")",
                    metadata: [
                        "event": "order.step", "step": "cancel_requested", "order_link_id": "\(id)",
                        "removed_from_book": "\(removed)",
                    ])
                applyVenue(venue.cancel(id, view: venueView, wall: wall), wall: wall)
                if removed { cancelledOnPaper(id, wall: wall) }
            case .refused(let fill, .nothingToReduce):
                changed = true
                logger.warning(
                    "reduce-only order found nothing to reduce",
                    metadata: ["event": "order.cancelled", "order_link_id": "\(fill.orderId)"])
            case .refused(let fill, .stacking):
                changed = true
                logger.critical(
                    "entry fill while a position is open in the same direction; ignored",
                    metadata: ["event": "order.rejected", "order_link_id": "\(fill.orderId)"])
            case .filled(let fill):
                changed = true
                batch.fills.append(fill)
                batch.orderUpdates.append(OrderUpdate(id: fill.orderId, status: .filled, wallTs: wall.millis))
                var m: Logger.Metadata = [
                    "event": "order.filled", "order_link_id": "\(fill.orderId)", "side": "\(fill.side)",
                    "qty": "\(sizeText(fill.qty))",
                    "price": "\(priceText(fill.price))", "purpose": "\(fill.purpose.label)",
                    "liquidity": "\(fill.liquidity.rawValue)",
                    "fee": "\(formatNumber(fill.fee))", "latency_ms": "\(fill.ts - fill.decisionTs)",
                ]
                if let mid = fill.referenceMidTwice {
                    // Slippage against the mid, in ticks, positive when it cost us.
                    let slip = Double(2 * fill.price - mid) / 2 * Double(fill.side.sign)
                    m["slippage_ticks"] = "\(formatNumber(slip))"
                }
                logger.notice("order filled", metadata: m)
                applyVenue(venue.filled(fill, view: venueView, wall: wall), wall: wall)
                logger.debug(
                    "order \(fill.orderId): fill booked; position \(positionText)",
                    metadata: [
                        "event": "order.step", "step": "booked", "order_link_id": "\(fill.orderId)",
                        "position_qty": "\(sizeText(trader.signedQty))", "cash": "\(formatNumber(trader.cash))",
                    ])
            }
        }
        if changed { batch.snapshot = makeSnapshot(wall: wall) }
    }

    func orderMetadata(_ i: OrderIntent, event: String) -> Logger.Metadata {
        var m: Logger.Metadata = [
            "event": "\(event)", "order_link_id": "\(i.id)", "side": "\(i.side)", "qty": "\(sizeText(i.qty))",
            "purpose": "\(i.purpose.label)", "reduce_only": "\(i.reduceOnly)",
            "decision": "\(isoTime(i.decisionTs, milliseconds: true))",
        ]
        if case .limit(let p) = i.type { m["price"] = "\(priceText(p))" } else { m["type"] = "market" }
        return m
    }

    // MARK: - Flatten

    /// Closes everything, on the venue too, then halts. `cause` nil: the flatten the supervisor is already in (one
    /// interrupted by a restart).
    func startFlatten(_ cause: HaltCause?, wall: WallTime) {
        if let cause { note(supervisor.beginFlatten(cause), wall: wall) }
        let now = max(lastMarketTs, clock.now(wall: wall))
        let actions = trader.closeAll(.flatten, at: now)
        // Any other working order (exits of a closing position stay: they close it).
        execute(actions, at: now, wall: wall)
        if actions.isEmpty {
            flattenSteps.append(trader.position == nil ? "already flat" : "position already closing")
        } else {
            for a in actions {
                switch a {
                case .cancel(let id): flattenSteps.append("cancelled \(id)")
                case .submit(let i):
                    flattenSteps.append("close order \(i.id): \(i.side) \(sizeText(i.qty)) market reduce-only")
                }
            }
        }
        flattenStartedWall = wall
        venue.startFlatten(wall: wall)
        progressFlatten(wall: wall)
    }

    func progressFlatten(wall: WallTime) {
        guard supervisor.state == .flattening else {
            answerFlattenWaiters(wall: wall, done: supervisor.state == .halted)
            return
        }
        progressVenueFlatten(wall: wall)
        let flat = trader.position == nil && kernel.book.workingOrders.isEmpty && trader.workingEntryOrder == nil
        let outcome = venue.flattenOutcome
        if flat && outcome != .pending {
            flattenSteps.append("flat confirmed")
            note(supervisor.flat(), wall: wall)
            if outcome == .failed {
                raise(alerts.flattenFailed(steps: flattenSteps.filter { $0.hasPrefix("venue:") }), wall: wall)
            }
            venue.flattenFinished()
            logger.notice(
                "flat; trading halted", metadata: ["event": "flatten.done", "reason": "\(supervisor.reason)"])
            answerFlattenWaiters(wall: wall, done: true)
            return
        }
        answerFlattenWaiters(wall: wall, done: false)
    }

    private func answerFlattenWaiters(wall: WallTime, done: Bool) {
        guard !flattenWaiters.isEmpty else { return }
        var keep: [(call: ControlCall, deadlineWall: WallTime)] = []
        for w in flattenWaiters {
            if done && venue.flattenOutcome == .failed {
                replyError(
                    w.call, ControlFailure(ControlFailure.failed, unconfirmedFlattenText(steps: flattenSteps)))
            } else if done {
                reply(
                    w.call,
                    ActionReport(
                        state: supervisor.state.rawValue, message: "flat; trading halted (\(supervisor.reason))",
                        steps: flattenSteps))
            } else if wall >= w.deadlineWall {
                replyError(
                    w.call,
                    ControlFailure(
                        ControlFailure.timeout,
                        "not flat yet after the flatten timeout; still flattening: "
                            + flattenSteps.joined(separator: "; ")))
            } else {
                keep.append(w)
            }
        }
        flattenWaiters = keep
    }

    // MARK: - Stop

    func stop(reason: String, wall: WallTime) {
        note(supervisor.stop(reason), wall: wall)
        // No new orders; a working entry is cancelled. The position keeps its protection (the venue's stop in shadow
        // and live) and is restored on the next start.
        if let w = trader.workingEntryOrder {
            execute([.cancel(id: w.id)], at: lastMarketTs, wall: wall)
        }
        flushRaw(wall: wall)
        store.flushRaw()
        batch.snapshot = makeSnapshot(wall: wall)
        journal.lastAttemptWall = .zero
        writeBatch(snapshot: true, wall: wall)
        if !journal.isEmpty {
            logger.critical(
                "stopping with records the database refused: they are lost with the process",
                metadata: ["event": "store.lost", "held_records": "\(journal.rows)", "error": "\(journal.error)"])
        }
        logger.notice("stopped; snapshot written", metadata: ["event": "agent.stopped"])
        for w in flattenWaiters { replyError(w.call, ControlFailure(ControlFailure.failed, "the agent is stopping")) }
        flattenWaiters = []
        publish(wall: wall)
    }

    // MARK: - Records

    func note(_ t: Transition?, wall: WallTime) {
        guard let t else { return }
        batch.transitions.append(TransitionRow(wallTs: wall.millis, t))
        stateSinceWall = wall
        sink.setState(t.to.rawValue)
        logger.notice(
            "state \(t.from.rawValue) → \(t.to.rawValue): \(t.reason)",
            metadata: [
                "event": "state.changed", "from": "\(t.from.rawValue)", "to": "\(t.to.rawValue)",
                "reason": "\(t.reason)",
            ])
        batch.snapshot = makeSnapshot(wall: wall)
    }

    /// How alerts are worded in this agent's mode (Alert.swift).
    var alerts: AlertWording { AlertWording(instrument: settings.instrument, isLive: settings.mode == .live) }

    /// An alert: recorded with the batch, logged, sent to the webhook.
    func raise(_ alert: Alert, wall: WallTime) {
        let kind = alert.kind.rawValue, severity = alert.severity.rawValue, message = alert.message
        batch.alerts.append(AlertRow(wallTs: wall.millis, kind: kind, severity: severity, message: message))
        metrics.alert(kind: kind, severity: severity)
        let m: Logger.Metadata = ["event": "alert.raised", "alert.kind": "\(kind)", "alert.severity": "\(severity)"]
        switch alert.severity {
        case .info: logger.info("alert: \(message)", metadata: m)
        case .warning: logger.warning("alert: \(message)", metadata: m)
        case .critical: logger.critical("alert: \(message)", metadata: m)
        }
        webhook?.send(
            environment: settings.environment, kind: kind, severity: severity, message: message, wallTs: wall.millis)
    }

    /// A row of the run log: the configuration and the state the agent goes on with from now (`replay` takes over
    /// from it).
    func runRow(cause: String, wall: WallTime) -> RunRow {
        RunRow(
            wallTs: wall.millis, marketTs: lastMarketTs,
            openMinute: kernel.pipeline?.hasStarted == true ? pipeline.openMinute : nil, seq: rawSeq,
            cause: cause, config: runConfigText, trader: trader, venue: kernel.book)
    }

    /// The configuration as the run log keeps it: every parameter's value as text, in JSON.
    var runConfigText: String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        return (try? encoder.encode(ConfigLoader.valueTexts(settings.resolved))).map {
            String(decoding: $0, as: UTF8.self)
        } ?? "{}"
    }

    func makeSnapshot(wall: WallTime) -> SnapshotRow {
        let kept = supervisor.persistentState
        return SnapshotRow(
            id: 0, wallTs: wall.millis, marketTs: lastMarketTs, state: kept.state, reason: kept.reason,
            activated: supervisor.activated, lastMinute: lastMinute, trader: trader, venue: kernel.book)
    }

    /// Metrics of what a committed batch recorded: orders by outcome, fills, commands (alerts count when raised).
    func countRecords(_ b: StoreBatch) {
        for _ in b.orders { metrics.order(.submitted) }
        for u in b.orderUpdates { metrics.order(u.status) }
        for c in b.commands { metrics.command(c.cmd, result: c.ok ? "ok" : "error") }
        for f in b.fills {
            let slip = f.referenceMidTwice.map { Double(2 * f.price - $0) / 2 * Double(f.side.sign) }
            metrics.fill(liquidity: f.liquidity.rawValue, slippageTicks: slip)
        }
    }

    // MARK: - Formatting

    func priceText(_ ticks: Int64) -> String { settings.instrument.priceText(ticks) }
    func halfTickText(_ twice: Int64) -> String { settings.instrument.halfTickText(twice) }
    func sizeText(_ lots: Int64) -> String { settings.instrument.sizeText(lots) }
}
