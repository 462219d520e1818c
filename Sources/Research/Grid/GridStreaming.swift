import AgentConfig
import AgentSupport
import Engine
import Foundation
public import MarketData

/// A grid over recorded files without holding their events: the files are read twice, in chunks, and every chunk
/// is handed to all the workers at once. The first pass computes the feature sets the runs need (a pipeline per
/// set), the second advances every run's backtester (each worker owns a fixed share of them). Memory: one chunk,
/// one file of each kind, and each run's own state; time: two reads of the data, so slower than the in-memory grid
/// when the events fit. Interrupting it finishes no run (every run ends with the data).
///
/// `makeMarket` opens the files afresh for each pass. Returns the outcomes (by run index) and what identifies the
/// data (as `GridIdentity.dataText` over the same events would) and the files' coverage.
public func runGridStreaming(
    _ plan: GridPlan,
    makeMarket: () throws -> RecordedMarket,
    workers: Int,
    runs: [Int]? = nil,
    chunkSize: Int = 1 << 20,
    onFinish: @escaping @Sendable (GridOutcome) -> Void = { _ in },
    progress: @escaping @Sendable (Int, Int) -> Void = { _, _ in },
    shouldStop: @escaping @Sendable () -> Bool = { false }
) throws -> (outcomes: [GridOutcome], data: String, coverage: Coverage) {
    let selected = runs ?? Array(0..<plan.runCount)
    let (sets, slot) = plan.featureSets(of: selected)
    let workerCount = max(1, workers)
    let setCount = sets.count

    // Pass 1: the feature sets, and the data's identity.
    let pipelines = Shared(sets.map { FeaturePipeline(config: plan.featureKeys[$0].features) })
    let rows = Shared(Array(repeating: [MinuteFeatures](), count: sets.count))
    var hash = DataHasher()
    var market = try makeMarket()
    let gaps = market.gaps
    for i in 0..<sets.count {
        pipelines.update(i) { p in for g in gaps { p.markMissing(from: g.from, to: g.to) } }
    }
    var chunk: [MarketEvent] = []
    chunk.reserveCapacity(chunkSize)
    func fill() throws -> Bool {
        chunk.removeAll(keepingCapacity: true)
        while chunk.count < chunkSize, let e = try market.next() { chunk.append(e) }
        return !chunk.isEmpty
    }
    while try fill() {
        if shouldStop() { return ([], hash.text, market.coverage) }
        for e in chunk { hash.add(e) }
        let events = chunk
        DispatchQueue.concurrentPerform(iterations: min(workerCount, max(1, setCount))) { w in
            for i in stride(from: w, to: setCount, by: workerCount) {
                pipelines.update(i) { p in
                    for e in events { p.process(e) }
                    let closed = p.takeClosed()
                    if !closed.isEmpty { rows.update(i) { $0.append(contentsOf: closed) } }
                }
            }
        }
    }
    for i in 0..<sets.count {
        pipelines.update(i) { p in
            p.finish()
            let closed = p.takeClosed()
            rows.update(i) { $0.append(contentsOf: closed) }
        }
    }

    let coverage = market.coverage

    // Pass 2: every run, advanced chunk by chunk.
    let testers = Shared(
        selected.map { run -> Backtester in
            let config = plan.configs[run]
            var bt = Backtester(
                precomputed: rows.value(slot[plan.featureSetOfRun[run]]!), strategy: config.strategy,
                instrument: config.instrument)
            bt.keepFeatures = false
            return bt
        })
    market = try makeMarket()
    let runCount = selected.count
    // Of each run's per-minute records only the equity stays (its metrics' drawdown and Sharpe), 8 bytes a minute.
    let equity = Shared(Array(repeating: [Double](), count: runCount))
    while try fill() {
        if shouldStop() { return ([], hash.text, coverage) }
        let events = chunk
        DispatchQueue.concurrentPerform(iterations: min(workerCount, runCount)) { w in
            for n in stride(from: w, to: runCount, by: workerCount) {
                testers.update(n) { bt in
                    for e in events { bt.process(e) }
                    let records = bt.takeRecords()
                    equity.update(n) { $0 += records.equity.map(\.equity) }
                }
            }
        }
    }
    var outcomes: [GridOutcome] = []
    for (n, run) in selected.enumerated() {
        var bt = testers.value(n)
        bt.finish()
        let minutes = rows.value(slot[plan.featureSetOfRun[run]]!)
        let trader = bt.trader
        let metrics = BacktestMetrics(
            initialEquity: trader.config.initialEquity, finalEquity: trader.equity,
            equityValues: equity.value(n) + bt.takeRecords().equity.map(\.equity), trips: trader.roundTrips,
            fills: bt.fills, ambiguous: minutes.filter { $0.volume > 0 }.map(\.ambiguousFraction),
            fees: trader.feesPaid, funding: trader.fundingPaid, instrument: trader.instrument,
            minuteCount: minutes.count)
        let outcome = GridOutcome(index: run, parameters: plan.combinations[run], metrics: metrics)
        onFinish(outcome)
        outcomes.append(outcome)
        progress(outcomes.count, selected.count)
    }
    return (outcomes, hash.text, coverage)
}

/// Values that worker threads update in place, each element by one worker at a time (the chunk's workers own
/// disjoint indices, and `concurrentPerform` returns only when all are done).
private final class Shared<T>: @unchecked Sendable {
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
