import Foundation

/// The features file of docs/SPEC.md §7: one row per minute, a header, numbers in shortest round-trip form.
public enum FeaturesCSV {
    /// The header, byte for byte.
    public static let columns = [
        "ts_min", "open", "high", "low", "close", "volume", "vwap", "trade_count", "bid_px_close", "ask_px_close",
        "bid_sz_close", "ask_sz_close", "mid_close", "spread_close", "spread_avg_60m", "sigma_240", "bin_width",
        "poc", "vah", "val", "va_coverage", "va_bin_count", "profile_bins", "va_valid", "total_volume_4h", "of_1m",
        "of_norm_1m", "ambiguous_frac_1m", "qimb_close", "qimb_ema_60s",
    ]

    /// The column a file made with `order_flow.method: bvc` adds after the spec's, so that every row says its order
    /// flow is BVC's; the default (quote rule) file is the spec's byte for byte.
    public static let methodColumn = "of_method"

    public static var header: String { columns.joined(separator: ",") }

    /// The header of a file made with `method`.
    public static func header(method: OrderFlowMethod) -> String {
        method == .quoteRule ? header : header + "," + methodColumn
    }

    /// One row (without the line break). Quote fields are empty until the first quote; value-area prices are
    /// empty while the window holds no volume.
    public static func row(_ f: MinuteFeatures, instrument: Instrument) -> String {
        let tick = instrument.tick
        var fields: [String] = []
        fields.reserveCapacity(columns.count)
        fields.append(String(f.ts))
        fields.append(formatNumber(instrument.price(f.open)))
        fields.append(formatNumber(instrument.price(f.high)))
        fields.append(formatNumber(instrument.price(f.low)))
        fields.append(formatNumber(instrument.price(f.close)))
        fields.append(formatNumber(instrument.size(f.volume)))
        fields.append(
            formatNumber(f.volume == 0 ? instrument.price(f.close) : instrument.price(f.tickLots, over: f.volume))
        )
        fields.append(String(f.tradeCount))
        if let q = f.quote {
            fields.append(formatNumber(instrument.price(q.bidPrice)))
            fields.append(formatNumber(instrument.price(q.askPrice)))
            fields.append(formatNumber(instrument.size(q.bidSize)))
            fields.append(formatNumber(instrument.size(q.askSize)))
            fields.append(formatNumber(instrument.price(q.midTwiceTicks, over: 2)))
            fields.append(formatNumber(instrument.price(q.spreadTicks)))
        } else {
            fields.append(contentsOf: repeatElement("", count: 6))
        }
        fields.append(
            f.spreadCount == 0 ? "" : formatNumber(tick.value(ofRatio: f.spreadSumTicks, Int64(f.spreadCount))))
        fields.append(formatNumber(f.sigma240))
        fields.append(formatNumber(instrument.price(f.binTicks)))
        if let va = f.valueArea {
            fields.append(formatNumber(instrument.price(va.pocTwiceTicks, over: 2)))
            fields.append(formatNumber(instrument.price(va.vahTicks)))
            fields.append(formatNumber(instrument.price(va.valTicks)))
            fields.append(formatNumber(va.coverage))
            fields.append(String(va.binCount))
            fields.append(String(va.profileBins))
        } else {
            fields.append(contentsOf: ["", "", "", "0", "0", "0"])
        }
        fields.append(f.valueAreaValid ? "1" : "0")
        fields.append(formatNumber(instrument.size(f.valueArea?.total ?? 0)))
        fields.append(formatNumber(instrument.size(f.orderFlow.signedVolume)))
        fields.append(formatNumber(f.ofNorm))
        fields.append(formatNumber(f.ambiguousFraction))
        fields.append(f.quote.map { formatNumber($0.imbalance) } ?? "")
        fields.append(f.qimbEma.map { formatNumber($0) } ?? "")
        if f.orderFlowMethod != .quoteRule { fields.append(f.orderFlowMethod.rawValue) }
        return fields.joined(separator: ",")
    }
}

/// A CSV field: as it is, or double-quoted with its quotes doubled when it holds a comma or a quote (RFC 4180).
public func csvField(_ s: String) -> String {
    s.contains(",") || s.contains("\"") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s
}

/// Shortest text that reads back as the same `Double`; integral values without a trailing `.0`, no negative zero.
public func formatNumber(_ x: Double) -> String {
    if x == 0 { return "0" }
    if x == x.rounded(), abs(x) < 1e15 { return String(Int64(x)) }
    return x.description
}
