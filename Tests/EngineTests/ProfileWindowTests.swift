import AgentConfig
import Engine
import Testing

/// A from-scratch value area: re-aggregates every trade of the window at the given width (docs/SPEC.md §5–§6).
func scratchValueArea(trades: [TradeEvent], binTicks: Int64, fraction: Double) -> ValueArea? {
    guard !trades.isEmpty else { return nil }
    var volume: [Int64: Lots] = [:]
    for t in trades { volume[floorDiv(t.price, binTicks), default: 0] += t.size }
    let keys = volume.keys.filter { volume[$0]! > 0 }
    guard let lo = keys.min(), let hi = keys.max() else { return nil }
    let bins = (lo...hi).map { volume[$0] ?? 0 }
    return ValueArea.compute(bins: bins, firstBin: lo, binTicks: binTicks, fraction: fraction)
}

/// SplitMix64: a small seeded generator so the property test is reproducible.
struct SplitMix: RandomNumberGenerator {
    var state: UInt64
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

@Suite(.tags(.unit)) struct ProfileWindowTests {
    @Test func minutesLeaveTheWindow() {
        var config = FeatureConfig.defaults
        config.rollingWindowMinutes = 3
        config.baseBinTicks = 1
        config.binWidthMaxTicks = 1
        config.minVABins = 1
        let rows = run(
            [
                trade(t0 + 1, "100", "1"),
                trade(t0 + 60_001, "101", "2"),
                trade(t0 + 120_001, "102", "4"),
                trade(t0 + 180_001, "103", "8"),
                trade(t0 + 240_001, "104", "16"),
            ],
            config: config
        )
        #expect(rows.map { $0.valueArea!.total } == [1, 3, 7, 14, 28].map { sz(String($0)) })
        // Minute 4's window is minutes 2...4: 102, 103, 104 (ticks 1020...1040).
        #expect(rows[4].valueArea!.profileBins == 3)
        #expect(rows[4].valueArea!.valTicks == px("103"))
        #expect(rows[4].valueArea!.vahTicks == px("104.1"))
    }

    @Test func emptyWindowHasNoValueArea() {
        var config = FeatureConfig.defaults
        config.rollingWindowMinutes = 2
        let rows = run([trade(t0 + 1, "100", "1"), trade(t0 + 180_001, "100", "1")], config: config)
        #expect(rows[1].valueArea != nil)
        #expect(rows[2].valueArea == nil && !rows[2].valueAreaValid)
        let fields = FeaturesCSV.row(rows[2], instrument: btc).split(separator: ",", omittingEmptySubsequences: false)
        #expect(fields[17] == "" && fields[18] == "" && fields[19] == "" && fields[23] == "0" && fields[24] == "0")
    }

    @Test func rebuiltProfileEqualsReaggregatingAtTheNewWidth() {
        // Rebucketing at minute 15: the profile of that minute must equal a from-scratch profile at the new width.
        var config = FeatureConfig.defaults
        config.baseBinTicks = 2
        config.alphaBin = 1
        config.binWidthMaxTicks = 400
        config.minVABins = 1
        var rng = SplitMix(state: 7)
        var events: [MarketEvent] = []
        var trades: [TradeEvent] = []
        var mid: Int64 = 500_000
        for minute in 0..<40 {
            let m = t0 + Millis(minute) * 60_000
            mid += Int64.random(in: -200...200, using: &rng)
            events.append(.quote(QuoteEvent(ts: m, bidPrice: mid, bidSize: 5, askPrice: mid + 1, askSize: 5)))
            for j in 0..<20 {
                let t = TradeEvent(
                    ts: m + 1 + Millis(j), price: mid + Int64.random(in: -60...60, using: &rng),
                    size: Lots.random(in: 1...50, using: &rng))
                trades.append(t)
                events.append(.trade(t))
            }
        }
        let rows = run(events, config: config)
        let widths = Set(rows.map(\.binTicks))
        #expect(widths.count > 2, "the test needs several widths: \(widths)")
        for row in rows {
            let inWindow = trades.filter {
                $0.ts >= row.ts - Millis(config.rollingWindowMinutes - 1) * 60_000 && $0.ts < row.ts + 60_000
            }
            #expect(
                row.valueArea == scratchValueArea(trades: inWindow, binTicks: row.binTicks, fraction: config.vaFraction)
            )
        }
    }

