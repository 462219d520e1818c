import CZlib
public import Engine
import Foundation

// The daily files of `record` and `export` (docs/FEATURES.md, "Recording the market"): one gzip file per UTC day and
// kind in one directory, trades in Bybit's dump format (`BTCUSDT2026-01-01.csv.gz`, so any reader of Bybit's dumps
// reads them) and quotes in the project's (`quotes-2026-01-01.csv.gz`). Files are appended to as gzip members: each
// `finishMembers()` ends the member and fsyncs, so what was written before it is complete and readable whatever
// happens next; a member left unfinished by a crash is cut off when the file is opened again.

/// Bybit's trade-dump columns, in their order.
public let bybitDumpHeader =
    "timestamp,symbol,side,size,price,tickDirection,trdMatchID,grossValue,homeNotional,foreignNotional"

/// The file names of one day.
public enum MarketDayNames {
    /// `BTCUSDT2026-01-01.csv.gz`, as Bybit names its daily trade dumps.
    public static func trades(symbol: String, day: String) -> String { "\(symbol)\(day).csv.gz" }
    /// `quotes-2026-01-01.csv.gz`.
    public static func quotes(day: String) -> String { "quotes-\(day).csv.gz" }
    /// `yyyy-mm-dd` of a time (UTC).
    public static func day(of ts: Millis) -> String { String(isoTime(ts).prefix(10)) }
}

/// A gzip file appended to in members; the caller ends members when what it wrote must be safe.
final class GzipAppender {
    let path: String
    private let fd: Int32
    private let gz: gzFile
    private var closed = false

    /// Opens `path` for appending (created with `header` when new or empty). A last member left unfinished by a crash
    /// is cut off first; `recovered` says how many bytes that removed.
    init(path: String, header: String) throws(DataFileError) {
        self.path = path
        recovered = try cutUnfinishedMember(path)
        let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? 0
        let fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw DataFileError(file: path, reason: "cannot be opened for writing: \(String(cString: strerror(errno)))")
        }
        guard let gz = gzdopen(fd, "ab1") else {
            Glibc.close(fd)
            throw DataFileError(file: path, reason: "cannot be opened for writing (zlib)")
        }
        self.fd = fd
        self.gz = gz
        if size == 0 { try write(Array((header + "\n").utf8)) }
    }

    let recovered: Int64

    func write(_ bytes: [UInt8]) throws(DataFileError) {
        guard !bytes.isEmpty else { return }
        let n = bytes.withUnsafeBytes { gzwrite(gz, $0.baseAddress, UInt32($0.count)) }
        guard n == Int32(bytes.count) else { throw DataFileError(file: path, reason: "write failed (disk full?)") }
    }

    /// Ends the gzip member (written to the kernel) and returns a duplicate of the file's descriptor, so the caller
    /// can fsync it without holding whatever guards this writer (the caller closes it).
    func endMember() throws(DataFileError) -> Int32 {
        guard gzflush(gz, Z_FINISH) == Z_OK else {
            throw DataFileError(file: path, reason: "write failed (disk full?)")
        }
        let copy = dup(fd)
        guard copy >= 0 else {
            throw DataFileError(file: path, reason: "dup failed: \(String(cString: strerror(errno)))")
        }
        return copy
    }

    func close() throws(DataFileError) {
        guard !closed else { return }
        closed = true
        guard gzclose(gz) == Z_OK else { throw DataFileError(file: path, reason: "write failed (zlib close)") }
    }

    deinit { try? close() }
}

