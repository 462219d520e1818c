import AgentConfig
import AgentSupport
import ArgumentParser
import Daemon
import Engine
import Foundation
import MarketData

/// `auction-agent replay`: the trading kernel run again on what an agent stored, compared with what it decided.
struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract:
            "Run the backtest on the market data an agent stored and compare, minute by minute, with what it did.",
        discussion: """
            Reads the environment's database (also while its agent runs) and runs the trading kernel, the one the \
            backtest and the agent share, on exactly the trades and quotes the agent stored, with the configuration \
            and the state the agent ran with (its run log: each start, reload and operator command). Every minute's \
            signal (action and reason) and every order (side, size, type, price, purpose, decision time) is compared \
            with the agent's. Each difference goes into DIR/replay.csv (minute, kind, agent, replay, cause) with \
            its cause when one is known: a restart (the agent down, its last second of raw data possibly lost), a \
            stream gap, an operator command or a reload; the agent's own entry vetoes (its state, stale data) are \
            applied as it recorded them. The last line printed is the verdict; the exit status is 0 when every \
            difference is explained, 1 otherwise.

            --data DIR takes the trades and quotes from daily files instead of the database (what `record` or \
            `export` wrote; the agent's decisions still come from its database): a replay beyond the agent's raw \
            retention, or a check that the files hold what the agent saw.

            The replay starts at the agent's last start at or before --from and compares the minutes in \
            [--from, --to). Raw data is kept for agent.raw_retention_hours (0 keeps it): replay before it is purged. \
            The state directory is found as for `export`.
            """
    )

    @Option(help: ArgumentHelp("First minute to compare (inclusive): a date, ISO 8601 or epoch ms.", valueName: "time"))
    var from: String?

    @Option(help: ArgumentHelp("End of the comparison (exclusive).", valueName: "time"))
    var to: String?

    @Option(help: ArgumentHelp("Directory for replay.csv (created if missing).", valueName: "dir"))
    var out: String

    @Option(help: ArgumentHelp("The agent's state directory.", valueName: "dir"))
    var stateDir: String?

    @Option(
        help: ArgumentHelp(
            "Daily files of trades and quotes (record, export) to replay instead of the stored ones.", valueName: "dir")
    )
    var data: String?

    @OptionGroup var config: ConfigOptions

    func run() throws {
        let range = try timeRange(from: from, to: to)
        let resolved = try ConfigLoader.load(config.selection)
        let envName = config.environment ?? resolved.environment ?? "custom"
        let dir = agentStateDirectory(explicit: stateDir, resolved: resolved, environment: envName)
        let source: Replay.Source =
            try data.map {
                .files(
                    trades: try RecordedInputs.expand([$0], what: "--data (trades)"),
                    quotes: try RecordedInputs.expand([$0], what: "--data (quotes)"))
            } ?? .store
        let result = try Replay.run(
            stateDirectory: dir, environment: envName, instrument: resolved.instrument, range: range, out: out,
            source: source)
        print(result.verdict)
        if result.unexplained > 0 { throw ExitCode(1) }
    }
}

/// The work of `replay`, callable from tests.
enum Replay {
    struct Result {
        var minutes = 0
        var orders = 0
        /// Events that arrived after the agent's clock had closed their minute (replayed where they arrived).
        var lateArrivals = 0
        var differences: [Difference] = []
        var unexplained: Int { differences.filter { $0.cause.isEmpty }.count }
        var verdict = ""
    }

    struct Difference {
        var ts: Int64
        var kind: String
        var agent: String
        var replay: String
        var cause: String
    }

    /// Where the trades and quotes come from.
    enum Source {
        /// The agent's own raw tables.
        case store
        /// Daily files (`record`, `export`): the trades files, the quotes files.
        case files(trades: [String], quotes: [String])

        /// The events with `from <= ts < to`, in the Engine's order.
        func each(
            from: Millis, to: Millis, store: AgentStore, instrument: Instrument, _ body: (MarketEvent) throws -> Void
        ) throws {
            switch self {
            case .store:
                _ = try store.replayRaw(from: from, to: to, body)
            case .files(let trades, let quotes):
                let range = TimeRange(from: from, to: to == .max ? nil : to)
                var market = RecordedMarket(
                    trades: try .trades(trades, instrument: instrument, range: range),
                    quotes: try .quotes(quotes, instrument: instrument, range: range))
                while let e = try market.next() { try body(e) }
            }
        }
    }

