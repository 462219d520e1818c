import CZlib
public import Engine
import Foundation

// Months of recorded data (docs/FEATURES.md, "Many files"): Bybit's daily dumps given as files, directories or glob
// patterns, in any order, read as one time-ordered stream one file at a time, so that memory holds one day's file
// whatever the number of days. A file that overlaps the one before it is refused, naming both; days with no file are
// listed in the coverage report.

/// Files, directories and glob patterns of one kind of data, expanded.
public enum RecordedInputs {
    /// Expands each input: a directory gives its `.csv` and `.csv.gz` files (not those of its subdirectories), an
    /// input with `*`, `?` or `[` is a glob pattern, anything else is a file that must exist. Duplicates are dropped;
    /// the result is sorted by path (the series orders files by time). `what` names the option in errors.
    public static func expand(_ inputs: [String], what: String) throws(DataFileError) -> [String] {
        var out: [String] = []
        for input in inputs {
            var isDirectory: ObjCBool = false
            if input.contains(where: { $0 == "*" || $0 == "?" || $0 == "[" }) {
                let matches = glob(input).filter { isDataFile($0) }
                guard !matches.isEmpty else {
                    throw DataFileError(
                        file: input, reason: "\(what): the pattern matches no data file (.csv, .csv.gz, .zip, .data)")
                }
                out += matches
            } else if FileManager.default.fileExists(atPath: input, isDirectory: &isDirectory), isDirectory.boolValue {
                let names = (try? FileManager.default.contentsOfDirectory(atPath: input)) ?? []
                let mixed = names.contains { $0.hasPrefix("quotes") } && names.contains { isTradeDumpName($0) }
                let files = names.filter { isDataFile($0) && !(mixed && isOtherKind($0, what: what)) }.map {
                    (input as NSString).appendingPathComponent($0)
                }
                guard !files.isEmpty else {
                    throw DataFileError(
                        file: input, reason: "\(what): the directory holds no data file (.csv, .csv.gz, .zip, .data)")
                }
                out += files
            } else if FileManager.default.fileExists(atPath: input) {
                out.append(input)
            } else {
                throw DataFileError(file: input, reason: "\(what): no such file or directory")
            }
        }
        return Array(Set(out)).sorted()
    }

    /// The files a directory or pattern gives: CSV (plain or gzipped) and Bybit's order-book archives (`.zip`, or
    /// their `.data` JSON lines); never `gaps.csv` or `inputs.csv` (nor `features`'s `FILE.inputs.csv`), which
    /// describe data rather than hold it.
    static func isDataFile(_ path: String) -> Bool {
        let name = (path as NSString).lastPathComponent
        guard name != "gaps.csv", name != "inputs.csv", !name.hasSuffix(".inputs.csv") else { return false }
        return [".csv", ".csv.gz", ".zip", ".data", ".data.gz"].contains { name.hasSuffix($0) }
    }

    /// In a directory holding both kinds (the recorder's and `export`'s: `quotes-*` files beside Bybit-named trade
    /// dumps): `--trades` skips the quotes files, `--quotes` skips the trade dumps (`BTCUSDT2024-03-01.csv.gz`).
    static func isOtherKind(_ name: String, what: String) -> Bool {
        if what.contains("trades") { return name.hasPrefix("quotes") }
        guard what.contains("quotes") else { return false }
        return isTradeDumpName(name)
    }

    /// `SYMBOLyyyy-mm-dd.csv` or `.csv.gz`, the name of Bybit's daily trade dumps.
    static func isTradeDumpName(_ name: String) -> Bool {
        var stem = Substring(name)
        if stem.hasSuffix(".gz") { stem = stem.dropLast(3) }
        guard stem.hasSuffix(".csv") else { return false }
        stem = stem.dropLast(4)
        guard stem.count > 10 else { return false }
        let date = Array(stem.suffix(10).utf8)
        let symbol = stem.dropLast(10)
        let digits = [0, 1, 2, 3, 5, 6, 8, 9].allSatisfy { date[$0] >= 48 && date[$0] <= 57 }
        return digits && date[4] == UInt8(ascii: "-") && date[7] == UInt8(ascii: "-")
            && symbol.allSatisfy { $0.isUppercase || $0.isNumber }
    }

    private static func glob(_ pattern: String) -> [String] {
        var g = glob_t()
        defer { globfree(&g) }
        guard Glibc.glob(pattern, 0, nil, &g) == 0 else { return [] }
        return (0..<Int(g.gl_pathc)).compactMap { g.gl_pathv[$0].map { String(cString: $0) } }
    }
}