/// The length of a gzip file's complete members and the bytes after them, nil when the file does not exist. What
/// follows the last complete member is a member a crash left unfinished: cut off when it ends the file (a prefix of a
/// member) or, when it is damaged, when it is shorter than `maxCut` (a minute's member is a few hundred KB at most).
/// A file that is not gzip, or damaged further back, is an error: nothing is cut from it.
func gzipCompleteLength(_ path: String, maxCut: Int64 = 4 << 20) throws(DataFileError) -> (
    valid: Int64, removed: Int64
)? {
    guard let file = fopen(path, "rb") else { return nil }
    defer { fclose(file) }
    var stream = z_stream()
    guard inflateInit2_(&stream, 31, zlibVersion(), Int32(MemoryLayout<z_stream>.size)) == Z_OK else {
        throw DataFileError(file: path, reason: "zlib could not start inflating")
    }
    defer { inflateEnd(&stream) }
    let inputSize = 1 << 20
    var input = [UInt8](repeating: 0, count: inputSize)
    var output = [UInt8](repeating: 0, count: 1 << 20)
    var consumed: Int64 = 0  // bytes of the file before the current buffer
    var valid: Int64 = 0  // bytes of the complete members
    var total: Int64 = 0
    reading: while true {
        let got = input.withUnsafeMutableBytes { fread($0.baseAddress, 1, inputSize, file) }
        if got == 0 { break }
        total += Int64(got)
        var offset = 0
        while offset < got {
            let status: Int32 = input.withUnsafeMutableBufferPointer { inp in
                output.withUnsafeMutableBufferPointer { out in
                    stream.next_in = inp.baseAddress! + offset
                    stream.avail_in = UInt32(got - offset)
                    stream.next_out = out.baseAddress
                    stream.avail_out = UInt32(out.count)
                    let s = inflate(&stream, Z_NO_FLUSH)
                    offset = got - Int(stream.avail_in)
                    return s
                }
            }
            if status == Z_STREAM_END {
                valid = consumed + Int64(offset)
                inflateReset(&stream)
            } else if status == Z_BUF_ERROR {
                break
            } else if status != Z_OK {
                if valid == 0 { throw DataFileError(file: path, reason: "is not a gzip file; not appended to") }
                // Damaged after the last complete member: read to the end to know how much would be cut.
                while true {
                    let more = input.withUnsafeMutableBytes { fread($0.baseAddress, 1, inputSize, file) }
                    if more == 0 { break }
                    total += Int64(more)
                }
                break reading
            }
        }
        consumed += Int64(got)
    }
    if total - valid > maxCut {
        throw DataFileError(
            file: path,
            reason: "damaged \(total - valid) bytes before its end (not a member cut short by a crash); not appended "
                + "to: move it aside")
    }
    return (valid, total - valid)
}

/// An fsync to do, of a duplicated descriptor (closed after).
public struct PendingSync: Sendable {
    let fd: Int32
    let path: String

    public func sync() throws(DataFileError) {
        defer { Glibc.close(fd) }
        guard fsync(fd) == 0 else {
            throw DataFileError(file: path, reason: "fsync failed: \(String(cString: strerror(errno)))")
        }
    }
}

/// The daily files of one directory; events go to the file of their UTC day, opened (or continued) as days come.
public final class MarketDayFiles {
    public let directory: String
    private let instrument: Instrument
    private var trades: (day: String, file: GzipAppender)?
    private var quotes: (day: String, file: GzipAppender)?
    private var lastTradePrice: Ticks?
    private var lastTick = "ZeroPlusTick"
    private var tradeBuffer: [UInt8] = []
    private var quoteBuffer: [UInt8] = []
    /// Bytes of unfinished gzip members cut off when files were continued (a crash while writing), for the report.
    public private(set) var recoveredBytes: Int64 = 0
    /// Files opened so far, by path, in order.
    public private(set) var opened: [String] = []

