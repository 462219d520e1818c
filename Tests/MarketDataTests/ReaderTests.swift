import CZlib
import Engine
import Foundation
import MarketData
import Testing

let btc = Instrument.btcusdt

func trades(_ text: String, skip: Bool = false) throws(DataFileError) -> (trades: [TradeEvent], report: LoadReport) {
    try readTrades(bytes: Array(text.utf8), name: "t.csv", instrument: btc, options: ReadOptions(skipBadRows: skip))
}

func quotes(_ text: String) throws(DataFileError) -> (quotes: [QuoteEvent], report: LoadReport) {
    try readQuotes(bytes: Array(text.utf8), name: "q.csv", instrument: btc)
}

func expectError(_ expected: String, _ body: () throws -> Void) {
    do {
        try body()
        Issue.record("expected an error containing '\(expected)'")
    } catch {
        #expect(error is DataFileError)
        #expect("\(error)".contains(expected), "\(error)")
    }
}

@Suite(.tags(.unit)) struct TradesReaderTests {
    @Test func bybitPublicDumpReadsAsItIs() throws {
        // Newest first, seconds with a fraction, taker side, Bybit's columns.
        let text = """
            timestamp,symbol,side,size,price,tickDirection,trdMatchID,grossValue,homeNotional,foreignNotional
            1756771201.5983,BTCUSDT,Sell,0.004,109000.5,MinusTick,a1,4.36e+10,0.004,436.002
            1756771201.5983,BTCUSDT,Sell,0.010,109000.4,MinusTick,a2,1.09e+11,0.01,1090.004
            1756771200.0001,BTCUSDT,Buy,1.5,109001,PlusTick,a3,1.635e+13,1.5,163501.5

            """
        let (t, report) = try trades(text)
        #expect(report.timestampUnit == .seconds)
        #expect(report.reordered)
        #expect(report.hasSide)
        #expect(report.reversed)
        #expect(t.map(\.ts) == [1_756_771_200_000, 1_756_771_201_598, 1_756_771_201_598])
        // The whole file is a reversed log: prints at one timestamp come out in the order they happened.
        #expect(t.map(\.price) == [1_090_010, 1_090_004, 1_090_005])
        #expect(t.map(\.size) == [1500, 10, 4])
        #expect(t.map(\.side) == [.buy, .sell, .sell])
    }

    @Test(arguments: [
        ("1767225600", TimestampUnit.seconds, Int64(1_767_225_600_000)),
        ("1767225600.123456", .seconds, 1_767_225_600_123),
        ("1767225600123", .milliseconds, 1_767_225_600_123),
        ("1767225600123456", .microseconds, 1_767_225_600_123),
        ("1767225600123456789", .nanoseconds, 1_767_225_600_123),
        ("2026-01-01T00:00:00.123Z", .iso8601, 1_767_225_600_123),
        ("2026-01-01 01:00:00+01:00", .iso8601, 1_767_225_600_000),
        ("2026-01-01T00:00:00", .iso8601, 1_767_225_600_000),
    ])
    func timestampUnitsAreDetected(text: String, unit: TimestampUnit, ms: Int64) throws {
        let (t, report) = try trades("ts,price,size\n\(text),50000,1\n")
        #expect(report.timestampUnit == unit)
        #expect(t.first?.ts == ms)
    }

    @Test func undetectableTimestampUnitIsAnError() {
        expectError("t.csv:2: cannot detect the timestamp unit of '12345'") {
            _ = try trades("ts,price,size\n12345,50000,1\n")
        }
        expectError("t.csv:3: timestamp '1767225600123' is not in seconds") {
            _ = try trades("ts,price,size\n1767225600,50000,1\n1767225600123,50000,1\n")
        }
    }

    @Test func columnsAreFoundByName() throws {
        let (t, report) = try trades("p,v,T,S,s\n50000.1,0.5,1767225600000,Buy,BTCUSDT\n")
        #expect(t == [TradeEvent(ts: 1_767_225_600_000, price: 500_001, size: 500, side: .buy)])
        #expect(report.hasSide)
        let (u, _) = try trades("Time,Qty,Price\n1767225600000,2,50000\n")
        #expect(u.first?.size == 2000)
        expectError("t.csv:1: no price column") { _ = try trades("ts,size\n1,2\n") }
    }

    @Test func malformedRowNamesFileLineAndReason() {
        expectError("t.csv:3: price 'abc' is not a decimal number") {
            _ = try trades("ts,price,size\n1767225600000,50000,1\n1767225600001,abc,1\n")
        }
        expectError("t.csv:2: expected at least 3 fields, found 2") {
            _ = try trades("ts,price,size\n1767225600000,50000\n")
        }
        expectError("t.csv:2: side 'Hold' is not Buy or Sell") {
            _ = try trades("ts,price,size,side\n1767225600000,50000,1,Hold\n")
        }
        expectError("t.csv:2: size 0.0001 is below one qty step") {
            _ = try trades("ts,price,size\n1767225600000,50000,0.0001\n")
        }
        expectError("t.csv:2: price -5 must be positive") { _ = try trades("ts,price,size\n1767225600000,-5,1\n") }
        expectError("t.csv: the file is empty") { _ = try trades("") }
    }

    /// The taker side in the spellings the dumps use, in any case; anything else names the row.
    @Test func takerSidesInAnyCase() throws {
        let rows = ["Buy", "BUY", "buy", "b", "B", "Sell", "SELL", "s", "S", "unknown", "UNKNOWN", ""]
        let text =
            "ts,price,size,side\n"
            + rows.enumerated().map { "\(1_767_225_600_000 + $0.offset),50000,1,\($0.element)" }
            .joined(separator: "\n") + "\n"
        let t = try trades(text).trades
        #expect(
            t.map(\.side) == [.buy, .buy, .buy, .buy, .buy, .sell, .sell, .sell, .sell, .unknown, .unknown, .unknown])
        for bad in ["bu", "Buyer", "sel", "x", "Unknowns"] {
            expectError("t.csv:2: side '\(bad)' is not Buy or Sell") {
                _ = try trades("ts,price,size,side\n1767225600000,50000,1,\(bad)\n")
            }
        }
    }

    @Test func skipBadRowsCountsAndReports() throws {
        let (t, report) = try trades(
            "ts,price,size\n1767225600000,50000,1\nx,1,1\n1767225600001,50000,1\n1767225600002,,1\n", skip: true)
        #expect(t.count == 2)
        #expect(report.skippedRows == 2)
        #expect(report.skippedExamples.map(\.line) == [3, 5])
    }

    /// The same prints, oldest first and as a Bybit dump (newest first, bursts sharing a timestamp), read the same.
    @Test func aDumpReadsExactlyLikeTheSameTradesOldestFirst() throws {
        var rows: [(ts: Int64, price: Int, size: Int, side: String)] = []
        var ts: Int64 = 1_756_771_200_000
        var x: UInt64 = 42
        for n in 0..<2_000 {
            x = x &* 6364136223846793005 &+ 1442695040888963407
            if x >> 61 != 0 { ts += Int64((x >> 33) % 900) + 1 }  // most prints start a new 0.1 ms; some share one
            rows.append((ts, 1_090_000 + Int(x >> 40) % 50, 1 + n % 7, x & 1 == 0 ? "Buy" : "Sell"))
        }
        func line(_ r: (ts: Int64, price: Int, size: Int, side: String)) -> String {
            "\(r.ts / 1000).\(String(format: "%03d", r.ts % 1000)),BTCUSDT,\(r.side),0.\(String(format: "%03d", r.size)),\(r.price / 10).\(r.price % 10),ZeroPlusTick,id,1,1,1"
        }
        let header =
            "timestamp,symbol,side,size,price,tickDirection,trdMatchID,grossValue,homeNotional,foreignNotional\n"
        let oldestFirst = header + rows.map(line).joined(separator: "\n") + "\n"
        let dump = header + rows.reversed().map(line).joined(separator: "\n") + "\n"
        let (a, ra) = try trades(oldestFirst)
        let (b, rb) = try trades(dump)
        #expect(!ra.reordered && rb.reversed)
        #expect(Set(rows.map(\.ts)).count < rows.count, "the data has bursts at one timestamp")
        #expect(a == b)
    }

    @Test func unsortedRowsAreSortedStably() throws {
        let (t, report) = try trades(
            "ts,price,size\n3000000000000,1,1\n2000000000000,2,1\n3000000000000,3,1\n1000000000000,4,1\n2000000000000,5,1\n"
        )
        #expect(report.reordered && !report.reversed)
        #expect(t.map(\.price) == [4, 2, 5, 1, 3].map { Int64($0) * 10 })
    }

    @Test func crlfAndByteOrderMarkAreTolerated() throws {
        let (t, _) = try trades("\u{FEFF}ts,price,size\r\n1767225600000,50000,1\r\n")
        #expect(t.count == 1)
    }

    @Test func gzipFilesAreReadDirectly() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("md-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let path = dir.appendingPathComponent("t.csv.gz").path
        let text = "ts,price,size\n1767225600000,50000,1\n1767225600001,50000.1,2\n"
        let gz = gzopen(path, "wb")
        _ = text.withCString { gzwrite(gz, $0, UInt32(strlen($0))) }
        gzclose(gz)
        let (t, report) = try readTrades(path: path, instrument: btc)
        #expect(t.count == 2 && report.rows == 2)
        #expect(t[1].price == 500_001)
        expectError("no such file") {
            _ = try readTrades(path: dir.appendingPathComponent("missing.csv").path, instrument: btc)
        }
    }
}

