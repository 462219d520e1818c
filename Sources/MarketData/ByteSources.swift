import CIsal
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
    /// Hashes the bytes as they are read, when given.
    private let digest: FileDigest?

    init(path: String, digest: FileDigest? = nil) throws(DataFileError) {
        self.digest = digest
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
        digest?.update(buffer, count: n)
        return n
    }

    /// The file's SHA-256 and size (what was not read yet is read for it).
    func finishDigest() throws(DataFileError) -> (hex: String, bytes: Int64)? {
        try digest?.finish(readingRestOf: file)
    }

    func close() { fclose(file) }
}

/// A gzip file (any number of members, as the recorder writes them) inflated with ISA-L as it is read, from a fixed
/// input buffer. As zlib's `gzread` did before it: a file that does not start as gzip is read as it is, and bytes after
/// the last member that are not another member are ignored; a member cut short or corrupt is an error naming the file.
final class GzipFileSource: ByteSource {
    private let file: UnsafeMutablePointer<FILE>
    private let path: String
    private let state = UnsafeMutablePointer<inflate_state>.allocate(capacity: 1)
    private let input: UnsafeMutableBufferPointer<UInt8>
    /// The file is not gzip: its bytes are passed through.
    private var plain = false
    private var inputEnded = false
    /// The current member's end was reached (its checksum verified).
    private var memberFinished = false
    private var finished = false
    /// Hashes the file's bytes (compressed, as stored) as they are read, when given.
    private let digest: FileDigest?

    init(path: String, digest: FileDigest? = nil) throws(DataFileError) {
        self.digest = digest
        guard FileManager.default.fileExists(atPath: path) else {
            throw DataFileError(file: path, reason: "no such file")
        }
        guard let file = fopen(path, "rb") else { throw DataFileError(file: path, reason: "cannot be opened") }
        self.file = file
        self.path = path
        input = .allocate(capacity: 1 << 20)
        isal_inflate_init(state)
        state.pointee.crc_flag = UInt32(ISAL_GZIP)
        try refillInput()
        plain = !startsMember()
    }

    deinit {
        state.deallocate()
        input.deallocate()
    }

    func read(into buffer: UnsafeMutablePointer<UInt8>, count: Int) throws(DataFileError) -> Int {
        if plain { return try passThrough(into: buffer, count: count) }
        while !finished {
            if state.pointee.avail_in == 0 && !inputEnded { try refillInput() }
            if memberFinished {
                // Another member follows, or the file ends (anything else after a member is ignored, as gzread does).
                if state.pointee.avail_in < 2 && !inputEnded { try keepAndRefill() }
                guard startsMember() else {
                    finished = true
                    return 0
                }
                isal_inflate_reset(state)
                state.pointee.crc_flag = UInt32(ISAL_GZIP)
                memberFinished = false
            }
            state.pointee.next_out = buffer
            state.pointee.avail_out = UInt32(min(count, Int(UInt32.max)))
            let code = isal_inflate(state)
            guard code >= 0 else { throw corrupt(Self.reason(code)) }
            let produced = count - Int(state.pointee.avail_out)
            if state.pointee.block_state == ISAL_BLOCK_FINISH { memberFinished = true }
            if produced > 0 { return produced }
            if state.pointee.avail_in == 0 && inputEnded && !memberFinished {
                throw corrupt("unexpected end of file")
            }
        }
        return 0
    }

    /// The file's SHA-256 and size (what was not read yet is read for it).
    func finishDigest() throws(DataFileError) -> (hex: String, bytes: Int64)? {
        try digest?.finish(readingRestOf: file)
    }

    func close() { fclose(file) }

    private func corrupt(_ why: String) -> DataFileError {
        DataFileError(file: path, reason: "gzip data is corrupt or truncated: \(why)")
    }

    private static func reason(_ code: Int32) -> String {
        switch code {
        case ISAL_INVALID_BLOCK: "invalid block"
        case ISAL_INVALID_SYMBOL: "invalid code"
        case ISAL_INVALID_LOOKBACK: "invalid distance too far back"
        case ISAL_INVALID_WRAPPER: "incorrect header"
        case ISAL_UNSUPPORTED_METHOD: "unknown compression method"
        case ISAL_INCORRECT_CHECKSUM: "incorrect data check"
        default: "inflate error \(code)"
        }
    }

    private func startsMember() -> Bool {
        state.pointee.avail_in >= 2 && state.pointee.next_in[0] == 0x1F && state.pointee.next_in[1] == 0x8B
    }

    /// Reads the next input chunk (the previous one is used up).
    private func refillInput() throws(DataFileError) {
        let n = fread(input.baseAddress!, 1, input.count, file)
        if n == 0 && ferror(file) != 0 { throw DataFileError(file: path, reason: "read failed") }
        if n == 0 { inputEnded = true }
        digest?.update(input.baseAddress!, count: n)
        state.pointee.next_in = input.baseAddress!
        state.pointee.avail_in = UInt32(n)
    }

    /// Moves the unread input (under two bytes) to the front and reads more behind it.
    private func keepAndRefill() throws(DataFileError) {
        let kept = Int(state.pointee.avail_in)
        if kept > 0 { memmove(input.baseAddress!, state.pointee.next_in, kept) }
        let n = fread(input.baseAddress! + kept, 1, input.count - kept, file)
        if n == 0 && ferror(file) != 0 { throw DataFileError(file: path, reason: "read failed") }
        if n == 0 { inputEnded = true }
        digest?.update(input.baseAddress! + kept, count: n)
        state.pointee.next_in = input.baseAddress!
        state.pointee.avail_in = UInt32(kept + n)
    }

    private func passThrough(into buffer: UnsafeMutablePointer<UInt8>, count: Int) throws(DataFileError) -> Int {
        let buffered = Int(state.pointee.avail_in)
        if buffered > 0 {
            let n = min(buffered, count)
            memcpy(buffer, state.pointee.next_in, n)
            state.pointee.next_in += n
            state.pointee.avail_in -= UInt32(n)
            return n
        }
        let n = fread(buffer, 1, count, file)
        if n == 0 && ferror(file) != 0 { throw DataFileError(file: path, reason: "read failed") }
        digest?.update(buffer, count: n)
        return n
    }
}

/// Cuts a byte source into lines (without their line break; a final line without one counts), numbered from 1.
struct LineReader<Source: ByteSource> {
    let source: Source
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
