public import Engine
import Foundation

/// What reading one file found, for the run summary.
public struct LoadReport: Sendable, Equatable {
    public var file: String
    public var rows = 0
    public var timestampUnit: TimestampUnit?
    /// The file was not in time order: read in reverse (newest first) or sorted (stable).
    public var reordered = false
    /// The file ran newest first (Bybit's dumps) and was read in reverse, prints at one timestamp included.
    public var reversed = false
    /// The file has a taker-side column.
    public var hasSide = false
    /// Rows skipped with `--skip-bad-rows`, and the first few reasons.
    public var skippedRows = 0
    public var skippedExamples: [DataFileError] = []
    /// What the file was when it is not a plain CSV (an order-book archive: its messages and snapshots).
    public var source: String?
    /// The file's SHA-256 and size as stored, when it was hashed as it was read (a series' files).
    public var sha256: String?
    public var storedBytes: Int64?
}

/// Options of the readers.
public struct ReadOptions: Sendable {
    /// Count and report malformed rows instead of stopping at the first.
    public var skipBadRows = false
    /// When the trades file has a `symbol` column (Bybit's dumps), every row must name this symbol.
    public var expectedSymbol: String?
    public init(skipBadRows: Bool = false, expectedSymbol: String? = nil) {
        self.skipBadRows = skipBadRows
        self.expectedSymbol = expectedSymbol
    }
}

/// Column names accepted for each field, most preferred first.
enum ColumnNames {
    static let timestamp = ["timestamp", "ts", "ts_ms", "time", "T"]
    static let price = ["price", "p"]
    static let size = ["size", "qty", "v", "volume", "amount"]
    static let side = ["side", "S"]
    static let bidPrice = ["bid_px", "bid_price", "bid1_price", "best_bid_price", "best_bid", "bid"]
    static let bidSize = ["bid_sz", "bid_size", "bid_qty", "bid1_size", "best_bid_size", "bid_volume", "bid_amount"]
    static let askPrice = ["ask_px", "ask_price", "ask1_price", "best_ask_price", "best_ask", "ask"]
    static let askSize = ["ask_sz", "ask_size", "ask_qty", "ask1_size", "best_ask_size", "ask_volume", "ask_amount"]
}

/// Reads a trades CSV (Bybit's public dumps as they are, or any file with the accepted column names).
public func readTrades(
    path: String,
    instrument: Instrument,
    options: ReadOptions = ReadOptions()
) throws(DataFileError) -> (trades: [TradeEvent], report: LoadReport) {
    if ZipArchive.hasSignature(path) { throw zipIsNotTrades(path) }
    var lines = try FileLines(path: path)
    defer { lines.close() }
    return try parseTrades(&lines, name: path, instrument: instrument, options: options, rows: lines.rowsHint)
}

/// Reads a trades file row by row into `sink`, in the file's order; the report's order flags are left to the sink.
func readTrades(
    path: String, instrument: Instrument, options: ReadOptions, into sink: inout some EventSink<TradeEvent>
) throws(DataFileError) -> LoadReport {
    if ZipArchive.hasSignature(path) { throw zipIsNotTrades(path) }
    var lines = try FileLines(path: path, hashing: true)
    defer { lines.close() }
    var report = try parseTrades(&lines, name: path, instrument: instrument, options: options, into: &sink)
    try lines.recordDigest(in: &report)
    return report
}

private func zipIsNotTrades(_ path: String) -> DataFileError {
    DataFileError(
        file: path,
        reason: "is a zip archive, not a trades CSV: trades are read from CSV or .csv.gz files (Bybit's trade "
            + "dumps as they are); a Bybit order-book archive is a source of quotes (--quotes)")
}

/// Reads quotes: a CSV (timestamp, bid price, bid size, ask price, ask size), or Bybit's order-book archive (a zip
/// of the `orderbook.N` stream's messages, or those JSON lines themselves), whose best levels become the quotes.
public func readQuotes(
    path: String,
    instrument: Instrument,
    options: ReadOptions = ReadOptions()
) throws(DataFileError) -> (quotes: [QuoteEvent], report: LoadReport) {
    if isOrderBookArchive(path) {
        return try readOrderBookArchive(path: path, instrument: instrument, options: options)
    }
    var lines = try FileLines(path: path)
    defer { lines.close() }
    return try parseQuotes(&lines, name: path, instrument: instrument, options: options, rows: lines.rowsHint)
}

