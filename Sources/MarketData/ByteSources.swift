import CZlib
import Foundation

// Streamed reading of large inputs (Bybit's order-book archives: a day is gigabytes of JSON once inflated): bytes come
// in fixed-size chunks from a plain file, a gzip file or one member of a zip archive, and are cut into lines, so memory
// holds one chunk and one partial line, never the file.

/// A source of bytes read in chunks (a class: it owns a C handle or stream state).
protocol ByteSource: AnyObject {
    /// Reads up to `count` bytes into `buffer`; 0 at the end. Errors name the file.
    func read(into buffer: UnsafeMutablePointer<UInt8>, count: Int) throws(DataFileError) -> Int
    func close()
}

/// A plain file read with `fread`.
final class PlainFileSource: ByteSource {
    private let file: UnsafeMutablePointer<FILE>
    private let path: String

    init(path: String) throws(DataFileError) {
        guard let file = fopen(path, "rb") else {
            throw DataFileError(
                file: path, reason: FileManager.default.fileExists(atPath: path) ? "cannot be read" : "no such file")
        }
        self.file = file
        self.path = path
    }

    func read(into buffer: UnsafeMutablePointer<UInt8>, count: Int) throws(DataFileError) -> Int {
        let n = fread(buffer, 1, count, file)
        if n == 0 && ferror(file) != 0 { throw DataFileError(file: path, reason: "read failed") }
        return n
    }

    func close() { fclose(file) }
}

/// A gzip file (any number of members) read with zlib's `gzread`.
final class GzipFileSource: ByteSource {
    private let gz: gzFile
    private let path: String

    init(path: String) throws(DataFileError) {
        guard FileManager.default.fileExists(atPath: path) else {
            throw DataFileError(file: path, reason: "no such file")
        }
        guard let gz = gzopen(path, "rb") else { throw DataFileError(file: path, reason: "cannot be opened") }
        _ = gzbuffer(gz, 1 << 20)
        self.gz = gz
        self.path = path
    }

    func read(into buffer: UnsafeMutablePointer<UInt8>, count: Int) throws(DataFileError) -> Int {
        let n = gzread(gz, buffer, UInt32(min(count, Int(Int32.max))))
        var code: Int32 = 0
        let message = gzerror(gz, &code).map { String(cString: $0) } ?? "unknown zlib error"
        if n < 0 || (n == 0 && code != Z_OK && code != Z_STREAM_END) {
            throw DataFileError(file: path, reason: "gzip data is corrupt or truncated: \(message)")
        }
        return Int(n)
    }

    func close() { gzclose(gz) }
}

/// Cuts a byte source into lines (without their line break; a final line without one counts), numbered from 1.
struct LineReader<Source: ByteSource> {
    private let source: Source
    private var buffer: [UInt8]
    private var start = 0
    private var end = 0
    private var atEnd = false
    /// The number of the line last returned (1-based, empty lines counted).
    private(set) var lineNumber = 0

    init(_ source: Source, chunk: Int = 1 << 22) {
        self.source = source
        buffer = [UInt8](repeating: 0, count: chunk)
    }

    /// Calls `body` with the next line and its number, or returns false at the end. The line's bytes are valid only
    /// inside `body`.
    mutating func next(_ body: (UnsafeBufferPointer<UInt8>, Int) throws(DataFileError) -> Void) throws(DataFileError)
        -> Bool
    {
        while true {
            let found: Int? = buffer.withUnsafeBufferPointer { b in
                guard end > start, let hit = memchr(b.baseAddress! + start, 0x0A, end - start) else { return nil }
                return b.baseAddress!.distance(to: hit.assumingMemoryBound(to: UInt8.self))
            }
            if let newline = found {
                lineNumber += 1
                var lineEnd = newline
                if lineEnd > start && buffer[lineEnd - 1] == 0x0D { lineEnd -= 1 }
                let (lineStart, number) = (start, lineNumber)
                start = newline + 1
                try buffer.withUnsafeBufferPointer { (b) throws(DataFileError) in
                    try body(UnsafeBufferPointer(rebasing: b[lineStart..<lineEnd]), number)
                }
                return true
            }
            if atEnd {
                guard end > start else { return false }
                lineNumber += 1
                let (lineStart, lineEnd, number) = (start, end, lineNumber)
                start = end
                try buffer.withUnsafeBufferPointer { (b) throws(DataFileError) in
                    try body(UnsafeBufferPointer(rebasing: b[lineStart..<lineEnd]), number)
                }
                return true
            }
            try refill()
        }
    }

    /// Moves the partial line to the front (growing the buffer when one line fills it) and reads more.
    private mutating func refill() throws(DataFileError) {
        if start > 0 {
            buffer.withUnsafeMutableBufferPointer { b in
                _ = memmove(b.baseAddress!, b.baseAddress! + start, end - start)
            }
            end -= start
            start = 0
        }
        if end == buffer.count { buffer.append(contentsOf: repeatElement(0, count: buffer.count)) }
        let room = buffer.count - end
        let offset = end
        let n = try buffer.withUnsafeMutableBufferPointer { (b) throws(DataFileError) in
            try source.read(into: b.baseAddress! + offset, count: room)
        }
        if n == 0 { atEnd = true }
        end += n
    }

    func close() { source.close() }
}