@Suite(.tags(.unit)) struct QuotesReaderTests {
    @Test func quotesWithAcceptedNames() throws {
        let (q, report) = try quotes(
            "timestamp,bid_price,bid_size,ask_price,ask_size\n1767225600000,50000,1.5,50000.1,0\n")
        #expect(report.timestampUnit == .milliseconds)
        #expect(
            q == [QuoteEvent(ts: 1_767_225_600_000, bidPrice: 500_000, bidSize: 1500, askPrice: 500_001, askSize: 0)])
        let (r, _) = try quotes("ts,bid,ask,bid_sz,ask_sz\n1767225600,1,2,3,4\n")
        #expect(r.first?.bidPrice == 10 && r.first?.askPrice == 20 && r.first?.bidSize == 3000)
        expectError("q.csv:1: no ask size column") { _ = try quotes("ts,bid_px,bid_sz,ask_px\n") }
    }

    @Test func writerOutputReadsBack() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("md-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let tradesIn = [
            TradeEvent(ts: 1_767_225_600_000, price: 500_001, size: 1, side: .buy),
            TradeEvent(ts: 1_767_225_600_005, price: 499_999, size: 12_345, side: .sell),
        ]
        var w = try RecordingWriter(
            path: dir.appendingPathComponent("t.csv").path, header: RecordingWriter.tradesHeader, instrument: btc)
        for t in tradesIn { try w.write(t) }
        try w.close()
        let text = try String(contentsOfFile: dir.appendingPathComponent("t.csv").path, encoding: .utf8)
        #expect(text == "ts,price,size,side\n1767225600000,50000.1,0.001,Buy\n1767225600005,49999.9,12.345,Sell\n")
        #expect(try readTrades(path: dir.appendingPathComponent("t.csv").path, instrument: btc).trades == tradesIn)
    }
}

