import Engine
import Foundation
import Simulator
import Testing

@testable import AgentCLI
@testable import AgentConfig
@testable import AgentSupport
@testable import Charts
@testable import Research

/// report.html in headless Chromium (issue 27): a backtest of three generated hours written as the command writes
/// it, opened from disk.
@Suite(.tags(.e2e)) struct ReportTests {
    @Test func theReportShowsTheProfileAtAnyMinuteAndZoomsToATrade() throws {
        var generator = MarketGeneratorConfig()
        generator.hours = 3
        generator.seed = 2
        var g = MarketGenerator(config: generator)
        let (trades, quotes) = g.generateAll()
        var c = try ConfigLoader.load(ConfigSelection(), defaultEnvironment: nil)
        try ConfigLoader.applyOverrides(
            ["value_area.rolling_window_minutes=60", "value_area.warmup_minutes=60", "value_area.min_va_bins=10"],
            to: &c)
        let i = c.instrument
        let r = runBacktest(
            trades: trades, quotes: quotes, features: c.features, strategy: c.strategy, instrument: i,
            keepProfiles: true)
        let trips = r.roundTrips
        try #require(trips.count >= 2, "the generated hours trade")
        #expect(r.profiles?.frames.count == r.features.count, "one profile per minute")

        // Each minute's profile straight from a pipeline, where the minute closed alone.
        var pipeline = FeaturePipeline(config: c.features)
        var alone: [Int64: VolumeProfile] = [:]
        mergeEvents(trades: trades, quotes: quotes) { event in
            pipeline.process(event)
            let closed = pipeline.takeClosed()
            if closed.count == 1 { alone[closed[0].ts] = pipeline.profile }
        }

        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("report-\(UUID().uuidString.prefix(8))")
        defer { try? FileManager.default.removeItem(at: dir) }
        try writeBacktest(
            r, to: dir.path, instrument: i, initialEquity: c.strategy.initialEquity, title: "report test",
            parameters: ConfigLoader.researchParameters(c))
        let browser = try HeadlessBrowser()
        try browser.open("file://\(dir.path)/report.html")
        #expect(
            browser.waitFor("window.report !== undefined && document.querySelectorAll('#profile .ac-bin').length > 0"))
        func js(_ e: String) throws -> String { try browser.evaluate(e) as? String ?? "?" }

        // The profile at a minute of the middle, as the page rebuilds it, is the Engine's.
        let index =
            r.features.count / 2 + r.features[(r.features.count / 2)...].firstIndex { alone[$0.ts] != nil }!
            - r.features.count / 2
        let f = r.features[index]
        let want = try #require(alone[f.ts])
        let got = try #require(
            try JSONSerialization.jsonObject(with: Data(try js("JSON.stringify(report.profileAt(\(index)))").utf8))
                as? [String: Any])
        let volumes = try #require(got["volumes"] as? [Double])
        #expect(volumes.count == want.volumes.count)
        #expect(zip(volumes, want.volumes).allSatisfy { abs($0 - i.size($1)) < 1e-9 }, "the Engine's volumes")
        #expect(abs((got["low"] as? Double ?? 0) - i.price(want.lowTicks(ofBin: 0))) < 1e-9)
        if let va = f.valueArea, f.valueAreaValid {
            #expect(got["pocBin"] as? Int == want.pocBin(of: va), "the POC's bin")
        }

        // Pointing at that minute draws its profile beside the chart.
        let x = try #require(
            try browser.evaluate(
                "(() => { const r = document.getElementById('price').getBoundingClientRect();"
                    + " return r.left + report.price.chart.timeScale().timeToCoordinate(\(f.ts / 1_000)); })()")
                as? Double)
        let y = try #require(
            try browser.evaluate(
                "(() => { const r = document.getElementById('price').getBoundingClientRect(); return r.top + 150; })()")
                as? Double)
        _ = try browser.call("Input.dispatchMouseEvent", ["type": "mouseMoved", "x": x, "y": y])
        let minute = String(isoTime(f.ts).prefix(16)).replacingOccurrences(of: "T", with: " ")
        #expect(
            browser.waitFor(
                "document.querySelector('#profile .ac-caption').textContent.startsWith('\(minute)')"
                    + " && document.querySelectorAll('#profile .ac-bin').length === \(want.volumes.count)"),
            "the panel shows the minute pointed at: \((try? js("document.querySelector('#profile .ac-caption').textContent")) ?? "?")"
        )
        if let png = try? browser.screenshot(),
            let path = ProcessInfo.processInfo.environment["AUCTION_REPORT_SCREENSHOT"]
        {
            try png.write(to: URL(fileURLWithPath: path))
        }

        // The trades table: every column of trades.csv, a row per trade; a click zooms to the trade.
        let header = BacktestOutputs.tradesCSV(trips, i).split(separator: "\n")[0]
        #expect(try js("[...document.querySelectorAll('#trades th')].map(t => t.textContent).join(',')") == header)
        #expect(try browser.evaluate("document.querySelectorAll('#trades tbody tr').length") as? Int == trips.count)
        let n = trips.count
        let trip = ChartData.Trip(trips[n - 1], n: n, i)
        let whole = try js("JSON.stringify(report.price.chart.timeScale().getVisibleRange())")
        _ = try browser.evaluate("document.querySelector('#trades tr[data-trade=\"\(n)\"]').click()")
        #expect(browser.waitFor("document.querySelector('#trades tr.selected')?.dataset.trade === '\(n)'"))
        let range = try #require(
            try JSONSerialization.jsonObject(
                with: Data(try js("JSON.stringify(report.price.chart.timeScale().getVisibleRange())").utf8))
                as? [String: Double])
        #expect(
            range["from"]! <= Double(trip.entryT) && range["to"]! >= Double(trip.exitT)
                && range["to"]! - range["from"]! <= Double(trip.exitT - trip.entryT) + 2 * 20 * 60 + 120,
            "zoomed to the trade: \(range), was \(whole)")
        let lines = try js("JSON.stringify(report.price.lines.map(l => l[0]))")
        for level in [trip.entry, trip.stop, trip.tp1, trip.tp2, trip.exit].compactMap({ $0 }) {
            #expect(lines.contains(formatNumber(level)), "\(level) drawn: \(lines)")
        }

        // The parameters of the run, and no network: nothing was fetched.
        #expect(
            try js("document.querySelector('#parameters').textContent").contains("value_area.rolling_window_minutes"))
        #expect(try browser.evaluate("performance.getEntriesByType('resource').length") as? Int == 0)
    }
}
