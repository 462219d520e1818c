// swift-format-ignore-file
// (The file is one JavaScript string.)

/// The chart layer (docs/DESIGN.md "Charts"): the one script the dashboard, report.html and the research pages draw
/// with, on the vendored TradingView Lightweight Charts (`ChartLibrary`). Prices, candles, the value area, trades
/// and the open position are the library's canvas (zoom, pan, crosshair); the volume profile and the footprint are
/// DOM (bars and a table of numbers) that a reader can select and a test can read. Its input is `ChartData`'s JSON.
/// The agent serves it at `/assets/auction-charts.js`; a report written to a file embeds it.
package enum ChartLayer {
    /// The layer's styles: a page puts them in its `<style>` once.
    package static let css = """
        .ac-profile{background:#fafafa;border-left:1px solid #ddd}
        .ac-bin{position:absolute;left:0;background:#9ecae1;opacity:.75}.ac-bin.ac-va{background:#1f77b4}
        .ac-bin.ac-poc{background:#ff7f0e;opacity:1}
        .ac-level{position:absolute;right:2px;font:10px system-ui,sans-serif;color:#1f77b4;border-top:1px dashed #1f77b4;width:100%;text-align:right;pointer-events:none}
        .ac-level.poc{color:#b35900;border-top:1px solid #ff7f0e}
        .ac-caption{position:absolute;bottom:2px;right:4px;font:10px system-ui,sans-serif;color:#777}
        .ac-empty{color:#888;padding:12px;font-size:12px}
        .ac-footprint{overflow-x:auto}
        .ac-footprint table{border-collapse:collapse;table-layout:fixed;width:100%;font:9px ui-monospace,"DejaVu Sans Mono",monospace;letter-spacing:-0.4px}
        .ac-footprint td,.ac-footprint th{font-size:9px}
        .ac-footprint th{font-weight:normal;color:#666;padding:0 2px;white-space:nowrap;text-align:center}
        .ac-footprint th.ac-price{text-align:right;width:56px}
        .ac-footprint td{padding:0;height:14px;text-align:center;white-space:nowrap;border:1px solid #f2f2f2;overflow:hidden}
        .ac-footprint .ac-sell{color:#a31515}.ac-footprint .ac-buy{color:#146414}.ac-footprint .ac-x{color:#999;font-size:7px}
        .ac-footprint .ac-imbalance{font-weight:700;text-decoration:underline}
        .ac-footprint td.ac-vah{border-top:2px solid #1f77b4}.ac-footprint td.ac-val{border-bottom:2px solid #1f77b4}
        .ac-footprint td.ac-pocrow{box-shadow:inset 0 0 0 1px #ff7f0e}
        """

    package static let script = #"""
// auction-trader's chart layer (Sources/Charts/ChartLayer.swift): window.AuctionCharts. Needs window.LightweightCharts.
(() => {
  'use strict';
  const LC = window.LightweightCharts;
  const colour = {
    up: '#2ca02c', down: '#d62728', va: '#1f77b4', poc: '#ff7f0e', stop: '#d62728', target: '#2ca02c',
    entry: '#555', qimb: '#9467bd', equity: '#2ca02c', drawdown: '#d62728', grid: '#eeeeee', text: '#555555',
  };
  const two = (n) => String(n).padStart(2, '0');
  /** UTC "YYYY-MM-DD HH:MM" of a time in seconds. */
  const utc = (t) => {
    const d = new Date(t * 1000);
    return `${d.getUTCFullYear()}-${two(d.getUTCMonth() + 1)}-${two(d.getUTCDate())} ${two(d.getUTCHours())}:${two(d.getUTCMinutes())}`;
  };
  const fixed = (v, d) => (v == null || Number.isNaN(v) ? '–' : Number(v).toFixed(d));
  /** A BTC volume in three characters (four under 0.01 and from 1000): .004, .12, 1.3, 12, 123, 1.2k, 12k. */
  const volume = (v) => {
    if (!v) return '';
    if (v >= 9999.5) return (v / 1000).toFixed(0) + 'k';
    if (v >= 999.5) return (v / 1000).toFixed(1) + 'k';
    if (v >= 9.95) return v.toFixed(0);
    if (v >= 0.995) return v.toFixed(1);
    return (v < 0.0095 ? v.toFixed(3) : v.toFixed(2)).replace(/^0/, '');
  };
  const element = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text != null) e.textContent = text;
    return e;
  };

  function chartOptions(height, priceDecimals) {
    return {
      autoSize: true,
      height,
      layout: { background: { color: '#ffffff' }, textColor: colour.text, fontSize: 11, fontFamily: 'system-ui, sans-serif' },
      grid: { vertLines: { color: colour.grid }, horzLines: { color: colour.grid } },
      rightPriceScale: { borderColor: '#cccccc' },
      timeScale: { borderColor: '#cccccc', timeVisible: true, secondsVisible: false, rightOffset: 2 },
      crosshair: { mode: LC.CrosshairMode.Normal },
      localization: { timeFormatter: utc, priceFormatter: (p) => fixed(p, priceDecimals) },
    };
  }

  function chartIn(el, height, priceDecimals) {
    el.style.height = height + 'px';
    el.style.position = 'relative';
    return LC.createChart(el, chartOptions(height, priceDecimals));
  }

  /**
   * Drawn under the candles: the value area as a band (VAL to VAH over each minute where it was valid) and
   * horizontal segments (a trade's stop and targets between its entry and exit). `onDraw` runs after each frame
   * (the volume profile follows the price scale with it).
   */
  class Overlay {
    constructor(onDraw) {
      this.band = [];
      this.segments = [];
      this.onDraw = onDraw;
      const self = this;
      this.view = { zOrder: () => 'bottom', renderer: () => ({ draw: (target) => self.draw(target) }) };
    }
    attached({ chart, series, requestUpdate }) {
      this.chart = chart;
      this.series = series;
      this.requestUpdate = requestUpdate;
    }
    detached() { this.chart = null; }
    updateAllViews() {}
    paneViews() { return [this.view]; }
    set(band, segments) {
      this.band = band;
      this.segments = segments;
      if (this.requestUpdate) this.requestUpdate();
    }
    draw(target) {
      if (!this.chart) return;
      const time = this.chart.timeScale();
      const s = this.series;
      const range = time.getVisibleLogicalRange();
      target.useMediaCoordinateSpace(({ context: g }) => {
        const x0 = time.logicalToCoordinate(0), x1 = time.logicalToCoordinate(1);
        const w = x0 != null && x1 != null ? Math.max(1, x1 - x0) : 6;
        g.fillStyle = 'rgba(31,119,180,0.10)';
        if (range) {
          const from = Math.max(0, Math.floor(range.from) - 1), to = Math.min(this.band.length - 1, Math.ceil(range.to) + 1);
          for (let k = from; k <= to; k++) {
            const b = this.band[k];
            if (!b || b.vah == null) continue;
            const x = time.logicalToCoordinate(k), y1 = s.priceToCoordinate(b.vah), y2 = s.priceToCoordinate(b.val);
            if (x == null || y1 == null || y2 == null) continue;
            g.fillRect(x - w / 2, y1, w, y2 - y1);
          }
        }
        for (const seg of this.segments) {
          const xa = time.timeToCoordinate(seg.from), xb = time.timeToCoordinate(seg.to), y = s.priceToCoordinate(seg.price);
          if (xa == null || xb == null || y == null) continue;
          g.strokeStyle = seg.colour;
          g.lineWidth = 1.5;
          g.setLineDash(seg.dash ? [4, 3] : []);
          g.beginPath();
          g.moveTo(xa, y);
          g.lineTo(xb + w / 2, y);
          g.stroke();
        }
        g.setLineDash([]);
      });
      if (this.onDraw) requestAnimationFrame(this.onDraw);
    }
  }

  /** The stop and targets of each trip as segments from its entry to its exit. */
  function tripSegments(trips) {
    const out = [];
    for (const t of trips) {
      if (t.stop != null) out.push({ from: t.entryT, to: t.exitT, price: t.stop, colour: colour.stop, dash: true });
      for (const p of [t.tp1, t.tp2]) if (p != null) out.push({ from: t.entryT, to: t.exitT, price: p, colour: colour.target, dash: true });
    }
    return out;
  }

  function tripMarkers(trips, labelled) {
    const out = [];
    for (const t of trips) {
      const long = t.side === 'long';
      out.push({
        time: t.entryT, position: long ? 'belowBar' : 'aboveBar', shape: long ? 'arrowUp' : 'arrowDown',
        color: long ? colour.up : colour.down, text: labelled ? `#${t.n} ${t.setup}` : t.setup,
      });
      out.push({
        time: t.exitT, position: long ? 'aboveBar' : 'belowBar', shape: 'circle',
        color: t.net > 0 ? colour.up : colour.down, text: labelled ? `#${t.n} ${t.reason}` : t.reason,
      });
    }
    return out.sort((a, b) => a.time - b.time);
  }

  /**
   * Candles with the value area (band and VAH/VAL/POC step lines), the trips (markers, stop and target segments)
   * and the open position's entry, stop and targets as price lines. `set(data)` replaces everything.
   */
  function priceChart(el, { height = 380, decimals = 1, labelled = false } = {}) {
    const chart = chartIn(el, height, decimals);
    const candles = chart.addCandlestickSeries({
      upColor: colour.up, downColor: colour.down, borderVisible: false, wickUpColor: colour.up, wickDownColor: colour.down,
      priceLineVisible: false,
    });
    const level = (color, title, style) => chart.addLineSeries({
      color, lineWidth: 1, lineStyle: style, lineType: LC.LineType.WithSteps, title, priceLineVisible: false,
      lastValueVisible: true, crosshairMarkerVisible: false,
    });
    const vah = level(colour.va, 'VAH', LC.LineStyle.Dashed);
    const val = level(colour.va, 'VAL', LC.LineStyle.Dashed);
    const poc = level(colour.poc, 'POC', LC.LineStyle.Solid);
    const listeners = [];
    const overlay = new Overlay(() => listeners.forEach((f) => f()));
    candles.attachPrimitive(overlay);
    let priceLines = [];
    let hasBars = false;
    const lines = (list) => {
      for (const p of priceLines) candles.removePriceLine(p);
      priceLines = list.filter(([price]) => price != null).map(([price, color, title, style]) => candles.createPriceLine({ price, color, title, lineStyle: style, lineWidth: 1, axisLabelVisible: true }));
    };
    // Entry, stop and targets of a position or a trip.
    const levelsOf = (x, entryTitle) => [
      [x.entry, colour.entry, entryTitle, LC.LineStyle.Solid],
      [x.stop, colour.stop, 'stop', LC.LineStyle.Dashed],
      [x.tp1, colour.target, 'TP1', LC.LineStyle.Dashed],
      [x.tp2, colour.target, 'TP2', LC.LineStyle.Dashed],
    ];

    const api = {
      chart, candles,
      /** Calls `f` after each frame (the scales may have moved). */
      onDraw(f) { listeners.push(f); },
      set({ bars: b = [], trips: t = [], position = null }) {
        const first = !hasBars;
        hasBars = hasBars || b.length > 0;
        candles.setData(b.map((x) => ({ time: x.t, open: x.o, high: x.h, low: x.l, close: x.c })));
        const line = (key) => b.map((x) => (x[key] == null ? { time: x.t } : { time: x.t, value: x[key] }));
        vah.setData(line('vah'));
        val.setData(line('val'));
        poc.setData(line('poc'));
        overlay.set(b, tripSegments(t));
        candles.setMarkers(tripMarkers(t, labelled));
        lines(position ? levelsOf(position, `${position.side} entry`) : []);
        if (first && b.length) chart.timeScale().fitContent();
      },
      /** One trade's entry, stop, targets and exit as price lines (nil: none). */
      highlight(trip) {
        lines(trip ? levelsOf(trip, `#${trip.n} ${trip.side} entry`).concat([[trip.exit, trip.net > 0 ? colour.up : colour.down, `#${trip.n} exit`, LC.LineStyle.Solid]]) : []);
      },
      /** The price lines shown now: `[price, colour, title]`. */
      get lines() { return priceLines.map((p) => { const o = p.options(); return [o.price, o.color, o.title]; }); },
      /** Shows the value area's VAH/VAL/POC lines (the band stays). */
      showLevels(on) { for (const s of [vah, val, poc]) s.applyOptions({ visible: on }); },
      /** Zooms to [from, to] (s), with a margin of `pad` minutes either side. */
      zoomTo(from, to, pad = 20) {
        chart.timeScale().setVisibleRange({ from: from - pad * 60, to: to + pad * 60 });
      },
    };
    return api;
  }

  /** A chart under the price chart that follows its time scale (zoom and pan move both). */
  function follow(leader, follower) {
    leader.timeScale().subscribeVisibleLogicalRangeChange((r) => { if (r) follower.timeScale().setVisibleLogicalRange(r); });
  }

  /** Normalised order flow per minute (bars, green buying, red selling) and the quote-imbalance EMA (line). */
  function flowChart(el, price, { height = 130 } = {}) {
    const chart = chartIn(el, height, 2);
    chart.applyOptions({ timeScale: { visible: false } });
    const delta = chart.addHistogramSeries({ priceLineVisible: false, lastValueVisible: false, title: 'OF norm' });
    const qimb = chart.addLineSeries({ color: colour.qimb, lineWidth: 1, priceLineVisible: false, lastValueVisible: false, title: 'qimb EMA' });
    follow(price.chart, chart);
    return {
      chart,
      set(bars) {
        delta.setData(bars.map((b) => ({ time: b.t, value: b.of, color: b.of >= 0 ? 'rgba(44,160,44,0.7)' : 'rgba(214,39,40,0.7)' })));
        qimb.setData(bars.map((b) => (b.qimb == null ? { time: b.t } : { time: b.t, value: b.qimb })));
      },
    };
  }

  /** A line of `[t, value]` points (equity), and under it, when `drawdownFrom` is given, the drawdown from the peak. */
  function lineChart(el, { height = 220, decimals = 2, title = '', colour: c = colour.equity } = {}) {
    const chart = chartIn(el, height, decimals);
    const series = chart.addLineSeries({ color: c, lineWidth: 2, priceLineVisible: false, title });
    return {
      chart, series,
      set(points) {
        series.setData(points.map(([t, v]) => ({ time: t, value: v })));
        chart.timeScale().fitContent();
      },
    };
  }

  /** The drawdown from the running peak (started at `start`) of `[t, equity]` points, as a red area below zero. */
  function drawdownChart(el, { height = 120, start = null } = {}) {
    const chart = chartIn(el, height, 2);
    const area = chart.addAreaSeries({
      lineColor: colour.drawdown, topColor: 'rgba(214,39,40,0.05)', bottomColor: 'rgba(214,39,40,0.4)', lineWidth: 1,
      priceLineVisible: false, title: 'drawdown', invertFilledArea: true,
    });
    return {
      chart,
      set(points) {
        let peak = start ?? (points.length ? points[0][1] : 0);
        area.setData(points.map(([t, v]) => { peak = Math.max(peak, v); return { time: t, value: v - peak }; }));
        chart.timeScale().fitContent();
      },
    };
  }

  /**
   * The volume profile beside a price chart: one bar per bin of the window's profile (the bins the value area is
   * computed on), its length the bin's volume, the value area's bins shaded, the POC's bin marked. It follows the
   * price chart's scale, so a bin sits at its prices.
   */
  function profilePanel(el, price) {
    el.classList.add('ac-profile');
    el.style.position = 'relative';
    el.style.overflow = 'hidden';
    let profile = null;
    const layout = () => {
      if (!profile) return;
      const bars = el.querySelectorAll('.ac-bin');
      const largest = Math.max(...profile.volumes, 1e-12);
      const w = el.clientWidth - 4;
      bars.forEach((bar) => {
        const k = Number(bar.dataset.bin);
        const lo = profile.low + k * profile.width;
        const yTop = price.candles.priceToCoordinate(lo + profile.width), yBottom = price.candles.priceToCoordinate(lo);
        if (yTop == null || yBottom == null) { bar.style.display = 'none'; return; }
        bar.style.display = '';
        bar.style.top = Math.min(yTop, yBottom) + 'px';
        bar.style.height = Math.max(1, Math.abs(yBottom - yTop) - 1) + 'px';
        bar.style.width = Math.max(1, (w * profile.volumes[k]) / largest) + 'px';
      });
      for (const [cls, p] of [['vah', profile.vah], ['val', profile.val], ['poc', profile.poc]]) {
        const mark = el.querySelector('.ac-level.' + cls);
        const y = p == null ? null : price.candles.priceToCoordinate(p);
        if (!mark) continue;
        mark.style.display = y == null ? 'none' : '';
        if (y != null) mark.style.top = y + 'px';
      }
    };
    price.onDraw(layout);
    return {
      set(p) {
        profile = p;
        el.replaceChildren();
        if (!p) { el.append(element('div', 'ac-empty', 'no profile yet')); return; }
        p.volumes.forEach((v, k) => {
          const lo = p.low + k * p.width;
          const bar = element('div', 'ac-bin');
          bar.dataset.bin = String(k);
          bar.dataset.low = String(lo);
          bar.dataset.volume = String(v);
          if (p.val != null && lo >= p.val - 1e-9 && lo + p.width <= p.vah + 1e-9) bar.classList.add('ac-va');
          if (k === p.pocBin) bar.classList.add('ac-poc');
          bar.title = `${fixed(lo, 1)}–${fixed(lo + p.width, 1)}: ${fixed(v, 3)} BTC` + (k === p.pocBin ? ' (POC)' : '');
          el.append(bar);
        });
        for (const [cls, v] of [['vah', p.vah], ['val', p.val], ['poc', p.poc]]) {
          if (v == null) continue;
          const mark = element('div', 'ac-level ' + cls, `${cls.toUpperCase()} ${fixed(v, 1)}`);
          el.append(mark);
        }
        el.append(element('div', 'ac-caption', `${utc(p.t)}, bin ${fixed(p.width, 1)}` + (p.valid ? '' : ', INVALID')));
        requestAnimationFrame(layout);
      },
      layout,
    };
  }

  /** Rows of `k` base bins: the smallest k from 1, 2, 5, 10, 20, 50, … that keeps the rows at or under `maxRows`. */
  function rowSize(span, maxRows) {
    for (let m = 1; ; m *= 10) for (const k of [1, 2, 5]) if (Math.ceil(span / (k * m)) <= maxRows) return k * m;
  }

  /**
   * The footprint as numbers: a column per minute, a row per price (k base bins, chosen so that the rows fit), each
   * cell "sell × buy" (BTC) coloured by its delta; a buy is marked as an imbalance when it is at least `ratio` times
   * the sell one row below (the diagonal: buyers lifting the offer against sellers hitting the bid one level down),
   * and a sell when at least `ratio` times the buy one row above. The minute's VAH, VAL and POC rows are outlined.
   */
  function footprintTable(el, { maxRows = 40, ratio = 3 } = {}) {
    el.classList.add('ac-footprint');
    let columns = [];
    const draw = () => {
      el.replaceChildren();
      const filled = columns.filter((c) => c.levels.length);
      if (!filled.length) { el.append(element('div', 'ac-empty', 'no traded minute yet (minutes from klines have no footprint)')); return; }
      const base = filled[filled.length - 1].width;
      const idx = (p) => Math.round(p / base);
      const lows = filled.map((c) => idx(c.levels[0][0])), highs = filled.map((c) => idx(c.levels[c.levels.length - 1][0]));
      const lo = Math.min(...lows), hi = Math.max(...highs);
      const k = rowSize(hi - lo + 1, maxRows);
      const first = Math.floor(lo / k), last = Math.floor(hi / k);
      const cells = columns.map((c) => {
        const m = new Map();
        for (const [p, sell, buy, unsigned] of c.levels) {
          const r = Math.floor(idx(p) / k);
          const x = m.get(r) || { sell: 0, buy: 0, unsigned: 0 };
          x.sell += sell; x.buy += buy; x.unsigned += unsigned;
          m.set(r, x);
        }
        return m;
      });
      let largest = 1e-12;
      for (const m of cells) for (const x of m.values()) largest = Math.max(largest, Math.abs(x.buy - x.sell));
      const table = element('table');
      table.dataset.rowBins = String(k);
      table.dataset.rowWidth = String(k * base);
      const head = element('tr');
      head.append(element('th', 'ac-price', 'price'));
      columns.forEach((c, n) => head.append(element('th', null, n % 5 === 0 || n === columns.length - 1 ? utc(c.t).slice(11) : '')));
      table.append(head);
      // The row holding a price (VAH is the top edge of its bin: the row just under it).
      const rowAt = (p, nudge) => (p == null ? null : Math.floor(Math.floor(p / base + nudge) / k));
      for (let r = last; r >= first; r--) {
        const tr = element('tr');
        tr.append(element('th', 'ac-price', fixed(r * k * base, 1)));
        columns.forEach((c, n) => {
          const x = cells[n].get(r);
          const td = element('td');
          td.dataset.minute = String(c.t);
          td.dataset.row = String(r);
          if (x) {
            td.dataset.sell = String(x.sell);
            td.dataset.buy = String(x.buy);
            if (x.unsigned) td.dataset.unsigned = String(x.unsigned);
            const below = cells[n].get(r - 1), above = cells[n].get(r + 1);
            const s = element('span', 'ac-sell', volume(x.sell));
            const b = element('span', 'ac-buy', volume(x.buy));
            if (below && below.sell > 0 && x.buy >= ratio * below.sell) b.classList.add('ac-imbalance');
            if (above && above.buy > 0 && x.sell >= ratio * above.buy) s.classList.add('ac-imbalance');
            td.append(s, element('span', 'ac-x', '×'), b);
            const d = (x.buy - x.sell) / largest;
            td.style.background = d >= 0 ? `rgba(44,160,44,${(0.08 + 0.45 * d).toFixed(2)})` : `rgba(214,39,40,${(0.08 - 0.45 * d).toFixed(2)})`;
            td.title = `${utc(c.t)} ${fixed(r * k * base, 1)}: sell ${fixed(x.sell, 3)}, buy ${fixed(x.buy, 3)}` + (x.unsigned ? `, unsigned ${fixed(x.unsigned, 3)}` : '') + ' BTC';
          }
          if (rowAt(c.vah, -1e-9) === r) td.classList.add('ac-vah');
          if (rowAt(c.val, 1e-9) === r) td.classList.add('ac-val');
          if (rowAt(c.poc, 0) === r) td.classList.add('ac-pocrow');
          tr.append(td);
        });
        table.append(tr);
      }
      el.append(table);
    };
    return {
      set(cols) { columns = cols; draw(); },
      setRatio(r) { ratio = r; draw(); },
    };
  }

  window.AuctionCharts = { priceChart, flowChart, lineChart, drawdownChart, profilePanel, footprintTable, utc, volume };
})();
"""#
}
