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

/// Fills `fields` with the ranges of the first `fields.count` fields of `line`; returns how many were found.
@inline(__always)
func splitFields(_ line: UnsafeBufferPointer<UInt8>, into fields: inout [Range<Int>]) -> Int {
    var found = 0
    var start = 0
    let wanted = fields.count
    var i = 0
    let n = line.count
    while found < wanted {
        while i < n && line[i] != 0x2C { i += 1 }
        fields[found] = trim(line, start..<i)
        found += 1
        if i >= n { break }
        i += 1
        start = i
    }
    return found
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