/// Reads a quotes file (CSV or order-book archive) row by row into `sink`, in the file's order.
func readQuotes(
    path: String, instrument: Instrument, options: ReadOptions, into sink: inout some EventSink<QuoteEvent>
) throws(DataFileError) -> LoadReport {
    if isOrderBookArchive(path) {
        // An archive's best levels come out of a book rebuilt message by message, each change handed on as it comes.
        return try readOrderBookArchive(path: path, instrument: instrument, options: options, into: &sink)
    }
    var lines = try FileLines(path: path, hashing: true)
    defer { lines.close() }
    var report = try parseQuotes(&lines, name: path, instrument: instrument, options: options, into: &sink)
    try lines.recordDigest(in: &report)
    return report
}

/// Reads trades from bytes already in memory; `name` appears in errors.
public func readTrades(
    bytes: [UInt8],
    name: String,
    instrument: Instrument,
    options: ReadOptions = ReadOptions()
) throws(DataFileError) -> (trades: [TradeEvent], report: LoadReport) {
    try bytes.withUnsafeBufferPointer { (buffer) throws(DataFileError) in
        var lines = BufferLines(buffer)
        return try parseTrades(&lines, name: name, instrument: instrument, options: options, rows: bytes.count / 40)
    }
}

/// Reads quotes from bytes already in memory; `name` appears in errors.
public func readQuotes(
    bytes: [UInt8],
    name: String,
    instrument: Instrument,
    options: ReadOptions = ReadOptions()
) throws(DataFileError) -> (quotes: [QuoteEvent], report: LoadReport) {
    try bytes.withUnsafeBufferPointer { (buffer) throws(DataFileError) in
        var lines = BufferLines(buffer)
        return try parseQuotes(&lines, name: name, instrument: instrument, options: options, rows: bytes.count / 40)
    }
}

/// Where a reader puts each row's event, with its line number (0 when the event has no line of its own).
protocol EventSink<Event> {
    associatedtype Event
    /// The header was read: what the report knows so far (its columns).
    mutating func begin(_ report: LoadReport)
    mutating func add(_ event: Event, line: Int) throws(DataFileError)
}

extension EventSink {
    mutating func begin(_ report: LoadReport) {}
}

/// Every event, in the file's order.
struct ArraySink<Event>: EventSink {
    var events: [Event] = []

    init(capacity: Int) { events.reserveCapacity(capacity) }

    @inline(__always) mutating func add(_ event: Event, line: Int) { events.append(event) }
}

/// The trades of a CSV's lines (the header first), put in time order. `rows`: how many to make room for.
func parseTrades(
    _ lines: inout some CSVLines, name: String, instrument: Instrument, options: ReadOptions, rows: Int
) throws(DataFileError) -> (trades: [TradeEvent], report: LoadReport) {
    try inTimeOrder(rows) { (sink) throws(DataFileError) in
        try parseTrades(&lines, name: name, instrument: instrument, options: options, into: &sink)
    }
}

/// The quotes of a CSV's lines (the header first), put in time order. `rows`: how many to make room for.
func parseQuotes(
    _ lines: inout some CSVLines, name: String, instrument: Instrument, options: ReadOptions, rows: Int
) throws(DataFileError) -> (quotes: [QuoteEvent], report: LoadReport) {
    try inTimeOrder(rows) { (sink) throws(DataFileError) in
        try parseQuotes(&lines, name: name, instrument: instrument, options: options, into: &sink)
    }
}

/// A whole file's events, parsed into an array and put in time order (`putInTimeOrder`), the report saying how.
func inTimeOrder<Event: RecordedEvent>(
    _ rows: Int, _ parse: (inout ArraySink<Event>) throws(DataFileError) -> LoadReport
) throws(DataFileError) -> ([Event], LoadReport) {
    var sink = ArraySink<Event>(capacity: rows)
    var report = try parse(&sink)
    (report.reordered, report.reversed) = putInTimeOrder(&sink.events, by: \.ts)
    return (sink.events, report)
}