/// `EventMemory.estimate`: what the grid's events will take in memory, before reading them.
@Suite(.tags(.unit)) struct EventMemoryTests {
    @Test func theEstimateFollowsTheRowsOfPlainAndGzipFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("mem-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        // 40 000 trades (about 1.2 MB, beyond the 256 kB sample) and as many quotes, the quotes gzipped.
        var trades = "ts,price,size,side\n"
        var quotes = "ts,bid_px,bid_sz,ask_px,ask_sz\n"
        for i in 0..<40_000 {
            let price = 50_000 + (i * 7) % 300
            trades +=
                "\(1_767_225_600_000 + Int64(i)),\(price).\(i % 10),0.\(String(format: "%03d", 1 + i % 900)),\(i % 2 == 0 ? "Buy" : "Sell")\n"
            quotes += "\(1_767_225_600_000 + Int64(i)),\(price),1.\(i % 1000),\(price).1,2.\(i % 100)\n"
        }
        let t = dir.appendingPathComponent("t.csv").path
        try trades.write(toFile: t, atomically: true, encoding: .utf8)
        let q = dir.appendingPathComponent("q.csv.gz").path
        let gz = gzopen(q, "wb")
        _ = quotes.withCString { gzwrite(gz, $0, UInt32(strlen($0))) }
        gzclose(gz)
        let exact = 40_001 * Int64(MemoryLayout<TradeEvent>.stride) + 40_001 * Int64(MemoryLayout<QuoteEvent>.stride)
        let estimate = try EventMemory.estimate(trades: [t], quotes: [q])
        #expect(
            Double(estimate) > 0.9 * Double(exact) && Double(estimate) < 1.1 * Double(exact), "\(estimate) vs \(exact)")
        // A small file is counted, not estimated.
        let small = dir.appendingPathComponent("s.csv").path
        try "ts,price,size\n1,2,3\n4,5,6".write(toFile: small, atomically: true, encoding: .utf8)
        #expect(try EventMemory.estimate(trades: [small], quotes: []) == 3 * Int64(MemoryLayout<TradeEvent>.stride))
        #expect(throws: DataFileError.self) {
            _ = try EventMemory.estimate(trades: [dir.path + "/none.csv"], quotes: [])
        }
    }
}
