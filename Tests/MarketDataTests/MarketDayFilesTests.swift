import CZlib
import Engine
import Foundation
import MarketData
import Testing

@Suite(.tags(.unit)) struct MarketDayFilesTests {
    static let midnight: Int64 = 1_767_225_600_000 + 86_400_000  // 2026-01-02T00:00:00Z

    static func trade(_ i: Int64) -> TradeEvent {
        TradeEvent(
            ts: midnight - 30_000 + i * 1_000, price: 500_000 + (i % 5), size: 1 + i % 3,
            side: i % 2 == 0 ? .buy : .sell)
    }

    static func quote(_ i: Int64) -> QuoteEvent {
        QuoteEvent(
            ts: midnight - 30_000 + i * 1_000, bidPrice: 500_000 + i, bidSize: 3, askPrice: 500_001 + i, askSize: 4)
    }

    @Test func daysRotateAtMidnightAndReadAsBybitDumps() throws {
        let dir = try temporaryDirectory()
        let files = try MarketDayFiles(directory: dir, instrument: btc)
        for i in Int64(0)..<60 {
            try files.write(Self.trade(i), id: "id-\(i)")
            try files.write(Self.quote(i))
        }
        try files.close()
        let names = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()
        #expect(
            names == [
                "BTCUSDT2026-01-01.csv.gz", "BTCUSDT2026-01-02.csv.gz", "quotes-2026-01-01.csv.gz",
                "quotes-2026-01-02.csv.gz",
            ])
        var series = try RecordedSeries.trades(
            RecordedInputs.expand([dir], what: "--trades"), instrument: btc,
            options: ReadOptions(expectedSymbol: "BTCUSDT"))
        #expect(try series.readAll() == (0..<60).map(Self.trade))
        var quotes = try RecordedSeries.quotes(RecordedInputs.expand([dir], what: "--quotes"), instrument: btc)
        #expect(try quotes.readAll() == (0..<60).map(Self.quote))
        let text = String(decoding: try readFileBytes(dir + "/BTCUSDT2026-01-01.csv.gz"), as: UTF8.self)
        let lines = text.split(separator: "\n")
        #expect(
            lines[0]
                == "timestamp,symbol,side,size,price,tickDirection,trdMatchID,grossValue,homeNotional,foreignNotional")
        #expect(lines[1] == "1767311970.000,BTCUSDT,Buy,0.001,50000,ZeroPlusTick,id-0,5000000000,0.001,50")
        #expect(lines[2] == "1767311971.000,BTCUSDT,Sell,0.002,50000.1,PlusTick,id-1,10000020000,0.002,100.0002")
    }

    @Test func aMemberCutShortByACrashIsRemovedAndTheDayContinues() throws {
        let dir = try temporaryDirectory()
        let files = try MarketDayFiles(directory: dir, instrument: btc)
        for i in Int64(40)..<50 { try files.write(Self.trade(i), id: "id-\(i)") }
        try files.finishMembers()
        let path = dir + "/BTCUSDT2026-01-02.csv.gz"
        let good = try Data(contentsOf: URL(fileURLWithPath: path))
        // The crash: half of a next member reached the disk.
        for i in Int64(50)..<55 { try files.write(Self.trade(i), id: "id-\(i)") }
        try files.finishMembers()
        let withNext = try Data(contentsOf: URL(fileURLWithPath: path))
        try (good + withNext[good.count..<(good.count + (withNext.count - good.count) / 2)]).write(
            to: URL(fileURLWithPath: path))
        expectError("gzip data is corrupt or truncated") { _ = try readTrades(path: path, instrument: btc) }
        let again = try MarketDayFiles(directory: dir, instrument: btc)
        for i in Int64(50)..<60 { try again.write(Self.trade(i), id: "id-\(i)") }
        try again.close()
        #expect(again.recoveredBytes == Int64((withNext.count - good.count) / 2))
        #expect(try readTrades(path: path, instrument: btc).trades == (40..<60).map(Self.trade))
    }

    @Test func theTailHoldsTheLastMinutesTradeIdsOnly() throws {
        let dir = try temporaryDirectory()
        let files = try MarketDayFiles(directory: dir, instrument: btc)
        // Ten minutes of trades, one every 10 s, all on 2026-01-02.
        for i in Int64(0)..<60 {
            try files.write(TradeEvent(ts: Self.midnight + i * 10_000, price: 500_000, size: 1), id: "id-\(i)")
        }
        try files.write(Self.quote(59))
        try files.close()
        let tail = try RecordingTail.read(directory: dir, instrument: btc)
        #expect(tail.lastTradeTs == Self.midnight + 590_000)
        // 530 s .. 590 s: the trades of the last minute, oldest first.
        #expect(tail.recentTrades.map(\.id) == (53..<60).map { "id-\($0)" })
        #expect(tail.recentTradeIds == Set((53..<60).map { "id-\($0)" }))
        #expect(tail.lastQuote == Self.quote(59))
    }

    @Test func aFileDamagedFarFromItsEndIsNotAppendedTo() throws {
        let dir = try temporaryDirectory()
        let path = dir + "/quotes-2026-01-02.csv.gz"
        try Data("not gzip at all\n".utf8).write(to: URL(fileURLWithPath: path))
        let files = try MarketDayFiles(directory: dir, instrument: btc)
        expectError("is not a gzip file; not appended to") { try files.write(Self.quote(40)) }
        #expect(try String(contentsOfFile: path, encoding: .utf8) == "not gzip at all\n")
    }
}

