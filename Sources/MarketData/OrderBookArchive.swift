public import Engine
import Foundation

// Bybit's historical order-book archive as a quotes source (docs/FEATURES.md, "Bybit's order-book archive"): one zip
// per day holding JSON lines, each a message of the `orderbook.N` stream as the public WebSocket sends it:
//
//     {"topic":"orderbook.500.BTCUSDT","type":"snapshot","ts":1704067200005,
//      "data":{"s":"BTCUSDT","b":[["42314.5","4.337"],...],"a":[...],"u":85463,"seq":1402343},"cts":1704067200001}
//
// The book is rebuilt from each snapshot and the deltas after it (a size of 0 deletes the level), and every change of
// the best bid or ask (price or size) becomes a quote at the message's matching-engine time `cts` (`ts` when a message
// has none), as the agent stamps the live `orderbook.1` quotes. The whole book of the file's depth is kept (at most
// a few hundred levels a side): memory does not grow with the file, whose bytes are streamed, never held.

/// One side of a rebuilt book: its levels and its best price (the highest bid, the lowest ask).
struct BookSide {
    let isBid: Bool
    private(set) var levels: [Ticks: Lots] = [:]
    private(set) var best: Ticks?

    init(isBid: Bool) { self.isBid = isBid }

    /// Sets a level; a size of 0 deletes it (and, when it was the best, the next level becomes the best).
    mutating func set(_ price: Ticks, _ size: Lots) {
        if size == 0 {
            guard levels.removeValue(forKey: price) != nil, price == best else { return }
            best = isBid ? levels.keys.max() : levels.keys.min()
        } else {
            levels[price] = size
            if best.map({ isBid ? price > $0 : price < $0 }) ?? true { best = price }
        }
    }

    mutating func clear() {
        levels.removeAll(keepingCapacity: true)
        best = nil
    }
}

/// The book of one symbol rebuilt from snapshots and deltas, and its best levels.
struct BookRebuild {
    private(set) var bids = BookSide(isBid: true)
    private(set) var asks = BookSide(isBid: false)
    /// A snapshot has been applied (a delta before one cannot be applied).
    private(set) var started = false

    /// Replaces the book with a snapshot's levels.
    mutating func reset() {
        bids.clear()
        asks.clear()
        started = true
    }

    mutating func setBid(_ price: Ticks, _ size: Lots) { bids.set(price, size) }
    mutating func setAsk(_ price: Ticks, _ size: Lots) { asks.set(price, size) }

    /// The best bid and ask as a quote at `ts`, nil while either side is empty.
    func top(at ts: Millis) -> QuoteEvent? {
        guard let b = bids.best, let a = asks.best, let bs = bids.levels[b], let asz = asks.levels[a] else {
            return nil
        }
        return QuoteEvent(ts: ts, bidPrice: b, bidSize: bs, askPrice: a, askSize: asz)
    }
}

/// What reading an order-book archive found, beyond the quotes.
public struct OrderBookArchiveReport: Sendable, Equatable {
    public var messages = 0
    public var snapshots = 0
    /// Snapshots whose update id went back (to `u` = 1): the exchange's order-book service restarted and the book was
    /// rebuilt. A level-1 snapshot repeated with the same `u` (nothing changed for 3 s) is not one.
    public var restarts = 0
    /// The topic of the first message (`orderbook.500.BTCUSDT`).
    public var topic = ""

    public var description: String {
        "Bybit order-book archive \(topic): \(messages) messages, \(snapshots) snapshots"
            + (restarts > 0 ? " (\(restarts) after a service restart)" : "")
    }
}

/// True when `path` is an order-book archive rather than a CSV: a zip file, or JSON lines (a `.data` member taken out
/// of its zip, or such a file gzipped).
public func isOrderBookArchive(_ path: String) -> Bool {
    ZipArchive.hasSignature(path)
        || [".data", ".data.gz", ".jsonl", ".jsonl.gz"].contains { path.hasSuffix($0) }
}

/// Reads the quotes of an order-book archive (a zip of JSON lines, or the JSON lines themselves, plain or gzipped).
/// Errors name the file (and the zip's member) and the line.
public func readOrderBookArchive(
    path: String,
    instrument: Instrument,
    options: ReadOptions = ReadOptions()
) throws(DataFileError) -> (quotes: [QuoteEvent], report: LoadReport) {
    let (quotes, report) = try inTimeOrder(0) { (sink) throws(DataFileError) in
        try readOrderBookArchive(path: path, instrument: instrument, options: options, into: &sink)
    }
    return (quotes, report)
}

/// Reads an order-book archive into `sink`: each change of the best levels as the message that made it is applied,
/// in the archive's order (the series' reader streams it; nothing of the day is held here but the book).
func readOrderBookArchive(
    path: String, instrument: Instrument, options: ReadOptions, into sink: inout some EventSink<QuoteEvent>
) throws(DataFileError) -> LoadReport {
    var reader = OrderBookMessageReader(instrument: instrument, expectedSymbol: options.expectedSymbol)
    var report = LoadReport(file: path)
    report.timestampUnit = .milliseconds
    sink.begin(report)
    var rows = 0
    try forEachArchiveLine(path) { (name, lineNumber, line) throws(DataFileError) in
        if let q = try reader.apply(line, file: name, line: lineNumber) {
            rows += 1
            try sink.add(q, line: lineNumber)
        }
    }
    report.rows = rows
    report.source = reader.report.description
    return report
}

/// The time of an archive's first message (`cts`, else `ts`), read without reading the rest; nil when it has none.
func firstArchiveTimestamp(_ path: String) throws(DataFileError) -> Millis? {
    var first: Millis?
    try forEachArchiveLine(path, stopAfterFirst: true) { (_, _, line) throws(DataFileError) in
        var json = FastJSON(line)
        guard let root = json.parse() else { return }
        first = json.int64(json.member(root, "cts")) ?? json.int64(json.member(root, "ts"))
    }
    return first
}