    /// A span of market time in which a difference has a known cause.
    private struct Excuse {
        var from: Int64
        var to: Int64
        var cause: String
    }

    static func run(
        stateDirectory dir: String, environment: String, instrument: Instrument, range: TimeRange, out: String,
        source: Source = .store
    ) throws -> Result {
        let store = try openAgentStore(directory: dir, environment: environment, instrument: instrument)
        let runs = try store.runLog()
        guard !runs.isEmpty else {
            throw CommandError(
                "\(store.path) has no run log: replay needs an agent started by this version (it records the "
                    + "configuration and state it runs with)")
        }
        let compareFrom = range.from ?? .min
        let compareTo = range.to ?? .max
        // Start where the agent last started at or before the range (its window rebuilt there as the agent rebuilt
        // it), or at its first start.
        let first = runs.lastIndex { $0.cause == "start" && $0.marketTs <= compareFrom } ?? 0
        if case .store = source, let purged = try store.rawPurgedBefore() {
            let r = runs[first]
            let config = try configuration(of: r, store: store, environment: environment)
            let windowFrom = AgentEngine.windowStart(end: r.marketTs, settings: config)
            if r.marketTs > 0 && purged > windowFrom {
                let later = runs.first {
                    $0.cause == "start" && AgentEngine.windowStart(end: $0.marketTs, settings: config) >= purged
                }
                throw CommandError(
                    "\(store.path): the raw data of the window the agent started with at \(isoTime(r.wallTs)) was purged "
                        + "(before \(isoTime(purged)); agent.raw_retention_hours, 0 keeps it): "
                        + (later.map { "give --from \(isoTime($0.marketTs)) or later (a start whose window is kept)" }
                            ?? "no start of the agent has its window kept; keep raw data and replay after the next start")
                )
            }
        }

        // Market time of each run row; the spans that excuse a difference.
        var excuses: [Excuse] = []
        for (i, r) in runs.enumerated() where i > 0 {
            if r.cause == "start" {
                excuses.append(
                    Excuse(
                        from: r.marketTs - 2 * millisPerMinute,
                        to: max(r.marketTs, r.openMinute ?? r.marketTs) + millisPerMinute,
                        cause: "restart at \(isoTime(r.wallTs)): the agent was down (its last raw data may be lost)"))
            } else {
                excuses.append(
                    Excuse(
                        from: r.marketTs - millisPerMinute, to: r.marketTs + millisPerMinute,
                        cause: "\(r.cause) at \(isoTime(r.wallTs))"))
            }
        }
        for g in try store.gaps(from: .min, to: .max) {
            excuses.append(
                Excuse(
                    from: g.fromTs - millisPerMinute, to: g.toTs + 2 * millisPerMinute,
                    cause:
                        "stream gap \(isoTime(g.fromTs, milliseconds: true)) .. \(isoTime(g.toTs, milliseconds: true))")
            )
        }

        // The agent's decisions.
        let agentSignals = try store.signals(from: .min, to: .max)
        var agentSignal: [Int64: SignalRow] = [:]
        for s in agentSignals { agentSignal[s.ts] = s }
        let agentOrders = try store.orders().map(\.intent)

        // The agent's arrival order (stores written by this version): clock closes and gaps at their places.
        var closes = try store.clockCloses()[...]
        var seqGaps = try store.gaps(from: .min, to: .max).filter { $0.seq != nil }.sorted { $0.seq! < $1.seq! }[...]
        var replaySignals: [Int64: SignalRecord] = [:]
        var lateArrivals = 0
        var replayOrders: [OrderIntent] = []
        var mode = AgentMode.paper
        var kernel: TradingKernel?
        var features: FeatureConfig?
        for k in first..<runs.count {
            let r = runs[k]
            let settings = try configuration(of: r, store: store, environment: environment)
            mode = settings.mode
            var kern =
                kernel
                ?? TradingKernel(features: settings.features, strategy: settings.strategy, instrument: instrument)
            // A start rebuilds the window from stored data, as the agent did; a reload that changed the features too.
            if kernel == nil || r.cause == "start" || (r.cause == "reload" && features != settings.features) {
                kern.pipeline = try rebuiltWindow(store: store, source: source, settings: settings, at: r)
            }
            features = settings.features
            kern.trader = r.trader
            kern.book = r.venue
            kern.fillsOnBook = true
            let end = k + 1 < runs.count ? runs[k + 1].marketTs : .max
            guard r.marketTs < compareTo else { break }
            func decide(_ closed: [MinuteFeatures]) {
                for f in closed {
                    // The agent's own veto (its state, stale data), as it recorded it.
                    let veto = agentSignal[f.ts].flatMap { EntryVeto(rawValue: $0.reason) }
                    let (signal, outcomes) = kern.decide(f, veto: veto)
                    replaySignals[f.ts] = signal
                    record(outcomes)
                }
            }
            func record(_ outcomes: [KernelOutcome]) {
                for case .submitted(let intent, _) in outcomes { replayOrders.append(intent) }
            }
            let stop = min(end, compareTo)
            if case .store = source, let after = r.seq {
                // The agent's own order: each event where it arrived, each clock close and gap where it happened.
                let through = k + 1 < runs.count ? (runs[k + 1].seq ?? .max) : .max
                func atPoint(_ seq: Int64) {
                    while let c = closes.first, c.seq <= seq {
                        closes.removeFirst()
                        if c.seq == seq { decide(kern.advanceClock(to: c.through)) }
                    }
                    while let g = seqGaps.first, g.seq ?? .min <= seq {
                        seqGaps.removeFirst()
                        if g.seq == seq { kern.markMissing(from: g.fromTs, to: g.toTs) }
                    }
                }
                atPoint(after)
                let lateBefore = kern.pipeline?.lateEvents ?? 0
                _ = try store.replayArrivals(
                    after: after, through: through, from: minuteStart(of: r.marketTs) - 60 * millisPerMinute,
                    to: stop == .max ? .max : stop + 1
                ) { seq, e in
                    decide(kern.take(e))
                    record(kern.deliver(e))
                    atPoint(seq)
                }
                lateArrivals += (kern.pipeline?.lateEvents ?? 0) - lateBefore
                kernel = kern
                continue
            }
            // The stream gaps of the span: marked missing where the agent heard of them, before the first trade
            // after the reconnection.
            var gaps = try store.gaps(from: r.marketTs + 1, to: .max).filter { $0.toTs > r.marketTs }[...]
            try source.each(
                from: r.marketTs + 1, to: stop == .max ? .max : stop + 1, store: store, instrument: instrument
            ) {
                e in
                guard e.ts <= end else { return }
                if case .trade = e {
                    while let g = gaps.first, e.ts >= g.toTs {
                        kern.markMissing(from: g.fromTs, to: g.toTs)
                        gaps.removeFirst()
                    }
                }
                decide(kern.take(e))
                record(kern.deliver(e))
            }
            // Minutes the agent closed on its clock after the last event of the span.
            if let last = agentSignals.last(where: { $0.ts < min(end, compareTo) }),
                let pipeline = kern.pipeline, pipeline.hasStarted, last.ts >= pipeline.openMinute
            {
                decide(kern.advanceClock(to: last.ts + millisPerMinute + settings.features.closeGraceMs))
            }
            kernel = kern
        }

        // Compare the minutes both could have decided.
        var result = Result()
        result.lateArrivals = lateArrivals
        func excuse(_ ts: Int64) -> String {
            if mode == .live { return "live: the exchange's executions are the fills, the replay fills on paper" }
            return excuses.first { $0.from <= ts && ts < $0.to }?.cause ?? ""
        }
        let startTs = runs[first].marketTs
        let minutes = Set(agentSignals.map(\.ts)).union(replaySignals.keys).filter {
            $0 >= compareFrom && $0 < compareTo && $0 >= minuteStart(of: startTs)
        }
        for m in minutes.sorted() {
            let a = agentSignal[m].map { "\($0.action) \($0.reason)" } ?? "no decision"
            let b = replaySignals[m].map { "\($0.action.rawValue) \($0.reason)" } ?? "no decision"
            result.minutes += 1
            if a != b {
                result.differences.append(Difference(ts: m, kind: "signal", agent: a, replay: b, cause: excuse(m)))
            }
        }
        func describe(_ i: OrderIntent) -> String {
            let type: String
            if case .limit(let p) = i.type { type = "limit \(instrument.priceText(p))" } else { type = "market" }
            return "\(i.side) \(instrument.sizeText(i.qty)) \(type) \(i.purpose.label)"
                + (i.reduceOnly ? " reduce-only" : "")
        }
        func key(_ i: OrderIntent) -> String { "\(i.decisionTs) \(describe(i))" }
        let inRange = { (i: OrderIntent) in
            i.decisionTs >= compareFrom && i.decisionTs < compareTo && i.decisionTs > startTs
        }
        var theirs: [String: [OrderIntent]] = [:]
        for o in agentOrders where inRange(o) { theirs[key(o), default: []].append(o) }
        var ours: [String: [OrderIntent]] = [:]
        for o in replayOrders where inRange(o) { ours[key(o), default: []].append(o) }
        for k in Set(theirs.keys).union(ours.keys) {
            let a = theirs[k] ?? [], b = ours[k] ?? []
            result.orders += max(a.count, b.count)
            guard a.count != b.count else { continue }
            let sample = (a.first ?? b.first)!
            result.differences.append(
                Difference(
                    ts: sample.decisionTs, kind: "order",
                    agent: a.isEmpty ? "none" : "\(a.count)× \(describe(sample))",
                    replay: b.isEmpty ? "none" : "\(b.count)× \(describe(sample))", cause: excuse(sample.decisionTs)))
        }
        result.differences.sort { ($0.ts, $0.kind) < ($1.ts, $1.kind) }

        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        var csv = "minute,kind,agent,replay,cause\n"
        for d in result.differences {
            csv +=
                [isoTime(d.ts, milliseconds: true), d.kind, d.agent, d.replay, d.cause].map(csvField).joined(
                    separator: ",") + "\n"
        }
        let target = (out as NSString).appendingPathComponent("replay.csv")
        try Data(csv.utf8).write(to: URL(fileURLWithPath: target), options: .atomic)
        let explained = result.differences.count - result.unexplained
        result.verdict =
            "replay of \(store.path): \(grouped(result.minutes)) minutes and \(grouped(result.orders)) orders compared "
            + "from \(isoTime(max(startTs, compareFrom == .min ? startTs : compareFrom))); "
            + (lateArrivals == 0
                ? ""
                : "\(grouped(lateArrivals)) events arrived after the agent's clock had closed their minute (replayed "
                    + "as they arrived); ")
            + (result.differences.isEmpty
                ? "the agent and the replay agree exactly"
                : "\(result.differences.count) differences, \(explained) explained, \(result.unexplained) unexplained "
                    + "(\(target))")
        return result
    }

