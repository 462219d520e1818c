import AgentConfig
import AgentSupport
import Charts
import Engine
import Foundation

/// `report.html`: one file that opens from disk with no network: the chart library and the chart layer inline
/// (`ChartLibrary`, `ChartLayer`), the run's data as JSON (`ChartData`), and a short script. Price with the value
/// area and the trades (zoom, pan, crosshair), the volume profile at whichever minute the pointer is on, order flow,
/// equity and drawdown on the same time scale, the trades table (a click zooms to the trade with its stop, targets
/// and exit), the metrics, the spread paid and the parameters of the run.
enum ReportHTML {
    /// What a report shows besides the minutes, the equity and the trips.
    struct Extras {
        /// Every minute's profile (the backtest keeps them; the walk-forward does not).
        var profiles: ProfileHistory?
        /// The fills (the spread each paid); empty when the run did not keep them.
        var fills: [Fill] = []
        /// The run's configuration (`ConfigLoader.researchParameters`); empty for a walk-forward, whose windows each
        /// chose their own.
        var parameters: [ResearchParameter] = []
        /// HTML placed after the charts (the walk-forward's windows).
        var sections = ""
    }

    /// Writes the report through `out` in parts: the page around the data, and the data's JSON a few thousand
    /// minutes at a time, so that a long run's report is never held whole (nor its JSON tree).
    static func write(
        minutes: some ReportMinutes, trips: [RoundTrip], metrics: BacktestMetrics, instrument i: Instrument,
        title: String, extras: Extras = Extras(), to out: (String) throws -> Void
    ) throws {
        let page = pageAround(minutes: minutes, trips: trips, metrics: metrics, title: title, extras: extras)
        try out(page.before)
        try writeData(minutes: minutes, trips: trips, metrics: metrics, instrument: i, extras: extras, to: out)
        try out(page.after)
    }

    /// The data's JSON, the bytes `JSONEncoder` gives with sorted keys (an object's keys in order, arrays as their
    /// elements' encodings joined by commas, which is why they can be encoded a slice at a time).
    static func writeData(
        minutes: some ReportMinutes, trips: [RoundTrip], metrics: BacktestMetrics, instrument i: Instrument,
        extras: Extras, to out: (String) throws -> Void
    ) throws {
        let json = ReportJSON()
        let trades = BacktestOutputs.tradesCSV(trips, i).split(separator: "\n").map {
            $0.split(separator: ",", omittingEmptySubsequences: false).map(String.init)
        }
        try out("{\"bars\":")
        try minutes.writeBars(out)
        try out(",\"decimals\":" + json.scalar(i.tick.scale))
        try out(",\"equity\":")
        try minutes.writeEquity(out)
        try out(",\"initialEquity\":" + json.scalar(metrics.initialEquity))
        if minutes.hasProfiles {
            try out(",\"profiles\":{\"frames\":")
            try minutes.writeProfileFrames(out)
            try out(
                ",\"lot\":" + json.scalar(i.qtyStep.doubleValue) + ",\"tick\":" + json.scalar(i.tick.doubleValue) + "}")
        }
        try out(",\"spreadBps\":" + json.encoded(BacktestMetrics.spreadPaidBps(extras.fills)))
        try out(",\"tradeColumns\":" + json.encoded(trades.first ?? []))
        try out(",\"tradeRows\":")
        try json.array(max(trades.count - 1, 0), out) { trades[$0 + 1] }
        try out(",\"trips\":")
        try json.array(trips.count, out) { ChartData.Trip(trips[$0], n: $0 + 1, i) }
        try out("}")
    }

