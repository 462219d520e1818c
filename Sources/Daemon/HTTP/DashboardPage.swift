import AgentConfig
import AgentSupport
import Charts

/// The dashboard's page and its script (issues 12, 27): self-contained, no CDN, fonts or other hosts. The charts are
/// drawn in the page by the chart layer (`ChartLayer`, on the vendored Lightweight Charts), both served by the agent
/// under `/assets/`; the script feeds them the `charts` events and fills in the numbers of the `status` events.
enum DashboardPage {
    static let contentSecurityPolicy =
        "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'unsafe-inline'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'"

    static let html = """
        <!doctype html>
        <html lang="en"><head><meta charset="utf-8"><title>auction-agent</title>
        <meta name="viewport" content="width=device-width, initial-scale=1">
        <style>
        body{font:13px system-ui,sans-serif;margin:0;color:#222;background:#f3f3f3}
        header{display:flex;flex-wrap:wrap;gap:14px;align-items:baseline;padding:8px 14px;background:#1d2733;color:#eee}
        header b{font-size:15px}header .k{color:#9ab}
        .badge{padding:1px 8px;border-radius:9px;background:#555;color:#fff;font-weight:600}
        .s-active{background:#2ca02c}.s-warming,.s-observing,.s-recovering,.s-starting{background:#1f77b4}
        .s-paused{background:#b58900}.s-halted,.s-flattening{background:#d62728}.s-stopping{background:#777}
        .h-healthy{color:#7d7}.h-degraded{color:#fc3}.h-unhealthy{color:#f66}
        #banner{display:none;padding:8px 14px;font-weight:600}
        #banner.warn{display:block;background:#fff3cd;color:#7a5b00}#banner.down{display:block;background:#d62728;color:#fff}
        main{display:grid;grid-template-columns:minmax(0,1fr) 340px;gap:12px;padding:12px}
        section{background:#fff;border:1px solid #ddd;border-radius:4px;padding:8px 10px;min-width:0}
        h2{font-size:13px;margin:0 0 6px;color:#456}h2 .note{font-weight:normal;color:#789}
        .wide{grid-column:1 / -1}.pair{display:grid;grid-template-columns:minmax(0,1fr) minmax(0,1fr);gap:12px}
        .side{display:flex;flex-direction:column;gap:12px;min-width:0}
        table{border-collapse:collapse;width:100%}td,th{padding:2px 6px;border-bottom:1px solid #eee;text-align:left;font-size:12px}
        dl{display:grid;grid-template-columns:auto 1fr;gap:3px 10px;margin:0}dt{color:#567}dd{margin:0;font-variant-numeric:tabular-nums}
        meter{width:100%}.legend span{margin-right:12px;font-size:11px}.tools{float:right;font-size:11px;color:#567}
        .tools label{margin-left:10px}.tools input[type=number]{width:48px}
        .sev-critical{color:#d62728;font-weight:600}.sev-warning{color:#a66a00}
        .level-ok{color:#1a7f1a}.level-warn{color:#a66a00;font-weight:600}.level-high{color:#fff;background:#d62728;padding:0 4px;border-radius:3px;font-weight:700}
        .big{font-size:20px;font-weight:600;font-variant-numeric:tabular-nums}
        .pricebox{display:flex;gap:0}.pricebox>#price{flex:1;min-width:0}.pricebox>#profile{width:170px;flex:none;height:380px}
        body.no-profile #profile{display:none}
        tr.k-entry td{color:#146414;font-weight:600}tr.k-exit td{color:#1f4e9c;font-weight:600}tr.k-veto td{color:#a66a00}
        tr.k-hold td{color:#888}
        footer{padding:4px 14px 12px;font-size:11px;color:#789}footer a{color:#567}
        body.offline .live,body.stalled .live{visibility:hidden}
        \(ChartLayer.css)
        </style></head>
        <body>
        <header>
          <b>auction-agent</b>
          <span><span class="k">env</span> <span id="env" class="live">–</span></span>
          <span><span class="k">mode</span> <span id="mode" class="live">–</span></span>
          <span id="state" class="badge live">–</span>
          <span><span class="k">health</span> <span id="health" class="live">–</span></span>
          <span><span class="k">data age</span> <span id="dataAge" class="live">–</span></span>
          <span><span class="k">ambiguous</span> <span id="ambHeader" class="live">–</span></span>
          <span><span class="k">heat</span> <span id="heatHeader" class="live">–</span></span>
          <span><span class="k">uptime</span> <span id="uptime" class="live">–</span></span>
          <span><span class="k">version</span> <span id="version" class="live">–</span></span>
          <span><span class="k">updated</span> <span id="updated">–</span></span>
          <span id="conn">connecting…</span>
        </header>
        <div id="banner"></div>
        <main>
          <section class="live"><h2>Price, value area and trades <span class="note">(4 h of 1-minute candles: drag to pan, wheel to zoom)</span>
            <span class="tools"><label><input type="checkbox" id="showProfile" checked> volume profile</label>
            <label><input type="checkbox" id="showLevels" checked> VAH / VAL / POC lines</label></span></h2>
            <p class="legend"><span style="color:#1f77b4">▭ value area</span><span style="color:#ff7f0e">— POC</span>
            <span style="color:#2ca02c">▲ long</span><span style="color:#d62728">▼ short</span><span>● exit (green win, red loss)</span>
            <span style="color:#d62728">┄ stop</span><span style="color:#2ca02c">┄ target</span></p>
            <div id="va">–</div>
            <div class="pricebox"><div id="price"></div><div id="profile"></div></div>
            <h2 style="margin-top:8px">Order flow per minute: normalised delta (bars) and quote imbalance EMA (line)</h2>
            <div id="flow"></div></section>
          <div class="side">
          <section class="live"><h2>Position</h2>
            <dl>
              <dt>position</dt><dd id="position">–</dd>
              <dt>stop</dt><dd id="stop">–</dd>
              <dt>targets</dt><dd id="targets">–</dd>
              <dt>unrealised</dt><dd id="upnl">–</dd>
              <dt>today</dt><dd id="today">–</dd>
              <dt>kill switch at</dt><dd id="kill">–</dd>
              <dt></dt><dd><meter id="killbar" min="0" max="1" low="0.5" high="0.8" optimum="0" value="0"></meter></dd>
              <dt>heat</dt><dd><span id="heat" class="big">–</span> <span id="heatNote"></span></dd>
              <dt>equity</dt><dd id="equity">–</dd>
              <dt>working orders</dt><dd id="ordersCount">–</dd>
            </dl>
            <h2 style="margin-top:10px">Orders</h2><table><tbody id="orders"></tbody></table>
          </section>
          <section class="live"><h2>Data quality</h2>
            <dl>
              <dt>ambiguous</dt><dd><span id="amb" class="big">–</span> <span id="ambNote"></span></dd>
              <dt>last 60 min</dt><dd id="amb60">–</dd>
              <dt>stale-aligned</dt><dd id="stale">–</dd>
              <dt>side accuracy</dt><dd id="accuracy">–</dd>
              <dt>window</dt><dd id="windowQuality">–</dd>
            </dl>
            <h2 style="margin-top:10px">Health</h2><ul id="reasons"></ul>
          </section>
          <section class="live"><h2>Performance since the agent started</h2>
            <dl>
              <dt>round trips</dt><dd id="trips">–</dd>
              <dt>win rate</dt><dd id="winRate">–</dd>
              <dt>profit factor</dt><dd id="profitFactor">–</dd>
              <dt>net</dt><dd id="net">–</dd>
              <dt>max drawdown</dt><dd id="maxDrawdown">–</dd>
            </dl>
            <table><thead><tr><th>setup</th><th>trips</th><th>win</th><th>PF</th><th>net</th></tr></thead><tbody id="bySetup"></tbody></table>
          </section>
          </div>
          <section class="live wide"><h2>Footprint, last 30 minutes: sell × buy (BTC) per price, delta coloured, imbalances bold
            <span class="tools"><label>imbalance ≥ <input type="number" id="ratio" value="3" min="1" step="0.5">× diagonally</label></span></h2>
            <div id="footprint"></div></section>
          <div class="pair wide">
            <section class="live"><h2>Equity since the agent started</h2><div id="equityChart"></div></section>
            <section class="live"><h2>Signals <span class="note">(entries, exits and vetoes; quiet minutes folded)</span></h2>
              <table><thead><tr><th>minute</th><th>action</th><th>reason</th><th>detected</th></tr></thead>
              <tbody id="signals"></tbody></table></section>
          </div>
          <section class="live wide"><h2>Alerts</h2><table><thead><tr><th>time</th><th>kind</th><th>message</th></tr></thead>
            <tbody id="alerts"></tbody></table></section>
        </main>
        <footer>Charts: <a href="https://www.tradingview.com/">TradingView Lightweight Charts™</a> v\(ChartLibrary.version), served by the agent itself (Apache-2.0, vendor/lightweight-charts/NOTICE).</footer>
        <script src="assets/lightweight-charts.js"></script>
        <script src="assets/auction-charts.js"></script>
        <script type="module" src="dashboard.js"></script>
        </body></html>

        """

