public import AgentConfig
import AgentSupport
import Charts
public import Engine
import Foundation
public import MarketData

/// What a features run did, for the summary and for tests.
public struct FeatureRunSummary: Sendable {
    public var rows = 0
    public var firstMinute: Millis?
    public var lastMinute: Millis?
    public var trades: LoadReport
    public var quotes: LoadReport?
    public var lateEvents = 0
    public var orderFlow = OrderFlowTotals()
    public var volume: Lots = 0
    public var validMinutes = 0
    public var last: MinuteFeatures?
    public var seconds = 0.0
}

/// Reads trades (and quotes), runs the feature pipeline and writes the features CSV of docs/SPEC.md §7.
///
/// The output is written to a temporary file beside `outPath` and renamed into place at the end, so a failed run
/// never leaves a half-written file where a good one stood.
public func runFeatures(
    tradesPath: String,
    quotesPath: String?,
    outPath: String,
    config: ResolvedConfig,
    options: ReadOptions,
    orderFlowPath: String? = nil
) throws -> FeatureRunSummary {
    let started = Date()
    let instrument = config.instrument
    let features = config.features
    let (trades, tradesReport) = try readTrades(path: tradesPath, instrument: instrument, options: options)
    guard !trades.isEmpty else { throw CommandError(description: "\(tradesPath): no trades to build bars from") }
    if features.sideSource == .exchange && !tradesReport.hasSide {
        throw CommandError(
            description: "\(tradesPath): order_flow.side_source is 'exchange' but the file has no side column "
                + "(set order_flow.side_source=auto or inferred)"
        )
    }
    var quotes: [QuoteEvent] = []
    var quotesReport: LoadReport?
    if let quotesPath {
        let q = try readQuotes(path: quotesPath, instrument: instrument, options: options)
        quotes = q.quotes
        quotesReport = q.report
    }

    var summary = FeatureRunSummary(trades: tradesReport, quotes: quotesReport)
    var out: [UInt8] = []
    out.reserveCapacity(256 * (Int((trades.last!.ts - trades.first!.ts) / millisPerMinute) + 2))
    out.append(contentsOf: FeaturesCSV.header.utf8)
    out.append(0x0A)
    var flowOut: [UInt8] = []
    if orderFlowPath != nil {
        flowOut.append(contentsOf: OrderFlowCSV.header.utf8)
        flowOut.append(0x0A)
    }
    var pipeline = FeaturePipeline(config: features)
    func drain() {
        for f in pipeline.takeClosed() {
            out.append(contentsOf: FeaturesCSV.row(f, instrument: instrument).utf8)
            out.append(0x0A)
            if orderFlowPath != nil {
                flowOut.append(contentsOf: OrderFlowCSV.row(f, instrument: instrument).utf8)
                flowOut.append(0x0A)
            }
            summary.rows += 1
            if summary.firstMinute == nil { summary.firstMinute = f.ts }
            summary.lastMinute = f.ts
            summary.volume += f.volume
            if f.valueAreaValid { summary.validMinutes += 1 }
            summary.last = f
        }
    }
    var sinceDrain = 0
    mergeEvents(trades: trades, quotes: quotes) { event in
        pipeline.process(event)
        sinceDrain += 1
        if sinceDrain == 65_536 {
            sinceDrain = 0
            drain()
        }
    }
    pipeline.finish()
    drain()
    summary.lateEvents = pipeline.lateEvents
    summary.orderFlow = pipeline.runOrderFlow
    try writeAtomically(out, to: outPath)
    if let orderFlowPath { try writeAtomically(flowOut, to: orderFlowPath) }
    summary.seconds = Date().timeIntervalSince(started)
    return summary
}

extension FeatureRunSummary {
    /// The human summary printed after a run.
    public func render(outPath: String, instrument: Instrument) -> String {
        var lines: [String] = []
        let span = firstMinute.map { "\(isoTime($0)) .. \(isoTime(lastMinute!))" } ?? "-"
        lines.append("features: \(grouped(rows)) minutes (\(span)) written to \(outPath)")
        func describe(_ label: String, _ r: LoadReport) -> String {
            var s = "\(label): \(r.file): \(grouped(r.rows)) rows, timestamps in \(r.timestampUnit?.description ?? "-")"
            if r.reversed {
                s += ", newest first: read in reverse"
            } else if r.reordered {
                s += ", not in time order: sorted by time (stable)"
            }
            if r.skippedRows > 0 { s += ", \(grouped(r.skippedRows)) bad rows skipped" }
            return s
        }
        lines.append(describe("trades", trades))
        for example in trades.skippedExamples { lines.append("  skipped \(example)") }
        if let quotes {
            lines.append(describe("quotes", quotes))
            for example in quotes.skippedExamples { lines.append("  skipped \(example)") }
        } else {
            lines.append("quotes: none given: every print is ambiguous and the quote columns are empty")
        }
        let ambiguous = volume == 0 ? 0 : Double(orderFlow.ambiguousVolume) / Double(volume)
        let stale = orderFlow.prints == 0 ? 0 : Double(orderFlow.staleAlignedPrints) / Double(orderFlow.prints)
        var flow =
            "order flow: \(grouped(orderFlow.prints)) prints, ambiguous \(percent(ambiguous)) of volume, "
            + "stale-aligned \(percent(stale)) of prints"
        if let accuracy = orderFlow.inferenceAccuracy {
            flow += ", inferred side matches the exchange's on \(percent(accuracy)) of volume"
        }
        lines.append(flow)
        var va = "value area: valid in \(grouped(validMinutes)) of \(grouped(rows)) minutes"
        if let last, let area = last.valueArea {
            va +=
                "; last: POC \(formatNumber(instrument.price(area.pocTwiceTicks, over: 2))) "
                + "VAH \(formatNumber(instrument.price(area.vahTicks))) VAL \(formatNumber(instrument.price(area.valTicks))) "
                + "(bin \(formatNumber(instrument.price(area.binTicks))))"
        }
        lines.append(va)
        if lateEvents > 0 { lines.append("late events dropped: \(grouped(lateEvents))") }
        lines.append(String(format: "time: %.2f s", seconds))
        return lines.joined(separator: "\n")
    }
}
