import Engine
import Foundation
import MarketData
import Simulator
import Testing

@testable import AgentCLI
@testable import AgentConfig
@testable import AgentSupport
@testable import Daemon
@testable import Research

/// Serialises a counter between grid worker threads.
final class Counter: @unchecked Sendable {
    // Every access goes through `lock`.
    private let lock = NSLock()
    private var n = 0
    func increment() {
        lock.lock()
        n += 1
        lock.unlock()
    }
    var value: Int {
        lock.lock()
        defer { lock.unlock() }
        return n
    }
}

@Suite(.tags(.unit)) struct GridTests {
    @Test func specParsesAndEnumeratesTheCartesianProduct() throws {
        let spec = try GridSpec.parse(
            yaml:
                "rank_by: sharpe\nparameters:\n  value_area.va_fraction: [0.68, 0.7]\n  signal.accept_outside_k: [2, 3, 4]\n",
            source: "g.yaml"
        )
        #expect(spec.rankBy == .sharpe)
        let combos = spec.combinations
        #expect(combos.count == 6)
        #expect(combos[0].map(\.value) == [.real(0.68), .integer(2)])
        #expect(combos[1].map(\.value) == [.real(0.68), .integer(3)])
        #expect(combos[5].map(\.value) == [.real(0.7), .integer(4)])
    }

    /// The grids shipped in config/ parse, and every combination is a valid configuration of the backtest
    /// environment (what `grid` checks before any work).
    @Test func shippedGridsAreValid() throws {
        let dir = packageRoot.appending(path: "config")
        let files = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter {
            $0.hasPrefix("grid") && $0.hasSuffix(".yaml")
        }
        #expect(files.sorted() == ["grid.example.yaml", "grid.value-area.yaml"])
        let base = try ConfigLoader.load(
            ConfigSelection(environment: "backtest", directory: dir.appending(path: "environments").path))
        for file in files {
            let spec = try GridSpec.parse(
                yaml: String(contentsOf: dir.appending(path: file), encoding: .utf8), source: file)
            for combo in spec.combinations {
                var c = base
                try ConfigLoader.applyOverrides(combo.map { "\($0.key)=\($0.value)" }, to: &c)
                try ConfigLoader.check(c)
            }
            if file == "grid.value-area.yaml" {
                #expect(spec.combinations.count == 12)
                #expect(
                    Set(spec.combinations.map { combo in combo.map { "\($0.value)" } }).contains(["0.25", "1", "200"]),
                    "the defaults are one of the combinations")
            }
        }
    }

    @Test func specErrorsNameFileLineAndKey() {
        expectConfigError("g.yaml:2: value_area.nope: unknown key") {
            _ = try GridSpec.parse(yaml: "parameters:\n  value_area.nope: [1]\n", source: "g.yaml")
        }
        expectConfigError("g.yaml:3: value_area.va_fraction: 1.5 is out of range") {
            _ = try GridSpec.parse(yaml: "parameters:\n  value_area.va_fraction:\n    - 1.5\n", source: "g.yaml")
        }
        expectConfigError("g.yaml:1: rank_by: expected one of") {
            _ = try GridSpec.parse(
                yaml: "rank_by: luck\nparameters:\n  signal.accept_outside_k: [2]\n", source: "g.yaml")
        }
        expectConfigError("g.yaml: no parameters to vary") {
            _ = try GridSpec.parse(yaml: "rank_by: sharpe\n", source: "g.yaml")
        }
    }

    func market() -> (trades: [TradeEvent], quotes: [QuoteEvent]) {
        var config = MarketGeneratorConfig()
        config.hours = 3
        config.seed = 8
        var g = MarketGenerator(config: config)
        return g.generateAll()
    }

    func base() throws -> ResolvedConfig {
        var c = try ConfigLoader.load(ConfigSelection(), defaultEnvironment: nil)
        try ConfigLoader.applyOverrides(
            ["value_area.rolling_window_minutes=60", "value_area.warmup_minutes=60", "value_area.min_va_bins=10"],
            to: &c)
        return c
    }

    @Test func gridRunsEqualSingleBacktestsWhateverTheWorkers() throws {
        let (trades, quotes) = market()
        let spec = try GridSpec.parse(
            yaml: "parameters:\n  value_area.va_fraction: [0.6, 0.7]\n  sizing.risk_pct: [0.01, 0.02]\n",
            source: "g.yaml")
        let base = try base()
        let one = try runGrid(spec, base: base, trades: trades, quotes: quotes, workers: 1)
        let two = try runGrid(spec, base: base, trades: trades, quotes: quotes, workers: 2)
        #expect(one.count == 4 && two.count == 4)
        #expect(one.map(\.metrics) == two.map(\.metrics))
        // Run 3 (va 0.7, risk 0.01) equals a plain backtest with those settings.
        var c = base
        try ConfigLoader.applyOverrides(["value_area.va_fraction=0.7", "sizing.risk_pct=0.01"], to: &c)
        let single = runBacktest(
            trades: trades, quotes: quotes, features: c.features, strategy: c.strategy, instrument: c.instrument)
        #expect(one[2].metrics == single.metrics)
    }

    @Test func interruptedGridKeepsTheFinishedRuns() throws {
        let (trades, quotes) = market()
        let spec = try GridSpec.parse(
            yaml: "parameters:\n  sizing.risk_pct: [0.01, 0.015, 0.02, 0.025]\n", source: "g.yaml")
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let store = try GridStore(path: dir.appendingPathComponent("g.sqlite").path, gridId: "t")
        let finished = Counter()
        let outcomes = try runGrid(
            spec, base: try base(), trades: trades, quotes: quotes, workers: 1,
            onFinish: { o in
                try? store.insert(runIndex: o.index, params: "{}", metrics: "{}", createdAt: "now")
                finished.increment()
            },
            shouldStop: { finished.value >= 2 }
        )
        // Interrupted after two runs: those two are returned and stored, the others never started.
        #expect(outcomes.count == 2)
        #expect(try store.storedRuns().map(\.runIndex) == [0, 1])
        // Reopening the database keeps them.
        let again = try GridStore(path: dir.appendingPathComponent("g.sqlite").path, gridId: "t")
        #expect(try again.storedRuns().count == 2)
    }

    @Test func rankingIsBestFirstAndDrawdownLowerIsBetter() throws {
        let (trades, quotes) = market()
        let spec = try GridSpec.parse(yaml: "parameters:\n  sizing.risk_pct: [0.005, 0.02]\n", source: "g.yaml")
        let outcomes = try runGrid(spec, base: try base(), trades: trades, quotes: quotes, workers: 2)
        let byDrawdown = rank(outcomes, by: .maxDrawdownPct)
        #expect(byDrawdown[0].metrics.maxDrawdownPct <= byDrawdown[1].metrics.maxDrawdownPct)
        let csv = gridResultsCSV(rank(outcomes, by: .netPnL), spec: spec)
        #expect(csv.hasPrefix("rank,run,sizing.risk_pct,trades,net_pnl"))
        #expect(csv.split(separator: "\n").count == 3)
    }

    @Test func shardsAreGivenAsKOfNOrBySlurmOrKubernetes() throws {
        #expect(try GridShard.parse("2/4", environment: [:]) == GridShard(index: 1, count: 4))
        #expect(try GridShard.parse("1/1", environment: [:]) == .whole)
        for bad in ["0/4", "5/4", "2", "a/4", "2/x", "2/0", "/4", "1/2/3"] {
            #expect(throws: CommandError.self, "\(bad)") { try GridShard.parse(bad, environment: [:]) }
        }
        // A Slurm array --array=1-4: task 3 is the third shard.
        let slurm = ["SLURM_ARRAY_TASK_ID": "3", "SLURM_ARRAY_TASK_MIN": "1", "SLURM_ARRAY_TASK_COUNT": "4"]
        #expect(try GridShard.parse("auto", environment: slurm) == GridShard(index: 2, count: 4))
        #expect(try GridShard.parse("auto/4", environment: slurm) == GridShard(index: 2, count: 4))
        #expect(throws: CommandError.self) { try GridShard.parse("auto/5", environment: slurm) }
        #expect(throws: CommandError.self) {
            try GridShard.parse("auto", environment: ["SLURM_ARRAY_TASK_ID": "7", "SLURM_ARRAY_TASK_COUNT": "4"])
        }
        // A Kubernetes Indexed Job gives the index from 0 and no count.
        #expect(
            try GridShard.parse("auto/3", environment: ["JOB_COMPLETION_INDEX": "0"]) == GridShard(index: 0, count: 3))
        do {
            _ = try GridShard.parse("auto", environment: ["JOB_COMPLETION_INDEX": "0"])
            Issue.record("a Kubernetes index without a count was taken")
        } catch { #expect("\(error)".contains("auto/N")) }
        do {
            _ = try GridShard.parse("auto", environment: [:])
            Issue.record("auto without a scheduler was taken")
        } catch { #expect("\(error)".contains("SLURM_ARRAY_TASK_ID") && "\(error)".contains("JOB_COMPLETION_INDEX")) }
    }

    @Test func slicesAreBalancedDeterministicAndKeepFeatureSetsTogether() {
        // Four feature sets of 3 runs each (runs 0-2 share set 0, ...), three shards.
        let sets = [0, 0, 0, 1, 1, 1, 2, 2, 2, 3, 3, 3]
        let slices = GridPlan.slices(featureSetOfRun: sets, count: 3)
        #expect(slices.flatMap { $0 }.sorted() == Array(0..<12), "every run in exactly one shard")
        #expect(slices.map(\.count).max()! - slices.map(\.count).min()! <= 3)
        for slice in slices {
            for set in Set(slice.map { sets[$0] }) {
                #expect(slice.filter { sets[$0] == set }.count == 3, "set \(set) whole in one shard")
            }
        }
        #expect(GridPlan.slices(featureSetOfRun: sets, count: 3) == slices, "the same every time")
        // One feature set (a strategy-only grid): cut into fair shares, not all in one shard.
        let one = GridPlan.slices(featureSetOfRun: Array(repeating: 0, count: 10), count: 4)
        #expect(one.map(\.count) == [3, 3, 3, 1])
        #expect(one.flatMap { $0 }.sorted() == Array(0..<10))
        // More shards than runs: some shards have none.
        let many = GridPlan.slices(featureSetOfRun: [0, 1], count: 4)
        #expect(many.map(\.count).sorted() == [0, 0, 1, 1])
        #expect(GridPlan.slices(featureSetOfRun: [0, 1, 1], count: 1) == [[0, 1, 2]])
    }

    @Test func theShardsOfAGridRunWhatTheWholeGridRuns() throws {
        let (trades, quotes) = market()
        let spec = try GridSpec.parse(
            yaml: "parameters:\n  value_area.va_fraction: [0.6, 0.7]\n  sizing.risk_pct: [0.01, 0.015, 0.02]\n",
            source: "g.yaml")
        let plan = try GridPlan(spec, base: try base())
        #expect(plan.featureSetCount == 2)
        let whole = try runGrid(plan, trades: trades, quotes: quotes, workers: 2)
        var pieces: [GridOutcome] = []
        for k in 0..<3 {
            let runs = plan.runs(of: GridShard(index: k, count: 3))
            pieces += try runGrid(plan, trades: trades, quotes: quotes, workers: 1, runs: runs)
        }
        pieces.sort { $0.index < $1.index }
        #expect(pieces.map(\.index) == Array(0..<6))
        #expect(pieces.map(\.metrics) == whole.map(\.metrics))
        #expect(
            gridResultsCSV(rank(pieces, by: .netPnL), spec: spec)
                == gridResultsCSV(rank(whole, by: .netPnL), spec: spec))
    }

    @Test func summariesReadBackToTheSameFiguresAndTheGridTextToTheSameGrid() throws {
        let (trades, quotes) = market()
        let spec = try GridSpec.parse(
            yaml: "rank_by: sharpe\nparameters:\n  sizing.risk_pct: [0.01, 0.02]\n", source: "g.yaml")
        for o in try runGrid(spec, base: try base(), trades: trades, quotes: quotes, workers: 1) {
            #expect(GridSummary(text: o.summary.text) == o.summary)
        }
        var odd = GridSummary(
            try runGrid(spec, base: try base(), trades: trades, quotes: quotes, workers: 1)[0].metrics)
        odd.netPnL = 0.1 + 0.2
        odd.profitFactor = .infinity
        odd.sharpe = nil
        #expect(GridSummary(text: odd.text) == odd)
        #expect(GridSummary(text: "trades=1 net_pnl=x") == nil)
        let text = try GridSpec.parse(
            yaml: "rank_by: sharpe\nparameters:\n  sizing.risk_pct: [0.01, 0.02]\n  instrument.symbol: ['BTC: #1']\n",
            source: "g.yaml")
        let again = try GridSpec.parse(yaml: text.canonicalText, source: "canonical")
        #expect(again.canonicalText == text.canonicalText)
        #expect(again.rankBy == .sharpe && again.combinations.count == 2)
        #expect(again.combinations[1].map(\.value) == [.real(0.02), .text("BTC: #1")])
    }

    @Test func theStreamingGridRunsWhatTheInMemoryGridRuns() throws {
        let (trades, quotes) = market()
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let base = try base()
        var tw = try RecordingWriter(
            path: dir.appendingPathComponent("t.csv.gz").path, header: RecordingWriter.tradesHeader,
            instrument: base.instrument)
        for t in trades { try tw.write(t) }
        try tw.close()
        var qw = try RecordingWriter(
            path: dir.appendingPathComponent("q.csv").path, header: RecordingWriter.quotesHeader,
            instrument: base.instrument)
        for q in quotes { try qw.write(q) }
        try qw.close()
        let makeMarket = {
            RecordedMarket(
                trades: try RecordedSeries.trades(
                    [dir.appendingPathComponent("t.csv.gz").path], instrument: base.instrument),
                quotes: try RecordedSeries.quotes(
                    [dir.appendingPathComponent("q.csv").path], instrument: base.instrument))
        }
        var tradeSeries = try RecordedSeries.trades(
            [dir.appendingPathComponent("t.csv.gz").path], instrument: base.instrument)
        var quoteSeries = try RecordedSeries.quotes(
            [dir.appendingPathComponent("q.csv").path], instrument: base.instrument)
        let read = (try tradeSeries.readAll(), try quoteSeries.readAll())
        let spec = try GridSpec.parse(
            yaml: "parameters:\n  value_area.va_fraction: [0.6, 0.7]\n  sizing.risk_pct: [0.01, 0.015, 0.02]\n",
            source: "g.yaml")
        let plan = try GridPlan(spec, base: base)
        let memory = try runGrid(plan, trades: read.0, quotes: read.1, workers: 2)
        // Chunks far smaller than the data, so that minutes and fills cross chunk boundaries.
        let streamed = try runGridStreaming(plan, makeMarket: makeMarket, workers: 2, chunkSize: 7_777)
        #expect(streamed.outcomes.map(\.index) == memory.map(\.index))
        #expect(streamed.outcomes.map(\.metrics) == memory.map(\.metrics))
        #expect(streamed.data == GridIdentity.dataText(trades: read.0, quotes: read.1))
        #expect(streamed.coverage.trades.count == 1)
        // What the metrics need of every minute spilled to a file in blocks of 50 values: the same metrics, and the
        // file gone (it is unlinked as soon as it is opened).
        let spill = dir.appendingPathComponent("spill")
        try FileManager.default.createDirectory(at: spill, withIntermediateDirectories: true)
        let spilled = try runGridStreaming(
            plan, makeMarket: makeMarket, workers: 2, chunkSize: 7_777, spillDirectory: spill.path, spillBlock: 50)
        #expect(spilled.outcomes.map(\.metrics) == memory.map(\.metrics))
        #expect(try FileManager.default.contentsOfDirectory(atPath: spill.path).isEmpty)
        // One shard's runs only.
        let shard = plan.runs(of: GridShard(index: 1, count: 2))
        let part = try runGridStreaming(plan, makeMarket: makeMarket, workers: 1, runs: shard, chunkSize: 50_000)
        #expect(part.outcomes.map(\.index) == shard)
        #expect(part.outcomes.map(\.metrics) == shard.map { memory[$0].metrics })
    }
}

@Suite(.tags(.unit)) struct DoubleSequencesTests {
    @Test func valuesComeBackInOrderFromMemoryOrFromTheFile() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        for directory in [nil, dir.path] {
            let sequences = try DoubleSequences(count: 5, directory: directory, name: "t", blockSize: 7)
            // Five sequences appended to at once from four threads, each sequence by one thread at a time.
            DispatchQueue.concurrentPerform(iterations: 4) { w in
                for i in stride(from: w, to: 5, by: 4) {
                    for k in 0..<40 { sequences.append((0..<k % 6).map { Double(i * 10_000 + k * 10 + $0) }, to: i) }
                }
            }
            for i in 0..<5 {
                let expected = (0..<40).flatMap { k in (0..<k % 6).map { Double(i * 10_000 + k * 10 + $0) } }
                #expect(try sequences.values(i) == expected, "sequence \(i), \(directory ?? "in memory")")
            }
        }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path).isEmpty)
        let missing = dir.appendingPathComponent("none").path
        #expect(throws: CommandError.self) { try DoubleSequences(count: 1, directory: missing, name: "t") }
    }
}
