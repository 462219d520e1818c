import AgentConfig
import Engine
import Foundation
import Research
import Simulator

/// `bench --report-month`: the report budget of issue 27. A month of generated minutes (a thinner market than the
/// default, 2 trades and 5 quotes a second: the report's size follows the minutes, not the trades) backtested with
/// every minute's profile kept, report.html written, then opened from disk in headless Chromium; the page records how
/// long after navigation its script had built every chart (`data-ready-ms` on the document element).
func reportMonthBench(days: Int) throws {
    var market = MarketGeneratorConfig()
    market.hours = Double(days * 24)
    market.seed = 5
    market.tradesPerSecond = 2
    market.quotesPerSecond = 5
    var generator = MarketGenerator(config: market)
    let (trades, quotes) = generator.generateAll()
    let config = try ConfigLoader.load(ConfigSelection(), defaultEnvironment: nil)
    let started = now()
    let result = runBacktest(
        trades: trades, quotes: quotes, features: config.features, strategy: config.strategy,
        instrument: config.instrument, keepProfiles: true)
    let ran = now() - started
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("auction-report-bench-\(getpid())")
    defer { try? FileManager.default.removeItem(at: dir) }
    let written = now()
    try writeBacktest(
        result, to: dir.path, instrument: config.instrument, initialEquity: config.strategy.initialEquity,
        title: "report bench", parameters: ConfigLoader.researchParameters(config))
    let writing = now() - written
    let path = dir.appendingPathComponent("report.html").path
    let bytes = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
    report(
        "report.html of \(days) days (\(result.features.count) minutes, \(result.roundTrips.count) trips)",
        String(format: "%.1f MB; backtest %.1f s, written in %.2f s", Double(bytes) / 1e6, ran, writing))
    guard
        let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first(where: {
            FileManager.default.isExecutableFile(atPath: $0)
        })
    else {
        report("report.html opened in Chromium", "chromium is not installed (bash scripts/setup --tests)")
        return
    }
    for attempt in 1...3 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: chromium)
        p.arguments = [
            "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1400,1000",
            "--user-data-dir=\(dir.path)/profile-\(attempt)", "--dump-dom", "file://\(path)",
        ]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        try p.run()
        let dom = String(decoding: out.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        p.waitUntilExit()
        let ready = dom.firstMatch(of: /data-ready-ms="([0-9]+)"/).map { String($0.1) } ?? "not ready"
        report("report.html open to every chart built (run \(attempt))", "\(ready) ms")
    }
}