    /// The page before and after the data's JSON.
    private static func pageAround(
        minutes: some ReportMinutes, trips: [RoundTrip], metrics: BacktestMetrics, title: String, extras: Extras
    ) -> (before: String, after: String) {
        let page = """
            <!doctype html>
            <html lang="en"><head><meta charset="utf-8"><title>\(HTML.escape(title))</title>
            <meta name="viewport" content="width=device-width, initial-scale=1">
            <meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; img-src data:">
            <style>
            body{font:14px system-ui,sans-serif;margin:16px 20px;color:#222;background:#fff}
            h1{font-size:20px;margin:0 0 4px}h2{font-size:15px;margin:18px 0 6px}
            table{border-collapse:collapse}th,td{padding:3px 10px;border-bottom:1px solid #eee;text-align:left}
            .legend span{margin-right:14px;font-size:12px}.note{color:#678;font-size:12px}
            .pricebox{display:flex}.pricebox>#price{flex:1;min-width:0}.pricebox>#profile{width:200px;flex:none;height:420px}
            #trades{max-height:420px;overflow:auto;border:1px solid #eee}
            #trades table{font-size:12px;font-variant-numeric:tabular-nums}#trades th{position:sticky;top:0;background:#f6f6f6;cursor:default}
            #trades tbody tr{cursor:pointer}#trades tbody tr:hover{background:#f0f6ff}#trades tr.selected{background:#dbe9ff}
            .win{color:#146414}.loss{color:#a31515}.changed{font-weight:700}
            .cols{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:24px}
            #spread{display:flex;align-items:flex-end;gap:2px;height:120px;border-bottom:1px solid #ccc}
            #spread div{flex:1;background:#9467bd;min-height:1px}
            footer{margin-top:24px;font-size:11px;color:#789}
            \(ChartLayer.css)
            </style></head><body>
            <h1>\(HTML.escape(title))</h1>
            <p>\(minutes.count) minutes, \(isoTime(minutes.first ?? 0)) to \(isoTime(minutes.last ?? 0)),
            \(trips.count) round trips. <span class="note">Drag to pan, wheel to zoom; the profile follows the pointer;
            a click on a trade zooms to it.</span></p>
            <h2>Price, value area and trades</h2>
            <p class="legend"><span style="color:#1f77b4">▭ value area, - - VAH / VAL</span><span style="color:#ff7f0e">— POC</span><span style="color:#2ca02c">▲ long entry</span><span style="color:#d62728">▼ short entry</span><span>● exit (green win, red loss)</span><span style="color:#d62728">┄ stop</span><span style="color:#2ca02c">┄ target</span></p>
            <div class="pricebox"><div id="price"></div><div id="profile"></div></div>
            <h2>Order flow per minute: normalised delta (bars) and quote imbalance EMA (line)</h2>
            <div id="flow"></div>
            <h2>Trades <span class="note">(every column of trades.csv; click a row)</span></h2>
            <div id="trades"></div>
            \(extras.sections)
            <h2>Equity</h2>
            <div id="equity"></div>
            <h2>Drawdown (max \(String(format: "%.2f", metrics.maxDrawdown)))</h2>
            <div id="drawdown"></div>
            <div class="cols"><div>
            <h2>Metrics</h2>
            <table>
            \(metricsTable(metrics))
            </table>
            <h2>Spread paid by taker fills, bps of mid</h2>
            <div id="spread"></div><p id="spreadNote" class="note"></p>
            </div><div>
            \(parametersTable(extras.parameters))
            </div></div>
            <footer>Charts: TradingView Lightweight Charts™ v\(ChartLibrary.version) (Apache-2.0), embedded in this file.</footer>
            <script type="application/json" id="report-data">\u{0}</script>
            <script>
            \(ChartLibrary.script)
            </script>
            <script>
            \(ChartLayer.script)
            </script>
            <script>
            \(script)
            </script>
            </body></html>

            """
        let parts = page.split(separator: "\u{0}", maxSplits: 1, omittingEmptySubsequences: false)
        return (String(parts[0]), String(parts[1]))
    }

    static func metricsTable(_ metrics: BacktestMetrics) -> String {
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
        return rows.map { "<tr><th>\(HTML.escape($0.0))</th><td>\(HTML.escape($0.1))</td></tr>" }.joined(
            separator: "\n")
    }

    /// The run's parameters, those that differ from the defaults first and in bold.
    static func parametersTable(_ parameters: [ResearchParameter]) -> String {
        guard !parameters.isEmpty else { return "" }
        let ordered = parameters.filter(\.changed) + parameters.filter { !$0.changed }
        let changed = parameters.filter(\.changed).count
        let rows = ordered.map { p in
            "<tr\(p.changed ? #" class="changed""# : "")><td>\(HTML.escape(p.key))</td><td>\(HTML.escape(p.value))</td>"
                + "<td class=\"note\">\(HTML.escape(p.summary))</td></tr>"
        }
        return """
            <h2>Parameters <span class="note">(\(changed) differ from the defaults, in bold; config.yaml beside this file runs it again)</span></h2>
            <table id="parameters"><thead><tr><th>key</th><th>value</th><th>meaning</th></tr></thead><tbody>
            \(rows.joined(separator: "\n"))
            </tbody></table>
            """
    }