/// The trades of a CSV's lines (the header first), into `sink` in the file's order.
func parseTrades(
    _ lines: inout some CSVLines, name: String, instrument: Instrument, options: ReadOptions,
    into sink: inout some EventSink<TradeEvent>
) throws(DataFileError) -> LoadReport {
    var reader = RowReader(name: name, options: options)
    var header = false
    var ts = 0
    var price = 0
    var size = 0
    var side: Int?
    var symbol: Int?
    let expected = options.expectedSymbol.map { Array($0.utf8) }
    let (ticks, lots) = (UnitCounter(instrument.tick), UnitCounter(instrument.qtyStep))
    let belowStep = "is below one qty step (\(instrument.qtyStep))"
    let fields = Fields()
    try lines.forEachLine { (line, number) throws(DataFileError) in
        guard header else {
            header = true
            try refuseBinary(line, name: name)
            let names = headerNames(line)
            ts = try reader.column(names, ColumnNames.timestamp, "timestamp")
            price = try reader.column(names, ColumnNames.price, "price")
            size = try reader.column(names, ColumnNames.size, "size")
            side = findColumn(names, ColumnNames.side)
            reader.report.hasSide = side != nil
            symbol = expected == nil ? nil : findColumn(names, ["symbol"])
            fields.want(max(ts, price, size, side ?? 0, symbol ?? 0) + 1)
            sink.begin(reader.report)
            return
        }
        let found = fields.split(line)
        let trade: TradeEvent
        do throws(RowProblem) {
            guard found == fields.wanted else { throw .fieldCount(found, fields.wanted) }
            let t = try reader.timestamp(line, fields[ts], fields.number(ts))
            let p = try reader.count(
                line, fields[price], fields.number(price), ticks, "price", positive: true, "must be positive")
            let s = try reader.count(line, fields[size], fields.number(size), lots, "size", positive: true, belowStep)
            if let symbol, let expected, !line[fields[symbol]].elementsEqual(expected) {
                let found = String(decoding: UnsafeBufferPointer(rebasing: line[fields[symbol]]), as: UTF8.self)
                throw .value("symbol", found, "is not the instrument's symbol \(options.expectedSymbol!)")
            }
            var takerSide = TakerSide.unknown
            if let side { takerSide = try parseSide(UnsafeBufferPointer(rebasing: line[fields[side]])) }
            trade = TradeEvent(ts: t, price: p, size: s, side: takerSide)
        } catch {
            try reader.bad(error, line: number, text: line)
            return
        }
        try sink.add(trade, line: number)
        reader.report.rows += 1
    }
    guard header else { throw DataFileError(file: name, reason: "the file is empty") }
    return reader.report
}

/// The quotes of a CSV's lines (the header first), into `sink` in the file's order.
func parseQuotes(
    _ lines: inout some CSVLines, name: String, instrument: Instrument, options: ReadOptions,
    into sink: inout some EventSink<QuoteEvent>
) throws(DataFileError) -> LoadReport {
    var reader = RowReader(name: name, options: options)
    var header = false
    var ts = 0
    var bidPx = 0
    var bidSz = 0
    var askPx = 0
    var askSz = 0
    let (ticks, lots) = (UnitCounter(instrument.tick), UnitCounter(instrument.qtyStep))
    let fields = Fields()
    try lines.forEachLine { (line, number) throws(DataFileError) in
        guard header else {
            header = true
            try refuseBinary(line, name: name)
            let names = headerNames(line)
            ts = try reader.column(names, ColumnNames.timestamp, "timestamp")
            bidPx = try reader.column(names, ColumnNames.bidPrice, "bid price")
            bidSz = try reader.column(names, ColumnNames.bidSize, "bid size")
            askPx = try reader.column(names, ColumnNames.askPrice, "ask price")
            askSz = try reader.column(names, ColumnNames.askSize, "ask size")
            fields.want(max(ts, bidPx, bidSz, askPx, askSz) + 1)
            sink.begin(reader.report)
            return
        }
        let found = fields.split(line)
        let quote: QuoteEvent
        do throws(RowProblem) {
            guard found == fields.wanted else { throw .fieldCount(found, fields.wanted) }
            let t = try reader.timestamp(line, fields[ts], fields.number(ts))
            let bidTicks = try reader.count(
                line, fields[bidPx], fields.number(bidPx), ticks, "bid price", positive: true, "must be positive")
            let bidLots = try reader.count(
                line, fields[bidSz], fields.number(bidSz), lots, "bid size", positive: false, "must not be negative")
            let askTicks = try reader.count(
                line, fields[askPx], fields.number(askPx), ticks, "ask price", positive: true, "must be positive")
            let askLots = try reader.count(
                line, fields[askSz], fields.number(askSz), lots, "ask size", positive: false, "must not be negative")
            quote = QuoteEvent(ts: t, bidPrice: bidTicks, bidSize: bidLots, askPrice: askTicks, askSize: askLots)
        } catch {
            try reader.bad(error, line: number, text: line)
            return
        }
        try sink.add(quote, line: number)
        reader.report.rows += 1
    }
    guard header else { throw DataFileError(file: name, reason: "the file is empty") }
    return reader.report
}