    static let script = #"""
        // The dashboard's script: one event stream (/events), a `status` event every second and a `charts` event when a
        // chart changed. Nothing it shows outlives its source: without a frame for 5 s, or when the agent's engine is
        // silent, the numbers are hidden behind a banner that says why. The charts are the chart layer's
        // (window.AuctionCharts, /assets/auction-charts.js).
        const token = new URLSearchParams(location.hash.slice(1)).get('token');
        const $ = (id) => document.getElementById(id);
        const AC = window.AuctionCharts;
        let lastFrameAt = 0;
        let lastError = '';
        let thresholds = { ambiguousMax: 0.35, riskPct: 0.02 };
        let charts = null;
        const pct = (v, d = 1) => (v == null || Number.isNaN(v) ? '–' : (v * 100).toFixed(d) + ' %');

        // Heat: normal up to twice the risk a position is sized to, a warning above, high from five times.
        function heatLevel(h) {
          if (h == null) return ['', ''];
          if (h >= 5 * thresholds.riskPct) return ['level-high', `over 5× the ${pct(thresholds.riskPct, 0)} sized risk`];
          if (h > 2 * thresholds.riskPct) return ['level-warn', `over 2× the ${pct(thresholds.riskPct, 0)} sized risk`];
          return ['level-ok', ''];
        }
        // Ambiguous fraction: above signal.ambiguous_trade_frac_max a setup needs both confirmations.
        function ambiguousLevel(a) {
          if (a == null) return ['', ''];
          if (a > thresholds.ambiguousMax) return ['level-high', `above ${pct(thresholds.ambiguousMax, 0)}: setups need OF and qimb`];
          if (a > 0.8 * thresholds.ambiguousMax) return ['level-warn', `near the ${pct(thresholds.ambiguousMax, 0)} threshold`];
          return ['level-ok', ''];
        }
        function levelled(id, text, [cls, note], noteId) {
          $(id).textContent = text;
          $(id).className = (id === 'heat' || id === 'amb' ? 'big ' : 'live ') + cls;
          if (noteId) $(noteId).textContent = note;
        }

