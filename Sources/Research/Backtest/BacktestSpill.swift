public import AgentConfig
import AgentSupport
import Charts
public import Engine
import Foundation
public import MarketData

/// A backtest's per-minute records written out as the run goes (docs/FEATURES.md, "Many files"): signals.csv and
/// equity.csv rows to their files, the report's bars, equity samples and profile frames as JSON parts in hidden
/// files beside them, and for the metrics each minute's equity and ambiguous fraction, in blocks to a hidden file
/// (`DoubleSequences`). Memory holds the trips and the fills, not the minutes: a backtest of months peaks where one
/// of a week does. The same bytes as the in-memory outputs (`writeBacktest`). A walk-forward's stitched test spans
/// go through one too, without signals.csv.
public final class BacktestSpill: ReportMinutes {
    private let instrument: Instrument
    private let signals: AtomicFile?
    private let equityFile: AtomicFile
    private let bars: JSONPart
    private let points: JSONPart
    private let frames: JSONPart
    private let json = ReportJSON()
    private var peak: Double
    /// Each equity row's equity, in order (the metrics' drawdown and Sharpe), then the ambiguous fraction of each
    /// minute that traded (the metrics' distribution).
    private let metricsValues: DoubleSequences
    private(set) var count = 0
    private(set) var first: Millis?
    private(set) var last: Millis?
    let hasProfiles: Bool
    /// Every minute's features, when asked for at the start (`backtest --warm-from-klines` reads them all).
    public private(set) var keptFeatures: [MinuteFeatures]?

    /// Opens the files in `directory` (created when missing); signals.csv only with `signals`.
    public init(
        directory: String, instrument: Instrument, initialEquity: Double, profiles: Bool, keepFeatures: Bool,
        signals: Bool = true
    ) throws {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw CommandError(description: "\(directory): cannot create the directory: \(error.localizedDescription)")
        }
        self.instrument = instrument
        peak = initialEquity
        hasProfiles = profiles
        keptFeatures = keepFeatures ? [] : nil
        self.signals = signals ? try AtomicFile(path: "\(directory)/signals.csv") : nil
        equityFile = try AtomicFile(path: "\(directory)/equity.csv")
        metricsValues = try DoubleSequences(count: 2, directory: directory, name: "metrics")
        bars = try JSONPart(directory: directory, name: "report-bars")
        points = try JSONPart(directory: directory, name: "report-equity")
        frames = try JSONPart(directory: directory, name: "report-profiles")
        try self.signals?.write(BacktestOutputs.signalsHeader)
        try equityFile.write(BacktestOutputs.equityHeader)
    }

    /// Writes out one batch of records (in run order).
    func add(_ r: BacktestRecords) throws {
        try signals?.write(BacktestOutputs.signalRows(r.signals, instrument))
        try equityFile.write(BacktestOutputs.equityRows(r.equity, instrument, peak: &peak))
        try bars.append(try json.elements(r.features.map { ChartData.Bar($0, instrument) }))
        try points.append(try json.elements(r.equity.map { ChartData.point(ts: $0.ts, value: $0.equity) }))
        if hasProfiles { try frames.append(try json.elements(r.profileFrames.map(ReportMinuteData.frame))) }
        metricsValues.append(r.equity.lazy.map(\.equity), to: 0)
        metricsValues.append(r.features.lazy.filter { $0.volume > 0 }.map(\.ambiguousFraction), to: 1)
        try metricsValues.check()
        count += r.features.count
        if first == nil { first = r.features.first?.ts }
        if let l = r.features.last?.ts { last = l }
        keptFeatures? += r.features
    }

    /// Every equity row's equity, in order.
    func equityValues() throws -> [Double] { try metricsValues.values(0) }

    /// The ambiguous fraction of every minute that traded, in order.
    func ambiguous() throws -> [Double] { try metricsValues.values(1) }

    /// Puts signals.csv and equity.csv in place.
    func commit() throws {
        try signals?.commit()
        try equityFile.commit()
    }

    /// Removes the report's parts (once report.html is written; a failed run's go when the spill is let go of).
    func removeParts() {
        bars.remove()
        points.remove()
        frames.remove()
    }

    func writeBars(_ out: (String) throws -> Void) throws { try bars.write(out) }
    func writeEquity(_ out: (String) throws -> Void) throws { try points.write(out) }
    func writeProfileFrames(_ out: (String) throws -> Void) throws { try frames.write(out) }
}

/// A JSON array's elements written to a hidden file as they come (comma-joined encodings), read back once into the
/// report; removed when let go of.
final class JSONPart {
    private let path: String
    private let file: UnsafeMutablePointer<FILE>
    private var empty = true
    private var removed = false

    init(directory: String, name: String) throws {
        path = "\(directory)/.\(name).part-\(ProcessInfo.processInfo.processIdentifier)"
        guard let file = fopen(path, "w+b") else {
            throw CommandError(description: "\(path): cannot be written: \(String(cString: strerror(errno)))")
        }
        self.file = file
    }

    deinit { remove() }

    func remove() {
        guard !removed else { return }
        removed = true
        fclose(file)
        unlink(path)
    }

