import AgentConfig
import AgentSupport
package import Engine
import Foundation

/// The files a backtest writes (issue "Strategy", docs/SPEC.md §12). Every number goes through `formatNumber`, so the same
/// run always gives the same bytes.
package enum BacktestOutputs {
    static func tradesCSV(_ trips: [RoundTrip], _ i: Instrument) -> String {
        var out =
            "trade_id,setup,side,entry_ts,entry_time,entry_price,qty,exit_ts,exit_time,exit_price,exit_reason,fees,funding,gross_pnl,net_pnl,"
            + "initial_stop,tp1,tp2,exit_stop,available_margin,risk,leverage_capped\n"
        func level(_ twice: Int64?) -> String { twice.map { formatNumber(i.price($0, over: 2)) } ?? "" }
        for (n, t) in trips.enumerated() {
            let fields: [String] = [
                String(n + 1), t.setup.rawValue, t.direction.description, String(t.entryTs),
                isoTime(t.entryTs, milliseconds: true),
                formatNumber(i.price(t.entryPrice)), formatNumber(i.size(t.qty)), String(t.exitTs),
                isoTime(t.exitTs, milliseconds: true), formatNumber(i.price(t.exitTickLots, over: t.qty)),
                t.exitReasons.map(\.rawValue).joined(separator: "+"), formatNumber(t.fees), formatNumber(t.funding),
                formatNumber(t.grossPnL), formatNumber(t.netPnL),
                level(t.initialStopTwice), level(t.tp1Twice), level(t.tp2Twice), level(t.exitStopTwice),
                t.entrySizing.map { formatNumber($0.availableMargin) } ?? "",
                t.entrySizing.map { formatNumber($0.risk) } ?? "",
                t.entrySizing.map { $0.leverageCapHit ? "true" : "false" } ?? "",
            ]
            out += fields.joined(separator: ",") + "\n"
        }
        return out
    }

    static func fillsCSV(_ fills: [Fill], _ i: Instrument) -> String {
        var out = "order_id,purpose,side,decision_ts,fill_ts,price,qty,liquidity,fee\n"
        for f in fills {
            let fields: [String] = [
                f.orderId, f.purpose.label, f.side == .long ? "buy" : "sell", String(f.decisionTs), String(f.ts),
                formatNumber(i.price(f.price)), formatNumber(i.size(f.qty)), f.liquidity.rawValue, formatNumber(f.fee),
            ]
            out += fields.joined(separator: ",") + "\n"
        }
        return out
    }

    static let signalsHeader =
        "ts_min,breakin_long,breakin_short,failbreak_long,failbreak_short,breakout_long,breakout_short,action,reason,"
        + "above_running,above_level,above_count,below_running,below_level,below_count,retest_pending,retest_level\n"

    static func signalsCSV(_ signals: [SignalRecord], _ i: Instrument) -> String {
        signalsHeader + signalRows(signals, i)
    }

    /// signals.csv's rows for these signals (a run writes them a batch at a time).
    static func signalRows(_ signals: [SignalRecord], _ i: Instrument) -> String {
        var out = ""
        func flag(_ b: Bool) -> String { b ? "1" : "0" }
        func level(_ s: AcceptanceSide) -> String { s.running ? formatNumber(i.price(s.level)) : "" }
        for s in signals {
            let d = s.detections
            let fields: [String] = [
                String(s.ts), flag(d.breakInLong), flag(d.breakInShort), flag(d.failedBreakoutLong),
                flag(d.failedBreakoutShort), flag(d.breakoutLong), flag(d.breakoutShort), s.action.rawValue,
                s.reason.description,
                flag(s.above.running), level(s.above), String(s.above.count), flag(s.below.running), level(s.below),
                String(s.below.count), s.pendingRetest.map { $0.direction.description } ?? "",
                s.pendingRetest.map { formatNumber(i.price($0.level)) } ?? "",
            ]
            out += fields.joined(separator: ",") + "\n"
        }
        return out
    }

    static let equityHeader = "ts,equity,cash,unrealized,position_qty,fees,funding,heat,drawdown\n"

    static func equityCSV(_ rows: [EquityRow], _ i: Instrument, initial: Double) -> String {
        var peak = initial
        return equityHeader + equityRows(rows, i, peak: &peak)
    }

    /// equity.csv's rows; `peak` (the initial equity before the first row) carries the drawdown across batches.
    static func equityRows(_ rows: [EquityRow], _ i: Instrument, peak: inout Double) -> String {
        var out = ""
        for r in rows {
            peak = max(peak, r.equity)
            let fields: [String] = [
                String(r.ts), formatNumber(r.equity), formatNumber(r.cash), formatNumber(r.unrealized),
                formatNumber(i.size(r.positionLots)), formatNumber(r.fees), formatNumber(r.funding),
                formatNumber(r.heat), formatNumber(peak - r.equity),
            ]
            out += fields.joined(separator: ",") + "\n"
        }
        return out
    }

    package static func metricsJSON(_ m: BacktestMetrics, alerts: [EngineAlert]) -> String {
        JSONValue.object(metricsObject(m, alerts: alerts)).render(indent: 0) + "\n"
    }

    /// metrics.json as an object (to embed in another document).
    static func metricsObject(_ m: BacktestMetrics, alerts: [EngineAlert]) -> JSONObject {
        var root = JSONObject()
        root["initial_equity"] = .number(m.initialEquity)
        root["final_equity"] = .number(m.finalEquity)
        root["overall"] = .object(stats(m.overall))
        var setups = JSONObject()
        for s in Setup.allCases { setups[s.rawValue] = .object(stats(m.bySetup[s]!)) }
        root["by_setup"] = .object(setups)
        root["fees_total"] = .number(m.fees)
        root["funding_total"] = .number(m.funding)
        root["max_drawdown"] = .number(m.maxDrawdown)
        root["max_drawdown_pct"] = .number(m.maxDrawdownPct)
        root["sharpe_1m_annualised"] = m.sharpe.map { .number($0) } ?? .null
        root["spread_paid_bps"] = .object(distribution(m.spreadPaidBps))
        root["ambiguous_frac_1m"] = .object(distribution(m.ambiguousFraction))
        root["minutes"] = .integer(m.minutes)
        root["fills"] = .integer(m.fills)
        root["leverage_cap_hits"] = .integer(alerts.filter { $0.kind == .leverageCapHit }.count)
        root["kill_switch_events"] = .integer(alerts.filter { $0.kind == .killSwitch }.count)
        return root
    }

    private static func stats(_ s: TradeStats) -> JSONObject {
        var o = JSONObject()
        o["trades"] = .integer(s.trades)
        o["wins"] = .integer(s.wins)
        o["losses"] = .integer(s.losses)
        o["gross_pnl"] = .number(s.grossPnL)
        o["net_pnl"] = .number(s.netPnL)
        o["fees"] = .number(s.fees)
        o["funding"] = .number(s.funding)
        o["win_rate"] = s.winRate.map { .number($0) } ?? .null
        o["avg_win"] = s.averageWin.map { .number($0) } ?? .null
        o["avg_loss"] = s.averageLoss.map { .number($0) } ?? .null
        o["profit_factor"] = s.profitFactor.map { .number($0) } ?? .null
        return o
    }

    private static func distribution(_ d: Distribution) -> JSONObject {
        var o = JSONObject()
        o["count"] = .integer(d.count)
        o["mean"] = d.mean.map { .number($0) } ?? .null
        o["p50"] = d.p50.map { .number($0) } ?? .null
        o["p90"] = d.p90.map { .number($0) } ?? .null
        return o
    }
}