        const money = (v) => (v == null || Number.isNaN(v) ? '–' : Number(v).toFixed(2) + ' USDT');
        const duration = (s) => {
          if (s == null) return '–';
          const d = Math.floor(s / 86400), h = Math.floor((s % 86400) / 3600), m = Math.floor((s % 3600) / 60);
          return d > 0 ? `${d}d ${h}h` : h > 0 ? `${h}h ${m}m` : `${m}m ${Math.floor(s % 60)}s`;
        };

        function rows(tbody, items, cells) {
          const body = $(tbody);
          body.replaceChildren(...items.map((item) => {
            const tr = document.createElement('tr');
            for (const [text, cls] of cells(item)) {
              const td = document.createElement('td');
              td.textContent = text;
              if (cls) td.className = cls;
              tr.append(td);
            }
            return tr;
          }));
        }

        function banner(kind, text) {
          const b = $('banner');
          b.className = kind;
          b.textContent = text;
        }

        function renderStatus(f) {
          lastFrameAt = Date.now();
          thresholds = f.thresholds || thresholds;
          document.body.classList.remove('offline');
          $('conn').textContent = 'live';
          $('updated').textContent = f.generated.slice(11, 19) + ' UTC';
          document.body.classList.toggle('stalled', f.engineStalled);
          if (f.engineStalled) {
            banner('down', `The agent's engine has not run for ${Math.round(f.engineSilentMs / 1000)} s: numbers hidden until it does.`);
            return;
          }
          const s = f.status;
          if (!s) {
            banner('warn', 'The agent is starting (recovery not finished).');
            return;
          }
          $('env').textContent = s.environment;
          $('mode').textContent = s.mode;
          $('state').textContent = s.state;
          $('state').className = 'badge live s-' + s.state;
          $('state').title = s.stateReason;
          $('health').textContent = s.health.status;
          $('health').className = 'live h-' + s.health.status;
          $('dataAge').textContent = s.health.marketDataAgeMs == null ? 'no data yet' : (s.health.marketDataAgeMs / 1000).toFixed(1) + ' s';
          $('uptime').textContent = duration(s.uptimeSeconds);
          $('version').textContent = s.version;

          const p = s.position;
          $('position').textContent = p ? `${p.side} ${p.qty} BTC @ ${p.entryPrice} (${p.setup})${p.closing ? ', closing' : ''}` : 'flat';
          $('stop').textContent = p ? p.stop : '–';
          $('targets').textContent = p ? [p.tp1 && 'TP1 ' + p.tp1, p.tp2 && 'TP2 ' + p.tp2].filter(Boolean).join(', ') || '–' : '–';
          $('upnl').textContent = money(s.pnl.unrealizedPnL);
          $('today').textContent = money(s.pnl.todayPnL);
          const dl = s.pnl.dailyLossLimit, ks = s.pnl.killSwitchLoss, kill = [];
          if (dl != null) kill.push(`daily ${money(dl)} realised (${money(s.pnl.dailyLossDistance)} left)` + (s.pnl.dailyLossLimitReached ? ' REACHED' : ''));
          if (ks != null) kill.push(`halt ${money(ks)} (${money(s.pnl.killSwitchDistance)} left)` + (s.pnl.killSwitchActive ? ' ACTIVE' : ''));
          $('kill').textContent = kill.join('; ') || 'off';
          const used = dl != null ? -Math.min(0, s.pnl.realizedToday ?? 0) / Math.abs(dl) : ks != null ? -Math.min(0, s.pnl.todayPnL) / Math.abs(ks) : 0;
          $('killbar').value = Math.min(1, Math.max(0, used || 0));
          const heat = s.heat == null ? '–' : pct(s.heat, 2);
          levelled('heat', heat, heatLevel(s.heat), 'heatNote');
          levelled('heatHeader', heat, heatLevel(s.heat));
          $('equity').textContent = money(s.pnl.equity);
          $('ordersCount').textContent = String(s.workingOrders);

          const va = s.valueArea;
          $('windowQuality').textContent = va
            ? `${va.minutesInWindow} min` + (va.approximateMinutes > 0 ? `, ${va.approximateMinutes} from klines (${pct(va.approximateShare, 0)} of volume)` : ', all from trades')
            : '–';
          $('va').textContent = va
            ? `POC ${va.poc ?? '–'}  VAH ${va.vah ?? '–'}  VAL ${va.val ?? '–'}  ${va.valid ? 'valid' : 'INVALID'}, bin ${va.binWidth}, ` +
              `${va.minutesInWindow} min` + (va.approximateMinutes > 0 ? `, ${Math.round(va.approximateShare * 100)}% from klines` : '') +
              `, close ${va.close} at ${va.minute.slice(11, 16)}`
            : 'no minute has closed yet';

          $('reasons').replaceChildren(...(s.health.reasons.length ? s.health.reasons : ['healthy']).map((r) => {
            const li = document.createElement('li');
            li.textContent = r;
            return li;
          }));
          rows('orders', f.orders, (o) => [[`${o.side} ${o.qty} ${o.type}${o.price ? ' @ ' + o.price : ''}`], [o.purpose]]);
          rows('signals', f.signals, (g) => [
            [g.count > 1 ? `${g.minute.slice(11, 16)}–${g.until.slice(11, 16)}` : g.minute.slice(11, 16)],
            [g.count > 1 ? `${g.action} ×${g.count}` : g.action], [g.reason], [g.detected.join(' ')],
          ]);
          $('signals').querySelectorAll('tr').forEach((tr, n) => { tr.className = 'k-' + f.signals[n].kind; });
          rows('alerts', f.alerts, (a) => [[a.time.slice(5, 19).replace('T', ' ')], [a.kind, 'sev-' + a.severity], [a.message]]);

          const stale = s.health.reasons.filter((r) => /stale|stream|gap|behind/.test(r));
          if (s.health.status !== 'healthy') banner(stale.length ? 'down' : 'warn', s.health.reasons.join('; '));
          else banner('', '');
        }

