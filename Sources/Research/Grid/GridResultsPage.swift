import AgentConfig
import AgentSupport
import Charts
import Engine
import Foundation

/// `results.html`: the grid's runs to browse (README, "Grid search"). One file, opened from disk, no network:
/// a table of every run that sorts on any column, and a heat map of any metric over any two of the grid's
/// parameters (one cell per combination of the two; each cell the best run with those values, whatever the other
/// parameters were). The runs are the same as results.csv's, in its rank order.
public func gridResultsHTML(
    _ ranked: [GridRow], spec: GridSpec, rankBy: RankMetric, title: String, reports: [Int: String] = [:]
) -> String {
    let keys = spec.parameters.map(\.key)
    var runs: [JSONValue] = []
    for (n, row) in ranked.enumerated() {
        var o = JSONObject()
        o["rank"] = .integer(n + 1)
        o["run"] = .integer(row.index + 1)
        if let report = reports[row.index + 1] { o["report"] = .string(report) }
        var p = JSONObject()
        for (key, value) in row.parameters { p[key] = .string(value.description) }
        o["parameters"] = .object(p)
        let s = row.summary
        var m = JSONObject()
        func opt(_ d: Double?) -> JSONValue { d.map { .number($0) } ?? .null }
        m["trades"] = .integer(s.trades)
        m["net_pnl"] = .number(s.netPnL)
        m["gross_pnl"] = .number(s.grossPnL)
        m["fees"] = .number(s.fees)
        m["funding"] = .number(s.funding)
        m["win_rate"] = opt(s.winRate)
        m["profit_factor"] = opt(s.profitFactor)
        m["max_drawdown"] = .number(s.maxDrawdown)
        m["max_drawdown_pct"] = .number(s.maxDrawdownPct)
        m["sharpe"] = opt(s.sharpe)
        m["final_equity"] = .number(s.finalEquity)
        o["metrics"] = .object(m)
        runs.append(.object(o))
    }
    var data = JSONObject()
    data["rank_by"] = .string(rankBy.rawValue)
    data["parameters"] = .array(keys.map { .string($0) })
    data["runs"] = .array(runs)
    let json = HTML.scriptJSON(JSONValue.object(data).render(indent: 0))
    return """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>\(HTML.escape(title))</title>
        <meta http-equiv="Content-Security-Policy" content="default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'">
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <style>
        body{font:13px system-ui,sans-serif;margin:16px;color:#222}
        h1{font-size:17px}h2{font-size:14px;margin-top:22px}
        table{border-collapse:collapse}td,th{padding:3px 7px;border-bottom:1px solid #e3e3e3;text-align:right;font-variant-numeric:tabular-nums}
        #runs th{cursor:pointer;user-select:none;background:#f4f6f8;position:sticky;top:0;white-space:nowrap}
        #runs th.asc::after{content:" ▲"}#runs th.desc::after{content:" ▼"}
        #heat td.cell{min-width:64px;text-align:center;color:#111}#heat th{background:#f4f6f8}
        label{margin-right:14px}.note{color:#667}
        </style></head>
        <body>
        <h1>\(HTML.escape(title))</h1>
        <p class="note"><span id="count"></span> runs, ranked by \(HTML.escape(rankBy.rawValue)) (results.csv holds the same rows).
        Click a column to sort; the heat map shows, for each pair of values of the two parameters chosen, the best run
        with those values by the metric chosen. Runs kept with <code>grid --keep-reports N</code> link their report.</p>
        <h2>Heat map</h2>
        <p><label>across <select id="x"></select></label><label>down <select id="y"></select></label>
        <label>metric <select id="metric"></select></label></p>
        <table id="heat"></table>
        <h2>Runs</h2>
        <table id="runs"><thead><tr></tr></thead><tbody></tbody></table>
        <script type="application/json" id="grid-data">\(json)</script>
        <script>
        \(gridResultsScript)
        </script>
        </body></html>

        """
}