@Suite(.tags(.unit)) struct GapsFileTests {
    @Test func gapsAreAppendedReadAndCutToTheRange() throws {
        let dir = try temporaryDirectory()
        let from = try #require(TimeRange.parseTime("2026-01-01T10:00:00Z"))
        try GapsFile.append([RecordedGap(from: from, to: from + 120_000, cause: "recorder not running")], to: dir)
        try GapsFile.append(
            [RecordedGap(from: from + 3_600_000, to: from + 3_630_000, cause: "a, b\nc")], to: dir)
        let text = try String(contentsOfFile: dir + "/gaps.csv", encoding: .utf8)
        #expect(
            text == "from,to,cause\n2026-01-01T10:00:00.000Z,2026-01-01T10:02:00.000Z,recorder not running\n"
                + "2026-01-01T11:00:00.000Z,2026-01-01T11:00:30.000Z,a; b;c\n")
        let file = dir + "/BTCUSDT2026-01-01.csv.gz"
        let inRange = try #require(
            try GapsFile.beside([file], range: TimeRange(from: from + 60_000, to: from + 3_600_000 + 10_000)))
        #expect(try GapsFile.beside([temporaryDirectory() + "/x.csv"], range: .all) == nil)
        #expect(inRange.map(\.from) == [from + 60_000, from + 3_600_000])
        #expect(inRange.map(\.to) == [from + 120_000, from + 3_610_000])
        #expect(
            GapsFile.summary(inRange)
                == "gaps: 2 in the range (gaps.csv), 1.2 minutes in all; the longest 1.0 min from "
                + "2026-01-01T10:01:00.000Z (recorder not running)")
    }

    @Test func aMalformedLineIsNamed() throws {
        let dir = try temporaryDirectory()
        try Data("from,to,cause\n2026-01-01T10:00:00Z,yesterday,x\n".utf8).write(
            to: URL(fileURLWithPath: dir + "/gaps.csv"))
        expectError("\(dir)/gaps.csv:2: expected 'from,to,cause' with ISO 8601 times, found") {
            _ = try GapsFile.read(dir + "/gaps.csv")
        }
        try Data("start,end\n".utf8).write(to: URL(fileURLWithPath: dir + "/gaps.csv"))
        expectError("gaps.csv:1: the header must be 'from,to,cause'") { _ = try GapsFile.read(dir + "/gaps.csv") }
    }
}
