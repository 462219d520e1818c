import CZlib
import Engine
import Foundation
import MarketData
import Testing

/// A zip of stored (uncompressed) members built byte by byte here, independently of the project's writer: sizes in
/// the local header (no data descriptor), optionally with the zip64 records a member over 4 GiB would have.
func storedZip(_ members: [(name: String, bytes: [UInt8])], zip64: Bool = false) -> [UInt8] {
    func u16(_ v: Int) -> [UInt8] { [UInt8(v & 0xFF), UInt8((v >> 8) & 0xFF)] }
    func u32(_ v: Int) -> [UInt8] { (0..<4).map { UInt8((v >> (8 * $0)) & 0xFF) } }
    func u64(_ v: Int) -> [UInt8] { (0..<8).map { UInt8((v >> (8 * $0)) & 0xFF) } }
    var out: [UInt8] = []
    var directory: [UInt8] = []
    for m in members {
        let crc = Int(m.bytes.withUnsafeBufferPointer { crc32(0, $0.baseAddress, UInt32($0.count)) })
        let name = Array(m.name.utf8)
        let offset = out.count
        out += u32(0x0403_4B50) + u16(10) + u16(0) + u16(0) + u16(0) + u16(0) + u32(crc)
        out += u32(m.bytes.count) + u32(m.bytes.count) + u16(name.count) + u16(0) + name + m.bytes
        let extra = zip64 ? u16(1) + u16(24) + u64(m.bytes.count) + u64(m.bytes.count) + u64(offset) : []
        let big = 0xFFFF_FFFF
        directory += u32(0x0201_4B50) + u16(45) + u16(45) + u16(0) + u16(0) + u16(0) + u16(0) + u32(crc)
        directory += u32(zip64 ? big : m.bytes.count) + u32(zip64 ? big : m.bytes.count) + u16(name.count)
        directory += u16(extra.count) + u16(0) + u16(0) + u16(0) + u32(0) + u32(zip64 ? big : offset) + name + extra
    }
    let directoryOffset = out.count
    out += directory
    if zip64 {
        let record = out.count
        out += u32(0x0606_4B50) + u64(44) + u16(45) + u16(45) + u32(0) + u32(0) + u64(members.count)
        out += u64(members.count) + u64(directory.count) + u64(directoryOffset)
        out += u32(0x0706_4B50) + u32(0) + u64(record) + u32(1)
        out += u32(0x0605_4B50) + u16(0) + u16(0) + u16(0xFFFF) + u16(0xFFFF) + u32(0xFFFF_FFFF) + u32(0xFFFF_FFFF)
        out += u16(0)
    } else {
        out += u32(0x0605_4B50) + u16(0) + u16(0) + u16(members.count) + u16(members.count) + u32(directory.count)
        out += u32(directoryOffset) + u16(0)
    }
    return out
}