/// Stops at a header that is not text (a zip, a gzip without `.gz` in its name, any binary file) instead of printing
/// its bytes as column names.
func refuseBinary(_ header: UnsafeBufferPointer<UInt8>, name: String) throws(DataFileError) {
    let binary = header.contains { $0 < 0x09 || ($0 > 0x0D && $0 < 0x20) || $0 == 0x7F }
    guard binary || String(validating: header, as: UTF8.self) == nil else { return }
    let kind: String
    if header.starts(with: [0x50, 0x4B, 0x03, 0x04]) {
        kind = "a zip archive"
    } else if header.starts(with: [0x1F, 0x8B]) {
        kind = "gzip data (name it .gz to have it decompressed)"
    } else {
        kind = "binary data"
    }
    throw DataFileError(file: name, line: 1, reason: "is \(kind), not a CSV file with a header line")
}

/// What is wrong with one row.
enum RowProblem: Error {
    case fieldCount(Int, Int)
    case field(String, String, String)
    case value(String, String, String)
    case timestamp(String, TimestampProblem)

    var reason: String {
        switch self {
        case .fieldCount(let found, let needed): "expected at least \(needed) fields, found \(found)"
        case .field(let name, let text, let why): "\(name) '\(text)' \(why)"
        case .value(let name, let text, let why): "\(name) \(text) \(why)"
        case .timestamp(let text, .malformed): "timestamp '\(text)' is not a number of seconds/ms/µs/ns or ISO 8601"
        case .timestamp(let text, .undetectable):
            "cannot detect the timestamp unit of '\(text)': expected seconds (optionally with a fraction), "
                + "milliseconds, microseconds or nanoseconds since 1970, or ISO 8601"
        case .timestamp(let text, .unitChanged(let unit)):
            "timestamp '\(text)' is not in \(unit), the unit detected from the first row"
        }
    }
}

/// Shared state of one file's reading: report, timestamp unit, error policy.
struct RowReader {
    let name: String
    let options: ReadOptions
    var report: LoadReport
    var timestamps = TimestampReader()

    init(name: String, options: ReadOptions) {
        self.name = name
        self.options = options
        report = LoadReport(file: name)
    }

    func column(_ names: [String], _ candidates: [String], _ what: String) throws(DataFileError) -> Int {
        guard let i = findColumn(names, candidates) else {
            throw DataFileError(
                file: name, line: 1,
                reason: "no \(what) column in the header (accepted names: \(candidates.joined(separator: ", ")); "
                    + "found: \(names.joined(separator: ", ")))"
            )
        }
        return i
    }

    @inline(__always)
    mutating func timestamp(_ line: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ number: PlainNumber)
        throws(RowProblem) -> Int64
    {
        // Milliseconds once detected, thirteen digits (2001 to 2286): the value as split read it; the rest by the
        // timestamp reader.
        if timestamps.unit == .milliseconds && number.ok && number.decimals < 0 && range.count == 13 {
            return number.value
        }
        let field = UnsafeBufferPointer(rebasing: line[range])
        do {
            let ms = try timestamps.parse(field)
            report.timestampUnit = timestamps.unit
            return ms
        } catch {
            throw .timestamp(String(decoding: field, as: UTF8.self), error)
        }
    }

    @inline(__always)
    func decimal(_ line: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ what: String) throws(RowProblem)
        -> ScaledDecimal
    {
        let field = UnsafeBufferPointer(rebasing: line[range])
        guard let d = ScaledDecimal.parse(field) else {
            throw .field(what, String(decoding: field, as: UTF8.self), "is not a decimal number")
        }
        return d
    }