        function makeCharts(decimals) {
          const price = AC.priceChart($('price'), { height: 380, decimals });
          const made = {
            price,
            profile: AC.profilePanel($('profile'), price),
            flow: AC.flowChart($('flow'), price, { height: 130 }),
            footprint: AC.footprintTable($('footprint'), { maxRows: 40, ratio: Number($('ratio').value) || 3 }),
            equity: AC.lineChart($('equityChart'), { height: 260, title: 'equity' }),
          };
          $('showProfile').addEventListener('change', (e) => { document.body.classList.toggle('no-profile', !e.target.checked); made.profile.layout(); });
          $('showLevels').addEventListener('change', (e) => price.showLevels(e.target.checked));
          $('ratio').addEventListener('change', (e) => { const r = Number(e.target.value); if (r >= 1) made.footprint.setRatio(r); });
          return made;
        }

        // Data quality from the minutes: the last closed minute, and the last hour (volume-weighted).
        function renderQuality(bars) {
          const last = [...bars].reverse().find((b) => b.vol > 0);
          const hour = bars.slice(-60).filter((b) => b.vol > 0);
          const weighted = (key, only) => {
            const use = hour.filter((b) => only == null || b[only] != null);
            const vol = use.reduce((a, b) => a + b.vol, 0);
            return vol > 0 ? use.reduce((a, b) => a + b[key] * b.vol, 0) / vol : null;
          };
          const a = last ? last.amb : null;
          levelled('amb', pct(a), ambiguousLevel(a), 'ambNote');
          levelled('ambHeader', pct(a), ambiguousLevel(a));
          const a60 = weighted('amb');
          $('amb60').textContent = pct(a60) + (a60 != null && a60 > thresholds.ambiguousMax ? ' (above the threshold)' : '');
          $('amb60').className = ambiguousLevel(a60)[0];
          $('stale').textContent = last ? `${pct(last.stale)} of prints (hour ${pct(weighted('stale'))})` : '–';
          const acc = weighted('acc', 'acc');
          $('accuracy').textContent = acc == null ? 'no exchange side in the feed' : `${pct(acc)} of sided volume (hour)`;
        }