/// A time range of `--from` / `--to`: from inclusive, to exclusive, either open.
public struct TimeRange: Sendable, Equatable {
    public var from: Millis?
    public var to: Millis?

    public init(from: Millis? = nil, to: Millis? = nil) {
        self.from = from
        self.to = to
    }

    public static let all = TimeRange()

    @inline(__always) public func contains(_ ts: Millis) -> Bool {
        (from.map { ts >= $0 } ?? true) && (to.map { ts < $0 } ?? true)
    }

    /// A time given on the command line: a date (`2024-03-01`, midnight UTC), ISO 8601 (`2024-03-01T12:00:00Z`) or
    /// milliseconds since 1970. Nil when it is none of these.
    public static func parseTime(_ text: String) -> Millis? {
        let full = text.count == 10 ? text + "T00:00:00Z" : text
        let bytes = Array(full.utf8)
        if let ms = bytes.withUnsafeBufferPointer({ parseISO8601Timestamp($0) }) { return ms }
        if let ms = Int64(text), ms >= 0 { return ms }
        return nil
    }
}

/// One file of a series, as read: its path, first and last timestamps and rows kept.
public struct FileSpan: Sendable, Equatable {
    public var file: String
    public var first: Millis
    public var last: Millis
    public var rows: Int
    /// What the file was when not a CSV (an order-book archive: its messages and snapshots).
    public var source: String? = nil
    /// The file's SHA-256 and size as stored, when it was hashed as it was read.
    public var sha256: String? = nil
    public var bytes: Int64? = nil
}

/// One kind of recorded data (trades or quotes) over many files, read in time order.
///
/// Files are ordered by the time of their first data row (read without loading the file), then read in turn on a
/// thread of their own, ahead of the consumer (SeriesReader.swift): a file that runs forward in time streams through in
/// chunks, one written newest first or out of order is held and put in order as a whole. A file whose first row is
/// earlier than the last row of the file before it overlaps it (a day given twice, or two sources for one day) and
/// stops the run, naming both: nothing is merged silently. Rows outside `range` are dropped as they are read; once a
/// file starts at or after `range.to`, reading stops.
///
/// The reading starts at the first `next()`; a copy made after that shares it.
public struct RecordedSeries<Event: RecordedEvent>: Sendable {
    private var plan: SeriesPlan<Event>
    /// Files whose rows all lie before the range are passed over unread (a walk-forward window late in a year
    /// reads its days, not the year before them); they then appear in no span.
    public var skipsFilesBeforeRange: Bool {
        get { plan.skipsFilesBeforeRange }
        set { plan.skipsFilesBeforeRange = newValue }
    }
    public var range: TimeRange { plan.range }
    /// The gaps `gaps.csv` lists beside the files (their directories'), inside the range; nil when there is none.
    public let gaps: [RecordedGap]?
    private var reading: SeriesReading<Event>?
    private var current: [Event] = []
    private var index = 0
    private var finished = false
    /// A file has started and its report is the provisional one.
    private var fileOpen = false
    private var filesRead = 0
    /// The files read so far, in the order read (rows: those kept within the range).
    public private(set) var spans: [FileSpan] = []
    public private(set) var reports: [LoadReport] = []

    /// The files to read, in reading order.
    public var orderedFiles: [String] { plan.files }
    /// Files read so far / all files (progress).
    public var fractionRead: Double { plan.files.isEmpty ? 1 : Double(filesRead) / Double(plan.files.count) }

    init(
        files: [String], range: TimeRange,
        readFile: @escaping @Sendable (String, inout SeriesFileSink<Event>) throws(DataFileError) -> LoadReport
    ) throws(DataFileError) {
        var probed: [(path: String, ts: Millis)] = []
        for f in files {
            // A file without a data row sorts first; reading it finds it empty.
            probed.append((f, try firstRowTimestamp(f) ?? Int64.min))
        }
        probed.sort { ($0.ts, $0.path) < ($1.ts, $1.path) }
        plan = SeriesPlan(
            files: probed.map(\.path), firstTimes: probed.map(\.ts), skipsFilesBeforeRange: false, range: range,
            readFile: readFile)
        gaps = try GapsFile.beside(files, range: range)
    }

    /// Every remaining event, in one array (for tools that need them all in memory at once, such as the grid).
    public mutating func readAll() throws(DataFileError) -> [Event] {
        var out: [Event] = []
        while let e = try next() { out.append(e) }
        return out
    }

