import AgentSupport
package import Engine

/// What the chart layer (`ChartLayer`) draws, as JSON: the Engine's values turned into prices and BTC once, here, so
/// that the dashboard, report.html and the research pages show the same numbers. Times are UTC seconds (the chart
/// library's unit; the Engine's minutes start on whole seconds); a missing value is left out of the JSON.
package enum ChartData {
    /// One closed minute: the bar, its value area (where it was valid), order flow and data quality.
    package struct Bar: Encodable, Sendable {
        var t: Int64
        var o: Double
        var h: Double
        var l: Double
        var c: Double
        /// The value area at the minute's close, only where it was valid.
        var vah: Double?
        var val: Double?
        var poc: Double?
        /// Normalised order flow (`of_1m / volume`, −1…1) and the quote-imbalance EMA.
        var of: Double
        var qimb: Double?
        /// Volume (BTC), ambiguous fraction, share of prints aligned to a stale quote, inference accuracy.
        var vol: Double
        var amb: Double
        var stale: Double
        var acc: Double?

        package init(_ f: MinuteFeatures, _ i: Instrument) {
            t = f.ts / 1_000
            o = i.price(f.open)
            h = i.price(f.high)
            l = i.price(f.low)
            c = i.price(f.close)
            (vah, val, poc) = ChartData.valueAreaPrices(f.valueAreaValid ? f.valueArea : nil, i)
            // Ratios to four decimals: what a chart can show, and a month of minutes a third smaller.
            of = Self.ratio(f.ofNorm)
            qimb = f.qimbEma.map(Self.ratio)
            vol = i.size(f.volume)
            amb = Self.ratio(f.ambiguousFraction)
            stale = Self.ratio(
                f.orderFlow.prints == 0 ? 0 : Double(f.orderFlow.staleAlignedPrints) / Double(f.orderFlow.prints))
            acc = f.orderFlow.inferenceAccuracy.map(Self.ratio)
        }

        static func ratio(_ x: Double) -> Double { (x * 10_000).rounded() / 10_000 }
    }

    /// One round trip, with the levels it was traded between. `n` counts from 1 as trades.csv's `trade_id`.
    package struct Trip: Encodable, Sendable {
        var n: Int
        var setup: String
        var side: String
        /// The minutes (s) of the entry and the exit: where the markers go.
        var entryT: Int64
        var exitT: Int64
        var entry: Double
        var exit: Double
        var stop: Double?
        var tp1: Double?
        var tp2: Double?
        var net: Double
        var reason: String

        package init(_ t: RoundTrip, n: Int, _ i: Instrument) {
            self.n = n
            setup = t.setup.rawValue
            side = t.direction.description
            entryT = floorDiv(t.entryTs, millisPerMinute) * 60
            exitT = floorDiv(t.exitTs, millisPerMinute) * 60
            entry = i.price(t.entryPrice)
            exit = i.price(t.exitTickLots, over: t.qty)
            stop = t.initialStopTwice.map { i.price($0, over: 2) }
            tp1 = t.tp1Twice.map { i.price($0, over: 2) }
            tp2 = t.tp2Twice.map { i.price($0, over: 2) }
            net = t.netPnL
            reason = t.exitReasons.map(\.rawValue).joined(separator: "+")
        }
    }

    /// The open position: its price lines.
    package struct OpenPosition: Encodable, Sendable {
        var side: String
        var entry: Double
        var stop: Double
        var tp1: Double?
        var tp2: Double?

        package init(_ p: Position, _ i: Instrument) {
            side = p.direction.description
            entry = i.price(p.entryPrice)
            stop = i.price(p.stopTwice, over: 2)
            tp1 = p.tp1Twice.map { i.price($0, over: 2) }
            tp2 = p.tp2Twice.map { i.price($0, over: 2) }
        }
    }

    /// The window's volume profile at a minute's close (`FeaturePipeline.profile`): bin `k` covers
    /// `[low + k × width, low + (k + 1) × width)`; the value area and the POC's bin as the Engine computed them.
    package struct Profile: Encodable, Sendable {
        var t: Int64
        var low: Double
        var width: Double
        var volumes: [Double]
        var vah: Double?
        var val: Double?
        var poc: Double?
        var pocBin: Int?
        var valid: Bool

        /// nil when the profile is empty or not at the minute's bin width.
        package init?(_ p: VolumeProfile, minute f: MinuteFeatures, _ i: Instrument) {
            guard !p.volumes.isEmpty, p.binTicks == f.binTicks else { return nil }
            t = f.ts / 1_000
            low = i.price(p.lowTicks(ofBin: 0))
            width = i.price(p.binTicks)
            volumes = p.volumes.map { i.size($0) }
            valid = f.valueAreaValid
            (vah, val, poc) = ChartData.valueAreaPrices(f.valueArea, i)
            pocBin = f.valueArea.flatMap(p.pocBin(of:))
        }
    }

    /// One minute's footprint at the base bins: each level `[price of the bin's low, sell, buy, unsigned]` (BTC).
    package struct FootprintColumn: Encodable, Sendable {
        var t: Int64
        var width: Double
        var levels: [[Double]]
        var vah: Double?
        var val: Double?
        var poc: Double?

        package init(_ p: FootprintMinute, minute f: MinuteFeatures?, _ i: Instrument) {
            t = p.ts / 1_000
            width = i.price(p.baseBinTicks)
            levels = p.levels.map {
                [i.price($0.bin * p.baseBinTicks), i.size($0.sell), i.size($0.buy), i.size($0.unsigned)]
            }
            (vah, val, poc) = ChartData.valueAreaPrices(f?.valueAreaValid == true ? f?.valueArea : nil, i)
        }
    }

    /// VAH, VAL and POC as prices (nil without a value area).
    static func valueAreaPrices(_ va: ValueArea?, _ i: Instrument) -> (vah: Double?, val: Double?, poc: Double?) {
        guard let va else { return (nil, nil, nil) }
        return (i.price(va.vahTicks), i.price(va.valTicks), i.price(va.pocTwiceTicks, over: 2))
    }

    /// `[t (s), value]`.
    package static func points(_ samples: [(ts: Int64, value: Double)]) -> [[Double]] {
        samples.map { point(ts: $0.ts, value: $0.value) }
    }

    /// One sample of a line: `[t (s), value]`.
    package static func point(ts: Int64, value: Double) -> [Double] { [Double(ts / 1_000), value] }
}