    /// Adds elements given as their comma-joined encodings (`ReportJSON.elements`).
    func append(_ elements: String) throws {
        guard !elements.isEmpty else { return }
        let text = Array(((empty ? "" : ",") + elements).utf8)
        empty = false
        guard text.withUnsafeBytes({ fwrite($0.baseAddress, 1, $0.count, file) }) == text.count else {
            throw CommandError(description: "\(path): cannot be written: \(String(cString: strerror(errno)))")
        }
    }

    /// `[` the elements `]`, in pieces of about a megabyte (never cut inside a character).
    func write(_ out: (String) throws -> Void) throws {
        try out("[")
        guard fflush(file) == 0, fseek(file, 0, SEEK_SET) == 0 else {
            throw CommandError(description: "\(path): cannot be read back: \(String(cString: strerror(errno)))")
        }
        var buffer = [UInt8](repeating: 0, count: 1 << 20)
        var carried = 0
        while true {
            let n = buffer.withUnsafeMutableBytes { fread($0.baseAddress! + carried, 1, $0.count - carried, file) }
            let end = carried + n
            guard end > 0 else { break }
            // Up to the last ASCII byte or start of a character; the rest goes with the next piece.
            var cut = end
            if n > 0 {
                while cut > 0 && buffer[cut - 1] >= 0x80 && buffer[cut - 1] < 0xC0 { cut -= 1 }
                if cut > 0 && buffer[cut - 1] >= 0xC0 { cut -= 1 }
                if cut == 0 { cut = end }
            }
            try out(String(decoding: buffer[0..<cut], as: UTF8.self))
            carried = end - cut
            if carried > 0 { buffer.replaceSubrange(0..<carried, with: buffer[cut..<end]) }
            if n == 0 { break }
        }
        if ferror(file) != 0 {
            throw CommandError(description: "\(path): cannot be read back: \(String(cString: strerror(errno)))")
        }
        try out("]")
    }
}

/// Runs the Engine over recorded files read as a stream and writes its per-minute records out as it goes
/// (`BacktestSpill`, opened on `directory`): memory stays flat over any number of days. The result holds the trips,
/// fills and metrics; its features, signals and equity are empty (they are on disk). `writeSpilledBacktest` finishes
/// the outputs.
public func runSpilledBacktest(
    market: inout RecordedMarket, features: FeatureConfig, strategy: StrategyConfig, instrument: Instrument,
    spill: BacktestSpill, progress: ((Double) -> Void)? = nil
) throws -> BacktestResult {
    let bt = try runBacktestInBatches(
        market: &market, features: features, strategy: strategy, instrument: instrument,
        keepProfiles: spill.hasProfiles, progress: progress, each: spill.add)
    let trader = bt.trader
    let metrics = BacktestMetrics(
        initialEquity: trader.config.initialEquity, finalEquity: trader.equity,
        equityValues: try spill.equityValues(), trips: trader.roundTrips, fills: bt.fills,
        ambiguous: try spill.ambiguous(), fees: trader.feesPaid,
        funding: trader.fundingPaid, instrument: trader.instrument, minuteCount: spill.count)
    return BacktestResult(
        metrics: metrics, roundTrips: trader.roundTrips, fills: bt.fills, signals: [], equity: [],
        alerts: trader.alerts, features: [])
}

/// Runs the Engine over recorded files read as a stream, handing its per-minute records (features while
/// `keepFeatures`, signals, equity rows, profile frames while `keepProfiles`) to `each` every 262 144 events and at
/// the end; with `each` nil they stay in the backtester. Returns the finished backtester (its trader, fills and
/// trips).
func runBacktestInBatches(
    market: inout RecordedMarket, features: FeatureConfig, strategy: StrategyConfig, instrument: Instrument,
    keepFeatures: Bool = true, keepProfiles: Bool, progress: ((Double) -> Void)? = nil,
    each: ((BacktestRecords) throws -> Void)?
) throws -> Backtester {
    var bt = Backtester(features: features, strategy: strategy, instrument: instrument)
    bt.keepFeatures = keepFeatures
    bt.keepProfiles = keepProfiles
    for g in market.gaps { bt.markMissing(from: g.from, to: g.to) }
    var done = 0
    while let event = try market.next() {
        bt.process(event)
        done += 1
        if done & 0x3FFFF == 0 {
            try each?(bt.takeRecords())
            progress?(market.fractionRead)
        }
    }
    bt.finish()
    try each?(bt.takeRecords())
    progress?(1)
    return bt
}

/// The outputs of `runSpilledBacktest` in `directory`: signals.csv and equity.csv put in place, then the rest as
/// `writeBacktest` writes them, report.html from the parts written during the run.
public func writeSpilledBacktest(
    _ r: BacktestResult, spill: BacktestSpill, to directory: String, instrument: Instrument, title: String,
    coverage: Coverage? = nil, parameters: [ResearchParameter] = []
) throws {
    try spill.commit()
    try writeOutputs(
        r, minutes: spill, csv: [], to: directory, instrument: instrument, title: title, coverage: coverage,
        parameters: parameters)
    spill.removeParts()
}
