public import AgentConfig
import AgentSupport
public import Engine
import Foundation
public import MarketData
import Synchronization

/// What a backtest run produced.
public struct BacktestResult: Sendable {
    public var metrics: BacktestMetrics
    public var roundTrips: [RoundTrip]
    public var fills: [Fill]
    public var signals: [SignalRecord]
    public var equity: [EquityRow]
    public var alerts: [EngineAlert]
    public var features: [MinuteFeatures]
    /// Every minute's volume profile, when the run kept them (`keepProfiles`).
    public var profiles: ProfileHistory? = nil
}

/// Runs the Engine over events already in memory.
public func runBacktest(
    trades: [TradeEvent],
    quotes: [QuoteEvent],
    features: FeatureConfig,
    strategy: StrategyConfig,
    instrument: Instrument,
    gaps: [RecordedGap] = [],
    keepFeatures: Bool = true,
    keepProfiles: Bool = false,
    progress: ((Double) -> Void)? = nil
) -> BacktestResult {
    var bt = Backtester(features: features, strategy: strategy, instrument: instrument)
    bt.keepFeatures = keepFeatures
    bt.keepProfiles = keepProfiles
    for g in gaps { bt.markMissing(from: g.from, to: g.to) }
    let total = trades.count + quotes.count
    var done = 0
    mergeEvents(trades: trades, quotes: quotes) { event in
        bt.process(event)
        done += 1
        if let progress, done & 0x3FFFF == 0 { progress(Double(done) / Double(total)) }
    }
    bt.finish()
    progress?(1)
    let metrics = BacktestMetrics(trader: bt.trader, equity: bt.equity, fills: bt.fills, minutes: bt.features)
    return BacktestResult(
        metrics: metrics, roundTrips: bt.trader.roundTrips, fills: bt.fills, signals: bt.signals, equity: bt.equity,
        alerts: bt.trader.alerts, features: bt.features, profiles: bt.keepProfiles ? bt.profiles : nil
    )
}

/// Runs the Engine over recorded files read as a stream: one file of each kind in memory at a time, whatever the
/// number of days (the outputs, one row per minute and per trade, are what grows).
public func runBacktest(
    market: inout RecordedMarket,
    features: FeatureConfig,
    strategy: StrategyConfig,
    instrument: Instrument,
    keepFeatures: Bool = true,
    keepProfiles: Bool = false,
    progress: ((Double) -> Void)? = nil
) throws -> BacktestResult {
    let bt = try runBacktestInBatches(
        market: &market, features: features, strategy: strategy, instrument: instrument, keepFeatures: keepFeatures,
        keepProfiles: keepProfiles, progress: progress, each: nil)
    let metrics = BacktestMetrics(trader: bt.trader, equity: bt.equity, fills: bt.fills, minutes: bt.features)
    return BacktestResult(
        metrics: metrics, roundTrips: bt.trader.roundTrips, fills: bt.fills, signals: bt.signals, equity: bt.equity,
        alerts: bt.trader.alerts, features: bt.features, profiles: bt.keepProfiles ? bt.profiles : nil
    )
}

/// Runs the bar-only backtest over stored minutes.
public func runBarBacktest(_ minutes: [MinuteFeatures], strategy: StrategyConfig, instrument: Instrument)
    -> BacktestResult
{
    var bt = BarBacktester(strategy: strategy, instrument: instrument)
    for f in minutes { bt.process(f) }
    bt.finish()
    let metrics = BacktestMetrics(trader: bt.trader, equity: bt.equity, fills: bt.fills, minutes: minutes)
    return BacktestResult(
        metrics: metrics, roundTrips: bt.trader.roundTrips, fills: bt.fills, signals: bt.signals, equity: bt.equity,
        alerts: bt.trader.alerts, features: bt.features
    )
}