    /// The page's own script: builds the charts from the embedded data and wires the pointer and the trades table.
    static let script = #"""
        'use strict';
        const data = JSON.parse(document.getElementById('report-data').textContent);
        const AC = window.AuctionCharts;
        const price = AC.priceChart(document.getElementById('price'), { height: 420, decimals: data.decimals, labelled: true });
        const flow = AC.flowChart(document.getElementById('flow'), price, { height: 130 });
        const profile = AC.profilePanel(document.getElementById('profile'), price);
        const equity = AC.lineChart(document.getElementById('equity'), { height: 220, title: 'equity' });
        const drawdown = AC.drawdownChart(document.getElementById('drawdown'), { height: 120, start: data.initialEquity });
        price.set({ bars: data.bars, trips: data.trips });
        flow.set(data.bars);
        equity.set(data.equity);
        drawdown.set(data.equity);
        // Equity and drawdown follow the price chart's time span (their points are at decision times).
        price.chart.timeScale().subscribeVisibleTimeRangeChange((r) => {
          if (!r) return;
          for (const c of [equity.chart, drawdown.chart]) { try { c.timeScale().setVisibleRange(r); } catch (e) { /* no data in view */ } }
        });

        // The volume profile at minute `index`, rebuilt from the nearest key frame before it.
        const frames = data.profiles ? data.profiles.frames : [];
        const minuteIndex = new Map(data.bars.map((b, k) => [b.t, k]));
        function profileAt(index) {
          if (!data.profiles || index < 0 || index >= frames.length) return null;
          let k = index;
          while (k > 0 && frames[k][1] !== 1) k--;
          const volumes = new Map();
          frames[k].slice(5).forEach((v, n) => volumes.set(frames[k][2] + n, v));
          for (let j = k + 1; j <= index; j++) {
            const f = frames[j];
            for (let n = 5; n < f.length; n += 2) volumes.set(f[n], (volumes.get(f[n]) || 0) + f[n + 1]);
          }
          const [t, , first, binTicks, count] = frames[index];
          const { tick, lot } = data.profiles;
          const bar = data.bars[minuteIndex.get(t)] || {};
          const low = first * binTicks * tick, width = binTicks * tick;
          const out = {
            t, low, width, valid: bar.vah != null,
            volumes: Array.from({ length: count }, (_, n) => (volumes.get(first + n) || 0) * lot),
            vah: bar.vah, val: bar.val, poc: bar.poc,
          };
          // The POC's bin: its middle is the POC.
          if (bar.poc != null) out.pocBin = Math.round((bar.poc - low) / width - 0.5);
          return out;
        }
        let shown = -1;
        function showProfileAt(index) {
          if (index === shown) return;
          shown = index;
          profile.set(profileAt(index));
        }
        showProfileAt(frames.length - 1);
        price.chart.subscribeCrosshairMove((p) => {
          if (p && p.time != null && minuteIndex.has(p.time)) showProfileAt(minuteIndex.get(p.time));
        });

        // The trades table: every column of trades.csv; a click zooms to the trade with its stop, targets and exit.
        const box = document.getElementById('trades');
        if (!data.tradeRows.length) {
          box.textContent = 'No round trips.';
        } else {
          const table = document.createElement('table');
          const head = table.createTHead().insertRow();
          for (const c of data.tradeColumns) { const th = document.createElement('th'); th.textContent = c; head.append(th); }
          const body = table.createTBody();
          const net = data.tradeColumns.indexOf('net_pnl');
          data.tradeRows.forEach((row, n) => {
            const tr = body.insertRow();
            tr.dataset.trade = String(n + 1);
            row.forEach((v, c) => { const td = tr.insertCell(); td.textContent = v; if (c === net) td.className = Number(v) > 0 ? 'win' : 'loss'; });
            tr.addEventListener('click', () => selectTrade(n + 1));
          });
          box.append(table);
        }
        function selectTrade(n) {
          const trip = data.trips[n - 1];
          box.querySelectorAll('tr.selected').forEach((r) => r.classList.remove('selected'));
          box.querySelector(`tr[data-trade="${n}"]`).classList.add('selected');
          price.highlight(trip);
          price.zoomTo(trip.entryT, trip.exitT);
          if (minuteIndex.has(trip.entryT)) showProfileAt(minuteIndex.get(trip.entryT));
          document.getElementById('price').scrollIntoView({ block: 'nearest' });
        }

