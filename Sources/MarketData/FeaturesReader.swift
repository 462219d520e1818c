public import Engine
import Foundation

/// Reads a features file (docs/SPEC.md §7, as `auction-agent features` writes it) back into minutes, for the bar-only
/// backtest. What the file does not carry is reconstructed and documented here:
/// - the quote at the close is taken as fresh (its age 1 ms), so the stale-data veto never fires;
/// - the crossing distance `N` is `max(spread_avg_60m, tick)`, and a bar crosses a level when its range reaches
///   within `N` of it (`low - N <= L <= high + N`): the file has no trade prices;
/// - volumes and order flow are rounded to whole qty steps.
public func readFeatures(path: String, instrument: Instrument) throws(DataFileError) -> [MinuteFeatures] {
    let bytes = try readFileBytes(path)
    let text = String(decoding: bytes, as: UTF8.self)
    var lines = text.split(separator: "\n", omittingEmptySubsequences: true).makeIterator()
    guard let header = lines.next() else { throw DataFileError(file: path, reason: "the file is empty") }
    let names = header.split(separator: ",", omittingEmptySubsequences: false).map {
        String($0).trimmingCharacters(in: .whitespacesAndNewlines)
    }
    var index: [String: Int] = [:]
    for (i, n) in names.enumerated() { index[n] = i }
    let missing = FeaturesCSV.columns.filter { index[$0] == nil }
    guard missing.isEmpty else {
        throw DataFileError(
            file: path, line: 1, reason: "not a features file: missing columns \(missing.joined(separator: ", "))")
    }
    var out: [MinuteFeatures] = []
    var lineNumber = 1
    while let raw = lines.next() {
        lineNumber += 1
        let line = raw.hasSuffix("\r") ? raw.dropLast() : raw[...]
        let fields = line.split(separator: ",", omittingEmptySubsequences: false)
        guard fields.count >= names.count else {
            throw DataFileError(
                file: path, line: lineNumber, reason: "expected \(names.count) fields, found \(fields.count)")
        }
        func text(_ column: String) -> Substring { fields[index[column]!] }
        func decimal(_ column: String) throws(DataFileError) -> ScaledDecimal? {
            let t = text(column)
            if t.isEmpty { return nil }
            guard let d = ScaledDecimal(t) else {
                throw DataFileError(file: path, line: lineNumber, reason: "\(column) '\(t)' is not a number")
            }
            return d
        }
        func required(_ column: String) throws(DataFileError) -> ScaledDecimal {
            guard let d = try decimal(column) else {
                throw DataFileError(file: path, line: lineNumber, reason: "\(column) is empty")
            }
            return d
        }
        func double(_ column: String) throws(DataFileError) -> Double? {
            let t = text(column)
            if t.isEmpty { return nil }
            guard let d = Double(t) else {
                throw DataFileError(file: path, line: lineNumber, reason: "\(column) '\(t)' is not a number")
            }
            return d
        }
        func ticks(_ column: String) throws(DataFileError) -> Ticks? {
            guard let d = try decimal(column) else { return nil }
            guard let t = instrument.ticks(d) else {
                throw DataFileError(file: path, line: lineNumber, reason: "\(column) out of range")
            }
            return t
        }
        func lots(_ column: String) throws(DataFileError) -> Lots? {
            guard let d = try decimal(column) else { return nil }
            guard let l = instrument.lots(d) else {
                throw DataFileError(file: path, line: lineNumber, reason: "\(column) out of range")
            }
            return l
        }
        guard let ts = Int64(text("ts_min")) else {
            throw DataFileError(file: path, line: lineNumber, reason: "ts_min '\(text("ts_min"))' is not milliseconds")
        }
        let open = try ticks("open") ?? 0
        let high = try ticks("high") ?? 0
        let low = try ticks("low") ?? 0
        let close = try ticks("close") ?? 0
        let volume = try lots("volume") ?? 0
        let vwapTicks = (try double("vwap") ?? 0) / instrument.tick.doubleValue
        var quote: QuoteAtClose?
        if let bid = try ticks("bid_px_close"), let ask = try ticks("ask_px_close") {
            quote = QuoteAtClose(
                bidPrice: bid, bidSize: try lots("bid_sz_close") ?? 0, askPrice: ask,
                askSize: try lots("ask_sz_close") ?? 0, ts: ts + 59_999)
        }
        // spread_avg_60m as an exact ratio of ticks: S / n with n = 1000.
        var spreadSum: Int64 = 0
        var spreadCount = 0
        if let avg = try double("spread_avg_60m") {
            spreadCount = 1000
            spreadSum = Int64((avg / instrument.tick.doubleValue * 1000).rounded())
        }
        let binTicks = try ticks("bin_width") ?? 1
        var va: ValueArea?
        if let val = try ticks("val"), let vah = try ticks("vah"), let poc = try decimal("poc") {
            let total = try lots("total_volume_4h") ?? 0
            let coverage = try double("va_coverage") ?? 0
            let pocTwice = ScaledDecimal(mantissa: poc.mantissa * 2, scale: poc.scale).count(of: instrument.tick) ?? 0
            va = ValueArea(
                valTicks: val, vahTicks: vah, pocTwiceTicks: pocTwice,
                covered: Lots((coverage * Double(total)).rounded()),
                total: total, binCount: Int(text("va_bin_count")) ?? 0, profileBins: Int(text("profile_bins")) ?? 0,
                binTicks: binTicks
            )
        }
        var flow = OrderFlowTotals()
        flow.signedVolume = try lots("of_1m") ?? 0
        flow.ambiguousVolume = Lots(((try double("ambiguous_frac_1m") ?? 0) * Double(volume)).rounded())
        var f = MinuteFeatures(
            ts: ts, index: out.count, open: open, high: high, low: low, close: close, volume: volume,
            tickLots: Int64((vwapTicks * Double(volume)).rounded()), tradeCount: Int(text("trade_count")) ?? 0,
            quote: quote, spreadSumTicks: spreadSum, spreadCount: spreadCount, sigma240: try double("sigma_240") ?? 0,
            binTicks: binTicks, valueArea: va, valueAreaValid: text("va_valid") == "1", crossesVAH: false,
            crossesVAL: false, orderFlow: flow, qimbEma: try double("qimb_ema_60s")
        )
        if let column = index[FeaturesCSV.methodColumn] {
            let name = fields[column]
            guard let method = OrderFlowMethod(rawValue: String(name)) else {
                throw DataFileError(
                    file: path, line: lineNumber,
                    reason: "\(FeaturesCSV.methodColumn) '\(name)' is not quote_rule or bvc")
            }
            f.orderFlowMethod = method
        }
        if let va {
            // The range reaches within N of the level.
            f.crossesVAH =
                f.isAtMostCrossingDistance(above: va.vahTicks, low)
                && f.isAtMostCrossingDistance(above: -va.vahTicks, -high)
            f.crossesVAL =
                f.isAtMostCrossingDistance(above: va.valTicks, low)
                && f.isAtMostCrossingDistance(above: -va.valTicks, -high)
        }
        out.append(f)
    }
    return out
}