    public init(directory: String, instrument: Instrument) throws(DataFileError) {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw DataFileError(file: directory, reason: "cannot create the directory: \(error.localizedDescription)")
        }
        self.directory = directory
        self.instrument = instrument
    }

    /// Appends a trade as a row of Bybit's dump (`id` is the exchange's trade id, empty when not known).
    public func write(_ t: TradeEvent, id: String) throws(DataFileError) {
        let day = MarketDayNames.day(of: t.ts)
        if trades?.day != day {
            try flushTrades()
            try trades?.file.close()
            let path = (directory as NSString).appendingPathComponent(
                MarketDayNames.trades(symbol: instrument.symbol, day: day))
            let file = try GzipAppender(path: path, header: bybitDumpHeader)
            recoveredBytes += file.recovered
            opened.append(path)
            trades = (day, file)
        }
        if let last = lastTradePrice {
            if t.price > last {
                lastTick = "PlusTick"
            } else if t.price < last {
                lastTick = "MinusTick"
            } else {
                lastTick = lastTick.hasSuffix("PlusTick") ? "ZeroPlusTick" : "ZeroMinusTick"
            }
        }
        lastTradePrice = t.price
        let price = formatScaled(t.price * instrument.tick.mantissa, scale: instrument.tick.scale)
        let size = formatScaled(t.size * instrument.qtyStep.mantissa, scale: instrument.qtyStep.scale)
        let notionalScale = instrument.tick.scale + instrument.qtyStep.scale
        let notionalMantissa = t.price * instrument.tick.mantissa * t.size * instrument.qtyStep.mantissa
        let notional = formatScaled(notionalMantissa, scale: notionalScale)
        let gross = ScaledDecimal(mantissa: notionalMantissa, scale: notionalScale).doubleValue * 1e8
        let side = t.side == .buy ? "Buy" : t.side == .sell ? "Sell" : ""
        let seconds = "\(floorDiv(t.ts, 1000)).\(String(1000 + ((t.ts % 1000) + 1000) % 1000).dropFirst())"
        let row =
            "\(seconds),\(instrument.symbol),\(side),\(size),\(price),\(lastTick),\(id),"
            + "\(String(format: "%.12g", gross)),\(size),\(notional)\n"
        tradeBuffer.append(contentsOf: row.utf8)
        if tradeBuffer.count >= 1 << 20 { try flushTrades() }
    }

    /// Appends a quote (`ts,bid_px,bid_sz,ask_px,ask_sz`, milliseconds).
    public func write(_ q: QuoteEvent) throws(DataFileError) {
        let day = MarketDayNames.day(of: q.ts)
        if quotes?.day != day {
            try flushQuotes()
            try quotes?.file.close()
            let path = (directory as NSString).appendingPathComponent(MarketDayNames.quotes(day: day))
            let file = try GzipAppender(path: path, header: RecordingWriter.quotesHeader)
            recoveredBytes += file.recovered
            opened.append(path)
            quotes = (day, file)
        }
        let row =
            "\(q.ts),\(formatScaled(q.bidPrice * instrument.tick.mantissa, scale: instrument.tick.scale)),"
            + "\(formatScaled(q.bidSize * instrument.qtyStep.mantissa, scale: instrument.qtyStep.scale)),"
            + "\(formatScaled(q.askPrice * instrument.tick.mantissa, scale: instrument.tick.scale)),"
            + "\(formatScaled(q.askSize * instrument.qtyStep.mantissa, scale: instrument.qtyStep.scale))\n"
        quoteBuffer.append(contentsOf: row.utf8)
        if quoteBuffer.count >= 1 << 20 { try flushQuotes() }
    }

    /// Ends the open files' gzip members and fsyncs them: everything written so far is complete on disk.
    public func finishMembers() throws(DataFileError) {
        for pending in try endMembers() { try pending.sync() }
    }

    /// Ends the open files' gzip members; the fsyncs are returned, to run outside the caller's lock.
    public func endMembers() throws(DataFileError) -> [PendingSync] {
        try flushTrades()
        try flushQuotes()
        var out: [PendingSync] = []
        for file in [trades?.file, quotes?.file].compactMap({ $0 }) {
            out.append(PendingSync(fd: try file.endMember(), path: file.path))
        }
        return out
    }

    public func close() throws(DataFileError) {
        for pending in try endMembers() { try pending.sync() }
        try trades?.file.close()
        try quotes?.file.close()
        trades = nil
        quotes = nil
    }

    private func flushTrades() throws(DataFileError) {
        guard let file = trades?.file, !tradeBuffer.isEmpty else { return }
        try file.write(tradeBuffer)
        tradeBuffer.removeAll(keepingCapacity: true)
    }

    private func flushQuotes() throws(DataFileError) {
        guard let file = quotes?.file, !quoteBuffer.isEmpty else { return }
        try file.write(quoteBuffer)
        quoteBuffer.removeAll(keepingCapacity: true)
    }
}

