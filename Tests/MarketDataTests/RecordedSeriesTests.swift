import CZlib
import Engine
import Foundation
import Synchronization
import Testing

@testable import MarketData

/// Daily files written to a temporary directory: day `d` (days since 2026-01-01) holds a trade every `step` ms of
/// its first `count` rows, oldest first unless `newestFirst` (Bybit's dumps), gzip when the name ends in `.gz`.
struct DailyFiles {
    let dir: URL
    static let day0: Int64 = 1_767_225_600_000  // 2026-01-01T00:00:00Z

    init() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("series-\(UUID().uuidString.prefix(8))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    static func ts(day: Int, row: Int, step: Int64 = 60_000) -> Int64 {
        day0 + Int64(day) * 86_400_000 + Int64(row) * step
    }

    @discardableResult
    func trades(_ name: String, day: Int, count: Int = 5, step: Int64 = 60_000, newestFirst: Bool = false) -> String {
        var rows = (0..<count).map { "\(Self.ts(day: day, row: $0, step: step)),50000.\($0 % 10),\($0 + 1)" }
        if newestFirst { rows.reverse() }
        return write(name, "timestamp,price,size\n" + rows.joined(separator: "\n") + "\n")
    }

    func write(_ name: String, _ text: String) -> String {
        let path = dir.appendingPathComponent(name).path
        try? FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true)
        if name.hasSuffix(".gz") {
            let gz = gzopen(path, "wb")
            _ = text.withCString { gzwrite(gz, $0, UInt32(strlen($0))) }
            gzclose(gz)
        } else {
            _ = FileManager.default.createFile(atPath: path, contents: Data(text.utf8))
        }
        return path
    }
}

func drain(_ series: inout RecordedSeries<TradeEvent>) throws -> [TradeEvent] {
    var out: [TradeEvent] = []
    while let t = try series.next() { out.append(t) }
    return out
}