    /// The next event in time order, nil at the end.
    @inline(__always)
    public mutating func next() throws(DataFileError) -> Event? {
        if index < current.count {
            defer { index += 1 }
            return current[index]
        }
        return try nextChunk()
    }

    private mutating func nextChunk() throws(DataFileError) -> Event? {
        guard !finished else { return nil }
        if reading == nil { reading = SeriesReading(plan: plan) }
        while true {
            switch reading!.pipe.take() {
            case .events(let chunk):
                current = chunk
                index = 1
                return chunk[0]
            case .started(let report):
                reports.append(report)
                fileOpen = true
            case .ended(let report, let span):
                if fileOpen { reports[reports.count - 1] = report } else { reports.append(report) }
                fileOpen = false
                if let span { spans.append(span) }
                filesRead += 1
            case .finished:
                return end()
            case .failed(let error):
                _ = end()
                throw error
            }
        }
    }

    private mutating func end() -> Event? {
        finished = true
        current = []
        index = 0
        reading = nil
        filesRead = plan.files.count
        return nil
    }
}

extension RecordedSeries where Event == TradeEvent {
    /// Trades from `files` (Bybit's dumps as they are, or any file with the accepted columns).
    public static func trades(
        _ files: [String], instrument: Instrument, options: ReadOptions = ReadOptions(), range: TimeRange = .all
    ) throws(DataFileError) -> RecordedSeries<TradeEvent> {
        try RecordedSeries(
            files: files, range: range,
            readFile: { (path, sink) throws(DataFileError) in
                try readTrades(path: path, instrument: instrument, options: options, into: &sink)
            })
    }
}

extension RecordedSeries where Event == QuoteEvent {
    /// Quotes from `files`.
    public static func quotes(
        _ files: [String], instrument: Instrument, options: ReadOptions = ReadOptions(), range: TimeRange = .all
    ) throws(DataFileError) -> RecordedSeries<QuoteEvent> {
        try RecordedSeries(
            files: files, range: range,
            readFile: { (path, sink) throws(DataFileError) in
                try readQuotes(path: path, instrument: instrument, options: options, into: &sink)
            })
    }
}

/// Trades and quotes merged in time order, a quote before a trade at the same millisecond (as `mergeEvents`).
public struct RecordedMarket: Sendable {
    public private(set) var trades: RecordedSeries<TradeEvent>
    public private(set) var quotes: RecordedSeries<QuoteEvent>?
    private var nextTrade: TradeEvent?
    private var nextQuote: QuoteEvent?
    private var started = false

    public init(trades: RecordedSeries<TradeEvent>, quotes: RecordedSeries<QuoteEvent>?) {
        self.trades = trades
        self.quotes = quotes
    }

    /// The next event, nil at the end of both series.
    public mutating func next() throws(DataFileError) -> MarketEvent? {
        if !started {
            started = true
            nextTrade = try trades.next()
            nextQuote = try quotes?.next()
        }
        if let q = nextQuote, nextTrade.map({ q.ts <= $0.ts }) ?? true {
            nextQuote = try quotes?.next()
            return .quote(q)
        }
        guard let t = nextTrade else { return nil }
        nextTrade = try trades.next()
        return .trade(t)
    }

    /// Files read so far / all files, over both series (progress).
    public var fractionRead: Double {
        guard let quotes else { return trades.fractionRead }
        return (trades.fractionRead + quotes.fractionRead) / 2
    }

    /// The gaps listed beside the files of either kind, in the range, in time order (none without a gaps.csv).
    public var gaps: [RecordedGap] { Coverage.union(trades.gaps, quotes?.gaps) ?? [] }

    /// What was read: each file's span, and the UTC days of the range (or of the data) with no file.
    public var coverage: Coverage {
        Coverage(
            trades: trades.spans, quotes: quotes?.spans, range: trades.range,
            gaps: Coverage.union(trades.gaps, quotes?.gaps))
    }
}

/// What the files of a run covered, for its summary and `inputs.csv`.
public struct Coverage: Sendable, Equatable {
    public var trades: [FileSpan]
    public var quotes: [FileSpan]?
    /// UTC days (as `yyyy-mm-dd`, runs of days as `first..last`) inside the range with no trades file, and with no
    /// quotes file. The range is `--from`/`--to` when given, else from the first to the last day with data.
    public var missingTradeDays: [String]
    public var missingQuoteDays: [String]
    /// The gaps `gaps.csv` lists in the range (record, export); nil when no input's directory has one.
    public var gaps: [RecordedGap]?

