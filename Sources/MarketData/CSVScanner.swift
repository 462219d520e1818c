import Foundation

/// Splits a CSV buffer into lines and comma-separated fields without copying. Fields are not quoted in the
/// formats we read; surrounding double quotes and spaces are trimmed.
struct CSVScanner {
    let bytes: UnsafeBufferPointer<UInt8>
    private(set) var position = 0
    /// 1-based number of the line last returned.
    private(set) var lineNumber = 0

    init(bytes: UnsafeBufferPointer<UInt8>) {
        self.bytes = bytes
        // A UTF-8 byte-order mark is not part of the header.
        if bytes.count >= 3 && bytes[0] == 0xEF && bytes[1] == 0xBB && bytes[2] == 0xBF { position = 3 }
    }

    /// The next non-empty line (without its line break), or nil at the end.
    mutating func nextLine() -> UnsafeBufferPointer<UInt8>? {
        while position < bytes.count {
            let start = position
            var end = start
            if let base = bytes.baseAddress {
                let remaining = bytes.count - start
                if let hit = memchr(base + start, 0x0A, remaining) {
                    end = base.distance(to: hit.assumingMemoryBound(to: UInt8.self))
                } else {
                    end = bytes.count
                }
            }
            position = end + 1
            lineNumber += 1
            var lineEnd = end
            if lineEnd > start && bytes[lineEnd - 1] == 0x0D { lineEnd -= 1 }
            if lineEnd > start {
                return UnsafeBufferPointer(rebasing: bytes[start..<lineEnd])
            }
        }
        return nil
    }
}

/// A field read as plain digits on the way through the line: its value with the point removed and its decimals.
struct PlainNumber {
    var value: Int64 = 0
    /// Digits after the point; -1 without a point.
    var decimals: Int32 = -1
    /// Only digits and at most one point, 1 to 18 digits: `value` is exact.
    var ok = false
}

/// The fields of a line in one pass: each wanted field's range (trimmed of spaces and quotes) and, for fields that are
/// plain numbers, their value, kept in buffers made once per file (nothing allocated or checked per row).
final class Fields {
    private(set) var wanted = 0
    private var ranges = UnsafeMutableBufferPointer<Range<Int>>(start: nil, count: 0)
    private var numbers = UnsafeMutableBufferPointer<PlainNumber>(start: nil, count: 0)

    /// Makes room for the first `count` fields (once, after the header).
    func want(_ count: Int) {
        ranges.deallocate()
        numbers.deallocate()
        ranges = .allocate(capacity: count)
        ranges.initialize(repeating: 0..<0)
        numbers = .allocate(capacity: count)
        numbers.initialize(repeating: PlainNumber())
        wanted = count
    }

    deinit {
        ranges.deallocate()
        numbers.deallocate()
    }

    @inline(__always) subscript(_ i: Int) -> Range<Int> { ranges[i] }

    /// Field `i` as a plain number (`ok` false when it is not one).
    @inline(__always) func number(_ i: Int) -> PlainNumber { numbers[i] }

    /// Finds the fields of `line`; returns how many of the wanted ones it has.
    @inline(__always) func split(_ line: UnsafeBufferPointer<UInt8>) -> Int {
        var found = 0
        var i = 0
        let n = line.count
        while found < wanted {
            let start = i
            var value: Int64 = 0
            var digits = 0
            var decimals: Int32 = -1
            var plain = true
            while i < n {
                let c = line[i]
                if c == 0x2C { break }
                let d = c &- 48
                if d < 10 {
                    value = value &* 10 &+ Int64(d)
                    digits += 1
                    if decimals >= 0 { decimals += 1 }
                } else if c == 0x2E && decimals < 0 {
                    decimals = 0
                } else {
                    plain = false
                }
                i += 1
            }
            let ok = plain && digits > 0 && digits <= 18
            ranges[found] = ok ? start..<i : trim(line, start..<i)
            numbers[found] = PlainNumber(value: value, decimals: decimals, ok: ok)
            found += 1
            if i >= n { break }
            i += 1
        }
        return found
    }
}

@inline(__always)
func trim(_ line: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) -> Range<Int> {
    var lo = range.lowerBound
    var hi = range.upperBound
    while lo < hi && (line[lo] == 0x20 || line[lo] == 0x22 || line[lo] == 0x09) { lo += 1 }
    while hi > lo && (line[hi - 1] == 0x20 || line[hi - 1] == 0x22 || line[hi - 1] == 0x09) { hi -= 1 }
    return lo..<hi
}

