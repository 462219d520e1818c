/// Per-minute order-flow diagnostics (docs/SPEC.md §3): how prints were signed and how the inference compares with the
/// exchange's taker side. A companion to the features file, whose columns docs/SPEC.md §7 fixes.
public enum OrderFlowCSV {
    public static let header =
        "ts_min,volume,prints,stale_aligned_prints,ambiguous_volume,of_1m,of_inferred_1m,exchange_sided_volume,agreeing_volume,inference_accuracy"

    /// One row; `inference_accuracy` is empty when no trade of the minute carried an exchange side.
    public static func row(_ f: MinuteFeatures, instrument: Instrument) -> String {
        let o = f.orderFlow
        return [
            String(f.ts),
            formatNumber(instrument.size(f.volume)),
            String(o.prints),
            String(o.staleAlignedPrints),
            formatNumber(instrument.size(o.ambiguousVolume)),
            formatNumber(instrument.size(o.signedVolume)),
            formatNumber(instrument.size(o.inferredSignedVolume)),
            formatNumber(instrument.size(o.exchangeSidedVolume)),
            formatNumber(instrument.size(o.agreeingVolume)),
            o.inferenceAccuracy.map(formatNumber) ?? "",
        ].joined(separator: ",")
    }
}