/// Where a recording in a directory stopped: its last trade (and the trades of that trade's last minute, with their
/// ids) and its last quote. Unfinished gzip members at the ends of the last files are cut off first.
public struct RecordingTail: Sendable {
    public var lastTradeTs: Millis?
    public var recentTradeIds: Set<String> = []
    public var recentTrades: [(ts: Millis, id: String)] = []
    public var lastQuote: QuoteEvent?
    /// Bytes of unfinished members cut off.
    public var cutBytes: Int64 = 0

    public static func read(directory: String, instrument: Instrument) throws(DataFileError) -> RecordingTail {
        var tail = RecordingTail()
        let names = (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []
        func latest(_ match: (String) -> Bool) -> String? {
            names.filter(match).max().map { (directory as NSString).appendingPathComponent($0) }
        }
        let prefix = instrument.symbol
        if let path = latest({ $0.hasPrefix(prefix) && RecordedInputs.isTradeDumpName($0) && $0.hasSuffix(".gz") }) {
            tail.cutBytes += try cutUnfinishedMember(path)
            let bytes = try readFileBytes(path)
            // Rows are in time order: the last minute's are at the end.
            var end = bytes.count
            var rows: [(ts: Millis, id: String)] = []
            while end > 0 {
                var start = end - 1
                while start > 0 && bytes[start - 1] != 0x0A { start -= 1 }
                let line = String(decoding: bytes[start..<end], as: UTF8.self)
                end = start > 0 ? start - 1 : 0
                let fields = line.split(separator: ",", omittingEmptySubsequences: false)
                guard fields.count >= 7, let ms = TimeRange.parseSeconds(fields[0]) else { continue }
                // The minute before the file's last trade, not before the earliest row kept so far (that would walk
                // back through the whole day).
                if let last = tail.lastTradeTs, ms < last - 60_000 { break }
                if tail.lastTradeTs == nil { tail.lastTradeTs = ms }
                rows.append((ms, String(fields[6])))
            }
            tail.recentTrades = rows.reversed().filter { !$0.id.isEmpty }
            tail.recentTradeIds = Set(tail.recentTrades.map(\.id))
        }
        if let path = latest({ $0.hasPrefix("quotes-") && $0.hasSuffix(".csv.gz") }) {
            tail.cutBytes += try cutUnfinishedMember(path)
            let bytes = try readFileBytes(path)
            var end = bytes.count
            while end > 0 && (bytes[end - 1] == 0x0A || bytes[end - 1] == 0x0D) { end -= 1 }
            var start = end
            while start > 0 && bytes[start - 1] != 0x0A { start -= 1 }
            if start > 0 {
                let text = Array((RecordingWriter.quotesHeader + "\n").utf8) + bytes[start..<end]
                tail.lastQuote = try readQuotes(bytes: text, name: path, instrument: instrument).quotes.last
            }
        }
        return tail
    }
}

/// Cuts off an unfinished last gzip member (a crash while writing); returns the bytes removed.
func cutUnfinishedMember(_ path: String) throws(DataFileError) -> Int64 {
    guard let complete = try gzipCompleteLength(path), complete.removed > 0 else { return 0 }
    guard truncate(path, off_t(complete.valid)) == 0 else {
        throw DataFileError(file: path, reason: "cannot cut off an unfinished gzip member (truncate failed)")
    }
    return complete.removed
}

extension TimeRange {
    /// `1767311970.123` (seconds with up to three decimals, as Bybit's dumps and `record` write) in milliseconds.
    static func parseSeconds(_ text: Substring) -> Millis? {
        let parts = text.split(separator: ".", omittingEmptySubsequences: false)
        guard let seconds = Int64(parts[0]) else { return nil }
        guard parts.count == 2 else { return parts.count == 1 ? seconds * 1000 : nil }
        let fraction = parts[1].prefix(3)
        guard let f = Int64(fraction), fraction.allSatisfy(\.isNumber) else { return nil }
        return seconds * 1000 + f * Int64([100, 10, 1][fraction.count - 1])
    }
}