    public init(trades: [FileSpan], quotes: [FileSpan]?, range: TimeRange, gaps: [RecordedGap]? = nil) {
        self.trades = trades
        self.quotes = quotes
        self.gaps = gaps
        let all = trades + (quotes ?? [])
        let firstDay = range.from.map { floorDiv($0, 86_400_000) } ?? all.map { floorDiv($0.first, 86_400_000) }.min()
        let lastDay = range.to.map { floorDiv($0 - 1, 86_400_000) } ?? all.map { floorDiv($0.last, 86_400_000) }.max()
        func day(_ d: Int64) -> String { String(isoTime(d * 86_400_000).prefix(10)) }
        func missing(_ spans: [FileSpan]) -> [String] {
            guard let firstDay, let lastDay, firstDay <= lastDay else { return [] }
            var covered = Set<Int64>()
            for s in spans where s.rows > 0 {
                for d in floorDiv(s.first, 86_400_000)...floorDiv(s.last, 86_400_000) { covered.insert(d) }
            }
            var runs: [String] = []
            var d = firstDay
            while d <= lastDay {
                if covered.contains(d) {
                    d += 1
                    continue
                }
                var end = d
                while end + 1 <= lastDay && !covered.contains(end + 1) { end += 1 }
                runs.append(end == d ? day(d) : "\(day(d))..\(day(end))")
                d = end + 1
            }
            return runs
        }
        missingTradeDays = missing(trades)
        missingQuoteDays = quotes.map(missing) ?? []
    }

    /// Summary lines: files and rows per kind, and the days missing.
    public var lines: [String] {
        var out: [String] = []
        func describe(_ what: String, _ spans: [FileSpan], _ missing: [String]) {
            let rows = spans.reduce(0) { $0 + $1.rows }
            var line = "\(what): \(spans.count) file\(spans.count == 1 ? "" : "s"), \(rows) rows"
            if let f = spans.first, let l = spans.last {
                line += ", \(isoTime(f.first, milliseconds: true)) to \(isoTime(l.last, milliseconds: true))"
            }
            out.append(line)
            for s in spans { if let source = s.source { out.append("  \(s.file): \(source)") } }
            if !missing.isEmpty { out.append("  missing days (no \(what) file): \(missing.joined(separator: ", "))") }
        }
        describe("trades", trades, missingTradeDays)
        if let quotes { describe("quotes", quotes, missingQuoteDays) }
        if let gaps { out.append(GapsFile.summary(gaps)) }
        return out
    }

    /// The gaps of both kinds' files, each once, in time order; nil when neither has a gaps.csv.
    public static func union(_ a: [RecordedGap]?, _ b: [RecordedGap]?) -> [RecordedGap]? {
        guard a != nil || b != nil else { return nil }
        var out = a ?? []
        for g in b ?? [] where !out.contains(g) { out.append(g) }
        return out.sorted { ($0.from, $0.to) < ($1.from, $1.to) }
    }
}

/// The timestamp of a file's first data row, read from its first 64 KiB (decompressed) without loading the file.
/// Nil when the file has no data row there or its timestamp cannot be read (the full read then says why).
func firstRowTimestamp(_ path: String) throws(DataFileError) -> Millis? {
    if isOrderBookArchive(path) { return try firstArchiveTimestamp(path) }
    var head = [UInt8](repeating: 0, count: 64 * 1024)
    var n = 0
    if path.hasSuffix(".gz") {
        guard let gz = gzopen(path, "rb") else { throw DataFileError(file: path, reason: "cannot be opened") }
        defer { gzclose(gz) }
        n = Int(head.withUnsafeMutableBufferPointer { gzread(gz, $0.baseAddress, UInt32($0.count)) })
    } else {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw DataFileError(file: path, reason: "cannot be read")
        }
        defer { try? handle.close() }
        let data = (try? handle.read(upToCount: head.count)) ?? Data()
        n = data.count
        head.replaceSubrange(0..<n, with: data)
    }
    guard n > 0 else { return nil }
    head.removeSubrange(n...)
    return head.withUnsafeBufferPointer { buffer -> Millis? in
        var scanner = CSVScanner(bytes: buffer)
        guard let header = scanner.nextLine(), let column = findColumn(headerNames(header), ColumnNames.timestamp),
            let line = scanner.nextLine()
        else { return nil }
        let fields = Fields()
        fields.want(column + 1)
        guard fields.split(line) == fields.wanted else { return nil }
        var reader = TimestampReader()
        return try? reader.parse(UnsafeBufferPointer(rebasing: line[fields[column]]))
    }
}
