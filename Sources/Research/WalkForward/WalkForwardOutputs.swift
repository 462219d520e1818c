import AgentConfig
import AgentSupport
import Charts
public import Engine
import Foundation

/// The files of a walk-forward: windows.csv (one row per window: spans, the chosen run and its parameters, in-sample
/// and out-of-sample figures), equity.csv and trades.csv (the stitched out-of-sample record), walkforward.json
/// (everything, with each window's full out-of-sample metrics and the stitched metrics) and report.html. equity.csv
/// and the report's minutes come from `record`, the spill the run wrote them to. Every number goes through
/// `formatNumber`: the same inputs give the same bytes.
public func writeWalkForward(
    _ r: WalkForwardResult, record: BacktestSpill, spec: GridSpec, plan: WalkForwardPlan, instrument: Instrument,
    title: String, to directory: String
) throws {
    do {
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
    } catch {
        throw CommandError(description: "\(directory): cannot create the directory: \(error.localizedDescription)")
    }
    let files: [(String, String)] = [
        ("windows.csv", WalkForwardOutputs.windowsCSV(r, spec: spec)),
        ("trades.csv", BacktestOutputs.tradesCSV(r.trips, instrument)),
        ("walkforward.json", WalkForwardOutputs.json(r, spec: spec, plan: plan)),
    ]
    for (name, text) in files { try writeAtomically(Array(text.utf8), to: "\(directory)/\(name)") }
    try record.commit()
    let report = try AtomicFile(path: "\(directory)/report.html")
    try ReportHTML.write(
        minutes: record, trips: r.trips, metrics: r.stitched, instrument: instrument, title: title,
        extras: .init(sections: WalkForwardOutputs.windowsHTML(r, spec: spec, plan: plan))
    ) { try report.write($0) }
    try report.commit()
    record.removeParts()
}

enum WalkForwardOutputs {
    static func windowsCSV(_ r: WalkForwardResult, spec: GridSpec) -> String {
        func opt(_ d: Double?) -> String { d.map(formatNumber) ?? "" }
        var out =
            (["window", "train_from", "train_to", "test_from", "test_to", "run"] + spec.parameters.map(\.key) + [
                "is_trades", "is_net_pnl", "is_sharpe", "is_max_drawdown_pct", "oos_trades", "oos_net_pnl",
                "oos_win_rate", "oos_profit_factor", "oos_sharpe", "oos_max_drawdown_pct", "oos_final_equity",
            ]).joined(separator: ",") + "\n"
        for w in r.windows {
            let s = w.inSample
            let m = w.outOfSample
            let fields =
                [
                    String(w.window.number), isoTime(w.window.trainFrom), isoTime(w.window.trainTo),
                    isoTime(w.window.testFrom), isoTime(w.window.testTo), String(w.run + 1),
                ] + w.parameters.map { $0.value.description } + [
                    String(s.trades), formatNumber(s.netPnL), opt(s.sharpe), formatNumber(s.maxDrawdownPct),
                    String(m.overall.trades), formatNumber(m.overall.netPnL), opt(m.overall.winRate),
                    opt(m.overall.profitFactor), opt(m.sharpe), formatNumber(m.maxDrawdownPct),
                    formatNumber(m.finalEquity),
                ]
            out += fields.joined(separator: ",") + "\n"
        }
        return out
    }

