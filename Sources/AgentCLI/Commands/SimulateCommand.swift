import AgentConfig
import AgentSupport
import ArgumentParser
import Daemon
import Engine
import Foundation
import MarketData
import Research
import Simulator

/// `auction-agent simulate`: writes a synthetic market to trades.csv and quotes.csv.
struct SimulateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "simulate",
        abstract: "Write a synthetic BTC-perpetual market (trades.csv, quotes.csv) for tests and benchmarks.",
        discussion: """
            One-tick spreads most of the time and wider spells, trades at the bid and ask and inside wide spreads, \
            split fills at one timestamp, balance and trend regimes; about 20 trades and 50 quotes a second. \
            The same seed always writes the same files. Prices use the configured instrument's tick and step.
            """
    )

    @Option(help: "Hours of market to generate.")
    var hours: Double = 24

    @Option(help: "Random seed.")
    var seed: UInt64 = 1

    @Option(
        help: ArgumentHelp("Directory to write trades.csv and quotes.csv into (created if missing).", valueName: "dir"))
    var out: String

    @Option(help: ArgumentHelp("First timestamp, ISO 8601 (default 2026-01-01T00:00:00Z).", valueName: "time"))
    var start: String?

    @Option(help: "Starting price.")
    var price: String = "50000"

    @OptionGroup var config: ConfigOptions

    func validate() throws {
        guard hours > 0 && hours <= 24 * 366 else { throw ValidationError("--hours must be in (0, 8784]") }
    }

    func run() throws {
        let resolved = try ConfigLoader.load(config.selection)
        let instrument = resolved.instrument
        var settings = MarketGeneratorConfig()
        settings.hours = hours
        settings.seed = seed
        guard let p = ScaledDecimal(price), let ticks = instrument.ticks(p), ticks > 1 else {
            throw ValidationError("--price '\(price)' is not a positive price")
        }
        settings.startPriceTicks = ticks
        if let start {
            var bytes = Array(start.utf8)
            guard let ms = bytes.withUnsafeMutableBufferPointer({ parseISO8601Timestamp(UnsafeBufferPointer($0)) })
            else {
                throw ValidationError("--start '\(start)' is not an ISO 8601 time such as 2026-01-01T00:00:00Z")
            }
            settings.startMs = ms
        }
        do {
            try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        } catch {
            throw CommandError(description: "\(out): cannot create the directory: \(error.localizedDescription)")
        }
        let started = Date()
        var generator = MarketGenerator(config: settings)
        var tradeWriter = try RecordingWriter(
            path: "\(out)/trades.csv", header: RecordingWriter.tradesHeader, instrument: instrument)
        var quoteWriter = try RecordingWriter(
            path: "\(out)/quotes.csv", header: RecordingWriter.quotesHeader, instrument: instrument)
        var tradeCount = 0
        var quoteCount = 0
        while let event = generator.next() {
            switch event {
            case .trade(let t):
                try tradeWriter.write(t)
                tradeCount += 1
            case .quote(let q):
                try quoteWriter.write(q)
                quoteCount += 1
            }
        }
        try tradeWriter.close()
        try quoteWriter.close()
        let line =
            "simulate: \(grouped(tradeCount)) trades and \(grouped(quoteCount)) quotes over \(formatNumber(hours)) h "
            + "(seed \(seed)) written to \(out)/trades.csv and \(out)/quotes.csv in "
            + String(format: "%.2f s", Date().timeIntervalSince(started))
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
