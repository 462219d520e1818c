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

    @Flag(
        help: ArgumentHelp(
            "Write one gzip file per UTC day, as Bybit's daily dumps: DIR/trades/SYMBOLYYYY-MM-DD.csv.gz and "
                + "DIR/quotes/SYMBOLYYYY-MM-DD.csv.gz."))
    var daily = false

    @Flag(
        help: ArgumentHelp(
            "Also write the quotes as Bybit's order-book archive (a zip of orderbook.500 JSON messages): "
                + "DIR/orderbook.data.zip, or with --daily DIR/orderbook/YYYY-MM-DD_SYMBOL_ob500.data.zip; "
                + "--quotes reads either form."))
    var bookArchive = false

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
        var trades = DayFiles(out: out, kind: "trades", daily: daily, instrument: instrument)
        var quotes = DayFiles(out: out, kind: "quotes", daily: daily, instrument: instrument)
        var archive = bookArchive ? DayArchives(out: out, daily: daily, instrument: instrument) : nil
        var tradeCount = 0
        var quoteCount = 0
        while let event = generator.next() {
            switch event {
            case .trade(let t):
                try trades.write(t)
                tradeCount += 1
            case .quote(let q):
                try quotes.write(q)
                try archive?.write(q)
                quoteCount += 1
            }
        }
        try trades.close()
        try quotes.close()
        try archive?.close()
        let line =
            "simulate: \(grouped(tradeCount)) trades and \(grouped(quoteCount)) quotes over \(formatNumber(hours)) h "
            + "(seed \(seed)) written to "
            + (daily
                ? "\(trades.files) daily files in \(out)/trades and \(quotes.files) in \(out)/quotes"
                : "\(out)/trades.csv and \(out)/quotes.csv") + " in "
            + String(format: "%.2f s", Date().timeIntervalSince(started))
            + (archive.map {
                "; order-book archive: \(grouped($0.messages)) messages in \($0.files) file\($0.files == 1 ? "" : "s")"
            } ?? "")
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}

/// The files of one kind: `DIR/KIND.csv`, or with `daily` one `DIR/KIND/SYMBOLYYYY-MM-DD.csv.gz` per UTC day.
private struct DayFiles {
    let out: String
    let kind: String
    let daily: Bool
    let instrument: Instrument
    private var current: RecordingWriter?
    private var day: Millis?
    private(set) var files = 0

    init(out: String, kind: String, daily: Bool, instrument: Instrument) {
        self.out = out
        self.kind = kind
        self.daily = daily
        self.instrument = instrument
    }

    mutating func write(_ t: TradeEvent) throws {
        try open(at: t.ts)
        try current!.write(t)
    }

    mutating func write(_ q: QuoteEvent) throws {
        try open(at: q.ts)
        try current!.write(q)
    }

    private mutating func open(at ts: Millis) throws {
        let d = daily ? utcDayStart(ts) : 0
        if current == nil || d != day {
            try current?.close()
            let header = kind == "trades" ? RecordingWriter.tradesHeader : RecordingWriter.quotesHeader
            var path = "\(out)/\(kind).csv"
            if daily {
                path = "\(try dailyDirectory(out, kind))/\(instrument.symbol)\(isoTime(d).prefix(10)).csv.gz"
            }
            current = try RecordingWriter(path: path, header: header, instrument: instrument)
            day = d
            files += 1
        }
    }

    mutating func close() throws { try current?.close() }
}

/// The quotes as Bybit's order-book archive: `DIR/orderbook.data.zip`, or with `daily` one
/// `DIR/orderbook/YYYY-MM-DD_SYMBOL_ob500.data.zip` per UTC day, each starting with a snapshot.
private struct DayArchives {
    let out: String
    let daily: Bool
    let instrument: Instrument
    private var current: OrderBookArchiveWriter?
    private var day: Millis?
    private(set) var files = 0
    private(set) var messages = 0

    init(out: String, daily: Bool, instrument: Instrument) {
        self.out = out
        self.daily = daily
        self.instrument = instrument
    }

    mutating func write(_ q: QuoteEvent) throws {
        let d = daily ? utcDayStart(q.ts) : 0
        if current == nil || d != day {
            try close()
            let date = String(isoTime(q.ts).prefix(10))
            let member = "\(date)_\(instrument.symbol)_ob500.data"
            var path = "\(out)/orderbook.data.zip"
            if daily { path = "\(try dailyDirectory(out, "orderbook"))/\(member).zip" }
            current = try OrderBookArchiveWriter(path: path, memberName: member, instrument: instrument)
            day = d
            files += 1
        }
        try current!.write(q)
    }

    mutating func close() throws {
        guard var writer = current else { return }
        try writer.close()
        messages += writer.messages
        current = nil
    }
}

/// Midnight UTC of the day of `ts`.
private func utcDayStart(_ ts: Millis) -> Millis { ts - ((ts % 86_400_000) + 86_400_000) % 86_400_000 }

/// `OUT/KIND`, created when missing.
private func dailyDirectory(_ out: String, _ kind: String) throws -> String {
    let dir = "\(out)/\(kind)"
    do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
        throw CommandError(description: "\(dir): cannot create the directory: \(error.localizedDescription)")
    }
    return dir
}