/// Writes trades.csv, fills.csv, signals.csv, equity.csv, metrics.json and report.html into `directory`, and
/// inputs.csv (the files read, in order, with their spans, sizes and SHA-256) when `coverage` is given.
/// `parameters` (`ConfigLoader.researchParameters`) are listed in the report.
public func writeBacktest(
    _ r: BacktestResult, to directory: String, instrument: Instrument, initialEquity: Double, title: String,
    coverage: Coverage? = nil, parameters: [ResearchParameter] = []
) throws {
    do {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    } catch {
        throw CommandError(description: "\(directory): cannot create the directory: \(error.localizedDescription)")
    }
    try writeOutputs(
        r,
        minutes: MinutesInMemory(features: r.features, equity: r.equity, profiles: r.profiles, instrument: instrument),
        csv: [
            ("signals.csv", BacktestOutputs.signalsCSV(r.signals, instrument)),
            ("equity.csv", BacktestOutputs.equityCSV(r.equity, instrument, initial: initialEquity)),
        ], to: directory, instrument: instrument, title: title, coverage: coverage, parameters: parameters)
}

/// The files every backtest writes: trades.csv, fills.csv, metrics.json, inputs.csv with `coverage`, the files in
/// `csv`, and report.html from `minutes`, written in parts (a month of minutes is tens of MB of page).
func writeOutputs(
    _ r: BacktestResult, minutes: some ReportMinutes, csv: [(String, String)], to directory: String,
    instrument: Instrument, title: String, coverage: Coverage?, parameters: [ResearchParameter]
) throws {
    var files: [(String, String)] =
        [
            ("trades.csv", BacktestOutputs.tradesCSV(r.roundTrips, instrument)),
            ("fills.csv", BacktestOutputs.fillsCSV(r.fills, instrument)),
            ("metrics.json", BacktestOutputs.metricsJSON(r.metrics, alerts: r.alerts)),
        ] + csv
    if let coverage { files.append(("inputs.csv", try InputIdentity.csv(coverage))) }
    for (name, text) in files {
        try writeAtomically(Array(text.utf8), to: "\(directory)/\(name)")
    }
    let report = try AtomicFile(path: "\(directory)/report.html")
    try ReportHTML.write(
        minutes: minutes, trips: r.roundTrips, metrics: r.metrics, instrument: instrument, title: title,
        extras: .init(profiles: r.profiles, fills: r.fills, parameters: parameters)
    ) { try report.write($0) }
    try report.commit()
}

/// A one-line progress bar on standard error, drawn only when standard error is a terminal.
package final class ProgressBar: Sendable {
    private let label: String
    private let enabled = isatty(2) == 1
    private let lastDrawn = Mutex(-1)

    package init(_ label: String) { self.label = label }

    package func update(_ fraction: Double) {
        guard enabled else { return }
        let percent = Int(fraction * 100)
        let changed = lastDrawn.withLock { drawn -> Bool in
            defer { drawn = percent }
            return drawn != percent
        }
        guard changed else { return }
        let filled = percent * 30 / 100
        let bar = String(repeating: "#", count: filled) + String(repeating: ".", count: 30 - filled)
        FileHandle.standardError.write(Data("\r\(label) [\(bar)] \(percent) %".utf8))
        if percent >= 100 { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

extension BacktestResult {
    /// The summary printed after a run.
    package func render(directory: String) -> String {
        let m = metrics
        let o = m.overall
        var lines = [
            "backtest: \(grouped(m.minutes)) minutes, \(o.trades) round trips, \(m.fills) fills; outputs in \(directory)/",
            String(
                format: "equity %.2f -> %.2f, net P&L %.2f (gross %.2f, fees %.2f, funding %.2f)", m.initialEquity,
                m.finalEquity, o.netPnL, o.grossPnL, m.fees, m.funding),
            String(
                format: "win rate %@, profit factor %@, max drawdown %.2f (%.2f %%), Sharpe %@",
                o.winRate.map { String(format: "%.1f %%", $0 * 100) } ?? "-",
                o.profitFactor.map { String(format: "%.2f", $0) } ?? "-", m.maxDrawdown, m.maxDrawdownPct * 100,
                m.sharpe.map { String(format: "%.2f", $0) } ?? "-"),
        ]
        for s in Setup.allCases {
            let st = m.bySetup[s]!
            lines.append(String(format: "  %-10@ %3d trades, net %.2f", s.rawValue, st.trades, st.netPnL))
        }
        let caps = alerts.filter { $0.kind == .leverageCapHit }.count
        let kills = alerts.filter { $0.kind == .killSwitch }.count
        if caps > 0 { lines.append("alerts: leverage cap hit \(caps) times") }
        if kills > 0 { lines.append("alerts: kill switch fired \(kills) times") }
        return lines.joined(separator: "\n")
    }
}