    /// Property: after every minute of a long random stream, the incremental profile equals a recomputation of
    /// the window from scratch.
    @Test(arguments: [1 as UInt64, 2, 3])
    func incrementalProfileEqualsRecomputation(seed: UInt64) {
        var config = FeatureConfig.defaults
        config.rollingWindowMinutes = 30
        config.baseBinTicks = 3
        config.binWidthMaxTicks = 60
        config.alphaBin = 0.5
        config.rebucketIntervalMinutes = 7
        config.minVABins = 5
        var rng = SplitMix(state: seed)
        var pipeline = FeaturePipeline(config: config)
        var trades: [TradeEvent] = []
        var ts = t0
        var mid: Int64 = 500_000
        var checked = 0
        for _ in 0..<20_000 {
            ts += Millis.random(in: 0...400, using: &rng)
            if Int.random(in: 0..<100, using: &rng) == 0 { ts += Millis.random(in: 60_000...400_000, using: &rng) }
            if Bool.random(using: &rng) {
                mid += Int64.random(in: -8...8, using: &rng)
                let spread = Int64.random(in: 1...4, using: &rng)
                pipeline.onQuote(
                    QuoteEvent(
                        ts: ts, bidPrice: mid, bidSize: Lots.random(in: 0...9, using: &rng),
                        askPrice: mid + spread, askSize: Lots.random(in: 0...9, using: &rng)))
            } else {
                let t = TradeEvent(
                    ts: ts, price: mid + Int64.random(in: -5...5, using: &rng),
                    size: Lots.random(in: 1...1000, using: &rng))
                trades.append(t)
                pipeline.onTrade(t)
            }
            for row in pipeline.takeClosed() {
                let lo = row.ts - Millis(config.rollingWindowMinutes - 1) * 60_000
                let window = trades.filter { $0.ts >= lo && $0.ts < row.ts + 60_000 }
                let expected = scratchValueArea(trades: window, binTicks: row.binTicks, fraction: config.vaFraction)
                #expect(row.valueArea == expected, "minute \(row.index)")
                #expect(row.valueAreaValid == (expected?.isValid(minBins: config.minVABins) ?? false))
                checked += 1
            }
        }
        #expect(checked > 500)
    }
}

/// The volume profile the dashboard draws is the value area's own bins (docs/SPEC.md §5–§6).
@Suite(.tags(.unit)) struct VolumeProfileTests {
    @Test func theProfileAtACloseIsTheBinsItsValueAreaCameFrom() {
        var config = FeatureConfig.defaults
        config.rollingWindowMinutes = 5
        config.minVABins = 1
        var rng = SplitMix(state: 7)
        var p = FeaturePipeline(config: config)
        var checked = 0
        for minute in 0..<8 {
            let start = t0 + Int64(minute) * 60_000
            for i in 0..<40 {
                let tenths = 50_000 + Int(rng.next() % 400) - 200
                let price = "\(tenths / 10).\(tenths % 10)"
                p.process(trade(start + Int64(i) * 1_000 + 1, price, "0.00\(1 + rng.next() % 9)"))
            }
            p.process(quote(start + 59_000, bid: "4999.9", "1", ask: "5000.1", "1"))
            p.process(trade(start + 60_001, "5000.0", "0.001"))
            let closed = p.takeClosed()
            guard let f = closed.last, let va = f.valueArea else { continue }
            let profile = p.profile
            // One bar per bin of the value area's profile, its volume the window's, its POC the heaviest bin.
            #expect(profile.binTicks == va.binTicks)
            #expect(profile.volumes.reduce(0, +) == va.total)
            #expect(profile.volumes.filter { $0 > 0 }.count == va.profileBins)
            #expect(profile.valueArea(fraction: config.vaFraction) == va)
            let poc = profile.pocBin(of: va)
            #expect(poc != nil)
            if let poc { #expect(profile.volumes[poc] == profile.volumes.max()) }
            #expect(profile.lowTicks(ofBin: 0) <= va.valTicks)
            #expect(profile.lowTicks(ofBin: profile.volumes.count - 1) + profile.binTicks >= va.vahTicks)
            checked += 1
        }
        #expect(checked >= 6)
    }

    /// `ProfileHistory` keeps every minute's profile as key frames and changes; each rebuilds exactly.
    @Test func theHistoryRebuildsEveryMinutesProfile() {
        var config = FeatureConfig.defaults
        config.rollingWindowMinutes = 10
        config.minVABins = 1
        var rng = SplitMix(state: 11)
        var p = FeaturePipeline(config: config)
        p.recordsProfiles = true
        var snapshots: [VolumeProfile] = []
        for minute in 0..<150 {
            let start = t0 + Int64(minute) * 60_000
            // A drift, so that bins leave the window at one end and join at the other.
            let centre = 50_000 + minute * 7
            for i in 0..<(minute % 13 == 0 ? 0 : 30) {
                let tenths = centre + Int(rng.next() % 300) - 150
                p.process(
                    trade(start + Int64(i) * 1_000 + 1, "\(tenths / 10).\(tenths % 10)", "0.00\(1 + rng.next() % 9)"))
            }
            p.process(quote(start + 59_000, bid: "\(centre / 10 - 1).9", "1", ask: "\(centre / 10).1", "1"))
            p.advanceClock(to: start + 60_000)
            if !p.takeClosed().isEmpty { snapshots.append(p.profile) }
        }
        let h = p.profileHistory
        #expect(h.frames.count == snapshots.count && snapshots.count >= 140)
        #expect(h.frames.filter(\.isKey).count >= snapshots.count / ProfileHistory.keyEvery)
        #expect(h.frames.filter { !$0.isKey }.allSatisfy { $0.values.count < 2 * 60 }, "changes are small")
        for (k, want) in snapshots.enumerated() { #expect(h.profile(at: k) == want, "minute \(k)") }
    }
}
