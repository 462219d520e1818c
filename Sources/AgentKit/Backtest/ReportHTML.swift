import Engine
import Foundation

/// `report.html`: one self-contained page (inline SVG and CSS, no script, no network) with the equity curve, the
/// drawdown, price with VAH/VAL/POC and the entries and exits, and the metrics table.
enum ReportHTML {
    static func render(
        features: [MinuteFeatures], equity: [EquityRow], trips: [RoundTrip], metrics: BacktestMetrics,
        instrument i: Instrument, title: String
    ) -> String {
        let width = 1100.0
        let xs = features.map { Double($0.ts) }
        let t0 = xs.first ?? 0
        let t1 = max(xs.last ?? 1, t0 + 1)
        func x(_ ts: Millis) -> Double { 60 + (Double(ts) - t0) / (t1 - t0) * (width - 80) }
        let step = max(1, features.count / 1500)
        let axisTicks = timeAxisTicks(from: Int64(t0), to: Int64(t1))
        /// Grid lines and UTC labels along the bottom of a chart `height` high.
        func timeAxis(_ height: Double) -> String {
            axisTicks.map { t in
                let px = String(format: "%.1f", x(t.ts))
                return #"<line class="grid" x1="\#(px)" y1="0" x2="\#(px)" y2="\#(Int(height) - 14)"/>"#
                    + #"<text x="\#(px)" y="\#(Int(height) - 3)" font-size="10" text-anchor="middle">\#(t.label)</text>"#
            }.joined()
        }

        // Price panel.
        let priceHeight = 320.0
        var lows: [Double] = []
        var highs: [Double] = []
        for f in features {
            lows.append(i.price(f.low))
            highs.append(i.price(f.high))
            if let va = f.valueArea, f.valueAreaValid {
                lows.append(i.price(va.valTicks))
                highs.append(i.price(va.vahTicks))
            }
        }
        let pLo = lows.min() ?? 0
        let pHi = max(highs.max() ?? 1, pLo + 1)
        func py(_ p: Double) -> Double { 20 + (pHi - p) / (pHi - pLo) * (priceHeight - 40) }
        func path(_ points: [(Double, Double)]) -> String {
            points.enumerated().map { (n, p) in (n == 0 ? "M" : "L") + String(format: "%.1f %.1f", p.0, p.1) }.joined(separator: " ")
        }
        let sampled = stride(from: 0, to: features.count, by: step).map { features[$0] }
        let close = path(sampled.map { (x($0.ts), py(i.price($0.close))) })
        let valid = sampled.filter { $0.valueAreaValid && $0.valueArea != nil }
        let vah = path(valid.map { (x($0.ts), py(i.price($0.valueArea!.vahTicks))) })
        let val = path(valid.map { (x($0.ts), py(i.price($0.valueArea!.valTicks))) })
        let poc = path(valid.map { (x($0.ts), py(i.price($0.valueArea!.pocTwiceTicks, over: 2))) })
        var marks = ""
        for t in trips {
            let ex = x(t.entryTs)
            let ey = py(i.price(t.entryPrice))
            let up = t.direction == .long
            marks += String(format: "<path d=\"M%.1f %.1f l-5 %d l10 0 z\" class=\"%@\"><title>%@</title></path>", ex, ey, up ? 9 : -9, up ? "buy" : "sell", "\(t.setup.rawValue) \(t.direction) \(isoTime(t.entryTs))")
            marks += String(format: "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"3.5\" class=\"%@\"><title>%@</title></circle>", x(t.exitTs), py(i.price(t.exitTickLots, over: t.qty)), t.netPnL > 0 ? "win" : "loss", "exit \(t.exitReasons.map(\.rawValue).joined(separator: "+")) net \(String(format: "%.2f", t.netPnL))")
        }

        // Equity and drawdown panels.
        let eqHeight = 200.0
        let eqs = equity.map(\.equity)
        let eLo = min(eqs.min() ?? 0, metrics.initialEquity)
        let eHi = max(eqs.max() ?? 1, metrics.initialEquity, eLo + 1)
        func ey(_ v: Double) -> Double { 15 + (eHi - v) / (eHi - eLo) * (eqHeight - 30) }
        let eqSampled = stride(from: 0, to: equity.count, by: max(1, equity.count / 1500)).map { equity[$0] }
        let eqPath = path(eqSampled.map { (x($0.ts - millisPerMinute), ey($0.equity)) })
        var peak = metrics.initialEquity
        var dd: [(Millis, Double)] = []
        for r in equity {
            peak = max(peak, r.equity)
            dd.append((r.ts, peak - r.equity))
        }
        let ddMax = max(dd.map(\.1).max() ?? 0, 1e-9)
        let ddHeight = 120.0
        let ddSampled = stride(from: 0, to: dd.count, by: max(1, dd.count / 1500)).map { dd[$0] }
        var ddPoints: [(Double, Double)] = [(x((ddSampled.first?.0 ?? millisPerMinute) - millisPerMinute), 10)]
        for (ts, value) in ddSampled {
            let yValue: Double = 10 + value / ddMax * (ddHeight - 20)
            ddPoints.append((x(ts - millisPerMinute), yValue))
        }
        ddPoints.append((x((ddSampled.last?.0 ?? millisPerMinute) - millisPerMinute), 10))
        let ddPath = path(ddPoints) + " Z"

        // Metrics table.
        func money(_ v: Double?) -> String { v.map { String(format: "%.2f", $0) } ?? "–" }
        func pct(_ v: Double?) -> String { v.map { String(format: "%.1f %%", $0 * 100) } ?? "–" }
        func num(_ v: Double?) -> String { v.map { String(format: "%.2f", $0) } ?? "–" }
        let o = metrics.overall
        var rows: [(String, String)] = [
            ("Initial → final equity", "\(money(metrics.initialEquity)) → \(money(metrics.finalEquity))"),
            ("Net P&L (gross)", "\(money(o.netPnL)) (\(money(o.grossPnL)))"),
            ("Fees / funding", "\(money(metrics.fees)) / \(money(metrics.funding))"),
            ("Trades, win rate", "\(o.trades), \(pct(o.winRate))"),
            ("Average win / loss", "\(money(o.averageWin)) / \(money(o.averageLoss))"),
            ("Profit factor", num(o.profitFactor)),
            ("Max drawdown", "\(money(metrics.maxDrawdown)) (\(pct(metrics.maxDrawdownPct)))"),
            ("Sharpe (1-minute returns, annualised)", num(metrics.sharpe)),
            ("Spread paid, bps of mid (mean / p50 / p90)", "\(num(metrics.spreadPaidBps.mean)) / \(num(metrics.spreadPaidBps.p50)) / \(num(metrics.spreadPaidBps.p90))"),
            ("Ambiguous fraction (mean / p50 / p90)", "\(pct(metrics.ambiguousFraction.mean)) / \(pct(metrics.ambiguousFraction.p50)) / \(pct(metrics.ambiguousFraction.p90))"),
        ]
        for s in Setup.allCases {
            let st = metrics.bySetup[s]!
            rows.append(("Setup \(s.rawValue)", "\(st.trades) trades, win \(pct(st.winRate)), net \(money(st.netPnL)), PF \(num(st.profitFactor))"))
        }
        let table = rows.map { "<tr><th>\(escape($0.0))</th><td>\(escape($0.1))</td></tr>" }.joined(separator: "\n")

        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>\(escape(title))</title>
            <style>
            body{font:14px system-ui,sans-serif;margin:24px;color:#222;background:#fff}
            h1{font-size:20px}h2{font-size:15px;margin:18px 0 4px}
            svg{background:#fafafa;border:1px solid #ddd}
            .close{fill:none;stroke:#333;stroke-width:1}.vah,.val{fill:none;stroke:#1f77b4;stroke-width:1;stroke-dasharray:4 2}
            .poc{fill:none;stroke:#ff7f0e;stroke-width:1}.eq{fill:none;stroke:#2ca02c;stroke-width:1.5}.dd{fill:#d62728;opacity:.5}
            .grid{stroke:#ddd;stroke-width:1}
            .buy{fill:#2ca02c}.sell{fill:#d62728}.win{fill:none;stroke:#2ca02c;stroke-width:1.5}.loss{fill:none;stroke:#d62728;stroke-width:1.5}
            table{border-collapse:collapse;margin-top:8px}th,td{padding:3px 10px;border-bottom:1px solid #eee;text-align:left}
            .legend span{margin-right:14px}
            </style></head><body>
            <h1>\(escape(title))</h1>
            <p>\(features.count) minutes, \(isoTime(features.first?.ts ?? 0)) to \(isoTime(features.last?.ts ?? 0)).</p>
            <h2>Price, value area and trades</h2>
            <p class="legend"><span>— close</span><span style="color:#1f77b4">- - VAH / VAL</span><span style="color:#ff7f0e">— POC</span><span style="color:#2ca02c">▲ long entry</span><span style="color:#d62728">▼ short entry</span><span>○ exit (green win, red loss)</span></p>
            <svg width="\(Int(width))" height="\(Int(priceHeight))" viewBox="0 0 \(Int(width)) \(Int(priceHeight))">
            <text x="4" y="16" font-size="11">\(String(format: "%.1f", pHi))</text><text x="4" y="\(Int(priceHeight) - 8)" font-size="11">\(String(format: "%.1f", pLo))</text>
            \(timeAxis(priceHeight))
            <path class="vah" d="\(vah)"/><path class="val" d="\(val)"/><path class="poc" d="\(poc)"/><path class="close" d="\(close)"/>
            \(marks)
            </svg>
            <h2>Equity</h2>
            <svg width="\(Int(width))" height="\(Int(eqHeight))" viewBox="0 0 \(Int(width)) \(Int(eqHeight))">
            <text x="4" y="14" font-size="11">\(String(format: "%.0f", eHi))</text><text x="4" y="\(Int(eqHeight) - 6)" font-size="11">\(String(format: "%.0f", eLo))</text>
            \(timeAxis(eqHeight))<path class="eq" d="\(eqPath)"/></svg>
            <h2>Drawdown (max \(String(format: "%.2f", metrics.maxDrawdown)))</h2>
            <svg width="\(Int(width))" height="\(Int(ddHeight))" viewBox="0 0 \(Int(width)) \(Int(ddHeight))">\(timeAxis(ddHeight))<path class="dd" d="\(ddPath)"/></svg>
            <h2>Metrics</h2>
            <table>
            \(table)
            </table>
            </body></html>

            """
    }

    /// Round times between `t0` and `t1` (ms) for a time axis: the smallest step of 15 min, 30 min, 1, 2, 4, 6, 12 h,
    /// 1, 2 or 7 days that gives at most 12 ticks, labelled `HH:MM` (UTC), with the date where a day starts.
    static func timeAxisTicks(from t0: Int64, to t1: Int64) -> [(ts: Int64, label: String)] {
        guard t1 > t0 else { return [] }
        let minute: Int64 = 60_000
        let steps: [Int64] = [15, 30, 60, 120, 240, 360, 720, 1_440, 2_880, 10_080].map { $0 * minute }
        let step: Int64 = steps.first { (t1 - t0) / $0 <= 12 } ?? steps[steps.count - 1]
        var out: [(Int64, String)] = []
        var t = (t0 + step - 1) / step * step
        while t <= t1 {
            let iso = isoTime(t)  // 2026-01-01T08:00Z
            let time = String(iso.dropFirst(11).prefix(5))
            let date = String(iso.dropFirst(5).prefix(5))
            out.append((t, t % 86_400_000 == 0 || step >= 1_440 * minute ? "\(date) \(time)" : time))
            t += step
        }
        return out
    }

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
