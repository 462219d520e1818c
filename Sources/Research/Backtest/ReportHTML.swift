import AgentConfig
import AgentSupport
import Charts
import Engine
import Foundation

/// `report.html`: one self-contained page (inline SVG and CSS, no script, no network) with the equity curve, the
/// drawdown, price with VAH/VAL/POC and the entries and exits, and the metrics table. The charts are the
/// dashboard's (`SVGChart`).
enum ReportHTML {
    static func render(
        features: [MinuteFeatures], equity: [EquityRow], trips: [RoundTrip], metrics: BacktestMetrics,
        instrument i: Instrument, title: String, sections: String = ""
    ) -> String {
        let width = 1100.0
        let t0 = features.first?.ts ?? 0
        let frame = SVGChart.Frame(from: t0, to: max(features.last?.ts ?? 1, t0 + 1), width: width)
        let price = SVGChart.price(
            minutes: features, trips: trips, position: nil, instrument: i, frame: frame, height: 320)
        let points = equity.map { (ts: $0.ts - millisPerMinute, value: $0.equity) }
        let equityChart = SVGChart.line(points, frame: frame, height: 200, cssClass: "eq", floor: metrics.initialEquity)
        let drawdown = SVGChart.drawdown(points, start: metrics.initialEquity, frame: frame, height: 120)

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
            (
                "Spread paid, bps of mid (mean / p50 / p90)",
                "\(num(metrics.spreadPaidBps.mean)) / \(num(metrics.spreadPaidBps.p50)) / \(num(metrics.spreadPaidBps.p90))"
            ),
            (
                "Ambiguous fraction (mean / p50 / p90)",
                "\(pct(metrics.ambiguousFraction.mean)) / \(pct(metrics.ambiguousFraction.p50)) / \(pct(metrics.ambiguousFraction.p90))"
            ),
        ]
        for s in Setup.allCases {
            let st = metrics.bySetup[s]!
            rows.append(
                (
                    "Setup \(s.rawValue)",
                    "\(st.trades) trades, win \(pct(st.winRate)), net \(money(st.netPnL)), PF \(num(st.profitFactor))"
                ))
        }
        let table = rows.map { "<tr><th>\(SVGChart.escape($0.0))</th><td>\(SVGChart.escape($0.1))</td></tr>" }.joined(
            separator: "\n")

        return """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>\(SVGChart.escape(title))</title>
            <style>
            body{font:14px system-ui,sans-serif;margin:24px;color:#222;background:#fff}
            h1{font-size:20px}h2{font-size:15px;margin:18px 0 4px}
            \(SVGChart.css)
            table{border-collapse:collapse;margin-top:8px}th,td{padding:3px 10px;border-bottom:1px solid #eee;text-align:left}
            .legend span{margin-right:14px}
            </style></head><body>
            <h1>\(SVGChart.escape(title))</h1>
            <p>\(features.count) minutes, \(isoTime(features.first?.ts ?? 0)) to \(isoTime(features.last?.ts ?? 0)).</p>
            <h2>Price, value area and trades</h2>
            <p class="legend"><span>— close</span><span style="color:#1f77b4">- - VAH / VAL</span><span style="color:#ff7f0e">— POC</span><span style="color:#2ca02c">▲ long entry</span><span style="color:#d62728">▼ short entry</span><span>○ exit (green win, red loss)</span></p>
            \(price)
            \(sections)
            <h2>Equity</h2>
            \(equityChart)
            <h2>Drawdown (max \(String(format: "%.2f", metrics.maxDrawdown)))</h2>
            \(drawdown)
            <h2>Metrics</h2>
            <table>
            \(table)
            </table>
            </body></html>

            """
    }

    static func timeAxisTicks(from t0: Int64, to t1: Int64) -> [(ts: Int64, label: String)] {
        SVGChart.timeAxisTicks(from: t0, to: t1)
    }
}