        // Spread paid: a histogram of the taker fills' spread in bps.
        const spread = data.spreadBps;
        const spreadBox = document.getElementById('spread');
        if (!spread.length) {
          spreadBox.style.display = 'none';
          document.getElementById('spreadNote').textContent = 'No taker fills with a reference mid.';
        } else {
          const top = Math.max(...spread), bins = 20, w = top > 0 ? top / bins : 1;
          const counts = new Array(bins).fill(0);
          for (const v of spread) counts[Math.min(bins - 1, Math.floor(v / w))]++;
          const most = Math.max(...counts);
          counts.forEach((c, k) => {
            const d = document.createElement('div');
            d.style.height = (100 * c / most) + '%';
            d.title = `${(k * w).toFixed(2)}–${((k + 1) * w).toFixed(2)} bps: ${c} fills`;
            spreadBox.append(d);
          });
          document.getElementById('spreadNote').textContent = `${spread.length} taker fills, 0 to ${top.toFixed(2)} bps in ${bins} bins`;
        }
        // For a reader's console and the tests; when the charts were built (bench --report-month reads it).
        window.report = { price, profile, profileAt, selectTrade, data };
        document.documentElement.dataset.readyMs = performance.now().toFixed(0);
        """#
}

/// JSON as `JSONEncoder` writes it with sorted keys, `</` written `<\/` for a page's script element (HTML.scriptJSON).
struct ReportJSON {
    private let encoder: JSONEncoder

    init() {
        encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    }

    func encoded(_ value: some Encodable) throws -> String {
        HTML.scriptJSON(String(decoding: try encoder.encode(value), as: UTF8.self))
    }

    /// The elements' encodings joined by commas: an array's JSON without its brackets.
    func elements(_ values: [some Encodable]) throws -> String {
        values.isEmpty ? "" : String(try encoded(values).dropFirst().dropLast())
    }

    /// A scalar as it is written inside an array.
    func scalar(_ value: some Encodable) throws -> String { try elements([value]) }

    /// `[a,b,...]` from `count` elements made by `element`, encoded a slice at a time.
    func array<T: Encodable>(_ count: Int, _ out: (String) throws -> Void, _ element: (Int) -> T) throws {
        try out("[")
        var start = 0
        while start < count {
            let end = min(start + 2_048, count)
            try out((start > 0 ? "," : "") + elements((start..<end).map(element)))
            start = end
        }
        try out("]")
    }
}

/// A report's per-minute arrays (the bars, the equity curve, the profile frames), from memory or from the parts a
/// long run wrote as it went (`BacktestSpill`).
protocol ReportMinutes {
    var count: Int { get }
    var first: Millis? { get }
    var last: Millis? { get }
    var hasProfiles: Bool { get }
    func writeBars(_ out: (String) throws -> Void) throws
    func writeEquity(_ out: (String) throws -> Void) throws
    func writeProfileFrames(_ out: (String) throws -> Void) throws
}

/// A run's minutes held in memory.
struct MinutesInMemory: ReportMinutes {
    var features: [MinuteFeatures]
    var equity: [EquityRow]
    var profiles: ProfileHistory?
    var instrument: Instrument

    var count: Int { features.count }
    var first: Millis? { features.first?.ts }
    var last: Millis? { features.last?.ts }
    var hasProfiles: Bool { profiles != nil }

    func writeBars(_ out: (String) throws -> Void) throws {
        try ReportJSON().array(features.count, out) { ChartData.Bar(features[$0], instrument) }
    }

    func writeEquity(_ out: (String) throws -> Void) throws {
        try ReportJSON().array(equity.count, out) { ChartData.point(ts: equity[$0].ts, value: equity[$0].equity) }
    }

    func writeProfileFrames(_ out: (String) throws -> Void) throws {
        let frames = profiles?.frames ?? []
        try ReportJSON().array(frames.count, out) { ReportMinuteData.frame(frames[$0]) }
    }
}

/// One minute's data as the page reads it.
enum ReportMinuteData {
    /// `[t (s), key (1) or change (0), first bin, bin ticks, bins, values...]`, in ticks and lots.
    static func frame(_ f: ProfileHistory.Frame) -> [Int64] {
        [f.ts / 1_000, f.isKey ? 1 : 0, f.firstBin, f.binTicks, Int64(f.count)] + f.values
    }
}
