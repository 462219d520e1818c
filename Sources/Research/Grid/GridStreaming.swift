import AgentConfig
import AgentSupport
import Engine
import Foundation
public import MarketData

/// A grid over recorded files without holding their events: the files are read once, in chunks, and every chunk is
/// handed to all the workers at once. For each chunk, first each feature set's pipeline takes it (the sets the runs
/// need, one pipeline each) and hands the minutes it closed to the runs of that set; then every run's backtester
/// takes it (each worker owns a fixed share of the sets, then of the runs). A run replays its minutes as the
/// in-memory grid does (`Backtester.supply`): a minute closes at the first event at or after its decision time, and
/// the pipeline has closed it by then. Memory: one chunk, the readers' queues, each set's pipeline and each run's
/// state; not the features. What the metrics need of every minute (each run's equity for its drawdown and Sharpe,
/// each set's ambiguous fractions for their distribution; 8 bytes a minute each) goes in blocks to a hidden file in
/// `spillDirectory` (unlinked at once; nil keeps them in memory), `spillBlock` values at a time, so that memory
/// does not grow with the days.
/// Interrupting it finishes no run (every run ends with the data).
///
/// `makeMarket` opens the files. Returns the outcomes (by run index) and what identifies the data (as
/// `GridIdentity.dataText` over the same events would) and the files' coverage.
public func runGridStreaming(
    _ plan: GridPlan,
    makeMarket: () throws -> RecordedMarket,
    workers: Int,
    runs: [Int]? = nil,
    chunkSize: Int = 1 << 18,
    spillDirectory: String? = nil,
    spillBlock: Int = 8_192,
    onFinish: @escaping @Sendable (GridOutcome) -> Void = { _ in },
    progress: @escaping @Sendable (Int, Int) -> Void = { _, _ in },
    shouldStop: @escaping @Sendable () -> Bool = { false }
) throws -> (outcomes: [GridOutcome], data: String, coverage: Coverage) {
    let selected = runs ?? Array(0..<plan.runCount)
    let (sets, slot) = plan.featureSets(of: selected)
    let workerCount = max(1, workers)
    let setCount = sets.count
    let runCount = selected.count
    let setOfRun = selected.map { slot[plan.featureSetOfRun[$0]]! }

    let pipelines = Shared(sets.map { FeaturePipeline(config: plan.featureKeys[$0].features) })
    // Each set's minutes closed by the chunk at hand, then per set what its runs' metrics need of every minute.
    let closed = Shared(Array(repeating: [MinuteFeatures](), count: setCount))
    let ambiguous = try DoubleSequences(
        count: setCount, directory: spillDirectory, name: "grid-ambiguous", blockSize: spillBlock)
    let minuteCount = Shared(Array(repeating: 0, count: setCount))
    let testers = Shared(
        selected.map { run -> Backtester in
            let config = plan.configs[run]
            var bt = Backtester(precomputed: [], strategy: config.strategy, instrument: config.instrument)
            bt.keepFeatures = false
            return bt
        })
    // Of each run's per-minute records only the equity stays (its metrics' drawdown and Sharpe).
    let equity = try DoubleSequences(
        count: runCount, directory: spillDirectory, name: "grid-equity", blockSize: spillBlock)
    var hash = DataHasher()
    var market = try makeMarket()
    for g in market.gaps {
        for i in 0..<setCount { pipelines.update(i) { $0.markMissing(from: g.from, to: g.to) } }
    }

    /// Hands each set's newly closed minutes to its runs (after keeping what the metrics need of them), then lets
    /// every run take `events` (none at the end of the data: the runs finish instead).
    func step(_ events: [MarketEvent]?) {
        DispatchQueue.concurrentPerform(iterations: min(workerCount, max(1, setCount))) { w in
            for i in stride(from: w, to: setCount, by: workerCount) {
                pipelines.update(i) { p in
                    if let events { for e in events { p.process(e) } } else { p.finish() }
                    let minutes = p.takeClosed()
                    ambiguous.append(minutes.lazy.filter { $0.volume > 0 }.map(\.ambiguousFraction), to: i)
                    minuteCount.update(i) { $0 += minutes.count }
                    closed.update(i) { $0 = minutes }
                }
            }
        }
        DispatchQueue.concurrentPerform(iterations: min(workerCount, max(1, runCount))) { w in
            for n in stride(from: w, to: runCount, by: workerCount) {
                testers.update(n) { bt in
                    bt.supply(closed.value(setOfRun[n]))
                    if let events { for e in events { bt.process(e) } } else { bt.finish() }
                    let records = bt.takeRecords()
                    equity.append(records.equity.lazy.map(\.equity), to: n)
                }
            }
        }
    }

    var chunk: [MarketEvent] = []
    chunk.reserveCapacity(chunkSize)
    while true {
        chunk.removeAll(keepingCapacity: true)
        while chunk.count < chunkSize, let e = try market.next() { chunk.append(e) }
        if chunk.isEmpty { break }
        if shouldStop() { return ([], hash.text, market.coverage) }
        for e in chunk { hash.add(e) }
        step(chunk)
        try equity.check()
        try ambiguous.check()
    }
    step(nil)

    var outcomes: [GridOutcome] = []
    var lastSet = -1
    var setAmbiguous: [Double] = []  // the set of the run before's, read once for its runs in a row
    for (n, run) in selected.enumerated() {
        if setOfRun[n] != lastSet {
            lastSet = setOfRun[n]
            setAmbiguous = try ambiguous.values(lastSet)
        }
        let trader = testers.value(n).trader
        let metrics = BacktestMetrics(
            initialEquity: trader.config.initialEquity, finalEquity: trader.equity,
            equityValues: try equity.values(n), trips: trader.roundTrips, fills: testers.value(n).fills,
            ambiguous: setAmbiguous,
            fees: trader.feesPaid, funding: trader.fundingPaid, instrument: trader.instrument,
            minuteCount: minuteCount.value(setOfRun[n]))
        let outcome = GridOutcome(index: run, parameters: plan.combinations[run], metrics: metrics)
        onFinish(outcome)
        outcomes.append(outcome)
        progress(outcomes.count, selected.count)
    }
    return (outcomes, hash.text, market.coverage)
}

/// Values that worker threads update in place, each element by one worker at a time (the chunk's workers own
/// disjoint indices, and `concurrentPerform` returns only when all are done).
final class Shared<T>: @unchecked Sendable {
    // Safety: every index is written by one worker within a chunk; reads happen between chunks.
    private let storage: UnsafeMutableBufferPointer<T>

    init(_ values: [T]) {
        storage = .allocate(capacity: values.count)
        _ = storage.initialize(from: values)
    }

    deinit {
        storage.deinitialize()
        storage.deallocate()
    }

    func update(_ i: Int, _ body: (inout T) -> Void) { body(&storage[i]) }
    func value(_ i: Int) -> T { storage[i] }
}