/// Calls `body` with each non-empty line of the archive: every member of a zip in name order, or the whole file.
private func forEachArchiveLine(
    _ path: String, stopAfterFirst: Bool = false,
    _ body: (String, Int, UnsafeBufferPointer<UInt8>) throws(DataFileError) -> Void
) throws(DataFileError) {
    func lines<S: ByteSource>(_ source: S, name: String) throws(DataFileError) -> Bool {
        var reader = LineReader(source)
        defer { reader.close() }
        var done = false
        while !done {
            let more = try reader.next { (line, number) throws(DataFileError) in
                guard !line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) else { return }
                try body(name, number, line)
                if stopAfterFirst { done = true }
            }
            if !more { break }
        }
        return done
    }
    if ZipArchive.hasSignature(path) {
        let archive = try ZipArchive(path: path)
        let members = archive.members.filter { !$0.isDirectory }.sorted { $0.name < $1.name }
        guard !members.isEmpty else { throw DataFileError(file: path, reason: "the zip archive holds no file") }
        for member in members {
            if try lines(archive.open(member), name: "\(path) (\(member.name))") { return }
        }
    } else if path.hasSuffix(".gz") {
        _ = try lines(GzipFileSource(path: path), name: path)
    } else {
        _ = try lines(PlainFileSource(path: path), name: path)
    }
}

/// Applies the archive's messages one line at a time to the book and says when the best levels changed.
struct OrderBookMessageReader {
    let instrument: Instrument
    let expectedSymbol: [UInt8]
    private var book = BookRebuild()
    private var last: QuoteEvent?
    private var lastUpdateId: Int64?
    private(set) var report = OrderBookArchiveReport()

    init(instrument: Instrument, expectedSymbol: String?) {
        self.instrument = instrument
        self.expectedSymbol = Array((expectedSymbol ?? instrument.symbol).utf8)
    }

    /// The quote this message makes, when it changed the best bid or ask.
    mutating func apply(_ line: UnsafeBufferPointer<UInt8>, file: String, line number: Int) throws(DataFileError)
        -> QuoteEvent?
    {
        func fail(_ why: String) -> DataFileError { DataFileError(file: file, line: number, reason: why) }
        if let byte = line.first(where: { $0 != 0x20 && $0 != 0x09 }), byte != UInt8(ascii: "{") {
            throw fail("not a JSON message of the order-book stream (the file is not an order-book archive)")
        }
        var json = FastJSON(line)
        guard let root = json.parse() else { throw fail("not a JSON object this reader understands") }
        func text(_ r: Range<Int>) -> String { String(decoding: UnsafeBufferPointer(rebasing: line[r]), as: UTF8.self) }
        guard let type = json.text(json.member(root, "type")) else { throw fail("no \"type\" (snapshot or delta)") }
        let isSnapshot = json.equals(type, "snapshot")
        guard isSnapshot || json.equals(type, "delta") else {
            throw fail("\"type\" is '\(text(type))', not snapshot or delta")
        }
        guard let ts = json.int64(json.member(root, "cts")) ?? json.int64(json.member(root, "ts")) else {
            throw fail("no \"cts\" or \"ts\" timestamp in milliseconds")
        }
        guard let data = json.member(root, "data") else { throw fail("no \"data\" object") }
        guard let symbol = json.text(json.member(data, "s")) else { throw fail("no symbol \"data.s\"") }
        guard line[symbol].elementsEqual(expectedSymbol) else {
            throw fail(
                "the archive is of \(text(symbol)), not of the instrument's \(String(decoding: expectedSymbol, as: UTF8.self))"
            )
        }
        guard let u = json.int64(json.member(data, "u")) else { throw fail("no update id \"data.u\"") }
        if report.messages == 0, let topic = json.text(json.member(root, "topic")) { report.topic = text(topic) }
        report.messages += 1
        if isSnapshot {
            report.snapshots += 1
            if let lastUpdateId, u < lastUpdateId { report.restarts += 1 }
            book.reset()
        } else if !book.started {
            throw fail("a delta before any snapshot: the book cannot be rebuilt (the archive starts mid-stream?)")
        }
        for (key, isBid) in [("b", true), ("a", false)] {
            let levels: FastJSON.Value?
            if isBid { levels = json.member(data, "b") } else { levels = json.member(data, "a") }
            guard let levels else { continue }
            guard case .array(let items) = levels else { throw fail("\"data.\(key)\" is not a list of levels") }
            for item in items {
                guard case .array(let pair) = item, pair.count >= 2, let p = json.text(pair[0]),
                    let s = json.text(pair[1])
                else { throw fail("a level of \"data.\(key)\" is not [\"price\", \"size\"]") }
                guard let price = ScaledDecimal.parse(UnsafeBufferPointer(rebasing: line[p])),
                    let ticks = instrument.ticks(price), ticks > 0
                else { throw fail("price '\(text(p))' in \"data.\(key)\" is not a positive price") }
                guard let size = ScaledDecimal.parse(UnsafeBufferPointer(rebasing: line[s])),
                    let lots = instrument.lots(size), lots >= 0
                else { throw fail("size '\(text(s))' in \"data.\(key)\" is not a size of the instrument") }
                if isBid { book.setBid(ticks, lots) } else { book.setAsk(ticks, lots) }
            }
        }
        lastUpdateId = u
        guard let top = book.top(at: ts) else { return nil }
        if let last, last.bidPrice == top.bidPrice, last.bidSize == top.bidSize, last.askPrice == top.askPrice,
            last.askSize == top.askSize
        {
            return nil
        }
        last = top
        return top
    }
}