    /// The configuration the agent ran with from `run` on.
    private static func configuration(of run: RunRow, store: AgentStore, environment: String) throws
        -> AgentConfiguration
    {
        let source = "\(store.path) run_log (\(run.cause) at \(isoTime(run.wallTs)))"
        guard let texts = try? JSONDecoder().decode([String: String].self, from: Data(run.config.utf8)) else {
            throw CommandError("\(source): the configuration is not a JSON object of parameter values")
        }
        let config = try ConfigLoader.fromValueTexts(texts, source: source, environment: environment)
        return AgentConfiguration(config, environment: environment)
    }

    /// The window as the agent rebuilt it at `run`: the stored trades, quotes and candle minutes of the window's span
    /// before it, then the minutes up to the one it had open.
    private static func rebuiltWindow(store: AgentStore, source: Source, settings: AgentConfiguration, at run: RunRow)
        throws
        -> FeaturePipeline
    {
        var p = FeaturePipeline(config: settings.features)
        let from = AgentEngine.windowStart(end: run.marketTs, settings: settings)
        _ = try store.feedWindow(
            &p, from: from, through: run.marketTs,
            events: { body in
                try source.each(from: from, to: run.marketTs + 1, store: store, instrument: settings.instrument, body)
            }, closed: { _ = $0.takeClosed() })
        // The agent was down from its last data to the minute it opened: missing, as the agent marked it.
        if let open = run.openMinute {
            p.advanceClock(to: open + settings.features.closeGraceMs)
            p.markMissingSince(run.marketTs)
        }
        _ = p.takeClosed()
        return p
    }
}
