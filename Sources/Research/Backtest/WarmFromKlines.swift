import AgentConfig
import AgentSupport
package import Engine
import Foundation

/// `backtest --warm-from-klines`: how far a value area warmed from the run's own 1-minute candles lies from the
/// exact one, on recorded data (the honesty check of docs/FEATURES.md, "Warm start from klines").
package enum WarmFromKlinesReport {
    /// Writes `warm_from_klines.csv` into `directory` and returns the summary lines.
    package static func write(
        minutes: [MinuteFeatures], config: FeatureConfig, everyMinutes: Int, instrument: Instrument,
        directory: String
    ) throws -> String {
        var check = KlineWarmupCheck(config: config, everyMinutes: everyMinutes)
        for f in minutes { check.add(f) }
        var lines = [
            "minute,exact_poc,exact_vah,exact_val,warmed_poc,warmed_vah,warmed_val,poc_diff_ticks,vah_diff_ticks,val_diff_ticks,"
                + "exact_bin_width,warmed_bin_width"
        ]
        for s in check.samples {
            lines.append(
                [
                    isoTime(s.minute), formatNumber(instrument.price(s.exact.pocTwiceTicks, over: 2)),
                    formatNumber(instrument.price(s.exact.vahTicks)),
                    formatNumber(instrument.price(s.exact.valTicks)),
                    formatNumber(instrument.price(s.warmed.pocTwiceTicks, over: 2)),
                    formatNumber(instrument.price(s.warmed.vahTicks)),
                    formatNumber(instrument.price(s.warmed.valTicks)), formatNumber(s.pocTicks),
                    String(s.vahTicks), String(s.valTicks), formatNumber(instrument.price(s.exactBinTicks)),
                    formatNumber(instrument.price(s.warmedBinTicks)),
                ].joined(separator: ","))
        }
        let path = (directory as NSString).appendingPathComponent("warm_from_klines.csv")
        try writeAtomically(Array((lines.joined(separator: "\n") + "\n").utf8), to: path)
        guard let p50 = check.quantile(0.5), let p99 = check.quantile(0.99) else {
            return
                "warm from klines: no minute to compare (the run is shorter than the window); \(path) has the header only"
        }
        func row(_ name: String, _ q: (poc: Double, vah: Double, val: Double)) -> String {
            "  \(name)  POC \(formatNumber(q.poc))  VAH \(formatNumber(q.vah))  VAL \(formatNumber(q.val))"
        }
        return [
            "warm from klines: |warmed - exact| in ticks over \(check.samples.count) minutes (every \(everyMinutes), after the first window) -> \(path)",
            row("p50", p50), row("p99", p99),
        ].joined(separator: "\n")
    }
}