func temporaryDirectory() throws -> String {
    let dir = NSTemporaryDirectory() + "ob-\(UUID().uuidString)"
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

/// One message of the `orderbook.N` stream as Bybit's archive holds it.
func bookMessage(
    _ type: String, ts: Int64, cts: Int64? = nil, bids: [(String, String)] = [], asks: [(String, String)] = [],
    u: Int64, symbol: String = "BTCUSDT"
) -> String {
    func levels(_ l: [(String, String)]) -> String { l.map { "[\"\($0.0)\",\"\($0.1)\"]" }.joined(separator: ",") }
    return "{\"topic\":\"orderbook.500.\(symbol)\",\"type\":\"\(type)\",\"ts\":\(ts),\"data\":{\"s\":\"\(symbol)\","
        + "\"b\":[\(levels(bids))],\"a\":[\(levels(asks))],\"u\":\(u),\"seq\":\(u * 10)}"
        + (cts.map { ",\"cts\":\($0)}" } ?? "}")
}

@Suite(.tags(.unit)) struct OrderBookArchiveTests {
    /// The documented messages: a snapshot, deltas (a size change, a size 0 delete that uncovers the next level, a
    /// level away from the top), a new snapshot with u=1 after a reconnect, and a level-1 snapshot repeated with the
    /// same u because nothing changed.
    static let documented = [
        bookMessage(
            "snapshot", ts: 1_767_225_600_010, cts: 1_767_225_600_005, bids: [("50000.0", "1.5"), ("49999.9", "2")],
            asks: [("50000.1", "0.8"), ("50000.2", "3")], u: 100),
        bookMessage("delta", ts: 1_767_225_600_110, cts: 1_767_225_600_105, bids: [("50000", "1.2")], u: 101),
        bookMessage("delta", ts: 1_767_225_600_210, cts: 1_767_225_600_205, asks: [("50000.1", "0")], u: 102),
        bookMessage("delta", ts: 1_767_225_600_310, cts: 1_767_225_600_305, bids: [("49990", "7")], u: 103),
        bookMessage(
            "snapshot", ts: 1_767_225_601_010, cts: 1_767_225_601_005, bids: [("50001", "0.5")],
            asks: [("50001.1", "0.4")], u: 1),
        bookMessage(
            "snapshot", ts: 1_767_225_604_010, cts: 1_767_225_601_005, bids: [("50001", "0.5")],
            asks: [("50001.1", "0.4")], u: 1),
        bookMessage("delta", ts: 1_767_225_604_110, bids: [("50001", "0"), ("50000.9", "2.25")], u: 2),
    ]

    static let expected = [
        QuoteEvent(ts: 1_767_225_600_005, bidPrice: 500_000, bidSize: 1500, askPrice: 500_001, askSize: 800),
        QuoteEvent(ts: 1_767_225_600_105, bidPrice: 500_000, bidSize: 1200, askPrice: 500_001, askSize: 800),
        QuoteEvent(ts: 1_767_225_600_205, bidPrice: 500_000, bidSize: 1200, askPrice: 500_002, askSize: 3000),
        QuoteEvent(ts: 1_767_225_601_005, bidPrice: 500_010, bidSize: 500, askPrice: 500_011, askSize: 400),
        // No `cts`: the message's `ts`.
        QuoteEvent(ts: 1_767_225_604_110, bidPrice: 500_009, bidSize: 2250, askPrice: 500_011, askSize: 400),
    ]

    static func write(
        _ lines: [String], to path: String, member: String = "2026-01-01_BTCUSDT_ob500.data", zip64: Bool = false
    )
        throws
    {
        let bytes = Array((lines.joined(separator: "\n") + "\n").utf8)
        try Data(storedZip([(member, bytes)], zip64: zip64)).write(to: URL(fileURLWithPath: path))
    }

    @Test(arguments: [false, true]) func documentedMessagesRebuildTheBestLevels(zip64: Bool) throws {
        let dir = try temporaryDirectory()
        let path = dir + "/2026-01-01_BTCUSDT_ob500.data.zip"
        try Self.write(Self.documented, to: path, zip64: zip64)
        let (quotes, report) = try readQuotes(path: path, instrument: btc)
        #expect(quotes == Self.expected)
        #expect(report.rows == 5)
        #expect(
            report.source == "Bybit order-book archive orderbook.500.BTCUSDT: 7 messages, 3 snapshots "
                + "(1 after a service restart)")
    }

    @Test func theJSONLinesOutOfTheirZipReadTheSame() throws {
        let dir = try temporaryDirectory()
        let plain = dir + "/2026-01-01_BTCUSDT_ob500.data"
        try Data((Self.documented.joined(separator: "\n") + "\n").utf8).write(to: URL(fileURLWithPath: plain))
        #expect(try readQuotes(path: plain, instrument: btc).quotes == Self.expected)
        let gz = dir + "/2026-01-01_BTCUSDT_ob500.data.gz"
        let file = try #require(gzopen(gz, "wb"))
        let text = Array((Self.documented.joined(separator: "\n")).utf8)
        _ = text.withUnsafeBytes { gzwrite(file, $0.baseAddress, UInt32($0.count)) }
        gzclose(file)
        #expect(try readQuotes(path: gz, instrument: btc).quotes == Self.expected)
    }

    @Test func theProjectsWriterRoundTrips() throws {
        let dir = try temporaryDirectory()
        let path = dir + "/book.data.zip"
        var quotes: [QuoteEvent] = []
        var bid: Int64 = 500_000
        for i in 0..<5_000 {
            bid += Int64([-2, -1, 0, 1, 2][i * 7 % 5])
            let spread: Int64 = i % 11 == 0 ? 3 : 1
            quotes.append(
                QuoteEvent(
                    ts: 1_767_225_600_000 + Int64(i) * 37, bidPrice: bid, bidSize: Int64(1 + i % 13),
                    askPrice: bid + spread, askSize: Int64(1 + i % 17)))
        }
        var writer = try OrderBookArchiveWriter(
            path: path, memberName: "2026-01-01_BTCUSDT_ob500.data", instrument: btc, snapshotEvery: 1_000)
        for q in quotes { try writer.write(q) }
        try writer.close()
        let (read, report) = try readQuotes(path: path, instrument: btc)
        #expect(read == quotes)
        #expect(report.source?.contains("5000 messages, 5 snapshots (4 after a service restart)") == true)
    }

    @Test func aDeltaBeforeAnySnapshotIsRefusedNamingTheLine() throws {
        let dir = try temporaryDirectory()
        let path = dir + "/mid.data.zip"
        try Self.write([Self.documented[1]] + Self.documented, to: path, member: "mid.data")
        expectError("\(path) (mid.data):1: a delta before any snapshot") {
            _ = try readQuotes(path: path, instrument: btc)
        }
    }

    @Test func anotherSymbolsArchiveIsRefused() throws {
        let dir = try temporaryDirectory()
        let path = dir + "/eth.data.zip"
        try Self.write(
            [bookMessage("snapshot", ts: 1, bids: [("3000", "1")], asks: [("3000.1", "1")], u: 1, symbol: "ETHUSDT")],
            to: path, member: "eth.data")
        expectError("(eth.data):1: the archive is of ETHUSDT, not of the instrument's BTCUSDT") {
            _ = try readQuotes(path: path, instrument: btc)
        }
    }

    @Test func truncatedOrCorruptArchivesAreRefused() throws {
        let dir = try temporaryDirectory()
        let good = dir + "/good.data.zip"
        var writer = try OrderBookArchiveWriter(path: good, memberName: "good.data", instrument: btc)
        for i in 0..<2_000 {
            try writer.write(
                QuoteEvent(
                    ts: Int64(i), bidPrice: 500_000 + Int64(i % 7), bidSize: 1, askPrice: 500_010, askSize: Int64(i)))
        }
        try writer.close()
        let bytes = try [UInt8](Data(contentsOf: URL(fileURLWithPath: good)))
        // Cut short: the central directory is gone.
        let cut = dir + "/cut.data.zip"
        try Data(bytes[0..<(bytes.count / 2)]).write(to: URL(fileURLWithPath: cut))
        expectError("\(cut): not a complete zip archive") { _ = try readQuotes(path: cut, instrument: btc) }
        // A flipped byte inside the deflated data: inflate or the CRC-32 notices.
        var flipped = bytes
        flipped[200] ^= 0x55
        let bad = dir + "/bad.data.zip"
        try Data(flipped).write(to: URL(fileURLWithPath: bad))
        do {
            _ = try readQuotes(path: bad, instrument: btc)
            Issue.record("a corrupt member was read")
        } catch {
            #expect("\(error)".hasPrefix("\(bad) (good.data)"), "\(error)")
        }
        // A gzipped JSON-lines file cut short.
        let gz = dir + "/cut.data.gz"
        let file = try #require(gzopen(gz, "wb"))
        let text = Array(Self.documented.joined(separator: "\n").utf8)
        _ = text.withUnsafeBytes { gzwrite(file, $0.baseAddress, UInt32($0.count)) }
        gzclose(file)
        let whole = try [UInt8](Data(contentsOf: URL(fileURLWithPath: gz)))
        try Data(whole[0..<(whole.count - 12)]).write(to: URL(fileURLWithPath: gz))
        expectError("\(gz): gzip data is corrupt or truncated") { _ = try readQuotes(path: gz, instrument: btc) }
    }

    @Test func aZipOfSomethingElseIsNamedNotPrinted() throws {
        let dir = try temporaryDirectory()
        let zip = dir + "/trades.zip"
        try Data(storedZip([("trades.csv", Array("ts,price,size\n1,50000,1\n".utf8))])).write(
            to: URL(fileURLWithPath: zip))
        expectError("\(zip) (trades.csv):1: not a JSON message of the order-book stream") {
            _ = try readQuotes(path: zip, instrument: btc)
        }
        expectError("\(zip): is a zip archive, not a trades CSV") { _ = try readTrades(path: zip, instrument: btc) }
        // Binary bytes where a CSV is expected: named, never echoed as column names.
        let binary = dir + "/quotes.csv"
        try Data([0x1F, 0x8B, 0x08, 0x00, 0x00, 0x00, 0x0A, 0x41]).write(to: URL(fileURLWithPath: binary))
        expectError("\(binary):1: is gzip data (name it .gz to have it decompressed), not a CSV file") {
            _ = try readQuotes(path: binary, instrument: btc)
        }
        try Data([0x00, 0x01, 0x02, 0xFF, 0x0A]).write(to: URL(fileURLWithPath: binary))
        expectError("\(binary):1: is binary data, not a CSV file") { _ = try readTrades(path: binary, instrument: btc) }
    }

    @Test func aLongArchiveStreamsTheQuotesOfTheWholeFileReader() throws {
        // 70 000 messages (past the reader's first look): each best-level change handed on as its message is
        // applied, the quotes and the report of the reader that holds the file.
        let dir = try temporaryDirectory()
        let path = dir + "/2026-01-01_BTCUSDT_ob500.data.zip"
        var writer = try OrderBookArchiveWriter(path: path, memberName: "x.data", instrument: btc)
        for i in 0..<70_000 {
            let step = Int64(i % 50)
            try writer.write(
                QuoteEvent(
                    ts: 1_767_225_600_000 + Int64(i) * 100, bidPrice: 500_000 + step, bidSize: 1 + Int64(i % 3),
                    askPrice: 500_001 + step, askSize: 2))
        }
        try writer.close()
        let whole = try readOrderBookArchive(path: path, instrument: btc)
        var series = try RecordedSeries.quotes([path], instrument: btc)
        #expect(try series.readAll() == whole.quotes)
        #expect(whole.quotes.count > 65_536)
        #expect(series.reports[0].rows == whole.report.rows && series.reports[0].source == whole.report.source)
        #expect(!series.reports[0].reordered && series.spans[0].rows == whole.quotes.count)
    }

    @Test func dailyArchivesReadAsOneSeriesAndADayGivenTwiceIsRefused() throws {
        let dir = try temporaryDirectory()
        var paths: [String] = []
        for day in 0..<2 {
            let path = dir + "/2026-01-0\(day + 1)_BTCUSDT_ob500.data.zip"
            var writer = try OrderBookArchiveWriter(path: path, memberName: "x.data", instrument: btc)
            for i in 0..<100 {
                let ts = 1_767_225_600_000 + Int64(day) * 86_400_000 + Int64(i) * 1_000
                try writer.write(
                    QuoteEvent(
                        ts: ts, bidPrice: 500_000 + Int64(i), bidSize: 1, askPrice: 500_001 + Int64(i), askSize: 2))
            }
            try writer.close()
            paths.append(path)
        }
        try Data("from,to,cause\n".utf8).write(to: URL(fileURLWithPath: dir + "/gaps.csv"))
        let files = try RecordedInputs.expand([dir], what: "--quotes")
        #expect(files == paths)
        var series = try RecordedSeries.quotes(files.reversed(), instrument: btc)
        let all = try series.readAll()
        #expect(all.count == 200)
        #expect(all.map(\.ts) == all.map(\.ts).sorted())
        let copy = dir + "/copy.data.zip"
        try FileManager.default.copyItem(atPath: paths[0], toPath: copy)
        var twice = try RecordedSeries.quotes([paths[0], copy, paths[1]], instrument: btc)
        expectError("overlaps") { _ = try twice.readAll() }
    }
}

