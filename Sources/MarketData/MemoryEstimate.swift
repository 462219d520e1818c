import Engine
import Foundation

/// How much memory the events of some files take once read (the grid and the walk-forward hold them all), estimated
/// without reading the files: each file's decompressed size (a plain file's size; a gzip's trailer; a zip's
/// directory) over the bytes per row of its first 256 kB, times the size of one event. An upper bound for an
/// order-book archive (at most one quote per message); `grid` streams the files instead when the estimate exceeds
/// its memory budget.
public enum EventMemory {
    /// Bytes the trades and quotes of these files take in memory.
    public static func estimate(trades: [String], quotes: [String]) throws(DataFileError) -> Int64 {
        var total: Int64 = 0
        for f in trades { total += try rows(f) * Int64(MemoryLayout<TradeEvent>.stride) }
        for f in quotes { total += try rows(f) * Int64(MemoryLayout<QuoteEvent>.stride) }
        return total
    }

    /// The rows (lines) of one file, estimated.
    static func rows(_ path: String) throws(DataFileError) -> Int64 {
        let sampleSize = 1 << 18
        var size: Int64
        let source: any ByteSource
        if ZipArchive.hasSignature(path) {
            let zip = try ZipArchive(path: path)
            let members = zip.members.filter { !$0.isDirectory }
            size = Int64(members.reduce(UInt64(0)) { $0 + $1.size })
            guard let first = members.first else { return 0 }
            source = try zip.open(first)
        } else if path.hasSuffix(".gz") {
            let compressed = fileSize(path)
            let hint = Int64(gzipSizeHint(path))
            // No usable trailer (a file over 4 GB decompressed wraps it): deflate rarely beats 20:1 on these rows.
            size = hint > 0 ? hint : compressed * 20
            source = try GzipFileSource(path: path)
        } else {
            size = fileSize(path)
            source = try PlainFileSource(path: path)
        }
        defer { source.close() }
        let buffer = UnsafeMutablePointer<UInt8>.allocate(capacity: sampleSize)
        defer { buffer.deallocate() }
        var filled = 0
        while filled < sampleSize {
            let n = try source.read(into: buffer + filled, count: sampleSize - filled)
            if n == 0 { break }
            filled += n
        }
        var lines: Int64 = 0
        for i in 0..<filled where buffer[i] == 0x0A { lines += 1 }
        // The whole file sampled: its lines exactly; otherwise its size over the sample's bytes per line.
        if filled < sampleSize { return lines + (filled > 0 && buffer[filled - 1] != 0x0A ? 1 : 0) }
        return lines == 0 ? size / 64 : size * lines / Int64(filled) + 1
    }

    static func fileSize(_ path: String) -> Int64 {
        ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? NSNumber)?.int64Value ?? 0
    }
}
