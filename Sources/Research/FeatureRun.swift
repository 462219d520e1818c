public import AgentConfig
import AgentSupport
public import Engine
import Foundation
public import MarketData

/// What a features run did, for the summary and for tests.
public struct FeatureRunSummary: Sendable {
    public var rows = 0
    public var firstMinute: Millis?
    public var lastMinute: Millis?
    /// One report per file read, in reading order.
    public var trades: [LoadReport]
    public var quotes: [LoadReport]?
    /// Days of the span without a file (daily dumps).
    public var missingTradeDays: [String] = []
    public var missingQuoteDays: [String] = []
    /// The gaps `gaps.csv` lists in the range; nil when the inputs have none beside them.
    public var gaps: [RecordedGap]?
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
    var market = RecordedMarket(
        trades: try RecordedSeries.trades([tradesPath], instrument: config.instrument, options: options),
        quotes: try quotesPath.map { try RecordedSeries.quotes([$0], instrument: config.instrument, options: options) })
    return try runFeatures(market: &market, outPath: outPath, config: config, orderFlowPath: orderFlowPath)
}

/// Runs the feature pipeline over recorded files read as a stream (one file of each kind in memory at a time) and
/// writes the features CSV; see `runFeatures(tradesPath:quotesPath:outPath:config:options:orderFlowPath:)`.
public func runFeatures(
    market: inout RecordedMarket,
    outPath: String,
    config: ResolvedConfig,
    orderFlowPath: String? = nil
) throws -> FeatureRunSummary {
    let started = Date()
    let instrument = config.instrument
    let features = config.features
    var summary = FeatureRunSummary(trades: [], quotes: market.quotes == nil ? nil : [])
    // Rows go to the files as each batch of minutes closes (memory stays flat over any number of days); the files
    // are put in place at the end, and a failed run leaves what stood there before.
    let file = try AtomicFile(path: outPath)
    let flowFile = try orderFlowPath.map { try AtomicFile(path: $0) }
    var out: [UInt8] = []
    out.reserveCapacity(1 << 20)
    out.append(contentsOf: FeaturesCSV.header(method: features.orderFlowMethod).utf8)
    out.append(0x0A)
    var flowOut: [UInt8] = []
    if orderFlowPath != nil {
        flowOut.append(contentsOf: OrderFlowCSV.header.utf8)
        flowOut.append(0x0A)
    }
    var pipeline = FeaturePipeline(config: features)
    for g in market.gaps { pipeline.markMissing(from: g.from, to: g.to) }
    func drain() throws {
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
        try file.write(out)
        out.removeAll(keepingCapacity: true)
        if let flowFile {
            try flowFile.write(flowOut)
            flowOut.removeAll(keepingCapacity: true)
        }
    }
    var sinceDrain = 0
    var checkedSide = 0
    var tradesSeen = 0
    while let event = try market.next() {
        if case .trade = event { tradesSeen += 1 }
        // The side check as each trades file arrives: before its first event counts.
        if features.sideSource == .exchange, market.trades.reports.count > checkedSide {
            for r in market.trades.reports[checkedSide...] where !r.hasSide && r.rows > 0 {
                throw CommandError(
                    description: "\(r.file): order_flow.side_source is 'exchange' but the file has no side column "
                        + "(set order_flow.side_source=auto or inferred)")
            }
            checkedSide = market.trades.reports.count
        }
        pipeline.process(event)
        sinceDrain += 1
        if sinceDrain == 65_536 {
            sinceDrain = 0
            try drain()
        }
    }
    guard tradesSeen > 0 else {
        let files = market.trades.orderedFiles
        throw CommandError(
            description: "\(files.count == 1 ? files[0] : "\(files.count) trades files"): no trades to build bars from")
    }
    pipeline.finish()
    try drain()
    summary.trades = market.trades.reports
    summary.quotes = market.quotes?.reports
    let coverage = market.coverage
    summary.missingTradeDays = coverage.missingTradeDays
    summary.missingQuoteDays = coverage.missingQuoteDays
    summary.gaps = coverage.gaps
    summary.lateEvents = pipeline.lateEvents
    summary.orderFlow = pipeline.runOrderFlow
    try file.commit()
    try flowFile?.commit()
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
            if let source = r.source { s += "; \(source)" }
            return s
        }
        func describeAll(_ label: String, _ reports: [LoadReport], missing: [String]) {
            if reports.count == 1 {
                lines.append(describe(label, reports[0]))
            } else {
                let units = Set(reports.compactMap { $0.timestampUnit?.description }).sorted()
                lines.append(
                    "\(label): \(reports.count) files, \(grouped(reports.map(\.rows).reduce(0, +))) rows, timestamps in "
                        + (units.isEmpty ? "-" : units.joined(separator: ", ")))
                // Each file with something to say, by itself.
                for r in reports where r.reversed || r.reordered || r.skippedRows > 0 || r.source != nil {
                    lines.append("  " + describe(label, r))
                }
            }
            for r in reports { for example in r.skippedExamples { lines.append("  skipped \(example)") } }
            if !missing.isEmpty {
                lines.append("  missing days (no \(label) file): \(missing.joined(separator: ", "))")
            }
        }
        describeAll("trades", trades, missing: missingTradeDays)
        if let quotes {
            describeAll("quotes", quotes, missing: missingQuoteDays)
        } else {
            lines.append("quotes: none given: every print is ambiguous and the quote columns are empty")
        }
        if let gaps { lines.append(GapsFile.summary(gaps)) }
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