@Suite(.tags(.unit)) struct TardisCSVTests {
    @Test func tardisTradesAndQuotesAreFoundByTheirHeader() throws {
        let (t, tr) = try trades(
            """
            exchange,symbol,timestamp,local_timestamp,id,side,price,amount
            bybit,BTCUSDT,1767225600123456,1767225600125000,a1,buy,50000.5,0.012
            bybit,BTCUSDT,1767225600223456,1767225600225000,a2,sell,50000.4,0.5
            bybit,BTCUSDT,1767225600323456,1767225600325000,a3,unknown,50000.4,1

            """)
        #expect(tr.timestampUnit == .microseconds)
        #expect(t.map(\.ts) == [1_767_225_600_123, 1_767_225_600_223, 1_767_225_600_323])
        #expect(t.map(\.side) == [.buy, .sell, .unknown])
        #expect(t.map(\.size) == [12, 500, 1000])
        let (q, _) = try quotes(
            """
            exchange,symbol,timestamp,local_timestamp,ask_amount,ask_price,bid_price,bid_amount
            bybit,BTCUSDT,1767225600100000,1767225600101000,0.8,50000.1,50000,1.5

            """)
        #expect(
            q == [QuoteEvent(ts: 1_767_225_600_100, bidPrice: 500_000, bidSize: 1500, askPrice: 500_001, askSize: 800)])
    }
}