    static func json(_ r: WalkForwardResult, spec: GridSpec, plan: WalkForwardPlan) -> String {
        func summary(_ s: GridSummary) -> JSONValue {
            var o = JSONObject()
            o["trades"] = .integer(s.trades)
            o["net_pnl"] = .number(s.netPnL)
            o["gross_pnl"] = .number(s.grossPnL)
            o["win_rate"] = s.winRate.map { .number($0) } ?? .null
            o["profit_factor"] = s.profitFactor.map { .number($0) } ?? .null
            o["max_drawdown_pct"] = .number(s.maxDrawdownPct)
            o["sharpe_1m_annualised"] = s.sharpe.map { .number($0) } ?? .null
            o["final_equity"] = .number(s.finalEquity)
            return .object(o)
        }
        var root = JSONObject()
        root["from"] = .string(isoTime(plan.start))
        root["to"] = .string(isoTime(plan.end))
        root["train_minutes"] = .integer(Int(plan.train / millisPerMinute))
        root["test_minutes"] = .integer(Int(plan.test / millisPerMinute))
        root["step_minutes"] = .integer(Int(plan.step / millisPerMinute))
        root["rank_by"] = .string(spec.rankBy.rawValue)
        root["grid_runs"] = .integer(spec.combinations.count)
        root["windows"] = .array(
            r.windows.map { w in
                var o = JSONObject()
                o["window"] = .integer(w.window.number)
                o["train_from"] = .string(isoTime(w.window.trainFrom))
                o["train_to"] = .string(isoTime(w.window.trainTo))
                o["test_from"] = .string(isoTime(w.window.testFrom))
                o["test_to"] = .string(isoTime(w.window.testTo))
                o["run"] = .integer(w.run + 1)
                var p = JSONObject()
                for (k, v) in w.parameters { p[k] = .string(v.description) }
                o["parameters"] = .object(p)
                o["in_sample"] = summary(w.inSample)
                o["out_of_sample"] = .object(BacktestOutputs.metricsObject(w.outOfSample, alerts: []))
                return .object(o)
            })
        root["out_of_sample_stitched"] = .object(BacktestOutputs.metricsObject(r.stitched, alerts: []))
        return JSONValue.object(root).render(indent: 0) + "\n"
    }

    static func windowsHTML(_ r: WalkForwardResult, spec: GridSpec, plan: WalkForwardPlan) -> String {
        func money(_ v: Double?) -> String { v.map { String(format: "%.2f", $0) } ?? "–" }
        func num(_ v: Double?) -> String { v.map { String(format: "%.2f", $0) } ?? "–" }
        func pct(_ v: Double?) -> String { v.map { String(format: "%.1f %%", $0 * 100) } ?? "–" }
        let keys = spec.parameters.map(\.key)
        var html = """
            <h2>Windows (train \(plan.train / 86_400_000 > 0 && plan.train % 86_400_000 == 0 ? "\(plan.train / 86_400_000) d" : "\(plan.train / millisPerMinute) min"), \
            test \(plan.test % 86_400_000 == 0 ? "\(plan.test / 86_400_000) d" : "\(plan.test / millisPerMinute) min"), \
            ranked by \(HTML.escape(spec.rankBy.rawValue)) in sample)</h2>
            <table>
            <tr><th>#</th><th>train</th><th>test</th><th>run</th>\(keys.map { "<th>\(HTML.escape($0))</th>" }.joined())\
            <th>IS trades</th><th>IS net</th><th>IS Sharpe</th><th>OOS trades</th><th>OOS net</th><th>OOS win</th>\
            <th>OOS Sharpe</th><th>OOS max DD</th><th>equity after</th></tr>

            """
        for w in r.windows {
            let m = w.outOfSample
            let cells =
                [
                    String(w.window.number),
                    "\(isoTime(w.window.trainFrom).prefix(16)) – \(isoTime(w.window.trainTo).prefix(16))",
                    "\(isoTime(w.window.testFrom).prefix(16)) – \(isoTime(w.window.testTo).prefix(16))",
                    String(w.run + 1),
                ] + w.parameters.map { $0.value.description } + [
                    String(w.inSample.trades), money(w.inSample.netPnL), num(w.inSample.sharpe),
                    String(m.overall.trades), money(m.overall.netPnL), pct(m.overall.winRate), num(m.sharpe),
                    pct(m.maxDrawdownPct), money(m.finalEquity),
                ]
            html += "<tr>" + cells.map { "<td>\(HTML.escape($0))</td>" }.joined() + "</tr>\n"
        }
        html += "</table>\n"
        html +=
            "<p>Out of sample, stitched: \(r.stitched.overall.trades) trades, net \(money(r.stitched.overall.netPnL)), "
            + "equity \(money(r.initialEquity)) → \(money(r.stitched.finalEquity)). The charts below are the test "
            + "spans only, chained.</p>\n"
        return html
    }
}