/// The page's script: builds the table and the heat map from the embedded data; no network.
private let gridResultsScript = #"""
    const data = JSON.parse(document.getElementById('grid-data').textContent);
    const metrics = ['net_pnl', 'sharpe', 'profit_factor', 'win_rate', 'final_equity', 'trades', 'max_drawdown_pct',
      'max_drawdown', 'gross_pnl', 'fees', 'funding'];
    // Smaller is better for these; larger for the others.
    const lowerIsBetter = new Set(['max_drawdown', 'max_drawdown_pct', 'fees']);
    const columns = ['rank', 'run', ...data.parameters, ...metrics, 'report'];
    const value = (r, key) => key === 'rank' || key === 'run' || key === 'report' ? r[key]
      : (key in r.parameters ? r.parameters[key] : r.metrics[key]);
    const numeric = v => v !== null && v !== '' && !isNaN(Number(v));
    const show = v => v === null || v === undefined ? '' : (typeof v === 'number' ? String(Math.round(v * 1e4) / 1e4) : v);
    const better = (key, a, b) => {
      if (a === null) return false;
      if (b === null) return true;
      return lowerIsBetter.has(key) ? a < b : a > b;
    };
    document.getElementById('count').textContent = data.runs.length;

    // The table: click a header to sort by it (again to reverse).
    const head = document.querySelector('#runs thead tr');
    const body = document.querySelector('#runs tbody');
    let sortKey = 'rank', ascending = true;
    function renderRuns() {
      const rows = data.runs.slice().sort((a, b) => {
        const x = value(a, sortKey), y = value(b, sortKey);
        if (x === null || x === undefined) return 1;
        if (y === null || y === undefined) return -1;
        const c = numeric(x) && numeric(y) ? Number(x) - Number(y) : String(x).localeCompare(String(y));
        return ascending ? c : -c;
      });
      body.replaceChildren(...rows.map(r => {
        const tr = document.createElement('tr');
        tr.id = 'run-' + r.run;
        for (const key of columns) {
          const td = document.createElement('td');
          if (key === 'report' && r.report) {
            const a = document.createElement('a');
            a.href = r.report;
            a.textContent = 'report';
            td.appendChild(a);
          } else {
            td.textContent = show(value(r, key));
          }
          tr.appendChild(td);
        }
        return tr;
      }));
      for (const th of head.children) {
        th.className = th.dataset.key === sortKey ? (ascending ? 'asc' : 'desc') : '';
      }
    }
    for (const key of columns) {
      const th = document.createElement('th');
      th.textContent = key;
      th.dataset.key = key;
      th.addEventListener('click', () => {
        ascending = sortKey === key ? !ascending : true;
        sortKey = key;
        renderRuns();
      });
      head.appendChild(th);
    }

    // The heat map: one cell per pair of values of the two parameters chosen.
    const selects = ['x', 'y', 'metric'].map(id => document.getElementById(id));
    const [xSel, ySel, metricSel] = selects;
    for (const [sel, options] of [[xSel, data.parameters], [ySel, data.parameters], [metricSel, metrics]]) {
      for (const o of options) {
        const opt = document.createElement('option');
        opt.value = o;
        opt.textContent = o;
        sel.appendChild(opt);
      }
    }
    xSel.value = data.parameters[0] || '';
    ySel.value = data.parameters[1] || data.parameters[0] || '';
    metricSel.value = data.rank_by;
    const distinct = key => {
      const seen = [];
      for (const r of data.runs) if (!seen.includes(r.parameters[key])) seen.push(r.parameters[key]);
      return seen.sort((a, b) => numeric(a) && numeric(b) ? Number(a) - Number(b) : String(a).localeCompare(String(b)));
    };
    function renderHeat() {
      const table = document.getElementById('heat');
      const xKey = xSel.value, yKey = ySel.value, metric = metricSel.value;
      const xs = distinct(xKey), ys = yKey === xKey ? [''] : distinct(yKey);
      const best = new Map();
      for (const r of data.runs) {
        const cell = r.parameters[xKey] + '\u0000' + (yKey === xKey ? '' : r.parameters[yKey]);
        const v = r.metrics[metric];
        const held = best.get(cell);
        if (!held || better(metric, v, held.metrics[metric])) best.set(cell, r);
      }
      const values = [...best.values()].map(r => r.metrics[metric]).filter(v => v !== null);
      const lo = Math.min(...values), hi = Math.max(...values);
      const header = document.createElement('tr');
      header.appendChild(document.createElement('th')).textContent = yKey === xKey ? '' : yKey + ' \\ ' + xKey;
      for (const x of xs) header.appendChild(document.createElement('th')).textContent = x;
      const rows = [header];
      for (const y of ys) {
        const tr = document.createElement('tr');
        tr.appendChild(document.createElement('th')).textContent = y;
        for (const x of xs) {
          const td = document.createElement('td');
          td.className = 'cell';
          const r = best.get(x + '\u0000' + y);
          if (r) {
            const v = r.metrics[metric];
            td.textContent = show(v);
            td.title = 'run ' + r.run + ' (rank ' + r.rank + ')' + (r.report ? ', report kept' : '');
            if (v !== null && hi > lo) {
              let t = (v - lo) / (hi - lo);
              if (lowerIsBetter.has(metric)) t = 1 - t;
              td.style.background = 'hsl(' + Math.round(t * 120) + ',65%,' + (82 - Math.round(t * 10)) + '%)';
            }
          }
          tr.appendChild(td);
        }
        rows.push(tr);
      }
      table.replaceChildren(...rows);
    }
    for (const sel of selects) sel.addEventListener('change', renderHeat);
    renderRuns();
    renderHeat();
    document.body.dataset.ready = 'true';
    """#