        function renderPerformance(p) {
          const o = p.overall;
          $('trips').textContent = `${o.trips} (${o.wins} won)`;
          $('winRate').textContent = pct(o.winRate);
          $('profitFactor').textContent = o.profitFactor == null ? (o.trips ? 'no loss yet' : '–') : o.profitFactor.toFixed(2);
          $('net').textContent = money(o.net);
          $('maxDrawdown').textContent = money(p.maxDrawdown) + (p.peakEquity ? ` (${pct(p.maxDrawdown / p.peakEquity)} of the peak)` : '');
          rows('bySetup', p.bySetup, (x) => [[x.setup], [String(x.trips)], [pct(x.winRate, 0)], [x.profitFactor == null ? '–' : x.profitFactor.toFixed(2)], [money(x.net)]]);
        }

        function renderCharts(c) {
          if (!charts) charts = makeCharts(c.decimals);
          charts.price.set({ bars: c.bars, trips: c.trips, position: c.position });
          charts.flow.set(c.bars);
          charts.profile.set(c.profile);
          charts.footprint.set(c.footprint);
          charts.equity.set(c.equity);
          renderQuality(c.bars);
          renderPerformance(c.performance);
        }

        function handle(block) {
          let name = 'message';
          let data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith('event: ')) name = line.slice(7);
            else if (line.startsWith('data: ')) data += line.slice(6);
          }
          if (!data) return;
          const payload = JSON.parse(data);
          if (name === 'status') renderStatus(payload);
          else if (name === 'charts') renderCharts(payload);
        }

        function offline(why) {
          document.body.classList.add('offline');
          $('conn').textContent = 'disconnected';
          banner('down', `Agent unreachable: ${why}. Numbers hidden; reconnecting every 2 s.`);
        }

        async function connect() {
          try {
            const response = await fetch('events', { headers: token ? { Authorization: 'Bearer ' + token } : {}, cache: 'no-store' });
            if (response.status === 401) throw new Error('the token is missing or wrong (open the page with #token=...)');
            if (!response.ok) throw new Error('HTTP ' + response.status);
            document.body.classList.remove('offline');
            $('conn').textContent = 'live';
            const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
            let buffer = '';
            for (;;) {
              const { value, done } = await reader.read();
              if (done) break;
              buffer += value;
              let cut;
              while ((cut = buffer.indexOf('\n\n')) >= 0) {
                handle(buffer.slice(0, cut));
                buffer = buffer.slice(cut + 2);
              }
            }
            throw new Error('the stream ended');
          } catch (e) {
            lastError = e.message;
            offline(lastError);
            setTimeout(connect, 2000);
          }
        }

        // A stream that stays open but stops delivering is as bad as a closed one.
        setInterval(() => {
          if (lastFrameAt && Date.now() - lastFrameAt > 5000 && !document.body.classList.contains('offline')) {
            offline(`no update for ${Math.round((Date.now() - lastFrameAt) / 1000)} s`);
          }
        }, 1000);

        connect();

        """#
}