    /// A price or size as a whole number of the unit (ticks, lots): `UnitCounter` for plain digits, else the exact
    /// decimal and its rounding (`ScaledDecimal.count(of:)`); `positive` or at least zero, else `why`.
    @inline(__always)
    func count(
        _ line: UnsafeBufferPointer<UInt8>, _ range: Range<Int>, _ number: PlainNumber, _ unit: UnitCounter,
        _ what: String, positive: Bool, _ why: String
    ) throws(RowProblem) -> Int64 {
        if let n = unit.count(number), positive ? n > 0 : n >= 0 { return n }
        let d = try decimal(line, range, what)
        guard let n = d.count(of: unit.unit), positive ? n > 0 : n >= 0 else { throw .value(what, d.description, why) }
        return n
    }

    mutating func bad(_ problem: RowProblem, line: Int, text: UnsafeBufferPointer<UInt8>) throws(DataFileError) {
        let error = DataFileError(file: name, line: line, reason: problem.reason)
        guard options.skipBadRows else { throw error }
        report.skippedRows += 1
        if report.skippedExamples.count < 5 { report.skippedExamples.append(error) }
    }
}

/// Counts a field in a unit whose mantissa is 1 (a tick of 0.1, a step of 0.001) when the field is plain digits with
/// at most the unit's decimals: the value is then exact without a decimal or a division. Nil for anything else (a
/// sign, an exponent, more decimals, over 18 digits, another unit), which the general parse then reads: the same
/// count, or the same error.
struct UnitCounter {
    let unit: ScaledDecimal
    private let plain: Bool

    init(_ unit: ScaledDecimal) {
        self.unit = unit
        plain = unit.mantissa == 1
    }

    @inline(__always) func count(_ number: PlainNumber) -> Int64? {
        guard plain && number.ok else { return nil }
        var missing = unit.scale - Int(max(number.decimals, 0))
        guard missing >= 0 else { return nil }
        var value = number.value
        while missing > 0 {
            let (next, overflow) = value.multipliedReportingOverflow(by: 10)
            if overflow { return nil }
            value = next
            missing -= 1
        }
        return value
    }
}

/// The taker's side: `Buy`/`Sell`, `B`/`S` or `unknown`, in any case. Every trade row has one: compared byte by byte,
/// without making a string.
@inline(__always)
func parseSide(_ f: UnsafeBufferPointer<UInt8>) throws(RowProblem) -> TakerSide {
    if f.isEmpty { return .unknown }
    @inline(__always) func lower(_ c: UInt8) -> UInt8 { c >= 65 && c <= 90 ? c | 0x20 : c }
    @inline(__always) func spells(_ word: StaticString) -> Bool {
        guard f.count == word.utf8CodeUnitCount else { return false }
        let w = word.utf8Start
        for i in 0..<f.count where lower(f[i]) != w[i] { return false }
        return true
    }
    let first = lower(f[0])
    if first == UInt8(ascii: "b") && (f.count == 1 || spells("buy")) { return .buy }
    if first == UInt8(ascii: "s") && (f.count == 1 || spells("sell")) { return .sell }
    // tardis.dev's trades say `unknown` where the exchange gave no aggressor.
    if spells("unknown") { return .unknown }
    throw .field("side", String(decoding: f, as: UTF8.self), "is not Buy or Sell")
}

/// Puts rows in time order. A file whose timestamps never rise is a log written newest first (Bybit's public dumps):
/// it is read in reverse as a whole, so prints that share a timestamp come out in the order they happened. Any other
/// disorder is sorted by time, keeping the file order of equal timestamps. Returns whether anything moved and
/// whether the file was reversed.
func putInTimeOrder<T>(_ items: inout [T], by key: (T) -> Int64) -> (moved: Bool, reversed: Bool) {
    var ascending = true
    var descending = true
    for i in items.indices.dropFirst() {
        let a = key(items[i - 1])
        let b = key(items[i])
        if b < a { ascending = false }
        if b > a { descending = false }
        if !ascending && !descending { break }
    }
    if ascending { return (false, false) }
    if descending {
        items.reverse()
        return (true, true)
    }
    let order = items.indices.sorted { (key(items[$0]), $0) < (key(items[$1]), $1) }
    items = order.map { items[$0] }
    return (true, false)
}