@Suite(.tags(.unit)) struct RecordedSeriesTests {
    @Test func dailyFilesInAnyOrderReadAsOneStreamInTimeOrder() throws {
        let f = try DailyFiles()
        let c = f.trades("BTCUSDT2026-01-03.csv.gz", day: 2, newestFirst: true)
        let a = f.trades("BTCUSDT2026-01-01.csv", day: 0)
        let b = f.trades("BTCUSDT2026-01-02.csv.gz", day: 1, newestFirst: true)
        var series = try RecordedSeries.trades([c, a, b], instrument: .btcusdt)
        #expect(series.orderedFiles == [a, b, c])
        let events = try drain(&series)
        #expect(events.count == 15)
        #expect(zip(events, events.dropFirst()).allSatisfy { $0.ts < $1.ts })
        #expect(series.spans.map(\.rows) == [5, 5, 5])
        #expect(
            series.spans[1].first == DailyFiles.ts(day: 1, row: 0)
                && series.spans[1].last == DailyFiles.ts(day: 1, row: 4))
    }

    @Test func directoriesAndPatternsExpandAndMissingInputsAreNamed() throws {
        let f = try DailyFiles()
        f.trades("t/a.csv", day: 0)
        f.trades("t/b.csv.gz", day: 1)
        _ = f.write("t/notes.txt", "not data")
        let dir = f.dir.appendingPathComponent("t").path
        #expect(
            try RecordedInputs.expand([dir], what: "--trades").map { ($0 as NSString).lastPathComponent } == [
                "a.csv", "b.csv.gz",
            ])
        #expect(try RecordedInputs.expand([dir + "/*.gz", dir + "/b.csv.gz"], what: "--trades").count == 1)
        expectError("--trades: no such file or directory") {
            _ = try RecordedInputs.expand([dir + "/c.csv"], what: "--trades")
        }
        expectError("the pattern matches no data file (.csv, .csv.gz, .zip, .data)") {
            _ = try RecordedInputs.expand([dir + "/*.parquet"], what: "--trades")
        }
    }

    @Test func anOverlappingFileStopsTheRunNamingBoth() throws {
        let f = try DailyFiles()
        let a = f.trades("day1.csv", day: 0)
        let again = f.trades("day1-again.csv.gz", day: 0, count: 3, step: 90_000)
        var series = try RecordedSeries.trades([a, again], instrument: .btcusdt)
        expectError("overlaps") { _ = try drain(&series) }
        var again2 = try RecordedSeries.trades([again, a], instrument: .btcusdt)
        do {
            _ = try drain(&again2)
            Issue.record("an overlap must stop the run")
        } catch {
            #expect("\(error)".contains("day1.csv") && "\(error)".contains("day1-again.csv.gz"), "\(error)")
        }
    }

    @Test func missingDaysAreReportedAndTheRangeSelects() throws {
        let f = try DailyFiles()
        let files = [0, 1, 4, 5].map { f.trades("d\($0).csv", day: $0) }
        var series = try RecordedSeries.trades(files, instrument: .btcusdt)
        _ = try drain(&series)
        var coverage = Coverage(trades: series.spans, quotes: nil, range: .all)
        #expect(coverage.missingTradeDays == ["2026-01-03..2026-01-04"])
        #expect(coverage.lines[1].contains("missing days (no trades file): 2026-01-03..2026-01-04"))
        // From day 1, minute 2, to the start of day 5: the range's own missing days, rows outside it dropped, and
        // reading stops at the first file that starts at or after --to.
        let range = TimeRange(from: DailyFiles.ts(day: 1, row: 2), to: TimeRange.parseTime("2026-01-06"))
        var ranged = try RecordedSeries.trades(files, instrument: .btcusdt, range: range)
        let kept = try drain(&ranged)
        #expect(kept.count == 3 + 5)
        #expect(kept.allSatisfy { range.contains($0.ts) })
        #expect(ranged.spans.map(\.rows) == [0, 3, 5], "day 0 is read and dropped; day 5 starts at --to, not read")
        coverage = Coverage(trades: ranged.spans, quotes: nil, range: range)
        #expect(coverage.missingTradeDays == ["2026-01-03..2026-01-04"])
        let identity = try InputIdentity.csv(coverage).split(separator: "\n")
        #expect(identity.count == 4 && identity[0] == "kind,file,first,last,rows,bytes,sha256")
        // Each row ends with the file's size and SHA-256 (64 hex digits).
        #expect(identity.dropFirst().allSatisfy { $0.split(separator: ",").last?.count == 64 })
        // FIPS 180-2's example: SHA-256("abc").
        let abc = f.dir.appendingPathComponent("abc.txt").path
        try Data("abc".utf8).write(to: URL(fileURLWithPath: abc))
        #expect(
            try fileSHA256(abc) == ("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", 3))
    }

    /// A walk-forward window late in the data reads its days, not the days before them.
    @Test func filesBeforeTheRangeCanBePassedOverUnread() throws {
        let f = try DailyFiles()
        let files = (0..<5).map { f.trades("d\($0).csv.gz", day: $0, newestFirst: $0 == 3) }
        let range = TimeRange(from: DailyFiles.ts(day: 3, row: 2), to: DailyFiles.ts(day: 4, row: 3))
        var all = try RecordedSeries.trades(files, instrument: .btcusdt, range: range)
        var skipping = try RecordedSeries.trades(files, instrument: .btcusdt, range: range)
        skipping.skipsFilesBeforeRange = true
        let read = try drain(&all)
        #expect(try drain(&skipping) == read && read.count == 3 + 3)
        // Day 3 runs newest first: the time its first row gives is its last, so day 2 cannot be ruled out and is read
        // (finding nothing in the range); days 0 and 1 are passed over.
        #expect(all.spans.count == 5 && skipping.spans.map(\.file) == [files[2], files[3], files[4]])
        #expect(skipping.spans.map(\.rows) == [0, 3, 3])
        // A range starting at a file's first row keeps the file before it: its last row may be at that time too.
        var atStart = try RecordedSeries.trades(
            files, instrument: .btcusdt, range: TimeRange(from: DailyFiles.ts(day: 2, row: 0)))
        atStart.skipsFilesBeforeRange = true
        #expect(try drain(&atStart).count == 15 && atStart.spans.first?.file == files[1])
    }

    @Test func timesOnTheCommandLine() {
        #expect(TimeRange.parseTime("2026-01-02") == DailyFiles.day0 + 86_400_000)
        #expect(TimeRange.parseTime("2026-01-01T00:01:00Z") == DailyFiles.day0 + 60_000)
        #expect(TimeRange.parseTime("1767225600000") == DailyFiles.day0)
        #expect(TimeRange.parseTime("yesterday") == nil)
    }

    @Test func tradesAndQuotesMergeWithTheQuoteFirstAtOneMillisecond() throws {
        let f = try DailyFiles()
        let t = f.trades("t.csv", day: 0, count: 3)
        let q = f.write(
            "q.csv",
            "timestamp,bid_px,bid_sz,ask_px,ask_sz\n"
                + (0..<3).map { "\(DailyFiles.ts(day: 0, row: $0)),49999.9,1,50000,1" }.joined(separator: "\n") + "\n")
        var market = RecordedMarket(
            trades: try .trades([t], instrument: .btcusdt), quotes: try .quotes([q], instrument: .btcusdt))
        var kinds: [String] = []
        while let e = try market.next() {
            if case .quote = e { kinds.append("q") } else { kinds.append("t") }
        }
        #expect(kinds == ["q", "t", "q", "t", "q", "t"])
    }

    /// One file of `count` trades written as `rows(i) -> timestamp`, price and size telling rows apart.
    func oneFile(_ f: DailyFiles, count: Int, _ ts: (Int) -> Int64) -> String {
        let rows = (0..<count).map { "\(ts($0)),50000.\($0 % 10),\($0 % 7 + 1)" }
        return f.write("t.csv.gz", "timestamp,price,size\n" + rows.joined(separator: "\n") + "\n")
    }

    @Test func aFileRunningForwardStreamsInTheOrderOfAStableSort() throws {
        // 200 000 rows (past the first look and over many chunks), three at each timestamp, every 1000th moved 30 s
        // back: put in place as it streams, equal timestamps in file order, as the whole-file reader sorts them.
        let f = try DailyFiles()
        let path = oneFile(f, count: 200_000) {
            DailyFiles.ts(day: 0, row: $0 / 3, step: 10) - ($0 % 1000 == 999 ? 30_000 : 0)
        }
        var series = try RecordedSeries.trades([path], instrument: .btcusdt)
        let streamed = try drain(&series)
        let whole = try readTrades(path: path, instrument: .btcusdt)
        #expect(streamed.count == 200_000)
        #expect(streamed == whole.trades)
        #expect(series.reports.count == 1 && series.reports[0].reordered && !series.reports[0].reversed)
        #expect(series.reports[0].rows == 200_000 && series.spans[0].rows == 200_000)
        #expect(series.spans[0].first == whole.trades.first!.ts && series.spans[0].last == whole.trades.last!.ts)
    }

    @Test func aStreamedFileThatGoesBackFurtherStopsAtTheLine() throws {
        // Forward for 80 000 rows, then one row five minutes back: line 80 002 (the header is line 1).
        let f = try DailyFiles()
        let path = oneFile(f, count: 100_000) {
            DailyFiles.ts(day: 0, row: $0, step: 10) - ($0 == 80_000 ? 300_000 : 0)
        }
        var series = try RecordedSeries.trades([path], instrument: .btcusdt)
        expectError("\(path):80002: 2026-01-01T00:08:20.000Z is more than 60 s before line 80001") {
            _ = try drain(&series)
        }
        // The whole-file reader (one file, in memory) still sorts it.
        #expect(try readTrades(path: path, instrument: .btcusdt).report.reordered)
    }

    @Test func aLongNewestFirstFileOrOneThatJumpsBackEarlyIsHeldAndPutInOrderWhole() throws {
        let f = try DailyFiles()
        // Bybit's dumps: newest first, prints sharing a timestamp, longer than the first look.
        let dump = oneFile(f, count: 100_000) { DailyFiles.ts(day: 0, row: (99_999 - $0) / 2, step: 10) }
        var series = try RecordedSeries.trades([dump], instrument: .btcusdt)
        #expect(try drain(&series) == (try readTrades(path: dump, instrument: .btcusdt).trades))
        #expect(series.reports[0].reversed)
        // Forward, but an early row an hour ahead: sorted whole, as a single file always was.
        let f2 = try DailyFiles()
        let jumpy = oneFile(f2, count: 100_000) {
            DailyFiles.ts(day: 0, row: $0, step: 10) + ($0 == 10 ? 3_600_000 : 0)
        }
        var sorted = try RecordedSeries.trades([jumpy], instrument: .btcusdt)
        let read = try drain(&sorted)
        #expect(read == (try readTrades(path: jumpy, instrument: .btcusdt).trades))
        #expect(zip(read, read.dropFirst()).allSatisfy { $0.ts <= $1.ts } && sorted.reports[0].reordered)
    }

    @Test func aNewestFirstFileIsReadBackwardsFromATemporaryFileOrHeldWhenItRisesAfterAll() throws {
        let f = try DailyFiles()
        let spillsBefore = ReversedFiles.opened.load(ordering: .relaxed)
        // Newest first over 150 000 rows, three prints to a time: written to the temporary file as parsed and read
        // back from its end, the order of the whole-file reader (the file reversed), cut to a range as well.
        let dump = oneFile(f, count: 150_000) { DailyFiles.ts(day: 0, row: (149_999 - $0) / 3, step: 10) }
        let whole = try readTrades(path: dump, instrument: .btcusdt).trades
        var series = try RecordedSeries.trades([dump], instrument: .btcusdt)
        #expect(try drain(&series) == whole)
        #expect(series.reports[0].reversed && series.reports[0].reordered && series.spans[0].rows == 150_000)
        #expect(ReversedFiles.opened.load(ordering: .relaxed) > spillsBefore, "not held in memory")
        let range = TimeRange(from: whole[20_000].ts, to: whole[130_000].ts)
        var ranged = try RecordedSeries.trades([dump], instrument: .btcusdt, range: range)
        #expect(try drain(&ranged) == whole.filter { range.contains($0.ts) })
        // Newest first for 100 000 rows, then one row later than the row before: held and sorted after all.
        let f2 = try DailyFiles()
        let rises = oneFile(f2, count: 120_000) {
            DailyFiles.ts(day: 0, row: 120_000 - $0, step: 10) + ($0 == 100_000 ? 500 : 0)
        }
        var held = try RecordedSeries.trades([rises], instrument: .btcusdt)
        #expect(try drain(&held) == (try readTrades(path: rises, instrument: .btcusdt).trades))
        #expect(held.reports[0].reordered && !held.reports[0].reversed)
        // Every row at one time: never rises nor falls, and keeps the file's order.
        let f3 = try DailyFiles()
        let flat = oneFile(f3, count: 70_000) { _ in DailyFiles.ts(day: 0, row: 0) }
        var same = try RecordedSeries.trades([flat], instrument: .btcusdt)
        let kept = try drain(&same)
        #expect(kept == (try readTrades(path: flat, instrument: .btcusdt).trades))
        #expect(kept.map(\.size) == (0..<70_000).map { Int64($0 % 7 + 1) * 1_000 } && !same.reports[0].reversed)
    }

    @Test func aSeriesLeftBeforeItsEndStopsItsReader() throws {
        // The reader fills its queue and waits; letting go of the reading must end its thread (a hang here is the bug).
        let f = try DailyFiles()
        let path = oneFile(f, count: 200_000) { DailyFiles.ts(day: 0, row: $0, step: 10) }
        let plan = SeriesPlan<TradeEvent>(
            files: [path], firstTimes: [DailyFiles.day0], skipsFilesBeforeRange: false, range: .all,
            readFile: { (path, sink) throws(DataFileError) in
                try readTrades(path: path, instrument: .btcusdt, options: ReadOptions(), into: &sink)
            })
        var reading: SeriesReading<TradeEvent>? = SeriesReading(plan: plan)
        let pipe = reading!.pipe
        guard case .started = pipe.take() else { Issue.record("no file started"); return }
        reading = nil
        pipe.waitForProducer()
        #expect(pipe.isCancelled)
    }

    @Test func eachFileIsHashedAsItIsRead() throws {
        // A plain file, a gzip file, and a gzip file with bytes after its member (ignored by the reader, hashed).
        let f = try DailyFiles()
        let plain = f.trades("BTCUSDT2026-01-01.csv", day: 0)
        let gz = f.trades("BTCUSDT2026-01-02.csv.gz", day: 1)
        let tail = f.trades("BTCUSDT2026-01-03.csv.gz", day: 2)
        let handle = try #require(FileHandle(forWritingAtPath: tail))
        handle.seekToEndOfFile()
        handle.write(Data("not gzip".utf8))
        try handle.close()
        var series = try RecordedSeries.trades([plain, gz, tail], instrument: .btcusdt)
        #expect(try drain(&series).count == 15)
        for span in series.spans {
            let stored = try fileSHA256(span.file)
            #expect(span.sha256 == stored.hex && span.bytes == stored.bytes, "\(span.file)")
        }
    }
}
