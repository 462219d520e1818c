import AgentSupport
package import Engine
import Foundation

/// The charts the backtest's report.html and the agent's dashboard share (issue 12): inline SVG drawn from the
/// Engine's own values, no script and no network. Each function returns one `<svg>` element; `SVGChart.css`
/// styles them. The dashboard's page swaps the elements in as they arrive; the report writes them once.
package enum SVGChart {
    /// Time along x: `t0...t1` (ms) onto `left...width - right` pixels.
    package struct Frame {
        var t0: Int64
        var t1: Int64
        var width: Double
        var left = 60.0
        var right = 14.0

        package init(from t0: Int64, to t1: Int64, width: Double) {
            self.t0 = t0
            self.t1 = max(t1, t0 + 1)
            self.width = width
        }

        func x(_ ts: Int64) -> Double { left + Double(ts - t0) / Double(t1 - t0) * (width - left - right) }
    }

    /// A linear scale of values onto `top...height - bottom` (high values up).
    package struct Scale {
        var lo: Double
        var hi: Double
        var top: Double
        var bottom: Double

        init(lo: Double, hi: Double, top: Double, bottom: Double) {
            self.lo = lo
            self.hi = hi > lo ? hi : lo + 1
            self.top = top
            self.bottom = bottom
        }

        func y(_ v: Double) -> Double { top + (hi - v) / (hi - lo) * (bottom - top) }
    }

    package static let css = """
        svg.chart{background:#fafafa;border:1px solid #ddd;display:block}
        .chart text{font:10px system-ui,sans-serif;fill:#555}
        .close{fill:none;stroke:#333;stroke-width:1}.vah,.val{fill:none;stroke:#1f77b4;stroke-width:1;stroke-dasharray:4 2}
        .poc{fill:none;stroke:#ff7f0e;stroke-width:1}.eq{fill:none;stroke:#2ca02c;stroke-width:1.5}.dd{fill:#d62728;opacity:.5}
        .vaband{fill:#1f77b4;opacity:.08}.grid{stroke:#ddd;stroke-width:1}.zero{stroke:#999;stroke-width:1}
        .up{fill:#2ca02c;stroke:#2ca02c}.down{fill:#d62728;stroke:#d62728}.flat{fill:#777;stroke:#777}
        .buy{fill:#2ca02c}.sell{fill:#d62728}.unsigned{fill:#aaa}.win{fill:none;stroke:#2ca02c;stroke-width:1.5}
        .loss{fill:none;stroke:#d62728;stroke-width:1.5}.stop{stroke:#d62728;stroke-width:1;stroke-dasharray:2 2}
        .target{stroke:#2ca02c;stroke-width:1;stroke-dasharray:2 2}.entry{stroke:#333;stroke-width:1}
        .qimb{fill:none;stroke:#9467bd;stroke-width:1.2}.empty{font:12px system-ui,sans-serif;fill:#888}
        """

    // MARK: - Price with the value area and the trades

    /// Price of `minutes` (candles, or the close as a line when bars would be under 2 px), the value area as a band
    /// with VAH/VAL/POC lines where it was valid, the round trips' entries (▲ long, ▼ short) and exits (○, green
    /// win, red loss) with their stops, and the open position's entry, stop and targets as horizontal lines.
    package static func price(
        minutes: [MinuteFeatures], trips: [RoundTrip], position: Position?, instrument i: Instrument, frame: Frame,
        height: Double
    ) -> String {
        guard let first = minutes.first, let last = minutes.last else {
            return empty(frame.width, height, "no minute has closed yet")
        }
        var lows: [Double] = []
        var highs: [Double] = []
        for f in minutes {
            lows.append(i.price(f.low))
            highs.append(i.price(f.high))
            if let va = f.valueArea, f.valueAreaValid {
                lows.append(i.price(va.valTicks))
                highs.append(i.price(va.vahTicks))
            }
        }
        if let p = position {
            for twice in [p.stopTwice, p.tp1Twice, p.tp2Twice].compactMap({ $0 }) {
                lows.append(i.price(twice, over: 2))
                highs.append(i.price(twice, over: 2))
            }
        }
        let s = Scale(lo: lows.min() ?? 0, hi: highs.max() ?? 1, top: 16, bottom: height - 20)
        let pxPerBar =
            (frame.width - frame.left - frame.right) / Double(max(1, (last.ts - first.ts) / millisPerMinute + 1))
        let step = max(1, minutes.count / 1500)
        let sampled = stride(from: 0, to: minutes.count, by: step).map { minutes[$0] }
        var out = open(frame.width, height)
        out += axisLabels(s, height: height, decimals: 1)
        out += timeAxis(frame, height: height)

        // The value area: a band and its three lines.
        let valid = sampled.filter { $0.valueAreaValid && $0.valueArea != nil }
        let maxGap = Int64(step + 1) * millisPerMinute
        if !valid.isEmpty {
            var band = ""
            for run in runs(valid, maxGap: maxGap) {
                let top = run.map { (frame.x($0.ts), s.y(i.price($0.valueArea!.vahTicks))) }
                let bottom = run.reversed().map { (frame.x($0.ts), s.y(i.price($0.valueArea!.valTicks))) }
                band += path(top + bottom) + " Z "
            }
            out += #"<path class="vaband" d="\#(band)"/>"#
            for run in runs(valid, maxGap: maxGap) {
                out +=
                    #"<path class="vah" d="\#(path(run.map { (frame.x($0.ts), s.y(i.price($0.valueArea!.vahTicks))) }))"/>"#
                out +=
                    #"<path class="val" d="\#(path(run.map { (frame.x($0.ts), s.y(i.price($0.valueArea!.valTicks))) }))"/>"#
                out +=
                    #"<path class="poc" d="\#(path(run.map { (frame.x($0.ts), s.y(i.price($0.valueArea!.pocTwiceTicks, over: 2))) }))"/>"#
            }
        }

        // Price.
        if pxPerBar >= 2 && step == 1 {
            let body = max(1, min(8, pxPerBar * 0.6))
            for f in minutes {
                let cx = frame.x(f.ts) + pxPerBar / 2
                let cls = f.close > f.open ? "up" : (f.close < f.open ? "down" : "flat")
                let yo = s.y(i.price(f.open))
                let yc = s.y(i.price(f.close))
                out += String(
                    format: #"<line class="%@" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>"#, cls, cx,
                    s.y(i.price(f.high)), cx, s.y(i.price(f.low)))
                out += String(
                    format: #"<rect class="%@" x="%.1f" y="%.1f" width="%.1f" height="%.1f"/>"#, cls, cx - body / 2,
                    min(yo, yc), body,
                    max(0.8, abs(yc - yo)))
            }
        } else {
            out += #"<path class="close" d="\#(path(sampled.map { (frame.x($0.ts), s.y(i.price($0.close))) }))"/>"#
        }

        // Trades inside the span.
        for t in trips where t.exitTs >= frame.t0 && t.entryTs <= frame.t1 {
            let up = t.direction == .long
            let ex = frame.x(max(t.entryTs, frame.t0))
            let ey = s.y(i.price(t.entryPrice))
            let what = escape(
                "\(t.setup.rawValue) \(t.direction) \(isoTime(t.entryTs)) at \(i.priceText(t.entryPrice))")
            out += String(
                format: #"<path d="M%.1f %.1f l-5 %d l10 0 z" class="%@"><title>%@</title></path>"#, ex, ey,
                up ? 9 : -9,
                up ? "buy" : "sell", what)
            if let stop = t.initialStopTwice {
                let sy = s.y(i.price(stop, over: 2))
                if sy >= s.top && sy <= s.bottom {
                    out += String(
                        format:
                            #"<line class="stop" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"><title>stop %@</title></line>"#,
                        ex, sy,
                        frame.x(min(t.exitTs, frame.t1)), sy, i.halfTickText(stop))
                }
            }
            if t.exitTs <= frame.t1 {
                let reasons = escape(
                    "exit \(t.exitReasons.map(\.rawValue).joined(separator: "+")) net \(String(format: "%.2f", t.netPnL))"
                )
                out += String(
                    format: #"<circle cx="%.1f" cy="%.1f" r="3.5" class="%@"><title>%@</title></circle>"#,
                    frame.x(t.exitTs),
                    s.y(i.price(t.exitTickLots, over: t.qty)), t.netPnL > 0 ? "win" : "loss", reasons)
            }
        }
        if let p = position {
            let ex = frame.x(max(p.entryTs, frame.t0))
            let ey = s.y(i.price(p.entryPrice))
            let up = p.direction == .long
            out += String(
                format: #"<path d="M%.1f %.1f l-5 %d l10 0 z" class="%@"><title>open %@ %@</title></path>"#, ex, ey,
                up ? 9 : -9,
                up ? "buy" : "sell", "\(p.direction)", i.priceText(p.entryPrice))
            let right = frame.width - frame.right
            out += String(format: #"<line class="entry" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>"#, ex, ey, right, ey)
            var levels: [(String, Int64, String)] = [("stop", p.stopTwice, "stop")]
            if let t = p.tp1Twice, !p.tp1Done { levels.append(("target", t, "TP1")) }
            if let t = p.tp2Twice { levels.append(("target", t, "TP2")) }
            for (cls, twice, label) in levels {
                let y = s.y(i.price(twice, over: 2))
                out += String(
                    format:
                        #"<line class="%@" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/><text x="%.1f" y="%.1f" text-anchor="end">%@ %@</text>"#,
                    cls, ex, y, right, y, right - 2, y - 2, label, i.halfTickText(twice))
            }
        }
        return out + "</svg>"
    }

    // MARK: - Lines, order flow, footprint

    /// A value over time (equity), with its last value labelled.
    package static func line(
        _ points: [(ts: Int64, value: Double)], frame: Frame, height: Double, cssClass: String, floor: Double? = nil,
        decimals: Int = 0
    ) -> String {
        guard !points.isEmpty else { return empty(frame.width, height, "nothing yet") }
        let values = points.map(\.value) + (floor.map { [$0] } ?? [])
        let s = Scale(lo: values.min()!, hi: values.max()!, top: 12, bottom: height - 20)
        let step = max(1, points.count / 1500)
        let sampled =
            stride(from: 0, to: points.count, by: step).map { points[$0] }
            + (points.count % step == 1 || step == 1 ? [] : [points.last!])
        var out =
            open(frame.width, height) + axisLabels(s, height: height, decimals: decimals)
            + timeAxis(frame, height: height)
        out += #"<path class="\#(cssClass)" d="\#(path(sampled.map { (frame.x($0.ts), s.y($0.value)) }))"/>"#
        return out + "</svg>"
    }

    /// Drawdown below the running peak as a filled area hanging from the top.
    package static func drawdown(_ points: [(ts: Int64, value: Double)], start: Double, frame: Frame, height: Double)
        -> String
    {
        var peak = start
        var dd: [(Int64, Double)] = []
        for p in points {
            peak = max(peak, p.value)
            dd.append((p.ts, peak - p.value))
        }
        let ddMax = max(dd.map(\.1).max() ?? 0, 1e-9)
        let step = max(1, dd.count / 1500)
        let sampled = stride(from: 0, to: dd.count, by: step).map { dd[$0] }
        var pts: [(Double, Double)] = [(frame.x(sampled.first?.0 ?? frame.t0), 10)]
        for (ts, v) in sampled { pts.append((frame.x(ts), 10 + v / ddMax * (height - 20))) }
        pts.append((frame.x(sampled.last?.0 ?? frame.t1), 10))
        return open(frame.width, height) + timeAxis(frame, height: height) + #"<path class="dd" d="\#(path(pts)) Z"/>"#
            + "</svg>"
    }

    /// Per minute: the normalised order flow (`of_norm`, bars, −1…1) and the quote imbalance EMA (line, −1…1).
    package static func flow(minutes: [MinuteFeatures], frame: Frame, height: Double) -> String {
        guard let first = minutes.first, let last = minutes.last else {
            return empty(frame.width, height, "no minute has closed yet")
        }
        let s = Scale(lo: -1, hi: 1, top: 8, bottom: height - 20)
        let px = (frame.width - frame.left - frame.right) / Double(max(1, (last.ts - first.ts) / millisPerMinute + 1))
        var out = open(frame.width, height) + timeAxis(frame, height: height)
        out += String(
            format: #"<line class="zero" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f"/>"#, frame.left, s.y(0),
            frame.width - frame.right, s.y(0))
        out += String(
            format: #"<text x="4" y="%.1f">+1</text><text x="4" y="%.1f">0</text><text x="4" y="%.1f">−1</text>"#,
            s.y(1) + 8, s.y(0) + 3, s.y(-1))
        let w = max(0.8, px * 0.7)
        for f in minutes where f.volume > 0 && !f.approximate {
            let v = f.ofNorm
            let y0 = s.y(0)
            let y1 = s.y(v)
            out += String(
                format:
                    #"<rect class="%@" x="%.1f" y="%.1f" width="%.1f" height="%.1f"><title>%@ of_norm %.3f</title></rect>"#,
                v >= 0 ? "buy" : "sell", frame.x(f.ts), min(y0, y1), w, max(0.5, abs(y1 - y0)), isoTime(f.ts), v)
        }
        let q = minutes.compactMap { f in f.qimbEma.map { (frame.x(f.ts) + px / 2, s.y(max(-1, min(1, $0)))) } }
        if !q.isEmpty { out += #"<path class="qimb" d="\#(path(q))"/>"# }
        return out + "</svg>"
    }

    /// The footprint: a column per minute, a row per price bin, the bin's seller-initiated volume as a red bar to
    /// the left of the column's centre and the buyer-initiated as a green bar to the right (unsigned in grey under
    /// both), scaled to the largest side in view; the minute's VAH, VAL and POC drawn over it.
    package static func footprint(
        _ prints: [FootprintMinute], minutes: [MinuteFeatures], instrument i: Instrument, width: Double,
        height: Double
    ) -> String {
        let withVolume = prints.filter { !$0.levels.isEmpty }
        guard let base = prints.last?.baseBinTicks, !withVolume.isEmpty else {
            return empty(width, height, "no traded minute yet (minutes from klines have no footprint)")
        }
        let lowBin = withVolume.map { $0.levels.first!.bin }.min()!
        let highBin = withVolume.map { $0.levels.last!.bin }.max()!
        // Rows of k base bins, at most 48 of them.
        let k = max(1, Int64(((Double(highBin - lowBin + 1)) / 48).rounded(.up)))
        let firstRow = floorDiv(lowBin, k)
        let rows = Int(floorDiv(highBin, k) - firstRow + 1)
        let rowTicks = k * base
        let left = 60.0
        let top = 10.0
        let bottom = height - 20
        let colWidth = (width - left - 14) / Double(max(prints.count, 1))
        let rowHeight = (bottom - top) / Double(rows)
        func rowY(_ row: Int64) -> Double { bottom - Double(row - firstRow + 1) * rowHeight }
        func priceY(_ ticksTwice: HalfTicks) -> Double {
            bottom - (Double(ticksTwice) / 2 / Double(rowTicks) - Double(firstRow)) * rowHeight
        }
        var cells: [[Int64: (buy: Lots, sell: Lots, unsigned: Lots)]] = []
        var largest: Lots = 1
        for p in prints {
            var byRow: [Int64: (buy: Lots, sell: Lots, unsigned: Lots)] = [:]
            for l in p.levels {
                let r = floorDiv(l.bin, k)
                var c = byRow[r] ?? (0, 0, 0)
                c.buy += l.buy
                c.sell += l.sell
                c.unsigned += l.unsigned
                byRow[r] = c
            }
            for c in byRow.values { largest = max(largest, c.buy, c.sell, c.unsigned) }
            cells.append(byRow)
        }
        var out = open(width, height)
        let lo = i.price((firstRow) * rowTicks)
        let hi = i.price((firstRow + Int64(rows)) * rowTicks)
        out += String(
            format: #"<text x="4" y="%.1f">%.1f</text><text x="4" y="%.1f">%.1f</text>"#, top + 8, hi, bottom, lo)
        let half = colWidth / 2 - 0.5
        let byTs = Dictionary(minutes.map { ($0.ts, $0) }, uniquingKeysWith: { _, b in b })
        for (n, p) in prints.enumerated() {
            let cx = left + (Double(n) + 0.5) * colWidth
            if n % 5 == 0 {
                out += String(
                    format: #"<text x="%.1f" y="%.1f" text-anchor="middle">%@</text>"#, cx, height - 4,
                    String(isoTime(p.ts).dropFirst(11).prefix(5)))
            }
            for (row, c) in cells[n] {
                let y = rowY(row) + 0.5
                let h = max(0.8, rowHeight - 1)
                let price = i.priceText(row * rowTicks)
                let title =
                    "\(isoTime(p.ts)) \(price): buy \(i.sizeText(c.buy)), sell \(i.sizeText(c.sell))"
                    + (c.unsigned > 0 ? ", unsigned \(i.sizeText(c.unsigned))" : "")
                out += "<g><title>\(title)</title>"
                if c.unsigned > 0 {
                    let w = half * 2 * Double(c.unsigned) / Double(largest)
                    out += String(
                        format: #"<rect class="unsigned" x="%.1f" y="%.1f" width="%.1f" height="%.1f"/>"#, cx - w / 2,
                        y, w, h)
                }
                if c.sell > 0 {
                    let w = half * Double(c.sell) / Double(largest)
                    out += String(
                        format: #"<rect class="sell" x="%.1f" y="%.1f" width="%.1f" height="%.1f"/>"#, cx - w, y, w, h)
                }
                if c.buy > 0 {
                    let w = half * Double(c.buy) / Double(largest)
                    out += String(
                        format: #"<rect class="buy" x="%.1f" y="%.1f" width="%.1f" height="%.1f"/>"#, cx, y, w, h)
                }
                out += "</g>"
            }
            // The value area at that minute's close.
            if n == prints.count - 1, let f = byTs[p.ts], let va = f.valueArea, f.valueAreaValid {
                // Where it lies outside the rows shown, say so at the edge.
                if priceY(2 * va.vahTicks) > bottom {
                    out += String(
                        format: #"<text x="%.1f" y="%.1f" text-anchor="end">value area below: VAH %@</text>"#,
                        width - 16, bottom - 4,
                        i.priceText(va.vahTicks))
                } else if priceY(2 * va.valTicks) < top {
                    out += String(
                        format: #"<text x="%.1f" y="%.1f" text-anchor="end">value area above: VAL %@</text>"#,
                        width - 16, top + 10,
                        i.priceText(va.valTicks))
                }
            }
            if let f = byTs[p.ts], let va = f.valueArea, f.valueAreaValid {
                let x0 = cx - colWidth / 2
                let x1 = cx + colWidth / 2
                for (cls, twice) in [("vah", 2 * va.vahTicks), ("val", 2 * va.valTicks), ("poc", va.pocTwiceTicks)] {
                    let y = priceY(twice)
                    if y >= top - 1 && y <= bottom + 1 {
                        out += String(
                            format:
                                #"<line class="%@" x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" style="stroke-dasharray:none;stroke-width:1.5"/>"#,
                            cls, x0, y, x1, y)
                    }
                }
            }
        }
        return out + "</svg>"
    }

    // MARK: - Pieces

    static func open(_ width: Double, _ height: Double) -> String {
        #"<svg class="chart" width="\#(Int(width))" height="\#(Int(height))" viewBox="0 0 \#(Int(width)) \#(Int(height))">"#
    }

    static func empty(_ width: Double, _ height: Double, _ text: String) -> String {
        open(width, height)
            + String(
                format: #"<text class="empty" x="%.1f" y="%.1f" text-anchor="middle">%@</text>"#, width / 2, height / 2,
                escape(text))
            + "</svg>"
    }

    static func axisLabels(_ s: Scale, height: Double, decimals: Int) -> String {
        let f = "%.\(decimals)f"
        return
            #"<text x="4" y="\#(Int(s.top) + 4)">\#(String(format: f, s.hi))</text><text x="4" y="\#(Int(s.bottom))">\#(String(format: f, s.lo))</text>"#
    }

    /// Grid lines and UTC labels along the bottom of a chart `height` high.
    static func timeAxis(_ frame: Frame, height: Double) -> String {
        timeAxisTicks(from: frame.t0, to: frame.t1).map { t in
            let px = String(format: "%.1f", frame.x(t.ts))
            return #"<line class="grid" x1="\#(px)" y1="0" x2="\#(px)" y2="\#(Int(height) - 14)"/>"#
                + #"<text x="\#(px)" y="\#(Int(height) - 3)" text-anchor="middle">\#(t.label)</text>"#
        }.joined()
    }

    /// Round times between `t0` and `t1` (ms) for a time axis: the smallest step of 15 min, 30 min, 1, 2, 4, 6, 12 h,
    /// 1, 2 or 7 days that gives at most 12 ticks, labelled `HH:MM` (UTC), with the date where a day starts.
    package static func timeAxisTicks(from t0: Int64, to t1: Int64) -> [(ts: Int64, label: String)] {
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

    static func path(_ points: [(Double, Double)]) -> String {
        points.enumerated().map { (n, p) in (n == 0 ? "M" : "L") + String(format: "%.1f %.1f", p.0, p.1) }.joined(
            separator: " ")
    }

    /// Consecutive minutes (no gap over one minute) as separate runs, so a line never bridges a hole.
    static func runs(_ minutes: [MinuteFeatures], maxGap: Int64) -> [[MinuteFeatures]] {
        var out: [[MinuteFeatures]] = []
        for f in minutes {
            if let last = out.last?.last, f.ts - last.ts <= maxGap {
                out[out.count - 1].append(f)
            } else {
                out.append([f])
            }
        }
        return out
    }

    /// Text for HTML or SVG content and attribute values (the reports and results.html use it too).
    package static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}