/// The header's column names, trimmed.
func headerNames(_ line: UnsafeBufferPointer<UInt8>) -> [String] {
    var names: [String] = []
    var start = 0
    for i in 0...line.count where i == line.count || line[i] == 0x2C {
        names.append(String(decoding: UnsafeBufferPointer(rebasing: line[trim(line, start..<i)]), as: UTF8.self))
        start = i + 1
    }
    return names
}

/// Finds the first column whose name matches one of `candidates` (in the candidates' order of preference).
/// Names of one character match exactly (Bybit's `S` is the side, `s` the symbol); longer names ignore case
/// and underscores.
func findColumn(_ names: [String], _ candidates: [String]) -> Int? {
    func normal(_ s: String) -> String { s.count == 1 ? s : s.lowercased().replacingOccurrences(of: "_", with: "") }
    let normalized = names.map(normal)
    for c in candidates {
        if let i = normalized.firstIndex(of: normal(c)) { return i }
    }
    return nil
}

/// The lines of a CSV, numbered from 1: empty lines are passed over (and counted), a UTF-8 byte-order mark before the
/// header is not part of it.
protocol CSVLines {
    /// Calls `body` with each non-empty line (without its line break) and its number, to the end. The line's bytes
    /// are valid only inside `body`.
    mutating func forEachLine(_ body: (UnsafeBufferPointer<UInt8>, Int) throws(DataFileError) -> Void)
        throws(DataFileError)
}

/// The lines of bytes in memory.
struct BufferLines: CSVLines {
    private var scanner: CSVScanner

    init(_ bytes: UnsafeBufferPointer<UInt8>) { scanner = CSVScanner(bytes: bytes) }

    mutating func forEachLine(_ body: (UnsafeBufferPointer<UInt8>, Int) throws(DataFileError) -> Void)
        throws(DataFileError)
    {
        while let line = scanner.nextLine() { try body(line, scanner.lineNumber) }
    }
}

/// The lines of a file read in fixed chunks (a `.gz` inflated as it is read): memory holds one chunk, never the file.
struct FileLines: CSVLines {
    private var plain: LineReader<PlainFileSource>?
    private var gzip: LineReader<GzipFileSource>?
    /// Rows to make room for: the (decompressed) size over 40 bytes a row.
    let rowsHint: Int

    /// `hashing`: the file's SHA-256 is taken over its bytes as they are read (`finishDigest`).
    init(path: String, hashing: Bool = false) throws(DataFileError) {
        let digest = hashing ? try FileDigest(path: path) : nil
        if path.hasSuffix(".gz") {
            gzip = LineReader(try GzipFileSource(path: path, digest: digest))
            rowsHint = gzipSizeHint(path) / 40
        } else {
            plain = LineReader(try PlainFileSource(path: path, digest: digest))
            rowsHint = Int(EventMemory.fileSize(path) / 40)
        }
    }

    /// Puts the SHA-256 and size of the file as stored in `report`, when it was opened `hashing` (after the last line).
    func recordDigest(in report: inout LoadReport) throws(DataFileError) {
        var digest = try plain?.source.finishDigest()
        if let gzip { digest = try gzip.source.finishDigest() }
        (report.sha256, report.storedBytes) = (digest?.hex, digest?.bytes)
    }

    mutating func forEachLine(_ body: (UnsafeBufferPointer<UInt8>, Int) throws(DataFileError) -> Void)
        throws(DataFileError)
    {
        if plain != nil { try Self.lines(&plain!, body) } else { try Self.lines(&gzip!, body) }
    }

    private static func lines<S: ByteSource>(
        _ reader: inout LineReader<S>, _ body: (UnsafeBufferPointer<UInt8>, Int) throws(DataFileError) -> Void
    ) throws(DataFileError) {
        var more = true
        while more {
            more = try reader.next { (line, number) throws(DataFileError) in
                var l = line
                if number == 1 && l.count >= 3 && l[0] == 0xEF && l[1] == 0xBB && l[2] == 0xBF {
                    l = UnsafeBufferPointer(rebasing: l[3...])
                }
                if !l.isEmpty { try body(l, number) }
            }
        }
    }

    func close() {
        plain?.close()
        gzip?.close()
    }
}
